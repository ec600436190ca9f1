/* The shard reader. Resident mode: one collective read of the whole shard, reused on every
 * pass. Streaming mode (shard larger than the memory budget): blocks of whole chunks, two
 * buffers; while the caller computes on one, a helper thread fills the other with positioned
 * reads of the raw chunks (addresses from the HDF5 chunk index, looked up once at creation) and,
 * for compressed catalogs, inflates and unshuffles them exactly as HDF5's filter pipeline would.
 * The thread makes no MPI or HDF5 calls, so no thread support is needed from either library. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "../catalog/internal.h"
#include "sisma/shard.h"

typedef struct {
  uint64_t addr; /* HADDR_UNDEF: never written (reads as zeros) */
  uint64_t size; /* stored bytes */
  unsigned filter_mask;
} chunk_loc;

typedef struct {
  int64_t first, count; /* traces */
  float *buf;
  int ok;
  char err[256];
} block_buf;

struct sm_reader {
  sm_catalog *cat;
  sm_range mine;
  int resident;
  int64_t trace_elems, chunk, block_chunks; /* chunks per streamed block */
  float *all;                               /* resident shard */
  int fd;
  int deflated, shuffled;
  chunk_loc *loc;   /* [chunks of this shard] */
  unsigned char *z; /* compressed staging buffer (thread only) */
  block_buf b[2];
  int cur;        /* buffer returned last */
  int64_t next;   /* next trace to hand out */
  int64_t queued; /* first trace of the block being prefetched, -1 if none */
  pthread_t th;
  int th_live;
};

int sm_reader_resident(const sm_reader *rd) { return rd->resident; }

static void unshuffle(const unsigned char *in, unsigned char *out, size_t nelem, size_t es) {
  for (size_t b = 0; b < es; b++)
    for (size_t i = 0; i < nelem; i++) out[i * es + b] = in[b * nelem + i];
}

/* Read chunk c (index within the shard) into dst (chunk * trace_elems floats). Thread side. */
static int read_chunk(sm_reader *rd, int64_t c, float *dst, char *err, size_t errsz) {
  size_t raw = (size_t)(rd->chunk * rd->trace_elems * 4);
  chunk_loc *l = &rd->loc[c];
  if (l->addr == (uint64_t)HADDR_UNDEF) {
    memset(dst, 0, raw);
    return 1;
  }
  int inflate_it = rd->deflated && !(l->filter_mask & 2), unshuf = rd->shuffled && !(l->filter_mask & 1);
  unsigned char *tgt = (inflate_it || unshuf) ? rd->z : (unsigned char *)dst;
  if (l->size > raw * 2 + 1024) {
    snprintf(err, errsz, "chunk %lld: stored size %llu is implausible", (long long)c, (unsigned long long)l->size);
    return 0;
  }
  for (size_t done = 0; done < l->size;) {
    ssize_t r = pread(rd->fd, tgt + done, l->size - done, (off_t)(l->addr + done));
    if (r <= 0) {
      snprintf(err, errsz, "read of chunk %lld failed: %s", (long long)c, r < 0 ? strerror(errno) : "end of file");
      return 0;
    }
    done += (size_t)r;
  }
  unsigned char *stage = tgt;
  unsigned char *plain = unshuf ? rd->z + raw * 2 + 1024 : (unsigned char *)dst;
  if (inflate_it) {
    uLongf outlen = (uLongf)raw;
    if (uncompress(plain, &outlen, stage, (uLong)l->size) != Z_OK || outlen != raw) {
      snprintf(err, errsz, "chunk %lld: deflate stream is corrupt", (long long)c);
      return 0;
    }
    stage = plain;
  }
  if (unshuf) unshuffle(stage, (unsigned char *)dst, raw / 4, 4);
  return 1;
}

/* Read chunks [c, c + n) of an unfiltered catalog that lie back to back in the file with one
 * pread into dst. Thread side. */
static int read_run(sm_reader *rd, int64_t c, int64_t n, float *dst, char *err, size_t errsz) {
  size_t bytes = (size_t)(n * rd->chunk * rd->trace_elems * 4);
  for (size_t done = 0; done < bytes;) {
    ssize_t r = pread(rd->fd, (char *)dst + done, bytes - done, (off_t)(rd->loc[c].addr + done));
    if (r <= 0) {
      snprintf(err, errsz, "read of chunks %lld..%lld failed: %s", (long long)c, (long long)(c + n - 1),
               r < 0 ? strerror(errno) : "end of file");
      return 0;
    }
    done += (size_t)r;
  }
  return 1;
}

/* Length of the run of chunks starting at c (at most max) stored contiguously and unfiltered. */
static int64_t contiguous_run(const sm_reader *rd, int64_t c, int64_t max) {
  if (rd->deflated || rd->shuffled || rd->loc[c].addr == (uint64_t)HADDR_UNDEF) return 1;
  int64_t n = 1;
  while (n < max && rd->loc[c + n].addr == rd->loc[c + n - 1].addr + rd->loc[c + n - 1].size) n++;
  return n;
}

static void *fill_block(void *arg) {
  sm_reader *rd = arg;
  block_buf *bb = &rd->b[1 - rd->cur];
  int64_t c0 = (bb->first - rd->mine.first) / rd->chunk;
  int64_t nc = (bb->count + rd->chunk - 1) / rd->chunk, per = rd->chunk * rd->trace_elems;
  bb->ok = 1;
  for (int64_t c = 0; c < nc && bb->ok;) {
    int64_t run = contiguous_run(rd, c0 + c, nc - c);
    bb->ok = run > 1 ? read_run(rd, c0 + c, run, bb->buf + c * per, bb->err, sizeof bb->err)
                     : read_chunk(rd, c0 + c, bb->buf + c * per, bb->err, sizeof bb->err);
    c += run;
  }
  return NULL;
}

static void start_prefetch(sm_reader *rd, int64_t first) {
  block_buf *bb = &rd->b[1 - rd->cur];
  int64_t end = rd->mine.first + rd->mine.count;
  bb->first = first;
  bb->count = rd->block_chunks * rd->chunk;
  if (bb->first + bb->count > end) bb->count = end - bb->first;
  rd->queued = first;
  rd->th_live = pthread_create(&rd->th, NULL, fill_block, rd) == 0;
  if (!rd->th_live) fill_block(rd); /* no thread: read synchronously */
}

static sm_status locate_chunks(sm_reader *rd) {
  sm_catalog *cat = rd->cat;
  sm_ctx *ctx = cat->ctx;
  const sm_catalog_info *in = &cat->info;
  int64_t nchunks_all = (in->n_traces + rd->chunk - 1) / rd->chunk;
  int64_t c_first = rd->mine.first / rd->chunk, nmine = (rd->mine.count + rd->chunk - 1) / rd->chunk;
  SM_TRY(ctx, SM_ALLOC(ctx, rd->loc, nmine));
  /* Every rank queries every chunk: metadata reads are collective in sisma's file access list. */
  for (int64_t c = 0; c < nchunks_all; c++) {
    hsize_t off[3] = {(hsize_t)(c * rd->chunk), 0, 0};
    unsigned mask = 0;
    haddr_t addr = HADDR_UNDEF;
    hsize_t size = 0;
    if (H5Dget_chunk_info_by_coord(cat->waveforms, off, &mask, &addr, &size) < 0)
      return SM_H5ERR(ctx, "%s: cannot locate chunk %lld of /waveforms", cat->path, (long long)c);
    if (c >= c_first && c < c_first + nmine) rd->loc[c - c_first] = (chunk_loc){addr, size, mask};
  }
  hid_t dcpl = H5Dget_create_plist(cat->waveforms);
  for (int i = 0; i < H5Pget_nfilters(dcpl); i++) {
    unsigned flags, cd[8];
    size_t ncd = 8;
    H5Z_filter_t f = H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, cd, 0, NULL, NULL);
    if (f == H5Z_FILTER_DEFLATE) rd->deflated = 1;
    else if (f == H5Z_FILTER_SHUFFLE) rd->shuffled = 1;
    else {
      H5Pclose(dcpl);
      return SM_ERR(ctx, SM_ERR_UNSUPPORTED, "%s: /waveforms uses HDF5 filter %d; streaming reads support deflate and shuffle",
                    cat->path, (int)f);
    }
  }
  H5Pclose(dcpl);
  rd->fd = open(cat->path, O_RDONLY);
  SM_CHECK(ctx, rd->fd >= 0, SM_ERR_IO, "cannot open %s for streaming: %s", cat->path, strerror(errno));
  return SM_OK;
}

static sm_status setup_stream(sm_reader *rd, int64_t budget) {
  sm_ctx *ctx = rd->cat->ctx;
  int64_t chunk_bytes = rd->chunk * rd->trace_elems * 4;
  rd->block_chunks = budget / (2 * chunk_bytes);
  if (rd->block_chunks < 1) rd->block_chunks = 1;
  sm_status st = locate_chunks(rd);
  for (int i = 0; i < 2 && st == SM_OK; i++) st = SM_ALLOC(ctx, rd->b[i].buf, rd->block_chunks * rd->chunk * rd->trace_elems);
  if (st == SM_OK) st = SM_ALLOC(ctx, rd->z, 3 * chunk_bytes + 2048);
  return st;
}

sm_status sm_reader_create(sm_catalog *cat, sm_range mine, int64_t budget_bytes, sm_reader **out) {
  sm_ctx *ctx = cat->ctx;
  *out = NULL;
  sm_reader *rd = NULL;
  SM_TRY(ctx, SM_ALLOC(ctx, rd, 1));
  rd->cat = cat;
  rd->mine = mine;
  rd->fd = -1;
  rd->queued = -1;
  rd->trace_elems = (int64_t)cat->info.n_components * cat->info.n_samples;
  rd->chunk = cat->info.chunk_traces > 0 ? cat->info.chunk_traces : 1;
  int fits = budget_bytes <= 0 || mine.count * rd->trace_elems * 4 <= budget_bytes, all_fit = 0;
  sm_status st = SM_OK;
  if (MPI_Allreduce(&fits, &all_fit, 1, MPI_INT, MPI_MIN, ctx->comm) != MPI_SUCCESS) st = SM_ERR(ctx, SM_ERR_MPI, "allreduce");
  rd->resident = all_fit;
  if (st == SM_OK && rd->resident) {
    st = sm_ctx_agree(ctx, SM_ALLOC(ctx, rd->all, mine.count * rd->trace_elems));
    if (st == SM_OK) st = sm_catalog_read_traces(cat, mine.first, mine.count, rd->all);
  } else if (st == SM_OK) {
    st = sm_ctx_agree(ctx, setup_stream(rd, budget_bytes));
  }
  if (st != SM_OK) {
    sm_reader_destroy(&rd);
    return st;
  }
  *out = rd;
  return SM_OK;
}

static void join(sm_reader *rd) {
  if (rd->th_live) pthread_join(rd->th, NULL);
  rd->th_live = 0;
}

void sm_reader_destroy(sm_reader **rdp) {
  if (!rdp || !*rdp) return;
  sm_reader *rd = *rdp;
  join(rd);
  if (rd->fd >= 0) close(rd->fd);
  free(rd->all);
  free(rd->loc);
  free(rd->z);
  free(rd->b[0].buf);
  free(rd->b[1].buf);
  free(rd);
  *rdp = NULL;
}

sm_status sm_reader_rewind(sm_reader *rd) {
  join(rd);
  rd->next = rd->mine.first;
  rd->queued = -1;
  return SM_OK;
}

sm_status sm_reader_next(sm_reader *rd, int64_t *first, int64_t *count, const float **traces) {
  int64_t end = rd->mine.first + rd->mine.count;
  if (rd->next < rd->mine.first) rd->next = rd->mine.first;
  *first = rd->next;
  *count = 0;
  *traces = NULL;
  if (rd->next >= end) return SM_OK;
  if (rd->resident) {
    *count = end - rd->next;
    *traces = rd->all + (rd->next - rd->mine.first) * rd->trace_elems;
    rd->next = end;
    return SM_OK;
  }
  if (rd->queued != rd->next) { /* first call of a pass: nothing prefetched yet */
    join(rd);
    start_prefetch(rd, rd->next);
  }
  join(rd);
  rd->cur = 1 - rd->cur; /* the prefetched buffer becomes current */
  block_buf *bb = &rd->b[rd->cur];
  if (!bb->ok)
    return SM_ERR(rd->cat->ctx, SM_ERR_IO, "%s: traces [%lld, %lld): %s", rd->cat->path, (long long)bb->first,
                  (long long)(bb->first + bb->count), bb->err);
  rd->next = bb->first + bb->count;
  if (rd->next < end) start_prefetch(rd, rd->next); /* overlaps with the caller's compute */
  *first = bb->first;
  *count = bb->count;
  *traces = bb->buf;
  return SM_OK;
}
