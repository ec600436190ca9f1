/* Result files of the stages (pca, kmeans, lm, glm): one HDF5 file written collectively, with
 * provenance attributes, under a temporary name until committed (result.c). Private to the library:
 * src/unsupervised and src/stats include it. */
#ifndef SISMA_CATALOG_RESULT_H
#define SISMA_CATALOG_RESULT_H

#include <stdint.h>

#include "sisma/core.h"

typedef struct sm__result sm__result;
typedef enum { SM__RES_F64, SM__RES_I32, SM__RES_I64 } sm__result_type;

/* Create `path` under a temporary name with the provenance attributes. Collective. On failure
 * *out may be set: close it. */
sm_status sm__result_create(sm_ctx *ctx, const char *path, const char *created_by, const char *job_yaml,
                            sm__result **out);
/* Attributes (same value on every rank): of the root, or, for a name "object/attr", of that
 * dataset or group (a missing group is created: "heldout_metrics/rmse"). Collective. */
sm_status sm__result_attr(sm__result *r, const char *name, const char *value);
sm_status sm__result_attr_f64(sm__result *r, const char *name, double value);
/* A replicated array [n] (cols 0) or [n][cols], written once. Collective. */
sm_status sm__result_small(sm__result *r, const char *name, sm__result_type type, int64_t n, int64_t cols,
                           const void *v);
/* A per-row array [n] or [n][cols] (missing groups on the path of `name` are created): this rank writes rows [first,
 * first + count). `columns`, if not NULL, becomes the dataset's "columns" attribute (comma-separated names), which
 * makes it a table that `sm_table_open("file.h5:/name")` reads back. Collective. */
sm_status sm__result_rows(sm__result *r, const char *name, sm__result_type type, int64_t n, int64_t cols, int64_t first,
                          int64_t count, const void *v, const char *columns);
/* Fixed-width strings [n] (each `width` bytes, NUL-padded): this rank writes rows [first, first +
 * count) from v ([count][width]). Collective. */
sm_status sm__result_strings(sm__result *r, const char *name, int64_t n, int64_t first, int64_t count, size_t width,
                             const char *v);
/* Close and rename to the final path. Collective; frees *r. */
sm_status sm__result_commit(sm__result **r);
/* Close; deletes the file when not committed. Collective; accepts NULL. */
void sm__result_close(sm__result **r);

#endif
