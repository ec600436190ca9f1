/* miniSEED 2 -> catalog (the `import` stage with format mseed). Collective.
 *
 * Plan, then run, in two passes so that every rank branches on the same global facts:
 *  1. scan: rank r reads an arithmetic block of the input files (decoding every record, so
 *     corrupt and NaN records are found here) and summarises each as "ok or why not, and its
 *     channels with their rates". The summaries are allgathered: every rank then holds the same
 *     file table, applies on_error identically, and builds the same sorted station list
 *     (NET.STA.LOC + band/instrument code; component = last letter of the channel, 1/2 -> N/E).
 *  2. cut: rank r takes an arithmetic block of the stations, re-reads just their files, cuts the
 *     windows (mseed_station.c) and keeps them in memory. Statuses are agreed, an exscan of the
 *     window counts gives each rank its first row, and all ranks write collectively. Output rows
 *     are in station order, then window order, so the catalog is the same for any rank count.
 * The catalog is created under a temporary name and only committed when everything succeeded. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "internal.h"
#include "sisma/job.h"
#include "sisma/shard.h"

typedef struct {
  int ok;
  char *msg; /* why it failed, or notes; borrowed from the gathered blob */
} file_row;

typedef struct {
  char **paths;
  int64_t nfiles;
  file_row *files;
  char *blob; /* gathered scan summaries (rows point into it) */
  sm__mseed_station *st;
  int64_t nst;
  sm__mseed_window **wins; /* [nst] windows per station (CSV mode), else NULL */
  int64_t *nwins;
  int have_p, have_s, have_name;
  sm_csv *csv;
  int name_col;
  sm__mseed_wopts o;
  const char *components;
} plan;

/* ---- pass 1: scan a block of files, gather the summaries ---- */

static int keep_none(const char *id, void *arg) { return (void)id, (void)arg, 0; }

static void clean(char *s) {
  for (; *s; s++)
    if (*s == '\t' || *s == '\n') *s = ' ';
}

/* Append to a growing text buffer. */
static sm_status cat_text(sm_ctx *ctx, char **buf, size_t *len, size_t *cap, const char *s) {
  size_t l = strlen(s);
  if (*len + l + 1 > *cap) {
    size_t c = (*len + l + 1) * 2;
    char *b = realloc(*buf, c);
    SM_CHECK(ctx, b, SM_ERR_NOMEM, "out of memory");
    *buf = b, *cap = c;
  }
  memcpy(*buf + *len, s, l + 1);
  *len += l;
  return SM_OK;
}

/* Summary of one file: "F\tidx\tok\tmessage\n" then "C\tid\trate\n" per distinct channel/rate. */
static sm_status scan_file(sm_ctx *ctx, const char *path, int64_t idx, char **buf, size_t *len, size_t *cap) {
  sm__mseed_recs r = {0};
  char note[2048], line[4096];
  sm_status s = sm__mseed_read_file(ctx, path, keep_none, NULL, 1, &r, note, sizeof note);
  char *msg = s == SM_OK ? note : ctx->err_msg;
  clean(msg);
  snprintf(line, sizeof line, "F\t%lld\t%d\t%s\n", (long long)idx, s == SM_OK, msg);
  sm_ctx_clear_error(ctx);
  s = cat_text(ctx, buf, len, cap, line);
  for (int64_t i = 0; s == SM_OK && i < r.n; i++) {
    int seen = 0;
    for (int64_t j = 0; j < i && !seen; j++)
      seen = !strcmp(r.rec[j].id, r.rec[i].id) && r.rec[j].rate_hz == r.rec[i].rate_hz;
    if (seen) continue;
    snprintf(line, sizeof line, "C\t%s\t%.17g\n", r.rec[i].id, r.rec[i].rate_hz);
    s = cat_text(ctx, buf, len, cap, line);
  }
  sm__mseed_recs_free(&r);
  return s;
}

static sm_status scan(sm_ctx *ctx, plan *p) {
  sm_range mine = sm_shard_range(p->nfiles, 1, ctx->rank, ctx->size);
  char *buf = NULL;
  size_t len = 0, cap = 0;
  sm_status s = cat_text(ctx, &buf, &len, &cap, "");
  for (int64_t i = mine.first; s == SM_OK && i < mine.first + mine.count; i++)
    s = scan_file(ctx, p->paths[i], i, &buf, &len, &cap);
  s = sm_ctx_agree(ctx, s);
  int n = (int)len, *counts = NULL, *displ = NULL;
  if (s == SM_OK) s = SM_ALLOC(ctx, counts, ctx->size);
  if (s == SM_OK) s = SM_ALLOC(ctx, displ, ctx->size);
  s = sm_ctx_agree(ctx, s);
  if (s == SM_OK && MPI_Allgather(&n, 1, MPI_INT, counts, 1, MPI_INT, ctx->comm) != MPI_SUCCESS)
    s = SM_ERR(ctx, SM_ERR_MPI, "allgather of scan sizes failed");
  int64_t total = 0;
  for (int r = 0; s == SM_OK && r < ctx->size; r++)
    displ[r] = (int)total, total += counts[r];
  if (s == SM_OK) s = SM_ALLOC(ctx, p->blob, total + 1);
  if (s == SM_OK && MPI_Allgatherv(buf, n, MPI_CHAR, p->blob, counts, displ, MPI_CHAR, ctx->comm) != MPI_SUCCESS)
    s = SM_ERR(ctx, SM_ERR_MPI, "allgather of scan summaries failed");
  if (s == SM_OK) p->blob[total] = '\0';
  free(buf);
  free(counts);
  free(displ);
  return s;
}

/* ---- the file table and the stations (identical on every rank) ---- */

static char map_component(char c) { return c == '1' ? 'N' : c == '2' ? 'E' : c; }

static sm__mseed_station *station_get(sm_ctx *ctx, plan *p, const char *id, int64_t *cap) {
  char net[16] = "", sta[16] = "", loc[16] = "", cha[16] = "";
  /* field by field: codes may be empty ("..CER.00.BHZ" has no network) */
  const char *f[4] = {id, NULL, NULL, NULL};
  for (int k = 1; k < 4; k++)
    f[k] = strchr(f[k - 1], '.') + 1;
  snprintf(net, sizeof net, "%.*s", (int)(f[1] - f[0] - 1), f[0]);
  snprintf(sta, sizeof sta, "%.*s", (int)(f[2] - f[1] - 1), f[1]);
  snprintf(loc, sizeof loc, "%.*s", (int)(f[3] - f[2] - 1), f[2]);
  snprintf(cha, sizeof cha, "%s", f[3]);
  char key[SM_MSEED_ID_MAX];
  size_t lc = strlen(cha);
  snprintf(key, sizeof key, "%s.%s.%s.%.*s", net, sta, loc, (int)(lc ? lc - 1 : 0), cha);
  for (int64_t i = 0; i < p->nst; i++)
    if (!strcmp(p->st[i].key, key)) return &p->st[i];
  if (p->nst == *cap) {
    int64_t c = *cap ? 2 * *cap : 16;
    sm__mseed_station *q = realloc(p->st, (size_t)c * sizeof *q);
    if (!q) return SM_ERR(ctx, SM_ERR_NOMEM, "out of memory"), NULL;
    p->st = q, *cap = c;
  }
  sm__mseed_station *s = &p->st[p->nst++];
  memset(s, 0, sizeof *s);
  snprintf(s->key, sizeof s->key, "%s", key);
  snprintf(s->net, sizeof s->net, "%s", net);
  snprintf(s->sta, sizeof s->sta, "%s", sta);
  snprintf(s->loc, sizeof s->loc, "%s", loc);
  snprintf(s->band, sizeof s->band, "%.*s", (int)(lc ? lc - 1 : 0), cha);
  return s;
}

/* Add channel `id` at `rate` of file `fi` to its station. Returns a reason to refuse the
 * station (rate mismatch) in bad[], or nothing. */
static sm_status add_channel(sm_ctx *ctx, plan *p, const char *id, double rate, int64_t fi, int64_t *cap, char **bad) {
  const char *cha = strrchr(id, '.') + 1;
  size_t lc = strlen(cha);
  char comp = lc ? map_component(cha[lc - 1]) : '?';
  const char *slotp = strchr(p->components, comp);
  if (!slotp || !lc) {
    if (ctx->rank == 0)
      sm_info(ctx, "import: channel %s: component '%c' is not one of %s: skipped", id, lc ? cha[lc - 1] : '?',
              p->components);
    return SM_OK;
  }
  sm__mseed_station *s = station_get(ctx, p, id, cap);
  if (!s) return ctx->err_code;
  int64_t si = s - p->st, slot = slotp - p->components;
  if (s->rate_hz == 0)
    s->rate_hz = rate;
  else if (fabs(s->rate_hz - rate) > 1e-6 * rate && !bad[si]) {
    char why[256];
    snprintf(why, sizeof why, "channels at %g Hz and %g Hz (%s)", s->rate_hz, rate, id);
    bad[si] = strdup(why);
  }
  const char *have = s->chan[slot];
  int native = cha[lc - 1] == comp, have_native = have[0] && have[strlen(have) - 1] == comp;
  if (!have[0] || (native && !have_native))
    snprintf(s->chan[slot], sizeof s->chan[slot], "%s", cha);
  else if (strcmp(have, cha) && ctx->rank == 0)
    sm_info(ctx, "import: station %s: channel %s skipped, component %c comes from %s", s->key, cha, comp, have);
  for (int64_t k = 0; k < s->nfiles; k++)
    if (s->files[k] == fi) return SM_OK;
  int64_t *f = realloc(s->files, (size_t)(s->nfiles + 1) * sizeof *f);
  SM_CHECK(ctx, f, SM_ERR_NOMEM, "out of memory");
  s->files = f;
  s->files[s->nfiles++] = fi;
  return SM_OK;
}

static int cmp_station(const void *a, const void *b) {
  return strcmp(((const sm__mseed_station *)a)->key, ((const sm__mseed_station *)b)->key);
}

/* Drop stations that cannot be imported; fill `present`. */
static void filter_stations(sm_ctx *ctx, plan *p, char **bad, int refuse_missing) {
  int64_t k = 0;
  int C = (int)strlen(p->components);
  for (int64_t i = 0; i < p->nst; i++) {
    sm__mseed_station *s = &p->st[i];
    int np = 0;
    for (int c = 0; c < C; c++)
      if (s->chan[c][0]) s->present[np++] = p->components[c];
    s->present[np] = '\0';
    const char *why = bad[i]                       ? bad[i]
                      : np == 0                    ? "no usable component"
                      : (refuse_missing && np < C) ? "missing components (missing_components: refuse)"
                                                   : NULL;
    if (why) {
      if (ctx->rank == 0) sm_warn(ctx, "import: station %s skipped: %s", s->key, why);
      free(s->files);
      free(bad[i]);
      continue;
    }
    p->st[k++] = *s;
  }
  p->nst = k;
  if (k > 0) qsort(p->st, (size_t)p->nst, sizeof *p->st, cmp_station);
}

static sm_status build_table(sm_ctx *ctx, plan *p, const sm_config *cfg) {
  SM_TRY(ctx, SM_ALLOC(ctx, p->files, p->nfiles));
  int skip = !strcmp(sm_config_str(cfg, "on_error"), "skip");
  int64_t cap = 0, cur = -1, nbad = 0;
  char **bad = NULL;
  size_t badcap = 0;
  sm_status s = SM_OK;
  for (char *save = NULL, *line = strtok_r(p->blob, "\n", &save); s == SM_OK && line;
       line = strtok_r(NULL, "\n", &save)) {
    char *f[4] = {line, NULL, NULL, NULL};
    for (int k = 1; k < 4; k++) {
      char *t = f[k - 1] ? strchr(f[k - 1], '\t') : NULL;
      if (t) *t = '\0', f[k] = t + 1;
    }
    if (line[0] == 'F' && f[3]) {
      cur = atoll(f[1]);
      p->files[cur].ok = atoi(f[2]);
      p->files[cur].msg = f[3];
      if (!p->files[cur].ok) nbad++;
    } else if (line[0] == 'C' && f[2] && cur >= 0 && p->files[cur].ok) {
      if ((size_t)p->nst + 1 > badcap) {
        badcap = 2 * badcap + 16;
        char **b = realloc(bad, badcap * sizeof *b);
        if (!b) {
          s = SM_ERR(ctx, SM_ERR_NOMEM, "out of memory");
          break;
        }
        memset(b + p->nst, 0, (badcap - (size_t)p->nst) * sizeof *b);
        bad = b;
      }
      s = add_channel(ctx, p, f[1], atof(f[2]), cur, &cap, bad);
    }
  }
  for (int64_t i = 0; s == SM_OK && i < p->nfiles; i++) {
    if (p->files[i].ok && p->files[i].msg[0] && ctx->rank == 0) sm_warn(ctx, "import: %s", p->files[i].msg);
    if (!p->files[i].ok && !skip)
      s = SM_ERR(ctx, SM_ERR_FORMAT, "%s (%lld of %lld input file(s) refused; on_error: skip imports the others)",
                 p->files[i].msg, (long long)nbad, (long long)p->nfiles);
    else if (!p->files[i].ok && ctx->rank == 0)
      sm_warn(ctx, "import: skipped: %s", p->files[i].msg);
  }
  if (s == SM_OK) filter_stations(ctx, p, bad, !strcmp(sm_config_str(cfg, "missing_components"), "refuse"));
  free(bad);
  SM_TRY(ctx, s);
  SM_CHECK(ctx, p->nst > 0, SM_ERR_DATA, "import: no station with %s components in %s (%lld file(s), %lld refused)",
           p->components, sm_config_str(cfg, "input"), (long long)p->nfiles, (long long)nbad);
  return SM_OK;
}

/* ---- windows CSV: every rank parses it and matches rows to stations ---- */

static int col_any(const sm_csv *csv, const char *a, const char *b) {
  int c = sm__csv_col_find(csv, a);
  return c >= 0 ? c : b ? sm__csv_col_find(csv, b) : -1;
}

static sm_status csv_time(sm_ctx *ctx, const sm_csv *csv, int64_t row, int col, int required, int64_t *us) {
  *us = INT64_MIN;
  if (col < 0) return SM_OK;
  const char *v = sm__csv_str(csv, row, col);
  double t;
  if (!v[0] && !required) return SM_OK;
  SM_CHECK(ctx, v[0] && sm_time_parse(v, &t) == 0, SM_ERR_FORMAT,
           "%s:%lld: column %s: \"%s\" is not an ISO 8601 time (YYYY-MM-DDThh:mm:ss[.ffffff])", sm__csv_path(csv),
           (long long)sm__csv_line(csv, row), sm__csv_col_name(csv, col), v);
  *us = llround(t * 1e6);
  return SM_OK;
}

static int row_matches(const sm_csv *csv, int64_t row, int cn, int cs, int cl, const sm__mseed_station *st) {
  if (strcmp(sm__csv_str(csv, row, cs), st->sta)) return 0;
  if (cn >= 0 && !sm__csv_missing(csv, row, cn) && strcmp(sm__csv_str(csv, row, cn), st->net)) return 0;
  if (cl >= 0 && strcmp(sm__csv_str(csv, row, cl), st->loc)) return 0;
  return 1;
}

static sm_status plan_windows(sm_ctx *ctx, plan *p, const char *path) {
  SM_TRY(ctx, sm__csv_create(ctx, path, &p->csv));
  const sm_csv *csv = p->csv;
  int cs = -1, cn = sm__csv_col_find(csv, "station_network_code"), cl = sm__csv_col_find(csv, "station_location_code");
  SM_TRY(ctx, sm__csv_col_require(ctx, csv, "station_code", &cs));
  int ct = sm__csv_col_find(csv, "time"), cp = col_any(csv, "p_time", "trace_p_arrival_time");
  int cst = col_any(csv, "s_time", "trace_s_arrival_time");
  SM_CHECK(ctx, ct >= 0 || cp >= 0, SM_ERR_FORMAT,
           "%s: no time column: the windows CSV needs \"time\" or \"p_time\" (ISO 8601, UTC)", path);
  p->have_p = cp >= 0, p->have_s = cst >= 0;
  p->name_col = sm__csv_col_find(csv, "trace_name");
  SM_TRY(ctx, SM_ALLOC(ctx, p->wins, p->nst));
  SM_TRY(ctx, SM_ALLOC(ctx, p->nwins, p->nst));
  memset(p->wins, 0, (size_t)p->nst * sizeof *p->wins);
  memset(p->nwins, 0, (size_t)p->nst * sizeof *p->nwins);
  int64_t unmatched = 0, before_us = llround(p->o.before_s * 1e6);
  for (int64_t r = 0; r < sm__csv_rows(csv); r++) {
    sm__mseed_window w = {0, 0, 0, r};
    int64_t t;
    SM_TRY(ctx, csv_time(ctx, csv, r, ct >= 0 ? ct : cp, 1, &t));
    SM_TRY(ctx, csv_time(ctx, csv, r, cp, 0, &w.p_us));
    SM_TRY(ctx, csv_time(ctx, csv, r, cst, 0, &w.s_us));
    w.start_us = t - before_us;
    int hit = 0;
    for (int64_t i = 0; i < p->nst; i++) {
      if (!row_matches(csv, r, cn, cs, cl, &p->st[i])) continue;
      sm__mseed_window *q = realloc(p->wins[i], (size_t)(p->nwins[i] + 1) * sizeof *q);
      SM_CHECK(ctx, q, SM_ERR_NOMEM, "out of memory");
      p->wins[i] = q;
      q[p->nwins[i]++] = w;
      hit = 1;
    }
    if (!hit && unmatched++ < 5 && ctx->rank == 0)
      sm_warn(ctx, "import: %s:%lld: station %s matches no imported station", path, (long long)sm__csv_line(csv, r),
              sm__csv_str(csv, r, cs));
  }
  if (unmatched && ctx->rank == 0)
    sm_warn(ctx, "import: %lld of %lld windows-CSV row(s) match no station", (long long)unmatched,
            (long long)sm__csv_rows(csv));
  return SM_OK;
}

/* ---- pass 2: this rank's stations -> windows ---- */

typedef struct {
  const sm__mseed_station *st;
  int C;
} keep_arg;

static int keep_station(const char *id, void *arg) {
  const keep_arg *k = arg;
  size_t l = strlen(k->st->key);
  if (strncmp(id, k->st->key, l) || strchr(id + l, '.')) return 0;
  for (int c = 0; c < k->C; c++)
    if (k->st->chan[c][0] && !strcmp(strrchr(id, '.') + 1, k->st->chan[c])) return 1;
  return 0;
}

static sm_status cut_station(sm_ctx *ctx, plan *p, int64_t i, sm__mseed_out *out) {
  const sm__mseed_station *st = &p->st[i];
  keep_arg ka = {st, p->o.C};
  sm__mseed_recs r = {0};
  char note[2048];
  sm_status s = SM_OK;
  for (int64_t k = 0; s == SM_OK && k < st->nfiles; k++)
    s = sm__mseed_read_file(ctx, p->paths[st->files[k]], keep_station, &ka, 0, &r, note, sizeof note);
  int64_t n0 = out->n, g0 = out->gaps, o0 = out->overlaps;
  if (s == SM_OK)
    s = sm__mseed_station_windows(ctx, st, &r, p->wins ? p->wins[i] : NULL, p->wins ? p->nwins[i] : 0, &p->o, out);
  sm__mseed_recs_free(&r);
  if (s == SM_OK)
    sm_debug(ctx, "import: station %s (%s, %g Hz): %lld window(s), %lld gap(s), %lld overlapping record(s)", st->key,
             st->present, st->rate_hz, (long long)(out->n - n0), (long long)(out->gaps - g0),
             (long long)(out->overlaps - o0));
  if (s == SM_OK && p->name_col >= 0 && p->csv)
    for (int64_t w = n0; w < out->n; w++)
      snprintf(out->m[w].name, sizeof out->m[w].name, "%s", sm__csv_str(p->csv, out->m[w].row, p->name_col));
  return s;
}

/* ---- writing ---- */

static sm_status put_col(sm_catalog *cat, const char *name, const sm__mseed_out *out, size_t field, int64_t first) {
  sm_ctx *ctx = sm_catalog_ctx(cat);
  const char **v = NULL;
  SM_TRY(ctx, SM_ALLOC(ctx, v, out->n + 1));
  for (int64_t i = 0; i < out->n; i++)
    v[i] = (const char *)&out->m[i] + field;
  sm_status s = sm_catalog_put_strings(cat, name, first, out->n, v);
  free(v);
  return s;
}

static sm_status put_i64(sm_catalog *cat, const char *name, const sm__mseed_out *out, size_t field, int64_t first) {
  sm_ctx *ctx = sm_catalog_ctx(cat);
  int64_t *v = NULL;
  SM_TRY(ctx, SM_ALLOC(ctx, v, out->n + 1));
  for (int64_t i = 0; i < out->n; i++)
    memcpy(&v[i], (const char *)&out->m[i] + field, sizeof *v);
  sm_status s = sm_catalog_column_create(cat, name, SM_COL_I64, 0);
  if (s == SM_OK) s = sm_catalog_write_i64(cat, name, first, out->n, v);
  free(v);
  return s;
}

#define FIELD(f) offsetof(sm__mseed_tmeta, f)

static sm_status write_columns(sm_catalog *cat, const plan *p, const sm__mseed_out *out, int64_t first,
                               const sm_config *cfg) {
  sm_ctx *ctx = sm_catalog_ctx(cat);
  SM_TRY(ctx, sm_catalog_write_traces(cat, first, out->n, out->w));
  SM_TRY(ctx, put_col(cat, "trace_name", out, FIELD(name), first));
  SM_TRY(ctx, put_col(cat, "station_network_code", out, FIELD(net), first));
  SM_TRY(ctx, put_col(cat, "station_code", out, FIELD(sta), first));
  SM_TRY(ctx, put_col(cat, "station_location_code", out, FIELD(loc), first));
  SM_TRY(ctx, put_col(cat, "trace_channel", out, FIELD(cha), first));
  SM_TRY(ctx, put_col(cat, "trace_start_time", out, FIELD(start), first));
  SM_TRY(ctx, put_col(cat, "trace_components_present", out, FIELD(present), first));
  SM_TRY(ctx, put_col(cat, "trace_component_channels", out, FIELD(chans), first));
  SM_TRY(ctx, put_i64(cat, "trace_filled_samples", out, FIELD(filled), first));
  if (p->have_p) SM_TRY(ctx, put_i64(cat, "trace_p_arrival_sample", out, FIELD(p), first));
  if (p->have_s) SM_TRY(ctx, put_i64(cat, "trace_s_arrival_sample", out, FIELD(s), first));
  double *r = NULL;
  SM_TRY(ctx, SM_ALLOC(ctx, r, out->n + 1));
  for (int64_t i = 0; i < out->n; i++)
    r[i] = out->m[i].rate_hz;
  sm_status s = sm_catalog_column_create(cat, "trace_sampling_rate_hz", SM_COL_F64, 0);
  if (s == SM_OK) s = sm_catalog_write_f64(cat, "trace_sampling_rate_hz", first, out->n, r);
  free(r);
  SM_TRY(ctx, s);
  SM_TRY(ctx, sm_catalog_set_provenance(cat, "sisma import --format mseed", cfg->job_yaml));
  SM_TRY(ctx, sm_catalog_set_attr(cat, "import_format", "mseed"));
  SM_TRY(ctx, sm_catalog_set_attr(cat, "import_input", sm_config_str(cfg, "input")));
  char pol[256];
  snprintf(pol, sizeof pol, "gap_policy=%s max_gap_s=%g overlap_policy=%s missing_components=%s",
           sm_config_str(cfg, "gap_policy"), p->o.max_gap_s, sm_config_str(cfg, "overlap_policy"),
           sm_config_str(cfg, "missing_components"));
  return sm_catalog_set_attr(cat, "import_policies", pol);
}

static sm_status write_catalog(sm_ctx *ctx, const plan *p, const sm__mseed_out *out, const sm_config *cfg) {
  int64_t n = out->n, first = 0, total = 0,
          cnt[4] = {out->rejected_gap, out->rejected_overlap, out->gaps, out->overlaps};
  SM_MPI(ctx, MPI_Exscan(&n, &first, 1, MPI_INT64_T, MPI_SUM, ctx->comm));
  if (ctx->rank == 0) first = 0;
  SM_MPI(ctx, MPI_Allreduce(&n, &total, 1, MPI_INT64_T, MPI_SUM, ctx->comm));
  SM_MPI(ctx, MPI_Allreduce(MPI_IN_PLACE, cnt, 4, MPI_INT64_T, MPI_SUM, ctx->comm));
  sm_info(ctx,
          "import: %lld station(s), %lld window(s) kept, %lld rejected for gaps, %lld for disagreeing overlaps "
          "(%lld gap(s), %lld overlapping record(s) in the data)",
          (long long)p->nst, (long long)total, (long long)cnt[0], (long long)cnt[1], (long long)cnt[2],
          (long long)cnt[3]);
  SM_CHECK(ctx, total > 0, SM_ERR_DATA,
           "import: no window survived (%lld rejected for gaps, %lld for overlaps; see gap_policy, max_gap_s, "
           "window_s)",
           (long long)cnt[0], (long long)cnt[1]);
  char path[4096];
  sm_config_output_path(cfg, "output", path, sizeof path);
  for (int64_t i = 0; i < p->nfiles; i++)
    SM_CHECK(ctx, !sm_path_same(path, p->paths[i]), SM_ERR_CONFIG, "import.output %s is an input file", path);
  sm_catalog_info info = {total, p->o.C, p->o.T, p->o.rate_hz, "", 0, (int)sm_config_int(cfg, "compression")};
  snprintf(info.component_order, sizeof info.component_order, "%s", p->components);
  sm_catalog *cat = NULL;
  SM_TRY(ctx, sm_catalog_create(ctx, path, &info, &cat));
  sm_status s = write_columns(cat, p, out, first, cfg);
  if (s == SM_OK) s = sm_catalog_commit(&cat);
  sm_catalog_close(&cat);
  if (s == SM_OK) sm_info(ctx, "import: wrote %s (%lld traces)", path, (long long)total);
  return s;
}

/* ---- the stage ---- */

static sm_status options(sm_ctx *ctx, plan *p, const sm_config *cfg) {
  p->components = sm_config_str(cfg, "components");
  int C = (int)strlen(p->components);
  SM_CHECK(ctx, C >= 1 && C <= 3 && strspn(p->components, "ZNE") == (size_t)C, SM_ERR_CONFIG,
           "import.components \"%s\": give 1 to 3 distinct letters from Z, N, E (e.g. ZNE)", p->components);
  for (int i = 0; i < C; i++)
    SM_CHECK(ctx, !strchr(p->components + i + 1, p->components[i]), SM_ERR_CONFIG,
             "import.components \"%s\": letter %c repeated", p->components, p->components[i]);
  p->o.C = C;
  p->o.window_s = sm_config_float(cfg, "window_s");
  p->o.step_s = sm_config_float(cfg, "window_step_s");
  p->o.before_s = sm_config_float(cfg, "window_before_s");
  p->o.max_gap_s = sm_config_float(cfg, "max_gap_s");
  const char *g = sm_config_str(cfg, "gap_policy");
  p->o.gap_policy = !strcmp(g, "reject") ? 0 : !strcmp(g, "zero") ? 1 : 2;
  p->o.overlap_reject = !strcmp(sm_config_str(cfg, "overlap_policy"), "reject");
  p->o.budget_bytes = cfg->memory_budget_mb * 1048576;
  p->name_col = -1;
  return SM_OK;
}

/* The catalog rate: the key, or the one rate all stations share. */
static sm_status catalog_rate(sm_ctx *ctx, plan *p, const sm_config *cfg) {
  p->o.rate_hz = sm_config_float(cfg, "sampling_rate_hz");
  if (p->o.rate_hz <= 0) {
    p->o.rate_hz = p->st[0].rate_hz;
    for (int64_t i = 1; i < p->nst; i++)
      SM_CHECK(ctx, fabs(p->st[i].rate_hz - p->o.rate_hz) <= 1e-9 * p->o.rate_hz, SM_ERR_DATA,
               "import: stations %s (%g Hz) and %s (%g Hz) differ in sampling rate: set import.sampling_rate_hz "
               "to resample them to one rate",
               p->st[0].key, p->st[0].rate_hz, p->st[i].key, p->st[i].rate_hz);
  }
  p->o.T = llround(p->o.window_s * p->o.rate_hz);
  SM_CHECK(ctx, p->o.T >= 1, SM_ERR_CONFIG, "import.window_s %g s at %g Hz is shorter than one sample", p->o.window_s,
           p->o.rate_hz);
  return SM_OK;
}

static void plan_free(plan *p) {
  for (int64_t i = 0; i < p->nst; i++) {
    free(p->st[i].files);
    if (p->wins) free(p->wins[i]);
  }
  free(p->st);
  free(p->wins);
  free(p->nwins);
  free(p->files);
  free(p->blob);
  sm__csv_destroy(&p->csv);
  sm__paths_free(&p->paths, p->nfiles);
}

static sm_status import_mseed(sm_ctx *ctx, plan *p, const sm_config *cfg, sm__mseed_out *out) {
  SM_TRY(ctx, sm_ctx_agree(ctx, options(ctx, p, cfg)));
  char in[4096], meta[4096];
  sm_config_input_path(cfg, "input", in, sizeof in);
  SM_TRY(ctx, sm_ctx_agree(ctx, sm__mseed_list_inputs(ctx, in, &p->paths, &p->nfiles)));
  SM_TRY(ctx, scan(ctx, p));
  SM_TRY(ctx, sm_ctx_agree(ctx, build_table(ctx, p, cfg)));
  SM_TRY(ctx, sm_ctx_agree(ctx, catalog_rate(ctx, p, cfg)));
  sm_config_input_path(cfg, "metadata", meta, sizeof meta);
  if (sm_config_str(cfg, "metadata")[0]) SM_TRY(ctx, sm_ctx_agree(ctx, plan_windows(ctx, p, meta)));
  sm_range mine = sm_shard_range(p->nst, 1, ctx->rank, ctx->size);
  sm_status s = SM_OK;
  for (int64_t i = mine.first; s == SM_OK && i < mine.first + mine.count; i++)
    s = cut_station(ctx, p, i, out);
  SM_TRY(ctx, sm_ctx_agree(ctx, s));
  return write_catalog(ctx, p, out, cfg);
}

sm_status sm__import_mseed(sm_ctx *ctx, const sm_config *cfg) {
  plan p;
  memset(&p, 0, sizeof p);
  sm__mseed_out out = {0};
  sm_status s = import_mseed(ctx, &p, cfg, &out);
  sm__mseed_out_free(&out);
  plan_free(&p);
  return s;
}
