//===- graph_json.h - JSON form of the runtime model graph -------*- C++
//-*-===//
//
// The form the compiler emits for the runtime:
//   {"format": "seq1f1b-graph", "version": 1,
//    "params": [{"name": "wte", "shape": [64, 16], "init": "normal",
//                "std": 0.02}, ...],              // init: normal|zeros|ones
//    "values": [16, 16, 48, ...],                 // feature size per value id
//    "ops": [{"op": "embedding", "params": ["wte"], "out": 0},
//            {"op": "attention", "in": [5, 6, 7], "out": 8, "heads": 2,
//             "kv_heads": 2}, ...]}
// Optional: "stages" (the compiler's cut), "model_type" (the config's) and
// "resolved_for_seq_len" (the length length-dependent parts were chosen for).
// Ops name parameters by name; optional fields: eps and heads (norms; heads:
// rms_norm of each head on its own), heads, theta,
// rotary_dim (rope; absent: the whole head) and rope_scaling ({factor,
// low_freq_factor and high_freq_factor (llama3) or beta_fast and beta_slow
// (yarn), original_context, attention_factor}), heads, kv_heads,
// window (a sliding window, absent for none), score_scale and softcap
// (attention), exact (gelu: x Phi(x), absent: the tanh form), scale
// (embedding: rows times it, absent: 1), softcap (softcap).
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_RUNTIME_GRAPH_JSON_H
#define SEQ1F1B_RUNTIME_GRAPH_JSON_H

#include "seq1f1b/runtime/graph.h"

#include <string>

namespace s1f::rt {

/// Parses and validates a graph; throws std::invalid_argument with a message
/// naming the problem ("op 3: unknown op 'conv'", "op 5 (linear): input value
/// 12 does not exist", JSON syntax errors with their byte offset).
Graph graphFromJson(const std::string &text);
std::string graphToJson(const Graph &graph);

/// The same through files; errors name the path.
Graph loadGraph(const std::string &path);
void saveGraph(const Graph &graph, const std::string &path);

} // namespace s1f::rt

#endif // SEQ1F1B_RUNTIME_GRAPH_JSON_H
