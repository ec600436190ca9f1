/* Private state of the HDF5-layout importers (STEAD, SeisBench, INSTANCE): import_h5.c resolves
 * the layout and copies the waveforms, import_h5_meta.c turns the metadata CSV into /meta columns.
 * Rank r owns the CSV rows [first, first + count) (arithmetic share) and writes exactly those
 * catalog rows, in CSV order. */
#ifndef SISMA_IO_IMPORT_H5_H
#define SISMA_IO_IMPORT_H5_H

#include <hdf5.h>

#include "csv.h"
#include "sisma/catalog.h"
#include "sisma/config.h"

enum { SM_H5L_STEAD, SM_H5L_SEISBENCH, SM_H5L_INSTANCE };

typedef struct {
  char dset[512]; /* dataset path in the input file */
  int64_t index;  /* row of a block dataset [N][..][..]; -1 for a one-trace dataset */
  int64_t npts;   /* samples of this trace (original length) */
} sm__h5trace;

typedef struct {
  sm_ctx *ctx;
  int layout;                         /* SM_H5L_* */
  const char *format;                 /* "stead" | "seisbench" | "instance" */
  char input[4096], metadata[4096], output[4096];
  hid_t file;                         /* input, read-only, serial access per rank */
  sm_csv *csv;                        /* the whole metadata table (every rank parses it) */
  int name_col;                       /* CSV column trace_name */
  char src_order[9];                  /* component order of the input, e.g. "ENZ" */
  int nsrc;                           /* components in the input */
  int wc;                             /* 1: input traces are [samples][components]; 0: [components][samples] */
  char order[9];                      /* catalog component order (key `components`) */
  int perm[8];                        /* catalog component k is input component perm[k] */
  double rate_hz;                     /* sampling rate of every trace */
  int64_t first, count;               /* this rank's CSV rows */
  sm__h5trace *tr;                    /* [count] */
  int64_t width;                      /* catalog window: longest trace, samples */
  char measurement[64], unit[64];     /* SeisBench data_format, "" if unknown */
  char response[128];                 /* data_format/instrument_response */
} sm__h5import;

/* Write every CSV column (renamed per layout) plus trace_name_original, trace_npts and
 * trace_sampling_rate_hz as /meta columns, rows [first, first + count) on each rank. Collective. */
sm_status sm__h5import_columns(sm__h5import *im, sm_catalog *cat);

#endif
