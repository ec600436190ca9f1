/* The data the unsupervised stages read (data.c): their shared input keys and sm__dataset. Private;
 * their result files are written by src/catalog/result.h. */
#ifndef SISMA_UNSUPERVISED_DATA_H
#define SISMA_UNSUPERVISED_DATA_H

#include "sisma/config.h"
#include "sisma/unsupervised.h"

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
