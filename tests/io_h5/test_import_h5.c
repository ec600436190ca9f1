/* HDF5-layout import/export tests: the CSV reader (quoting, typing, errors with file:line:column),
 * SeisBench / STEAD / EQTransformer / INSTANCE imports checked sample by sample against the source
 * read directly with HDF5 (component reordering included), the SeisBench export round trip
 * (SeisBench -> catalog -> SeisBench -> catalog, exact), and refused inputs (truncated CSV,
 * missing dataset, NaN sample, mixed rates) leaving no output behind. Every check compares with
 * the source, so the same catalog results at 1, 2, 3 and 4 ranks. Data: $SISMA_DATA. */
#include <dirent.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "io/csv.h"
#include "io/internal.h"

static const sm_key keys[] = {
    {"format", SM_KEY_STR, "seisbench", 0, -1, NULL, ""},
    {"input", SM_KEY_PATH, "", 0, -1, NULL, ""},
    {"metadata", SM_KEY_PATH, "", 0, -1, NULL, ""},
    {"output", SM_KEY_PATH, "", 0, -1, NULL, ""},
    {"catalog", SM_KEY_PATH, "", 0, -1, NULL, ""},
    {"sampling_rate_hz", SM_KEY_FLOAT, "0", 0, -1, NULL, ""},
    {"components", SM_KEY_STR, "ZNE", 0, -1, NULL, ""},
    {"compression", SM_KEY_INT, "0", 0, 9, NULL, ""},
    {"bucket_traces", SM_KEY_INT, "0", 0, 1e9, NULL, ""},
    SM_KEYS_END,
};

static char data_dir[1024], tmp_dir[1024];

static void path_of(char *out, size_t n, const char *dir, const char *rel) { snprintf(out, n, "%s/%s", dir, rel); }

/* Run the importer with key=value pairs (NULL-terminated). */
static sm_status run_stage(sm_ctx *ctx, int export_, ...) {
  sm_config cfg;
  sm_config_init(&cfg, export_ ? "export" : "import", keys);
  va_list ap;
  va_start(ap, export_);
  const char *k;
  while ((k = va_arg(ap, const char *))) sm_config_set(ctx, &cfg, k, va_arg(ap, const char *), "test");
  va_end(ap);
  sm_config_finish(ctx, &cfg);
  sm_status st = export_ ? sm__export_seisbench(ctx, &cfg) : sm__import_h5layout(ctx, &cfg);
  sm_config_fini(&cfg);
  return st;
}

/* Read a 2-D or 3-D hyperslab of a source dataset as float32 (serial, local). */
static int read_src(const char *file, const char *dset, int nd, const hsize_t *start, const hsize_t *cnt, float *out) {
  hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = H5Dopen2(f, dset, H5P_DEFAULT), fs = H5Dget_space(d);
  hsize_t m = 1;
  for (int i = 0; i < nd; i++) m *= cnt[i];
  hid_t ms = H5Screate_simple(1, &m, NULL);
  H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL);
  herr_t rc = H5Dread(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, out);
  H5Sclose(ms), H5Sclose(fs), H5Dclose(d), H5Fclose(f);
  return rc < 0 ? -1 : 0;
}

static void str_col(sm_ctx *ctx, sm_catalog *cat, const char *name, int64_t i, char *out, size_t n) {
  int w = 1;
  out[0] = '\0';
  CHECK_OK(ctx, sm_catalog_column_info(cat, name, NULL, &w));
  char *b = calloc(1, (size_t)w + 1);
  CHECK_OK(ctx, sm_catalog_read_str(cat, name, i, 1, b));
  sm_catalog_str_at(b, w, 0, out, n);
  free(b);
}

static double f64_col(sm_ctx *ctx, sm_catalog *cat, const char *name, int64_t i) {
  double v = NAN;
  CHECK_OK(ctx, sm_catalog_read_f64(cat, name, i, 1, &v));
  return v;
}

/* No file named `prefix`* (final or .partial) in the scratch directory. */
static int leftovers(const char *needle) {
  DIR *d = opendir(tmp_dir);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d)))
    if (strstr(e->d_name, needle)) n++;
  if (d) closedir(d);
  return n;
}

/* ---- CSV reader ---- */

static void test_csv_quoting(sm_ctx *ctx) {
  const char *text = "\xEF\xBB\xBFname,x,note\r\n"
                     "a,1.5,plain\r\n"
                     "\"b,c\",,\"say \"\"hi\"\"\"\n"
                     "\n"
                     "d,-2e3,\"two\nlines\"\n"
                     "e,None,\n";
  sm_csv *c = NULL;
  CHECK_OK(ctx, sm__csv_create_text(ctx, "mem.csv", text, strlen(text), &c));
  if (!c) return;
  CHECK_EQ_I64(sm__csv_rows(c), 4);
  CHECK_EQ_I64(sm__csv_cols(c), 3);
  CHECK_STR(sm__csv_col_name(c, 0), "name");
  CHECK_STR(sm__csv_str(c, 1, 0), "b,c");
  CHECK_STR(sm__csv_str(c, 1, 2), "say \"hi\"");
  CHECK_STR(sm__csv_str(c, 2, 2), "two\nlines");
  CHECK_EQ_I64(sm__csv_line(c, 0), 2);
  CHECK_EQ_I64(sm__csv_line(c, 2), 5);
  CHECK_EQ_I64(sm__csv_line(c, 3), 7);
  CHECK(sm__csv_missing(c, 1, 1));
  CHECK(sm__csv_is_numeric(c, 1));
  CHECK(!sm__csv_is_numeric(c, 0));
  CHECK_NEAR(sm__csv_f64(c, 2, 1), -2000.0, 0);
  CHECK(isnan(sm__csv_f64(c, 3, 1)));
  CHECK_EQ_I64(sm__csv_col_find(c, "note"), 2);
  CHECK_EQ_I64(sm__csv_col_find(c, "nope"), -1);
  sm__csv_destroy(&c);
  CHECK(c == NULL);

  const char *unterminated = "a,b\n1,2\n3,\"open\n4,5\n";
  CHECK_STATUS(ctx, sm__csv_create_text(ctx, "u.csv", unterminated, strlen(unterminated), &c), SM_ERR_FORMAT);
  CHECK(strstr(ctx->err_msg, "u.csv:3: column 2 (b)") != NULL);
  const char *extra = "a,b\n1,2,3\n";
  CHECK_STATUS(ctx, sm__csv_create_text(ctx, "x.csv", extra, strlen(extra), &c), SM_ERR_FORMAT);
  CHECK(strstr(ctx->err_msg, "x.csv:2: column 3") != NULL);
  const char *stray = "a,b\n1,x\"y\n";
  CHECK_STATUS(ctx, sm__csv_create_text(ctx, "s.csv", stray, strlen(stray), &c), SM_ERR_FORMAT);
  CHECK(strstr(ctx->err_msg, "s.csv:2: column 2 (b)") != NULL);
  CHECK_STATUS(ctx, sm__csv_create(ctx, "/nonexistent/file.csv", &c), SM_ERR_IO);
  sm_ctx_clear_error(ctx);
}

/* The IPOC catalogue's last row is cut off after 6 of 9 fields: line 18237 (header = line 1,
 * 18236 rows, the last incomplete), column 7 (std_MA) missing. */
static void test_csv_truncated(sm_ctx *ctx) {
  char p[2048];
  path_of(p, sizeof p, data_dir, "seisbench/ipoc_catalog/raw_catalog.csv");
  sm_csv *c = NULL;
  CHECK_STATUS(ctx, sm__csv_create(ctx, p, &c), SM_ERR_FORMAT);
  CHECK(strstr(ctx->err_msg, "raw_catalog.csv:18237: column 7 (std_MA) is missing") != NULL);
  if (ctx->rank == 0) printf("  truncated CSV: %s\n", ctx->err_msg);
  sm_ctx_clear_error(ctx);
}

/* ---- SeisBench ---- */

static void check_seisbench_catalog(sm_ctx *ctx, const char *catpath, const char *order) {
  char src[2048];
  path_of(src, sizeof src, data_dir, "seisbench/dummydataset/waveforms.hdf5");
  sm_catalog *cat = NULL;
  CHECK_OK(ctx, sm_catalog_open(ctx, catpath, &cat));
  if (!cat) return;
  const sm_catalog_info *in = sm_catalog_get_info(cat);
  CHECK_EQ_I64(in->n_traces, 100);
  CHECK_EQ_I64(in->n_components, 3);
  CHECK_EQ_I64(in->n_samples, 1200);
  CHECK_NEAR(in->sampling_rate_hz, 20.0, 0);
  CHECK_STR(in->component_order, order);
  /* traces 0, 59 (end of bucket0), 60 (bucket1), 99 (last of bucket2), read by every rank */
  static const int64_t pick[4] = {0, 59, 60, 99}, bucket[4] = {0, 0, 1, 2}, row[4] = {0, 59, 0, 29};
  float *got = malloc(3 * 1200 * sizeof *got), *want = malloc(3 * 1200 * sizeof *want);
  for (int t = 0; t < 4; t++) {
    CHECK_OK(ctx, sm_catalog_read_traces(cat, pick[t], 1, got));
    char dset[64];
    snprintf(dset, sizeof dset, "data/bucket%lld", (long long)bucket[t]);
    hsize_t start[3] = {(hsize_t)row[t], 0, 0}, cnt[3] = {1, 3, 1200};
    CHECK(read_src(src, dset, 3, start, cnt, want) == 0);
    int64_t bad = 0;
    for (int k = 0; k < 3; k++) {
      int s = (int)(strchr("ZNE", order[k]) - "ZNE"); /* source order ZNE */
      for (int w = 0; w < 1200; w++) bad += got[k * 1200 + w] != want[s * 1200 + w];
    }
    CHECK_EQ_I64(bad, 0);
  }
  free(got);
  free(want);
  char s[128];
  str_col(ctx, cat, "trace_name", 61, s, sizeof s);
  CHECK_STR(s, "bucket1$1,:3,:1200");
  str_col(ctx, cat, "station_code", 0, s, sizeof s);
  CHECK_STR(s, "PB01");
  str_col(ctx, cat, "trace_start_time", 0, s, sizeof s);
  CHECK_STR(s, "2007-01-01T01:42:45.080000Z");
  str_col(ctx, cat, "trace_name_original", 0, s, sizeof s);
  CHECK_STR(s, "2007_01_01 01_42_45_08");
  str_col(ctx, cat, "split", 99, s, sizeof s);
  CHECK_STR(s, "test");
  CHECK_NEAR(f64_col(ctx, cat, "source_magnitude", 0), 1.353, 0);
  CHECK_NEAR(f64_col(ctx, cat, "station_elevation_m", 5), 900.0, 0);
  CHECK_NEAR(f64_col(ctx, cat, "trace_npts", 42), 1200.0, 0);
  CHECK_NEAR(f64_col(ctx, cat, "trace_sampling_rate_hz", 42), 20.0, 0);
  CHECK_EQ_I64(sm_catalog_column_count(cat), 22); /* 20 CSV columns + trace_npts + trace_sampling_rate_hz */
  sm_catalog_close(&cat);
}

static void test_seisbench(sm_ctx *ctx) {
  char in[2048], meta[2048], out[2048];
  path_of(in, sizeof in, data_dir, "seisbench/dummydataset/waveforms.hdf5");
  path_of(meta, sizeof meta, data_dir, "seisbench/dummydataset/metadata.csv");
  path_of(out, sizeof out, tmp_dir, "sb.h5");
  CHECK_OK(ctx, run_stage(ctx, 0, "format", "seisbench", "input", in, "metadata", meta, "output", out, NULL));
  check_seisbench_catalog(ctx, out, "ZNE");
  path_of(out, sizeof out, tmp_dir, "sb_enz.h5");
  CHECK_OK(ctx, run_stage(ctx, 0, "format", "seisbench", "input", in, "metadata", meta, "output", out, "components",
                          "ENZ", "compression", "4", NULL));
  check_seisbench_catalog(ctx, out, "ENZ");
}

/* ---- STEAD and EQTransformer ---- */

static void test_stead(sm_ctx *ctx) {
  char in[2048], meta[2048], out[2048];
  path_of(in, sizeof in, data_dir, "eqtransformer/stead_sample_2020/waveforms.hdf5");
  path_of(meta, sizeof meta, data_dir, "eqtransformer/stead_sample_2020/metadata.csv");
  path_of(out, sizeof out, tmp_dir, "stead.h5");
  CHECK_OK(ctx, run_stage(ctx, 0, "format", "stead", "input", in, "metadata", meta, "output", out, NULL));
  sm_catalog *cat = NULL;
  CHECK_OK(ctx, sm_catalog_open(ctx, out, &cat));
  if (!cat) return;
  const sm_catalog_info *info = sm_catalog_get_info(cat);
  CHECK_EQ_I64(info->n_traces, 50);
  CHECK_EQ_I64(info->n_samples, 6000);
  CHECK_NEAR(info->sampling_rate_hz, 100.0, 0);
  CHECK_STR(info->component_order, "ZNE");
  float *got = malloc(3 * 6000 * sizeof *got), *want = malloc(3 * 6000 * sizeof *want);
  for (int64_t t = 0; t < 50; t += 49) {
    char name[128], dset[256];
    str_col(ctx, cat, "trace_name", t, name, sizeof name);
    snprintf(dset, sizeof dset, "earthquake/local/%s", name);
    CHECK_OK(ctx, sm_catalog_read_traces(cat, t, 1, got));
    hsize_t start[2] = {0, 0}, cnt[2] = {6000, 3};
    CHECK(read_src(in, dset, 2, start, cnt, want) == 0); /* [6000][E N Z] */
    int64_t bad = 0;
    for (int w = 0; w < 6000; w++)
      bad += got[0 * 6000 + w] != want[w * 3 + 2] || got[1 * 6000 + w] != want[w * 3 + 1] ||
             got[2 * 6000 + w] != want[w * 3 + 0];
    CHECK_EQ_I64(bad, 0);
  }
  free(got);
  free(want);
  char s[128];
  str_col(ctx, cat, "station_code", 0, s, sizeof s);
  CHECK_STR(s, "109C");
  str_col(ctx, cat, "station_network_code", 0, s, sizeof s);
  CHECK_STR(s, "TA");
  str_col(ctx, cat, "trace_name", 0, s, sizeof s);
  CHECK_STR(s, "109C.TA_20060723155859_EV");
  str_col(ctx, cat, "trace_start_time", 0, s, sizeof s);
  CHECK_STR(s, "2006-07-23T15:59:00.960000Z");
  CHECK_NEAR(f64_col(ctx, cat, "trace_p_arrival_sample", 0), 700.0, 0);
  CHECK_NEAR(f64_col(ctx, cat, "trace_s_arrival_sample", 0), 1894.0, 0);
  CHECK_NEAR(f64_col(ctx, cat, "path_ep_distance_km", 0), 102.09, 0);
  CHECK_NEAR(f64_col(ctx, cat, "station_latitude_deg", 0), 32.8889, 0);
  CHECK_NEAR(f64_col(ctx, cat, "source_magnitude", 0), 3.6, 0);
  CHECK_NEAR(f64_col(ctx, cat, "trace_E_snr_db", 0), 56.79999924, 0);
  CHECK_NEAR(f64_col(ctx, cat, "trace_Z_snr_db", 0), 47.40000153, 0);
  CHECK_NEAR(f64_col(ctx, cat, "trace_snr_db", 0), (56.79999924 + 55.40000153 + 47.40000153) / 3, 1e-15);
  CHECK(isnan(f64_col(ctx, cat, "source_depth_uncertainty_km", 0))); /* "None" */
  CHECK(!sm_catalog_has_column(cat, "receiver_code"));
  sm_catalog_close(&cat);

  /* EQTransformer's pre-processor output: data/<trace_name>, a CSV with trace_name only. */
  path_of(in, sizeof in, data_dir, "eqtransformer/eqt_preprocessed_WHAR/guy_WHAR_aug_30s.hdf5");
  path_of(meta, sizeof meta, data_dir, "eqtransformer/eqt_preprocessed_WHAR/guy_WHAR_aug_30s.csv");
  path_of(out, sizeof out, tmp_dir, "whar.h5");
  CHECK_OK(ctx, run_stage(ctx, 0, "format", "stead", "input", in, "metadata", meta, "output", out, NULL));
  CHECK_OK(ctx, sm_catalog_open(ctx, out, &cat));
  if (!cat) return;
  CHECK_EQ_I64(sm_catalog_get_info(cat)->n_traces, 10);
  CHECK_EQ_I64(sm_catalog_get_info(cat)->n_samples, 6000);
  float *a = malloc(3 * 6000 * sizeof *a), *b = malloc(3 * 6000 * sizeof *b);
  char name[128], dset[256];
  str_col(ctx, cat, "trace_name", 9, name, sizeof name);
  snprintf(dset, sizeof dset, "data/%s", name);
  CHECK_OK(ctx, sm_catalog_read_traces(cat, 9, 1, a));
  hsize_t start[2] = {0, 0}, cnt[2] = {6000, 3};
  CHECK(read_src(in, dset, 2, start, cnt, b) == 0);
  int64_t bad = 0;
  for (int w = 0; w < 6000; w++) bad += a[w] != b[w * 3 + 2] || a[12000 + w] != b[w * 3];
  CHECK_EQ_I64(bad, 0);
  free(a);
  free(b);
  sm_catalog_close(&cat);
}

/* ---- SeisBench export round trip ---- */

static void test_roundtrip(sm_ctx *ctx) {
  char in[2048], meta[2048], c1[2048], dir[2048], wf[2048], md[2048], c2[2048];
  path_of(in, sizeof in, data_dir, "seisbench/dummydataset/waveforms.hdf5");
  path_of(meta, sizeof meta, data_dir, "seisbench/dummydataset/metadata.csv");
  path_of(c1, sizeof c1, tmp_dir, "rt1.h5");
  path_of(dir, sizeof dir, tmp_dir, "rt_sb");
  path_of(wf, sizeof wf, dir, "waveforms.hdf5");
  path_of(md, sizeof md, dir, "metadata.csv");
  path_of(c2, sizeof c2, tmp_dir, "rt2.h5");
  if (ctx->rank == 0) mkdir(dir, 0755);
  MPI_Barrier(ctx->comm);
  CHECK_OK(ctx, run_stage(ctx, 0, "format", "seisbench", "input", in, "metadata", meta, "output", c1, NULL));
  CHECK_OK(ctx, run_stage(ctx, 1, "catalog", c1, "output", dir, NULL));
  CHECK_OK(ctx, run_stage(ctx, 0, "format", "seisbench", "input", wf, "metadata", md, "output", c2, NULL));
  sm_catalog *a = NULL, *b = NULL;
  CHECK_OK(ctx, sm_catalog_open(ctx, c1, &a));
  CHECK_OK(ctx, sm_catalog_open(ctx, c2, &b));
  if (!a || !b) return;
  CHECK_EQ_I64(sm_catalog_get_info(b)->n_traces, 100);
  CHECK_STR(sm_catalog_get_info(b)->component_order, "ZNE");
  CHECK_NEAR(sm_catalog_get_info(b)->sampling_rate_hz, 20.0, 0);
  float *x = malloc(100 * 3600 * sizeof *x), *y = malloc(100 * 3600 * sizeof *y);
  CHECK_OK(ctx, sm_catalog_read_traces(a, 0, 100, x));
  CHECK_OK(ctx, sm_catalog_read_traces(b, 0, 100, y));
  CHECK(memcmp(x, y, 100 * 3600 * sizeof *x) == 0);
  free(x);
  free(y);
  static const char *strs[] = {"trace_name_original", "trace_start_time", "station_code", "split",
                               "source_magnitude_type"};
  for (int k = 0; k < 5; k++) {
    char s1[128], s2[128];
    str_col(ctx, a, strs[k], 77, s1, sizeof s1);
    str_col(ctx, b, strs[k], 77, s2, sizeof s2);
    CHECK_STR(s1, s2);
  }
  static const char *nums[] = {"source_magnitude", "source_latitude_deg", "source_depth_km", "trace_npts"};
  for (int k = 0; k < 4; k++) CHECK_NEAR(f64_col(ctx, a, nums[k], 33), f64_col(ctx, b, nums[k], 33), 0);
  char s[128];
  str_col(ctx, b, "trace_name", 99, s, sizeof s);
  CHECK_STR(s, "bucket0$99,:3,:1200"); /* 100 traces fit one bucket */
  CHECK_EQ_I64(sm_catalog_column_count(a), sm_catalog_column_count(b));
  sm_catalog_close(&a);
  sm_catalog_close(&b);
  CHECK_EQ_I64(leftovers(".partial"), 0);

  /* STEAD -> catalog -> SeisBench in buckets of 7 (50 traces: 8 buckets, the last of 1) -> catalog */
  char sin[2048], smeta[2048], s1[2048], s2[2048];
  path_of(sin, sizeof sin, data_dir, "eqtransformer/stead_sample_2020/waveforms.hdf5");
  path_of(smeta, sizeof smeta, data_dir, "eqtransformer/stead_sample_2020/metadata.csv");
  path_of(s1, sizeof s1, tmp_dir, "rts1.h5");
  path_of(wf, sizeof wf, tmp_dir, "stead_sb.hdf5");
  path_of(md, sizeof md, tmp_dir, "stead_sb.csv");
  path_of(s2, sizeof s2, tmp_dir, "rts2.h5");
  CHECK_OK(ctx, run_stage(ctx, 0, "format", "stead", "input", sin, "metadata", smeta, "output", s1, NULL));
  CHECK_OK(ctx, run_stage(ctx, 1, "catalog", s1, "output", wf, "bucket_traces", "7", NULL));
  CHECK_OK(ctx, run_stage(ctx, 0, "format", "seisbench", "input", wf, "metadata", md, "output", s2, NULL));
  CHECK_OK(ctx, sm_catalog_open(ctx, s1, &a));
  CHECK_OK(ctx, sm_catalog_open(ctx, s2, &b));
  if (!a || !b) return;
  x = malloc(50 * 18000 * sizeof *x), y = malloc(50 * 18000 * sizeof *y);
  CHECK_OK(ctx, sm_catalog_read_traces(a, 0, 50, x));
  CHECK_OK(ctx, sm_catalog_read_traces(b, 0, 50, y));
  CHECK(memcmp(x, y, 50 * 18000 * sizeof *x) == 0);
  free(x);
  free(y);
  str_col(ctx, b, "trace_name", 49, s, sizeof s);
  CHECK_STR(s, "bucket7$0,:3,:6000");
  str_col(ctx, b, "trace_name_original", 49, s, sizeof s);
  char s3[128];
  str_col(ctx, a, "trace_name", 49, s3, sizeof s3);
  CHECK_STR(s, s3);
  CHECK_NEAR(f64_col(ctx, a, "trace_snr_db", 3), f64_col(ctx, b, "trace_snr_db", 3), 0);
  sm_catalog_close(&a);
  sm_catalog_close(&b);
}

/* ---- refused inputs ---- */

static void write_text(sm_ctx *ctx, const char *path, const char *text) {
  if (ctx->rank == 0) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
  }
  MPI_Barrier(ctx->comm);
}

/* A tiny INSTANCE file: data/<name> [3][W] with E, N, Z = 1000*trace + 100*component + sample. */
static void make_instance(sm_ctx *ctx, const char *path, int nan_trace) {
  if (ctx->rank == 0) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t g = H5Gcreate2(f, "data", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    for (int t = 0; t < 5; t++) {
      hsize_t dims[2] = {3, (hsize_t)(t == 2 ? 30 : 50)}; /* trace 2 is short: padded */
      float v[150];
      for (int c = 0; c < 3; c++)
        for (int w = 0; w < (int)dims[1]; w++) v[c * dims[1] + w] = (float)(1000 * t + 100 * c + w);
      if (t == nan_trace) v[7] = NAN;
      char name[32];
      snprintf(name, sizeof name, "tr%d", t);
      hid_t s = H5Screate_simple(2, dims, NULL);
      hid_t d = H5Dcreate2(g, name, H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
      H5Dclose(d), H5Sclose(s);
    }
    H5Gclose(g), H5Fclose(f);
  }
  MPI_Barrier(ctx->comm);
}

static void test_instance_and_refusals(sm_ctx *ctx) {
  char h5[2048], csv[2048], out[2048], bad[2048];
  path_of(h5, sizeof h5, tmp_dir, "inst.hdf5");
  path_of(csv, sizeof csv, tmp_dir, "inst.csv");
  path_of(out, sizeof out, tmp_dir, "inst_cat.h5");
  make_instance(ctx, h5, -1);
  write_text(ctx, csv,
             "trace_name,station_code,trace_sampling_rate_hz,trace_P_arrival_sample\n"
             "tr0,0042,50,10\ntr1,0042,50,\ntr2,\"A,B\",50,12\ntr3,X,50,13\ntr4,X,50,14\n");
  CHECK_OK(ctx, run_stage(ctx, 0, "format", "instance", "input", h5, "metadata", csv, "output", out, NULL));
  sm_catalog *cat = NULL;
  CHECK_OK(ctx, sm_catalog_open(ctx, out, &cat));
  if (cat) {
    CHECK_EQ_I64(sm_catalog_get_info(cat)->n_samples, 50);
    CHECK_NEAR(sm_catalog_get_info(cat)->sampling_rate_hz, 50.0, 0);
    float v[5 * 150];
    CHECK_OK(ctx, sm_catalog_read_traces(cat, 0, 5, v));
    CHECK_NEAR(v[2 * 150 + 0 * 50 + 5], 1000 * 2 + 100 * 2 + 5, 0); /* Z first: source component 2 */
    CHECK_NEAR(v[2 * 150 + 2 * 50 + 29], 1000 * 2 + 0 + 29, 0);     /* E last */
    CHECK_NEAR(v[2 * 150 + 2 * 50 + 30], 0, 0);                     /* zero padding */
    CHECK_NEAR(v[4 * 150 + 1 * 50 + 49], 4000 + 100 + 49, 0);
    CHECK_NEAR(f64_col(ctx, cat, "trace_npts", 2), 30, 0);
    CHECK_NEAR(f64_col(ctx, cat, "trace_npts", 3), 50, 0);
    char s[64];
    str_col(ctx, cat, "station_code", 0, s, sizeof s);
    CHECK_STR(s, "0042"); /* _code columns stay strings */
    str_col(ctx, cat, "station_code", 2, s, sizeof s);
    CHECK_STR(s, "A,B");
    CHECK(isnan(f64_col(ctx, cat, "trace_P_arrival_sample", 1)));
    sm_catalog_close(&cat);
  }

  /* resampling is refused with the rates named */
  path_of(bad, sizeof bad, tmp_dir, "refused.h5");
  CHECK_STATUS(ctx, run_stage(ctx, 0, "format", "instance", "input", h5, "metadata", csv, "output", bad,
                              "sampling_rate_hz", "100", NULL),
               SM_ERR_UNSUPPORTED);
  CHECK(strstr(ctx->err_msg, "100") && strstr(ctx->err_msg, "50 Hz"));
  /* mixed rates */
  write_text(ctx, csv, "trace_name,trace_sampling_rate_hz\ntr0,50\ntr1,50\ntr2,40\n");
  CHECK_STATUS(ctx, run_stage(ctx, 0, "format", "instance", "input", h5, "metadata", csv, "output", bad, NULL),
               SM_ERR_UNSUPPORTED);
  CHECK(strstr(ctx->err_msg, "inst.csv:4: trace tr2: mixed sampling rates (50 Hz, 40 Hz") != NULL);
  /* a CSV row without a dataset */
  write_text(ctx, csv, "trace_name\ntr0\ntr1\ntr2\ntr3\nghost\ntr4\n");
  CHECK_STATUS(ctx, run_stage(ctx, 0, "format", "instance", "input", h5, "metadata", csv, "output", bad, NULL),
               SM_ERR_FORMAT);
  CHECK(strstr(ctx->err_msg, "no dataset for trace ghost (") && strstr(ctx->err_msg, "inst.csv line 6"));
  /* a NaN sample, found on whichever rank reads trace 3 */
  path_of(h5, sizeof h5, tmp_dir, "inst_nan.hdf5");
  make_instance(ctx, h5, 3);
  write_text(ctx, csv, "trace_name\ntr0\ntr1\ntr2\ntr3\ntr4\n");
  CHECK_STATUS(ctx, run_stage(ctx, 0, "format", "instance", "input", h5, "metadata", csv, "output", bad, NULL),
               SM_ERR_DATA);
  CHECK(strstr(ctx->err_msg, "trace tr3 (") && strstr(ctx->err_msg, "NaN sample at component E, sample 7"));
  /* the truncated IPOC catalogue as metadata */
  char in[2048], ipoc[2048];
  path_of(in, sizeof in, data_dir, "seisbench/dummydataset/waveforms.hdf5");
  path_of(ipoc, sizeof ipoc, data_dir, "seisbench/ipoc_catalog/raw_catalog.csv");
  CHECK_STATUS(ctx, run_stage(ctx, 0, "format", "seisbench", "input", in, "metadata", ipoc, "output", bad, NULL),
               SM_ERR_FORMAT);
  CHECK(strstr(ctx->err_msg, "raw_catalog.csv:18237") != NULL);
  /* a missing input file */
  CHECK_STATUS(ctx, run_stage(ctx, 0, "format", "stead", "input", "/nonexistent.hdf5", "metadata", csv, "output",
                              bad, NULL),
               SM_ERR_IO);
  MPI_Barrier(ctx->comm);
  CHECK_EQ_I64(leftovers("refused"), 0); /* neither the catalog nor its .partial file */
  sm_ctx_clear_error(ctx);
}

static void setup_dirs(void) {
  const char *d = getenv("SISMA_DATA");
  snprintf(data_dir, sizeof data_dir, "%s", d && *d ? d : "../shared/data");
  snprintf(tmp_dir, sizeof tmp_dir, "%s", sm_test_dir());
}

static void test_setup(sm_ctx *ctx) {
  setup_dirs();
  char p[2048];
  path_of(p, sizeof p, data_dir, "seisbench/dummydataset/metadata.csv");
  CHECK(access(p, R_OK) == 0);
  (void)ctx;
}

int main(int argc, char **argv) {
  return SM_TEST_MAIN(argc, argv, test_setup, test_csv_quoting, test_csv_truncated, test_seisbench, test_stead,
                      test_roundtrip, test_instance_and_refusals);
}
