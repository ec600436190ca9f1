/* The statistics subsystem against R's golden files at 1-4 ranks: coefficients, standard errors,
 * test statistics, p-values, fit criteria, influence measures, VIF, Breusch-Pagan, Durbin-Watson
 * and logistic fits; distribution functions; distributed quantiles; formula errors; and
 * bit-identical fits at every rank count (the same problem solved on sub-communicators). */
#include <float.h>

#include "harness.h"
#include "sisma/rng.h"
#include "stats/internal.h"

static char golden[1024];

static void gpath(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", golden, name); }

/* name,value lines of a .num file */
static int read_num(const char *name, char (*keys)[128], double *vals, int max) {
  char p[1200];
  gpath(p, sizeof p, name);
  FILE *f = fopen(p, "r");
  if (!f) {
    fprintf(stderr, "cannot read %s\n", p);
    return 0;
  }
  int n = 0;
  char line[512];
  while (n < max && fgets(line, sizeof line, f)) {
    char *c = strrchr(line, ',');
    if (!c) continue;
    *c = '\0';
    snprintf(keys[n], 128, "%s", line);
    vals[n++] = !strncmp(c + 1, "NA", 2) ? NAN : strtod(c + 1, NULL);
  }
  fclose(f);
  return n;
}

static double lookup(char (*keys)[128], const double *vals, int n, const char *key) {
  for (int i = 0; i < n; i++)
    if (!strcmp(keys[i], key)) return vals[i];
  fprintf(stderr, "golden value %s missing\n", key);
  return NAN;
}

static void open_fit(sm_ctx *ctx, const char *csv, const char *formula, const char *weights, int64_t block,
                     sm_table **t, sm_formula **fm, sm_frame **fr) {
  char p[1200];
  gpath(p, sizeof p, csv);
  *t = NULL, *fm = NULL, *fr = NULL;
  CHECK_OK(ctx, sm_table_open(ctx, p, t));
  if (!*t) return;
  const char *names[64];
  for (int j = 0; j < sm_table_ncols(*t); j++)
    names[j] = sm_table_col_name(*t, j);
  CHECK_OK(ctx, sm_formula_parse(ctx, formula, names, sm_table_ncols(*t), fm));
  if (*fm) CHECK_OK(ctx, sm_frame_create(ctx, *t, *fm, weights, NULL, block, fr));
}

static void close_fit(sm_table **t, sm_formula **fm, sm_frame **fr) {
  sm_frame_destroy(fr);
  sm_formula_destroy(fm);
  sm_table_close(t);
}

static const struct {
  const char *name, *formula, *weights;
} lm_models[] = {
    {"lm_basic", "y ~ x1 + x2", NULL},
    {"lm_weighted", "y ~ x1 + x2", "w"},
    {"lm_factor", "y ~ x1 + g", NULL},
    {"lm_poly", "y ~ poly(x1, 3) + x2", NULL},
    {"lm_transform", "y ~ log(x3) + I(x1^2) + sqrt(x3) + x1:x2", NULL},
    {"lm_interact", "y ~ x1 * g", NULL},
    {"lm_noint", "y ~ x1 + x2 - 1", NULL},
    {"lm_log10", "log10(x3) ~ x1 + log10(w)", NULL},
    {"lm_factor_num", "y ~ x1 + factor(k)", NULL},
};

/* p-values: relative agreement, or both below R's print threshold */
#define CHECK_P(a, b) CHECK(fabs((a) - (b)) <= 1e-8 * fabs(b) + 1e-300 || ((a) < 1e-16 && (b) < 1e-16))

static void test_lm_golden(sm_ctx *ctx) {
  for (int gram = 0; gram < 2; gram++)
    for (size_t k = 0; k < sizeof lm_models / sizeof lm_models[0]; k++) {
      sm_table *t;
      sm_formula *fm;
      sm_frame *fr;
      open_fit(ctx, "reg.csv", lm_models[k].formula, lm_models[k].weights, 7, &t, &fm, &fr);
      sm_lm *m = NULL;
      if (fr) CHECK_OK(ctx, sm_lm_fit(ctx, fr, gram, &m));
      char keys[128][128], file[256];
      double vals[128];
      snprintf(file, sizeof file, "%s.num", lm_models[k].name);
      int n = read_num(file, keys, vals, 128);
      CHECK(n > 0);
      if (m && n > 0) {
        for (int j = 0; j < m->p; j++) {
          char key[160];
          snprintf(key, sizeof key, "coef:%s", fr->names[j]);
          CHECK_NEAR(m->coef[j], lookup(keys, vals, n, key), 1e-10);
          snprintf(key, sizeof key, "se:%s", fr->names[j]);
          CHECK_NEAR(m->se[j], lookup(keys, vals, n, key), 1e-10);
          snprintf(key, sizeof key, "t:%s", fr->names[j]);
          CHECK_NEAR(m->tval[j], lookup(keys, vals, n, key), 1e-9);
          snprintf(key, sizeof key, "p:%s", fr->names[j]);
          CHECK_P(m->pval[j], lookup(keys, vals, n, key));
        }
        CHECK_NEAR(m->sigma, lookup(keys, vals, n, "sigma"), 1e-12);
        CHECK_NEAR(m->r2, lookup(keys, vals, n, "r2"), 1e-12);
        CHECK_NEAR(m->adj_r2, lookup(keys, vals, n, "adj_r2"), 1e-12);
        CHECK_NEAR(m->fstat, lookup(keys, vals, n, "fstat"), 1e-10);
        CHECK_NEAR(m->loglik, lookup(keys, vals, n, "loglik"), 1e-11);
        CHECK_NEAR(m->aic, lookup(keys, vals, n, "aic"), 1e-11);
        CHECK_NEAR(m->bic, lookup(keys, vals, n, "bic"), 1e-11);
      }
      if (ctx->rank == 0 && sm_test_failures) fprintf(stderr, "(model %s)\n", lm_models[k].name);
      sm_lm_destroy(&m);
      close_fit(&t, &fm, &fr);
    }
}

/* The Gram kernel's tile shapes (tsqr.c: 3 x 16 with the intercept's column sums, 4 x 12, 4 x 8
 * with 4 x 4, paired and single 4 x 4) at every p from 4 to 32 the AVX2 path takes (p a multiple
 * of 4) and the p between (dsyrk), with and without an intercept, unweighted in blocks of 1000
 * rows (several 64-row chunks, an odd last one) and weighted (every 11th row weight 0: the scaled
 * copy) in blocks of 7 and 1993 rows: the Cholesky route must agree with TSQR. */
static void test_gram_shapes(sm_ctx *ctx) {
  char path[1200];
  snprintf(path, sizeof path, "%s/gram.csv", sm_test_dir());
  if (ctx->rank == 0) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    sm_rng r;
    sm_rng_init(&r, 20261125, 0);
    fprintf(f, "y");
    for (int j = 1; j <= 32; j++)
      fprintf(f, ",x%d", j);
    fprintf(f, ",w");
    for (int i = 0; f && i < 2503; i++) {
      double x[33], y = 1;
      x[1] = 2 * sm_rng_uniform(&r) - 1;
      for (int j = 2; j <= 32; j++)
        x[j] = 2 * sm_rng_uniform(&r) - 1 + 0.3 * x[1];
      for (int j = 1; j <= 32; j++)
        y += 0.05 * j * x[j];
      fprintf(f, "\n%.17g", y + sm_rng_uniform(&r) - 0.5);
      for (int j = 1; j <= 32; j++)
        fprintf(f, ",%.17g", x[j]);
      fprintf(f, ",%.17g", i % 11 ? 0.5 + sm_rng_uniform(&r) : 0); /* w: some rows weightless */
    }
    if (f) fputc('\n', f), fclose(f);
  }
  MPI_Barrier(ctx->comm);
  sm_table *t = NULL;
  CHECK_OK(ctx, sm_table_open(ctx, path, &t));
  const char *names[64];
  for (int j = 0; t && j < sm_table_ncols(t); j++)
    names[j] = sm_table_col_name(t, j);
  for (int p = 3; t && p <= 32; p++)
    for (int icpt = 0; icpt < 2; icpt++)
      for (int64_t block = 7; block <= 2000; block += 993) { /* 1000: unit weights; 7, 1993: weighted */
        char formula[400];
        int k = p - icpt, len = snprintf(formula, sizeof formula, "y ~ x1");
        for (int j = 2; j <= k; j++)
          len += snprintf(formula + len, sizeof formula - (size_t)len, " + x%d", j);
        snprintf(formula + len, sizeof formula - (size_t)len, "%s", icpt ? "" : " - 1");
        sm_formula *fm = NULL;
        sm_frame *fr = NULL;
        sm_lm *mg = NULL, *mq = NULL;
        CHECK_OK(ctx, sm_formula_parse(ctx, formula, names, sm_table_ncols(t), &fm));
        if (fm) CHECK_OK(ctx, sm_frame_create(ctx, t, fm, block == 1000 ? NULL : "w", NULL, block, &fr));
        if (fr) CHECK_OK(ctx, sm_lm_fit(ctx, fr, 1, &mg));
        if (fr) CHECK_OK(ctx, sm_lm_fit(ctx, fr, 0, &mq));
        if (mg && mq) {
          CHECK(mg->used_gram && !mq->used_gram && mg->p == p);
          for (int j = 0; j < p; j++) {
            CHECK_NEAR(mg->coef[j], mq->coef[j], 1e-10);
            CHECK_NEAR(mg->se[j], mq->se[j], 1e-10);
          }
          CHECK_NEAR(mg->rss, mq->rss, 1e-10);
          CHECK_NEAR(mg->r2, mq->r2, 1e-12);
          for (int q = 0; q < 5; q++)
            CHECK_NEAR(mg->resid_q[q], mq->resid_q[q], 1e-10);
        }
        if (ctx->rank == 0 && sm_test_failures) fprintf(stderr, "(%s, block %lld)\n", formula, (long long)block);
        sm_lm_destroy(&mg), sm_lm_destroy(&mq);
        sm_frame_destroy(&fr);
        sm_formula_destroy(&fm);
        if (sm_test_failures) break;
      }
  sm_table_close(&t);
}

/* The distributed ROC AUC (metrics.c: a sample sort by score) against the definition, pair by
 * pair (a positive above a negative counts 1, a tie 1/2), exactly: scores with many ties, also
 * across the ranks' ranges; every score equal; fewer rows than ranks; one class only (NaN); scores
 * of both signs and every magnitude, -0 and +0. */
static void test_auc(sm_ctx *ctx) {
  const int64_t sizes[] = {1000, 3, 1000, 1000, 5000};
  for (int c = 0; c < 5; c++) {
    int64_t N = sizes[c];
    double *s = malloc((size_t)N * sizeof *s), *y = malloc((size_t)N * sizeof *y);
    for (int64_t i = 0; i < N; i++) {
      s[i] = c == 2 ? 0.5 : (double)((i * 7919) % 101) / 100.0; /* 101 distinct values: ties */
      if (c == 4) /* any doubles (the radix sort's key): signs, -0 and +0 (a tie), tiny and huge */
        s[i] = i % 7 == 0 ? (i % 2 ? -0.0 : 0.0) : ((i * 7919) % 201 - 100) * (i % 3 ? 1e-300 : 1e300) + 1e-3 * (i % 5);
      y[i] = c == 3 ? 1 : c == 1 ? (double)(i % 2) : (double)((i * 31 + (i * 7919) % 101) % 3 == 0);
    }
    double u = 0, np = 0, nn = 0;
    for (int64_t i = 0; i < N; i++)
      for (int64_t j = 0; y[i] == 1 && j < N; j++)
        if (y[j] == 0) u += s[i] > s[j] ? 1 : s[i] == s[j] ? 0.5 : 0;
    for (int64_t i = 0; i < N; i++)
      np += y[i] == 1, nn += y[i] == 0;
    double want = np > 0 && nn > 0 ? u / (np * nn) : NAN;
    sm_range r = sm_table_block(N, ctx->rank, ctx->size);
    sm_class_metrics cm;
    CHECK_OK(ctx, sm_class_metrics_compute(ctx, s + r.first, y + r.first, NULL, r.count, 0.5, &cm));
    CHECK(cm.n == N);
    if (isnan(want))
      CHECK(isnan(cm.auc));
    else
      CHECK(cm.auc == want);
    if (sm_test_failures && ctx->rank == 0) fprintf(stderr, "case %d: AUC %.17g, definition %.17g\n", c, cm.auc, want);
    free(s), free(y);
  }
}

/* The model frame's phase A fills records 128 rows at a time, field by field, and moves the kept
 * ones down over the dropped: with missing values scattered over 700 rows, across and at chunk
 * boundaries, every design row must be its own table row's (checked value by value, exactly), and
 * an infinite value past the first chunk is reported at its own row. */
static void test_frame_chunks(sm_ctx *ctx) {
  char path[1200], bad[1200];
  snprintf(path, sizeof path, "%s/chunks.csv", sm_test_dir());
  snprintf(bad, sizeof bad, "%s/chunks_inf.csv", sm_test_dir());
  int64_t dropped = 0;
  for (int i = 0; i < 700; i++)
    dropped += i % 37 == 5 || (i >= 126 && i <= 129) || i == 255 || i == 256 || i == 699;
  if (ctx->rank == 0) {
    FILE *f = fopen(path, "w"), *g = fopen(bad, "w");
    CHECK(f && g);
    for (int i = 0; f && g && i < 700; i++) {
      int noy = i % 37 == 5, nox = (i >= 126 && i <= 129) || i == 255 || i == 256 || i == 699;
      if (!i) fprintf(f, "y,x1,x2\n"), fprintf(g, "y,x1,x2\n");
      if (noy)
        fprintf(f, ",%.17g,%d\n", i + 0.25, i % 7 - 3);
      else if (nox)
        fprintf(f, "%d,%.17g,\n", 2 * i + 1, i + 0.25);
      else
        fprintf(f, "%d,%.17g,%d\n", 2 * i + 1, i + 0.25, i % 7 - 3);
      fprintf(g, "%d,%.17g,%d\n", 2 * i + 1, i == 500 ? 0 : i + 0.25, i % 7 - 3);
    }
    if (f) fclose(f);
    if (g) fclose(g);
  }
  MPI_Barrier(ctx->comm);
  sm_table *t = NULL;
  sm_formula *fm = NULL;
  sm_frame *fr = NULL;
  const char *names[3] = {"y", "x1", "x2"};
  CHECK_OK(ctx, sm_table_open(ctx, path, &t));
  CHECK_OK(ctx, sm_formula_parse(ctx, "y ~ x1 + x2", names, 3, &fm));
  if (t && fm) CHECK_OK(ctx, sm_frame_create(ctx, t, fm, NULL, NULL, 64, &fr));
  if (fr) {
    int64_t wrong = 0, n = fr->n, all = 0;
    for (int64_t i = 0; i < fr->n; i++) {
      int64_t r = fr->row[i];
      const double *x = fr->x + i * fr->p;
      int gone = r % 37 == 5 || (r >= 126 && r <= 129) || r == 255 || r == 256 || r == 699;
      wrong += gone || x[0] != 1 || x[1] != (double)r + 0.25 || x[2] != (double)(r % 7 - 3) ||
               fr->y[i] != (double)(2 * r + 1) || fr->w[i] != 1 || (i && fr->row[i - 1] >= r);
    }
    MPI_Allreduce(MPI_IN_PLACE, &wrong, 1, MPI_INT64_T, MPI_SUM, ctx->comm);
    MPI_Allreduce(&n, &all, 1, MPI_INT64_T, MPI_SUM, ctx->comm);
    CHECK_EQ_I64(wrong, 0);
    CHECK_EQ_I64(all, 700 - dropped);
    CHECK_EQ_I64(fr->n_dropped, dropped);
  }
  sm_frame_destroy(&fr);
  sm_formula_destroy(&fm);
  sm_table_close(&t);
  CHECK_OK(ctx, sm_table_open(ctx, bad, &t));
  CHECK_OK(ctx, sm_formula_parse(ctx, "y ~ log(x1) + x2", names, 3, &fm));
  if (t && fm) {
    CHECK_STATUS(ctx, sm_frame_create(ctx, t, fm, NULL, NULL, 64, &fr), SM_ERR_DATA);
    int named = strstr(ctx->err_msg, "row 501: log(x1) is -Inf") != NULL;
    MPI_Allreduce(MPI_IN_PLACE, &named, 1, MPI_INT, MPI_MAX, ctx->comm);
    CHECK(named);
  }
  sm_frame_destroy(&fr);
  sm_formula_destroy(&fm);
  sm_table_close(&t);
}

/* hatvalues, rstudent, cooks.distance row by row; VIF, BP, DW. */
static int cmp(const void *a, const void *b);

static void test_diagnostics(sm_ctx *ctx) {
  static const char *models[2][2] = {{"lm_basic", "y ~ x1 + x2"}, {"lm_factor", "y ~ x1 + g"}};
  for (int gram = 0; gram < 2; gram++)
    for (int k = 0; k < 2; k++) {
      sm_table *t;
      sm_formula *fm;
      sm_frame *fr;
      open_fit(ctx, "reg.csv", models[k][1], NULL, 5, &t, &fm, &fr);
      sm_lm *m = NULL;
      sm_lm_diag *d = NULL;
      if (fr) CHECK_OK(ctx, sm_lm_fit(ctx, fr, gram, &m));
      if (m) CHECK_OK(ctx, sm_lm_diagnose(ctx, fr, m, &d));
      char p[1200], file[256];
      snprintf(file, sizeof file, "%s_influence.csv", models[k][0]);
      gpath(p, sizeof p, file);
      FILE *f = fopen(p, "r");
      CHECK(f != NULL);
      double gh[100], gr[100], gc[100];
      int have[100] = {0};
      char line[512];
      if (f && fgets(line, sizeof line, f))
        while (fgets(line, sizeof line, f)) {
          int row;
          double h, r, c;
          if (sscanf(line, "%d,%lf,%lf,%lf", &row, &h, &r, &c) == 4 && row < 100)
            gh[row] = h, gr[row] = r, gc[row] = c, have[row] = 1;
        }
      if (f) fclose(f);
      for (int64_t i = 0; d && i < fr->n; i++) {
        int row = (int)fr->row[i] + 1;
        CHECK(have[row]);
        CHECK_NEAR(d->hat[i], gh[row], 1e-10);
        CHECK_NEAR(d->rstudent[i], gr[row], 1e-9);
        CHECK_NEAR(d->cooks[i], gc[row], 1e-9);
      }
      char keys[32][128];
      double vals[32];
      snprintf(file, sizeof file, "%s_diag.num", models[k][0]);
      int n = read_num(file, keys, vals, 32);
      if (d) {
        CHECK_NEAR(d->bp, lookup(keys, vals, n, "bp"), 1e-9);
        CHECK_NEAR(d->bp_df, lookup(keys, vals, n, "bp_df"), 0);
        CHECK_NEAR(d->bp_pval, lookup(keys, vals, n, "bp_p.BP"), 1e-9);
        CHECK_NEAR(d->dw, lookup(keys, vals, n, "dw"), 1e-10);
        for (int tt = 0; tt < d->nvif; tt++) {
          char key[160];
          snprintf(key, sizeof key, "gvif:%s", fr->term_labels[tt]);
          CHECK_NEAR(d->gvif[tt], lookup(keys, vals, n, key), 1e-10);
          snprintf(key, sizeof key, "gvif_adj:%s", fr->term_labels[tt]);
          CHECK_NEAR(d->gvif_adj[tt], lookup(keys, vals, n, key), 1e-10);
        }
        CHECK_EQ_I64(d->nvif, 2);
        /* the ten worst rows are the ten largest Cook's distances of R's list, in order */
        double sorted[100];
        int ns = 0;
        for (int r = 1; r < 100; r++)
          if (have[r]) sorted[ns++] = -gc[r];
        qsort(sorted, (size_t)ns, sizeof *sorted, cmp);
        CHECK_EQ_I64(d->nworst, 10);
        for (int i = 0; i < d->nworst; i++)
          CHECK_NEAR(d->worst_cooks[i], -sorted[i], 1e-9);
      }
      sm_lm_diag_destroy(&d);
      sm_lm_destroy(&m);
      close_fit(&t, &fm, &fr);
    }
}

static void test_glm_golden(sm_ctx *ctx) {
  static const char *models[2][2] = {{"glm_basic", "label ~ x1 + x2"}, {"glm_factor", "label ~ x1 + x2 + site"}};
  for (int gram = 0; gram < 2; gram++)
    for (int k = 0; k < 2; k++) {
      sm_table *t;
      sm_formula *fm;
      sm_frame *fr;
      open_fit(ctx, "cls.csv", models[k][1], NULL, 11, &t, &fm, &fr);
      sm_glm *m = NULL;
      if (fr) CHECK_OK(ctx, sm_glm_fit(ctx, fr, 25, 1e-8, gram, &m));
      char keys[64][128], file[256];
      double vals[64];
      snprintf(file, sizeof file, "%s.num", models[k][0]);
      int n = read_num(file, keys, vals, 64);
      if (m) {
        for (int j = 0; j < m->p; j++) {
          char key[160];
          snprintf(key, sizeof key, "coef:%s", fr->names[j]);
          CHECK_NEAR(m->coef[j], lookup(keys, vals, n, key), 1e-9);
          snprintf(key, sizeof key, "se:%s", fr->names[j]);
          CHECK_NEAR(m->se[j], lookup(keys, vals, n, key), 1e-9);
          snprintf(key, sizeof key, "p:%s", fr->names[j]);
          CHECK_P(m->pval[j], lookup(keys, vals, n, key));
        }
        CHECK_NEAR(m->deviance, lookup(keys, vals, n, "deviance"), 1e-11);
        CHECK_NEAR(m->null_deviance, lookup(keys, vals, n, "null_deviance"), 1e-11);
        CHECK_NEAR(m->aic, lookup(keys, vals, n, "aic"), 1e-11);
        CHECK_EQ_I64(m->iter, (int)lookup(keys, vals, n, "iter"));
      }
      sm_glm_destroy(&m);
      close_fit(&t, &fm, &fr);
    }
}

static void test_distributions(sm_ctx *ctx) {
  char p[1200], line[512];
  gpath(p, sizeof p, "dist.csv");
  FILE *f = fopen(p, "r");
  CHECK(f != NULL);
  if (!f) return;
  int n = 0;
  if (fgets(line, sizeof line, f))
    while (fgets(line, sizeof line, f)) {
      double x, df, pt, pf, pc, qt;
      if (sscanf(line, "%lf,%lf,%lf,%lf,%lf,%lf", &x, &df, &pt, &pf, &pc, &qt) != 6) continue;
      /* relative accuracy: 1e-13 for moderate df, ~4e-11 at df = 1e6 (a * log x with a = df/2) */
      double tol = df > 1e4 ? 1e-9 : 1e-12;
      CHECK_NEAR(sm__pt_two_sided(x, df) / pt, 1, tol);
      if (pf > 0)
        CHECK_NEAR(sm__pf_upper(x * x, 3, df) / pf, 1, tol);
      else
        CHECK(sm__pf_upper(x * x, 3, df) < 1e-300);
      if (pc > 1e-300) CHECK_NEAR(sm__pchisq_upper(x * x, df) / pc, 1, 1e-12);
      CHECK_NEAR(sm__qt(0.975, df), qt, 1e-10);
      n++;
    }
  fclose(f);
  CHECK_EQ_I64(n, 36);
  (void)ctx;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Exact quantiles of distributed values with ties, against a gathered sort: sm__quantiles5, and
 * sm__quantiles5_hist with a histogram window narrower than the values (the end bins hold the
 * rest) and one above them all (a single overfull bin: the iterative fallback). */
static void test_quantiles(sm_ctx *ctx) {
  /* N - 1 not a multiple of 4 puts a quartile between two ranks, often in two bins: up to 6 wanted
   * bins (the candidate pass's general path), else at most 3 (its 4-bin compare) */
  const int64_t sizes[] = {1, 2, 5000, 5001, 9999, 10001, 15002, 20001};
  for (int ties = 0; ties < 2; ties++)
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
      int64_t N = sizes[si];
      sm_range r = sm_table_block(N, ctx->rank, ctx->size);
      double *v = malloc((size_t)(r.count + 1) * sizeof *v), *all = malloc((size_t)N * sizeof *all);
      for (int64_t i = 0; i < N; i++)
        all[i] = ties && i % 10 ? 0.5 : (double)((i * 7919) % 1009) / 7.0 - 50 + (i % 3 == 0 ? 1e-9 * (double)i : 0);
      for (int64_t i = 0; i < r.count; i++)
        v[i] = all[r.first + i];
      double q[3][5], vmin = INFINITY, vmax = -INFINITY;
      for (int64_t i = 0; i < N; i++)
        vmin = fmin(vmin, all[i]), vmax = fmax(vmax, all[i]);
      CHECK_OK(ctx, sm__quantiles5(ctx, v, r.count, q[0]));
      for (int w = 1; w < 3; w++) {
        sm__qbins bn = w == 1 ? sm__qbins_over(-1, 1) : sm__qbins_over(1000, 2000);
        int64_t *h = calloc(SM_QBINS, sizeof *h);
        for (int64_t i = 0; i < r.count; i++)
          h[sm__qbin(&bn, v[i])]++;
        CHECK_OK(ctx, sm__quantiles5_hist(ctx, v, r.count, N, vmin, vmax, &bn, h, q[w]));
        free(h);
      }
      qsort(all, (size_t)N, sizeof *all, cmp);
      for (int k = 0; k < 5; k++) {
        double idx = 1 + (double)(N - 1) * 0.25 * k, h = idx - floor(idx);
        double lo = all[(int64_t)floor(idx) - 1], hi = all[(int64_t)ceil(idx) - 1];
        double want = (h > 0 && hi != lo) ? (1 - h) * lo + h * hi : lo;
        for (int w = 0; w < 3; w++)
          CHECK(q[w][k] == want);
      }
      free(v), free(all);
    }
}

/* The same fits on sub-communicators of every size give bit-identical results. */
static void test_rank_invariance(sm_ctx *ctx) {
  double ref[128], sub[128];
  int nref = 0;
  for (int pass = 0; pass < 2; pass++) {
    sm_ctx *c = ctx;
    MPI_Comm comm = MPI_COMM_NULL;
    if (pass == 1) {
      MPI_Comm_split(ctx->comm, ctx->rank == 0, ctx->rank, &comm);
      CHECK_OK(ctx, sm_ctx_create(comm, &c));
    }
    double *out = pass ? sub : ref;
    int n = 0;
    sm_table *t;
    sm_formula *fm;
    sm_frame *fr;
    open_fit(c, "reg.csv", "y ~ poly(x1, 3) + g + x2:g", "w", 6, &t, &fm, &fr);
    sm_lm *m = NULL;
    sm_lm_diag *d = NULL;
    if (fr) CHECK_OK(c, sm_lm_fit(c, fr, 1, &m));
    if (m) CHECK_OK(c, sm_lm_diagnose(c, fr, m, &d));
    for (int j = 0; m && j < m->p; j++)
      out[n++] = m->coef[j], out[n++] = m->se[j];
    if (m) out[n++] = m->rss, out[n++] = m->sigma, out[n++] = m->loglik, out[n++] = m->resid_q[2];
    if (d) out[n++] = d->bp, out[n++] = d->dw, out[n++] = d->worst_cooks[0];
    sm_lm_diag_destroy(&d);
    sm_lm_destroy(&m);
    if (fr) CHECK_OK(c, sm_lm_fit(c, fr, 0, &m)); /* TSQR: the tree over blocks */
    for (int j = 0; m && j < m->p; j++)
      out[n++] = m->coef[j], out[n++] = m->se[j];
    if (m) out[n++] = m->rss, out[n++] = m->R[m->p * (m->p + 2)];
    sm_lm_destroy(&m);
    close_fit(&t, &fm, &fr);
    open_fit(c, "cls.csv", "label ~ x1 * x2 + site", NULL, 9, &t, &fm, &fr);
    sm_glm *g = NULL;
    if (fr) CHECK_OK(c, sm_glm_fit(c, fr, 25, 1e-8, 1, &g));
    for (int j = 0; g && j < g->p; j++)
      out[n++] = g->coef[j], out[n++] = g->se[j];
    if (g) out[n++] = g->deviance;
    sm_glm_destroy(&g);
    sm_gd_opts so = {1, 1, 0.3, 0.01, 0.001, 0.01, 0, 3, 17, 5, NULL}; /* SGD with both penalties */
    sm_gd_result *gr = NULL;
    if (fr) CHECK_OK(c, sm_gd_fit(c, fr, &so, &gr));
    for (int j = 0; gr && j < gr->p; j++)
      out[n++] = gr->coef[j];
    sm_gd_result_destroy(&gr);
    close_fit(&t, &fm, &fr);
    if (pass == 0)
      nref = n;
    else {
      CHECK_EQ_I64(n, nref);
      CHECK(memcmp(ref, sub, (size_t)n * sizeof *ref) == 0);
      for (int i = 0; i < n; i++)
        if (memcmp(&ref[i], &sub[i], sizeof *ref)) fprintf(stderr, "value %d: %.17g vs %.17g\n", i, ref[i], sub[i]);
      sm_ctx_destroy(&c);
      MPI_Comm_free(&comm);
    }
  }
}

static void test_errors(sm_ctx *ctx) {
  sm_table *t;
  sm_formula *fm;
  sm_frame *fr;
  char p[1200];
  gpath(p, sizeof p, "reg.csv");
  CHECK_OK(ctx, sm_table_open(ctx, p, &t));
  if (!t) return;
  const char *names[64];
  for (int j = 0; j < sm_table_ncols(t); j++)
    names[j] = sm_table_col_name(t, j);
  int nc = sm_table_ncols(t);
  CHECK_STATUS(ctx, sm_formula_parse(ctx, "y ~ x1 +", names, nc, &fm), SM_ERR_ARG);
  CHECK(strstr(ctx->err_msg, "column 9") != NULL);
  CHECK_STATUS(ctx, sm_formula_parse(ctx, "y ~ x1^2", names, nc, &fm), SM_ERR_ARG);
  CHECK(strstr(ctx->err_msg, "I(x^2)") != NULL);
  CHECK_STATUS(ctx, sm_formula_parse(ctx, "y ~ foo(x1)", names, nc, &fm), SM_ERR_ARG);
  CHECK(strstr(ctx->err_msg, "unknown function foo()") != NULL);
  CHECK_OK(ctx, sm_formula_parse(ctx, "y ~ x1 + xx2", names, nc, &fm));
  CHECK_STATUS(ctx, sm_frame_create(ctx, t, fm, NULL, NULL, 0, &fr), SM_ERR_ARG);
  CHECK(strstr(ctx->err_msg, "no column \"xx2\"; did you mean \"x2\"") != NULL);
  sm_formula_destroy(&fm);
  CHECK_OK(ctx, sm_formula_parse(ctx, "y ~ log(g)", names, nc, &fm));
  CHECK_STATUS(ctx, sm_frame_create(ctx, t, fm, NULL, NULL, 0, &fr), SM_ERR_ARG);
  CHECK(strstr(ctx->err_msg, "holds strings") != NULL);
  sm_formula_destroy(&fm);
  CHECK_OK(ctx, sm_formula_parse(ctx, "y ~ log(x1)", names, nc, &fm)); /* log of negatives: NaN rows dropped */
  CHECK_OK(ctx, sm_frame_create(ctx, t, fm, NULL, NULL, 0, &fr));
  CHECK(fr && fr->n_dropped > 2);
  sm_frame_destroy(&fr);
  sm_formula_destroy(&fm);
  CHECK_OK(ctx, sm_formula_parse(ctx, "y ~ I(1/(x1 - x1))", names, nc, &fm)); /* 1/0: infinite */
  CHECK_STATUS(ctx, sm_frame_create(ctx, t, fm, NULL, NULL, 0, &fr), SM_ERR_DATA);
  CHECK(strstr(ctx->err_msg, "is Inf") != NULL);
  sm_formula_destroy(&fm);
  CHECK_OK(ctx, sm_formula_parse(ctx, "y ~ x1 + I(2 * x1)", names, nc, &fm));
  CHECK_OK(ctx, sm_frame_create(ctx, t, fm, NULL, NULL, 0, &fr));
  sm_lm *m = NULL;
  CHECK_STATUS(ctx, sm_lm_fit(ctx, fr, 0, &m), SM_ERR_NUMERIC);
  CHECK(strstr(ctx->err_msg, "I(2 * x1)") != NULL);
  sm_frame_destroy(&fr);
  sm_formula_destroy(&fm);
  CHECK_OK(ctx, sm_formula_parse(ctx, "y ~ . - event - w", names, nc, &fm));
  if (fm) CHECK_STR(sm_formula_text(fm), "y ~ x1 + x2 + x3 + g + k");
  sm_formula_destroy(&fm);
  CHECK_OK(ctx, sm_formula_parse(ctx, "y~x1*g-1", names, nc, &fm));
  if (fm) CHECK_STR(sm_formula_call_text(fm), "y ~ x1 * g - 1");
  if (fm) CHECK_STR(sm_formula_text(fm), "y ~ x1 + g + x1:g - 1");
  sm_formula_destroy(&fm);
  sm_table_close(&t);
}

/* R's number formatting on cases that matter for the summaries. */
static void test_rfmt(sm_ctx *ctx) {
  char s[4][SM_RFMT_MAX];
  double a[3] = {1.5579, 0.1556, -0.2982};
  sm__rfmt_vec(a, 3, 4, s);
  CHECK_STR(s[0], " 1.5579");
  CHECK_STR(s[2], "-0.2982");
  double pv[4] = {5.35e-14, 1e-20, 0.0271, 0.000415};
  sm__r_format_pval(pv, 4, 3, s);
  CHECK_STR(s[0], "5.35e-14");
  CHECK_STR(s[1], "< 2e-16");
  CHECK_STR(s[2], "0.027100");
  CHECK_STR(s[3], "0.000415");
  char o[64];
  sm__rfmt_one(123456789.0, 7, o, sizeof o);
  CHECK_STR(o, "123456789");
  sm__rfmt_one(1e-20, 7, o, sizeof o);
  CHECK_STR(o, "1e-20");
  sm__rfmt_one(9996, 3, o, sizeof o);
  CHECK_STR(o, "9996");
  (void)ctx;
}

/* The penalized gradient of the standardized problem at coefficients b (original scale), as the
 * KKT conditions need it: g_j = mean(w r z_j) + l2 beta_j. */
static void std_grad(sm_ctx *ctx, const sm_frame *f, const double *b, int binomial, double l2, double *g,
                     double *beta) {
  int p = f->p;
  double s[3 * 64] = {0}, t[3 * 64];
  for (int64_t i = 0; i < f->n; i++)
    for (int j = 0; j < p; j++)
      s[j] += f->w[i] * f->x[i * p + j], s[p + j] += f->w[i] * f->x[i * p + j] * f->x[i * p + j];
  for (int64_t i = 0; i < f->n; i++)
    s[2 * p] += f->w[i];
  MPI_Allreduce(s, t, 2 * p + 1, MPI_DOUBLE, MPI_SUM, ctx->comm);
  double mu[64], sc[64], acc[65] = {0}, tot[65];
  for (int j = 0; j < p; j++) {
    double m = t[j] / t[2 * p];
    mu[j] = j == 0 ? 0 : m, sc[j] = j == 0 ? 1 : sqrt(t[p + j] / t[2 * p] - m * m);
    beta[j] = b[j] * sc[j];
  }
  for (int j = 1; j < p; j++)
    beta[0] += b[j] * mu[j];
  for (int64_t i = 0; i < f->n; i++) {
    double eta = 0, z[64];
    for (int j = 0; j < p; j++)
      z[j] = (f->x[i * p + j] - mu[j]) / sc[j], eta += z[j] * beta[j];
    double r = (binomial ? 1 / (1 + exp(-eta)) : eta) - f->y[i];
    for (int j = 0; j < p; j++)
      acc[j] += f->w[i] * r * z[j];
  }
  MPI_Allreduce(acc, tot, p, MPI_DOUBLE, MPI_SUM, ctx->comm);
  for (int j = 0; j < p; j++)
    g[j] = tot[j] / t[2 * p] + (j ? l2 * beta[j] : 0);
}

/* Gradient descent converges to the exact lm and glm fits; ridge and lasso satisfy their KKT
 * conditions; SGD gets close; all bit-identical across rank counts (test_rank_invariance). */
static void test_gd(sm_ctx *ctx) {
  sm_table *t;
  sm_formula *fm;
  sm_frame *fr;
  char keys[64][128];
  double vals[64];
  open_fit(ctx, "reg.csv", "y ~ x1 + x2", NULL, 7, &t, &fm, &fr);
  int n = read_num("lm_basic.num", keys, vals, 64);
  sm_gd_opts o = {0, 0, 0, 0, 0, 0, 1e-12, 100000, 16, 1, NULL};
  sm_gd_result *r = NULL;
  if (fr) CHECK_OK(ctx, sm_gd_fit(ctx, fr, &o, &r));
  for (int j = 0; r && j < r->p; j++) {
    char key[160];
    snprintf(key, sizeof key, "coef:%s", fr->names[j]);
    CHECK_NEAR(r->coef[j], lookup(keys, vals, n, key), 1e-9);
  }
  CHECK(r && r->converged);
  sm_gd_result_destroy(&r);
  o.sgd = 1, o.max_iter = 60, o.lr = 0.05, o.decay = 0.01; /* SGD: near the exact fit */
  if (fr) CHECK_OK(ctx, sm_gd_fit(ctx, fr, &o, &r));
  for (int j = 0; r && j < r->p; j++) {
    char key[160];
    snprintf(key, sizeof key, "coef:%s", fr->names[j]);
    CHECK_NEAR(r->coef[j], lookup(keys, vals, n, key), 0.05);
  }
  sm_gd_result_destroy(&r);
  /* ridge: gradient zero; lasso: |g_j| <= l1 at zero coefficients, g_j = -l1 sign(beta_j) elsewhere */
  for (int pen = 0; pen < 2 && fr; pen++) {
    sm_gd_opts q = {0, 0, 0, 0, pen ? 0.4 : 0, pen ? 0 : 0.5, 1e-13, 200000, 16, 1, NULL};
    CHECK_OK(ctx, sm_gd_fit(ctx, fr, &q, &r));
    double g[64], beta[64];
    if (r) std_grad(ctx, fr, r->coef, 0, q.l2, g, beta);
    for (int j = 0; r && j < r->p; j++) {
      if (!pen || j == 0)
        CHECK_NEAR(g[j], 0, 1e-8);
      else if (beta[j] == 0)
        CHECK(fabs(g[j]) <= q.l1 + 1e-8);
      else
        CHECK_NEAR(g[j], -q.l1 * (beta[j] > 0 ? 1 : -1), 1e-8);
    }
    sm_gd_result_destroy(&r);
  }
  sm_gd_opts big = {0, 0, 0, 0, 10, 0, 1e-13, 100000, 16, 1, NULL}; /* a large l1 zeroes every slope */
  if (fr) CHECK_OK(ctx, sm_gd_fit(ctx, fr, &big, &r));
  for (int j = 1; r && j < r->p; j++)
    CHECK(r->coef[j] == 0);
  sm_gd_result_destroy(&r);
  close_fit(&t, &fm, &fr);
  open_fit(ctx, "cls.csv", "label ~ x1 + x2 + site", NULL, 11, &t, &fm, &fr);
  n = read_num("glm_factor.num", keys, vals, 64);
  sm_gd_opts b = {0, 1, 0, 0, 0, 0, 1e-12, 100000, 16, 1, NULL};
  if (fr) CHECK_OK(ctx, sm_gd_fit(ctx, fr, &b, &r));
  for (int j = 0; r && j < r->p; j++) {
    char key[160];
    snprintf(key, sizeof key, "coef:%s", fr->names[j]);
    CHECK_NEAR(r->coef[j], lookup(keys, vals, n, key), 1e-8);
  }
  sm_gd_result_destroy(&r);
  close_fit(&t, &fm, &fr);
}

int main(int argc, char **argv) {
  const char *src = getenv("SISMA_SOURCE_DIR");
  snprintf(golden, sizeof golden, "%s/tests/stats/golden", src ? src : ".");
  return SM_TEST_MAIN(argc, argv, test_rfmt, test_distributions, test_quantiles, test_lm_golden, test_gram_shapes,
                      test_diagnostics, test_glm_golden, test_gd, test_rank_invariance, test_errors, test_frame_chunks,
                      test_auc);
}
