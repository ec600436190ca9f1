/* The fuzz targets' common entry (tests/fuzz): each target defines fuzz_one(), which must end in
 * a result or a clean error (the context's status), never a crash, a hang or a sanitizer report,
 * for any input bytes. fuzz_main.c runs it either as a libFuzzer target (SISMA_LIBFUZZER, one
 * rank; dev/fuzz.sh) or as a replay of a corpus directory at any rank count (CTest). */
#ifndef SISMA_TESTS_FUZZ_H
#define SISMA_TESTS_FUZZ_H
#include <stddef.h>
#include <stdint.h>

#include "sisma/core.h"

/* What an input led to, the same on every rank and at every rank count: the status of each step
 * reached (code[k]; steps not reached are -1) and the values computed (bit patterns compared). */
#define FUZZ_STEPS 8
#define FUZZ_VALUES 512
typedef struct {
  int code[FUZZ_STEPS];
  int n;
  double v[FUZZ_VALUES];
} fuzz_digest;
static inline void fuzz_put(fuzz_digest *d, double x) {
  if (d->n < FUZZ_VALUES) d->v[d->n++] = x;
}

/* One input, collectively (every rank gets the same bytes); dir: a scratch directory shared by
 * the ranks (the files it writes there have fixed names: the runs of the inputs, at any rank
 * count, follow one another). Returns 0, on every rank, when an
 * invariant of the target failed (after printing which on rank 0), else 1. */
int fuzz_one(sm_ctx *ctx, const uint8_t *data, size_t size, const char *dir, fuzz_digest *out);
#endif
