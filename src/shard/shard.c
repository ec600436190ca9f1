/* Shard ranges, the keyed-Feistel permutation and global batches (include/sisma/shard.h). */
#include <stdlib.h>

#include "sisma/rng.h"
#include "sisma/shard.h"

sm_range sm_shard_range(int64_t n, int64_t chunk, int rank, int size) {
  if (chunk < 1) chunk = 1;
  int64_t nchunks = (n + chunk - 1) / chunk;
  int64_t base = nchunks / size, rem = nchunks % size;
  int64_t c0 = rank * base + (rank < rem ? rank : rem);
  int64_t nc = base + (rank < rem ? 1 : 0);
  int64_t first = c0 * chunk, last = (c0 + nc) * chunk;
  if (first > n) first = n;
  if (last > n) last = n;
  return (sm_range){first, last - first};
}

sm_range sm_catalog_shard(const sm_catalog *cat, int rank, int size) {
  const sm_catalog_info *in = sm_catalog_get_info(cat);
  return sm_shard_range(in->n_traces, in->chunk_traces, rank, size);
}

/* ---- permutation: a 4-round balanced Feistel network on 2*half_bits bits, keyed by Philox,
 * with cycle walking to stay in [0, n) (Black & Rogaway 2002, "Ciphers with arbitrary finite
 * domains"). A bijection evaluated in O(1) per index. ---- */

void sm_perm_init(sm_perm *p, int64_t n, uint64_t seed, uint64_t stream) {
  p->n = (uint64_t)(n > 0 ? n : 0);
  p->seed = seed;
  p->stream = stream;
  int bits = 1;
  while (bits < 64 && (UINT64_C(1) << bits) < p->n) bits++;
  p->half_bits = (bits + 1) / 2;
}

static uint64_t feistel(const sm_perm *p, uint64_t x) {
  uint64_t mask = (UINT64_C(1) << p->half_bits) - 1;
  uint64_t l = x >> p->half_bits, r = x & mask;
  for (uint64_t round = 0; round < 4; round++) {
    uint64_t f = sm_rng_at(p->seed, p->stream, (round << 58) ^ r) & mask;
    uint64_t nl = r;
    r = l ^ f;
    l = nl;
  }
  return (l << p->half_bits) | r;
}

int64_t sm_perm_at(const sm_perm *p, int64_t i) {
  uint64_t x = (uint64_t)i;
  do x = feistel(p, x);
  while (x >= p->n); /* cycle walking: the domain is at most 4n, so few steps on average */
  return (int64_t)x;
}

/* ---- batches ---- */

struct sm_batches {
  int64_t n, batch;
  int shuffle;
  sm_perm perm;
  sm_range mine;
  int64_t *index; /* [batch] this rank's members of the current batch */
};

sm_status sm_batches_create(sm_ctx *ctx, int64_t n, int64_t batch_size, uint64_t seed, uint64_t epoch, int shuffle,
                            sm_range mine, sm_batches **out) {
  *out = NULL;
  SM_CHECK(ctx, batch_size >= 1, SM_ERR_ARG, "batch size %lld must be >= 1", (long long)batch_size);
  sm_batches *b = NULL;
  SM_TRY(ctx, SM_ALLOC(ctx, b, 1));
  b->n = n;
  b->batch = batch_size;
  b->shuffle = shuffle;
  b->mine = mine;
  sm_perm_init(&b->perm, n, seed, SM_RNG_STREAM_PERMUTATION + 16 + epoch);
  sm_status st = SM_ALLOC(ctx, b->index, batch_size);
  if (st != SM_OK) {
    free(b);
    return st;
  }
  *out = b;
  return SM_OK;
}

void sm_batches_destroy(sm_batches **b) {
  if (!b || !*b) return;
  free((*b)->index);
  free(*b);
  *b = NULL;
}

int64_t sm_batches_count(const sm_batches *b) { return (b->n + b->batch - 1) / b->batch; }

sm_status sm_batches_get(sm_batches *b, int64_t k, const int64_t **index, int64_t *n_local, int64_t *n_global) {
  int64_t lo = k * b->batch, hi = lo + b->batch;
  if (lo < 0 || lo >= b->n) lo = hi = 0;
  if (hi > b->n) hi = b->n;
  int64_t m = 0;
  for (int64_t i = lo; i < hi; i++) {
    int64_t g = b->shuffle ? sm_perm_at(&b->perm, i) : i;
    if (g >= b->mine.first && g < b->mine.first + b->mine.count) b->index[m++] = g;
  }
  *index = b->index;
  *n_local = m;
  *n_global = hi - lo;
  return SM_OK;
}
