/* Writing a column table: one HDF5 file whose group (e.g. /features) holds one equal-length 1-D
 * dataset per column (float64, int64 or fixed-width string), one row per trace, written with
 * collective parallel-HDF5 transfers by the ranks that own the rows. The file lives under a
 * temporary name (".<base>.partial-<pid>") until sm_table_writer_commit renames it, exactly as a
 * catalog does, so a failed run never leaves a file that looks complete. Read it as
 * `file.h5:/group` (h5py: f["features"]["rms"][:]). */
#ifndef SISMA_TABLE_WRITER_H
#define SISMA_TABLE_WRITER_H
#include "sisma/catalog.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct sm_table_writer sm_table_writer;

/* Create `path` (temporary name until commit) with an empty group `group` for n_rows rows.
 * Collective. SM_ERR_IO/SM_ERR_HDF5 if the file cannot be made. */
sm_status sm_table_writer_create(sm_ctx *ctx, const char *path, const char *group, int64_t n_rows,
                                 sm_table_writer **out);

/* Create column `name` (collective, same arguments on every rank) and write rows [first,
 * first + count) of it from v (collective; count may be 0). Strings are [count][width] bytes,
 * NUL-padded. Returns SM_ERR_ARG for a duplicate name or rows out of range. */
sm_status sm_table_writer_f64(sm_table_writer *tw, const char *name, int64_t first, int64_t count, const double *v);
sm_status sm_table_writer_i64(sm_table_writer *tw, const char *name, int64_t first, int64_t count, const int64_t *v);
sm_status sm_table_writer_str(sm_table_writer *tw, const char *name, int width, int64_t first, int64_t count,
                              const char *v);

/* A string attribute on the group (same value on every rank). Collective. */
sm_status sm_table_writer_attr(sm_table_writer *tw, const char *name, const char *value);

/* Close and rename to the final path. Collective; sets *tw NULL. */
sm_status sm_table_writer_commit(sm_table_writer **tw);

/* Close; an uncommitted file is deleted. Collective; sets *tw NULL; accepts NULL. */
void sm_table_writer_close(sm_table_writer **tw);

#ifdef __cplusplus
}
#endif
#endif
