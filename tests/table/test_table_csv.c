/* CSV tables read in parallel (src/table/table_csv.c): each rank parses the records that start
 * in its byte range, so these files put the range boundaries where a naive split breaks -
 * inside quoted fields that hold commas, line ends (LF and CRLF) and doubled quotes - and add a
 * byte-order mark, empty lines, a last line without a line end, fewer rows than ranks, and a
 * column that is numeric everywhere but in the last rank's rows. Every rank compares its block
 * with a serial parse of the whole file (sm__csv_create); a malformed file must fail with the
 * serial parse's message (the first bad line) at every rank count. */
#include <math.h>
#include <stdarg.h>

#include "harness.h"
#include "io/csv.h"
#include "sisma/table.h"

/* A generated file's bytes (written through open_memstream). */
typedef struct {
  char *s;
  size_t len;
} text;

enum { BAD_NONE, BAD_FEW, BAD_EXTRA, BAD_QUOTE, BAD_UNTERM };

/* A generated file of n rows: id, a quoted name holding a comma, a line end (LF or CRLF) and
 * doubled quotes, padded so that most bytes are quoted; x with the missing spellings; `mixed`,
 * numeric but for row text_row; note, quoted or not. Empty lines here and there, a BOM and an
 * empty line before the header, CRLF on some rows, no line end after the last row unless
 * final_nl. Row `bad` (and `bad2`) get defect `kind`. offs[i] is where row i starts; *head the
 * header's end. */
static void gen(text *out, int n, int text_row, int final_nl, int kind, int bad, int bad2, size_t *offs, size_t *head) {
  FILE *t = open_memstream(&out->s, &out->len);
  fprintf(t, "\xEF\xBB\xBF\r\nid,\"name, quoted\",x,mixed,note\r\n");
  *head = (size_t)ftell(t);
  for (int i = 0; i < n; i++) {
    if (i % 9 == 4) fprintf(t, "\r\n");
    if (i % 13 == 7) fprintf(t, "\n\n");
    if (offs) offs[i] = (size_t)ftell(t);
    int b = kind != BAD_NONE && (i == bad || i == bad2);
    fprintf(t, "%d,\"%sst \"\"Q%d\"\", a,b%s", i + 1, i % 4 == 0 ? "\"\"" : "", i,
            i % 3 == 0   ? "\n"
            : i % 3 == 1 ? "\r\n"
                         : "");
    for (int k = 0; k < 10 + (i * 7) % 40; k++)
      fprintf(t, "%c", "xyz\"w,v"[k % 7] == '"' ? 'q' : "xyz\"w,v"[k % 7]);
    fprintf(t, "\",");
    if (b && kind == BAD_QUOTE)
      fprintf(t, "1\"2");
    else if (i % 7 == 3)
      fprintf(t, "NA");
    else if (i % 11 == 5) { /* empty: missing */
    } else if (i % 13 == 4)
      fprintf(t, "nan");
    else if (i % 17 == 2)
      fprintf(t, "None");
    else
      fprintf(t, "%d.%03d", i - 50, (i * 37) % 1000);
    if (i == text_row)
      fprintf(t, ",text%d", i);
    else
      fprintf(t, ",%d", i * 3);
    if (b && kind == BAD_FEW) {
    } else if (b && kind == BAD_UNTERM)
      fprintf(t, ",\"never closed");
    else if (i % 5 == 0)
      fprintf(t, ",\"note, with comma\"");
    else if (i % 5 == 1)
      fprintf(t, ",");
    else if (i % 5 == 2)
      fprintf(t, ",plain%d", i);
    else if (i % 5 == 3)
      fprintf(t, ",\"a\"\"b\"");
    else
      fprintf(t, ",\"multi\nline\"");
    if (b && kind == BAD_EXTRA) fprintf(t, ",extra");
    if (i < n - 1 || final_nl) fprintf(t, i % 4 == 0 ? "\r\n" : "\n");
  }
  fclose(t);
}

static void write_file(sm_ctx *ctx, const char *path, const text *t) {
  if (ctx->rank == 0) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) fwrite(t->s, 1, t->len, f), fclose(f);
  }
  MPI_Barrier(ctx->comm);
}

static int na_str(const char *s) { return !s[0] || !strcmp(s, "NA"); }
static int na_num(const char *s) { return na_str(s) || !strcmp(s, "None") || !strcmp(s, "nan") || !strcmp(s, "NaN"); }

/* The table at `path` against a serial parse: names, types (numeric iff every value is missing
 * or a number), the block rule, every value of this rank's block. */
static void compare_serial(sm_ctx *ctx, const char *path) {
  sm_csv *csv = NULL;
  sm_table *t = NULL;
  CHECK_OK(ctx, sm__csv_create(ctx, path, &csv));
  CHECK_OK(ctx, sm_table_open(ctx, path, &t));
  if (!csv || !t) goto done;
  int64_t n = sm__csv_rows(csv);
  CHECK_EQ_I64(sm_table_nrows(t), n);
  CHECK_EQ_I64(sm_table_ncols(t), sm__csv_cols(csv));
  sm_range r = sm_table_range(t), want = sm_table_block(n, ctx->rank, ctx->size);
  CHECK_EQ_I64(r.first, want.first);
  CHECK_EQ_I64(r.count, want.count);
  for (int j = 0; j < sm__csv_cols(csv) && j < sm_table_ncols(t); j++) {
    CHECK_STR(sm_table_col_name(t, j), sm__csv_col_name(csv, j));
    int numeric = 1;
    for (int64_t i = 0; i < n; i++) {
      double v;
      numeric &= na_num(sm__csv_str(csv, i, j)) || sm__csv_parse_f64(sm__csv_str(csv, i, j), &v);
    }
    CHECK_EQ_I64(sm_table_col_is_str(t, j), !numeric);
    for (int64_t i = 0; i < r.count && r.count == want.count; i++) {
      const char *s = sm__csv_str(csv, r.first + i, j);
      double v = NAN;
      if (numeric && !na_num(s)) sm__csv_parse_f64(s, &v);
      if (numeric)
        CHECK(isnan(v) ? isnan(sm_table_num(t, j)[i]) : sm_table_num(t, j)[i] == v);
      else
        CHECK_STR(sm_table_str(t, j)[i], na_str(s) ? "" : s);
    }
  }
done:
  sm__csv_destroy(&csv);
  sm_table_close(&t);
}

/* How many of the range boundaries at p ranks fall inside a quoted field of t (after head). */
static int boundaries_in_quotes(const text *t, size_t head, int p) {
  int inside = 0;
  for (int r = 1; r < p; r++) {
    size_t at = head + (size_t)sm_table_block((int64_t)(t->len - head), r, p).first, q = 0;
    for (size_t i = head; i < at; i++)
      q += t->s[i] == '"';
    inside += (int)(q & 1);
  }
  return inside;
}

static void path_in(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", sm_test_dir(), name); }

/* Well-formed generated files, large and small, against the serial parse. */
static void test_split_rows(sm_ctx *ctx) {
  char path[512];
  path_in(path, sizeof path, "split.csv");
  for (int n = 0; n <= 24; n++)
    for (int nl = 0; nl < 2; nl++) {
      text t = {0};
      size_t head;
      gen(&t, n, n - 1, nl, BAD_NONE, -1, -1, NULL, &head);
      write_file(ctx, path, &t);
      compare_serial(ctx, path);
      free(t.s);
    }
  text t = {0};
  size_t head;
  gen(&t, 400, 399, 0, BAD_NONE, -1, -1, NULL, &head);
  for (int p = 2; p <= 4; p++) /* the point of the file: it would break a naive split */
    CHECK_EQ_I64(boundaries_in_quotes(&t, head, p) > 0, 1);
  write_file(ctx, path, &t);
  compare_serial(ctx, path);
  sm_table *tab = NULL;
  CHECK_OK(ctx, sm_table_open(ctx, path, &tab));
  int j = -1;
  if (tab) CHECK_OK(ctx, sm_table_find(tab, "mixed", &j));
  if (tab && j >= 0) CHECK(sm_table_col_is_str(tab, j)); /* text only in the last row */
  if (tab) CHECK(!sm_table_col_is_str(tab, 0) && sm_table_col_is_str(tab, 1) && !sm_table_col_is_str(tab, 2));
  sm_table_close(&tab);
  free(t.s);
}

/* Header-only files and fewer rows than ranks. */
static void test_split_small(sm_ctx *ctx) {
  static const char *files[] = {"a,b",
                                "a,b\r\n",
                                "\xEF\xBB\xBF"
                                "a,b\n\n\r\n",
                                "a,b\n1,2",
                                "a,b\n\"1\n\",2\n",
                                "a,b\n1,\"x\r\ny\"\r\n\r\n3,4",
                                "v\n1\n2\n3\n"};
  char path[512];
  path_in(path, sizeof path, "split_small.csv");
  for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
    text t = {(char *)files[k], strlen(files[k])};
    write_file(ctx, path, &t);
    compare_serial(ctx, path);
  }
}

/* Malformed generated files: the table's message is the serial parse's (the first bad row),
 * and names the expected line and column, at every rank count. */
static void test_split_errors(sm_ctx *ctx) {
  enum { N = 300 };
  static const struct {
    int kind, bad, bad2, dline; /* dline: lines from the start of row `bad` to the error */
    const char *want;           /* after "path:LINE: " */
  } cases[] = {
      {BAD_FEW, N - 1, -1, 0, "column 5 (note) is missing"},
      {BAD_EXTRA, N - 2, -1, 0, "column 6: extra field"},
      {BAD_UNTERM, N - 1, -1, 0, "column 5 (note): quoted field is never closed"}, /* row 299: no line end in name */
      {BAD_QUOTE, N - 3, -1, 1, "column 3 (x): quote inside an unquoted field"},   /* row 297: one in name */
      {BAD_FEW, 1, N - 1, 0, "column 5 (note) is missing"},
      {BAD_QUOTE, 0, N - 2, 1, "column 3 (x): quote inside an unquoted field"},
      {BAD_UNTERM, 2, -1, 0, NULL}, /* the quote pairs with the next row's: the serial message decides */
      {BAD_EXTRA, N / 2, N - 1, 0, "column 6: extra field"},
  };
  char path[512];
  path_in(path, sizeof path, "split_bad.csv");
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    text t = {0};
    size_t head, offs[N];
    gen(&t, N, -1, 1, cases[k].kind, cases[k].bad, cases[k].bad2, offs, &head);
    write_file(ctx, path, &t);
    int64_t line = 1 + cases[k].dline;
    for (size_t i = 0; i < offs[cases[k].bad]; i++)
      line += t.s[i] == '\n';
    size_t last = head + (size_t)sm_table_block((int64_t)(t.len - head), ctx->size - 1, ctx->size).first;
    if (cases[k].bad >= N - 3) CHECK(offs[cases[k].bad] >= last); /* in the last rank's range */
    char want[256] = "", serial[SM_ERRMSG_MAX] = "";
    if (cases[k].want) snprintf(want, sizeof want, "split_bad.csv:%lld: %s", (long long)line, cases[k].want);
    sm_csv *csv = NULL;
    CHECK_STATUS(ctx, sm__csv_create(ctx, path, &csv), SM_ERR_FORMAT);
    snprintf(serial, sizeof serial, "%s", ctx->err_msg);
    CHECK(strstr(serial, want) != NULL);
    sm_ctx_clear_error(ctx);
    sm_table *tab = NULL;
    CHECK_STATUS(ctx, sm_table_open(ctx, path, &tab), SM_ERR_FORMAT);
    CHECK(tab == NULL);
    if (!strstr(ctx->err_msg, serial) || !strstr(ctx->err_msg, want)) {
      fprintf(stderr, "case %zu: message \"%s\", serial \"%s\", want \"%s\"\n", k, ctx->err_msg, serial, want);
      CHECK(0);
    }
    sm_ctx_clear_error(ctx);
    free(t.s);
  }
}

/* A failure on one rank (injected while parsing, then while packing the rows) is agreed: every
 * rank returns it, none hangs, and the next open works. */
static void test_split_fault(sm_ctx *ctx) {
  char path[512], fault[64];
  path_in(path, sizeof path, "split_fault.csv");
  text t = {0};
  size_t head;
  gen(&t, 50, -1, 1, BAD_NONE, -1, -1, NULL, &head);
  write_file(ctx, path, &t);
  static const char *points[] = {"table_csv_parse", "table_csv_move"};
  for (int k = 0; k < 2; k++) {
    snprintf(fault, sizeof fault, "%s:%d", points[k], k ? 0 : ctx->size - 1);
    setenv("SISMA_FAULT", fault, 1);
    sm_table *tab = NULL;
    CHECK_STATUS(ctx, sm_table_open(ctx, path, &tab), SM_ERR_INTERNAL);
    CHECK(tab == NULL && strstr(ctx->err_msg, points[k]));
    unsetenv("SISMA_FAULT");
    sm_ctx_clear_error(ctx);
  }
  compare_serial(ctx, path);
  free(t.s);
}

int main(int argc, char **argv) {
  return SM_TEST_MAIN(argc, argv, test_split_rows, test_split_small, test_split_errors, test_split_fault);
}
