#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a result: installs what is missing, builds
# sisma, and runs jobs/demo.yaml on 2 MPI ranks (outputs in out/demo/).
set -euo pipefail
cd "$(dirname "$0")"
bash dev/deps.sh
bash dev/build.sh
. dev/mpi-env.sh
mpirun -n "${NP:-2}" build/sisma run jobs/demo.yaml "$@"
