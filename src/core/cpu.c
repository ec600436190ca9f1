/* What the machine offers the kernels: the hand-written kernels (lm's Gram tiles, the k-means pass,
 * the nn GEMM tile) are compiled for AVX2 + FMA beside a portable path and pick one at run time
 * here; the large arrays they stream (table columns, the model frame) ask for huge pages. */
#include <stdlib.h>
#include <sys/mman.h>

#include "sisma/core.h"

int sm__cpu_avx2_fma(void) {
  static int has = -1;
  if (has < 0) {
    __builtin_cpu_init();
    has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }
  return has;
}

/* Arrays from 4 MiB on are 2 MiB-aligned and advised into transparent huge pages (honoured where
 * the kernel's setting is "madvise", Debian's default, or "always"): a streaming pass then misses
 * the TLB once per 2 MiB instead of once per 4 KiB, each miss a page walk (a two-level one in a
 * VM: docs/performance.md, statistics, session 4). Advice only: where it is not honoured the
 * memory is ordinary. Given before first touch, so that the pages are faulted in huge. */
void *sm__alloc_big(size_t bytes) {
  const size_t huge = (size_t)2 << 20;
  if (bytes < 2 * huge) return malloc(bytes ? bytes : 1);
  size_t len = (bytes + huge - 1) & ~(huge - 1);
  void *p = aligned_alloc(huge, len);
#ifdef MADV_HUGEPAGE
  if (p) (void)madvise(p, len, MADV_HUGEPAGE);
#endif
  return p;
}
