/* Result files of the lm and glm stages (their `output` key): JSON, written by rank 0 under a
 * temporary name renamed when complete, or HDF5 when the path ends in .h5 / .hdf5, written
 * collectively through the result writer (src/catalog/result.h: temporary name, provenance,
 * deleted on failure). The values both formats carry come from one place: lists of named numbers
 * (sm__named) and the coefficient table [p][6]. What only HDF5 holds are the per-row arrays, in
 * table row order, each rank writing the rows of its frame's blocks (sm__h5_rows). The layouts
 * are in docs/statistics.md. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

int sm__output_is_h5(const char *path) {
  size_t n = strlen(path);
  return (n > 3 && !strcasecmp(path + n - 3, ".h5")) || (n > 5 && !strcasecmp(path + n - 5, ".hdf5"));
}

/* JSON helpers: a number (null for NaN/Inf) and a string. */
void sm__json_num(FILE *f, double v) {
  if (isfinite(v))
    fprintf(f, "%.17g", v);
  else
    fprintf(f, "null");
}

void sm__json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      fprintf(f, "\\%c", *s);
    else if ((unsigned char)*s < 0x20)
      fprintf(f, "\\u%04x", *s);
    else
      fputc(*s, f);
  }
  fputc('"', f);
}

/* Open `path`.tmp on rank 0 (others get NULL); sm__json_close renames it. */
sm_status sm__json_open(sm_ctx *ctx, const char *path, FILE **f) {
  *f = NULL;
  sm_status st = SM_OK;
  if (ctx->rank == 0) {
    char tmp[8192];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    st = sm_make_parent_dirs(ctx, path);
    if (st == SM_OK && !(*f = fopen(tmp, "w")))
      st = SM_ERR(ctx, SM_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
  }
  return sm_ctx_agree(ctx, st);
}

sm_status sm__json_close(sm_ctx *ctx, const char *path, FILE *f) {
  sm_status st = SM_OK;
  if (ctx->rank == 0) {
    char tmp[8192];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (fclose(f) != 0 || rename(tmp, path) != 0)
      st = SM_ERR(ctx, SM_ERR_IO, "cannot write %s: %s", path, strerror(errno));
  }
  return sm_ctx_agree(ctx, st);
}

void sm__json_named(FILE *f, const sm__named *v, int n, const char *sep) {
  for (int i = 0; i < n; i++) {
    fprintf(f, "%s\"%s\": ", i ? sep : "", v[i].name);
    sm__json_num(f, v[i].v);
  }
}

void sm__json_coefs(FILE *f, const sm_frame *fr, const double *tab, const char *const keys[6]) {
  fprintf(f, "  \"coefficients\": [\n");
  for (int j = 0; j < fr->p; j++) {
    fprintf(f, "    {\"name\": ");
    sm__json_str(f, fr->names[j]);
    for (int i = 0; i < 6; i++)
      fprintf(f, ", \"%s\": ", keys[i]), sm__json_num(f, tab[6 * j + i]);
    fprintf(f, "}%s\n", j + 1 < fr->p ? "," : "");
  }
  fprintf(f, "  ],\n");
}

/* ---- HDF5 ---- */

sm_status sm__h5_named(sm__result *r, const char *group, const sm__named *v, int n) {
  for (int i = 0; i < n; i++) {
    char name[256];
    snprintf(name, sizeof name, "%s%s%s", group ? group : "", group ? "/" : "", v[i].name);
    sm_status st = sm__result_attr_f64(r, name, v[i].v);
    if (st != SM_OK) return st;
  }
  return SM_OK;
}

/* The length of the longest of the strings s[n] (at least 1): fixed-width strings need no NUL. */
static size_t longest(const char *const *s, int64_t n) {
  size_t w = 1;
  for (int64_t i = 0; i < n; i++)
    w = strlen(s[i]) > w ? strlen(s[i]) : w;
  return w;
}

/* The strings s[n] packed into [n][w] bytes, NUL-padded (w >= longest(s, n)). Caller frees. */
static char *pack_strings(const char *const *s, int64_t n, size_t w) {
  char *buf = calloc((size_t)n * w + 1, 1);
  for (int64_t i = 0; buf && i < n; i++)
    memcpy(buf + (size_t)i * w, s[i], strlen(s[i]));
  return buf;
}

sm_status sm__h5_strings(sm_ctx *ctx, sm__result *r, const char *name, int64_t n, const char *const *s) {
  size_t w = longest(s, n);
  char *buf = pack_strings(s, n, w);
  sm_status st = sm_ctx_agree(ctx, buf ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory"));
  if (st == SM_OK) st = sm__result_strings(r, name, n, 0, ctx->rank ? 0 : n, w, buf);
  free(buf);
  return st;
}

sm_status sm__h5_coefs(sm_ctx *ctx, sm__result *r, const sm_frame *fr, const double *tab, int k, const char *columns) {
  sm_status st = sm__result_rows(r, "coefficients", SM__RES_F64, fr->p, k, 0, ctx->rank ? 0 : fr->p, tab, columns);
  if (st == SM_OK) st = sm__h5_strings(ctx, r, "coefficient_names", fr->p, (const char *const *)fr->names);
  return st;
}

sm_status sm__h5_rows(sm_ctx *ctx, sm__result *r, const sm_table *t, const sm_frame *fr, int k, const double *vals,
                      const char *columns) {
  int64_t first, count;
  sm__frame_span(fr, t, &first, &count);
  int K = k + 1;
  double *out = malloc(((size_t)count * (size_t)K + 1) * sizeof *out);
  sm_status st = out ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory for the per-row results");
  for (int64_t i = 0; st == SM_OK && i < count; i++) {
    out[i * K] = 0;
    for (int c = 1; c < K; c++)
      out[i * K + c] = NAN;
  }
  for (int64_t i = 0; st == SM_OK && i < fr->n; i++) {
    int64_t at = fr->row[i] - first;
    if (at < 0 || at >= count) {
      st = SM_ERR(ctx, SM_ERR_INTERNAL, "frame row %lld outside this rank's span [%lld, %lld)", (long long)fr->row[i],
                  (long long)first, (long long)(first + count));
      break;
    }
    out[at * K] = fr->tag[i];
    memcpy(out + at * K + 1, vals + i * k, (size_t)k * sizeof *out);
  }
  char cols[1024];
  snprintf(cols, sizeof cols, "split,%s", columns);
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) st = sm__result_rows(r, "rows", SM__RES_F64, sm_table_nrows(t), K, first, count, out, cols);
  free(out);
  return st;
}

sm_status sm__stats_h5_create(sm_ctx *ctx, const sm_config *cfg, const char *path, int binomial, sm__result **r) {
  sm_status st = sm__result_create(ctx, path, binomial ? "sisma glm" : "sisma lm", cfg->job_yaml, r);
  if (st == SM_OK) st = sm__result_attr(*r, "model", binomial ? "glm" : "lm");
  if (st == SM_OK) st = sm__result_attr(*r, "family", binomial ? "binomial" : "gaussian");
  if (st == SM_OK) st = sm__result_attr(*r, "link", binomial ? "logit" : "identity");
  if (st == SM_OK) st = sm__result_attr(*r, "formula", sm_config_str(cfg, "formula"));
  if (st == SM_OK) st = sm__result_attr(*r, "solver", sm_config_str(cfg, "solver"));
  return st;
}

sm_status sm__stats_h5_finish(sm_ctx *ctx, const sm_config *cfg, sm_table *t, const sm_frame *fr, sm__result **r, int k,
                              const double *rows, const char *columns, sm_status st) {
  if (st == SM_OK) st = sm__h5_rows(ctx, *r, t, fr, k, rows, columns);
  if (st == SM_OK) st = sm__h5_row_ids(ctx, *r, t, sm_config_str(cfg, "id_column"));
  if (st == SM_OK) st = sm__result_commit(r);
  sm__result_close(r);
  return st;
}

const char *sm__id_column(sm_table *t, const char *col) {
  if (col && col[0]) return col;
  for (int k = 0; k < sm_table_ncols(t); k++)
    if (!strcmp(sm_table_col_name(t, k), "trace_name")) return "trace_name";
  return NULL;
}

sm_status sm__h5_row_ids(sm_ctx *ctx, sm__result *r, sm_table *t, const char *col) {
  col = sm__id_column(t, col);
  if (!col) return SM_OK;
  int j;
  SM_TRY(ctx, sm_ctx_agree(ctx, sm_table_find(t, col, &j)));
  sm_range rg = sm_table_range(t);
  sm_status st;
  if (!sm_table_col_is_str(t, j)) {
    st = sm__result_rows(r, "row_id", SM__RES_F64, sm_table_nrows(t), 0, rg.first, rg.count, sm_table_num(t, j), NULL);
  } else {
    unsigned long w = longest(sm_table_str(t, j), rg.count), wmax = w; /* one width for all ranks */
    st = MPI_Allreduce(&w, &wmax, 1, MPI_UNSIGNED_LONG, MPI_MAX, ctx->comm) ? SM_ERR(ctx, SM_ERR_MPI, "allreduce")
                                                                            : SM_OK;
    char *buf = st == SM_OK ? pack_strings(sm_table_str(t, j), rg.count, wmax) : NULL;
    st = sm_ctx_agree(ctx, st != SM_OK || buf ? st : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory"));
    if (st == SM_OK) st = sm__result_strings(r, "row_id", sm_table_nrows(t), rg.first, rg.count, wmax, buf);
    free(buf);
  }
  if (st == SM_OK) st = sm__result_attr(r, "row_id/column", col);
  return st;
}
