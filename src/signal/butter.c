/* Butterworth IIR filters as second-order sections, and their zero-phase application.
 *
 * Design (scipy.signal.butter(N, Wn, btype, output='sos', fs=fs), SciPy 1.10):
 *   1. analog prototype: poles p_m = -exp(i pi m / 2N), m = -N+1, -N+3, ..., N-1, no zeros, k = 1;
 *   2. prewarp the corners, w = 4 tan(pi f / fs) (bilinear transform with "fs" = 2 on normalised
 *      frequency 2f/fs);
 *   3. lowpass/highpass/bandpass transform of the analog zpk (lp2lp/lp2hp/lp2bp);
 *   4. bilinear transform z = (4 + s) / (4 - s), zeros at infinity mapped to z = -1;
 *   5. zpk -> sos with SciPy's 'nearest' pairing: poles closest to the unit circle go last, each
 *      paired with its nearest zero; the overall gain multiplies section 0's numerator.
 * The poles and zeros pass through the same steps, orderings and tie-breaks as SciPy, so the
 * coefficients agree to float rounding (tests/signal/golden/butter.txt, dev/golden_signal.py).
 *
 * Filtering: sm_sosfilt is direct form II transposed per section (scipy.signal.sosfilt);
 * sm_sosfiltfilt is scipy.signal.sosfiltfilt with its defaults (odd extension by padlen samples,
 * initial state sosfilt_zi scaled by the first sample of each pass). Start at sm_butter_sos. */
#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sisma/signal.h"

#define MAXR (2 * SM_BUTTER_MAX_ORDER + 2) /* roots after bandpass doubling and odd padding */

typedef struct {
  double complex v[MAXR];
  int n;
} roots;

static void roots_del(roots *r, int i) {
  memmove(r->v + i, r->v + i + 1, (size_t)(r->n - i - 1) * sizeof r->v[0]);
  r->n--;
}

static int is_real(double complex z) { return cimag(z) == 0.0; }

/* numpy.lexsort((|imag|, real)) order: by real part, then |imag| (insertion sort is stable). */
static void sort_real_absimag(roots *r) {
  for (int i = 1; i < r->n; i++) {
    double complex t = r->v[i];
    int j = i - 1;
    while (j >= 0 &&
           (creal(r->v[j]) > creal(t) || (creal(r->v[j]) == creal(t) && fabs(cimag(r->v[j])) > fabs(cimag(t))))) {
      r->v[j + 1] = r->v[j];
      j--;
    }
    r->v[j + 1] = t;
  }
}

/* SciPy's _cplxreal followed by concatenate(zc, zr): one root per conjugate pair (positive
 * imaginary part, averaged with its partner) sorted by real part, then the real roots sorted.
 * Butterworth roots come in exact pairs with distinct real parts, so the run re-sorting of SciPy
 * reduces to the stable sort here. Returns -1 if a root has no conjugate. */
static int cplx_real(roots *r) {
  const double tol = 100 * 2.220446049250313e-16;
  sort_real_absimag(r);
  roots zr = {.n = 0}, zp = {.n = 0}, zn = {.n = 0};
  for (int i = 0; i < r->n; i++) {
    double complex z = r->v[i];
    if (fabs(cimag(z)) <= tol * cabs(z))
      zr.v[zr.n++] = creal(z);
    else if (cimag(z) > 0)
      zp.v[zp.n++] = z;
    else
      zn.v[zn.n++] = z;
  }
  if (zp.n != zn.n) return -1;
  /* zp, zn are each ordered by real part; pair them in order */
  r->n = 0;
  for (int i = 0; i < zp.n; i++)
    r->v[r->n++] = (zp.v[i] + conj(zn.v[i])) / 2;
  for (int i = 0; i < zr.n; i++)
    r->v[r->n++] = zr.v[i];
  return 0;
}

/* argmin |1 - |p|| over the roots (first on ties); only == 1 restricts to real roots. */
static int idx_worst(const roots *p, int only_real) {
  int best = -1;
  double bd = INFINITY;
  for (int i = 0; i < p->n; i++) {
    if (only_real && !is_real(p->v[i])) continue;
    double d = fabs(1.0 - cabs(p->v[i]));
    if (d < bd) bd = d, best = i;
  }
  return best;
}

/* SciPy's _nearest_real_complex_idx: nearest root of z to `to`; which 0 any, 1 real, 2 complex. */
static int nearest(const roots *z, double complex to, int which) {
  int best = -1;
  double bd = INFINITY;
  for (int i = 0; i < z->n; i++) {
    if ((which == 1 && !is_real(z->v[i])) || (which == 2 && is_real(z->v[i]))) continue;
    double d = cabs(z->v[i] - to);
    if (d < bd) bd = d, best = i;
  }
  return best;
}

/* One section from zeros zs [nz <= 2] and poles ps [np <= 2] (SciPy's _single_zpksos with k = 1):
 * numpy.poly coefficients, right-aligned in b and a. */
static void single_sos(const double complex *zs, int nz, const double complex *ps, int np_, double *s) {
  double b[3] = {0, 0, 0}, a[3] = {0, 0, 0};
  double complex c1, c2;
  c1 = nz == 2 ? -zs[1] + -zs[0] : nz == 1 ? -zs[0] : 0, c2 = nz == 2 ? zs[0] * zs[1] : 0;
  double pb[3] = {1, creal(c1), creal(c2)};
  c1 = np_ == 2 ? -ps[1] + -ps[0] : np_ == 1 ? -ps[0] : 0, c2 = np_ == 2 ? ps[0] * ps[1] : 0;
  double pa[3] = {1, creal(c1), creal(c2)};
  for (int i = 0; i <= nz; i++)
    b[3 - (nz + 1) + i] = pb[i];
  for (int i = 0; i <= np_; i++)
    a[3 - (np_ + 1) + i] = pa[i];
  memcpy(s, b, sizeof b), memcpy(s + 3, a, sizeof a);
}

static double complex take(roots *r, int i) {
  double complex v = r->v[i];
  roots_del(r, i);
  return v;
}

static int count_real(const roots *r) {
  int c = 0;
  for (int i = 0; i < r->n; i++)
    c += is_real(r->v[i]);
  return c;
}

/* SciPy's zpk2sos(z, p, k, pairing='nearest') for a digital filter; len(z) == len(p) on entry
 * (Butterworth after the bilinear transform). sos [*ns][6]. */
static int zpk2sos(roots *z, roots *p, double k, double *sos, int *ns) {
  int n = (p->n + 1) / 2;
  if (p->n % 2 == 1) p->v[p->n++] = 0, z->v[z->n++] = 0;
  if (cplx_real(z) || cplx_real(p)) return -1;
  for (int si = n - 1; si >= 0; si--) {
    double complex p1 = take(p, idx_worst(p, 0)), zz[2], pp[2] = {p1, 0};
    double *s = sos + 6 * si;
    if (is_real(p1) && count_real(p) == 0) { /* last real pole: first-order section */
      zz[0] = take(z, nearest(z, p1, 1)), zz[1] = 0;
      single_sos(zz, 2, pp, 2, s);
    } else if (p->n + 1 == z->n && !is_real(p1) && count_real(p) == 1 && count_real(z) == 1) {
      zz[0] = take(z, nearest(z, p1, 2)), zz[1] = conj(zz[0]), pp[1] = conj(p1);
      single_sos(zz, 2, pp, 2, s);
    } else {
      pp[1] = is_real(p1) ? take(p, idx_worst(p, 1)) : conj(p1);
      if (z->n == 0) {
        single_sos(zz, 0, pp, 2, s);
        continue;
      }
      zz[0] = take(z, nearest(z, p1, 0));
      if (!is_real(zz[0]))
        zz[1] = conj(zz[0]), single_sos(zz, 2, pp, 2, s);
      else if (z->n > 0)
        zz[1] = take(z, nearest(z, p1, 1)), single_sos(zz, 2, pp, 2, s);
      else
        single_sos(zz, 1, pp, 2, s);
    }
  }
  for (int i = 0; i < 3; i++)
    sos[i] *= k;
  *ns = n;
  return 0;
}

/* bilinear_zpk with fs = 2 (zeros at infinity -> -1), then zpk2sos. */
static sm_status digital_sos(sm_ctx *ctx, roots *z, roots *p, double k, double *sos, int *n_sections) {
  double complex pz = 1, pp = 1;
  for (int i = 0; i < z->n; i++)
    pz *= 4 - z->v[i];
  for (int i = 0; i < p->n; i++)
    pp *= 4 - p->v[i];
  k *= creal(pz / pp);
  for (int i = 0; i < z->n; i++)
    z->v[i] = (4 + z->v[i]) / (4 - z->v[i]);
  for (int i = 0; i < p->n; i++)
    p->v[i] = (4 + p->v[i]) / (4 - p->v[i]);
  while (z->n < p->n)
    z->v[z->n++] = -1;
  SM_CHECK(ctx, zpk2sos(z, p, k, sos, n_sections) == 0, SM_ERR_INTERNAL, "filter design: unpaired complex root");
  return SM_OK;
}

sm_status sm_butter_sos(sm_ctx *ctx, int order, double f_lo_hz, double f_hi_hz, double fs_hz, sm_band type, double *sos,
                        int *n_sections) {
  SM_CHECK(ctx, order >= 1 && order <= SM_BUTTER_MAX_ORDER, SM_ERR_ARG, "butter: order %d outside [1, %d]", order,
           SM_BUTTER_MAX_ORDER);
  SM_CHECK(ctx, fs_hz > 0 && isfinite(fs_hz), SM_ERR_ARG, "butter: sampling rate %g Hz", fs_hz);
  int lo = type != SM_BAND_LOWPASS, hi = type != SM_BAND_HIGHPASS;
  SM_CHECK(ctx, type == SM_BAND_LOWPASS || type == SM_BAND_HIGHPASS || type == SM_BAND_BANDPASS, SM_ERR_ARG,
           "butter: unknown band type %d", (int)type);
  SM_CHECK(ctx, !lo || (f_lo_hz > 0 && f_lo_hz < fs_hz / 2), SM_ERR_ARG,
           "butter: low corner %g Hz must be in (0, fs/2 = %g Hz)", f_lo_hz, fs_hz / 2);
  SM_CHECK(ctx, !hi || (f_hi_hz > 0 && f_hi_hz < fs_hz / 2), SM_ERR_ARG,
           "butter: high corner %g Hz must be in (0, fs/2 = %g Hz)", f_hi_hz, fs_hz / 2);
  SM_CHECK(ctx, type != SM_BAND_BANDPASS || f_lo_hz < f_hi_hz, SM_ERR_ARG,
           "butter: bandpass needs f_lo < f_hi, got %g >= %g Hz", f_lo_hz, f_hi_hz);
  roots p = {.n = 0}, z = {.n = 0};
  for (int m = -order + 1; m < order; m += 2)
    p.v[p.n++] = -cexp(I * M_PI * m / (2.0 * order));
  double k = 1, wlo = 4 * tan(M_PI * (2 * f_lo_hz / fs_hz) / 2), whi = 4 * tan(M_PI * (2 * f_hi_hz / fs_hz) / 2);
  if (type == SM_BAND_LOWPASS) { /* lp2lp_zpk */
    for (int i = 0; i < p.n; i++)
      p.v[i] *= whi;
    k *= pow(whi, order);
  } else if (type == SM_BAND_HIGHPASS) { /* lp2hp_zpk: s -> w/s, zeros at the origin */
    double complex prod = 1;
    for (int i = 0; i < p.n; i++)
      prod *= -p.v[i];
    for (int i = 0; i < p.n; i++)
      p.v[i] = wlo / p.v[i], z.v[z.n++] = 0;
    k *= creal(1 / prod);
  } else { /* lp2bp_zpk: s -> (s^2 + w0^2) / (s bw) */
    double bw = whi - wlo, wo = sqrt(wlo * whi);
    double complex plp[SM_BUTTER_MAX_ORDER];
    for (int i = 0; i < order; i++)
      plp[i] = p.v[i] * bw / 2;
    for (int i = 0; i < order; i++)
      p.v[i] = plp[i] + csqrt(plp[i] * plp[i] - wo * wo);
    for (int i = 0; i < order; i++)
      p.v[order + i] = plp[i] - csqrt(plp[i] * plp[i] - wo * wo);
    p.n = 2 * order;
    for (int i = 0; i < order; i++)
      z.v[z.n++] = 0;
    k *= pow(bw, order);
  }
  return digital_sos(ctx, &z, &p, k, sos, n_sections);
}

/* Chebyshev type I low-pass (scipy.signal.cheby1(order, rp, Wn, output='sos'), Wn relative to
 * Nyquist): SciPy's cheb1ap prototype, eps = sqrt(10^(rp/10) - 1), mu = asinh(1/eps) / N,
 * p_m = -sinh(mu + i pi m / 2N) for m = -N+1, -N+3, ..., N-1, k = Re prod(-p) (divided by
 * sqrt(1 + eps^2) for even N), then the same lp2lp, bilinear and zpk2sos steps as the Butterworth. */
sm_status sm_cheby1_lowpass_sos(sm_ctx *ctx, int order, double rp_db, double wn, double *sos, int *n_sections) {
  SM_CHECK(ctx, order >= 1 && order <= SM_BUTTER_MAX_ORDER, SM_ERR_ARG, "cheby1: order %d outside [1, %d]", order,
           SM_BUTTER_MAX_ORDER);
  SM_CHECK(ctx, wn > 0 && wn < 1 && rp_db > 0, SM_ERR_ARG, "cheby1: Wn %g must be in (0, 1), ripple %g dB > 0", wn,
           rp_db);
  double eps = sqrt(pow(10, 0.1 * rp_db) - 1), mu = asinh(1 / eps) / order, w = 4 * tan(M_PI * wn / 2);
  roots p = {.n = 0}, z = {.n = 0};
  double complex prod = 1;
  for (int m = -order + 1; m < order; m += 2)
    p.v[p.n++] = -csinh(mu + I * M_PI * m / (2.0 * order));
  for (int i = 0; i < p.n; i++)
    prod *= -p.v[i];
  double k = creal(prod);
  if (order % 2 == 0) k /= sqrt(1 + eps * eps);
  for (int i = 0; i < p.n; i++) /* lp2lp_zpk */
    p.v[i] *= w;
  k *= pow(w, order);
  return digital_sos(ctx, &z, &p, k, sos, n_sections);
}

sm_status sm_sosfilt(sm_ctx *ctx, const double *sos, int ns, double *x, int64_t n, double *zi) {
  SM_CHECK(ctx, ns >= 1 && n >= 0, SM_ERR_ARG, "sosfilt: %d sections, %lld samples", ns, (long long)n);
  for (int s = 0; s < ns; s++) {
    const double *c = sos + 6 * s; /* [b0 b1 b2 1 a1 a2]: a0 == 1 as SciPy requires */
    double z0 = zi ? zi[2 * s] : 0, z1 = zi ? zi[2 * s + 1] : 0;
    for (int64_t i = 0; i < n; i++) {
      double xi = x[i], y = c[0] * xi + z0;
      z0 = c[1] * xi - c[4] * y + z1;
      z1 = c[2] * xi - c[5] * y;
      x[i] = y;
    }
    if (zi) zi[2 * s] = z0, zi[2 * s + 1] = z1;
  }
  return SM_OK;
}

int sm_sosfiltfilt_padlen(const double *sos, int ns) {
  int zb = 0, za = 0;
  for (int s = 0; s < ns; s++)
    zb += sos[6 * s + 2] == 0, za += sos[6 * s + 5] == 0;
  return 3 * (2 * ns + 1 - (zb < za ? zb : za));
}

/* scipy.signal.sosfilt_zi: the steady state of each section for a unit step, scaled by the DC
 * gain of the sections before it. Per section (lfilter_zi): (I - A^T) zi = b[1:] - a[1:] b0 with A
 * the companion matrix of a, solved in closed form for 2x2. zi [ns][2]. */
static void sosfilt_zi(const double *sos, int ns, double *zi) {
  double scale = 1;
  for (int s = 0; s < ns; s++) {
    const double *b = sos + 6 * s, *a = b + 3;
    double B0 = b[1] - a[1] * b[0], B1 = b[2] - a[2] * b[0];
    double z0 = (B0 + B1) / (1 + a[1] + a[2]);
    zi[2 * s] = scale * z0, zi[2 * s + 1] = scale * (B1 - a[2] * z0);
    scale *= (b[0] + b[1] + b[2]) / (a[0] + a[1] + a[2]);
  }
}

sm_status sm_sosfiltfilt(sm_ctx *ctx, const double *sos, int ns, double *x, int64_t n) {
  SM_CHECK(ctx, ns >= 1 && ns <= SM_BUTTER_MAX_ORDER, SM_ERR_ARG, "sosfiltfilt: %d sections", ns);
  int64_t pad = sm_sosfiltfilt_padlen(sos, ns), m = n + 2 * pad;
  SM_CHECK(ctx, n > pad, SM_ERR_DATA,
           "sosfiltfilt: signal of %lld samples must be longer than padlen = %lld (3 x filter taps)", (long long)n,
           (long long)pad);
  double *e = NULL, zi0[2 * SM_BUTTER_MAX_ORDER], zi[2 * SM_BUTTER_MAX_ORDER];
  SM_TRY(ctx, SM_ALLOC(ctx, e, m));
  /* odd extension: 2 x[0] - x[pad..1], x, 2 x[n-1] - x[n-2..n-1-pad] */
  for (int64_t i = 0; i < pad; i++)
    e[i] = 2 * x[0] - x[pad - i];
  memcpy(e + pad, x, (size_t)n * sizeof *x);
  for (int64_t i = 0; i < pad; i++)
    e[pad + n + i] = 2 * x[n - 1] - x[n - 2 - i];
  sosfilt_zi(sos, ns, zi0);
  for (int i = 0; i < 2 * ns; i++)
    zi[i] = zi0[i] * e[0];
  sm_status st = sm_sosfilt(ctx, sos, ns, e, m, zi);
  for (int64_t i = 0; st == SM_OK && i < m / 2; i++) { /* reverse */
    double t = e[i];
    e[i] = e[m - 1 - i], e[m - 1 - i] = t;
  }
  for (int i = 0; i < 2 * ns; i++)
    zi[i] = zi0[i] * e[0];
  if (st == SM_OK) st = sm_sosfilt(ctx, sos, ns, e, m, zi);
  for (int64_t i = 0; st == SM_OK && i < n; i++)
    x[i] = e[m - 1 - pad - i];
  free(e);
  return st;
}

/* ---- several series at once ----
 * The recursion of one series is a chain of dependent multiply-adds (latency-bound); four series
 * in the lanes of a vector run four independent chains in the same instructions. Samples outer,
 * sections inner (as SciPy's sosfilt), so section s of sample i overlaps section s-1 of i+1. */
typedef double v4d __attribute__((vector_size(32)));
typedef double v4du __attribute__((vector_size(32), aligned(8))); /* for malloc'd memory */

int64_t sm_sosfiltfilt_work(const double *sos, int ns, int64_t n) {
  return 4 * (n + 2 * (int64_t)sm_sosfiltfilt_padlen(sos, ns));
}

/* One pass over e [m] (interleaved lanes) in the direction dir (+1 forward, -1 backward), each
 * section started from zi0 scaled by the pass's first sample. */
__attribute__((target_clones("avx2", "default"))) static void pass4(const double *sos, int ns, const double *zi0,
                                                                    v4du *e, int64_t m, int dir) {
  v4d z0[SM_BUTTER_MAX_ORDER], z1[SM_BUTTER_MAX_ORDER];
  int64_t i0 = dir > 0 ? 0 : m - 1;
  for (int s = 0; s < ns; s++)
    z0[s] = zi0[2 * s] * e[i0], z1[s] = zi0[2 * s + 1] * e[i0];
  for (int64_t k = 0, i = i0; k < m; k++, i += dir) {
    v4d v = e[i];
    for (int s = 0; s < ns; s++) {
      const double *c = sos + 6 * s;
      v4d y = c[0] * v + z0[s];
      z0[s] = c[1] * v - c[4] * y + z1[s];
      z1[s] = c[2] * v - c[5] * y;
      v = y;
    }
    e[i] = v;
  }
}

/* Causal passes from rest over m series: forward, then (both = 1) backward. */
static sm_status rest_batch(sm_ctx *ctx, const double *sos, int ns, double *x, int64_t m, int64_t n, int64_t stride,
                            double *work, int both) {
  SM_CHECK(ctx, ns >= 1 && ns <= SM_BUTTER_MAX_ORDER && n >= 0, SM_ERR_ARG, "sosfilt: %d sections, %lld samples", ns,
           (long long)n);
  double zero[2 * SM_BUTTER_MAX_ORDER] = {0};
  v4du *e = (v4du *)work;
  for (int64_t g = 0; g < m; g += 4) {
    int lanes = m - g < 4 ? (int)(m - g) : 4;
    for (int l = 0; l < 4; l++) { /* idle lanes repeat lane 0 */
      const double *xs = x + (g + (l < lanes ? l : 0)) * stride;
      for (int64_t i = 0; i < n; i++)
        work[4 * i + l] = xs[i];
    }
    pass4(sos, ns, zero, e, n, 1); /* from rest: the zero state scaled by anything stays zero */
    if (both) pass4(sos, ns, zero, e, n, -1);
    for (int l = 0; l < lanes; l++) {
      double *xs = x + (g + l) * stride;
      for (int64_t i = 0; i < n; i++)
        xs[i] = work[4 * i + l];
    }
  }
  return SM_OK;
}

sm_status sm_sosfilt_batch(sm_ctx *ctx, const double *sos, int ns, double *x, int64_t m, int64_t n, int64_t stride,
                           double *work) {
  return rest_batch(ctx, sos, ns, x, m, n, stride, work, 0);
}

sm_status sm_sosfilt_fb_batch(sm_ctx *ctx, const double *sos, int ns, double *x, int64_t m, int64_t n, int64_t stride,
                              double *work) {
  return rest_batch(ctx, sos, ns, x, m, n, stride, work, 1);
}

sm_status sm_sosfiltfilt_batch(sm_ctx *ctx, const double *sos, int ns, double *x, int64_t m, int64_t n, int64_t stride,
                               double *work) {
  SM_CHECK(ctx, ns >= 1 && ns <= SM_BUTTER_MAX_ORDER, SM_ERR_ARG, "sosfiltfilt: %d sections", ns);
  int64_t pad = sm_sosfiltfilt_padlen(sos, ns), me = n + 2 * pad;
  SM_CHECK(ctx, n > pad, SM_ERR_DATA,
           "sosfiltfilt: signal of %lld samples must be longer than padlen = %lld (3 x filter taps)", (long long)n,
           (long long)pad);
  double zi0[2 * SM_BUTTER_MAX_ORDER];
  sosfilt_zi(sos, ns, zi0);
  v4du *e = (v4du *)work; /* [me] interleaved; work is malloc'd doubles: 8-byte aligned only */
  for (int64_t g = 0; g < m; g += 4) {
    int lanes = m - g < 4 ? (int)(m - g) : 4;
    double *e_d = work;
    for (int l = 0; l < 4; l++) { /* odd extension, as sm_sosfiltfilt; idle lanes repeat lane 0 */
      const double *xs = x + (g + (l < lanes ? l : 0)) * stride;
      for (int64_t i = 0; i < pad; i++)
        e_d[4 * i + l] = 2 * xs[0] - xs[pad - i];
      for (int64_t i = 0; i < n; i++)
        e_d[4 * (pad + i) + l] = xs[i];
      for (int64_t i = 0; i < pad; i++)
        e_d[4 * (pad + n + i) + l] = 2 * xs[n - 1] - xs[n - 2 - i];
    }
    pass4(sos, ns, zi0, e, me, 1);
    pass4(sos, ns, zi0, e, me, -1);
    for (int l = 0; l < lanes; l++) {
      double *xs = x + (g + l) * stride;
      for (int64_t i = 0; i < n; i++)
        xs[i] = e_d[4 * (pad + i) + l];
    }
  }
  return SM_OK;
}
