#!/usr/bin/env bash
# Installs, builds from scratch if needed, and runs every test: lit (compiler
# and tools) and ctest (C++ unit tests). Ends with both runners' summaries.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
scripts/setup.sh

status=0
echo "== lit =="
python3 /usr/lib/llvm-19/build/utils/lit/lit.py -sv "$BUILD_DIR/test" || status=1
echo "== ctest =="
(cd "$BUILD_DIR" && ctest --output-on-failure -j "$(nproc)") || status=1
exit $status
