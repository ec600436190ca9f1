/* Samples of one synthetic record from its path parameters (docs/synthetic.md, "Waveforms").
 *
 * A record is coloured noise plus three source bursts: P (radial-vertical), SV and SH. Each
 * burst is white noise shaped by the Brune source spectrum (a differentiator and a double
 * one-pole low-pass at the corner frequency fc give |V(f)| ~ f / (1 + (f/fc)^2), the far-field
 * velocity spectrum of Brune 1970), an attenuation low-pass at 1/(pi t*), and an envelope
 * exp(-t/tau) - exp(-t/tau_rise). The three components run in the lanes of one 4-float vector,
 * so one pass of recursive filters serves Z, N and E. White noise comes from xorshift128 lanes
 * seeded from keys that are Philox draws of the trace's stream, so every sample is a pure
 * function of (seed, trace). No transcendental call runs per sample. */
#include <math.h>
#include <string.h>

#include "internal.h"

/* SplitMix64 finaliser (Steele, Lea, Flood 2014): a bijective 64-bit mix, used for seeding. */
static inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}

typedef uint32_t v4u __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

/* Marsaglia's xorshift128 (J. Stat. Softw. 8(14), 2003) run in four independent lanes: seven
 * shift/xor operations give four 32-bit draws, cheap enough to feed a recursive filter at
 * every sample. The four lanes' states are seeded by SplitMix64 from the trace's key. */
typedef struct {
  v4u x, y, z, w;
} white_gen;

static void white_init(white_gen *g, uint64_t key) {
  uint32_t s[16];
  for (int i = 0; i < 8; i++) {
    uint64_t z = mix64(key + (uint64_t)(i + 1) * UINT64_C(0x9E3779B97F4A7C15));
    s[2 * i] = (uint32_t)z | 1u, s[2 * i + 1] = (uint32_t)(z >> 32); /* | 1: never all zero */
  }
  g->x = (v4u){s[0], s[1], s[2], s[3]}, g->y = (v4u){s[4], s[5], s[6], s[7]};
  g->z = (v4u){s[8], s[9], s[10], s[11]}, g->w = (v4u){s[12], s[13], s[14], s[15]};
}

/* Four independent uniforms in [-1, 1). */
static inline sm__v4f white4(white_gen *g) {
  v4u t = g->x ^ (g->x << 11);
  g->x = g->y, g->y = g->z, g->z = g->w;
  g->w = g->w ^ (g->w >> 19) ^ t ^ (t >> 8);
  return __builtin_convertvector((v4i)g->w, sm__v4f) * (1.0f / 2147483648.0f);
}

static inline float maxf(float a, float b) { return a > b ? a : b; }

/* One-pole low-pass y += a (x - y) written as y = b y + a x: coefficient a for corner f (Hz). */
static double lowpass_coef(double f_hz, double rate_hz) { return 1.0 - exp(-2.0 * M_PI * f_hz / rate_hz); }

/* Coloured noise into rec [3][T]: an AR(1) red part plus an AR(2) resonance at the microseism
 * frequency, each started in its stationary state and scaled to its share of noise_std^2.
 * AR(2) variance (Box & Jenkins): g0 = (1 + a2) s^2 / ((1 - a2) ((1 + a2)^2 - a1^2)). */
static void noise_fill(const sm__synth_path *w, float *restrict rec) {
  const int64_t T = w->n_samples;
  const double var_w = 1.0 / 3.0, phi = w->noise_ar;
  const double r = exp(-M_PI * 0.05 / w->rate_hz), om = 2.0 * M_PI * w->noise_ms_hz / w->rate_hz;
  const double a1 = 2.0 * r * cos(om), a2 = r * r;
  const double var_ar = var_w / (1.0 - phi * phi);
  const double var_ms = var_w * (1.0 + a2) / ((1.0 - a2) * ((1.0 + a2) * (1.0 + a2) - a1 * a1));
  const double rho1 = a1 / (1.0 + a2);
  const float g_ar = (float)(w->noise_std * sqrt((1.0 - w->noise_ms_share) / var_ar));
  const float g_ms = (float)(w->noise_std * sqrt(w->noise_ms_share / var_ms));
  const float fphi = (float)phi, fa1 = (float)a1, fa2 = (float)a2;
  const float s3 = (float)sqrt(3.0); /* uniform [-1,1) times sqrt(3) has unit variance */
  white_gen wg;
  white_init(&wg, w->key_noise);
  sm__v4f u1 = white4(&wg) * s3, u2 = white4(&wg) * s3;
  sm__v4f ar = u1 * (float)sqrt(var_ar);
  sm__v4f ms1 = u2 * (float)sqrt(var_ms);
  sm__v4f ms2 = (ms1 * (float)rho1 + white4(&wg) * s3 * (float)(sqrt(var_ms * (1.0 - rho1 * rho1))));
  float *z = rec, *n = rec + T, *e = rec + 2 * T;
  for (int64_t k = 0; k < T; k++) {
    ar = fphi * ar + white4(&wg);
    sm__v4f ms = fa1 * ms1 - fa2 * ms2 + white4(&wg);
    ms2 = ms1;
    ms1 = ms;
    sm__v4f out = g_ar * ar + g_ms * ms;
    z[k] = out[0], n[k] = out[1], e[k] = out[2];
  }
}

/* Filter state of the three source bursts (lanes P, SV, SH). */
typedef struct {
  sm__v4f prev, l1, l2, l3; /* differentiator input, Brune double pole, attenuation pole */
  sm__v4f env_a, env_b;     /* envelope terms exp(-t/tau), exp(-t/tau_rise) */
  sm__v4f dec_a, dec_b;     /* their per-sample decay factors (1 in lanes not yet started) */
  sm__v4f a_att, b_att;     /* attenuation coefficients per lane */
  float a_fc, b_fc;         /* Brune corner coefficients */
} burst_state;

/* Run the bursts over samples [k0, k1) with the lanes in `mask` receiving input. The state is
 * copied to locals so that the compiler keeps it in registers (out may alias *b otherwise). */
static void burst_run(burst_state *b, white_gen *g, int64_t k0, int64_t k1, sm__v4f mask, sm__v4f *restrict out) {
  sm__v4f prev = b->prev, l1 = b->l1, l2 = b->l2, l3 = b->l3, ea = b->env_a, eb = b->env_b;
  const sm__v4f da = b->dec_a, db = b->dec_b, aa = b->a_att, ba = b->b_att;
  const float af = b->a_fc, bf = b->b_fc;
  white_gen wg = *g;
  for (int64_t k = k0; k < k1; k++) {
    sm__v4f x = white4(&wg) * mask;
    sm__v4f d = x - prev;
    prev = x;
    l1 = bf * l1 + af * d;
    l2 = bf * l2 + af * l1;
    l3 = ba * l3 + aa * l2;
    ea *= da;
    eb *= db;
    out[k] = l3 * (ea - eb);
  }
  *g = wg;
  b->prev = prev, b->l1 = l1, b->l2 = l2, b->l3 = l3, b->env_a = ea, b->env_b = eb;
}

static float decay(double tau_s, double rate_hz) { return (float)exp(-1.0 / (tau_s * rate_hz)); }

/* P, SV, SH bursts into out[p .. T) (lanes 0, 1, 2); out[0 .. p) is left untouched. */
static void bursts_fill(const sm__synth_path *w, sm__v4f *out) {
  const int64_t T = w->n_samples, p = w->p_sample, s = w->s_sample < T ? w->s_sample : T;
  const double fs = w->rate_hz, fmax = 0.45 * fs;
  burst_state b;
  memset(&b, 0, sizeof b);
  double a = lowpass_coef(fmin(w->fc_hz, fmax), fs);
  b.a_fc = (float)a, b.b_fc = (float)(1.0 - a);
  double ap = lowpass_coef(fmin(w->fatt_p_hz, fmax), fs), as = lowpass_coef(fmin(w->fatt_s_hz, fmax), fs);
  b.a_att = (sm__v4f){(float)ap, (float)as, (float)as, 0};
  b.b_att = 1.0f - b.a_att;
  b.env_a = b.env_b = (sm__v4f){1, 1, 1, 1};
  float pa = decay(w->tau_p_s, fs), pb = decay(w->rise_p_s, fs);
  float sa = decay(w->tau_s_s, fs), sb = decay(w->rise_s_s, fs);
  b.dec_a = (sm__v4f){pa, 1, 1, 1}, b.dec_b = (sm__v4f){pb, 1, 1, 1};
  white_gen g;
  white_init(&g, w->key_burst);
  burst_run(&b, &g, p, s, (sm__v4f){1, 0, 0, 0}, out);
  b.dec_a = (sm__v4f){pa, sa, sa, 1}, b.dec_b = (sm__v4f){pb, sb, sb, 1};
  burst_run(&b, &g, s, T, (sm__v4f){1, 1, 1, 0}, out);
}

/* Rotate the bursts to Z, N, E in place: P along (vertical, radial), SV radial with a vertical
 * part, SH transverse. P is scaled to p_to_s of the S peak; returns the peak horizontal value. */
static float bursts_compose(const sm__synth_path *w, sm__v4f *b) {
  const int64_t T = w->n_samples, p = w->p_sample;
  float pk_p = 0, pk_s = 0, pk_h = 0;
  for (int64_t k = p; k < T; k++) {
    pk_p = maxf(pk_p, fabsf(b[k][0]));
    pk_s = maxf(pk_s, maxf(fabsf(b[k][1]), fabsf(b[k][2])));
  }
  const float cp = pk_p > 0 ? (float)w->p_to_s / pk_p : 0, cs = pk_s > 0 ? 1.0f / pk_s : 0;
  const float ph = (float)w->p_horizontal, rn = (float)w->radial_n, re = (float)w->radial_e;
  for (int64_t k = p; k < T; k++) {
    float P = cp * b[k][0], SV = cs * b[k][1], SH = cs * b[k][2];
    float R = ph * P + SV, Z = P + 0.3f * SV;
    float N = R * rn - SH * re, E = R * re + SH * rn;
    b[k] = (sm__v4f){Z, N, E, 0};
    pk_h = maxf(pk_h, maxf(fabsf(N), fabsf(E)));
  }
  return pk_h;
}

double sm__synth_waveform(const sm__synth_path *w, sm__v4f *scratch, float *rec) {
  const int64_t T = w->n_samples, p = w->p_sample;
  noise_fill(w, rec);
  bursts_fill(w, scratch);
  float pk = bursts_compose(w, scratch);
  const float g = pk > 0 ? (float)(w->amplitude / pk) : 0;
  /* SNR window: from P to as long after S as S is after P, plus 2 s. */
  int64_t w1 = w->s_sample < T ? w->s_sample + (w->s_sample - p) + (int64_t)(2 * w->rate_hz) : T;
  if (w1 > T) w1 = T;
  double es = 0, en = 0;
  for (int c = 0; c < SM_SYNTH_COMPONENTS; c++) {
    float *x = rec + c * T;
    for (int64_t k = p; k < T; k++) {
      float sig = g * scratch[k][c];
      if (k < w1) es += (double)sig * sig, en += (double)x[k] * x[k];
      x[k] += sig;
    }
  }
  return en > 0 && es > 0 ? 10.0 * log10(es / en) : (es > 0 ? INFINITY : -INFINITY);
}
