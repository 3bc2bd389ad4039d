#!/usr/bin/env bash
# Installs, builds from scratch if needed, and runs every test: lit (compiler
# and tools) and ctest (C++ unit tests; GPU tests skip without a device).
# Ends with both runners' summaries and one combined line.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
scripts/setup.sh

status=0
echo "== lit =="
python3 /usr/lib/llvm-19/build/utils/lit/lit.py -sv "$BUILD_DIR/test" \
  | tee "$BUILD_DIR/lit.log" || status=1
echo "== ctest =="
(cd "$BUILD_DIR" && ctest --output-on-failure -j "$(nproc)") \
  | tee "$BUILD_DIR/ctest.log" || status=1

lit_passed=$(grep -oP '^\s*Passed\s*:\s*\K[0-9]+' "$BUILD_DIR/lit.log" || echo 0)
lit_failed=$(grep -oP '^\s*Failed\s*:\s*\K[0-9]+' "$BUILD_DIR/lit.log" || echo 0)
ctest_total=$(grep -oP 'tests failed out of \K[0-9]+' "$BUILD_DIR/ctest.log" || echo 0)
ctest_failed=$(grep -oP '\K[0-9]+(?= tests failed out of)' "$BUILD_DIR/ctest.log" || echo 0)
ctest_skipped=$(grep -cE '^\s+[0-9]+ - .*\(Skipped\)$' "$BUILD_DIR/ctest.log" || true)
passed=$((lit_passed + ctest_total - ctest_failed - ctest_skipped))
failed=$((lit_failed + ctest_failed))
echo "all tests: $passed passed, $failed failed, $ctest_skipped skipped"
if ((failed > 0)); then status=1; fi
exit $status
