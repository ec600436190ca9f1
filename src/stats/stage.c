/* The `lm` stage (`sisma lm --data T 'FORMULA'`) and what the lm and glm stages share (splits,
 * folds, the call line): open the table, parse the formula, build the model frame, fit, print R's
 * summary on rank 0, optionally the diagnostics, and write the result (output.c: JSON, or HDF5
 * with the per-row fitted values, residuals and diagnostics). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "sisma/job.h"

static const sm_key lm_keys[] = {
    {"data", SM_KEY_STR, NULL, 0, -1, NULL,
     "table: a CSV file, a sisma catalog (its /meta columns), FILE.h5:/group (1-D columns) or FILE.h5:/dataset (2-D)"},
    {"formula", SM_KEY_STR, NULL, 0, -1, NULL, "R model formula, e.g. 'y ~ x1 + log(x2) + poly(x3, 2) + site'"},
    {"weights", SM_KEY_STR, "", 0, -1, NULL, "column of prior weights (weighted least squares); empty = none"},
    {"output", SM_KEY_PATH, "", 0, -1, NULL,
     "result file: .json = JSON (coefficients, tests, intervals, criteria, metrics), .h5 = HDF5 (the same and the "
     "fitted value, residual and diagnostics of every row); empty = none"},
    {"diagnostics", SM_KEY_BOOL, "false", 0, -1, NULL,
     "leverage, studentized residuals, Cook's distance, VIF, Breusch-Pagan, Durbin-Watson, with remedies"},
    {"id_column", SM_KEY_STR, "", 0, -1, NULL,
     "column naming rows in the diagnostics; empty = trace_name when the table has it, else row numbers"},
    {"level", SM_KEY_FLOAT, "0.95", 0.5, 0.9999, NULL, "confidence level of the intervals"},
    {"block_rows", SM_KEY_INT, "4096", 1, 1e9, NULL,
     "table rows per fixed reduction block; results are bit-identical at any rank count for a given value"},
    {"method", SM_KEY_ENUM, "auto", 0, -1, "auto|tsqr",
     "auto: Cholesky of the block-summed Gram matrix when [X y] is well conditioned (estimated cond <= 1e3), "
     "else TSQR; tsqr: always Householder TSQR"},
    SM__SPLIT_KEYS,
    SM__GD_KEYS,
    SM_KEYS_END,
};

/* The data spec with its file part resolved like an input path (output_dir first). */
static void resolve_spec(const sm_config *cfg, char *out, size_t size) {
  const char *spec = sm_config_str(cfg, "data");
  const char *colon = strstr(spec, ":/");
  char file[4096];
  snprintf(file, sizeof file, "%.*s", colon ? (int)(colon - spec) : (int)strlen(spec), spec);
  char cand[8192];
  snprintf(cand, sizeof cand, "%s/%s", cfg->output_dir ? cfg->output_dir : ".", file);
  int use = file[0] != '/' && cfg->output_dir && cfg->output_dir[0] && access(cand, R_OK) == 0;
  snprintf(out, size, "%s%s", use ? cand : file, colon ? colon : "");
}

/* R names the data argument after the data frame: the file's base name without extension. */
static void data_name(const char *spec, char *out, size_t size) {
  const char *colon = strstr(spec, ":/"), *end = colon ? colon : spec + strlen(spec);
  const char *base = spec;
  for (const char *p = spec; p < end; p++)
    if (*p == '/') base = p + 1;
  const char *dot = NULL;
  for (const char *p = base; p < end; p++)
    if (*p == '.') dot = p;
  snprintf(out, size, "%.*s", (int)((dot && dot > base ? dot : end) - base), base);
}

void sm__stats_call(const sm_config *cfg, const sm_formula *fm, const char *fn, const char *family, char *out,
                    size_t size) {
  char dn[256];
  data_name(sm_config_str(cfg, "data"), dn, sizeof dn);
  const char *w = sm_config_has_key(cfg, "weights") ? sm_config_str(cfg, "weights") : "";
  const char *sc = sm_config_has_key(cfg, "split_column") ? sm_config_str(cfg, "split_column") : "";
  char sub[192] = "";
  if (sc[0]) snprintf(sub, sizeof sub, ", subset = %.128s == \"train\"", sc); /* R's subset argument */
  char wt[192] = "";
  if (w[0]) snprintf(wt, sizeof wt, ", weights = %.128s", w);
  /* the arguments in the order of the function's formals, as match.call orders them */
  snprintf(out, size, "%s(formula = %s, %s%s%sdata = %s%s%s)", fn, sm_formula_call_text(fm), family ? "family = " : "",
           family ? family : "", family ? ", " : "", dn, family ? wt : sub, family ? sub : wt);
}

sm_status sm__stats_open(sm_ctx *ctx, const sm_config *cfg, sm_table **t, sm_formula **fm) {
  char spec[8192];
  resolve_spec(cfg, spec, sizeof spec);
  SM_TRY(ctx, sm_table_open(ctx, spec, t));
  int nc = sm_table_ncols(*t);
  const char **names = malloc(((size_t)nc + 1) * sizeof *names);
  sm_status st = names ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory");
  for (int j = 0; st == SM_OK && j < nc; j++)
    names[j] = sm_table_col_name(*t, j);
  if (st == SM_OK) st = sm_formula_parse(ctx, sm_config_str(cfg, "formula"), names, nc, fm);
  free(names);
  st = sm_ctx_agree(ctx, st);
  if (st != SM_OK) sm_table_close(t);
  return st;
}

/* A uniform number in [0, 1) from a group value and the seed (FNV-1a, then SplitMix64). */
static double group_u_bytes(const char *s, size_t n, uint64_t seed) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
  uint64_t z = h ^ (seed * 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return (double)(z >> 11) * 0x1.0p-53;
}

static double group_u(const char *s, uint64_t seed) { return group_u_bytes(s, strlen(s), seed); }

sm_status sm__stats_mask(sm_ctx *ctx, const sm_config *cfg, sm_table *t, int fold, unsigned char *mask) {
  sm_range r = sm_table_range(t);
  const char *sc = sm_config_str(cfg, "split_column"), *gc = sm_config_str(cfg, "group_column");
  double frac = sm_config_float(cfg, "test_fraction"), dev = sm_config_float(cfg, "dev_fraction");
  SM_CHECK(ctx, frac + dev < 1, SM_ERR_CONFIG, "test_fraction + dev_fraction = %g leaves nothing to fit", frac + dev);
  int k = (int)sm_config_int(cfg, "folds");
  uint64_t seed = (uint64_t)sm_config_int(cfg, "seed");
  if (sc[0] && fold < 0) {
    int j;
    SM_TRY(ctx, sm_table_find(t, sc, &j));
    SM_CHECK(ctx, sm_table_col_is_str(t, j), SM_ERR_ARG, "split column %s must hold strings (train/dev/test)", sc);
    for (int64_t i = 0; i < r.count; i++) {
      const char *v = sm_table_str(t, j)[i];
      mask[i] = !strcmp(v, "train") ? 1 : !strcmp(v, "test") ? 2 : !strcmp(v, "dev") ? 3 : 0;
    }
    return SM_OK;
  }
  int j = -1;
  if (gc[0]) SM_TRY(ctx, sm_table_find(t, gc, &j));
  if (fold < 0 && frac + dev == 0) { /* no split: every row is fitted, none hashed */
    memset(mask, 1, (size_t)r.count);
    return SM_OK;
  }
  for (int64_t i = 0; i < r.count; i++) {
    char buf[64];
    double u;
    if (j < 0) {
      int64_t row = r.first + (int64_t)i; /* by row: the row number's bytes */
      memcpy(buf, &row, sizeof row), buf[8] = '\0';
      u = group_u_bytes(buf, 8, seed);
    } else if (sm_table_col_is_str(t, j)) {
      u = group_u(sm_table_str(t, j)[i], seed);
    } else {
      snprintf(buf, sizeof buf, "%.17g", sm_table_num(t, j)[i]);
      u = group_u(buf, seed);
    }
    if (fold >= 0)
      mask[i] = (int)(u * k) == fold ? 2 : 1;
    else
      mask[i] = u < frac ? 2 : u < frac + dev ? 3 : 1;
  }
  return SM_OK;
}

sm_status sm__stats_folds(sm_ctx *ctx, const sm_config *cfg, sm_table *t, const sm_formula *fm, unsigned char *mask,
                          sm_status (*fit_score)(sm_ctx *ctx, const sm_config *cfg, sm_frame *fr, void *u), void *u) {
  const char *w = sm_config_str(cfg, "weights");
  for (int fold = 0; fold < (int)sm_config_int(cfg, "folds"); fold++) {
    sm_frame *fr = NULL;
    SM_TRY(ctx, sm_ctx_agree(ctx, sm__stats_mask(ctx, cfg, t, fold, mask)));
    sm_status st = sm_frame_create(ctx, t, fm, w[0] ? w : NULL, mask, sm_config_int(cfg, "block_rows"), &fr);
    if (st == SM_OK) st = fit_score(ctx, cfg, fr, u);
    sm_frame_destroy(&fr);
    SM_TRY(ctx, st);
  }
  return SM_OK;
}

/* Prediction errors of a linear model on held-out rows: the count and the sums of e = y - x'b, e^2,
 * |e|, y and y^2 (RMSE, MAE, mean error and R^2 about the rows' own mean follow). */
typedef struct {
  double n, e, e2, ae, y, y2; /* sums over the rows scored */
  double r2_sum;              /* k-fold: sum of the folds' R^2 over the r2_folds folds that have one */
  int r2_folds;
} lm_score;
#define LM_SCORE_K 6

/* Sums of the rows tagged `want` (2 test, 3 dev) under coefficients b, per fixed block added by the
 * block tree: identical at any rank count. Collective. */
static sm_status lm_score_rows(sm_ctx *ctx, const sm_frame *f, const double *b, int want, lm_score *sc) {
  double *part = calloc((size_t)f->nblk * LM_SCORE_K + 1, sizeof *part), tot[LM_SCORE_K];
  SM_TRY(ctx, sm_ctx_agree(ctx, part ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory")));
  for (int k = 0; k < f->nblk; k++)
    for (int64_t i = f->blk_off[k]; i < f->blk_off[k + 1]; i++) {
      if (f->tag[i] != want) continue;
      double fit = 0, *pp = part + (size_t)k * LM_SCORE_K;
      for (int j = 0; j < f->p; j++)
        fit += f->x[i * f->p + j] * b[j];
      double e = f->y[i] - fit;
      pp[0] += 1, pp[1] += e, pp[2] += e * e, pp[3] += fabs(e), pp[4] += f->y[i], pp[5] += f->y[i] * f->y[i];
    }
  sm_status st = sm__block_sum(ctx, f, LM_SCORE_K, part, tot);
  free(part);
  memset(sc, 0, sizeof *sc);
  if (st == SM_OK) sc->n = tot[0], sc->e = tot[1], sc->e2 = tot[2], sc->ae = tot[3], sc->y = tot[4], sc->y2 = tot[5];
  return st;
}

/* R^2 of the scored rows (NaN for fewer than two rows or a constant response); of pooled folds,
 * the mean over the folds that have one. */
static double lm_score_r2(const lm_score *sc, int folds) {
  double sst = sc->y2 - sc->y * sc->y / sc->n;
  if (folds) return sc->r2_folds ? sc->r2_sum / sc->r2_folds : NAN;
  return sc->n >= 2 && sst > 0 ? 1 - sc->e2 / sst : NAN;
}

static void print_score(FILE *to, const char *what, const lm_score *sc, int folds) {
  if (sc->n <= 0) return;
  char r2[32] = "NA"; /* as R prints a missing value */
  if (isfinite(lm_score_r2(sc, folds))) snprintf(r2, sizeof r2, "%.6g", lm_score_r2(sc, folds));
  fprintf(to, "Prediction on %s (%.0f rows): RMSE %.6g, MAE %.6g, mean error %.6g, R-squared %s%s\n", what, sc->n,
          sqrt(sc->e2 / sc->n), sc->ae / sc->n, sc->e / sc->n, r2, folds ? " (mean of the folds)" : "");
}

/* The scores as both result formats name them: n, rmse, mae, mean_error, r_squared (and folds). */
static int lm_score_named(const lm_score *sc, int folds, sm__named *v) {
  v[0] = (sm__named){"n", sc->n}, v[1] = (sm__named){"rmse", sqrt(sc->e2 / sc->n)};
  v[2] = (sm__named){"mae", sc->ae / sc->n}, v[3] = (sm__named){"mean_error", sc->e / sc->n};
  v[4] = (sm__named){"r_squared", lm_score_r2(sc, folds)}, v[5] = (sm__named){"folds", folds};
  return folds ? 6 : 5;
}

static void json_score(FILE *f, const char *key, const lm_score *sc, int folds) {
  sm__named v[6];
  fprintf(f, "  \"%s\": {", key);
  sm__json_named(f, v, lm_score_named(sc, folds, v), ", ");
  fprintf(f, "},\n");
}

static sm_status h5_score(sm__result *r, const char *key, const lm_score *sc, int folds) {
  sm__named v[6];
  return sc->n > 0 ? sm__h5_named(r, key, v, lm_score_named(sc, folds, v)) : SM_OK;
}

/* One fold of an lm cross-validation: fit, score the held-out fold, pool its sums. */
static sm_status lm_fold(sm_ctx *ctx, const sm_config *cfg, sm_frame *fr, void *u) {
  lm_score *pooled = u, sc;
  sm_lm *m = NULL;
  sm_status st = sm_lm_fit(ctx, fr, !strcmp(sm_config_str(cfg, "method"), "auto"), &m);
  if (st == SM_OK) st = lm_score_rows(ctx, fr, m->coef, 2, &sc);
  sm_lm_destroy(&m);
  if (st == SM_OK)
    pooled->n += sc.n, pooled->e += sc.e, pooled->e2 += sc.e2, pooled->ae += sc.ae, pooled->y += sc.y,
        pooled->y2 += sc.y2;
  if (st == SM_OK && isfinite(lm_score_r2(&sc, 0))) pooled->r2_sum += lm_score_r2(&sc, 0), pooled->r2_folds++;
  return st;
}

/* The held-out, dev and cross-validation scores of an lm run (n = 0: none). */
typedef struct {
  lm_score test, dev, cv;
  int folds;
} lm_scores;

/* The coefficient table [p][6] of a fit: estimate, standard error, t value, p value and the
 * confidence interval at `level`. Caller frees; NULL when out of memory. */
static double *lm_coef_table(const sm_lm *m, double level) {
  double *tab = malloc((6 * (size_t)m->p + 1) * sizeof *tab), *lo = malloc((2 * (size_t)m->p + 1) * sizeof *lo);
  int ok = tab && lo;
  if (ok) {
    sm_lm_confint(m, level, lo, lo + m->p);
    for (int j = 0; j < m->p; j++) {
      const double v[6] = {m->coef[j], m->se[j], m->tval[j], m->pval[j], lo[j], lo[m->p + j]};
      memcpy(tab + 6 * j, v, sizeof v);
    }
  }
  free(lo);
  if (!ok) free(tab);
  return ok ? tab : NULL;
}
static const char *const lm_coef_keys[6] = {"estimate", "std_error", "statistic", "p_value", "ci_lower", "ci_upper"};

/* The summary numbers of a fit (sigma ... bic) as both result formats name them. */
#define LM_NSUMMARY 12
static void lm_summary(const sm_lm *m, sm__named *s) {
  const sm__named v[LM_NSUMMARY] = {
      {"sigma", m->sigma},       {"df_residual", (double)m->rdf}, {"r_squared", m->r2},    {"adj_r_squared", m->adj_r2},
      {"f_statistic", m->fstat}, {"f_numdf", m->f_numdf},         {"f_dendf", m->f_dendf}, {"f_p_value", m->f_pval},
      {"rss", m->rss},           {"log_likelihood", m->loglik},   {"aic", m->aic},         {"bic", m->bic}};
  memcpy(s, v, sizeof v);
}

/* The diagnostics' tests (4) and counts (3) as both result formats name them. */
static void lm_diag_named(const sm_lm_diag *d, sm__named *v) {
  const sm__named w[7] = {{"breusch_pagan", d->bp},
                          {"breusch_pagan_df", d->bp_df},
                          {"breusch_pagan_p_value", d->bp_pval},
                          {"durbin_watson", d->dw},
                          {"high_leverage", (double)d->n_high_leverage},
                          {"outliers", (double)d->n_outliers},
                          {"influential", (double)d->n_influential}};
  memcpy(v, w, sizeof w);
}

static sm_status write_lm_json(sm_ctx *ctx, const sm_config *cfg, const sm_frame *fr, const sm_lm *m,
                               const sm_lm_diag *d, const lm_scores *sc, const char *call) {
  char path[4096];
  sm_config_output_path(cfg, "output", path, sizeof path);
  FILE *f;
  SM_TRY(ctx, sm__json_open(ctx, path, &f));
  if (f) {
    double *tab = lm_coef_table(m, sm_config_float(cfg, "level"));
    fprintf(f, "{\n  \"model\": \"lm\",\n  \"call\": ");
    sm__json_str(f, call);
    fprintf(f, ",\n  \"software\": \"sisma %s\",\n  \"ranks\": %d,\n  \"n\": %lld,\n  \"n_dropped\": %lld,\n",
            sm_version(), ctx->size, (long long)m->n, (long long)fr->n_dropped);
    fprintf(f, "  \"confidence_level\": %g,\n  \"algorithm\": \"%s\",\n", sm_config_float(cfg, "level"),
            m->used_gram ? "cholesky of block-summed Gram" : "tsqr");
    if (tab) sm__json_coefs(f, fr, tab, lm_coef_keys);
    sm__named s[LM_NSUMMARY];
    lm_summary(m, s);
    fprintf(f, "  "), sm__json_named(f, s, LM_NSUMMARY, ",\n  "), fprintf(f, ",\n");
    if (sc->test.n > 0) json_score(f, "heldout_metrics", &sc->test, 0);
    if (sc->dev.n > 0) json_score(f, "dev_metrics", &sc->dev, 0);
    if (sc->folds) json_score(f, "cross_validation_pooled", &sc->cv, sc->folds);
    fprintf(f, "  \"residual_quantiles\": [");
    for (int i = 0; i < 5; i++)
      sm__json_num(f, m->resid_q[i]), fprintf(f, i < 4 ? ", " : "]");
    if (d) {
      sm__named v[7];
      lm_diag_named(d, v);
      fprintf(f, ",\n  \"diagnostics\": {"), sm__json_named(f, v, 4, ", ");
      fprintf(f, ",\n    \"vif\": {");
      for (int t = 0; t < d->nvif; t++) {
        sm__json_str(f, fr->term_labels[t]);
        fprintf(f, ": "), sm__json_num(f, d->gvif[t]), fprintf(f, t + 1 < d->nvif ? ", " : "");
      }
      fprintf(f, "},\n    "), sm__json_named(f, v + 4, 3, ", "), fprintf(f, ",\n    \"worst_rows\": [");
      for (int i = 0; i < d->nworst; i++) {
        fprintf(f, "{\"row\": %lld, \"cooks_distance\": ", (long long)d->worst_row[i] + 1);
        sm__json_num(f, d->worst_cooks[i]), fprintf(f, ", \"hat\": "), sm__json_num(f, d->worst_hat[i]);
        fprintf(f, ", \"rstudent\": "), sm__json_num(f, d->worst_rstudent[i]),
            fprintf(f, "}%s", i + 1 < d->nworst ? ", " : "");
      }
      fprintf(f, "]}");
    }
    fprintf(f, "\n}\n");
    free(tab);
  }
  return sm__json_close(ctx, path, f);
}

/* Per frame row [fr->n][*k]: the response, the fitted value x'b and the residual y - x'b
 * (unweighted, as R's residuals()) of every frame row (held-out rows: the prediction and its
 * error); with diagnostics also the hat value, studentized residual and Cook's distance of the
 * fitted rows (NaN on held-out rows). A pass over the frame after the fit, only for HDF5 output.
 * Caller frees; NULL when out of memory. */
static double *lm_row_values(const sm_frame *fr, const double *coef, const sm_lm_diag *d, int *k) {
  int K = *k = d ? 6 : 3, p = fr->p;
  double *v = malloc(((size_t)fr->n * (size_t)K + 1) * sizeof *v);
  for (int64_t i = 0; v && i < fr->n; i++) {
    double fit = 0, *vi = v + i * K;
    for (int j = 0; j < p; j++)
      fit += fr->x[i * p + j] * coef[j];
    vi[0] = fr->y[i], vi[1] = fit, vi[2] = fr->y[i] - fit;
    if (d) vi[3] = fr->tag[i] == 1 ? d->hat[i] : NAN, vi[4] = fr->tag[i] == 1 ? d->rstudent[i] : NAN;
    if (d) vi[5] = fr->tag[i] == 1 ? d->cooks[i] : NAN;
  }
  return v;
}
#define LM_ROW_COLUMNS "response,fitted,residual"
#define LM_DIAG_COLUMNS ",hat,rstudent,cooks_distance"

/* The diagnostics group: the tests and counts as attributes, /diagnostics/vif [nterms][3] with
 * /diagnostics/vif_terms, /diagnostics/worst_rows [nworst][4] with /diagnostics/worst_labels. */
static sm_status h5_diag(sm_ctx *ctx, sm__result *r, const sm_frame *fr, const sm_lm_diag *d,
                         const char *const *labels) {
  sm__named v[7];
  lm_diag_named(d, v);
  double vif[3 * SM_FORMULA_MAX_TERMS], worst[40];
  for (int t = 0; t < d->nvif && t < SM_FORMULA_MAX_TERMS; t++)
    vif[3 * t] = d->gvif[t], vif[3 * t + 1] = d->vif_df[t], vif[3 * t + 2] = d->gvif_adj[t];
  for (int i = 0; i < d->nworst; i++)
    worst[4 * i] = (double)d->worst_row[i] + 1, worst[4 * i + 1] = d->worst_cooks[i],
              worst[4 * i + 2] = d->worst_hat[i], worst[4 * i + 3] = d->worst_rstudent[i];
  int me = ctx->rank == 0;
  sm_status st = sm__h5_named(r, "diagnostics", v, 7);
  if (st == SM_OK && d->nvif)
    st = sm__result_rows(r, "diagnostics/vif", SM__RES_F64, d->nvif, 3, 0, me ? d->nvif : 0, vif, "gvif,df,gvif_adj");
  if (st == SM_OK && d->nvif)
    st = sm__h5_strings(ctx, r, "diagnostics/vif_terms", d->nvif, (const char *const *)fr->term_labels);
  if (st == SM_OK && d->nworst)
    st = sm__result_rows(r, "diagnostics/worst_rows", SM__RES_F64, d->nworst, 4, 0, me ? d->nworst : 0, worst,
                         "row,cooks_distance,hat,rstudent");
  if (st == SM_OK && d->nworst) st = sm__h5_strings(ctx, r, "diagnostics/worst_labels", d->nworst, labels);
  return st;
}

static sm_status write_lm_h5(sm_ctx *ctx, const sm_config *cfg, sm_table *t, const sm_frame *fr, const sm_lm *m,
                             const sm_lm_diag *d, const lm_scores *sc, const char *call, const char *const *labels) {
  char path[4096];
  sm_config_output_path(cfg, "output", path, sizeof path);
  int k;
  double level = sm_config_float(cfg, "level"), *tab = lm_coef_table(m, level);
  double *rows = lm_row_values(fr, m->coef, d, &k);
  sm_status st = sm_ctx_agree(ctx, tab && rows ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory"));
  sm__result *r = NULL;
  if (st == SM_OK) st = sm__stats_h5_create(ctx, cfg, path, 0, &r);
  const sm__named head[] = {{"n", (double)m->n},
                            {"n_dropped", (double)fr->n_dropped},
                            {"n_heldout", (double)fr->n_heldout},
                            {"confidence_level", level}};
  sm__named s[LM_NSUMMARY];
  lm_summary(m, s);
  if (st == SM_OK) st = sm__result_attr(r, "call", call);
  if (st == SM_OK) st = sm__result_attr(r, "algorithm", m->used_gram ? "cholesky of block-summed Gram" : "tsqr");
  if (st == SM_OK) st = sm__h5_named(r, NULL, head, 4);
  if (st == SM_OK) st = sm__h5_named(r, NULL, s, LM_NSUMMARY);
  if (st == SM_OK) st = sm__h5_coefs(ctx, r, fr, tab, 6, "estimate,std_error,t_value,p_value,ci_lower,ci_upper");
  if (st == SM_OK) st = sm__result_small(r, "residual_quantiles", SM__RES_F64, 5, 0, m->resid_q);
  if (st == SM_OK) st = h5_score(r, "heldout_metrics", &sc->test, 0);
  if (st == SM_OK) st = h5_score(r, "dev_metrics", &sc->dev, 0);
  if (st == SM_OK && sc->folds) st = h5_score(r, "cross_validation_pooled", &sc->cv, sc->folds);
  if (st == SM_OK && d) st = h5_diag(ctx, r, fr, d, labels);
  st = sm__stats_h5_finish(ctx, cfg, t, fr, &r, k, rows, d ? LM_ROW_COLUMNS LM_DIAG_COLUMNS : LM_ROW_COLUMNS, st);
  free(tab), free(rows);
  if (st == SM_OK) sm_info(ctx, "lm: wrote %s", path);
  return st;
}

/* The gd/sgd result: iterations, cost, the coefficients (/coefficients [p][1]), the held-out
 * scores and the per-row fitted values and residuals. Collective. */
static sm_status write_gd_h5(sm_ctx *ctx, const sm_config *cfg, sm_table *t, const sm_frame *fr, const sm_gd_result *g,
                             const lm_score *test) {
  char path[4096];
  sm_config_output_path(cfg, "output", path, sizeof path);
  int k;
  double *rows = lm_row_values(fr, g->coef, NULL, &k);
  sm_status st = sm_ctx_agree(ctx, rows ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory"));
  sm__result *r = NULL;
  if (st == SM_OK) st = sm__stats_h5_create(ctx, cfg, path, 0, &r);
  const sm__named head[] = {{"iterations", (double)g->iter},
                            {"converged", g->converged},
                            {"cost", g->cost},
                            {"n", (double)fr->n_total},
                            {"n_heldout", (double)fr->n_heldout}};
  if (st == SM_OK) st = sm__h5_named(r, NULL, head, 5);
  if (st == SM_OK) st = sm__h5_coefs(ctx, r, fr, g->coef, 1, "estimate");
  if (st == SM_OK) st = h5_score(r, "heldout_metrics", test, 0);
  st = sm__stats_h5_finish(ctx, cfg, t, fr, &r, k, rows, LM_ROW_COLUMNS, st);
  free(rows);
  if (st == SM_OK) sm_info(ctx, "lm: wrote %s", path);
  return st;
}

/* Labels of the worst rows from the id column (gathered by their owners). */
sm_status sm__row_labels(sm_ctx *ctx, sm_table *t, const char *col, int n, const int64_t *rows, char (*out)[128]) {
  for (int i = 0; i < n; i++)
    snprintf(out[i], 128, "row %lld", (long long)rows[i] + 1);
  col = sm__id_column(t, col); /* default: the catalog's trace_name when the table has one */
  if (!col) return SM_OK;
  int j;
  SM_TRY(ctx, sm_ctx_agree(ctx, sm_table_find(t, col, &j)));
  sm_range r = sm_table_range(t);
  for (int i = 0; i < n; i++) {
    char buf[128] = "";
    int mine = rows[i] >= r.first && rows[i] < r.first + r.count, who = mine ? ctx->rank : ctx->size, owner;
    MPI_Allreduce(&who, &owner, 1, MPI_INT, MPI_MIN, ctx->comm);
    if (mine && owner == ctx->rank) {
      int64_t k = rows[i] - r.first;
      if (sm_table_col_is_str(t, j))
        snprintf(buf, sizeof buf, "%s", sm_table_str(t, j)[k]);
      else
        snprintf(buf, sizeof buf, "%.15g", sm_table_num(t, j)[k]);
    }
    if (owner < ctx->size) MPI_Bcast(buf, sizeof buf, MPI_CHAR, owner, ctx->comm);
    if (buf[0]) snprintf(out[i], 128, "%s", buf);
  }
  return SM_OK;
}

sm_status sm__stage_gd(sm_ctx *ctx, const sm_config *cfg, const sm_frame *fr, int binomial, sm_gd_result **res) {
  sm_gd_opts o = {!strcmp(sm_config_str(cfg, "solver"), "sgd"),
                  binomial,
                  sm_config_float(cfg, "lr"),
                  sm_config_float(cfg, "decay"),
                  sm_config_float(cfg, "l1"),
                  sm_config_float(cfg, "l2"),
                  sm_config_float(cfg, "tol"),
                  sm_config_int(cfg, "max_iter"),
                  sm_config_int(cfg, "batch_size"),
                  (uint64_t)sm_config_int(cfg, "seed"),
                  NULL};
  char path[4096] = "";
  sm_status st = SM_OK;
  if (sm_config_str(cfg, "cost_log")[0]) {
    sm_config_output_path(cfg, "cost_log", path, sizeof path);
    st = sm__json_open(ctx, path, &o.log); /* a temporary name renamed when complete */
    if (st == SM_OK && o.log) fprintf(o.log, "%s,cost\n", o.sgd ? "epoch" : "iteration");
  }
  double t0 = sm_wtime();
  if (st == SM_OK) st = sm_gd_fit(ctx, fr, &o, res);
  if (path[0] && st == SM_OK)
    st = sm__json_close(ctx, path, o.log);
  else if (o.log)
    fclose(o.log);
  if (st == SM_OK && ctx->rank == 0) {
    const sm_gd_result *r = *res;
    printf("\n%s by %s (%s loss, l2 = %g, l1 = %g): %lld %s, %s, final cost %.10g, %.3f s\n",
           binomial ? "Logistic regression" : "Least squares", o.sgd ? "minibatch SGD" : "batch gradient descent",
           binomial ? "logistic" : "squared", o.l2, o.l1, (long long)r->iter, o.sgd ? "steps" : "iterations",
           r->converged ? (o.sgd ? "epochs done" : "converged") : "NOT converged (raise max_iter or lr)", r->cost,
           sm_wtime() - t0);
    printf("%-*s %16s\n", 24, "", "Estimate");
    for (int j = 0; j < r->p; j++)
      printf("%-24s %16.8g\n", fr->names[j], r->coef[j]);
    fflush(stdout);
  }
  return st;
}

static sm_status lm_run_gd(sm_ctx *ctx, const sm_config *cfg, sm_table *t, sm_formula *fm) {
  sm_frame *fr = NULL;
  sm_gd_result *r = NULL;
  const char *w = sm_config_str(cfg, "weights");
  unsigned char *mask = malloc((size_t)sm_table_range(t).count + 1);
  sm_status st = sm_ctx_agree(ctx, mask ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory"));
  if (st == SM_OK) st = sm_ctx_agree(ctx, sm__stats_mask(ctx, cfg, t, -1, mask));
  if (st == SM_OK) st = sm_frame_create(ctx, t, fm, w[0] ? w : NULL, mask, sm_config_int(cfg, "block_rows"), &fr);
  free(mask);
  if (st == SM_OK) st = sm__stage_gd(ctx, cfg, fr, 0, &r);
  lm_score test = {0};
  if (st == SM_OK) st = lm_score_rows(ctx, fr, r->coef, 2, &test);
  if (st == SM_OK && ctx->rank == 0 && test.n > 0) print_score(stdout, "the held-out split", &test, 0);
  const char *out = sm_config_str(cfg, "output");
  if (st == SM_OK && out[0] && sm__output_is_h5(out)) st = write_gd_h5(ctx, cfg, t, fr, r, &test);
  if (st == SM_OK && out[0] && !sm__output_is_h5(out)) {
    char path[4096];
    sm_config_output_path(cfg, "output", path, sizeof path);
    FILE *f;
    st = sm__json_open(ctx, path, &f);
    if (st == SM_OK && f) {
      fprintf(f, "{\n  \"model\": \"lm\",\n  \"solver\": \"%s\",\n  \"iterations\": %lld,\n  \"cost\": ",
              sm_config_str(cfg, "solver"), (long long)r->iter);
      sm__json_num(f, r->cost);
      fprintf(f, ",\n");
      if (test.n > 0) json_score(f, "heldout_metrics", &test, 0);
      fprintf(f, "  \"coefficients\": {");
      for (int j = 0; j < r->p; j++)
        sm__json_str(f, fr->names[j]), fprintf(f, ": "), sm__json_num(f, r->coef[j]),
            fprintf(f, j + 1 < r->p ? ", " : "}\n}\n");
    }
    if (st == SM_OK) st = sm__json_close(ctx, path, f);
  }
  sm_gd_result_destroy(&r);
  sm_frame_destroy(&fr);
  return st;
}

static sm_status lm_run(sm_ctx *ctx, const sm_config *cfg) {
  sm_table *t = NULL;
  sm_formula *fm = NULL;
  sm_frame *fr = NULL;
  sm_lm *m = NULL;
  sm_lm_diag *d = NULL;
  double t0 = sm_wtime();
  SM_TRY(ctx, sm__stats_open(ctx, cfg, &t, &fm));
  if (strcmp(sm_config_str(cfg, "solver"), "exact")) {
    sm_status st = lm_run_gd(ctx, cfg, t, fm);
    sm_formula_destroy(&fm);
    sm_table_close(&t);
    return st;
  }
  double t1 = sm_wtime();
  const char *w = sm_config_str(cfg, "weights");
  unsigned char *mask = malloc((size_t)sm_table_range(t).count + 1);
  sm_status st = sm_ctx_agree(ctx, mask ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory"));
  if (st == SM_OK) st = sm_ctx_agree(ctx, sm__stats_mask(ctx, cfg, t, -1, mask));
  if (st == SM_OK) st = sm_frame_create(ctx, t, fm, w[0] ? w : NULL, mask, sm_config_int(cfg, "block_rows"), &fr);
  double t2 = sm_wtime();
  if (st == SM_OK) st = sm_lm_fit(ctx, fr, !strcmp(sm_config_str(cfg, "method"), "auto"), &m);
  double t3 = sm_wtime();
  lm_scores sc = {.folds = (int)sm_config_int(cfg, "folds") > 1 ? (int)sm_config_int(cfg, "folds") : 0};
  if (st == SM_OK) st = lm_score_rows(ctx, fr, m->coef, 2, &sc.test);
  if (st == SM_OK) st = lm_score_rows(ctx, fr, m->coef, 3, &sc.dev);
  if (st == SM_OK && sc.folds) st = sm__stats_folds(ctx, cfg, t, fm, mask, lm_fold, &sc.cv);
  if (st == SM_OK && sm_config_bool(cfg, "diagnostics")) st = sm_lm_diagnose(ctx, fr, m, &d);
  if (st == SM_OK)
    sm_debug(ctx, "lm timing: read table %.3f s, model frame %.3f s, fit + summary %.3f s (%s), diagnostics %.3f s",
             t1 - t0, t2 - t1, t3 - t2, m->used_gram ? "Cholesky" : "TSQR", sm_wtime() - t3);
  char call[4096];
  sm__stats_call(cfg, fm, "lm", NULL, call, sizeof call);
  char(*labels)[128] = NULL;
  if (st == SM_OK && d) {
    labels = calloc(10, sizeof *labels);
    st = sm_ctx_agree(ctx, labels ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory"));
    if (st == SM_OK) st = sm__row_labels(ctx, t, sm_config_str(cfg, "id_column"), d->nworst, d->worst_row, labels);
  }
  const char *lp[10];
  for (int i = 0; st == SM_OK && d && i < d->nworst; i++)
    lp[i] = labels[i];
  if (st == SM_OK && ctx->rank == 0) {
    sm_lm_print(stdout, m, fr, call);
    sm_lm_print_confint(stdout, m, fr, sm_config_float(cfg, "level"));
    printf("\nlogLik: %.6g (df = %d)   AIC: %.6g   BIC: %.6g\n", m->loglik, m->p + 1, m->aic, m->bic);
    if (sc.test.n > 0 || sc.dev.n > 0 || sc.folds) printf("\n");
    print_score(stdout, "the held-out split", &sc.test, 0);
    print_score(stdout, "the dev split", &sc.dev, 0);
    if (sc.folds) {
      char what[64];
      snprintf(what, sizeof what, "the held-out folds of a %d-fold cross-validation", sc.folds);
      print_score(stdout, what, &sc.cv, sc.folds);
    }
    if (d) sm_lm_diag_print(stdout, d, fr, m, lp);
    fflush(stdout);
  }
  const char *out = sm_config_str(cfg, "output");
  if (st == SM_OK && out[0] && sm__output_is_h5(out)) st = write_lm_h5(ctx, cfg, t, fr, m, d, &sc, call, lp);
  if (st == SM_OK && out[0] && !sm__output_is_h5(out)) st = write_lm_json(ctx, cfg, fr, m, d, &sc, call);
  free(labels), free(mask);
  sm_lm_diag_destroy(&d);
  sm_lm_destroy(&m);
  sm_frame_destroy(&fr);
  sm_formula_destroy(&fm);
  sm_table_close(&t);
  return st;
}

const sm_stage sm_stage_lm = {
    "lm", "linear regression (OLS/WLS by TSQR or a checked Cholesky) with R's summary.lm, intervals, diagnostics",
    lm_keys, lm_run, NULL};
