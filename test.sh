#!/usr/bin/env bash
# One command for the test suite: installs what is missing, builds, runs every CTest suite
# (1, 2, 3 and 4 ranks; the Slurm end-to-end test starts a local cluster and stops it again).
set -euo pipefail
cd "$(dirname "$0")"
bash dev/deps.sh
bash dev/build.sh "$@"
ctest --test-dir "${BUILD:-build}" --output-on-failure -j"$(nproc)"
