/* Private structures of the nn subsystem: the model (layers + slabs + workspace) and the
 * per-kind forward/backward kernels that model.c dispatches to. Every kernel works on one layer
 * and a batch [n][c][t]; backward kernels accumulate (+=) into dx and overwrite the parameter
 * gradients of each segment. */
#ifndef SISMA_NN_INTERNAL_H
#define SISMA_NN_INTERNAL_H

#include "sisma/catalog.h"
#include "sisma/nn.h"

struct sm_model {
  int n;       /* layers */
  sm_layer *L; /* [n] */
  sm_shape in; /* per-sample input shape */
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

/* ---- training data (data.c) ---- */
typedef struct {
  const char *target;              /* column ("" = none) */
  int classify;                    /* 1: class indices, 0: regression values */
  const char *classes;             /* comma list for text targets */
  const char *split_column;        /* "" = every trace is train */
  int64_t window, p_offset, shift; /* samples; window 0 = whole trace */
  const char *noise_select;        /* "COLUMN=VALUE": noise traces for augmentation ("" = none) */
} sm__nn_data_conf;

typedef struct {
  int64_t first, n; /* this rank's shard of the catalog */
  int64_t n_total, chunk;
  int64_t C, T, W, S, L; /* components, trace samples, window, shift margin, L = W + 2S */
  float *x;              /* [n][C][L] */
  float *target;         /* [n] class index or value */
  signed char *split;    /* [n] 0 train, 1 dev, 2 test, -1 other (noise traces too) */
  signed char *noise;    /* [n] 1: a noise trace (augmentation source, never a sample) */
  int64_t n_pool;        /* noise windows of the whole catalog, in trace order */
  float *pool;           /* [n_pool][C][W], the same on every rank */
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
/* Assemble samples rows[0..nb) into x [nb][C][W] and target [nb]. Local. */
void sm__nn_data_batch(const sm__nn_data *d, const sm__nn_aug *a, const int64_t *rows, int64_t nb, uint64_t seed,
                       uint64_t epoch, int train, float *x, float *target);

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
sm_status sm__nn_h5_attr_str(sm_ctx *ctx, sm__nn_h5 *h, const char *name, const char *value);
sm_status sm__nn_h5_attr_f64(sm_ctx *ctx, sm__nn_h5 *h, const char *name, double value);
sm_status sm__nn_h5_get_str(sm_ctx *ctx, sm__nn_h5 *h, const char *name, char *out, size_t n);
sm_status sm__nn_h5_get_f64(sm_ctx *ctx, sm__nn_h5 *h, const char *name, double *v);
