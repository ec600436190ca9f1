/* Fuzz target: any bytes as a CSV table (src/io/csv.c, src/table/table_csv.c). The table read in
 * parallel by byte ranges must give what the serial parse of the whole file gives - the same
 * status, the same columns and, under the table's rules for missing values and types (below),
 * the same types and values - and at any rank count the same global table (the digest: each
 * column's type and a checksum of every row's values with its global row number). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "io/csv.h"
#include "sisma/table.h"

static uint64_t mix(uint64_t h) {
  h ^= h >> 33, h *= 0xff51afd7ed558ccdULL, h ^= h >> 33, h *= 0xc4ceb9fe1a85ec53ULL;
  return h ^ (h >> 33);
}
static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}
static uint64_t hash_num(double v) {
  uint64_t b;
  if (isnan(v)) v = NAN; /* every NaN is "missing" */
  memcpy(&b, &v, sizeof b);
  return b;
}

/* The table's reading of a serially parsed value (include/sisma/table.h): NA and empty are missing,
 * in numeric columns None, nan and NaN too; a column is numeric when every value that is not
 * missing parses as a number. */
static int na_str(const char *s) { return !s[0] || !strcmp(s, "NA"); }
static int na_num(const char *s) { return na_str(s) || !strcmp(s, "None") || !strcmp(s, "nan") || !strcmp(s, "NaN"); }
static double num(const sm_csv *csv, int64_t i, int j, int *ok) {
  const char *s = sm__csv_str(csv, i, j);
  double v = NAN;
  if (!na_num(s) && !sm__csv_parse_f64(s, &v)) *ok = 0;
  return v;
}

int fuzz_one(sm_ctx *ctx, const uint8_t *data, size_t size, const char *dir, fuzz_digest *out) {
  char path[4096];
  snprintf(path, sizeof path, "%s/fuzz.csv", dir);
  if (!ctx->rank) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f)) MPI_Abort(ctx->comm, 3);
  }
  MPI_Barrier(ctx->comm);
  sm_table *t = NULL;
  sm_status st = sm_table_open(ctx, path, &t);
  out->code[0] = (int)st;
  /* the serial parse, on every rank */
  sm_ctx_clear_error(ctx);
  sm_csv *csv = NULL;
  sm_status serial = sm__csv_create_text(ctx, path, (const char *)data, size, &csv);
  sm_ctx_clear_error(ctx);
  int ok = serial == st; /* the same status both ways */
  if (st == SM_OK && serial == SM_OK) {
    int nc = sm_table_ncols(t), same = nc == sm__csv_cols(csv) && sm_table_nrows(t) == sm__csv_rows(csv);
    sm_range r = sm_table_range(t);
    uint64_t sum[64] = {0};
    fuzz_put(out, (double)sm_table_nrows(t)), fuzz_put(out, nc);
    for (int j = 0; j < nc && same; j++) {
      int str = sm_table_col_is_str(t, j);
      int numeric = 1;
      for (int64_t i = 0; i < sm__csv_rows(csv); i++)
        num(csv, i, j, &numeric);
      same &= !strcmp(sm_table_col_name(t, j), sm__csv_col_name(csv, j)) && str == !numeric;
      fuzz_put(out, str), fuzz_put(out, (double)(hash_str(sm_table_col_name(t, j)) >> 12));
      for (int64_t i = 0; i < r.count && same; i++) {
        int64_t g = r.first + i;
        uint64_t h;
        if (str) {
          const char *s = sm_table_str(t, j)[i];
          const char *c = sm__csv_str(csv, g, j);
          same &= !strcmp(s, na_str(c) ? "" : c);
          h = hash_str(s);
        } else {
          int parsed = 1;
          double v = sm_table_num(t, j)[i], w = num(csv, g, j, &parsed);
          same &= hash_num(v) == hash_num(w);
          h = hash_num(v);
        }
        sum[j % 64] += mix(h ^ mix((uint64_t)g));
      }
    }
    MPI_Allreduce(MPI_IN_PLACE, &same, 1, MPI_INT, MPI_MIN, ctx->comm);
    MPI_Allreduce(MPI_IN_PLACE, sum, 64, MPI_UINT64_T, MPI_SUM, ctx->comm);
    ok &= same;
    for (int j = 0; j < nc && j < 64; j++)
      fuzz_put(out, (double)(sum[j] >> 12));
  }
  sm__csv_destroy(&csv);
  sm_table_close(&t);
  if (!ctx->rank) remove(path);
  if (!ok && !ctx->rank)
    fprintf(stderr, "fuzz_table: the table (status %d) differs from the serial parse (status %d)\n", (int)st,
            (int)serial);
  return ok;
}
