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
/* sm_resample_poly in two steps, for many signals at one ratio (the filter of up to 2e5 taps is
 * designed once): design writes the filter of sm_resample_poly for up/down into *h (owned by the
 * caller, free()) and its half length; apply resamples x [n] into y as sm_resample_poly does, bit
 * for bit. Local. Design returns SM_ERR_ARG for bad factors, SM_ERR_NOMEM. */
sm_status sm_resample_poly_design(sm_ctx *ctx, int64_t up, int64_t down, double **h, int64_t *half_len);
void sm_resample_poly_apply(const double *x, int64_t n, int64_t up, int64_t down, const double *h, int64_t half_len,
                            double *y);

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
sm_status sm_butter_sos(sm_ctx *ctx, int order, double f_lo_hz, double f_hi_hz, double fs_hz, sm_band type, double *sos,
                        int *n_sections);

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

/* ---- trends, tapers, normalisation (src/signal/trend.c) ---- */

/* Subtract the mean of x [n] (scipy.signal.detrend(type='constant')). Local; n = 0 is a no-op. */
void sm_demean(double *x, int64_t n);

/* Subtract the least-squares line a + b i (scipy.signal.detrend(type='linear')). Local. */
void sm_detrend_linear(double *x, int64_t n);

/* Subtract the least-squares polynomial of degree `order` (0..SM_DETREND_MAX_ORDER) in the sample
 * index, fitted in float64 on the abscissa scaled to [-1, 1] by a QR (Householder) solve: the
 * result of numpy.polyfit/polyval detrending (ObsPy's detrend('polynomial', order=...)). Local.
 * Returns SM_ERR_ARG for a bad order, SM_ERR_DATA when n <= order. */
#define SM_DETREND_MAX_ORDER 8
sm_status sm_detrend_poly(sm_ctx *ctx, double *x, int64_t n, int order);

typedef enum { SM_TAPER_COSINE, SM_TAPER_HANN } sm_taper_type;

/* Half-width in samples of the taper ObsPy's Trace.taper uses: the smallest of
 * int(max_percentage * n), int(max_length_s * rate_hz) (when max_length_s > 0) and int(n / 2). Local. */
int64_t sm_taper_width(int64_t n, double max_percentage, double max_length_s, double rate_hz);

/* Taper both ends of x [n] in place with half-width w (sm_taper_width), exactly as ObsPy's
 * Trace.taper(side='both'): COSINE uses obspy.signal.invsim.cosine_taper(2w + 1, p=1.0), HANN uses
 * scipy.signal.windows.hann(2w + 1); the first w and last w values of that window multiply the
 * ends, the middle is untouched. Local. */
void sm_taper(double *x, int64_t n, int64_t w, sm_taper_type type);

/* The same taper in two parts, for many series of one length: the 2w weights (left ramp, then
 * right ramp) into win [2w] once, then applied to each x [n]. Local. */
void sm_taper_window(int64_t w, sm_taper_type type, double *win);
void sm_taper_apply(double *x, int64_t n, int64_t w, const double *win);

/* Largest |x| (peak) or population standard deviation (std) of x [n]; the scale used by
 * normalisation. Local. */
double sm_peak_abs(const double *x, int64_t n);
double sm_std(const double *x, int64_t n);

/* ---- Fourier transform and Fourier resampling (src/signal/fft.c) ---- */

/* In-place complex DFT of z [n] (any n >= 1; radix-2 for powers of two, Bluestein otherwise).
 * inverse = 1 computes sum z[k] exp(+2 pi i jk/n) without the 1/n factor. Local. Returns
 * SM_ERR_NOMEM. */
sm_status sm_fft(sm_ctx *ctx, double _Complex *z, int64_t n, int inverse);

/* Fourier resampling of x [n] to y [num], as scipy.signal.resample(x, num) (no window): keep the
 * first min(n, num)/2 + 1 rfft bins, split or join an even Nyquist bin, inverse rfft of length num,
 * times num / n. Local. */
sm_status sm_resample_fourier(sm_ctx *ctx, const double *x, int64_t n, int64_t num, double *y);

/* Decimate x [n] by the integer factor q into y [ceil(n / q)] (src/signal/resample.c), as scipy.signal.decimate(x, q,
 * ftype='fir', zero_phase=True): resample_poly(x, 1, q, window=firwin(20 q + 1, 1/q,
 * window='hamming')). Local. */
sm_status sm_decimate(sm_ctx *ctx, const double *x, int64_t n, int64_t q, double *y);

/* The same with SciPy's default filter, scipy.signal.decimate(x, q) (ftype='iir'): zero-phase
 * sosfiltfilt with cheby1(8, 0.05, 0.8 / q, output='sos'), then every q-th sample. Local.
 * Returns SM_ERR_DATA when n is not longer than the filter's pad (27 samples). */
sm_status sm_decimate_iir(sm_ctx *ctx, const double *x, int64_t n, int64_t q, double *y);

/* Chebyshev type I low-pass as second-order sections, scipy.signal.cheby1(order, rp_db, wn,
 * output='sos') with wn relative to Nyquist (0 < wn < 1). Local. Returns SM_ERR_ARG. */
sm_status sm_cheby1_lowpass_sos(sm_ctx *ctx, int order, double rp_db, double wn, double *sos, int *n_sections);

/* ---- detectors and pickers (src/signal/picker.c) ---- */

/* ObsPy classic_sta_lta: cf[i] = mean(x[i-nsta+1..i]^2) / mean(x[i-nlta+1..i]^2) for
 * i >= nlta - 1, 0 before; an LTA below DBL_MIN is taken as DBL_MIN. 1 <= nsta < nlta. Local.
 * Returns SM_ERR_ARG for bad window lengths. */
sm_status sm_sta_lta_classic(sm_ctx *ctx, const double *x, int64_t n, int64_t nsta, int64_t nlta, double *cf);

/* ObsPy recursive_sta_lta (Withers et al. 1998): sta = x^2/nsta + (1 - 1/nsta) sta, same for lta
 * with nlta, from sample 1 (sta = 0, lta = DBL_MIN at the start); cf = sta / lta, zeroed for
 * i < nlta. Local. */
sm_status sm_sta_lta_recursive(sm_ctx *ctx, const double *x, int64_t n, int64_t nsta, int64_t nlta, double *cf);

/* ObsPy trigger_onset: a trigger switches on at the first sample with cf > thr_on and off at the
 * last sample of the run with cf > thr_off that follows (a trigger still on at the end closes at
 * the last sample above thr_off); a trigger longer than max_len samples is cut to on + max_len
 * (max_len <= 0: no limit). Writes up to max_trig [on, off] pairs into trig [max_trig][2] and
 * returns how many triggers there are (may exceed max_trig). Local. */
int64_t sm_trigger_onset(const double *cf, int64_t n, double thr_on, double thr_off, int64_t max_len, int64_t *trig,
                         int64_t max_trig);

/* Akaike information criterion onset picker (Maeda 1985) on x [n]:
 * AIC(k) = k log var(x[0..k-1]) + (n - k - 1) log var(x[k..n-1]) for k = 1..n-1 (population
 * variances; aic[0], and any k where a variance is 0, are +inf). Returns the k of the minimum,
 * the first sample of the signal, or -1 if n < 4. aic [n] may be NULL. Local. */
int64_t sm_aic_pick(const double *x, int64_t n, double *aic);

/* P and S picks on one 3-component (or single-component) trace (src/signal/picks.c): P by an
 * STA/LTA trigger on the vertical refined by AIC on [on - aic_before, on + aic_after); S the same
 * on the horizontal envelope sqrt(N^2 + E^2) from P + s_min_gap, AIC on the horizontal with more
 * energy. Confidence 1 - thr_on / max(cf over the trigger). Windows in samples. */
typedef struct {
  int recursive;                 /* 1 recursive, 0 classic STA/LTA */
  int64_t nsta, nlta, max_len;   /* windows; trigger cut (0: none) */
  double thr_on, thr_off;        /* trigger thresholds */
  int64_t aic_before, aic_after; /* AIC window around the trigger-on sample */
  int64_t s_min_gap;             /* S is searched from P + s_min_gap */
  int z;                         /* index of the vertical component */
} sm_pick_params;

typedef struct {
  double p, p_conf, s, s_conf; /* samples (NaN: none), confidence in [0, 1] */
} sm_picks;

/* Pick one trace x [C][stride] of n samples; cf and tmp are scratch [n]. Local. Returns SM_ERR_ARG
 * for bad STA/LTA windows. */
sm_status sm_pick_trace(sm_ctx *ctx, const sm_pick_params *pp, const double *x, int C, int64_t stride, int64_t n,
                        double *cf, double *tmp, sm_picks *out);

/* Signal-to-noise ratio in dB around sample `pick` of x [n]: 10 log10(mean(x[pick ..
 * pick+sig_len)^2) / mean(x[pick-gap-noise_len .. pick-gap)^2)). NaN when a window falls outside
 * the trace or the noise power is 0. Local. */
double sm_snr_db(const double *x, int64_t n, int64_t pick, int64_t noise_len, int64_t gap, int64_t sig_len);

/* Zero-phase filtering of m series at once, x [m][stride] (n samples used per row) in place, each exactly as
 * sm_sosfiltfilt; 4 series run in the lanes of one vector so the recursions of different series
 * overlap (the loop is latency-bound per series). work must hold 4 * (n + 2 padlen) doubles
 * (sm_sosfiltfilt_work). Local. Returns SM_ERR_DATA when n <= padlen, SM_ERR_ARG for bad ns. */
sm_status sm_sosfiltfilt_batch(sm_ctx *ctx, const double *sos, int ns, double *x, int64_t m, int64_t n, int64_t stride,
                               double *work);
int64_t sm_sosfiltfilt_work(const double *sos, int ns, int64_t n);

/* Causal filtering of m series x [m][stride] (n samples per row) in place from rest, each exactly as
 * sm_sosfilt(..., zi = NULL), four series per vector. work holds 4 n doubles. Local. */
sm_status sm_sosfilt_batch(sm_ctx *ctx, const double *sos, int ns, double *x, int64_t m, int64_t n, int64_t stride,
                           double *work);

/* ObsPy's zero-phase filtering (Trace.filter(..., zerophase=True)): sosfilt from rest forward, then
 * sosfilt from rest over the reversed result, with no edge padding. Same arguments as
 * sm_sosfilt_batch. Local. */
sm_status sm_sosfilt_fb_batch(sm_ctx *ctx, const double *sos, int ns, double *x, int64_t m, int64_t n, int64_t stride,
                              double *work);

/* ---- processing chains (src/signal/chain.c) ----
 * A chain is the text of the preprocess stage's `chain` key: steps separated by commas (a YAML
 * list joins its items with commas), each a name and key=value parameters, applied in order:
 *   demean | detrend [type=linear|constant|polynomial] [order=N]
 *   taper [type=hann|cosine] [max_percentage=0.05] [max_length=S]
 *   bandpass freqmin=HZ freqmax=HZ [corners=4] [zerophase=false|true|obspy] | lowpass freq=HZ [...]
 *   highpass freq=HZ [...] | resample rate=HZ [method=poly|fourier] | decimate factor=Q [ftype=iir|fir]
 *   normalize [type=peak|std] [mode=component|all]
 * Parameter names and defaults are ObsPy's (Trace.taper, Trace.filter, Trace.resample). */
#define SM_CHAIN_MAX_STEPS 32

typedef enum {
  SM_STEP_DEMEAN,
  SM_STEP_DETREND,
  SM_STEP_TAPER,
  SM_STEP_FILTER,
  SM_STEP_RESAMPLE,
  SM_STEP_DECIMATE,
  SM_STEP_NORMALIZE
} sm_step_op;

typedef struct {
  sm_step_op op;
  int kind;                           /* detrend: 0 constant 1 linear 2 polynomial; taper: sm_taper_type;
                                         resample: 0 poly 1 fourier; normalize: 0 peak 1 std */
  int order;                          /* detrend polynomial order, filter corners */
  int zerophase, all_components;      /* filter; normalize mode=all */
  double f1, f2, p1, p2;              /* filter corners Hz; taper max_percentage, max_length s */
  double sos[SM_BUTTER_MAX_ORDER][6]; /* filter sections, designed for fs_in */
  int ns;
  int64_t up, down;     /* resample_poly factors; decimate: down */
  int64_t n_in, n_out;  /* samples per component before / after the step */
  double fs_in, fs_out; /* Hz */
  char text[96];        /* the step as written, for messages */
} sm_step;

typedef struct {
  int n_steps;
  sm_step step[SM_CHAIN_MAX_STEPS];
  int64_t n_in, n_out, max_len; /* samples per component: input, output, largest in between */
  double fs_in, fs_out;         /* Hz */
  int64_t work;                 /* doubles of filter workspace sm_chain_apply needs */
} sm_chain;

/* Parse `text` and plan it for series of n samples at fs_hz: every step validated (corners below
 * Nyquist at that step's rate, a rational resampling ratio, series longer than the zero-phase pad)
 * and its filter designed. Local. Errors are SM_ERR_CONFIG naming `what` (e.g. "preprocess.chain"),
 * the step and the parameter, with the near matches of a misspelt name. */
sm_status sm_chain_parse(sm_ctx *ctx, const char *what, const char *text, int64_t n, double fs_hz, sm_chain *ch);

/* Apply the chain to `count` traces of C components: a [count][C][max_len] holds the input
 * (n_in samples per row) and b is scratch of the same size; work holds ch->work doubles. On return
 * *out points at a or b, holding the output rows (n_out samples each, row stride max_len). scale
 * [count][C] (or NULL) receives the product of the divisors the normalize steps applied to each
 * row (1 without normalisation), so amplitudes can be restored. Local. */
sm_status sm_chain_apply(sm_ctx *ctx, const sm_chain *ch, int64_t count, int C, double *a, double *b, double *work,
                         double **out, double *scale);

/* ---- per-trace features (src/signal/features.c) ----
 * Windows hang on the P and S picks (samples; NaN when unknown): signal [P, P + signal_s),
 * noise [P - noise_s, P). Features, in this order (docs/signal.md has the definitions):
 *   log10_peak_<c> per component (whole trace), rms and log10_energy (signal window, all
 *   components), duration_s (P to the last sample whose envelope exceeds duration_factor x the
 *   noise RMS), dominant_freq_hz and mean_freq_hz (vertical power spectrum of the signal window
 *   in [fmin, fmax]), spec_ratio_<lo>_<hi> per band (log10 of the band's share of the power in
 *   [fmin, fmax]), corner_freq_hz (Brune omega-square fit), log10_ps_ratio (peak vertical in the
 *   P window over peak horizontal in the S window), s_minus_p_s. */
#define SM_FEATURE_MAX_BANDS 8

typedef struct {
  double noise_s, signal_s, ps_window_s; /* window lengths, s */
  double duration_factor, envelope_s;    /* duration threshold (x noise RMS) and envelope window, s */
  double fmin_hz, fmax_hz;               /* spectral range */
  int n_bands;
  double band_hz[SM_FEATURE_MAX_BANDS][2];
  int velocity; /* 1: traces are velocity (Brune model of a velocity spectrum), 0 displacement */
  int z;        /* index of the vertical component */
} sm_feature_params;

/* Number of features for C components, and the name of feature k (into out). Local. */
int sm_feature_count(const sm_feature_params *fp, int C);
void sm_feature_name(const sm_feature_params *fp, const char *component_order, int k, char *out, size_t out_size);

/* Doubles of scratch sm_trace_features needs for n samples. Local. */
int64_t sm_feature_work(int64_t n);

/* Features of one trace x [C][stride] (n samples per component at fs_hz) with picks p, s (samples,
 * NaN if unknown) into feat [sm_feature_count]; a feature that cannot be computed is NaN. work
 * holds sm_feature_work(n) doubles. Local. */
sm_status sm_trace_features(sm_ctx *ctx, const sm_feature_params *fp, const double *x, int C, int64_t stride, int64_t n,
                            double fs_hz, double p, double s, double *feat, double *work);

#ifdef __cplusplus
}
#endif
#endif
