/* The `pca` stage (`sisma pca --data TABLE|CAT.h5 --components K ...`): fit, print the variance
 * table (and, for hypocentres, the fault plane), write the result file with the scores of every
 * row. docs/unsupervised.md describes the output datasets. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../catalog/result.h"
#include "data.h"
#include "sisma/job.h"

static const sm_key pca_keys[] = {
    SM__DATA_KEYS,
    {"output", SM_KEY_PATH, NULL, 0, -1, NULL, "result file (.h5): components, variances, mean, scores per row"},
    {"components", SM_KEY_INT, "2", 1, 1e6, NULL, "principal components to keep"},
    {"method", SM_KEY_ENUM, "auto", 0, -1, "auto|exact|tsqr|randomized",
     "auto: tsqr for d <= 64, randomized for k <= d/20 and d > 4096, else exact (ScaLAPACK)"},
    {"center", SM_KEY_BOOL, "true", 0, -1, NULL, "subtract the column means"},
    {"scale", SM_KEY_BOOL, "false", 0, -1, NULL, "divide columns by their standard deviation (ddof 0)"},
    {"whiten", SM_KEY_BOOL, "false", 0, -1, NULL, "scores divided by the square root of the explained variance"},
    {"grid", SM_KEY_STR, "", 0, -1, NULL, "exact: ScaLAPACK process grid ROWSxCOLS (empty: the squarest of all ranks; one rank below 1000^2 values)"},
    {"block", SM_KEY_INT, "64", 1, 4096, NULL, "exact: ScaLAPACK block size"},
    {"precision", SM_KEY_ENUM, "double", 0, -1, "double|single",
     "exact, n > 4d: single forms the Gram matrix from float32 products (float64 sums), faster, explained "
     "variances to ~1e-9 relative on the benchmark (tested to 1e-6) instead of ~1e-12"},
    {"oversamples", SM_KEY_INT, "10", 1, 10000, NULL, "randomized: extra sketch columns"},
    {"power_iters", SM_KEY_INT, "-1", -1, 100, NULL, "randomized: power iterations (-1: 7 if k < 0.1 min(n,d), else 4)"},
    {"seed", SM_KEY_INT, "0", 0, 9.0e15, NULL, "randomized: seed of the Gaussian test matrix"},
    SM_KEYS_END,
};

static sm_status parse_grid(sm_ctx *ctx, const char *g, sm_pca_opts *o) {
  if (!g[0]) return SM_OK;
  char x;
  int n = sscanf(g, "%d%c%d", &o->grid_rows, &x, &o->grid_cols);
  SM_CHECK(ctx, n == 3 && (x == 'x' || x == 'X') && o->grid_rows > 0 && o->grid_cols > 0, SM_ERR_CONFIG,
           "pca.grid \"%s\": expected ROWSxCOLS, e.g. 2x2", g);
  return SM_OK;
}

static const char *compass(double az) {
  static const char *pts[] = {"N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE",
                              "S", "SSW", "SW", "WSW", "W", "WNW", "NW", "NNW"};
  return pts[(int)floor(fmod(az + 11.25, 360.0) / 22.5) % 16];
}

/* Strike and dip (right-hand rule) of the plane whose normal is v = (east, north, down). */
static void fault_plane(const double *v, double *strike, double *dip, double *dipdir) {
  double e = v[0], n = v[1], dn = v[2];
  if (dn > 0) e = -e, n = -n, dn = -dn; /* the upward normal leans towards the dip direction */
  *dip = acos(fmin(1.0, fabs(dn))) * 180.0 / M_PI;
  *dipdir = fmod(atan2(e, n) * 180.0 / M_PI + 360.0, 360.0);
  *strike = fmod(*dipdir + 270.0, 360.0);
}

static void report(sm_ctx *ctx, const sm__dataset *ds, const sm_pca_result *p, double rmse) {
  if (ctx->rank) return;
  printf("pca: %lld rows x %lld columns (%.200s)\n", (long long)p->n, (long long)p->d, ds->names);
  printf("solver: %s\n", p->solver);
  printf("%-10s %16s %20s %10s %11s\n", "component", "singular value", "explained variance", "ratio", "cumulative");
  for (int j = 0; j < p->k; j++)
    printf("PC%-8d %16.8g %20.8g %10.6f %11.6f\n", j + 1, p->singular_values[j], p->explained_variance[j],
           p->explained_variance_ratio[j], p->cumulative_ratio[j]);
  printf("total variance %.8g; reconstruction RMSE from %d component(s): %.6g\n", p->total_variance, p->k, rmse);
  if (ds->geographic && p->k == 3) {
    double s, dip, dd;
    fault_plane(p->components + 6, &s, &dip, &dd);
    printf("hypocentres about %.4f N %.4f E: standard deviations along the axes %.3f, %.3f, %.3f km\n", ds->lat0,
           ds->lon0, sqrt(p->explained_variance[0]), sqrt(p->explained_variance[1]), sqrt(p->explained_variance[2]));
    printf("best-fitting plane (normal = PC3, the least-variance axis): strike %.1f deg, dip %.1f deg towards %.1f "
           "deg (%s)\n",
           s, dip, dd, compass(dd));
  }
  fflush(stdout);
}

static sm_status write_result(sm_ctx *ctx, const sm_config *cfg, const sm__dataset *ds, const sm_pca_result *p,
                              const double *scores, double rmse) {
  char out[4096], cols[4096] = "";
  sm_config_output_path(cfg, "output", out, sizeof out);
  for (int j = 0; j < p->k; j++) snprintf(cols + strlen(cols), sizeof cols - strlen(cols), "%spc%d", j ? "," : "", j + 1);
  sm__result *r = NULL;
  sm_status st = sm__result_create(ctx, out, "sisma pca", cfg->job_yaml, &r);
  int64_t k = p->k, d = p->d;
  if (st == SM_OK) st = sm__result_attr(r, "solver", p->solver);
  if (st == SM_OK) st = sm__result_attr(r, "columns", ds->names);
  if (st == SM_OK) st = sm__result_attr_f64(r, "total_variance", p->total_variance);
  if (st == SM_OK) st = sm__result_attr_f64(r, "reconstruction_rmse", rmse);
  if (st == SM_OK) st = sm__result_attr_f64(r, "whiten", p->whiten);
  if (st == SM_OK && ds->geographic) st = sm__result_attr_f64(r, "origin_latitude_deg", ds->lat0);
  if (st == SM_OK && ds->geographic) st = sm__result_attr_f64(r, "origin_longitude_deg", ds->lon0);
  if (st == SM_OK) st = sm__result_small(r, "components", SM__RES_F64, k, d, p->components);
  if (st == SM_OK) st = sm__result_small(r, "singular_values", SM__RES_F64, k, 0, p->singular_values);
  if (st == SM_OK) st = sm__result_small(r, "explained_variance", SM__RES_F64, k, 0, p->explained_variance);
  if (st == SM_OK)
    st = sm__result_small(r, "explained_variance_ratio", SM__RES_F64, k, 0, p->explained_variance_ratio);
  if (st == SM_OK) st = sm__result_small(r, "cumulative_variance_ratio", SM__RES_F64, k, 0, p->cumulative_ratio);
  if (st == SM_OK) st = sm__result_small(r, "mean", SM__RES_F64, d, 0, p->mean);
  if (st == SM_OK) st = sm__result_small(r, "scale", SM__RES_F64, d, 0, p->scale);
  if (st == SM_OK) st = sm__result_rows(r, "scores", SM__RES_F64, p->n, k, ds->first, ds->count, scores, cols);
  if (st == SM_OK)
    st = sm__result_rows(r, "source_row", SM__RES_I64, p->n, 0, ds->first, ds->count, ds->source_row, NULL);
  if (st == SM_OK) st = sm__result_commit(&r);
  sm__result_close(&r);
  if (st == SM_OK) sm_info(ctx, "pca: wrote %s", out);
  return st;
}

static sm_status pca_run(sm_ctx *ctx, const sm_config *cfg) {
  sm_pca_opts o;
  sm_pca_opts_default(&o);
  o.k = (int)sm_config_int(cfg, "components");
  const char *m = sm_config_str(cfg, "method");
  o.method = !strcmp(m, "exact") ? SM_PCA_EXACT : !strcmp(m, "tsqr") ? SM_PCA_TSQR
             : !strcmp(m, "randomized") ? SM_PCA_RANDOMIZED : SM_PCA_AUTO;
  o.center = sm_config_bool(cfg, "center"), o.scale = sm_config_bool(cfg, "scale");
  o.whiten = sm_config_bool(cfg, "whiten");
  o.single = !strcmp(sm_config_str(cfg, "precision"), "single");
  o.block = (int)sm_config_int(cfg, "block"), o.oversamples = (int)sm_config_int(cfg, "oversamples");
  o.power_iters = (int)sm_config_int(cfg, "power_iters"), o.seed = (uint64_t)sm_config_int(cfg, "seed");
  SM_TRY(ctx, sm_ctx_agree(ctx, parse_grid(ctx, sm_config_str(cfg, "grid"), &o)));
  sm__dataset ds;
  SM_TRY(ctx, sm__dataset_load(ctx, cfg, &ds));
  sm_rows x = {ds.n, ds.first, ds.count, ds.d, ds.x};
  sm_pca_result p;
  double *scores = NULL, rmse = 0, t0 = sm_wtime();
  sm_status st = sm_pca_fit(ctx, &x, &o, &p);
  if (st == SM_OK) {
    sm_info(ctx, "pca: fit in %.3f s", sm_wtime() - t0);
    st = sm_ctx_agree(ctx, SM_ALLOC(ctx, scores, ds.count * o.k + 1));
    if (st == SM_OK) st = sm_ctx_agree(ctx, sm_pca_transform(ctx, &p, &x, scores));
    if (st == SM_OK) st = sm_pca_reconstruction_error(ctx, &p, &x, &rmse);
    if (st == SM_OK) report(ctx, &ds, &p, rmse);
    if (st == SM_OK) st = write_result(ctx, cfg, &ds, &p, scores, rmse);
    sm_pca_result_fini(&p);
  }
  free(scores);
  sm__dataset_fini(&ds);
  return st;
}

static sm_status pca_plan(sm_ctx *ctx, const sm_config *cfg, char *out, size_t n) {
  char o[4096];
  sm_config_output_path(cfg, "output", o, sizeof o);
  snprintf(out, n, "reads its rows of %s; %lld component(s) by method %s; writes %s", sm_config_str(cfg, "data"),
           (long long)sm_config_int(cfg, "components"), sm_config_str(cfg, "method"), o);
  (void)ctx;
  return SM_OK;
}

const sm_stage sm_stage_pca = {"pca", "principal component analysis (ScaLAPACK, TSQR or randomized SVD) of a table or "
                                      "of whole waveforms",
                               pca_keys, pca_run, pca_plan};
