/* sisma core: the context every call takes first, the project-wide status codes, error
 * propagation with file:line frames, cross-rank agreement on failure, logging and timers.
 *
 * Invariants: a collective function either succeeds on every rank of the context or returns the
 * same status on every rank (see sm_ctx_agree). The context owns a duplicated communicator with
 * MPI_ERRORS_RETURN, so MPI failures come back as statuses instead of killing the job silently.
 * Start reading at sm_ctx_create and the SM_TRY / SM_CHECK macros. */
#ifndef SISMA_CORE_H
#define SISMA_CORE_H

#include <mpi.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One status enum for the project; sm_status_str gives a short text for each code. */
typedef enum {
  SM_OK = 0,
  SM_ERR_NOMEM,       /* allocation failed */
  SM_ERR_ARG,         /* invalid argument from the caller (a bug, or a bad CLI value) */
  SM_ERR_CONFIG,      /* bad job file / option: unknown key, bad type, out of range */
  SM_ERR_IO,          /* operating-system I/O: open, read, write, rename */
  SM_ERR_HDF5,        /* the HDF5 library reported an error */
  SM_ERR_MPI,         /* an MPI call failed */
  SM_ERR_FORMAT,      /* malformed input file: miniSEED, HDF5 layout, CSV */
  SM_ERR_DATA,        /* well-formed input with unusable values: NaN, gaps, rate mismatch */
  SM_ERR_UNSUPPORTED, /* a feature or format this build does not handle */
  SM_ERR_INTERRUPTED, /* stopped by a signal (preemption); a checkpoint was written */
  SM_ERR_NUMERIC,     /* numerical failure: singular matrix, no convergence */
  SM_ERR_INTERNAL,    /* an invariant did not hold: a bug in sisma */
  SM_ERR_PEER,        /* another rank failed; its message is attached */
  SM_STATUS_COUNT
} sm_status;

const char *sm_status_str(sm_status s);

typedef enum { SM_LOG_ERROR = 0, SM_LOG_WARN, SM_LOG_INFO, SM_LOG_DEBUG } sm_log_level;

#define SM_ERRMSG_MAX 1024
#define SM_TRACE_MAX 8

typedef struct sm_ctx {
  MPI_Comm comm;          /* duplicated communicator, MPI_ERRORS_RETURN */
  int rank, size;         /* MPI values in comm */
  sm_log_level log_level; /* messages above this level are dropped */
  int log_all_ranks;      /* 0: only rank 0 logs INFO/DEBUG; 1: every rank does */
  double t_start;         /* MPI_Wtime() at creation */
  sm_status err_code;     /* last error recorded on this rank */
  char err_msg[SM_ERRMSG_MAX];
  char err_trace[SM_TRACE_MAX][64]; /* "file:line" frames, innermost first */
  int err_ntrace;
} sm_ctx;

/* Create a context on `comm` (duplicated). Collective. Reads SISMA_LOG (error|warn|info|debug)
 * and SISMA_LOG_ALL=1 from the environment. Returns SM_ERR_NOMEM or SM_ERR_MPI. */
sm_status sm_ctx_create(MPI_Comm comm, sm_ctx **out);
/* Free the context and its communicator; sets *ctx = NULL; accepts NULL. Collective. */
void sm_ctx_destroy(sm_ctx **ctx);

/* Record an error (code, message with file:line) on this rank and return code. Local. */
sm_status sm__error(sm_ctx *ctx, sm_status code, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Add a propagation frame to the recorded error; returns s. Local. */
sm_status sm__frame(sm_ctx *ctx, sm_status s, const char *file, int line);
/* Clear the recorded error. Local. */
void sm_ctx_clear_error(sm_ctx *ctx);
/* Whether the CPU runs AVX2 and FMA (the hand-written kernels' instruction set); cached. Local. */
int sm__cpu_avx2_fma(void);
/* malloc for large arrays that kernels stream: from 4 MiB on, 2 MiB-aligned and advised into
 * transparent huge pages (fewer TLB misses), or 64-byte aligned with SISMA_HUGEPAGES=0 in the
 * environment; free() releases it, realloc() may resize it. Local. */
void *sm__alloc_big(size_t bytes);

/* Record and return an error: return SM_ERR(ctx, SM_ERR_DATA, "trace %lld: NaN", i); */
#define SM_ERR(ctx, code, ...) sm__error((ctx), (code), __FILE__, __LINE__, __VA_ARGS__)
/* Propagate a failing status, adding this file:line to the trace. */
#define SM_TRY(ctx, expr)                                                                          \
  do {                                                                                             \
    sm_status sm__s_ = (expr);                                                                     \
    if (sm__s_ != SM_OK) return sm__frame((ctx), sm__s_, __FILE__, __LINE__);                      \
  } while (0)
/* Check a condition; on failure record the message and return the code. */
#define SM_CHECK(ctx, cond, code, ...)                                                             \
  do {                                                                                             \
    if (!(cond)) return SM_ERR((ctx), (code), __VA_ARGS__);                                        \
  } while (0)
/* Check an MPI return code. */
#define SM_MPI(ctx, call)                                                                          \
  do {                                                                                             \
    int sm__rc_ = (call);                                                                          \
    if (sm__rc_ != MPI_SUCCESS) return sm__mpi_error((ctx), sm__rc_, #call, __FILE__, __LINE__);   \
  } while (0)
sm_status sm__mpi_error(sm_ctx *ctx, int rc, const char *call, const char *file, int line);

/* Agree on a status across all ranks. Collective: every rank passes its local status; if any
 * rank failed, every rank returns the code of the lowest failing rank and records that rank's
 * message prefixed "[rank r/p]", so all ranks branch identically and rank 0 can print the cause.
 * Call it before entering a collective after local work that can fail. */
sm_status sm_ctx_agree(sm_ctx *ctx, sm_status local);

/* Print "[rank r/p] file:line: message" for the recorded error and MPI_Abort the communicator.
 * For errors that cannot be agreed on. Never returns. */
void sm_ctx_abort(sm_ctx *ctx, sm_status s) __attribute__((noreturn));

/* Print the recorded error (on every rank that has one, or on rank 0 only when all ranks agreed,
 * i.e. `agreed` != 0) to stderr. Local. */
void sm_ctx_print_error(const sm_ctx *ctx, int agreed);

/* Logging: "[sisma r/p +12.345s] LEVEL message". Local: rank 0 logs INFO/DEBUG unless
 * log_all_ranks; ERROR and WARN are printed by whichever rank calls. */
void sm_log(const sm_ctx *ctx, sm_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define sm_info(ctx, ...) sm_log((ctx), SM_LOG_INFO, __VA_ARGS__)
#define sm_warn(ctx, ...) sm_log((ctx), SM_LOG_WARN, __VA_ARGS__)
#define sm_debug(ctx, ...) sm_log((ctx), SM_LOG_DEBUG, __VA_ARGS__)

/* Wall-clock seconds (MPI_Wtime). Local. */
double sm_wtime(void);

/* Checked allocation helpers: record SM_ERR_NOMEM with the size on failure. Local. */
sm_status sm__alloc(sm_ctx *ctx, void **out, size_t n, size_t size, const char *file, int line);
#define SM_ALLOC(ctx, ptr, n)                                                                      \
  sm__alloc((ctx), (void **)&(ptr), (size_t)(n), sizeof(*(ptr)), __FILE__, __LINE__)

/* UTC times as seconds since 1970-01-01 (double: microsecond resolution until year 2200).
 * Parse ISO 8601 "YYYY-MM-DD[T ]hh:mm:ss[.ffffff][Z|+00:00]" (also a bare date); returns 0 on
 * success, -1 if malformed. Format as "YYYY-MM-DDThh:mm:ss.ffffffZ" (28 bytes with NUL). Local. */
int sm_time_parse(const char *text, double *epoch_s);
void sm_time_format(double epoch_s, char out[32]);

/* Fault injection for tests: returns SM_ERR_INTERNAL ("injected fault at <point>") on the ranks
 * named by the environment variable SISMA_FAULT="<point>:<rank>[,<rank>...]" (or "<point>:all"),
 * SM_OK elsewhere. Stages call it where local work that can fail precedes an agreement, so the
 * tests prove that a failure on one rank never hangs the others. Local. */
sm_status sm_fault_point(sm_ctx *ctx, const char *point);

/* mkdir -p `dir` (mode 0777 & umask); SM_ERR_IO naming the directory on failure. Local. */
sm_status sm_make_dirs(sm_ctx *ctx, const char *dir);
/* mkdir -p of the directory part of `path` (nothing for a bare file name). Local. */
sm_status sm_make_parent_dirs(sm_ctx *ctx, const char *path);

/* The software version string ("0.1.0"). */
const char *sm_version(void);

/* Stop flag set by SIGUSR1/SIGTERM/SIGINT once sm_signals_install has run. Local. */
void sm_signals_install(void);
int sm_signals_pending(void);
/* Reduce the local stop flag over all ranks (MAX). Collective. */
sm_status sm_ctx_stop_requested(sm_ctx *ctx, int *stop);

#ifdef __cplusplus
}
#endif
#endif
