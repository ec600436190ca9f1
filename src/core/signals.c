/* Stop requests: SIGUSR1 (Slurm's early warning, forwarded by slurm/sisma.sbatch), SIGTERM and
 * SIGINT set a flag; long loops reduce it over ranks at step boundaries (sm_ctx_stop_requested)
 * so all ranks stop together, checkpoint, and exit cleanly. */
#include "sisma/core.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t stop_flag = 0;

static void on_signal(int sig) {
  (void)sig;
  stop_flag = 1;
}

void sm_signals_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
}

int sm_signals_pending(void) { return stop_flag != 0; }

sm_status sm_ctx_stop_requested(sm_ctx *ctx, int *stop) {
  int mine = sm_signals_pending();
  SM_MPI(ctx, MPI_Allreduce(&mine, stop, 1, MPI_INT, MPI_MAX, ctx->comm));
  return SM_OK;
}
