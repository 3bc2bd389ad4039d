#!/usr/bin/env bash
# bench/gpu/run.sh - the CUDA backend's GPU tests and benchmarks in one go.
#
# Run from anywhere on the GPU machine (bench/gpu/README.md shows the device
# tool call). Steps, each under a timeout so the whole run ends within
# 8 minutes (S1F_GPU_DEADLINE seconds, default 460, after which no new
# step starts; each step's timeout also leaves the later steps their share):
#   1. binaries: $S1F_GPU_BIN, else build-gpu/bin (bench/gpu/bundle.sh makes
#      it on a machine with the same toolkit; the device tool carries it),
#      else a runtime-only build here (-DSEQ1F1B_RUNTIME_ONLY=ON: needs
#      CMake, Ninja, GTest, OpenBLAS, nlohmann_json; no MLIR);
#   2. the `gpu` tests through ctest, one process per test (a crash or a
#      sticky CUDA error stays in its test), each writing its own gtest JSON
#      (at most 150 s);
#   3. s1f-layer-bench (one GPT layer, forward + backward, whole and chunked
#      sequences) with the default attention engine (cudnn-split where cuDNN
#      runs; at most 120 s, plans logged), then torch_layer.py (the same
#      layer in PyTorch, on the cases s1f-layer-bench lists; at most 120 s),
#      then the 7B 32k cases with the other engines, cuDNN in one call per
#      chunk (--attention cudnn) and ours (--attention own), at most 60 s
#      each: the results that matter most, so they come before the kernel
#      timings;
#   4. s1f-cuda-bench (kernel timings, at most 60 s);
#   5. torch_baseline.py (the same kernels in PyTorch, at most 60 s), when
#      PyTorch is there and time is left;
#   6. summarize.py: $OUT/results.json, $OUT/layer.svg, $OUT/gpu-profile.json
#      (this GPU's rates for seq1f1b-plan --gpu) and short tables, printed
#      last.
# Meanwhile, in the background: $OUT/env.txt (cuDNN headers and PyTorch's
# cuDNN version).
# Results go to $OUT (the device tool's return folder), default
# ./gpu-results. Exit status: 0 when every test passed (or skipped).

set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${OUT:-$ROOT/gpu-results}
DEADLINE=${S1F_GPU_DEADLINE:-460}
START=$(date +%s)
mkdir -p "$OUT/gtest" "$OUT/cudnn-logs"
rm -f "$OUT"/gtest/*.json "$OUT"/cudnn-logs/*.log "$OUT"/results.json "$OUT"/bench.json \
  "$OUT"/torch.json "$OUT"/layer.json "$OUT"/layer_cudnn.json "$OUT"/layer_cudnn_split.json \
  "$OUT"/layer_own.json "$OUT"/layer_cases.json "$OUT"/cudnn-device.json "$OUT"/cudnn-device.log \
  "$OUT"/torch_layer.json "$OUT"/layer.svg "$OUT"/env.txt
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
# Seconds kept for the steps after each one (about what each took on an
# H200, with a margin; the earlier steps matter more): summary 10, torch
# baseline 30, kernel bench 30, layer bench with our attention 30, with
# cuDNN's unsplit 30, torch layer 60, layer bench 60. A step's timeout is at
# most what is left minus that (the tests get at least 90 s), and a step that
# would get less than its minimum does not start, so the run ends by the
# deadline. S1F_GPU_STEPS picks steps (default: all of "tests train layer
# torch-layer layer-cudnn layer-own bench torch-baseline"; layer-cudnn-split
# times that engine apart, as layer-cudnn does cudnn);
# S1F_GPU_TESTS is a gtest filter for the tests step (default: every test);
# S1F_BENCH_FILTER is passed to s1f-cuda-bench --filter; S1F_GPU_PACK=1
# packs the results (end of the script).
STEPS=" ${S1F_GPU_STEPS:-tests train layer torch-layer layer-cudnn layer-own bench torch-baseline} "
want() { [[ $STEPS == *" $1 "* ]]; }
share() { want "$1" && echo "$2" || echo 0; }
LATER_BASELINE=10
LATER_BENCH=$((LATER_BASELINE + $(share torch-baseline 30)))
LATER_LAYER_OWN=$((LATER_BENCH + $(share bench 30)))
LATER_LAYER_CUDNN=$((LATER_LAYER_OWN + $(share layer-own 30)))
LATER_LAYER_SPLIT=$((LATER_LAYER_CUDNN + $(share layer-cudnn 30)))
LATER_TORCH_LAYER=$((LATER_LAYER_SPLIT + $(share layer-cudnn-split 30)))
LATER_LAYER=$((LATER_TORCH_LAYER + $(share torch-layer 60)))
LATER_TESTS=$((LATER_LAYER + $(share layer 60)))
HAVE_TORCH=0
command -v python3 >/dev/null &&
  python3 -c "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is None)" 2>/dev/null &&
  HAVE_TORCH=1

# --- 0. The device -----------------------------------------------------------
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm \
    --format=csv >"$OUT/nvidia-smi.txt" 2>&1 || true
  step "device: $(tail -n +2 "$OUT/nvidia-smi.txt" | head -1)"
else
  step "device: nvidia-smi not found"
fi

# The environment, in the background (at most 20 s; waited for before the
# summary): which cuDNN frontend headers the machine has, which cuDNN
# PyTorch uses.
(
  echo "# cudnn_frontend headers"
  timeout 20 bash -c 'find / -name "cudnn_frontend*.h" -not -path "/proc/*" 2>/dev/null | head'
  echo "# libcudnn.so.9 the loader knows"
  ldconfig -p 2>/dev/null | grep "libcudnn.so.9 " | head -3
  echo "# torch.backends.cudnn.version(); torch, torch.version.cuda"
  timeout 20 python3 -c "import torch; print(torch.backends.cudnn.version())
print('torch', torch.__version__, 'cuda', torch.version.cuda)" 2>&1 | tail -3
) >"$OUT/env.txt" 2>&1 &
ENV_PID=$!

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
      cmake --build '$BUILD' --target S1FRuntimeCudaTests s1f-cuda-bench &&
      { cmake --build '$BUILD' --target s1f-layer-bench || true; }" \
    >"$OUT/build.log" 2>&1; then
    step "build: runtime-only build in $(($(elapsed) - t0)) s"
  else
    step "build: FAILED after $(($(elapsed) - t0)) s (build.log)"
    tail -40 "$OUT/build.log"
  fi
fi

# Shared libraries: bundled ones first, then the toolkit's, then (if still
# missing) the CUDA libraries PyTorch's wheels carry (cuDNN among them).
export LD_LIBRARY_PATH="$BIN/../lib:/usr/local/cuda/lib64:/usr/local/cuda/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
missing_libs() { # the "not found" lines of ldd over our binaries
  local b
  for b in "$BIN/S1FRuntimeCudaTests" "$BIN/s1f-cuda-bench" "$BIN/s1f-layer-bench"; do
    [ -x "$b" ] && ldd "$b" 2>&1 | grep "not found"
  done | sort -u | tr -s ' \t\n' ' '
}
if [ -n "$(missing_libs)" ] && command -v python3 >/dev/null; then
  extra=$(python3 -c '
import glob, os, site
dirs = set()
for sp in site.getsitepackages():
    for pat in ("nvidia/*/lib", "nvidia/*/*/lib", "torch/lib"):
        dirs.update(glob.glob(os.path.join(sp, pat)))
print(":".join(sorted(dirs)))' 2>/dev/null)
  export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$extra"
fi
if [ -d "$BIN/../lib-fallback" ] && [ -n "$(missing_libs)" ]; then
  export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$BIN/../lib-fallback"
  step "libraries: using the bundled libstdc++/libgcc_s"
fi
missing=$(missing_libs)
[ -n "$missing" ] && step "libraries still missing: $missing"
# cuDNN is dlopened (the cudnn attention engine), so ldd does not list it:
# without a system copy, PyTorch's wheel's copy.
if ! ldconfig -p 2>/dev/null | grep -q "libcudnn.so.9 " &&
  ! ls /usr/local/cuda/lib64/libcudnn.so.9 /usr/local/cuda/lib/libcudnn.so.9 >/dev/null 2>&1 &&
  command -v python3 >/dev/null; then
  cudnn_dir=$(python3 -c '
import glob, os, site
print(":".join(sorted({os.path.dirname(p) for sp in site.getsitepackages()
      for p in glob.glob(os.path.join(sp, "nvidia", "cudnn", "lib", "libcudnn.so.9"))})))' 2>/dev/null)
  if [ -n "$cudnn_dir" ]; then
    export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$cudnn_dir"
    step "libraries: cuDNN from $cudnn_dir"
  else
    step "libraries: no libcudnn.so.9 (the cudnn attention engine will say so)"
  fi
fi

# --- 2. The gpu tests ------------------------------------------------------------
# A CTestTestfile of our own, as gtest_discover_tests would register the
# tests (label gpu), plus one JSON output file per test.
TESTS_RC=1
if want tests && [ -x "$BIN/S1FRuntimeCudaTests" ]; then
  CT=$(mktemp -d /tmp/s1f-gpu-ctest.XXXXXX)
  "$BIN/S1FRuntimeCudaTests" --gtest_list_tests \
    ${S1F_GPU_TESTS:+--gtest_filter="$S1F_GPU_TESTS"} >"$CT/list.txt" 2>"$CT/list.err"
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
      # cuDNN's own log of warnings and errors for the tests that run it.
      cudnn_log=""
      [[ $name == Cudnn* || $name == CudaAttentionCudnn* ]] &&
        cudnn_log=";CUDNN_LOGLEVEL_DBG=2;CUDNN_LOGDEST_DBG=$OUT/cudnn-logs/$name.log"
      printf 'set_tests_properties([=[%s]=] PROPERTIES LABELS gpu TIMEOUT 150 SKIP_REGULAR_EXPRESSION [==[\\[  SKIPPED \\]]==] ENVIRONMENT "GTEST_OUTPUT=json:%s/gtest/%s.json;OPENBLAS_NUM_THREADS=4%s")\n' \
        "$name" "$OUT" "$name" "$cudnn_log"
      n=$((n + 1))
    fi
  done <"$CT/list.txt" >"$CT/CTestTestfile.cmake"
  t0=$(elapsed)
  if command -v ctest >/dev/null; then
    (cd "$CT" && timeout "$(clamp $(($(left) - LATER_TESTS)) 90 150)" \
      ctest -L gpu -j4 --output-on-failure) 2>&1 | tee "$OUT/ctest.log"
    TESTS_RC=${PIPESTATUS[0]}
    step "tests: $n gpu tests, ctest exit $TESTS_RC, $(($(elapsed) - t0)) s"
  else # no ctest: the same tests in one process
    OPENBLAS_NUM_THREADS=16 timeout "$(clamp $(($(left) - LATER_TESTS)) 90 150)" \
      "$BIN/S1FRuntimeCudaTests" --gtest_output="json:$OUT/gtest/all.json" \
      ${S1F_GPU_TESTS:+--gtest_filter="$S1F_GPU_TESTS"} \
      2>&1 | tee "$OUT/gtest.log"
    TESTS_RC=${PIPESTATUS[0]}
    step "tests: $n gpu tests in one process (no ctest), exit $TESTS_RC, $(($(elapsed) - t0)) s"
  fi
  rm -rf "$CT"
elif want tests; then
  step "tests: no test binary"
else
  step "tests: not selected (S1F_GPU_STEPS)"
fi

# cuDNN's description of this GPU: the input of the unit test that builds the
# cudnn engine's plans without a GPU (unittests/Runtime/data/).
[ -x "$BIN/s1f-cuda-bench" ] &&
  timeout 30 "$BIN/s1f-cuda-bench" --cudnn-device "$OUT/cudnn-device.json" \
    >"$OUT/cudnn-device.log" 2>&1

# --- 2b. Training steps on the GPU kernels, checked against the CPU -------------
# seq1f1b-train --kernels cuda --verify: a Seq1F1B run of the tiny models
# with every kernel on the GPU (fp32), compared step by step with the CPU
# single-rank reference (the graphs come with the bundle).
GRAPHS=$BIN/../graphs
if ! want train; then
  step "train: not selected (S1F_GPU_STEPS)"
elif [ -x "$BIN/seq1f1b-train" ] && [ -d "$GRAPHS" ]; then
  t0=$(elapsed)
  rc=0
  for m in gpt-tiny llama-tiny; do
    timeout 60 "$BIN/seq1f1b-train" --graph "$GRAPHS/$m.graph.json" \
      --data "$ROOT/examples/data/declaration.txt" --seq-len 32 --kernels cuda \
      --ranks 2 --chunks 3 --microbatches 2 --steps 3 --verify \
      >>"$OUT/train.log" 2>&1 || rc=$?
  done
  tail -12 "$OUT/train.log"
  step "train: --kernels cuda --verify, exit $rc, $(($(elapsed) - t0)) s"
  ((rc == 0)) || TESTS_RC=1
else
  step "train: skipped (no seq1f1b-train or graphs in the bundle)"
fi

# --- 3. The layer: ours (default engine), PyTorch's, ours with the others ------
# s1f-layer-bench lists its cases (--cases-json) so that torch_layer.py times
# exactly the same ones; without that list torch_layer.py times its two
# built-in 7B 32k cases. First every case with the default attention engine
# (cudnn-split where cuDNN runs: a chunk after the first as two cuDNN calls,
# its own keys under the plain causal mask and the prefix without a mask,
# merged by log-sum-exp) into layer.json, which names the engine; then
# PyTorch; then the 7B 32k cases the targets name with the other engines
# (S1F_LAYER_ENGINE_FILTER says otherwise, "" for all): cudnn (one call with
# the bottom-right mask) and own (our kernels). The cuDNN runs log every plan
# they build (S1F_CUDNN_LOG; cuDNN generates a kernel for each chunk shape,
# about a second each) and cuDNN's own log goes to cudnn-logs/NAME.log.
# layer_engine STEP ENGINE NAME LATER MAX_S: the 7B 32k cases with ENGINE
# into $OUT/NAME.json and NAME.log.
layer_engine() {
  local step=$1 engine=$2 name=$3 later=$4 max=$5 t0 rc
  if ! want "$step"; then
    step "layer bench, $engine attention: not selected (S1F_GPU_STEPS)"
  elif [ -x "$BIN/s1f-layer-bench" ] && (($(left) - later >= 30)); then
    t0=$(elapsed)
    S1F_CUDNN_LOG=1 CUDNN_LOGLEVEL_DBG=1 CUDNN_LOGDEST_DBG="$OUT/cudnn-logs/$name.log" \
      timeout "$(clamp $(($(left) - later)) 30 "$max")" \
      "$BIN/s1f-layer-bench" --attention "$engine" --json "$OUT/$name.json" \
      --filter "${S1F_LAYER_ENGINE_FILTER-7b-32k}" \
      >"$OUT/$name.log" 2>&1
    rc=$?
    grep -v "^s1f cudnn:" "$OUT/$name.log" | tail -15
    step "layer bench, $engine attention: exit $rc, $(($(elapsed) - t0)) s"
  else
    step "layer bench, $engine attention: skipped (no s1f-layer-bench or no time left)"
  fi
}

if ! want layer; then
  step "layer bench: not selected (S1F_GPU_STEPS)"
elif [ -x "$BIN/s1f-layer-bench" ] && (($(left) - LATER_LAYER >= 30)); then
  t0=$(elapsed)
  timeout 20 "$BIN/s1f-layer-bench" --cases-json "$OUT/layer_cases.json" \
    >"$OUT/layer.log" 2>&1 || echo "s1f-layer-bench --cases-json: exit $?" >>"$OUT/layer.log"
  S1F_CUDNN_LOG=1 CUDNN_LOGLEVEL_DBG=1 CUDNN_LOGDEST_DBG="$OUT/cudnn-logs/layer.log" \
    timeout "$(clamp $(($(left) - LATER_LAYER)) 30 120)" \
    "$BIN/s1f-layer-bench" --json "$OUT/layer.json" \
    --samples-json "$OUT/chunk_samples.json" >>"$OUT/layer.log" 2>&1
  rc=$?
  grep -v "^s1f cudnn:" "$OUT/layer.log" | tail -25
  step "layer bench (default engine): exit $rc, $(($(elapsed) - t0)) s"
elif [ -x "$BIN/s1f-layer-bench" ]; then
  step "layer bench: skipped (no time left)"
else
  step "layer bench: skipped (no s1f-layer-bench in $BIN)"
fi

if ! want torch-layer; then
  step "torch layer: not selected (S1F_GPU_STEPS)"
elif ((HAVE_TORCH)) && (($(left) - LATER_TORCH_LAYER >= 40)); then
  t0=$(elapsed)
  tl=$(clamp $(($(left) - LATER_TORCH_LAYER)) 40 120)
  cases=()
  [ -s "$OUT/layer_cases.json" ] && cases=(--cases "$OUT/layer_cases.json")
  timeout "$tl" python3 "$ROOT/bench/gpu/torch_layer.py" ${cases[@]+"${cases[@]}"} \
    --json "$OUT/torch_layer.json" --deadline $((tl - 30)) --gemm-check \
    2>&1 | tee "$OUT/torch_layer.log"
  step "torch layer: exit ${PIPESTATUS[0]}, $(($(elapsed) - t0)) s${cases[*]:+ (cases from s1f-layer-bench)}"
else
  step "torch layer: skipped (no PyTorch or no time left)"
fi

layer_engine layer-cudnn-split cudnn-split layer_cudnn_split "$LATER_LAYER_SPLIT" 60
layer_engine layer-cudnn cudnn layer_cudnn "$LATER_LAYER_CUDNN" 60
layer_engine layer-own own layer_own "$LATER_LAYER_OWN" 60

# --- 4. Kernel benchmarks --------------------------------------------------------
if ! want bench; then
  step "bench: not selected (S1F_GPU_STEPS)"
elif [ -x "$BIN/s1f-cuda-bench" ] && (($(left) - LATER_BENCH >= 20)); then
  t0=$(elapsed)
  timeout "$(clamp $(($(left) - LATER_BENCH)) 20 60)" \
    "$BIN/s1f-cuda-bench" --json "$OUT/bench.json" ${S1F_BENCH_FILTER:+--filter "$S1F_BENCH_FILTER"} 2>&1 | tee "$OUT/bench.log"
  step "bench: exit ${PIPESTATUS[0]}, $(($(elapsed) - t0)) s"
else
  step "bench: skipped (no binary or no time left)"
fi

# --- 5. PyTorch baseline of the kernels ------------------------------------------
if ! want torch-baseline; then
  step "torch baseline: not selected (S1F_GPU_STEPS)"
elif ((HAVE_TORCH)) && (($(left) - LATER_BASELINE >= 30)); then
  t0=$(elapsed)
  timeout "$(clamp $(($(left) - LATER_BASELINE)) 30 60)" \
    python3 "$ROOT/bench/gpu/torch_baseline.py" --json "$OUT/torch.json" \
    2>&1 | tee "$OUT/torch.log"
  step "torch baseline: exit ${PIPESTATUS[0]}, $(($(elapsed) - t0)) s"
else
  step "torch baseline: skipped (no PyTorch or no time left)"
fi

# --- 6. Summary (last) -----------------------------------------------------------
wait "$ENV_PID" 2>/dev/null
if command -v python3 >/dev/null; then
  python3 "$ROOT/bench/gpu/summarize.py" --out "$OUT" --elapsed "$(elapsed)" |
    tee "$OUT/summary.txt"
else
  echo "no python3: raw results in $OUT (ctest.log, bench.json)"
  cat "$OUT/steps.txt"
  grep -E "tests passed|tests failed" "$OUT/ctest.log" 2>/dev/null
fi

# S1F_GPU_PACK=1: everything in $OUT goes into all.tar.gz, and only it,
# results.json, summary.txt, layer.svg and gpu-profile.json stay (the device
# tool brings back only a handful of files).
if [ -n "${S1F_GPU_PACK:-}" ]; then
  tar czf /tmp/s1f-gpu-all.tar.gz -C "$OUT" . &&
    find "$OUT" -mindepth 1 -maxdepth 1 ! -name results.json \
      ! -name summary.txt ! -name layer.svg ! -name gpu-profile.json \
      -exec rm -rf {} + &&
    mv /tmp/s1f-gpu-all.tar.gz "$OUT/all.tar.gz"
fi
exit "$TESTS_RC"
