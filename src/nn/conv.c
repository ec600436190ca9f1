/* The GEMM layers: dense, conv1d (stride, padding, dilation) and transposed conv1d, all through
 * OpenBLAS sgemm. Weight layouts are torch's so weights load unchanged from PyTorch:
 *   dense  W [out][in] (in = C*T of the input sample), b [out]
 *   conv   W [Cout][Cin][k], b [Cout]       y_s = W col(x_s) + b, col = im2col [Cin*k][Tout]
 *   convt  W [Cin][Cout][k], b [Cout]       y_s = col2im(W^T x_s) + b (the adjoint of conv)
 * Convolutions run per sample with one im2col scratch, so memory is O(Cin*k*T), not O(N*...). */
#include <cblas.h>
#include <string.h>

#include "internal.h"

static int64_t seg_at(const sm_nn_batch *b, int g) { return b->seg ? b->seg[g] : (g ? b->n : 0); }
static int nseg(const sm_nn_batch *b) { return b->seg ? b->nseg : 1; }

/* ---- dense ---- */
/* s[j] += sum_i a[i][j], a [n][m]: rows in order, so the loop over j vectorizes. */
__attribute__((target_clones("avx2", "default"))) static void colsum(const float *restrict a, int64_t n, int64_t m,
                                                                     float *restrict s) {
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < m; j++)
      s[j] += a[i * m + j];
}

/* GEMMs run per segment so that a sample's result never depends on how many other samples share
 * its call (the deterministic mode's segments are the same at every rank count). */
void sm__dense_fwd(const sm_layer *l, const float *w, const sm_nn_batch *b, const float *x, float *y, float *relu) {
  int64_t in = sm__size(l->in), out = l->out.c;
  for (int g = 0; g < nseg(b) && b->n; g++) {
    int64_t s0 = seg_at(b, g), ns = seg_at(b, g + 1) - s0; /* y = x W^T + bias */
    sm__gemm(ns, out, in, x + s0 * in, in, 1, w, 1, in, y + s0 * out, out, w + out * in, SM_GEMM_BIAS_COL,
             relu ? relu + s0 * out : NULL, NULL);
  }
}

void sm__dense_bwd(const sm_layer *l, const float *w, float *grad, int64_t gstride, const sm_nn_batch *b,
                   const float *x, const float *dy, float *dx, int acc, const float *gate) {
  int64_t in = sm__size(l->in), out = l->out.c;
  for (int g = 0; g < nseg(b); g++) {
    int64_t s0 = seg_at(b, g), ns = seg_at(b, g + 1) - s0;
    float *dw = grad + g * gstride, *db = dw + out * in;
    memset(ns ? db : dw, 0, (size_t)(ns ? out : out * in + out) * sizeof *dw);
    if (!ns) continue;
    sm__gemm(out, in, ns, dy + s0 * out, 1, out, x + s0 * in, in, 1, dw, in, NULL, SM_GEMM_ZERO, NULL,
             NULL); /* dW = dy^T x */
    colsum(dy + s0 * out, ns, out, db);
    if (dx)
      sm__gemm(ns, in, out, dy + s0 * out, out, 1, w, in, 1, dx + s0 * in, in, NULL, acc ? SM_GEMM_ACC : SM_GEMM_ZERO,
               NULL, gate ? gate + s0 * in : NULL); /* dx (+)= dy W */
  }
}

/* ---- im2col / col2im over one sample: col[c*k + j][t] = x[c][t*stride - pad + j*dil] ---- */
static void im2col(const float *x, int64_t C, int64_t T, int64_t k, int64_t stride, int64_t pad, int64_t dil,
                   int64_t To, float *col) {
  for (int64_t c = 0; c < C; c++)
    for (int64_t j = 0; j < k; j++) {
      float *row = col + (c * k + j) * To;
      const float *xc = x + c * T;
      int64_t off = j * dil - pad;
      if (stride == 1) {
        /* valid t: 0 <= t + off < T */
        int64_t lo = off < 0 ? -off : 0, hi = T - off < To ? T - off : To;
        if (hi < lo) hi = lo;
        memset(row, 0, (size_t)lo * sizeof *row);
        if (hi > lo) memcpy(row + lo, xc + lo + off, (size_t)(hi - lo) * sizeof *row);
        memset(row + hi, 0, (size_t)(To - hi) * sizeof *row);
      } else {
        for (int64_t t = 0; t < To; t++) {
          int64_t i = t * stride + off;
          row[t] = i >= 0 && i < T ? xc[i] : 0.f;
        }
      }
    }
}

__attribute__((target_clones("avx2", "default"))) static void col2im_add(const float *col, int64_t C, int64_t T,
                                                                         int64_t k, int64_t stride, int64_t pad,
                                                                         int64_t dil, int64_t To, float *x) {
  for (int64_t c = 0; c < C; c++)
    for (int64_t j = 0; j < k; j++) {
      const float *row = col + (c * k + j) * To;
      float *xc = x + c * T;
      int64_t off = j * dil - pad;
      if (stride == 1) { /* valid t: 0 <= t + off < T, one vectorizable run */
        int64_t lo = off < 0 ? -off : 0, hi = T - off < To ? T - off : To;
        float *restrict xo = xc + off;
        const float *restrict r = row;
        for (int64_t t = lo; t < hi; t++)
          xo[t] += r[t];
        continue;
      }
      for (int64_t t = 0; t < To; t++) {
        int64_t i = t * stride + off;
        if (i >= 0 && i < T) xc[i] += row[t];
      }
    }
}

int64_t sm__conv_col_size(const sm_layer *l) {
  if (l->kind == SM_LAYER_CONV) return l->in.c * l->k * l->out.t;
  return l->out.c * l->k * l->in.t; /* convt */
}

/* ---- conv1d ---- */
void sm__conv_fwd(const sm_layer *l, const float *w, int64_t n, const float *x, float *y, float *col, float *relu) {
  int64_t Ci = l->in.c, T = l->in.t, Co = l->out.c, To = l->out.t, K = Ci * l->k;
  const float *bias = w + Co * K;
  for (int64_t s = 0; s < n; s++) {
    im2col(x + s * Ci * T, Ci, T, l->k, l->stride, l->pad, l->dil, To, col);
    sm__gemm(Co, To, K, w, K, 1, col, To, 1, y + s * Co * To, To, bias, SM_GEMM_BIAS_ROW,
             relu ? relu + s * Co * To : NULL, NULL); /* y_s = W col + b */
  }
}

void sm__conv_bwd(const sm_layer *l, const float *w, float *grad, int64_t gstride, const sm_nn_batch *b, const float *x,
                  const float *dy, float *dx, float *col) {
  int64_t Ci = l->in.c, T = l->in.t, Co = l->out.c, To = l->out.t, K = Ci * l->k;
  float *dcol = col + K * To;
  for (int g = 0; g < nseg(b); g++) {
    float *dw = grad + g * gstride, *db = dw + Co * K;
    memset(dw, 0, (size_t)(Co * K + Co) * sizeof *dw);
    for (int64_t s = seg_at(b, g); s < seg_at(b, g + 1); s++) {
      const float *dys = dy + s * Co * To;
      im2col(x + s * Ci * T, Ci, T, l->k, l->stride, l->pad, l->dil, To, col);
      sm__gemm(Co, K, To, dys, To, 1, col, 1, To, dw, K, NULL, SM_GEMM_ACC, NULL, NULL); /* dW += dy_s col^T */
      for (int64_t o = 0; o < Co; o++)
        db[o] += sm__sum(dys + o * To, To);
      if (dx) {
        sm__gemm(K, To, Co, w, 1, K, dys, To, 1, dcol, To, NULL, SM_GEMM_ZERO, NULL, NULL); /* dcol = W^T dy_s */
        col2im_add(dcol, Ci, T, l->k, l->stride, l->pad, l->dil, To, dx + s * Ci * T);
      }
    }
  }
}

/* ---- transposed conv1d: the adjoint of a conv mapping [Cout][Tout] -> [Cin][Tin] ---- */
void sm__convt_fwd(const sm_layer *l, const float *w, int64_t n, const float *x, float *y, float *col) {
  int64_t Ci = l->in.c, T = l->in.t, Co = l->out.c, To = l->out.t, K = Co * l->k;
  const float *bias = w + Ci * K;
  for (int64_t s = 0; s < n; s++) {
    float *ys = y + s * Co * To;
    for (int64_t o = 0; o < Co; o++)
      for (int64_t t = 0; t < To; t++)
        ys[o * To + t] = bias[o];
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)T, (int)Ci, 1.f, w, (int)K, x + s * Ci * T,
                (int)T, 0.f, col, (int)T);
    col2im_add(col, Co, To, l->k, l->stride, l->pad, l->dil, T, ys);
  }
}

void sm__convt_bwd(const sm_layer *l, const float *w, float *grad, int64_t gstride, const sm_nn_batch *b,
                   const float *x, const float *dy, float *dx, float *col) {
  int64_t Ci = l->in.c, T = l->in.t, Co = l->out.c, To = l->out.t, K = Co * l->k;
  for (int g = 0; g < nseg(b); g++) {
    float *dw = grad + g * gstride, *db = dw + Ci * K;
    memset(dw, 0, (size_t)(Ci * K + Co) * sizeof *dw);
    for (int64_t s = seg_at(b, g); s < seg_at(b, g + 1); s++) {
      const float *dys = dy + s * Co * To;
      im2col(dys, Co, To, l->k, l->stride, l->pad, l->dil, T, col); /* [Co*k][T] */
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)Ci, (int)K, (int)T, 1.f, x + s * Ci * T, (int)T, col,
                  (int)T, 1.f, dw, (int)K);
      for (int64_t o = 0; o < Co; o++)
        db[o] += sm__sum(dys + o * To, To);
      if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Ci, (int)T, (int)K, 1.f, w, (int)K, col, (int)T,
                    1.f, dx + s * Ci * T, (int)T);
    }
  }
}
