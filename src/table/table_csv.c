/* The CSV source of tables (see include/sisma/table.h), read in parallel: rank r of p reads and
 * parses about 1/p of the file's bytes, then the parsed rows move to the ranks whose row blocks
 * (sm_table_block) hold them.
 *
 * Every rank reads the header, the bytes [0, D). The rest, [D, S), is split into p near-equal
 * byte ranges [lo, hi). Where records start follows from quote parity (src/io/csv.h): after each
 * '\n' preceded by an even number of '"'. One MPI_Exscan of the ranges' '"' and '\n' counts gives
 * each rank the parity and the physical line at lo. A rank parses the records that start in
 * [lo, hi), reading on past hi to the end of its last one (the next record start, found the same
 * way); a range that holds no record start gives no rows. For a well-formed file this is the
 * whole-file parse, row for row and line for line. For a malformed one the parity is right up to
 * the first error, so the rank whose range holds the first bad record fails with the message a
 * whole-file parse gives, and every lower rank succeeds (its records come earlier in the file):
 * the lowest failing rank, the one sm_ctx_agree reports, names the first bad line. (Past an
 * unterminated quote the parity stays odd, so that rank reads on to the end of the file, as the
 * serial parse must to see that the quote is never closed.)
 *
 * Column types are decided over all ranks (one allreduce); one Alltoallv then moves the rows,
 * packed per destination (the rows a rank keeps are copied, not sent: only the rows between a
 * rank's byte range and its block travel, and those must stay under 2 GiB per pair of ranks).
 * Memory per rank: its bytes of the file, then their parsed values, then the packed rows.
 * Start reading at sm__table_open_csv. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../io/csv.h"
#include "internal.h"

/* This rank's share of the file. */
typedef struct {
  const char *path;
  int fd;
  int64_t size;   /* S: bytes in the file */
  char *head;     /* the header: the file's bytes [0, hlen) */
  size_t hlen;    /* D */
  int64_t lo, hi; /* this rank's byte range within [D, S) */
  char *buf;      /* the file's bytes [at, at + blen): from lo - 1 (lo when lo == D) to hi, then on */
  int64_t at;
  size_t blen, bcap;
  int64_t quotes, lines; /* '"' and '\n' bytes in [lo, hi) */
} share;

static sm_status reserve(sm_ctx *ctx, char **buf, size_t *cap, size_t need) {
  if (need <= *cap) return SM_OK;
  size_t n = *cap ? *cap : 65536;
  while (n < need)
    n *= 2;
  char *b = realloc(*buf, n);
  SM_CHECK(ctx, b, SM_ERR_NOMEM, "out of memory reading CSV (%zu bytes)", n);
  *buf = b;
  *cap = n;
  return SM_OK;
}

/* Up to n bytes of the file from offset off; *got < n only at the end of the file. */
static sm_status read_at(sm_ctx *ctx, const share *sh, int64_t off, char *dst, size_t n, size_t *got) {
  *got = 0;
  while (*got < n) {
    ssize_t k = pread(sh->fd, dst + *got, n - *got, (off_t)(off + (int64_t)*got));
    if (k < 0 && errno == EINTR) continue;
    SM_CHECK(ctx, k >= 0, SM_ERR_IO, "error reading CSV file %s: %s", sh->path, strerror(errno));
    if (k == 0) break;
    *got += (size_t)k;
  }
  return SM_OK;
}

/* Open the file and read the header: the first bytes up to its line end (the whole file when it
 * is all header, or when an unterminated quote in the header leaves no end). */
static sm_status read_head(sm_ctx *ctx, share *sh) {
  sh->fd = open(sh->path, O_RDONLY);
  SM_CHECK(ctx, sh->fd >= 0, SM_ERR_IO, "cannot open CSV file %s: %s", sh->path, strerror(errno));
  struct stat sb;
  SM_CHECK(ctx, !fstat(sh->fd, &sb), SM_ERR_IO, "cannot stat CSV file %s: %s", sh->path, strerror(errno));
  size_t len = 0, cap = 0, end = 0, got = 1;
  SM_TRY(ctx, reserve(ctx, &sh->head, &cap, 1));
  while (!end && got && (int64_t)len < sb.st_size) {
    size_t want = len ? 2 * len : 65536;
    if ((int64_t)want > sb.st_size) want = (size_t)sb.st_size;
    SM_TRY(ctx, reserve(ctx, &sh->head, &cap, want + 1));
    SM_TRY(ctx, read_at(ctx, sh, (int64_t)len, sh->head + len, want - len, &got));
    len += got;
    end = sm__csv_header_end(sh->head, len);
  }
  sh->hlen = end ? end : len;
  sh->size = end ? (int64_t)sb.st_size : (int64_t)len;
  return SM_OK;
}

/* Read this rank's byte range (and the byte before it) and count its quotes and line ends. */
static sm_status read_range(sm_ctx *ctx, share *sh) {
  sm_range g = sm_table_block(sh->size - (int64_t)sh->hlen, ctx->rank, ctx->size);
  sh->lo = (int64_t)sh->hlen + g.first;
  sh->hi = sh->lo + g.count;
  sh->at = sh->lo > (int64_t)sh->hlen ? sh->lo - 1 : sh->lo;
  size_t n = (size_t)(sh->hi - sh->at), got = 0;
  SM_TRY(ctx, reserve(ctx, &sh->buf, &sh->bcap, n + 1));
  SM_TRY(ctx, read_at(ctx, sh, sh->at, sh->buf, n, &got));
  SM_CHECK(ctx, got == n, SM_ERR_IO, "CSV file %s: shorter than its size (changed while being read?)", sh->path);
  sh->blen = n;
  sm__csv_count(sh->buf + (sh->lo - sh->at), (size_t)g.count, &sh->quotes, &sh->lines);
  return SM_OK;
}

/* Read on past hi, `quotes` being the parity there, to the next record start or the end of the
 * file; *end gets its offset in buf. */
static sm_status read_on(sm_ctx *ctx, share *sh, int64_t quotes, size_t *end) {
  for (size_t step = 65536;; step *= 2) {
    size_t got = 0;
    SM_TRY(ctx, reserve(ctx, &sh->buf, &sh->bcap, sh->blen + step + 1));
    SM_TRY(ctx, read_at(ctx, sh, sh->at + (int64_t)sh->blen, sh->buf + sh->blen, step, &got));
    size_t e = sm__csv_record_end(sh->buf + sh->blen, got, &quotes);
    sh->blen += got;
    if (e || got < step) {
      *end = e ? sh->blen - got + e : sh->blen;
      return SM_OK;
    }
  }
}

/* The records that start in [lo, hi), given the '"' count before lo: buf[*first, *first + *len),
 * empty when the range holds no record start. */
static sm_status my_records(sm_ctx *ctx, share *sh, int64_t quotes, size_t *first, size_t *len) {
  *first = *len = 0;
  size_t off = (size_t)(sh->lo - sh->at), n = (size_t)(sh->hi - sh->lo), a = off, b = sh->blen;
  if (!n) return SM_OK;
  int64_t q = quotes;
  if (sh->lo > (int64_t)sh->hlen && !(sh->buf[0] == '\n' && !(q & 1))) {
    size_t e = sm__csv_record_end(sh->buf + off, n, &q);
    if (!e || e == n) return SM_OK; /* the first record start is at or past hi: the next rank's */
    a = off + e;
  }
  q = quotes + sh->quotes;
  if (sh->hi < sh->size && !(sh->buf[b - 1] == '\n' && !(q & 1))) SM_TRY(ctx, read_on(ctx, sh, q, &b));
  *first = a;
  *len = b - a;
  return SM_OK;
}

/* Parse this rank's records, the ranks' counts exchanged first (collective; the caller agrees). */
static sm_status parse_share(sm_ctx *ctx, share *sh, sm_csv **csv) {
  int64_t cnt[2] = {sh->quotes, sh->lines}, before[2] = {0, 0}, head_q = 0, head_lines = 0;
  SM_MPI(ctx, MPI_Exscan(cnt, before, 2, MPI_INT64_T, MPI_SUM, ctx->comm));
  if (ctx->rank == 0) before[0] = before[1] = 0;
  size_t a = 0, n = 0;
  SM_TRY(ctx, my_records(ctx, sh, before[0], &a, &n));
  SM_TRY(ctx, sm_fault_point(ctx, "table_csv_parse"));
  sm__csv_count(sh->head, sh->hlen, &head_q, &head_lines);
  if (n) sm__csv_count(sh->buf + (sh->lo - sh->at), a - (size_t)(sh->lo - sh->at), &head_q, &before[1]);
  return sm__csv_create_part(ctx, sh->path, sh->head, sh->hlen, sh->buf + a, n, 1 + head_lines + before[1], csv);
}

/* Read and parse this rank's share of the CSV file at sh->path. Collective; agreed. */
static sm_status read_csv(sm_ctx *ctx, const char *path, sm_csv **csv) {
  share sh = {.path = path, .fd = -1};
  sm_status st = sm_ctx_agree(ctx, read_head(ctx, &sh));
  if (st == SM_OK) st = sm_ctx_agree(ctx, read_range(ctx, &sh));
  if (st == SM_OK) st = sm_ctx_agree(ctx, parse_share(ctx, &sh, csv));
  if (st != SM_OK) sm__csv_destroy(csv); /* this rank's part parsed, another's did not */
  if (sh.fd >= 0) close(sh.fd);
  free(sh.head);
  free(sh.buf);
  return st;
}

/* Missing-value spellings: R writes NA, pandas None/nan/NaN (numeric columns only). */
static int na_str(const char *s) { return !s[0] || !strcmp(s, "NA"); }
static int na_num(const char *s) { return na_str(s) || !strcmp(s, "None") || !strcmp(s, "nan") || !strcmp(s, "NaN"); }

/* Column j of this rank's rows as numbers, v[rows] (NaN = missing); 0 as soon as a value that is
 * not missing is not a number either (a string column, unless all are missing on every rank). */
static int csv_numbers(const sm_csv *csv, int j, double *v) {
  for (int64_t i = 0; i < sm__csv_rows(csv); i++) {
    const char *s = sm__csv_str(csv, i, j);
    v[i] = NAN;
    if (!na_num(s) && !sm__csv_parse_f64(s, &v[i])) return 0;
  }
  return 1;
}

/* The move of the parsed rows to their blocks. A segment (what one rank sends another) holds rows
 * [r0, r0 + n) of the sender's: the byte counts of its string columns ([nstr] int64), the
 * numeric columns ([n] float64 each), the string columns (n NUL-terminated values each), padded
 * to 8 bytes. The self segment goes last in sbuf and never through MPI. */
typedef struct {
  int ncols, nstr;
  int *numeric;  /* [ncols]: 1 numeric, 0 string; the same on every rank */
  int64_t rows;  /* this rank's parsed rows */
  double *vals;  /* [ncols][rows]: their values as numbers, for the columns numeric everywhere */
  int64_t *have; /* [size][2]: first table row and count of the rows each rank parsed */
  int64_t *cnt;  /* [4][size]: bytes sent to, their offset in sbuf, bytes received from, offset in rbuf */
  char *sbuf, *rbuf;
} move;

static int64_t overlap(sm_range a, int64_t b0, int64_t bn, int64_t *lo) {
  *lo = a.first > b0 ? a.first : b0;
  int64_t hi = a.first + a.count < b0 + bn ? a.first + a.count : b0 + bn;
  return hi > *lo ? hi - *lo : 0;
}

/* Bytes of the segment of rows [r0, r0 + n) of csv; with `to`, also write it there. */
static size_t segment(const move *m, const sm_csv *csv, int64_t r0, int64_t n, char *to) {
  size_t at = (size_t)m->nstr * sizeof(int64_t);
  for (int j = 0; j < m->ncols; j++) {
    if (!m->numeric[j]) continue;
    if (to) memcpy(to + at, m->vals + j * m->rows + r0, (size_t)n * sizeof(double));
    at += (size_t)n * sizeof(double);
  }
  for (int j = 0, k = 0; j < m->ncols; j++) {
    if (m->numeric[j]) continue;
    size_t start = at;
    for (int64_t i = 0; i < n; i++) {
      const char *s = sm__csv_str(csv, r0 + i, j);
      size_t l = na_str(s) ? 1 : strlen(s) + 1;
      if (to) memcpy(to + at, na_str(s) ? "" : s, l);
      at += l;
    }
    int64_t bytes = (int64_t)(at - start);
    if (to) memcpy(to + (size_t)k * sizeof bytes, &bytes, sizeof bytes);
    k++;
  }
  return (at + 7) / 8 * 8;
}

/* How many of this rank's parsed rows rank d's block holds; *r0 the first of them (local). */
static int64_t rows_for(const sm_ctx *ctx, const move *m, int d, int64_t *r0) {
  int P = ctx->size, me = ctx->rank;
  int64_t lo, n = overlap(sm_table_block(m->have[2 * P - 2] + m->have[2 * P - 1], d, P), m->have[2 * me],
                          m->have[2 * me + 1], &lo);
  *r0 = lo - m->have[2 * me];
  return n;
}

/* Pack what this rank sends to each rank into sbuf (the self segment last). */
static sm_status pack(sm_ctx *ctx, move *m, const sm_csv *csv) {
  int P = ctx->size;
  int64_t *bytes = m->cnt, *off = m->cnt + P, total = 0, r0, n;
  for (int k = 1; k <= P; k++) {
    int d = (ctx->rank + k) % P; /* this rank last */
    n = rows_for(ctx, m, d, &r0);
    bytes[d] = n ? (int64_t)segment(m, csv, r0, n, NULL) : 0;
    off[d] = total;
    total += bytes[d];
  }
  SM_TRY(ctx, SM_ALLOC(ctx, m->sbuf, total));
  SM_TRY(ctx, sm_fault_point(ctx, "table_csv_move"));
  for (int d = 0; d < P; d++)
    if ((n = rows_for(ctx, m, d, &r0))) segment(m, csv, r0, n, m->sbuf + off[d]);
  return SM_OK;
}

/* Exchange the segments: counts, then one Alltoallv of the bytes between different ranks. */
static sm_status exchange(sm_ctx *ctx, move *m) {
  int P = ctx->size, me = ctx->rank;
  int64_t *sb = m->cnt, *so = m->cnt + P, *rb = m->cnt + 2 * P, *ro = m->cnt + 3 * P, total = 0;
  int *ic = malloc(4 * (size_t)P * sizeof *ic), ok = 1;
  sm_status st = ic ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory");
  if (MPI_Alltoall(sb, 1, MPI_INT64_T, rb, 1, MPI_INT64_T, ctx->comm))
    st = SM_ERR(ctx, SM_ERR_MPI, "alltoall of CSV segment sizes failed");
  for (int r = 0; st == SM_OK && r < P; r++) { /* the self segment stays out of MPI (it may be large) */
    int self = r == me;
    ro[r] = self ? 0 : total;
    total += self ? 0 : rb[r];
    ok &= self || (sb[r] <= INT_MAX && so[r] <= INT_MAX && ro[r] + rb[r] <= INT_MAX);
    ic[r] = self ? 0 : (int)sb[r], ic[P + r] = self ? 0 : (int)so[r];
    ic[2 * P + r] = self ? 0 : (int)rb[r], ic[3 * P + r] = (int)ro[r];
  }
  if (st == SM_OK)
    st = ok ? SM_ALLOC(ctx, m->rbuf, total)
            : SM_ERR(ctx, SM_ERR_UNSUPPORTED,
                     "CSV table: more than 2 GiB of rows to move between two ranks; use "
                     "more ranks, or convert the table to HDF5");
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK && MPI_Alltoallv(m->sbuf, ic, ic + P, MPI_BYTE, m->rbuf, ic + 2 * P, ic + 3 * P, MPI_BYTE, ctx->comm))
    st = SM_ERR(ctx, SM_ERR_MPI, "alltoallv of CSV table rows failed");
  free(ic);
  return st;
}

/* The segment received from rank r (NULL when none), the rows it holds and their place here. */
static const char *received(const sm_table *t, const move *m, int r, int64_t *n, int64_t *at) {
  int64_t lo;
  *n = overlap(t->mine, m->have[2 * r], m->have[2 * r + 1], &lo);
  *at = lo - t->mine.first;
  if (!*n) return NULL;
  return r == t->ctx->rank ? m->sbuf + m->cnt[t->ctx->size + r] : m->rbuf + m->cnt[3 * t->ctx->size + r];
}

/* Fill the columns from the segments, in rank order (= table row order). */
static sm_status unpack(sm_table *t, const move *m) {
  int64_t n, at;
  for (int j = 0, k = 0; j < t->ncols; j++) { /* the string arenas first: sized by the segments' counts */
    if (!t->cols[j].is_str) continue;
    size_t bytes = 1;
    for (int r = 0; r < t->ctx->size; r++) {
      int64_t b = 0;
      const char *p = received(t, m, r, &n, &at);
      if (p) memcpy(&b, p + (size_t)k * sizeof b, sizeof b);
      bytes += (size_t)b;
    }
    k++;
    SM_TRY(t->ctx, SM_ALLOC(t->ctx, t->cols[j].arena, bytes));
  }
  size_t *fill = calloc((size_t)t->ncols + 1, sizeof *fill);
  SM_CHECK(t->ctx, fill, SM_ERR_NOMEM, "out of memory");
  for (int r = 0; r < t->ctx->size; r++) {
    const char *p = received(t, m, r, &n, &at);
    if (!p) continue;
    p += (size_t)m->nstr * sizeof(int64_t);
    for (int j = 0; j < t->ncols; j++) /* the numeric columns, then the string columns */
      if (!t->cols[j].is_str)
        memcpy(t->cols[j].num + at, p, (size_t)n * sizeof(double)), p += (size_t)n * sizeof(double);
    for (int j = 0; j < t->ncols; j++) {
      sm__tcol *c = &t->cols[j];
      for (int64_t i = 0; c->is_str && i < n; i++) {
        size_t l = strlen(p) + 1;
        c->str[at + i] = memcpy(c->arena + fill[j], p, l);
        fill[j] += l, p += l;
      }
    }
  }
  free(fill);
  return SM_OK;
}

/* Values as numbers, column types over all ranks, the rows each rank parsed. Collective. */
static sm_status plan(sm_ctx *ctx, move *m, const sm_csv *csv) {
  m->rows = sm__csv_rows(csv);
  sm_status st = SM_ALLOC(ctx, m->vals, (size_t)m->ncols * (size_t)m->rows);
  for (int j = 0; j < m->ncols && st == SM_OK; j++)
    m->numeric[j] = csv_numbers(csv, j, m->vals + j * m->rows);
  SM_TRY(ctx, sm_ctx_agree(ctx, st));
  SM_MPI(ctx, MPI_Allreduce(MPI_IN_PLACE, m->numeric, m->ncols, MPI_INT, MPI_MIN, ctx->comm));
  SM_MPI(ctx, MPI_Allgather(&m->rows, 1, MPI_INT64_T, m->have + 2 * ctx->size, 1, MPI_INT64_T, ctx->comm));
  int64_t at = 0;
  for (int r = 0; r < ctx->size; r++) { /* the counts, gathered past the end, become (first, count) */
    m->have[2 * r] = at;
    m->have[2 * r + 1] = m->have[2 * ctx->size + r];
    at += m->have[2 * r + 1];
  }
  for (int j = 0; j < m->ncols; j++)
    m->nstr += !m->numeric[j];
  return SM_OK;
}

sm_status sm__table_open_csv(sm_table *t, const char *path) {
  sm_ctx *ctx = t->ctx;
  sm_csv *csv = NULL;
  double t0 = sm_wtime();
  SM_TRY(ctx, read_csv(ctx, path, &csv));
  double t1 = sm_wtime();
  int P = ctx->size;
  move m = {.ncols = sm__csv_cols(csv)};
  m.numeric = calloc((size_t)m.ncols + 1, sizeof *m.numeric);
  m.have = calloc(3 * (size_t)P, sizeof *m.have);
  m.cnt = calloc(4 * (size_t)P, sizeof *m.cnt);
  sm_status st = m.numeric && m.have && m.cnt ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory");
  if ((st = sm_ctx_agree(ctx, st)) == SM_OK) st = sm_ctx_agree(ctx, plan(ctx, &m, csv));
  if (st == SM_OK) {
    t->nrows = m.have[2 * P - 2] + m.have[2 * P - 1];
    t->mine = sm_table_block(t->nrows, ctx->rank, P);
    for (int j = 0; j < m.ncols && st == SM_OK; j++) {
      sm__tcol *c;
      st = sm__table_add(t, sm__csv_col_name(csv, j), !m.numeric[j], &c);
    }
    if (st == SM_OK) st = pack(ctx, &m, csv);
    sm__csv_destroy(&csv);
    free(m.vals);
    m.vals = NULL;
    st = sm_ctx_agree(ctx, st);
  }
  if (st == SM_OK) {
    st = exchange(ctx, &m); /* agreed up to the Alltoallv itself */
    st = sm_ctx_agree(ctx, st == SM_OK ? unpack(t, &m) : st);
  }
  sm__csv_destroy(&csv);
  if (st == SM_OK)
    sm_debug(ctx, "table %s: this rank parsed %lld rows in %.3f s, the rows moved to their blocks in %.3f s", path,
             (long long)m.have[2 * ctx->rank + 1], t1 - t0, sm_wtime() - t1);
  free(m.numeric), free(m.vals), free(m.have), free(m.cnt), free(m.sbuf), free(m.rbuf);
  return st;
}
