/* Reader of tests/nn/golden/nn.txt (made by dev/golden_nn.py): "model CASE C T N DESC" lines,
 * "train CASE OPT LR SCHED CLIP" lines and "vec NAME COUNT" followed by COUNT numbers. */
#ifndef SISMA_TEST_NN_GOLDEN_H
#define SISMA_TEST_NN_GOLDEN_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static char *golden_text = NULL;

static const char *golden_load(void) {
  if (golden_text) return golden_text;
  FILE *f = sm_test_open_source("tests/nn/golden/nn.txt", "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  golden_text = malloc((size_t)n + 1);
  if (fread(golden_text, 1, (size_t)n, f) != (size_t)n) n = 0;
  golden_text[n] = '\0';
  fclose(f);
  return golden_text;
}

/* The line starting with `prefix` (e.g. "model convnet "), or NULL. */
static const char *golden_line(const char *prefix) {
  const char *t = golden_load();
  size_t l = strlen(prefix);
  for (const char *p = t; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
    if (!strncmp(p, prefix, l)) return p + l;
  return NULL;
}

/* Vector NAME as a malloc'd float array; *n its length (0 and NULL if absent). */
static float *golden_vec(const char *name, long *n) {
  char prefix[256];
  snprintf(prefix, sizeof prefix, "vec %s ", name);
  const char *p = golden_line(prefix);
  *n = 0;
  if (!p) return NULL;
  char *end;
  long cnt = strtol(p, &end, 10);
  float *v = malloc((size_t)(cnt + 1) * sizeof *v);
  for (long i = 0; i < cnt; i++)
    v[i] = strtof(end, &end);
  *n = cnt;
  return v;
}

/* Largest |a - b| over n values, and the largest |b| (the scale a tolerance is relative to). */
static double golden_maxdiff(const float *a, const float *b, long n, double *scale) {
  double d = 0, s = 0;
  for (long i = 0; i < n; i++) {
    double e = fabs((double)a[i] - b[i]);
    d = e > d ? e : d;
    s = fabs(b[i]) > s ? fabs(b[i]) : s;
  }
  if (scale) *scale = s;
  return d;
}

#endif
