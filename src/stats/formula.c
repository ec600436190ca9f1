/* R model formulas: a recursive-descent parser for the formula language (~ + - * : parentheses,
 * . , 0 and 1) over R expressions for the variables (calls, I(), arithmetic), producing the
 * terms as sets of variables in R's order (terms.formula: by degree, then as written) and the
 * deparsed labels R uses to name model matrix columns. */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct {
  sm_ctx *ctx;
  const char *text, *p;
  sm_formula *f;
  const char *const *names;
  int nnames;
  sm_status st;
} parser;

typedef struct {
  int n;
  uint64_t t[SM_FORMULA_MAX_TERMS];
  int one; /* -1: none, 0: "0"/"-1" seen, 1: "1" seen */
} tlist;

static sm_status perr(parser *ps, const char *why) {
  if (ps->st == SM_OK)
    ps->st = SM_ERR(ps->ctx, SM_ERR_ARG, "formula \"%s\": column %d: %s", ps->text, (int)(ps->p - ps->text) + 1, why);
  return ps->st;
}

static void skip(parser *ps) {
  while (*ps->p && isspace((unsigned char)*ps->p))
    ps->p++;
}

static int accept(parser *ps, char c) {
  skip(ps);
  if (*ps->p != c) return 0;
  ps->p++;
  return 1;
}

static sm__expr *node(parser *ps, sm__xkind k) {
  sm__expr *e = calloc(1, sizeof *e);
  if (!e && ps->st == SM_OK) ps->st = SM_ERR(ps->ctx, SM_ERR_NOMEM, "out of memory parsing a formula");
  if (e) e->kind = k;
  return e;
}

static void expr_free(sm__expr *e) {
  if (!e) return;
  for (int i = 0; i < e->nargs; i++)
    expr_free(e->arg[i]);
  free(e);
}

static int ident(parser *ps, char *out, size_t size) {
  skip(ps);
  const char *s = ps->p;
  size_t n = 0;
  if (*s == '`') {
    const char *e = strchr(s + 1, '`');
    if (!e) return 0;
    n = (size_t)(e - s - 1);
    if (n + 1 > size) return 0;
    memcpy(out, s + 1, n);
    out[n] = '\0';
    ps->p = e + 1;
    return 1;
  }
  if (!(isalpha((unsigned char)*s) || *s == '.')) return 0;
  while (isalnum((unsigned char)s[n]) || s[n] == '.' || s[n] == '_')
    n++;
  if (n + 1 > size) return 0;
  memcpy(out, s, n);
  out[n] = '\0';
  ps->p += n;
  return 1;
}

/* ---- R expressions ---- */
static sm__expr *ex_sum(parser *ps);

static sm__expr *ex_primary(parser *ps) {
  skip(ps);
  if (accept(ps, '(')) {
    sm__expr *e = node(ps, SM__X_PAREN);
    if (e) e->arg[0] = ex_sum(ps), e->nargs = 1;
    if (!accept(ps, ')')) perr(ps, "expected ')'");
    return e;
  }
  if (isdigit((unsigned char)*ps->p) || (*ps->p == '.' && isdigit((unsigned char)ps->p[1]))) {
    char *end;
    sm__expr *e = node(ps, SM__X_NUM);
    if (e) e->num = strtod(ps->p, &end), ps->p = end;
    return e;
  }
  char name[96];
  if (!ident(ps, name, sizeof name)) {
    perr(ps, "expected a variable, a number or a call");
    return NULL;
  }
  skip(ps);
  if (*ps->p != '(') {
    sm__expr *e = node(ps, SM__X_VAR);
    if (e) snprintf(e->name, sizeof e->name, "%s", name);
    return e;
  }
  ps->p++;
  sm__expr *e = node(ps, SM__X_CALL);
  if (!e) return NULL;
  snprintf(e->name, sizeof e->name, "%s", name);
  do {
    if (e->nargs == 2) {
      perr(ps, "too many arguments");
      break;
    }
    e->arg[e->nargs++] = ex_sum(ps);
  } while (ps->st == SM_OK && accept(ps, ','));
  if (!accept(ps, ')')) perr(ps, "expected ')' closing the call");
  return e;
}

static sm__expr *ex_unary(parser *ps);
static sm__expr *ex_power(parser *ps) {
  sm__expr *a = ex_primary(ps);
  if (ps->st == SM_OK && accept(ps, '^')) {
    sm__expr *e = node(ps, SM__X_BIN);
    if (!e) return a;
    e->op = '^', e->arg[0] = a, e->arg[1] = ex_unary(ps), e->nargs = 2;
    return e;
  }
  return a;
}

static sm__expr *ex_unary(parser *ps) {
  if (accept(ps, '-')) {
    sm__expr *e = node(ps, SM__X_NEG);
    if (e) e->arg[0] = ex_unary(ps), e->nargs = 1;
    return e;
  }
  return ex_power(ps);
}

static sm__expr *ex_binary(parser *ps, int level) {
  sm__expr *a = level ? ex_unary(ps) : ex_binary(ps, 1);
  const char *ops = level ? "*/" : "+-";
  for (;;) {
    skip(ps);
    if (ps->st != SM_OK || !*ps->p || !strchr(ops, *ps->p)) return a;
    char op = *ps->p++;
    sm__expr *e = node(ps, SM__X_BIN);
    if (!e) return a;
    e->op = op, e->arg[0] = a, e->arg[1] = level ? ex_unary(ps) : ex_binary(ps, 1), e->nargs = 2;
    a = e;
  }
}

static sm__expr *ex_sum(parser *ps) { return ex_binary(ps, 0); }

void sm__expr_deparse(const sm__expr *e, char *out, size_t size) {
  char a[512] = "", b[512] = "";
  if (!e) {
    snprintf(out, size, "?");
    return;
  }
  if (e->nargs > 0) sm__expr_deparse(e->arg[0], a, sizeof a);
  if (e->nargs > 1) sm__expr_deparse(e->arg[1], b, sizeof b);
  switch (e->kind) {
  case SM__X_NUM:
    snprintf(out, size, "%.15g", e->num);
    break;
  case SM__X_VAR:
    snprintf(out, size, "%s", e->name);
    break;
  case SM__X_NEG:
    snprintf(out, size, "-%s", a);
    break;
  case SM__X_PAREN:
    snprintf(out, size, "(%s)", a);
    break;
  case SM__X_CALL:
    snprintf(out, size, e->nargs > 1 ? "%s(%s, %s)" : "%s(%s)", e->name, a, b);
    break;
  case SM__X_BIN:
    if (e->op == '^' || e->op == '/')
      snprintf(out, size, "%s%c%s", a, e->op, b);
    else
      snprintf(out, size, "%s %c %s", a, e->op, b);
    break;
  }
}

double sm__expr_eval(const sm__expr *e, const double *const *cols, int64_t i) {
  switch (e->kind) {
  case SM__X_NUM:
    return e->num;
  case SM__X_VAR:
    return cols[(int)e->num][i];
  case SM__X_NEG:
    return -sm__expr_eval(e->arg[0], cols, i);
  case SM__X_PAREN:
    return sm__expr_eval(e->arg[0], cols, i);
  case SM__X_BIN: {
    double a = sm__expr_eval(e->arg[0], cols, i), b = sm__expr_eval(e->arg[1], cols, i);
    switch (e->op) {
    case '+':
      return a + b;
    case '-':
      return a - b;
    case '*':
      return a * b;
    case '/':
      return a / b;
    default:
      return pow(a, b);
    }
  }
  case SM__X_CALL: {
    double a = sm__expr_eval(e->arg[0], cols, i);
    const char *n = e->name;
    if (!strcmp(n, "I")) return a;
    if (!strcmp(n, "log")) return e->nargs > 1 ? log(a) / log(sm__expr_eval(e->arg[1], cols, i)) : log(a);
    if (!strcmp(n, "log10")) return log10(a);
    if (!strcmp(n, "log2")) return log2(a);
    if (!strcmp(n, "log1p")) return log1p(a);
    if (!strcmp(n, "sqrt")) return sqrt(a);
    if (!strcmp(n, "exp")) return exp(a);
    if (!strcmp(n, "abs")) return fabs(a);
    return NAN;
  }
  }
  return NAN;
}

static const char *const known_calls[] = {"I", "log", "log10", "log2", "log1p", "sqrt", "exp", "abs", "factor", NULL};

/* Check calls are known, with the right number of arguments. */
static void check_expr(parser *ps, const sm__expr *e) {
  if (!e || ps->st != SM_OK) return;
  if (e->kind == SM__X_CALL) {
    int ok = 0;
    for (int i = 0; known_calls[i]; i++)
      ok |= !strcmp(known_calls[i], e->name);
    if (ok && !strcmp(e->name, "factor") && (e->nargs != 1 || e->arg[0]->kind != SM__X_VAR)) {
      perr(ps, "factor() takes one column");
      return;
    }
    if (!ok || (e->nargs != 1 && strcmp(e->name, "log"))) {
      char m[256];
      snprintf(m, sizeof m,
               ok ? "%s() takes one argument"
                  : "unknown function %s(); known: I, log, log10, log2, log1p, sqrt, exp, abs, factor, poly(x, k)",
               e->name);
      perr(ps, m);
    }
  }
  for (int i = 0; i < e->nargs; i++)
    check_expr(ps, e->arg[i]);
}

/* ---- the formula language ---- */
static int add_var(parser *ps, sm__expr *e) {
  sm_formula *f = ps->f;
  char label[256];
  sm__expr_deparse(e, label, sizeof label);
  for (int v = 0; v < f->nvars; v++)
    if (!strcmp(f->var[v].label, label)) {
      expr_free(e);
      return v;
    }
  if (f->nvars == SM_FORMULA_MAX_VARS) {
    expr_free(e);
    perr(ps, "too many variables (at most 64)");
    return -1;
  }
  sm__var *v = &f->var[f->nvars];
  v->e = e;
  snprintf(v->label, sizeof v->label, "%s", label);
  if (e->kind == SM__X_CALL && !strcmp(e->name, "poly")) {
    if (e->nargs != 2 || e->arg[1]->kind != SM__X_NUM || e->arg[1]->num < 1 || e->arg[1]->num > 20 ||
        e->arg[1]->num != floor(e->arg[1]->num) || e->arg[0]->kind != SM__X_VAR) {
      perr(ps, "poly(x, k) takes a column and a degree k in 1..20");
      return -1;
    }
    v->poly_k = (int)e->arg[1]->num;
  } else {
    check_expr(ps, e);
  }
  return f->nvars++;
}

static void tl_add(tlist *l, uint64_t t) {
  for (int i = 0; i < l->n; i++)
    if (l->t[i] == t) return;
  if (l->n < SM_FORMULA_MAX_TERMS) l->t[l->n++] = t;
}

static void f_sum(parser *ps, tlist *out);
static void deparse_call(const char *in, char *out, size_t size);

static void f_atom(parser *ps, tlist *out) {
  out->n = 0, out->one = -1;
  skip(ps);
  if (accept(ps, '(')) {
    f_sum(ps, out);
    if (!accept(ps, ')')) perr(ps, "expected ')'");
    return;
  }
  if ((*ps->p == '0' || *ps->p == '1') && !isalnum((unsigned char)ps->p[1]) && ps->p[1] != '.') {
    out->one = *ps->p++ == '1';
    return;
  }
  if (*ps->p == '.' && !isalnum((unsigned char)ps->p[1]) && ps->p[1] != '_' && ps->p[1] != '.') {
    ps->p++;
    for (int j = 0; j < ps->nnames; j++) {
      if (!strcmp(ps->names[j], ps->f->lhs_label)) continue;
      sm__expr *e = node(ps, SM__X_VAR);
      if (!e) return;
      snprintf(e->name, sizeof e->name, "%s", ps->names[j]);
      int v = add_var(ps, e);
      if (v >= 0) tl_add(out, (uint64_t)1 << v);
    }
    return;
  }
  sm__expr *e = ex_primary(ps);
  if (ps->st != SM_OK) {
    expr_free(e);
    return;
  }
  if (e && e->kind != SM__X_VAR && e->kind != SM__X_CALL) {
    expr_free(e);
    perr(ps, "arithmetic in a formula term must be wrapped in I(), e.g. I(x^2)");
    return;
  }
  int v = add_var(ps, e);
  if (v >= 0) tl_add(out, (uint64_t)1 << v);
}

static void f_colon(parser *ps, tlist *out) {
  f_atom(ps, out);
  while (ps->st == SM_OK && accept(ps, ':')) {
    tlist b, r = {0, {0}, -1};
    f_atom(ps, &b);
    for (int i = 0; i < out->n; i++)
      for (int j = 0; j < b.n; j++)
        tl_add(&r, out->t[i] | b.t[j]);
    *out = r;
  }
}

static void f_prod(parser *ps, tlist *out) {
  f_colon(ps, out);
  while (ps->st == SM_OK && accept(ps, '*')) {
    tlist b, r = *out;
    f_colon(ps, &b);
    for (int j = 0; j < b.n; j++)
      tl_add(&r, b.t[j]);
    for (int i = 0; i < out->n; i++)
      for (int j = 0; j < b.n; j++)
        tl_add(&r, out->t[i] | b.t[j]);
    if (b.one >= 0) r.one = b.one;
    *out = r;
  }
}

static void f_sum(parser *ps, tlist *out) {
  out->n = 0, out->one = -1;
  int sign = 1;
  if (accept(ps, '-')) sign = -1;
  for (;;) {
    tlist b;
    f_prod(ps, &b);
    if (ps->st != SM_OK) return;
    if (b.one >= 0) out->one = sign > 0 ? b.one : !b.one;
    for (int j = 0; j < b.n; j++) {
      if (sign > 0) {
        tl_add(out, b.t[j]);
        continue;
      }
      for (int i = 0; i < out->n; i++)
        if (out->t[i] == b.t[j]) {
          memmove(&out->t[i], &out->t[i + 1], (size_t)(out->n - i - 1) * sizeof out->t[0]);
          out->n--;
          break;
        }
    }
    skip(ps);
    if (*ps->p == '+')
      sign = 1;
    else if (*ps->p == '-')
      sign = -1;
    else
      return;
    ps->p++;
  }
}

static int popcount(uint64_t x) { return __builtin_popcountll(x); }

static void build_text(sm_formula *f) {
  size_t l = (size_t)snprintf(f->text, sizeof f->text, "%s ~ ", f->lhs_label);
  int first = 1;
  for (int i = 0; i < f->nterms; i++) {
    char lab[512] = "";
    for (int v = 0, k = 0; v < f->nvars; v++)
      if (f->term[i] >> v & 1) {
        size_t ll = strlen(lab);
        snprintf(lab + ll, sizeof lab - ll, "%s%s", k++ ? ":" : "", f->var[v].label);
      }
    l += (size_t)snprintf(f->text + l, sizeof f->text - (l < sizeof f->text ? l : sizeof f->text), "%s%s",
                          first ? "" : " + ", lab);
    first = 0;
  }
  if (!f->intercept && l < sizeof f->text)
    snprintf(f->text + l, sizeof f->text - l, first ? "-1" : " - 1");
  else if (first && l < sizeof f->text)
    snprintf(f->text + l, sizeof f->text - l, "1");
}

sm_status sm_formula_parse(sm_ctx *ctx, const char *text, const char *const *names, int n, sm_formula **out) {
  *out = NULL;
  sm_formula *f = calloc(1, sizeof *f);
  SM_CHECK(ctx, f, SM_ERR_NOMEM, "out of memory");
  parser ps = {ctx, text, text, f, names, n, SM_OK};
  f->lhs = ex_sum(&ps);
  if (ps.st == SM_OK) check_expr(&ps, f->lhs);
  if (ps.st == SM_OK) sm__expr_deparse(f->lhs, f->lhs_label, sizeof f->lhs_label);
  if (ps.st == SM_OK && !accept(&ps, '~')) perr(&ps, "expected '~' after the response");
  tlist tl = {0, {0}, -1};
  if (ps.st == SM_OK) f_sum(&ps, &tl);
  skip(&ps);
  if (ps.st == SM_OK && *ps.p && strchr("^/", *ps.p))
    perr(&ps, "arithmetic in a formula term must be wrapped in I(), e.g. I(x^2)");
  if (ps.st == SM_OK && *ps.p) perr(&ps, "unexpected text");
  if (ps.st != SM_OK) {
    sm_formula_destroy(&f);
    return ps.st;
  }
  f->intercept = tl.one != 0;
  /* R's order: by degree (number of variables), then as written. */
  for (int deg = 1; deg <= SM_FORMULA_MAX_VARS; deg++)
    for (int i = 0; i < tl.n; i++)
      if (popcount(tl.t[i]) == deg) f->term[f->nterms++] = tl.t[i];
  build_text(f);
  deparse_call(text, f->call, sizeof f->call);
  *out = f;
  return SM_OK;
}

void sm_formula_destroy(sm_formula **fp) {
  if (!fp || !*fp) return;
  sm_formula *f = *fp;
  expr_free(f->lhs);
  for (int v = 0; v < f->nvars; v++)
    expr_free(f->var[v].e);
  free(f);
  *fp = NULL;
}

const char *sm_formula_text(const sm_formula *f) { return f->text; }
const char *sm_formula_call_text(const sm_formula *f) { return f->call; }

/* The formula as the user wrote it, spaced as R's deparse spaces it: binary ~ + - * with spaces,
 * : ^ / without, ", " after commas, unary minus attached. */
static void deparse_call(const char *in, char *out, size_t size) {
  size_t o = 0;
  int prev_operand = 0; /* the previous token ends an operand: a following - is binary */
  for (const char *p = in; *p && o + 4 < size;) {
    if (isspace((unsigned char)*p)) {
      p++;
      continue;
    }
    if (strchr("~+-*", *p) && (prev_operand || *p != '-')) {
      o += (size_t)snprintf(out + o, size - o, " %c ", *p++);
      prev_operand = 0;
    } else if (strchr(":^/(-", *p)) {
      out[o++] = *p++;
      prev_operand = 0;
    } else if (*p == ',') {
      o += (size_t)snprintf(out + o, size - o, ", ");
      p++;
      prev_operand = 0;
    } else if (*p == ')') {
      out[o++] = *p++;
      prev_operand = 1;
    } else {
      if (*p == '`') {
        do
          out[o++] = *p++;
        while (*p && *p != '`' && o + 2 < size);
        if (*p) out[o++] = *p++;
      } else {
        while (*p && !isspace((unsigned char)*p) && !strchr("~+-*:^/(),", *p) && o + 2 < size) {
          if ((*p == 'e' || *p == 'E') && (p[1] == '-' || p[1] == '+') && o > 0 && isdigit((unsigned char)out[o - 1]))
            out[o++] = *p++; /* exponent sign of a number */
          out[o++] = *p++;
        }
      }
      prev_operand = 1;
    }
  }
  out[o < size ? o : size - 1] = '\0';
  /* a leading "y ~" has no operand before "~" issues; trim a leading space from "~ x" forms */
  if (out[0] == ' ') memmove(out, out + 1, strlen(out));
}
