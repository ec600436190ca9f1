/* Private table state shared by the table readers (CSV in table_csv.c, HDF5 and catalogs in
 * table_h5.c). A table owns, per column, this rank's values: float64 for numeric columns,
 * NUL-terminated strings (pointers into one per-column arena) for string columns. */
#ifndef SISMA_TABLE_INTERNAL_H
#define SISMA_TABLE_INTERNAL_H

#include "sisma/table.h"

typedef struct {
  char *name;
  int is_str;
  double *num; /* [count] when numeric */
  char **str;  /* [count] pointers into arena when a string column */
  char *arena; /* string bytes */
} sm__tcol;

struct sm_table {
  sm_ctx *ctx; /* borrowed */
  char *spec;
  int64_t nrows;
  sm_range mine;
  int ncols;
  sm__tcol *cols; /* [ncols] */
};

/* Append a column named `name` (copied); numeric columns get a [mine.count] buffer (filled by the caller),
 * string columns a [mine.count] pointer array (the caller fills str and arena). Local. */
sm_status sm__table_add(sm_table *t, const char *name, int is_str, sm__tcol **out);
/* Fill a string column from fixed-width values buf [count][width] (NUL-padded). Local. */
sm_status sm__table_fixed_strings(sm_table *t, sm__tcol *c, const char *buf, size_t width);

/* CSV source (table_csv.c): each rank reads and parses a byte range of the file, then the rows
 * move to their blocks. Collective, agreed; t->spec and t->ctx are set, the rest is filled. */
sm_status sm__table_open_csv(sm_table *t, const char *path);
/* HDF5 sources (table_h5.c). Collective; t->spec is set, the rest is filled. */
sm_status sm__table_open_catalog(sm_table *t, const char *path);
sm_status sm__table_open_h5(sm_table *t, const char *path, const char *object);

#endif
