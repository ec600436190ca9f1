/* The `glm` stage (`sisma glm --family binomial --data T 'FORMULA'`) and its alias `logistic`:
 * logistic regression by IRLS with R's summary.glm, class weights, and classification metrics on
 * a held-out split (an existing split column, or a seeded split by group so that no event lies
 * in two splits) or by k-fold cross-validation over the same groups. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "sisma/job.h"

static const sm_key glm_keys[] = {
    {"data", SM_KEY_STR, NULL, 0, -1, NULL, "table (as for lm): CSV, catalog, FILE.h5:/group or FILE.h5:/dataset"},
    {"formula", SM_KEY_STR, NULL, 0, -1, NULL, "R model formula; the response is 0/1 or a two-level string column"},
    {"family", SM_KEY_ENUM, "binomial", 0, -1, "binomial", "error distribution (logit link)"},
    {"weights", SM_KEY_STR, "", 0, -1, NULL, "column of prior weights; empty = none"},
    {"class_weights", SM_KEY_ENUM, "none", 0, -1, "none|balanced",
     "balanced: weight each class by n / (2 n_class) over the rows fitted (unbalanced data)"},
    SM__SPLIT_KEYS,
    {"threshold", SM_KEY_FLOAT, "0.5", 0, 1, NULL, "probability threshold of the predicted class"},
    {"event_column", SM_KEY_STR, "", 0, -1, NULL,
     "also classify each held-out event (rows sharing this column's value, e.g. source_id) by the mean probability "
     "of its rows; empty = per row only"},
    {"maxit", SM_KEY_INT, "25", 1, 1000, NULL, "IRLS iterations at most (R: glm.control maxit)"},
    {"epsilon", SM_KEY_FLOAT, "1e-8", 1e-16, 1, NULL, "IRLS convergence tolerance on the relative deviance change"},
    {"output", SM_KEY_PATH, "", 0, -1, NULL,
     "result file: .json = JSON, .h5 = HDF5 (also the linear predictor and probability of every row); empty = none"},
    {"id_column", SM_KEY_STR, "", 0, -1, NULL,
     "column naming rows in the HDF5 result (/row_id); empty = trace_name when the table has it, else none"},
    {"block_rows", SM_KEY_INT, "4096", 1, 1e9, NULL, "table rows per fixed reduction block"},
    {"method", SM_KEY_ENUM, "auto", 0, -1, "auto|tsqr",
     "IRLS steps by Cholesky of the Gram matrix when well conditioned (auto), or always by TSQR"},
    SM__GD_KEYS,
    SM_KEYS_END,
};

/* Class weights n / (2 n_c) over the fitted rows, multiplied into the prior weights. */
static sm_status balance(sm_ctx *ctx, sm_frame *f) {
  int64_t c[2] = {0, 0}, g[2];
  for (int64_t i = 0; i < f->n; i++)
    if (f->tag[i] == 1) c[f->y[i] == 1]++;
  SM_MPI(ctx, MPI_Allreduce(c, g, 2, MPI_INT64_T, MPI_SUM, ctx->comm));
  SM_CHECK(ctx, g[0] > 0 && g[1] > 0, SM_ERR_DATA, "class weights: the fitted rows hold a single class");
  double n = (double)(g[0] + g[1]), w[2] = {n / (2.0 * (double)g[0]), n / (2.0 * (double)g[1])};
  for (int64_t i = 0; i < f->n; i++)
    f->w[i] *= w[f->y[i] == 1];
  return SM_OK;
}

/* Metrics of the rows tagged `want` (1 fitted, 2 test, 3 dev). */
static sm_status evaluate(sm_ctx *ctx, const sm_frame *f, const double *coef, int want, double threshold,
                          sm_class_metrics *cm) {
  double *pr = malloc(((size_t)f->n + 1) * sizeof *pr), *lab = malloc(((size_t)f->n + 1) * sizeof *lab);
  SM_TRY(ctx, sm_ctx_agree(ctx, pr && lab ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory")));
  int64_t k = 0;
  for (int64_t i = 0; i < f->n; i++) {
    if (f->tag[i] != want) continue;
    double eta = 0;
    for (int j = 0; j < f->p; j++)
      eta += f->x[i * f->p + j] * coef[j];
    pr[k] = 1 / (1 + exp(-eta)), lab[k++] = f->y[i];
  }
  sm_status st = sm_class_metrics_compute(ctx, pr, lab, NULL, k, threshold, cm);
  free(pr), free(lab);
  return st;
}

typedef struct {
  uint64_t key;
  double row, prob, label;
} ev_row;

static int cmp_event(const void *a, const void *b) {
  const ev_row *x = a, *y = b;
  if (x->key != y->key) return (x->key > y->key) - (x->key < y->key);
  return (x->row > y->row) - (x->row < y->row);
}

/* FNV-1a of the value of column j at this rank's table row i (strings; numbers as %.17g). */
static uint64_t event_key(sm_table *t, int j, int64_t i) {
  char buf[64];
  const char *v = buf;
  if (sm_table_col_is_str(t, j))
    v = sm_table_str(t, j)[i];
  else
    snprintf(buf, sizeof buf, "%.17g", sm_table_num(t, j)[i]);
  uint64_t h = 1469598103934665603ULL;
  for (; *v; v++)
    h = (h ^ (unsigned char)*v) * 1099511628211ULL;
  return h;
}

/* Metrics per event over the held-out rows (tag 2): the rows sharing a value of `col` vote with
 * their mean probability (summed in table-row order, so the result does not depend on the rank
 * count). The held-out rows go, as (row, probability, label), from the frame to the rank of their
 * table row, which adds the event key (FNV-1a of the value), then to the rank key mod P, which
 * owns the event: no rank holds more than its share. Collective. */
static sm_status evaluate_events(sm_ctx *ctx, sm_table *t, const sm_frame *f, const double *coef, const char *col,
                                 double threshold, sm_class_metrics *cm) {
  int j, P = ctx->size;
  SM_TRY(ctx, sm_ctx_agree(ctx, sm_table_find(t, col, &j)));
  sm_range r = sm_table_range(t);
  int64_t N = sm_table_nrows(t), np = 0, m1 = 0, m2 = 0, ne = 0, mixed = 0;
  for (int64_t i = 0; i < f->n; i++)
    np += f->tag[i] == 2;
  int64_t *cnt = calloc((size_t)P, sizeof *cnt), *at = calloc((size_t)P, sizeof *at);
  double *mp = malloc(((size_t)np + 1) * 3 * sizeof *mp), *rp = NULL, *kp = NULL, *ep = NULL;
  sm_status st = sm_ctx_agree(ctx, cnt && at && mp ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory"));
  np = 0; /* frame rows are in table-row order, so grouped by the owner of their row */
  for (int64_t i = 0; st == SM_OK && i < f->n; i++) {
    if (f->tag[i] != 2) continue;
    double eta = 0;
    for (int c = 0; c < f->p; c++)
      eta += f->x[i * f->p + c] * coef[c];
    mp[3 * np] = (double)f->row[i], mp[3 * np + 1] = 1 / (1 + exp(-eta)), mp[3 * np + 2] = f->y[i];
    cnt[sm__table_owner(f->row[i], N, P)]++, np++;
  }
  if (st == SM_OK) st = sm__exchange(ctx, mp, 3, cnt, &rp, &m1);
  free(mp);
  if (st == SM_OK) { /* (key halves, row, probability, label) grouped by the key's rank */
    kp = malloc(((size_t)m1 + 1) * 5 * sizeof *kp);
    uint64_t *key = malloc(((size_t)m1 + 1) * sizeof *key);
    memset(cnt, 0, (size_t)P * sizeof *cnt);
    for (int64_t i = 0; kp && key && i < m1; i++)
      key[i] = event_key(t, j, (int64_t)rp[3 * i] - r.first), cnt[key[i] % (uint64_t)P]++;
    for (int q = 1; q < P; q++)
      at[q] = at[q - 1] + cnt[q - 1];
    for (int64_t i = 0; kp && key && i < m1; i++) {
      uint64_t h = key[i];
      double *k = kp + 5 * at[h % (uint64_t)P]++;
      k[0] = (double)(h >> 32), k[1] = (double)(h & 0xffffffffu), k[2] = rp[3 * i], k[3] = rp[3 * i + 1];
      k[4] = rp[3 * i + 2];
    }
    st = sm_ctx_agree(ctx, kp && key ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory"));
    free(key);
  }
  free(rp);
  if (st == SM_OK) st = sm__exchange(ctx, kp, 5, cnt, &ep, &m2);
  free(kp), free(cnt), free(at);
  ev_row *ev = st == SM_OK ? malloc(((size_t)m2 + 1) * sizeof *ev) : NULL;
  double *pr = ev ? malloc(((size_t)m2 + 1) * sizeof *pr) : NULL,
         *lab = pr ? malloc(((size_t)m2 + 1) * sizeof *lab) : NULL;
  if (st == SM_OK) st = sm_ctx_agree(ctx, lab ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory"));
  for (int64_t i = 0; st == SM_OK && i < m2; i++) {
    const double *e = ep + 5 * i;
    ev[i] = (ev_row){(uint64_t)e[0] << 32 | (uint64_t)e[1], e[2], e[3], e[4]};
  }
  free(ep);
  if (st == SM_OK) qsort(ev, (size_t)m2, sizeof *ev, cmp_event); /* each event's rows in table order */
  for (int64_t i = 0; st == SM_OK && i < m2;) {
    int64_t k = i;
    double sum = 0;
    for (; k < m2 && ev[k].key == ev[i].key; k++)
      sum += ev[k].prob, mixed += ev[k].label != ev[i].label;
    pr[ne] = sum / (double)(k - i), lab[ne++] = ev[i].label, i = k;
  }
  if (st == SM_OK) SM_MPI(ctx, MPI_Allreduce(MPI_IN_PLACE, &mixed, 1, MPI_INT64_T, MPI_SUM, ctx->comm));
  if (st == SM_OK && mixed)
    st = SM_ERR(ctx, SM_ERR_DATA,
                "event_column %s: %lld held-out rows differ in class from the first row of their event", col,
                (long long)mixed);
  if (st == SM_OK) st = sm_class_metrics_compute(ctx, pr, lab, NULL, ne, threshold, cm);
  free(ev), free(pr), free(lab);
  return st;
}

static void print_metrics(FILE *to, const sm_class_metrics *c, const char *what, double thr) {
  fprintf(to, "Classification on %s (n = %lld, threshold %g):\n", what, (long long)c->n, thr);
  fprintf(to, "  accuracy %.4f  precision %.4f  recall %.4f  F1 %.4f  ROC AUC %.4f\n", c->accuracy, c->precision,
          c->recall, c->f1, c->auc);
  fprintf(to, "  confusion matrix   predicted 0  predicted 1\n");
  fprintf(to, "          actual 0  %11lld  %11lld\n          actual 1  %11lld  %11lld\n", (long long)c->tn,
          (long long)c->fp, (long long)c->fn, (long long)c->tp);
}

/* The metrics as both result formats name them (the confusion matrix apart). */
static void class_named(const sm_class_metrics *c, sm__named *v) {
  const sm__named w[6] = {
      {"n", (double)c->n}, {"accuracy", c->accuracy}, {"precision", c->precision}, {"recall", c->recall},
      {"f1", c->f1},       {"roc_auc", c->auc}};
  memcpy(v, w, sizeof w);
}

static void json_metrics(FILE *f, const char *key, const sm_class_metrics *c) {
  sm__named v[6];
  class_named(c, v);
  fprintf(f, "  \"%s\": {", key), sm__json_named(f, v, 6, ", ");
  fprintf(f, ", \"confusion\": [[%lld, %lld], [%lld, %lld]]}", (long long)c->tn, (long long)c->fp, (long long)c->fn,
          (long long)c->tp);
}

/* The metrics as attributes of the group `key`, the confusion matrix as key/confusion [2][2]
 * (rows actual 0, 1; columns predicted 0, 1). Collective. */
static sm_status h5_metrics(sm_ctx *ctx, sm__result *r, const char *key, const sm_class_metrics *c) {
  sm__named v[6];
  class_named(c, v);
  int64_t conf[4] = {c->tn, c->fp, c->fn, c->tp};
  char name[128];
  snprintf(name, sizeof name, "%s/confusion", key);
  sm_status st = sm__h5_named(r, key, v, 6);
  if (st == SM_OK)
    st = sm__result_rows(r, name, SM__RES_I64, 2, 2, 0, ctx->rank ? 0 : 2, conf, "predicted_0,predicted_1");
  return st;
}

/* The coefficient table [p][6]: estimate, standard error, z value, p value and the Wald interval
 * estimate -+ qnorm(0.975) se. Caller frees; NULL when out of memory. */
static double *glm_coef_table(const sm_glm *m) {
  double *tab = malloc((6 * (size_t)m->p + 1) * sizeof *tab), z = sm__qnorm(0.975);
  for (int j = 0; tab && j < m->p; j++) {
    const double v[6] = {
        m->coef[j], m->se[j], m->zval[j], m->pval[j], m->coef[j] - z * m->se[j], m->coef[j] + z * m->se[j]};
    memcpy(tab + 6 * j, v, sizeof v);
  }
  return tab;
}

/* The fit's deviances and AIC as both result formats name them. */
static void glm_summary(const sm_glm *m, sm__named *v) {
  const sm__named w[3] = {{"deviance", m->deviance}, {"null_deviance", m->null_deviance}, {"aic", m->aic}};
  memcpy(v, w, sizeof w);
}

/* The metrics of a run: on the held-out (else the fitted) rows, per held-out event, on the dev
 * rows and pooled over the folds (n = 0: none). */
typedef struct {
  sm_class_metrics cm, em, dm, cv;
  int folds;
} glm_metrics;

static sm_status write_json(sm_ctx *ctx, const sm_config *cfg, const sm_frame *fr, const sm_glm *m, const char *call,
                            const glm_metrics *mt) {
  char path[4096];
  sm_config_output_path(cfg, "output", path, sizeof path);
  FILE *f;
  SM_TRY(ctx, sm__json_open(ctx, path, &f));
  if (f) {
    static const char *const keys[6] = {"estimate", "std_error",     "statistic",
                                        "p_value",  "wald_ci_lower", "wald_ci_upper"};
    double *tab = glm_coef_table(m);
    fprintf(f, "{\n  \"model\": \"glm\",\n  \"family\": \"binomial\",\n  \"call\": ");
    sm__json_str(f, call);
    fprintf(f, ",\n  \"software\": \"sisma %s\",\n  \"ranks\": %d,\n  \"n\": %lld,\n  \"n_heldout\": %lld,\n",
            sm_version(), ctx->size, (long long)m->n, (long long)fr->n_heldout);
    if (tab) sm__json_coefs(f, fr, tab, keys);
    free(tab);
    sm__named v[3];
    glm_summary(m, v);
    fprintf(f, "  "), sm__json_named(f, v, 3, ",\n  ");
    fprintf(f, ",\n  \"iterations\": %d,\n  \"converged\": %s,\n", m->iter, m->converged ? "true" : "false");
    json_metrics(f, fr->n_heldout > 0 ? "heldout_metrics" : "training_metrics", &mt->cm);
    if (mt->em.n > 0) fprintf(f, ",\n"), json_metrics(f, "heldout_event_metrics", &mt->em);
    if (mt->dm.n > 0) fprintf(f, ",\n"), json_metrics(f, "dev_metrics", &mt->dm);
    if (mt->folds > 0) fprintf(f, ",\n"), json_metrics(f, "cross_validation_pooled", &mt->cv);
    fprintf(f, "\n}\n");
  }
  return sm__json_close(ctx, path, f);
}

/* Per frame row [fr->n][3]: the response, the linear predictor x'b and the fitted probability
 * 1 / (1 + exp(-x'b)), for every frame row (held-out rows: predictions). A pass over the frame
 * after the fit, only for HDF5 output. Caller frees; NULL when out of memory. */
static double *glm_row_values(const sm_frame *fr, const double *coef) {
  double *v = malloc(((size_t)fr->n * 3 + 1) * sizeof *v);
  for (int64_t i = 0; v && i < fr->n; i++) {
    double eta = 0;
    for (int j = 0; j < fr->p; j++)
      eta += fr->x[i * fr->p + j] * coef[j];
    v[3 * i] = fr->y[i], v[3 * i + 1] = eta, v[3 * i + 2] = 1 / (1 + exp(-eta));
  }
  return v;
}

static sm_status write_h5(sm_ctx *ctx, const sm_config *cfg, sm_table *t, const sm_frame *fr, const sm_glm *m,
                          const char *call, const glm_metrics *mt) {
  char path[4096];
  sm_config_output_path(cfg, "output", path, sizeof path);
  double *tab = glm_coef_table(m), *rows = glm_row_values(fr, m->coef);
  sm_status st = sm_ctx_agree(ctx, tab && rows ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory"));
  sm__result *r = NULL;
  if (st == SM_OK) st = sm__stats_h5_create(ctx, cfg, path, 1, &r);
  const sm__named head[] = {{"n", (double)m->n},
                            {"n_heldout", (double)fr->n_heldout},
                            {"df_null", (double)m->df_null},
                            {"df_residual", (double)m->df_residual},
                            {"iterations", m->iter},
                            {"converged", m->converged},
                            {"threshold", sm_config_float(cfg, "threshold")}};
  sm__named v[3];
  glm_summary(m, v);
  if (st == SM_OK) st = sm__result_attr(r, "call", call);
  if (st == SM_OK) st = sm__h5_named(r, NULL, head, 7);
  if (st == SM_OK) st = sm__h5_named(r, NULL, v, 3);
  if (st == SM_OK)
    st = sm__h5_coefs(ctx, r, fr, tab, 6, "estimate,std_error,z_value,p_value,wald_ci_lower,wald_ci_upper");
  if (st == SM_OK) st = sm__result_small(r, "deviance_residual_quantiles", SM__RES_F64, 5, 0, m->dev_resid_q);
  if (st == SM_OK) st = h5_metrics(ctx, r, fr->n_heldout > 0 ? "heldout_metrics" : "training_metrics", &mt->cm);
  if (st == SM_OK && mt->em.n > 0) st = h5_metrics(ctx, r, "heldout_event_metrics", &mt->em);
  if (st == SM_OK && mt->dm.n > 0) st = h5_metrics(ctx, r, "dev_metrics", &mt->dm);
  if (st == SM_OK && mt->folds > 0) st = h5_metrics(ctx, r, "cross_validation_pooled", &mt->cv);
  st = sm__stats_h5_finish(ctx, cfg, t, fr, &r, 3, rows, "response,linear_predictor,fitted", st);
  free(tab), free(rows);
  if (st == SM_OK) sm_info(ctx, "glm: wrote %s", path);
  return st;
}

/* The result of a gradient-descent fit (solver gd / sgd): the estimates (no standard errors: the
 * descent gives none), the cost, the metrics of `what` ("heldout_metrics" or "training_metrics")
 * and, in HDF5, the per-row linear predictor and probability. JSON or HDF5 as the path says. */
static sm_status write_gd(sm_ctx *ctx, const sm_config *cfg, sm_table *t, const sm_frame *fr, const sm_gd_result *g,
                          const char *what, const sm_class_metrics *c) {
  char path[4096];
  sm_config_output_path(cfg, "output", path, sizeof path);
  const sm__named head[] = {{"n", (double)fr->n_total},
                            {"n_heldout", (double)fr->n_heldout},
                            {"iterations", (double)g->iter},
                            {"cost", g->cost},
                            {"threshold", sm_config_float(cfg, "threshold")},
                            {"converged", g->converged}}; /* (JSON: a boolean) */
  if (!sm__output_is_h5(path)) {
    FILE *f;
    SM_TRY(ctx, sm__json_open(ctx, path, &f));
    if (f) {
      fprintf(f, "{\n  \"model\": \"glm\",\n  \"family\": \"binomial\",\n  \"solver\": ");
      sm__json_str(f, sm_config_str(cfg, "solver"));
      fprintf(f, ",\n  \"software\": \"sisma %s\",\n  \"ranks\": %d,\n  ", sm_version(), ctx->size);
      sm__json_named(f, head, 5, ",\n  ");
      fprintf(f, ",\n  \"converged\": %s,\n  \"coefficients\": {", g->converged ? "true" : "false");
      for (int j = 0; j < g->p; j++)
        sm__json_str(f, fr->names[j]), fprintf(f, ": "), sm__json_num(f, g->coef[j]),
            fprintf(f, j + 1 < g->p ? ", " : "},\n");
      json_metrics(f, what, c);
      fprintf(f, "\n}\n");
    }
    return sm__json_close(ctx, path, f);
  }
  double *rows = glm_row_values(fr, g->coef);
  sm_status st = sm_ctx_agree(ctx, rows ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory"));
  sm__result *r = NULL;
  if (st == SM_OK) st = sm__stats_h5_create(ctx, cfg, path, 1, &r);
  if (st == SM_OK) st = sm__h5_named(r, NULL, head, 6);
  if (st == SM_OK) st = sm__h5_coefs(ctx, r, fr, g->coef, 1, "estimate");
  if (st == SM_OK) st = h5_metrics(ctx, r, what, c);
  st = sm__stats_h5_finish(ctx, cfg, t, fr, &r, 3, rows, "response,linear_predictor,fitted", st);
  free(rows);
  if (st == SM_OK) sm_info(ctx, "glm: wrote %s", path);
  return st;
}

/* One fold of the k-fold cross-validation: fit, then pool the held-out predictions' confusion
 * counts and add the fold's AUC / k. */
static sm_status glm_fold(sm_ctx *ctx, const sm_config *cfg, sm_frame *fr, void *u) {
  sm_class_metrics *pooled = u, c;
  sm_glm *m = NULL;
  sm_status st = SM_OK;
  if (!strcmp(sm_config_str(cfg, "class_weights"), "balanced")) st = sm_ctx_agree(ctx, balance(ctx, fr));
  if (st == SM_OK)
    st = sm_glm_fit(ctx, fr, (int)sm_config_int(cfg, "maxit"), sm_config_float(cfg, "epsilon"),
                    !strcmp(sm_config_str(cfg, "method"), "auto"), &m);
  if (st == SM_OK) st = evaluate(ctx, fr, m->coef, 2, sm_config_float(cfg, "threshold"), &c);
  sm_glm_destroy(&m);
  if (st == SM_OK)
    pooled->tp += c.tp, pooled->fp += c.fp, pooled->tn += c.tn, pooled->fn += c.fn, pooled->n += c.n,
        pooled->auc += c.auc / (double)sm_config_int(cfg, "folds");
  return st;
}

/* k-fold cross-validation: the pooled confusion counts; the AUC is the mean over folds. */
static sm_status cross_validate(sm_ctx *ctx, const sm_config *cfg, sm_table *t, const sm_formula *fm,
                                unsigned char *mask, sm_class_metrics *c) {
  memset(c, 0, sizeof *c);
  SM_TRY(ctx, sm__stats_folds(ctx, cfg, t, fm, mask, glm_fold, c));
  c->accuracy = (double)(c->tp + c->tn) / (double)c->n;
  c->precision = (double)c->tp / (double)(c->tp + c->fp);
  c->recall = (double)c->tp / (double)(c->tp + c->fn);
  c->f1 = 2 * c->precision * c->recall / (c->precision + c->recall);
  return SM_OK;
}

static sm_status glm_run(sm_ctx *ctx, const sm_config *cfg) {
  sm_table *t = NULL;
  sm_formula *fm = NULL;
  sm_frame *fr = NULL;
  sm_glm *m = NULL;
  SM_TRY(ctx, sm__stats_open(ctx, cfg, &t, &fm));
  unsigned char *mask = malloc((size_t)sm_table_range(t).count + 1);
  sm_status st = sm_ctx_agree(ctx, mask ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory"));
  if (st == SM_OK) st = sm_ctx_agree(ctx, sm__stats_mask(ctx, cfg, t, -1, mask));
  const char *w = sm_config_str(cfg, "weights");
  if (st == SM_OK) st = sm_frame_create(ctx, t, fm, w[0] ? w : NULL, mask, sm_config_int(cfg, "block_rows"), &fr);
  if (st == SM_OK && !strcmp(sm_config_str(cfg, "class_weights"), "balanced")) st = sm_ctx_agree(ctx, balance(ctx, fr));
  if (st == SM_OK && strcmp(sm_config_str(cfg, "solver"), "exact")) { /* gradient descent */
    sm_gd_result *r = NULL;
    sm_class_metrics c;
    st = sm__stage_gd(ctx, cfg, fr, 1, &r);
    if (st == SM_OK) st = evaluate(ctx, fr, r->coef, fr->n_heldout > 0 ? 2 : 1, sm_config_float(cfg, "threshold"), &c);
    if (st == SM_OK && ctx->rank == 0)
      print_metrics(stdout, &c, fr->n_heldout > 0 ? "the held-out split" : "the fitted rows",
                    sm_config_float(cfg, "threshold"));
    if (st == SM_OK && sm_config_str(cfg, "output")[0])
      st = write_gd(ctx, cfg, t, fr, r, fr->n_heldout > 0 ? "heldout_metrics" : "training_metrics", &c);
    sm_gd_result_destroy(&r);
    free(mask);
    sm_frame_destroy(&fr);
    sm_formula_destroy(&fm);
    sm_table_close(&t);
    return st;
  }
  double t0 = sm_wtime();
  if (st == SM_OK)
    st = sm_glm_fit(ctx, fr, (int)sm_config_int(cfg, "maxit"), sm_config_float(cfg, "epsilon"),
                    !strcmp(sm_config_str(cfg, "method"), "auto"), &m);
  if (st == SM_OK) sm_debug(ctx, "glm timing: IRLS fit + summary %.3f s (%d iterations)", sm_wtime() - t0, m->iter);
  glm_metrics mt;
  memset(&mt, 0, sizeof mt);
  const char *ec = sm_config_str(cfg, "event_column");
  double thr = sm_config_float(cfg, "threshold");
  if (st == SM_OK) st = evaluate(ctx, fr, m->coef, fr->n_heldout > 0 ? 2 : 1, thr, &mt.cm);
  if (st == SM_OK && ec[0] && fr->n_heldout > 0) st = evaluate_events(ctx, t, fr, m->coef, ec, thr, &mt.em);
  if (st == SM_OK) st = evaluate(ctx, fr, m->coef, 3, thr, &mt.dm);
  int folds = (int)sm_config_int(cfg, "folds");
  mt.folds = folds > 1 ? folds : 0;
  if (st == SM_OK && mt.folds) st = cross_validate(ctx, cfg, t, fm, mask, &mt.cv);
  char call[4096];
  sm__stats_call(cfg, fm, "glm", "binomial", call, sizeof call);
  if (st == SM_OK && ctx->rank == 0) {
    sm_glm_print(stdout, m, fr, call);
    print_metrics(stdout, &mt.cm, fr->n_heldout > 0 ? "the held-out split" : "the fitted rows", thr);
    if (mt.em.n > 0) {
      char what[192];
      snprintf(what, sizeof what, "the held-out events (%.64s; mean probability of their rows)", ec);
      print_metrics(stdout, &mt.em, what, thr);
    }
    if (mt.dm.n > 0) print_metrics(stdout, &mt.dm, "the dev split", thr);
    if (mt.folds) {
      char what[64];
      snprintf(what, sizeof what, "%d-fold cross-validation (pooled; AUC: mean of folds)", folds);
      print_metrics(stdout, &mt.cv, what, thr);
    }
    fflush(stdout);
  }
  const char *out = sm_config_str(cfg, "output");
  if (st == SM_OK && out[0] && sm__output_is_h5(out)) st = write_h5(ctx, cfg, t, fr, m, call, &mt);
  if (st == SM_OK && out[0] && !sm__output_is_h5(out)) st = write_json(ctx, cfg, fr, m, call, &mt);
  free(mask);
  sm_glm_destroy(&m);
  sm_frame_destroy(&fr);
  sm_formula_destroy(&fm);
  sm_table_close(&t);
  return st;
}

const sm_stage sm_stage_glm = {"glm",
                               "logistic regression (binomial GLM by IRLS) with R's summary.glm and held-out metrics",
                               glm_keys, glm_run, NULL};
const sm_stage sm_stage_logistic = {"logistic", "the glm stage with family binomial (foreshock/aftershock baselines)",
                                    glm_keys, glm_run, NULL};
