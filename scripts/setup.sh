#!/usr/bin/env bash
# Installs what seq1f1b needs on Debian 12 (as root), then configures and
# builds it in build/. Safe to run again: it installs only what is missing and
# rebuilds only what changed.
#
#   scripts/setup.sh            # install + configure + build
#   BUILD_DIR=out scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
PACKAGES=(cmake ninja-build g++ python3
          llvm-19-dev llvm-19-tools libmlir-19-dev mlir-19-tools
          libgtest-dev libgmock-dev libopenblas-dev nlohmann-json3-dev
          libopenmpi-dev openmpi-bin)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: error: missing packages (${missing[*]}) and not root;" \
         "run as root or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >/tmp/seq1f1b-apt.log 2>&1; then
    echo "setup: error: apt-get could not install ${missing[*]}; log:" >&2
    tail -20 /tmp/seq1f1b-apt.log >&2
    exit 1
  fi
fi

if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja \
    -DMLIR_DIR=/usr/lib/llvm-19/lib/cmake/mlir \
    -DLLVM_EXTERNAL_LIT=/usr/lib/llvm-19/build/utils/lit/lit.py
fi
cmake --build "$BUILD_DIR" -j "$(nproc)"
