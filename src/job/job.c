/* Job files: YAML (libyaml document API, so every node keeps its line and column), overrides,
 * the resolved configuration as YAML text for provenance, and the stage loop. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "sisma/job.h"

#define JOB_MAX_STAGES 32

static const sm_key job_keys[] = {
    {"job", SM_KEY_STR, "sisma-job", 0, -1, NULL, "name of the job, used in logs"},
    {"output_dir", SM_KEY_PATH, ".", 0, -1, NULL, "directory for every relative output path (created if absent)"},
    {"memory_budget_mb", SM_KEY_INT, "0", 0, 1e9, NULL,
     "memory for trace buffers per rank in MiB; 0 = unlimited (shards that do not fit are streamed)"},
    SM_KEYS_END,
};

struct sm_job {
  char path[1024];
  sm_config top;
  int nstages;
  const sm_stage *stage[JOB_MAX_STAGES];
  sm_config cfg[JOB_MAX_STAGES];
  size_t line[JOB_MAX_STAGES], col[JOB_MAX_STAGES]; /* where each stage is in the file (1-based) */
  char *yaml;                                       /* resolved configuration */
};

const char *sm_job_yaml(const sm_job *job) { return job->yaml; }

static void where(char *out, size_t n, const char *path, const yaml_node_t *node) {
  snprintf(out, n, "%s:%zu:%zu", path, node->start_mark.line + 1, node->start_mark.column + 1);
}

/* Scalar value of a node; a sequence of scalars becomes "a,b,c". */
static sm_status node_text(sm_ctx *ctx, yaml_document_t *doc, yaml_node_t *v, const char *at, char *out, size_t n) {
  if (v->type == YAML_SCALAR_NODE) {
    snprintf(out, n, "%.*s", (int)v->data.scalar.length, (const char *)v->data.scalar.value);
    return SM_OK;
  }
  SM_CHECK(ctx, v->type == YAML_SEQUENCE_NODE, SM_ERR_CONFIG,
           "%s: expected a value or a list of values, found a mapping", at);
  out[0] = '\0';
  for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
    yaml_node_t *e = yaml_document_get_node(doc, *it);
    SM_CHECK(ctx, e && e->type == YAML_SCALAR_NODE, SM_ERR_CONFIG, "%s: list items must be plain values", at);
    size_t l = strlen(out);
    snprintf(out + l, n - l, "%s%.*s", l ? "," : "", (int)e->data.scalar.length, (const char *)e->data.scalar.value);
  }
  return SM_OK;
}

/* Apply a YAML mapping of key: value to cfg. */
static sm_status apply_mapping(sm_ctx *ctx, sm_job *job, yaml_document_t *doc, yaml_node_t *map, sm_config *cfg) {
  char at[1200], text[SM_CONFIG_VALUE_MAX + 8];
  where(at, sizeof at, job->path, map);
  SM_CHECK(ctx, map->type == YAML_MAPPING_NODE, SM_ERR_CONFIG, "%s: stage %s: expected a mapping of key: value", at,
           cfg->stage);
  for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
    yaml_node_t *k = yaml_document_get_node(doc, p->key), *v = yaml_document_get_node(doc, p->value);
    where(at, sizeof at, job->path, k);
    SM_CHECK(ctx, k->type == YAML_SCALAR_NODE, SM_ERR_CONFIG, "%s: keys must be plain names", at);
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)k->data.scalar.length, (const char *)k->data.scalar.value);
    if (sm_config_has_key(cfg, name)) where(at, sizeof at, job->path, v); /* bad values: point at the value */
    SM_TRY(ctx, node_text(ctx, doc, v, at, text, sizeof text));
    SM_TRY(ctx, sm_config_set(ctx, cfg, name, text, at));
  }
  return SM_OK;
}

static sm_status add_stage(sm_ctx *ctx, sm_job *job, yaml_document_t *doc, yaml_node_t *item) {
  char at[1200];
  where(at, sizeof at, job->path, item);
  SM_CHECK(ctx, item->type == YAML_MAPPING_NODE && item->data.mapping.pairs.top - item->data.mapping.pairs.start == 1,
           SM_ERR_CONFIG, "%s: each stage is a mapping with one key, the stage name (e.g. `- synth: {traces: 100}`)",
           at);
  SM_CHECK(ctx, job->nstages < JOB_MAX_STAGES, SM_ERR_CONFIG, "%s: more than %d stages", at, JOB_MAX_STAGES);
  yaml_node_pair_t *p = item->data.mapping.pairs.start;
  yaml_node_t *k = yaml_document_get_node(doc, p->key), *v = yaml_document_get_node(doc, p->value);
  where(at, sizeof at, job->path, k);
  SM_CHECK(ctx, k->type == YAML_SCALAR_NODE, SM_ERR_CONFIG, "%s: a stage name must be a plain name (e.g. `- synth:`)",
           at);
  char name[128];
  snprintf(name, sizeof name, "%.*s", (int)k->data.scalar.length, (const char *)k->data.scalar.value);
  const sm_stage *st = sm_stage_find(name);
  if (!st) {
    const char *names[64];
    int n = 0;
    for (const sm_stage *const *s = sm_stages(); *s && n < 64; s++)
      names[n++] = (*s)->name;
    char near[256];
    sm_near_matches(name, names, n, near, sizeof near);
    return SM_ERR(ctx, SM_ERR_CONFIG, "%s: unknown stage \"%s\"%s%s (`sisma run --help-config` lists the stages)", at,
                  name, near[0] ? "; did you mean " : "", near);
  }
  sm_config *cfg = &job->cfg[job->nstages];
  sm_config_init(cfg, st->name, st->keys);
  job->line[job->nstages] = k->start_mark.line + 1, job->col[job->nstages] = k->start_mark.column + 1;
  job->stage[job->nstages++] = st;
  if (v->type == YAML_SCALAR_NODE && v->data.scalar.length == 0) return SM_OK; /* `- info:` with no keys */
  return apply_mapping(ctx, job, doc, v, cfg);
}

static sm_status parse_document(sm_ctx *ctx, sm_job *job, yaml_document_t *doc) {
  yaml_node_t *root = yaml_document_get_root_node(doc);
  char at[1200];
  SM_CHECK(ctx, root && root->type == YAML_MAPPING_NODE, SM_ERR_CONFIG,
           "%s:1:1: a job file is a mapping with a `stages:` list (see jobs/demo.yaml)", job->path);
  yaml_node_t *stages = NULL;
  for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
    yaml_node_t *k = yaml_document_get_node(doc, p->key), *v = yaml_document_get_node(doc, p->value);
    where(at, sizeof at, job->path, k);
    SM_CHECK(ctx, k->type == YAML_SCALAR_NODE, SM_ERR_CONFIG, "%s: keys must be plain names", at);
    if (!strcmp((const char *)k->data.scalar.value, "stages")) {
      where(at, sizeof at, job->path, v);
      SM_CHECK(ctx, v->type == YAML_SEQUENCE_NODE, SM_ERR_CONFIG, "%s: `stages` must be a list", at);
      for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++)
        SM_TRY(ctx, add_stage(ctx, job, doc, yaml_document_get_node(doc, *it)));
      stages = v;
      continue;
    }
    char text[SM_CONFIG_VALUE_MAX + 8];
    where(at, sizeof at, job->path, v);
    SM_TRY(ctx, node_text(ctx, doc, v, at, text, sizeof text));
    where(at, sizeof at, job->path, k);
    SM_TRY(ctx, sm_config_set(ctx, &job->top, (const char *)k->data.scalar.value, text, at));
  }
  where(at, sizeof at, job->path, stages ? stages : root);
  SM_CHECK(ctx, job->nstages > 0, SM_ERR_CONFIG, "%s: the job has no stages (%s)", at,
           stages ? "the `stages:` list is empty" : "add a `stages:` list");
  return SM_OK;
}

static sm_status parse_file(sm_ctx *ctx, sm_job *job) {
  FILE *f = fopen(job->path, "rb");
  SM_CHECK(ctx, f, SM_ERR_IO, "cannot open job file %s: %s", job->path, strerror(errno));
  yaml_parser_t parser;
  yaml_document_t doc;
  yaml_parser_initialize(&parser);
  yaml_parser_set_input_file(&parser, f);
  sm_status st = SM_OK;
  if (!yaml_parser_load(&parser, &doc)) {
    st = SM_ERR(ctx, SM_ERR_CONFIG, "%s:%zu:%zu: YAML syntax error: %s%s%s", job->path, parser.problem_mark.line + 1,
                parser.problem_mark.column + 1, parser.problem ? parser.problem : "?", parser.context ? " " : "",
                parser.context ? parser.context : "");
  } else {
    st = parse_document(ctx, job, &doc);
    yaml_document_delete(&doc);
  }
  yaml_parser_delete(&parser);
  fclose(f);
  return st;
}

static sm_status apply_override(sm_ctx *ctx, sm_job *job, const char *ov) {
  const char *eq = strchr(ov, '=');
  SM_CHECK(ctx, eq && eq > ov, SM_ERR_CONFIG, "--set %s: expected stage.key=value or key=value", ov);
  char lhs[256];
  snprintf(lhs, sizeof lhs, "%.*s", (int)(eq - ov), ov);
  char origin[300];
  snprintf(origin, sizeof origin, "--set %s", lhs);
  char *dot = strchr(lhs, '.');
  if (!dot) return sm_config_set(ctx, &job->top, lhs, eq + 1, origin);
  *dot = '\0';
  int hits = 0;
  for (int i = 0; i < job->nstages; i++)
    if (!strcmp(job->stage[i]->name, lhs)) {
      SM_TRY(ctx, sm_config_set(ctx, &job->cfg[i], dot + 1, eq + 1, origin));
      hits++;
    }
  SM_CHECK(ctx, hits, SM_ERR_CONFIG, "%s: the job has no stage \"%s\"", origin, lhs);
  return SM_OK;
}

/* ---- resolved YAML ---- */

typedef struct {
  char *s;
  size_t len, cap;
} strbuf;

static void sb_printf(strbuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (b->len + (size_t)n + 1 > b->cap) {
    size_t cap = (b->cap + (size_t)n + 1) * 2;
    char *s = realloc(b->s, cap);
    if (!s) return;
    b->s = s;
    b->cap = cap;
  }
  va_start(ap, fmt);
  vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

static void sb_value(strbuf *b, const sm_key *k, const char *v) {
  if (k->type == SM_KEY_INT || k->type == SM_KEY_FLOAT || k->type == SM_KEY_BOOL) {
    sb_printf(b, "%s", v);
    return;
  }
  sb_printf(b, "\"");
  for (const char *p = v; *p; p++)
    sb_printf(b, (*p == '"' || *p == '\\') ? "\\%c" : "%c", *p);
  sb_printf(b, "\"");
}

static void sb_config(strbuf *b, const sm_config *cfg, const char *indent) {
  for (int i = 0; i < cfg->nkeys; i++) {
    if (!cfg->values[i]) continue;
    sb_printf(b, "%s%s: ", indent, cfg->keys[i].name);
    sb_value(b, &cfg->keys[i], cfg->values[i]);
    sb_printf(b, "\n");
  }
}

static char *resolved_yaml(const sm_job *job) {
  strbuf b = {0};
  sb_printf(&b, "# resolved by sisma %s from %s\n", sm_version(), job->path);
  sb_config(&b, &job->top, "");
  sb_printf(&b, "stages:\n");
  for (int i = 0; i < job->nstages; i++) {
    sb_printf(&b, "  - %s:\n", job->stage[i]->name);
    sb_config(&b, &job->cfg[i], "      ");
  }
  return b.s;
}

static sm_status load_local(sm_ctx *ctx, sm_job *job, int n_overrides, char *const *overrides) {
  SM_TRY(ctx, parse_file(ctx, job));
  for (int i = 0; i < n_overrides; i++)
    SM_TRY(ctx, apply_override(ctx, job, overrides[i]));
  SM_TRY(ctx, sm_config_finish(ctx, &job->top));
  for (int i = 0; i < job->nstages; i++) {
    sm_status st = sm_config_finish(ctx, &job->cfg[i]);
    if (st != SM_OK) { /* a required key is missing: say which stage of the file lacks it */
      char why[SM_ERRMSG_MAX];
      snprintf(why, sizeof why, "%s", ctx->err_msg);
      return SM_ERR(ctx, st, "%s:%zu:%zu: %s", job->path, job->line[i], job->col[i], why);
    }
  }
  job->yaml = resolved_yaml(job);
  SM_CHECK(ctx, job->yaml, SM_ERR_NOMEM, "out of memory");
  for (int i = 0; i < job->nstages; i++) {
    job->cfg[i].output_dir = sm_config_str(&job->top, "output_dir");
    job->cfg[i].memory_budget_mb = sm_config_int(&job->top, "memory_budget_mb");
    job->cfg[i].job_yaml = job->yaml;
  }
  return SM_OK;
}

sm_status sm_job_load(sm_ctx *ctx, const char *path, int n_overrides, char *const *overrides, sm_job **out) {
  *out = NULL;
  sm_job *job = calloc(1, sizeof *job);
  sm_status st = job ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory");
  if (job) {
    snprintf(job->path, sizeof job->path, "%s", path);
    sm_config_init(&job->top, "job", job_keys);
    st = load_local(ctx, job, n_overrides, overrides);
  }
  st = sm_ctx_agree(ctx, st);
  if (st != SM_OK) {
    sm_job_destroy(&job);
    return st;
  }
  *out = job;
  return SM_OK;
}

void sm_job_destroy(sm_job **jobp) {
  if (!jobp || !*jobp) return;
  sm_job *job = *jobp;
  sm_config_fini(&job->top);
  for (int i = 0; i < job->nstages; i++)
    sm_config_fini(&job->cfg[i]);
  free(job->yaml);
  free(job);
  *jobp = NULL;
}

/* Dry run: rank 0 prints the resolved configuration and every rank's plan, in rank order. */
static sm_status dry_run(sm_ctx *ctx, sm_job *job) {
  if (ctx->rank == 0) printf("%s", job->yaml);
  for (int i = 0; i < job->nstages; i++) {
    char plan[2048] = "";
    const sm_stage *s = job->stage[i];
    sm_status st = s->plan ? s->plan(ctx, &job->cfg[i], plan, sizeof plan) : SM_OK;
    SM_TRY(ctx, sm_ctx_agree(ctx, st));
    if (!plan[0]) snprintf(plan, sizeof plan, "runs %s (no per-rank plan)", s->name);
    char *all = ctx->rank == 0 ? malloc((size_t)ctx->size * sizeof plan) : NULL;
    SM_MPI(ctx, MPI_Gather(plan, (int)sizeof plan, MPI_CHAR, all, (int)sizeof plan, MPI_CHAR, 0, ctx->comm));
    if (ctx->rank == 0) {
      printf("stage %d/%d %s (dry run):\n", i + 1, job->nstages, s->name);
      for (int r = 0; all && r < ctx->size; r++)
        printf("  rank %d/%d: %s\n", r, ctx->size, all + (size_t)r * sizeof plan);
      free(all);
    }
  }
  return SM_OK;
}

sm_status sm_stage_run(sm_ctx *ctx, const sm_stage *stage, sm_config *cfg) {
  SM_TRY(ctx, sm_ctx_agree(ctx, sm_config_finish(ctx, cfg)));
  return sm_ctx_agree(ctx, stage->run(ctx, cfg));
}

sm_status sm_job_run(sm_ctx *ctx, sm_job *job, int dry, int resume) {
  for (int i = 0; i < job->nstages; i++)
    job->cfg[i].resume = resume;
  if (dry) return dry_run(ctx, job);
  const char *dir = sm_config_str(&job->top, "output_dir");
  SM_TRY(ctx, sm_ctx_agree(ctx, ctx->rank == 0 ? sm_make_dirs(ctx, dir) : SM_OK));
  sm_info(ctx, "job %s: %d stage(s), %d rank(s), outputs in %s", sm_config_str(&job->top, "job"), job->nstages,
          ctx->size, dir);
  for (int i = 0; i < job->nstages; i++) {
    double t0 = sm_wtime();
    sm_info(ctx, "stage %d/%d: %s", i + 1, job->nstages, job->stage[i]->name);
    sm_status st = sm_ctx_agree(ctx, job->stage[i]->run(ctx, &job->cfg[i]));
    if (st != SM_OK) return st;
    sm_info(ctx, "stage %d/%d: %s done in %.2f s", i + 1, job->nstages, job->stage[i]->name, sm_wtime() - t0);
  }
  return SM_OK;
}

static const char *type_name(sm_key_type t) {
  static const char *n[] = {"int", "float", "bool", "string", "path", "choice"};
  return n[t];
}

static void print_keys(FILE *to, const sm_key *keys, int markdown) {
  for (const sm_key *k = keys; k->name; k++) {
    char range[128] = "";
    if ((k->type == SM_KEY_INT || k->type == SM_KEY_FLOAT) && k->min <= k->max)
      snprintf(range, sizeof range, "%g .. %g", k->min, k->max);
    else if (k->type == SM_KEY_ENUM)
      snprintf(range, sizeof range, "%s", k->choices);
    if (markdown)
      fprintf(to, "| `%s` | %s | %s | %s | %s |\n", k->name, type_name(k->type),
              k->def ? (k->def[0] ? k->def : "\"\"") : "**required**", range, k->help);
    else
      fprintf(to, "    %-22s %-7s %-14s %s%s%s%s\n", k->name, type_name(k->type),
              k->def ? (k->def[0] ? k->def : "\"\"") : "(required)", k->help, range[0] ? " [" : "", range,
              range[0] ? "]" : "");
  }
}

void sm_job_print_reference(FILE *to, int markdown) {
  if (markdown) {
    fprintf(to, "# Job-file reference\n\n<!-- generated by `sisma run --help-config --markdown`; do not edit -->\n\n");
    fprintf(to, "A job file is YAML: job-level keys, then `stages:`, a list of one-key mappings "
                "`- <stage>: {key: value, ...}` run in order. Override any key on the command line with "
                "`--set <stage>.<key>=<value>` (or `--set <key>=<value>` for job-level keys).\n\n");
    fprintf(to, "## Job-level keys\n\n| key | type | default | range | meaning |\n|---|---|---|---|---|\n");
  } else {
    fprintf(to, "Job-level keys:\n");
  }
  print_keys(to, job_keys, markdown);
  for (const sm_stage *const *s = sm_stages(); *s; s++) {
    if (markdown)
      fprintf(to, "\n## Stage `%s`\n\n%s\n\n| key | type | default | range | meaning |\n|---|---|---|---|---|\n",
              (*s)->name, (*s)->summary);
    else
      fprintf(to, "\nStage %s: %s\n", (*s)->name, (*s)->summary);
    print_keys(to, (*s)->keys, markdown);
  }
}
