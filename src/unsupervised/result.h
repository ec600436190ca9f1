/* Result files of the unsupervised stages (result.c) and the data they read (data.c). Private. */
#ifndef SISMA_UNSUPERVISED_RESULT_H
#define SISMA_UNSUPERVISED_RESULT_H

#include "sisma/config.h"
#include "sisma/unsupervised.h"

typedef struct sm__result sm__result;
typedef enum { SM__RES_F64, SM__RES_I32, SM__RES_I64 } sm__result_type;

/* Create `path` under a temporary name with the provenance attributes. Collective. On failure
 * *out may be set: close it. */
sm_status sm__result_create(sm_ctx *ctx, const char *path, const char *created_by, const char *job_yaml,
                            sm__result **out);
/* Root attributes (same value on every rank). Collective. */
sm_status sm__result_attr(sm__result *r, const char *name, const char *value);
sm_status sm__result_attr_f64(sm__result *r, const char *name, double value);
/* A replicated array [n] (cols 0) or [n][cols], written once. Collective. */
sm_status sm__result_small(sm__result *r, const char *name, sm__result_type type, int64_t n, int64_t cols,
                           const void *v);
/* A per-row array [n] or [n][cols]: this rank writes rows [first, first + count). `columns`, if
 * not NULL, becomes the dataset's "columns" attribute (comma-separated names), which makes it a
 * table that `sm_table_open("file.h5:/name")` reads back. Collective. */
sm_status sm__result_rows(sm__result *r, const char *name, sm__result_type type, int64_t n, int64_t cols,
                          int64_t first, int64_t count, const void *v, const char *columns);
/* Close and rename to the final path. Collective; frees *r. */
sm_status sm__result_commit(sm__result **r);
/* Close; deletes the file when not committed. Collective; accepts NULL. */
void sm__result_close(sm__result **r);

/* ---- input of the pca / kmeans stages ---- */

/* The keys every unsupervised stage shares (data, columns, filter, geographic, normalize_rows). */
#define SM__DATA_KEYS                                                                                  \
  {"data", SM_KEY_PATH, NULL, 0, -1, NULL,                                                             \
   "input: a table (x.csv, cat.h5 metadata, x.h5:/group, x.h5:/dataset) or a catalog whose whole "    \
   "waveforms are the rows (cat.h5 with columns empty)"},                                             \
      {"columns", SM_KEY_STR, "", 0, -1, NULL,                                                         \
       "comma-separated numeric columns to use (empty: every numeric column of a table; the waveforms " \
       "of a catalog)"},                                                                              \
      {"filter", SM_KEY_STR, "", 0, -1, NULL,                                                          \
       "keep rows with lo <= column <= hi: \"col:lo:hi,col2:lo:\" (empty bound = open); rows with a "  \
       "missing filter value are dropped"},                                                           \
      {"geographic", SM_KEY_BOOL, "false", 0, -1, NULL,                                                \
       "the 3 columns are latitude (deg), longitude (deg), depth (km): convert to east, north, down km " \
       "about the mean epicentre (local equirectangular projection, R = 6371 km)"},                     \
      {"normalize_rows", SM_KEY_ENUM, "none", 0, -1, "none|peak|rms",                                   \
       "divide each row by its largest |value| or its root mean square (waveforms: compare shapes, not " \
       "magnitudes)"}

typedef struct {
  int64_t n, first, count, d;
  double *x;           /* [count][d] */
  int64_t *source_row; /* [count] row of each kept row in the input */
  char names[4096];    /* comma-separated column names */
  int geographic;
  double lat0, lon0;   /* projection origin (deg) when geographic */
  int waveforms;       /* rows are whole waveforms of a catalog */
  void *stream;        /* streamed catalog (sm__dataset_stream), or NULL */
} sm__dataset;

/* Load the rows selected by the stage's data keys. Collective. */
sm_status sm__dataset_load(sm_ctx *ctx, const sm_config *cfg, sm__dataset *ds);
void sm__dataset_fini(sm__dataset *ds);
/* The rows as a source read on demand: a catalog's waveforms are streamed (never all in memory;
 * x stays NULL), a table is loaded as by sm__dataset_load. Collective. */
sm_status sm__dataset_stream(sm_ctx *ctx, const sm_config *cfg, sm__dataset *ds, sm_row_source *src);

#endif
