/* The `predict` stage: run a trained model (the `train` stage's output file) over the traces of
 * a catalog, optionally one split, and write per-trace outputs to an HDF5 file in parallel (each
 * rank writes its rows), with metrics when the catalog has the target column:
 *   classification: accuracy, per-class precision / recall / F1, macro F1, the confusion matrix
 *                   and, for two classes, ROC AUC (Mann-Whitney, ties counted half);
 *   regression:     MAE, RMSE, R^2.
 * Output layout (docs/nn.md): /prob [n][K] (or /output [n][k]), /trace_index, /label, /predicted
 * [n] int64, /confusion [K][K], metrics and provenance as root attributes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../catalog/internal.h"
#include "internal.h"
#include "sisma/job.h"
#include "sisma/stats.h"

static const sm_key predict_keys[] = {
    {"catalog", SM_KEY_PATH, NULL, 0, -1, NULL, "input catalog"},
    {"model", SM_KEY_PATH, NULL, 0, -1, NULL, "trained model file written by the train stage"},
    {"output", SM_KEY_PATH, NULL, 0, -1, NULL, "predictions file (HDF5)"},
    {"split", SM_KEY_STR, "", 0, -1, NULL, "only traces whose split column has this value (empty: all traces)"},
    {"split_column", SM_KEY_STR, "split", 0, -1, NULL, "the split column"},
    {"batch_size", SM_KEY_INT, "256", 1, 1e7, NULL, "traces per forward pass"},
    SM_KEYS_END,
};

typedef struct {
  char desc[SM_CONFIG_VALUE_MAX], task[32], target[128], classes[1024], normalize[16];
  char inputs[SM_CONFIG_VALUE_MAX]; /* the train stage's `inputs` spec ("" in older model files) */
  double num[5];                    /* input_channels, input_samples, window, p_offset, outputs */
  sm__nn_inputs in;                 /* parsed, with the standardisation fitted in training */
} model_meta;

static int norm_code(const char *n) {
  return !strcmp(n, "max") ? SM_NN_NORM_MAX : !strcmp(n, "std") ? SM_NN_NORM_STD : SM_NN_NORM_NONE;
}

/* The scalar inputs of a model file and their standardisation. Rank 0. */
static sm_status load_inputs(sm_ctx *ctx, sm__nn_h5 *h, model_meta *mm) {
  if (sm__nn_h5_has_attr(h, "inputs")) SM_TRY(ctx, sm__nn_h5_get_str(ctx, h, "inputs", mm->inputs, sizeof mm->inputs));
  SM_TRY(ctx, sm__nn_inputs_parse(ctx, mm->inputs, (int64_t)mm->num[0], norm_code(mm->normalize), &mm->in));
  if (!mm->in.n) return SM_OK;
  double stats[2 * SM_NN_MAX_VALUES];
  SM_TRY(ctx, sm__nn_h5_read(ctx, h, "input_stats", 'd', 2 * mm->in.total, stats));
  for (int64_t v = 0; v < mm->in.total; v++)
    mm->in.mean[v] = stats[2 * v], mm->in.sd[v] = stats[2 * v + 1];
  return SM_OK;
}

static sm_status load_model(sm_ctx *ctx, const char *path, model_meta *mm, sm_model **out) {
  sm_status st = SM_OK;
  float *p = NULL, *b = NULL;
  int64_t np = 0, nb = 0;
  if (ctx->rank == 0) {
    sm__nn_h5 h = {.f = -1};
    const char *names[] = {"input_channels", "input_samples", "window", "p_offset", "outputs"};
    st = sm__nn_h5_open(ctx, path, &h);
    if (st == SM_OK) st = sm__nn_h5_get_str(ctx, &h, "model", mm->desc, sizeof mm->desc);
    if (st == SM_OK) st = sm__nn_h5_get_str(ctx, &h, "task", mm->task, sizeof mm->task);
    if (st == SM_OK) st = sm__nn_h5_get_str(ctx, &h, "target", mm->target, sizeof mm->target);
    if (st == SM_OK) st = sm__nn_h5_get_str(ctx, &h, "classes", mm->classes, sizeof mm->classes);
    if (st == SM_OK) st = sm__nn_h5_get_str(ctx, &h, "normalize", mm->normalize, sizeof mm->normalize);
    for (int i = 0; st == SM_OK && i < 5; i++)
      st = sm__nn_h5_get_f64(ctx, &h, names[i], &mm->num[i]);
    if (st == SM_OK) st = load_inputs(ctx, &h, mm);
    np = st == SM_OK ? sm__nn_h5_count(&h, "params") : 0, nb = st == SM_OK ? sm__nn_h5_count(&h, "buffers") : 0;
    if (st == SM_OK && (np < 0 || nb < 0))
      st = SM_ERR(ctx, SM_ERR_FORMAT, "%s: no /params or /buffers: not a sisma model file", path);
    if (st == SM_OK) st = SM_ALLOC(ctx, p, np + 1);
    if (st == SM_OK) st = SM_ALLOC(ctx, b, nb + 1);
    if (st == SM_OK) st = sm__nn_h5_read(ctx, &h, "params", 'f', np, p);
    if (st == SM_OK) st = sm__nn_h5_read(ctx, &h, "buffers", 'f', nb, b);
    sm__nn_h5_close(ctx, &h, 0);
  }
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) SM_MPI(ctx, MPI_Bcast(mm, (int)sizeof *mm, MPI_BYTE, 0, ctx->comm));
  sm_model_input mi[SM_NN_MAX_INPUTS];
  sm__nn_inputs_model(&mm->in, mi);
  if (st == SM_OK)
    st = sm_ctx_agree(ctx, sm_model_parse_inputs(ctx, mm->desc, (sm_shape){(int64_t)mm->num[0], (int64_t)mm->num[1]},
                                                 mi, mm->in.n, out));
  if (st == SM_OK) {
    int64_t want[2] = {sm_model_param_count(*out), sm_model_buffer_count(*out)}, have[2] = {np, nb};
    SM_MPI(ctx, MPI_Bcast(have, 2, MPI_INT64_T, 0, ctx->comm));
    if (want[0] != have[0] || want[1] != have[1])
      st = SM_ERR(ctx, SM_ERR_FORMAT, "%s: %lld parameters stored, the model \"%s\" has %lld", path, (long long)have[0],
                  mm->desc, (long long)want[0]);
  }
  if (st == SM_OK && ctx->rank == 0) {
    memcpy(sm_model_params(*out), p, (size_t)np * sizeof *p);
    memcpy(sm_model_buffers(*out), b, (size_t)nb * sizeof *b);
  }
  if (st == SM_OK)
    SM_MPI(ctx, MPI_Bcast(sm_model_params(*out), (int)sm_model_param_count(*out), MPI_FLOAT, 0, ctx->comm));
  if (st == SM_OK)
    SM_MPI(ctx, MPI_Bcast(sm_model_buffers(*out), (int)sm_model_buffer_count(*out), MPI_FLOAT, 0, ctx->comm));
  free(p), free(b);
  if (st != SM_OK) sm_model_destroy(out);
  return st;
}

/* Rows of this rank's shard to predict: all, or those of one split. */
static int64_t select_rows(const sm__nn_data *d, int split, int64_t *rows) {
  int64_t n = 0;
  for (int64_t r = 0; r < d->n; r++)
    if (split < -1 || d->split[r] == split) rows[n++] = r;
  return n;
}

/* Forward over the selected rows in chunk-aligned batches; out [n][K] probabilities or outputs. */
static sm_status run_model(sm_ctx *ctx, sm_model *m, const sm__nn_data *d, const sm__nn_aug *aug, const int64_t *rows,
                           int64_t n, int64_t B, int classify, int64_t K, float *out) {
  int64_t nk = sm_model_out_shape(m).c * sm_model_out_shape(m).t, in = d->C * d->W;
  float *x = NULL, *t = NULL, *xin[SM_NN_MAX_INPUTS] = {0};
  SM_TRY(ctx, SM_ALLOC(ctx, x, B * in + 1));
  sm_status st = SM_ALLOC(ctx, t, B + 1);
  for (int g = 0; st == SM_OK && g < sm_model_input_count(m); g++)
    st = SM_ALLOC(ctx, xin[g], B * sm__size(sm_model_input_get(m, g)->shape) + 1);
  if (st == SM_OK) st = sm_model_reserve(ctx, m, B, 1);
  for (int64_t i = 0; st == SM_OK && i < n;) {
    int64_t nb = 0, ch = (d->first + rows[i]) / d->chunk;
    while (i + nb < n && nb < B && (d->first + rows[i + nb]) / d->chunk == ch)
      nb++;
    sm__nn_data_batch(d, aug, rows + i, nb, 0, 0, 0, x, t, xin);
    int64_t seg[2] = {0, nb};
    sm_nn_batch b = {.n = nb, .nseg = 1, .seg = seg, .train = 0, .inputs = (const float *const *)xin};
    const float *y = NULL;
    if ((st = sm_model_forward(ctx, m, &b, x, &y)) != SM_OK) break;
    for (int64_t s = 0; s < nb; s++) {
      const float *z = y + s * nk;
      float *o = out + (i + s) * K;
      if (!classify) {
        memcpy(o, z, (size_t)nk * sizeof *o);
      } else if (nk == 1) { /* one logit: P(class 1) = sigmoid */
        o[1] = (float)(1.0 / (1.0 + exp(-(double)z[0]))), o[0] = 1.f - o[1];
      } else { /* softmax */
        double mx = z[0], se = 0;
        for (int64_t j = 1; j < nk; j++)
          mx = fmax(mx, z[j]);
        for (int64_t j = 0; j < nk; j++)
          se += exp(z[j] - mx);
        for (int64_t j = 0; j < nk; j++)
          o[j] = (float)(exp(z[j] - mx) / se);
      }
    }
    i += nb;
  }
  free(x), free(t);
  for (int g = 0; g < SM_NN_MAX_INPUTS; g++)
    free(xin[g]);
  return st;
}

typedef struct {
  double v[8];        /* classify: accuracy, macro F1, AUC, n; regress: MAE, RMSE, R2, n */
  double ev[3];       /* per event (mean probability over its traces): events, accuracy, AUC */
  int64_t *confusion; /* [K][K] rows: true class, columns: predicted */
  double *prf;        /* [K][3] precision, recall, F1 */
} metrics;

/* FNV-1a of a string: the event key (source_id) as one integer. */
static uint64_t fnv1a(const char *v) {
  uint64_t h = UINT64_C(14695981039346656037);
  for (; *v; v++)
    h = (h ^ (unsigned char)*v) * UINT64_C(1099511628211);
  return h;
}

typedef struct {
  uint64_t key;
  double score, label;
} ev_row;

static int cmp_ev(const void *a, const void *b) {
  const ev_row *x = a, *y = b;
  return (x->key > y->key) - (x->key < y->key);
}

/* Event-level metrics for two classes: the traces of one event (same key) vote with their mean
 * probability of class 1, as the Norcia studies classify events. sl: (score, label) pairs, m rows. */
static void event_metrics(const double *sl, const uint64_t *key, int64_t m, metrics *mt) {
  ev_row *r = malloc((size_t)(m + 1) * sizeof *r);
  double *ev = malloc((size_t)(2 * m + 2) * sizeof *ev);
  int64_t ne = 0;
  if (r && ev) {
    for (int64_t i = 0; i < m; i++)
      r[i] = (ev_row){key[i], sl[2 * i], sl[2 * i + 1]};
    qsort(r, (size_t)m, sizeof *r, cmp_ev);
    double correct = 0;
    for (int64_t i = 0; i < m;) {
      int64_t j = i;
      double sum = 0;
      for (; j < m && r[j].key == r[i].key; j++)
        sum += r[j].score;
      ev[2 * ne] = sum / (double)(j - i), ev[2 * ne + 1] = r[i].label;
      correct += (ev[2 * ne] > 0.5) == (r[i].label > 0.5);
      ne++, i = j;
    }
    mt->ev[0] = (double)ne, mt->ev[1] = ne ? correct / (double)ne : NAN, mt->ev[2] = sm_roc_auc(ev, ne);
  }
  free(r), free(ev);
}

/* Metrics from every rank's predictions (gathered on rank 0, then broadcast); key: event key per
 * row or NULL. Collective. */
static sm_status compute_metrics(sm_ctx *ctx, int classify, int64_t K, int64_t n, const float *out, const float *label,
                                 const uint64_t *key, metrics *mt) {
  int64_t ncol = 2, total = 0; /* (score, label) pairs */
  double *mine = NULL, *all = NULL;
  SM_TRY(ctx, SM_ALLOC(ctx, mine, ncol * n + 1));
  for (int64_t i = 0; i < n; i++) {
    mine[2 * i] = classify ? (K == 2 ? out[i * K + 1] : 0) : out[i * K];
    mine[2 * i + 1] = label[i];
  }
  int *counts = NULL, *displs = NULL;
  int cnt = (int)(ncol * n);
  sm_status st = SM_ALLOC(ctx, counts, ctx->size);
  if (st == SM_OK) st = SM_ALLOC(ctx, displs, ctx->size);
  if (st == SM_OK) SM_MPI(ctx, MPI_Gather(&cnt, 1, MPI_INT, counts, 1, MPI_INT, 0, ctx->comm));
  for (int r = 0; st == SM_OK && ctx->rank == 0 && r < ctx->size; r++)
    displs[r] = (int)total, total += counts[r];
  if (st == SM_OK) st = SM_ALLOC(ctx, all, total + 1);
  if (st == SM_OK) SM_MPI(ctx, MPI_Gatherv(mine, cnt, MPI_DOUBLE, all, counts, displs, MPI_DOUBLE, 0, ctx->comm));
  uint64_t *keys = NULL;
  int have_keys = key != NULL;
  if (have_keys) { /* event keys in the same row order */
    int kc = (int)n;
    for (int r = 0; ctx->rank == 0 && r < ctx->size; r++)
      counts[r] /= 2, displs[r] /= 2;
    if (st == SM_OK) st = SM_ALLOC(ctx, keys, total / 2 + 1);
    if (st == SM_OK) SM_MPI(ctx, MPI_Gatherv(key, kc, MPI_UINT64_T, keys, counts, displs, MPI_UINT64_T, 0, ctx->comm));
  }
  /* confusion counts are exact integers: a plain allreduce */
  for (int64_t i = 0; classify && i < n; i++) {
    int64_t arg = 0;
    for (int64_t j = 1; j < K; j++)
      if (out[i * K + j] > out[i * K + arg]) arg = j;
    mt->confusion[(int64_t)label[i] * K + arg]++;
  }
  if (classify) SM_MPI(ctx, MPI_Allreduce(MPI_IN_PLACE, mt->confusion, (int)(K * K), MPI_INT64_T, MPI_SUM, ctx->comm));
  if (ctx->rank == 0 && st == SM_OK) {
    int64_t m = total / 2;
    mt->v[3] = (double)m;
    if (have_keys && classify && K == 2) event_metrics(all, keys, m, mt); /* before sm_roc_auc sorts `all` */
    if (classify) {
      double correct = 0, f1sum = 0;
      for (int64_t c = 0; c < K; c++) {
        double tp = (double)mt->confusion[c * K + c], pp = 0, ap = 0;
        for (int64_t j = 0; j < K; j++)
          pp += (double)mt->confusion[j * K + c], ap += (double)mt->confusion[c * K + j];
        double prec = pp > 0 ? tp / pp : 0, rec = ap > 0 ? tp / ap : 0;
        mt->prf[3 * c] = prec, mt->prf[3 * c + 1] = rec;
        mt->prf[3 * c + 2] = prec + rec > 0 ? 2 * prec * rec / (prec + rec) : 0;
        correct += tp, f1sum += mt->prf[3 * c + 2];
      }
      mt->v[0] = m ? correct / (double)m : NAN, mt->v[1] = f1sum / (double)K;
      mt->v[2] = K == 2 ? sm_roc_auc(all, m) : NAN;
    } else {
      double ae = 0, se = 0, mean = 0, ss = 0;
      for (int64_t i = 0; i < m; i++)
        mean += all[2 * i + 1];
      mean /= m ? (double)m : 1;
      for (int64_t i = 0; i < m; i++) {
        double e = all[2 * i] - all[2 * i + 1];
        ae += fabs(e), se += e * e, ss += (all[2 * i + 1] - mean) * (all[2 * i + 1] - mean);
      }
      mt->v[0] = ae / (double)m, mt->v[1] = sqrt(se / (double)m), mt->v[2] = ss > 0 ? 1 - se / ss : NAN;
    }
  }
  free(mine), free(all), free(counts), free(displs), free(keys);
  SM_TRY(ctx, sm_ctx_agree(ctx, st));
  SM_MPI(ctx, MPI_Bcast(mt->v, 8, MPI_DOUBLE, 0, ctx->comm));
  SM_MPI(ctx, MPI_Bcast(mt->ev, 3, MPI_DOUBLE, 0, ctx->comm));
  SM_MPI(ctx, MPI_Bcast(mt->prf, (int)(3 * K), MPI_DOUBLE, 0, ctx->comm));
  return SM_OK;
}

/* A [total][cols] dataset (cols 0: 1-D) with this rank's rows [off, off + n). Collective. */
static sm_status put(sm_ctx *ctx, hid_t f, hid_t dxpl, const char *name, hid_t type, int64_t total, int64_t cols,
                     int64_t off, int64_t n, const void *data, size_t es) {
  hsize_t dims[2] = {(hsize_t)total, (hsize_t)cols};
  hid_t sp = H5Screate_simple(cols ? 2 : 1, dims, NULL);
  hid_t ds = H5Dcreate2(f, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Sclose(sp);
  if (ds < 0) return SM_H5ERR(ctx, "cannot create dataset %s", name);
  sm_status st = sm__slab_io(ctx, ds, type, dxpl, 1, off, n, cols ? cols : 1, es, (void *)data, name);
  H5Dclose(ds);
  return st;
}

static sm_status attr(sm_ctx *ctx, hid_t f, const char *name, const char *s, double v) {
  hid_t t = s ? H5Tcopy(H5T_C_S1) : H5Tcopy(H5T_NATIVE_DOUBLE);
  if (s) H5Tset_size(t, strlen(s) + 1);
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
  herr_t e = a < 0 ? -1 : s ? H5Awrite(a, t, s) : H5Awrite(a, t, &v);
  if (a >= 0) H5Aclose(a);
  H5Sclose(sp), H5Tclose(t);
  if (e < 0) return SM_H5ERR(ctx, "cannot write attribute %s", name);
  return SM_OK;
}

typedef struct {
  int64_t n, off, total, K;
  const float *out;
  const int64_t *tidx, *label, *pred;
  int classify, has_label;
} pred_out;

static sm_status write_file(sm_ctx *ctx, const sm_config *cfg, const model_meta *mm, const pred_out *po,
                            const metrics *mt) {
  char path[1024], tmp[1100];
  sm_config_output_path(cfg, "output", path, sizeof path);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  sm_status st = ctx->rank == 0 ? sm_make_parent_dirs(ctx, path) : SM_OK;
  SM_TRY(ctx, sm_ctx_agree(ctx, st));
  hid_t fapl = sm__fapl_mpio(ctx);
  hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  H5Pclose(fapl);
  if (f < 0) return sm_ctx_agree(ctx, SM_H5ERR(ctx, "cannot create %s", tmp));
  hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
  H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
  st = put(ctx, f, dxpl, po->classify ? "prob" : "output", H5T_NATIVE_FLOAT, po->total, po->K, po->off, po->n, po->out,
           4);
  if (st == SM_OK) st = put(ctx, f, dxpl, "trace_index", H5T_NATIVE_INT64, po->total, 0, po->off, po->n, po->tidx, 8);
  if (st == SM_OK && po->classify)
    st = put(ctx, f, dxpl, "predicted", H5T_NATIVE_INT64, po->total, 0, po->off, po->n, po->pred, 8);
  if (st == SM_OK && po->has_label && po->classify)
    st = put(ctx, f, dxpl, "label", H5T_NATIVE_INT64, po->total, 0, po->off, po->n, po->label, 8);
  if (st == SM_OK && po->has_label && po->classify)
    st =
        put(ctx, f, dxpl, "confusion", H5T_NATIVE_INT64, po->K, po->K, 0, ctx->rank == 0 ? po->K : 0, mt->confusion, 8);
  char mpath[1024];
  sm_config_input_path(cfg, "model", mpath, sizeof mpath);
  const char *sa[][2] = {{"software", sm_version()},
                         {"model_file", mpath},
                         {"model", mm->desc},
                         {"inputs", mm->inputs},
                         {"task", mm->task},
                         {"classes", mm->classes},
                         {"target", mm->target},
                         {"split", sm_config_str(cfg, "split")},
                         {"job_config", cfg->job_yaml ? cfg->job_yaml : ""}};
  for (int i = 0; st == SM_OK && i < 9; i++)
    st = attr(ctx, f, sa[i][0], sa[i][1], 0);
  if (po->has_label) {
    const char *cn[] = {"accuracy", "macro_f1", "roc_auc", "n"}, *rn[] = {"mae", "rmse", "r2", "n"};
    for (int i = 0; st == SM_OK && i < 4; i++)
      st = attr(ctx, f, po->classify ? cn[i] : rn[i], NULL, mt->v[i]);
    const char *en[] = {"event_n", "event_accuracy", "event_roc_auc"};
    for (int i = 0; st == SM_OK && mt->ev[0] > 0 && i < 3; i++)
      st = attr(ctx, f, en[i], NULL, mt->ev[i]);
    for (int64_t c = 0; st == SM_OK && po->classify && c < po->K; c++) {
      char nm[64];
      const char *what[] = {"precision", "recall", "f1"};
      for (int j = 0; st == SM_OK && j < 3; j++) {
        snprintf(nm, sizeof nm, "%s_%lld", what[j], (long long)c);
        st = attr(ctx, f, nm, NULL, mt->prf[3 * c + j]);
      }
    }
  }
  H5Pclose(dxpl);
  if (H5Fclose(f) < 0 && st == SM_OK) st = SM_H5ERR(ctx, "cannot close %s", tmp);
  st = sm_ctx_agree(ctx, st);
  if (ctx->rank == 0) {
    if (st == SM_OK && rename(tmp, path) != 0) st = SM_ERR(ctx, SM_ERR_IO, "cannot rename %s to %s", tmp, path);
    if (st != SM_OK) remove(tmp);
  }
  return sm_ctx_agree(ctx, st);
}

static void log_metrics(sm_ctx *ctx, const pred_out *po, const metrics *mt, const char *classes) {
  if (!po->has_label) return;
  if (!po->classify) {
    sm_info(ctx, "predict: %lld traces: MAE %.4f, RMSE %.4f, R^2 %.4f", (long long)po->total, mt->v[0], mt->v[1],
            mt->v[2]);
    return;
  }
  if (mt->ev[0] > 0)
    sm_info(ctx, "predict: %.0f events (mean probability of their traces): accuracy %.4f, ROC AUC %.4f", mt->ev[0],
            mt->ev[1], mt->ev[2]);
  sm_info(ctx, "predict: %lld traces: accuracy %.4f, macro F1 %.4f, ROC AUC %.4f (classes %s)", (long long)po->total,
          mt->v[0], mt->v[1], mt->v[2], classes);
  for (int64_t c = 0; c < po->K; c++) {
    char row[512];
    int len = snprintf(row, sizeof row, "predict: class %lld: precision %.4f recall %.4f F1 %.4f | confusion",
                       (long long)c, mt->prf[3 * c], mt->prf[3 * c + 1], mt->prf[3 * c + 2]);
    for (int64_t j = 0; j < po->K && len < (int)sizeof row; j++)
      len += snprintf(row + len, sizeof row - (size_t)len, " %lld", (long long)mt->confusion[c * po->K + j]);
    sm_info(ctx, "%s", row);
  }
}

/* source_id of every shard row as an integer key. Collective. */
static sm_status read_event_keys(sm_ctx *ctx, sm_catalog *cat, const sm__nn_data *d, uint64_t **out) {
  sm_col_type type;
  int width = 0;
  SM_TRY(ctx, sm_catalog_column_info(cat, "source_id", &type, &width));
  if (type != SM_COL_STR) return SM_OK; /* numeric ids: not handled, no event metrics */
  char *buf = NULL;
  sm_status st = SM_ALLOC(ctx, buf, d->n * width + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, *out, d->n + 1);
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) st = sm_catalog_read_str(cat, "source_id", d->first, d->n, buf);
  for (int64_t i = 0; st == SM_OK && i < d->n; i++) {
    char v[256];
    sm_catalog_str_at(buf, width, i, v, sizeof v);
    (*out)[i] = fnv1a(v);
  }
  free(buf);
  return st;
}

static sm_status predict_run(sm_ctx *ctx, const sm_config *cfg) {
  char path[1024];
  model_meta mm;
  memset(&mm, 0, sizeof mm);
  sm_model *m = NULL;
  sm_config_input_path(cfg, "model", path, sizeof path);
  SM_TRY(ctx, load_model(ctx, path, &mm, &m));
  int classify = !strcmp(mm.task, "classify");
  int64_t nk = (int64_t)mm.num[4], K = classify && nk == 1 ? 2 : nk;
  sm_catalog *cat = NULL;
  sm_config_input_path(cfg, "catalog", path, sizeof path);
  sm_status st = sm_catalog_open(ctx, path, &cat);
  int has_label = st == SM_OK && sm_catalog_has_column(cat, mm.target);
  const char *split = sm_config_str(cfg, "split");
  sm__nn_data_conf dc = {.target = has_label ? mm.target : "",
                         .classify = classify,
                         .classes = mm.classes,
                         .split_column = *split ? sm_config_str(cfg, "split_column") : "",
                         .window = (int64_t)mm.num[2],
                         .p_offset = (int64_t)mm.num[3],
                         .inputs = &mm.in};
  sm__nn_data d;
  memset(&d, 0, sizeof d);
  if (st == SM_OK && *split && sm__nn_split_code(split) < 0)
    st = SM_ERR(ctx, SM_ERR_CONFIG, "predict.split = \"%s\": expected train, dev, test or empty", split);
  if (st == SM_OK) { /* the catalog must give the model's input shape */
    const sm_catalog_info *ci = sm_catalog_get_info(cat);
    int64_t w = dc.window ? dc.window : ci->n_samples;
    if (ci->n_components != (int64_t)mm.num[0] || w != (int64_t)mm.num[1])
      st = SM_ERR(ctx, SM_ERR_DATA, "catalog %s has %d components x %lld samples per window; the model expects %gx%g",
                  path, ci->n_components, (long long)w, mm.num[0], mm.num[1]);
  }
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) st = sm__nn_data_load(ctx, cat, &dc, cfg->memory_budget_mb * 1048576, &d);
  uint64_t *evkey = NULL; /* per shard row: the event (source_id) of two-class predictions */
  if (st == SM_OK && has_label && classify && K == 2 && sm_catalog_has_column(cat, "source_id"))
    st = read_event_keys(ctx, cat, &d, &evkey);
  sm_catalog_close(&cat);
  sm__nn_aug aug = {.normalize = norm_code(mm.normalize)};
  int64_t *rows = NULL, *tidx = NULL, *lab = NULL, *pred = NULL, n = 0;
  float *out = NULL, *label = NULL;
  metrics mt;
  memset(&mt, 0, sizeof mt);
  if (st == SM_OK) st = SM_ALLOC(ctx, rows, d.n + 1);
  if (st == SM_OK) n = select_rows(&d, *split ? sm__nn_split_code(split) : -2, rows);
  if (st == SM_OK) st = SM_ALLOC(ctx, out, n * K + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, tidx, n + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, lab, n + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, pred, n + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, label, n + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, mt.confusion, K * K + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, mt.prf, 3 * K + 1);
  if (st == SM_OK) memset(mt.confusion, 0, (size_t)(K * K) * sizeof *mt.confusion);
  if (st == SM_OK) st = run_model(ctx, m, &d, &aug, rows, n, sm_config_int(cfg, "batch_size"), classify, K, out);
  st = sm_ctx_agree(ctx, st);
  pred_out po = {.n = n,
                 .K = K,
                 .out = out,
                 .tidx = tidx,
                 .label = lab,
                 .pred = pred,
                 .classify = classify,
                 .has_label = has_label};
  for (int64_t i = 0; st == SM_OK && i < n; i++) {
    tidx[i] = d.first + rows[i];
    label[i] = has_label ? d.target[rows[i]] : NAN;
    lab[i] = has_label ? (int64_t)label[i] : -1;
    int64_t arg = 0;
    for (int64_t j = 1; j < K; j++)
      if (out[i * K + j] > out[i * K + arg]) arg = j;
    pred[i] = arg;
  }
  if (st == SM_OK) SM_MPI(ctx, MPI_Exscan(&n, &po.off, 1, MPI_INT64_T, MPI_SUM, ctx->comm));
  if (ctx->rank == 0) po.off = 0;
  if (st == SM_OK) SM_MPI(ctx, MPI_Allreduce(&n, &po.total, 1, MPI_INT64_T, MPI_SUM, ctx->comm));
  uint64_t *key = NULL; /* event keys of the selected rows */
  if (st == SM_OK && evkey) st = SM_ALLOC(ctx, key, n + 1);
  for (int64_t i = 0; key && i < n; i++)
    key[i] = evkey[rows[i]];
  int with_keys = key != NULL, all_keys = 0; /* the column exists everywhere or nowhere, but agree */
  if (st == SM_OK) SM_MPI(ctx, MPI_Allreduce(&with_keys, &all_keys, 1, MPI_INT, MPI_MIN, ctx->comm));
  if (st == SM_OK && has_label)
    st = compute_metrics(ctx, classify, K, n, out, label, all_keys ? (key ? key : evkey) : NULL, &mt);
  free(key), free(evkey);
  if (st == SM_OK) st = write_file(ctx, cfg, &mm, &po, &mt);
  if (st == SM_OK) log_metrics(ctx, &po, &mt, mm.classes);
  free(rows), free(out), free(tidx), free(lab), free(pred), free(label), free(mt.confusion), free(mt.prf);
  sm__nn_data_free(&d);
  sm_model_destroy(&m);
  return st;
}

static sm_status predict_plan(sm_ctx *ctx, const sm_config *cfg, char *out, size_t n) {
  char cat[1024], model[1024], res[1024];
  sm_config_input_path(cfg, "catalog", cat, sizeof cat);
  sm_config_input_path(cfg, "model", model, sizeof model);
  sm_config_output_path(cfg, "output", res, sizeof res);
  snprintf(out, n, "runs %s over its shard of %s%s%s and writes its rows of %s", model, cat,
           sm_config_str(cfg, "split")[0] ? ", split " : "", sm_config_str(cfg, "split"), res);
  return SM_OK;
}

const sm_stage sm_stage_predict = {"predict", "run a trained model over a catalog: per-trace outputs and metrics",
                                   predict_keys, predict_run, predict_plan};
