/* Fuzz target: any bytes as a YAML job file (src/job/job.c, src/config/config.c, libyaml) through
 * sm_job_load with overrides, then, when it loads, a dry run (sm_job_run with dry_run = 1: the
 * resolved YAML and each stage's plan, printed by rank 0 into /dev/null). Lines of the input that
 * begin with "#set " (YAML comments) are also given as overrides, in order ("stage.key=value" or
 * "key=value"). The dry run touches no files outside the scratch directory: only the preprocess
 * stage's plan opens a file (its input catalog, when it exists), so a job with a preprocess stage
 * is loaded again with preprocess.input pointing at a scratch name that does not exist.
 * Invariants: a failed load names the job file as file:line:column (include/sisma/config.h: every
 * error names file:line:column), or the override (--set) at fault. The digest: the statuses and a
 * hash of sm_job_yaml's text, the same at every rank count. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "sisma/job.h"

#define MAX_OVERRIDES 8

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

/* Whether msg names path:LINE:COLUMN. */
static int names_position(const char *msg, const char *path) {
  size_t n = strlen(path);
  for (const char *p = strstr(msg, path); p; p = strstr(p + 1, path)) {
    const char *q = p + n;
    size_t d1 = q[0] == ':' ? strspn(q + 1, "0123456789") : 0;
    if (d1 && q[1 + d1] == ':' && strspn(q + 2 + d1, "0123456789")) return 1;
  }
  return 0;
}

/* The "#set " lines of the input: up to MAX_OVERRIDES strings (owned by the caller). */
static int take_overrides(const char *text, size_t size, char **ov) {
  int n = 0;
  for (const char *p = text, *end = text + size; p < end && n < MAX_OVERRIDES;) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
    if (l > 5 && !memcmp(p, "#set ", 5) && !memchr(p, 0, l)) ov[n++] = strndup(p + 5, l - 5);
    p += l + 1;
  }
  return n;
}

/* Load the job; on failure check that the message says where. Returns 0 when it does not. */
static int load(sm_ctx *ctx, const char *path, int n, char **ov, sm_job **job, int *code) {
  *code = (int)sm_job_load(ctx, path, n, ov, job);
  int named = *code == SM_OK || names_position(ctx->err_msg, path) || strstr(ctx->err_msg, "--set ");
  if (!named && !ctx->rank)
    fprintf(stderr, "fuzz_job: the error does not name %s:LINE:COLUMN: %s\n", path, ctx->err_msg);
  sm_ctx_clear_error(ctx);
  return named;
}

/* The dry run with rank 0's stdout in /dev/null. */
static int dry_run(sm_ctx *ctx, sm_job *job) {
  int saved = -1;
  if (!ctx->rank) {
    fflush(stdout);
    int fd = open("/dev/null", O_WRONLY);
    saved = dup(1);
    if (fd < 0 || saved < 0 || dup2(fd, 1) < 0) MPI_Abort(ctx->comm, 3);
    close(fd);
  }
  int code = (int)sm_job_run(ctx, job, 1, 0);
  if (!ctx->rank) fflush(stdout), dup2(saved, 1), close(saved);
  sm_ctx_clear_error(ctx);
  return code;
}

int fuzz_one(sm_ctx *ctx, const uint8_t *data, size_t size, const char *dir, fuzz_digest *d) {
  for (int k = 0; k < FUZZ_STEPS; k++)
    d->code[k] = -1;
  char path[4096], absent[4200], *ov[MAX_OVERRIDES + 1] = {0};
  snprintf(path, sizeof path, "%s/fuzz.yaml", dir);
  if (!ctx->rank) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f)) MPI_Abort(ctx->comm, 3);
  }
  MPI_Barrier(ctx->comm);
  int n = take_overrides((const char *)data, size, ov), ok = 1;
  sm_job *job = NULL;
  ok &= load(ctx, path, n, ov, &job, &d->code[0]);
  if (job && strstr(sm_job_yaml(job), "\n  - preprocess:\n")) { /* its plan would open preprocess.input */
    sm_job_destroy(&job);
    snprintf(absent, sizeof absent, "preprocess.input=%s/absent.h5", dir);
    ov[n] = absent;
    ok &= load(ctx, path, n + 1, ov, &job, &d->code[1]);
    ov[n] = NULL;
  }
  if (job) {
    fuzz_put(d, (double)(hash_str(sm_job_yaml(job)) >> 12));
    d->code[2] = dry_run(ctx, job);
  }
  sm_job_destroy(&job);
  for (int i = 0; i < n; i++)
    free(ov[i]);
  if (!ctx->rank) remove(path);
  return ok;
}
