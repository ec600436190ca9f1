/* Numbers printed the way R prints them, so that `sisma lm` and `sisma glm` reproduce the text of
 * R's print(summary(fit)) digit for digit. Each function names the R function it mirrors
 * (R 4.2 sources: src/main/format.c formatReal/scientific, src/library/base/R/format.R
 * format.pval, src/library/stats/R/lm.R printCoefmat). R computes with long double where the
 * platform has it; so do we. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define KP_MAX 22

static long double pow10l_(int k) {
  long double p = 1.0L;
  for (int i = 0; i < k; i++)
    p *= 10.0L;
  return p;
}

/* R's scientific(): sign, decimal exponent, significant digits (<= digits) of x rounded to
 * `digits` significant digits, and whether that rounding widens the fixed notation. */
static void scientific(double x, int digits, int *neg, int *kpower, int *nsig, int *widens) {
  if (x == 0.0) {
    *kpower = 0, *nsig = 1, *neg = 0, *widens = 0;
    return;
  }
  double r = fabs(x);
  *neg = x < 0;
  int kp = (int)floor(log10(r)) - digits + 1;
  long double r_prec = r;
  if (abs(kp) < 10) {
    if (kp > 0)
      r_prec /= pow10l_(kp);
    else if (kp < 0)
      r_prec *= pow10l_(-kp);
  } else if (kp <= DBL_MIN_10_EXP) {
    r_prec = (r * 1e+303) / powl(10.0L, kp + 303);
  } else {
    r_prec /= powl(10.0L, kp);
  }
  if (r_prec < pow10l_(digits - 1)) {
    r_prec *= 10.0L;
    kp--;
  }
  long double alpha = nearbyintl(r_prec);
  *nsig = digits;
  for (int j = 1; j <= digits; j++) {
    alpha /= 10.0L;
    if (alpha == floorl(alpha))
      (*nsig)--;
    else
      break;
  }
  if (*nsig == 0 && digits > 0) {
    *nsig = 1;
    kp += 1;
  }
  *kpower = kp + digits - 1;
  int rgt = digits - *kpower;
  rgt = rgt < 0 ? 0 : rgt > KP_MAX ? KP_MAX : rgt;
  double fuzz = 0.5 / (double)pow10l_(rgt);
  *widens = *kpower > 0 && *kpower <= KP_MAX && r < (double)pow10l_(*kpower) - fuzz;
}

void sm__rfmt_params(const double *x, int n, int digits, sm__rfmt *f) {
  int rgt = INT32_MIN, mxl = INT32_MIN, mxsl = INT32_MIN, mxns = INT32_MIN, mxe = INT32_MIN, mne = INT32_MAX;
  int neg = 0, naw = 0;
  for (int i = 0; i < n; i++) {
    if (!isfinite(x[i])) {
      int l = isnan(x[i]) ? 2 : x[i] > 0 ? 3 : 4; /* NA (NaN printed as NaN: 3) */
      if (l > naw) naw = l;
      continue;
    }
    int ng, kp, ns, wd;
    scientific(x[i], digits, &ng, &kp, &ns, &wd);
    int left = kp + 1;
    if (wd) left--;
    int sleft = ng + (left <= 0 ? 1 : left), right = ns - left;
    if (ng) neg = 1;
    if (right > rgt) rgt = right;
    if (left > mxl) mxl = left;
    if (sleft > mxsl) mxsl = sleft;
    if (ns > mxns) mxns = ns;
    if (kp > mxe) mxe = kp;
    if (kp < mne) mne = kp;
  }
  f->w = f->d = f->e = 0;
  if (mxl != INT32_MIN) {
    if (mxl < 0) mxsl = 1 + neg;
    if (rgt < 0) rgt = 0;
    int wF = mxsl + rgt + (rgt != 0);
    f->e = (mxe >= 100 || mne <= -100) ? 2 : 1;
    f->d = mxns - 1;
    f->w = neg + (f->d > 0) + f->d + 4 + f->e;
    if (wF <= f->w) {
      f->e = 0;
      f->d = rgt;
      f->w = wF;
    }
  }
  if (naw > f->w) f->w = naw;
}

void sm__rfmt_encode(double x, const sm__rfmt *f, char *out, size_t size) {
  if (isnan(x))
    snprintf(out, size, "%*s", f->w, "NA");
  else if (isinf(x))
    snprintf(out, size, "%*s", f->w, x > 0 ? "Inf" : "-Inf");
  else if (f->e)
    snprintf(out, size, f->d ? "%#*.*e" : "%*.*e", f->w, f->d, x);
  else
    snprintf(out, size, "%*.*f", f->w, f->d, x);
}

void sm__rfmt_vec(const double *x, int n, int digits, char (*out)[SM_RFMT_MAX]) {
  sm__rfmt f;
  sm__rfmt_params(x, n, digits, &f);
  for (int i = 0; i < n; i++)
    sm__rfmt_encode(x[i], &f, out[i], SM_RFMT_MAX);
}

void sm__rfmt_one(double x, int digits, char *out, size_t size) {
  sm__rfmt f;
  sm__rfmt_params(&x, 1, digits, &f);
  sm__rfmt_encode(x, &f, out, size);
}

/* R's round(x, d) for the magnitudes printed here (long double scaling, ties away from zero as
 * sprintf would not matter at the printed precision). */
double sm__r_round(double x, int d) {
  if (!isfinite(x)) return x;
  long double p = powl(10.0L, d);
  return (double)(nearbyintl((long double)x * p) / p);
}

double sm__r_signif(double x, int d) {
  if (x == 0 || !isfinite(x)) return x;
  int e = (int)floor(log10(fabs(x)));
  return sm__r_round(x, d - 1 - e);
}

void sm__r_zapsmall(double *x, int n, int digits) {
  double mx = 0;
  for (int i = 0; i < n; i++)
    if (isfinite(x[i]) && fabs(x[i]) > mx) mx = fabs(x[i]);
  /* R 4.2: round(x, digits - log10(mx)), and round() takes the nearest integer digits */
  int d = mx > 0 ? (int)fmax(0, floor(digits - log10(mx) + 0.5)) : digits;
  for (int i = 0; i < n; i++)
    x[i] = sm__r_round(x[i], d);
}

/* R's format.pval(pv, digits, eps = .Machine$double.eps): fixed and scientific values are each
 * formatted together; values below eps print as "<2e-16"/"< 2.2e-16". */
void sm__r_format_pval(const double *pv, int n, int digits, char (*out)[SM_RFMT_MAX]) {
  const double eps = DBL_EPSILON;
  double *fix = calloc((size_t)n + 1, sizeof *fix), *sci = calloc((size_t)n + 1, sizeof *sci);
  if (!fix || !sci) n = 0;
  int nf = 0, ns = 0, n0 = 0, nc = 0;
  for (int i = 0; i < n; i++) {
    if (isnan(pv[i]) || pv[i] < eps) continue;
    int expo = (int)floor(log10(pv[i] > 0 ? pv[i] : 1e-50));
    if (expo >= -3 || (expo == -4 && digits > 1))
      fix[nf++] = pv[i];
    else
      sci[ns++] = pv[i];
  }
  sm__rfmt ff, fs;
  sm__rfmt_params(fix, nf, digits, &ff);
  sm__rfmt_params(sci, ns, digits, &fs);
  for (int i = 0; i < n; i++) {
    if (isnan(pv[i]))
      snprintf(out[i], SM_RFMT_MAX, "NA");
    else if (pv[i] < eps)
      n0++;
    else {
      int expo = (int)floor(log10(pv[i] > 0 ? pv[i] : 1e-50));
      sm__rfmt_encode(pv[i], (expo >= -3 || (expo == -4 && digits > 1)) ? &ff : &fs, out[i], SM_RFMT_MAX);
      int l = (int)strlen(out[i]);
      if (l > nc) nc = l;
    }
  }
  if (n0) {
    int d = digits - 2 < 1 ? 1 : digits - 2;
    const char *sep;
    if (nf + ns > 0) {
      if (d > 1 && d + 6 > nc) d = nc - 7 < 1 ? 1 : nc - 7;
      sep = (d == 1 && nc <= 6) ? "" : " ";
    } else {
      sep = d == 1 ? "" : " ";
    }
    char e[64];
    sm__rfmt_one(eps, d, e, sizeof e);
    for (int i = 0; i < n; i++)
      if (!isnan(pv[i]) && pv[i] < eps) snprintf(out[i], SM_RFMT_MAX, "<%s%s", sep, e);
  }
  free(fix);
  free(sci);
}

/* R's format(): character vector padded to a common width (right-justified numbers). */
static void pad_right_just(char (*s)[SM_RFMT_MAX], int n) {
  int w = 0;
  for (int i = 0; i < n; i++)
    if ((int)strlen(s[i]) > w) w = (int)strlen(s[i]);
  for (int i = 0; i < n; i++) {
    char t[SM_RFMT_MAX];
    snprintf(t, sizeof t, "%*s", w, s[i]);
    memcpy(s[i], t, SM_RFMT_MAX);
  }
}

/* R's printCoefmat(x, digits, signif.stars = TRUE, na.print = "NA") for the usual
 * [Estimate, Std. Error, t/z value, Pr(>|t|)] matrix of k rows; writes the printed block,
 * including the significance legend, to `to`. */
void sm__r_print_coefmat(FILE *to, int k, const char *const *rows, const double *est, const double *se,
                         const double *tv, const double *pv, const char *const hdr[4], int digits) {
  char(*cf)[SM_RFMT_MAX] = calloc((size_t)(4 * k + 1), SM_RFMT_MAX);
  char(*st)[SM_RFMT_MAX] = calloc((size_t)(k + 1), SM_RFMT_MAX);
  double *cs = calloc((size_t)(2 * k + 1), sizeof *cs), *t3 = calloc((size_t)(k + 1), sizeof *t3);
  if (!cf || !st || !cs || !t3) {
    free(cf), free(st), free(cs), free(t3);
    fprintf(to, "(out of memory printing the coefficients)\n");
    return;
  }
  /* Estimate and Std. Error: rounded together, then formatted together. */
  double lo = INFINITY, hi = -INFINITY;
  for (int i = 0; i < 2 * k; i++) {
    double a = fabs(i < k ? est[i] : se[i - k]);
    if (isfinite(a) && a != 0) lo = fmin(lo, a), hi = fmax(hi, a);
  }
  /* R: round(coef.se, max(1, digits - digmin)) with digmin = 1 + floor(log10(range)): the
   * smallest magnitude decides */
  int digmin = isfinite(lo) ? 1 + (int)floor(log10(lo)) : 1;
  int rd = digits - digmin > 1 ? digits - digmin : 1;
  (void)hi;
  for (int i = 0; i < k; i++)
    cs[i] = sm__r_round(est[i], rd), cs[k + i] = sm__r_round(se[i], rd);
  char(*tmp)[SM_RFMT_MAX] = cf + 0; /* columns stored as cf[col * k + row] */
  sm__rfmt_vec(cs, 2 * k, digits, tmp);
  int dig_tst = digits - 1 < 5 ? (digits - 1 > 1 ? digits - 1 : 1) : 5;
  for (int i = 0; i < k; i++)
    t3[i] = sm__r_round(tv[i], dig_tst);
  sm__rfmt_vec(t3, k, digits, cf + 2 * k);
  /* Entries that print as zero but are not zero: formatted again with digits - 1. */
  int nz = 0;
  double *zv = malloc((size_t)(2 * k + 1) * sizeof *zv);
  int *zi = malloc((size_t)(2 * k + 1) * sizeof *zi);
  for (int i = 0; zv && zi && i < 2 * k; i++) {
    double orig = i < k ? est[i] : se[i - k], shown = atof(cf[i]);
    if ((orig == 0) != (shown == 0)) zv[nz] = orig, zi[nz++] = i;
  }
  if (nz) {
    char(*z)[SM_RFMT_MAX] = calloc((size_t)nz, SM_RFMT_MAX);
    if (z) {
      sm__rfmt_vec(zv, nz, digits - 1 > 1 ? digits - 1 : 1, z);
      for (int j = 0; j < nz; j++)
        memcpy(cf[zi[j]], z[j], SM_RFMT_MAX);
    }
    free(z);
  }
  free(zv), free(zi);
  sm__r_format_pval(pv, k, dig_tst, cf + 3 * k);
  for (int c = 0; c < 4; c++)
    pad_right_just(cf + c * k, k);
  int stars = 0;
  for (int i = 0; i < k; i++)
    stars |= pv[i] < 0.1;
  int sw = 0; /* format(Signif): as wide as the widest symbol present */
  for (int i = 0; i < k; i++) {
    const char *s = isnan(pv[i])     ? ""
                    : pv[i] <= 0.001 ? "***"
                    : pv[i] <= 0.01  ? "**"
                    : pv[i] <= 0.05  ? "*"
                    : pv[i] <= 0.1   ? "."
                                     : " ";
    snprintf(st[i], SM_RFMT_MAX, "%s", s);
    if ((int)strlen(s) > sw) sw = (int)strlen(s);
  }
  int rw = 0, cw[4];
  for (int i = 0; i < k; i++)
    if ((int)strlen(rows[i]) > rw) rw = (int)strlen(rows[i]);
  for (int c = 0; c < 4; c++) {
    cw[c] = (int)strlen(hdr[c]);
    if (k && (int)strlen(cf[c * k]) > cw[c]) cw[c] = (int)strlen(cf[c * k]);
  }
  fprintf(to, "%*s", rw, "");
  for (int c = 0; c < 4; c++)
    fprintf(to, " %*s", cw[c], hdr[c]);
  if (stars) fprintf(to, " %*s", sw, "");
  fprintf(to, "\n");
  for (int i = 0; i < k; i++) {
    fprintf(to, "%-*s", rw, rows[i]);
    for (int c = 0; c < 4; c++)
      fprintf(to, " %*s", cw[c], cf[c * k + i]);
    if (stars) fprintf(to, " %-*s", sw, st[i]);
    fprintf(to, "\n");
  }
  if (stars)
    fprintf(to, "---\nSignif. codes:  0 \xe2\x80\x98***\xe2\x80\x99 0.001 \xe2\x80\x98**\xe2\x80\x99 0.01 "
                "\xe2\x80\x98*\xe2\x80\x99 0.05 \xe2\x80\x98.\xe2\x80\x99 0.1 \xe2\x80\x98 \xe2\x80\x99 1\n");
  free(cf), free(st), free(cs), free(t3);
}

/* R's print() of a named numeric vector: each field right-justified to the common width and
 * followed by `gap` spaces; names above values. Wraps at 80 columns as R does. */
void sm__r_print_named(FILE *to, int n, const char *const *names, const double *x, int digits, int gap) {
  char(*v)[SM_RFMT_MAX] = calloc((size_t)n + 1, SM_RFMT_MAX);
  if (!v) return;
  sm__rfmt_vec(x, n, digits, v);
  int w = 0;
  for (int i = 0; i < n; i++) {
    if ((int)strlen(v[i]) > w) w = (int)strlen(v[i]);
    if ((int)strlen(names[i]) > w) w = (int)strlen(names[i]);
  }
  int per = 80 / (w + gap);
  if (per < 1) per = 1;
  for (int s = 0; s < n; s += per) {
    int e = s + per < n ? s + per : n;
    for (int i = s; i < e; i++)
      fprintf(to, "%*s%*s", w, names[i], gap, "");
    fprintf(to, "\n");
    for (int i = s; i < e; i++)
      fprintf(to, "%*s%*s", w, v[i], gap, "");
    fprintf(to, "\n");
  }
  free(v);
}

/* print(call) as R deparses it (deparse.c, width.cutoff 60): after each ", " between arguments and
 * each spaced binary operator (~ + - * == != < > <= >= & | && ||), a line longer than 60 bytes is
 * ended there (the separator's trailing blank stays) and the next starts with 4 blanks. */
void sm__r_print_call(FILE *to, const char *call) {
  static const char *const ops[] = {
      " ~ ", " + ", " - ", " * ", " == ", " != ", " <= ", " >= ", " < ", " > ", " && ", " || ", " & ", " | "};
  size_t len = 0;
  int quoted = 0;
  for (const char *c = call; *c;) {
    size_t k = 0;
    if (!quoted && c[0] == ',' && c[1] == ' ') k = 2;
    for (size_t o = 0; !quoted && !k && o < sizeof ops / sizeof ops[0]; o++)
      if (!strncmp(c, ops[o], strlen(ops[o]))) k = strlen(ops[o]);
    if (!k) {
      quoted ^= *c == '"';
      fputc(*c++, to), len++;
      continue;
    }
    fwrite(c, 1, k, to), c += k, len += k;
    if (len > 60 && *c) fputs("\n    ", to), len = 4;
  }
  fputc('\n', to);
}
