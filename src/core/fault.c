/* Deliberate fault injection (SISMA_FAULT=<point>:<rank>,...), as SQLite and Redis do in their
 * test suites: the failure paths of the collective code are exercised by real runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sisma/core.h"

sm_status sm_fault_point(sm_ctx *ctx, const char *point) {
  const char *spec = getenv("SISMA_FAULT");
  size_t n = strlen(point);
  if (!spec || strncmp(spec, point, n) != 0 || spec[n] != ':') return SM_OK;
  const char *ranks = spec + n + 1;
  int hit = !strcmp(ranks, "all");
  for (const char *p = ranks; !hit && *p;) {
    char *end;
    long r = strtol(p, &end, 10);
    if (end == p) break;
    hit = r == ctx->rank;
    p = *end == ',' ? end + 1 : end;
  }
  if (!hit) return SM_OK;
  return SM_ERR(ctx, SM_ERR_INTERNAL, "injected fault at %s (SISMA_FAULT=%s)", point, spec);
}
