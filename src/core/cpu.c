/* What the machine offers the kernels: the hand-written kernels (lm's Gram tiles, the k-means pass,
 * the nn GEMM tile) are compiled for AVX2 + FMA beside a portable path and pick one at run time
 * here; the large arrays they stream (table columns, the model frame) ask for huge pages. */
#include <stdlib.h>
#include <string.h>
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
 * VM). Advice only: where it is not honoured the memory is ordinary. Given before first touch, so
 * that the pages are faulted in huge. The first touch of a huge page can cost more than of as many
 * small ones (the kernel zeroes 2 MiB at once and may have to compact memory first: on this
 * project's VMs one 1-rank `sisma lm` of 1e6 rows in four built its frame in 0.52 s instead of
 * about 0.1 s, though huge pages won on the whole at 1 and 2 ranks: docs/performance.md,
 * statistics, sessions 4 and 5), so SISMA_HUGEPAGES=0 in the environment turns them off; the
 * arrays are then 64-byte aligned, so that the kernels' rows start on cache lines. */
void *sm__alloc_big(size_t bytes) {
  static int use = -1;
  if (use < 0) use = !getenv("SISMA_HUGEPAGES") || strcmp(getenv("SISMA_HUGEPAGES"), "0");
  const size_t huge = (size_t)2 << 20;
  if (bytes < 2 * huge) return malloc(bytes ? bytes : 1);
  if (!use) return aligned_alloc(64, (bytes + 63) & ~(size_t)63);
  size_t len = (bytes + huge - 1) & ~(huge - 1);
  void *p = aligned_alloc(huge, len);
#ifdef MADV_HUGEPAGE
  if (p) (void)madvise(p, len, MADV_HUGEPAGE);
#endif
  return p;
}
