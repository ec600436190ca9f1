/* Fuzz target: a formula and a CSV table through the statistics path - table, formula, model
 * frame, lm with its summary, confidence intervals and diagnostics, binomial glm, gradient descent
 * (src/stats, src/table). The input's first line is `FORMULA[;w][;split][;b]`: weights from
 * column w, a row mask holding some rows out and skipping others, fixed blocks of b table rows
 * (1-9; default 3, so that small tables span several blocks and ranks). The rest is the CSV file.
 * Every step must end in a result or a clean error, the same on every rank and at every rank
 * count; the digest holds each step's status and the fitted values, bit for bit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "sisma/stats.h"

static FILE *devnull(void) {
  static FILE *f;
  if (!f) f = fopen("/dev/null", "w");
  return f;
}

static void put_all(fuzz_digest *d, const double *v, int n) {
  for (int i = 0; v && i < n; i++)
    fuzz_put(d, v[i]);
}

static void fit_lm(sm_ctx *ctx, const sm_frame *fr, const char *call, fuzz_digest *d) {
  sm_lm *m = NULL;
  sm_status st = sm_lm_fit(ctx, fr, 1, &m);
  d->code[3] = (int)st;
  if (st != SM_OK) return;
  FILE *o = devnull();
  sm_lm_print(o, m, fr, call);
  sm_lm_print_confint(o, m, fr, 0.95);
  put_all(d, m->coef, m->p), put_all(d, m->se, m->p), put_all(d, m->resid_q, 5);
  fuzz_put(d, m->sigma), fuzz_put(d, m->r2), fuzz_put(d, m->fstat), fuzz_put(d, m->loglik);
  fuzz_put(d, (double)m->rdf), fuzz_put(d, m->used_gram);
  sm_lm_diag *g = NULL;
  st = sm_lm_diagnose(ctx, fr, m, &g);
  d->code[4] = (int)st;
  if (st == SM_OK) {
    sm_lm_diag_print(o, g, fr, m, NULL);
    fuzz_put(d, g->bp), fuzz_put(d, g->dw), fuzz_put(d, (double)g->n_high_leverage);
    fuzz_put(d, (double)g->n_outliers), fuzz_put(d, (double)g->n_influential), fuzz_put(d, g->nworst);
    for (int k = 0; k < g->nworst; k++)
      fuzz_put(d, (double)g->worst_row[k]), fuzz_put(d, g->worst_cooks[k]);
    put_all(d, g->gvif, g->nvif);
  }
  sm_lm_diag_destroy(&g);
  sm_lm_destroy(&m);
}

static void fit_glm(sm_ctx *ctx, const sm_frame *fr, const char *call, fuzz_digest *d) {
  sm_glm *m = NULL;
  sm_status st = sm_glm_fit(ctx, fr, 25, 1e-8, 1, &m);
  d->code[5] = (int)st;
  if (st == SM_OK) {
    sm_glm_print(devnull(), m, fr, call);
    put_all(d, m->coef, m->p), put_all(d, m->se, m->p), put_all(d, m->dev_resid_q, 5);
    fuzz_put(d, m->deviance), fuzz_put(d, m->null_deviance), fuzz_put(d, m->iter), fuzz_put(d, m->converged);
  }
  sm_glm_destroy(&m);
  sm_gd_opts o = {.sgd = fr->n_total % 2,
                  .binomial = st == SM_OK,
                  .l1 = 0.01,
                  .l2 = 0.1,
                  .tol = 1e-6,
                  .max_iter = 30,
                  .batch = 4,
                  .seed = 7};
  sm_gd_result *g = NULL;
  st = sm_gd_fit(ctx, fr, &o, &g);
  d->code[6] = (int)st;
  if (st == SM_OK) put_all(d, g->coef, g->p), fuzz_put(d, g->cost), fuzz_put(d, (double)g->iter);
  sm_gd_result_destroy(&g);
}

int fuzz_one(sm_ctx *ctx, const uint8_t *data, size_t size, const char *dir, fuzz_digest *d) {
  for (int k = 0; k < FUZZ_STEPS; k++)
    d->code[k] = -1;
  const uint8_t *nl = memchr(data, '\n', size);
  if (!nl || nl - data > 400 || memchr(data, 0, (size_t)(nl - data))) return 1;
  char line[404], *save = NULL, *weights = NULL;
  memcpy(line, data, (size_t)(nl - data)), line[nl - data] = 0;
  int split = 0;
  int64_t block = 3;
  strtok_r(line, ";", &save); /* line: the formula */
  for (char *s; (s = strtok_r(NULL, ";", &save));)
    if (!strcmp(s, "split"))
      split = 1;
    else if (s[0] >= '1' && s[0] <= '9' && !s[1])
      block = s[0] - '0';
    else
      weights = s;
  char path[4096];
  snprintf(path, sizeof path, "%s/fuzz.csv", dir);
  if (!ctx->rank) {
    FILE *f = fopen(path, "wb");
    size_t n = size - (size_t)(nl + 1 - data);
    if (!f || fwrite(nl + 1, 1, n, f) != n || fclose(f)) MPI_Abort(ctx->comm, 3);
  }
  MPI_Barrier(ctx->comm);
  sm_table *t = NULL;
  sm_formula *fm = NULL;
  sm_frame *fr = NULL;
  unsigned char *mask = NULL;
  d->code[0] = (int)sm_table_open(ctx, path, &t);
  if (d->code[0] == SM_OK) {
    int nc = sm_table_ncols(t);
    const char **names = malloc((size_t)nc * sizeof *names + 1);
    for (int j = 0; j < nc; j++)
      names[j] = sm_table_col_name(t, j);
    d->code[1] = (int)sm_ctx_agree(ctx, sm_formula_parse(ctx, line, names, nc, &fm));
    free(names);
  }
  if (d->code[1] == SM_OK) {
    sm_range r = sm_table_range(t);
    mask = split ? malloc((size_t)r.count + 1) : NULL;
    for (int64_t i = 0; mask && i < r.count; i++) {
      int64_t g = r.first + i;
      mask[i] = g % 5 == 4 ? 2 : g % 7 == 6 ? 0 : 1;
    }
    d->code[2] = (int)sm_frame_create(ctx, t, fm, weights, mask, block, &fr);
  }
  if (d->code[2] == SM_OK) {
    char call[512];
    snprintf(call, sizeof call, "lm(formula = %s, data = fuzz)", sm_formula_call_text(fm));
    fuzz_put(d, fr->p), fuzz_put(d, (double)fr->n_total), fuzz_put(d, (double)fr->n_dropped);
    fuzz_put(d, (double)fr->n_heldout);
    fit_lm(ctx, fr, call, d);
    fit_glm(ctx, fr, call, d);
  }
  sm_frame_destroy(&fr);
  free(mask);
  sm_formula_destroy(&fm);
  sm_table_close(&t);
  if (!ctx->rank) remove(path);
  return 1;
}
