/* Detrend, tapers, resampling (polyphase, Fourier, decimate), zero-phase band-pass, STA/LTA,
 * triggers, the AIC picker and the normalisation scales against SciPy / ObsPy conventions on
 * synthetic and real traces (tests/signal/golden/ops.txt, written by dev/golden_signal.py).
 * Tolerance: 1e-6 relative to the largest |value| of each reference output (float64 path);
 * trigger and AIC sample indices exactly. The worst error per operation is printed on rank 0. */
#include <complex.h>

#include "harness.h"
#include "signal/internal.h"
#include "sisma/signal.h"

#define MAXN 8192
#define MAXOPS 128

typedef struct {
  char input[32], op[32];
  int np;
  double p[8];
  int64_t nout, stride;
  double *want; /* [ceil(nout / stride)] */
} golden_op;

typedef struct {
  char name[32];
  int64_t n;
  double rate, *x;
} golden_input;

static golden_input g_in[8];
static golden_op g_op[MAXOPS];
static int g_nin, g_nop, g_loaded;

static int read_vals(FILE *f, double *v, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (fscanf(f, "%lf", &v[i]) != 1) return -1;
  int c;
  while ((c = fgetc(f)) != '\n' && c != EOF) {
  }
  return 0;
}

static int parse_op(FILE *f, char *line) {
  golden_op *o = &g_op[g_nop];
  int off = 0;
  if (g_nop >= MAXOPS || sscanf(line, "op %31s %31s %d%n", o->input, o->op, &o->np, &off) != 3 || o->np > 8) return -1;
  char *s = line + off;
  for (int i = 0; i < o->np; i++) {
    char *end;
    o->p[i] = strtod(s, &end);
    if (end == s) return -1;
    s = end;
  }
  long long nout, stride;
  if (sscanf(s, "%lld %lld", &nout, &stride) != 2 || stride < 1) return -1;
  o->nout = nout, o->stride = stride;
  int64_t m = (nout + stride - 1) / stride;
  o->want = malloc(sizeof(double) * (size_t)(m ? m : 1));
  g_nop++;
  return o->want ? read_vals(f, o->want, m) : -1;
}

static int load_golden(void) {
  if (g_loaded) return g_loaded > 0 ? 0 : -1;
  g_loaded = -1;
  char line[1024];
  FILE *f = sm_test_open_source("tests/signal/golden/ops.txt", "r");
  if (!f) return -1;
  int rc = 0;
  while (rc == 0 && fgets(line, sizeof line, f)) {
    golden_input *in = &g_in[g_nin];
    long long n;
    if (strncmp(line, "input ", 6) == 0) {
      rc = g_nin < 8 && sscanf(line, "input %31s %lld %lf", in->name, &n, &in->rate) == 3 && n <= MAXN ? 0 : -1;
      if (rc == 0) {
        in->n = n, in->x = malloc(sizeof(double) * (size_t)n), g_nin++;
        rc = in->x ? read_vals(f, in->x, n) : -1;
      }
    } else if (strncmp(line, "op ", 3) == 0) {
      rc = parse_op(f, line);
    }
  }
  fclose(f);
  if (rc || g_nin == 0 || g_nop == 0) {
    fprintf(stderr, "malformed golden file tests/signal/golden/ops.txt\n");
    return -1;
  }
  g_loaded = 1;
  return 0;
}

static const golden_input *input_of(const golden_op *o) {
  for (int i = 0; i < g_nin; i++)
    if (!strcmp(g_in[i].name, o->input)) return &g_in[i];
  return NULL;
}

/* Run operation o on its input into y (room for MAXN * 4); returns the output length or -1. */
static int64_t run_op(sm_ctx *ctx, const golden_op *o, const golden_input *in, double *y) {
  const double *p = o->p;
  int64_t n = in->n;
  memcpy(y, in->x, sizeof(double) * (size_t)n);
  const char *op = o->op;
  if (!strcmp(op, "demean")) return sm_demean(y, n), n;
  if (!strcmp(op, "detrend_linear")) return sm_detrend_linear(y, n), n;
  if (!strcmp(op, "detrend_poly")) return sm_detrend_poly(ctx, y, n, (int)p[0]) == SM_OK ? n : -1;
  if (!strncmp(op, "taper_", 6)) {
    sm_taper(y, n, sm_taper_width(n, p[0], p[1], in->rate), strcmp(op, "taper_hann") ? SM_TAPER_COSINE : SM_TAPER_HANN);
    return n;
  }
  if (!strcmp(op, "resample_poly"))
    return sm_resample_poly(ctx, in->x, n, (int64_t)p[0], (int64_t)p[1], y) == SM_OK
               ? sm_resample_poly_len(n, (int64_t)p[0], (int64_t)p[1])
               : -1;
  if (!strcmp(op, "resample_fourier"))
    return sm_resample_fourier(ctx, in->x, n, (int64_t)p[0], y) == SM_OK ? (int64_t)p[0] : -1;
  if (!strcmp(op, "decimate_iir"))
    return sm_decimate_iir(ctx, in->x, n, (int64_t)p[0], y) == SM_OK ? (n + (int64_t)p[0] - 1) / (int64_t)p[0] : -1;
  if (!strcmp(op, "decimate"))
    return sm_decimate(ctx, in->x, n, (int64_t)p[0], y) == SM_OK ? (n + (int64_t)p[0] - 1) / (int64_t)p[0] : -1;
  if (!strncmp(op, "bandpass", 8)) {
    double sos[SM_BUTTER_MAX_ORDER][6];
    int ns;
    if (sm_butter_sos(ctx, (int)p[2], p[0], p[1], p[3], SM_BAND_BANDPASS, &sos[0][0], &ns) != SM_OK) return -1;
    double w4[4 * MAXN];
    sm_status st = !strcmp(op, "bandpass_zp")         ? sm_sosfiltfilt(ctx, &sos[0][0], ns, y, n)
                   : !strcmp(op, "bandpass_obspy_zp") ? sm_sosfilt_fb_batch(ctx, &sos[0][0], ns, y, 1, n, n, w4)
                                                      : sm_sosfilt(ctx, &sos[0][0], ns, y, n, NULL);
    return st == SM_OK ? n : -1;
  }
  if (!strcmp(op, "sta_lta_classic"))
    return sm_sta_lta_classic(ctx, in->x, n, (int64_t)p[0], (int64_t)p[1], y) == SM_OK ? n : -1;
  if (!strcmp(op, "sta_lta_recursive"))
    return sm_sta_lta_recursive(ctx, in->x, n, (int64_t)p[0], (int64_t)p[1], y) == SM_OK ? n : -1;
  if (!strcmp(op, "trigger")) {
    double cf[MAXN];
    sm_status st = p[2] == 0 ? sm_sta_lta_classic(ctx, in->x, n, (int64_t)p[0], (int64_t)p[1], cf)
                             : sm_sta_lta_recursive(ctx, in->x, n, (int64_t)p[0], (int64_t)p[1], cf);
    int64_t trig[64];
    int64_t nt = st == SM_OK ? sm_trigger_onset(cf, n, p[3], p[4], 0, trig, 32) : -1;
    for (int64_t i = 0; i < 2 * nt && i < 64; i++)
      y[i] = (double)trig[i];
    return nt < 0 ? -1 : 2 * nt;
  }
  if (!strcmp(op, "aic")) return y[0] = (double)sm_aic_pick(in->x, n, NULL), 1;
  if (!strcmp(op, "peak_std")) return y[0] = sm_peak_abs(in->x, n), y[1] = sm_std(in->x, n), 2;
  fprintf(stderr, "unknown golden op %s\n", op);
  return -1;
}

static void test_ops_golden(sm_ctx *ctx) {
  CHECK(load_golden() == 0);
  double *y = malloc(sizeof(double) * 4 * MAXN);
  for (int k = 0; k < g_nop; k++) {
    const golden_op *o = &g_op[k];
    const golden_input *in = input_of(o);
    CHECK(in != NULL);
    if (!in) continue;
    int64_t m = run_op(ctx, o, in, y);
    CHECK_EQ_I64(m, o->nout);
    if (m != o->nout) {
      fprintf(stderr, "  %s on %s: length %lld, want %lld (%s)\n", o->op, o->input, (long long)m, (long long)o->nout,
              ctx->err_msg);
      continue;
    }
    double ymax = 0, e = 0;
    int64_t nw = (m + o->stride - 1) / o->stride;
    for (int64_t i = 0; i < nw; i++)
      ymax = fmax(ymax, fabs(o->want[i]));
    for (int64_t i = 0; i < nw; i++)
      e = fmax(e, fabs(y[i * o->stride] - o->want[i]) / (ymax > 0 ? ymax : 1));
    int exact = !strcmp(o->op, "trigger") || !strcmp(o->op, "aic");
    if (exact ? e != 0 : e > 1e-6) fprintf(stderr, "  %s on %s: relative error %.3g\n", o->op, o->input, e);
    CHECK(exact ? e == 0 : e <= 1e-6);
    if (ctx->rank == 0 && (k == 0 || strcmp(o->op, g_op[k - 1].op) || strcmp(o->input, g_op[k - 1].input)))
      printf("  %-18s %-15s max error / max|y| %.2g\n", o->op, o->input, e);
  }
  free(y);
}

/* sm_fft against a direct DFT on lengths that take both paths (radix 2 and Bluestein). */
static void test_fft_direct(sm_ctx *ctx) {
  const int64_t lens[] = {1, 2, 8, 7, 12, 97, 600};
  for (size_t t = 0; t < sizeof lens / sizeof lens[0]; t++) {
    int64_t n = lens[t];
    double _Complex z[600], d[600];
    for (int64_t i = 0; i < n; i++)
      z[i] = sin(0.3 * (double)i) + 0.5 * I * cos(1.7 * (double)i * (double)i);
    for (int64_t k = 0; k < n; k++) {
      d[k] = 0;
      for (int64_t i = 0; i < n; i++)
        d[k] += z[i] * cexp(-2 * M_PI * I * (double)((i * k) % n) / (double)n);
    }
    CHECK_OK(ctx, sm_fft(ctx, z, n, 0));
    double e = 0;
    for (int64_t k = 0; k < n; k++)
      e = fmax(e, cabs(z[k] - d[k]));
    CHECK(e < 1e-10 * (double)n);
    CHECK_OK(ctx, sm_fft(ctx, z, n, 1));
  }
}

/* Trigger corner cases: on at the first sample, still on at the end, max_len cut. */
static void test_trigger_cases(sm_ctx *ctx) {
  (void)ctx;
  double cf[10] = {5, 5, 1, 0, 4, 4, 4, 4, 4, 4};
  int64_t t[8];
  CHECK_EQ_I64(sm_trigger_onset(cf, 10, 3, 2, 0, t, 4), 2);
  CHECK_EQ_I64(t[0], 0);
  CHECK_EQ_I64(t[1], 1);
  CHECK_EQ_I64(t[2], 4);
  CHECK_EQ_I64(t[3], 9);
  CHECK_EQ_I64(sm_trigger_onset(cf, 10, 3, 2, 2, t, 4), 2);
  CHECK_EQ_I64(t[3], 6);
  CHECK_EQ_I64(sm_trigger_onset(cf, 10, 6, 2, 0, t, 4), 0);
}

static void test_bad_args(sm_ctx *ctx) {
  double x[16] = {0}, y[16];
  CHECK_STATUS(ctx, sm_sta_lta_classic(ctx, x, 16, 5, 5, y), SM_ERR_ARG);
  CHECK_STATUS(ctx, sm_sta_lta_recursive(ctx, x, 16, 0, 5, y), SM_ERR_ARG);
  CHECK_STATUS(ctx, sm_detrend_poly(ctx, x, 3, 3), SM_ERR_DATA);
  CHECK_STATUS(ctx, sm_detrend_poly(ctx, x, 16, 99), SM_ERR_ARG);
  CHECK_STATUS(ctx, sm_decimate(ctx, x, 16, 0, y), SM_ERR_ARG);
  CHECK_EQ_I64(sm_aic_pick(x, 3, NULL), -1);
  CHECK(isnan(sm_snr_db(x, 16, 2, 5, 0, 4)));
  for (int i = 0; i < 16; i++)
    x[i] = i < 8 ? 1 - 2 * (i % 2) : 10 - 20 * (i % 2);
  CHECK_NEAR(sm_snr_db(x, 16, 8, 8, 0, 8), 20.0, 1e-12);
}

/* The batched zero-phase and causal filters equal sm_sosfiltfilt / sm_sosfilt series by series, bit
 * for bit, for every lane count (1..5 series: idle lanes, a second group). */
static void test_filtfilt_batch(sm_ctx *ctx) {
  CHECK(load_golden() == 0);
  const golden_input *in = &g_in[1];
  int64_t n = 300, stride = 311;
  double sos[SM_BUTTER_MAX_ORDER][6], x[5 * 311], want[5][300];
  int ns;
  CHECK_OK(ctx, sm_butter_sos(ctx, 4, 1, 45, 100, SM_BAND_BANDPASS, &sos[0][0], &ns));
  double *work = malloc(sizeof(double) * (size_t)sm_sosfiltfilt_work(&sos[0][0], ns, n));
  for (int m = 1; m <= 5; m++) {
    for (int r = 0; r < m; r++) {
      memcpy(x + r * stride, in->x + 50 * r, sizeof(double) * (size_t)n);
      memcpy(want[r], in->x + 50 * r, sizeof(double) * (size_t)n);
      CHECK_OK(ctx, sm_sosfiltfilt(ctx, &sos[0][0], ns, want[r], n));
    }
    CHECK_OK(ctx, sm_sosfiltfilt_batch(ctx, &sos[0][0], ns, x, m, n, stride, work));
    for (int r = 0; r < m; r++)
      CHECK(memcmp(x + r * stride, want[r], sizeof(double) * (size_t)n) == 0);
    /* the causal batch equals sm_sosfilt from rest */
    for (int r = 0; r < m; r++) {
      memcpy(x + r * stride, in->x + 50 * r, sizeof(double) * (size_t)n);
      memcpy(want[r], in->x + 50 * r, sizeof(double) * (size_t)n);
      CHECK_OK(ctx, sm_sosfilt(ctx, &sos[0][0], ns, want[r], n, NULL));
    }
    CHECK_OK(ctx, sm_sosfilt_batch(ctx, &sos[0][0], ns, x, m, n, stride, work));
    for (int r = 0; r < m; r++)
      CHECK(memcmp(x + r * stride, want[r], sizeof(double) * (size_t)n) == 0);
  }
  free(work);
}

/* A chain equals its steps applied one by one; lengths and rates are planned. */
static void test_chain(sm_ctx *ctx) {
  CHECK(load_golden() == 0);
  const golden_input *in = &g_in[1]; /* 600 samples at 100 Hz */
  sm_chain ch;
  CHECK_OK(ctx,
           sm_chain_parse(ctx, "test.chain",
                          "demean, taper max_percentage=0.05, bandpass freqmin=1 freqmax=20 corners=4 zerophase=true,"
                          "resample rate=40,normalize type=peak",
                          in->n, 100, &ch));
  CHECK_EQ_I64(ch.n_steps, 5);
  CHECK_EQ_I64(ch.n_out, 240);
  CHECK_NEAR(ch.fs_out, 40, 0);
  int64_t L = ch.max_len;
  double *a = calloc((size_t)L, sizeof(double)), *b = calloc((size_t)L, sizeof(double)), *out = NULL;
  double *w = malloc(sizeof(double) * (size_t)ch.work), ref[600], r2[600], sos[SM_BUTTER_MAX_ORDER][6];
  memcpy(a, in->x, sizeof(double) * 600);
  CHECK_OK(ctx, sm_chain_apply(ctx, &ch, 1, 1, a, b, w, &out, NULL));
  memcpy(ref, in->x, sizeof ref);
  sm_demean(ref, 600);
  sm_taper(ref, 600, sm_taper_width(600, 0.05, 0, 100), SM_TAPER_HANN); /* ObsPy's default type */
  int ns;
  CHECK_OK(ctx, sm_butter_sos(ctx, 4, 1, 20, 100, SM_BAND_BANDPASS, &sos[0][0], &ns));
  CHECK_OK(ctx, sm_sosfiltfilt(ctx, &sos[0][0], ns, ref, 600));
  CHECK_OK(ctx, sm_resample_poly(ctx, ref, 600, 2, 5, r2));
  double pk = sm_peak_abs(r2, 240);
  for (int i = 0; i < 240; i++)
    CHECK_NEAR(out[i], r2[i] / pk, 1e-15);
  free(a), free(b), free(w);
  /* causal and ObsPy zero-phase filter steps equal the library calls */
  for (int mode = 0; mode < 2; mode++) {
    CHECK_OK(ctx, sm_chain_parse(ctx, "test.chain",
                                 mode ? "highpass freq=2 corners=3 zerophase=obspy" : "highpass freq=2 corners=3", 600,
                                 100, &ch));
    double *a3 = calloc(600, sizeof(double)), *b3 = calloc(600, sizeof(double)), d3[600], w3[4 * 600];
    memcpy(a3, in->x, sizeof(double) * 600);
    memcpy(d3, in->x, sizeof(double) * 600);
    CHECK_OK(ctx, sm_chain_apply(ctx, &ch, 1, 1, a3, b3, w3, &out, NULL));
    CHECK_OK(ctx, sm_butter_sos(ctx, 3, 2, 0, 100, SM_BAND_HIGHPASS, &sos[0][0], &ns));
    CHECK_OK(ctx, mode ? sm_sosfilt_fb_batch(ctx, &sos[0][0], ns, d3, 1, 600, 600, w3)
                       : sm_sosfilt(ctx, &sos[0][0], ns, d3, 600, NULL));
    CHECK(memcmp(out, d3, sizeof d3) == 0);
    free(a3), free(b3);
  }
  /* decimate steps: the default (iir) and fir equal the library calls */
  for (int fir = 0; fir < 2; fir++) {
    CHECK_OK(ctx, sm_chain_parse(ctx, "test.chain", fir ? "decimate factor=3 ftype=fir" : "decimate factor=3", 600, 100,
                                 &ch));
    CHECK_EQ_I64(ch.n_out, 200);
    double *a2 = calloc(600, sizeof(double)), *b2 = calloc(600, sizeof(double)), d[200];
    double *w2 = malloc(sizeof(double) * (size_t)(ch.work > 0 ? ch.work : 1));
    memcpy(a2, in->x, sizeof(double) * 600);
    CHECK_OK(ctx, sm_chain_apply(ctx, &ch, 1, 1, a2, b2, w2, &out, NULL));
    CHECK_OK(ctx, fir ? sm_decimate(ctx, in->x, 600, 3, d) : sm_decimate_iir(ctx, in->x, 600, 3, d));
    for (int i = 0; i < 200; i++)
      CHECK_NEAR(out[i], d[i], 1e-15);
    free(a2), free(b2), free(w2);
  }
  const char *bad[][2] = {{"demean,bandpas freqmin=1 freqmax=2", "bandpass"},
                          {"taper max_percent=0.1", "max_percentage"},
                          {"bandpass freqmin=1", "freqmax"},
                          {"lowpass freq=60", "fs/2"},
                          {"resample rate=33.3333", "ratio"},
                          {"normalize type=rms", "peak|std"},
                          {"demean,,taper", "empty step"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    sm_ctx_clear_error(ctx);
    CHECK_STATUS(ctx, sm_chain_parse(ctx, "test.chain", bad[i][0], 600, 100, &ch), SM_ERR_CONFIG);
    if (!strstr(ctx->err_msg, bad[i][1])) fprintf(stderr, "message for '%s': %s\n", bad[i][0], ctx->err_msg);
    CHECK(strstr(ctx->err_msg, bad[i][1]) != NULL);
  }
}

/* sm_pick_trace on a synthetic 3-component record: white noise, a P onset on Z at sample 300 and
 * an S onset on N/E at 600 (5 and 10 x the noise); both pickers find them within a few samples. */
static void test_pick_trace(sm_ctx *ctx) {
  enum { N = 1000 };
  static double x[3 * N], cf[N], tmp[N];
  uint64_t st = 12345;
  for (int c = 0; c < 3; c++)
    for (int i = 0; i < N; i++) {
      st = st * 6364136223846793005ULL + 1442695040888963407ULL;
      double u = (double)(st >> 11) / 9007199254740992.0 - 0.5;
      double amp = c == 0 ? (i >= 300 ? 5 : 1) : (i >= 600 ? 10 : i >= 300 ? 1.5 : 1);
      x[c * N + i] = amp * u * sin(0.9 * i + c);
    }
  for (int rec = 0; rec < 2; rec++) {
    sm_pick_params pp = {.recursive = rec,
                         .nsta = 10,
                         .nlta = 100,
                         .thr_on = 3,
                         .thr_off = 1.5,
                         .aic_before = 100,
                         .aic_after = 50,
                         .s_min_gap = 50,
                         .z = 0};
    sm_picks pk;
    CHECK_OK(ctx, sm_pick_trace(ctx, &pp, x, 3, N, N, cf, tmp, &pk));
    if (ctx->rank == 0)
      printf("  %s: P %g (conf %.2f), S %g (conf %.2f)\n", rec ? "recursive" : "classic", pk.p, pk.p_conf, pk.s,
             pk.s_conf);
    CHECK(fabs(pk.p - 300) <= 3 && fabs(pk.s - 600) <= 5);
    CHECK(pk.p_conf > 0 && pk.p_conf < 1 && pk.s_conf > 0 && pk.s_conf < 1);
  }
}

/* The run-summary statistics: quantiles interpolate linearly (numpy.quantile's default), NaN is
 * skipped, the histogram counts every value once. */
static void test_describe(sm_ctx *ctx) {
  (void)ctx;
  double v[12] = {10, 9, 8, 7, 6, 5, 4, 3, 2, 1, NAN, INFINITY};
  char out[2048];
  sm__describe(v, 12, "x", "u", 3, out, sizeof out);
  CHECK(strstr(out, "x: n 10, mean 5.5, std 3.028 u; quantiles 5% 1.45, 25% 3.25, 50% 5.5, 75% 7.75, 95% 9.55") !=
        NULL);
  CHECK(strstr(out, "        3 ") != NULL && strstr(out, "        4 ") != NULL);
  if (!strstr(out, "50% 5.5")) fprintf(stderr, "%s", out);
}

int main(int argc, char **argv) {
  return SM_TEST_MAIN(argc, argv, test_ops_golden, test_fft_direct, test_trigger_cases, test_bad_args,
                      test_filtfilt_batch, test_chain, test_describe, test_pick_trace);
}
