/* Tables: named columns of numbers or strings, rows sharded over the ranks in contiguous
 * near-equal blocks. The input of the statistics stages (lm, logistic) and of any stage that
 * learns from tabular features. A table is opened from one of
 *
 *   "x.csv"          a CSV file with a header row (RFC 4180 quoting, LF/CRLF); a column is numeric
 *                    when every non-missing value parses as a number, otherwise it is a string
 *                    column. Missing values: empty fields and NA (also None/nan/NaN in numeric
 *                    columns). A malformed row is SM_ERR_FORMAT naming file, line and column.
 *   "cat.h5"         a sisma catalog: its /meta columns (int64 missing INT64_MIN becomes NaN)
 *   "x.h5:/group"    a group of equal-length 1-D datasets (float64/float32/integers/strings)
 *   "x.h5:/dataset"  a 2-D numeric dataset [rows][cols]; column names from its string attribute
 *                    "columns" (comma-separated) when present, else c1..cN
 *
 * Rank r of p holds rows [first, first+count) with first = r*floor(n/p) + min(r, n mod p): the
 * first n mod p ranks hold one row more; ranks beyond n hold none and still take part in every
 * collective. Numeric values are float64 with NaN = missing; string values are NUL-terminated
 * with "" = missing. Columns keep the order of the source (CSV header order; HDF5 name order).
 * Start reading at sm_table_open. */
#ifndef SISMA_TABLE_H
#define SISMA_TABLE_H

#include "sisma/shard.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sm_table sm_table;

/* Open a table (see above), each rank reading its own row block (a CSV: each rank reads and parses
 * about 1/p of the file's bytes, then the rows move to their blocks). Collective: returns the same
 * status on every rank. SM_ERR_IO (cannot read), SM_ERR_FORMAT (malformed CSV naming file:line and
 * column; not a table-shaped HDF5 object), SM_ERR_DATA (columns of different lengths),
 * SM_ERR_HDF5, SM_ERR_NOMEM. */
sm_status sm_table_open(sm_ctx *ctx, const char *spec, sm_table **out);
/* Free the table; sets *t = NULL; accepts NULL. Local. */
void sm_table_close(sm_table **t);

int64_t sm_table_nrows(const sm_table *t);               /* global row count. Local. */
sm_range sm_table_range(const sm_table *t);              /* this rank's rows [first, first+count). Local. */
int sm_table_ncols(const sm_table *t);                   /* Local. */
const char *sm_table_col_name(const sm_table *t, int j); /* borrowed. Local. */
int sm_table_col_is_str(const sm_table *t, int j);       /* 1 for a string column. Local. */
/* Column index by name; SM_ERR_ARG naming the column and the table and listing near matches if
 * absent (*j = -1 then). Local. */
sm_status sm_table_find(sm_table *t, const char *name, int *j);
/* This rank's values of column j: [count] float64, NaN = missing; NULL for a string column.
 * Borrowed until sm_table_close. Local. */
const double *sm_table_num(const sm_table *t, int j);
/* This rank's values of column j: [count] strings, "" = missing; NULL for a numeric column.
 * Borrowed until sm_table_close. Local. */
const char *const *sm_table_str(const sm_table *t, int j);

/* The spec the table was opened from (borrowed). Local. */
const char *sm_table_spec(const sm_table *t);
/* The block of rows rank `rank` of `size` holds in a table of n rows (the rule above). Local. */
sm_range sm_table_block(int64_t n, int rank, int size);

#ifdef __cplusplus
}
#endif
#endif
