/* Context, status strings, error recording and cross-rank agreement (include/sisma/core.h).
 * The agreement protocol: one MPI_Allreduce(MIN) finds the lowest failing rank, which then
 * broadcasts its code and message; a failure on one rank therefore costs every rank two small
 * collectives and never a hang. */
#include "sisma/core.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *status_names[SM_STATUS_COUNT] = {
    [SM_OK] = "success",
    [SM_ERR_NOMEM] = "out of memory",
    [SM_ERR_ARG] = "invalid argument",
    [SM_ERR_CONFIG] = "configuration error",
    [SM_ERR_IO] = "I/O error",
    [SM_ERR_HDF5] = "HDF5 error",
    [SM_ERR_MPI] = "MPI error",
    [SM_ERR_FORMAT] = "malformed input",
    [SM_ERR_DATA] = "bad data",
    [SM_ERR_UNSUPPORTED] = "unsupported",
    [SM_ERR_INTERRUPTED] = "interrupted",
    [SM_ERR_NUMERIC] = "numerical failure",
    [SM_ERR_INTERNAL] = "internal error",
    [SM_ERR_PEER] = "failure on another rank",
};

const char *sm_status_str(sm_status s) {
  return (s >= 0 && s < SM_STATUS_COUNT) ? status_names[s] : "unknown status";
}

const char *sm_version(void) { return SISMA_VERSION; }

static sm_log_level level_from_env(void) {
  const char *v = getenv("SISMA_LOG");
  if (!v) return SM_LOG_INFO;
  if (!strcmp(v, "error")) return SM_LOG_ERROR;
  if (!strcmp(v, "warn")) return SM_LOG_WARN;
  if (!strcmp(v, "debug")) return SM_LOG_DEBUG;
  return SM_LOG_INFO;
}

sm_status sm_ctx_create(MPI_Comm comm, sm_ctx **out) {
  *out = NULL;
  sm_ctx *ctx = calloc(1, sizeof *ctx);
  if (!ctx) return SM_ERR_NOMEM;
  if (MPI_Comm_dup(comm, &ctx->comm) != MPI_SUCCESS) {
    free(ctx);
    return SM_ERR_MPI;
  }
  MPI_Comm_set_errhandler(ctx->comm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(ctx->comm, &ctx->rank);
  MPI_Comm_size(ctx->comm, &ctx->size);
  ctx->log_level = level_from_env();
  const char *all = getenv("SISMA_LOG_ALL");
  ctx->log_all_ranks = all && *all && strcmp(all, "0") != 0;
  ctx->t_start = MPI_Wtime();
  /* HDF5 errors are translated into statuses where they enter; never printed by HDF5 itself. */
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  *out = ctx;
  return SM_OK;
}

void sm_ctx_destroy(sm_ctx **ctx) {
  if (!ctx || !*ctx) return;
  MPI_Comm_free(&(*ctx)->comm);
  free(*ctx);
  *ctx = NULL;
}

static void add_frame(sm_ctx *ctx, const char *file, int line) {
  if (ctx->err_ntrace >= SM_TRACE_MAX) return;
  const char *base = strrchr(file, '/');
  base = base ? base + 1 : file;
  snprintf(ctx->err_trace[ctx->err_ntrace++], sizeof ctx->err_trace[0], "%s:%d", base, line);
}

sm_status sm__error(sm_ctx *ctx, sm_status code, const char *file, int line, const char *fmt, ...) {
  if (!ctx) return code;
  ctx->err_code = code;
  ctx->err_ntrace = 0;
  add_frame(ctx, file, line);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ctx->err_msg, sizeof ctx->err_msg, fmt, ap);
  va_end(ap);
  return code;
}

sm_status sm__frame(sm_ctx *ctx, sm_status s, const char *file, int line) {
  if (!ctx) return s;
  if (ctx->err_code == SM_OK) { /* a status that came without a message: give it one */
    ctx->err_code = s;
    snprintf(ctx->err_msg, sizeof ctx->err_msg, "%s", sm_status_str(s));
  }
  add_frame(ctx, file, line);
  return s;
}

void sm_ctx_clear_error(sm_ctx *ctx) {
  ctx->err_code = SM_OK;
  ctx->err_msg[0] = '\0';
  ctx->err_ntrace = 0;
}

sm_status sm__mpi_error(sm_ctx *ctx, int rc, const char *call, const char *file, int line) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "code %d", rc);
  return sm__error(ctx, SM_ERR_MPI, file, line, "%s failed: %s", call, text);
}

sm_status sm__alloc(sm_ctx *ctx, void **out, size_t n, size_t size, const char *file, int line) {
  *out = NULL;
  if (n == 0) n = 1; /* a valid pointer even for empty shards */
  if (n > SIZE_MAX / size)
    return sm__error(ctx, SM_ERR_NOMEM, file, line, "allocation of %zu x %zu bytes overflows", n, size);
  *out = calloc(n, size);
  if (!*out)
    return sm__error(ctx, SM_ERR_NOMEM, file, line, "cannot allocate %.1f MiB",
                     (double)n * (double)size / 1048576.0);
  return SM_OK;
}

sm_status sm_ctx_agree(sm_ctx *ctx, sm_status local) {
  int mine = local != SM_OK ? ctx->rank : ctx->size, first = ctx->size;
  if (MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, ctx->comm) != MPI_SUCCESS)
    sm_ctx_abort(ctx, SM_ERR_MPI); /* cannot agree: the only safe exit */
  if (first == ctx->size) return SM_OK;
  struct {
    int code;
    char msg[SM_ERRMSG_MAX];
  } pkt = {0};
  if (ctx->rank == first) {
    pkt.code = local;
    if (ctx->err_code == SM_OK) snprintf(ctx->err_msg, sizeof ctx->err_msg, "%s", sm_status_str(local));
    if (!strncmp(ctx->err_msg, "[rank ", 6)) /* already tagged by an earlier agreement */
      snprintf(pkt.msg, sizeof pkt.msg, "%s", ctx->err_msg);
    else
      snprintf(pkt.msg, sizeof pkt.msg, "[rank %d/%d] %s: %s", first, ctx->size, ctx->err_ntrace ? ctx->err_trace[0] : "?",
               ctx->err_msg);
  }
  if (MPI_Bcast(&pkt, (int)sizeof pkt, MPI_BYTE, first, ctx->comm) != MPI_SUCCESS)
    sm_ctx_abort(ctx, SM_ERR_MPI);
  ctx->err_code = (sm_status)pkt.code;
  snprintf(ctx->err_msg, sizeof ctx->err_msg, "%s", pkt.msg);
  if (ctx->rank != first) ctx->err_ntrace = 0;
  return (sm_status)pkt.code;
}

void sm_ctx_print_error(const sm_ctx *ctx, int agreed) {
  if (ctx->err_code == SM_OK || (agreed && ctx->rank != 0)) return;
  if (!strncmp(ctx->err_msg, "[rank ", 6))
    fprintf(stderr, "sisma: error (%s): %s\n", sm_status_str(ctx->err_code), ctx->err_msg);
  else
    fprintf(stderr, "sisma: error (%s): [rank %d/%d] %s: %s\n", sm_status_str(ctx->err_code), ctx->rank, ctx->size,
            ctx->err_ntrace ? ctx->err_trace[0] : "?", ctx->err_msg);
  if (ctx->log_level >= SM_LOG_DEBUG)
    for (int i = 1; i < ctx->err_ntrace; i++) fprintf(stderr, "    from %s\n", ctx->err_trace[i]);
}

void sm_ctx_abort(sm_ctx *ctx, sm_status s) {
  if (ctx->err_code == SM_OK) ctx->err_code = s;
  fprintf(stderr, "[rank %d/%d] %s: %s (%s); aborting the job\n", ctx->rank, ctx->size,
          ctx->err_ntrace ? ctx->err_trace[0] : "?", ctx->err_msg[0] ? ctx->err_msg : sm_status_str(s),
          sm_status_str(s));
  fflush(stderr);
  MPI_Abort(ctx->comm, 1);
  abort(); /* MPI_Abort does not return; keeps the compiler's noreturn contract */
}
