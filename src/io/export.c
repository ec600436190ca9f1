/* The `export` stage: sisma catalog -> miniSEED files (mseed_export.c) or the SeisBench HDF5
 * layout (import_h5.c's sibling, sm__export_seisbench). docs/import-export.md has the details. */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "sisma/job.h"

static const sm_key export_keys[] = {
    {"catalog", SM_KEY_PATH, NULL, 0, -1, NULL, "catalog to export"},
    {"format", SM_KEY_ENUM, NULL, 0, -1, "seisbench|mseed", "output format"},
    {"output", SM_KEY_PATH, NULL, 0, -1, NULL,
     "mseed: a directory (one file per trace); seisbench: the waveforms .hdf5 (metadata.csv beside it)"},
    {"encoding", SM_KEY_ENUM, "float32", 0, -1, "float32|int32|steim1|steim2",
     "mseed: sample encoding; float32 keeps catalog samples exactly, the integer encodings need integral samples"},
    {"reclen", SM_KEY_INT, "4096", 256, 8192, NULL, "mseed: record length in bytes (a power of two)"},
    {"bucket_traces", SM_KEY_INT, "0", 0, 1e9, NULL, "seisbench: traces per data/bucket<k> (0 = min(1024, 64 MiB))"},
    SM_KEYS_END,
};

static sm_status export_run(sm_ctx *ctx, const sm_config *cfg) {
  if (!strcmp(sm_config_str(cfg, "format"), "mseed")) return sm__export_mseed(ctx, cfg);
  return sm__export_seisbench(ctx, cfg);
}

static sm_status export_plan(sm_ctx *ctx, const sm_config *cfg, char *out, size_t n) {
  char c[4096], o[4096];
  sm_config_input_path(cfg, "catalog", c, sizeof c);
  sm_config_output_path(cfg, "output", o, sizeof o);
  snprintf(out, n, "reads its shard of %s; writes %s output to %s", c, sm_config_str(cfg, "format"), o);
  (void)ctx;
  return SM_OK;
}

const sm_stage sm_stage_export = {"export", "write a catalog as miniSEED files or in the SeisBench HDF5 layout",
                                  export_keys, export_run, export_plan};
