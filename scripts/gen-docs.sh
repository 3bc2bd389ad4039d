#!/usr/bin/env bash
# Regenerates the IR reference (docs/ir/) from the ODS definitions, and the
# README's timelines and the user guide's layout chart with the built
# seq1f1b-plan.
set -euo pipefail
cd "$(dirname "$0")/.."
TBLGEN=/usr/lib/llvm-19/bin/mlir-tblgen
INC=(-I include -I /usr/lib/llvm-19/include)
"$TBLGEN" -gen-dialect-doc "${INC[@]}" -dialect=llm include/seq1f1b/Dialect/LLM/IR/LLMOps.td > docs/ir/llm.md
"$TBLGEN" -gen-dialect-doc "${INC[@]}" -dialect=pipe include/seq1f1b/Dialect/Pipe/IR/PipeOps.td > docs/ir/pipe.md
"$TBLGEN" -gen-pass-doc "${INC[@]}" include/seq1f1b/Dialect/Pipe/Transforms/Passes.td > docs/ir/passes.md
"$TBLGEN" -gen-pass-doc "${INC[@]}" include/seq1f1b/Conversion/Passes.td > docs/ir/conversion.md
echo "docs/ir regenerated"

# The README's pictures: one plan as 1F1B and as Seq1F1B, on shared scales.
PLAN=${BUILD_DIR:-build}/bin/seq1f1b-plan
if [ -x "$PLAN" ]; then
  tmp=$(mktemp -d)
  "$PLAN" --config examples/llama-7b.json --seq-len 65536 --stages 4 --microbatches 8 \
    --chunks 8 --schedules 1f1b,seq1f1b --tp 2 --svg "$tmp" >/dev/null
  cp "$tmp/1f1b-N1.svg" docs/timeline-1f1b.svg
  cp "$tmp/seq1f1b-N8.svg" docs/timeline-seq1f1b.svg
  # The user guide's layout chart: Llama 7B at 64k on 32 H100s.
  "$PLAN" --config examples/llama-7b.json --seq-len 65536 --gpus 32 --global-batch 64 \
    --distributed-optimizer --schedules 1f1b,seq1f1b,seq1f1b-interleaved --recompute none,full \
    --svg "$tmp/layouts" >/dev/null
  cp "$tmp/layouts/layouts.svg" docs/layouts-llama-7b-64k.svg
  rm -rf "$tmp"
  echo "docs/timeline-*.svg and docs/layouts-llama-7b-64k.svg regenerated"
else
  echo "no $PLAN: docs/timeline-*.svg not regenerated (build first)"
fi
