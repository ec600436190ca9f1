/* Statistics: R-style model formulas, the distributed model frame, linear models (OLS/WLS by
 * TSQR, with R's summary.lm, intervals, information criteria and diagnostics) and logistic
 * regression (IRLS, with R's summary.glm and classification metrics).
 *
 * Determinism: rows are regrouped into fixed blocks of `block_rows` consecutive table rows; every
 * reduction (R factors, sums) is computed per block and combined in a fixed order over block
 * indices, never in rank order, so results are bit-identical at any rank count for a given
 * block_rows. docs/statistics.md describes the algorithms and the R conventions followed.
 * Start reading at sm_formula_parse, sm_frame_create and sm_lm_fit. */
#ifndef SISMA_STATS_H
#define SISMA_STATS_H

#include <stdio.h>

#include "sisma/table.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- formulas ---- */
typedef struct sm_formula sm_formula;

/* Parse an R model formula: `y ~ x1 + x2`, `y ~ .`, `- 1` / `+ 0` (no intercept), `- term`,
 * log/log10/log2/sqrt/exp/abs of expressions, I(expr) with + - * / ^, poly(x, k) (orthogonal, as
 * R), interactions a:b and a*b, parentheses. `names` (n) are the table's columns, used for `.`.
 * Local. SM_ERR_ARG with the column (1-based) of the offending character. */
sm_status sm_formula_parse(sm_ctx *ctx, const char *text, const char *const *names, int n, sm_formula **out);
void sm_formula_destroy(sm_formula **f);
/* The formula as R deparses it ("y ~ x1 + log(x2)"), borrowed. Local. */
const char *sm_formula_text(const sm_formula *f);
/* The formula as written, spaced as R deparses it ("y ~ x1 * g"), borrowed. Local. */
const char *sm_formula_call_text(const sm_formula *f);

/* ---- the model frame: design matrix rows in fixed blocks ---- */
typedef struct {
  int p;              /* columns of the design matrix X */
  char **names;       /* [p] column names as R's model.matrix names them */
  int intercept;      /* 1 if column 0 is the intercept */
  int nterms;         /* terms (intercept excluded) */
  char **term_labels; /* [nterms] */
  int *col_term;      /* [p] term of each column (-1: intercept) */
  int has_weights;    /* weights column given */
  int64_t n;          /* rows on this rank */
  int64_t n_total;    /* rows to fit (tag 1), all ranks */
  int64_t n_heldout;  /* held-out rows (tag 2), all ranks */
  int64_t n_dropped;  /* rows to fit dropped for missing values (R's na.omit), all ranks */
  double *x;          /* [n][p] row-major */
  double *work;       /* [n] scratch of the fits (lm's residuals); one fit at a time per frame */
  int work_own;       /* work is its own allocation (else it follows x in x's) */
  double *y, *w;      /* [n] response, prior weights (1 when none; 0 on held-out rows) */
  int unit_w;         /* every w on this rank is 1 (no weights, or all 1): no per-row weight tests */
  int64_t *row;       /* [n] table row index, ascending */
  unsigned char *tag; /* [n] 1: fit, 2: held out (from the mask) */
  int64_t block_rows; /* rows of the table per fixed block */
  int nblk;           /* blocks held by this rank (whole blocks only) */
  int64_t *blk_off;   /* [nblk + 1] row offsets of the local blocks */
  int64_t *blk_id;    /* [nblk] global block indices, ascending */
  char response[128]; /* deparsed response */
  int one_alloc;      /* work, y, w, row and tag live in x's allocation (freed with x) */
} sm_frame;

/* Build the frame of `formula` over `t`: evaluate the variables on this rank's rows, drop rows
 * with a missing (NA/NaN) value in any variable or weight (na.omit), expand factors (string
 * columns; levels sorted in byte order, i.e. R with LC_COLLATE=C) to treatment contrasts, compute
 * poly() bases from global moments, then move the rows to the rank owning their fixed block.
 * weights: column name or NULL. mask: [local table rows] 0 = skip the row, 1 = fit, 2 = held out
 * (kept with tag 2, for predictions; models fit rows with tag 1 only), or NULL: all rows fit.
 * Collective. SM_ERR_ARG names an unknown column with near matches; SM_ERR_DATA names the table
 * row of an infinite value, a negative weight, or a response a binomial model cannot take. */
sm_status sm_frame_create(sm_ctx *ctx, sm_table *t, const sm_formula *formula, const char *weights,
                          const unsigned char *mask, int64_t block_rows, sm_frame **out);
void sm_frame_destroy(sm_frame **f);

/* ---- linear models ---- */
typedef struct {
  int p;
  int64_t n, rdf;                  /* observations (weight > 0), residual degrees of freedom */
  double *coef, *se, *tval, *pval; /* [p] */
  double *cov_unscaled;            /* [p][p] (X'WX)^-1 */
  double *R;                       /* [(p+1)][(p+1)] column-major TSQR factor of sqrt(w)[X y] */
  double sigma, rss, mss, r2, adj_r2;
  double fstat, f_numdf, f_dendf, f_pval; /* fstat NaN for an intercept-only model */
  double loglik, aic, bic;
  double resid_q[5]; /* Min, 1Q, Median, 3Q, Max of the (weighted) residuals */
  int weighted;      /* weights not all equal: R prints "Weighted Residuals" */
  int nsmall;           /* rdf <= 5: R prints every residual; here they are, by table row */
  int64_t small_row[16];
  double small_resid[16];
  int used_gram;     /* 1: R from the Gram matrix (well conditioned), 0: TSQR */
} sm_lm;

/* Fit and compute the summary. Collective. allow_gram = 0: TSQR always; 1: the Cholesky factor of
 * the block-summed Gram matrix of [X y] when its estimated condition number is at most 1e3 (then
 * it is as accurate as printed), else TSQR. SM_ERR_NUMERIC names a column collinear with the ones
 * before it (rank-deficient design) or too few rows. */
sm_status sm_lm_fit(sm_ctx *ctx, const sm_frame *f, int allow_gram, sm_lm **out);
void sm_lm_destroy(sm_lm **m);
/* Print as R's print(summary(fit)); call is the "lm(formula = ..., data = ...)" line. Local. */
void sm_lm_print(FILE *to, const sm_lm *m, const sm_frame *f, const char *call);
/* confint(fit, level): lower and upper bounds [p] each. Local. */
void sm_lm_confint(const sm_lm *m, double level, double *lo, double *hi);
/* Print confint(fit) as R prints it. Local. */
void sm_lm_print_confint(FILE *to, const sm_lm *m, const sm_frame *f, double level);

/* ---- regression diagnostics ---- */
typedef struct {
  int64_t n;                      /* local rows (same order as the frame) */
  double *hat, *rstudent, *cooks; /* [n] */
  int nworst;
  int64_t worst_row[10]; /* table rows of the largest Cook's distances, descending */
  double worst_cooks[10], worst_hat[10], worst_rstudent[10];
  int64_t n_high_leverage; /* hat > 2p/n */
  int64_t n_outliers;      /* |rstudent| > 3 */
  int64_t n_influential;   /* Cook's distance > 4/n */
  int nvif;
  double *gvif, *gvif_adj; /* [nterms] car::vif: GVIF and GVIF^(1/(2 Df)) */
  int *vif_df;
  double bp, bp_df, bp_pval; /* Breusch-Pagan, studentized (lmtest::bptest default) */
  double dw;                 /* Durbin-Watson in table row order */
} sm_lm_diag;

/* Diagnostics of a fitted model. Collective. */
sm_status sm_lm_diagnose(sm_ctx *ctx, const sm_frame *f, const sm_lm *m, sm_lm_diag **out);
void sm_lm_diag_destroy(sm_lm_diag **d);
/* Print the diagnostics with the remedy each finding suggests; labels names table rows (e.g.
 * trace_name values gathered by the caller) or NULL to print row numbers. Local. */
void sm_lm_diag_print(FILE *to, const sm_lm_diag *d, const sm_frame *f, const sm_lm *m, const char *const *labels);

/* ---- logistic regression ---- */
typedef struct {
  int p;
  int64_t n;
  double *coef, *se, *zval, *pval; /* [p] */
  double *cov;                     /* [p][p] */
  double deviance, null_deviance, aic;
  int64_t df_residual, df_null;
  int iter, converged;
  double dev_resid_q[5];
} sm_glm;

/* Binomial GLM with logit link by IRLS exactly as R's glm.fit (start from (w y + 0.5)/(w + 1),
 * epsilon 1e-8 on the relative deviance change, at most maxit iterations). The response must be
 * 0/1. allow_gram as for sm_lm_fit, per iteration. Collective. */
sm_status sm_glm_fit(sm_ctx *ctx, const sm_frame *f, int maxit, double epsilon, int allow_gram, sm_glm **out);
void sm_glm_destroy(sm_glm **m);
/* Print as R's print(summary(fit)) (R 4.2 layout, with Deviance Residuals). Local. */
void sm_glm_print(FILE *to, const sm_glm *m, const sm_frame *f, const char *call);

/* ---- gradient descent with allreduce (lm and logistic, ridge and lasso) ---- */
typedef struct {
  int sgd;          /* 0: batch gradient descent, 1: minibatch SGD over a seeded global permutation */
  int binomial;     /* 0: least squares, 1: logistic loss */
  double lr;        /* learning rate; 0 = 1/L with L the Lipschitz bound of the standardized problem */
  double decay;     /* schedule lr_t = lr / (1 + decay t), t = iteration (gd) or step (sgd) */
  double l1, l2;    /* lasso (proximal step) and ridge penalties on the standardized coefficients */
  double tol;       /* stop when max |change| < tol * max(1, max |coef|) (gd) */
  int64_t max_iter; /* iterations (gd) or epochs (sgd) */
  int64_t batch;    /* global minibatch rows (sgd) */
  uint64_t seed;
  FILE *log; /* rank 0 writes "iteration,cost" lines here when not NULL */
} sm_gd_opts;

typedef struct {
  int p;
  double *coef; /* [p] on the original scale of the columns */
  int64_t iter; /* iterations (gd) or steps (sgd) run */
  int converged;
  double cost; /* final penalized cost (mean loss over the rows fitted + penalties) */
} sm_gd_result;

/* Minimize the mean (weighted) loss plus l2/2 |beta|^2 + l1 |beta|_1 over the standardized
 * columns (centred and scaled to unit variance over the fitted rows, as glmnet's standardize;
 * the intercept is not penalized), each rank computing the gradient of its blocks and the
 * per-block partial sums combined by a fixed block tree (bit-identical at any rank count). Without
 * penalties it converges to the lm / glm solution. Collective. */
sm_status sm_gd_fit(sm_ctx *ctx, const sm_frame *f, const sm_gd_opts *o, sm_gd_result **out);
void sm_gd_result_destroy(sm_gd_result **r);

/* Classification metrics of probabilities against 0/1 labels (local arrays of n rows, all ranks
 * together). Collective. */
typedef struct {
  int64_t n, tp, fp, tn, fn;
  double accuracy, precision, recall, f1, auc;
} sm_class_metrics;
sm_status sm_class_metrics_compute(sm_ctx *ctx, const double *prob, const double *label, const double *weight,
                                   int64_t n, double threshold, sm_class_metrics *out);
/* ROC AUC of m (score, label) pairs stored [m][2] (label 1 = positive, 0 = negative): the
 * Mann-Whitney statistic with average ranks for tied scores, NaN without both classes. Sorts
 * pairs in place. Local. */
double sm_roc_auc(double *pairs, int64_t m);

#ifdef __cplusplus
}
#endif
#endif
