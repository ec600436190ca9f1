/* Normalisation layers. Batch norm (Ioffe & Szegedy 2015) normalises each channel over the whole
 * *global* batch and time: the per-segment sums (count, sum x, sum x^2; in backward sum dy and
 * sum dy*xhat) are reduced through the batch's reducer, so every rank sees the same statistics
 * (synchronised batch norm) and, in deterministic mode, sums them in a fixed order. Running
 * statistics follow torch: r = (1 - momentum) r + momentum * stat, with the unbiased variance.
 * Layer norm (Ba et al. 2016) normalises each sample over [C][T] with an element-wise affine;
 * group norm (Wu & He 2018) over groups of C/G channels and T with a per-channel affine. Both
 * use the biased variance and need no communication.
 * Saved state: aux per sample = xhat [C][T] (+ 1/std per sample or group); stat = mean, 1/std. */
#include <math.h>
#include <string.h>

#include "internal.h"

static int64_t seg_at(const sm_nn_batch *b, int g) { return b->seg ? b->seg[g] : (g ? b->n : 0); }
static int nseg(const sm_nn_batch *b) { return b->n == 0 ? 0 : b->seg ? b->nseg : 1; }

static sm_status bn_fwd(sm_ctx *ctx, sm_model *m, int li, const sm_nn_batch *b, const float *x, float *y) {
  const sm_layer *l = &m->L[li];
  int64_t C = l->in.c, T = l->in.t;
  const float *gamma = m->param + l->off_param, *beta = gamma + C;
  float *rmean = m->buf + l->off_buf, *rvar = rmean + C;
  float *mean = m->stat[li], *invstd = mean + C, *xhat = m->aux[li];
  if (b->train) {
    int64_t nr = 1 + 2 * C;
    for (int g = 0; g < nseg(b); g++) {
      double *p = m->red + g * nr;
      memset(p, 0, (size_t)nr * sizeof *p);
      p[0] = (double)((seg_at(b, g + 1) - seg_at(b, g)) * T);
      for (int64_t s = seg_at(b, g); s < seg_at(b, g + 1); s++)
        for (int64_t c = 0; c < C; c++) {
          const float *xc = x + (s * C + c) * T;
          double s1 = 0, s2 = 0;
          for (int64_t t = 0; t < T; t++)
            s1 += xc[t], s2 += (double)xc[t] * xc[t];
          p[1 + c] += s1, p[1 + C + c] += s2;
        }
    }
    double *tot = m->red + (int64_t)m->segmax * nr;
    SM_TRY(ctx, sm__nn_reduce(ctx, m, b, nr, tot));
    double cnt = tot[0];
    mean[2 * C] = (float)cnt;
    if (cnt <= 0) return SM_OK;
    for (int64_t c = 0; c < C; c++) {
      double mu = tot[1 + c] / cnt, var = fmax(tot[1 + C + c] / cnt - mu * mu, 0.0);
      mean[c] = (float)mu;
      invstd[c] = (float)(1.0 / sqrt(var + l->eps));
      double unbiased = cnt > 1 ? var * cnt / (cnt - 1) : var;
      rmean[c] = (float)((1 - l->momentum) * rmean[c] + l->momentum * mu);
      rvar[c] = (float)((1 - l->momentum) * rvar[c] + l->momentum * unbiased);
    }
  } else {
    for (int64_t c = 0; c < C; c++)
      mean[c] = rmean[c], invstd[c] = (float)(1.0 / sqrt((double)rvar[c] + l->eps));
  }
  for (int64_t s = 0; s < b->n; s++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t t = 0; t < T; t++) {
        int64_t i = (s * C + c) * T + t;
        xhat[i] = (x[i] - mean[c]) * invstd[c];
        y[i] = gamma[c] * xhat[i] + beta[c];
      }
  return SM_OK;
}

static sm_status bn_bwd(sm_ctx *ctx, sm_model *m, int li, const sm_nn_batch *b, const float *dy, float *dx) {
  const sm_layer *l = &m->L[li];
  int64_t C = l->in.c, T = l->in.t, nr = 2 * C;
  const float *gamma = m->param + l->off_param, *invstd = m->stat[li] + C, *xhat = m->aux[li];
  for (int g = 0; g < nseg(b); g++) {
    double *p = m->red + g * nr;
    memset(p, 0, (size_t)nr * sizeof *p);
    for (int64_t s = seg_at(b, g); s < seg_at(b, g + 1); s++)
      for (int64_t c = 0; c < C; c++) {
        const float *d = dy + (s * C + c) * T, *xh = xhat + (s * C + c) * T;
        double s1 = 0, s2 = 0;
        for (int64_t t = 0; t < T; t++)
          s1 += d[t], s2 += (double)d[t] * xh[t];
        p[c] += s1, p[C + c] += s2;
      }
    float *dg = m->grad + (int64_t)g * m->n_param + l->off_param;
    for (int64_t c = 0; c < C; c++)
      dg[c] = (float)p[C + c], dg[C + c] = (float)p[c];
  }
  if (!b->train) {
    for (int64_t i = 0; i < b->n * C * T; i++)
      dx[i] += dy[i] * gamma[(i / T) % C] * invstd[(i / T) % C];
    return SM_OK;
  }
  double *tot = m->red + (int64_t)m->segmax * (1 + 2 * C);
  SM_TRY(ctx, sm__nn_reduce(ctx, m, b, nr, tot));
  double M = m->stat[li][2 * C]; /* global count N*T from the forward */
  for (int64_t s = 0; s < b->n; s++)
    for (int64_t c = 0; c < C; c++) {
      double k = gamma[c] * invstd[c] / M, a = tot[c], bb = tot[C + c];
      for (int64_t t = 0; t < T; t++) {
        int64_t i = (s * C + c) * T + t;
        dx[i] += (float)(k * (M * dy[i] - a - xhat[i] * bb));
      }
    }
  return SM_OK;
}

/* Layer and group norm: per sample, groups of `gc` channels (layer norm: one group of C). */
static void gn_fwd(const sm_layer *l, const float *gamma, const float *beta, int64_t n, const float *x, float *y,
                   float *aux) {
  int64_t C = l->in.c, T = l->in.t, G = l->kind == SM_LAYER_LAYERNORM ? 1 : l->groups, gc = C / G, M = gc * T;
  for (int64_t s = 0; s < n; s++) {
    float *xhat = aux + s * l->n_aux, *inv = xhat + C * T;
    for (int64_t g = 0; g < G; g++) {
      const float *xg = x + s * C * T + g * M;
      double s1 = 0, s2 = 0;
      for (int64_t i = 0; i < M; i++)
        s1 += xg[i];
      double mu = s1 / (double)M;
      for (int64_t i = 0; i < M; i++)
        s2 += (xg[i] - mu) * (xg[i] - mu);
      float is = (float)(1.0 / sqrt(s2 / (double)M + l->eps));
      inv[g] = is;
      for (int64_t i = 0; i < M; i++)
        xhat[g * M + i] = (float)((xg[i] - mu) * is);
    }
    for (int64_t i = 0; i < C * T; i++) {
      int64_t a = l->kind == SM_LAYER_LAYERNORM ? i : i / T;
      y[s * C * T + i] = gamma[a] * xhat[i] + beta[a];
    }
  }
}

static void gn_bwd(const sm_layer *l, const float *gamma, float *grad, int64_t gstride, const sm_nn_batch *b,
                   const float *dy, float *dx, const float *aux) {
  int ln = l->kind == SM_LAYER_LAYERNORM;
  int64_t C = l->in.c, T = l->in.t, G = ln ? 1 : l->groups, gc = C / G, M = gc * T, na = ln ? C * T : C;
  for (int g = 0; g < (b->seg ? b->nseg : 1); g++) {
    float *dg = grad + g * gstride, *db = dg + na;
    memset(dg, 0, (size_t)(2 * na) * sizeof *dg);
    for (int64_t s = seg_at(b, g); s < seg_at(b, g + 1); s++) {
      const float *xhat = aux + s * l->n_aux, *d = dy + s * C * T;
      for (int64_t i = 0; i < C * T; i++) {
        int64_t a = ln ? i : i / T;
        dg[a] += d[i] * xhat[i];
        db[a] += d[i];
      }
    }
  }
  for (int64_t s = 0; s < b->n; s++) {
    const float *xhat = aux + s * l->n_aux, *inv = xhat + C * T, *d = dy + s * C * T;
    float *o = dx + s * C * T;
    for (int64_t g = 0; g < G; g++) {
      double a = 0, bb = 0;
      for (int64_t i = g * M; i < (g + 1) * M; i++) {
        double dxh = (double)d[i] * gamma[ln ? i : i / T];
        a += dxh, bb += dxh * xhat[i];
      }
      for (int64_t i = g * M; i < (g + 1) * M; i++) {
        double dxh = (double)d[i] * gamma[ln ? i : i / T];
        o[i] += (float)(inv[g] / (double)M * ((double)M * dxh - a - xhat[i] * bb));
      }
    }
  }
}

sm_status sm__norm_fwd(sm_ctx *ctx, sm_model *m, int li, const sm_nn_batch *b, const float *x, float *y) {
  const sm_layer *l = &m->L[li];
  if (l->kind == SM_LAYER_BATCHNORM) return bn_fwd(ctx, m, li, b, x, y);
  int64_t na = l->kind == SM_LAYER_LAYERNORM ? sm__size(l->in) : l->in.c;
  const float *gamma = m->param + l->off_param;
  gn_fwd(l, gamma, gamma + na, b->n, x, y, m->aux[li]);
  return SM_OK;
}

sm_status sm__norm_bwd(sm_ctx *ctx, sm_model *m, int li, const sm_nn_batch *b, const float *dy, float *dx) {
  const sm_layer *l = &m->L[li];
  if (l->kind == SM_LAYER_BATCHNORM) return bn_bwd(ctx, m, li, b, dy, dx);
  gn_bwd(l, m->param + l->off_param, m->grad + l->off_param, m->n_param, b, dy, dx, m->aux[li]);
  return SM_OK;
}
