/* A small MPI-aware test harness (header only). Checks print both values with file:line:rank;
 * the failure count is reduced over ranks at the end so every rank exits non-zero when any rank
 * failed. Usage:
 *   static void test_x(sm_ctx *ctx) { CHECK_EQ_I64(ctx->size, 2); }
 *   int main(int argc, char **argv) { return SM_TEST_MAIN(argc, argv, test_x, test_y); }
 * Tests run in order on every rank; a test must call the same collectives on every rank. */
#ifndef SISMA_TEST_HARNESS_H
#define SISMA_TEST_HARNESS_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sisma/sisma.h"

static int sm_test_failures = 0;
static int sm_test_rank = 0;

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: rank %d: CHECK(%s) failed\n", __FILE__, __LINE__, sm_test_rank, #cond); \
      sm_test_failures++;                                                                          \
    }                                                                                              \
  } while (0)

#define CHECK_EQ_I64(a, b)                                                                         \
  do {                                                                                             \
    long long a_ = (long long)(a), b_ = (long long)(b);                                            \
    if (a_ != b_) {                                                                                \
      fprintf(stderr, "%s:%d: rank %d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__,       \
              sm_test_rank, #a, #b, a_, b_);                                                       \
      sm_test_failures++;                                                                          \
    }                                                                                              \
  } while (0)

/* |a - b| <= tol * max(1, |b|) */
#define CHECK_NEAR(a, b, tol)                                                                      \
  do {                                                                                             \
    double a_ = (double)(a), b_ = (double)(b);                                                     \
    if (!(fabs(a_ - b_) <= (tol) * fmax(1.0, fabs(b_)))) {                                         \
      fprintf(stderr, "%s:%d: rank %d: %s ~ %s failed: %.17g vs %.17g (tol %g)\n", __FILE__,       \
              __LINE__, sm_test_rank, #a, #b, a_, b_, (double)(tol));                              \
      sm_test_failures++;                                                                          \
    }                                                                                              \
  } while (0)

#define CHECK_STR(a, b)                                                                            \
  do {                                                                                             \
    const char *a_ = (a), *b_ = (b);                                                               \
    if (strcmp(a_, b_) != 0) {                                                                     \
      fprintf(stderr, "%s:%d: rank %d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__, __LINE__,   \
              sm_test_rank, #a, #b, a_, b_);                                                       \
      sm_test_failures++;                                                                          \
    }                                                                                              \
  } while (0)

/* Check a status; on failure print the recorded error. */
#define CHECK_OK(ctx, expr)                                                                        \
  do {                                                                                             \
    sm_status s_ = (expr);                                                                         \
    if (s_ != SM_OK) {                                                                             \
      fprintf(stderr, "%s:%d: rank %d: %s returned %s: %s\n", __FILE__, __LINE__, sm_test_rank,    \
              #expr, sm_status_str(s_), (ctx)->err_msg);                                           \
      sm_test_failures++;                                                                          \
    }                                                                                              \
  } while (0)

#define CHECK_STATUS(ctx, expr, want)                                                              \
  do {                                                                                             \
    sm_status s_ = (expr);                                                                         \
    if (s_ != (want)) {                                                                            \
      fprintf(stderr, "%s:%d: rank %d: %s returned %s, expected %s (%s)\n", __FILE__, __LINE__,    \
              sm_test_rank, #expr, sm_status_str(s_), sm_status_str(want), (ctx)->err_msg);        \
      sm_test_failures++;                                                                          \
    }                                                                                              \
  } while (0)

typedef void (*sm_test_fn)(sm_ctx *ctx);

/* A scratch directory shared by the ranks: $SISMA_TEST_TMP or the current directory. */
static inline const char *sm_test_dir(void) {
  const char *d = getenv("SISMA_TEST_TMP");
  return d && *d ? d : ".";
}

/* Open a file of the source tree ($SISMA_SOURCE_DIR/rel, e.g. a golden file); on failure say
 * which path and return NULL. */
static inline FILE *sm_test_open_source(const char *rel, const char *mode) {
  const char *src = getenv("SISMA_SOURCE_DIR");
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", src && *src ? src : ".", rel);
  FILE *f = fopen(path, mode);
  if (!f) fprintf(stderr, "cannot open %s (set SISMA_SOURCE_DIR)\n", path);
  return f;
}

static inline int sm_test_run(int argc, char **argv, const char *names, sm_test_fn *fns, int n) {
  MPI_Init(&argc, &argv);
  sm_ctx *ctx = NULL;
  if (sm_ctx_create(MPI_COMM_WORLD, &ctx) != SM_OK) MPI_Abort(MPI_COMM_WORLD, 2);
  sm_test_rank = ctx->rank;
  const char *only = argc > 1 ? argv[1] : NULL;
  char list[4096];
  snprintf(list, sizeof list, "%s", names);
  char *save = NULL, *name = strtok_r(list, ", ", &save);
  for (int i = 0; i < n; i++, name = strtok_r(NULL, ", ", &save)) {
    if (only && name && strcmp(only, name) != 0) continue;
    int before = sm_test_failures;
    sm_ctx_clear_error(ctx);
    fns[i](ctx);
    if (ctx->rank == 0) printf("%s %s\n", sm_test_failures == before ? "ok  " : "FAIL", name ? name : "?");
  }
  int total = 0;
  MPI_Allreduce(&sm_test_failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (ctx->rank == 0) printf("%d failure(s) on %d rank(s)\n", total, ctx->size);
  sm_ctx_destroy(&ctx);
  MPI_Finalize();
  return total ? 1 : 0;
}

#define SM_TEST_MAIN(argc, argv, ...)                                                              \
  sm_test_run((argc), (argv), #__VA_ARGS__, (sm_test_fn[]){__VA_ARGS__},                           \
              (int)(sizeof((sm_test_fn[]){__VA_ARGS__}) / sizeof(sm_test_fn)))

#endif
