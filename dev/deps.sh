#!/usr/bin/env bash
# Installs the Debian 12 packages sisma needs to build, test and run (only those missing).
# Used by demo.sh, test.sh and .ci/run. Needs root (or sudo) when something is missing.
set -euo pipefail
PKGS=(build-essential cmake pkg-config
      openmpi-bin libopenmpi-dev
      libhdf5-openmpi-dev hdf5-tools
      libscalapack-openmpi-dev libopenblas-dev liblapacke-dev
      libmseed-dev libyaml-dev zlib1g-dev
      slurm-wlm munge)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "sisma: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
