#!/usr/bin/env bash
# Regenerates the IR reference (docs/ir/) from the ODS definitions.
set -euo pipefail
cd "$(dirname "$0")/.."
TBLGEN=/usr/lib/llvm-19/bin/mlir-tblgen
INC=(-I include -I /usr/lib/llvm-19/include)
"$TBLGEN" -gen-dialect-doc "${INC[@]}" -dialect=llm include/seq1f1b/Dialect/LLM/IR/LLMOps.td > docs/ir/llm.md
"$TBLGEN" -gen-dialect-doc "${INC[@]}" -dialect=pipe include/seq1f1b/Dialect/Pipe/IR/PipeOps.td > docs/ir/pipe.md
"$TBLGEN" -gen-pass-doc "${INC[@]}" include/seq1f1b/Dialect/Pipe/Transforms/Passes.td > docs/ir/passes.md
echo "docs/ir regenerated"
