/* The `sisma` executable: `sisma run JOB.yaml ...` and one sub-command per stage
 * (`sisma synth -o cat.h5 --traces 1000`, `sisma info cat.h5`). Thin: it turns arguments into
 * a stage configuration and hands over to the library. Always an MPI program (1 rank is fine). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sisma/sisma.h"

/* Positional argument and short flags of the sub-commands. */
static const struct {
  const char *stage, *positional;
} positionals[] = {{"info", "catalog"}, {"export", "catalog"},   {"lm", "formula"},
                   {"glm", "formula"},  {"logistic", "formula"}, {NULL, NULL}};

static void usage(FILE *to) {
  fprintf(to, "usage: sisma run JOB.yaml [--set stage.key=value ...] [--dry-run] [--resume]\n"
              "       sisma run --help-config [--markdown]\n"
              "       sisma <stage> [ARG] [--key value ...]   stages:");
  for (const sm_stage *const *s = sm_stages(); *s; s++) fprintf(to, " %s", (*s)->name);
  fprintf(to, "\n       sisma <stage> --help\n       sisma --version\n"
              "Launch under mpirun/srun for several ranks. Environment: SISMA_LOG=error|warn|info|debug, "
              "SISMA_LOG_ALL=1 (log from every rank).\n");
}

static int finish(sm_ctx *ctx, sm_status st) {
  if (st != SM_OK) sm_ctx_print_error(ctx, 1);
  sm_ctx_destroy(&ctx);
  MPI_Finalize();
  return st == SM_OK ? 0 : 1;
}

static int cmd_run(sm_ctx *ctx, int argc, char **argv) {
  const char *path = NULL;
  int dry = 0, resume = 0, nset = 0, help = 0, md = 0;
  char **sets = calloc((size_t)argc + 1, sizeof *sets);
  sm_status st = sets ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory");
  for (int i = 0; st == SM_OK && i < argc; i++) {
    if (!strcmp(argv[i], "--dry-run")) dry = 1;
    else if (!strcmp(argv[i], "--resume")) resume = 1;
    else if (!strcmp(argv[i], "--help-config")) help = 1;
    else if (!strcmp(argv[i], "--markdown")) md = 1;
    else if (!strcmp(argv[i], "--set") && i + 1 < argc) sets[nset++] = argv[++i];
    else if (!strncmp(argv[i], "--set=", 6)) sets[nset++] = argv[i] + 6;
    else if (argv[i][0] != '-' && !path) path = argv[i];
    else st = SM_ERR(ctx, SM_ERR_CONFIG, "sisma run: unexpected argument \"%s\" (see sisma --help)", argv[i]);
  }
  if (st == SM_OK && help) {
    if (ctx->rank == 0) sm_job_print_reference(stdout, md);
  } else if (st == SM_OK && !path) {
    st = SM_ERR(ctx, SM_ERR_CONFIG, "sisma run: no job file given (usage: sisma run JOB.yaml)");
  } else if (st == SM_OK) {
    sm_job *job = NULL;
    st = sm_job_load(ctx, path, nset, sets, &job);
    if (st == SM_OK) st = sm_job_run(ctx, job, dry, resume);
    sm_job_destroy(&job);
  }
  free(sets);
  return finish(ctx, sm_ctx_agree(ctx, st));
}

static void stage_help(const sm_stage *s) {
  printf("sisma %s: %s\nkeys (give as --key value; --memory-budget-mb MiB per rank is accepted too):\n", s->name,
         s->summary);
  for (const sm_key *k = s->keys; k->name; k++)
    printf("  --%-22s %s%s%s%s\n", k->name, k->help, k->def ? " (default: " : " (required)", k->def ? k->def : "",
           k->def ? ")" : "");
}

static int is_bool_key(const sm_stage *s, const char *key) {
  for (const sm_key *k = s->keys; k->name; k++)
    if (!strcmp(k->name, key)) return k->type == SM_KEY_BOOL;
  return 0;
}

/* The job-level memory budget, accepted by every sub-command as --memory-budget-mb MiB. */
static sm_status set_budget(sm_ctx *ctx, sm_config *cfg, const char *val) {
  char *end;
  long long mb = strtoll(val, &end, 10);
  SM_CHECK(ctx, *val && !*end && mb >= 0, SM_ERR_CONFIG, "--memory-budget-mb %s: expected MiB >= 0", val);
  cfg->memory_budget_mb = mb;
  return SM_OK;
}

static int cmd_stage(sm_ctx *ctx, const sm_stage *s, int argc, char **argv) {
  sm_config cfg;
  sm_config_init(&cfg, s->name, s->keys);
  const char *pos = NULL;
  for (int i = 0; positionals[i].stage; i++)
    if (!strcmp(positionals[i].stage, s->name)) pos = positionals[i].positional;
  sm_status st = SM_OK;
  for (int i = 0; st == SM_OK && i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      if (ctx->rank == 0) stage_help(s);
      sm_config_fini(&cfg);
      return finish(ctx, SM_OK);
    }
    char key[128];
    const char *val = NULL;
    if (!strcmp(a, "-o")) {
      snprintf(key, sizeof key, "output");
      val = i + 1 < argc ? argv[++i] : NULL;
    } else if (!strncmp(a, "--", 2)) {
      const char *eq = strchr(a, '=');
      snprintf(key, sizeof key, "%.*s", (int)(eq ? eq - a - 2 : (long)strlen(a) - 2), a + 2);
      for (char *p = key; *p; p++)
        if (*p == '-') *p = '_'; /* --sampling-rate-hz == --sampling_rate_hz */
      val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
      if (!eq && is_bool_key(s, key) && (!val || val[0] == '-')) { /* a bare flag: --center */
        if (val) i--;
        val = "true";
      }
    } else if (pos) {
      snprintf(key, sizeof key, "%s", pos);
      val = a;
      pos = NULL;
    } else {
      st = SM_ERR(ctx, SM_ERR_CONFIG, "sisma %s: unexpected argument \"%s\" (see sisma %s --help)", s->name, a, s->name);
      break;
    }
    if (!val) st = SM_ERR(ctx, SM_ERR_CONFIG, "sisma %s: %s needs a value", s->name, a);
    else if (!strcmp(key, "memory_budget_mb")) st = set_budget(ctx, &cfg, val);
    else st = sm_config_set(ctx, &cfg, key, val, "command line");
  }
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) st = sm_stage_run(ctx, s, &cfg);
  sm_config_fini(&cfg);
  return finish(ctx, st);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  sm_ctx *ctx = NULL;
  if (sm_ctx_create(MPI_COMM_WORLD, &ctx) != SM_OK) {
    fprintf(stderr, "sisma: cannot create the MPI context\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  sm_signals_install();
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    if (ctx->rank == 0) usage(stdout);
    return finish(ctx, SM_OK);
  }
  if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
    if (ctx->rank == 0) printf("sisma %s\n", sm_version());
    return finish(ctx, SM_OK);
  }
  if (!strcmp(argv[1], "run")) return cmd_run(ctx, argc - 2, argv + 2);
  const sm_stage *s = sm_stage_find(argv[1]);
  if (s) return cmd_stage(ctx, s, argc - 2, argv + 2);
  if (ctx->rank == 0) {
    fprintf(stderr, "sisma: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
  }
  return finish(ctx, SM_ERR_CONFIG);
}
