/* Optimisers with torch.optim's update rules (float32 arithmetic, as torch on CPU):
 *   SGD:   g += wd p; b = mu b + (1 - dampening) g (b = g on the first step);
 *          g = nesterov ? g + mu b : b; p -= lr g
 *   Adam:  g += wd p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *          p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)       (Kingma & Ba 2015)
 *   AdamW: p *= 1 - lr wd, then Adam without the L2 term        (Loshchilov & Hutter 2019)
 * plus clip_grad_norm_ and the learning-rate schedules. State is one slab [2][n]. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sisma/nn.h"

sm_status sm_optim_init(sm_ctx *ctx, sm_optim *o, const sm_optim_conf *c, int64_t n) {
  memset(o, 0, sizeof *o);
  o->c = *c, o->n = n;
  SM_TRY(ctx, SM_ALLOC(ctx, o->state, 2 * n + 1));
  memset(o->state, 0, (size_t)(2 * n) * sizeof *o->state);
  return SM_OK;
}

void sm_optim_fini(sm_optim *o) {
  free(o->state);
  o->state = NULL;
}

__attribute__((target_clones("avx2", "default"))) static void sgd(sm_optim *o, float *p, const float *g, float lr) {
  const float mu = (float)o->c.momentum, wd = (float)o->c.weight_decay, damp = (float)(1.0 - o->c.dampening);
  float *buf = o->state;
  for (int64_t i = 0; i < o->n; i++) {
    float d = g[i] + wd * p[i];
    if (mu != 0.f) {
      buf[i] = o->t == 1 ? d : mu * buf[i] + damp * d;
      d = o->c.nesterov ? d + mu * buf[i] : buf[i];
    }
    p[i] -= lr * d;
  }
}

__attribute__((target_clones("avx2", "default"))) static void adam(sm_optim *o, float *p, const float *g, float lr) {
  const float b1 = (float)o->c.beta1, b2 = (float)o->c.beta2, eps = (float)o->c.eps, wd = (float)o->c.weight_decay;
  const int decoupled = o->c.kind == SM_OPT_ADAMW;
  const double bc1 = 1.0 - pow(o->c.beta1, (double)o->t), bc2 = 1.0 - pow(o->c.beta2, (double)o->t);
  const float step = (float)(lr / bc1), sbc2 = (float)sqrt(bc2);
  float *m = o->state, *v = o->state + o->n;
  for (int64_t i = 0; i < o->n; i++) {
    float d = g[i];
    if (decoupled)
      p[i] *= 1.f - lr * wd;
    else
      d += wd * p[i];
    m[i] = m[i] * b1 + (1.f - b1) * d;
    v[i] = v[i] * b2 + (1.f - b2) * d * d;
    p[i] -= step * m[i] / (sqrtf(v[i]) / sbc2 + eps);
  }
}

void sm_optim_step(sm_optim *o, float *p, const float *g, double lr) {
  o->t++;
  if (o->c.kind == SM_OPT_SGD)
    sgd(o, p, g, (float)lr);
  else
    adam(o, p, g, (float)lr);
}

double sm_clip_grad_norm(float *g, int64_t n, double max_norm) {
  double ss = 0;
  for (int64_t i = 0; i < n; i++)
    ss += (double)g[i] * g[i];
  double norm = sqrt(ss), coef = max_norm / (norm + 1e-6);
  if (coef < 1.0)
    for (int64_t i = 0; i < n; i++)
      g[i] *= (float)coef;
  return norm;
}

double sm_schedule_lr(const sm_schedule *s, int64_t step) {
  double lr = s->base;
  if (s->kind == SM_SCHED_STEP && s->step_size > 0) lr *= pow(s->gamma, (double)(step / s->step_size));
  if (s->kind == SM_SCHED_COSINE && s->total > 0) {
    double f = (double)(step < s->total ? step : s->total) / (double)s->total;
    lr = s->eta_min + (s->base - s->eta_min) * 0.5 * (1.0 + cos(M_PI * f));
  }
  if (s->warmup > 0 && step < s->warmup) lr *= (double)(step + 1) / (double)s->warmup;
  return lr;
}
