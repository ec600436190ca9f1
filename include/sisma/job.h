/* Jobs: a pipeline of stages read from a YAML job file and run in order on every rank.
 * Each stage is an sm_stage: a name, a key table (sm_key) and a run function. The registry of
 * stages (src/job/registry.c) is the single list the CLI, --help-config and the docs use.
 * Sub-commands (`sisma synth ...`) are the same stages with keys given as --flags. */
#ifndef SISMA_JOB_H
#define SISMA_JOB_H

#include "sisma/config.h"
#include "sisma/shard.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sm_stage {
  const char *name;
  const char *summary; /* one line for --help */
  const sm_key *keys;
  /* Run the stage. Collective: returns the same status on every rank. */
  sm_status (*run)(sm_ctx *ctx, const sm_config *cfg);
  /* Describe this rank's share of the work without touching data (for --dry-run); may be NULL,
   * then the runner prints the resolved keys only. Writes into out. Collective. */
  sm_status (*plan)(sm_ctx *ctx, const sm_config *cfg, char *out, size_t out_size);
} sm_stage;

/* All registered stages, NULL-terminated. */
const sm_stage *const *sm_stages(void);
const sm_stage *sm_stage_find(const char *name);

typedef struct sm_job sm_job;

/* Load a job file and apply overrides ("stage.key=value" or "key=value" for job-level keys,
 * or "stage.key" for the only stage of that name). Collective (every rank parses; errors are
 * agreed). */
sm_status sm_job_load(sm_ctx *ctx, const char *path, int n_overrides, char *const *overrides, sm_job **out);
void sm_job_destroy(sm_job **job);
/* Run all stages in order (dry_run: print each rank's share; resume: stages continue from their
 * checkpoints). Collective. */
sm_status sm_job_run(sm_ctx *ctx, sm_job *job, int dry_run, int resume);
/* Run one stage with a ready configuration (the CLI's sub-commands). Collective. */
sm_status sm_stage_run(sm_ctx *ctx, const sm_stage *stage, sm_config *cfg);
/* The resolved configuration as YAML text (borrowed). Local. */
const char *sm_job_yaml(const sm_job *job);

/* Print the key reference of every stage, as text (markdown = 0) or as docs/job-reference.md. */
void sm_job_print_reference(FILE *to, int markdown);

#ifdef __cplusplus
}
#endif
#endif
