/* Counter-based random numbers (Philox4x32-10, Salmon et al., SC'11 "Parallel random numbers:
 * as easy as 1, 2, 3"). Every draw is a pure function of (seed, stream, index): a trace's noise,
 * a batch permutation or an initial weight never depends on the rank count or on the order in
 * which ranks reach it. Streams separate independent uses (e.g. stream = global trace index,
 * or a fixed tag such as SM_RNG_STREAM_PERMUTATION). All functions are local. */
#ifndef SISMA_RNG_H
#define SISMA_RNG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Philox4x32 with 10 rounds: out = bijection(ctr) keyed by key. */
void sm_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* A sequential view of one stream: draws k = 0, 1, 2, ... of (seed, stream). */
typedef struct {
  uint64_t seed, stream, counter; /* counter = index of the next 128-bit block */
  uint32_t buf[4];
  int used; /* 32-bit words of buf already consumed (4 = empty) */
} sm_rng;

void sm_rng_init(sm_rng *r, uint64_t seed, uint64_t stream);
uint32_t sm_rng_u32(sm_rng *r);
uint64_t sm_rng_u64(sm_rng *r);
double sm_rng_uniform(sm_rng *r);       /* [0, 1), 53 random bits */
double sm_rng_normal(sm_rng *r);        /* standard normal (Box-Muller) */
uint64_t sm_rng_below(sm_rng *r, uint64_t n); /* uniform integer in [0, n), unbiased (Lemire) */

/* Stateless draw: the 64-bit value number `index` of (seed, stream). */
uint64_t sm_rng_at(uint64_t seed, uint64_t stream, uint64_t index);

/* Streams reserved by the framework (user streams are global trace indices, < 2^62). */
#define SM_RNG_STREAM_PERMUTATION (UINT64_C(1) << 62)
#define SM_RNG_STREAM_INIT ((UINT64_C(1) << 62) + 1)
#define SM_RNG_STREAM_SPLIT ((UINT64_C(1) << 62) + 2)

/* A seeded permutation of 0..n-1 (Fisher-Yates driven by stream `stream`, one per epoch say).
 * perm has n entries. Identical on every rank and for every rank count. */
void sm_permutation(uint64_t seed, uint64_t stream, int64_t n, int64_t *perm);

#ifdef __cplusplus
}
#endif
#endif
