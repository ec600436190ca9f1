/* Private interfaces of the statistics subsystem (src/stats): R-style number formatting
 * (rfmt.c), distribution functions (dist.c), formulas (formula.c), the distributed model frame in
 * fixed row blocks (frame.c), block reductions and TSQR (tsqr.c). Start with stats.h, then
 * frame.c and tsqr.c. */
#ifndef SISMA_STATS_INTERNAL_H
#define SISMA_STATS_INTERNAL_H

#include <stdio.h>

#include "../catalog/result.h"
#include "sisma/config.h"
#include "sisma/stats.h"

/* ---- R number formatting (rfmt.c) ---- */
#define SM_RFMT_MAX 64
typedef struct {
  int w, d, e; /* width, digits after the point, exponent digits (0: fixed notation) */
} sm__rfmt;
void sm__rfmt_params(const double *x, int n, int digits, sm__rfmt *f); /* R formatReal */
void sm__rfmt_encode(double x, const sm__rfmt *f, char *out, size_t size);
void sm__rfmt_vec(const double *x, int n, int digits, char (*out)[SM_RFMT_MAX]); /* format(x, digits) */
void sm__rfmt_one(double x, int digits, char *out, size_t size);
double sm__r_round(double x, int d);
double sm__r_signif(double x, int d);
void sm__r_zapsmall(double *x, int n, int digits);
void sm__r_format_pval(const double *pv, int n, int digits, char (*out)[SM_RFMT_MAX]);
void sm__r_print_coefmat(FILE *to, int k, const char *const *rows, const double *est, const double *se,
                         const double *tv, const double *pv, const char *const hdr[4], int digits);
void sm__r_print_named(FILE *to, int n, const char *const *names, const double *x, int digits, int gap);
/* print(call): the call text broken into lines as R's deparse breaks it (width.cutoff 60). Local. */
void sm__r_print_call(FILE *to, const char *call);

/* ---- distributions (dist.c) ---- */
double sm__pbeta(double x, double y, double a, double b, int lower);
double sm__pt_two_sided(double t, double df);
double sm__pt_upper(double t, double df);
double sm__pf_upper(double f, double d1, double d2);
double sm__pchisq_upper(double x, double df);
double sm__pnorm_two_sided(double z);
double sm__qt(double p, double df);
double sm__qnorm(double p);

/* ---- block reductions (tsqr.c) ---- */
/* Allgatherv of count doubles per rank into *all (rank order; caller frees). Collective. */
sm_status sm__gather_all(sm_ctx *ctx, const double *mine, int count, double **all, int *total);
/* Records of k doubles grouped by destination (cnt[r] of them, in order, to rank r) exchanged by
 * one Alltoallv: *out holds the [*m][k] records received, by source rank (caller frees). Collective. */
sm_status sm__exchange(sm_ctx *ctx, const double *rec, int k, const int64_t *cnt, double **out, int64_t *m);
/* Sum K values per local block over all blocks of all ranks by the fixed block tree of
 * src/core/blocktree.h (rank order is block order, see frame.c), so the sum is the same at every
 * rank count. part is [nblk][K]. Collective. */
sm_status sm__block_sum(sm_ctx *ctx, const sm_frame *f, int K, const double *part, double *total);
/* Every block's K values, all ranks, in global block order ([nblocks][K], caller frees). Collective. */
sm_status sm__block_gather(sm_ctx *ctx, const sm_frame *f, int K, const double *part, double **all, int *nblocks);
/* TSQR of sqrt(wt) .* [X resp] over the frame: R is [(p+1)][(p+1)] column-major upper triangular
 * (the last column holds Q'resp and, in its last entry, +-sqrt(residual sum of squares)). Rows
 * with wt == 0 take no part. sm__tree_tsqr (src/core/blocktree.h) over the frame's blocks: per-block
 * Householder QR, then the block R factors combined pairwise in the fixed binary tree. Collective. */
sm_status sm__tsqr(sm_ctx *ctx, const sm_frame *f, const double *wt, const double *resp, double *R);
/* R of sqrt(wt)[X resp] as sm__tsqr, by the block-summed Gram matrix and Cholesky when that is
 * provably accurate (allow_gram, condition estimate, see tsqr.c), else by TSQR. *used_gram (may be
 * NULL) tells which. Collective. */
sm_status sm__fit_r(sm_ctx *ctx, const sm_frame *f, const double *wt, const double *resp, int allow_gram, double *R,
                    int *used_gram);
/* Coefficients from the (p+1) x (p+1) R factor of [X y] by back substitution and, if cov is not
 * NULL, (R'R)^-1 [p][p]; SM_ERR_NUMERIC names a (nearly) collinear column. Local. */
sm_status sm__solve_r(sm_ctx *ctx, const sm_frame *f, const double *R, double *coef, double *cov);
/* R's quantile(type 7) at 0, .25, .5, .75, 1 of distributed values. Collective. */
sm_status sm__quantiles5(sm_ctx *ctx, const double *v, int64_t n, double q[5]);
/* Monotone binning for the quantiles: SM_QBINS bins of width 1 / scale from lo, values below lo
 * in the first bin, beyond the last bin's start in the last (each bin a contiguous run of the
 * sorted values, which is all the selection needs). */
#define SM_QBINS 4096
typedef struct {
  double lo, scale;
} sm__qbins;
sm__qbins sm__qbins_over(double lo, double hi); /* uniform over [lo, hi] */
static inline int sm__qbin(const sm__qbins *bn, double x) {
  double t = (x - bn->lo) * bn->scale;
  return !(t >= 0) ? 0 : t >= SM_QBINS - 1 ? SM_QBINS - 1 : (int)t;
}
/* r = y - X b (y NULL: r = X b) for nb rows of X ([nb][p], row-major): by AVX2 for p a multiple
 * of 4 on CPUs that have it (each r[i] from row i alone), else dgemv. With bn (else NULL), each r[i] is also counted
 * in h[sm__qbin(bn, r[i])] and taken into mm = {min, -max} in the same pass. Local. */
void sm__residuals(const double *x, const double *y, int64_t nb, int p, const double *b, double *r, const sm__qbins *bn,
                   int64_t *h, double *mm);
/* The same as sm__quantiles5 from the global count N, the global minimum and maximum and the
 * local histogram h[SM_QBINS] of the values under bn, all already known (h is overwritten).
 * Collective. */
sm_status sm__quantiles5_hist(sm_ctx *ctx, const double *v, int64_t n, int64_t N, double vmin, double vmax,
                              const sm__qbins *bn, int64_t *h, double q[5]);

/* ---- formulas (formula.c) ---- */
#define SM_FORMULA_MAX_VARS 64
#define SM_FORMULA_MAX_TERMS 256
typedef enum { SM__X_NUM, SM__X_VAR, SM__X_CALL, SM__X_BIN, SM__X_NEG, SM__X_PAREN } sm__xkind;
typedef struct sm__expr {
  sm__xkind kind;
  char op;       /* + - * / ^ for SM__X_BIN */
  double num;    /* SM__X_NUM */
  char name[96]; /* variable or function name */
  int nargs;
  struct sm__expr *arg[2];
} sm__expr;

typedef struct {
  sm__expr *e;     /* the expression (a bare variable, a call, I(...)) */
  char label[256]; /* R's deparse, e.g. "log(x)", "poly(x, 2)" */
  int poly_k;      /* > 0 for poly(x, k): e->arg[0] is x */
} sm__var;

struct sm_formula {
  char text[1024]; /* deparsed "y ~ a + b" (terms expanded) */
  char call[1024]; /* as written, spaced as R deparses it (the Call line) */
  sm__expr *lhs;
  char lhs_label[256];
  int nvars;
  sm__var var[SM_FORMULA_MAX_VARS];
  int nterms;
  uint64_t term[SM_FORMULA_MAX_TERMS]; /* bit v = variable v; in R's order (by degree, then as written) */
  int intercept;
};

/* Deparse as R does (spaces around + - *, none around / ^ :). */
void sm__expr_deparse(const sm__expr *e, char *out, size_t size);
/* Evaluate a numeric expression; vars[k] gives the value of variable leaf k, resolved by
 * sm__expr_bind to table columns (leaf->num holds the column index). */
double sm__expr_eval(const sm__expr *e, const double *const *cols, int64_t i);

/* ---- shared by the stages (stage.c) ---- */
/* The solver keys of the lm and glm stages. */
// clang-format off
#define SM__GD_KEYS                                                                                        \
  {"solver", SM_KEY_ENUM, "exact", 0, -1, "exact|gd|sgd",                                                  \
   "exact: QR/Cholesky (lm) or IRLS (glm) with R's summary; gd: batch gradient descent; sgd: minibatch SGD"}, \
  {"lr", SM_KEY_FLOAT, "0", 0, 1e6, NULL, "gd/sgd learning rate (0 = 1/L of the standardized problem)"},   \
  {"decay", SM_KEY_FLOAT, "0", 0, 1e6, NULL, "gd/sgd schedule: lr / (1 + decay * step)"},                  \
  {"l2", SM_KEY_FLOAT, "0", 0, 1e12, NULL, "gd/sgd ridge penalty on the standardized coefficients"},       \
  {"l1", SM_KEY_FLOAT, "0", 0, 1e12, NULL,                                                                 \
   "gd/sgd lasso penalty (proximal step) on the standardized coefficients"},                               \
  {"tol", SM_KEY_FLOAT, "1e-10", 0, 1, NULL, "gd: stop when the largest coefficient change is below tol"}, \
  {"max_iter", SM_KEY_INT, "100000", 1, 1e9, NULL, "gd: iterations at most; sgd: epochs"},                 \
  {"batch_size", SM_KEY_INT, "256", 1, 1e12, NULL, "sgd: rows per global minibatch"},                      \
  {"seed", SM_KEY_INT, "1", 0, 9.2e18, NULL, "sgd permutation seed (and the group split)"},                \
  {"cost_log", SM_KEY_PATH, "", 0, -1, NULL, "gd/sgd: CSV of the cost per iteration (epoch for sgd)"}
// clang-format on
/* Run the gd/sgd solver configured by cfg on a frame, print its result on rank 0 and keep the
 * coefficients in *res. Collective. */
sm_status sm__stage_gd(sm_ctx *ctx, const sm_config *cfg, const sm_frame *fr, int binomial, sm_gd_result **res);
/* Held-out splits and folds, the same for lm and glm. */
// clang-format off
#define SM__SPLIT_KEYS                                                                                     \
  {"split_column", SM_KEY_STR, "", 0, -1, NULL,                                                            \
   "existing split column: rows 'train' are fitted, rows 'test' evaluated, others ignored"},               \
  {"dev_fraction", SM_KEY_FLOAT, "0", 0, 0.9, NULL,                                                        \
   "also hold out this fraction of the groups as a dev split (metrics reported apart from test)"},         \
  {"test_fraction", SM_KEY_FLOAT, "0", 0, 0.9, NULL,                                                       \
   "hold out this fraction of the groups (seeded) for the metrics; 0 = evaluate on the fitted rows"},      \
  {"group_column", SM_KEY_STR, "", 0, -1, NULL,                                                            \
   "rows sharing a value stay in one split or fold (e.g. source_id: no event in two splits); empty = by row"}, \
  {"folds", SM_KEY_INT, "0", 0, 100, NULL, "k-fold cross-validation over the groups (0 = off)"}
// clang-format on
/* Per local table row of t: 1 fit, 2 test (held out), 3 dev, 0 unused, from the split keys; fold
 * >= 0: rows of that fold 2, the others 1. Local (the caller agrees on the status). */
sm_status sm__stats_mask(sm_ctx *ctx, const sm_config *cfg, sm_table *t, int fold, unsigned char *mask);
/* k-fold cross-validation over the groups of the split keys: for each fold the frame of t with
 * that fold held out (tag 2) goes to fit_score (which fits it and pools the fold's scores in u).
 * Collective. */
sm_status sm__stats_folds(sm_ctx *ctx, const sm_config *cfg, sm_table *t, const sm_formula *fm, unsigned char *mask,
                          sm_status (*fit_score)(sm_ctx *ctx, const sm_config *cfg, sm_frame *fr, void *u), void *u);
sm_status sm__stats_open(sm_ctx *ctx, const sm_config *cfg, sm_table **t, sm_formula **fm);
void sm__stats_call(const sm_config *cfg, const sm_formula *fm, const char *fn, const char *family, char *out,
                    size_t size);

/* ---- the frame's rows in the table (frame.c) ---- */
/* The rank holding table row `row` under sm_table_block sharding of n rows over `size` ranks (the
 * sharding of every table). Local. */
int sm__table_owner(int64_t row, int64_t n, int size);
/* The table rows [*first, *first + *count) of the blocks this rank's frame holds (the blocks whose
 * first row lies in this rank's table shard): the spans of the ranks tile the table in rank order,
 * and every row of the frame lies in its rank's span. Local. */
void sm__frame_span(const sm_frame *f, const sm_table *t, int64_t *first, int64_t *count);

/* ---- result files of lm and glm (output.c) ---- */
/* A named number of a result: a JSON member, an HDF5 attribute. One list feeds both writers. */
typedef struct {
  const char *name;
  double v;
} sm__named;
/* Whether an output path asks for HDF5 (ends in .h5 or .hdf5); else JSON. Local. */
int sm__output_is_h5(const char *path);
sm_status sm__json_open(sm_ctx *ctx, const char *path, FILE **f);
sm_status sm__json_close(sm_ctx *ctx, const char *path, FILE *f);
void sm__json_num(FILE *f, double v);
void sm__json_str(FILE *f, const char *s);
/* "name": value for each of v[n], sep between them. Local. */
void sm__json_named(FILE *f, const sm__named *v, int n, const char *sep);
/* "coefficients": [{"name": ..., keys[0]: tab[j][0], ...}, ...] of tab [p][6]. Local. */
void sm__json_coefs(FILE *f, const sm_frame *fr, const double *tab, const char *const keys[6]);
/* HDF5 (src/catalog/result.h): v[n] as attributes of `group` (NULL: the root). Collective. */
sm_status sm__h5_named(sm__result *r, const char *group, const sm__named *v, int n);
/* Strings s[n] as a fixed-width dataset `name` [n], written once. Collective. */
sm_status sm__h5_strings(sm_ctx *ctx, sm__result *r, const char *name, int64_t n, const char *const *s);
/* /coefficients [p][k] (tab, its "columns" attribute `columns`) and /coefficient_names [p]. Collective. */
sm_status sm__h5_coefs(sm_ctx *ctx, sm__result *r, const sm_frame *fr, const double *tab, int k, const char *columns);
/* /rows [table rows][k + 1], columns "split," + `columns`: per table row, in table order, its tag in
 * the frame (1 fitted, 2 test, 3 dev; 0 not in the frame: a missing value, or outside every split)
 * and the k values vals [fr->n][k] of its frame row (NaN for rows not in the frame). Each rank
 * writes the rows of its frame span. Collective. */
sm_status sm__h5_rows(sm_ctx *ctx, sm__result *r, const sm_table *t, const sm_frame *fr, int k, const double *vals,
                      const char *columns);
/* A stage's HDF5 result under `path` with the model's attributes (model, family, link, formula,
 * solver: lm, or the binomial glm). Collective; on failure *r may be set (sm__stats_h5_finish
 * closes it). */
sm_status sm__stats_h5_create(sm_ctx *ctx, const sm_config *cfg, const char *path, int binomial, sm__result **r);
/* /rows (sm__h5_rows) and /row_id (the id_column key), then commit (st: the status so far).
 * Collective; closes *r. */
sm_status sm__stats_h5_finish(sm_ctx *ctx, const sm_config *cfg, sm_table *t, const sm_frame *fr, sm__result **r, int k,
                              const double *rows, const char *columns, sm_status st);
/* The column that names rows: `col`, or when empty trace_name if the table has it, else NULL. Local. */
const char *sm__id_column(sm_table *t, const char *col);
/* /row_id [table rows] (strings, or numbers for a numeric column) from the id column `col` (see
 * sm__id_column; nothing without one), attribute "column" naming it. Collective. */
sm_status sm__h5_row_ids(sm_ctx *ctx, sm__result *r, sm_table *t, const char *col);

#endif
