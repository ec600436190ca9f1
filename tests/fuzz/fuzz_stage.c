/* Fuzz target: the lm and logistic stages as `sisma lm|glm` and job files run them (src/stats/
 * stage.c, glm_stage.c, output.c, metrics.c): splits by group, k-fold cross-validation, the
 * per-event metrics, gradient descent, the JSON and HDF5 results. The input: a first line naming
 * the stage (logistic, else lm), `key=value` lines (the stage's keys; paths other than the result
 * are not taken, iterations are capped), a line `---`, then the CSV table. `output=json` or
 * `output=h5` writes the result into the scratch directory. The stage must end in a result or a
 * clean error; what rank 0 prints (the summaries) and the status must be the same at every rank
 * count. */
#define _GNU_SOURCE /* memmem */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "sisma/job.h"

/* FNV-1a of the text printed into path, 0 when it cannot be read; a line's trailing elapsed time
 * (", 0.012 s", gradient descent's result line) is left out. */
static uint64_t hash_printed(const char *path) {
  FILE *f = fopen(path, "rb");
  uint64_t h = 1469598103934665603ULL;
  char line[8192];
  while (f && fgets(line, sizeof line, f)) {
    size_t n = strlen(line);
    char *c = strrchr(line, ',');
    if (c && n >= 3 && !strcmp(line + n - 3, " s\n") &&
        strspn(c + 2, "0123456789.") == (size_t)(line + n - 3 - (c + 2)))
      *c = 0, n = (size_t)(c - line);
    for (size_t i = 0; i < n; i++)
      h = (h ^ (unsigned char)line[i]) * 1099511628211ULL;
  }
  if (f) fclose(f);
  return f ? h : 0;
}

/* The key's type in the stage's table, or -1. */
static int key_type(const sm_stage *s, const char *name) {
  for (const sm_key *k = s->keys; k->name; k++)
    if (!strcmp(k->name, name)) return (int)k->type;
  return -1;
}

int fuzz_one(sm_ctx *ctx, const uint8_t *data, size_t size, const char *dir, fuzz_digest *d) {
  for (int k = 0; k < FUZZ_STEPS; k++)
    d->code[k] = -1;
  const char *text = (const char *)data, *end = text + size, *sep = memmem(text, size, "\n---\n", 5);
  if (!sep || sep - text > 4000 || memchr(text, 0, (size_t)(sep - text))) return 1;
  sep++; /* the line "---" */
  char head[4001], path[4096], out[4096], printed[4096];
  memcpy(head, text, (size_t)(sep - text)), head[sep - text] = 0;
  snprintf(path, sizeof path, "%s/fuzz.csv", dir);
  snprintf(printed, sizeof printed, "%s/fuzz.stdout", dir);
  if (!ctx->rank) {
    FILE *f = fopen(path, "wb");
    size_t n = (size_t)(end - (sep + 4));
    if (!f || fwrite(sep + 4, 1, n, f) != n || fclose(f)) MPI_Abort(ctx->comm, 3);
  }
  MPI_Barrier(ctx->comm);
  char *save = NULL, *line = strtok_r(head, "\n", &save);
  const sm_stage *s = sm_stage_find(line && !strcmp(line, "logistic") ? "logistic" : "lm");
  sm_config cfg;
  sm_config_init(&cfg, s->name, s->keys);
  sm_status st = sm_config_set(ctx, &cfg, "data", path, "fuzz");
  out[0] = 0;
  while (st == SM_OK && (line = strtok_r(NULL, "\n", &save))) {
    char *eq = strchr(line, '=');
    if (!eq) continue;
    *eq = 0;
    const char *key = line, *val = eq + 1;
    int type = key_type(s, key);
    if (!strcmp(key, "output") && (!strcmp(val, "json") || !strcmp(val, "h5")))
      snprintf(out, sizeof out, "%s/fuzz.%s", dir, val), val = out;
    else if (type == SM_KEY_PATH || !strcmp(key, "data"))
      continue; /* no files but the scratch ones */
    else if ((!strcmp(key, "max_iter") || !strcmp(key, "maxit")) && atoll(val) > 200)
      continue;
    st = sm_config_set(ctx, &cfg, key, val, "fuzz");
  }
  d->code[0] = (int)sm_ctx_agree(ctx, st);
  if (d->code[0] == SM_OK) {
    int saved = -1;
    if (!ctx->rank) { /* rank 0's stdout into a file while the stage runs */
      fflush(stdout);
      int fd = open(printed, O_CREAT | O_TRUNC | O_WRONLY, 0600);
      saved = dup(1);
      if (fd < 0 || saved < 0 || dup2(fd, 1) < 0) MPI_Abort(ctx->comm, 3);
      close(fd);
    }
    d->code[1] = (int)sm_stage_run(ctx, s, &cfg);
    uint64_t h[2] = {0, 0};
    if (!ctx->rank) {
      fflush(stdout);
      dup2(saved, 1), close(saved);
      h[0] = hash_printed(printed), remove(printed);
    }
    MPI_Bcast(h, 2, MPI_UINT64_T, 0, ctx->comm);
    fuzz_put(d, (double)(h[0] >> 12));
    if (!ctx->rank && out[0]) remove(out);
  }
  sm_config_fini(&cfg);
  if (!ctx->rank) remove(path);
  return 1;
}
