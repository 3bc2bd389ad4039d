//===- RuntimeGraph.h - the model graph in the runtime's JSON form --------===//
#ifndef SEQ1F1B_TRANSLATE_RUNTIMEGRAPH_H
#define SEQ1F1B_TRANSLATE_RUNTIMEGRAPH_H

namespace seq1f1b {

/// Registers `--export-runtime-graph`: the llm model function as the
/// runtime's graph JSON (format "seq1f1b-graph", docs/runtime.md): params,
/// per-token feature size of every activation and the ordered op list.
void registerRuntimeGraphExport();

} // namespace seq1f1b

#endif // SEQ1F1B_TRANSLATE_RUNTIMEGRAPH_H
