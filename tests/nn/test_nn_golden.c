/* sisma layers, losses and optimisers against PyTorch (tests/nn/golden/nn.txt from
 * dev/golden_nn.py, torch 1.13): forward outputs, input and parameter gradients, batch-norm
 * running statistics and eval-mode outputs of three models covering every layer kind; the value
 * and gradient of every loss (the models cover every layer kind, GRU and LSTM included); and 20 training steps from the
 * same initial weights on the same batches (Adam + batch norm, SGD Nesterov + weight decay + step schedule, AdamW +
 * cosine with warm-up + gradient clipping). Tolerances (relative to the largest reference value): forward 1e-5,
 * gradients 1e-4, loss curve 1e-4 per step, weights after 20 steps 1e-3. */
#include "golden.h"
#include "harness.h"
#include "sisma/nn.h"

static sm_model *golden_model(sm_ctx *ctx, const char *name, long *n) {
  char prefix[128], desc[1024];
  snprintf(prefix, sizeof prefix, "model %s ", name);
  const char *line = golden_line(prefix);
  CHECK(line != NULL);
  if (!line) return NULL;
  long c, t;
  int used = 0;
  sscanf(line, "%ld %ld %ld %n", &c, &t, n, &used);
  snprintf(desc, sizeof desc, "%.*s", (int)strcspn(line + used, "\n"), line + used);
  sm_model *m = NULL;
  CHECK_OK(ctx, sm_model_parse(ctx, desc, (sm_shape){c, t}, &m));
  if (m) CHECK_OK(ctx, sm_model_reserve(ctx, m, *n, 1));
  return m;
}

#define CHECK_VEC(got, name, count, tol)                                                                               \
  do {                                                                                                                 \
    long n_;                                                                                                           \
    float *ref_ = golden_vec(name, &n_);                                                                               \
    CHECK_EQ_I64(n_, count);                                                                                           \
    if (ref_ && n_ == (count)) {                                                                                       \
      double s_, d_ = golden_maxdiff(got, ref_, n_, &s_);                                                              \
      if (!(d_ <= (tol)*fmax(1.0, s_))) fprintf(stderr, "%s: max diff %.3g (scale %.3g)\n", name, d_, s_);             \
      CHECK(d_ <= (tol)*fmax(1.0, s_));                                                                                \
    }                                                                                                                  \
    free(ref_);                                                                                                        \
  } while (0)

static void layer_case(sm_ctx *ctx, const char *name) {
  long n, k;
  sm_model *m = golden_model(ctx, name, &n);
  if (!m) return;
  char key[128];
  snprintf(key, sizeof key, "%s/x", name);
  float *x = golden_vec(key, &k);
  snprintf(key, sizeof key, "%s/params", name);
  float *p = golden_vec(key, &k);
  CHECK_EQ_I64(k, sm_model_param_count(m));
  memcpy(sm_model_params(m), p, (size_t)k * sizeof *p);
  snprintf(key, sizeof key, "%s/r", name);
  float *r = golden_vec(key, &k);
  sm_shape os = sm_model_out_shape(m), is = sm_model_layer(m, 0)->in;
  long ny = n * os.c * os.t, nx = n * is.c * is.t;
  float *dx = calloc((size_t)nx, sizeof *dx);
  sm_nn_batch b = {.n = n, .train = 1};
  const float *y = NULL;
  CHECK_OK(ctx, sm_model_forward(ctx, m, &b, x, &y));
  snprintf(key, sizeof key, "%s/y", name);
  CHECK_VEC(y, key, ny, 1e-5);
  CHECK_OK(ctx, sm_model_backward(ctx, m, &b, r, dx, NULL, NULL));
  snprintf(key, sizeof key, "%s/dx", name);
  CHECK_VEC(dx, key, nx, 1e-4);
  snprintf(key, sizeof key, "%s/grad", name);
  CHECK_VEC(sm_model_grads(m, 0), key, sm_model_param_count(m), 1e-4);
  snprintf(key, sizeof key, "%s/buffers", name);
  CHECK_VEC(sm_model_buffers(m), key, sm_model_buffer_count(m), 1e-5);
  b.train = 0;
  CHECK_OK(ctx, sm_model_forward(ctx, m, &b, x, &y));
  snprintf(key, sizeof key, "%s/y_eval", name);
  CHECK_VEC(y, key, ny, 1e-5);
  free(x), free(p), free(r), free(dx);
  sm_model_destroy(&m);
}

static void test_convnet(sm_ctx *ctx) { layer_case(ctx, "convnet"); }
static void test_decoder(sm_ctx *ctx) { layer_case(ctx, "decoder"); }
static void test_mlp(sm_ctx *ctx) { layer_case(ctx, "mlp"); }
static void test_rnn(sm_ctx *ctx) { layer_case(ctx, "rnn"); }
static void test_embed(sm_ctx *ctx) { layer_case(ctx, "embed"); }

static void test_losses(sm_ctx *ctx) {
  const char *kinds[] = {"mse", "l1", "huber", "ce", "bce"};
  long k;
  float *wf = golden_vec("loss/ce_weight", &k);
  double w[3] = {wf[0], wf[1], wf[2]};
  free(wf);
  for (int i = 0; i < 5; i++) {
    char key[64];
    sm_loss L = {.delta = 0.7, .weight = w};
    CHECK_OK(ctx, sm_loss_parse(ctx, kinds[i], &L.kind));
    snprintf(key, sizeof key, "loss/%s/pred", kinds[i]);
    float *pred = golden_vec(key, &k), grad[18];
    snprintf(key, sizeof key, "loss/%s/target", kinds[i]);
    float *target = golden_vec(key, &k);
    snprintf(key, sizeof key, "loss/%s/value", kinds[i]);
    float *value = golden_vec(key, &k);
    double scale = 1.0 / 6;
    if (L.kind == SM_LOSS_CE) { /* torch's weighted mean divides by the sum of the weights */
      double sw = 0;
      for (int s = 0; s < 6; s++)
        sw += w[(int)target[s]];
      scale = 1.0 / sw;
    }
    float v = (float)sm_loss_eval(&L, 6, 3, pred, target, scale, grad);
    CHECK_NEAR(v, value[0], 1e-6);
    snprintf(key, sizeof key, "loss/%s/grad", kinds[i]);
    CHECK_VEC(grad, key, 18, 1e-6);
    free(pred), free(target), free(value);
  }
  sm_loss_kind kind;
  CHECK_STATUS(ctx, sm_loss_parse(ctx, "cross_entropy", &kind), SM_ERR_CONFIG);
}

static void train_case(sm_ctx *ctx, const char *name) {
  long B, k, ns;
  sm_model *m = golden_model(ctx, name, &B);
  if (!m) return;
  char prefix[128], opt[32], sched[32];
  double lr, clip;
  snprintf(prefix, sizeof prefix, "train %s ", name);
  const char *line = golden_line(prefix);
  CHECK(line && sscanf(line, "%31s %lf %31s %lf", opt, &lr, sched, &clip) == 4);
  char key[128];
  snprintf(key, sizeof key, "%s/x", name);
  float *x = golden_vec(key, &k);
  snprintf(key, sizeof key, "%s/y", name);
  float *y = golden_vec(key, &ns);
  snprintf(key, sizeof key, "%s/params0", name);
  float *p0 = golden_vec(key, &k);
  int64_t np = sm_model_param_count(m);
  CHECK_EQ_I64(k, np);
  memcpy(sm_model_params(m), p0, (size_t)np * sizeof *p0);
  sm_optim_conf oc = {.kind = SM_OPT_ADAM, .lr = lr, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
  if (!strcmp(opt, "adamw")) oc.kind = SM_OPT_ADAMW, oc.weight_decay = 0.05;
  if (!strcmp(opt, "nesterov")) oc.kind = SM_OPT_SGD, oc.momentum = 0.9, oc.nesterov = 1, oc.weight_decay = 1e-3;
  sm_optim o;
  CHECK_OK(ctx, sm_optim_init(ctx, &o, &oc, np));
  sm_schedule sc = {.kind = SM_SCHED_CONSTANT, .base = lr, .gamma = 0.5, .step_size = 5, .total = 20};
  if (!strcmp(sched, "step")) sc.kind = SM_SCHED_STEP;
  if (!strcmp(sched, "cosine")) sc.kind = SM_SCHED_COSINE, sc.warmup = 4;
  int64_t in = sm_model_layer(m, 0)->in.c * sm_model_layer(m, 0)->in.t;
  float losses[20], dy[256];
  sm_loss L = {.kind = SM_LOSS_CE};
  for (int step = 0; step < 20; step++) {
    long b0 = (step * B) % ns;
    sm_nn_batch b = {.n = B, .train = 1};
    const float *out = NULL;
    CHECK_OK(ctx, sm_model_forward(ctx, m, &b, x + b0 * in, &out));
    losses[step] = (float)sm_loss_eval(&L, B, 2, out, y + b0, 1.0 / (double)B, dy);
    CHECK_OK(ctx, sm_model_backward(ctx, m, &b, dy, NULL, NULL, NULL));
    float *g = sm_model_grads(m, 0);
    if (clip > 0) sm_clip_grad_norm(g, np, clip);
    sm_optim_step(&o, sm_model_params(m), g, sm_schedule_lr(&sc, step));
  }
  snprintf(key, sizeof key, "%s/losses", name);
  CHECK_VEC(losses, key, 20, 1e-4);
  long nl;
  float *ref_losses = golden_vec(key, &nl);
  if (ref_losses && nl == 20)
    printf("%s: loss %.4f -> %.4f, torch %.4f -> %.4f, largest difference %.2g\n", name, losses[0], losses[19],
           ref_losses[0], ref_losses[19], golden_maxdiff(losses, ref_losses, 20, NULL));
  free(ref_losses);
  snprintf(key, sizeof key, "%s/params20", name);
  /* The bias of a layer followed by batch norm has a true gradient of 0: Adam turns the rounding
   * noise of that zero into full-size steps of either sign, in torch as here, so those entries
   * are not comparable and are taken from the reference before the check. */
  long nr;
  float *ref = golden_vec(key, &nr);
  for (int i = 0; ref && nr == np && i + 1 < sm_model_layer_count(m); i++) {
    const sm_layer *l = sm_model_layer(m, i);
    if (sm_model_layer(m, i + 1)->kind == SM_LAYER_BATCHNORM && (l->kind == SM_LAYER_CONV || l->kind == SM_LAYER_DENSE))
      for (int64_t j = l->off_param + l->n_param - l->out.c; j < l->off_param + l->n_param; j++)
        sm_model_params(m)[j] = ref[j];
  }
  free(ref);
  CHECK_VEC(sm_model_params(m), key, np, 1e-3);
  sm_optim_fini(&o);
  free(x), free(y), free(p0);
  sm_model_destroy(&m);
}

static void test_train_adam(sm_ctx *ctx) { train_case(ctx, "train/cnn_adam"); }
static void test_train_nesterov(sm_ctx *ctx) { train_case(ctx, "train/mlp_nesterov"); }
static void test_train_adamw(sm_ctx *ctx) { train_case(ctx, "train/cnn_adamw"); }

int main(int argc, char **argv) {
  return SM_TEST_MAIN(argc, argv, test_convnet, test_decoder, test_mlp, test_rnn, test_embed, test_losses,
                      test_train_adam, test_train_nesterov, test_train_adamw);
}
