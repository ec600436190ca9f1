/* Sharding, global batches and the shard reader.
 *
 * Sharding is arithmetic: rank r of p owns a contiguous block of whole chunks; blocks differ by
 * at most one chunk; ranks beyond the chunk count own nothing (count 0) but still take part in
 * every collective. Batches: a seeded permutation of the global trace indices (a keyed Feistel
 * bijection, so no rank stores n indices) is cut into global batches of B traces; each rank
 * processes the members of each global batch that fall in its own shard. The sequence of global
 * batches, and so the result of a reduction over each batch, does not depend on the rank count.
 * The reader loads a shard once when it fits the memory budget, and otherwise streams it chunk
 * block by chunk block with the next read running in a helper thread while the caller computes. */
#ifndef SISMA_SHARD_H
#define SISMA_SHARD_H

#include "sisma/catalog.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int64_t first, count; /* traces [first, first + count) */
} sm_range;

/* Block of whole chunks owned by `rank` of `size` over n traces chunked by `chunk`. Local. */
sm_range sm_shard_range(int64_t n, int64_t chunk, int rank, int size);
/* This rank's shard of a catalog. Local. */
sm_range sm_catalog_shard(const sm_catalog *cat, int rank, int size);

/* ---- a seeded permutation as a bijection, evaluated per index (O(1) memory) ---- */
typedef struct {
  uint64_t n, seed, stream;
  int half_bits; /* the Feistel network works on 2*half_bits >= bits(n-1) */
} sm_perm;
void sm_perm_init(sm_perm *p, int64_t n, uint64_t seed, uint64_t stream);
/* The i-th element of the permutation, 0 <= i < n. Local. */
int64_t sm_perm_at(const sm_perm *p, int64_t i);

/* ---- global batches ---- */
typedef struct sm_batches sm_batches;
/* Batches of `batch_size` over n traces for epoch `epoch` (permutation stream), restricted to the
 * shard `mine`. shuffle = 0 keeps the natural order. Local. */
sm_status sm_batches_create(sm_ctx *ctx, int64_t n, int64_t batch_size, uint64_t seed, uint64_t epoch, int shuffle,
                            sm_range mine, sm_batches **out);
void sm_batches_destroy(sm_batches **b);
/* Number of global batches: ceil(n / batch_size). The last one is smaller; no padding. Local. */
int64_t sm_batches_count(const sm_batches *b);
/* Global batch k: this rank's members (global trace indices, in permutation order; borrowed
 * until the next call), their count, and the global batch size. Local. */
sm_status sm_batches_get(sm_batches *b, int64_t k, const int64_t **index, int64_t *n_local, int64_t *n_global);

/* ---- shard reader ---- */
typedef struct sm_reader sm_reader;
/* Prepare to read the traces `mine` of cat with at most budget_bytes of trace buffers
 * (0 = unlimited). Collective. */
sm_status sm_reader_create(sm_catalog *cat, sm_range mine, int64_t budget_bytes, sm_reader **out);
void sm_reader_destroy(sm_reader **rd);
/* 1 if the whole shard is held in memory (loaded once), 0 if it is streamed. Local. */
int sm_reader_resident(const sm_reader *rd);
/* Next block of traces: *first (global index), *count, *traces float32 [count][C][T], borrowed
 * until the next call. *count == 0 at the end of the shard. Local (streaming uses a helper
 * thread and positioned reads, never collective calls, so ranks may hold different numbers of
 * blocks). */
sm_status sm_reader_next(sm_reader *rd, int64_t *first, int64_t *count, const float **traces);
/* Start a new pass over the shard (a resident shard is not read again). Local. */
sm_status sm_reader_rewind(sm_reader *rd);

#ifdef __cplusplus
}
#endif
#endif
