/* Philox4x32-10 (Salmon, Moraes, Dror, Shaw: "Parallel random numbers: as easy as 1, 2, 3",
 * SC 2011) and the draws built on it. Counter layout: (block index lo, hi, stream lo, hi);
 * key = seed lo, hi. Checked against the paper's known-answer vectors in tests/core. */
#include "sisma/rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline void mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo) {
  uint64_t p = (uint64_t)a * b;
  *hi = (uint32_t)(p >> 32);
  *lo = (uint32_t)p;
}

void sm_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3], k0 = key[0], k1 = key[1];
  for (int round = 0; round < 10; round++) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo(PHILOX_M0, c0, &hi0, &lo0);
    mulhilo(PHILOX_M1, c2, &hi1, &lo1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    k0 += PHILOX_W0;
    k1 += PHILOX_W1;
  }
  out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

static void block(uint64_t seed, uint64_t stream, uint64_t counter, uint32_t out[4]) {
  const uint32_t ctr[4] = {(uint32_t)counter, (uint32_t)(counter >> 32), (uint32_t)stream, (uint32_t)(stream >> 32)};
  const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  sm_philox4x32(ctr, key, out);
}

void sm_rng_init(sm_rng *r, uint64_t seed, uint64_t stream) {
  r->seed = seed;
  r->stream = stream;
  r->counter = 0;
  r->used = 4;
}

uint32_t sm_rng_u32(sm_rng *r) {
  if (r->used == 4) {
    block(r->seed, r->stream, r->counter++, r->buf);
    r->used = 0;
  }
  return r->buf[r->used++];
}

uint64_t sm_rng_u64(sm_rng *r) {
  uint64_t hi = sm_rng_u32(r);
  return hi << 32 | sm_rng_u32(r);
}

double sm_rng_uniform(sm_rng *r) { return (double)(sm_rng_u64(r) >> 11) * 0x1.0p-53; }

double sm_rng_normal(sm_rng *r) {
  double u1 = 1.0 - sm_rng_uniform(r); /* (0, 1]: log is finite */
  double u2 = sm_rng_uniform(r);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint64_t sm_rng_below(sm_rng *r, uint64_t n) {
  /* Lemire's nearly-divisionless method with rejection: exact uniformity. */
  __uint128_t m = (__uint128_t)sm_rng_u64(r) * n;
  uint64_t lo = (uint64_t)m;
  if (lo < n) {
    uint64_t t = -n % n;
    while (lo < t) {
      m = (__uint128_t)sm_rng_u64(r) * n;
      lo = (uint64_t)m;
    }
  }
  return (uint64_t)(m >> 64);
}

uint64_t sm_rng_at(uint64_t seed, uint64_t stream, uint64_t index) {
  uint32_t out[4];
  block(seed, stream, index, out);
  return (uint64_t)out[0] << 32 | out[1];
}

void sm_permutation(uint64_t seed, uint64_t stream, int64_t n, int64_t *perm) {
  for (int64_t i = 0; i < n; i++) perm[i] = i;
  sm_rng r;
  sm_rng_init(&r, seed, stream);
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)sm_rng_below(&r, (uint64_t)i + 1);
    int64_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
}
