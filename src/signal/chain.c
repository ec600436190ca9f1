/* Processing chains: the `chain` text of the preprocess stage parsed into steps, planned for a
 * fixed input shape (so lengths, rates and filters are known before any data is read), and
 * applied to blocks of traces. Every step runs in float64 and reuses the library functions of
 * this directory; the only per-call memory is the caller's buffers. Start at sm_chain_parse. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sisma/config.h"
#include "sisma/signal.h"

static const char *const step_names[] = {"demean",   "detrend",  "taper",    "bandpass", "lowpass",
                                         "highpass", "resample", "decimate", "normalize"};
#define N_STEP_NAMES (int)(sizeof step_names / sizeof step_names[0])

/* Parameters each step accepts (for validation and "did you mean"). */
static const char *const step_params[N_STEP_NAMES][5] = {
    {NULL},
    {"type", "order", NULL},
    {"type", "max_percentage", "max_length", NULL},
    {"freqmin", "freqmax", "corners", "zerophase", NULL},
    {"freq", "corners", "zerophase", NULL},
    {"freq", "corners", "zerophase", NULL},
    {"rate", "method", NULL},
    {"factor", "ftype", NULL},
    {"type", "mode", NULL},
};

typedef struct {
  char key[32][16], val[32][48];
  int n, used[16];
} params;

static int nparams_of(int s) {
  int k = 0;
  while (k < 5 && step_params[s][k])
    k++;
  return k;
}

static const char *get(params *p, const char *key) {
  for (int i = 0; i < p->n; i++)
    if (!strcmp(p->key[i], key)) return p->used[i] = 1, p->val[i];
  return NULL;
}

static sm_status num(sm_ctx *ctx, const char *what, const sm_step *st, params *p, const char *key, double def, int req,
                     double *out) {
  const char *v = get(p, key);
  if (!v) {
    SM_CHECK(ctx, !req, SM_ERR_CONFIG, "%s: step '%s' needs %s=<value>", what, st->text, key);
    *out = def;
    return SM_OK;
  }
  char *end;
  *out = strtod(v, &end);
  SM_CHECK(ctx, end != v && *end == '\0' && isfinite(*out), SM_ERR_CONFIG, "%s: step '%s': %s=%s is not a number", what,
           st->text, key, v);
  return SM_OK;
}

/* Match p's value of key against "a|b|c"; *out = its index, def when absent. */
static sm_status choice(sm_ctx *ctx, const char *what, const sm_step *st, params *p, const char *key,
                        const char *choices, int def, int *out) {
  const char *v = get(p, key);
  *out = def;
  if (!v) return SM_OK;
  char buf[128];
  snprintf(buf, sizeof buf, "%s", choices);
  int i = 0;
  for (char *save = NULL, *t = strtok_r(buf, "|", &save); t; t = strtok_r(NULL, "|", &save), i++)
    if (!strcmp(t, v)) return *out = i, SM_OK;
  return SM_ERR(ctx, SM_ERR_CONFIG, "%s: step '%s': %s=%s must be one of %s", what, st->text, key, v, choices);
}

/* Split "name k=v k=v" into the step name and its parameters. */
static sm_status split_step(sm_ctx *ctx, const char *what, char *tok, char *name, size_t nsz, params *p) {
  p->n = 0;
  memset(p->used, 0, sizeof p->used);
  char *save = NULL, *w = strtok_r(tok, " \t", &save);
  SM_CHECK(ctx, w, SM_ERR_CONFIG, "%s: empty step (two commas in a row?)", what);
  snprintf(name, nsz, "%s", w);
  while ((w = strtok_r(NULL, " \t", &save))) {
    char *eq = strchr(w, '=');
    SM_CHECK(ctx, eq && eq != w && p->n < 16, SM_ERR_CONFIG, "%s: step '%s': parameter '%s' must be written key=value",
             what, name, w);
    *eq = '\0';
    snprintf(p->key[p->n], sizeof p->key[0], "%s", w);
    snprintf(p->val[p->n], sizeof p->val[0], "%s", eq + 1);
    p->n++;
  }
  return SM_OK;
}

static sm_status plan_filter(sm_ctx *ctx, const char *what, sm_step *st, int which, params *p) {
  double order, lo = 0, hi = 0;
  if (which == 3) {
    SM_TRY(ctx, num(ctx, what, st, p, "freqmin", 0, 1, &lo));
    SM_TRY(ctx, num(ctx, what, st, p, "freqmax", 0, 1, &hi));
  } else {
    SM_TRY(ctx, num(ctx, what, st, p, "freq", 0, 1, which == 4 ? &hi : &lo));
  }
  SM_TRY(ctx, num(ctx, what, st, p, "corners", 4, 0, &order));
  SM_TRY(ctx, choice(ctx, what, st, p, "zerophase", "false|true|obspy", 0, &st->zerophase));
  SM_CHECK(ctx, order == floor(order) && order >= 1 && order <= SM_BUTTER_MAX_ORDER, SM_ERR_CONFIG,
           "%s: step '%s': corners=%g must be an integer in [1, %d]", what, st->text, order, SM_BUTTER_MAX_ORDER);
  st->order = (int)order, st->f1 = lo, st->f2 = hi;
  sm_band band = which == 3 ? SM_BAND_BANDPASS : which == 4 ? SM_BAND_LOWPASS : SM_BAND_HIGHPASS;
  if (sm_butter_sos(ctx, st->order, lo, hi, st->fs_in, band, &st->sos[0][0], &st->ns) != SM_OK) {
    char why[SM_ERRMSG_MAX];
    snprintf(why, sizeof why, "%s", ctx->err_msg);
    return SM_ERR(ctx, SM_ERR_CONFIG, "%s: step '%s' at %g Hz: %s", what, st->text, st->fs_in, why);
  }
  int64_t pad = sm_sosfiltfilt_padlen(&st->sos[0][0], st->ns);
  SM_CHECK(ctx, st->zerophase != 1 || st->n_in > pad, SM_ERR_CONFIG,
           "%s: step '%s': %lld samples are too few for a zero-phase filter (needs more than %lld)", what, st->text,
           (long long)st->n_in, (long long)pad);
  return SM_OK;
}

/* Fill in one step's parameters and output shape from its name and params. */
static sm_status plan_step(sm_ctx *ctx, const char *what, sm_step *st, int which, params *p) {
  st->n_out = st->n_in, st->fs_out = st->fs_in;
  switch (which) {
  case 0:
    st->op = SM_STEP_DEMEAN;
    break;
  case 1: {
    double order;
    st->op = SM_STEP_DETREND;
    SM_TRY(ctx, choice(ctx, what, st, p, "type", "constant|linear|polynomial", 1, &st->kind));
    SM_TRY(ctx, num(ctx, what, st, p, "order", 2, 0, &order));
    SM_CHECK(ctx, order == floor(order) && order >= 0 && order <= SM_DETREND_MAX_ORDER, SM_ERR_CONFIG,
             "%s: step '%s': order=%g must be an integer in [0, %d]", what, st->text, order, SM_DETREND_MAX_ORDER);
    st->order = (int)order;
    break;
  }
  case 2:
    st->op = SM_STEP_TAPER;
    SM_TRY(ctx, choice(ctx, what, st, p, "type", "cosine|hann", 1, &st->kind));
    SM_TRY(ctx, num(ctx, what, st, p, "max_percentage", 0.05, 0, &st->p1));
    SM_TRY(ctx, num(ctx, what, st, p, "max_length", 0, 0, &st->p2));
    SM_CHECK(ctx, st->p1 >= 0 && st->p1 <= 0.5 && st->p2 >= 0, SM_ERR_CONFIG,
             "%s: step '%s': max_percentage must be in [0, 0.5] and max_length >= 0 s", what, st->text);
    break;
  case 3:
  case 4:
  case 5:
    st->op = SM_STEP_FILTER;
    SM_TRY(ctx, plan_filter(ctx, what, st, which, p));
    break;
  case 6: {
    double rate;
    st->op = SM_STEP_RESAMPLE;
    SM_TRY(ctx, num(ctx, what, st, p, "rate", 0, 1, &rate));
    SM_TRY(ctx, choice(ctx, what, st, p, "method", "poly|fourier", 0, &st->kind));
    SM_CHECK(ctx, rate > 0, SM_ERR_CONFIG, "%s: step '%s': rate must be > 0 Hz", what, st->text);
    SM_CHECK(ctx, sm_resample_ratio(st->fs_in, rate, 1000, &st->up, &st->down) == 0, SM_ERR_CONFIG,
             "%s: step '%s': %g Hz -> %g Hz is not a ratio of integers <= 1000", what, st->text, st->fs_in, rate);
    st->n_out = st->kind == 0 ? sm_resample_poly_len(st->n_in, st->up, st->down)
                              : (int64_t)llround((double)st->n_in * rate / st->fs_in);
    st->fs_out = st->kind == 0 ? st->fs_in * (double)st->up / (double)st->down
                               : st->fs_in * (double)st->n_out / (double)st->n_in;
    break;
  }
  case 7: {
    double q;
    st->op = SM_STEP_DECIMATE;
    SM_TRY(ctx, num(ctx, what, st, p, "factor", 0, 1, &q));
    SM_TRY(ctx, choice(ctx, what, st, p, "ftype", "iir|fir", 0, &st->kind));
    SM_CHECK(ctx, q == floor(q) && q >= 1 && q <= 1000, SM_ERR_CONFIG,
             "%s: step '%s': factor=%g must be an integer in [1, 1000]", what, st->text, q);
    st->down = (int64_t)q, st->up = 1;
    if (st->kind == 0 && q > 1) { /* scipy.signal.decimate's default filter, designed once */
      if (sm_cheby1_lowpass_sos(ctx, 8, 0.05, 0.8 / q, &st->sos[0][0], &st->ns) != SM_OK)
        return SM_ERR(ctx, SM_ERR_CONFIG, "%s: step '%s': cannot design the anti-alias filter", what, st->text);
      SM_CHECK(ctx, st->n_in > sm_sosfiltfilt_padlen(&st->sos[0][0], st->ns), SM_ERR_CONFIG,
               "%s: step '%s': %lld samples are too few for the zero-phase anti-alias filter", what, st->text,
               (long long)st->n_in);
    }
    st->n_out = (st->n_in + st->down - 1) / st->down, st->fs_out = st->fs_in / q;
    break;
  }
  default:
    st->op = SM_STEP_NORMALIZE;
    SM_TRY(ctx, choice(ctx, what, st, p, "type", "peak|std", 0, &st->kind));
    SM_TRY(ctx, choice(ctx, what, st, p, "mode", "component|all", 0, &st->all_components));
  }
  SM_CHECK(ctx, st->n_out >= 1, SM_ERR_CONFIG, "%s: step '%s' leaves no samples", what, st->text);
  for (int i = 0; i < p->n; i++)
    if (!p->used[i]) {
      char near[256];
      sm_near_matches(p->key[i], step_params[which], nparams_of(which), near, sizeof near);
      return SM_ERR(ctx, SM_ERR_CONFIG, "%s: step '%s': unknown parameter '%s'%s%s", what, st->text, p->key[i],
                    near[0] ? "; did you mean " : "", near);
    }
  return SM_OK;
}

sm_status sm_chain_parse(sm_ctx *ctx, const char *what, const char *text, int64_t n, double fs_hz, sm_chain *ch) {
  memset(ch, 0, sizeof *ch);
  ch->n_in = ch->n_out = ch->max_len = n, ch->fs_in = ch->fs_out = fs_hz;
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", text);
  for (char *tok = buf, *next; tok; tok = next) { /* strsep: an empty step is an error */
    next = strchr(tok, ',');
    if (next) *next++ = '\0';
    SM_CHECK(ctx, ch->n_steps < SM_CHAIN_MAX_STEPS, SM_ERR_CONFIG, "%s: more than %d steps", what, SM_CHAIN_MAX_STEPS);
    sm_step *st = &ch->step[ch->n_steps];
    while (*tok == ' ')
      tok++;
    snprintf(st->text, sizeof st->text, "%s", tok);
    char name[32];
    params p;
    SM_TRY(ctx, split_step(ctx, what, tok, name, sizeof name, &p));
    int which = -1;
    for (int i = 0; i < N_STEP_NAMES; i++)
      if (!strcmp(name, step_names[i])) which = i;
    if (which < 0) {
      char near[256];
      sm_near_matches(name, step_names, N_STEP_NAMES, near, sizeof near);
      return SM_ERR(ctx, SM_ERR_CONFIG,
                    "%s: unknown step '%s'%s%s (steps: demean, detrend, taper, bandpass, lowpass, "
                    "highpass, resample, decimate, normalize)",
                    what, name, near[0] ? "; did you mean " : "", near);
    }
    st->n_in = ch->n_out, st->fs_in = ch->fs_out;
    SM_TRY(ctx, plan_step(ctx, what, st, which, &p));
    ch->n_out = st->n_out, ch->fs_out = st->fs_out;
    ch->max_len = st->n_out > ch->max_len ? st->n_out : ch->max_len;
    int64_t w = 0;
    if ((st->op == SM_STEP_FILTER && st->zerophase == 1) || (st->op == SM_STEP_DECIMATE && st->kind == 0 && st->down > 1))
      w = sm_sosfiltfilt_work(&st->sos[0][0], st->ns, st->n_in);
    if (st->op == SM_STEP_FILTER && st->zerophase != 1) w = 4 * st->n_in;
    if (st->op == SM_STEP_TAPER) w = 2 * sm_taper_width(st->n_in, st->p1, st->p2, st->fs_in);
    ch->work = w > ch->work ? w : ch->work;
    ch->n_steps++;
  }
  return SM_OK;
}

/* Normalise one trace t [C][stride] (n samples per row): each row by its own scale, or all rows
 * by the largest scale over the components; a zero scale leaves the rows unchanged. */
static void normalize(const sm_step *st, double *t, int C, int64_t stride, int64_t n, double *scale) {
  double all = 0, sc[16];
  for (int c = 0; c < C; c++) {
    sc[c] = st->kind == 0 ? sm_peak_abs(t + c * stride, n) : sm_std(t + c * stride, n);
    all = fmax(all, sc[c]);
  }
  for (int c = 0; c < C; c++) {
    double s = st->all_components ? all : sc[c];
    if (s > 0) {
      for (int64_t i = 0; i < n; i++)
        t[c * stride + i] /= s;
      if (scale) scale[c] *= s;
    }
  }
}

/* Steps that change the length write from a into b; the others work in place. */
static sm_status apply_step(sm_ctx *ctx, const sm_step *st, int64_t rows, int C, int64_t stride, double **a, double **b,
                            double *work, double *scale) {
  double *x = *a;
  switch (st->op) {
  case SM_STEP_DEMEAN:
    for (int64_t r = 0; r < rows; r++)
      sm_demean(x + r * stride, st->n_in);
    return SM_OK;
  case SM_STEP_DETREND:
    for (int64_t r = 0; r < rows; r++) {
      if (st->kind == 0)
        sm_demean(x + r * stride, st->n_in);
      else if (st->kind == 1)
        sm_detrend_linear(x + r * stride, st->n_in);
      else
        SM_TRY(ctx, sm_detrend_poly(ctx, x + r * stride, st->n_in, st->order));
    }
    return SM_OK;
  case SM_STEP_TAPER: { /* the weights once per block, in work (planned: ch->work >= 2w) */
    int64_t w = sm_taper_width(st->n_in, st->p1, st->p2, st->fs_in);
    sm_taper_window(w, (sm_taper_type)st->kind, work);
    for (int64_t r = 0; r < rows; r++)
      sm_taper_apply(x + r * stride, st->n_in, w, work);
    return SM_OK;
  }
  case SM_STEP_FILTER:
    if (st->zerophase == 0) return sm_sosfilt_batch(ctx, &st->sos[0][0], st->ns, x, rows, st->n_in, stride, work);
    if (st->zerophase == 2) return sm_sosfilt_fb_batch(ctx, &st->sos[0][0], st->ns, x, rows, st->n_in, stride, work);
    return sm_sosfiltfilt_batch(ctx, &st->sos[0][0], st->ns, x, rows, st->n_in, stride, work);
  case SM_STEP_RESAMPLE:
  case SM_STEP_DECIMATE:
    if (st->up == st->down && st->n_out == st->n_in) return SM_OK; /* same rate: nothing to do */
    for (int64_t r = 0; r < rows; r++) {
      const double *in = x + r * stride;
      double *out = *b + r * stride;
      if (st->op == SM_STEP_DECIMATE && st->kind == 0) { /* iir: the planned cheby1 sections, then every q-th */
        SM_TRY(ctx, sm_sosfiltfilt_batch(ctx, &st->sos[0][0], st->ns, x + r * stride, 1, st->n_in, stride, work));
        for (int64_t i = 0; i < st->n_out; i++)
          out[i] = in[i * st->down];
      } else if (st->op == SM_STEP_DECIMATE)
        SM_TRY(ctx, sm_decimate(ctx, in, st->n_in, st->down, out));
      else if (st->kind == 0)
        SM_TRY(ctx, sm_resample_poly(ctx, in, st->n_in, st->up, st->down, out));
      else
        SM_TRY(ctx, sm_resample_fourier(ctx, in, st->n_in, st->n_out, out));
    }
    return SM_OK;
  case SM_STEP_NORMALIZE:
    for (int64_t r = 0; r < rows; r += C)
      normalize(st, x + r * stride, C, stride, st->n_in, scale ? scale + r : NULL);
    return SM_OK;
  }
  return SM_ERR(ctx, SM_ERR_INTERNAL, "chain: unknown step %d", (int)st->op);
}

sm_status sm_chain_apply(sm_ctx *ctx, const sm_chain *ch, int64_t count, int C, double *a, double *b, double *work,
                         double **out, double *scale) {
  SM_CHECK(ctx, C >= 1 && C <= 16, SM_ERR_ARG, "chain: %d components", C);
  for (int64_t r = 0; scale && r < count * C; r++)
    scale[r] = 1;
  double *cur = a, *other = b;
  for (int s = 0; s < ch->n_steps; s++) {
    const sm_step *st = &ch->step[s];
    double *x = cur, *y = other;
    SM_TRY(ctx, apply_step(ctx, st, count * C, C, ch->max_len, &x, &y, work, scale));
    if ((st->op == SM_STEP_RESAMPLE || st->op == SM_STEP_DECIMATE) && !(st->up == st->down && st->n_out == st->n_in))
      cur = other, other = x;
  }
  *out = cur;
  return SM_OK;
}
