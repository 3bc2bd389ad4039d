#!/usr/bin/env bash
# The main job: plan GPT-2 small on 4 pipeline stages with 4 sequence chunks,
# then train a tiny GPT with the Seq1F1B schedule on 4 in-process CPU ranks,
# checked step by step against the single-rank full-sequence run.
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
echo "== train: tiny GPT, seq1f1b, P=4 N=4 M=4 =="
"$BIN/seq1f1b-translate" --import-hf-config examples/gpt-tiny.json --seq-len 128 |
  "$BIN/seq1f1b-translate" --export-runtime-graph > "$OUT/gpt-tiny.graph.json"
"$BIN/seq1f1b-train" --graph "$OUT/gpt-tiny.graph.json" \
  --data examples/data/declaration.txt --seq-len 128 \
  --schedule seq1f1b --ranks 4 --chunks 4 --microbatches 4 --steps 20 --verify
