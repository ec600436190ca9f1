/* Reader of the golden files of dev/golden_unsupervised.py ("matrix NAME R C" + rows,
 * "scalar NAME V"), and helpers shared by the unsupervised tests: the golden directory, a
 * contiguous split of rows over the ranks, and a one-rank context to compare against. */
#ifndef SISMA_TEST_GOLDEN_H
#define SISMA_TEST_GOLDEN_H

#include "harness.h"
#include "sisma/shard.h"
#include "sisma/unsupervised.h"

typedef struct {
  char name[64];
  int rows, cols;
  double *v;
} golden_item;

typedef struct {
  int n;
  golden_item item[64];
} golden;

static inline int golden_load(const char *file, golden *g) {
  char rel[1024];
  snprintf(rel, sizeof rel, "tests/unsupervised/golden/%s", file);
  FILE *f = sm_test_open_source(rel, "r");
  memset(g, 0, sizeof *g);
  if (!f) return -1;
  char word[16];
  while (fscanf(f, "%15s", word) == 1) {
    if (word[0] == '#') {
      int c;
      while ((c = fgetc(f)) != '\n' && c != EOF) {
      }
      continue;
    }
    golden_item *it = &g->item[g->n++];
    if (!strcmp(word, "scalar")) {
      it->rows = it->cols = 1;
      it->v = malloc(sizeof *it->v);
      if (fscanf(f, "%63s %lf", it->name, it->v) != 2) return -1;
    } else {
      if (fscanf(f, "%63s %d %d", it->name, &it->rows, &it->cols) != 3) return -1;
      it->v = malloc((size_t)it->rows * it->cols * sizeof *it->v);
      for (int i = 0; i < it->rows * it->cols; i++)
        if (fscanf(f, "%lf", &it->v[i]) != 1) return -1;
    }
  }
  fclose(f);
  return 0;
}

static inline const golden_item *golden_get(const golden *g, const char *name) {
  for (int i = 0; i < g->n; i++)
    if (!strcmp(g->item[i].name, name)) return &g->item[i];
  fprintf(stderr, "golden item %s missing\n", name);
  abort();
}

static inline void golden_free(golden *g) {
  for (int i = 0; i < g->n; i++) free(g->item[i].v);
}

/* This rank's contiguous share of an n x d matrix held whole in `all`. */
static inline sm_rows split_rows(const sm_ctx *ctx, int64_t n, int64_t d, const double *all) {
  sm_range r = sm_shard_range(n, 1, ctx->rank, ctx->size);
  sm_rows x = {n, r.first, r.count, d, all + r.first * d};
  return x;
}

/* A context holding rank 0 alone (NULL on the other ranks). Collective. */
static inline sm_ctx *solo_ctx(sm_ctx *ctx) {
  MPI_Comm c;
  MPI_Comm_split(ctx->comm, ctx->rank == 0 ? 0 : MPI_UNDEFINED, 0, &c);
  sm_ctx *s = NULL;
  if (c != MPI_COMM_NULL) {
    sm_ctx_create(c, &s);
    MPI_Comm_free(&c);
  }
  return s;
}

#endif
