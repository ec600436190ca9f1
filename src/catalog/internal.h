/* Private catalog state and the HDF5 error translation shared by the files of src/catalog. */
#ifndef SISMA_CATALOG_INTERNAL_H
#define SISMA_CATALOG_INTERNAL_H

#include <hdf5.h>
#include <limits.h>

#include "sisma/catalog.h"

typedef struct {
  char name[SM_COLUMN_NAME_MAX];
  sm_col_type type;
  int width; /* string columns: bytes per value */
} sm__column;

struct sm_catalog {
  sm_ctx *ctx;            /* borrowed */
  hid_t file, waveforms;  /* open HDF5 objects */
  hid_t dxpl;             /* collective transfers (writes: required by filtered datasets) */
  hid_t dxpl_read;        /* collective calls, each rank reading its own selection directly */
  sm_catalog_info info;
  char path[PATH_MAX];     /* final path */
  char tmp_path[PATH_MAX]; /* where a created catalog is written until commit */
  int writable, committed;
  int ncols;
  sm__column *cols; /* sorted by name */
};

/* Record an SM_ERR_HDF5 with `what` and the innermost message on HDF5's error stack. */
sm_status sm__h5_error(sm_ctx *ctx, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define SM_H5ERR(ctx, ...) sm__h5_error((ctx), __FILE__, __LINE__, __VA_ARGS__)
/* Fail with SM_ERR_HDF5 if an HDF5 call returned a negative value. */
#define SM_H5(ctx, expr, ...)                                                                      \
  do {                                                                                             \
    if ((expr) < 0) return SM_H5ERR((ctx), __VA_ARGS__);                                           \
  } while (0)

/* File access property list for MPI-IO with collective metadata. Caller closes it. */
hid_t sm__fapl_mpio(sm_ctx *ctx);

/* Collective transfer of a [count][row_elems] slab of a dataset whose first axis is the trace
 * axis, split into pieces of at most SM_CATALOG_MAX_TRANSFER bytes (piece count agreed over
 * ranks). write = 0 reads. Collective. */
sm_status sm__slab_io(sm_ctx *ctx, hid_t dset, hid_t memtype, hid_t dxpl, int write, int64_t first, int64_t count,
                      int64_t row_elems, size_t elem_size, void *buf, const char *what);

#endif
