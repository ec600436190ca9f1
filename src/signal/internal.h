/* Private parts shared by the signal stages (preprocess.c, features.c): the bad-trace policies
 * (qc.c), the per-trace picks and SNR (picks.c), the distribution summaries printed in the run
 * output (summary.c), and copying catalog columns (columns.c). */
#ifndef SISMA_SIGNAL_INTERNAL_H
#define SISMA_SIGNAL_INTERNAL_H

#include "sisma/catalog.h"
#include "sisma/config.h"
#include "sisma/shard.h"
#include "sisma/signal.h"

/* Why a trace was rejected (or SM__QC_OK); the text of each is what the preprocess_status column holds. */
typedef enum {
  SM__QC_OK = 0,
  SM__QC_NAN,
  SM__QC_INF,
  SM__QC_EMPTY,
  SM__QC_FLAT,
  SM__QC_RATE,
  SM__QC_COUNT
} sm__qc_reason;
extern const char *const sm__qc_text[SM__QC_COUNT];

typedef struct {
  int nan_fill;    /* 0 reject, 1 zero, 2 interpolate (nan_policy) */
  int inf_fill;    /* 0 reject, 1 zero (inf_policy) */
  int keep_flat;   /* flat_policy=keep: constant components are not rejected */
  int rate_ignore; /* rate_policy=ignore */
} sm__qc_policy;

/* Counts over traces, summed over ranks for the run summary. */
typedef struct {
  int64_t rejected[SM__QC_COUNT]; /* [SM__QC_OK] counts kept traces */
  int64_t with_nan, with_inf, gaps, filled_samples;
} sm__qc_counts;

/* Check one trace t [C][T] (float32, read from the catalog) and convert it into x [C][stride]
 * float64, filling NaN/Inf per policy; rate_hz is the trace's own rate column (NaN if none).
 * Returns the reason it is rejected, or SM__QC_OK. Local. */
sm__qc_reason sm__qc_trace(const sm__qc_policy *p, const float *t, int C, int64_t T, double rate_hz,
                           double catalog_rate_hz, double *x, int64_t stride, sm__qc_counts *counts);

/* Gather v [count] of every rank to rank 0 in rank (= trace) order; *all is malloc'd on rank 0
 * (NULL elsewhere), *n_all the total. Collective. */
sm_status sm__gather_f64(sm_ctx *ctx, const double *v, int64_t count, double **all, int64_t *n_all);

/* Summary line of the finite values of v [n] (count, mean, std, quantiles 5/25/50/75/95 %) and,
 * if bins > 0, a text histogram over [lo, hi] into out. Local (rank 0). */
void sm__describe(const double *v, int64_t n, const char *name, const char *unit, int bins, char *out, size_t out_size);

/* Copy every metadata column of src's traces r into dst (created with the same types and widths),
 * multiplying columns whose name ends in "_sample" by sample_scale and replacing
 * trace_sampling_rate_hz by new_rate_hz (when present); columns whose name starts with one of
 * the NULL-terminated prefixes `skip` are left out (the caller writes them anew). Collective. */
sm_status sm__copy_columns(sm_catalog *src, sm_catalog *dst, sm_range r, double sample_scale, double new_rate_hz,
                           const char *const *skip);

#endif
