/* One read-only pass over n doubles at memory bandwidth, for bench/stats_bw.c and
 * bench/stats_fit.c: four independent AVX2 sums (a scalar sum is bound by the add latency near
 * this machine's bandwidth). */
#ifndef SISMA_BENCH_STATS_PASS_H
#define SISMA_BENCH_STATS_PASS_H
#include <stdint.h>
#include <string.h>

typedef double v4 __attribute__((vector_size(32)));
__attribute__((target("avx2"))) static double pass(const double *x, int64_t n) {
  v4 a = {0}, b = {0}, c = {0}, d = {0};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    v4 u, v, w, z;
    memcpy(&u, x + i, 32), memcpy(&v, x + i + 4, 32), memcpy(&w, x + i + 8, 32), memcpy(&z, x + i + 12, 32);
    a += u, b += v, c += w, d += z;
  }
  a += b + c + d;
  double s = a[0] + a[1] + a[2] + a[3];
  for (; i < n; i++)
    s += x[i];
  return s;
}
#endif
