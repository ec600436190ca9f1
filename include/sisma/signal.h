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

/* Butterworth filters as second-order sections (src/signal/butter.c): the design of
 * scipy.signal.butter(order, Wn, btype, output='sos', fs=fs_hz), same section order and gain
 * placement (the overall gain multiplies section 0's numerator), and their application as
 * scipy.signal.sosfilt / sosfiltfilt. Each section is [b0 b1 b2 a0 a1 a2] with a0 == 1. */
#define SM_BUTTER_MAX_ORDER 32

typedef enum { SM_BAND_LOWPASS, SM_BAND_HIGHPASS, SM_BAND_BANDPASS } sm_band;

/* Design a Butterworth filter into sos [*n_sections][6]; room for (order + 1) / 2 sections
 * (lowpass, highpass) or order sections (bandpass) is enough. Corners in Hz: lowpass uses f_hi_hz,
 * highpass f_lo_hz (the other is ignored), bandpass both. Local. Returns SM_ERR_ARG for order
 * outside [1, SM_BUTTER_MAX_ORDER], a corner outside (0, fs/2) or f_lo >= f_hi for a bandpass. */
sm_status sm_butter_sos(sm_ctx *ctx, int order, double f_lo_hz, double f_hi_hz, double fs_hz, sm_band type,
                        double *sos, int *n_sections);

/* Filter x [n] in place by the ns sections sos [ns][6] (direct form II transposed, as
 * scipy.signal.sosfilt). zi [ns][2] (or NULL for rest) holds the initial state on entry and the
 * final state on return. Local. Returns SM_ERR_ARG for ns < 1 or n < 0. */
sm_status sm_sosfilt(sm_ctx *ctx, const double *sos, int ns, double *x, int64_t n, double *zi);

/* Default pad length of sm_sosfiltfilt: 3 * (2 ns + 1 - min(#(b2 == 0), #(a2 == 0))). Local. */
int sm_sosfiltfilt_padlen(const double *sos, int ns);

/* Zero-phase filtering of x [n] in place, as scipy.signal.sosfiltfilt with its defaults: odd
 * extension by sm_sosfiltfilt_padlen samples at each end, forward and backward passes started from
 * sosfilt_zi scaled by the first sample of each pass. Local. Returns SM_ERR_DATA when n <= padlen,
 * SM_ERR_ARG for ns outside [1, SM_BUTTER_MAX_ORDER], SM_ERR_NOMEM. */
sm_status sm_sosfiltfilt(sm_ctx *ctx, const double *sos, int ns, double *x, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
