#!/usr/bin/env bash
# bench/gpu/run.sh - the CUDA backend's GPU tests and benchmarks in one go.
#
# Run from anywhere on the GPU machine (bench/gpu/README.md shows the device
# tool call). Steps, each under a timeout so the whole run ends well before
# 8 minutes (S1F_GPU_DEADLINE seconds, default 450, after which no new step
# starts):
#   1. binaries: $S1F_GPU_BIN, else build-gpu/bin (bench/gpu/bundle.sh makes
#      it on a machine with the same toolkit; the device tool carries it),
#      else a runtime-only build here (-DSEQ1F1B_RUNTIME_ONLY=ON: needs
#      CMake, Ninja, GTest, OpenBLAS, nlohmann_json; no MLIR);
#   2. the `gpu` tests through ctest, one process per test (a crash or a
#      sticky CUDA error stays in its test), each writing its own gtest JSON;
#   3. s1f-cuda-bench (kernel timings);
#   4. torch_baseline.py (the same operations in PyTorch), when PyTorch is
#      there and time is left;
#   5. summarize.py: $OUT/results.json and a short table, printed last.
# Results go to $OUT (the device tool's return folder), default
# ./gpu-results. Exit status: 0 when every test passed (or skipped).

set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${OUT:-$ROOT/gpu-results}
DEADLINE=${S1F_GPU_DEADLINE:-450}
START=$(date +%s)
mkdir -p "$OUT/gtest"
rm -f "$OUT"/gtest/*.json "$OUT"/results.json "$OUT"/bench.json \
  "$OUT"/torch.json
: >"$OUT/steps.txt"

elapsed() { echo $(($(date +%s) - START)); }
left() { echo $((DEADLINE - $(elapsed))); }
clamp() { # clamp VALUE MIN MAX
  local v=$1
  ((v < $2)) && v=$2
  ((v > $3)) && v=$3
  echo "$v"
}
step() {
  echo "$*" >>"$OUT/steps.txt"
  echo "== $* [$(elapsed) s]"
}

# --- 0. The device -----------------------------------------------------------
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm \
    --format=csv >"$OUT/nvidia-smi.txt" 2>&1 || true
  step "device: $(tail -n +2 "$OUT/nvidia-smi.txt" | head -1)"
else
  step "device: nvidia-smi not found"
fi

# --- 1. Binaries ---------------------------------------------------------------
if [ -n "${S1F_GPU_BIN:-}" ]; then
  BIN=$S1F_GPU_BIN
  step "binaries: $BIN (S1F_GPU_BIN)"
elif [ -x "$ROOT/build-gpu/bin/S1FRuntimeCudaTests" ]; then
  BIN=$ROOT/build-gpu/bin
  step "binaries: build-gpu/bin ($(head -1 "$ROOT/build-gpu/MANIFEST.txt" 2>/dev/null || echo 'no manifest'))"
else
  BUILD=$ROOT/build-gpu-local
  BIN=$BUILD/bin
  t0=$(elapsed)
  if timeout "$(clamp $(($(left) - 200)) 60 300)" bash -c "
      cmake -S '$ROOT' -B '$BUILD' -G Ninja -DSEQ1F1B_RUNTIME_ONLY=ON \
        -DCMAKE_BUILD_TYPE=Release &&
      cmake --build '$BUILD' --target S1FRuntimeCudaTests s1f-cuda-bench" \
    >"$OUT/build.log" 2>&1; then
    step "build: runtime-only build in $(($(elapsed) - t0)) s"
  else
    step "build: FAILED after $(($(elapsed) - t0)) s (build.log)"
    tail -40 "$OUT/build.log"
  fi
fi

# Shared libraries: bundled ones first, then the toolkit's, then (if still
# missing) the CUDA libraries PyTorch's wheels carry.
export LD_LIBRARY_PATH="$BIN/../lib:/usr/local/cuda/lib64:/usr/local/cuda/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if [ -x "$BIN/S1FRuntimeCudaTests" ] &&
  ldd "$BIN/S1FRuntimeCudaTests" | grep -q "not found" &&
  command -v python3 >/dev/null; then
  extra=$(python3 -c '
import glob, os, site
dirs = set()
for sp in site.getsitepackages():
    for pat in ("nvidia/*/lib", "nvidia/*/*/lib", "torch/lib"):
        dirs.update(glob.glob(os.path.join(sp, pat)))
print(":".join(sorted(dirs)))' 2>/dev/null)
  export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$extra"
fi
if [ -d "$BIN/../lib-fallback" ] && [ -x "$BIN/S1FRuntimeCudaTests" ] &&
  ldd "$BIN/S1FRuntimeCudaTests" 2>&1 | grep -q "not found"; then
  export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$BIN/../lib-fallback"
  step "libraries: using the bundled libstdc++/libgcc_s"
fi
if [ -x "$BIN/S1FRuntimeCudaTests" ]; then
  missing=$(ldd "$BIN/S1FRuntimeCudaTests" 2>&1 | grep "not found" | tr -s ' \t' ' ')
  [ -n "$missing" ] && step "libraries still missing:$missing"
fi

# --- 2. The gpu tests ------------------------------------------------------------
# A CTestTestfile of our own, as gtest_discover_tests would register the
# tests (label gpu), plus one JSON output file per test.
TESTS_RC=1
if [ -x "$BIN/S1FRuntimeCudaTests" ]; then
  CT=$(mktemp -d /tmp/s1f-gpu-ctest.XXXXXX)
  "$BIN/S1FRuntimeCudaTests" --gtest_list_tests >"$CT/list.txt" 2>"$CT/list.err"
  suite=""
  n=0
  while IFS= read -r line; do
    line=${line%%#*}
    line=${line%"${line##*[![:space:]]}"} # trailing blanks
    [ -z "$line" ] && continue
    if [[ $line != " "* ]]; then
      suite=${line%.}
    else
      name="$suite.${line#"${line%%[![:space:]]*}"}"
      printf 'add_test([=[%s]=] "%s" "--gtest_filter=%s")\n' \
        "$name" "$BIN/S1FRuntimeCudaTests" "$name"
      printf 'set_tests_properties([=[%s]=] PROPERTIES LABELS gpu TIMEOUT 150 SKIP_REGULAR_EXPRESSION [==[\\[  SKIPPED \\]]==] ENVIRONMENT "GTEST_OUTPUT=json:%s/gtest/%s.json;OPENBLAS_NUM_THREADS=4")\n' \
        "$name" "$OUT" "$name"
      n=$((n + 1))
    fi
  done <"$CT/list.txt" >"$CT/CTestTestfile.cmake"
  t0=$(elapsed)
  if command -v ctest >/dev/null; then
    (cd "$CT" && timeout "$(clamp $(($(left) - 150)) 60 330)" \
      ctest -L gpu -j4 --output-on-failure) 2>&1 | tee "$OUT/ctest.log"
    TESTS_RC=${PIPESTATUS[0]}
    step "tests: $n gpu tests, ctest exit $TESTS_RC, $(($(elapsed) - t0)) s"
  else # no ctest: the same tests in one process
    OPENBLAS_NUM_THREADS=16 timeout "$(clamp $(($(left) - 150)) 60 330)" \
      "$BIN/S1FRuntimeCudaTests" --gtest_output="json:$OUT/gtest/all.json" \
      2>&1 | tee "$OUT/gtest.log"
    TESTS_RC=${PIPESTATUS[0]}
    step "tests: $n gpu tests in one process (no ctest), exit $TESTS_RC, $(($(elapsed) - t0)) s"
  fi
  rm -rf "$CT"
else
  step "tests: no test binary"
fi

# --- 3. Kernel benchmarks --------------------------------------------------------
if [ -x "$BIN/s1f-cuda-bench" ] && (($(left) > 40)); then
  t0=$(elapsed)
  timeout "$(clamp $(($(left) - 60)) 30 180)" \
    "$BIN/s1f-cuda-bench" --json "$OUT/bench.json" 2>&1 | tee "$OUT/bench.log"
  step "bench: exit ${PIPESTATUS[0]}, $(($(elapsed) - t0)) s"
else
  step "bench: skipped (no binary or no time left)"
fi

# --- 4. PyTorch baseline ---------------------------------------------------------
if (($(left) > 60)) && command -v python3 >/dev/null &&
  python3 -c "import torch" 2>/dev/null; then
  t0=$(elapsed)
  timeout "$(clamp $(($(left) - 15)) 30 150)" \
    python3 "$ROOT/bench/gpu/torch_baseline.py" --json "$OUT/torch.json" \
    2>&1 | tee "$OUT/torch.log"
  step "torch baseline: exit ${PIPESTATUS[0]}, $(($(elapsed) - t0)) s"
else
  step "torch baseline: skipped (no PyTorch or no time left)"
fi

# --- 5. Summary (last) -----------------------------------------------------------
if command -v python3 >/dev/null; then
  python3 "$ROOT/bench/gpu/summarize.py" --out "$OUT" --elapsed "$(elapsed)"
else
  echo "no python3: raw results in $OUT (ctest.log, bench.json)"
  cat "$OUT/steps.txt"
  grep -E "tests passed|tests failed" "$OUT/ctest.log" 2>/dev/null
fi
exit "$TESTS_RC"
