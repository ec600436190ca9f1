/* Models: parse a layer list, infer shapes (errors name the layer), lay out the parameter,
 * gradient and buffer slabs, initialise deterministically, and run forward and backward passes
 * by dispatching each layer to its kernel. The workspace (activations, their gradients, saved
 * state) is sized once by sm_model_reserve; forward and backward never allocate. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "sisma/config.h"
#include "sisma/rng.h"

static const char *const kind_names[SM_LAYER_KIND_COUNT] = {
    "dense", "conv",    "convt",     "maxpool",   "avgpool",   "gap",     "upsample", "relu", "leaky", "gelu", "silu",
    "tanh",  "sigmoid", "batchnorm", "layernorm", "groupnorm", "dropout", "concat",   "gru",  "lstm",  "embed"};

#define MAX_LAYERS 128

typedef struct {
  const char *spec; /* the layer's text, for messages */
  int index;
} where;

static sm_status bad(sm_ctx *ctx, where w, const char *fmt, const char *detail) {
  return SM_ERR(ctx, SM_ERR_CONFIG, "model layer %d (%s): %s%s", w.index + 1, w.spec, fmt, detail);
}

/* Parse "key=value" / positional tokens of one layer into l. */
static sm_status parse_layer(sm_ctx *ctx, char *text, where w, sm_layer *l, char *from) {
  char *save = NULL, *tok = strtok_r(text, " \t", &save);
  int k = 0;
  while (k < SM_LAYER_KIND_COUNT && strcmp(tok, kind_names[k]))
    k++;
  if (k == SM_LAYER_KIND_COUNT) {
    char near[256];
    sm_near_matches(tok, kind_names, SM_LAYER_KIND_COUNT, near, sizeof near);
    return bad(ctx, w, "unknown layer kind; did you mean: ", near);
  }
  memset(l, 0, sizeof *l);
  l->kind = (sm_layer_kind)k;
  l->stride = l->dil = l->k = 1;
  l->alpha = 0.01, l->eps = 1e-5, l->momentum = 0.1, l->groups = 1, l->from = -1, l->input = -1;
  snprintf(l->name, sizeof l->name, "%s%d", kind_names[k], w.index + 1);
  int64_t pos = -1, stride = -1;
  for (tok = strtok_r(NULL, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
    char *eq = strchr(tok, '='), *end = NULL;
    if (!eq) {
      double v = strtod(tok, &end);
      if (*end || pos >= 0) return bad(ctx, w, "expected one number then key=value, found ", tok);
      if (l->kind == SM_LAYER_DROPOUT)
        l->p = v;
      else
        pos = (int64_t)v;
      if (l->kind != SM_LAYER_DROPOUT && (v != floor(v) || v < 1))
        return bad(ctx, w, "size must be a positive integer: ", tok);
      continue;
    }
    *eq = '\0';
    const char *key = tok, *val = eq + 1;
    if (!strcmp(key, "name")) {
      snprintf(l->name, sizeof l->name, "%s", val);
      continue;
    }
    if (!strcmp(key, "from")) {
      snprintf(from, 32, "%s", val);
      continue;
    }
    double v = strtod(val, &end);
    if (*end || !*val) return bad(ctx, w, "value is not a number: ", val);
    if (!strcmp(key, "k"))
      l->k = (int64_t)v;
    else if (!strcmp(key, "stride"))
      stride = (int64_t)v;
    else if (!strcmp(key, "pad"))
      l->pad = (int64_t)v;
    else if (!strcmp(key, "dil"))
      l->dil = (int64_t)v;
    else if (!strcmp(key, "alpha"))
      l->alpha = v;
    else if (!strcmp(key, "eps"))
      l->eps = v;
    else if (!strcmp(key, "momentum"))
      l->momentum = v;
    else if (!strcmp(key, "p"))
      l->p = v;
    else if (!strcmp(key, "last"))
      l->from = v != 0 ? -2 : -1; /* rnn: keep the last state only */
    else {
      static const char *const keys[] = {"k",        "stride", "pad",  "dil",  "alpha", "eps",
                                         "momentum", "p",      "name", "from", "last"};
      char near[256];
      sm_near_matches(key, keys, 11, near, sizeof near);
      return bad(ctx, w, "unknown key; did you mean: ", near);
    }
    if ((v < 0 || v != floor(v)) && strcmp(key, "alpha") && strcmp(key, "eps") && strcmp(key, "momentum") &&
        strcmp(key, "p"))
      return bad(ctx, w, "must be a non-negative integer: ", key);
  }
  switch (l->kind) {
  case SM_LAYER_DENSE:
  case SM_LAYER_CONV:
  case SM_LAYER_CONVT:
  case SM_LAYER_UPSAMPLE:
  case SM_LAYER_GROUPNORM:
  case SM_LAYER_MAXPOOL:
  case SM_LAYER_AVGPOOL:
  case SM_LAYER_GRU:
  case SM_LAYER_LSTM:
  case SM_LAYER_EMBED:
    if (pos < 1) return bad(ctx, w, "needs a size (e.g. `dense 64`, `conv 16 k=7`, `maxpool 4`)", "");
    break;
  default:
    if (pos >= 0) return bad(ctx, w, "takes no size", "");
  }
  if (l->kind == SM_LAYER_MAXPOOL || l->kind == SM_LAYER_AVGPOOL || l->kind == SM_LAYER_UPSAMPLE)
    l->k = pos;
  else if (l->kind == SM_LAYER_GROUPNORM || l->kind == SM_LAYER_GRU || l->kind == SM_LAYER_LSTM)
    l->groups = pos;
  else if (pos > 0)
    l->out.c = pos;
  if (l->kind == SM_LAYER_MAXPOOL || l->kind == SM_LAYER_AVGPOOL)
    l->stride = stride > 0 ? stride : l->k;
  else if (stride > 0)
    l->stride = stride;
  if (stride == 0 || l->k < 1 || l->dil < 1) return bad(ctx, w, "k, stride and dil must be >= 1", "");
  if (l->kind == SM_LAYER_DROPOUT && !(l->p >= 0 && l->p < 1)) return bad(ctx, w, "dropout rate must be in [0, 1)", "");
  if (l->kind == SM_LAYER_CONVT && l->dil != 1) return bad(ctx, w, "transposed convolution supports dil=1 only", "");
  return SM_OK;
}

/* Output shape, parameter and state sizes of layer l given l->in. */
static sm_status infer(sm_ctx *ctx, where w, sm_layer *l, const sm_layer *from) {
  sm_shape in = l->in;
  char d[160];
  switch (l->kind) {
  case SM_LAYER_DENSE:
    l->out.t = 1;
    l->n_param = l->out.c * in.c * in.t + l->out.c;
    break;
  case SM_LAYER_CONV: {
    int64_t span = l->dil * (l->k - 1) + 1;
    if (in.t + 2 * l->pad < span) {
      snprintf(d, sizeof d, "input has %lld time samples (+2*pad = %lld), fewer than the kernel span %lld",
               (long long)in.t, (long long)(in.t + 2 * l->pad), (long long)span);
      return bad(ctx, w, d, "");
    }
    l->out.t = (in.t + 2 * l->pad - span) / l->stride + 1;
    l->n_param = l->out.c * in.c * l->k + l->out.c;
    break;
  }
  case SM_LAYER_CONVT:
    l->out.t = (in.t - 1) * l->stride - 2 * l->pad + l->k;
    if (l->out.t < 1) return bad(ctx, w, "output would have no time samples (pad too large)", "");
    l->n_param = in.c * l->out.c * l->k + l->out.c;
    break;
  case SM_LAYER_MAXPOOL:
  case SM_LAYER_AVGPOOL:
    if (in.t < l->k) {
      snprintf(d, sizeof d, "input has %lld time samples, fewer than k = %lld", (long long)in.t, (long long)l->k);
      return bad(ctx, w, d, "");
    }
    l->out = (sm_shape){in.c, (in.t - l->k) / l->stride + 1};
    if (l->kind == SM_LAYER_MAXPOOL) l->n_aux = l->out.c * l->out.t;
    break;
  case SM_LAYER_GAP:
    l->out = (sm_shape){in.c, 1};
    break;
  case SM_LAYER_UPSAMPLE:
    l->out = (sm_shape){in.c, in.t * l->k};
    break;
  case SM_LAYER_BATCHNORM:
    l->out = in, l->n_param = 2 * in.c, l->n_buf = 2 * in.c, l->n_aux = in.c * in.t, l->n_stat = 2 * in.c + 1;
    break;
  case SM_LAYER_LAYERNORM:
    l->out = in, l->n_param = 2 * in.c * in.t, l->n_aux = in.c * in.t + 1;
    break;
  case SM_LAYER_GROUPNORM:
    if (in.c % l->groups) {
      snprintf(d, sizeof d, "%lld channels are not divisible into %lld groups", (long long)in.c, (long long)l->groups);
      return bad(ctx, w, d, "");
    }
    l->out = in, l->n_param = 2 * in.c, l->n_aux = in.c * in.t + l->groups;
    break;
  case SM_LAYER_DROPOUT:
    l->out = in, l->n_aux = in.c * in.t;
    break;
  case SM_LAYER_CONCAT:
    if (!from) return bad(ctx, w, "needs from=NAME, the name of an earlier layer", "");
    if (from->out.t != in.t) {
      snprintf(d, sizeof d, "input has %lld time samples but %s %s gives %lld", (long long)in.t,
               l->input >= 0 ? "model input" : "layer", from->name, (long long)from->out.t);
      return bad(ctx, w, d, l->input >= 0 ? " (append a per-trace input after gap or dense)" : "");
    }
    l->out = (sm_shape){in.c + from->out.c, in.t};
    break;
  case SM_LAYER_GRU:
  case SM_LAYER_LSTM: {
    int64_t H = l->groups, G = sm__rnn_gates(l);
    l->out = (sm_shape){H, l->from == -2 ? 1 : in.t};
    l->from = -1;
    l->n_param = G * in.c + G * H + 2 * G;
    l->n_aux = in.t * sm__rnn_state(l);
    break;
  }
  case SM_LAYER_EMBED:
    if (in.c * in.t != 1 || l->out.c % 2) {
      snprintf(d, sizeof d, "embeds one scalar into an even size; input is %lldx%lld, size %lld", (long long)in.c,
               (long long)in.t, (long long)l->out.c);
      return bad(ctx, w, d, "");
    }
    l->out.t = 1;
    break;
  default:
    l->out = in; /* activations */
  }
  return SM_OK;
}

/* Source of `from=NAME`: the latest earlier layer of that name, else a named model input (seen
 * through *tmp, a layer whose output is the input's shape). */
static sm_status resolve_from(sm_ctx *ctx, const sm_model *m, where w, sm_layer *l, const char *from, sm_layer *tmp,
                              const sm_layer **src) {
  if (l->kind != SM_LAYER_CONCAT && l->kind != SM_LAYER_EMBED)
    return bad(ctx, w, "from= is a key of concat and embed only", "");
  for (int j = m->n - 1; j >= 0; j--)
    if (!strcmp(m->L[j].name, from)) {
      l->from = j, *src = &m->L[j];
      return SM_OK;
    }
  const char *names[MAX_LAYERS + 16];
  int nn = 0;
  for (int j = 0; j < m->n_in; j++) {
    if (!strcmp(m->inp[j].name, from)) {
      memset(tmp, 0, sizeof *tmp);
      memcpy(tmp->name, m->inp[j].name, sizeof tmp->name);
      tmp->out = m->inp[j].shape, l->input = j, *src = tmp;
      return SM_OK;
    }
    if (nn < MAX_LAYERS + 16) names[nn++] = m->inp[j].name;
  }
  for (int j = 0; j < m->n && nn < MAX_LAYERS + 16; j++)
    names[nn++] = m->L[j].name;
  char near[256], d[320];
  sm_near_matches(from, names, nn, near, sizeof near);
  snprintf(d, sizeof d, "%s%s%s", from, near[0] ? "; did you mean: " : "", near);
  return bad(ctx, w, "no earlier layer or model input is named ", d);
}

/* Parse one layer's text at the end of the chain (current shape *cur). */
static sm_status add_layer(sm_ctx *ctx, sm_model *m, char *spec, sm_shape *cur) {
  char copy[256], from[32] = "";
  snprintf(copy, sizeof copy, "%s", spec);
  where w = {copy, m->n};
  sm_layer *l = &m->L[m->n], tmp;
  SM_TRY(ctx, parse_layer(ctx, spec, w, l, from));
  l->in = *cur;
  const sm_layer *src = NULL;
  if (*from) SM_TRY(ctx, resolve_from(ctx, m, w, l, from, &tmp, &src));
  if (l->kind == SM_LAYER_EMBED && src) l->in = src->out; /* embeds the named source, not the chain */
  SM_TRY(ctx, infer(ctx, w, l, src));
  for (int j = 0; j < m->n; j++)
    if (!strcmp(m->L[j].name, l->name)) return bad(ctx, w, "duplicate layer name ", l->name);
  for (int j = 0; j < m->n_in; j++)
    if (!strcmp(m->inp[j].name, l->name)) return bad(ctx, w, "a model input has the same name: ", l->name);
  l->off_param = m->n_param, m->n_param += l->n_param;
  l->off_buf = m->n_buf, m->n_buf += l->n_buf;
  *cur = l->out;
  m->n++;
  return SM_OK;
}

/* Every named input must be read by some layer (an unused input is a mistake in the job file). */
static sm_status check_inputs_used(sm_ctx *ctx, const sm_model *m) {
  for (int j = 0; j < m->n_in; j++) {
    int used = 0;
    for (int i = 0; i < m->n; i++)
      used |= m->L[i].input == j;
    SM_CHECK(ctx, used, SM_ERR_CONFIG,
             "model input `%s` is not read by any layer: add `concat from=%s` (e.g. after gap) or `embed D from=%s`",
             m->inp[j].name, m->inp[j].name, m->inp[j].name);
  }
  return SM_OK;
}

sm_status sm_model_parse(sm_ctx *ctx, const char *desc, sm_shape in, sm_model **out) {
  return sm_model_parse_inputs(ctx, desc, in, NULL, 0, out);
}

sm_status sm_model_parse_inputs(sm_ctx *ctx, const char *desc, sm_shape in, const sm_model_input *inputs, int n_inputs,
                                sm_model **out) {
  *out = NULL;
  SM_CHECK(ctx, in.c > 0 && in.t > 0, SM_ERR_ARG, "model input shape %lldx%lld is empty", (long long)in.c,
           (long long)in.t);
  for (int j = 0; j < n_inputs; j++)
    SM_CHECK(ctx, inputs[j].shape.c > 0 && inputs[j].shape.t > 0, SM_ERR_ARG, "model input %s is empty",
             inputs[j].name);
  sm_model *m = NULL;
  SM_TRY(ctx, SM_ALLOC(ctx, m, 1));
  memset(m, 0, sizeof *m);
  m->in = in;
  sm_status st = SM_ALLOC(ctx, m->L, MAX_LAYERS);
  if (st == SM_OK) st = SM_ALLOC(ctx, m->inp, n_inputs + 1);
  if (st == SM_OK && n_inputs > 0) memcpy(m->inp, inputs, (size_t)n_inputs * sizeof *inputs), m->n_in = n_inputs;
  char *text = strdup(desc ? desc : ""), *save = NULL;
  if (st == SM_OK && !text) st = SM_ERR(ctx, SM_ERR_NOMEM, "out of memory");
  sm_shape cur = in;
  for (char *spec = st == SM_OK ? strtok_r(text, ",;\n", &save) : NULL; spec && st == SM_OK;
       spec = strtok_r(NULL, ",;\n", &save)) {
    while (isspace((unsigned char)*spec))
      spec++;
    if (!*spec) continue;
    if (m->n == MAX_LAYERS)
      st = SM_ERR(ctx, SM_ERR_CONFIG, "model: more than %d layers", MAX_LAYERS);
    else
      st = add_layer(ctx, m, spec, &cur);
  }
  free(text);
  if (st == SM_OK && m->n == 0) st = SM_ERR(ctx, SM_ERR_CONFIG, "model: no layers (e.g. \"dense 64, relu, dense 1\")");
  if (st == SM_OK) st = check_inputs_used(ctx, m);
  if (st == SM_OK) st = SM_ALLOC(ctx, m->param, m->n_param + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, m->buf, m->n_buf + 1);
  if (st != SM_OK) {
    sm_model_destroy(&m);
    return st;
  }
  memset(m->param, 0, (size_t)m->n_param * sizeof *m->param);
  *out = m;
  return sm_model_init(ctx, m, "he", 0);
}

/* n zeroed floats on a 64-byte boundary, for the buffers the GEMM tile reads and writes by rows:
 * with calloc's 16-byte alignment every other 32-byte load or store of a 64-float row splits a
 * cache line (8 % of the benchmark MLP's GEMM time). Freed with free(). */
static sm_status alloc_rows(sm_ctx *ctx, float **p, int64_t n) {
  void *v = NULL;
  *p = NULL;
  if (posix_memalign(&v, 64, (size_t)n * sizeof **p) != 0)
    return SM_ERR(ctx, SM_ERR_NOMEM, "model workspace: cannot allocate %.1f MiB", (double)n * 4 / 1048576.0);
  memset(v, 0, (size_t)n * sizeof **p);
  *p = v;
  return SM_OK;
}

static void free_work(sm_model *m) {
  for (int i = 0; m->act && i <= m->n; i++) {
    if (i) free((void *)m->act[i]);
    free(m->dact[i]);
    if (i < m->n) free(m->aux[i]), free(m->stat[i]);
  }
  for (int j = 0; m->din && j < m->n_in; j++)
    free(m->din[j]);
  free(m->act), free(m->dact), free(m->aux), free(m->stat), free(m->col), free(m->red), free(m->grad);
  free(m->xin), free(m->din);
  m->xin = NULL, m->din = NULL;
  m->act = NULL, m->dact = NULL, m->aux = NULL, m->stat = NULL, m->col = NULL, m->red = NULL, m->grad = NULL;
  m->nmax = 0, m->segmax = 0;
}

void sm_model_destroy(sm_model **mp) {
  if (!mp || !*mp) return;
  sm_model *m = *mp;
  free_work(m);
  free(m->L), free(m->inp), free(m->param), free(m->buf), free(m);
  *mp = NULL;
}

sm_status sm_model_init(sm_ctx *ctx, sm_model *m, const char *scheme, uint64_t seed) {
  int xavier = !strcmp(scheme, "xavier");
  SM_CHECK(ctx, xavier || !strcmp(scheme, "he"), SM_ERR_CONFIG, "init `%s`: expected he or xavier", scheme);
  for (int i = 0; i < m->n; i++) {
    sm_layer *l = &m->L[i];
    float *p = m->param + l->off_param, *b = m->buf + l->off_buf;
    sm_rng r;
    sm_rng_init(&r, seed, SM_RNG_STREAM_INIT + 16 + (uint64_t)i);
    int64_t nw = 0, fan_in = 0, fan_out = 0;
    if (l->kind == SM_LAYER_DENSE) nw = l->n_param - l->out.c, fan_in = sm__size(l->in), fan_out = l->out.c;
    if (l->kind == SM_LAYER_CONV) nw = l->n_param - l->out.c, fan_in = l->in.c * l->k, fan_out = l->out.c * l->k;
    if (l->kind == SM_LAYER_CONVT) nw = l->n_param - l->out.c, fan_in = l->out.c * l->k, fan_out = l->in.c * l->k;
    if (l->kind == SM_LAYER_GRU || l->kind == SM_LAYER_LSTM) { /* torch: U(-1/sqrt(H), 1/sqrt(H)) weights */
      int64_t G = sm__rnn_gates(l), nwr = G * (l->in.c + l->groups);
      double bound = 1.0 / sqrt((double)l->groups);
      for (int64_t j = 0; j < nwr; j++)
        p[j] = (float)(bound * (2 * sm_rng_uniform(&r) - 1));
      memset(p + nwr, 0, (size_t)(l->n_param - nwr) * sizeof *p);
    } else if (nw) {
      double sd = sqrt(2.0 / (double)fan_in), bound = sqrt(6.0 / (double)(fan_in + fan_out));
      for (int64_t j = 0; j < nw; j++)
        p[j] = (float)(xavier ? bound * (2 * sm_rng_uniform(&r) - 1) : sd * sm_rng_normal(&r));
      memset(p + nw, 0, (size_t)(l->n_param - nw) * sizeof *p);
    } else if (l->n_param) { /* norms: scale 1, shift 0 */
      for (int64_t j = 0; j < l->n_param; j++)
        p[j] = j < l->n_param / 2 ? 1.f : 0.f;
    }
    for (int64_t j = 0; j < l->n_buf; j++)
      b[j] = j < l->n_buf / 2 ? 0.f : 1.f;
  }
  return SM_OK;
}

int sm_model_layer_count(const sm_model *m) { return m->n; }
const sm_layer *sm_model_layer(const sm_model *m, int i) { return &m->L[i]; }
sm_shape sm_model_out_shape(const sm_model *m) { return m->n ? m->L[m->n - 1].out : m->in; }
int64_t sm_model_param_count(const sm_model *m) { return m->n_param; }
float *sm_model_params(sm_model *m) { return m->param; }
int64_t sm_model_buffer_count(const sm_model *m) { return m->n_buf; }
float *sm_model_buffers(sm_model *m) { return m->buf; }
float *sm_model_grads(sm_model *m, int g) { return m->grad + (int64_t)g * m->n_param; }
int sm_model_input_count(const sm_model *m) { return m->n_in; }
const sm_model_input *sm_model_input_get(const sm_model *m, int j) { return &m->inp[j]; }
const float *sm_model_input_grad(const sm_model *m, int j) { return m->din[j]; }

void sm_model_summary(const sm_model *m, char *out, size_t n) {
  size_t len = (size_t)snprintf(out, n, "input %lldx%lld, %lld parameters\n", (long long)m->in.c, (long long)m->in.t,
                                (long long)m->n_param);
  for (int j = 0; j < m->n_in && len < n; j++)
    len += (size_t)snprintf(out + len, n - len, "  input %-8s %lldx%lld\n", m->inp[j].name,
                            (long long)m->inp[j].shape.c, (long long)m->inp[j].shape.t);
  for (int i = 0; i < m->n && len < n; i++) {
    const sm_layer *l = &m->L[i];
    len += (size_t)snprintf(out + len, n - len, "  %-14s %-10s -> %lldx%lld  %lld params\n", l->name,
                            kind_names[l->kind], (long long)l->out.c, (long long)l->out.t, (long long)l->n_param);
  }
}

sm_status sm_model_reserve(sm_ctx *ctx, sm_model *m, int64_t nmax, int segmax) {
  if (nmax <= m->nmax && segmax <= m->segmax) return SM_OK;
  if (nmax < m->nmax) nmax = m->nmax;
  if (segmax < m->segmax) segmax = m->segmax;
  free_work(m);
  m->nmax = nmax, m->segmax = segmax;
  int64_t ncol = 1, nred = 1;
  for (int i = 0; i < m->n; i++) {
    const sm_layer *l = &m->L[i];
    if (l->kind == SM_LAYER_CONV || l->kind == SM_LAYER_CONVT)
      ncol = 2 * sm__conv_col_size(l) > ncol ? 2 * sm__conv_col_size(l) : ncol;
    if (l->kind == SM_LAYER_BATCHNORM && 1 + 2 * l->in.c > nred) nred = 1 + 2 * l->in.c;
    if ((l->kind == SM_LAYER_GRU || l->kind == SM_LAYER_LSTM) && sm__rnn_scratch(l, nmax) > ncol)
      ncol = sm__rnn_scratch(l, nmax);
  }
  m->ncol = ncol, m->nred = nred;
  sm_status st = SM_ALLOC(ctx, m->act, m->n + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, m->dact, m->n + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, m->aux, m->n);
  if (st == SM_OK) st = SM_ALLOC(ctx, m->stat, m->n);
  if (st == SM_OK) {
    memset(m->act, 0, (size_t)(m->n + 1) * sizeof *m->act), memset(m->dact, 0, (size_t)(m->n + 1) * sizeof *m->dact);
    memset(m->aux, 0, (size_t)m->n * sizeof *m->aux), memset(m->stat, 0, (size_t)m->n * sizeof *m->stat);
  }
  for (int i = 0; i <= m->n && st == SM_OK; i++) {
    sm_shape s = i ? m->L[i - 1].out : m->in;
    float *a = NULL;
    if (i) st = alloc_rows(ctx, &a, nmax * sm__size(s) + 1), m->act[i] = a;
    if (st == SM_OK) st = alloc_rows(ctx, &m->dact[i], nmax * sm__size(s) + 1);
    if (st == SM_OK && i < m->n) st = SM_ALLOC(ctx, m->aux[i], nmax * m->L[i].n_aux + 1);
    if (st == SM_OK && i < m->n) st = SM_ALLOC(ctx, m->stat[i], m->L[i].n_stat + 1);
  }
  if (st == SM_OK) st = SM_ALLOC(ctx, m->xin, m->n_in + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, m->din, m->n_in + 1);
  if (st == SM_OK) memset(m->din, 0, (size_t)(m->n_in + 1) * sizeof *m->din);
  for (int j = 0; j < m->n_in && st == SM_OK; j++)
    st = SM_ALLOC(ctx, m->din[j], nmax * sm__size(m->inp[j].shape) + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, m->col, ncol);
  if (st == SM_OK) st = SM_ALLOC(ctx, m->red, (int64_t)(segmax + 1) * nred);
  if (st == SM_OK) st = alloc_rows(ctx, &m->grad, (int64_t)segmax * m->n_param + 1);
  if (st != SM_OK) free_work(m);
  return st;
}

sm_status sm__nn_reduce(sm_ctx *ctx, sm_model *m, const sm_nn_batch *b, int64_t n, double *out) {
  int nseg = b->n == 0 ? 0 : b->seg ? b->nseg : 1;
  if (b->reduce) return b->reduce(b->reduce_ud, m->red, nseg, n, out);
  memset(out, 0, (size_t)n * sizeof *out);
  for (int g = 0; g < nseg; g++)
    for (int64_t j = 0; j < n; j++)
      out[j] += m->red[g * n + j];
  return SM_OK;
}

/* What a concat appends / an embed reads, and where their gradients go: a named model input, an
 * earlier layer's output (from=), or (embed without from=) the chain. */
static sm_shape from_shape(const sm_model *m, const sm_layer *l) {
  return l->input >= 0 ? m->inp[l->input].shape : m->L[l->from].out;
}
static const float *from_act(const sm_model *m, const sm_layer *l) {
  return l->input >= 0 ? m->xin[l->input] : m->act[l->from + 1];
}
static float *from_dact(const sm_model *m, const sm_layer *l) {
  return l->input >= 0 ? m->din[l->input] : m->dact[l->from + 1];
}
static int has_from(const sm_layer *l) { return l->input >= 0 || l->from >= 0; }

/* Whether a later concat or embed reads layer i's own output (from=), which a fused ReLU would
 * otherwise leave unwritten. */
static int output_read(const sm_model *m, int i) {
  for (int j = i + 1; j < m->n; j++)
    if (m->L[j].input < 0 && m->L[j].from == i &&
        (m->L[j].kind == SM_LAYER_CONCAT || m->L[j].kind == SM_LAYER_EMBED))
      return 1;
  return 0;
}

sm_status sm_model_forward(sm_ctx *ctx, sm_model *m, const sm_nn_batch *b, const float *x, const float **y) {
  SM_CHECK(ctx, b->n <= m->nmax && (!b->seg || b->nseg <= m->segmax), SM_ERR_INTERNAL,
           "batch of %lld samples / %d segments exceeds the reserved workspace (%lld / %d)", (long long)b->n,
           b->seg ? b->nseg : 1, (long long)m->nmax, m->segmax);
  SM_CHECK(ctx, !m->n_in || b->inputs, SM_ERR_INTERNAL, "the model reads %d named inputs; the batch has none", m->n_in);
  m->act[0] = x;
  for (int j = 0; j < m->n_in; j++)
    m->xin[j] = b->inputs[j];
  m->last_n = b->n;
  for (int i = 0; i < m->n; i++) {
    const sm_layer *l = &m->L[i];
    const float *in = m->act[i], *w = m->param + l->off_param;
    float *o = (float *)m->act[i + 1];
    /* A dense or conv layer followed by a ReLU writes the ReLU's output in its GEMM epilogue
     * (skipping the ReLU's pass), and only that unless a concat or embed reads its own output: the ReLU's
     * backward needs only its output. */
    float *relu =
        (l->kind == SM_LAYER_DENSE || l->kind == SM_LAYER_CONV) && i + 1 < m->n && m->L[i + 1].kind == SM_LAYER_RELU
            ? (float *)m->act[i + 2]
            : NULL;
    if (relu && !output_read(m, i)) o = relu;
    switch (l->kind) {
    case SM_LAYER_DENSE:
      sm__dense_fwd(l, w, b, in, o, relu);
      i += relu != NULL;
      break;
    case SM_LAYER_CONV:
      sm__conv_fwd(l, w, b->n, in, o, m->col, relu);
      i += relu != NULL;
      break;
    case SM_LAYER_CONVT:
      sm__convt_fwd(l, w, b->n, in, o, m->col);
      break;
    case SM_LAYER_MAXPOOL:
    case SM_LAYER_AVGPOOL:
    case SM_LAYER_GAP:
    case SM_LAYER_UPSAMPLE:
      sm__pool_fwd(l, b->n, in, o, m->aux[i]);
      break;
    case SM_LAYER_BATCHNORM:
    case SM_LAYER_LAYERNORM:
    case SM_LAYER_GROUPNORM:
      SM_TRY(ctx, sm__norm_fwd(ctx, m, i, b, in, o));
      break;
    case SM_LAYER_DROPOUT:
      sm__dropout_fwd(l, i, b, in, o, m->aux[i]);
      break;
    case SM_LAYER_GRU:
    case SM_LAYER_LSTM:
      sm__rnn_fwd(l, w, b, in, o, m->aux[i], m->col);
      break;
    case SM_LAYER_EMBED:
      sm__embed_fwd(l, b->n, has_from(l) ? from_act(m, l) : in, o);
      break;
    case SM_LAYER_CONCAT: {
      int64_t a = sm__size(l->in), c = sm__size(from_shape(m, l));
      const float *f = from_act(m, l);
      for (int64_t s = 0; s < b->n; s++) {
        memcpy(o + s * (a + c), in + s * a, (size_t)a * sizeof *o);
        memcpy(o + s * (a + c) + a, f + s * c, (size_t)c * sizeof *o);
      }
      break;
    }
    default:
      sm__act_fwd(l, b->n, in, o);
    }
  }
  *y = m->act[m->n];
  return SM_OK;
}

/* Zero dact[i] if nothing has written it in this backward pass yet. */
static void dact_touch(sm_model *m, const sm_nn_batch *b, char *fresh, int i) {
  if (fresh[i]) memset(m->dact[i], 0, (size_t)(b->n * sm__size(i ? m->L[i - 1].out : m->in)) * sizeof **m->dact);
  fresh[i] = 0;
}

/* dact[i] (the gradient of layer i's input) is written by layer i's backward and added to by a
 * concat that takes layer i-1's output. Dense and activation layers write it (=) when they are
 * the first, and every other kernel accumulates (+=) into a zeroed one: no pass zeroes the
 * whole workspace. (0 + v rounds to v, so both ways give the same bits.) */
sm_status sm_model_backward(sm_ctx *ctx, sm_model *m, const sm_nn_batch *b, const float *dy, float *dx,
                            sm_nn_grad_ready_fn ready, void *ready_ud) {
  SM_CHECK(ctx, b->n == m->last_n, SM_ERR_INTERNAL, "backward of %lld samples after a forward of %lld", (long long)b->n,
           (long long)m->last_n);
  char fresh[MAX_LAYERS + 1];
  memset(fresh, 1, sizeof fresh);
  for (int j = 0; j < m->n_in; j++) /* named inputs' gradients: only concat and embed add to them */
    memset(m->din[j], 0, (size_t)(b->n * sm__size(m->inp[j].shape)) * sizeof **m->din);
  memcpy(m->dact[m->n], dy, (size_t)(b->n * sm__size(sm_model_out_shape(m))) * sizeof *dy);
  fresh[m->n] = 0;
  int nseg = b->seg ? b->nseg : 1;
  if (b->n == 0) memset(m->grad, 0, (size_t)(nseg * m->n_param) * sizeof *m->grad);
  for (int i = m->n - 1; i >= 0; i--) {
    const sm_layer *l = &m->L[i];
    const float *x = m->act[i], *yv = m->act[i + 1], *d = m->dact[i + 1], *w = m->param + l->off_param;
    float *dxi = i == 0 && !dx ? NULL : m->dact[i], *g = m->grad + l->off_param;
    int acc = !fresh[i]; /* dense and activations: accumulate into dx, or write it */
    if (l->kind == SM_LAYER_DENSE || (l->kind >= SM_LAYER_RELU && l->kind <= SM_LAYER_SIGMOID))
      fresh[i] = dxi ? 0 : fresh[i];
    else
      dact_touch(m, b, fresh, i);
    switch (l->kind) {
    case SM_LAYER_DENSE:
      if (i > 0 && m->L[i - 1].kind == SM_LAYER_RELU && !acc && fresh[i - 1]) {
        /* dense after a ReLU: its dx GEMM writes the ReLU's input gradient (gated by output > 0) */
        sm__dense_bwd(l, w, g, m->n_param, b, x, d, m->dact[i - 1], 0, x);
        fresh[i - 1] = 0;
        if (ready) ready(ready_ud, l->off_param, l->n_param);
        l = &m->L[--i];
      } else
        sm__dense_bwd(l, w, g, m->n_param, b, x, d, dxi, acc, NULL);
      break;
    case SM_LAYER_CONV:
      sm__conv_bwd(l, w, g, m->n_param, b, x, d, dxi, m->col);
      break;
    case SM_LAYER_CONVT:
      sm__convt_bwd(l, w, g, m->n_param, b, x, d, dxi, m->col);
      break;
    case SM_LAYER_MAXPOOL:
    case SM_LAYER_AVGPOOL:
    case SM_LAYER_GAP:
    case SM_LAYER_UPSAMPLE:
      sm__pool_bwd(l, b->n, d, m->dact[i], m->aux[i]);
      break;
    case SM_LAYER_BATCHNORM:
    case SM_LAYER_LAYERNORM:
    case SM_LAYER_GROUPNORM:
      SM_TRY(ctx, sm__norm_bwd(ctx, m, i, b, d, m->dact[i]));
      break;
    case SM_LAYER_DROPOUT:
      sm__dropout_bwd(l, b->n, d, m->dact[i], m->aux[i]);
      break;
    case SM_LAYER_GRU:
    case SM_LAYER_LSTM:
      sm__rnn_bwd(l, w, g, m->n_param, b, x, d, dxi, m->aux[i], m->col);
      break;
    case SM_LAYER_EMBED:
      if (has_from(l)) {
        if (l->input < 0) dact_touch(m, b, fresh, l->from + 1);
        sm__embed_bwd(l, b->n, from_act(m, l), d, from_dact(m, l));
      } else
        sm__embed_bwd(l, b->n, x, d, m->dact[i]);
      break;
    case SM_LAYER_CONCAT: {
      int64_t a = sm__size(l->in), c = sm__size(from_shape(m, l));
      if (l->input < 0) dact_touch(m, b, fresh, l->from + 1);
      float *df = from_dact(m, l);
      for (int64_t s = 0; s < b->n; s++)
        for (int64_t j = 0; j < a + c; j++) {
          if (j < a)
            m->dact[i][s * a + j] += d[s * (a + c) + j];
          else
            df[s * c + j - a] += d[s * (a + c) + j];
        }
      break;
    }
    default:
      sm__act_bwd(l, b->n, x, yv, d, m->dact[i], acc);
    }
    if (ready) ready(ready_ud, l->off_param, l->n_param); /* also drives progress of reductions in flight */
  }
  if (dx) memcpy(dx, m->dact[0], (size_t)(b->n * sm__size(m->in)) * sizeof *dx);
  return SM_OK;
}
