/* Private table state shared by the table readers (CSV in table_csv.c, HDF5 and catalogs in
 * table_h5.c). A table owns, per column, this rank's values: float64 for numeric columns,
 * NUL-terminated strings (pointers into one per-column arena) for string columns. */
#ifndef SISMA_TABLE_INTERNAL_H
#define SISMA_TABLE_INTERNAL_H

#include "sisma/table.h"

typedef struct {
  char *name;
  int is_str;
  double *num; /* [count] when numeric: its own allocation, or a slot of the table's slab */
  int in_slab; /* num is a slot of the slab (not freed on its own) */
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
  double *slab;   /* [nslab][stride]: numeric columns allocated at once (sm__table_reserve), or NULL */
  int nslab, slab_used;
  size_t stride;
};

/* Append a column named `name` (copied); numeric columns get a [mine.count] buffer (filled by the caller),
 * string columns a [mine.count] pointer array (the caller fills str and arena). Local. */
sm_status sm__table_add(sm_table *t, const char *name, int is_str, sm__tcol **out);
/* Allocate the next n numeric columns in one slab (sm__alloc_big), so that they share huge pages: a
 * [count] column of its own under 4 MiB (1e6 rows at 2 ranks) sits in 4 KiB pages, and first touch
 * of those cost reading 1e6 x 16 from HDF5 twice its time. Optional; columns beyond the n (and
 * all columns when it fails) get their own allocation. Local; t->mine must be set. */
void sm__table_reserve(sm_table *t, int n);
/* Fill a string column from fixed-width values buf [count][width] (NUL-padded). Local. */
sm_status sm__table_fixed_strings(sm_table *t, sm__tcol *c, const char *buf, size_t width);

/* CSV source (table_csv.c): each rank reads and parses a byte range of the file, then the rows
 * move to their blocks. Collective, agreed; t->spec and t->ctx are set, the rest is filled. */
sm_status sm__table_open_csv(sm_table *t, const char *path);
/* HDF5 sources (table_h5.c). Collective; t->spec is set, the rest is filled. */
sm_status sm__table_open_catalog(sm_table *t, const char *path);
sm_status sm__table_open_h5(sm_table *t, const char *path, const char *object);

#endif
