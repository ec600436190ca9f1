/* Job configuration: a registry of typed keys per stage (one table drives parsing, validation,
 * `sisma run --help-config` and docs/job-reference.md), YAML job files read with libyaml, and
 * `--set stage.key=value` overrides. Every error names file:line:column and gives a hint.
 *
 * A job file:
 *   job: demo                     # name (optional)
 *   output_dir: out/demo          # relative outputs of every stage go here
 *   memory_budget_mb: 0           # per rank, 0 = unlimited
 *   stages:
 *     - synth:  {output: demo.h5, traces: 2000}
 *     - info:   {catalog: demo.h5}
 * Start reading at sm_key and sm_config_get_*. */
#ifndef SISMA_CONFIG_H
#define SISMA_CONFIG_H

#include "sisma/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  SM_KEY_INT,   /* 64-bit integer within [min, max] */
  SM_KEY_FLOAT, /* double within [min, max] */
  SM_KEY_BOOL,  /* true/false/yes/no/1/0 */
  SM_KEY_STR,   /* free text */
  SM_KEY_PATH,  /* a file path; relative output paths are resolved against output_dir */
  SM_KEY_ENUM,  /* one of `choices` ("a|b|c") */
} sm_key_type;

/* One configurable key. def == NULL means required. */
typedef struct {
  const char *name;
  sm_key_type type;
  const char *def;
  double min, max; /* bounds for INT/FLOAT (ignored when min > max) */
  const char *choices;
  const char *help;
} sm_key;

#define SM_KEYS_END {NULL, 0, NULL, 0, 0, NULL, NULL}
#define SM_CONFIG_MAX_KEYS 64
#define SM_CONFIG_VALUE_MAX 1024

/* The resolved values of one stage (every key of its table has a value or is required-absent). */
typedef struct sm_config {
  const char *stage;   /* stage name */
  const sm_key *keys;  /* the stage's table */
  int nkeys;
  char *values[SM_CONFIG_MAX_KEYS];   /* text of each value (NULL: unset) */
  char origin[SM_CONFIG_MAX_KEYS][128]; /* "job.yaml:12:7", "--set", "default" */
  const char *output_dir;             /* borrowed from the job */
  int64_t memory_budget_mb;
  const char *job_yaml;               /* resolved job configuration as YAML (provenance) */
  int resume;                         /* `sisma run --resume`: continue from checkpoints */
} sm_config;

/* Set key `name` to `value` from `origin`, validating type and bounds. Local. On error records
 * "origin: stage.key: why (hint)" and returns SM_ERR_CONFIG (unknown keys list the near matches). */
sm_status sm_config_set(sm_ctx *ctx, sm_config *cfg, const char *name, const char *value, const char *origin);
/* Fill defaults, and fail with SM_ERR_CONFIG naming the first required key that is absent. Local. */
sm_status sm_config_finish(sm_ctx *ctx, sm_config *cfg);
void sm_config_init(sm_config *cfg, const char *stage, const sm_key *keys);
void sm_config_fini(sm_config *cfg);

/* Typed getters: the key must exist in the table (a bug otherwise: SM_ERR_INTERNAL abort). */
int64_t sm_config_int(const sm_config *cfg, const char *name);
double sm_config_float(const sm_config *cfg, const char *name);
int sm_config_bool(const sm_config *cfg, const char *name);
const char *sm_config_str(const sm_config *cfg, const char *name); /* "" if unset and optional */
int sm_config_is_set(const sm_config *cfg, const char *name);      /* given by the user, not default */
int sm_config_has_key(const sm_config *cfg, const char *name);     /* the stage's table has it */
/* A path key resolved against output_dir when relative (for outputs); out has out_size bytes. */
void sm_config_output_path(const sm_config *cfg, const char *name, char *out, size_t out_size);

/* A path key for an input: relative paths are looked up in output_dir first (a file an earlier
 * stage wrote there), then relative to the working directory. */
void sm_config_input_path(const sm_config *cfg, const char *name, char *out, size_t out_size);
/* 1 if two paths name the same existing file (an output must never overwrite an input). Local. */
int sm_path_same(const char *a, const char *b);

/* Edit distance helper for "did you mean": writes up to 3 names from `names` close to `word`. */
void sm_near_matches(const char *word, const char *const *names, int n, char *out, size_t out_size);

#ifdef __cplusplus
}
#endif
#endif
