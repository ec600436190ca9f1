/* Logging and timers: every line is tagged with rank, rank count and seconds since start. */
#include "sisma/core.h"

#include <stdio.h>

static const char *level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void sm_log(const sm_ctx *ctx, sm_log_level level, const char *fmt, ...) {
  if (level > ctx->log_level) return;
  if (level >= SM_LOG_INFO && ctx->rank != 0 && !ctx->log_all_ranks) return;
  char line[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  FILE *to = level <= SM_LOG_WARN ? stderr : stdout;
  fprintf(to, "[sisma %d/%d +%.3fs] %s %s\n", ctx->rank, ctx->size, MPI_Wtime() - ctx->t_start, level_names[level],
          line);
  fflush(to);
}

double sm_wtime(void) { return MPI_Wtime(); }
