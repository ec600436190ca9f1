/* Typed, validated key/value configuration of one stage, driven by the stage's sm_key table. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sisma/config.h"

void sm_config_init(sm_config *cfg, const char *stage, const sm_key *keys) {
  memset(cfg, 0, sizeof *cfg);
  cfg->stage = stage;
  cfg->keys = keys;
  while (keys && keys[cfg->nkeys].name && cfg->nkeys < SM_CONFIG_MAX_KEYS) cfg->nkeys++;
  cfg->output_dir = ".";
}

void sm_config_fini(sm_config *cfg) {
  for (int i = 0; i < cfg->nkeys; i++) free(cfg->values[i]);
  memset(cfg->values, 0, sizeof cfg->values);
}

static int key_index(const sm_config *cfg, const char *name) {
  for (int i = 0; i < cfg->nkeys; i++)
    if (!strcmp(cfg->keys[i].name, name)) return i;
  return -1;
}

static int levenshtein(const char *a, const char *b) {
  int la = (int)strlen(a), lb = (int)strlen(b);
  if (la > 63 || lb > 63) return 99;
  int d[64][64];
  for (int i = 0; i <= la; i++) d[i][0] = i;
  for (int j = 0; j <= lb; j++) d[0][j] = j;
  for (int i = 1; i <= la; i++)
    for (int j = 1; j <= lb; j++) {
      int c = d[i - 1][j - 1] + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
      if (d[i - 1][j] + 1 < c) c = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < c) c = d[i][j - 1] + 1;
      d[i][j] = c;
    }
  return d[la][lb];
}

void sm_near_matches(const char *word, const char *const *names, int n, char *out, size_t out_size) {
  out[0] = '\0';
  int found = 0;
  for (int dist = 0; dist <= 3 && found < 3; dist++)
    for (int i = 0; i < n && found < 3; i++) {
      int d = levenshtein(word, names[i]);
      int sub = strstr(names[i], word) != NULL && strlen(word) >= 3;
      if (d == dist || (dist == 3 && sub && d > 3)) {
        size_t l = strlen(out);
        snprintf(out + l, out_size - l, "%s\"%s\"", found ? ", " : "", names[i]);
        found++;
      }
    }
}

static int parse_bool(const char *v, int *out) {
  static const char *yes[] = {"true", "yes", "on", "1"}, *no[] = {"false", "no", "off", "0"};
  for (int i = 0; i < 4; i++) {
    if (!strcasecmp(v, yes[i])) return *out = 1, 1;
    if (!strcasecmp(v, no[i])) return *out = 0, 1;
  }
  return 0;
}

static int in_choices(const char *choices, const char *v) {
  size_t l = strlen(v);
  for (const char *p = choices; p && *p;) {
    const char *e = strchr(p, '|');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n == l && !strncmp(p, v, n)) return 1;
    p = e ? e + 1 : NULL;
  }
  return 0;
}

static sm_status validate(sm_ctx *ctx, const sm_config *cfg, const sm_key *k, const char *v, const char *origin) {
  char *end = NULL;
  errno = 0;
  int bounded = k->min <= k->max;
  switch (k->type) {
  case SM_KEY_INT: {
    long long x = strtoll(v, &end, 10);
    SM_CHECK(ctx, *v && !*end && errno == 0, SM_ERR_CONFIG, "%s: %s.%s = \"%s\" is not an integer (%s)", origin,
             cfg->stage, k->name, v, k->help);
    SM_CHECK(ctx, !bounded || (x >= k->min && x <= k->max), SM_ERR_CONFIG,
             "%s: %s.%s = %lld is outside [%.17g, %.17g] (%s)", origin, cfg->stage, k->name, x, k->min, k->max, k->help);
    break;
  }
  case SM_KEY_FLOAT: {
    double x = strtod(v, &end);
    SM_CHECK(ctx, *v && !*end && errno == 0 && isfinite(x), SM_ERR_CONFIG, "%s: %s.%s = \"%s\" is not a finite number (%s)",
             origin, cfg->stage, k->name, v, k->help);
    SM_CHECK(ctx, !bounded || (x >= k->min && x <= k->max), SM_ERR_CONFIG, "%s: %s.%s = %g is outside [%g, %g] (%s)",
             origin, cfg->stage, k->name, x, k->min, k->max, k->help);
    break;
  }
  case SM_KEY_BOOL: {
    int b;
    SM_CHECK(ctx, parse_bool(v, &b), SM_ERR_CONFIG, "%s: %s.%s = \"%s\" is not a boolean (use true or false)", origin,
             cfg->stage, k->name, v);
    break;
  }
  case SM_KEY_ENUM:
    SM_CHECK(ctx, in_choices(k->choices, v), SM_ERR_CONFIG, "%s: %s.%s = \"%s\" is not one of %s", origin, cfg->stage,
             k->name, v, k->choices);
    break;
  case SM_KEY_PATH:
  case SM_KEY_STR:
    SM_CHECK(ctx, strlen(v) < SM_CONFIG_VALUE_MAX, SM_ERR_CONFIG, "%s: %s.%s is longer than %d bytes", origin,
             cfg->stage, k->name, SM_CONFIG_VALUE_MAX);
    break;
  }
  return SM_OK;
}

sm_status sm_config_set(sm_ctx *ctx, sm_config *cfg, const char *name, const char *value, const char *origin) {
  int i = key_index(cfg, name);
  if (i < 0) {
    const char *names[SM_CONFIG_MAX_KEYS];
    for (int j = 0; j < cfg->nkeys; j++) names[j] = cfg->keys[j].name;
    char near[256];
    sm_near_matches(name, names, cfg->nkeys, near, sizeof near);
    return SM_ERR(ctx, SM_ERR_CONFIG, "%s: unknown key \"%s\" in stage %s%s%s (`sisma run --help-config` lists the keys)",
                  origin, name, cfg->stage, near[0] ? "; did you mean " : "", near);
  }
  SM_TRY(ctx, validate(ctx, cfg, &cfg->keys[i], value, origin));
  char *copy = strdup(value);
  SM_CHECK(ctx, copy, SM_ERR_NOMEM, "out of memory");
  free(cfg->values[i]);
  cfg->values[i] = copy;
  snprintf(cfg->origin[i], sizeof cfg->origin[i], "%s", origin);
  return SM_OK;
}

sm_status sm_config_finish(sm_ctx *ctx, sm_config *cfg) {
  for (int i = 0; i < cfg->nkeys; i++) {
    if (cfg->values[i]) continue;
    const sm_key *k = &cfg->keys[i];
    SM_CHECK(ctx, k->def, SM_ERR_CONFIG, "stage %s: required key \"%s\" is missing (%s)", cfg->stage, k->name, k->help);
    cfg->values[i] = strdup(k->def);
    SM_CHECK(ctx, cfg->values[i], SM_ERR_NOMEM, "out of memory");
    snprintf(cfg->origin[i], sizeof cfg->origin[i], "default");
  }
  return SM_OK;
}

static const char *value_of(const sm_config *cfg, const char *name) {
  int i = key_index(cfg, name);
  if (i < 0) {
    fprintf(stderr, "sisma: internal error: stage %s has no key %s\n", cfg->stage, name);
    abort(); /* a programming error in a stage, caught by every test that runs it */
  }
  return cfg->values[i] ? cfg->values[i] : "";
}

int64_t sm_config_int(const sm_config *cfg, const char *name) { return strtoll(value_of(cfg, name), NULL, 10); }
double sm_config_float(const sm_config *cfg, const char *name) { return strtod(value_of(cfg, name), NULL); }
int sm_config_bool(const sm_config *cfg, const char *name) {
  int b = 0;
  parse_bool(value_of(cfg, name), &b);
  return b;
}
const char *sm_config_str(const sm_config *cfg, const char *name) { return value_of(cfg, name); }
int sm_config_has_key(const sm_config *cfg, const char *name) { return key_index(cfg, name) >= 0; }

int sm_config_is_set(const sm_config *cfg, const char *name) {
  int i = key_index(cfg, name);
  return i >= 0 && cfg->values[i] && strcmp(cfg->origin[i], "default") != 0;
}

void sm_config_output_path(const sm_config *cfg, const char *name, char *out, size_t out_size) {
  const char *v = value_of(cfg, name);
  if (v[0] == '/' || !cfg->output_dir || !strcmp(cfg->output_dir, ".") || !v[0])
    snprintf(out, out_size, "%s", v);
  else
    snprintf(out, out_size, "%s/%s", cfg->output_dir, v);
}

void sm_config_input_path(const sm_config *cfg, const char *name, char *out, size_t out_size) {
  const char *v = value_of(cfg, name);
  sm_config_output_path(cfg, name, out, out_size);
  if (v[0] != '/' && strcmp(out, v) != 0 && access(out, F_OK) != 0) snprintf(out, out_size, "%s", v);
}

int sm_path_same(const char *a, const char *b) {
  struct stat sa, sb;
  if (stat(a, &sa) != 0 || stat(b, &sb) != 0) return 0;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}
