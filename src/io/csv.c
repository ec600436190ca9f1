/* CSV reader (see csv.h). One pass over the file text: each field is unquoted into an arena as a
 * NUL-terminated string and its offset stored in a row-major table [rows + 1][cols] whose row 0
 * is the header. Column types are decided lazily, once, on first typed access. */
#include "csv.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sisma/config.h"

struct sm_csv {
  char path[4096];
  int ncols;
  int64_t nrows;
  char *arena; /* unquoted values, NUL-terminated */
  size_t alen, acap;
  size_t *off; /* [nrows + 1][ncols] offsets into arena; row 0 = header */
  int64_t ocap;
  int64_t *line; /* [nrows] physical line where each data row starts */
  signed char *numeric; /* [ncols]: -1 not decided yet, 0 string, 1 numeric */
};

typedef struct {
  const char *p, *end;
  int64_t line;
} cursor;

static sm_status grow(sm_ctx *ctx, void **buf, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return SM_OK;
  size_t n = *cap ? *cap : 1024;
  while (n < need) n *= 2;
  void *b = realloc(*buf, n * elem);
  SM_CHECK(ctx, b, SM_ERR_NOMEM, "out of memory parsing CSV (%zu bytes)", n * elem);
  *buf = b;
  *cap = n;
  return SM_OK;
}

static sm_status put_char(sm_ctx *ctx, sm_csv *c, char ch) {
  SM_TRY(ctx, grow(ctx, (void **)&c->arena, &c->acap, c->alen + 1, 1));
  c->arena[c->alen++] = ch;
  return SM_OK;
}

static sm_status put_offset(sm_ctx *ctx, sm_csv *c, int64_t i, size_t v) {
  size_t cap = (size_t)c->ocap;
  SM_TRY(ctx, grow(ctx, (void **)&c->off, &cap, (size_t)i + 1, sizeof *c->off));
  c->ocap = (int64_t)cap;
  c->off[i] = v;
  return SM_OK;
}

static const char *col_label(const sm_csv *c, int j) {
  return (c->ncols > 0 && j < c->ncols) ? c->arena + c->off[j] : "beyond the header";
}

/* Read one quoted field starting at the opening quote; the cursor ends after the closing quote. */
static sm_status quoted_field(sm_ctx *ctx, sm_csv *c, cursor *cur, int field) {
  int64_t start_line = cur->line;
  cur->p++;
  for (;;) {
    if (cur->p >= cur->end)
      return SM_ERR(ctx, SM_ERR_FORMAT,
                    "%s:%lld: column %d (%s): quoted field is never closed (unterminated quote; truncated file?)",
                    c->path, (long long)start_line, field + 1, col_label(c, field));
    char ch = *cur->p;
    if (ch == '"') {
      if (cur->p + 1 < cur->end && cur->p[1] == '"') {
        SM_TRY(ctx, put_char(ctx, c, '"'));
        cur->p += 2;
        continue;
      }
      cur->p++;
      return SM_OK;
    }
    if (ch == '\n') cur->line++;
    SM_TRY(ctx, put_char(ctx, c, ch));
    cur->p++;
  }
}

static int at_eol(const cursor *cur) {
  return cur->p >= cur->end || *cur->p == '\n' || (*cur->p == '\r' && (cur->p + 1 >= cur->end || cur->p[1] == '\n'));
}

static void skip_eol(cursor *cur) {
  if (cur->p < cur->end && *cur->p == '\r') cur->p++;
  if (cur->p < cur->end && *cur->p == '\n') {
    cur->p++;
    cur->line++;
  }
}

/* Parse one record into offsets starting at table index `base`; *nf gets its field count. */
static sm_status record(sm_ctx *ctx, sm_csv *c, cursor *cur, int64_t base, int *nf) {
  int field = 0;
  for (;;) {
    SM_TRY(ctx, put_offset(ctx, c, base + field, c->alen));
    if (cur->p < cur->end && *cur->p == '"') {
      SM_TRY(ctx, quoted_field(ctx, c, cur, field));
      if (!at_eol(cur) && *cur->p != ',')
        return SM_ERR(ctx, SM_ERR_FORMAT, "%s:%lld: column %d (%s): unexpected text after a closing quote",
                      c->path, (long long)cur->line, field + 1, col_label(c, field));
    } else {
      while (!at_eol(cur) && *cur->p != ',') {
        if (*cur->p == '"')
          return SM_ERR(ctx, SM_ERR_FORMAT,
                        "%s:%lld: column %d (%s): quote inside an unquoted field (quote the whole field and double "
                        "the quote)",
                        c->path, (long long)cur->line, field + 1, col_label(c, field));
        SM_TRY(ctx, put_char(ctx, c, *cur->p++));
      }
    }
    SM_TRY(ctx, put_char(ctx, c, '\0'));
    field++;
    if (cur->p < cur->end && *cur->p == ',') {
      cur->p++;
      continue;
    }
    skip_eol(cur);
    *nf = field;
    return SM_OK;
  }
}

static sm_status check_header(sm_ctx *ctx, sm_csv *c) {
  for (int j = 0; j < c->ncols; j++) {
    const char *n = c->arena + c->off[j];
    SM_CHECK(ctx, n[0], SM_ERR_FORMAT, "%s:1: column %d has an empty name in the header", c->path, j + 1);
    for (int k = 0; k < j; k++)
      SM_CHECK(ctx, strcmp(n, c->arena + c->off[k]), SM_ERR_FORMAT,
               "%s:1: column %d (%s) repeats the name of column %d", c->path, j + 1, n, k + 1);
  }
  return SM_OK;
}

/* Past the UTF-8 byte-order mark and the empty lines before the header. */
static void skip_lead(cursor *cur) {
  if (cur->end - cur->p >= 3 && !memcmp(cur->p, "\xEF\xBB\xBF", 3)) cur->p += 3;
  while (cur->p < cur->end && at_eol(cur)) skip_eol(cur);
}

static sm_status parse_header(sm_ctx *ctx, sm_csv *c, cursor *cur) {
  skip_lead(cur);
  SM_CHECK(ctx, cur->p < cur->end, SM_ERR_FORMAT, "%s: empty file, expected a header row naming the columns", c->path);
  SM_TRY(ctx, record(ctx, c, cur, 0, &c->ncols));
  return check_header(ctx, c);
}

static sm_status parse_rows(sm_ctx *ctx, sm_csv *c, cursor *cur) {
  size_t lcap = 0;
  while (cur->p < cur->end) {
    if (at_eol(cur)) { /* a fully empty line */
      skip_eol(cur);
      continue;
    }
    int64_t line = cur->line, base = (c->nrows + 1) * c->ncols;
    int nf = 0;
    SM_TRY(ctx, record(ctx, c, cur, base, &nf));
    if (nf < c->ncols)
      return SM_ERR(ctx, SM_ERR_FORMAT,
                    "%s:%lld: column %d (%s) is missing: the row has %d field(s), the header %d (truncated or "
                    "malformed row)",
                    c->path, (long long)line, nf + 1, col_label(c, nf), nf, c->ncols);
    if (nf > c->ncols)
      return SM_ERR(ctx, SM_ERR_FORMAT,
                    "%s:%lld: column %d: extra field; the row has %d field(s), the header %d (unquoted comma?)",
                    c->path, (long long)line, c->ncols + 1, nf, c->ncols);
    SM_TRY(ctx, grow(ctx, (void **)&c->line, &lcap, (size_t)c->nrows + 1, sizeof *c->line));
    c->line[c->nrows++] = line;
  }
  return SM_OK;
}

/* The header from head[0, hlen), then the records of data[0, dlen) numbered from `line`, or, when
 * data is NULL, the records that follow the header in head. */
static sm_status parse(sm_ctx *ctx, sm_csv *c, const char *head, size_t hlen, const char *data, size_t dlen,
                       int64_t line) {
  cursor cur = {head, head + hlen, 1};
  SM_TRY(ctx, parse_header(ctx, c, &cur));
  if (data) cur = (cursor){data, data + dlen, line};
  return parse_rows(ctx, c, &cur);
}

static sm_status create(sm_ctx *ctx, const char *name, const char *head, size_t hlen, const char *data, size_t dlen,
                        int64_t line, sm_csv **out) {
  *out = NULL;
  sm_csv *c = calloc(1, sizeof *c);
  SM_CHECK(ctx, c, SM_ERR_NOMEM, "out of memory");
  snprintf(c->path, sizeof c->path, "%s", name);
  sm_status st = parse(ctx, c, head, hlen, data, dlen, line);
  if (st == SM_OK) {
    c->numeric = malloc((size_t)c->ncols + 1);
    if (!c->numeric) st = SM_ERR(ctx, SM_ERR_NOMEM, "out of memory");
    else memset(c->numeric, -1, (size_t)c->ncols + 1);
  }
  if (st != SM_OK) {
    sm__csv_destroy(&c);
    return st;
  }
  *out = c;
  return SM_OK;
}

sm_status sm__csv_create_text(sm_ctx *ctx, const char *name, const char *text, size_t len, sm_csv **out) {
  return create(ctx, name, text, len, NULL, 0, 0, out);
}

sm_status sm__csv_create_part(sm_ctx *ctx, const char *name, const char *head, size_t hlen, const char *data,
                              size_t dlen, int64_t line, sm_csv **out) {
  return create(ctx, name, head, hlen, data ? data : "", dlen, line, out);
}

size_t sm__csv_record_end(const char *text, size_t len, int64_t *quotes) {
  int64_t q = *quotes;
  for (size_t i = 0; i < len; i++) {
    if (text[i] == '"') q++;
    else if (text[i] == '\n' && !(q & 1)) {
      *quotes = q;
      return i + 1;
    }
  }
  *quotes = q;
  return 0;
}

size_t sm__csv_header_end(const char *text, size_t len) {
  cursor cur = {text, text + len, 1};
  skip_lead(&cur);
  int64_t q = 0;
  size_t end = sm__csv_record_end(cur.p, (size_t)(cur.end - cur.p), &q);
  return end ? (size_t)(cur.p - text) + end : 0;
}

void sm__csv_count(const char *text, size_t len, int64_t *quotes, int64_t *newlines) {
  int64_t q = 0, n = 0;
  for (size_t i = 0; i < len; i++) {
    q += text[i] == '"';
    n += text[i] == '\n';
  }
  *quotes += q;
  *newlines += n;
}

sm_status sm__csv_create(sm_ctx *ctx, const char *path, sm_csv **out) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  SM_CHECK(ctx, f, SM_ERR_IO, "cannot open CSV file %s: %s", path, strerror(errno));
  char *text = NULL;
  size_t len = 0, cap = 0, n;
  sm_status st = SM_OK;
  do {
    if ((st = grow(ctx, (void **)&text, &cap, len + 65536, 1)) != SM_OK) break;
    n = fread(text + len, 1, cap - len, f);
    len += n;
  } while (n > 0);
  if (st == SM_OK && ferror(f)) st = SM_ERR(ctx, SM_ERR_IO, "error reading CSV file %s: %s", path, strerror(errno));
  fclose(f);
  if (st == SM_OK) st = sm__csv_create_text(ctx, path, text ? text : "", len, out);
  free(text);
  return st;
}

void sm__csv_destroy(sm_csv **csv) {
  if (!csv || !*csv) return;
  sm_csv *c = *csv;
  free(c->arena);
  free(c->off);
  free(c->line);
  free(c->numeric);
  free(c);
  *csv = NULL;
}

const char *sm__csv_path(const sm_csv *c) { return c->path; }
int64_t sm__csv_rows(const sm_csv *c) { return c->nrows; }
int sm__csv_cols(const sm_csv *c) { return c->ncols; }
const char *sm__csv_col_name(const sm_csv *c, int col) { return c->arena + c->off[col]; }
int64_t sm__csv_line(const sm_csv *c, int64_t row) { return c->line[row]; }

int sm__csv_col_find(const sm_csv *c, const char *name) {
  for (int j = 0; j < c->ncols; j++)
    if (!strcmp(c->arena + c->off[j], name)) return j;
  return -1;
}

sm_status sm__csv_col_require(sm_ctx *ctx, const sm_csv *c, const char *name, int *col) {
  *col = sm__csv_col_find(c, name);
  if (*col >= 0) return SM_OK;
  const char *names[512];
  int n = 0;
  for (int j = 0; j < c->ncols && n < 512; j++) names[n++] = sm__csv_col_name(c, j);
  char near[256];
  sm_near_matches(name, names, n, near, sizeof near);
  return SM_ERR(ctx, SM_ERR_FORMAT, "%s:1: no column \"%s\" in the header%s%s", c->path, name,
                near[0] ? "; did you mean " : "", near);
}

const char *sm__csv_str(const sm_csv *c, int64_t row, int col) {
  return c->arena + c->off[(row + 1) * c->ncols + col];
}

int sm__csv_missing(const sm_csv *c, int64_t row, int col) { return sm__csv_str(c, row, col)[0] == '\0'; }

int sm__csv_parse_f64(const char *s, double *v) {
  char *end;
  errno = 0;
  *v = strtod(s, &end);
  if (end == s) return 0;
  while (*end == ' ' || *end == '\t') end++;
  return *end == '\0';
}

static int missing_token(const char *s) { return !strcmp(s, "None") || !strcmp(s, "nan") || !strcmp(s, "NaN"); }

int sm__csv_is_numeric(const sm_csv *cc, int col) {
  sm_csv *c = (sm_csv *)cc; /* the lazily filled type cache is not part of the observable state */
  if (c->numeric[col] >= 0) return c->numeric[col];
  int numeric = 1, any = 0;
  for (int64_t i = 0; i < c->nrows && numeric; i++) {
    const char *s = sm__csv_str(c, i, col);
    double v;
    if (!s[0] || missing_token(s)) continue;
    if (sm__csv_parse_f64(s, &v)) any = 1;
    else numeric = 0;
  }
  c->numeric[col] = (signed char)(numeric && any);
  return c->numeric[col];
}

double sm__csv_f64(const sm_csv *c, int64_t row, int col) {
  const char *s = sm__csv_str(c, row, col);
  double v;
  if (!s[0] || missing_token(s) || !sm__csv_parse_f64(s, &v)) return NAN;
  return v;
}

int sm__csv_max_len(const sm_csv *c, int col) {
  size_t m = 1;
  for (int64_t i = 0; i < c->nrows; i++) {
    size_t l = strlen(sm__csv_str(c, i, col));
    if (l > m) m = l;
  }
  return (int)m;
}
