/* Private interface of the io subsystem: the `import` and `export` stages dispatch on `format`
 * to the functions declared here. miniSEED lives in mseed_*.c, the HDF5 layouts (STEAD,
 * SeisBench, INSTANCE) in import_h5.c. All run functions are collective and return the same
 * status on every rank. */
#ifndef SISMA_IO_INTERNAL_H
#define SISMA_IO_INTERNAL_H

#include "sisma/catalog.h"
#include "sisma/config.h"

/* HDF5 layouts -> catalog (format stead|seisbench|instance). Collective. */
sm_status sm__import_h5layout(sm_ctx *ctx, const sm_config *cfg);
/* catalog -> SeisBench waveforms.hdf5 + metadata.csv. Collective. */
sm_status sm__export_seisbench(sm_ctx *ctx, const sm_config *cfg);

/* miniSEED 2 -> catalog (format mseed; docs/import-export.md "miniSEED"). Collective. */
sm_status sm__import_mseed(sm_ctx *ctx, const sm_config *cfg);
/* catalog -> one miniSEED file per trace. Collective. */
sm_status sm__export_mseed(sm_ctx *ctx, const sm_config *cfg);

/* ---- miniSEED reading (mseed_read.c), local ---- */

#define SM_MSEED_ID_MAX 48 /* "NET.STA.LOC.CHA" */

/* One decoded data record. */
typedef struct {
  char id[SM_MSEED_ID_MAX]; /* NET.STA.LOC.CHA (empty codes stay empty: ".CER.00.BHZ") */
  double rate_hz;           /* nominal sampling rate */
  int64_t start_us;         /* first sample, microseconds since 1970 (libmseed hptime) */
  int64_t n;                /* samples */
  int64_t offset;           /* byte offset of the record in its file */
  float *x;                 /* [n] samples as float32 counts; NULL when not kept */
} sm__mseed_rec;

typedef struct {
  sm__mseed_rec *rec;
  int64_t n, cap;
} sm__mseed_recs;

/* Decide whether to keep the samples of the record with this id (NULL keeps all). */
typedef int (*sm__mseed_filter)(const char *id, void *arg);

/* Read every data record of the miniSEED 2 file `path` and append them to out (samples kept
 * only where keep(id) is true; other records are appended without samples when keep_meta).
 * Refuses the file (SM_ERR_FORMAT / SM_ERR_DATA, message naming the file, record and byte
 * offset) when: it holds no SEED data (e.g. miniSEED 3), libmseed reports a decoding error or a
 * Steim integrity failure, a record is cut off, a record declares more samples than its data
 * bytes hold, a record's codes hold a byte that cannot be in an id ('.', control, non-ASCII), or
 * a record holds NaN/Inf samples. ASCII records
 * are skipped, skipped bytes and libmseed warnings are noted in `note` (may be "").
 * Local. On failure the records appended so far are removed. */
sm_status sm__mseed_read_file(sm_ctx *ctx, const char *path, sm__mseed_filter keep, void *arg, int keep_meta,
                              sm__mseed_recs *out, char *note, size_t note_size);
void sm__mseed_recs_free(sm__mseed_recs *r);

/* Expand `input` (a file, a directory: its regular files sorted by name, or a comma-separated
 * list of either) into a NULL-terminated array of paths (free with sm__paths_free). Local. */
sm_status sm__mseed_list_inputs(sm_ctx *ctx, const char *input, char ***paths, int64_t *n);
void sm__paths_free(char ***paths, int64_t n);

/* ---- miniSEED stations and windows (mseed_station.c), local ---- */

/* A station: the channels NET.STA.LOC.<band><instrument>? mapped onto the output components. */
typedef struct {
  char key[SM_MSEED_ID_MAX]; /* "NET.STA.LOC.BH" */
  char net[12], sta[12], loc[12], band[4];
  double rate_hz;   /* input rate, the same for all its channels */
  char chan[8][12]; /* [component slot]: channel code, "" = absent */
  char present[9];  /* output component letters present, in output order */
  int64_t *files;   /* indices into the input file list */
  int64_t nfiles;
} sm__mseed_station;

/* A window request: start time and optional picks (INT64_MIN = none), microseconds. */
typedef struct {
  int64_t start_us, p_us, s_us;
  int64_t row; /* windows-CSV data row (-1: fixed window) */
} sm__mseed_window;

/* Per-trace metadata of the output (SeisBench column names in the catalog). */
typedef struct {
  char name[128], net[12], sta[12], loc[12], cha[4], start[32], present[9], chans[40];
  double rate_hz; /* trace_sampling_rate_hz: the original rate */
  int64_t p, s;   /* trace_{p,s}_arrival_sample or INT64_MIN */
  int64_t filled; /* samples filled by gap_policy (all components) */
  int64_t row;    /* windows-CSV row or -1 */
} sm__mseed_tmeta;

/* Options of the windowing step (from the import keys). */
typedef struct {
  int C;          /* output components */
  int64_t T;      /* samples per output window */
  double rate_hz; /* catalog rate */
  double window_s, step_s, before_s, max_gap_s;
  int gap_policy;       /* 0 reject, 1 zero, 2 interpolate */
  int overlap_reject;   /* 1: windows touching disagreeing overlaps are rejected */
  int64_t budget_bytes; /* a station's sample grid and this rank's windows at most (memory_budget_mb); 0 = none */
} sm__mseed_wopts;

/* Windows cut from one station: waveforms [n][C][T] and metadata [n], grown by append. */
typedef struct {
  float *w;
  sm__mseed_tmeta *m;
  int64_t n, cap;
  int64_t rejected_gap, rejected_overlap, gaps, overlaps; /* counters for the report */
} sm__mseed_out;

/* Assemble the station's continuous series from recs (all records of its channels, any order)
 * and append one trace per window (wins == NULL: fixed windows over the data). Local. */
sm_status sm__mseed_station_windows(sm_ctx *ctx, const sm__mseed_station *st, const sm__mseed_recs *recs,
                                    const sm__mseed_window *wins, int64_t nwins, const sm__mseed_wopts *o,
                                    sm__mseed_out *out);
void sm__mseed_out_free(sm__mseed_out *o);

#endif
