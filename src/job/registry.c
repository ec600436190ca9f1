/* The list of stages: the CLI, job files, --help-config and docs/job-reference.md all read it.
 * A new stage is one sm_stage definition in its subsystem and one line here. */
#include <string.h>

#include "sisma/job.h"

extern const sm_stage sm_stage_info;
extern const sm_stage sm_stage_synth;
extern const sm_stage sm_stage_import, sm_stage_export;
extern const sm_stage sm_stage_preprocess, sm_stage_features;
extern const sm_stage sm_stage_lm, sm_stage_glm, sm_stage_logistic;
extern const sm_stage sm_stage_pca, sm_stage_kmeans;
extern const sm_stage sm_stage_train, sm_stage_predict;

static const sm_stage *const all_stages[] = {
    &sm_stage_info,
    &sm_stage_synth,
    &sm_stage_import,
    &sm_stage_export,
    &sm_stage_preprocess,
    &sm_stage_features,
    &sm_stage_lm,
    &sm_stage_glm,
    &sm_stage_logistic,
    &sm_stage_pca, &sm_stage_kmeans,
    &sm_stage_train,
    &sm_stage_predict,
    NULL,
};

const sm_stage *const *sm_stages(void) { return all_stages; }

const sm_stage *sm_stage_find(const char *name) {
  for (const sm_stage *const *s = all_stages; *s; s++)
    if (!strcmp((*s)->name, name)) return *s;
  return NULL;
}
