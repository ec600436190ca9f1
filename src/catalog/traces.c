/* Collective trace transfers: contiguous ranges and arbitrary index lists. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int64_t trace_elems(const sm_catalog *cat) {
  return (int64_t)cat->info.n_components * cat->info.n_samples;
}

sm_status sm_catalog_read_traces(sm_catalog *cat, int64_t first, int64_t count, float *buf) {
  return sm__slab_io(cat->ctx, cat->waveforms, H5T_NATIVE_FLOAT, cat->dxpl_read, 0, first, count, trace_elems(cat),
                     sizeof(float), buf, cat->path);
}

sm_status sm_catalog_write_traces(sm_catalog *cat, int64_t first, int64_t count, const float *buf) {
  SM_CHECK(cat->ctx, cat->writable, SM_ERR_ARG, "%s is open read-only", cat->path);
  return sm__slab_io(cat->ctx, cat->waveforms, H5T_NATIVE_FLOAT, cat->dxpl, 1, first, count, trace_elems(cat),
                     sizeof(float), (void *)buf, cat->path);
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Select the sorted, distinct traces u[0..n) as a union of runs of consecutive indices. */
static herr_t select_runs(hid_t fs, const int64_t *u, int64_t n, hsize_t c, hsize_t t) {
  herr_t rc = H5Sselect_none(fs);
  for (int64_t i = 0; i < n && rc >= 0;) {
    int64_t j = i + 1;
    while (j < n && u[j] == u[j - 1] + 1) j++;
    hsize_t start[3] = {(hsize_t)u[i], 0, 0}, cnt[3] = {(hsize_t)(j - i), c, t};
    rc = H5Sselect_hyperslab(fs, H5S_SELECT_OR, start, NULL, cnt, NULL);
    i = j;
  }
  return rc;
}

/* HDF5 returns a union selection in file order, so read the distinct traces sorted, then copy
 * each requested trace (duplicates allowed) to its place in buf. */
sm_status sm_catalog_read_trace_list(sm_catalog *cat, int64_t n, const int64_t *index, float *buf) {
  sm_ctx *ctx = cat->ctx;
  int64_t te = trace_elems(cat), nu = 0;
  int64_t *u = NULL;
  float *tmp = NULL;
  sm_status st = SM_ALLOC(ctx, u, n);
  for (int64_t i = 0; st == SM_OK && i < n; i++) {
    if (index[i] < 0 || index[i] >= cat->info.n_traces)
      st = SM_ERR(ctx, SM_ERR_ARG, "%s: trace index %lld outside [0, %lld)", cat->path, (long long)index[i],
                  (long long)cat->info.n_traces);
    else u[i] = index[i];
  }
  if (st == SM_OK) {
    qsort(u, (size_t)n, sizeof *u, cmp_i64);
    for (int64_t i = 0; i < n; i++)
      if (nu == 0 || u[i] != u[nu - 1]) u[nu++] = u[i];
    st = SM_ALLOC(ctx, tmp, nu * te);
  }
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) {
    hid_t fs = H5Dget_space(cat->waveforms);
    /* memory shaped like the selection (see sm__slab_io) */
    hsize_t mdims[3] = {(hsize_t)(nu > 0 ? nu : 1), (hsize_t)cat->info.n_components, (hsize_t)cat->info.n_samples};
    hid_t ms = H5Screate_simple(3, mdims, NULL);
    herr_t rc = nu ? 0 : H5Sselect_none(ms);
    if (rc >= 0) rc = select_runs(fs, u, nu, (hsize_t)cat->info.n_components, (hsize_t)cat->info.n_samples);
    if (rc >= 0) rc = H5Dread(cat->waveforms, H5T_NATIVE_FLOAT, ms, fs, cat->dxpl_read, tmp);
    if (rc < 0) st = SM_H5ERR(ctx, "%s: reading a list of %lld traces failed", cat->path, (long long)n);
    H5Sclose(ms);
    H5Sclose(fs);
    st = sm_ctx_agree(ctx, st);
  }
  for (int64_t i = 0; st == SM_OK && i < n; i++) {
    int64_t *hit = bsearch(&index[i], u, (size_t)nu, sizeof *u, cmp_i64);
    memcpy(buf + i * te, tmp + (hit - u) * te, (size_t)te * sizeof(float));
  }
  free(u);
  free(tmp);
  return st;
}
