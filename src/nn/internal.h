/* Private structures of the nn subsystem: the model (layers + slabs + workspace) and the
 * per-kind forward/backward kernels that model.c dispatches to. Every kernel works on one layer
 * and a batch [n][c][t]; backward kernels accumulate (+=) into dx and overwrite the parameter
 * gradients of each segment. */
#ifndef SISMA_NN_INTERNAL_H
#define SISMA_NN_INTERNAL_H

#include "sisma/catalog.h"
#include "sisma/nn.h"

struct sm_model {
  int n;               /* layers */
  sm_layer *L;         /* [n] */
  sm_shape in;         /* per-sample input shape */
  int n_in;            /* named inputs */
  sm_model_input *inp; /* [n_in] */
  const float **xin;   /* [n_in] the batch's named inputs (borrowed during a forward) */
  float **din;         /* [n_in] their gradients [nmax][size] */
  int64_t n_param, n_buf;
  float *param; /* [n_param] trainable parameters, layer by layer */
  float *buf;   /* [n_buf] running statistics */
  int segmax;
  float *grad;       /* [segmax][n_param] */
  int64_t nmax;      /* samples the workspace holds */
  const float **act; /* [n+1] act[0] = input (borrowed), act[i+1] = output of layer i */
  float **dact;      /* [n+1] gradients of the same */
  float **aux;       /* [n] per-sample saved state [nmax][n_aux] */
  float **stat;      /* [n] per-batch saved state [n_stat] */
  float *col;        /* im2col scratch, ncol floats */
  int64_t ncol;
  double *red; /* reduction scratch [segmax + 1][nred] */
  int64_t nred;
  int64_t last_n; /* samples of the last forward */
};

static inline int64_t sm__size(sm_shape s) { return s.c * s.t; }

/* Sum of v[0..n) with eight interleaved partial sums in a fixed order: vectorizes without
 * -ffast-math (a single float accumulator is a serial chain of dependent additions). */
static inline float sm__sum(const float *restrict v, int64_t n) {
  float a[8] = {0, 0, 0, 0, 0, 0, 0, 0}, r = 0.f;
  int64_t t = 0;
  for (; t + 8 <= n; t += 8)
    for (int j = 0; j < 8; j++)
      a[j] += v[t + j];
  for (; t < n; t++)
    r += v[t];
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])) + r;
}

/* Sum segment partials through the batch's reducer (or locally in order). */
sm_status sm__nn_reduce(sm_ctx *ctx, sm_model *m, const sm_nn_batch *b, int64_t n, double *out);

/* C[M][N] = C0 + sum_k a[i*ars + k*acs] b[k*bks + j*bjs] (gemm.c). */
typedef enum {
  SM_GEMM_ZERO,
  SM_GEMM_ACC,
  SM_GEMM_BIAS_COL,
  SM_GEMM_BIAS_ROW
} sm__gemm_c0; /* C0: 0, C, bias[j], bias[i] */
void sm__gemm(int64_t M, int64_t N, int64_t K, const float *a, int64_t ars, int64_t acs, const float *b, int64_t bks,
              int64_t bjs, float *c, int64_t ldc, const float *bias, sm__gemm_c0 c0, float *relu, const float *gate);

/* kernels (layers.c, conv.c, norm.c) */
/* relu (may be NULL): also write max(y, 0) there, for a ReLU layer that follows */
void sm__dense_fwd(const sm_layer *l, const float *w, const sm_nn_batch *b, const float *x, float *y, float *relu);
void sm__dense_bwd(const sm_layer *l, const float *w, float *grad, int64_t gstride, const sm_nn_batch *b,
                   const float *x, const float *dy, float *dx, int acc, const float *gate);
/* acc: dx +=, else dx =; gate (may be NULL, with acc 0): dx = gate > 0 ? dx : 0, a ReLU's backward */
void sm__conv_fwd(const sm_layer *l, const float *w, int64_t n, const float *x, float *y, float *col, float *relu);
void sm__conv_bwd(const sm_layer *l, const float *w, float *grad, int64_t gstride, const sm_nn_batch *b, const float *x,
                  const float *dy, float *dx, float *col);
void sm__convt_fwd(const sm_layer *l, const float *w, int64_t n, const float *x, float *y, float *col);
void sm__convt_bwd(const sm_layer *l, const float *w, float *grad, int64_t gstride, const sm_nn_batch *b,
                   const float *x, const float *dy, float *dx, float *col);
int64_t sm__conv_col_size(const sm_layer *l);

void sm__pool_fwd(const sm_layer *l, int64_t n, const float *x, float *y, float *aux);
void sm__pool_bwd(const sm_layer *l, int64_t n, const float *dy, float *dx, const float *aux);
void sm__act_fwd(const sm_layer *l, int64_t n, const float *restrict x, float *restrict y);
void sm__act_bwd(const sm_layer *l, int64_t n, const float *restrict x, const float *restrict y,
                 const float *restrict dy, float *restrict dx, int acc); /* acc: dx +=, else dx = */
void sm__embed_fwd(const sm_layer *l, int64_t n, const float *x, float *y);
void sm__embed_bwd(const sm_layer *l, int64_t n, const float *x, const float *dy, float *dx);
void sm__dropout_fwd(const sm_layer *l, int li, const sm_nn_batch *b, const float *x, float *y, float *aux);
void sm__dropout_bwd(const sm_layer *l, int64_t n, const float *restrict dy, float *restrict dx,
                     const float *restrict aux);

int64_t sm__rnn_gates(const sm_layer *l);
int64_t sm__rnn_state(const sm_layer *l);
int64_t sm__rnn_scratch(const sm_layer *l, int64_t n);
void sm__rnn_fwd(const sm_layer *l, const float *w, const sm_nn_batch *b, const float *x, float *y, float *aux,
                 float *scratch);
void sm__rnn_bwd(const sm_layer *l, const float *w, float *grad, int64_t gstride, const sm_nn_batch *b, const float *x,
                 const float *dy, float *dx, const float *aux, float *scratch);

sm_status sm__norm_fwd(sm_ctx *ctx, sm_model *m, int li, const sm_nn_batch *b, const float *x, float *y);
sm_status sm__norm_bwd(sm_ctx *ctx, sm_model *m, int li, const sm_nn_batch *b, const float *dy, float *dx);

#endif

/* ---- data-parallel reductions (dist.c) ---- */
/* Ordered left fold of per-segment partials [nseg][n] over all ranks (deterministic). Collective. */
sm_status sm__nn_fold_f32(sm_ctx *ctx, const float *part, int nseg, int64_t n, float *out);
sm_status sm__nn_fold_f64(sm_ctx *ctx, const double *part, int nseg, int64_t n, double *out);
/* sm_nn_reduce_fn implementations; ud = the sm_ctx. */
sm_status sm__nn_reduce_ordered(void *ud, const double *part, int nseg, int64_t n, double *out);
sm_status sm__nn_reduce_allreduce(void *ud, const double *part, int nseg, int64_t n, double *out);

#define SM_NN_MAX_BUCKETS 64
typedef struct {
  sm_ctx *ctx;
  float *grad;
  int64_t n, bucket, ready, sent; /* [ready, n) final, [sent, n) reductions started */
  MPI_Request req[SM_NN_MAX_BUCKETS];
  int nreq;
  sm_status status;
  double t_wait; /* seconds waiting for reductions after the backward pass */
} sm__nn_buckets;
void sm__nn_buckets_begin(sm__nn_buckets *bk, sm_ctx *ctx, float *grad, int64_t n, int64_t bucket);
void sm__nn_buckets_ready(void *ud, int64_t off, int64_t n); /* an sm_nn_grad_ready_fn */
sm_status sm__nn_buckets_end(sm__nn_buckets *bk);

/* ---- scalar model inputs (inputs.c) ---- */
#define SM_NN_MAX_INPUTS 8
#define SM_NN_MAX_FEATURES 32
#define SM_NN_MAX_VALUES 64
typedef struct {
  char column[SM_COLUMN_NAME_MAX]; /* catalog column; "" = log10_scale (one value per component) */
  int log10;                       /* the column's log10 */
  int input, col;                  /* group; column index into sm__nn_data.feat */
  int64_t at, width;               /* position and values within the group */
} sm__nn_feature;
typedef struct {
  int n, nfeat, ncol; /* groups (named model inputs), features, catalog columns among them */
  char name[SM_NN_MAX_INPUTS][32];
  int64_t width[SM_NN_MAX_INPUTS], base[SM_NN_MAX_INPUTS]; /* values per trace of each group, offsets */
  int64_t total;                                           /* values per trace, group after group */
  sm__nn_feature feat[SM_NN_MAX_FEATURES];
  double mean[SM_NN_MAX_VALUES], sd[SM_NN_MAX_VALUES]; /* standardisation, fitted on the train split */
  int normalize;                                       /* SM_NN_NORM_*: what log10_scale measures */
  int raw;                                             /* fitting: unstandardised, missing as NaN */
} sm__nn_inputs;

/* ---- training data (data.c) ---- */
typedef struct {
  const char *target;              /* column ("" = none) */
  int classify;                    /* 1: class indices, 0: regression values */
  const char *classes;             /* comma list for text targets */
  const char *split_column;        /* "" = every trace is train */
  int64_t window, p_offset, shift; /* samples; window 0 = whole trace */
  const char *noise_select;        /* "COLUMN=VALUE": noise traces for augmentation ("" = none) */
  const sm__nn_inputs *inputs;     /* scalar inputs to read (NULL or n = 0: none), borrowed */
} sm__nn_data_conf;

typedef struct {
  int64_t first, n; /* this rank's shard of the catalog */
  int64_t n_total, chunk;
  int64_t C, T, W, S, L;       /* components, trace samples, window, shift margin, L = W + 2S */
  float *x;                    /* [n][C][L] */
  float *target;               /* [n] class index or value */
  signed char *split;          /* [n] 0 train, 1 dev, 2 test, -1 other (noise traces too) */
  signed char *noise;          /* [n] 1: a noise trace (augmentation source, never a sample) */
  int64_t n_pool;              /* noise windows of the whole catalog, in trace order */
  float *pool;                 /* [n_pool][C][W], the same on every rank */
  const sm__nn_inputs *inputs; /* borrowed from the conf (NULL: none) */
  double *feat;                /* [n][inputs->ncol] catalog values of the scalar inputs (log10 applied) */
} sm__nn_data;

enum { SM_NN_NORM_NONE, SM_NN_NORM_MAX, SM_NN_NORM_STD };
typedef struct {
  int on;                  /* augmentation enabled (training batches only) */
  double amplitude;        /* log-uniform scale factor in [e^-a, e^a] */
  double noise;            /* additive white noise, relative to the sample std */
  double channel_dropout;  /* probability of zeroing each component */
  double polarity;         /* probability of flipping the sign */
  double snr_min, snr_max; /* noise-trace augmentation: SNR U(min, max) dB against the sample */
  int normalize;           /* SM_NN_NORM_* per sample, after augmentation */
} sm__nn_aug;

int sm__nn_split_code(const char *v);
int sm__nn_class_count(const char *classes);
/* Load this rank's shard (collective; errors agreed). budget: reader bytes, 0 = unlimited. */
sm_status sm__nn_data_load(sm_ctx *ctx, sm_catalog *cat, const sm__nn_data_conf *c, int64_t budget, sm__nn_data *d);
void sm__nn_data_free(sm__nn_data *d);
/* Assemble samples rows[0..nb) into x [nb][C][W], target [nb] and, with scalar inputs, xin[g]
 * [nb][width g] (standardised). Local. */
void sm__nn_data_batch(const sm__nn_data *d, const sm__nn_aug *a, const int64_t *rows, int64_t nb, uint64_t seed,
                       uint64_t epoch, int train, float *x, float *target, float *const *xin);

/* Parse the `inputs` spec for C components (errors name the group or feature); mean 0, sd 1. Local. */
sm_status sm__nn_inputs_parse(sm_ctx *ctx, const char *spec, int64_t C, int normalize, sm__nn_inputs *in);
/* The groups as model inputs: out [in->n]. Local. */
void sm__nn_inputs_model(const sm__nn_inputs *in, sm_model_input *out);
/* 1 if some feature is log10_scale (samples must report their component scales). Local. */
int sm__nn_inputs_scales(const sm__nn_inputs *in);
/* Read the catalog columns of d->inputs into d->feat; a missing value or a log10 of a value <= 0 is
 * an error naming the trace. Collective (errors agreed). */
sm_status sm__nn_inputs_read(sm_ctx *ctx, sm_catalog *cat, sm__nn_data *d);
/* Sample i's standardised values into xin[g][i][...]: col [ncol] its catalog values, scale [C] its
 * component scales (NULL without log10_scale). Local. */
void sm__nn_inputs_sample(const sm__nn_inputs *in, const double *col, const double *scale, float *const *xin,
                          int64_t i);
/* Fit mean and sd of every value on the train split (unaugmented windows). Collective. */
sm_status sm__nn_inputs_fit(sm_ctx *ctx, const sm__nn_data *d, const sm__nn_aug *a, sm__nn_inputs *in);

/* ---- serial HDF5 files of rank 0: models and checkpoints (h5io.c) ---- */
typedef struct {
  int64_t f; /* hid_t */
  char path[1024], tmp[1100];
} sm__nn_h5;
sm_status sm__nn_h5_create(sm_ctx *ctx, const char *path, sm__nn_h5 *h); /* writes <path>.tmp-<pid> */
sm_status sm__nn_h5_open(sm_ctx *ctx, const char *path, sm__nn_h5 *h);   /* read-only */
sm_status sm__nn_h5_close(sm_ctx *ctx, sm__nn_h5 *h, int commit);        /* commit: rename into place */
sm_status sm__nn_h5_write(sm_ctx *ctx, sm__nn_h5 *h, const char *name, char type, int64_t rows, int64_t cols,
                          const void *data);
sm_status sm__nn_h5_read(sm_ctx *ctx, sm__nn_h5 *h, const char *name, char type, int64_t n, void *data);
int64_t sm__nn_h5_count(sm__nn_h5 *h, const char *name); /* -1 if absent */
int sm__nn_h5_has_attr(sm__nn_h5 *h, const char *name);
sm_status sm__nn_h5_attr_str(sm_ctx *ctx, sm__nn_h5 *h, const char *name, const char *value);
sm_status sm__nn_h5_attr_f64(sm_ctx *ctx, sm__nn_h5 *h, const char *name, double value);
sm_status sm__nn_h5_get_str(sm_ctx *ctx, sm__nn_h5 *h, const char *name, char *out, size_t n);
sm_status sm__nn_h5_get_f64(sm_ctx *ctx, sm__nn_h5 *h, const char *name, double *v);
