/* Signal processing on float32/float64 series: library functions with no MPI and no I/O.
 *
 * Resampling: sm_resample_poly is the polyphase FIR resampler of scipy.signal.resample_poly
 * (up-sample by `up`, low-pass with a Kaiser-windowed sinc, down-sample by `down`), with the
 * same filter design and the same output alignment, so its results match SciPy to float
 * rounding. Start reading at sm_resample_poly. All functions are local. */
#ifndef SISMA_SIGNAL_H
#define SISMA_SIGNAL_H

#include "sisma/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Output length of sm_resample_poly for n input samples: ceil(n * up / down) (after reducing
 * up/down by their gcd). Local. */
int64_t sm_resample_poly_len(int64_t n, int64_t up, int64_t down);

/* Resample x [n] by the rational factor up/down into y [sm_resample_poly_len(n, up, down)].
 * Filter: firwin(2*half_len + 1, 1/max(up,down), window=("kaiser", 5.0)) * up with
 * half_len = 10 * max(up, down) (up, down reduced by their gcd), exactly as SciPy; the signal is
 * taken as zero outside [0, n). up, down >= 1; up == down copies. Local. Returns SM_ERR_ARG for
 * bad factors, SM_ERR_NOMEM. */
sm_status sm_resample_poly(sm_ctx *ctx, const double *x, int64_t n, int64_t up, int64_t down, double *y);

/* Find up/down (reduced, each <= max_factor) with rate_out / rate_in == up / down within a relative
 * 1e-9; returns 0 on success, -1 if no such small fraction exists. Local. */
int sm_resample_ratio(double rate_in_hz, double rate_out_hz, int64_t max_factor, int64_t *up, int64_t *down);

#ifdef __cplusplus
}
#endif
#endif
