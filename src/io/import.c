/* The `import` stage: external waveform data -> sisma catalog. One key table for every format;
 * `format` dispatches to miniSEED (mseed_import.c) or to the HDF5 layouts (import_h5.c).
 * docs/import-export.md documents each format's policies. */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "sisma/job.h"

static const sm_key import_keys[] = {
    {"format", SM_KEY_ENUM, NULL, 0, -1, "mseed|stead|seisbench|instance", "input format"},
    {"input", SM_KEY_PATH, NULL, 0, -1, NULL,
     "mseed: a file, a directory (all its files, sorted) or a comma-separated list; HDF5 layouts: the waveforms .hdf5"},
    {"metadata", SM_KEY_PATH, "", 0, -1, NULL,
     "stead/seisbench/instance: the metadata CSV; mseed: optional windows CSV (station_code + time or p_time); "
     "\"\" = none"},
    {"output", SM_KEY_PATH, NULL, 0, -1, NULL, "catalog to create"},
    {"sampling_rate_hz", SM_KEY_FLOAT, "0", 0, 1e6, NULL,
     "catalog rate in Hz; mseed data at other rates are resampled (polyphase FIR), the HDF5 layouts refuse a "
     "different rate; 0 = keep the input rate (must be uniform)"},
    {"window_s", SM_KEY_FLOAT, "60", 1e-3, 1e7, NULL, "mseed: window length in seconds"},
    {"window_before_s", SM_KEY_FLOAT, "10", 0, 1e7, NULL, "mseed: seconds of data before each windows-CSV time"},
    {"window_step_s", SM_KEY_FLOAT, "0", 0, 1e7, NULL,
     "mseed without windows CSV: step between fixed windows in seconds (0 = window_s)"},
    {"components", SM_KEY_STR, "ZNE", 0, -1, NULL, "output component order (letters from Z, N, E)"},
    {"gap_policy", SM_KEY_ENUM, "reject", 0, -1, "reject|zero|interpolate",
     "mseed: a window with missing samples is rejected, or its gaps up to max_gap_s are zero-filled or linearly "
     "interpolated"},
    {"max_gap_s", SM_KEY_FLOAT, "10", 0, 1e7, NULL, "mseed: longest gap (s) that zero|interpolate fill; longer: rejected"},
    {"overlap_policy", SM_KEY_ENUM, "first", 0, -1, "first|reject",
     "mseed: overlapping records that disagree: keep the first-read samples, or reject the windows they touch"},
    {"missing_components", SM_KEY_ENUM, "zero", 0, -1, "zero|refuse",
     "mseed: a station lacking some components: import them as zeros (column trace_components_present) or skip it"},
    {"on_error", SM_KEY_ENUM, "fail", 0, -1, "fail|skip",
     "mseed: a bad input file fails the import (nothing written), or is skipped with a warning"},
    {"compression", SM_KEY_INT, "0", 0, 9, NULL, "deflate level of the catalog's waveforms (0 = none)"},
    SM_KEYS_END,
};

static sm_status import_run(sm_ctx *ctx, const sm_config *cfg) {
  if (!strcmp(sm_config_str(cfg, "format"), "mseed")) return sm__import_mseed(ctx, cfg);
  return sm__import_h5layout(ctx, cfg);
}

static sm_status import_plan(sm_ctx *ctx, const sm_config *cfg, char *out, size_t n) {
  char in[4096], o[4096];
  sm_config_input_path(cfg, "input", in, sizeof in);
  sm_config_output_path(cfg, "output", o, sizeof o);
  if (!strcmp(sm_config_str(cfg, "format"), "mseed"))
    snprintf(out, n, "reads a block of the miniSEED files of %s, then the stations assigned to it; writes its "
                     "windows into %s",
             in, o);
  else
    snprintf(out, n, "reads its share of the %s traces of %s; writes them into %s", sm_config_str(cfg, "format"), in, o);
  (void)ctx;
  return SM_OK;
}

const sm_stage sm_stage_import = {"import", "convert miniSEED, STEAD, SeisBench or INSTANCE data into a catalog",
                                  import_keys, import_run, import_plan};
