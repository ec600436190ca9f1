/* The model frame (R's model.frame + model.matrix), distributed. Four phases:
 *   A. on each rank's table rows: evaluate the response, weights and every variable; drop rows
 *      with a missing value (na.omit); map factor values to the global, sorted level set;
 *   B. move the kept rows to the rank that owns their fixed block of block_rows table rows
 *      (owner = the rank holding the block's first row), so each block lives whole on one rank;
 *   C. poly() bases: R's three-term recurrence (stats::poly: alpha, norm2) with the moments summed
 *      per fixed block, added by the fixed block tree, identical at any rank count;
 *   D. expand the terms into the design matrix, columns named as R names them.
 * A plain design (a numeric response, every term one numeric variable: `y ~ .`, `y ~ x + log(z)`)
 * has no records: its columns are named first, phase A writes its design rows straight into X
 * (phase_a_plain) and B moves them; nothing is left to expand. Start reading at sm_frame_create.
 * R's conventions: treatment contrasts, the first level the baseline; a factor in a term whose
 * margin is absent from the model gets all its levels (model.matrix's rule); interaction columns
 * vary the first variable fastest. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct {
  int factor;     /* a factor: a string column, or factor(x) of a column */
  int numeric;    /* factor(x) of a numeric column: levels are the sorted distinct values */
  double *numlev; /* [nlev] those values */
  int col;        /* table column of a factor or poly variable */
  int nlev;
  char **lev;            /* [nlev] sorted levels */
  double *alpha, *norm2; /* poly: [k], [k + 2] */
} varinfo;

/* Bind every variable leaf to its table column (stored in leaf->num); leaves naming string
 * columns are allowed only as a bare factor variable. */
static sm_status bind(sm_ctx *ctx, sm_table *t, sm__expr *e, int bare, int *is_str) {
  if (!e) return SM_OK;
  if (e->kind == SM__X_CALL && !strcmp(e->name, "factor")) return bind(ctx, t, e->arg[0], 1, is_str);
  if (e->kind == SM__X_VAR) {
    int j;
    SM_TRY(ctx, sm_table_find(t, e->name, &j));
    e->num = j;
    *is_str = sm_table_col_is_str(t, j);
    SM_CHECK(ctx, bare || !*is_str, SM_ERR_ARG,
             "%s: column \"%s\" holds strings; it can only enter a formula on its own, as a factor", sm_table_spec(t),
             e->name);
    return SM_OK;
  }
  int s = 0;
  for (int i = 0; i < e->nargs; i++) {
    if (e->kind == SM__X_CALL && !strcmp(e->name, "poly") && i == 1) continue;
    SM_TRY(ctx, bind(ctx, t, e->arg[i], 0, &s));
  }
  return SM_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The sorted distinct values of the strings over all ranks (R's levels, C collation). */
static sm_status gather_levels(sm_ctx *ctx, const char **s, int64_t n, varinfo *vi) {
  const char **u = malloc(((size_t)n + 1) * sizeof *u);
  SM_CHECK(ctx, u, SM_ERR_NOMEM, "out of memory");
  memcpy(u, s, (size_t)n * sizeof *u);
  qsort(u, (size_t)n, sizeof *u, cmp_str);
  int64_t m = 0, bytes = 0;
  for (int64_t i = 0; i < n; i++)
    if (!m || strcmp(u[i], u[m - 1])) u[m++] = u[i];
  for (int64_t i = 0; i < m; i++)
    bytes += (int64_t)strlen(u[i]) + 1;
  SM_CHECK(ctx, bytes < INT32_MAX / 4, SM_ERR_DATA, "a factor has too many distinct values (%lld)", (long long)m);
  char *buf = malloc((size_t)bytes + 1);
  int *cnt = calloc((size_t)ctx->size, sizeof *cnt), *dsp = calloc((size_t)ctx->size, sizeof *dsp);
  int mine = (int)bytes, total = 0;
  sm_status st = (buf && cnt && dsp) ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory");
  for (int64_t i = 0, at = 0; st == SM_OK && i < m; i++) {
    size_t l = strlen(u[i]) + 1;
    memcpy(buf + at, u[i], l);
    at += (int64_t)l;
  }
  free(u);
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK)
    st = MPI_Allgather(&mine, 1, MPI_INT, cnt, 1, MPI_INT, ctx->comm) ? SM_ERR(ctx, SM_ERR_MPI, "allgather") : SM_OK;
  for (int r = 0; st == SM_OK && r < ctx->size; r++)
    dsp[r] = total, total += cnt[r];
  char *all = st == SM_OK ? malloc((size_t)total + 1) : NULL;
  if (st == SM_OK) st = sm_ctx_agree(ctx, all ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory"));
  if (st == SM_OK && MPI_Allgatherv(buf, mine, MPI_CHAR, all, cnt, dsp, MPI_CHAR, ctx->comm))
    st = SM_ERR(ctx, SM_ERR_MPI, "allgatherv of factor levels failed");
  int64_t nall = 0;
  for (int i = 0; st == SM_OK && i < total; i++)
    nall += all[i] == '\0';
  char **lev = st == SM_OK ? malloc(((size_t)nall + 1) * sizeof *lev) : NULL;
  if (st == SM_OK && !lev) st = SM_ERR(ctx, SM_ERR_NOMEM, "out of memory");
  int64_t k = 0;
  for (int i = 0; st == SM_OK && i < total; i += (int)strlen(all + i) + 1)
    lev[k++] = all + i;
  if (st == SM_OK) {
    qsort(lev, (size_t)k, sizeof *lev, cmp_str);
    int64_t d = 0;
    for (int64_t i = 0; i < k; i++)
      if (!d || strcmp(lev[i], lev[d - 1])) lev[d++] = lev[i];
    vi->lev = malloc(((size_t)d + 1) * sizeof *vi->lev);
    for (int64_t i = 0; vi->lev && i < d; i++)
      vi->lev[i] = strdup(lev[i]);
    vi->nlev = vi->lev ? (int)d : 0;
  }
  free(lev), free(all), free(buf), free(cnt), free(dsp);
  return sm_ctx_agree(ctx, st);
}

static int level_of(const varinfo *vi, const char *s) {
  int lo = 0, hi = vi->nlev - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2, c = strcmp(s, vi->lev[mid]);
    if (!c) return mid;
    if (c < 0)
      hi = mid - 1;
    else
      lo = mid + 1;
  }
  return -1;
}

int sm__table_owner(int64_t row, int64_t n, int size) {
  int64_t q = n / size, r = n % size;
  if (row < r * (q + 1)) return (int)(row / (q + 1));
  return (int)(r + (row - r * (q + 1)) / (q ? q : 1));
}

/* Per-row arrays in one allocation (sm__alloc_big), each with room for cap rows and starting on a
 * cache line: one allocation keeps them all on huge pages (separate arrays under 4 MiB would get
 * 4 KiB pages, whose first touch costs far more). Phase A's records are one such array (arr[0] at
 * the allocation's start); the plain design's X, work, y, w, row and tag are six. */
#define ROWS_MAX_ARR 6
typedef struct {
  char *base;
  int64_t cap;
  int narr;
  size_t bytes[ROWS_MAX_ARR]; /* per row of each array */
  char *arr[ROWS_MAX_ARR];
  int key, key_int; /* a row's table row: the first field of arr[key]'s row, an int64 if key_int, else a double */
} rows_buf;

static int rows_alloc(rows_buf *b, int64_t cap) {
  size_t off[ROWS_MAX_ARR], at = 0;
  for (int k = 0; k < b->narr; k++)
    off[k] = at, at += ((size_t)cap * b->bytes[k] + 63) & ~(size_t)63;
  b->base = sm__alloc_big(at + 64);
  for (int k = 0; b->base && k < b->narr; k++)
    b->arr[k] = b->base + off[k];
  b->cap = cap;
  return b->base != NULL;
}

static int64_t rows_key(const rows_buf *b, int64_t i) {
  const char *p = b->arr[b->key] + (size_t)i * b->bytes[b->key];
  int64_t r;
  double d;
  if (b->key_int) return memcpy(&r, p, sizeof r), r;
  return memcpy(&d, p, sizeof d), (int64_t)d;
}

/* Phase B: the rows of b (n of them) to the owners of their blocks. Only the rows of blocks that
 * straddle a rank boundary move; the rest stay in place, in the same buffer (room for cap rows:
 * phase A leaves a block's worth spare, what a rank receives when each holds a block or more, so
 * that the buffer keeps its huge pages; else a larger one takes the rows): the leaving rows (the
 * first and the last of this rank's, so few) are copied out, this rank's rows are moved to their
 * new offset and the arriving ones received around them, array by array. Rows stay in table
 * order: what comes from lower ranks goes before this rank's rows, from higher ranks after. */
static sm_status move_rows(sm_ctx *ctx, int64_t nrows_table, int64_t block, rows_buf *b, int64_t *n) {
  int P = ctx->size, me = ctx->rank;
  if (P == 1) return SM_OK;
  int *sc = calloc((size_t)P, sizeof *sc), *sd = calloc((size_t)P, sizeof *sd), *rc = calloc((size_t)P, sizeof *rc),
      *rd = calloc((size_t)P, sizeof *rd); /* in rows */
  sm_status st = (sc && sd && rc && rd) ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory");
  int64_t stay_first = *n, stay = 0, lo = 0, hi = 0; /* [lo, hi): the table rows of the last row's block */
  int dest = me;
  for (int64_t i = 0; st == SM_OK && i < *n; i++) {
    int64_t row = rows_key(b, i);
    if (row < lo || row >= hi) /* a new block: its owner (the rows ascend, so once per block) */
      lo = row / block * block, hi = lo + block, dest = sm__table_owner(lo, nrows_table, P);
    if (dest == me) {
      if (stay_first == *n) stay_first = i;
      stay++;
    } else {
      sc[dest]++;
    }
  }
  /* the leaving rows of each array, [0, stay_first) then those after the stayers: in table order,
   * so in the order of their ranks (rows only ever go to lower ranks, to their block's first row;
   * phase_a_plain puts them after the stayers, phase_a_run leaves them first) */
  int64_t low = stay_first, high = *n - stay_first - stay;
  size_t row_bytes = 0, at = 0, out_at[ROWS_MAX_ARR];
  for (int k = 0; k < b->narr; k++)
    row_bytes += b->bytes[k];
  char *out = st == SM_OK ? malloc((size_t)(low + high) * row_bytes + 1) : NULL;
  if (st == SM_OK && !out) st = SM_ERR(ctx, SM_ERR_NOMEM, "out of memory moving rows");
  st = sm_ctx_agree(ctx, st);
  for (int k = 0; st == SM_OK && k < b->narr; k++) {
    size_t bk = b->bytes[k];
    out_at[k] = at;
    memcpy(out + at, b->arr[k], (size_t)low * bk);
    memcpy(out + at + (size_t)low * bk, b->arr[k] + (size_t)(stay_first + stay) * bk, (size_t)high * bk);
    at += (size_t)(low + high) * bk;
  }
  if (st == SM_OK && MPI_Alltoall(sc, 1, MPI_INT, rc, 1, MPI_INT, ctx->comm))
    st = SM_ERR(ctx, SM_ERR_MPI, "alltoall of row counts failed");
  int64_t before = 0, after = 0, off = 0;
  for (int r = 0; st == SM_OK && r < P; r++) {
    if (r < me) before += rc[r];
    if (r > me) after += rc[r];
  }
  for (int r = 0, s = 0; st == SM_OK && r < P; r++)
    sd[r] = s, s += sc[r];
  for (int r = 0; st == SM_OK && r < P; r++) {
    rd[r] = (int)(r < me ? off : before + stay + (off - before));
    off += rc[r];
  }
  int64_t tot = before + stay + after;
  rows_buf nb = *b;
  if (st == SM_OK && tot > b->cap)
    st = sm_ctx_agree(ctx, rows_alloc(&nb, tot) ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory moving rows"));
  else
    st = sm_ctx_agree(ctx, st);
  for (int k = 0; st == SM_OK && k < b->narr; k++) {
    size_t bk = b->bytes[k];
    if (stay && (nb.base != b->base || before != stay_first))
      memmove(nb.arr[k] + (size_t)before * bk, b->arr[k] + (size_t)stay_first * bk, (size_t)stay * bk);
    MPI_Datatype row;
    MPI_Type_contiguous((int)bk, MPI_BYTE, &row);
    MPI_Type_commit(&row);
    if (MPI_Alltoallv(out + out_at[k], sc, sd, row, nb.arr[k], rc, rd, row, ctx->comm))
      st = SM_ERR(ctx, SM_ERR_MPI, "alltoallv of model frame rows failed");
    MPI_Type_free(&row);
  }
  if (nb.base != b->base) {
    free(st == SM_OK ? b->base : nb.base);
    if (st == SM_OK) *b = nb;
  }
  if (st == SM_OK) *n = tot;
  free(out), free(sc), free(sd), free(rc), free(rd);
  return st;
}

/* Phase C: stats::poly's recurrence, Z_0 = 1, Z_1 = x - alpha_1,
 * Z_{j+1} = (x - alpha_{j+1}) Z_j - (norm2_{j+2}/norm2_{j+1}) Z_{j-1}, alpha_j = sum(x Z_{j-1}^2)/
 * sum(Z_{j-1}^2), columns Z_j / sqrt(norm2_{j+2}); norm2 = (1, n, sum Z_1^2, ...). */
static sm_status poly_moments(sm_ctx *ctx, sm_frame *f, const double *x, int stride, int k, varinfo *vi) {
  vi->alpha = calloc((size_t)k + 1, sizeof *vi->alpha);
  vi->norm2 = calloc((size_t)k + 3, sizeof *vi->norm2);
  double *z = calloc((size_t)(3 * f->n + 3), sizeof *z), *part = calloc((size_t)(2 * f->nblk + 2), sizeof *part);
  sm_status st = (vi->alpha && vi->norm2 && z && part) ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory");
  st = sm_ctx_agree(ctx, st);
  double *zm1 = z, *z0 = z + f->n, *z1 = z + 2 * f->n;
  for (int64_t i = 0; st == SM_OK && i < f->n; i++)
    z0[i] = 1, zm1[i] = 0;
  vi->norm2[0] = 1;
  for (int j = 0; st == SM_OK && j <= k; j++) {
    for (int b = 0; b < f->nblk; b++) {
      double s = 0, sx = 0;
      for (int64_t i = f->blk_off[b]; i < f->blk_off[b + 1]; i++)
        s += z0[i] * z0[i], sx += x[i * stride] * z0[i] * z0[i];
      part[2 * b] = s, part[2 * b + 1] = sx;
    }
    double tot[2];
    st = sm__block_sum(ctx, f, 2, part, tot);
    if (st != SM_OK) break;
    vi->norm2[j + 1] = tot[0];
    if (j == k) break;
    vi->alpha[j] = tot[1] / tot[0];
    double ratio = vi->norm2[j + 1] / vi->norm2[j];
    for (int64_t i = 0; i < f->n; i++) {
      z1[i] = (x[i * stride] - vi->alpha[j]) * z0[i] - (j ? ratio : 0) * zm1[i];
      zm1[i] = z0[i], z0[i] = z1[i];
    }
  }
  free(z), free(part);
  return st;
}

/* The columns of variable v at one row: writes its values into out, returns their count. */
static int var_cols(const sm__var *v, const varinfo *vi, int dummy, double val, double *out) {
  if (vi->factor) {
    int lev = (int)val, n = dummy ? vi->nlev : vi->nlev - 1;
    for (int l = 0; l < n; l++)
      out[l] = (dummy ? l : l + 1) == lev;
    return n;
  }
  if (v->poly_k) {
    double zm1 = 0, z0 = 1;
    for (int j = 0; j < v->poly_k; j++) {
      double z1 = (val - vi->alpha[j]) * z0 - (j ? vi->norm2[j + 1] / vi->norm2[j] : 0) * zm1;
      zm1 = z0, z0 = z1;
      out[j] = z1 / sqrt(vi->norm2[j + 2]);
    }
    return v->poly_k;
  }
  out[0] = val;
  return 1;
}

static int term_has(const sm_formula *fm, uint64_t t) {
  if (!t) return fm->intercept;
  for (int i = 0; i < fm->nterms; i++)
    if (fm->term[i] == t) return 1;
  return 0;
}

/* Columns of the design: names and, per term, which variables are dummy-coded. */
static sm_status layout(sm_ctx *ctx, sm_frame *f, const sm_formula *fm, const varinfo *vi, uint64_t *dummy) {
  int p = fm->intercept, cap = 64;
  f->names = calloc((size_t)cap, sizeof *f->names);
  f->col_term = calloc((size_t)cap, sizeof *f->col_term);
  f->term_labels = calloc((size_t)fm->nterms + 1, sizeof *f->term_labels);
  SM_CHECK(ctx, f->names && f->col_term && f->term_labels, SM_ERR_NOMEM, "out of memory");
  if (fm->intercept) f->names[0] = strdup("(Intercept)"), f->col_term[0] = -1;
  for (int ti = 0; ti < fm->nterms; ti++) {
    uint64_t t = fm->term[ti];
    dummy[ti] = 0;
    char lab[512] = "";
    int ncols = 1;
    for (int v = 0; v < fm->nvars; v++) {
      if (!(t >> v & 1)) continue;
      size_t l = strlen(lab);
      snprintf(lab + l, sizeof lab - l, "%s%s", l ? ":" : "", fm->var[v].label);
      int nv = 1;
      if (vi[v].factor) {
        if (!term_has(fm, t & ~((uint64_t)1 << v))) dummy[ti] |= (uint64_t)1 << v;
        nv = (dummy[ti] >> v & 1) ? vi[v].nlev : vi[v].nlev - 1;
      } else if (fm->var[v].poly_k) {
        nv = fm->var[v].poly_k;
      }
      ncols *= nv;
    }
    f->term_labels[ti] = strdup(lab);
    SM_CHECK(ctx, __builtin_popcountll(t) <= 8, SM_ERR_ARG, "term %s: interactions of more than 8 variables", lab);
    SM_CHECK(ctx, ncols > 0, SM_ERR_DATA, "term %s has no columns: its factor has a single level", lab);
    for (int c = 0; c < ncols; c++) {
      if (p == cap) {
        cap *= 2;
        char **nn = realloc(f->names, (size_t)cap * sizeof *nn);
        int *nt = realloc(f->col_term, (size_t)cap * sizeof *nt);
        if (nn) f->names = nn;
        if (nt) f->col_term = nt;
        SM_CHECK(ctx, nn && nt, SM_ERR_NOMEM, "out of memory");
      }
      char name[1024] = "";
      int rest = c;
      for (int v = 0; v < fm->nvars; v++) {
        if (!(t >> v & 1)) continue;
        size_t l = strlen(name);
        const char *sep = l ? ":" : "";
        if (vi[v].factor) {
          int d = dummy[ti] >> v & 1, nv = d ? vi[v].nlev : vi[v].nlev - 1;
          snprintf(name + l, sizeof name - l, "%s%s%s", sep, fm->var[v].label, vi[v].lev[rest % nv + !d]);
          rest /= nv;
        } else if (fm->var[v].poly_k) {
          snprintf(name + l, sizeof name - l, "%s%s%d", sep, fm->var[v].label, rest % fm->var[v].poly_k + 1);
          rest /= fm->var[v].poly_k;
        } else {
          snprintf(name + l, sizeof name - l, "%s%s", sep, fm->var[v].label);
        }
      }
      f->names[p] = strdup(name);
      f->col_term[p++] = ti;
    }
  }
  f->p = p;
  f->nterms = fm->nterms;
  return SM_OK;
}

/* Phase D: one design row from the variable values (vals[v]). A term of one numeric variable
 * (the common case) is a copy; others expand their variables' columns and multiply, the first
 * variable varying fastest. */
static void design_row(const sm_formula *fm, const varinfo *vi, const uint64_t *dummy, const int *simple,
                       const double *vals, double *x) {
  int c = 0;
  if (fm->intercept) x[c++] = 1;
  for (int ti = 0; ti < fm->nterms; ti++) {
    if (simple[ti] >= 0) {
      x[c++] = vals[simple[ti]];
      continue;
    }
    uint64_t t = fm->term[ti];
    double cols[8][64];
    int nc[8], nvars = 0;
    for (int v = 0; v < fm->nvars && nvars < 8; v++)
      if (t >> v & 1)
        nc[nvars] = var_cols(&fm->var[v], &vi[v], (int)(dummy[ti] >> v & 1), vals[v], cols[nvars]), nvars++;
    int total = 1;
    for (int k = 0; k < nvars; k++)
      total *= nc[k];
    for (int j = 0; j < total; j++) {
      double prod = 1;
      int rest = j;
      for (int k = 0; k < nvars; k++)
        prod *= cols[k][rest % nc[k]], rest /= nc[k];
      x[c++] = prod;
    }
  }
}

static void free_varinfo(varinfo *vi, int n) {
  for (int v = 0; v < n; v++) {
    for (int l = 0; l < vi[v].nlev; l++)
      free(vi[v].lev[l]);
    free(vi[v].lev), free(vi[v].alpha), free(vi[v].norm2), free(vi[v].numlev);
  }
  free(vi);
}

typedef struct {
  sm_ctx *ctx;
  sm_table *t;
  const sm_formula *fm;
  varinfo *vi;   /* [nvars] */
  varinfo yinfo; /* levels of a string response */
  int ycol_str;  /* response is a string column */
  int wcol;      /* weights column or -1 */
  const double **cols;
  int64_t nfit, nheld; /* records to fit and held out */
} phase_a;

#define PA_CHUNK 128 /* rows of records filled field by field (19 KB at 19 fields: in L1) */

/* Field k of the record [row, w, y, vals..., kept] of table row i (this rank's numbering). */
static double field_value(const phase_a *a, int k, int64_t i) {
  const sm_formula *fm = a->fm;
  if (k == 0) return (double)(sm_table_range(a->t).first + i);
  if (k == 1) return a->wcol >= 0 ? a->cols[a->wcol][i] : 1.0;
  if (k == 2)
    return a->ycol_str ? (sm_table_str(a->t, (int)fm->lhs->num)[i][0] ? 0 : NAN) : sm__expr_eval(fm->lhs, a->cols, i);
  int v = k - 3;
  const sm__expr *e = fm->var[v].e;
  if (a->vi[v].factor && a->vi[v].numeric) return isnan(a->cols[a->vi[v].col][i]) ? NAN : 0; /* factor_codes */
  if (a->vi[v].factor) return sm_table_str(a->t, a->vi[v].col)[i][0] ? 0 : NAN;
  return sm__expr_eval(fm->var[v].poly_k ? e->arg[0] : e, a->cols, i);
}
/* The records of m rows from table row i0, all but the last field: field k of row i0 + j into
 * rec[j * width + k]. Field by field, so that each table column is read as one stream (row by row,
 * the 16 columns of `y ~ .` were as many streams, more than the hardware prefetcher follows). z[j]
 * gets the sum of 0 * v over the fields but the row number: 0 when all are finite, else NaN (one
 * independent sum per row, not a serial one per record). Each column's next chunk is prefetched a
 * line at a time as this one is read: the hardware prefetcher loses the 16 streams of 1 KB runs,
 * and phase A stalled on the loads (1e6 x 16 at 1 rank: 73 -> 58 ms). */
static void fill_fields(const phase_a *a, int64_t i0, int64_t m, double *rec, int width, double *z) {
  sm_range r = sm_table_range(a->t);
  int64_t first = r.first, ahead = r.count - i0 - PA_CHUNK; /* rows the next chunk has: j < ahead */
  for (int64_t j = 0; j < m; j++)
    z[j] = 0;
  for (int k = 0; k < width - 1; k++) {
    const sm__expr *e = k == 2 && !a->ycol_str ? a->fm->lhs : k >= 3 ? a->fm->var[k - 3].e : NULL;
    int bare = e && e->kind == SM__X_VAR && (k == 2 || !a->vi[k - 3].factor);
    const double *col = bare ? a->cols[(int)e->num] + i0 : NULL; /* a bare column: no tree walk */
    if (k == 0 || (k == 1 && a->wcol < 0)) {                     /* the row number, a unit weight: finite */
      for (int64_t j = 0; j < m; j++)
        rec[j * width + k] = k ? 1.0 : (double)(first + i0 + j);
    } else if (col) {
      int64_t j = 0;
      for (; j + 8 <= m; j += 8) { /* a line at a time, with the next chunk's line prefetched */
        if (j < ahead) __builtin_prefetch(col + j + PA_CHUNK);
        for (int u = 0; u < 8; u++)
          rec[(j + u) * width + k] = col[j + u];
      }
      for (; j < m; j++)
        rec[j * width + k] = col[j];
      j = 0;
      for (; j + 4 <= m; j += 4) /* four independent sums a step: a quarter of the loop's overhead */
        z[j] += 0 * col[j], z[j + 1] += 0 * col[j + 1], z[j + 2] += 0 * col[j + 2], z[j + 3] += 0 * col[j + 3];
      for (; j < m; j++)
        z[j] += 0 * col[j];
    } else {
      for (int64_t j = 0; j < m; j++) {
        double v = field_value(a, k, i0 + j);
        rec[j * width + k] = v;
        z[j] += 0 * v;
      }
    }
  }
}

/* Phase A's checks of one record (row i; z from fill_fields: 0 when every field is finite):
 * *keep = 0 for a missing value; Inf, -Inf and negative weights are errors, as in R. */
static sm_status check_row(const phase_a *a, int64_t i, const double *rec, double z, int *keep) {
  const sm_formula *fm = a->fm;
  *keep = 1;
  if (z == 0 && !(rec[1] < 0)) return SM_OK; /* the common case: all finite, no negative weight */
  int64_t row = sm_table_range(a->t).first + i;
  for (int k = 1; z != 0 && k < 3 + fm->nvars; k++) {
    if (isnan(rec[k]))
      *keep = 0;
    else if (isinf(rec[k]))
      return SM_ERR(a->ctx, SM_ERR_DATA, "%s row %lld: %s is %s (R stops here too: NA/NaN/Inf); transform or drop it",
                    sm_table_spec(a->t), (long long)row + 1,
                    k == 1   ? "the weight"
                    : k == 2 ? fm->lhs_label
                             : fm->var[k - 3].label,
                    rec[k] > 0 ? "Inf" : "-Inf");
  }
  SM_CHECK(a->ctx, !(rec[1] < 0), SM_ERR_DATA, "%s row %lld: negative weight %g", sm_table_spec(a->t),
           (long long)row + 1, rec[1]);
  return SM_OK;
}

static int cmp_dbl(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* factor(x) of a numeric column: levels are the sorted distinct values over all ranks, labelled
 * as R's as.character labels them (15 significant digits, formatReal's choice of notation). */
static sm_status numeric_levels(phase_a *a, varinfo *vi, const unsigned char *keep, double *rec, int64_t n, int width,
                                int field) {
  sm_ctx *ctx = a->ctx;
  sm_range r = sm_table_range(a->t);
  const double *col = a->cols[vi->col];
  double *u = malloc(((size_t)r.count + 1) * sizeof *u), *all = NULL;
  SM_TRY(ctx, sm_ctx_agree(ctx, u ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory")));
  int64_t m = 0;
  for (int64_t i = 0; i < r.count; i++)
    if (keep[i]) u[m++] = col[i];
  qsort(u, (size_t)m, sizeof *u, cmp_dbl);
  int64_t d = 0;
  for (int64_t i = 0; i < m; i++)
    if (!d || u[i] != u[d - 1]) u[d++] = u[i];
  int total = 0;
  sm_status st = d < INT32_MAX / 2 ? sm__gather_all(ctx, u, (int)d, &all, &total)
                                   : SM_ERR(ctx, SM_ERR_DATA, "factor(): too many distinct values");
  free(u);
  if (st != SM_OK) return st;
  qsort(all, (size_t)total, sizeof *all, cmp_dbl);
  int k = 0;
  for (int i = 0; i < total; i++)
    if (!k || all[i] != all[k - 1]) all[k++] = all[i];
  vi->numlev = all, vi->nlev = k;
  vi->lev = calloc((size_t)k + 1, sizeof *vi->lev);
  SM_CHECK(ctx, vi->lev, SM_ERR_NOMEM, "out of memory");
  for (int i = 0; i < k; i++) {
    char b[64];
    sm__rfmt_one(all[i], 15, b, sizeof b);
    vi->lev[i] = strdup(b);
  }
  if (k > 64) return SM_ERR(ctx, SM_ERR_DATA, "factor() has %d levels; at most 64 are supported", k);
  for (int64_t j = 0; j < n; j++) {
    double *rj = rec + j * width;
    if (rj[width - 1] < 1) continue;
    double x = col[(int64_t)rj[0] - r.first];
    double *hit = bsearch(&x, all, (size_t)k, sizeof *all, cmp_dbl);
    rj[field] = hit ? (double)(hit - all) : NAN;
  }
  return SM_OK;
}

/* Levels of each factor (and of a string response) over the kept rows, then their codes in the
 * records of kept rows (the last field of a record is 1 for a kept row). */
static sm_status factor_codes(phase_a *a, const unsigned char *keep, double *rec, int64_t n, int width) {
  sm_ctx *ctx = a->ctx;
  sm_range r = sm_table_range(a->t);
  const char **s = malloc(((size_t)r.count + 1) * sizeof *s);
  SM_TRY(ctx, sm_ctx_agree(ctx, s ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory")));
  sm_status st = SM_OK;
  for (int v = -1; st == SM_OK && v < a->fm->nvars; v++) {
    varinfo *vi = v < 0 ? &a->yinfo : &a->vi[v];
    if (v < 0 ? !a->ycol_str : !vi->factor) continue;
    if (v >= 0 && vi->numeric) {
      st = numeric_levels(a, vi, keep, rec, n, width, 3 + v);
      continue;
    }
    const char *const *col = sm_table_str(a->t, v < 0 ? (int)a->fm->lhs->num : vi->col);
    int64_t m = 0;
    for (int64_t i = 0; i < r.count; i++)
      if (keep[i]) s[m++] = col[i];
    st = gather_levels(ctx, s, m, vi);
    if (st == SM_OK && v >= 0 && vi->nlev > 64)
      st = SM_ERR(ctx, SM_ERR_DATA, "factor %s has %d levels; at most 64 are supported", a->fm->var[v].label, vi->nlev);
    if (st == SM_OK && v < 0 && vi->nlev > 2)
      st = SM_ERR(ctx, SM_ERR_DATA, "response %s has %d levels; a binomial response has two (the first is failure)",
                  a->fm->lhs_label, vi->nlev);
    for (int64_t k = 0; st == SM_OK && k < n; k++) {
      double *rk = rec + k * width;
      if (rk[width - 1] >= 1) rk[v < 0 ? 2 : 3 + v] = level_of(vi, col[(int64_t)rk[0] - r.first]);
    }
  }
  free(s);
  return st;
}

/* Phase A over this rank's rows. Records of kept rows end in 1; with poly() terms, rows dropped
 * for other variables, or outside every split (mask 0), but with finite poly arguments are kept as
 * records ending in 0: R computes the poly basis before na.omit and before subset, so they count
 * in its moments (stats::poly via model.frame). The records' buffer has room for `spare` more (see
 * move_rows). */
static sm_status phase_a_run(phase_a *a, const unsigned char *mask, int64_t spare, rows_buf *b, int64_t *n_out,
                             int width) {
  sm_ctx *ctx = a->ctx;
  sm_range r = sm_table_range(a->t);
  *b = (rows_buf){.narr = 1, .bytes = {(size_t)width * sizeof(double)}};
  double *rec = rows_alloc(b, r.count + spare) ? (double *)b->base : NULL;
  double *chunk = malloc((size_t)PA_CHUNK * (size_t)width * sizeof *chunk), z[PA_CHUNK];
  unsigned char *keep = calloc((size_t)r.count + 1, 1);
  sm_status st = (rec && chunk && keep) ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory for the model frame");
  int64_t n = 0;
  int polys = 0;
  for (int v = 0; v < a->fm->nvars; v++)
    polys |= a->fm->var[v].poly_k > 0;
  /* a chunk's records are filled in L1 (their strided stores would each miss in the fresh
   * buffer), then the runs of records to keep are copied to the buffer, n on, in one stream */
  for (int64_t i0 = 0; st == SM_OK && i0 < r.count; i0 += PA_CHUNK) {
    int64_t m = r.count - i0 < PA_CHUNK ? r.count - i0 : PA_CHUNK, j0 = 0; /* the run to keep: [j0, j) */
    fill_fields(a, i0, m, chunk, width, z);
    for (int64_t j = 0; st == SM_OK && j <= m; j++) {
      int64_t i = i0 + j;
      int k = 0, moments = 0, unused = j < m && mask && !mask[i]; /* outside every split: its poly() arguments count */
      int take = j < m && !(unused && !polys);                    /* the record is checked (j == m: flush the run) */
      double *ri = chunk + j * width;
      if (take && (st = check_row(a, i, ri, z[j], &k)) != SM_OK && unused) /* R checks the rows it fits only */
        sm_ctx_clear_error(ctx), st = SM_OK, take = 0;
      if (take) {
        if (unused) k = 0;
        keep[i] = (unsigned char)k;
        for (int v = 0; !k && v < a->fm->nvars; v++)
          if (a->fm->var[v].poly_k) moments = !isnan(ri[3 + v]);
        for (int v = 0; moments && v < a->fm->nvars; v++)
          if (a->fm->var[v].poly_k && isnan(ri[3 + v])) moments = 0;
        ri[width - 1] = k ? (mask ? mask[i] : 1) : 0; /* 1 fit, 2 held out, 0 moments only */
        a->nfit += ri[width - 1] == 1, a->nheld += ri[width - 1] == 2;
        take = k || moments; /* kept: the run goes on */
      }
      if (take) continue;
      memcpy(rec + n * width, chunk + j0 * width, (size_t)((j - j0) * width) * sizeof *rec);
      n += j - j0, j0 = j + 1;
    }
  }
  free(chunk);
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) st = factor_codes(a, keep, rec, n, width);
  free(keep);
  if (st != SM_OK) {
    free(rec);
    b->base = NULL;
    return st;
  }
  *n_out = n;
  return SM_OK;
}

/* Blocks of the moved rows: runs of equal row / block_rows. */
static sm_status find_blocks(sm_ctx *ctx, sm_frame *f) {
  f->blk_off = calloc((size_t)f->n + 2, sizeof *f->blk_off);
  f->blk_id = calloc((size_t)f->n + 1, sizeof *f->blk_id);
  SM_CHECK(ctx, f->blk_off && f->blk_id, SM_ERR_NOMEM, "out of memory");
  f->nblk = 0;
  for (int64_t i = 0, lo = 0, hi = 0; i < f->n; i++) {
    if (f->row[i] >= lo && f->row[i] < hi) continue; /* in the last block: no division */
    int64_t b = f->row[i] / f->block_rows;
    lo = b * f->block_rows, hi = lo + f->block_rows;
    if (!f->nblk || f->blk_id[f->nblk - 1] != b) f->blk_off[f->nblk] = i, f->blk_id[f->nblk++] = b;
  }
  f->blk_off[f->nblk] = f->n;
  return SM_OK;
}

static sm_status build(sm_ctx *ctx, sm_frame *f, phase_a *a, double **recp, int width) {
  double *rec = *recp;
  const sm_formula *fm = a->fm;
  f->row = malloc(((size_t)f->n + 1) * sizeof *f->row);
  f->y = sm__alloc_big(((size_t)f->n + 1) * sizeof *f->y);
  f->w = sm__alloc_big(((size_t)f->n + 1) * sizeof *f->w);
  f->tag = malloc((size_t)f->n + 1);
  sm_status st = (f->row && f->y && f->w && f->tag) ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory");
  int polys = 0;
  for (int v = 0; v < fm->nvars; v++)
    polys |= fm->var[v].poly_k > 0;
  if (polys) { /* the poly() moments over the blocks of every record, then the moment-only ones dropped */
    for (int64_t i = 0; st == SM_OK && i < f->n; i++)
      f->row[i] = (int64_t)rec[i * width];
    if (st == SM_OK) st = find_blocks(ctx, f);
    st = sm_ctx_agree(ctx, st);
    for (int v = 0; st == SM_OK && v < fm->nvars; v++)
      if (fm->var[v].poly_k) st = poly_moments(ctx, f, rec + 3 + v, width, fm->var[v].poly_k, &a->vi[v]);
    int64_t n = 0;
    for (int64_t i = 0; st == SM_OK && i < f->n; i++)
      if (rec[i * width + width - 1] >= 1) {
        if (n != i) memmove(rec + n * width, rec + i * width, (size_t)width * sizeof *rec);
        n++;
      }
    f->n = n;
    free(f->blk_off), free(f->blk_id);
    f->blk_off = NULL, f->blk_id = NULL;
  }
  uint64_t dummy[SM_FORMULA_MAX_TERMS];
  if (st == SM_OK) st = sm_ctx_agree(ctx, layout(ctx, f, fm, a->vi, dummy));
  /* X overwrites the records in place when a design row is no wider than a record: row i of X
   * ends before record i + 1 starts, and record i is copied out before row i is written */
  int in_place = f->p <= width;
  if (st == SM_OK && !in_place) {
    f->x = sm__alloc_big(((size_t)f->n * (size_t)f->p + 1) * sizeof *f->x);
    st = sm_ctx_agree(ctx, f->x ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory for the design matrix"));
  }
  st = sm_ctx_agree(ctx, st);
  int simple[SM_FORMULA_MAX_TERMS];
  for (int ti = 0; ti < fm->nterms; ti++) {
    int v = __builtin_ctzll(fm->term[ti]);
    simple[ti] = (__builtin_popcountll(fm->term[ti]) == 1 && !a->vi[v].factor && !fm->var[v].poly_k) ? v : -1;
  }
  /* one pass over the records: row, weight, response and tag out, the design row in */
  double *x = in_place ? *recp : f->x, vals[SM_FORMULA_MAX_VARS];
  f->unit_w = 1;
  for (int64_t i = 0; st == SM_OK && i < f->n; i++) {
    const double *ri = rec + i * width;
    f->row[i] = (int64_t)ri[0], f->y[i] = ri[2], f->tag[i] = (unsigned char)ri[width - 1];
    f->w[i] = f->tag[i] == 1 ? ri[1] : 0; /* held-out rows take no part in a fit */
    f->unit_w &= f->w[i] == 1;
    memcpy(vals, ri + 3, (size_t)fm->nvars * sizeof *vals);
    design_row(fm, a->vi, dummy, simple, vals, x + i * f->p);
  }
  if (st == SM_OK) st = sm_ctx_agree(ctx, find_blocks(ctx, f));
  /* n doubles of the records stay with the frame as the fits' scratch (f->work: after X when X
   * took the records' place, else the records' start): memory already touched, so that a fit
   * faults in no new pages (a few ms per 4 MB on a VM) */
  if (st == SM_OK && in_place) {
    double *kept = realloc(*recp, ((size_t)f->n * (size_t)(f->p + 1) + 1) * sizeof *kept);
    if (!kept && f->p < width) kept = *recp; /* a failed shrink leaves the records, long enough */
    st = sm_ctx_agree(ctx, kept ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory for the model frame"));
    if (kept) f->x = kept, f->work = kept + (size_t)f->n * f->p, *recp = NULL; /* the frame owns it now */
  } else if (st == SM_OK) {
    double *kept = realloc(*recp, ((size_t)f->n + 1) * sizeof *kept);
    f->work = kept ? kept : *recp, f->work_own = 1, *recp = NULL;
  }
  return st;
}

/* The plain design, the common case: a numeric response and every term one numeric variable, a
 * column or a transform of one (no factor, poly() or interaction). Its design row is a copy of
 * fields of the record: src[c] is the record field of column c (-1: the intercept's 1). */
static int plain_design(const phase_a *a, int *src) {
  const sm_formula *fm = a->fm;
  int c = 0;
  if (a->ycol_str) return 0;
  for (int v = 0; v < fm->nvars; v++)
    if (a->vi[v].factor || fm->var[v].poly_k) return 0;
  if (fm->intercept) src[c++] = -1;
  for (int ti = 0; ti < fm->nterms; ti++) {
    if (__builtin_popcountll(fm->term[ti]) != 1) return 0;
    src[c++] = 3 + __builtin_ctzll(fm->term[ti]);
  }
  return 1;
}

/* Phase A of a plain design (f->p columns): the kept rows' design rows written straight into X,
 * their row, weight, response and tag into their own arrays, all in one rows_buf (X, work, y, w,
 * row, tag; room for a block more rows, see move_rows): no records, so nothing for build() to
 * expand, and fewer bytes to fault in. The fits' scratch (work) is left untouched: a fit faults it
 * in, in huge pages. The rows, checks and counts are phase_a_run's. */
static sm_status phase_a_plain(phase_a *a, const unsigned char *mask, int64_t block, const int *src, int p, rows_buf *b,
                               int64_t *n_out) {
  sm_ctx *ctx = a->ctx;
  sm_range r = sm_table_range(a->t);
  int width = 4 + a->fm->nvars;
  *b = (rows_buf){.narr = 6, .bytes = {(size_t)p * sizeof(double), 8, 8, 8, 8, 1}, .key = 4, .key_int = 1};
  double *chunk = malloc((size_t)PA_CHUNK * (size_t)width * sizeof *chunk), z[PA_CHUNK];
  sm_status st = (rows_alloc(b, r.count + block) && chunk) ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory");
  double *x = (double *)b->arr[0], *y = (double *)b->arr[2], *w = (double *)b->arr[3];
  int64_t *row = (int64_t *)b->arr[4], n = 0, nl = 0;
  /* the rows before this rank's first block start (fewer than a block) leave in phase B: written
   * from r.count on, then put after the staying rows, so that those start at 0 and stay in place */
  int64_t lead = (r.first + block - 1) / block * block - r.first;
  lead = lead < r.count ? lead : r.count;
  unsigned char *tag = (unsigned char *)b->arr[5];
  int c0 = p > 0 && src[0] < 0;
  for (int64_t i0 = 0; st == SM_OK && i0 < r.count; i0 += PA_CHUNK) {
    int64_t m = r.count - i0 < PA_CHUNK ? r.count - i0 : PA_CHUNK;
    fill_fields(a, i0, m, chunk, width, z);
    for (int64_t j = 0; st == SM_OK && j < m; j++) {
      int64_t i = i0 + j;
      const double *ri = chunk + j * width;
      int k = 0;
      if (mask && !mask[i]) continue; /* outside every split, and no poly() moments to count */
      st = check_row(a, i, ri, z[j], &k);
      if (st != SM_OK || !k) continue;
      unsigned char t = mask ? mask[i] : 1; /* 1 fit, 2 held out */
      a->nfit += t == 1, a->nheld += t == 2;
      int64_t o = i < lead ? r.count + nl++ : n++;
      double *xr = x + o * p;
      if (c0) xr[0] = 1;
      for (int c = c0; c < p; c++)
        xr[c] = ri[src[c]];
      row[o] = r.first + i, y[o] = ri[2], w[o] = t == 1 ? ri[1] : 0, tag[o] = t; /* held-out rows: weight 0 */
    }
  }
  for (int k = 0; st == SM_OK && nl && k < b->narr; k++)
    memmove(b->arr[k] + (size_t)n * b->bytes[k], b->arr[k] + (size_t)r.count * b->bytes[k], (size_t)nl * b->bytes[k]);
  n += nl;
  free(chunk);
  st = sm_ctx_agree(ctx, st);
  if (st != SM_OK) free(b->base), b->base = NULL;
  *n_out = n;
  return st;
}

/* The frame's arrays from the moved plain rows (the frame owns b's allocation through f->x). */
static sm_status plain_finish(sm_ctx *ctx, sm_frame *f, rows_buf *b) {
  f->x = (double *)b->arr[0], f->work = (double *)b->arr[1], f->y = (double *)b->arr[2];
  f->w = (double *)b->arr[3], f->row = (int64_t *)b->arr[4], f->tag = (unsigned char *)b->arr[5];
  f->one_alloc = 1, b->base = NULL;
  f->unit_w = 1;
  for (int64_t i = 0; i < f->n; i++)
    f->unit_w &= f->w[i] == 1;
  return sm_ctx_agree(ctx, find_blocks(ctx, f));
}

sm_status sm_frame_create(sm_ctx *ctx, sm_table *t, const sm_formula *fm, const char *weights,
                          const unsigned char *mask, int64_t block_rows, sm_frame **out) {
  *out = NULL;
  sm_frame *f = calloc(1, sizeof *f);
  phase_a a = {ctx, t, fm, calloc((size_t)fm->nvars + 1, sizeof(varinfo)),
               {0}, 0, -1, calloc((size_t)sm_table_ncols(t) + 1, sizeof(double *)),
               0,   0};
  sm_status st = (f && a.vi && a.cols) ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory");
  for (int j = 0; st == SM_OK && j < sm_table_ncols(t); j++)
    a.cols[j] = sm_table_num(t, j);
  /* binding is a property of (formula, table): cached in the formula's leaves */
  int s = 0;
  if (st == SM_OK) st = bind(ctx, t, fm->lhs, 1, &s);
  if (st == SM_OK) a.ycol_str = s;
  for (int v = 0; st == SM_OK && v < fm->nvars; v++) {
    sm__expr *e = fm->var[v].e;
    s = 0;
    st = bind(ctx, t, e, 1, &s);
    int fcall = e->kind == SM__X_CALL && !strcmp(e->name, "factor");
    const sm__expr *leaf = fcall ? e->arg[0] : e;
    a.vi[v].factor = (s && e->kind == SM__X_VAR) || fcall;
    a.vi[v].numeric = fcall && !s;
    a.vi[v].col = leaf->kind == SM__X_VAR ? (int)leaf->num : -1;
  }
  if (st == SM_OK && weights && *weights) {
    st = sm_table_find(t, weights, &a.wcol);
    if (st == SM_OK && sm_table_col_is_str(t, a.wcol))
      st = SM_ERR(ctx, SM_ERR_ARG, "%s: weights column \"%s\" holds strings", sm_table_spec(t), weights);
  }
  st = sm_ctx_agree(ctx, st);
  int width = 4 + fm->nvars; /* row, w, y, variables..., kept */
  int src[SM_FORMULA_MAX_TERMS + 1], plain = st == SM_OK && plain_design(&a, src);
  uint64_t dummy[SM_FORMULA_MAX_TERMS];
  rows_buf b = {0};
  if (st == SM_OK) {
    f->block_rows = block_rows > 0 ? block_rows : 4096;
    f->intercept = fm->intercept;
    f->has_weights = a.wcol >= 0;
    snprintf(f->response, sizeof f->response, "%s", fm->lhs_label);
    if (plain) st = sm_ctx_agree(ctx, layout(ctx, f, fm, a.vi, dummy)); /* no factors: known before phase A */
    if (st == SM_OK && plain) st = phase_a_plain(&a, mask, f->block_rows, src, f->p, &b, &f->n);
    if (st == SM_OK && !plain) st = phase_a_run(&a, mask, f->block_rows, &b, &f->n, width);
  }
  if (st == SM_OK) {
    int64_t masked = 0, all[3];
    sm_range r = sm_table_range(t);
    for (int64_t i = 0; mask && i < r.count; i++) /* the rows to fit: R's lm(..., subset = those) */
      masked += mask[i] == 1;
    int64_t mine[3] = {mask ? masked : r.count, a.nfit, a.nheld};
    MPI_Allreduce(mine, all, 3, MPI_INT64_T, MPI_SUM, ctx->comm);
    f->n_total = all[1];
    f->n_heldout = all[2];
    f->n_dropped = all[0] - all[1];
    st = move_rows(ctx, sm_table_nrows(t), f->block_rows, &b, &f->n);
  }
  double *rec = (double *)b.base;
  if (st == SM_OK && plain) st = plain_finish(ctx, f, &b), rec = NULL;
  if (st == SM_OK && !plain) st = build(ctx, f, &a, &rec, width);
  free(rec);
  free_varinfo(a.vi, fm->nvars);
  for (int l = 0; l < a.yinfo.nlev; l++)
    free(a.yinfo.lev[l]);
  free(a.yinfo.lev);
  free(a.cols);
  if (st != SM_OK) {
    sm_frame_destroy(&f);
    return st;
  }
  *out = f;
  return SM_OK;
}

void sm_frame_destroy(sm_frame **fp) {
  if (!fp || !*fp) return;
  sm_frame *f = *fp;
  for (int j = 0; f->names && j < f->p; j++)
    free(f->names[j]);
  for (int j = 0; f->term_labels && j < f->nterms; j++)
    free(f->term_labels[j]);
  free(f->names), free(f->term_labels), free(f->col_term);
  if (!f->one_alloc) free(f->y), free(f->w), free(f->tag), free(f->row);
  free(f->x), free(f->blk_off), free(f->blk_id);
  if (f->work_own) free(f->work);
  free(f);
  *fp = NULL;
}

void sm__frame_span(const sm_frame *f, const sm_table *t, int64_t *first, int64_t *count) {
  sm_range r = sm_table_range(t);
  int64_t b = f->block_rows, n = sm_table_nrows(t);
  int64_t lo = (r.first + b - 1) / b * b, hi = (r.first + r.count + b - 1) / b * b; /* as sm__table_owner in phase B */
  lo = lo < n ? lo : n, hi = hi < n ? hi : n;
  *first = lo, *count = hi - lo;
}
