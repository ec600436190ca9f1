/* Losses with torch's definitions. Each returns scale * sum over samples of the per-sample loss,
 * and (optionally) the gradient of that value with respect to the predictions, so the trainer
 * passes scale = 1 / (global batch size) and sums the values over ranks.
 *   mse   mean_k (p - t)^2                     l1    mean_k |p - t|
 *   huber mean_k { d^2/2 if |d| < delta, else delta (|d| - delta/2) }
 *   ce    w[y] (logsumexp(z) - z_y)            bce   mean_k max(z,0) - z t + log(1 + e^-|z|) */
#include <math.h>
#include <string.h>

#include "sisma/nn.h"

sm_status sm_loss_parse(sm_ctx *ctx, const char *name, sm_loss_kind *kind) {
  static const char *const names[] = {"mse", "l1", "huber", "ce", "bce"};
  for (int i = 0; i < 5; i++)
    if (!strcmp(name, names[i])) {
      *kind = (sm_loss_kind)i;
      return SM_OK;
    }
  return SM_ERR(ctx, SM_ERR_CONFIG, "loss `%s`: expected mse, l1, huber, ce or bce", name);
}

static double ce_sample(const float *z, int64_t k, int64_t y, double w, double scale, float *g) {
  double mx = z[0];
  for (int64_t j = 1; j < k; j++)
    mx = fmax(mx, z[j]);
  double se = 0;
  for (int64_t j = 0; j < k; j++)
    se += exp(z[j] - mx);
  double lse = mx + log(se);
  if (g)
    for (int64_t j = 0; j < k; j++)
      g[j] = (float)(scale * w * (exp(z[j] - lse) - (j == y)));
  return w * (lse - z[y]);
}

double sm_loss_eval(const sm_loss *L, int64_t n, int64_t k, const float *pred, const float *target, double scale,
                    float *grad) {
  double total = 0;
  for (int64_t s = 0; s < n; s++) {
    const float *z = pred + s * k;
    float *g = grad ? grad + s * k : NULL;
    if (L->kind == SM_LOSS_CE) {
      int64_t y = (int64_t)target[s];
      total += ce_sample(z, k, y, L->weight ? L->weight[y] : 1.0, scale, g);
      continue;
    }
    const float *t = target + s * k;
    double acc = 0;
    for (int64_t j = 0; j < k; j++) {
      double d = (double)z[j] - t[j], v, dv;
      switch (L->kind) {
      case SM_LOSS_MSE:
        v = d * d, dv = 2 * d;
        break;
      case SM_LOSS_L1:
        v = fabs(d), dv = (d > 0) - (d < 0);
        break;
      case SM_LOSS_HUBER:
        if (fabs(d) < L->delta)
          v = 0.5 * d * d, dv = d;
        else
          v = L->delta * (fabs(d) - 0.5 * L->delta), dv = L->delta * ((d > 0) - (d < 0));
        break;
      default: /* bce with logits, stable form */
        v = fmax(z[j], 0.0) - (double)z[j] * t[j] + log1p(exp(-fabs(z[j])));
        dv = 1.0 / (1.0 + exp(-(double)z[j])) - t[j];
      }
      acc += v;
      if (g) g[j] = (float)(scale * dv / (double)k);
    }
    total += acc / (double)k;
  }
  return total * scale;
}
