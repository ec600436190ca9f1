/* Fuzz target: any bytes as a miniSEED 2 file, through sisma's reader (src/io/mseed_read.c:
 * sm__mseed_read_file, libmseed 2 underneath) and, when the file reads, the import stage into a
 * catalog in the scratch directory, twice: at the data's rate and resampled to 7 Hz
 * (src/io/mseed_import.c, mseed_station.c: scan, stations, windows of 2 s with gaps
 * interpolated, polyphase resampling, the catalog write), each catalog read back; memory_budget_mb is 256, so records
 * far apart in time are refused, not allocated. Invariants: a refused file's message names the file (internal.h:
 * "naming the file, record and byte offset"). The digest: the read's status, its record count, each record's sample
 * count, rate and start, a checksum of the samples; the import's status, the catalog's shape and
 * a checksum of its waveforms - the same at every rank count. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "io/internal.h"
#include "sisma/catalog.h"
#include "sisma/job.h"

static uint64_t mix(uint64_t h) {
  h ^= h >> 33, h *= 0xff51afd7ed558ccdULL, h ^= h >> 33, h *= 0xc4ceb9fe1a85ec53ULL;
  return h ^ (h >> 33);
}
static uint64_t hash_bytes(uint64_t h, const void *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    h = (h ^ ((const unsigned char *)p)[i]) * 1099511628211ULL;
  return h;
}
static double top(uint64_t h) { return (double)(h >> 12); }

/* The records' digest: count, then per record (the first 100) samples, rate, start; a checksum. */
static void put_records(fuzz_digest *d, const sm__mseed_recs *r) {
  uint64_t h = 1469598103934665603ULL;
  fuzz_put(d, (double)r->n);
  for (int64_t i = 0; i < r->n; i++) {
    const sm__mseed_rec *c = &r->rec[i];
    if (i < 100) fuzz_put(d, (double)c->n), fuzz_put(d, c->rate_hz), fuzz_put(d, (double)c->start_us);
    h = hash_bytes(h, c->id, strlen(c->id));
    h = mix(h ^ (uint64_t)c->offset);
    if (c->x) h = hash_bytes(h, c->x, (size_t)c->n * sizeof *c->x);
  }
  fuzz_put(d, top(h));
}

/* The import stage into dir/fuzz_cat.h5 (rate: 0 keeps the input rate, else resample to it). */
static int import(sm_ctx *ctx, const char *in, const char *out, const char *rate) {
  const sm_stage *s = sm_stage_find("import");
  sm_config cfg;
  sm_config_init(&cfg, s->name, s->keys);
  cfg.memory_budget_mb = 256; /* the job-level key: far-apart records are refused, not allocated */
  const char *kv[] = {
      "format",           "mseed", "input", "", "output", "", "window_s", "2", "gap_policy", "interpolate",
      "sampling_rate_hz", rate,    NULL};
  kv[3] = in, kv[5] = out;
  sm_status st = SM_OK;
  for (int i = 0; st == SM_OK && kv[i]; i += 2)
    st = sm_config_set(ctx, &cfg, kv[i], kv[i + 1], "fuzz");
  if (st == SM_OK) st = sm_stage_run(ctx, s, &cfg);
  sm_config_fini(&cfg);
  if (st != SM_OK && getenv("SISMA_FUZZ_VERBOSE") && !ctx->rank) fprintf(stderr, "import: %s\n", ctx->err_msg);
  sm_ctx_clear_error(ctx);
  return (int)st;
}

/* The catalog's shape and, when small, a checksum of its waveforms (read by rank 0). */
static int put_catalog(sm_ctx *ctx, const char *path, fuzz_digest *d) {
  sm_catalog *cat = NULL;
  sm_status st = sm_catalog_open(ctx, path, &cat);
  if (st != SM_OK) return sm_ctx_clear_error(ctx), (int)st;
  const sm_catalog_info *in = sm_catalog_get_info(cat);
  int64_t n = in->n_traces * in->n_components * in->n_samples;
  fuzz_put(d, (double)in->n_traces), fuzz_put(d, in->n_components), fuzz_put(d, (double)in->n_samples);
  fuzz_put(d, in->sampling_rate_hz);
  float *w = n <= (1 << 22) ? malloc((size_t)(n + 1) * sizeof *w) : NULL;
  uint64_t h = 0;
  if (w) {
    st = sm_catalog_read_traces(cat, 0, ctx->rank ? 0 : in->n_traces, w);
    h = hash_bytes(1469598103934665603ULL, w, (size_t)n * sizeof *w);
    MPI_Bcast(&h, 1, MPI_UINT64_T, 0, ctx->comm);
  }
  fuzz_put(d, top(h));
  free(w);
  sm_catalog_close(&cat);
  sm_ctx_clear_error(ctx);
  return (int)st;
}

int fuzz_one(sm_ctx *ctx, const uint8_t *data, size_t size, const char *dir, fuzz_digest *d) {
  for (int k = 0; k < FUZZ_STEPS; k++)
    d->code[k] = -1;
  char path[4096], cat[4096], note[2048];
  snprintf(path, sizeof path, "%s/fuzz.mseed", dir);
  snprintf(cat, sizeof cat, "%s/fuzz_cat.h5", dir);
  if (!ctx->rank) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f)) MPI_Abort(ctx->comm, 3);
  }
  MPI_Barrier(ctx->comm);
  sm__mseed_recs r = {0};
  sm_status st = sm__mseed_read_file(ctx, path, NULL, NULL, 0, &r, note, sizeof note);
  int ok = st == SM_OK || strstr(ctx->err_msg, path) || st == SM_ERR_NOMEM;
  if (!ok) fprintf(stderr, "fuzz_mseed: the refusal does not name %s: %s\n", path, ctx->err_msg);
  if (st != SM_OK && getenv("SISMA_FUZZ_VERBOSE") && !ctx->rank) fprintf(stderr, "read: %s\n", ctx->err_msg);
  sm_ctx_clear_error(ctx);
  d->code[0] = (int)st;
  put_records(d, &r);
  sm__mseed_recs_free(&r);
  /* the import, at the data's rate and resampled to 7 Hz (polyphase FIR), when the file reads */
  for (int k = 0; st == SM_OK && k < 2; k++) {
    d->code[1 + 2 * k] = import(ctx, path, cat, k ? "7" : "0");
    if (d->code[1 + 2 * k] == SM_OK) d->code[2 + 2 * k] = put_catalog(ctx, cat, d);
    MPI_Barrier(ctx->comm);
    if (!ctx->rank) remove(cat);
  }
  MPI_Barrier(ctx->comm);
  if (!ctx->rank) remove(path);
  return ok;
}
