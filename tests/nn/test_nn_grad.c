/* Finite-difference checks of every layer's backward pass and every loss's gradient: for a small
 * model f, L = sum(f(x) * r) with fixed random r, the analytic dL/dparam, dL/dx and dL/d(named
 * input) must match
 * central differences (float32 forward, eps 1e-3, tolerance 2e-2 relative to the gradient's
 * scale). Also: gradients split over segments sum to the one-segment gradient. Local (1 rank). */
#include "harness.h"
#include "sisma/nn.h"
#include "sisma/rng.h"

static double objective(sm_ctx *ctx, sm_model *m, const sm_nn_batch *b, const float *x, const float *r, int64_t ny) {
  const float *y = NULL;
  if (sm_model_forward(ctx, m, b, x, &y) != SM_OK) return NAN;
  double s = 0;
  for (int64_t i = 0; i < ny; i++)
    s += (double)y[i] * r[i];
  return s;
}

/* Check one model description on input [n][c][t] and named inputs inp [nin] (each [n][shape]):
 * gradients of the parameters, of the waveform input and of the named inputs. */
static void gradcheck_in(sm_ctx *ctx, const char *desc, int64_t c, int64_t t, int64_t n, const sm_model_input *inp,
                         int nin) {
  sm_model *m = NULL;
  CHECK_OK(ctx, sm_model_parse_inputs(ctx, desc, (sm_shape){c, t}, inp, nin, &m));
  if (!m) return;
  CHECK_OK(ctx, sm_model_init(ctx, m, "xavier", 7));
  CHECK_OK(ctx, sm_model_reserve(ctx, m, n, 2));
  sm_shape os = sm_model_out_shape(m);
  int64_t nx = n * c * t, ny = n * os.c * os.t, np = sm_model_param_count(m), ne = 0;
  for (int j = 0; j < nin; j++)
    ne += n * inp[j].shape.c * inp[j].shape.t;
  /* x, then the named inputs back to back in one array: the perturbation loop walks both */
  float *x = malloc((size_t)(nx + ne) * 4), *r = malloc((size_t)ny * 4), *dx = malloc((size_t)(nx + ne) * 4);
  float *g = malloc((size_t)(np + 1) * 4);
  const float *xin[8];
  for (int j = 0, off = 0; j < nin; off += (int)(n * inp[j].shape.c * inp[j].shape.t), j++)
    xin[j] = x + nx + off;
  sm_rng rng;
  sm_rng_init(&rng, 11, 3);
  for (int64_t i = 0; i < nx + ne; i++)
    x[i] = (float)sm_rng_normal(&rng);
  for (int64_t i = 0; i < ny; i++)
    r[i] = (float)sm_rng_normal(&rng);
  float *p = sm_model_params(m);
  for (int64_t i = 0; i < np; i++)
    p[i] += 0.1f * (float)sm_rng_normal(&rng); /* non-trivial norm affines */
  sm_nn_batch b = {.n = n, .seed = 5, .step = 2, .train = 1, .inputs = nin ? xin : NULL};
  const float *y = NULL;
  CHECK_OK(ctx, sm_model_forward(ctx, m, &b, x, &y));
  CHECK_OK(ctx, sm_model_backward(ctx, m, &b, r, dx, NULL, NULL));
  memcpy(g, sm_model_grads(m, 0), (size_t)np * 4);
  for (int j = 0; j < nin; j++)
    memcpy(dx + (xin[j] - x), sm_model_input_grad(m, j), (size_t)(n * inp[j].shape.c * inp[j].shape.t) * 4);
  /* running statistics change on each training forward but do not affect the train output */
  const double eps = 1e-3;
  double scale = 1e-3;
  for (int64_t i = 0; i < np; i++)
    scale = fmax(scale, fabs(g[i]));
  for (int64_t i = 0; i < nx + ne; i++)
    scale = fmax(scale, fabs(dx[i]));
  int bad = 0;
  for (int64_t i = 0; i < np + nx + ne && bad < 3; i++) {
    float *v = i < np ? &p[i] : &x[i - np];
    float keep = *v;
    *v = keep + (float)eps;
    double lp = objective(ctx, m, &b, x, r, ny);
    *v = keep - (float)eps;
    double lm = objective(ctx, m, &b, x, r, ny);
    *v = keep;
    double fd = (lp - lm) / (2 * eps), an = i < np ? g[i] : dx[i - np];
    if (fabs(fd - an) > 2e-2 * scale) {
      fprintf(stderr, "%s: %s %lld: analytic %.6g vs finite difference %.6g (scale %.3g)\n", desc,
              i < np        ? "param"
              : i < np + nx ? "input"
                            : "named input",
              (long long)(i < np ? i : i - np), an, fd, scale);
      bad++;
    }
  }
  CHECK_EQ_I64(bad, 0);
  /* two segments: per-segment parameter gradients sum to the whole-batch gradient */
  if (n >= 2) {
    int64_t seg[3] = {0, n / 2, n};
    sm_nn_batch b2 = b;
    b2.nseg = 2, b2.seg = seg;
    CHECK_OK(ctx, sm_model_forward(ctx, m, &b2, x, &y));
    CHECK_OK(ctx, sm_model_backward(ctx, m, &b2, r, NULL, NULL, NULL));
    double worst = 0;
    for (int64_t i = 0; i < np; i++)
      worst = fmax(worst, fabs((double)sm_model_grads(m, 0)[i] + sm_model_grads(m, 1)[i] - g[i]));
    CHECK(worst <= 1e-4 * scale + 1e-6);
  }
  free(x), free(r), free(dx), free(g);
  sm_model_destroy(&m);
}

static void gradcheck(sm_ctx *ctx, const char *desc, int64_t c, int64_t t, int64_t n) {
  gradcheck_in(ctx, desc, c, t, n, NULL, 0);
}

static void test_dense(sm_ctx *ctx) {
  gradcheck(ctx, "dense 5, tanh, dense 3", 4, 1, 3);
  gradcheck(ctx, "dense 4", 2, 6, 2); /* flattens [C][T] */
}
static void test_conv(sm_ctx *ctx) {
  gradcheck(ctx, "conv 4 k=3", 3, 12, 2);
  gradcheck(ctx, "conv 3 k=3 stride=2 pad=2 dil=2", 2, 15, 2);
}
static void test_convt(sm_ctx *ctx) {
  gradcheck(ctx, "convt 3 k=4 stride=2 pad=1", 2, 7, 2);
  gradcheck(ctx, "convt 2 k=3", 3, 5, 2);
}
static void test_pool(sm_ctx *ctx) {
  gradcheck(ctx, "maxpool 3", 2, 10, 2);
  gradcheck(ctx, "avgpool 4 stride=2", 2, 11, 2);
  gradcheck(ctx, "gap", 3, 9, 2);
  gradcheck(ctx, "upsample 3", 2, 4, 2);
}
static void test_act(sm_ctx *ctx) {
  const char *acts[] = {"relu", "leaky alpha=0.2", "gelu", "silu", "tanh", "sigmoid"};
  for (int i = 0; i < 6; i++)
    gradcheck(ctx, acts[i], 2, 6, 2);
}
static void test_norm(sm_ctx *ctx) {
  gradcheck(ctx, "batchnorm", 3, 5, 4);
  gradcheck(ctx, "layernorm", 3, 5, 2);
  gradcheck(ctx, "groupnorm 2", 4, 5, 2);
}
static void test_rnn(sm_ctx *ctx) {
  gradcheck(ctx, "gru 4", 3, 6, 3);
  gradcheck(ctx, "lstm 3", 2, 5, 3);
  gradcheck(ctx, "gru 3 last=1, dense 2", 2, 7, 2);
  gradcheck(ctx, "conv 3 k=3, lstm 4 last=1", 2, 9, 2);
  gradcheck(ctx, "embed 8, dense 3", 1, 1, 3); /* time-step embedding */
}

static void test_dropout_concat(sm_ctx *ctx) {
  gradcheck(ctx, "dropout 0.3", 3, 8, 2);
  gradcheck(ctx, "conv 3 k=3 pad=1 name=skip, tanh, conv 2 k=3 pad=1, concat from=skip, conv 2 k=1", 2, 8, 2);
  /* a skip from a conv / dense whose ReLU is fused into its GEMM: the pre-ReLU output must exist */
  gradcheck(ctx, "conv 3 k=3 pad=1 name=skip, relu, conv 2 k=3 pad=1, concat from=skip, conv 2 k=1", 2, 8, 2);
  gradcheck(ctx, "dense 1 name=s, relu, dense 3, embed 4 from=s, dense 2", 2, 4, 2);
}

/* named inputs beside the waveform: catalog scalars appended after pooling (and before it, where
 * the time length matches), a time step through embed, two inputs in one model */
static void test_named_inputs(sm_ctx *ctx) {
  sm_model_input meta = {"meta", {2, 1}}, amp = {"amp", {3, 1}}, step = {"t", {1, 1}}, both[2] = {meta, amp};
  gradcheck_in(ctx, "conv 3 k=3, gap, concat from=meta, dense 4, tanh, dense 2", 2, 9, 3, &meta, 1);
  gradcheck_in(ctx, "conv 3 k=3, relu, gap, concat from=meta, concat from=amp, dense 2", 3, 8, 2, both, 2);
  gradcheck_in(ctx, "dense 3, concat from=meta, dense 2", 2, 4, 2, &meta, 1); /* dense output: T = 1 */
  gradcheck_in(ctx, "conv 2 k=3, gap name=wave, embed 6 from=t, dense 4, concat from=wave, dense 1", 2, 7, 2, &step, 1);
}

/* loss gradients against central differences in double */
static void test_losses(sm_ctx *ctx) {
  float pred[12], target[12], grad[12];
  double w[3] = {0.5, 2.0, 1.0};
  sm_rng rng;
  sm_rng_init(&rng, 3, 9);
  for (int i = 0; i < 12; i++)
    pred[i] = (float)sm_rng_normal(&rng), target[i] = (float)sm_rng_uniform(&rng);
  float cls[4] = {0, 2, 1, 2};
  for (int kind = 0; kind < 5; kind++) {
    sm_loss L = {.kind = (sm_loss_kind)kind, .delta = 0.7, .weight = kind == SM_LOSS_CE ? w : NULL};
    const float *t = kind == SM_LOSS_CE ? cls : target;
    sm_loss_eval(&L, 4, 3, pred, t, 0.25, grad);
    for (int i = 0; i < 12; i++) {
      float keep = pred[i];
      pred[i] = keep + 1e-3f;
      double lp = sm_loss_eval(&L, 4, 3, pred, t, 0.25, NULL);
      pred[i] = keep - 1e-3f;
      double lm = sm_loss_eval(&L, 4, 3, pred, t, 0.25, NULL);
      pred[i] = keep;
      CHECK_NEAR(grad[i], (lp - lm) / 2e-3, 1e-3);
    }
  }
}

/* shape errors name the layer */
static void test_shape_errors(sm_ctx *ctx) {
  sm_model *m = NULL;
  CHECK_STATUS(ctx, sm_model_parse(ctx, "conv 8 k=7, maxpool 4, conv 8 k=7", (sm_shape){3, 12}, &m), SM_ERR_CONFIG);
  CHECK(strstr(ctx->err_msg, "layer 3 (conv 8 k=7)") != NULL);
  CHECK_STATUS(ctx, sm_model_parse(ctx, "dense 4, rleu", (sm_shape){3, 1}, &m), SM_ERR_CONFIG);
  CHECK(strstr(ctx->err_msg, "relu") != NULL);
  CHECK_STATUS(ctx, sm_model_parse(ctx, "conv 4 k=3, concat from=nope", (sm_shape){3, 12}, &m), SM_ERR_CONFIG);
  CHECK(strstr(ctx->err_msg, "nope") != NULL);
  CHECK_STATUS(ctx, sm_model_parse(ctx, "groupnorm 3", (sm_shape){4, 12}, &m), SM_ERR_CONFIG);
  CHECK(m == NULL);
  /* named inputs: a time length that does not match, a misspelt name, an unused input, a clash */
  sm_model_input meta = {"meta", {2, 1}};
  CHECK_STATUS(
      ctx, sm_model_parse_inputs(ctx, "conv 4 k=3, concat from=meta, gap, dense 2", (sm_shape){3, 12}, &meta, 1, &m),
      SM_ERR_CONFIG);
  CHECK(strstr(ctx->err_msg, "layer 2 (concat from=meta): input has 10 time samples but model input meta gives 1") !=
        NULL);
  CHECK_STATUS(ctx, sm_model_parse_inputs(ctx, "gap, concat from=mta, dense 2", (sm_shape){3, 12}, &meta, 1, &m),
               SM_ERR_CONFIG);
  CHECK(strstr(ctx->err_msg, "layer 2 (concat from=mta)") != NULL &&
        strstr(ctx->err_msg, "did you mean: \"meta\"") != NULL);
  CHECK_STATUS(ctx, sm_model_parse_inputs(ctx, "gap, dense 2", (sm_shape){3, 12}, &meta, 1, &m), SM_ERR_CONFIG);
  CHECK(strstr(ctx->err_msg, "model input `meta` is not read by any layer") != NULL);
  CHECK_STATUS(ctx,
               sm_model_parse_inputs(ctx, "gap name=meta, concat from=meta, dense 2", (sm_shape){3, 12}, &meta, 1, &m),
               SM_ERR_CONFIG);
  CHECK(strstr(ctx->err_msg, "a model input has the same name: meta") != NULL);
  CHECK_STATUS(ctx, sm_model_parse_inputs(ctx, "embed 8 from=meta, dense 2", (sm_shape){3, 12}, &meta, 1, &m),
               SM_ERR_CONFIG);
  CHECK(strstr(ctx->err_msg, "layer 1 (embed 8 from=meta): embeds one scalar") != NULL);
  CHECK_STATUS(ctx, sm_model_parse_inputs(ctx, "gap, dense 2 from=meta", (sm_shape){3, 12}, &meta, 1, &m),
               SM_ERR_CONFIG);
  CHECK(strstr(ctx->err_msg, "from= is a key of concat and embed only") != NULL);
  CHECK(m == NULL);
}

int main(int argc, char **argv) {
  return SM_TEST_MAIN(argc, argv, test_dense, test_conv, test_convt, test_pool, test_act, test_norm,
                      test_dropout_concat, test_rnn, test_named_inputs, test_losses, test_shape_errors);
}
