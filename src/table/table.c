/* Tables (see include/sisma/table.h): opening by spec and the accessors. The CSV source lives in
 * table_csv.c (each rank parses about 1/p of the file's bytes, then the rows move to their
 * blocks), the HDF5 sources in table_h5.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "sisma/config.h"

sm_range sm_table_block(int64_t n, int rank, int size) {
  int64_t q = n / size, r = n % size;
  sm_range g = {rank * q + (rank < r ? rank : r), q + (rank < r ? 1 : 0)};
  return g;
}

sm_status sm__table_add(sm_table *t, const char *name, int is_str, sm__tcol **out) {
  sm_ctx *ctx = t->ctx;
  sm__tcol *cols = realloc(t->cols, (size_t)(t->ncols + 1) * sizeof *cols);
  SM_CHECK(ctx, cols, SM_ERR_NOMEM, "out of memory for the columns of %s", t->spec);
  t->cols = cols;
  sm__tcol *c = &cols[t->ncols];
  memset(c, 0, sizeof *c);
  c->name = strdup(name);
  c->is_str = is_str;
  size_t n = (size_t)t->mine.count + 1;
  if (is_str)
    c->str = calloc(n, sizeof *c->str);
  else if (t->slab_used < t->nslab)
    c->num = t->slab + (size_t)t->slab_used++ * t->stride, c->in_slab = 1;
  else
    c->num = sm__alloc_big(n * sizeof *c->num);
  if (!c->name || (is_str ? !c->str : !c->num)) {
    free(c->name), free(c->str);
    if (!c->in_slab) free(c->num);
    return SM_ERR(ctx, SM_ERR_NOMEM, "out of memory for column %s of %s (%lld rows)", name, t->spec,
                  (long long)t->mine.count);
  }
  t->ncols++;
  *out = c;
  return SM_OK;
}

void sm__table_reserve(sm_table *t, int n) {
  t->stride = ((size_t)t->mine.count + 8) & ~(size_t)7; /* count + 1, each column on a cache line */
  t->slab = n > 0 ? sm__alloc_big((size_t)n * t->stride * sizeof *t->slab) : NULL;
  t->nslab = t->slab ? n : 0;
  t->slab_used = 0;
}

sm_status sm__table_fixed_strings(sm_table *t, sm__tcol *c, const char *buf, size_t width) {
  size_t n = (size_t)t->mine.count;
  c->arena = malloc(n * (width + 1) + 1);
  SM_CHECK(t->ctx, c->arena, SM_ERR_NOMEM, "out of memory for string column %s of %s", c->name, t->spec);
  for (size_t i = 0; i < n; i++) {
    char *s = c->arena + i * (width + 1);
    memcpy(s, buf + i * width, width);
    s[width] = '\0';
    c->str[i] = s;
  }
  return SM_OK;
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && !strcasecmp(s + a - b, suffix);
}

sm_status sm_table_open(sm_ctx *ctx, const char *spec, sm_table **out) {
  *out = NULL;
  sm_table *t = calloc(1, sizeof *t);
  char *path = strdup(spec);
  if (t) t->spec = strdup(spec);
  sm_status st = SM_OK;
  if (!t || !t->spec || !path) st = SM_ERR(ctx, SM_ERR_NOMEM, "out of memory opening table %s", spec);
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) {
    t->ctx = ctx;
    char *colon = strstr(path, ":/");
    if (colon) {
      *colon = '\0';
      st = sm__table_open_h5(t, path, colon + 1);
    } else if (ends_with(path, ".h5") || ends_with(path, ".hdf5") || ends_with(path, ".hdf")) {
      st = sm__table_open_catalog(t, path);
    } else {
      st = sm__table_open_csv(t, path);
    }
  }
  free(path);
  if (st != SM_OK) {
    sm_table_close(&t);
    return st;
  }
  sm_debug(ctx, "table %s: %lld rows, %d columns", spec, (long long)t->nrows, t->ncols);
  *out = t;
  return SM_OK;
}

void sm_table_close(sm_table **tp) {
  if (!tp || !*tp) return;
  sm_table *t = *tp;
  for (int j = 0; j < t->ncols; j++) {
    free(t->cols[j].name);
    if (!t->cols[j].in_slab) free(t->cols[j].num);
    free(t->cols[j].str);
    free(t->cols[j].arena);
  }
  free(t->cols);
  free(t->slab);
  free(t->spec);
  free(t);
  *tp = NULL;
}

int64_t sm_table_nrows(const sm_table *t) { return t->nrows; }
sm_range sm_table_range(const sm_table *t) { return t->mine; }
int sm_table_ncols(const sm_table *t) { return t->ncols; }
const char *sm_table_col_name(const sm_table *t, int j) { return t->cols[j].name; }
int sm_table_col_is_str(const sm_table *t, int j) { return t->cols[j].is_str; }
const double *sm_table_num(const sm_table *t, int j) { return t->cols[j].is_str ? NULL : t->cols[j].num; }
const char *sm_table_spec(const sm_table *t) { return t->spec; }

const char *const *sm_table_str(const sm_table *t, int j) {
  return t->cols[j].is_str ? (const char *const *)t->cols[j].str : NULL;
}

sm_status sm_table_find(sm_table *t, const char *name, int *j) {
  for (*j = 0; *j < t->ncols; (*j)++)
    if (!strcmp(t->cols[*j].name, name)) return SM_OK;
  *j = -1;
  const char **names = malloc(((size_t)t->ncols + 1) * sizeof *names);
  char near[256] = "";
  if (names) {
    for (int k = 0; k < t->ncols; k++)
      names[k] = t->cols[k].name;
    sm_near_matches(name, names, t->ncols, near, sizeof near);
    free(names);
  }
  return SM_ERR(t->ctx, SM_ERR_ARG, "%s: no column \"%s\"%s%s", t->spec, name, near[0] ? "; did you mean " : "", near);
}
