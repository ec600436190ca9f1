/* One station's records -> windows of the output catalog.
 *
 * The channels of a station are laid on one sample grid: origin t0 = the earliest record start,
 * step 1/rate. A record's first sample goes to index round((start - t0) * rate), so records
 * whose start times wander by less than half a sample join seamlessly (libmseed's own default
 * tolerance). Each grid sample has a state: missing, present, or conflict (two records gave
 * different values; the first-read value is kept). Windows are then cut on this grid at the input
 * rate, checked against gap_policy / overlap_policy, filled, and resampled to the catalog rate
 * with sm_resample_poly (window by window: the data outside the window are not used, as when
 * resample_poly is applied to the cut window). Start reading at sm__mseed_station_windows. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "sisma/signal.h"

enum { MISSING = 0, PRESENT = 1, CONFLICT = 2 };

typedef struct {
  int64_t t0_us, L;  /* grid origin, length (samples) */
  float *x;          /* [C][L] */
  unsigned char *s;  /* [C][L] sample states */
  int64_t gap[8][2]; /* [C]: the last gap interpolated, its present neighbours a < b ({0, 0}: none) */
} grid;

void sm__mseed_out_free(sm__mseed_out *o) {
  free(o->w);
  free(o->m);
  memset(o, 0, sizeof *o);
}

static int64_t grid_index(int64_t t_us, int64_t t0_us, double rate) {
  return llround((double)(t_us - t0_us) * 1e-6 * rate);
}

static const char *chan_of(const char *id) { return strrchr(id, '.') + 1; }

/* Which output slot the record's channel feeds, or -1. */
static int slot_of(const sm__mseed_station *st, int C, const char *id) {
  if (strncmp(id, st->key, strlen(st->key))) return -1;
  for (int c = 0; c < C; c++)
    if (st->chan[c][0] && !strcmp(st->chan[c], chan_of(id))) return c;
  return -1;
}

/* Lay all records on the grid; count gaps (missing runs between data) and overlaps. */
static sm_status build_grid(sm_ctx *ctx, const sm__mseed_station *st, const sm__mseed_recs *r, const sm__mseed_wopts *o,
                            grid *g, sm__mseed_out *out) {
  int C = o->C;
  g->t0_us = INT64_MAX, g->L = 0;
  for (int64_t i = 0; i < r->n; i++)
    if (slot_of(st, C, r->rec[i].id) >= 0 && r->rec[i].start_us < g->t0_us) g->t0_us = r->rec[i].start_us;
  /* 5 bytes per grid sample and component; records far apart (a wrong year, a rate of 1e9 Hz)
   * would ask for terabytes: refuse within the budget, before an index or C * L can overflow */
  int64_t max_L = (o->budget_bytes > 0 ? o->budget_bytes : INT64_MAX / 16) / (5 * C);
  double span = 0; /* samples per component from t0 to the end of the last record */
  for (int64_t i = 0; i < r->n; i++)
    if (slot_of(st, C, r->rec[i].id) >= 0) {
      double e = (double)(r->rec[i].start_us - g->t0_us) * 1e-6 * st->rate_hz + (double)r->rec[i].n;
      if (e > span) span = e;
    }
  SM_CHECK(ctx, span <= (double)max_L, SM_ERR_DATA,
           "station %s: its records span %.17g s at %g Hz, %.17g samples per component, more than the %lld that fit "
           "in %s (records far apart in time, or a wrong rate?; split the input by time)",
           st->key, span / st->rate_hz, st->rate_hz, span, (long long)max_L,
           o->budget_bytes > 0 ? "memory_budget_mb" : "memory");
  for (int64_t i = 0; i < r->n; i++)
    if (slot_of(st, C, r->rec[i].id) >= 0) {
      int64_t e = grid_index(r->rec[i].start_us, g->t0_us, st->rate_hz) + r->rec[i].n;
      if (e > g->L) g->L = e;
    }
  SM_CHECK(ctx, g->L > 0, SM_ERR_DATA, "station %s: no samples", st->key);
  SM_TRY(ctx, SM_ALLOC(ctx, g->x, C * g->L));
  SM_TRY(ctx, SM_ALLOC(ctx, g->s, C * g->L));
  memset(g->s, MISSING, (size_t)(C * g->L));
  for (int64_t i = 0; i < r->n; i++) {
    int c = slot_of(st, C, r->rec[i].id);
    if (c < 0 || !r->rec[i].x) continue;
    int64_t off = grid_index(r->rec[i].start_us, g->t0_us, st->rate_hz), ov = 0;
    float *x = g->x + c * g->L;
    unsigned char *s = g->s + c * g->L;
    for (int64_t k = 0; k < r->rec[i].n; k++) {
      int64_t j = off + k;
      if (s[j] == MISSING)
        x[j] = r->rec[i].x[k], s[j] = PRESENT;
      else {
        ov = 1;
        if (x[j] != r->rec[i].x[k]) s[j] = CONFLICT;
      }
    }
    out->overlaps += ov;
  }
  for (int c = 0; c < C; c++) {
    const unsigned char *s = g->s + c * g->L;
    int64_t first = 0, last = g->L - 1;
    while (first < g->L && s[first] == MISSING)
      first++;
    while (last >= 0 && s[last] == MISSING)
      last--;
    for (int64_t j = first + 1; j <= last; j++)
      out->gaps += s[j] == MISSING && s[j - 1] != MISSING;
  }
  return SM_OK;
}

/* The present neighbours a < j < b of the missing grid index j of component c (a < 0, b >= L:
 * none; j outside the grid counts as -1 or L). Every index strictly between a and b is missing,
 * so the last pair found is kept: a gap is searched once, not once per sample and window (that
 * was quadratic in the gap's length; a 20-s fuzz timeout). */
static void neighbours(grid *g, int c, int64_t j, int64_t *a, int64_t *b) {
  const unsigned char *s = g->s + c * g->L;
  int64_t jc = j < 0 ? -1 : j > g->L ? g->L : j, *ab = g->gap[c];
  if (!(ab[0] < jc && jc < ab[1])) {
    ab[0] = jc - 1, ab[1] = jc + 1;
    while (ab[0] >= 0 && s[ab[0]] == MISSING)
      ab[0]--;
    while (ab[1] < g->L && s[ab[1]] == MISSING)
      ab[1]++;
  }
  *a = ab[0], *b = ab[1];
}

/* Copy window [i0, i0+n) of component c into w (double), filling per policy. Returns 0 if kept,
 * 1 if rejected for a gap, 2 for a conflict; *filled counts filled samples. A gap's length is
 * its whole length on the grid, not only its part inside the window: a window inside a gap
 * longer than max_gap_s is rejected, not filled. */
static int cut(grid *g, int c, int64_t i0, int64_t n, const sm__mseed_wopts *o, double rate, double *w,
               int64_t *filled) {
  const float *x = g->x + c * g->L;
  const unsigned char *s = g->s + c * g->L;
  int64_t run = 0, longest = 0, miss = 0, a, b;
  for (int64_t k = 0; k < n; k++) {
    int64_t j = i0 + k;
    int state = j >= 0 && j < g->L ? s[j] : MISSING;
    if (state == CONFLICT && o->overlap_reject) return 2;
    run = state == MISSING ? run + 1 : 0;
    if (run > longest) longest = run;
    if (state == MISSING && j >= 0 && j < g->L && o->gap_policy) { /* the gap's extent on the grid */
      neighbours(g, c, j, &a, &b);
      int64_t extent = (b < g->L ? b : g->L) - (a >= 0 ? a : -1) - 1;
      if (extent > longest) longest = extent;
    }
    miss += state == MISSING;
    w[k] = state == MISSING ? 0.0 : (double)x[j];
  }
  if (!miss) return 0;
  if (o->gap_policy == 0 || (double)longest / rate > o->max_gap_s) return 1;
  *filled += miss;
  if (o->gap_policy == 2) { /* linear interpolation between the present neighbours in the grid */
    for (int64_t k = 0; k < n; k++) {
      int64_t j = i0 + k;
      if (j >= 0 && j < g->L && s[j] != MISSING) continue;
      neighbours(g, c, j, &a, &b);
      if (a >= 0 && b < g->L)
        w[k] = x[a] + (x[b] - x[a]) * (double)(j - a) / (double)(b - a);
      else if (a >= 0)
        w[k] = x[a];
      else if (b < g->L)
        w[k] = x[b];
    }
  }
  return 0;
}

static sm_status out_grow(sm_ctx *ctx, sm__mseed_out *out, const sm__mseed_wopts *o) {
  if (out->n < out->cap) return SM_OK;
  int64_t cap = out->cap ? 2 * out->cap : 16;
  double bytes = (double)cap * o->C * (double)o->T * sizeof *out->w;
  SM_CHECK(ctx, o->budget_bytes <= 0 || bytes <= (double)o->budget_bytes, SM_ERR_NOMEM,
           "import: %lld windows of %d x %lld samples (%.0f MiB) exceed memory_budget_mb on this rank", (long long)cap,
           o->C, (long long)o->T, bytes / 1048576);
  float *w = realloc(out->w, (size_t)(cap * o->C * o->T) * sizeof *w);
  SM_CHECK(ctx, w, SM_ERR_NOMEM, "out of memory (%lld windows)", (long long)cap);
  out->w = w;
  sm__mseed_tmeta *m = realloc(out->m, (size_t)cap * sizeof *m);
  SM_CHECK(ctx, m, SM_ERR_NOMEM, "out of memory (%lld windows)", (long long)cap);
  out->m = m, out->cap = cap;
  return SM_OK;
}

static void fill_meta(const sm__mseed_station *st, const grid *g, int64_t i0, const sm__mseed_window *win,
                      const sm__mseed_wopts *o, int64_t filled, sm__mseed_tmeta *m) {
  memset(m, 0, sizeof *m);
  double t = (double)g->t0_us * 1e-6 + (double)i0 / st->rate_hz;
  sm_time_format(t, m->start);
  snprintf(m->name, sizeof m->name, "%s_%s", st->key, m->start);
  snprintf(m->net, sizeof m->net, "%s", st->net);
  snprintf(m->sta, sizeof m->sta, "%s", st->sta);
  snprintf(m->loc, sizeof m->loc, "%s", st->loc);
  snprintf(m->cha, sizeof m->cha, "%s", st->band);
  snprintf(m->present, sizeof m->present, "%s", st->present);
  for (int c = 0; c < o->C; c++) {
    size_t l = strlen(m->chans);
    snprintf(m->chans + l, sizeof m->chans - l, "%s%s", c ? "," : "", st->chan[c]);
  }
  m->rate_hz = st->rate_hz;
  m->filled = filled;
  m->row = win ? win->row : -1;
  m->p = m->s = INT64_MIN;
  if (win && win->p_us != INT64_MIN) m->p = llround(((double)win->p_us * 1e-6 - t) * o->rate_hz);
  if (win && win->s_us != INT64_MIN) m->s = llround(((double)win->s_us * 1e-6 - t) * o->rate_hz);
}

/* A station's windows at the input rate -> the catalog rate: the filter, designed once per station
 * (up to 2e5 taps), and the buffers of one component's window before and after. */
typedef struct {
  int64_t up, down, half_len;
  double *h; /* [2 half_len + 1] */
  double *a; /* [n_in] the cut window */
  double *b; /* [sm_resample_poly_len(n_in, up, down) + 1] resampled */
} resampler;

/* Cut one window starting at grid index i0; append it unless rejected. */
static sm_status one_window(sm_ctx *ctx, const sm__mseed_station *st, grid *g, int64_t i0, const sm__mseed_window *win,
                            const sm__mseed_wopts *o, const resampler *rs, sm__mseed_out *out) {
  double *a = rs->a, *b = rs->b;
  int64_t n_in = llround(o->window_s * st->rate_hz), filled = 0;
  SM_TRY(ctx, out_grow(ctx, out, o));
  float *w = out->w + out->n * o->C * o->T;
  for (int c = 0; c < o->C; c++) {
    float *wc = w + c * o->T;
    if (!st->chan[c][0]) {
      memset(wc, 0, (size_t)o->T * sizeof *wc);
      continue;
    }
    int why = cut(g, c, i0, n_in, o, st->rate_hz, a, &filled);
    if (why) return why == 1 ? out->rejected_gap++ : out->rejected_overlap++, SM_OK;
    const double *src = a;
    int64_t n = n_in;
    if (rs->up != rs->down) {
      sm_resample_poly_apply(a, n_in, rs->up, rs->down, rs->h, rs->half_len, b);
      src = b, n = sm_resample_poly_len(n_in, rs->up, rs->down);
    }
    for (int64_t k = 0; k < o->T; k++)
      wc[k] = k < n ? (float)src[k] : 0.0f;
  }
  fill_meta(st, g, i0, win, o, filled, &out->m[out->n]);
  out->n++;
  return SM_OK;
}

static sm_status windows_on_grid(sm_ctx *ctx, const sm__mseed_station *st, grid *g, const sm__mseed_window *wins,
                                 int64_t nwins, const sm__mseed_wopts *o, sm__mseed_out *out) {
  int64_t n_in = llround(o->window_s * st->rate_hz);
  resampler rs = {1, 1, 0, NULL, NULL, NULL};
  if (n_in < 1) { /* its windows would hold no input sample (and the fixed ones would not advance) */
    sm_warn(ctx, "import: station %s skipped: window_s %g s is shorter than one sample at its %g Hz", st->key,
            o->window_s, st->rate_hz);
    return SM_OK;
  }
  if (!wins && n_in > g->L) return SM_OK; /* no fixed window fits */
  if (fabs(st->rate_hz - o->rate_hz) > 1e-9 * o->rate_hz &&
      sm_resample_ratio(st->rate_hz, o->rate_hz, 10000, &rs.up, &rs.down) != 0)
    return SM_ERR(ctx, SM_ERR_DATA, "station %s: cannot resample %g Hz to %g Hz (no ratio up/down <= 10000)", st->key,
                  st->rate_hz, o->rate_hz);
  sm_status s = SM_ALLOC(ctx, rs.a, n_in);
  if (s == SM_OK) s = SM_ALLOC(ctx, rs.b, sm_resample_poly_len(n_in, rs.up, rs.down) + 1);
  if (s == SM_OK) s = sm_resample_poly_design(ctx, rs.up, rs.down, &rs.h, &rs.half_len);
  if (wins)
    for (int64_t i = 0; s == SM_OK && i < nwins; i++)
      s = one_window(ctx, st, g, grid_index(wins[i].start_us, g->t0_us, st->rate_hz), &wins[i], o, &rs, out);
  else {
    double step = o->step_s > 0 ? o->step_s : o->window_s;
    for (int64_t k = 0, i0 = 0; s == SM_OK && i0 + n_in <= g->L; k++, i0 = llround((double)k * step * st->rate_hz))
      s = one_window(ctx, st, g, i0, NULL, o, &rs, out);
  }
  free(rs.a);
  free(rs.b);
  free(rs.h);
  return s;
}

sm_status sm__mseed_station_windows(sm_ctx *ctx, const sm__mseed_station *st, const sm__mseed_recs *recs,
                                    const sm__mseed_window *wins, int64_t nwins, const sm__mseed_wopts *o,
                                    sm__mseed_out *out) {
  grid g = {0};
  sm_status s = build_grid(ctx, st, recs, o, &g, out);
  if (s == SM_OK) s = windows_on_grid(ctx, st, &g, wins, nwins, o, out);
  free(g.x);
  free(g.s);
  return s;
}
