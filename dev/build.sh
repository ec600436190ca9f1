#!/usr/bin/env bash
# Configures and builds sisma into ${BUILD:-build} (extra arguments go to cmake).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} -DSISMA_WERROR=ON "$@" >"$BUILD.cmake.log" 2>&1 ||
  { cat "$BUILD.cmake.log"; exit 1; }
grep -A20 "sisma .* configuration" "$BUILD.cmake.log" | sed -n '1,16p'
cmake --build "$BUILD" -j"$(nproc)"
