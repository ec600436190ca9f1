/* Butterworth SOS design, sosfilt and sosfiltfilt against SciPy (tests/signal/golden/butter.txt,
 * written by dev/golden_signal.py). Tolerances: SOS coefficients 1e-10 relative (per
 * coefficient, max(1, |c|)); filter outputs 1e-9 relative to max |y|. The maximum errors seen are
 * printed on rank 0. */
#include "harness.h"
#include "sisma/signal.h"

#define MAXN 4096
#define MAXCASE 16

typedef struct {
  char name[32], type[16];
  int order, ns;
  double flo, fhi, fs, sos[SM_BUTTER_MAX_ORDER][6], filt[MAXN], filtfilt[MAXN];
} golden_case;

static double g_x[MAXN];
static int g_n, g_ncase, g_loaded;
static golden_case g_case[MAXCASE];

static int read_vals(FILE *f, double *v, int n) {
  for (int i = 0; i < n; i++)
    if (fscanf(f, "%lf", &v[i]) != 1) return -1;
  return 0;
}

/* Parse the golden file once; returns 0 on success. */
static int load_golden(void) {
  if (g_loaded) return g_loaded > 0 ? 0 : -1;
  g_loaded = -1;
  char line[512];
  FILE *f = sm_test_open_source("tests/signal/golden/butter.txt", "r");
  if (!f) return -1;
  int rc = 0, n, vals;
  char name[32];
  while (rc == 0 && fgets(line, sizeof line, f)) {
    golden_case *c = &g_case[g_ncase];
    vals = 1;
    if (sscanf(line, "input %d", &g_n) == 1) {
      rc = g_n <= MAXN ? read_vals(f, g_x, g_n) : -1;
    } else if (strncmp(line, "case ", 5) == 0 && g_ncase < MAXCASE) {
      rc = sscanf(line, "case %31s %d %15s %lf %lf %lf %d", c->name, &c->order, c->type, &c->flo, &c->fhi, &c->fs,
                  &c->ns) == 7 &&
                   c->ns <= SM_BUTTER_MAX_ORDER
               ? read_vals(f, &c->sos[0][0], 6 * c->ns)
               : -1;
      g_ncase++;
    } else if (sscanf(line, "sosfilt %31s %d", name, &n) == 2 && g_ncase > 0) {
      rc = n == g_n ? read_vals(f, g_case[g_ncase - 1].filt, n) : -1;
    } else if (sscanf(line, "sosfiltfilt %31s %d", name, &n) == 2 && g_ncase > 0) {
      rc = n == g_n ? read_vals(f, g_case[g_ncase - 1].filtfilt, n) : -1;
    } else {
      vals = 0; /* comment */
    }
    while (vals && rc == 0 && !feof(f) && fgetc(f) != '\n') { /* rest of the last value's line */
    }
  }
  fclose(f);
  if (rc || g_ncase == 0 || g_n == 0) {
    fprintf(stderr, "malformed golden file tests/signal/golden/butter.txt\n");
    return -1;
  }
  g_loaded = 1;
  return 0;
}

static sm_band band_of(const char *t) {
  return strcmp(t, "lowpass") == 0 ? SM_BAND_LOWPASS : strcmp(t, "highpass") == 0 ? SM_BAND_HIGHPASS : SM_BAND_BANDPASS;
}

static sm_status design(sm_ctx *ctx, const golden_case *c, double sos[][6], int *ns) {
  return sm_butter_sos(ctx, c->order, c->flo, c->fhi, c->fs, band_of(c->type), &sos[0][0], ns);
}

static void test_sos_golden(sm_ctx *ctx) {
  CHECK(load_golden() == 0);
  double worst = 0;
  for (int k = 0; k < g_ncase; k++) {
    const golden_case *c = &g_case[k];
    double sos[SM_BUTTER_MAX_ORDER][6];
    int ns = 0;
    CHECK_OK(ctx, design(ctx, c, sos, &ns));
    CHECK_EQ_I64(ns, c->ns);
    for (int s = 0; s < ns && s < c->ns; s++)
      for (int j = 0; j < 6; j++) {
        double e = fabs(sos[s][j] - c->sos[s][j]) / fmax(1.0, fabs(c->sos[s][j]));
        worst = fmax(worst, e);
        if (e > 1e-10) fprintf(stderr, "case %s section %d coef %d\n", c->name, s, j);
        CHECK_NEAR(sos[s][j], c->sos[s][j], 1e-10);
      }
  }
  if (ctx->rank == 0) printf("  sos: max relative error %.3g over %d cases\n", worst, g_ncase);
}

/* Apply the golden SOS (not ours: this isolates the filtering) with sosfilt or sosfiltfilt. */
static void check_filter(sm_ctx *ctx, int zero_phase) {
  CHECK(load_golden() == 0);
  double worst = 0, *y = malloc(sizeof(double) * (size_t)g_n);
  for (int k = 0; k < g_ncase; k++) {
    const golden_case *c = &g_case[k];
    const double *want = zero_phase ? c->filtfilt : c->filt;
    memcpy(y, g_x, sizeof(double) * (size_t)g_n);
    if (zero_phase)
      CHECK_OK(ctx, sm_sosfiltfilt(ctx, &c->sos[0][0], c->ns, y, g_n));
    else
      CHECK_OK(ctx, sm_sosfilt(ctx, &c->sos[0][0], c->ns, y, g_n, NULL));
    double ymax = 0, e = 0;
    for (int i = 0; i < g_n; i++)
      ymax = fmax(ymax, fabs(want[i]));
    for (int i = 0; i < g_n; i++)
      e = fmax(e, fabs(y[i] - want[i]) / ymax);
    if (e > 1e-9)
      fprintf(stderr, "case %s: %s relative error %.3g\n", c->name, zero_phase ? "sosfiltfilt" : "sosfilt", e);
    CHECK(e <= 1e-9);
    worst = fmax(worst, e);
  }
  if (ctx->rank == 0) printf("  %s: max error / max|y| %.3g\n", zero_phase ? "sosfiltfilt" : "sosfilt", worst);
  free(y);
}

static void test_sosfilt_golden(sm_ctx *ctx) { check_filter(ctx, 0); }
static void test_sosfiltfilt_golden(sm_ctx *ctx) { check_filter(ctx, 1); }

/* Our own design end to end: design, then zero-phase filter, against SciPy's output. */
static void test_design_and_filter(sm_ctx *ctx) {
  CHECK(load_golden() == 0);
  double *y = malloc(sizeof(double) * (size_t)g_n), sos[SM_BUTTER_MAX_ORDER][6];
  for (int k = 0; k < g_ncase; k++) {
    const golden_case *c = &g_case[k];
    int ns = 0;
    CHECK_OK(ctx, design(ctx, c, sos, &ns));
    memcpy(y, g_x, sizeof(double) * (size_t)g_n);
    CHECK_OK(ctx, sm_sosfiltfilt(ctx, &sos[0][0], ns, y, g_n));
    double ymax = 0, e = 0;
    for (int i = 0; i < g_n; i++)
      ymax = fmax(ymax, fabs(c->filtfilt[i]));
    for (int i = 0; i < g_n; i++)
      e = fmax(e, fabs(y[i] - c->filtfilt[i]) / ymax);
    CHECK(e <= 1e-9);
  }
  free(y);
}

/* sosfilt with a state carried across two chunks equals one call over the whole signal. */
static void test_sosfilt_chunks(sm_ctx *ctx) {
  CHECK(load_golden() == 0);
  const golden_case *c = &g_case[0];
  double *y = malloc(sizeof(double) * (size_t)g_n), zi[2 * SM_BUTTER_MAX_ORDER] = {0};
  memcpy(y, g_x, sizeof(double) * (size_t)g_n);
  int64_t h = g_n / 3;
  CHECK_OK(ctx, sm_sosfilt(ctx, &c->sos[0][0], c->ns, y, h, zi));
  CHECK_OK(ctx, sm_sosfilt(ctx, &c->sos[0][0], c->ns, y + h, g_n - h, zi));
  for (int i = 0; i < g_n; i++)
    CHECK_NEAR(y[i], c->filt[i], 1e-9);
  free(y);
}

static void test_bad_args(sm_ctx *ctx) {
  double sos[SM_BUTTER_MAX_ORDER][6];
  int ns = 0;
  CHECK_STATUS(ctx, sm_butter_sos(ctx, 0, 1, 10, 100, SM_BAND_BANDPASS, &sos[0][0], &ns), SM_ERR_ARG);
  CHECK_STATUS(ctx, sm_butter_sos(ctx, 4, 1, 50, 100, SM_BAND_BANDPASS, &sos[0][0], &ns), SM_ERR_ARG);
  CHECK_STATUS(ctx, sm_butter_sos(ctx, 4, 10, 5, 100, SM_BAND_BANDPASS, &sos[0][0], &ns), SM_ERR_ARG);
  CHECK_STATUS(ctx, sm_butter_sos(ctx, 4, 10, 10, 100, SM_BAND_BANDPASS, &sos[0][0], &ns), SM_ERR_ARG);
  CHECK_STATUS(ctx, sm_butter_sos(ctx, 2, 0, 60, 100, SM_BAND_LOWPASS, &sos[0][0], &ns), SM_ERR_ARG);
  CHECK_STATUS(ctx, sm_butter_sos(ctx, 2, 0, 0, 100, SM_BAND_HIGHPASS, &sos[0][0], &ns), SM_ERR_ARG);
  CHECK_OK(ctx, sm_butter_sos(ctx, 4, 1, 45, 100, SM_BAND_BANDPASS, &sos[0][0], &ns));
  CHECK_EQ_I64(ns, 4);
  CHECK_EQ_I64(sm_sosfiltfilt_padlen(&sos[0][0], ns), 27);
  double x[27] = {0};
  sm_ctx_clear_error(ctx);
  CHECK_STATUS(ctx, sm_sosfiltfilt(ctx, &sos[0][0], ns, x, 27), SM_ERR_DATA);
  CHECK(strstr(ctx->err_msg, "padlen") != NULL);
}

int main(int argc, char **argv) {
  return SM_TEST_MAIN(argc, argv, test_sos_golden, test_sosfilt_golden, test_sosfiltfilt_golden, test_design_and_filter,
                      test_sosfilt_chunks, test_bad_args);
}
