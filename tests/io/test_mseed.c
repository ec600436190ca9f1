/* miniSEED import and export against the shared test data (data/README.md tables): sample counts
 * and values checked against direct libmseed reads, every encoding decoding to the same series,
 * every broken file giving its documented outcome with no output left behind, gap policies,
 * windows CSV picks, resampling, and the miniSEED -> catalog -> miniSEED -> catalog round trip. */
#include <dirent.h>
#include <unistd.h>

#include "harness.h"
#include "io/internal.h"
#include "sisma/signal.h"

static char data_dir[2048];

static const char *dpath(const char *rel) {
  static char buf[4][4096];
  static int k = 0;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", data_dir, rel);
  return buf[k];
}
static const char *tpath(const char *name) {
  static char buf[4][4096];
  static int k = 0;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", sm_test_dir(), name);
  return buf[k];
}

/* Run a stage with key/value pairs (NULL-terminated). */
static sm_status run(sm_ctx *ctx, const char *stage, const char *const *kv) {
  const sm_stage *s = sm_stage_find(stage);
  if (!s) return SM_ERR_INTERNAL;
  sm_config cfg;
  sm_config_init(&cfg, stage, s->keys);
  sm_status st = SM_OK;
  for (int i = 0; st == SM_OK && kv[i]; i += 2) st = sm_config_set(ctx, &cfg, kv[i], kv[i + 1], "test");
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) st = sm_stage_run(ctx, s, &cfg);
  sm_config_fini(&cfg);
  return st;
}

/* Files in the scratch dir whose name contains `part` (temp files of failed runs included). */
static int count_files(const char *dir, const char *part) {
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));) n += strstr(e->d_name, part) != NULL;
  if (d) closedir(d);
  return n;
}

static void remove_file(sm_ctx *ctx, const char *p) {
  MPI_Barrier(ctx->comm);
  if (ctx->rank == 0) unlink(p);
  MPI_Barrier(ctx->comm);
}

/* Read a catalog fully on every rank (each rank reads everything: small catalogs). */
static float *read_all(sm_ctx *ctx, const char *path, sm_catalog_info *info) {
  sm_catalog *cat = NULL;
  CHECK_OK(ctx, sm_catalog_open(ctx, path, &cat));
  if (!cat) return NULL;
  *info = *sm_catalog_get_info(cat);
  float *w = malloc((size_t)(info->n_traces * info->n_components * info->n_samples + 1) * sizeof *w);
  CHECK_OK(ctx, sm_catalog_read_traces(cat, 0, info->n_traces, w));
  sm_catalog_close(&cat);
  return w;
}

static int64_t read_i64_at(sm_ctx *ctx, const char *path, const char *col, int64_t i) {
  sm_catalog *cat = NULL;
  int64_t v = -1;
  CHECK_OK(ctx, sm_catalog_open(ctx, path, &cat));
  if (cat) {
    CHECK_OK(ctx, sm_catalog_read_i64(cat, col, i, 1, &v));
    sm_catalog_close(&cat);
  }
  return v;
}

static void read_str_at(sm_ctx *ctx, const char *path, const char *col, int64_t i, char *out, size_t n) {
  sm_catalog *cat = NULL;
  int w = 0;
  out[0] = '\0';
  CHECK_OK(ctx, sm_catalog_open(ctx, path, &cat));
  if (!cat) return;
  CHECK_OK(ctx, sm_catalog_column_info(cat, col, NULL, &w));
  char *b = calloc(1, (size_t)w + 1);
  CHECK_OK(ctx, sm_catalog_read_str(cat, col, i, 1, b));
  sm_catalog_str_at(b, w, 0, out, n);
  free(b);
  sm_catalog_close(&cat);
}

/* All samples of channel `id` in file, concatenated in record order. */
static int64_t direct_read(sm_ctx *ctx, const char *file, const char *cha, float **x) {
  sm__mseed_recs r = {0};
  char note[2048];
  CHECK_OK(ctx, sm__mseed_read_file(ctx, file, NULL, NULL, 0, &r, note, sizeof note));
  int64_t n = 0;
  for (int64_t i = 0; i < r.n; i++) n += !strcmp(strrchr(r.rec[i].id, '.') + 1, cha) ? r.rec[i].n : 0;
  *x = malloc((size_t)(n + 1) * sizeof **x);
  n = 0;
  for (int64_t i = 0; i < r.n; i++)
    if (!strcmp(strrchr(r.rec[i].id, '.') + 1, cha)) memcpy(*x + n, r.rec[i].x, (size_t)r.rec[i].n * 4), n += r.rec[i].n;
  sm__mseed_recs_free(&r);
  return n;
}

/* IU.COLA: 3 channels LH1/LH2/LHZ, 4200 samples each at 1 Hz; 1/2 map to N/E. */
static void test_cola(sm_ctx *ctx) {
  const char *f = dpath("libmseed/testdata-3channel-signal.mseed2"), *out = tpath("cola.h5");
  const char *kv[] = {"format", "mseed", "input", f, "output", out, "window_s", "4200", NULL};
  CHECK_OK(ctx, run(ctx, "import", kv));
  sm_catalog_info in;
  float *w = read_all(ctx, out, &in);
  if (!w) return;
  CHECK_EQ_I64(in.n_traces, 1);
  CHECK_EQ_I64(in.n_components, 3);
  CHECK_EQ_I64(in.n_samples, 4200);
  CHECK_NEAR(in.sampling_rate_hz, 1.0, 0);
  CHECK_STR(in.component_order, "ZNE");
  const char *ch[3] = {"LHZ", "LH1", "LH2"};
  for (int c = 0; c < 3; c++) {
    float *x = NULL;
    CHECK_EQ_I64(direct_read(ctx, f, ch[c], &x), 4200);
    int diff = 0;
    for (int k = 0; k < 4200; k++) diff += w[c * 4200 + k] != x[k];
    CHECK_EQ_I64(diff, 0);
    free(x);
  }
  char s[64];
  read_str_at(ctx, out, "trace_component_channels", 0, s, sizeof s);
  CHECK_STR(s, "LHZ,LH1,LH2");
  read_str_at(ctx, out, "station_code", 0, s, sizeof s);
  CHECK_STR(s, "COLA");
  read_str_at(ctx, out, "trace_channel", 0, s, sizeof s);
  CHECK_STR(s, "LH");
  free(w);
}

/* The XX.TEST encoding files hold the same 50 values in every encoding and byte order. */
static void test_encodings(sm_ctx *ctx) {
  static const char *enc[] = {"int16_INT16", "int32_INT32", "float32_Float32", "float64_Float64", "int32_Steim1",
                              "int32_Steim2"};
  float ref[50];
  int have_ref = 0;
  for (int e = 0; e < 6; e++)
    for (int bo = 0; bo < 2; bo++) {
      char rel[256];
      snprintf(rel, sizeof rel, "obspy/encoding/%s_%s.mseed", enc[e], bo ? "littleEndian" : "bigEndian");
      const char *out = tpath("enc.h5");
      const char *kv[] = {"format", "mseed", "input", dpath(rel), "output", out, "window_s", "50", "components", "E", NULL};
      CHECK_OK(ctx, run(ctx, "import", kv));
      sm_catalog_info in;
      float *w = read_all(ctx, out, &in);
      if (!w) continue;
      CHECK_EQ_I64(in.n_traces, 1);
      CHECK_EQ_I64(in.n_samples, 50);
      if (!have_ref) memcpy(ref, w, sizeof ref), have_ref = 1;
      int diff = 0;
      for (int k = 0; k < 50; k++) diff += w[k] != ref[k];
      if (diff) fprintf(stderr, "encoding %s differs in %d samples\n", rel, diff);
      CHECK_EQ_I64(diff, 0);
      free(w);
      remove_file(ctx, out);
    }
  /* legacy encodings decode (counts from data/README.md) */
  static const struct { const char *f, *comp; double win; int64_t n; } leg[] = {
      {"obspy/encoding/CDSN_encoding.mseed", "E", 5, 1},  {"obspy/encoding/DWWSSN_encoding.mseed", "Z", 200, 1},
      {"obspy/encoding/GEOSCOPE16_4_encoding.mseed", "Z", 200, 1}, {"obspy/encoding/SRO_encoding.mseed", "ZNE", 2016, 1},
      {"libmseed/testdata-encoding-SRO.mseed2", "E", 1984, 1}, {"libmseed/testdata-encoding-CDSN.mseed2", "E", 100.8, 1}};
  for (int i = 0; i < 6; i++) {
    char win[32];
    snprintf(win, sizeof win, "%g", leg[i].win);
    const char *out = tpath("leg.h5");
    const char *kv[] = {"format", "mseed", "input", dpath(leg[i].f), "output", out, "window_s", win, "components", leg[i].comp, NULL};
    CHECK_OK(ctx, run(ctx, "import", kv));
    sm_catalog_info in;
    float *w = read_all(ctx, out, &in);
    if (w) CHECK_EQ_I64(in.n_traces, leg[i].n);
    free(w);
    remove_file(ctx, out);
  }
}

/* Every broken file: refused (message names the file, no output) or imported with a warning. */
static void test_broken(sm_ctx *ctx) {
  static const struct { const char *f; int refused; const char *why; } cases[] = {
      {"obspy/broken/not.mseed", 1, "not miniSEED"},       {"obspy/broken/not2.mseed", 1, "not miniSEED"},
      {"obspy/broken/not3.mseed", 1, "not miniSEED"},      {"obspy/broken/not4.mseed", 1, "not miniSEED"},
      {"obspy/broken/infinite-loop.mseed", 1, "corrupt"},  {"libmseed/testdata-invalid-blockette-offsets.mseed2", 1, "corrupt"},
      {"libmseed/reference-testdata-steim2.mseed3", 1, "miniSEED 3"}, {"libmseed/testdata-3channel-signal.mseed3", 1, "miniSEED 3"},
      /* libmseed 2.19 decodes these 4 samples as finite values; the codes are empty: no component */
      {"obspy/encoding/nan_float32.mseed", 1, "no station"}, {"obspy/encoding/nan_float64.mseed", 1, "no station"},
      {"obspy/broken/brokenlastrecord.mseed", 0, NULL},    {"obspy/broken/corrupt_one_extra_byte_at_end.mseed", 0, NULL},
      {"obspy/broken/wrong_blockette_numbers_specified.mseed", 0, NULL}, {"obspy/broken/various_noise_records.mseed", 0, NULL},
      {"obspy/broken/bizarre_endiantest.be-header.le-data.mseed", 0, NULL}, {"obspy/broken/record_with_invalid_word_order.mseed", 0, NULL},
      {"obspy/broken/three_records_zero_data_in_middle.mseed", 0, NULL}, {"obspy/broken/single_record_negative_sr_fact_and_mult.mseed", 0, "10"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *out = tpath("broken.h5");
    const char *win = !cases[i].refused && cases[i].why ? cases[i].why : "1"; /* 0.1 Hz data: 10 s windows */
    const char *kv[] = {"format", "mseed", "input", dpath(cases[i].f), "output", out, "window_s", win, "components", "ZNE", NULL};
    sm_ctx_clear_error(ctx);
    sm_status s = run(ctx, "import", kv);
    if (cases[i].refused) {
      CHECK(s != SM_OK);
      CHECK(strstr(ctx->err_msg, strrchr(cases[i].f, '/') + 1) != NULL);
      CHECK(strstr(ctx->err_msg, cases[i].why) != NULL);
      if (s == SM_OK || !strstr(ctx->err_msg, cases[i].why)) fprintf(stderr, "%s: %s\n", cases[i].f, ctx->err_msg);
      CHECK_EQ_I64(access(out, F_OK) == 0, 0);
    } else {
      if (s != SM_OK) fprintf(stderr, "%s: %s\n", cases[i].f, ctx->err_msg);
      CHECK_OK(ctx, s);
    }
    remove_file(ctx, out);
  }
  /* a directory with bad files: fails as a whole by default, imports the rest with on_error skip */
  const char *out = tpath("dir.h5");
  const char *kv[] = {"format", "mseed", "input", dpath("obspy/broken"), "output", out, "window_s", "1", NULL};
  CHECK(run(ctx, "import", kv) != SM_OK);
  CHECK_EQ_I64(access(out, F_OK) == 0, 0);
  const char *kv2[] = {"format", "mseed", "input", dpath("obspy/broken"), "output", out, "window_s", "1", "on_error", "skip",
                       "sampling_rate_hz", "40", NULL};
  CHECK_OK(ctx, run(ctx, "import", kv2));
  MPI_Barrier(ctx->comm);
  CHECK_EQ_I64(count_files(sm_test_dir(), ".tmp"), 0);
  remove_file(ctx, out);
}

/* gaps.mseed: 3 gaps of 412, 412 and 824 samples at 200 Hz (data/README.md). */
static void test_gaps(sm_ctx *ctx) {
  const char *f = dpath("obspy/real/gaps.mseed"), *out = tpath("gaps.h5");
  const char *kv[] = {"format", "mseed", "input", f, "output", out, "window_s", "271.8", "components", "E", "gap_policy", "zero", NULL};
  CHECK_OK(ctx, run(ctx, "import", kv));
  CHECK_EQ_I64(read_i64_at(ctx, out, "trace_filled_samples", 0), 1648);
  remove_file(ctx, out);
  const char *kv2[] = {"format", "mseed", "input", f, "output", out, "window_s", "271.8", "components", "E", NULL};
  CHECK_STATUS(ctx, run(ctx, "import", kv2), SM_ERR_DATA); /* the only window has gaps: rejected */
  CHECK_EQ_I64(access(out, F_OK) == 0, 0);
  /* 10 s windows (2000 samples): 27 fit; the gaps at samples 412..823, 1648..2059 and 2884..3707
   * touch windows 0 and 1 only, so 25 are kept under gap_policy reject */
  const char *kv3[] = {"format", "mseed", "input", f, "output", out, "window_s", "10", "components", "E", NULL};
  CHECK_OK(ctx, run(ctx, "import", kv3));
  sm_catalog_info in;
  float *w = read_all(ctx, out, &in);
  if (w) CHECK_EQ_I64(in.n_traces, 25);
  free(w);
  remove_file(ctx, out);
}

/* miniSEED -> catalog -> miniSEED -> catalog: identical samples and names. */
static const char *pyasdf_list(void) {
  static char buf[8192];
  static const char *f[] = {"AE.113A..BHE", "AE.113A..BHN", "AE.113A..BHZ", "TA.POKR..BHE", "TA.POKR..BHN", "TA.POKR..BHZ"};
  buf[0] = '\0';
  for (int i = 0; i < 6; i++)
    snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s/pyasdf/%s.mseed", i ? "," : "", data_dir, f[i]);
  return buf;
}

static void test_roundtrip(sm_ctx *ctx) {
  const char *a = tpath("rt_a.h5"), *b = tpath("rt_b.h5"), *dir = tpath("rt_mseed");
  const char *kv[] = {"format", "mseed", "input", pyasdf_list(), "output", a, "window_s", "600", NULL};
  CHECK_OK(ctx, run(ctx, "import", kv));
  const char *ex[] = {"catalog", a, "format", "mseed", "output", dir, NULL};
  CHECK_OK(ctx, run(ctx, "export", ex));
  const char *kv2[] = {"format", "mseed", "input", dir, "output", b, "window_s", "600", NULL};
  CHECK_OK(ctx, run(ctx, "import", kv2));
  sm_catalog_info ia, ib;
  float *wa = read_all(ctx, a, &ia), *wb = read_all(ctx, b, &ib);
  if (!wa || !wb) return;
  CHECK_EQ_I64(ia.n_traces, 14); /* 2 stations x 7 windows of 600 s in 4200 s */
  CHECK_EQ_I64(ib.n_traces, ia.n_traces);
  CHECK_EQ_I64(ib.n_samples, 24000);
  int64_t n = ia.n_traces * ia.n_components * ia.n_samples, diff = 0;
  for (int64_t i = 0; ib.n_traces == ia.n_traces && i < n; i++) diff += wa[i] != wb[i];
  CHECK_EQ_I64(diff, 0);
  char s1[128], s2[128];
  read_str_at(ctx, a, "trace_name", 13, s1, sizeof s1);
  read_str_at(ctx, b, "trace_name", 13, s2, sizeof s2);
  CHECK_STR(s1, s2);
  free(wa);
  free(wb);
}

/* Windows CSV with P picks, and resampling 40 -> 20 Hz. */
static void test_csv_resample(sm_ctx *ctx) {
  const char *csv = tpath("windows.csv"), *out = tpath("csv.h5");
  if (ctx->rank == 0) {
    FILE *f = fopen(csv, "w");
    fprintf(f, "station_network_code,station_code,p_time,trace_name\nTA,POKR,2013-05-24T05:50:00,ev1\n"
               "AE,113A,2013-05-24T05:52:30.5,ev2\nXX,NONE,2013-05-24T05:50:00,ev3\n");
    fclose(f);
  }
  MPI_Barrier(ctx->comm);
  const char *kv[] = {"format", "mseed", "input", pyasdf_list(), "metadata", csv, "output", out, "window_s", "60",
                      "window_before_s", "10", "sampling_rate_hz", "20", NULL};
  CHECK_OK(ctx, run(ctx, "import", kv));
  sm_catalog_info in;
  float *w = read_all(ctx, out, &in);
  if (!w) return;
  CHECK_EQ_I64(in.n_traces, 2);
  CHECK_EQ_I64(in.n_samples, 1200);
  CHECK_EQ_I64(read_i64_at(ctx, out, "trace_p_arrival_sample", 0), 200);
  char s[64];
  read_str_at(ctx, out, "trace_name", 0, s, sizeof s); /* AE.113A sorts first */
  CHECK_STR(s, "ev2");
  read_str_at(ctx, out, "trace_start_time", 0, s, sizeof s);
  CHECK_STR(s, "2013-05-24T05:52:20.500000Z");
  free(w);
  /* resampler: a constant stays constant away from the edges; a 1 Hz sine at 40 -> 20 Hz keeps its amplitude */
  double x[400], y[200];
  for (int i = 0; i < 400; i++) x[i] = 3.0 + sin(2 * M_PI * 1.0 * i / 40.0);
  CHECK_OK(ctx, sm_resample_poly(ctx, x, 400, 1, 2, y));
  CHECK_EQ_I64(sm_resample_poly_len(400, 1, 2), 200);
  double err = 0;
  for (int i = 20; i < 180; i++) err = fmax(err, fabs(y[i] - (3.0 + sin(2 * M_PI * 1.0 * i / 20.0))));
  CHECK_NEAR(err, 0.0, 5e-3); /* Kaiser beta 5: passband ripple of a few 1e-3 */
  int64_t up, down;
  CHECK_EQ_I64(sm_resample_ratio(40, 100, 1000, &up, &down), 0);
  CHECK_EQ_I64(up * 10 + down, 52);
}

int main(int argc, char **argv) {
  const char *d = getenv("SISMA_DATA");
  snprintf(data_dir, sizeof data_dir, "%s", d ? d : "../shared/data");
  return SM_TEST_MAIN(argc, argv, test_cola, test_encodings, test_broken, test_gaps, test_roundtrip, test_csv_resample);
}
