/* Umbrella header: everything a program using sisma needs. */
#ifndef SISMA_H
#define SISMA_H
#include "sisma/catalog.h"
#include "sisma/config.h"
#include "sisma/core.h"
#include "sisma/job.h"
#include "sisma/nn.h"
#include "sisma/rng.h"
#include "sisma/shard.h"
#include "sisma/signal.h"
#include "sisma/stats.h"
#include "sisma/synth.h"
#include "sisma/table.h"
#include "sisma/unsupervised.h"
#endif
