//===- hf_weights.h - Parameters from Hugging Face weights ------*- C++ -*-===//
//
// The importer names parameters as Hugging Face does, so a checkpoint's
// tensors (model.safetensors, read by readSafetensors) become the graph's
// parameters by a few fixed rules rather than a table per model.
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_RUNTIME_HF_WEIGHTS_H
#define SEQ1F1B_RUNTIME_HF_WEIGHTS_H

#include "seq1f1b/runtime/graph.h"
#include "seq1f1b/runtime/safetensors.h"

#include <string>
#include <vector>

namespace s1f::rt {

/// A checkpoint's tensors from `path`: a .safetensors file, a sharded
/// checkpoint's model.safetensors.index.json (every file its weight_map
/// names, next to it), or a directory holding either. Throws
/// std::invalid_argument naming the file and what is wrong.
TensorMap readHfCheckpoint(const std::string &path);

/// Every parameter of `graph` from a checkpoint's tensors: names without a
/// "model.", "transformer." or "gpt_neox." prefix; embedding tables (the
/// graph's "wte", "embed_tokens", "embed_in") without ".weight"; and in
/// GPT-2 checkpoints (those with a fused c_attn) the Conv1D weights, stored
/// [in, out], transposed and c_attn split into the graph's q, k and v;
/// Phi-3's stacked qkv_proj and gate_up_proj split by rows; GPT-NeoX's
/// query_key_value, interleaved by head, split; Gemma's norm weights w
/// become 1 + w (its norms scale by 1 + w); a mixture of experts' weights,
/// one tensor per expert ("mlp.experts.3.up_proj.weight"), stacked by rows
/// into the graph's "mlp.experts.up_proj.weight". Throws std::invalid_argument
/// naming the first parameter missing or of another shape. `ignored` gets
/// the tensors no parameter took (buffers such as GPT-2's attn.bias).
TensorMap graphParamsFromHf(const TensorMap &checkpoint, const Graph &graph,
                            std::vector<std::string> *ignored = nullptr);

/// Whether hfFromGraphParams writes `graph`'s parameters (empty), or why
/// not.
std::string checkHfNames(const Graph &graph);

/// The inverse of graphParamsFromHf for the graphs of Llama-family and
/// StarCoder2 configs (names under "model.", the head as "lm_head.weight";
/// Phi-3's q, k, v and gate, up stacked again, by the graph's model_type),
/// of GPT-NeoX (names under "gpt_neox.", the head as "embed_out.weight", q,
/// k and v interleaved into query_key_value; experts' weights one tensor
/// per expert again) and of GPT-2 (names under
/// "transformer.", q, k and v fused back into c_attn, Conv1D weights stored
/// [in, out]): a checkpoint transformers loads. Throws
/// std::invalid_argument for other graphs.
TensorMap hfFromGraphParams(const TensorMap &params, const Graph &graph);

} // namespace s1f::rt

#endif // SEQ1F1B_RUNTIME_HF_WEIGHTS_H
