/* The `kmeans` stage (`sisma kmeans --data ... --k K [--init k-means++|k-means|||random|FILE]
 * [--n-init N] [--max-iter I] [--tol T]`): fit, print one line per Lloyd iteration and the
 * cluster summary, write centres, sizes, the label and distance of every row. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../catalog/result.h"
#include "data.h"
#include "internal.h"
#include "sisma/job.h"
#include "sisma/table.h"

static const sm_key kmeans_keys[] = {
    SM__DATA_KEYS,
    {"output", SM_KEY_PATH, NULL, 0, -1, NULL, "result file (.h5): centres, sizes, label and distance per row"},
    {"k", SM_KEY_INT, "8", 1, 1e6, NULL, "number of clusters"},
    {"init", SM_KEY_STR, "k-means++", 0, -1, NULL,
     "k-means++ | k-means|| | random | a table (CSV or x.h5:/dataset) of k rows of initial centres"},
    {"n_init", SM_KEY_INT, "1", 1, 1000, NULL, "initialisations; the lowest inertia wins"},
    {"max_iter", SM_KEY_INT, "300", 1, 1e6, NULL, "Lloyd iterations per initialisation"},
    {"tol", SM_KEY_FLOAT, "1e-4", 0, 1, NULL,
     "stop when the centres move less than tol x the mean column variance (squared, summed)"},
    {"seed", SM_KEY_INT, "0", 0, 9.0e15, NULL, "seed of the initialisations"},
    {"oversampling", SM_KEY_INT, "2", 1, 1000, NULL, "k-means||: candidates per round = oversampling x k"},
    {"rounds", SM_KEY_INT, "5", 1, 100, NULL, "k-means||: sampling rounds"},
    {"silhouette_sample", SM_KEY_INT, "1000", 0, 1e6, NULL, "rows drawn for the silhouette (0: skip)"},
    {"batch_size", SM_KEY_INT, "0", 0, 1e9, NULL,
     "0: Lloyd on rows held in memory; > 0: mini-batch k-means with batches of this many rows, max_iter "
     "epochs, a catalog's waveforms streamed (never all in memory)"},
    {"reassignment_ratio", SM_KEY_FLOAT, "0.01", 0, 1, NULL,
     "mini-batch: clusters lighter than this fraction of the heaviest move to random rows of the batch (0: never)"},
    SM_KEYS_END,
};

/* Initial centres from a table: every numeric column, all rows, replicated. Collective. */
static sm_status load_centers(sm_ctx *ctx, const char *spec, int k, int64_t d, double *c) {
  sm_table *t = NULL;
  SM_TRY(ctx, sm_table_open(ctx, spec, &t));
  sm_range r = sm_table_range(t);
  int nc = 0, ok = sm_table_nrows(t) == k;
  for (int j = 0; j < sm_table_ncols(t); j++) nc += !sm_table_col_is_str(t, j);
  sm_status st = SM_OK;
  if (!ok || nc != d)
    st = SM_ERR(ctx, SM_ERR_CONFIG, "kmeans.init %s: %lld rows x %d numeric columns, expected k = %d rows x %lld",
                spec, (long long)sm_table_nrows(t), nc, k, (long long)d);
  double *mine = NULL;
  int *cnt = NULL;
  if (st == SM_OK) st = SM_ALLOC(ctx, mine, r.count * d + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, cnt, 2 * (size_t)ctx->size);
  for (int64_t i = 0; st == SM_OK && i < r.count; i++)
    for (int j = 0, m = 0; j < sm_table_ncols(t); j++)
      if (!sm_table_col_is_str(t, j)) mine[i * d + m++] = sm_table_num(t, j)[i];
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) {
    for (int q = 0; q < ctx->size; q++) {
      sm_range b = sm_table_block(k, q, ctx->size);
      cnt[q] = (int)(b.count * d), cnt[ctx->size + q] = (int)(b.first * d);
    }
    st = SM_MPI_STATUS(ctx, MPI_Allgatherv(mine, (int)(r.count * d), MPI_DOUBLE, c, cnt, cnt + ctx->size,
                                                 MPI_DOUBLE, ctx->comm));
  }
  free(mine), free(cnt);
  sm_table_close(&t);
  return st;
}

static sm_status write_result(sm_ctx *ctx, const sm_config *cfg, const sm__dataset *ds, const sm_kmeans_result *km) {
  char out[4096];
  sm_config_output_path(cfg, "output", out, sizeof out);
  sm__result *r = NULL;
  sm_status st = sm__result_create(ctx, out, "sisma kmeans", cfg->job_yaml, &r);
  if (st == SM_OK) st = sm__result_attr(r, "columns", ds->names);
  if (st == SM_OK) st = sm__result_attr(r, "init", sm_config_str(cfg, "init"));
  if (st == SM_OK) st = sm__result_attr_f64(r, "k", km->k);
  if (st == SM_OK) st = sm__result_attr_f64(r, "inertia", km->inertia);
  if (st == SM_OK) st = sm__result_attr_f64(r, "n_iter", km->n_iter);
  if (st == SM_OK) st = sm__result_attr_f64(r, "converged", km->converged);
  if (st == SM_OK) st = sm__result_attr_f64(r, "silhouette", km->silhouette);
  if (st == SM_OK) st = sm__result_attr_f64(r, "davies_bouldin", km->davies_bouldin);
  if (st == SM_OK) st = sm__result_small(r, "centers", SM__RES_F64, km->k, km->d, km->centers);
  if (st == SM_OK) st = sm__result_small(r, "sizes", SM__RES_I64, km->k, 0, km->sizes);
  if (st == SM_OK) st = sm__result_rows(r, "labels", SM__RES_I32, ds->n, 0, ds->first, ds->count, km->labels, NULL);
  if (st == SM_OK)
    st = sm__result_rows(r, "distance", SM__RES_F64, ds->n, 0, ds->first, ds->count, km->distance, NULL);
  if (st == SM_OK)
    st = sm__result_rows(r, "source_row", SM__RES_I64, ds->n, 0, ds->first, ds->count, ds->source_row, NULL);
  if (st == SM_OK) st = sm__result_commit(&r);
  sm__result_close(&r);
  if (st == SM_OK) sm_info(ctx, "kmeans: wrote %s", out);
  return st;
}

static void report(sm_ctx *ctx, const sm__dataset *ds, const sm_kmeans_result *km, double secs) {
  if (ctx->rank) return;
  printf("kmeans: %lld rows x %lld columns (%.200s), k = %d: inertia %.8g after %d iteration(s)%s, %.3f s\n",
         (long long)ds->n, (long long)ds->d, ds->names, km->k, km->inertia, km->n_iter,
         km->converged ? "" : " (max_iter reached)", secs);
  printf("cluster sizes:");
  for (int j = 0; j < km->k; j++) printf(" %lld", (long long)km->sizes[j]);
  printf("\nsilhouette (sample) %.4f, Davies-Bouldin %.4f\n", km->silhouette, km->davies_bouldin);
  if (ds->d <= 8) {
    printf("centres (%s):\n", ds->names);
    for (int j = 0; j < km->k; j++) {
      printf("  %2d:", j);
      for (int64_t t = 0; t < ds->d; t++) printf(" %12.5g", km->centers[j * ds->d + t]);
      printf("\n");
    }
  }
  fflush(stdout);
}

static sm_status kmeans_run(sm_ctx *ctx, const sm_config *cfg) {
  sm_kmeans_opts o;
  sm_kmeans_opts_default(&o);
  o.k = (int)sm_config_int(cfg, "k");
  o.n_init = (int)sm_config_int(cfg, "n_init"), o.max_iter = (int)sm_config_int(cfg, "max_iter");
  o.tol = sm_config_float(cfg, "tol"), o.seed = (uint64_t)sm_config_int(cfg, "seed");
  o.oversampling = (int)sm_config_int(cfg, "oversampling"), o.rounds = (int)sm_config_int(cfg, "rounds");
  o.silhouette_sample = sm_config_int(cfg, "silhouette_sample");
  o.reassignment_ratio = sm_config_float(cfg, "reassignment_ratio");
  o.verbose = 1;
  const char *init = sm_config_str(cfg, "init");
  o.init = !strcmp(init, "k-means++") ? SM_KMEANS_INIT_PLUSPLUS : !strcmp(init, "k-means||") ? SM_KMEANS_INIT_PARALLEL
           : !strcmp(init, "random") ? SM_KMEANS_INIT_RANDOM : SM_KMEANS_INIT_GIVEN;
  int64_t batch = sm_config_int(cfg, "batch_size");
  sm__dataset ds;
  sm_row_source src;
  if (batch > 0) SM_TRY(ctx, sm__dataset_stream(ctx, cfg, &ds, &src));
  else SM_TRY(ctx, sm__dataset_load(ctx, cfg, &ds));
  double *c0 = NULL;
  sm_status st = SM_OK;
  if (o.init == SM_KMEANS_INIT_GIVEN) {
    st = sm_ctx_agree(ctx, SM_ALLOC(ctx, c0, (size_t)o.k * ds.d));
    if (st == SM_OK) st = load_centers(ctx, init, o.k, ds.d, c0);
    o.init_centers = c0;
  }
  sm_rows x = {ds.n, ds.first, ds.count, ds.d, ds.x};
  sm_kmeans_result km;
  double t0 = sm_wtime();
  if (st == SM_OK) st = batch > 0 ? sm_kmeans_minibatch(ctx, &src, &o, batch, &km) : sm_kmeans_fit(ctx, &x, &o, &km);
  if (st == SM_OK) {
    report(ctx, &ds, &km, sm_wtime() - t0);
    st = write_result(ctx, cfg, &ds, &km);
    sm_kmeans_result_fini(&km);
  }
  free(c0);
  sm__dataset_fini(&ds);
  return st;
}

static sm_status kmeans_plan(sm_ctx *ctx, const sm_config *cfg, char *out, size_t n) {
  char o[4096];
  sm_config_output_path(cfg, "output", o, sizeof o);
  snprintf(out, n, "reads its rows of %s; k = %lld from %s; writes %s", sm_config_str(cfg, "data"),
           (long long)sm_config_int(cfg, "k"), sm_config_str(cfg, "init"), o);
  (void)ctx;
  return SM_OK;
}

const sm_stage sm_stage_kmeans = {"kmeans", "k-means clustering (Lloyd; k-means++ or k-means|| seeds) of a table or of "
                                            "whole waveforms",
                                  kmeans_keys, kmeans_run, kmeans_plan};
