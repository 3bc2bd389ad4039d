#!/usr/bin/env bash
# The main job: plan GPT-2 small on 4 pipeline stages with 4 sequence chunks,
# find the best layout of 32 GPUs for Llama 7B at 64k tokens, then compile a
# tiny GPT's Seq1F1B plan into a training executable and train with it on 4
# in-process CPU ranks, checked step by step against the single-rank
# full-sequence run.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BUILD_DIR:-build}/bin
OUT=${OUT_DIR:-build/demo}
mkdir -p "$OUT"

echo "== plan: GPT-2 small, 4 stages, 4 chunks =="
"$BIN/seq1f1b-plan" --config examples/gpt2-small.json --stages 4 --chunks 1,4 \
  --schedules 1f1b,seq1f1b,seq1f1b-zb --svg "$OUT/plans"
echo "(timelines in $OUT/plans/)"

echo
echo "== which layout: Llama 7B at 64k on 32 H100s, 64 sequences per step =="
"$BIN/seq1f1b-plan" --config examples/llama-7b.json --seq-len 65536 --gpus 32 --global-batch 64 \
  --distributed-optimizer --schedules 1f1b,seq1f1b,seq1f1b-interleaved --top 5 --svg "$OUT/layouts"
echo "(every layout, tokens/s against memory: $OUT/layouts/layouts.svg)"

echo
echo "== compile and train: tiny GPT, seq1f1b, P=4 N=4 M=4 =="
"$BIN/seq1f1b-translate" --import-hf-config examples/gpt-tiny.json --seq-len 128 |
  "$BIN/seq1f1b-opt" --s1f-pipeline="stages=4 chunks=4 microbatches=4 schedule=seq1f1b" \
    --s1f-simulate="svg=$OUT/gpt-tiny-plan.svg" -o "$OUT/gpt-tiny-plan.mlir"
"$BIN/seq1f1b-compile" "$OUT/gpt-tiny-plan.mlir" -o "$OUT/gpt-tiny-train"
"$OUT/gpt-tiny-train" --data examples/data/declaration.txt --steps 20 --verify \
  --timeline "$OUT/gpt-tiny-run.svg"
echo "(the plan: $OUT/gpt-tiny-plan.svg; the last step as it ran: $OUT/gpt-tiny-run.svg)"
