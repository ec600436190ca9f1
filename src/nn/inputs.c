/* Scalar model inputs beside the waveform (the `inputs:` key of train): named groups of per-trace
 * values, each a catalog column (optionally its log10) or `log10_scale`, the log10 of each
 * component's normalisation scale (the amplitude that `normalize` removes, one value per component,
 * taken after augmentation). A model reads group NAME with `concat from=NAME` or `embed D
 * from=NAME`. Values are standardised with the mean and standard deviation of the train split,
 * fitted once and folded in chunk order (so the same at any rank count), and saved in the model
 * file so `predict` applies the same. Spec, groups separated by commas, features by spaces:
 *   meta=source_magnitude log10(path_hyp_distance_km), amp=log10_scale
 * Start reading at sm__nn_inputs_parse. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* One feature "COLUMN", "log10(COLUMN)" or "log10_scale" of group g. */
static sm_status parse_feature(sm_ctx *ctx, const char *tok, int g, int64_t C, sm__nn_inputs *in) {
  SM_CHECK(ctx, in->nfeat < SM_NN_MAX_FEATURES, SM_ERR_CONFIG, "train.inputs: more than %d features",
           SM_NN_MAX_FEATURES);
  sm__nn_feature *f = &in->feat[in->nfeat];
  memset(f, 0, sizeof *f);
  f->input = g, f->at = in->width[g];
  size_t n = strlen(tok);
  if (!strcmp(tok, "log10_scale")) {
    f->width = C;
  } else {
    f->log10 = !strncmp(tok, "log10(", 6) && n > 7 && tok[n - 1] == ')';
    const char *col = f->log10 ? tok + 6 : tok;
    size_t len = f->log10 ? n - 7 : n;
    SM_CHECK(ctx, len > 0 && len < sizeof f->column && !memchr(col, '(', len) && !memchr(col, ')', len), SM_ERR_CONFIG,
             "train.inputs: feature \"%s\": expected COLUMN, log10(COLUMN) or log10_scale", tok);
    memcpy(f->column, col, len);
    f->width = 1, f->col = in->ncol++;
  }
  in->width[g] += f->width;
  in->nfeat++;
  return SM_OK;
}

/* One group "NAME=FEATURE FEATURE ...". */
static sm_status parse_group(sm_ctx *ctx, char *text, int64_t C, sm__nn_inputs *in) {
  char *eq = strchr(text, '='), *save = NULL;
  SM_CHECK(ctx, eq && eq > text, SM_ERR_CONFIG,
           "train.inputs: \"%s\": expected NAME=FEATURE ..., e.g. meta=source_magnitude log10(path_hyp_distance_km) "
           "(groups are separated by commas, features by spaces)",
           text);
  SM_CHECK(ctx, in->n < SM_NN_MAX_INPUTS, SM_ERR_CONFIG, "train.inputs: more than %d groups", SM_NN_MAX_INPUTS);
  *eq = '\0';
  char *name = strtok_r(text, " \t", &save);
  SM_CHECK(ctx, name && strlen(name) < sizeof in->name[0] && !strtok_r(NULL, " \t", &save), SM_ERR_CONFIG,
           "train.inputs: \"%s\" is not a name (one word of at most 31 characters)", text);
  for (int j = 0; j < in->n; j++)
    SM_CHECK(ctx, strcmp(in->name[j], name), SM_ERR_CONFIG, "train.inputs: two groups are named %s", name);
  int g = in->n++, before = in->nfeat;
  snprintf(in->name[g], sizeof in->name[g], "%s", name);
  for (char *tok = strtok_r(eq + 1, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save))
    SM_TRY(ctx, parse_feature(ctx, tok, g, C, in));
  SM_CHECK(ctx, in->nfeat > before, SM_ERR_CONFIG, "train.inputs: group %s has no features", name);
  return SM_OK;
}

sm_status sm__nn_inputs_parse(sm_ctx *ctx, const char *spec, int64_t C, int normalize, sm__nn_inputs *in) {
  memset(in, 0, sizeof *in);
  in->normalize = normalize;
  char *text = strdup(spec ? spec : ""), *save = NULL;
  SM_CHECK(ctx, text, SM_ERR_NOMEM, "out of memory");
  sm_status st = SM_OK;
  for (char *g = strtok_r(text, ",;\n", &save); g && st == SM_OK; g = strtok_r(NULL, ",;\n", &save)) {
    while (*g == ' ' || *g == '\t')
      g++;
    if (*g) st = parse_group(ctx, g, C, in);
  }
  free(text);
  for (int g = 0; st == SM_OK && g < in->n; g++)
    in->base[g] = g ? in->base[g - 1] + in->width[g - 1] : 0, in->total += in->width[g];
  if (st == SM_OK && in->total > SM_NN_MAX_VALUES)
    st = SM_ERR(ctx, SM_ERR_CONFIG, "train.inputs: %lld values per trace, at most %d", (long long)in->total,
                SM_NN_MAX_VALUES);
  for (int64_t v = 0; v < in->total; v++)
    in->mean[v] = 0, in->sd[v] = 1;
  return st;
}

void sm__nn_inputs_model(const sm__nn_inputs *in, sm_model_input *out) {
  for (int g = 0; g < in->n; g++) {
    memset(&out[g], 0, sizeof out[g]);
    memcpy(out[g].name, in->name[g], sizeof out[g].name);
    out[g].shape = (sm_shape){in->width[g], 1};
  }
}

int sm__nn_inputs_scales(const sm__nn_inputs *in) {
  for (int f = 0; f < in->nfeat; f++)
    if (!in->feat[f].column[0]) return 1;
  return 0;
}

/* Check the values of feature ft read into v [d->n] and store them. Local. */
static sm_status store_column(sm_ctx *ctx, sm__nn_data *d, const sm__nn_feature *ft, const double *v) {
  const sm__nn_inputs *in = d->inputs;
  for (int64_t i = 0; i < d->n; i++) {
    double x = d->noise[i] ? 1 : v[i];
    if (isnan(x))
      return SM_ERR(ctx, SM_ERR_DATA, "trace %lld: input %s: %s is missing (NaN)", (long long)(d->first + i),
                    in->name[ft->input], ft->column);
    if (ft->log10 && !(x > 0))
      return SM_ERR(ctx, SM_ERR_DATA, "trace %lld: input %s: log10(%s) of %g", (long long)(d->first + i),
                    in->name[ft->input], ft->column, x);
    d->feat[i * in->ncol + ft->col] = ft->log10 ? log10(x) : x;
  }
  return SM_OK;
}

sm_status sm__nn_inputs_read(sm_ctx *ctx, sm_catalog *cat, sm__nn_data *d) {
  const sm__nn_inputs *in = d->inputs;
  double *v = NULL;
  SM_TRY(ctx, sm_ctx_agree(ctx, SM_ALLOC(ctx, v, d->n + 1)));
  sm_status st = SM_OK; /* column lookups fail alike on every rank; reads are collective */
  for (int f = 0; st == SM_OK && f < in->nfeat; f++) {
    const sm__nn_feature *ft = &in->feat[f];
    if (!ft->column[0]) continue;
    sm_col_type type;
    st = sm_catalog_column_info(cat, ft->column, &type, NULL);
    if (st == SM_OK && type == SM_COL_STR)
      st = SM_ERR(ctx, SM_ERR_CONFIG, "train.inputs: column `%s` (input %s) holds text, not numbers", ft->column,
                  in->name[ft->input]);
    if (st == SM_OK) st = sm_catalog_read_as_f64(cat, ft->column, d->first, d->n, v);
    if (st == SM_OK) st = sm_ctx_agree(ctx, store_column(ctx, d, ft, v));
  }
  free(v);
  return st;
}

void sm__nn_inputs_sample(const sm__nn_inputs *in, const double *col, const double *scale, float *const *xin,
                          int64_t i) {
  for (int f = 0; f < in->nfeat; f++) {
    const sm__nn_feature *ft = &in->feat[f];
    float *o = xin[ft->input] + i * in->width[ft->input] + ft->at;
    int64_t v0 = in->base[ft->input] + ft->at;
    for (int64_t k = 0; k < ft->width; k++) {
      double x = ft->column[0] ? col[ft->col] : scale[k] > 0 ? log10(scale[k]) : NAN;
      /* a silent component (zeroed by channel dropout) has no scale: it reads as the mean */
      o[k] = isnan(x) ? (in->raw ? NAN : 0.f) : (float)((x - in->mean[v0 + k]) / in->sd[v0 + k]);
    }
  }
}

/* Raw values [n_train_local][total] of this rank's train rows, in row order. */
static sm_status raw_values(sm_ctx *ctx, const sm__nn_data *d, const sm__nn_aug *a, sm__nn_inputs *raw,
                            const int64_t *rows, int64_t nt, double *vals) {
  enum { NB = 64 };
  float *x = NULL, t[NB], *xin[SM_NN_MAX_INPUTS] = {0};
  sm_status st = SM_ALLOC(ctx, x, NB * d->C * d->W + 1);
  for (int g = 0; st == SM_OK && g < raw->n; g++)
    st = SM_ALLOC(ctx, xin[g], NB * raw->width[g] + 1);
  sm__nn_data view = *d;
  view.inputs = raw;
  for (int64_t i = 0; st == SM_OK && i < nt; i += NB) {
    int64_t nb = nt - i < NB ? nt - i : NB;
    sm__nn_data_batch(&view, a, rows + i, nb, 0, 0, 0, x, t, xin);
    for (int64_t s = 0; s < nb; s++)
      for (int g = 0; g < raw->n; g++)
        for (int64_t k = 0; k < raw->width[g]; k++)
          vals[(i + s) * raw->total + raw->base[g] + k] = xin[g][s * raw->width[g] + k];
  }
  free(x);
  for (int g = 0; g < raw->n; g++)
    free(xin[g]);
  return st;
}

/* Per-chunk sums of f(value) over the train rows, folded in chunk order: out [2][total], the sums
 * and the counts of non-missing values. pass 0: values; pass 1: squared deviations from in->mean.
 * Collective. */
static sm_status fold_sums(sm_ctx *ctx, const sm__nn_data *d, const sm__nn_inputs *in, const int64_t *rows, int64_t nt,
                           const double *vals, int pass, double *out) {
  int64_t w = 2 * in->total, nseg = 0, cur = -1;
  double *part = NULL;
  SM_TRY(ctx, sm_ctx_agree(ctx, SM_ALLOC(ctx, part, (nt + 1) * w)));
  for (int64_t i = 0; i < nt; i++) {
    int64_t ch = (d->first + rows[i]) / d->chunk;
    if (ch != cur) cur = ch, memset(part + nseg++ * w, 0, (size_t)w * sizeof *part);
    double *p = part + (nseg - 1) * w;
    for (int64_t v = 0; v < in->total; v++) {
      double x = vals[i * in->total + v], dv = x - in->mean[v];
      p[v] += isnan(x) ? 0 : pass ? dv * dv : x;
      p[in->total + v] += !isnan(x);
    }
  }
  sm_status st = sm__nn_fold_f64(ctx, part, (int)nseg, w, out);
  free(part);
  return st;
}

sm_status sm__nn_inputs_fit(sm_ctx *ctx, const sm__nn_data *d, const sm__nn_aug *a, sm__nn_inputs *in) {
  if (!in->n) return SM_OK;
  sm__nn_inputs raw = *in;
  raw.raw = 1;
  for (int64_t v = 0; v < in->total; v++)
    raw.mean[v] = 0, raw.sd[v] = 1;
  int64_t *rows = NULL, nt = 0;
  double *vals = NULL, out[2 * SM_NN_MAX_VALUES];
  sm_status st = SM_ALLOC(ctx, rows, d->n + 1);
  for (int64_t r = 0; st == SM_OK && r < d->n; r++)
    if (d->split[r] == 0) rows[nt++] = r;
  if (st == SM_OK) st = SM_ALLOC(ctx, vals, nt * in->total + 1);
  if (st == SM_OK) st = raw_values(ctx, d, a, &raw, rows, nt, vals);
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) st = fold_sums(ctx, d, &raw, rows, nt, vals, 0, out);
  for (int64_t v = 0; st == SM_OK && v < in->total; v++)
    raw.mean[v] = out[in->total + v] > 0 ? out[v] / out[in->total + v] : 0;
  if (st == SM_OK) st = fold_sums(ctx, d, &raw, rows, nt, vals, 1, out);
  for (int64_t v = 0; st == SM_OK && v < in->total; v++) {
    double n = out[in->total + v], sd = n > 1 ? sqrt(out[v] / n) : 0;
    in->mean[v] = raw.mean[v], in->sd[v] = sd > 0 ? sd : 1; /* a constant input: centred only */
  }
  free(rows), free(vals);
  return st;
}
