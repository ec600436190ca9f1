/* Core: Philox known answers, rank-independent draws, permutations, status agreement when one
 * rank fails, time parsing, config validation, large-array allocation. */
#include <stdint.h>

#include "harness.h"

static void test_philox_known_answer(sm_ctx *ctx) {
  /* Random123 kat_vectors: philox4x32 10 rounds, counter 0, key 0. */
  uint32_t ctr[4] = {0, 0, 0, 0}, key[2] = {0, 0}, out[4];
  sm_philox4x32(ctr, key, out);
  CHECK_EQ_I64(out[0], 0x6627e8d5u);
  CHECK_EQ_I64(out[1], 0xe169c58du);
  CHECK_EQ_I64(out[2], 0xbc57ac4cu);
  CHECK_EQ_I64(out[3], 0x9b00dbd8u);
  uint32_t ctr2[4] = {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, key2[2] = {0xa4093822u, 0x299f31d0u};
  sm_philox4x32(ctr2, key2, out);
  CHECK_EQ_I64(out[0], 0xd16cfe09u);
  CHECK_EQ_I64(out[1], 0x94fdccebu);
  CHECK_EQ_I64(out[2], 0x5001e420u);
  CHECK_EQ_I64(out[3], 0x24126ea1u);
}

static void test_rng_moments(sm_ctx *ctx) {
  sm_rng r;
  sm_rng_init(&r, 42, 7);
  double s = 0, s2 = 0;
  const int n = 200000;
  for (int i = 0; i < n; i++) {
    double x = sm_rng_normal(&r);
    s += x;
    s2 += x * x;
  }
  CHECK_NEAR(s / n, 0.0, 0.01);
  CHECK_NEAR(s2 / n, 1.0, 0.01);
  uint64_t hist[10] = {0};
  for (int i = 0; i < n; i++)
    hist[sm_rng_below(&r, 10)]++;
  for (int i = 0; i < 10; i++)
    CHECK_NEAR((double)hist[i] / n, 0.1, 0.01);
}

/* A draw depends on (seed, stream, index) only: every rank computes the same value. */
static void test_rng_rank_independent(sm_ctx *ctx) {
  uint64_t v = sm_rng_at(5, 123, 9), mx = 0, mn = 0;
  MPI_Allreduce(&v, &mx, 1, MPI_UINT64_T, MPI_MAX, ctx->comm);
  MPI_Allreduce(&v, &mn, 1, MPI_UINT64_T, MPI_MIN, ctx->comm);
  CHECK(mx == mn);
}

static void test_permutations(sm_ctx *ctx) {
  for (int64_t n = 1; n < 300; n += 37) {
    int64_t *perm = calloc((size_t)n, sizeof *perm);
    char *seen = calloc((size_t)n, 1);
    sm_permutation(3, 1, n, perm);
    int ok = 1;
    for (int64_t i = 0; i < n; i++)
      ok &= !seen[perm[i]]++;
    CHECK(ok);
    memset(seen, 0, (size_t)n);
    sm_perm p;
    sm_perm_init(&p, n, 11, 2);
    ok = 1;
    for (int64_t i = 0; i < n; i++) {
      int64_t x = sm_perm_at(&p, i);
      ok &= x >= 0 && x < n && !seen[x]++;
    }
    CHECK(ok);
    free(perm);
    free(seen);
  }
}

/* Rank size-1 fails locally; every rank must get the same code and the failing rank's message. */
static void test_agree_on_failure(sm_ctx *ctx) {
  sm_status local = SM_OK;
  if (ctx->rank == ctx->size - 1) local = SM_ERR(ctx, SM_ERR_DATA, "injected fault in trace %d", 17);
  sm_status st = sm_ctx_agree(ctx, local);
  CHECK_EQ_I64(st, SM_ERR_DATA);
  CHECK(strstr(ctx->err_msg, "injected fault in trace 17") != NULL);
  char want[32];
  snprintf(want, sizeof want, "[rank %d/%d]", ctx->size - 1, ctx->size);
  CHECK(strstr(ctx->err_msg, want) != NULL);
  sm_ctx_clear_error(ctx);
  CHECK_EQ_I64(sm_ctx_agree(ctx, SM_OK), SM_OK);
}

static void test_time(sm_ctx *ctx) {
  double t;
  CHECK_EQ_I64(sm_time_parse("2016-10-30T06:40:17.360000Z", &t), 0);
  CHECK_NEAR(t, 1477809617.36, 1e-12);
  char s[32];
  sm_time_format(t, s);
  CHECK_STR(s, "2016-10-30T06:40:17.360000Z");
  CHECK_EQ_I64(sm_time_parse("1970-01-01", &t), 0);
  CHECK_NEAR(t, 0.0, 0);
  CHECK_EQ_I64(sm_time_parse("2010-02-27 06:50:00.069539", &t), 0);
  sm_time_format(t, s);
  CHECK_STR(s, "2010-02-27T06:50:00.069539Z");
  CHECK_EQ_I64(sm_time_parse("2016-13-01T00:00:00", &t), -1);
  CHECK_EQ_I64(sm_time_parse("yesterday", &t), -1);
}

static const sm_key keys[] = {
    {"traces", SM_KEY_INT, "10", 1, 1000, NULL, "number of traces"},
    {"rate", SM_KEY_FLOAT, "100", 0.001, 1e6, NULL, "sampling rate in Hz"},
    {"mode", SM_KEY_ENUM, "fast", 0, -1, "fast|exact", "how"},
    {"output", SM_KEY_PATH, NULL, 0, -1, NULL, "output file"},
    SM_KEYS_END,
};

static void test_config(sm_ctx *ctx) {
  sm_config cfg;
  sm_config_init(&cfg, "demo", keys);
  CHECK_OK(ctx, sm_config_set(ctx, &cfg, "traces", "25", "t.yaml:3:5"));
  CHECK_STATUS(ctx, sm_config_set(ctx, &cfg, "traces", "2500", "t.yaml:3:5"), SM_ERR_CONFIG);
  CHECK(strstr(ctx->err_msg, "t.yaml:3:5") && strstr(ctx->err_msg, "outside"));
  CHECK_STATUS(ctx, sm_config_set(ctx, &cfg, "trace", "5", "t.yaml:4:3"), SM_ERR_CONFIG);
  CHECK(strstr(ctx->err_msg, "did you mean \"traces\"") != NULL);
  CHECK_STATUS(ctx, sm_config_set(ctx, &cfg, "mode", "slow", "x"), SM_ERR_CONFIG);
  CHECK_STATUS(ctx, sm_config_set(ctx, &cfg, "rate", "abc", "x"), SM_ERR_CONFIG);
  CHECK_STATUS(ctx, sm_config_finish(ctx, &cfg), SM_ERR_CONFIG); /* output is required */
  CHECK(strstr(ctx->err_msg, "\"output\"") != NULL);
  CHECK_OK(ctx, sm_config_set(ctx, &cfg, "output", "a.h5", "x"));
  CHECK_OK(ctx, sm_config_finish(ctx, &cfg));
  CHECK_EQ_I64(sm_config_int(&cfg, "traces"), 25);
  CHECK_NEAR(sm_config_float(&cfg, "rate"), 100.0, 0);
  CHECK_STR(sm_config_str(&cfg, "mode"), "fast");
  CHECK(sm_config_is_set(&cfg, "traces") && !sm_config_is_set(&cfg, "rate"));
  sm_config_fini(&cfg);
}

/* sm__alloc_big: small sizes from malloc, large ones cache-line aligned (2 MiB with huge pages, the default),
 * writable to the end, resized by realloc with their contents, released by free. */
static void test_alloc_big(sm_ctx *ctx) {
  (void)ctx;
  const char *env = getenv("SISMA_HUGEPAGES");
  int huge = !env || strcmp(env, "0"); /* off in the core_nohugepages test */
  const size_t sizes[] = {1000, ((size_t)4 << 20) - 1, (size_t)4 << 20, ((size_t)9 << 20) + 3};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    size_t n = sizes[k];
    unsigned char *p = sm__alloc_big(n);
    CHECK(p != NULL);
    if (!p) continue;
    if (n >= ((size_t)4 << 20)) CHECK(((uintptr_t)p & 63) == 0);
    if (n >= ((size_t)4 << 20) && huge) CHECK(((uintptr_t)p & (((size_t)2 << 20) - 1)) == 0);
    for (size_t i = 0; i < n; i++)
      p[i] = (unsigned char)(i * 7);
    unsigned char *q = realloc(p, 2 * n);
    CHECK(q != NULL);
    if (q) p = q;
    int same = 1;
    for (size_t i = 0; q && i < n; i++)
      same &= p[i] == (unsigned char)(i * 7);
    CHECK(same);
    q = realloc(p, n / 2 + 1);
    if (q) p = q;
    CHECK(q && p[n / 2] == (unsigned char)((n / 2) * 7));
    free(p);
  }
}

int main(int argc, char **argv) {
  return SM_TEST_MAIN(argc, argv, test_philox_known_answer, test_rng_moments, test_rng_rank_independent,
                      test_permutations, test_agree_on_failure, test_time, test_config, test_alloc_big);
}
