/* Reading miniSEED 2 files with libmseed 2.19: records, with every way a file can be bad turned
 * into a refusal that names the file, the record and its byte offset.
 *
 * libmseed reports problems by printing and then carries on or stops as if at end of file (a
 * corrupt blockette chain ends the read with MS_ENDOFFILE). So its log is routed into a capture
 * buffer (ms_loginit) while a file is read, and after each record the buffer is checked: an
 * "Error" or a Steim integrity failure refuses the file; other warnings become a note. The byte
 * ranges of the records read are compared with the file size, so a truncated last record is
 * caught and skipped non-data bytes are reported. Start reading at sm__mseed_read_file. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <libmseed.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

/* libmseed's logger is process-global; sisma reads one file at a time per process. */
static struct {
  char first_error[512], first_warning[512];
  int n_error, n_warning, n_integrity;
} mslog;

static void trim_copy(char *dst, size_t n, const char *src) {
  snprintf(dst, n, "%s", src);
  size_t l = strlen(dst);
  while (l && (dst[l - 1] == '\n' || dst[l - 1] == '\r' || dst[l - 1] == ' '))
    dst[--l] = '\0';
  for (char *p = dst; *p; p++)
    if (*p == '\t' || *p == '\n') *p = ' ';
}

static void log_capture(char *msg) {
  if (strstr(msg, "integrity check")) {
    if (!mslog.n_integrity++ && !mslog.first_error[0]) trim_copy(mslog.first_error, sizeof mslog.first_error, msg);
  } else if (strstr(msg, "Error") || strstr(msg, "error")) {
    if (!mslog.n_error++) trim_copy(mslog.first_error, sizeof mslog.first_error, msg);
  } else if (!mslog.n_warning++) {
    trim_copy(mslog.first_warning, sizeof mslog.first_warning, msg);
  }
}

static void log_reset(void) {
  memset(&mslog, 0, sizeof mslog);
  ms_loginit(log_capture, NULL, log_capture, NULL);
}

void sm__mseed_recs_free(sm__mseed_recs *r) {
  for (int64_t i = 0; i < r->n; i++)
    free(r->rec[i].x);
  free(r->rec);
  memset(r, 0, sizeof *r);
}

static void recs_truncate(sm__mseed_recs *r, int64_t n) {
  for (int64_t i = n; i < r->n; i++)
    free(r->rec[i].x);
  r->n = n;
}

static sm_status recs_push(sm_ctx *ctx, sm__mseed_recs *r, sm__mseed_rec **out) {
  if (r->n == r->cap) {
    int64_t cap = r->cap ? 2 * r->cap : 64;
    sm__mseed_rec *p = realloc(r->rec, (size_t)cap * sizeof *p);
    SM_CHECK(ctx, p, SM_ERR_NOMEM, "out of memory (%lld miniSEED records)", (long long)cap);
    r->rec = p, r->cap = cap;
  }
  *out = &r->rec[r->n++];
  memset(*out, 0, sizeof **out);
  return SM_OK;
}

/* Convert the decoded samples of msr to float32; count NaN/Inf. */
static sm_status convert(sm_ctx *ctx, const MSRecord *msr, float *x, int64_t *bad) {
  int64_t n = msr->numsamples;
  *bad = 0;
  for (int64_t i = 0; i < n; i++) {
    double v = msr->sampletype == 'i'   ? (double)((const int32_t *)msr->datasamples)[i]
               : msr->sampletype == 'f' ? (double)((const float *)msr->datasamples)[i]
                                        : ((const double *)msr->datasamples)[i];
    if (!isfinite(v)) ++*bad;
    x[i] = (float)v;
  }
  (void)ctx;
  return SM_OK;
}

static void __attribute__((format(printf, 3, 4))) note_add(char *note, size_t size, const char *fmt, ...) {
  size_t l = strlen(note);
  if (l + 3 >= size) return;
  if (l) note[l++] = ';', note[l++] = ' ', note[l] = '\0';
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(note + l, size - l, fmt, ap);
  va_end(ap);
}

/* The first byte of the record's codes that cannot be in a NET.STA.LOC.CHA id (SEED codes are
 * letters and digits; a '.', a control or non-ASCII byte would split or corrupt the id that the
 * import's summaries and station keys are built from), with the field's name; 0 when none. */
static int bad_code(const MSRecord *msr, const char **field) {
  const char *f[4] = {msr->network, msr->station, msr->location, msr->channel};
  static const char *name[4] = {"network", "station", "location", "channel"};
  for (int k = 0; k < 4; k++)
    for (const unsigned char *c = (const unsigned char *)f[k]; *c; c++)
      if (*c <= ' ' || *c > '~' || *c == '.') return *field = name[k], *c;
  return 0;
}

/* The most samples the record's data section can hold in its encoding, or -1 for an encoding
 * without a fixed bound. libmseed 2.19 takes a fixed-width encoding's sample count from the header
 * and decodes that many values even past the record's end (stale bytes of its read buffer). */
static int64_t max_samples(const MSRecord *msr, int64_t *data_bytes) {
  int64_t bytes = msr->reclen - (msr->fsdh && msr->fsdh->data_offset < msr->reclen ? msr->fsdh->data_offset : 0);
  *data_bytes = bytes;
  switch (msr->encoding) {
  case DE_INT16:
  case DE_GEOSCOPE163:
  case DE_GEOSCOPE164:
  case DE_CDSN:
  case DE_SRO:
  case DE_DWWSSN:
    return bytes / 2;
  case DE_GEOSCOPE24:
    return bytes / 3;
  case DE_INT32:
  case DE_FLOAT32:
    return bytes / 4;
  case DE_FLOAT64:
    return bytes / 8;
  case DE_STEIM1:
    return bytes; /* at most 4 differences per 32-bit word */
  case DE_STEIM2:
    return bytes / 4 * 7; /* at most 7 per word */
  default:
    return -1;
  }
}

/* One record: append it (or skip it with a note). */
static sm_status take_record(sm_ctx *ctx, const char *path, const MSRecord *msr, int64_t pos, int64_t k,
                             sm__mseed_filter keep, void *arg, int keep_meta, sm__mseed_recs *out, int64_t *n_ascii,
                             int64_t *n_empty) {
  if (msr->sampletype == 'a') return ++*n_ascii, SM_OK;
  if (msr->numsamples <= 0) return ++*n_empty, SM_OK;
  SM_CHECK(ctx, msr->samprate > 0 && isfinite(msr->samprate), SM_ERR_FORMAT,
           "%s: record %lld at byte offset %lld: %lld samples with sampling rate %g Hz", path, (long long)k,
           (long long)pos, (long long)msr->numsamples, msr->samprate);
  SM_CHECK(ctx, msr->sampletype == 'i' || msr->sampletype == 'f' || msr->sampletype == 'd', SM_ERR_FORMAT,
           "%s: record %lld at byte offset %lld: unsupported sample type '%c'", path, (long long)k, (long long)pos,
           msr->sampletype);
  int64_t bytes, most = max_samples(msr, &bytes);
  SM_CHECK(ctx, most < 0 || msr->numsamples <= most, SM_ERR_FORMAT,
           "%s: record %lld at byte offset %lld: its header declares %lld samples, but its %lld data bytes in encoding "
           "%d hold at most %lld (corrupt header)",
           path, (long long)k, (long long)pos, (long long)msr->numsamples, (long long)bytes, (int)msr->encoding,
           (long long)most);
  const char *field = NULL;
  int bad_byte = bad_code(msr, &field);
  SM_CHECK(ctx, !bad_byte, SM_ERR_FORMAT,
           "%s: record %lld at byte offset %lld: the %s code holds byte 0x%02x (SEED codes are letters and digits)",
           path, (long long)k, (long long)pos, field, bad_byte);
  char id[SM_MSEED_ID_MAX];
  snprintf(id, sizeof id, "%s.%s.%s.%s", msr->network, msr->station, msr->location, msr->channel);
  int want = !keep || keep(id, arg);
  if (!want && !keep_meta) return SM_OK;
  float *x = NULL;
  SM_TRY(ctx, SM_ALLOC(ctx, x, msr->numsamples));
  int64_t bad = 0;
  convert(ctx, msr, x, &bad);
  if (bad) {
    free(x);
    return SM_ERR(ctx, SM_ERR_DATA, "%s: record %lld at byte offset %lld (%s): %lld of %lld samples are NaN or Inf",
                  path, (long long)k, (long long)pos, id, (long long)bad, (long long)msr->numsamples);
  }
  sm__mseed_rec *r = NULL;
  sm_status st = recs_push(ctx, out, &r);
  if (st != SM_OK) return free(x), st;
  snprintf(r->id, sizeof r->id, "%s", id);
  r->rate_hz = msr->samprate;
  r->start_us = msr->starttime;
  r->n = msr->numsamples;
  r->offset = pos;
  if (want)
    r->x = x;
  else
    free(x);
  return SM_OK;
}

/* After libmseed stopped: compare the bytes covered by records with the file size. */
static sm_status check_tail(sm_ctx *ctx, const char *path, int64_t end, int64_t size, char *note, size_t note_size) {
  if (end >= size) return SM_OK;
  FILE *f = fopen(path, "rb");
  SM_CHECK(ctx, f, SM_ERR_IO, "%s: cannot reopen: %s", path, strerror(errno));
  char hdr[48] = {0};
  size_t got = fseek(f, (long)end, SEEK_SET) == 0 ? fread(hdr, 1, sizeof hdr, f) : 0;
  fclose(f);
  if (got == sizeof hdr && MS_ISVALIDHEADER(hdr))
    return SM_ERR(ctx, SM_ERR_FORMAT,
                  "%s: record at byte offset %lld is cut off (%lld of its bytes present): truncated file", path,
                  (long long)end, (long long)(size - end));
  note_add(note, note_size, "%s: ignored %lld trailing byte(s) at offset %lld that are not a miniSEED record", path,
           (long long)(size - end), (long long)end);
  return SM_OK;
}

sm_status sm__mseed_read_file(sm_ctx *ctx, const char *path, sm__mseed_filter keep, void *arg, int keep_meta,
                              sm__mseed_recs *out, char *note, size_t note_size) {
  struct stat sb;
  note[0] = '\0';
  SM_CHECK(ctx, stat(path, &sb) == 0, SM_ERR_IO, "%s: %s", path, strerror(errno));
  int64_t n0 = out->n, k = 0, expect = 0, n_ascii = 0, n_empty = 0;
  MSFileParam *fp = NULL;
  MSRecord *msr = NULL;
  off_t pos = 0;
  int last = 0, rc;
  sm_status st = SM_OK;
  log_reset();
  while (st == SM_OK && (rc = ms_readmsr_r(&fp, &msr, path, -1, &pos, &last, 1, 1, 0)) == MS_NOERROR) {
    if (mslog.n_error || mslog.n_integrity) break;
    if ((int64_t)pos > expect)
      note_add(note, note_size, "%s: skipped %lld byte(s) of non-data at offset %lld", path, (long long)(pos - expect),
               (long long)expect);
    st = take_record(ctx, path, msr, (int64_t)pos, k, keep, arg, keep_meta, out, &n_ascii, &n_empty);
    expect = (int64_t)pos + msr->reclen;
    k++;
  }
  if (st == SM_OK && (mslog.n_error || mslog.n_integrity))
    st = SM_ERR(ctx, SM_ERR_FORMAT, "%s: corrupt record %lld (near byte offset %lld): libmseed: %s", path, (long long)k,
                (long long)expect, mslog.first_error);
  else if (st == SM_OK && rc == MS_NOTSEED && k == 0)
    st = SM_ERR(ctx, SM_ERR_FORMAT, "%s: not miniSEED 2 (%s; miniSEED 3 files are not supported by libmseed 2)", path,
                ms_errorstr(rc));
  else if (st == SM_OK && rc != MS_ENDOFFILE && rc != MS_NOERROR)
    st = SM_ERR(ctx, SM_ERR_FORMAT, "%s: record %lld at byte offset %lld: %s", path, (long long)k, (long long)expect,
                ms_errorstr(rc));
  ms_readmsr_r(&fp, &msr, NULL, 0, NULL, NULL, 0, 0, 0);
  ms_loginit(NULL, NULL, NULL, NULL);
  if (st == SM_OK) st = check_tail(ctx, path, expect, (int64_t)sb.st_size, note, note_size);
  if (st == SM_OK && mslog.n_warning)
    note_add(note, note_size, "%s: %d libmseed warning(s), first: %s", path, mslog.n_warning, mslog.first_warning);
  if (st == SM_OK && n_ascii)
    note_add(note, note_size, "%s: skipped %lld ASCII (text) record(s): not waveforms", path, (long long)n_ascii);
  if (st == SM_OK && n_empty) note_add(note, note_size, "%s: %lld record(s) without samples", path, (long long)n_empty);
  if (st != SM_OK) recs_truncate(out, n0);
  return st;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static sm_status paths_push(sm_ctx *ctx, char ***paths, int64_t *n, int64_t *cap, const char *p) {
  if (*n + 1 >= *cap) {
    int64_t c = *cap ? 2 * *cap : 16;
    char **q = realloc(*paths, (size_t)c * sizeof *q);
    SM_CHECK(ctx, q, SM_ERR_NOMEM, "out of memory");
    *paths = q, *cap = c;
  }
  (*paths)[*n] = strdup(p);
  SM_CHECK(ctx, (*paths)[*n], SM_ERR_NOMEM, "out of memory");
  (*paths)[++*n] = NULL;
  return SM_OK;
}

/* A directory's regular files (not hidden), sorted by name. */
static sm_status list_dir(sm_ctx *ctx, const char *dir, char ***paths, int64_t *n, int64_t *cap) {
  DIR *d = opendir(dir);
  SM_CHECK(ctx, d, SM_ERR_IO, "input %s: cannot open directory: %s", dir, strerror(errno));
  int64_t first = *n;
  sm_status st = SM_OK;
  for (struct dirent *e; st == SM_OK && (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    char p[4096];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode)) st = paths_push(ctx, paths, n, cap, p);
  }
  closedir(d);
  if (st == SM_OK && *n > first) qsort(*paths + first, (size_t)(*n - first), sizeof **paths, cmp_str);
  return st;
}

sm_status sm__mseed_list_inputs(sm_ctx *ctx, const char *input, char ***paths, int64_t *n) {
  int64_t cap = 0;
  *paths = NULL, *n = 0;
  char *list = strdup(input), *save = NULL;
  SM_CHECK(ctx, list, SM_ERR_NOMEM, "out of memory");
  sm_status st = SM_OK;
  for (char *p = strtok_r(list, ",", &save); st == SM_OK && p; p = strtok_r(NULL, ",", &save)) {
    while (isspace((unsigned char)*p))
      p++;
    for (size_t l = strlen(p); l && isspace((unsigned char)p[l - 1]);)
      p[--l] = '\0';
    if (!*p) continue;
    struct stat sb;
    if (stat(p, &sb) != 0)
      st = SM_ERR(ctx, SM_ERR_IO, "input %s: %s (key import.input)", p, strerror(errno));
    else if (S_ISDIR(sb.st_mode))
      st = list_dir(ctx, p, paths, n, &cap);
    else
      st = paths_push(ctx, paths, n, &cap, p);
  }
  free(list);
  if (st == SM_OK && *n == 0) st = SM_ERR(ctx, SM_ERR_CONFIG, "import.input \"%s\" names no files", input);
  if (st != SM_OK) sm__paths_free(paths, *n);
  return st;
}

void sm__paths_free(char ***paths, int64_t n) {
  if (!*paths) return;
  for (int64_t i = 0; i < n; i++)
    free((*paths)[i]);
  free(*paths);
  *paths = NULL;
}
