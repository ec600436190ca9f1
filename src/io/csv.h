/* A small CSV table reader (private to sisma): a header row naming the columns, then one record
 * per row, RFC 4180 quoting (fields in double quotes may hold commas, newlines and doubled quotes
 * ""), LF or CRLF line ends, an optional UTF-8 byte-order mark. The whole file is parsed into one
 * arena; values are borrowed NUL-terminated strings.
 *
 * Missing values: an empty field (quoted or not). Typed access: a column is numeric when every
 * non-missing value parses completely as a number (strtod; surrounding blanks allowed), where the
 * Python spellings "None", "nan" and "NaN" also count as missing in numeric columns only (STEAD
 * and pandas write them); otherwise it is a string column and values are returned verbatim.
 *
 * Errors name the file, the line (1-based, physical line of the input) and the column (1-based
 * field number and header name): a row with the wrong number of fields (e.g. a truncated last
 * row), an unterminated quoted field, a quote inside an unquoted field, text after a closing
 * quote, duplicate or empty header names. Fully empty lines are skipped.
 * Start reading at sm__csv_create. All functions are local (no MPI). */
#ifndef SISMA_IO_CSV_H
#define SISMA_IO_CSV_H

#include "sisma/core.h"

typedef struct sm_csv sm_csv;

/* Parse the CSV file at path. On failure records SM_ERR_IO (cannot read) or SM_ERR_FORMAT
 * ("path:line:column: why") and returns it; *out is NULL then. Local. */
sm_status sm__csv_create(sm_ctx *ctx, const char *path, sm_csv **out);
/* Parse CSV text held in memory (len bytes); `name` is used in messages. Local. */
sm_status sm__csv_create_text(sm_ctx *ctx, const char *name, const char *text, size_t len, sm_csv **out);
/* Free; sets *csv = NULL; accepts NULL. */
void sm__csv_destroy(sm_csv **csv);

const char *sm__csv_path(const sm_csv *csv);
int64_t sm__csv_rows(const sm_csv *csv); /* data rows (header excluded) */
int sm__csv_cols(const sm_csv *csv);
const char *sm__csv_col_name(const sm_csv *csv, int col);
/* Column index of `name`, or -1. */
int sm__csv_col_find(const sm_csv *csv, const char *name);
/* Column index of `name`; SM_ERR_FORMAT naming the file and near matches if absent. */
sm_status sm__csv_col_require(sm_ctx *ctx, const sm_csv *csv, const char *name, int *col);
/* Physical line (1-based) where data row `row` (0-based) starts. */
int64_t sm__csv_line(const sm_csv *csv, int64_t row);

/* Value of (row, col) as text, "" when missing (borrowed). */
const char *sm__csv_str(const sm_csv *csv, int64_t row, int col);
int sm__csv_missing(const sm_csv *csv, int64_t row, int col);
/* 1 if the column is numeric (see above); a column with no values at all is not numeric. */
int sm__csv_is_numeric(const sm_csv *csv, int col);
/* Value of (row, col) as a number: NaN when missing or when it does not parse. */
double sm__csv_f64(const sm_csv *csv, int64_t row, int col);
/* Longest value of a column in bytes (at least 1). */
int sm__csv_max_len(const sm_csv *csv, int col);

/* Parse a whole string as a number (blanks around allowed). Returns 1 on success. */
int sm__csv_parse_f64(const char *s, double *v);

#endif
