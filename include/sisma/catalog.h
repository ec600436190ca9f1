/* The sisma catalog: one parallel-HDF5 file holding a window of waveforms per trace and one
 * 1-D metadata column per field (docs/catalog-format.md is the field-by-field reference).
 *
 *   /waveforms          float32 [n_traces][n_components][n_samples], chunked by whole traces
 *   /meta/<column>      float64 | int64 | fixed-width string, length n_traces
 *   root attributes     format, format_version, component_order, sampling_rate_hz, n_samples,
 *                       software, provenance ... (sm_catalog_set_attr)
 *
 * Every function marked collective must be called by all ranks of the context with the same
 * structural arguments (names, types); counts and buffers may differ, and a rank with nothing
 * to do passes count = 0. Transfers are collective MPI-IO and split so that no single transfer
 * exceeds SM_CATALOG_MAX_TRANSFER bytes. A created catalog lives under a temporary name until
 * sm_catalog_commit renames it, so a failed or killed job never leaves a file that looks
 * complete; sm_catalog_close on an uncommitted catalog deletes it. Inputs are opened read-only. */
#ifndef SISMA_CATALOG_H
#define SISMA_CATALOG_H

#include "sisma/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SM_CATALOG_FORMAT "sisma-catalog"
#define SM_CATALOG_VERSION 1
#define SM_CATALOG_MAX_TRANSFER ((int64_t)1 << 30) /* bytes per H5Dread/H5Dwrite call per rank */
#define SM_COLUMN_NAME_MAX 64

typedef struct sm_catalog sm_catalog;

typedef struct {
  int64_t n_traces;        /* traces (rows of /waveforms) */
  int n_components;        /* 1..8 */
  int64_t n_samples;       /* samples per component window */
  double sampling_rate_hz; /* one rate per catalog */
  char component_order[9]; /* one letter per component, e.g. "ENZ" or "ZNE" */
  int64_t chunk_traces;    /* traces per HDF5 chunk; 0 on create = choose (~2 MiB chunks) */
  int compression;         /* deflate level 0 (none) .. 9 */
} sm_catalog_info;

typedef enum { SM_COL_F64 = 0, SM_COL_I64 = 1, SM_COL_STR = 2 } sm_col_type;

/* Create a catalog at `path` (written to a temporary name in the same directory until commit).
 * Collective. `info` gives the shape; chunk_traces 0 picks whole-trace chunks of about 2 MiB.
 * Returns SM_ERR_ARG for an invalid shape, SM_ERR_IO/SM_ERR_HDF5 if the file cannot be made. */
sm_status sm_catalog_create(sm_ctx *ctx, const char *path, const sm_catalog_info *info, sm_catalog **out);

/* Open an existing catalog read-only. Collective. SM_ERR_FORMAT names the file and what is
 * missing or inconsistent if it is not a sisma catalog. */
sm_status sm_catalog_open(sm_ctx *ctx, const char *path, sm_catalog **out);

/* Publish a created catalog: flush, close, rename to its final path. Collective; sets *cat NULL. */
sm_status sm_catalog_commit(sm_catalog **cat);

/* Close; an uncommitted created catalog is deleted. Collective; sets *cat NULL; accepts NULL. */
void sm_catalog_close(sm_catalog **cat);

/* Shape and layout of the catalog (borrowed). Local. */
const sm_catalog_info *sm_catalog_get_info(const sm_catalog *cat);
/* Path the catalog was opened or will be committed at (borrowed). Local. */
const char *sm_catalog_path(const sm_catalog *cat);

/* Read / write traces [first, first+count) into / from buf, float32 [count][C][T]. Collective. */
sm_status sm_catalog_read_traces(sm_catalog *cat, int64_t first, int64_t count, float *buf);
sm_status sm_catalog_write_traces(sm_catalog *cat, int64_t first, int64_t count, const float *buf);
/* Read an arbitrary list of traces (any order, no duplicates needed) into buf [n][C][T]. Collective. */
sm_status sm_catalog_read_trace_list(sm_catalog *cat, int64_t n, const int64_t *index, float *buf);

/* Metadata columns. Create is collective (all ranks, same arguments); str_width is the fixed
 * byte width of a string column (values are NUL-padded; longer values are an SM_ERR_DATA). */
sm_status sm_catalog_column_create(sm_catalog *cat, const char *name, sm_col_type type, int str_width);
/* Number of columns, and the name/type/width of column i (sorted by name). Local. */
int sm_catalog_column_count(const sm_catalog *cat);
const char *sm_catalog_column_name(const sm_catalog *cat, int i);
/* Look a column up by name: SM_ERR_ARG (with the near matches in the message) if absent. Local. */
sm_status sm_catalog_column_info(sm_catalog *cat, const char *name, sm_col_type *type, int *str_width);
int sm_catalog_has_column(const sm_catalog *cat, const char *name);

/* Column ranges [first, first+count). Collective. Missing values: NaN (f64), INT64_MIN (i64),
 * "" (str). Strings are [count][str_width] bytes, NUL-padded (not necessarily NUL-terminated
 * when a value fills the width: use sm_catalog_str_at). */
sm_status sm_catalog_write_f64(sm_catalog *cat, const char *name, int64_t first, int64_t count, const double *v);
sm_status sm_catalog_write_i64(sm_catalog *cat, const char *name, int64_t first, int64_t count, const int64_t *v);
sm_status sm_catalog_write_str(sm_catalog *cat, const char *name, int64_t first, int64_t count, const char *v);
sm_status sm_catalog_read_f64(sm_catalog *cat, const char *name, int64_t first, int64_t count, double *v);
sm_status sm_catalog_read_i64(sm_catalog *cat, const char *name, int64_t first, int64_t count, int64_t *v);
sm_status sm_catalog_read_str(sm_catalog *cat, const char *name, int64_t first, int64_t count, char *v);
/* Read a numeric column of either type as float64 (INT64_MIN becomes NaN). Collective. */
sm_status sm_catalog_read_as_f64(sm_catalog *cat, const char *name, int64_t first, int64_t count, double *v);

/* Create (if absent, width = longest value over all ranks, at least 1) and write a string column
 * from C strings. Collective. Convenient when the whole column is written in one call. */
sm_status sm_catalog_put_strings(sm_catalog *cat, const char *name, int64_t first, int64_t count,
                                 const char *const *strs);

/* Copy value i of a fixed-width string buffer into out (NUL-terminated, out_size bytes). Local. */
void sm_catalog_str_at(const char *buf, int width, int64_t i, char *out, size_t out_size);

/* Root attributes: strings (provenance, job configuration) and numbers. Collective: every rank
 * passes the same value; rank-local values must be agreed first. */
sm_status sm_catalog_set_attr(sm_catalog *cat, const char *name, const char *value);
sm_status sm_catalog_set_attr_f64(sm_catalog *cat, const char *name, double value);
/* Read a string attribute into out (empty string and SM_OK if absent). Local. */
sm_status sm_catalog_get_attr(sm_catalog *cat, const char *name, char *out, size_t out_size);

/* Record the standard provenance attributes: software version, rank count, creation time,
 * the command or stage that made it and the resolved job configuration (YAML text, may be NULL).
 * Collective. */
sm_status sm_catalog_set_provenance(sm_catalog *cat, const char *created_by, const char *job_config);

/* The HDF5 file id (borrowed) for subsystems that add their own groups in the same style. */
int64_t sm_catalog_hid(const sm_catalog *cat);
sm_ctx *sm_catalog_ctx(const sm_catalog *cat);

#ifdef __cplusplus
}
#endif
#endif
