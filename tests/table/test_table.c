/* Tables at 1-4 ranks: each source is opened, every rank's block is checked against the values
 * written (so the union over ranks is the whole table, in order, at any rank count), and bad
 * input gives the documented status with file, line and column in the message. */
#include <hdf5.h>
#include <stdint.h>
#include <unistd.h>

#include "harness.h"
#include "sisma/table.h"

static void path_in(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", sm_test_dir(), name); }

/* Rank 0 writes a text file; all ranks wait for it. */
static void write_text(sm_ctx *ctx, const char *path, const char *text) {
  if (ctx->rank == 0) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) fputs(text, f), fclose(f);
  }
  MPI_Barrier(ctx->comm);
}

/* The block rule: contiguous, near-equal, covering [0, n) exactly once. */
static void test_blocks(sm_ctx *ctx) {
  for (int64_t n = 0; n < 11; n++)
    for (int p = 1; p <= 5; p++) {
      int64_t next = 0;
      for (int r = 0; r < p; r++) {
        sm_range g = sm_table_block(n, r, p);
        CHECK_EQ_I64(g.first, next);
        CHECK(g.count == n / p || g.count == n / p + 1);
        next += g.count;
      }
      CHECK_EQ_I64(next, n);
    }
}

static const char *csv_text = "id,mag,\"station, code\",depth,note\r\n"
                              "1,2.5,\"AB,\"\"X\"\"\",10,ok\r\n"
                              "2,NA,CD,,\"multi\nline\"\r\n"
                              "3,3.25,,7.5,NA\r\n"
                              "\r\n"
                              "4,-1e-3,EF,NaN,plain\r\n"
                              "5,4,GH,1,x\r\n";

static void test_csv(sm_ctx *ctx) {
  char path[512];
  path_in(path, sizeof path, "t.csv");
  write_text(ctx, path, csv_text);
  sm_table *t = NULL;
  CHECK_OK(ctx, sm_table_open(ctx, path, &t));
  if (!t) return;
  CHECK_EQ_I64(sm_table_nrows(t), 5);
  CHECK_EQ_I64(sm_table_ncols(t), 5);
  CHECK_STR(sm_table_col_name(t, 2), "station, code");
  CHECK(!sm_table_col_is_str(t, 0) && !sm_table_col_is_str(t, 1) && !sm_table_col_is_str(t, 3));
  CHECK(sm_table_col_is_str(t, 2) && sm_table_col_is_str(t, 4));
  CHECK(sm_table_num(t, 2) == NULL && sm_table_str(t, 1) == NULL);
  sm_range r = sm_table_range(t);
  sm_range want = sm_table_block(5, ctx->rank, ctx->size);
  CHECK_EQ_I64(r.first, want.first);
  CHECK_EQ_I64(r.count, want.count);
  static const double mag[] = {2.5, NAN, 3.25, -1e-3, 4}, depth[] = {10, NAN, 7.5, NAN, 1};
  static const char *sta[] = {"AB,\"X\"", "CD", "", "EF", "GH"}, *note[] = {"ok", "multi\nline", "", "plain", "x"};
  int j_mag = -1, j_depth = -1;
  CHECK_OK(ctx, sm_table_find(t, "mag", &j_mag));
  CHECK_OK(ctx, sm_table_find(t, "depth", &j_depth));
  for (int64_t i = 0; i < r.count; i++) {
    int64_t g = r.first + i;
    CHECK_NEAR(sm_table_num(t, 0)[i], (double)(g + 1), 0);
    CHECK(isnan(mag[g]) ? isnan(sm_table_num(t, j_mag)[i]) : sm_table_num(t, j_mag)[i] == mag[g]);
    CHECK(isnan(depth[g]) ? isnan(sm_table_num(t, j_depth)[i]) : sm_table_num(t, j_depth)[i] == depth[g]);
    CHECK_STR(sm_table_str(t, 2)[i], sta[g]);
    CHECK_STR(sm_table_str(t, 4)[i], note[g]);
  }
  int j = 0;
  CHECK_STATUS(ctx, sm_table_find(t, "dpth", &j), SM_ERR_ARG);
  CHECK_EQ_I64(j, -1);
  CHECK(strstr(ctx->err_msg, "\"dpth\"") && strstr(ctx->err_msg, "did you mean \"depth\""));
  sm_table_close(&t);
  CHECK(t == NULL);
  sm_table_close(&t); /* accepts NULL */
}

/* Malformed rows: every rank gets the same status and a message naming file, line and column. */
static void test_csv_errors(sm_ctx *ctx) {
  static const struct {
    const char *text, *want;
  } cases[] = {
      {"a,b,c\n1,2,3\n4,5\n", "t_bad.csv:3: column 3 (c) is missing"},
      {"a,b\n1,2\n3,4,5\n", "t_bad.csv:3: column 3: extra field"},
      {"a,b\n1,\"2\n3,4\n", "t_bad.csv:2: column 2 (b): quoted field is never closed"},
      {"a,b\n1,2\n3,x\"y\n", "t_bad.csv:3: column 2 (b): quote inside an unquoted field"},
      {"a,a\n1,2\n", "t_bad.csv:1: column 2 (a) repeats the name of column 1"},
      {"", "empty file"},
  };
  char path[512];
  path_in(path, sizeof path, "t_bad.csv");
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    write_text(ctx, path, cases[k].text);
    sm_table *t = NULL;
    CHECK_STATUS(ctx, sm_table_open(ctx, path, &t), SM_ERR_FORMAT);
    CHECK(t == NULL);
    if (!strstr(ctx->err_msg, cases[k].want)) {
      fprintf(stderr, "case %zu: message \"%s\" lacks \"%s\"\n", k, ctx->err_msg, cases[k].want);
      CHECK(0);
    }
    sm_ctx_clear_error(ctx);
    MPI_Barrier(ctx->comm);
  }
  sm_table *t = NULL;
  CHECK_STATUS(ctx, sm_table_open(ctx, "no/such/file.csv", &t), SM_ERR_IO);
  CHECK_STATUS(ctx, sm_table_open(ctx, "no_such.h5", &t), SM_ERR_IO);
  CHECK_STATUS(ctx, sm_table_open(ctx, "no_such.h5:/x", &t), SM_ERR_IO);
}

#define NH 23    /* rows of the HDF5 fixtures: uneven over 2, 3 and 4 ranks */
#define NW 40003 /* rows of the wide 2-D fixture: 3 read chunks of 1 MiB at 1 rank, none a multiple of 4 */
#define CW 9     /* its columns: two blocks of 4 and one more */

static double fval(int64_t i, int j) { return (double)i * 1.5 - (double)j * 0.25; }

/* Rank 0 writes a file with a group of typed 1-D columns and two 2-D datasets (serial driver). */
static void write_h5(sm_ctx *ctx, const char *path) {
  if (ctx->rank == 0) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t g = H5Gcreate2(f, "cols", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t n = NH, d2[2] = {NH, 3};
    hid_t s1 = H5Screate_simple(1, &n, NULL), s2 = H5Screate_simple(2, d2, NULL);
    double f64[NH], m2[NH][3];
    float f32[NH];
    int32_t i32[NH];
    int64_t i64[NH];
    char fixed[NH][8];
    const char *vl[NH];
    char vlbuf[NH][16];
    for (int i = 0; i < NH; i++) {
      f64[i] = fval(i, 0);
      f32[i] = (float)i * 0.5f;
      i32[i] = -i;
      i64[i] = i % 4 == 3 ? INT64_MIN : (int64_t)i * 1000000000000LL;
      memset(fixed[i], 0, 8);
      snprintf(fixed[i], 8, "s%d", i % 5);
      snprintf(vlbuf[i], 16, "ev-%d", i * 7);
      vl[i] = vlbuf[i];
      for (int j = 0; j < 3; j++)
        m2[i][j] = fval(i, j);
    }
    hid_t ft = H5Tcopy(H5T_C_S1), vt = H5Tcopy(H5T_C_S1);
    H5Tset_size(ft, 8);
    H5Tset_size(vt, H5T_VARIABLE);
    struct {
      const char *name;
      hid_t ftype, mtype, space;
      const void *buf;
    } ds[] = {{"f64", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, s1, f64},
              {"f32", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, s1, f32},
              {"i32", H5T_STD_I32LE, H5T_NATIVE_INT32, s1, i32},
              {"i64", H5T_STD_I64LE, H5T_NATIVE_INT64, s1, i64},
              {"fixed", ft, ft, s1, fixed},
              {"vlen", vt, vt, s1, vl}};
    for (size_t k = 0; k < sizeof ds / sizeof ds[0]; k++) {
      hid_t d = H5Dcreate2(g, ds[k].name, ds[k].ftype, ds[k].space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      H5Dwrite(d, ds[k].mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, ds[k].buf);
      H5Dclose(d);
    }
    for (int named = 0; named < 2; named++) {
      hid_t d = H5Dcreate2(f, named ? "named" : "plain", H5T_IEEE_F64LE, s2, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, m2);
      if (named) {
        const char *cols = "x, y,z";
        hid_t at = H5Tcopy(H5T_C_S1), as = H5Screate(H5S_SCALAR);
        H5Tset_size(at, strlen(cols));
        hid_t a = H5Acreate2(d, "columns", at, as, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, at, cols);
        H5Aclose(a), H5Sclose(as), H5Tclose(at);
      }
      H5Dclose(d);
    }
    hsize_t dw[2] = {NW, CW};
    hid_t sw = H5Screate_simple(2, dw, NULL);
    double *mw = malloc(sizeof(double) * NW * CW);
    for (int64_t i = 0; mw && i < NW; i++)
      for (int j = 0; j < CW; j++)
        mw[i * CW + j] = fval(i, j);
    hid_t dwd = H5Dcreate2(f, "wide", H5T_IEEE_F64LE, sw, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (mw) H5Dwrite(dwd, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, mw);
    H5Dclose(dwd), H5Sclose(sw), free(mw);
    /* a column of another length, and a 3-D dataset: both invalid as tables */
    hsize_t n2 = NH - 1, d3[3] = {2, 2, 2};
    hid_t s3 = H5Screate_simple(1, &n2, NULL), s4 = H5Screate_simple(3, d3, NULL);
    hid_t g2 = H5Gcreate2(f, "ragged", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t d = H5Dcreate2(g2, "a", H5T_IEEE_F64LE, s1, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, f64), H5Dclose(d);
    d = H5Dcreate2(g2, "b", H5T_IEEE_F64LE, s3, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, f64), H5Dclose(d);
    d = H5Dcreate2(f, "cube", H5T_IEEE_F64LE, s4, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(d);
    H5Gclose(g2), H5Sclose(s3), H5Sclose(s4);
    H5Tclose(ft), H5Tclose(vt), H5Sclose(s1), H5Sclose(s2), H5Gclose(g), H5Fclose(f);
  }
  MPI_Barrier(ctx->comm);
}

static void test_h5_group(sm_ctx *ctx) {
  char path[512], spec[600];
  path_in(path, sizeof path, "t.h5");
  write_h5(ctx, path);
  snprintf(spec, sizeof spec, "%s:/cols", path);
  sm_table *t = NULL;
  CHECK_OK(ctx, sm_table_open(ctx, spec, &t));
  if (!t) return;
  CHECK_EQ_I64(sm_table_nrows(t), NH);
  CHECK_EQ_I64(sm_table_ncols(t), 6);
  int jf64, jf32, ji32, ji64, jfix, jvl;
  CHECK_OK(ctx, sm_table_find(t, "f64", &jf64));
  CHECK_OK(ctx, sm_table_find(t, "f32", &jf32));
  CHECK_OK(ctx, sm_table_find(t, "i32", &ji32));
  CHECK_OK(ctx, sm_table_find(t, "i64", &ji64));
  CHECK_OK(ctx, sm_table_find(t, "fixed", &jfix));
  CHECK_OK(ctx, sm_table_find(t, "vlen", &jvl));
  CHECK(sm_table_col_is_str(t, jfix) && sm_table_col_is_str(t, jvl) && !sm_table_col_is_str(t, ji64));
  sm_range r = sm_table_range(t);
  CHECK_EQ_I64(r.first, sm_table_block(NH, ctx->rank, ctx->size).first);
  for (int64_t i = 0; i < r.count; i++) {
    int64_t g = r.first + i;
    char want[32];
    CHECK(sm_table_num(t, jf64)[i] == fval(g, 0));
    CHECK(sm_table_num(t, jf32)[i] == (double)g * 0.5);
    CHECK(sm_table_num(t, ji32)[i] == (double)-g);
    if (g % 4 == 3)
      CHECK(isnan(sm_table_num(t, ji64)[i]));
    else
      CHECK(sm_table_num(t, ji64)[i] == (double)g * 1e12);
    snprintf(want, sizeof want, "s%d", (int)(g % 5));
    CHECK_STR(sm_table_str(t, jfix)[i], want);
    snprintf(want, sizeof want, "ev-%d", (int)(g * 7));
    CHECK_STR(sm_table_str(t, jvl)[i], want);
  }
  sm_table_close(&t);
  snprintf(spec, sizeof spec, "%s:/ragged", path);
  CHECK_STATUS(ctx, sm_table_open(ctx, spec, &t), SM_ERR_DATA);
  CHECK(strstr(ctx->err_msg, "/ragged/b has 22 rows") != NULL);
  snprintf(spec, sizeof spec, "%s:/cube", path);
  CHECK_STATUS(ctx, sm_table_open(ctx, spec, &t), SM_ERR_FORMAT);
  snprintf(spec, sizeof spec, "%s:/nothing", path);
  CHECK_STATUS(ctx, sm_table_open(ctx, spec, &t), SM_ERR_FORMAT);
  CHECK(strstr(ctx->err_msg, "no object /nothing") != NULL);
}

static void test_h5_2d(sm_ctx *ctx) {
  char path[512], spec[600];
  path_in(path, sizeof path, "t.h5");
  static const char *names[2][3] = {{"c1", "c2", "c3"}, {"x", "y", "z"}};
  for (int named = 0; named < 2; named++) {
    snprintf(spec, sizeof spec, "%s:/%s", path, named ? "named" : "plain");
    sm_table *t = NULL;
    CHECK_OK(ctx, sm_table_open(ctx, spec, &t));
    if (!t) continue;
    CHECK_EQ_I64(sm_table_nrows(t), NH);
    CHECK_EQ_I64(sm_table_ncols(t), 3);
    sm_range r = sm_table_range(t);
    for (int j = 0; j < 3; j++) {
      CHECK_STR(sm_table_col_name(t, j), names[named][j]);
      for (int64_t i = 0; i < r.count; i++)
        CHECK(sm_table_num(t, j)[i] == fval(r.first + i, j));
    }
    sm_table_close(&t);
  }
  /* wide enough for the transpose's 4 x 4 blocks, with rows and a column left over */
  snprintf(spec, sizeof spec, "%s:/wide", path);
  sm_table *t = NULL;
  CHECK_OK(ctx, sm_table_open(ctx, spec, &t));
  if (!t) return;
  CHECK_EQ_I64(sm_table_nrows(t), NW);
  CHECK_EQ_I64(sm_table_ncols(t), CW);
  sm_range r = sm_table_range(t);
  int64_t bad = 0;
  for (int j = 0; j < CW; j++)
    for (int64_t i = 0; i < r.count; i++)
      bad += sm_table_num(t, j)[i] != fval(r.first + i, j);
  CHECK_EQ_I64(bad, 0);
  sm_table_close(&t);
}

static void test_catalog(sm_ctx *ctx) {
  char path[512];
  path_in(path, sizeof path, "tcat.h5");
  const int64_t n = 19;
  sm_catalog_info in = {.n_traces = n,
                        .n_components = 1,
                        .n_samples = 8,
                        .sampling_rate_hz = 100,
                        .component_order = "Z",
                        .chunk_traces = 4};
  sm_catalog *cat = NULL;
  CHECK_OK(ctx, sm_catalog_create(ctx, path, &in, &cat));
  if (!cat) return;
  sm_range w = sm_catalog_shard(cat, ctx->rank, ctx->size);
  double *mag = calloc((size_t)w.count + 1, sizeof *mag);
  int64_t *id = calloc((size_t)w.count + 1, sizeof *id);
  char(*store)[16] = calloc((size_t)w.count + 1, sizeof *store);
  const char **names = calloc((size_t)w.count + 1, sizeof *names);
  for (int64_t i = 0; i < w.count; i++) {
    int64_t g = w.first + i;
    mag[i] = g % 6 == 0 ? NAN : 0.5 * (double)g;
    id[i] = g % 7 == 2 ? INT64_MIN : 100 + g;
    snprintf(store[i], sizeof store[i], "tr%lld", (long long)g);
    names[i] = store[i];
  }
  CHECK_OK(ctx, sm_catalog_column_create(cat, "source_magnitude", SM_COL_F64, 0));
  CHECK_OK(ctx, sm_catalog_write_f64(cat, "source_magnitude", w.first, w.count, mag));
  CHECK_OK(ctx, sm_catalog_column_create(cat, "event_number", SM_COL_I64, 0));
  CHECK_OK(ctx, sm_catalog_write_i64(cat, "event_number", w.first, w.count, id));
  CHECK_OK(ctx, sm_catalog_put_strings(cat, "trace_name", w.first, w.count, names));
  CHECK_OK(ctx, sm_catalog_commit(&cat));
  free(mag), free(id), free(store), free(names);
  sm_table *t = NULL;
  CHECK_OK(ctx, sm_table_open(ctx, path, &t));
  if (!t) return;
  CHECK_EQ_I64(sm_table_nrows(t), n);
  CHECK_EQ_I64(sm_table_ncols(t), 3);
  int jm, je, jt;
  CHECK_OK(ctx, sm_table_find(t, "source_magnitude", &jm));
  CHECK_OK(ctx, sm_table_find(t, "event_number", &je));
  CHECK_OK(ctx, sm_table_find(t, "trace_name", &jt));
  sm_range r = sm_table_range(t);
  for (int64_t i = 0; i < r.count; i++) {
    int64_t g = r.first + i;
    char want[16];
    if (g % 6 == 0)
      CHECK(isnan(sm_table_num(t, jm)[i]));
    else
      CHECK(sm_table_num(t, jm)[i] == 0.5 * (double)g);
    if (g % 7 == 2)
      CHECK(isnan(sm_table_num(t, je)[i]));
    else
      CHECK(sm_table_num(t, je)[i] == (double)(100 + g));
    snprintf(want, sizeof want, "tr%lld", (long long)g);
    CHECK_STR(sm_table_str(t, jt)[i], want);
  }
  CHECK_STATUS(ctx, sm_table_find(t, "source_magnitud", &je), SM_ERR_ARG);
  CHECK(strstr(ctx->err_msg, "did you mean \"source_magnitude\"") != NULL);
  sm_table_close(&t);
}

/* A CSV with more ranks than rows: empty shards still open and close collectively. */
static void test_tiny(sm_ctx *ctx) {
  char path[512];
  path_in(path, sizeof path, "tiny.csv");
  write_text(ctx, path, "v\n42\n");
  sm_table *t = NULL;
  CHECK_OK(ctx, sm_table_open(ctx, path, &t));
  if (!t) return;
  sm_range r = sm_table_range(t);
  CHECK_EQ_I64(r.count, ctx->rank == 0 ? 1 : 0);
  if (r.count) CHECK(sm_table_num(t, 0)[0] == 42);
  sm_table_close(&t);
}

int main(int argc, char **argv) {
  return SM_TEST_MAIN(argc, argv, test_blocks, test_csv, test_csv_errors, test_h5_group, test_h5_2d, test_catalog,
                      test_tiny);
}
