/* Private structures of the nn subsystem: the model (layers + slabs + workspace) and the
 * per-kind forward/backward kernels that model.c dispatches to. Every kernel works on one layer
 * and a batch [n][c][t]; backward kernels accumulate (+=) into dx and overwrite the parameter
 * gradients of each segment. */
#ifndef SISMA_NN_INTERNAL_H
#define SISMA_NN_INTERNAL_H

#include "sisma/nn.h"

struct sm_model {
  int n;                /* layers */
  sm_layer *L;          /* [n] */
  sm_shape in;          /* per-sample input shape */
  int64_t n_param, n_buf;
  float *param;         /* [n_param] trainable parameters, layer by layer */
  float *buf;           /* [n_buf] running statistics */
  int segmax;
  float *grad;          /* [segmax][n_param] */
  int64_t nmax;         /* samples the workspace holds */
  const float **act;    /* [n+1] act[0] = input (borrowed), act[i+1] = output of layer i */
  float **dact;         /* [n+1] gradients of the same */
  float **aux;          /* [n] per-sample saved state [nmax][n_aux] */
  float **stat;         /* [n] per-batch saved state [n_stat] */
  float *col;           /* im2col scratch, ncol floats */
  int64_t ncol;
  double *red;          /* reduction scratch [segmax + 1][nred] */
  int64_t nred;
  int64_t last_n;       /* samples of the last forward */
};

static inline int64_t sm__size(sm_shape s) { return s.c * s.t; }

/* Sum segment partials through the batch's reducer (or locally in order). */
sm_status sm__nn_reduce(sm_ctx *ctx, sm_model *m, const sm_nn_batch *b, int64_t n, double *out);

/* kernels (layers.c, conv.c, norm.c) */
void sm__dense_fwd(const sm_layer *l, const float *w, int64_t n, const float *x, float *y);
void sm__dense_bwd(const sm_layer *l, const float *w, float *grad, int64_t gstride, const sm_nn_batch *b,
                   const float *x, const float *dy, float *dx);
void sm__conv_fwd(const sm_layer *l, const float *w, int64_t n, const float *x, float *y, float *col);
void sm__conv_bwd(const sm_layer *l, const float *w, float *grad, int64_t gstride, const sm_nn_batch *b,
                  const float *x, const float *dy, float *dx, float *col);
void sm__convt_fwd(const sm_layer *l, const float *w, int64_t n, const float *x, float *y, float *col);
void sm__convt_bwd(const sm_layer *l, const float *w, float *grad, int64_t gstride, const sm_nn_batch *b,
                   const float *x, const float *dy, float *dx, float *col);
int64_t sm__conv_col_size(const sm_layer *l);

void sm__pool_fwd(const sm_layer *l, int64_t n, const float *x, float *y, float *aux);
void sm__pool_bwd(const sm_layer *l, int64_t n, const float *dy, float *dx, const float *aux);
void sm__act_fwd(const sm_layer *l, int64_t n, const float *x, float *y);
void sm__act_bwd(const sm_layer *l, int64_t n, const float *x, const float *y, const float *dy, float *dx);
void sm__dropout_fwd(const sm_layer *l, int li, const sm_nn_batch *b, const float *x, float *y, float *aux);
void sm__dropout_bwd(const sm_layer *l, int64_t n, const float *dy, float *dx, const float *aux);

sm_status sm__norm_fwd(sm_ctx *ctx, sm_model *m, int li, const sm_nn_batch *b, const float *x, float *y);
sm_status sm__norm_bwd(sm_ctx *ctx, sm_model *m, int li, const sm_nn_batch *b, const float *dy, float *dx);

#endif
