/* Catalog I/O benchmark (not part of the test suite; built and run by bench/run.sh).
 *
 *   read_bench write  FILE [-n traces] [-c components] [-t samples] [-b block_MiB]
 *   read_bench read   FILE [-b block_MiB]
 *   read_bench stream FILE [-b budget_MiB]
 *
 * write : sm_catalog_create + sm_catalog_write_traces in blocks of whole chunks of each rank's
 *         shard (bounded memory), then sm_catalog_commit; timed from create to commit.
 * read  : sm_catalog_open, then each rank reads its shard with collective sm_catalog_read_traces
 *         in blocks of whole chunks of at most block_MiB; timed over the reads (open excluded,
 *         reported separately).
 * stream: sm_reader with a memory budget smaller than the shard (the helper-thread path); timed
 *         from sm_reader_create to the end of the shard.
 *
 * Prints one parseable line on rank 0:
 *   BENCH mode=read ranks=2 bytes=... seconds=... gbps=... open_s=... block_mib=... maxrss_kib=...
 * gbps is decimal (1e9 bytes/s) over the waveform bytes of the whole catalog; maxrss_kib is the
 * maximum over ranks of getrusage(RUSAGE_SELF).ru_maxrss (a cross-check of /usr/bin/time -v). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "sisma/catalog.h"
#include "sisma/core.h"
#include "sisma/shard.h"

static void die(sm_ctx *ctx, sm_status st, const char *what) {
  fprintf(stderr, "read_bench: %s failed: %s\n", what, sm_status_str(st));
  sm_ctx_print_error(ctx, 0);
  MPI_Abort(MPI_COMM_WORLD, 1);
  exit(1);
}
#define CK(expr, what)                                                                                             \
  do {                                                                                                             \
    sm_status s_ = (expr);                                                                                         \
    if (s_ != SM_OK) die(ctx, s_, what);                                                                           \
  } while (0)

static long max_rss_kib(MPI_Comm comm) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  long mine = ru.ru_maxrss, mx = 0;
  MPI_Allreduce(&mine, &mx, 1, MPI_LONG, MPI_MAX, comm);
  return mx;
}

/* Whole chunks per block so that a block stays within block_bytes (at least one chunk). */
static int64_t block_traces(const sm_catalog_info *in, int64_t block_bytes) {
  int64_t chunk_bytes = in->chunk_traces * in->n_components * in->n_samples * 4;
  int64_t k = block_bytes / chunk_bytes;
  if (k < 1) k = 1;
  return k * in->chunk_traces;
}

typedef struct {
  double t0, t1, t_open, local; /* timed span, open time, per-rank checksum */
  int64_t total_bytes;
} bench_result;

/* Blocks of bt traces over this rank's shard, and the maximum over ranks (collective calls
 * must match, so every rank loops nb_max times). */
static void block_counts(sm_ctx *ctx, sm_range mine, int64_t bt, int64_t *nb, int64_t *nb_max) {
  *nb = mine.count > 0 ? (mine.count + bt - 1) / bt : 0;
  MPI_Allreduce(nb, nb_max, 1, MPI_INT64_T, MPI_MAX, ctx->comm);
}

static int64_t block_len(sm_range mine, int64_t bt, int64_t nb, int64_t b) {
  int64_t first = mine.first + b * bt;
  if (b >= nb) return 0;
  return (mine.first + mine.count - first < bt) ? mine.first + mine.count - first : bt;
}

static float *block_buffer(int64_t bt, int64_t te) {
  float *buf = malloc((size_t)(bt > 0 ? bt : 1) * (size_t)te * sizeof(float));
  if (!buf) MPI_Abort(MPI_COMM_WORLD, 1);
  return buf;
}

static void bench_write(sm_ctx *ctx, const char *path, int64_t n, int C, int64_t T, int64_t block_bytes,
                        bench_result *r) {
  sm_catalog_info in = {.n_traces = n, .n_components = C, .n_samples = T, .sampling_rate_hz = 100.0};
  snprintf(in.component_order, sizeof in.component_order, "%.*s", C, "ENZ12345");
  sm_catalog *cat = NULL;
  MPI_Barrier(ctx->comm);
  r->t0 = MPI_Wtime();
  CK(sm_catalog_create(ctx, path, &in, &cat), "sm_catalog_create");
  const sm_catalog_info *ci = sm_catalog_get_info(cat);
  sm_range mine = sm_shard_range(ci->n_traces, ci->chunk_traces, ctx->rank, ctx->size);
  int64_t bt = block_traces(ci, block_bytes), te = (int64_t)C * T, nb, nb_max;
  if (bt > mine.count && mine.count > 0) bt = mine.count;
  float *buf = block_buffer(bt, te);
  /* A deterministic, cheap pattern; filled once (generation is not what is measured). */
  for (int64_t i = 0; i < bt * te; i++) buf[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
  block_counts(ctx, mine, bt, &nb, &nb_max);
  for (int64_t b = 0; b < nb_max; b++) {
    int64_t first = mine.first + b * bt, cnt = block_len(mine, bt, nb, b);
    if (cnt > 0) buf[0] = (float)first; /* each block differs a little */
    CK(sm_catalog_write_traces(cat, cnt > 0 ? first : 0, cnt, buf), "sm_catalog_write_traces");
  }
  CK(sm_catalog_commit(&cat), "sm_catalog_commit");
  MPI_Barrier(ctx->comm);
  r->t1 = MPI_Wtime();
  r->total_bytes = n * C * T * 4;
  free(buf);
}

/* Collective reads of the shard in blocks of whole chunks. */
static void bench_read(sm_ctx *ctx, sm_catalog *cat, sm_range mine, int64_t block_bytes, bench_result *r) {
  const sm_catalog_info *ci = sm_catalog_get_info(cat);
  int64_t te = (int64_t)ci->n_components * ci->n_samples, bt = block_traces(ci, block_bytes), nb, nb_max;
  if (bt > mine.count && mine.count > 0) bt = mine.count;
  float *buf = block_buffer(bt, te);
  block_counts(ctx, mine, bt, &nb, &nb_max);
  MPI_Barrier(ctx->comm);
  r->t0 = MPI_Wtime();
  for (int64_t b = 0; b < nb_max; b++) {
    int64_t first = mine.first + b * bt, cnt = block_len(mine, bt, nb, b);
    CK(sm_catalog_read_traces(cat, cnt > 0 ? first : 0, cnt, buf), "sm_catalog_read_traces");
    for (int64_t i = 0; i < cnt; i++) r->local += buf[i * te + te - 1]; /* touch every trace */
  }
  MPI_Barrier(ctx->comm);
  r->t1 = MPI_Wtime();
  free(buf);
}

/* The shard reader with a memory budget (streams through its helper thread). */
static void bench_stream(sm_ctx *ctx, sm_catalog *cat, sm_range mine, int64_t block_bytes, bench_result *r) {
  const sm_catalog_info *ci = sm_catalog_get_info(cat);
  int64_t te = (int64_t)ci->n_components * ci->n_samples;
  sm_reader *rd = NULL;
  MPI_Barrier(ctx->comm);
  r->t0 = MPI_Wtime();
  CK(sm_reader_create(cat, mine, block_bytes, &rd), "sm_reader_create");
  if (sm_reader_resident(rd) && ctx->rank == 0)
    fprintf(stderr, "read_bench: note: shard fits the %lld MiB budget; reader is resident, not streaming\n",
            (long long)(block_bytes >> 20));
  for (;;) {
    int64_t first, cnt;
    const float *tr;
    CK(sm_reader_next(rd, &first, &cnt, &tr), "sm_reader_next");
    if (cnt == 0) break;
    for (int64_t i = 0; i < cnt; i++) r->local += tr[i * te + te - 1];
  }
  MPI_Barrier(ctx->comm);
  r->t1 = MPI_Wtime();
  sm_reader_destroy(&rd);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  const char *mode = argc > 1 ? argv[1] : "";
  if (argc < 3 || (strcmp(mode, "write") && strcmp(mode, "read") && strcmp(mode, "stream"))) {
    fprintf(stderr, "usage: %s write|read|stream FILE [-n traces] [-c comps] [-t samples] [-b MiB]\n", argv[0]);
    MPI_Finalize();
    return 2;
  }
  const char *path = argv[2];
  int64_t n = 30000, T = 6000, block_mib = 256;
  int C = 3;
  for (int i = 3; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "-n")) n = atoll(argv[i + 1]);
    else if (!strcmp(argv[i], "-c")) C = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "-t")) T = atoll(argv[i + 1]);
    else if (!strcmp(argv[i], "-b")) block_mib = atoll(argv[i + 1]);
  }
  sm_ctx *ctx = NULL;
  if (sm_ctx_create(MPI_COMM_WORLD, &ctx) != SM_OK) MPI_Abort(MPI_COMM_WORLD, 1);
  bench_result r = {0};
  double checksum = 0;
  if (!strcmp(mode, "write")) {
    bench_write(ctx, path, n, C, T, block_mib << 20, &r);
  } else {
    sm_catalog *cat = NULL;
    MPI_Barrier(ctx->comm);
    double to = MPI_Wtime();
    CK(sm_catalog_open(ctx, path, &cat), "sm_catalog_open");
    const sm_catalog_info *ci = sm_catalog_get_info(cat);
    r.total_bytes = ci->n_traces * ci->n_components * ci->n_samples * 4;
    sm_range mine = sm_catalog_shard(cat, ctx->rank, ctx->size);
    MPI_Barrier(ctx->comm);
    r.t_open = MPI_Wtime() - to;
    if (!strcmp(mode, "read")) bench_read(ctx, cat, mine, block_mib << 20, &r);
    else bench_stream(ctx, cat, mine, block_mib << 20, &r);
    MPI_Allreduce(&r.local, &checksum, 1, MPI_DOUBLE, MPI_SUM, ctx->comm);
    sm_catalog_close(&cat);
  }
  long rss = max_rss_kib(ctx->comm);
  double secs = r.t1 - r.t0;
  if (ctx->rank == 0)
    printf("BENCH mode=%s ranks=%d bytes=%lld seconds=%.4f gbps=%.4f open_s=%.4f block_mib=%lld maxrss_kib=%ld "
           "checksum=%.6g\n",
           mode, ctx->size, (long long)r.total_bytes, secs, secs > 0 ? (double)r.total_bytes / secs / 1e9 : 0.0,
           r.t_open, (long long)block_mib, rss, checksum);
  sm_ctx_destroy(&ctx);
  MPI_Finalize();
  return 0;
}
