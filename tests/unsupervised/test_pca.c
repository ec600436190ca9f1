/* PCA against scikit-learn's PCA(svd_solver="full") (golden files): explained variance to 1e-8
 * relative, components (sign fixed as svd_flip), scores, mean and reconstruction error, for the
 * TSQR, ScaLAPACK (grids 1x1, 2x1, 2x2, 1x3 where the rank count allows), LAPACK (the default for
 * a small Gram matrix) and randomized solvers;
 * the block-tree solvers bit-identical to a run of rank 0 alone; the float32-product Gram
 * (single) to 1e-6. */
#include "golden.h"

typedef struct {
  const char *file, *tag;
  int k, whiten, scale;
} pca_case;

static const pca_case tall = {"pca_tall.txt", "plain", 3, 0, 0};
static const pca_case tall_whiten = {"pca_tall.txt", "whiten", 3, 1, 0};
static const pca_case tall_scaled = {"pca_tall.txt", "scaled", 3, 0, 1};
static const pca_case wide = {"pca_wide.txt", "plain", 4, 0, 0};
static const pca_case wide_whiten = {"pca_wide.txt", "whiten", 4, 1, 0};

static const double *item(const golden *g, const char *tag, const char *what) {
  char name[64];
  snprintf(name, sizeof name, "%s_%s", tag, what);
  return golden_get(g, name)->v;
}

/* Fit with opts and compare everything with the golden case to `tol`. */
static void check_case(sm_ctx *ctx, const pca_case *c, sm_pca_opts o, double tol) {
  golden g;
  CHECK(golden_load(c->file, &g) == 0);
  const golden_item *gx = golden_get(&g, "x");
  sm_rows x = split_rows(ctx, gx->rows, gx->cols, gx->v);
  int64_t d = x.d;
  o.k = c->k, o.whiten = c->whiten, o.scale = c->scale;
  sm_pca_result r;
  sm_status st = sm_pca_fit(ctx, &x, &o, &r);
  CHECK_OK(ctx, st);
  if (st != SM_OK) return;
  const double *ev = item(&g, c->tag, "explained_variance"), *ratio = item(&g, c->tag, "explained_variance_ratio");
  const double *sv = item(&g, c->tag, "singular_values"), *comp = item(&g, c->tag, "components");
  for (int j = 0; j < c->k; j++) {
    CHECK_NEAR(r.explained_variance[j] / ev[j], 1.0, tol);
    CHECK_NEAR(r.explained_variance_ratio[j] / ratio[j], 1.0, tol);
    CHECK_NEAR(r.singular_values[j] / sv[j], 1.0, tol);
    for (int64_t t = 0; t < d; t++) CHECK_NEAR(r.components[j * d + t], comp[j * d + t], 10 * tol);
  }
  if (!c->scale) {
    const double *mean = item(&g, c->tag, "mean"), *sc = item(&g, c->tag, "scores");
    for (int64_t t = 0; t < d; t++) CHECK_NEAR(r.mean[t], mean[t], 1e-12);
    double *s = malloc((x.count + 1) * c->k * sizeof *s);
    CHECK_OK(ctx, sm_pca_transform(ctx, &r, &x, s));
    for (int64_t i = 0; i < x.count * c->k; i++) CHECK_NEAR(s[i], sc[x.first * c->k + i], 100 * tol);
    free(s);
    double rmse;
    CHECK_OK(ctx, sm_pca_reconstruction_error(ctx, &r, &x, &rmse));
    CHECK_NEAR(rmse / item(&g, c->tag, "rmse")[0], 1.0, 100 * tol);
  }
  sm_pca_result_fini(&r);
  golden_free(&g);
}

static void test_tsqr_golden(sm_ctx *ctx) {
  sm_pca_opts o;
  sm_pca_opts_default(&o);
  o.method = SM_PCA_TSQR;
  check_case(ctx, &tall, o, 1e-10);
  check_case(ctx, &tall_whiten, o, 1e-10);
  check_case(ctx, &tall_scaled, o, 1e-10);
  check_case(ctx, &wide, o, 1e-10);
}

/* ScaLAPACK: pdsyevd for the tall case, pdgesvd for the wide one, on every grid that fits; and
 * the default (no grid asked, a small Gram matrix): LAPACK dsyevr on rank 0. */
static void test_scalapack_grids(sm_ctx *ctx) {
  static const int grids[][2] = {{0, 0}, {1, 1}, {2, 1}, {2, 2}, {1, 3}};
  for (int i = 0; i < 5; i++) {
    if (grids[i][0] * grids[i][1] > ctx->size) continue;
    sm_pca_opts o;
    sm_pca_opts_default(&o);
    o.method = SM_PCA_EXACT;
    o.grid_rows = grids[i][0], o.grid_cols = grids[i][1], o.block = 4; /* small blocks: really distributed */
    check_case(ctx, &tall, o, 1e-10);
    check_case(ctx, &tall_scaled, o, 1e-10);
    check_case(ctx, &wide, o, 1e-10);
    check_case(ctx, &wide_whiten, o, 1e-10);
  }
}

static void test_randomized_golden(sm_ctx *ctx) {
  sm_pca_opts o;
  sm_pca_opts_default(&o);
  o.method = SM_PCA_RANDOMIZED;
  o.seed = 3;
  check_case(ctx, &tall, o, 1e-10); /* l = min(k + 10, d) = d: the sketch holds the whole row space */
  o.oversamples = 26;                /* l = 30 = n for the wide case: exact as well */
  check_case(ctx, &wide, o, 1e-10);
  o.oversamples = 10;                /* a true sketch: l = 14 of 30, 4 power iterations */
  check_case(ctx, &wide, o, 1e-3);
}

/* single: the Gram matrix from float32 products, float64 sums -- scikit-learn's float32 accuracy
 * asked for, 1e-6 relative (the golden file is float64 LAPACK). */
static void test_single_golden(sm_ctx *ctx) {
  sm_pca_opts o;
  sm_pca_opts_default(&o);
  o.method = SM_PCA_EXACT, o.single = 1;
  check_case(ctx, &tall, o, 1e-6);
  check_case(ctx, &tall_scaled, o, 1e-6);
}

/* Components and singular values bit-identical to rank 0 alone (block-tree solvers; the Gram
 * path, float64 and single, on the default 1x1 grid of a small matrix). */
static void check_identical(sm_ctx *ctx, const char *file, int k, sm_pca_method m, int single) {
  golden g;
  CHECK(golden_load(file, &g) == 0);
  const golden_item *gx = golden_get(&g, "x");
  sm_rows x = split_rows(ctx, gx->rows, gx->cols, gx->v);
  sm_ctx *solo = solo_ctx(ctx);
  sm_pca_opts o;
  sm_pca_opts_default(&o);
  o.method = m, o.k = k, o.seed = 9, o.single = single;
  sm_pca_result r, s;
  CHECK_OK(ctx, sm_pca_fit(ctx, &x, &o, &r));
  if (solo) {
    sm_rows whole = {gx->rows, 0, gx->rows, gx->cols, gx->v};
    CHECK_OK(solo, sm_pca_fit(solo, &whole, &o, &s));
    CHECK(memcmp(r.components, s.components, k * gx->cols * sizeof(double)) == 0);
    CHECK(memcmp(r.singular_values, s.singular_values, k * sizeof(double)) == 0);
    sm_pca_result_fini(&s);
    sm_ctx_destroy(&solo);
  }
  sm_pca_result_fini(&r);
  golden_free(&g);
}

static void test_identical(sm_ctx *ctx) {
  for (int m = SM_PCA_TSQR; m <= SM_PCA_RANDOMIZED; m++) check_identical(ctx, "pca_wide.txt", 4, (sm_pca_method)m, 0);
  check_identical(ctx, "pca_tall.txt", 3, SM_PCA_EXACT, 0);
  check_identical(ctx, "pca_tall.txt", 3, SM_PCA_EXACT, 1);
}

static void test_errors(sm_ctx *ctx) {
  double v[4 * 3] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 0, 1};
  sm_rows x = split_rows(ctx, 4, 3, v);
  sm_pca_opts o;
  sm_pca_opts_default(&o);
  o.k = 4;
  sm_pca_result r;
  CHECK_STATUS(ctx, sm_pca_fit(ctx, &x, &o, &r), SM_ERR_ARG);
  o.k = 2, o.method = SM_PCA_EXACT, o.grid_rows = 3, o.grid_cols = 2;
  CHECK_STATUS(ctx, sm_pca_fit(ctx, &x, &o, &r), SM_ERR_ARG);
  CHECK(strstr(ctx->err_msg, "grid 3x2") != NULL);
  /* a NaN on the last rank: the Gram path finds it from its sums, TSQR by the check pass */
  double t[12 * 2];
  for (int i = 0; i < 24; i++) t[i] = (i * 7) % 5;
  t[21] = NAN;
  x = split_rows(ctx, 12, 2, t);
  sm_pca_opts_default(&o);
  o.k = 1;
  const sm_pca_method ms[2] = {SM_PCA_EXACT, SM_PCA_TSQR};
  for (int m = 0; m < 2; m++) {
    o.method = ms[m];
    CHECK_STATUS(ctx, sm_pca_fit(ctx, &x, &o, &r), SM_ERR_DATA);
    CHECK(strstr(ctx->err_msg, "row 10, column 2") != NULL);
  }
}

int main(int argc, char **argv) {
  return SM_TEST_MAIN(argc, argv, test_tsqr_golden, test_scalapack_grids, test_randomized_golden, test_single_golden,
                      test_identical,
                      test_errors);
}
