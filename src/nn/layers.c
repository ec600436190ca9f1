/* Parameter-free layers: pooling (max, average, global average), nearest upsampling,
 * element-wise activations and dropout. Shapes per sample are l->in and l->out; max pooling
 * saves the argmax (as a float index, exact below 2^24) in its per-sample aux state; dropout
 * saves its scaled mask, drawn from the counter-based generator as a function of
 * (seed, step, global sample id, layer, element) so it does not depend on the rank count. */
#include <math.h>
#include <string.h>

#include "internal.h"
#include "sisma/rng.h"

/* Max over windows of k with stride st; a[t] = index of the maximum (a float, exact below 2^24).
 * j outer, t inner and branch-free, so the loop over t vectorizes (random data would mispredict
 * a compare-and-branch half the time). A NaN propagates, as in torch. */
static inline __attribute__((always_inline)) void maxrow(const float *restrict x, float *restrict y, float *restrict a,
                                                         int64_t To64, int k, int st) {
  const int To = (int)To64; /* 32-bit indices: SSE2/AVX2 convert int32, not int64, to float */
  for (int t = 0; t < To; t++)
    y[t] = x[t * st], a[t] = (float)(t * st);
  for (int j = 1; j < k; j++)
    for (int t = 0; t < To; t++) {
      float cand = x[t * st + j], cur = y[t];
      int take = (cand > cur) | (cand != cand); /* bitwise: no branch */
      y[t] = take ? cand : cur;
      a[t] = take ? (float)(t * st + j) : a[t];
    }
}

/* The kernels below are cloned for AVX2 as static functions behind plain entry points: clang 14
 * leaves an external target_clones function unresolved for callers in other files. */
__attribute__((target_clones("avx2", "default"))) static void pool_fwd(const sm_layer *l, int64_t n, const float *x,
                                                                       float *y, float *aux) {
  int64_t C = l->in.c, T = l->in.t, To = l->out.t;
  for (int64_t s = 0; s < n; s++)
    for (int64_t c = 0; c < C; c++) {
      const float *xc = x + (s * C + c) * T;
      float *yc = y + (s * C + c) * To;
      switch (l->kind) {
      case SM_LAYER_MAXPOOL: {
        float *ac = aux + (s * C + c) * To;
        if (l->k == 4 && l->stride == 4)
          maxrow(xc, yc, ac, To, 4, 4); /* constants let the loop vectorize */
        else if (l->k == 2 && l->stride == 2)
          maxrow(xc, yc, ac, To, 2, 2);
        else
          maxrow(xc, yc, ac, To, (int)l->k, (int)l->stride);
        break;
      }
      case SM_LAYER_AVGPOOL:
        for (int64_t t = 0; t < To; t++) {
          float acc = 0.f;
          for (int64_t i = t * l->stride; i < t * l->stride + l->k; i++)
            acc += xc[i];
          yc[t] = acc / (float)l->k;
        }
        break;
      case SM_LAYER_GAP:
        yc[0] = sm__sum(xc, T) / (float)T;
        break;
      default: /* upsample */
        for (int64_t t = 0; t < To; t++)
          yc[t] = xc[t / l->k];
      }
    }
}
void sm__pool_fwd(const sm_layer *l, int64_t n, const float *x, float *y, float *aux) { pool_fwd(l, n, x, y, aux); }

void sm__pool_bwd(const sm_layer *l, int64_t n, const float *dy, float *dx, const float *aux) {
  int64_t C = l->in.c, T = l->in.t, To = l->out.t;
  for (int64_t s = 0; s < n; s++)
    for (int64_t c = 0; c < C; c++) {
      const float *dyc = dy + (s * C + c) * To;
      float *dxc = dx + (s * C + c) * T;
      switch (l->kind) {
      case SM_LAYER_MAXPOOL: {
        const float *ac = aux + (s * C + c) * To;
        for (int64_t t = 0; t < To; t++)
          dxc[(int64_t)ac[t]] += dyc[t];
        break;
      }
      case SM_LAYER_AVGPOOL:
        for (int64_t t = 0; t < To; t++) {
          float g = dyc[t] / (float)l->k;
          for (int64_t i = t * l->stride; i < t * l->stride + l->k; i++)
            dxc[i] += g;
        }
        break;
      case SM_LAYER_GAP: {
        float g = dyc[0] / (float)T;
        for (int64_t i = 0; i < T; i++)
          dxc[i] += g;
        break;
      }
      default:
        for (int64_t t = 0; t < To; t++)
          dxc[t / l->k] += dyc[t];
      }
    }
}

static inline float sigmoidf(float v) { return 1.f / (1.f + expf(-v)); }

__attribute__((target_clones("avx2", "default"))) static void act_fwd(const sm_layer *l, int64_t n,
                                                                      const float *restrict x, float *restrict y) {
  int64_t m = n * sm__size(l->in);
  float a = (float)l->alpha;
  switch (l->kind) {
  case SM_LAYER_RELU:
    for (int64_t i = 0; i < m; i++)
      y[i] = x[i] > 0.f ? x[i] : 0.f;
    break;
  case SM_LAYER_LEAKY:
    for (int64_t i = 0; i < m; i++)
      y[i] = x[i] > 0.f ? x[i] : a * x[i];
    break;
  case SM_LAYER_GELU: /* x Phi(x) with the exact erf (torch approximate='none') */
    for (int64_t i = 0; i < m; i++)
      y[i] = 0.5f * x[i] * (1.f + erff(x[i] * (float)M_SQRT1_2));
    break;
  case SM_LAYER_SILU:
    for (int64_t i = 0; i < m; i++)
      y[i] = x[i] * sigmoidf(x[i]);
    break;
  case SM_LAYER_TANH:
    for (int64_t i = 0; i < m; i++)
      y[i] = tanhf(x[i]);
    break;
  default: /* sigmoid */
    for (int64_t i = 0; i < m; i++)
      y[i] = sigmoidf(x[i]);
  }
}
void sm__act_fwd(const sm_layer *l, int64_t n, const float *restrict x, float *restrict y) { act_fwd(l, n, x, y); }

__attribute__((target_clones("avx2", "default"))) static void act_bwd(const sm_layer *l, int64_t n,
                                                                      const float *restrict x, const float *restrict y,
                                                                      const float *restrict dy, float *restrict dx,
                                                                      int acc) {
  int64_t m = n * sm__size(l->in);
  float a = (float)l->alpha;
  switch (l->kind) {
  case SM_LAYER_RELU:
    /* y > 0 exactly where x > 0 (NaN and -0 give y = +0): the mask reads the output, so a GEMM
     * that writes only the ReLU's output (model.c) need not keep its input. Both loads are
     * unconditional, so the loops vectorize. */
    if (!acc)
      for (int64_t i = 0; i < m; i++)
        dx[i] = 0.f + (y[i] > 0.f ? dy[i] : 0.f);
    else
      for (int64_t i = 0; i < m; i++) {
        float g = dy[i];
        dx[i] += y[i] > 0.f ? g : 0.f;
      }
    break;
  case SM_LAYER_LEAKY:
    for (int64_t i = 0; i < m; i++)
      dx[i] = (acc ? dx[i] : 0.f) + dy[i] * (x[i] > 0.f ? 1.f : a);
    break;
  case SM_LAYER_GELU: { /* d/dx x Phi(x) = Phi(x) + x phi(x) */
    const float k = (float)(0.5 * M_2_SQRTPI * M_SQRT1_2);
    for (int64_t i = 0; i < m; i++) {
      float cdf = 0.5f * (1.f + erff(x[i] * (float)M_SQRT1_2));
      dx[i] = (acc ? dx[i] : 0.f) + dy[i] * (cdf + x[i] * k * expf(-0.5f * x[i] * x[i]));
    }
    break;
  }
  case SM_LAYER_SILU:
    for (int64_t i = 0; i < m; i++) {
      float s = sigmoidf(x[i]);
      dx[i] = (acc ? dx[i] : 0.f) + dy[i] * s * (1.f + x[i] * (1.f - s));
    }
    break;
  case SM_LAYER_TANH:
    for (int64_t i = 0; i < m; i++)
      dx[i] = (acc ? dx[i] : 0.f) + dy[i] * (1.f - y[i] * y[i]);
    break;
  default:
    for (int64_t i = 0; i < m; i++)
      dx[i] = (acc ? dx[i] : 0.f) + dy[i] * y[i] * (1.f - y[i]);
  }
}
void sm__act_bwd(const sm_layer *l, int64_t n, const float *restrict x, const float *restrict y,
                 const float *restrict dy, float *restrict dx, int acc) {
  act_bwd(l, n, x, y, dy, dx, acc);
}

/* Sinusoidal embedding of a scalar t (Vaswani et al. 2017; Ho et al. 2020 for diffusion steps):
 * y = [cos(t f_0) .. cos(t f_{h-1}), sin(t f_0) .. sin(t f_{h-1})], f_i = 10000^(-i/h), h = D/2. */
void sm__embed_fwd(const sm_layer *l, int64_t n, const float *x, float *y) {
  int64_t h = l->out.c / 2;
  for (int64_t s = 0; s < n; s++)
    for (int64_t i = 0; i < h; i++) {
      double a = (double)x[s] * exp(-log(10000.0) * (double)i / (double)h);
      y[s * 2 * h + i] = (float)cos(a), y[s * 2 * h + h + i] = (float)sin(a);
    }
}

void sm__embed_bwd(const sm_layer *l, int64_t n, const float *x, const float *dy, float *dx) {
  int64_t h = l->out.c / 2;
  for (int64_t s = 0; s < n; s++) {
    double g = 0;
    for (int64_t i = 0; i < h; i++) {
      double f = exp(-log(10000.0) * (double)i / (double)h), a = (double)x[s] * f;
      g += f * (-sin(a) * dy[s * 2 * h + i] + cos(a) * dy[s * 2 * h + h + i]);
    }
    dx[s] += (float)g;
  }
}

void sm__dropout_fwd(const sm_layer *l, int li, const sm_nn_batch *b, const float *x, float *y, float *aux) {
  int64_t m = sm__size(l->in);
  if (!b->train || l->p <= 0.0) {
    memcpy(y, x, (size_t)(b->n * m) * sizeof *y);
    for (int64_t i = 0; i < b->n * m; i++)
      aux[i] = 1.f;
    return;
  }
  float keep = (float)(1.0 / (1.0 - l->p));
  uint64_t seed = b->seed ^ (UINT64_C(0x9E3779B97F4A7C15) * (uint64_t)(li + 1));
  for (int64_t s = 0; s < b->n; s++) {
    uint64_t stream = b->id ? (uint64_t)b->id[s] : (uint64_t)s;
    for (int64_t e = 0; e < m; e++) {
      double u = (double)(sm_rng_at(seed, stream, b->step * (uint64_t)m + (uint64_t)e) >> 11) * 0x1.0p-53;
      aux[s * m + e] = u < l->p ? 0.f : keep;
      y[s * m + e] = x[s * m + e] * aux[s * m + e];
    }
  }
}

void sm__dropout_bwd(const sm_layer *l, int64_t n, const float *restrict dy, float *restrict dx,
                     const float *restrict aux) {
  for (int64_t i = 0; i < n * sm__size(l->in); i++)
    dx[i] += dy[i] * aux[i];
}
