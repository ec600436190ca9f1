/* k-means: scikit-learn's Lloyd from given centres (golden files), the empty-cluster rule, and
 * k-means++ / k-means|| / random initialisations giving bit-identical results at any rank count
 * (compared with a run of rank 0 alone on all rows). */
#include "golden.h"

/* Gather the labels of every rank on rank 0 (all_labels [n]). */
static void gather_labels(sm_ctx *ctx, const sm_rows *x, const int32_t *mine, int32_t *all) {
  int cnt = (int)x->count, *c = malloc(ctx->size * sizeof *c), *dsp = malloc(ctx->size * sizeof *dsp);
  MPI_Gather(&cnt, 1, MPI_INT, c, 1, MPI_INT, 0, ctx->comm);
  for (int r = 0, at = 0; ctx->rank == 0 && r < ctx->size; r++) dsp[r] = at, at += c[r];
  MPI_Gatherv(mine, cnt, MPI_INT32_T, all, c, dsp, MPI_INT32_T, 0, ctx->comm);
  free(c), free(dsp);
}

static void check_golden(sm_ctx *ctx, const char *file) {
  golden g;
  CHECK(golden_load(file, &g) == 0);
  const golden_item *gx = golden_get(&g, "x");
  sm_rows x = split_rows(ctx, gx->rows, gx->cols, gx->v);
  sm_kmeans_opts o;
  sm_kmeans_opts_default(&o);
  o.k = 4;
  o.init = SM_KMEANS_INIT_GIVEN;
  o.init_centers = golden_get(&g, "init")->v;
  o.silhouette_sample = x.n;
  sm_kmeans_result r;
  sm_status st = sm_kmeans_fit(ctx, &x, &o, &r);
  CHECK_OK(ctx, st);
  if (st != SM_OK) return;
  const double *c = golden_get(&g, "centers")->v, *lab = golden_get(&g, "labels")->v;
  for (int i = 0; i < 4 * gx->cols; i++) CHECK_NEAR(r.centers[i], c[i], 1e-9);
  CHECK_NEAR(r.inertia / golden_get(&g, "inertia")->v[0], 1.0, 1e-9);
  CHECK_EQ_I64(r.n_iter, golden_get(&g, "n_iter")->v[0]);
  for (int j = 0; j < 4; j++) CHECK_EQ_I64(r.sizes[j], golden_get(&g, "sizes")->v[j]);
  int bad = 0;
  for (int64_t i = 0; i < x.count; i++) bad += r.labels[i] != (int)lab[x.first + i];
  CHECK_EQ_I64(bad, 0);
  for (int64_t i = 0; i < x.count; i++) {
    const double *row = x.x + i * x.d, *cc = r.centers + r.labels[i] * x.d;
    double s = 0;
    for (int64_t t = 0; t < x.d; t++) s += (row[t] - cc[t]) * (row[t] - cc[t]);
    CHECK_NEAR(r.distance[i], sqrt(s), 1e-12);
  }
  CHECK_NEAR(r.silhouette, golden_get(&g, "silhouette")->v[0], 1e-10);
  CHECK_NEAR(r.davies_bouldin, golden_get(&g, "davies_bouldin")->v[0], 1e-10);
  sm_kmeans_result_fini(&r);
  golden_free(&g);
}

static void test_golden_blobs(sm_ctx *ctx) { check_golden(ctx, "kmeans_blobs.txt"); }
/* one initial centre at (100, ..., 100) gets no rows in the first E-step */
static void test_golden_empty_cluster(sm_ctx *ctx) { check_golden(ctx, "kmeans_empty.txt"); }

/* The same centres, labels and inertia, bit for bit, as rank 0 alone on all rows. */
static void check_identical(sm_ctx *ctx, sm_kmeans_init init, int n_init, int optimum) {
  golden g;
  CHECK(golden_load("kmeans_blobs.txt", &g) == 0);
  const golden_item *gx = golden_get(&g, "x");
  sm_rows x = split_rows(ctx, gx->rows, gx->cols, gx->v);
  sm_kmeans_opts o;
  sm_kmeans_opts_default(&o);
  o.k = 4, o.init = init, o.n_init = n_init, o.seed = 11, o.silhouette_sample = 100;
  sm_kmeans_result r, s;
  sm_status st = sm_kmeans_fit(ctx, &x, &o, &r);
  CHECK_OK(ctx, st);
  if (st != SM_OK) return;
  /* well separated blobs: k-means++ and k-means|| reach the optimum scikit-learn found; random
   * initialisations may stop in a local one */
  double opt = golden_get(&g, "inertia")->v[0];
  if (optimum) CHECK_NEAR(r.inertia / opt, 1.0, 1e-9);
  else CHECK(r.inertia >= opt * (1 - 1e-9));
  int32_t *all = malloc(gx->rows * sizeof *all);
  gather_labels(ctx, &x, r.labels, all);
  sm_ctx *solo = solo_ctx(ctx);
  if (solo) {
    sm_rows whole = {gx->rows, 0, gx->rows, gx->cols, gx->v};
    CHECK_OK(solo, sm_kmeans_fit(solo, &whole, &o, &s));
    CHECK(memcmp(r.centers, s.centers, 4 * gx->cols * sizeof(double)) == 0);
    CHECK(memcmp(&r.inertia, &s.inertia, sizeof(double)) == 0);
    CHECK(memcmp(all, s.labels, gx->rows * sizeof *all) == 0);
    CHECK(memcmp(&r.silhouette, &s.silhouette, sizeof(double)) == 0);
    CHECK_EQ_I64(r.n_iter, s.n_iter);
    sm_kmeans_result_fini(&s);
    sm_ctx_destroy(&solo);
  }
  free(all);
  sm_kmeans_result_fini(&r);
  golden_free(&g);
}

static void test_plusplus_identical(sm_ctx *ctx) { check_identical(ctx, SM_KMEANS_INIT_PLUSPLUS, 3, 1); }
static void test_parallel_identical(sm_ctx *ctx) { check_identical(ctx, SM_KMEANS_INIT_PARALLEL, 2, 1); }
static void test_random_identical(sm_ctx *ctx) { check_identical(ctx, SM_KMEANS_INIT_RANDOM, 4, 0); }

/* Bad input fails on every rank with the same status: k > n, and a NaN on the last rank. */
static void test_errors(sm_ctx *ctx) {
  double v[3 * 2] = {1, 2, 3, 4, 5, 6};
  sm_rows x = split_rows(ctx, 3, 2, v);
  sm_kmeans_opts o;
  sm_kmeans_opts_default(&o);
  o.k = 4;
  sm_kmeans_result r;
  CHECK_STATUS(ctx, sm_kmeans_fit(ctx, &x, &o, &r), SM_ERR_ARG);
  v[5] = NAN;
  o.k = 2;
  CHECK_STATUS(ctx, sm_kmeans_fit(ctx, &x, &o, &r), SM_ERR_DATA);
  CHECK(strstr(ctx->err_msg, "row 2, column 2") != NULL);
}

/* A row source over an in-memory matrix (as a catalog reader would be). */
static sm_status read_rows(void *u, int64_t m, const int64_t *idx, double *out) {
  const sm_rows *x = u;
  for (int64_t i = 0; i < m; i++) memcpy(out + i * x->d, x->x + (idx[i] - x->first) * x->d, x->d * sizeof *out);
  return SM_OK;
}

/* Mini-batch: the same centres and labels at every rank count, and close to the Lloyd optimum. */
static void test_minibatch(sm_ctx *ctx) {
  golden g;
  CHECK(golden_load("kmeans_blobs.txt", &g) == 0);
  const golden_item *gx = golden_get(&g, "x");
  sm_rows x = split_rows(ctx, gx->rows, gx->cols, gx->v);
  sm_row_source src = {x.n, x.first, x.count, x.d, read_rows, &x};
  sm_kmeans_opts o;
  sm_kmeans_opts_default(&o);
  o.k = 4, o.max_iter = 20, o.seed = 5;
  sm_kmeans_result r, s;
  sm_status st = sm_kmeans_minibatch(ctx, &src, &o, 32, &r);
  CHECK_OK(ctx, st);
  if (st != SM_OK) return;
  double opt = golden_get(&g, "inertia")->v[0];
  CHECK(r.inertia >= opt * (1 - 1e-9) && r.inertia <= opt * 1.01);
  int32_t *all = malloc(gx->rows * sizeof *all);
  gather_labels(ctx, &x, r.labels, all);
  /* the same partition as scikit-learn's KMeans (up to the cluster numbering): the same metrics */
  int map[4] = {-1, -1, -1, -1}, same = 1;
  const double *gl = golden_get(&g, "labels")->v;
  for (int64_t i = 0; ctx->rank == 0 && i < gx->rows; i++) { /* the labels are gathered on rank 0 */
    if (map[all[i]] < 0) map[all[i]] = (int)gl[i];
    same &= map[all[i]] == (int)gl[i];
  }
  CHECK(same);
  CHECK_NEAR(r.silhouette, golden_get(&g, "silhouette")->v[0], 1e-10);
  CHECK_NEAR(r.davies_bouldin, golden_get(&g, "davies_bouldin")->v[0], 1e-10);
  sm_ctx *solo = solo_ctx(ctx);
  if (solo) {
    sm_rows whole = {gx->rows, 0, gx->rows, gx->cols, gx->v};
    sm_row_source ws = {whole.n, 0, whole.n, whole.d, read_rows, &whole};
    CHECK_OK(solo, sm_kmeans_minibatch(solo, &ws, &o, 32, &s));
    CHECK(memcmp(&r.silhouette, &s.silhouette, sizeof(double)) == 0);
    CHECK(memcmp(r.centers, s.centers, 4 * gx->cols * sizeof(double)) == 0);
    CHECK(memcmp(all, s.labels, gx->rows * sizeof *all) == 0);
    for (int j = 0; j < 4; j++) CHECK_EQ_I64(r.sizes[j], s.sizes[j]);
    CHECK_NEAR(r.inertia, s.inertia, 1e-12);
    sm_kmeans_result_fini(&s);
    sm_ctx_destroy(&solo);
  }
  free(all);
  sm_kmeans_result_fini(&r);
  golden_free(&g);
}

/* Random reassignment (scikit-learn's reassignment_ratio): a centre given far from every row gets
 * no rows, so it must be moved onto a row of a batch and end with rows of its own; the result is
 * the same at every rank count, and without reassignment the far centre stays empty. */
static void test_minibatch_reassign(sm_ctx *ctx) {
  golden g;
  CHECK(golden_load("kmeans_blobs.txt", &g) == 0);
  const golden_item *gx = golden_get(&g, "x");
  int64_t d = gx->cols;
  sm_rows x = split_rows(ctx, gx->rows, gx->cols, gx->v);
  sm_row_source src = {x.n, x.first, x.count, x.d, read_rows, &x};
  double *c = malloc(4 * d * sizeof *c);
  for (int j = 0; j < 3; j++) memcpy(c + j * d, gx->v + j * 7 * d, d * sizeof *c); /* rows 0, 7, 14 */
  for (int64_t t = 0; t < d; t++) c[3 * d + t] = 1e6;                               /* far from all */
  sm_kmeans_opts o;
  sm_kmeans_opts_default(&o);
  o.k = 4, o.max_iter = 5, o.seed = 2, o.init = SM_KMEANS_INIT_GIVEN, o.init_centers = c;
  sm_kmeans_result r, s;
  CHECK_OK(ctx, sm_kmeans_minibatch(ctx, &src, &o, 32, &r));
  CHECK(r.sizes[3] > 0);
  CHECK(r.centers[3 * d] < 1e3);
  sm_ctx *solo = solo_ctx(ctx);
  if (solo) {
    sm_rows whole = {gx->rows, 0, gx->rows, gx->cols, gx->v};
    sm_row_source ws = {whole.n, 0, whole.n, whole.d, read_rows, &whole};
    CHECK_OK(solo, sm_kmeans_minibatch(solo, &ws, &o, 32, &s));
    CHECK(memcmp(r.centers, s.centers, 4 * d * sizeof(double)) == 0);
    for (int j = 0; j < 4; j++) CHECK_EQ_I64(r.sizes[j], s.sizes[j]);
    sm_kmeans_result_fini(&s);
    sm_ctx_destroy(&solo);
  }
  sm_kmeans_result_fini(&r);
  o.reassignment_ratio = 0;
  CHECK_OK(ctx, sm_kmeans_minibatch(ctx, &src, &o, 32, &r));
  CHECK_EQ_I64(r.sizes[3], 0);
  sm_kmeans_result_fini(&r);
  free(c);
  golden_free(&g);
}

int main(int argc, char **argv) {
  return SM_TEST_MAIN(argc, argv, test_golden_blobs, test_golden_empty_cluster, test_plusplus_identical,
                      test_parallel_identical, test_random_identical, test_errors, test_minibatch,
                      test_minibatch_reassign);
}
