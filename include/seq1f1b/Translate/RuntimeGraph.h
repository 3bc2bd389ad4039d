//===- RuntimeGraph.h - the model graph in the runtime's JSON form --------===//
#ifndef SEQ1F1B_TRANSLATE_RUNTIMEGRAPH_H
#define SEQ1F1B_TRANSLATE_RUNTIMEGRAPH_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/raw_ostream.h"

namespace seq1f1b {

/// Writes `module`'s model as the runtime's graph JSON (what
/// --export-runtime-graph writes); errors are emitted at the module.
mlir::LogicalResult writeRuntimeGraph(mlir::ModuleOp module,
                                      llvm::raw_ostream &os);

/// Registers `--export-runtime-graph`: the llm model function as the
/// runtime's graph JSON (format "seq1f1b-graph", docs/runtime.md): params,
/// per-token feature size of every activation and the ordered op list; for
/// a module cut into pipe.stage ops also the op index where each stage
/// starts, so the runtime runs the compiler's cut.
void registerRuntimeGraphExport();

} // namespace seq1f1b

#endif // SEQ1F1B_TRANSLATE_RUNTIMEGRAPH_H
