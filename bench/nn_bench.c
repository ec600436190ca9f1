/* Training throughput of sisma's nn core (bench/nn.sh runs it next to bench/nn_torch.py).
 *   nn_bench mlp ROWS BATCH      MLP 16-64-64-1, MSE, SGD momentum 0.9, one epoch over ROWS rows
 *   nn_bench cnn SAMPLES BATCH   conv(3-16,k7) relu maxpool4 conv(16-32,k7) relu maxpool4
 *                                conv(32-64,k7) relu gap dense(64-2), CE, Adam 1e-3, 3 x 3000 inputs
 * Under mpirun each rank runs its share of every global batch (fast mode: gradients summed by
 * bucketed MPI_Iallreduce during the backward pass, as the train stage does). Prints samples/s
 * and two shares of the wall time of the loop: allreduce = the reduction still running after the
 * last rank finished its backward pass (the communication the overlap did not hide), and
 * wait = all the time blocked in the final wait, which adds the wait for slower ranks (load
 * imbalance: on a shared machine, mostly other processes taking a core). Data are random, made
 * before the clock starts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn/internal.h"
#include "sisma/rng.h"

/* Seconds on the node's monotonic clock (the same clock in every process of one node). */
static double mono_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU seconds of this process: on a shared machine the fairer clock next to the wall clock. */
static double cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  sm_ctx *ctx = NULL;
  if (sm_ctx_create(MPI_COMM_WORLD, &ctx) != SM_OK || argc < 4) {
    fprintf(stderr, "usage: nn_bench mlp|cnn N BATCH\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  int cnn = !strcmp(argv[1], "cnn");
  int64_t N = atoll(argv[2]), B = atoll(argv[3]);
  int64_t C = cnn ? 3 : 16, T = cnn ? 3000 : 1, k = cnn ? 2 : 1;
  const char *desc = cnn ? "conv 16 k=7, relu, maxpool 4, conv 32 k=7, relu, maxpool 4, conv 64 k=7, relu, gap, dense 2"
                         : "dense 64, relu, dense 64, relu, dense 1";
  sm_model *m = NULL;
  int64_t lo = B * ctx->rank / ctx->size, hi = B * (ctx->rank + 1) / ctx->size, nb = hi - lo;
  if (sm_model_parse(ctx, desc, (sm_shape){C, T}, &m) != SM_OK || sm_model_reserve(ctx, m, nb, 1) != SM_OK)
    sm_ctx_abort(ctx, ctx->err_code);
  int64_t np = sm_model_param_count(m), steps = N / B, in = C * T;
  /* each rank stores only its slices of the batches it will see */
  float *x = malloc((size_t)(steps * nb * in) * sizeof *x), *y = malloc((size_t)(steps * nb) * sizeof *y);
  float *dy = malloc((size_t)(nb * k) * sizeof *dy);
  sm_rng r;
  sm_rng_init(&r, 1, (uint64_t)ctx->rank);
  for (int64_t i = 0; i < steps * nb * in; i++)
    x[i] = (float)(sm_rng_u32(&r) >> 8) * 0x1p-23f - 1.f; /* U(-1, 1) */
  for (int64_t i = 0; i < steps * nb; i++)
    y[i] = cnn ? (float)(sm_rng_u32(&r) & 1) : x[i * in] * x[i * in + 1];
  sm_optim o;
  sm_optim_conf oc = cnn ? (sm_optim_conf){.kind = SM_OPT_ADAM, .lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8}
                         : (sm_optim_conf){.kind = SM_OPT_SGD, .lr = 1e-2, .momentum = 0.9};
  sm_optim_init(ctx, &o, &oc, np);
  sm_loss L = {.kind = cnn ? SM_LOSS_CE : SM_LOSS_MSE};
  double t_wait = 0, loss = 0, *arrive = calloc((size_t)steps + 1, sizeof *arrive);
  double *done = calloc((size_t)steps + 1, sizeof *done);
  MPI_Barrier(ctx->comm);
  double t0 = sm_wtime(), c0 = cpu_seconds();
  for (int64_t s = 0; s < steps; s++) {
    sm_nn_batch b = {.n = nb, .train = 1, .reduce = sm__nn_reduce_allreduce, .reduce_ud = ctx};
    const float *out = NULL;
    sm_model_forward(ctx, m, &b, x + s * nb * in, &out);
    loss = sm_loss_eval(&L, nb, k, out, y + s * nb, 1.0 / (double)B, dy);
    sm__nn_buckets bk;
    sm__nn_buckets_begin(&bk, ctx, sm_model_grads(m, 0), np, 262144);
    sm_model_backward(ctx, m, &b, dy, NULL, ctx->size > 1 ? sm__nn_buckets_ready : NULL, &bk);
    arrive[s] = mono_seconds();
    if (ctx->size > 1) sm__nn_buckets_end(&bk);
    done[s] = mono_seconds();
    t_wait += bk.t_wait;
    sm_optim_step(&o, sm_model_params(m), sm_model_grads(m, 0), oc.lr);
  }
  double t = sm_wtime() - t0, c = cpu_seconds() - c0, wmax = 0, cmax = 0, exposed = 0;
  MPI_Allreduce(MPI_IN_PLACE, arrive, (int)steps, MPI_DOUBLE, MPI_MAX, ctx->comm); /* last rank's arrival */
  for (int64_t s = 0; s < steps; s++)
    exposed += done[s] > arrive[s] ? done[s] - arrive[s] : 0;
  MPI_Allreduce(MPI_IN_PLACE, &exposed, 1, MPI_DOUBLE, MPI_MAX, ctx->comm);
  MPI_Allreduce(&t_wait, &wmax, 1, MPI_DOUBLE, MPI_MAX, ctx->comm);
  MPI_Allreduce(&c, &cmax, 1, MPI_DOUBLE, MPI_MAX, ctx->comm);
  MPI_Allreduce(MPI_IN_PLACE, &loss, 1, MPI_DOUBLE, MPI_SUM, ctx->comm); /* last step, whole batch */
  c = cmax;
  if (ctx->rank == 0)
    printf("sisma %s ranks=%d steps=%lld batch=%lld time=%.3f s cpu=%.3f s samples/s=%.0f cpu_samples/s=%.0f "
           "allreduce=%.2f%% wait=%.2f%% loss=%.4f\n",
           argv[1], ctx->size, (long long)steps, (long long)B, t, c, (double)(steps * B) / t, (double)(steps * B) / c,
           100 * exposed / t, 100 * wmax / t, loss);
  free(x), free(y), free(dy), free(arrive), free(done);
  sm_optim_fini(&o);
  sm_model_destroy(&m);
  sm_ctx_destroy(&ctx);
  MPI_Finalize();
  return 0;
}
