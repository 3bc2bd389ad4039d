//===- models.h - Builders of GPT-2 and Llama graphs -------------*- C++ -*-===//
//
// The same structure, parameter names and initialization as the compiler's
// Hugging Face config importer (seq1f1b-translate --import-hf-config), so
// tests and CPU runs can build a model without the compiler.
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_RUNTIME_MODELS_H
#define SEQ1F1B_RUNTIME_MODELS_H

#include "seq1f1b/runtime/graph.h"

namespace s1f::rt {

struct GptConfig {
  int layers = 2, hidden = 32, heads = 2, ffn = 128;
  int vocab = 64, positions = 64;
  double eps = 1e-5, initStd = 0.02;
};

/// GPT-2: wte + wpe, per layer ln_1, q/k/v (bias), attention, c_proj,
/// residual, ln_2, c_fc, gelu, c_proj, residual; ln_f; head tied to wte.
Graph buildGpt(const GptConfig &config);

struct LlamaConfig {
  int layers = 2, hidden = 32, heads = 4, kvHeads = 2, ffn = 88;
  int vocab = 64;
  double eps = 1e-5, theta = 10000.0, initStd = 0.02;
  bool qkNorm = false; ///< Qwen3: each q and k head RMS-normalized
  /// Mixtral: with experts > 0 a mixture of `experts` SwiGLU experts of
  /// width ffn, topK per token, replaces the MLP.
  int experts = 0, topK = 2;
  bool normalizedTopK = true;
};

/// Llama: embed_tokens, per layer rms_norm, q/k/v (no bias), (with qkNorm,
/// per-head rms_norm of q and k,) rope on q and k, GQA attention, o_proj,
/// residual, rms_norm, gate/up, swiglu, down (or Mixtral's
/// block_sparse_moe), residual; norm; untied lm_head.
Graph buildLlama(const LlamaConfig &config);

} // namespace s1f::rt

#endif // SEQ1F1B_RUNTIME_MODELS_H
