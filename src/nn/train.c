/* The `train` stage: data-parallel training of a model described in the job file on the
 * traces of a catalog's train split, with evaluation on the dev split after every epoch,
 * early stopping, learning curves, progress lines, checkpoints and --resume.
 *
 * Every rank holds the whole model and its shard of the data. Global batches come from a seeded
 * permutation of the train traces (sm_batches over train ordinals), so the batch sequence does
 * not depend on the rank count; each rank runs forward and backward on its members of a batch.
 *   fast mode:          one gradient segment per rank, summed by bucketed MPI_Iallreduce started
 *                       during the backward pass; batch-norm statistics by MPI_Allreduce.
 *   deterministic mode: one segment per catalog chunk present in the batch (chunks never straddle
 *                       ranks), partial gradients and statistics summed by the ordered fold
 *                       (dist.c): weights after N steps are bit-identical at any rank count.
 * The whole training state (weights, running statistics, optimiser state, position, epoch
 * sums, curves, best weights) is in the checkpoint, so a resumed run is the same run.
 * Start reading at train_run. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "sisma/job.h"

static const sm_key train_keys[] = {
    {"catalog", SM_KEY_PATH, NULL, 0, -1, NULL, "input catalog"},
    {"output", SM_KEY_PATH, NULL, 0, -1, NULL, "trained model file (HDF5: weights, learning curves, configuration)"},
    {"model", SM_KEY_STR, NULL, 0, -1, NULL,
     "layers, e.g. [conv 16 k=7, relu, maxpool 4, gap, dense 2] (docs/nn.md lists kinds and keys)"},
    {"inputs", SM_KEY_STR, "", 0, -1, NULL,
     "scalar inputs per trace, NAME=FEATURE ... (FEATURE: COLUMN, log10(COLUMN) or log10_scale), read by "
     "`concat from=NAME` or `embed D from=NAME`; standardised on the train split"},
    {"task", SM_KEY_ENUM, "classify", 0, -1, "classify|regress", "classification (class index) or regression"},
    {"target", SM_KEY_STR, "label", 0, -1, NULL, "target column"},
    {"classes", SM_KEY_STR, "", 0, -1, NULL,
     "class names of a text target, in index order (e.g. aftershock,foreshock)"},
    {"class_weights", SM_KEY_STR, "", 0, -1, NULL, "cross-entropy class weights, one per class (torch weighted mean)"},
    {"split_column", SM_KEY_STR, "split", 0, -1, NULL, "train/dev/test column; empty: every trace trains"},
    {"window", SM_KEY_INT, "0", 0, 1e8, NULL, "samples per component around P (0: the whole trace)"},
    {"p_offset", SM_KEY_INT, "100", 0, 1e8, NULL, "window starts this many samples before the P arrival"},
    {"normalize", SM_KEY_ENUM, "max", 0, -1, "none|max|std", "per-sample normalisation after augmentation"},
    {"loss", SM_KEY_ENUM, "auto", 0, -1, "auto|ce|bce|mse|l1|huber", "auto: ce to classify, mse to regress"},
    {"huber_delta", SM_KEY_FLOAT, "1.0", 1e-12, 1e12, NULL, "Huber loss threshold"},
    {"optimizer", SM_KEY_ENUM, "adam", 0, -1, "sgd|adam|adamw", "update rule (torch semantics)"},
    {"lr", SM_KEY_FLOAT, "1e-3", 0, 1e3, NULL, "learning rate"},
    {"momentum", SM_KEY_FLOAT, "0", 0, 1, NULL, "SGD momentum"},
    {"nesterov", SM_KEY_BOOL, "false", 0, -1, NULL, "SGD Nesterov momentum"},
    {"weight_decay", SM_KEY_FLOAT, "0", 0, 1e3, NULL, "L2 (sgd, adam) or decoupled (adamw) weight decay"},
    {"beta1", SM_KEY_FLOAT, "0.9", 0, 1, NULL, "Adam beta1"},
    {"beta2", SM_KEY_FLOAT, "0.999", 0, 1, NULL, "Adam beta2"},
    {"eps", SM_KEY_FLOAT, "1e-8", 0, 1, NULL, "Adam epsilon"},
    {"clip", SM_KEY_FLOAT, "0", 0, 1e12, NULL, "clip the gradient 2-norm to this (0: off)"},
    {"schedule", SM_KEY_ENUM, "constant", 0, -1, "constant|step|cosine", "learning-rate schedule over steps"},
    {"step_size", SM_KEY_INT, "1000", 1, 1e15, NULL, "step schedule: multiply by gamma every step_size steps"},
    {"gamma", SM_KEY_FLOAT, "0.1", 0, 1, NULL, "step schedule factor"},
    {"eta_min", SM_KEY_FLOAT, "0", 0, 1e3, NULL, "cosine schedule floor"},
    {"warmup", SM_KEY_INT, "0", 0, 1e15, NULL, "linear warm-up steps"},
    {"epochs", SM_KEY_INT, "10", 1, 1e9, NULL, "passes over the train split"},
    {"batch_size", SM_KEY_INT, "64", 1, 1e7, NULL, "global batch size (independent of the rank count)"},
    {"seed", SM_KEY_INT, "1", 0, 9e15, NULL, "initialisation, shuffling, dropout and augmentation seed"},
    {"init", SM_KEY_ENUM, "he", 0, -1, "he|xavier", "weight initialisation"},
    {"patience", SM_KEY_INT, "0", 0, 1e9, NULL, "early stopping: epochs without a better dev loss (0: off)"},
    {"deterministic", SM_KEY_BOOL, "true", 0, -1, NULL,
     "bit-identical weights at any rank count (ordered fold); false: bucketed allreduce, faster"},
    {"bucket_mb", SM_KEY_FLOAT, "1", 0.001, 1e4, NULL, "fast mode: gradient bucket size, MiB"},
    {"augment", SM_KEY_BOOL, "false", 0, -1, NULL, "augment training samples (the aug_* keys)"},
    {"aug_shift", SM_KEY_INT, "0", 0, 1e7, NULL, "random time shift up to +-this many samples"},
    {"aug_amplitude", SM_KEY_FLOAT, "0", 0, 10, NULL, "amplitude scale e^U(-a, a)"},
    {"aug_noise", SM_KEY_FLOAT, "0", 0, 100, NULL, "additive white noise, std relative to the sample's"},
    {"aug_channel_dropout", SM_KEY_FLOAT, "0", 0, 1, NULL, "probability of zeroing each component"},
    {"aug_polarity", SM_KEY_FLOAT, "0", 0, 1, NULL, "probability of flipping the sign"},
    {"aug_noise_traces", SM_KEY_STR, "", 0, -1, NULL,
     "COLUMN=VALUE (e.g. trace_category=noise): add a random noise trace of the catalog to each sample"},
    {"aug_noise_snr_min", SM_KEY_FLOAT, "0", -100, 100, NULL, "noise-trace augmentation: lowest SNR, dB"},
    {"aug_noise_snr_max", SM_KEY_FLOAT, "20", -100, 100, NULL, "noise-trace augmentation: highest SNR, dB"},
    {"checkpoint", SM_KEY_PATH, "", 0, -1, NULL, "checkpoint file (default: <output>.ckpt)"},
    {"checkpoint_every", SM_KEY_INT, "0", 0, 1e15, NULL, "steps between checkpoints (0: at the end and when stopped)"},
    {"max_steps", SM_KEY_INT, "0", 0, 1e15, NULL, "stop after this many steps in total (0: no limit); resume later"},
    {"log_every", SM_KEY_INT, "50", 1, 1e15, NULL, "steps between progress lines"},
    SM_KEYS_END,
};

#define NCURVE 5 /* epoch, train loss, train metric, dev loss, dev metric */

typedef struct {
  sm_ctx *ctx;
  const sm_config *cfg;
  sm__nn_data data;
  sm__nn_aug aug;
  sm__nn_inputs inputs;         /* scalar model inputs and their standardisation */
  float *xin[SM_NN_MAX_INPUTS]; /* [B][width g] one batch's scalar inputs */
  sm_model *model;
  sm_optim opt;
  sm_schedule sched;
  sm_loss loss;
  double class_w[64];
  int classify, det, nk;                         /* nk: model outputs per sample */
  int64_t B, epochs, n_train, train_off, *trows; /* train ordinals of this rank: [train_off, +n_local) */
  int64_t n_train_local, n_dev;
  uint64_t seed;
  double clip;
  /* scratch */
  float *x, *t, *dy, *gsum;
  int64_t *rows, *seg;
  double *part; /* [B + 1][3] per-segment loss, correct, count */
  /* state (checkpointed) */
  int64_t epoch, batch, step;
  double ep_sum[3]; /* current epoch: loss sum, correct, count */
  double best_dev;
  int64_t best_epoch, bad_epochs, n_curve;
  double *curve; /* [epochs][NCURVE] */
  float *best;   /* [n_param + n_buf] weights and running statistics at the best dev loss */
  int stopped;   /* ended early: 1 by max_steps, 2 by a signal */
  double t_allreduce, t_step;
} trainer;

/* ---- segments: local rows sorted, one segment per catalog chunk (deterministic mode) ---- */
static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static int make_segments(trainer *tr, int64_t n) {
  if (!tr->det) {
    tr->seg[0] = 0, tr->seg[1] = n;
    return n ? 1 : 0;
  }
  qsort(tr->rows, (size_t)n, sizeof *tr->rows, cmp_i64);
  int ns = 0;
  for (int64_t i = 0; i < n; i++)
    if (!i || (tr->data.first + tr->rows[i]) / tr->data.chunk != (tr->data.first + tr->rows[i - 1]) / tr->data.chunk)
      tr->seg[ns++] = i;
  tr->seg[ns] = n;
  return ns;
}

/* Loss, correct predictions and count per segment into tr->part; dy gets the scaled gradient. */
static void eval_loss(trainer *tr, const float *y, int nseg, double scale, float *dy) {
  for (int g = 0; g < nseg; g++) {
    int64_t s0 = tr->seg[g], ns = tr->seg[g + 1] - s0;
    double *p = tr->part + 3 * g;
    p[0] =
        sm_loss_eval(&tr->loss, ns, tr->nk, y + s0 * tr->nk, tr->t + s0, scale, dy ? dy + s0 * tr->nk : NULL) / scale;
    p[1] = 0, p[2] = (double)ns;
    for (int64_t s = s0; s < s0 + ns; s++) {
      const float *z = y + s * tr->nk;
      if (!tr->classify) {
        p[1] += fabs(z[0] - tr->t[s]); /* regression metric: mean absolute error */
        continue;
      }
      int64_t arg = 0;
      for (int64_t j = 1; j < tr->nk; j++)
        if (z[j] > z[arg]) arg = j;
      if (tr->nk == 1) arg = z[0] > 0;
      p[1] += arg == (int64_t)tr->t[s];
    }
  }
}

/* Sum [nseg][k] doubles over all ranks: ordered fold (deterministic) or allreduce. */
static sm_status reduce_part(trainer *tr, int nseg, int64_t k, double *out) {
  if (tr->det) return sm__nn_fold_f64(tr->ctx, tr->part, nseg, k, out);
  return sm__nn_reduce_allreduce(tr->ctx, tr->part, nseg, k, out);
}

static sm_status train_step(trainer *tr, sm_batches *bat) {
  sm_ctx *ctx = tr->ctx;
  const int64_t *idx = NULL;
  int64_t nl = 0, ng = 0;
  double t0 = sm_wtime();
  sm_status st = sm_batches_get(bat, tr->batch, &idx, &nl, &ng);
  for (int64_t i = 0; st == SM_OK && i < nl; i++)
    tr->rows[i] = tr->trows[idx[i] - tr->train_off];
  if (st == SM_OK) st = sm_fault_point(ctx, "train_step");
  SM_TRY(ctx, sm_ctx_agree(ctx, st));
  int nseg = make_segments(tr, nl);
  sm__nn_data_batch(&tr->data, &tr->aug, tr->rows, nl, tr->seed, (uint64_t)tr->epoch, 1, tr->x, tr->t, tr->xin);
  sm_nn_batch b = {.n = nl,
                   .inputs = (const float *const *)tr->xin,
                   .nseg = nseg,
                   .seg = tr->seg,
                   .id = NULL,
                   .seed = tr->seed,
                   .step = (uint64_t)tr->step,
                   .train = 1,
                   .reduce = tr->det ? sm__nn_reduce_ordered : sm__nn_reduce_allreduce,
                   .reduce_ud = ctx};
  /* dropout masks keyed by global trace index */
  int64_t *gid = tr->rows + tr->B;
  for (int64_t i = 0; i < nl; i++)
    gid[i] = tr->data.first + tr->rows[i];
  b.id = gid;
  if (!tr->det) b.seg = NULL, b.nseg = 1;
  const float *y = NULL;
  SM_TRY(ctx, sm_model_forward(ctx, tr->model, &b, tr->x, &y));
  double scale = 1.0 / (double)ng;
  if (tr->loss.kind == SM_LOSS_CE && tr->loss.weight) { /* torch's weighted mean: / sum of weights */
    int ns = tr->det ? nseg : (nl ? 1 : 0);
    for (int g = 0; g < ns; g++) {
      tr->part[g] = 0;
      for (int64_t i = tr->det ? tr->seg[g] : 0; i < (tr->det ? tr->seg[g + 1] : nl); i++)
        tr->part[g] += tr->class_w[(int)tr->t[i]];
    }
    double sw = 0;
    SM_TRY(ctx, reduce_part(tr, ns, 1, &sw));
    scale = 1.0 / sw;
  }
  eval_loss(tr, y, nseg, scale, tr->dy);
  int64_t np = sm_model_param_count(tr->model);
  sm__nn_buckets bk;
  if (!tr->det)
    sm__nn_buckets_begin(&bk, ctx, sm_model_grads(tr->model, 0), np,
                         (int64_t)(sm_config_float(tr->cfg, "bucket_mb") * 262144));
  SM_TRY(ctx, sm_model_backward(ctx, tr->model, &b, tr->dy, NULL, tr->det ? NULL : sm__nn_buckets_ready, &bk));
  double t1 = sm_wtime();
  float *g = tr->gsum;
  if (tr->det) {
    SM_TRY(ctx, sm__nn_fold_f32(ctx, sm_model_grads(tr->model, 0), nseg, np, g));
  } else {
    SM_TRY(ctx, sm__nn_buckets_end(&bk));
    g = sm_model_grads(tr->model, 0);
  }
  double tot[3];
  SM_TRY(ctx, reduce_part(tr, tr->det ? nseg : (nl ? 1 : 0), 3, tot));
  tr->t_allreduce += sm_wtime() - t1;
  /* the totals are the same on every rank, so every rank takes this branch */
  SM_CHECK(ctx, isfinite(tot[0]), SM_ERR_NUMERIC,
           "train: the loss is not finite at step %lld (epoch %lld): lower lr, or set clip", (long long)tr->step + 1,
           (long long)tr->epoch + 1);
  for (int j = 0; j < 3; j++)
    tr->ep_sum[j] += tot[j];
  if (tr->clip > 0) sm_clip_grad_norm(g, np, tr->clip);
  sm_optim_step(&tr->opt, sm_model_params(tr->model), g, sm_schedule_lr(&tr->sched, tr->step));
  tr->step++, tr->batch++;
  tr->t_step += sm_wtime() - t0;
  return SM_OK;
}

/* Dev loss and metric: local batches never cross a chunk, so each sample's result and each
 * chunk's partial sums are the same at every rank count; chunk partials are then folded. */
static sm_status evaluate(trainer *tr, int split, double out[3]) {
  sm_ctx *ctx = tr->ctx;
  const sm__nn_data *d = &tr->data;
  int64_t nchunks = d->chunk ? (d->n + d->chunk - 1) / d->chunk + 1 : 1;
  double *acc = NULL;
  SM_TRY(ctx, SM_ALLOC(ctx, acc, 3 * nchunks + 3));
  memset(acc, 0, (size_t)(3 * nchunks + 3) * sizeof *acc);
  int64_t nc = 0, cur = -1, nb = 0;
  sm_status st = SM_OK;
  for (int64_t r = 0; r <= d->n && st == SM_OK; r++) {
    int64_t ch = r < d->n ? (d->first + r) / d->chunk : -2;
    if (nb && (ch != cur || nb == tr->B || r == d->n)) { /* run the pending batch */
      const float *y = NULL;
      sm__nn_data_batch(d, &tr->aug, tr->rows, nb, tr->seed, 0, 0, tr->x, tr->t, tr->xin);
      tr->seg[0] = 0, tr->seg[1] = nb;
      sm_nn_batch b = {.n = nb, .nseg = 1, .seg = tr->seg, .train = 0, .inputs = (const float *const *)tr->xin};
      st = sm_model_forward(ctx, tr->model, &b, tr->x, &y);
      if (st == SM_OK) {
        eval_loss(tr, y, 1, 1.0, NULL);
        for (int j = 0; j < 3; j++)
          acc[3 * (nc - 1) + j] += tr->part[j];
      }
      nb = 0;
    }
    if (r == d->n) break;
    if (ch != cur) cur = ch, nc++;
    if (d->split[r] == split) tr->rows[nb++] = r;
  }
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) {
    if (tr->det)
      st = sm__nn_fold_f64(ctx, acc, (int)nc, 3, out);
    else {
      memcpy(tr->part, acc, 3 * sizeof *acc);
      for (int64_t c = 1; c < nc; c++)
        for (int j = 0; j < 3; j++)
          tr->part[j] += acc[3 * c + j];
      st = sm__nn_reduce_allreduce(ctx, tr->part, nc ? 1 : 0, 3, out);
    }
  }
  free(acc);
  return st;
}

/* ---- checkpoints and the model file ---- */
static void ckpt_path(const trainer *tr, char *out, size_t n) {
  if (sm_config_is_set(tr->cfg, "checkpoint") && *sm_config_str(tr->cfg, "checkpoint"))
    sm_config_output_path(tr->cfg, "checkpoint", out, n);
  else {
    char o[1024];
    sm_config_output_path(tr->cfg, "output", o, sizeof o);
    snprintf(out, n, "%s.ckpt", o);
  }
}

static sm_status write_common(trainer *tr, sm__nn_h5 *h, const float *buffers) {
  sm_ctx *ctx = tr->ctx;
  sm_model *m = tr->model;
  SM_TRY(ctx, sm__nn_h5_attr_str(ctx, h, "model", sm_config_str(tr->cfg, "model")));
  SM_TRY(ctx, sm__nn_h5_attr_str(ctx, h, "inputs", sm_config_str(tr->cfg, "inputs")));
  double stats[2 * SM_NN_MAX_VALUES]; /* [total][2]: mean, sd */
  for (int64_t v = 0; v < tr->inputs.total; v++)
    stats[2 * v] = tr->inputs.mean[v], stats[2 * v + 1] = tr->inputs.sd[v];
  SM_TRY(ctx, sm__nn_h5_write(ctx, h, "input_stats", 'd', tr->inputs.total, 2, stats));
  SM_TRY(ctx, sm__nn_h5_attr_str(ctx, h, "software", sm_version()));
  SM_TRY(ctx, sm__nn_h5_attr_str(ctx, h, "job_config", tr->cfg->job_yaml ? tr->cfg->job_yaml : ""));
  SM_TRY(ctx, sm__nn_h5_write(ctx, h, "buffers", 'f', sm_model_buffer_count(m), 0, buffers));
  SM_TRY(ctx, sm__nn_h5_write(ctx, h, "curves", 'd', tr->n_curve, NCURVE, tr->curve));
  return SM_OK;
}

static sm_status save_checkpoint(trainer *tr) {
  sm_ctx *ctx = tr->ctx;
  sm_status st = SM_OK;
  if (ctx->rank == 0) {
    char path[1024];
    ckpt_path(tr, path, sizeof path);
    sm__nn_h5 h = {.f = -1};
    int64_t np = sm_model_param_count(tr->model);
    double pos[12] = {(double)tr->epoch,      (double)tr->batch,      (double)tr->step,    (double)tr->opt.t,
                      tr->ep_sum[0],          tr->ep_sum[1],          tr->ep_sum[2],       tr->best_dev,
                      (double)tr->best_epoch, (double)tr->bad_epochs, (double)tr->n_curve, (double)np};
    st = sm__nn_h5_create(ctx, path, &h);
    if (st == SM_OK) st = write_common(tr, &h, sm_model_buffers(tr->model));
    if (st == SM_OK) st = sm__nn_h5_write(ctx, &h, "params", 'f', np, 0, sm_model_params(tr->model));
    if (st == SM_OK) st = sm__nn_h5_write(ctx, &h, "optimizer_state", 'f', 2 * np, 0, tr->opt.state);
    if (st == SM_OK) st = sm__nn_h5_write(ctx, &h, "best", 'f', np + sm_model_buffer_count(tr->model), 0, tr->best);
    if (st == SM_OK) st = sm__nn_h5_write(ctx, &h, "position", 'd', 12, 0, pos);
    if (st == SM_OK)
      st = sm__nn_h5_attr_str(ctx, &h, "position_fields",
                              "epoch batch step optimizer_steps epoch_loss_sum epoch_metric_sum "
                              "epoch_count best_dev_loss best_epoch bad_epochs curve_rows n_param");
    if (st == SM_OK) st = sm__nn_h5_attr_f64(ctx, &h, "seed", (double)tr->seed);
    if (st == SM_OK) st = sm_fault_point(ctx, "checkpoint_write"); /* a job killed while writing */
    sm_status cs = sm__nn_h5_close(ctx, &h, st == SM_OK);
    if (st == SM_OK) st = cs;
  }
  return sm_ctx_agree(ctx, st);
}

/* The checkpoint's inputs must be the job's; their standardisation is taken from it. Rank 0. */
static sm_status read_inputs(trainer *tr, sm__nn_h5 *h) {
  char spec[SM_CONFIG_VALUE_MAX] = "";
  double stats[2 * SM_NN_MAX_VALUES];
  SM_TRY(tr->ctx, sm__nn_h5_get_str(tr->ctx, h, "inputs", spec, sizeof spec));
  SM_CHECK(tr->ctx, !strcmp(spec, sm_config_str(tr->cfg, "inputs")), SM_ERR_CONFIG,
           "%s was written for inputs \"%s\", not \"%s\": remove it or drop --resume", h->path, spec,
           sm_config_str(tr->cfg, "inputs"));
  SM_TRY(tr->ctx, sm__nn_h5_read(tr->ctx, h, "input_stats", 'd', 2 * tr->inputs.total, stats));
  for (int64_t v = 0; v < tr->inputs.total; v++)
    tr->inputs.mean[v] = stats[2 * v], tr->inputs.sd[v] = stats[2 * v + 1];
  return SM_OK;
}

/* Rank 0 reads the checkpoint; everything is broadcast. Returns 1 in *found if there was one. */
static sm_status load_checkpoint(trainer *tr, int *found) {
  sm_ctx *ctx = tr->ctx;
  char path[1024];
  ckpt_path(tr, path, sizeof path);
  int64_t np = sm_model_param_count(tr->model), nb = sm_model_buffer_count(tr->model);
  double pos[12] = {0};
  sm_status st = SM_OK;
  int have = 0;
  if (ctx->rank == 0 && (have = access(path, R_OK) == 0)) {
    sm__nn_h5 h = {.f = -1};
    char model[SM_CONFIG_VALUE_MAX];
    st = sm__nn_h5_open(ctx, path, &h);
    if (st == SM_OK) st = sm__nn_h5_get_str(ctx, &h, "model", model, sizeof model);
    if (st == SM_OK && strcmp(model, sm_config_str(tr->cfg, "model")))
      st = SM_ERR(ctx, SM_ERR_CONFIG, "%s was written for model \"%s\", not \"%s\": remove it or drop --resume", path,
                  model, sm_config_str(tr->cfg, "model"));
    if (st == SM_OK) st = read_inputs(tr, &h);
    if (st == SM_OK) st = sm__nn_h5_read(ctx, &h, "position", 'd', 12, pos);
    if (st == SM_OK && (int64_t)pos[10] > tr->epochs)
      st = SM_ERR(ctx, SM_ERR_CONFIG, "%s holds %lld epochs of curves, more than epochs = %lld", path,
                  (long long)pos[10], (long long)tr->epochs);
    if (st == SM_OK) st = sm__nn_h5_read(ctx, &h, "params", 'f', np, sm_model_params(tr->model));
    if (st == SM_OK) st = sm__nn_h5_read(ctx, &h, "buffers", 'f', nb, sm_model_buffers(tr->model));
    if (st == SM_OK) st = sm__nn_h5_read(ctx, &h, "optimizer_state", 'f', 2 * np, tr->opt.state);
    if (st == SM_OK) st = sm__nn_h5_read(ctx, &h, "best", 'f', np + nb, tr->best);
    if (st == SM_OK) st = sm__nn_h5_read(ctx, &h, "curves", 'd', (int64_t)pos[10] * NCURVE, tr->curve);
    sm__nn_h5_close(ctx, &h, 0);
  }
  SM_TRY(ctx, sm_ctx_agree(ctx, st));
  SM_MPI(ctx, MPI_Bcast(&have, 1, MPI_INT, 0, ctx->comm));
  *found = have;
  if (!have) return SM_OK;
  SM_MPI(ctx, MPI_Bcast(pos, 12, MPI_DOUBLE, 0, ctx->comm));
  SM_MPI(ctx, MPI_Bcast(sm_model_params(tr->model), (int)np, MPI_FLOAT, 0, ctx->comm));
  SM_MPI(ctx, MPI_Bcast(sm_model_buffers(tr->model), (int)nb, MPI_FLOAT, 0, ctx->comm));
  SM_MPI(ctx, MPI_Bcast(tr->opt.state, (int)(2 * np), MPI_FLOAT, 0, ctx->comm));
  SM_MPI(ctx, MPI_Bcast(tr->best, (int)(np + nb), MPI_FLOAT, 0, ctx->comm));
  SM_MPI(ctx, MPI_Bcast(tr->curve, (int)(tr->epochs * NCURVE), MPI_DOUBLE, 0, ctx->comm));
  SM_MPI(ctx, MPI_Bcast(tr->inputs.mean, SM_NN_MAX_VALUES, MPI_DOUBLE, 0, ctx->comm));
  SM_MPI(ctx, MPI_Bcast(tr->inputs.sd, SM_NN_MAX_VALUES, MPI_DOUBLE, 0, ctx->comm));
  tr->epoch = (int64_t)pos[0], tr->batch = (int64_t)pos[1], tr->step = (int64_t)pos[2], tr->opt.t = (int64_t)pos[3];
  tr->ep_sum[0] = pos[4], tr->ep_sum[1] = pos[5], tr->ep_sum[2] = pos[6], tr->best_dev = pos[7];
  tr->best_epoch = (int64_t)pos[8], tr->bad_epochs = (int64_t)pos[9], tr->n_curve = (int64_t)pos[10];
  sm_info(ctx, "train: resuming from %s at epoch %lld, batch %lld (step %lld)", path, (long long)tr->epoch + 1,
          (long long)tr->batch, (long long)tr->step);
  return SM_OK;
}

static sm_status save_model(trainer *tr) {
  sm_ctx *ctx = tr->ctx;
  sm_status st = SM_OK;
  if (ctx->rank == 0) {
    char path[1024];
    sm_config_output_path(tr->cfg, "output", path, sizeof path);
    sm__nn_h5 h = {.f = -1};
    const sm_config *c = tr->cfg;
    int use_best = tr->n_dev > 0 && tr->best_epoch >= 0;
    int64_t np = sm_model_param_count(tr->model);
    st = sm__nn_h5_create(ctx, path, &h);
    if (st == SM_OK) st = write_common(tr, &h, use_best ? tr->best + np : sm_model_buffers(tr->model));
    if (st == SM_OK)
      st = sm__nn_h5_write(ctx, &h, "params", 'f', sm_model_param_count(tr->model), 0,
                           use_best ? tr->best : sm_model_params(tr->model));
    const char *sattr[][2] = {{"task", sm_config_str(c, "task")},
                              {"target", sm_config_str(c, "target")},
                              {"classes", sm_config_str(c, "classes")},
                              {"normalize", sm_config_str(c, "normalize")},
                              {"curve_columns", "epoch train_loss train_metric dev_loss dev_metric"},
                              {"params_from", use_best ? "best dev loss" : "last step"}};
    for (int i = 0; st == SM_OK && i < 6; i++)
      st = sm__nn_h5_attr_str(ctx, &h, sattr[i][0], sattr[i][1]);
    const char *nattr[] = {"input_channels", "input_samples", "window", "p_offset", "outputs", "steps", "best_epoch"};
    double nv[] = {(double)tr->data.C,
                   (double)tr->data.W,
                   (double)sm_config_int(c, "window"),
                   (double)sm_config_int(c, "p_offset"),
                   (double)tr->nk,
                   (double)tr->step,
                   (double)tr->best_epoch + 1};
    for (int i = 0; st == SM_OK && i < 7; i++)
      st = sm__nn_h5_attr_f64(ctx, &h, nattr[i], nv[i]);
    sm_status cs = sm__nn_h5_close(ctx, &h, st == SM_OK);
    if (st == SM_OK) st = cs;
  }
  return sm_ctx_agree(ctx, st);
}

/* Keep the weights and running statistics of the best epoch (the model file gets both). */
static void snapshot_best(trainer *tr) {
  int64_t np = sm_model_param_count(tr->model), nb = sm_model_buffer_count(tr->model);
  memcpy(tr->best, sm_model_params(tr->model), (size_t)np * sizeof *tr->best);
  memcpy(tr->best + np, sm_model_buffers(tr->model), (size_t)nb * sizeof *tr->best);
}

/* ---- setup ---- */
static sm_status parse_weights(trainer *tr) {
  const char *w = sm_config_str(tr->cfg, "class_weights");
  if (!*w) return SM_OK;
  int n = 0;
  for (const char *p = w; *p && n < 64; n++) {
    char *end;
    tr->class_w[n] = strtod(p, &end);
    SM_CHECK(tr->ctx, end != p && tr->class_w[n] >= 0, SM_ERR_CONFIG,
             "train.class_weights = \"%s\": not a list of numbers >= 0", w);
    p = *end == ',' ? end + 1 : end;
  }
  SM_CHECK(tr->ctx, n == tr->nk, SM_ERR_CONFIG, "train.class_weights has %d values for %d model outputs", n, tr->nk);
  tr->loss.weight = tr->class_w;
  return SM_OK;
}

static sm_status setup_optim(trainer *tr) {
  const sm_config *c = tr->cfg;
  const char *o = sm_config_str(c, "optimizer"), *s = sm_config_str(c, "schedule");
  sm_optim_conf oc = {.kind = !strcmp(o, "sgd")    ? SM_OPT_SGD
                              : !strcmp(o, "adam") ? SM_OPT_ADAM
                                                   : SM_OPT_ADAMW,
                      .lr = sm_config_float(c, "lr"),
                      .momentum = sm_config_float(c, "momentum"),
                      .weight_decay = sm_config_float(c, "weight_decay"),
                      .beta1 = sm_config_float(c, "beta1"),
                      .beta2 = sm_config_float(c, "beta2"),
                      .eps = sm_config_float(c, "eps"),
                      .nesterov = sm_config_bool(c, "nesterov")};
  SM_CHECK(tr->ctx, !oc.nesterov || oc.momentum > 0, SM_ERR_CONFIG, "train.nesterov needs momentum > 0");
  int64_t per_epoch = (tr->n_train + tr->B - 1) / tr->B;
  tr->sched = (sm_schedule){.kind = !strcmp(s, "step")     ? SM_SCHED_STEP
                                    : !strcmp(s, "cosine") ? SM_SCHED_COSINE
                                                           : SM_SCHED_CONSTANT,
                            .base = oc.lr,
                            .gamma = sm_config_float(c, "gamma"),
                            .eta_min = sm_config_float(c, "eta_min"),
                            .step_size = sm_config_int(c, "step_size"),
                            .warmup = sm_config_int(c, "warmup"),
                            .total = per_epoch * tr->epochs};
  return sm_optim_init(tr->ctx, &tr->opt, &oc, sm_model_param_count(tr->model));
}

/* Model, loss and the train ordinals of this rank. */
static sm_status setup(trainer *tr) {
  sm_ctx *ctx = tr->ctx;
  const sm_config *c = tr->cfg;
  sm__nn_data *d = &tr->data;
  sm_model_input mi[SM_NN_MAX_INPUTS];
  sm__nn_inputs_model(&tr->inputs, mi);
  SM_TRY(ctx,
         sm_model_parse_inputs(ctx, sm_config_str(c, "model"), (sm_shape){d->C, d->W}, mi, tr->inputs.n, &tr->model));
  SM_TRY(ctx, sm_model_init(ctx, tr->model, sm_config_str(c, "init"), tr->seed));
  sm_shape os = sm_model_out_shape(tr->model);
  tr->nk = (int)(os.c * os.t);
  const char *ln = sm_config_str(c, "loss");
  if (!strcmp(ln, "auto")) ln = tr->classify ? (tr->nk == 1 ? "bce" : "ce") : "mse";
  SM_TRY(ctx, sm_loss_parse(ctx, ln, &tr->loss.kind));
  tr->loss.delta = sm_config_float(c, "huber_delta");
  int nclass = sm__nn_class_count(sm_config_str(c, "classes"));
  SM_CHECK(ctx, tr->loss.kind == SM_LOSS_CE || tr->nk == 1, SM_ERR_CONFIG,
           "train.loss %s needs a model with one output, this one has %d (end the model with `dense 1`)", ln, tr->nk);
  SM_CHECK(ctx, tr->loss.kind != SM_LOSS_CE || tr->classify, SM_ERR_CONFIG, "train.loss ce needs task: classify");
  SM_CHECK(ctx, tr->loss.kind != SM_LOSS_CE || !nclass || nclass == tr->nk, SM_ERR_CONFIG,
           "train.classes names %d classes but the model has %d outputs", nclass, tr->nk);
  SM_CHECK(ctx, tr->loss.kind != SM_LOSS_BCE || !nclass || nclass == 2, SM_ERR_CONFIG,
           "train.loss bce needs 2 classes, classes names %d", nclass);
  SM_TRY(ctx, parse_weights(tr));
  int64_t n_local = 0, n_dev = 0;
  SM_TRY(ctx, sm_ctx_agree(ctx, SM_ALLOC(ctx, tr->trows, d->n + 1))); /* agreed: collectives follow */
  for (int64_t r = 0; r < d->n; r++) {
    if (d->split[r] == 0) tr->trows[n_local++] = r;
    n_dev += d->split[r] == 1;
  }
  SM_MPI(ctx, MPI_Exscan(&n_local, &tr->train_off, 1, MPI_INT64_T, MPI_SUM, ctx->comm));
  if (ctx->rank == 0) tr->train_off = 0;
  SM_MPI(ctx, MPI_Allreduce(&n_local, &tr->n_train, 1, MPI_INT64_T, MPI_SUM, ctx->comm));
  SM_MPI(ctx, MPI_Allreduce(&n_dev, &tr->n_dev, 1, MPI_INT64_T, MPI_SUM, ctx->comm));
  tr->n_train_local = n_local;
  SM_CHECK(ctx, tr->n_train > 0, SM_ERR_DATA, "no training traces: column `%s` has no \"train\" rows",
           sm_config_str(c, "split_column"));
  int64_t B = tr->B, np = sm_model_param_count(tr->model), in = d->C * d->W;
  SM_TRY(ctx, sm_model_reserve(ctx, tr->model, B, tr->det ? (int)B : 1));
  SM_TRY(ctx, SM_ALLOC(ctx, tr->x, B * in + 1));
  SM_TRY(ctx, SM_ALLOC(ctx, tr->t, B + 1));
  SM_TRY(ctx, SM_ALLOC(ctx, tr->dy, B * tr->nk + 1));
  SM_TRY(ctx, SM_ALLOC(ctx, tr->gsum, np + 1));
  SM_TRY(ctx, SM_ALLOC(ctx, tr->best, np + sm_model_buffer_count(tr->model) + 1));
  SM_TRY(ctx, SM_ALLOC(ctx, tr->rows, 2 * B + 1));
  SM_TRY(ctx, SM_ALLOC(ctx, tr->seg, B + 2));
  SM_TRY(ctx, SM_ALLOC(ctx, tr->part, 3 * (B + 1)));
  SM_TRY(ctx, SM_ALLOC(ctx, tr->curve, tr->epochs * NCURVE + 1));
  for (int g = 0; g < tr->inputs.n; g++)
    SM_TRY(ctx, SM_ALLOC(ctx, tr->xin[g], B * tr->inputs.width[g] + 1));
  snapshot_best(tr);
  return setup_optim(tr);
}

static void trainer_free(trainer *tr) {
  sm__nn_data_free(&tr->data);
  sm_model_destroy(&tr->model);
  sm_optim_fini(&tr->opt);
  free(tr->trows), free(tr->x), free(tr->t), free(tr->dy), free(tr->gsum), free(tr->best), free(tr->rows);
  free(tr->seg), free(tr->part), free(tr->curve);
  for (int g = 0; g < SM_NN_MAX_INPUTS; g++)
    free(tr->xin[g]);
}

static void progress(trainer *tr, int64_t per_epoch, int64_t steps_run, double t_run) {
  int64_t total = per_epoch * tr->epochs, left = total - tr->step;
  double rate = steps_run > 0 ? t_run / (double)steps_run : 0, eta = rate * (double)left;
  double n = tr->ep_sum[2] > 0 ? tr->ep_sum[2] : 1;
  sm_info(tr->ctx,
          "train: epoch %lld/%lld step %lld/%lld loss %.4f %s %.4f | %.0f samples/s | allreduce %.1f%% | ETA %dm%02ds",
          (long long)tr->epoch + 1, (long long)tr->epochs, (long long)tr->step, (long long)total, tr->ep_sum[0] / n,
          tr->classify ? "acc" : "mae", tr->ep_sum[1] / n, rate > 0 ? (double)tr->B / rate : 0,
          tr->t_step > 0 ? 100 * tr->t_allreduce / tr->t_step : 0, (int)(eta / 60), (int)fmod(eta, 60));
}

/* End of an epoch: dev evaluation, learning curve row, early stopping. Returns 1 to stop. */
static sm_status end_epoch(trainer *tr, int *stop) {
  double dev[3] = {0, 0, 0};
  if (tr->n_dev) SM_TRY(tr->ctx, evaluate(tr, 1, dev));
  double n = tr->ep_sum[2] > 0 ? tr->ep_sum[2] : 1, dn = dev[2] > 0 ? dev[2] : 1;
  double *row = tr->curve + NCURVE * tr->n_curve++;
  row[0] = (double)tr->epoch + 1, row[1] = tr->ep_sum[0] / n, row[2] = tr->ep_sum[1] / n;
  row[3] = tr->n_dev ? dev[0] / dn : NAN, row[4] = tr->n_dev ? dev[1] / dn : NAN;
  sm_info(tr->ctx, "train: epoch %lld: train loss %.4f %s %.4f | dev loss %.4f %s %.4f", (long long)tr->epoch + 1,
          row[1], tr->classify ? "acc" : "mae", row[2], row[3], tr->classify ? "acc" : "mae", row[4]);
  *stop = 0;
  if (tr->n_dev) {
    if (tr->best_epoch < 0 || row[3] < tr->best_dev) {
      tr->best_dev = row[3], tr->best_epoch = tr->epoch, tr->bad_epochs = 0;
      snapshot_best(tr);
    } else if (++tr->bad_epochs >= sm_config_int(tr->cfg, "patience") && sm_config_int(tr->cfg, "patience") > 0) {
      sm_info(tr->ctx, "train: early stop: dev loss has not improved for %lld epochs (best %.4f at epoch %lld)",
              (long long)tr->bad_epochs, tr->best_dev, (long long)tr->best_epoch + 1);
      *stop = 1;
    }
  }
  tr->epoch++, tr->batch = 0;
  memset(tr->ep_sum, 0, sizeof tr->ep_sum);
  if (*stop) tr->epoch = tr->epochs; /* a resumed run ends at once */
  return SM_OK;
}

static sm_status train_loop(trainer *tr) {
  sm_ctx *ctx = tr->ctx;
  int64_t per_epoch = (tr->n_train + tr->B - 1) / tr->B, max_steps = sm_config_int(tr->cfg, "max_steps");
  int64_t every = sm_config_int(tr->cfg, "checkpoint_every"), log_every = sm_config_int(tr->cfg, "log_every");
  int64_t steps_run = 0;
  double t0 = sm_wtime();
  sm_range mine = {tr->train_off, tr->n_train_local};
  while (tr->epoch < tr->epochs) {
    sm_batches *bat = NULL;
    SM_TRY(ctx, sm_batches_create(ctx, tr->n_train, tr->B, tr->seed, (uint64_t)tr->epoch, 1, mine, &bat));
    sm_status st = SM_OK;
    while (st == SM_OK && tr->batch < per_epoch) {
      if ((st = train_step(tr, bat)) != SM_OK) break;
      steps_run++;
      if (tr->step % log_every == 0) progress(tr, per_epoch, steps_run, sm_wtime() - t0);
      int stop = 0;
      if ((st = sm_ctx_stop_requested(ctx, &stop)) != SM_OK) break;
      if (stop || (max_steps && tr->step >= max_steps)) {
        tr->stopped = stop ? 2 : 1;
        break;
      }
      if (every && tr->step % every == 0) st = save_checkpoint(tr);
    }
    sm_batches_destroy(&bat);
    SM_TRY(ctx, st);
    if (tr->stopped) {
      if (tr->batch == per_epoch) { /* the epoch is complete: close it before stopping */
        int es = 0;
        SM_TRY(ctx, end_epoch(tr, &es));
      }
      SM_TRY(ctx, save_checkpoint(tr));
      /* the job is not complete: later stages must not run on a half-trained model */
      if (tr->stopped == 2)
        return SM_ERR(ctx, SM_ERR_INTERRUPTED,
                      "train: stopped by a signal at step %lld; checkpoint written, continue with --resume",
                      (long long)tr->step);
      return SM_ERR(ctx, SM_ERR_INTERRUPTED,
                    "train: stopped after max_steps = %lld; checkpoint written, continue with --resume",
                    (long long)max_steps);
    }
    int es = 0;
    SM_TRY(ctx, end_epoch(tr, &es));
  }
  return SM_OK;
}

static sm_status train_run(sm_ctx *ctx, const sm_config *cfg) {
  trainer tr;
  memset(&tr, 0, sizeof tr);
  tr.ctx = ctx, tr.cfg = cfg, tr.best_epoch = -1, tr.best_dev = INFINITY;
  tr.classify = !strcmp(sm_config_str(cfg, "task"), "classify");
  tr.det = sm_config_bool(cfg, "deterministic");
  tr.B = sm_config_int(cfg, "batch_size"), tr.epochs = sm_config_int(cfg, "epochs");
  tr.seed = (uint64_t)sm_config_int(cfg, "seed"), tr.clip = sm_config_float(cfg, "clip");
  const char *norm = sm_config_str(cfg, "normalize");
  tr.aug = (sm__nn_aug){.on = sm_config_bool(cfg, "augment"),
                        .amplitude = sm_config_float(cfg, "aug_amplitude"),
                        .noise = sm_config_float(cfg, "aug_noise"),
                        .channel_dropout = sm_config_float(cfg, "aug_channel_dropout"),
                        .polarity = sm_config_float(cfg, "aug_polarity"),
                        .snr_min = sm_config_float(cfg, "aug_noise_snr_min"),
                        .snr_max = sm_config_float(cfg, "aug_noise_snr_max"),
                        .normalize = !strcmp(norm, "max")   ? SM_NN_NORM_MAX
                                     : !strcmp(norm, "std") ? SM_NN_NORM_STD
                                                            : SM_NN_NORM_NONE};
  sm__nn_data_conf dc = {.target = sm_config_str(cfg, "target"),
                         .classify = tr.classify,
                         .classes = sm_config_str(cfg, "classes"),
                         .split_column = sm_config_str(cfg, "split_column"),
                         .window = sm_config_int(cfg, "window"),
                         .p_offset = sm_config_int(cfg, "p_offset"),
                         .shift = tr.aug.on ? sm_config_int(cfg, "aug_shift") : 0,
                         .noise_select = tr.aug.on ? sm_config_str(cfg, "aug_noise_traces") : "",
                         .inputs = &tr.inputs};
  char path[1024];
  sm_config_input_path(cfg, "catalog", path, sizeof path);
  sm_catalog *cat = NULL;
  SM_TRY(ctx, sm_catalog_open(ctx, path, &cat));
  sm_status st = sm__nn_inputs_parse(ctx, sm_config_str(cfg, "inputs"), sm_catalog_get_info(cat)->n_components,
                                     tr.aug.normalize, &tr.inputs);
  if (st == SM_OK) st = sm__nn_data_load(ctx, cat, &dc, cfg->memory_budget_mb * 1048576, &tr.data);
  sm_catalog_close(&cat);
  if (st == SM_OK) st = sm__nn_inputs_fit(ctx, &tr.data, &tr.aug, &tr.inputs);
  if (st == SM_OK) st = sm_ctx_agree(ctx, setup(&tr));
  if (st == SM_OK) {
    char sum[4096];
    sm_model_summary(tr.model, sum, sizeof sum);
    sm_info(ctx, "train: %lld train / %lld dev traces, batch %lld, %s mode, %s\n%s", (long long)tr.n_train,
            (long long)tr.n_dev, (long long)tr.B, tr.det ? "deterministic" : "fast", sm_config_str(cfg, "loss"), sum);
  }
  int found = 0;
  if (st == SM_OK && cfg->resume) st = load_checkpoint(&tr, &found);
  if (st == SM_OK) st = train_loop(&tr);
  if (st == SM_OK && !tr.stopped) st = save_checkpoint(&tr);
  if (st == SM_OK && !tr.stopped) st = save_model(&tr);
  if (st == SM_OK && !tr.stopped)
    sm_info(ctx, "train: %lld steps, %.1f%% of step time in gradient reduction; model written", (long long)tr.step,
            tr.t_step > 0 ? 100 * tr.t_allreduce / tr.t_step : 0);
  trainer_free(&tr);
  return st;
}

/* Dry run: what this rank will do (the catalog may not exist yet, so nothing is opened). */
static sm_status train_plan(sm_ctx *ctx, const sm_config *cfg, char *out, size_t n) {
  char cat[1024], model[1024];
  sm_config_input_path(cfg, "catalog", cat, sizeof cat);
  sm_config_output_path(cfg, "output", model, sizeof model);
  snprintf(out, n,
           "trains on its shard of the %s traces of %s (global batches of %lld, %s mode, %lld epochs), "
           "rank 0 writes %s and its checkpoint",
           sm_config_str(cfg, "split_column")[0] ? "train-split" : "", cat, (long long)sm_config_int(cfg, "batch_size"),
           sm_config_bool(cfg, "deterministic") ? "deterministic" : "fast", (long long)sm_config_int(cfg, "epochs"),
           model);
  return SM_OK;
}

const sm_stage sm_stage_train = {"train", "train a neural network on a catalog (data-parallel, checkpointed)",
                                 train_keys, train_run, train_plan};
