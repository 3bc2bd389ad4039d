#!/usr/bin/env bash
# bench/gpu/bundle.sh - packs the GPU test and benchmark binaries, built on
# this machine, into build-gpu/ (git-ignored) for the device tool to carry to
# the GPU machine, where bench/gpu/run.sh finds them.
#
#   bash bench/gpu/bundle.sh [BUILD_DIR]     (default /tmp/build-cuda)
#
# Builds the targets in BUILD_DIR (configured with the CUDA toolkit),
# copies them to build-gpu/bin and the shared libraries they need that the
# GPU machine may lack (OpenBLAS, gfortran, cudart, ...) to build-gpu/lib
# (libstdc++ and libgcc_s to build-gpu/lib-fallback, used only if needed). Not copied: glibc, the driver (libcuda) and cuBLASLt
# (hundreds of MB; the GPU machine has CUDA 13 in /usr/local/cuda, and run.sh
# falls back to PyTorch's copy). Writes build-gpu/MANIFEST.txt.

set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${1:-/tmp/build-cuda}
DEST=$ROOT/build-gpu
TARGETS=(S1FRuntimeCudaTests s1f-cuda-bench s1f-layer-bench seq1f1b-train)

[ -f "$BUILD/build.ninja" ] || {
  echo "bundle.sh: $BUILD is not a configured Ninja build directory" >&2
  exit 1
}
ninja -C "$BUILD" -j"${JOBS:-2}" "${TARGETS[@]}"

rm -rf "$DEST"
mkdir -p "$DEST/bin" "$DEST/lib" "$DEST/lib-fallback"
for t in "${TARGETS[@]}"; do
  cp "$BUILD/bin/$t" "$DEST/bin/"
done

# Libraries: everything ldd resolves except glibc's own, the driver and
# cuBLAS(Lt). The C++ runtime goes to lib-fallback: this machine's libstdc++
# needs a newer glibc than the GPU machine may have, and the GPU machine's
# own is new enough for our binaries unless ldd says otherwise (run.sh then
# adds lib-fallback).
skip='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|libpthread\.|librt\.|libcuda\.|libcublas)'
fallback='^(libstdc\+\+|libgcc_s)'
for t in "${TARGETS[@]}"; do
  ldd "$DEST/bin/$t" | awk '/=> \// {print $1, $3}'
done | sort -u | while read -r name path; do
  if [[ $name =~ $skip ]]; then continue; fi
  if [[ $name =~ $fallback ]]; then
    cp -L "$path" "$DEST/lib-fallback/$name"
  else
    cp -L "$path" "$DEST/lib/$name"
  fi
done

# The tiny models' runtime graphs for seq1f1b-train --kernels cuda (the GPU
# machine has no MLIR to export them).
mkdir -p "$DEST/graphs"
for m in gpt-tiny llama-tiny; do
  ninja -C "$BUILD" -j"${JOBS:-2}" seq1f1b-translate >/dev/null
  "$BUILD/bin/seq1f1b-translate" --import-hf-config "$ROOT/examples/$m.json" \
    --seq-len 32 | "$BUILD/bin/seq1f1b-translate" --export-runtime-graph \
    >"$DEST/graphs/$m.graph.json"
done

{
  echo "seq1f1b $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?'), built $(date -u +%Y-%m-%dT%H:%MZ) on $(uname -n)"
  /usr/local/cuda/bin/nvcc --version 2>/dev/null | tail -1 || true
  echo "targets: $(grep -o 'arch=compute_[0-9a-z]*,code=\[[a-z_0-9]*\]' "$BUILD/build.ninja" | sort -u | tr '\n' ' ')"
  (cd "$DEST" && sha256sum bin/* lib/* lib-fallback/*)
} >"$DEST/MANIFEST.txt"

du -sh "$DEST"
echo "bundle.sh: wrote $DEST (carry it: carry=[\"build-gpu\"])"
