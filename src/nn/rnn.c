/* Recurrent layers, GRU (Cho et al. 2014) and LSTM (Hochreiter & Schmidhuber 1997), with torch's
 * equations, gate order and parameter layout (W_ih [G][C], W_hh [G][H], b_ih [G], b_hh [G];
 * GRU gates r z n, G = 3H; LSTM gates i f g o, G = 4H), initial state zero. The input [C][T] is
 * a sequence of T vectors of C features; the output is every hidden state [H][T] or, with
 * last=1, the final one [H][1]. Backward is back-propagation through time over the whole
 * window.
 *   GRU:  r = s(Wir x + bir + Whr h + bhr)   z = s(Wiz x + biz + Whz h + bhz)
 *         n = tanh(Win x + bin + r (Whn h + bhn))   h' = (1 - z) n + z h
 *   LSTM: i, f, o = s(...), g = tanh(...)   c' = f c + i g   h' = o tanh(c')
 * Saved per sample and step (aux [T][S]): GRU h, r, z, n, Whn h + bhn (S = 5H); LSTM h, c, i,
 * f, g, o (S = 6H). The input projections of all steps are one GEMM per sample; the recurrent
 * projection one GEMM per step over the batch (per segment, so results do not depend on the
 * batch split). */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "internal.h"

static inline float sigm(float v) { return 1.f / (1.f + expf(-v)); }

int64_t sm__rnn_gates(const sm_layer *l) { return (l->kind == SM_LAYER_GRU ? 3 : 4) * l->groups; }
int64_t sm__rnn_state(const sm_layer *l) { return (l->kind == SM_LAYER_GRU ? 5 : 6) * l->groups; }
/* scratch floats for a batch of n: input projections [n][G][T], recurrent [n][G], h/c [2][n][H] */
int64_t sm__rnn_scratch(const sm_layer *l, int64_t n) {
  int64_t G = sm__rnn_gates(l), H = l->groups;
  return n * (G * l->in.t + G + 4 * H) + 1;
}

static int64_t seg_at(const sm_nn_batch *b, int g) { return b->seg ? b->seg[g] : (g ? b->n : 0); }
static int nseg(const sm_nn_batch *b) { return b->seg ? b->nseg : 1; }

void sm__rnn_fwd(const sm_layer *l, const float *w, const sm_nn_batch *b, const float *x, float *y, float *aux,
                 float *scratch) {
  const int gru = l->kind == SM_LAYER_GRU;
  const int64_t C = l->in.c, T = l->in.t, H = l->groups, G = sm__rnn_gates(l), S = sm__rnn_state(l), n = b->n;
  const float *Wih = w, *Whh = w + G * C, *bih = Whh + G * H, *bhh = bih + G;
  float *xp = scratch, *hp = xp + n * G * T, *h = hp + n * G, *c = h + n * H;
  for (int64_t s = 0; s < n; s++) { /* input projections of every step: [G][T] = Wih [G][C] x [C][T] */
    float *o = xp + s * G * T;
    for (int64_t j = 0; j < G; j++)
      for (int64_t t = 0; t < T; t++)
        o[j * T + t] = bih[j];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)G, (int)T, (int)C, 1.f, Wih, (int)C, x + s * C * T,
                (int)T, 1.f, o, (int)T);
  }
  memset(h, 0, (size_t)(2 * n * H) * sizeof *h);
  for (int64_t t = 0; t < T; t++) {
    for (int64_t s = 0; s < n; s++)
      memcpy(hp + s * G, bhh, (size_t)G * sizeof *hp);
    for (int g = 0; g < nseg(b) && n; g++) { /* hp [n][G] += h [n][H] Whh^T */
      int64_t s0 = seg_at(b, g), ns = seg_at(b, g + 1) - s0;
      if (ns)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)ns, (int)G, (int)H, 1.f, h + s0 * H, (int)H, Whh,
                    (int)H, 1.f, hp + s0 * G, (int)G);
    }
    for (int64_t s = 0; s < n; s++) {
      const float *xs = xp + s * G * T, *hs = hp + s * G;
      float *hh = h + s * H, *cc = c + s * H, *a = aux + (s * T + t) * S;
      for (int64_t k = 0; k < H; k++) {
        if (gru) {
          float r = sigm(xs[k * T + t] + hs[k]), z = sigm(xs[(H + k) * T + t] + hs[H + k]), hn = hs[2 * H + k];
          float nn = tanhf(xs[(2 * H + k) * T + t] + r * hn);
          hh[k] = (1.f - z) * nn + z * hh[k];
          a[k] = hh[k], a[H + k] = r, a[2 * H + k] = z, a[3 * H + k] = nn, a[4 * H + k] = hn;
        } else {
          float i = sigm(xs[k * T + t] + hs[k]), f = sigm(xs[(H + k) * T + t] + hs[H + k]);
          float gg = tanhf(xs[(2 * H + k) * T + t] + hs[2 * H + k]), o = sigm(xs[(3 * H + k) * T + t] + hs[3 * H + k]);
          cc[k] = f * cc[k] + i * gg;
          hh[k] = o * tanhf(cc[k]);
          a[k] = hh[k], a[H + k] = cc[k], a[2 * H + k] = i, a[3 * H + k] = f, a[4 * H + k] = gg, a[5 * H + k] = o;
        }
      }
    }
  }
  for (int64_t s = 0; s < n; s++) /* outputs [H][T] or the last state [H][1] */
    for (int64_t k = 0; k < H; k++) {
      if (l->out.t == 1)
        y[s * H + k] = aux[(s * T + T - 1) * S + k];
      else
        for (int64_t t = 0; t < T; t++)
          y[(s * H + k) * T + t] = aux[(s * T + t) * S + k];
    }
}

void sm__rnn_bwd(const sm_layer *l, const float *w, float *grad, int64_t gstride, const sm_nn_batch *b, const float *x,
                 const float *dy, float *dx, const float *aux, float *scratch) {
  const int gru = l->kind == SM_LAYER_GRU;
  const int64_t C = l->in.c, T = l->in.t, H = l->groups, G = sm__rnn_gates(l), S = sm__rnn_state(l), n = b->n;
  const float *Wih = w, *Whh = w + G * C;
  float *dxp = scratch, *dhp = dxp + n * G * T, *dh = dhp + n * G, *dc = dh + n * H;
  memset(dh, 0, (size_t)(2 * n * H) * sizeof *dh);
  for (int g = 0; g < nseg(b); g++)
    memset(grad + g * gstride, 0, (size_t)l->n_param * sizeof *grad);
  for (int64_t t = T - 1; t >= 0; t--) {
    for (int64_t s = 0; s < n; s++) {
      const float *a = aux + (s * T + t) * S, *ap = t ? aux + (s * T + t - 1) * S : NULL;
      float *d = dh + s * H, *dcs = dc + s * H, *gx = dxp + s * G * T, *gh = dhp + s * G;
      for (int64_t k = 0; k < H; k++) {
        float dhk = d[k] + (l->out.t == 1 ? (t == T - 1 ? dy[s * H + k] : 0.f) : dy[(s * H + k) * T + t]);
        float hprev = ap ? ap[k] : 0.f;
        if (gru) {
          float r = a[H + k], z = a[2 * H + k], nn = a[3 * H + k], hn = a[4 * H + k];
          float dan = dhk * (1.f - z) * (1.f - nn * nn), dar = dan * hn * r * (1.f - r);
          float daz = dhk * (hprev - nn) * z * (1.f - z);
          gx[k * T + t] = dar, gx[(H + k) * T + t] = daz, gx[(2 * H + k) * T + t] = dan;
          gh[k] = dar, gh[H + k] = daz, gh[2 * H + k] = dan * r;
          d[k] = dhk * z; /* the direct path; the Whh path is added below */
        } else {
          float c = a[H + k], i = a[2 * H + k], f = a[3 * H + k], gg = a[4 * H + k], o = a[5 * H + k];
          float tc = tanhf(c), dct = dcs[k] + dhk * o * (1.f - tc * tc), cprev = ap ? ap[H + k] : 0.f;
          float di = dct * gg * i * (1.f - i), df = dct * cprev * f * (1.f - f);
          float dg = dct * i * (1.f - gg * gg), dO = dhk * tc * o * (1.f - o);
          gx[k * T + t] = gh[k] = di, gx[(H + k) * T + t] = gh[H + k] = df;
          gx[(2 * H + k) * T + t] = gh[2 * H + k] = dg, gx[(3 * H + k) * T + t] = gh[3 * H + k] = dO;
          dcs[k] = dct * f, d[k] = 0.f;
        }
      }
    }
    for (int g = 0; g < nseg(b); g++) { /* dWhh += dhp^T hprev, dbhh += dhp; dh += dhp Whh */
      int64_t s0 = seg_at(b, g), ns = seg_at(b, g + 1) - s0;
      float *dWhh = grad + g * gstride + G * C, *dbhh = grad + g * gstride + G * C + G * H + G;
      for (int64_t s = s0; s < s0 + ns; s++) {
        for (int64_t j = 0; j < G; j++)
          dbhh[j] += dhp[s * G + j];
        if (t)
          cblas_sger(CblasRowMajor, (int)G, (int)H, 1.f, dhp + s * G, 1, aux + (s * T + t - 1) * S, 1, dWhh, (int)H);
      }
      if (ns)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)ns, (int)H, (int)G, 1.f, dhp + s0 * G, (int)G, Whh,
                    (int)H, 1.f, dh + s0 * H, (int)H);
    }
  }
  for (int g = 0; g < nseg(b); g++) { /* input weights: dWih += dxp_s [G][T] x_s^T, dbih += sum_t dxp */
    float *dWih = grad + g * gstride, *dbih = dWih + G * C + G * H;
    for (int64_t s = seg_at(b, g); s < seg_at(b, g + 1); s++) {
      const float *gx = dxp + s * G * T;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)G, (int)C, (int)T, 1.f, gx, (int)T, x + s * C * T,
                  (int)T, 1.f, dWih, (int)C);
      for (int64_t j = 0; j < G; j++)
        for (int64_t t = 0; t < T; t++)
          dbih[j] += gx[j * T + t];
      if (dx)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)C, (int)T, (int)G, 1.f, Wih, (int)C, gx, (int)T, 1.f,
                    dx + s * C * T, (int)T);
    }
  }
}
