/* Tests of the synthetic-catalog generator (src/synth, docs/synthetic.md).
 *
 * - rank_independence: a 37-trace catalog in chunks of 4 written at this rank count is
 *   byte-identical (waveforms and every metadata column) to sm_synth_trace run sequentially;
 *   its checksum is printed so runs at 1..4 ranks can be compared by eye as well.
 * - more_ranks_than_traces: 2 traces in chunks of 1 (ranks 2 and 3 own nothing).
 * - stage: the `synth` stage through its key table writes a readable catalog with provenance.
 * - physics (rank 0, local): P before S; S-P = r (1/vs - 1/vp); start + P/fs = origin + r/vp;
 *   the Hutton-Boore amplitude relation recovered by regression of log10 peak amplitude;
 *   Gutenberg-Richter b; both labels, stress drops ordered; splits by event; coloured noise;
 *   P on Z, S on the horizontals; NaN-free. */
#include <math.h>
#include <stdint.h>

#include "harness.h"
#include "sisma/synth.h"

static sm_synth_params small_params(int64_t n) {
  sm_synth_params p;
  sm_synth_params_default(&p);
  p.n_traces = n, p.n_samples = 600, p.rate_hz = 20.0, p.seed = 7, p.traces_per_event = 5, p.n_stations = 8;
  return p;
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
  const unsigned char *b = data;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * UINT64_C(0x100000001b3);
  return h;
}

/* Compare a written catalog with the sequential reference, trace by trace and column by column. */
static void compare_with_reference(sm_ctx *ctx, const char *path, const sm_synth_params *p) {
  sm_catalog *cat = NULL;
  CHECK_OK(ctx, sm_catalog_open(ctx, path, &cat));
  if (!cat) return;
  const int64_t n = p->n_traces, tf = 3 * p->n_samples;
  CHECK_EQ_I64(sm_catalog_get_info(cat)->n_traces, n);
  CHECK_STR(sm_catalog_get_info(cat)->component_order, "ZNE");
  float *got = calloc((size_t)(n * tf), sizeof *got), *want = calloc((size_t)(n * tf), sizeof *want);
  sm_synth_meta *m = calloc((size_t)n, sizeof *m);
  double *col = calloc((size_t)n, sizeof *col);
  char *str = calloc((size_t)n, 64);
  CHECK_OK(ctx, sm_catalog_read_traces(cat, 0, n, got));
  sm_synth *g = NULL;
  CHECK_OK(ctx, sm_synth_create(ctx, p, &g));
  for (int64_t i = n - 1; g && i >= 0; i--) sm_synth_trace(g, i, want + i * tf, m + i); /* any order */
  CHECK(memcmp(got, want, (size_t)(n * tf) * sizeof(float)) == 0);
  uint64_t h = fnv1a(UINT64_C(0xcbf29ce484222325), got, (size_t)(n * tf) * sizeof(float));
  CHECK_OK(ctx, sm_catalog_read_f64(cat, "trace_snr_db", 0, n, col));
  for (int64_t i = 0; i < n; i++) CHECK(col[i] == m[i].trace_snr_db);
  CHECK_OK(ctx, sm_catalog_read_f64(cat, "trace_s_arrival_sample", 0, n, col));
  for (int64_t i = 0; i < n; i++)
    CHECK(col[i] == m[i].trace_s_arrival_sample || (isnan(col[i]) && isnan(m[i].trace_s_arrival_sample)));
  CHECK_OK(ctx, sm_catalog_read_f64(cat, "source_magnitude", 0, n, col));
  for (int64_t i = 0; i < n; i++) CHECK(col[i] == m[i].source_magnitude);
  h = fnv1a(h, col, (size_t)n * sizeof *col);
  static const char *const strs[] = {"trace_name", "trace_start_time", "label", "split", "source_magnitude_type"};
  for (size_t c = 0; c < sizeof strs / sizeof strs[0]; c++) {
    int w = 0;
    CHECK_OK(ctx, sm_catalog_column_info(cat, strs[c], NULL, &w));
    CHECK_OK(ctx, sm_catalog_read_str(cat, strs[c], 0, n, str));
    for (int64_t i = 0; i < n && w > 0; i++) {
      char v[64];
      sm_catalog_str_at(str, w, i, v, sizeof v);
      const char *ref = c == 0 ? m[i].trace_name : c == 1 ? m[i].trace_start_time : c == 2 ? m[i].label
                        : c == 3 ? m[i].split : "ML";
      CHECK_STR(v, ref);
      h = fnv1a(h, v, strlen(v));
    }
  }
  CHECK_EQ_I64(sm_catalog_column_count(cat), 22);
  if (ctx->rank == 0) printf("  checksum of %lld traces + metadata: %016llx\n", (long long)n, (unsigned long long)h);
  sm_synth_destroy(&g);
  sm_catalog_close(&cat);
  free(got), free(want), free(m), free(col), free(str);
}

static void test_rank_independence(sm_ctx *ctx) {
  char path[1024];
  snprintf(path, sizeof path, "%s/synth37.h5", sm_test_dir());
  sm_synth_params p = small_params(37);
  CHECK_OK(ctx, sm_synth_write(ctx, &p, path, 4, 0, "test_synth", NULL));
  compare_with_reference(ctx, path, &p);
}

static void test_more_ranks_than_traces(sm_ctx *ctx) {
  char path[1024];
  snprintf(path, sizeof path, "%s/synth2.h5", sm_test_dir());
  sm_synth_params p = small_params(2);
  CHECK_OK(ctx, sm_synth_write(ctx, &p, path, 1, 1, "test_synth", NULL));
  compare_with_reference(ctx, path, &p);
}

static void test_bad_params(sm_ctx *ctx) {
  sm_synth_params p = small_params(10);
  p.traces_per_event = 9; /* > 8 stations */
  sm_synth *g = NULL;
  CHECK_STATUS(ctx, sm_synth_create(ctx, &p, &g), SM_ERR_ARG);
  CHECK(g == NULL);
  sm_ctx_clear_error(ctx);
}

static void test_stage(sm_ctx *ctx) {
  const sm_stage *s = sm_stage_find("synth");
  CHECK(s != NULL);
  if (!s) return;
  sm_config cfg;
  sm_config_init(&cfg, "synth", s->keys);
  char path[1024];
  snprintf(path, sizeof path, "%s/stage.h5", sm_test_dir());
  CHECK_OK(ctx, sm_config_set(ctx, &cfg, "output", path, "test"));
  CHECK_OK(ctx, sm_config_set(ctx, &cfg, "traces", "23", "test"));
  CHECK_OK(ctx, sm_config_set(ctx, &cfg, "samples", "400", "test"));
  CHECK_OK(ctx, sm_config_set(ctx, &cfg, "rate", "20", "test"));
  CHECK_STATUS(ctx, sm_config_set(ctx, &cfg, "traces", "0", "test"), SM_ERR_CONFIG);
  sm_ctx_clear_error(ctx);
  CHECK_OK(ctx, sm_stage_run(ctx, s, &cfg));
  char plan[512] = "";
  CHECK_OK(ctx, s->plan(ctx, &cfg, plan, sizeof plan));
  CHECK(strncmp(plan, "rank ", 5) == 0);
  sm_config_fini(&cfg);
  sm_catalog *cat = NULL;
  CHECK_OK(ctx, sm_catalog_open(ctx, path, &cat));
  if (!cat) return;
  CHECK_EQ_I64(sm_catalog_get_info(cat)->n_traces, 23);
  CHECK_NEAR(sm_catalog_get_info(cat)->sampling_rate_hz, 20.0, 0);
  char by[256];
  CHECK_OK(ctx, sm_catalog_get_attr(cat, "created_by", by, sizeof by));
  CHECK(strncmp(by, "sisma synth", 11) == 0);
  CHECK_OK(ctx, sm_catalog_get_attr(cat, "synth_mainshock_time", by, sizeof by));
  CHECK(strlen(by) == 27);
  sm_catalog_close(&cat);
}

/* ---- physics: generated locally on rank 0 ---- */

typedef struct {
  int64_t n;
  sm_synth_params p;
  float *rec;      /* [n][3][T] */
  sm_synth_meta *m; /* [n] */
} sample;

static double peak_horizontal(const float *rec, int64_t T) {
  double pk = 0;
  for (int64_t k = 0; k < 2 * T; k++) pk = fmax(pk, fabs(rec[T + k]));
  return pk;
}

static double rms(const float *x, int64_t a, int64_t b) {
  double s = 0;
  for (int64_t k = a; k < b; k++) s += (double)x[k] * x[k];
  return b > a ? sqrt(s / (double)(b - a)) : 0;
}

/* Solve the 3x3 system A x = b by Gaussian elimination with partial pivoting. */
static void solve3(double A[3][3], double b[3], double x[3]) {
  for (int c = 0; c < 3; c++) {
    int piv = c;
    for (int r = c + 1; r < 3; r++)
      if (fabs(A[r][c]) > fabs(A[piv][c])) piv = r;
    for (int k = 0; k < 3; k++) {
      double t = A[c][k];
      A[c][k] = A[piv][k], A[piv][k] = t;
    }
    double t = b[c];
    b[c] = b[piv], b[piv] = t;
    for (int r = c + 1; r < 3; r++) {
      double f = A[r][c] / A[c][c];
      for (int k = c; k < 3; k++) A[r][k] -= f * A[c][k];
      b[r] -= f * b[c];
    }
  }
  for (int c = 2; c >= 0; c--) {
    double s = b[c];
    for (int k = c + 1; k < 3; k++) s -= A[c][k] * x[k];
    x[c] = s / A[c][c];
  }
}

static void check_arrivals(const sample *s) {
  const double vp = s->p.vp_km_s, vs = vp / sqrt(3.0), fs = s->p.rate_hz;
  int bad_order = 0, bad_sp = 0, bad_time = 0, nan = 0;
  for (int64_t i = 0; i < s->n; i++) {
    const sm_synth_meta *m = s->m + i;
    const float *r = s->rec + i * 3 * s->p.n_samples;
    for (int64_t k = 0; k < 3 * s->p.n_samples; k++) nan += !isfinite(r[k]);
    nan += !isfinite(m->trace_s_arrival_sample) || !isfinite(m->trace_snr_db);
    bad_order += !(m->trace_p_arrival_sample < m->trace_s_arrival_sample);
    double sp = (m->trace_s_arrival_sample - m->trace_p_arrival_sample) / fs;
    bad_sp += fabs(sp - m->path_hyp_distance_km * (1 / vs - 1 / vp)) > 0.51 / fs;
    double t0, to;
    sm_time_parse(m->trace_start_time, &t0);
    sm_time_parse(m->source_origin_time, &to);
    bad_time += fabs(t0 + m->trace_p_arrival_sample / fs - (to + m->path_hyp_distance_km / vp)) > 2e-6;
  }
  CHECK_EQ_I64(nan, 0);
  CHECK_EQ_I64(bad_order, 0);
  CHECK_EQ_I64(bad_sp, 0);
  CHECK_EQ_I64(bad_time, 0);
}

/* Regress y = log10(peak) + 0.00189 (r - 100) on [1, ML, log10(r/100)] over traces with SNR > 15 dB:
 * Hutton & Boore give (-3.0, 1.0, -1.110). */
static void check_amplitudes(const sample *s) {
  double A[3][3] = {{0}}, b[3] = {0}, x[3] = {0};
  int used = 0;
  for (int64_t i = 0; i < s->n; i++) {
    const sm_synth_meta *m = s->m + i;
    if (m->trace_snr_db < 15) continue;
    double r = m->path_hyp_distance_km;
    double row[3] = {1, m->source_magnitude, log10(r / 100)};
    double y = log10(peak_horizontal(s->rec + i * 3 * s->p.n_samples, s->p.n_samples)) + 0.00189 * (r - 100);
    for (int a = 0; a < 3; a++) {
      for (int c = 0; c < 3; c++) A[a][c] += row[a] * row[c];
      b[a] += row[a] * y;
    }
    used++;
  }
  CHECK(used > s->n / 4);
  solve3(A, b, x);
  printf("  amplitude regression on %d traces: log10 A = %.3f + %.3f ML %+.3f log10(r/100) - 0.00189 (r-100)\n", used,
         x[0], x[1], x[2]);
  CHECK_NEAR(x[1], 1.0, 0.1);
  CHECK_NEAR(x[2], -1.110, 0.15);
  CHECK_NEAR(x[0], -3.0, 0.15);
}

/* Per event: one split, one label, magnitude law, stress drops ordered by label. */
static void check_events(const sample *s) {
  int64_t nev = 0, fore = 0, after = 0, train = 0, mixed = 0;
  double msum = 0, lsf = 0, lsa = 0;
  for (int64_t i = 0; i < s->n; i++) {
    const sm_synth_meta *m = s->m + i;
    if (i > 0 && m->event == m[-1].event) {
      mixed += strcmp(m->split, m[-1].split) != 0 || strcmp(m->label, m[-1].label) != 0;
      continue;
    }
    nev++;
    msum += m->source_magnitude - s->p.magnitude_min;
    int a = !strcmp(m->label, "aftershock");
    after += a, fore += !a;
    *(a ? &lsa : &lsf) += log10(m->source_stress_drop_mpa);
    train += !strcmp(m->split, "train");
    CHECK(m->source_magnitude >= s->p.magnitude_min && m->source_magnitude <= s->p.magnitude_max);
  }
  CHECK_EQ_I64(mixed, 0);
  CHECK(fore > 0 && after > 0);
  double b = log10(exp(1.0)) / (msum / (double)nev); /* Aki 1965 maximum likelihood */
  printf("  %lld events (%lld foreshocks): b = %.2f, train share %.2f, median stress drop %.2f / %.2f MPa\n",
         (long long)nev, (long long)fore, b, (double)train / (double)nev, pow(10, lsf / (double)fore),
         pow(10, lsa / (double)after));
  CHECK_NEAR(b, s->p.b_value, 0.2);
  CHECK_NEAR((double)train / (double)nev, 0.70, 0.08);
  CHECK_NEAR(lsa / (double)after - lsf / (double)fore, log10(s->p.stress_after_mpa / s->p.stress_fore_mpa), 0.12);
}

/* Noise before P is coloured (lag-1 autocorrelation well above 0); P is strongest on Z, S on the
 * horizontals (high-SNR traces). */
static void check_noise_and_polarisation(const sample *s) {
  const int64_t T = s->p.n_samples;
  double rho = 0, pz = 0, sz = 0;
  int n = 0, ns = 0;
  for (int64_t i = 0; i < s->n; i++) {
    const sm_synth_meta *m = s->m + i;
    const float *z = s->rec + i * 3 * T, *nn = z + T, *e = z + 2 * T;
    int64_t p = (int64_t)m->trace_p_arrival_sample, sa = (int64_t)m->trace_s_arrival_sample;
    double c0 = 0, c1 = 0;
    for (int64_t k = 1; k < p; k++) c0 += (double)z[k] * z[k], c1 += (double)z[k] * z[k - 1];
    rho += c1 / c0, n++;
    if (m->trace_snr_db < 20 || sa - p < 20) continue;
    double h = hypot(rms(nn, p, p + (sa - p) / 2), rms(e, p, p + (sa - p) / 2));
    pz += log10(rms(z, p, p + (sa - p) / 2) / h);
    sz += log10(rms(z, sa, sa + (sa - p)) / hypot(rms(nn, sa, sa + (sa - p)), rms(e, sa, sa + (sa - p))));
    ns++;
  }
  printf("  noise lag-1 autocorrelation %.2f; log10 Z/H: P window %.2f, S window %.2f (%d traces)\n", rho / n,
         pz / ns, sz / ns, ns);
  CHECK(rho / n > 0.5);
  CHECK(ns > 10 && pz / ns > 0.2 && sz / ns < -0.2);
}

static void test_physics(sm_ctx *ctx) {
  if (ctx->rank != 0) return; /* local work only: no collectives */
  sample s = {.n = 3000};
  sm_synth_params_default(&s.p);
  s.p.n_traces = s.n, s.p.seed = 11;
  s.rec = malloc((size_t)(s.n * 3 * s.p.n_samples) * sizeof(float));
  s.m = calloc((size_t)s.n, sizeof *s.m);
  sm_synth *g = NULL;
  CHECK_OK(ctx, sm_synth_create(ctx, &s.p, &g));
  for (int64_t i = 0; g && s.rec && i < s.n; i++) sm_synth_trace(g, i, s.rec + i * 3 * s.p.n_samples, s.m + i);
  if (g && s.rec) {
    check_arrivals(&s);
    check_amplitudes(&s);
    check_events(&s);
    check_noise_and_polarisation(&s);
  }
  sm_synth_destroy(&g);
  free(s.rec);
  free(s.m);
}

int main(int argc, char **argv) {
  return SM_TEST_MAIN(argc, argv, test_rank_independence, test_more_ranks_than_traces, test_bad_params, test_stage,
                      test_physics);
}
