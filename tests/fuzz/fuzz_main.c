/* The driver of a fuzz target (fuzz.h). With SISMA_LIBFUZZER: libFuzzer's entry points, MPI and
 * the context made once in LLVMFuzzerInitialize, each input at one rank; a failed invariant
 * aborts, which libFuzzer records as a crash. Otherwise `replay DIR...` runs every file of the
 * directories in name order at the job's rank count (rank 0 reads each file and broadcasts it)
 * and, with more than one rank, again on rank 0 alone: an input fails when the target's
 * invariants fail, when the ranks' digests differ, or when the digest differs from the one-rank
 * run (results must not change with the rank count). Crashes and hangs are left to the
 * sanitizers and CTest's timeout. Exits 1 when any input failed. SISMA_FUZZ_VERBOSE=1 prints
 * each input's step statuses and digest size. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static const char *scratch(void) {
  const char *d = getenv("SISMA_TEST_TMP");
  return d && *d ? d : "/tmp";
}

static void quiet(sm_ctx *ctx) { ctx->log_level = SM_LOG_ERROR; }

#ifdef SISMA_LIBFUZZER
static sm_ctx *ctx;
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  MPI_Init(argc, argv);
  if (sm_ctx_create(MPI_COMM_WORLD, &ctx) != SM_OK) abort();
  quiet(ctx);
  return 0;
}
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static fuzz_digest d;
  memset(&d, 0, sizeof d);
  if (!fuzz_one(ctx, data, size, scratch(), &d)) abort();
  sm_ctx_clear_error(ctx);
  return 0;
}
#else
static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Read path on rank 0 and broadcast it; NULL (on every rank) when it cannot be read. */
static unsigned char *read_all(sm_ctx *ctx, const char *path, long *size) {
  unsigned char *buf = NULL;
  *size = -1;
  FILE *f = ctx->rank ? NULL : fopen(path, "rb");
  if (f && !fseek(f, 0, SEEK_END) && (*size = ftell(f)) >= 0 && !fseek(f, 0, SEEK_SET) &&
      (buf = malloc((size_t)*size + 1)) && fread(buf, 1, (size_t)*size, f) != (size_t)*size)
    *size = -1;
  if (f) fclose(f);
  MPI_Bcast(size, 1, MPI_LONG, 0, ctx->comm);
  if (*size < 0) return free(buf), NULL;
  if (ctx->rank) buf = malloc((size_t)*size + 1);
  MPI_Bcast(buf, (int)*size, MPI_BYTE, 0, ctx->comm);
  return buf;
}

/* Whether every rank holds rank 0's digest. */
static int same_everywhere(sm_ctx *ctx, const fuzz_digest *d) {
  fuzz_digest d0 = *d;
  MPI_Bcast(&d0, (int)sizeof d0, MPI_BYTE, 0, ctx->comm);
  int same = !memcmp(&d0, d, sizeof d0);
  MPI_Allreduce(MPI_IN_PLACE, &same, 1, MPI_INT, MPI_MIN, ctx->comm);
  return same;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  sm_ctx *ctx = NULL, *one = NULL;
  MPI_Comm self;
  if (sm_ctx_create(MPI_COMM_WORLD, &ctx) != SM_OK) MPI_Abort(MPI_COMM_WORLD, 1);
  MPI_Comm_split(MPI_COMM_WORLD, ctx->rank ? MPI_UNDEFINED : 0, 0, &self);
  if (!ctx->rank && sm_ctx_create(self, &one) != SM_OK) MPI_Abort(MPI_COMM_WORLD, 1);
  quiet(ctx);
  if (one) quiet(one);
  int runs = 0, failed = 0;
  for (int a = 1; a < argc; a++) {
    DIR *dir = opendir(argv[a]);
    char **names = NULL;
    int n = 0;
    for (struct dirent *e; dir && (e = readdir(dir));)
      if (e->d_name[0] != '.') names = realloc(names, (size_t)(n + 1) * sizeof *names), names[n++] = strdup(e->d_name);
    if (dir) closedir(dir);
    if (names) qsort(names, (size_t)n, sizeof *names, cmp_name);
    if (!n && !ctx->rank) fprintf(stderr, "no inputs in %s\n", argv[a]);
    failed += !n;
    for (int i = 0; i < n; i++, runs++) {
      char path[4096];
      snprintf(path, sizeof path, "%s/%s", argv[a], names[i]);
      long size;
      unsigned char *buf = read_all(ctx, path, &size);
      if (!buf) {
        if (!ctx->rank) fprintf(stderr, "%s: cannot read\n", path);
        failed++;
        continue;
      }
      static fuzz_digest all, alone;
      memset(&all, 0, sizeof all), memset(&alone, 0, sizeof alone);
      int ok = fuzz_one(ctx, buf, (size_t)size, scratch(), &all);
      sm_ctx_clear_error(ctx);
      const char *why = !ok ? "an invariant failed" : !same_everywhere(ctx, &all) ? "the ranks' results differ" : NULL;
      if (!why && one) {
        ok = fuzz_one(one, buf, (size_t)size, scratch(), &alone);
        sm_ctx_clear_error(one);
        why = !ok                                ? "an invariant failed at one rank"
              : memcmp(&all, &alone, sizeof all) ? "one rank's result differs"
                                                 : NULL;
      }
      if (getenv("SISMA_FUZZ_VERBOSE") && !ctx->rank) {
        printf("%s:", names[i]);
        for (int k = 0; k < FUZZ_STEPS; k++)
          printf(" %d", all.code[k]);
        printf(" | %d values%s\n", all.n, all.n ? "" : " (none)");
      }
      int bad = why != NULL;
      MPI_Bcast(&bad, 1, MPI_INT, 0, MPI_COMM_WORLD);
      if (bad && !ctx->rank) fprintf(stderr, "%s: %s (%d ranks)\n", path, why, ctx->size);
      failed += bad;
      free(buf), free(names[i]);
    }
    free(names);
  }
  if (!ctx->rank) printf("%d inputs replayed at %d ranks, %d failed\n", runs, ctx->size, failed);
  if (one) sm_ctx_destroy(&one);
  if (self != MPI_COMM_NULL) MPI_Comm_free(&self);
  sm_ctx_destroy(&ctx);
  MPI_Finalize();
  return failed ? 1 : 0;
}
#endif
