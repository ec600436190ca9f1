/* Neural networks: float32 layers with explicit forward and backward passes, losses, optimisers
 * and a model built from a compact text description (the `model:` key of a job file).
 *
 * Tensors are [N][C][T] (batch x channels x time); a vector is C features with T = 1, and a dense
 * layer reads any [C][T] sample as C*T features. A model is a list of layers; all trainable
 * parameters live in one slab (`param`), their gradients in another of the same layout
 * (`grad`), and non-trained buffers (batch-norm running statistics) in a third, so an allreduce,
 * a checkpoint or an optimiser step is one loop over one array.
 *
 * Backward passes accumulate (+=) into the input gradient, so a layer output used twice (a named
 * block feeding a later `concat`) receives the sum of both gradients. Parameter gradients are
 * written per *segment* of the batch (slab g holds the gradient of samples [seg[g], seg[g+1])):
 * with one segment this is the usual batch gradient; the trainer's deterministic mode uses one
 * segment per fixed block of catalog traces so that partial gradients can be summed in a fixed
 * global order (docs/nn.md).
 *
 * Start reading at sm_model_parse, sm_model_forward and sm_model_backward. */
#ifndef SISMA_NN_H
#define SISMA_NN_H

#include "sisma/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  SM_LAYER_DENSE,
  SM_LAYER_CONV,     /* conv1d: out k stride pad dil */
  SM_LAYER_CONVT,    /* transposed conv1d: out k stride pad */
  SM_LAYER_MAXPOOL,  /* k stride */
  SM_LAYER_AVGPOOL,  /* k stride */
  SM_LAYER_GAP,      /* global average pool over time */
  SM_LAYER_UPSAMPLE, /* nearest, integer factor */
  SM_LAYER_RELU,
  SM_LAYER_LEAKY, /* leaky ReLU, slope alpha */
  SM_LAYER_GELU,  /* exact erf form (torch default) */
  SM_LAYER_SILU,
  SM_LAYER_TANH,
  SM_LAYER_SIGMOID,
  SM_LAYER_BATCHNORM, /* per channel over N and T; running stats, momentum 0.1, unbiased var */
  SM_LAYER_LAYERNORM, /* per sample over C and T, affine per (C,T) element */
  SM_LAYER_GROUPNORM, /* per sample over groups of C/g channels and T, affine per channel */
  SM_LAYER_DROPOUT,   /* inverted dropout, mask from the counter-based generator */
  SM_LAYER_CONCAT,    /* channels of the input, then of the output of named layer `from` */
  SM_LAYER_GRU,       /* hidden size H over the time axis; last=1 keeps only the final state */
  SM_LAYER_LSTM,      /* as GRU */
  SM_LAYER_EMBED,     /* sinusoidal embedding of a scalar [1][1] -> [D][1] (diffusion time steps) */
  SM_LAYER_KIND_COUNT
} sm_layer_kind;

/* Per-sample shape: channels x time. */
typedef struct {
  int64_t c, t;
} sm_shape;

typedef struct {
  sm_layer_kind kind;
  char name[32];                       /* user name (`name=`) or "<kind><index>" */
  sm_shape in, out;                    /* per sample */
  int64_t k, stride, pad, dil, groups; /* conv/pool geometry; groups (group norm), hidden size (rnn) */
  double alpha, p, eps, momentum;      /* leaky slope, dropout rate, norm eps, bn momentum */
  int from;                            /* concat: index of the layer whose output is appended */
  int input;                           /* concat, embed: index of the named model input read (-1: none) */
  int64_t off_param, n_param;          /* view into the parameter/gradient slabs */
  int64_t off_buf, n_buf;              /* view into the buffer slab (bn running mean, var) */
  int64_t n_aux;                       /* floats of per-sample saved state (argmax, xhat, mask ...) */
  int64_t n_stat;                      /* floats of per-batch saved state (bn mean, invstd) */
} sm_layer;

/* How the caller wants batch reductions done (batch-norm statistics): `reduce` sums `n` doubles
 * over all segments of all ranks in a fixed order and writes the totals into `out`; `part` is
 * [nseg][n] (this rank's segments). NULL = sum the local segments in order (one process). */
typedef sm_status (*sm_nn_reduce_fn)(void *ud, const double *part, int nseg, int64_t n, double *out);

/* One batch as the model sees it. */
typedef struct {
  int64_t n;           /* samples on this rank (may be 0) */
  int nseg;            /* segments (>= 1 when n > 0) */
  const int64_t *seg;  /* [nseg + 1] sample offsets, seg[0] = 0, seg[nseg] = n; NULL = one */
  const int64_t *id;   /* [n] global sample ids (dropout mask streams); NULL = 0..n-1 */
  uint64_t seed, step; /* dropout draws are f(seed, step, id, layer, element) */
  int train;           /* 1: batch statistics, dropout; 0: running statistics, identity */
  sm_nn_reduce_fn reduce;
  void *reduce_ud;
  const float *const *inputs; /* [model inputs] each [n][c][t]: the named inputs (NULL if none) */
} sm_nn_batch;

/* A named model input beside the waveform (e.g. catalog magnitude and log distance, or a
 * diffusion time step), read by `concat from=NAME` or `embed D from=NAME`. */
typedef struct {
  char name[32];
  sm_shape shape; /* per sample */
} sm_model_input;

typedef struct sm_model sm_model;

/* Build a model for per-sample input shape `in` from a description: layers separated by commas
 * or newlines, each "kind [out] [key=value ...]", e.g.
 *   "conv 16 k=7, relu, maxpool 4, conv 32 k=7, relu, gap, dense 2"
 * Kinds: dense N | conv N k= stride= pad= dil= | convt N k= stride= pad= | maxpool K stride= |
 * avgpool K stride= | gap | upsample F | relu | leaky alpha= | gelu | silu | tanh | sigmoid |
 * batchnorm eps= momentum= | layernorm eps= | groupnorm G eps= | dropout P | concat from=NAME |
 * gru H last= | lstm H last= | embed D from=;
 * any layer takes name=NAME. Shapes are inferred; an inconsistency is SM_ERR_CONFIG naming the
 * layer ("layer 3 (maxpool 4): input has 2 time samples, fewer than k = 4"). Parameters are
 * initialised by sm_model_init. Local. */
sm_status sm_model_parse(sm_ctx *ctx, const char *desc, sm_shape in, sm_model **out);
/* The same with named inputs [n_inputs] (copied): `concat from=NAME` appends input NAME's channels
 * (its time length must match), `embed D from=NAME` embeds it (a [1][1] scalar); a layer named
 * like an input, or an input no layer reads, is SM_ERR_CONFIG. Local. */
sm_status sm_model_parse_inputs(sm_ctx *ctx, const char *desc, sm_shape in, const sm_model_input *inputs, int n_inputs,
                                sm_model **out);
void sm_model_destroy(sm_model **m);

/* Deterministic initialisation from the counter-based generator: weights He-normal
 * (std sqrt(2/fan_in), for ReLU nets) or Xavier-uniform (bound sqrt(6/(fan_in+fan_out))),
 * biases 0, norm scales 1 and shifts 0, running var 1. `scheme` is "he" or "xavier". Local. */
sm_status sm_model_init(sm_ctx *ctx, sm_model *m, const char *scheme, uint64_t seed);

/* Accessors (borrowed). Local. */
int sm_model_layer_count(const sm_model *m);
const sm_layer *sm_model_layer(const sm_model *m, int i);
sm_shape sm_model_out_shape(const sm_model *m);
int64_t sm_model_param_count(const sm_model *m);
float *sm_model_params(sm_model *m); /* [n_param] */
int64_t sm_model_buffer_count(const sm_model *m);
float *sm_model_buffers(sm_model *m); /* [n_buf] */
/* Gradient slab of segment g (after sm_model_backward): [n_param]. */
float *sm_model_grads(sm_model *m, int g);
/* Named inputs, and dLoss/dInput of input j after sm_model_backward: [n][c][t] (borrowed). */
int sm_model_input_count(const sm_model *m);
const sm_model_input *sm_model_input_get(const sm_model *m, int j);
const float *sm_model_input_grad(const sm_model *m, int j);
/* One line per layer: name, kind, output shape, parameters. Local. */
void sm_model_summary(const sm_model *m, char *out, size_t out_size);

/* Reserve workspace for batches of up to `nmax` samples and `segmax` segments. Local. */
sm_status sm_model_reserve(sm_ctx *ctx, sm_model *m, int64_t nmax, int segmax);

/* Forward pass of a batch x [b->n][in.c][in.t] (and b->inputs when the model has named inputs); returns the output
 * [n][out.c][out.t] (borrowed until the next forward). Collective when b->train and the model has batch norm and
 * b->reduce is collective; local otherwise. */
sm_status sm_model_forward(sm_ctx *ctx, sm_model *m, const sm_nn_batch *b, const float *x, const float **y);

/* Called during backward after each layer (in reverse order; n = 0 for a layer without
 * parameters): the gradients [off, off + n) and everything after them in the slab are final, so
 * the caller can start reducing them, or progress reductions in flight, while the rest is
 * computed. */
typedef void (*sm_nn_grad_ready_fn)(void *ud, int64_t off, int64_t n);

/* Backward pass of the last forward: dy [n][out.c][out.t] is dLoss/dOutput; parameter gradients
 * are *overwritten* in the slabs of each segment; dx (may be NULL) receives dLoss/dInput. Same
 * collectivity as the forward. */
sm_status sm_model_backward(sm_ctx *ctx, sm_model *m, const sm_nn_batch *b, const float *dy, float *dx,
                            sm_nn_grad_ready_fn ready, void *ready_ud);

/* ---- losses: value is the sum over samples of the per-sample loss times `scale`; grad (may be
 * NULL) gets d(value)/d(pred) (overwritten). Local. ---- */
typedef enum { SM_LOSS_MSE, SM_LOSS_L1, SM_LOSS_HUBER, SM_LOSS_CE, SM_LOSS_BCE } sm_loss_kind;
typedef struct {
  sm_loss_kind kind;
  double delta;         /* Huber threshold (torch default 1) */
  const double *weight; /* CE class weights [classes] or NULL */
} sm_loss;
/* Parse "mse|l1|huber|ce|bce"; SM_ERR_CONFIG otherwise. Local. */
sm_status sm_loss_parse(sm_ctx *ctx, const char *name, sm_loss_kind *kind);
/* pred [n][k]; target: class index per sample for CE ([n]), else [n][k] values (BCE: 0/1).
 * Regression losses average over the k outputs of a sample (torch 'mean' over all elements when
 * scale = 1/n). CE with weights: per-sample weight w[y]; with scale = 1/sum(w[y]) this is torch's
 * weighted mean. Returns the scaled loss sum (double). */
double sm_loss_eval(const sm_loss *L, int64_t n, int64_t k, const float *pred, const float *target, double scale,
                    float *grad);

/* ---- optimisers (torch semantics) ---- */
typedef enum { SM_OPT_SGD, SM_OPT_ADAM, SM_OPT_ADAMW } sm_opt_kind;
typedef struct {
  sm_opt_kind kind;
  double lr, momentum, dampening, weight_decay, beta1, beta2, eps;
  int nesterov;
} sm_optim_conf;
typedef struct {
  sm_optim_conf c;
  int64_t n;    /* parameters */
  int64_t t;    /* steps taken */
  float *state; /* [2][n]: SGD momentum buffer | Adam m, v */
} sm_optim;
sm_status sm_optim_init(sm_ctx *ctx, sm_optim *o, const sm_optim_conf *c, int64_t n);
void sm_optim_fini(sm_optim *o);
/* One update of p [n] from g [n] with learning rate lr (the schedule's value). Local. */
void sm_optim_step(sm_optim *o, float *p, const float *g, double lr);
/* torch.nn.utils.clip_grad_norm_: scale g so its 2-norm is at most max_norm; returns the norm
 * before clipping. Local. */
double sm_clip_grad_norm(float *g, int64_t n, double max_norm);

/* Learning-rate schedule: lr at optimiser step `step` (0-based) of `total`:
 * base * warm-up factor min(1, (step+1)/warmup) * (constant | gamma^floor(step/step_size) |
 * cosine: eta_min/base + (1-eta_min/base)(1+cos(pi*step/total))/2). Local. */
typedef enum { SM_SCHED_CONSTANT, SM_SCHED_STEP, SM_SCHED_COSINE } sm_sched_kind;
typedef struct {
  sm_sched_kind kind;
  double base, gamma, eta_min;
  int64_t step_size, warmup, total;
} sm_schedule;
double sm_schedule_lr(const sm_schedule *s, int64_t step);

#ifdef __cplusplus
}
#endif
#endif
