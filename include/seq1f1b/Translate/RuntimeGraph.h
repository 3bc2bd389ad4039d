//===- RuntimeGraph.h - the model graph in the runtime's JSON form --------===//
#ifndef SEQ1F1B_TRANSLATE_RUNTIMEGRAPH_H
#define SEQ1F1B_TRANSLATE_RUNTIMEGRAPH_H

namespace seq1f1b {

/// Registers `--export-runtime-graph`: the llm model function as the
/// runtime's graph JSON (format "seq1f1b-graph", docs/runtime.md): params,
/// per-token feature size of every activation and the ordered op list; for
/// a module cut into pipe.stage ops also the op index where each stage
/// starts, so the runtime runs the compiler's cut.
void registerRuntimeGraphExport();

} // namespace seq1f1b

#endif // SEQ1F1B_TRANSLATE_RUNTIMEGRAPH_H
