/* What the CPU runs: the hand-written kernels (lm's Gram tiles, the k-means pass, the nn GEMM
 * tile) are compiled for AVX2 + FMA beside a portable path and pick one at run time here. */
#include "sisma/core.h"

int sm__cpu_avx2_fma(void) {
  static int has = -1;
  if (has < 0) {
    __builtin_cpu_init();
    has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }
  return has;
}
