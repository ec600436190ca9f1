/* The single-precision GEMM of the nn layers:
 *   C[M][N] = C0 + sum_k A(i,k) B(k,j),   A(i,k) = a[i*ars + k*acs],  B(k,j) = b[k*bks + j*bjs],
 *   C0 = 0, C, bias[j] or bias[i] (sm__gemm_c0);  R = max(C, 0) as well when relu is given
 *   (a dense or conv layer followed by a ReLU writes both outputs while C is in registers; only R
 *   when relu == c), and
 *   C = 0 + (G > 0 ? C : 0) when gate G is given (a ReLU's backward fused into the dx GEMM of the
 *   dense layer after it; 0 + keeps the bits of the ReLU kernel, -0 included).
 * Small layers (a 64x64 dense at batch 256 is 2 MFLOP) lose a third of their time in OpenBLAS to
 * packing, the beta pass and call overhead, so shapes whose B panel (K x 16) fits in L1 run an
 * AVX2/FMA register tile of 6 rows x 16 columns that reads A and B in place (B is packed only
 * when its columns are strided); the rest, and CPUs without AVX2/FMA, go to cblas_sgemm.
 * Every C element is one FMA chain over k in order, started from C0, so a row's result does not
 * depend on M (how many samples share the call). The path depends on (N, K) only. */
#include <cblas.h>
#include <immintrin.h>
#include <string.h>

#include "internal.h"

#define MR 6
#define NR 16
#define KMAX 512 /* B panel K x NR floats: 32 KiB, L1 */

typedef struct {
  const float *a;
  int64_t ars, acs;
  const float *b; /* the K x NR panel, row stride ldb */
  int64_t ldb;
  float *c;
  int64_t ldc;
  const float *bias; /* [nr] (SM_GEMM_BIAS_COL) or [mr] (SM_GEMM_BIAS_ROW) */
  sm__gemm_c0 c0;
  float *relu;       /* NULL, or R with the row stride of C */
  const float *gate; /* NULL, or G with the row stride of C */
} tile_args;

/* One tile of mr <= MR rows and nr <= NR columns (full: nr == NR, plain loads and stores). The
 * twelve accumulators are named variables (GCC keeps an array of vectors on the stack); rows past
 * mr repeat row 0 and are not stored. */
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
static inline __attribute__((always_inline, target("avx2,fma"))) void tile(const tile_args *t, int64_t K, int mr,
                                                                           int nr, int full) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr), lane);
  const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr - 8), lane);
  const int64_t ars = t->ars, acs = t->acs, ldb = t->ldb, ldc = t->ldc;
  const float *b = t->b;
#define LOAD(p, v, m) ((full) ? _mm256_loadu_ps((p) + (v)) : _mm256_maskload_ps((p) + (v), (m)))
#define INIT(i)                                                                                                        \
  const float *a##i = t->a + (i < mr ? i : 0) * ars;                                                                   \
  __m256 c##i##0 = _mm256_setzero_ps(), c##i##1 = c##i##0;                                                             \
  if (t->c0 == SM_GEMM_ACC && i < mr)                                                                                  \
    c##i##0 = LOAD(t->c + i * ldc, 0, m0), c##i##1 = LOAD(t->c + i * ldc, 8, m1);                                      \
  else if (t->c0 == SM_GEMM_BIAS_COL)                                                                                  \
    c##i##0 = LOAD(t->bias, 0, m0), c##i##1 = LOAD(t->bias, 8, m1);                                                    \
  else if (t->c0 == SM_GEMM_BIAS_ROW)                                                                                  \
    c##i##0 = c##i##1 = _mm256_broadcast_ss(t->bias + (i < mr ? i : 0));
  ROWS(INIT)
  for (int64_t k = 0; k < K; k++, b += ldb) {
    __m256 b0 = LOAD(b, 0, m0), b1 = LOAD(b, 8, m1), x;
#define FMA(i)                                                                                                         \
  x = _mm256_broadcast_ss(a##i + k * acs);                                                                             \
  c##i##0 = _mm256_fmadd_ps(x, b0, c##i##0), c##i##1 = _mm256_fmadd_ps(x, b1, c##i##1);
    ROWS(FMA)
  }
  const __m256 zero = _mm256_setzero_ps();
#define STORE(i)                                                                                                       \
  if (i < mr) {                                                                                                        \
    float *ci = t->c + i * ldc;                                                                                        \
    if (t->gate) {                                                                                                     \
      const float *gi = t->gate + i * ldc;                                                                             \
      c##i##0 = _mm256_add_ps(zero, _mm256_and_ps(c##i##0, _mm256_cmp_ps(LOAD(gi, 0, m0), zero, _CMP_GT_OQ)));         \
      c##i##1 = _mm256_add_ps(zero, _mm256_and_ps(c##i##1, _mm256_cmp_ps(LOAD(gi, 8, m1), zero, _CMP_GT_OQ)));         \
    }                                                                                                                  \
    if (t->relu == t->c) /* only R */                                                                                  \
      ;                                                                                                                \
    else if (full)                                                                                                     \
      _mm256_storeu_ps(ci, c##i##0), _mm256_storeu_ps(ci + 8, c##i##1);                                                \
    else                                                                                                               \
      _mm256_maskstore_ps(ci, m0, c##i##0), _mm256_maskstore_ps(ci + 8, m1, c##i##1);                                  \
    if (t->relu) {                                                                                                     \
      float *ri = t->relu + i * ldc;                                                                                   \
      __m256 r0 = _mm256_max_ps(c##i##0, zero), r1 = _mm256_max_ps(c##i##1, zero); /* NaN, -0 -> +0 */                 \
      if (full)                                                                                                        \
        _mm256_storeu_ps(ri, r0), _mm256_storeu_ps(ri + 8, r1);                                                        \
      else                                                                                                             \
        _mm256_maskstore_ps(ri, m0, r0), _mm256_maskstore_ps(ri + 8, m1, r1);                                          \
    }                                                                                                                  \
  }
  ROWS(STORE)
#undef LOAD
#undef INIT
#undef FMA
#undef STORE
}

static __attribute__((target("avx2,fma"))) void tile_any(const tile_args *t, int64_t K, int mr, int nr) {
  if (nr == NR)
    tile(t, K, mr, NR, 1);
  else
    tile(t, K, mr, nr, 0);
}

/* Narrow outputs (N < 4) with rows of A and columns of B contiguous: dot products, eight
 * interleaved partial sums in a fixed order (a 6 x 1 tile would be FMA-latency bound). */
static __attribute__((target("avx2,fma"))) void dots(int64_t M, int64_t N, int64_t K, const float *a, int64_t ars,
                                                     const float *b, int64_t bjs, float *c, int64_t ldc,
                                                     const float *bias, sm__gemm_c0 c0) {
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < N; j++) {
      const float *ai = a + i * ars, *bj = b + j * bjs;
      __m256 s = _mm256_setzero_ps();
      int64_t k = 0;
      for (; k + 8 <= K; k += 8)
        s = _mm256_fmadd_ps(_mm256_loadu_ps(ai + k), _mm256_loadu_ps(bj + k), s);
      float v[8], r = c0 == SM_GEMM_ACC        ? c[i * ldc + j]
                      : c0 == SM_GEMM_BIAS_COL ? bias[j]
                      : c0 == SM_GEMM_BIAS_ROW ? bias[i]
                                               : 0.f;
      _mm256_storeu_ps(v, s);
      for (; k < K; k++)
        r += ai[k] * bj[k];
      c[i * ldc + j] = r + (((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7])));
    }
}

static void gemm_tiles(int64_t M, int64_t N, int64_t K, const float *a, int64_t ars, int64_t acs, const float *b,
                       int64_t bks, int64_t bjs, float *c, int64_t ldc, const float *bias, sm__gemm_c0 c0, float *relu,
                       const float *gate) {
  _Alignas(64) float panel[KMAX * NR]; /* whole cache lines: no load of a panel row splits one */
  for (int64_t j0 = 0; j0 < N; j0 += NR) {
    int nr = (int)(N - j0 < NR ? N - j0 : NR);
    tile_args t = {.a = a, .ars = ars, .acs = acs, .b = b + j0 * bjs, .ldb = bks, .ldc = ldc, .c0 = c0};
    if (bjs != 1) {                /* strided columns (B = W^T): copy the panel to [K][NR] */
      for (int j = 0; j < nr; j++) /* reads along k: contiguous when bks == 1 (B = W^T) */
        for (int64_t k = 0; k < K; k++)
          panel[k * NR + j] = b[k * bks + (j0 + j) * bjs];
      t.b = panel, t.ldb = NR;
    }
    for (int64_t i0 = 0; i0 < M; i0 += MR) {
      t.a = a + i0 * ars, t.c = c + i0 * ldc + j0, t.relu = relu ? relu + i0 * ldc + j0 : NULL;
      t.gate = gate ? gate + i0 * ldc + j0 : NULL;
      t.bias = c0 == SM_GEMM_BIAS_COL ? bias + j0 : c0 == SM_GEMM_BIAS_ROW ? bias + i0 : NULL;
      tile_any(&t, K, (int)(M - i0 < MR ? M - i0 : MR), nr);
    }
  }
}

/* cblas's view of X(r,c) = x[r*rs + c*cs], R x C: row-major (NoTrans, ld = rs) or transposed
 * (Trans, ld = cs). A single row or column fits either; its ld must still cover it (cblas checks
 * ld >= C, or >= R when transposed). */
static CBLAS_TRANSPOSE view(int64_t R, int64_t C, int64_t rs, int64_t cs, int *ld) {
  if ((cs == 1 || C == 1) && (rs >= C || R == 1)) {
    *ld = (int)(R == 1 ? C : rs);
    return CblasNoTrans;
  }
  *ld = (int)(C == 1 ? R : cs);
  return CblasTrans;
}

static void gemm_blas(int64_t M, int64_t N, int64_t K, const float *a, int64_t ars, int64_t acs, const float *b,
                      int64_t bks, int64_t bjs, float *c, int64_t ldc, const float *bias, sm__gemm_c0 c0) {
  for (int64_t i = 0; i < M && c0 == SM_GEMM_BIAS_COL; i++)
    memcpy(c + i * ldc, bias, (size_t)N * sizeof *c);
  for (int64_t i = 0; i < M && c0 == SM_GEMM_BIAS_ROW; i++)
    for (int64_t j = 0; j < N; j++)
      c[i * ldc + j] = bias[i];
  int lda, ldb;
  CBLAS_TRANSPOSE ta = view(M, K, ars, acs, &lda), tb = view(K, N, bks, bjs, &ldb);
  cblas_sgemm(CblasRowMajor, ta, tb, (int)M, (int)N, (int)K, 1.f, a, lda, b, ldb, c0 != SM_GEMM_ZERO ? 1.f : 0.f, c,
              (int)ldc);
}

void sm__gemm(int64_t M, int64_t N, int64_t K, const float *a, int64_t ars, int64_t acs, const float *b, int64_t bks,
              int64_t bjs, float *c, int64_t ldc, const float *bias, sm__gemm_c0 c0, float *relu, const float *gate) {
  if (M <= 0 || N <= 0) return;
  int simd = sm__cpu_avx2_fma();
  if (simd && K <= KMAX && !(N < 4 && acs == 1 && bks == 1)) {
    gemm_tiles(M, N, K, a, ars, acs, b, bks, bjs, c, ldc, bias, c0, relu, gate);
    return;
  }
  if (simd && K <= KMAX)
    dots(M, N, K, a, ars, b, bjs, c, ldc, bias, c0);
  else
    gemm_blas(M, N, K, a, ars, acs, b, bks, bjs, c, ldc, bias, c0);
  for (int64_t i = 0; i < M && (relu || gate); i++)
    for (int64_t j = 0; j < N; j++) {
      float *cij = c + i * ldc + j;
      if (gate) *cij = 0.f + (gate[i * ldc + j] > 0.f ? *cij : 0.f);
      if (relu) relu[i * ldc + j] = *cij > 0.f ? *cij : 0.f;
    }
}
