//===- HFConfigReader.h - What a config.json says, as the importer reads it ===//
//
// Private to the Hugging Face importer (HFConfig.cpp, HFRope.cpp): the
// model's shape and rules as read from the config, and the reader that
// reports every problem at the key's line and column.
//
//===----------------------------------------------------------------------===//
#ifndef SEQ1F1B_LIB_TRANSLATE_HFCONFIGREADER_H
#define SEQ1F1B_LIB_TRANSLATE_HFCONFIGREADER_H

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Location.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"
#include <cmath>
#include <optional>
#include <string>
#include <vector>

namespace seq1f1b::hf {

using namespace mlir;
namespace json = llvm::json;

/// How RoPE turns a layer's queries and keys: theta and rope_scaling's rule.
struct RopeSpec {
  double theta = 10000.0;
  /// The rope_scaling kind applied: "linear" (factor alone), "llama3" (with
  /// the frequency factors), "yarn" (with the betas), "longrope" (with the
  /// factor lists) or "dynamic" (dynamicFactor); empty: none.
  std::string kind;
  double factor = 0, lowFreqFactor = 0, highFreqFactor = 0;
  double betaFast = 0, betaSlow = 0, attentionFactor = 1;
  int64_t originalContext = 0;
  /// "longrope": per-frequency divisors for sequences up to the original
  /// context and beyond it.
  std::vector<double> shortFactors, longFactors;
  /// "dynamic" (NTK): theta grows once the sequence outgrows
  /// max_position_embeddings.
  double dynamicFactor = 0;
};

/// The shape of a decoder, whatever family it comes from.
struct ModelSpec {
  std::string modelType;
  bool gpt2 = false;       // GPT-2 block, else Llama block (or the next one's)
  bool layerNorms = false; ///< GPT-NeoX and StarCoder2: LayerNorm, RoPE, GELU
  bool neox = false;
  bool parallelResidual = false; ///< GPT-NeoX: x + attn(ln1 x) + mlp(ln2 x)
  int64_t layers = 0, hidden = 0, heads = 0, kvHeads = 0, headDim = 0;
  int64_t ffn = 0, vocab = 0, maxPositions = 0;
  double normEps = 1e-5, initStd = 0.02;
  /// Partial rotary (GPT-NeoX's rotary_pct): dims turned per head; 0: all.
  int64_t rotaryDim = 0;
  std::string activation; ///< hidden_act (GPT-2: activation_function)
  RopeSpec rope;
  /// Gemma 3's sliding-window layers turn by a RoPE of their own.
  std::optional<RopeSpec> localRope;
  /// A rope_scaling kind the graph does not express (a warning); empty: none.
  std::string unmodeledRope;
  bool exactGelu = false; ///< "gelu": x Phi(x); else GELU's tanh form
  bool tied = false, attentionBias = false, mlpBias = false;
  bool sandwichNorms = false; ///< Gemma 2: norms after attention and MLP too
  /// RMSNorm of q and k before RoPE: of each head (Qwen3, Gemma 3) or of the
  /// whole projection (OLMo 2).
  enum class QkNorm { None, PerHead, Whole } qkNorm = QkNorm::None;
  bool postNormsOnly = false; ///< OLMo 2: norms after attention and MLP only
  /// GLM-4: Gemma 2's four norms under GLM's names, RoPE turning pairs of
  /// adjacent dimensions (interleaved).
  bool glmNorms = false, interleavedRope = false;
  bool geglu = false;         ///< Gemma: the MLP's gate is GELU, not SiLU
  bool scaledEmbedding = false; ///< Gemma: rows times sqrt(hidden)
  /// Gemma 2: attention scores times queryScale (0: 1/sqrt(head_dim)) and
  /// capped at attnSoftcap, logits capped at finalSoftcap (0: none).
  double queryScale = 0, attnSoftcap = 0, finalSoftcap = 0;
  /// Granite: embeddings times embeddingScale, each residual branch times
  /// residualScale, logits divided by logitsDivisor (1: none).
  double embeddingScale = 1, residualScale = 1, logitsDivisor = 1;
  /// Sliding-window attention: 0, or each token of a sliding layer attends
  /// to the last `slidingWindow` tokens (itself included).
  int64_t slidingWindow = 0;
  std::vector<bool> slidingLayers; ///< per layer; empty: none slides
  /// SmolLM3: the layers that skip RoPE (NoPE); empty: none.
  std::vector<bool> noRopeLayers;
  std::string dtype = "f32";
  /// A mixture of experts replaces the MLP (Mixtral, Qwen3-MoE, OLMoE):
  /// `experts` experts of width expertFfn, each token routed to
  /// expertsPerToken of them, their weights renormalized with normTopK.
  int64_t experts = 0, expertsPerToken = 0, expertFfn = 0;
  bool normTopK = false;
  /// Qwen2-MoE: a shared expert this wide, gated per token (0: none).
  int64_t sharedExpertFfn = 0;
  /// Qwen3-MoE: the layers that keep a dense MLP (ffn wide); empty: none.
  std::vector<bool> denseLayers;
};

/// Reads typed keys of the top-level JSON object; every error names the file,
/// the key's line and column, the key and what is wrong with it.
class ConfigReader {
public:
  ConfigReader(MLIRContext *ctx, StringRef file, StringRef text,
               const json::Object &object)
      : ctx(ctx), file(file), text(text), object(object) {}

  /// Location of `"key":` in the text, or of the file's start.
  Location locOf(StringRef key) {
    std::string quoted = ("\"" + key + "\"").str();
    size_t pos = text.find(quoted);
    while (pos != StringRef::npos) {
      StringRef rest = text.drop_front(pos + quoted.size()).ltrim();
      if (rest.starts_with(":"))
        break;
      pos = text.find(quoted, pos + 1);
    }
    if (pos == StringRef::npos)
      return FileLineColLoc::get(ctx, file, 1, 1);
    StringRef before = text.take_front(pos);
    unsigned line = before.count('\n') + 1;
    size_t lineStart = before.rfind('\n');
    unsigned col = pos - (lineStart == StringRef::npos ? 0 : lineStart + 1) + 1;
    return FileLineColLoc::get(ctx, file, line, col);
  }

  InFlightDiagnostic error(StringRef key) {
    ok = false;
    return emitError(locOf(key)) << "key '" << key << "': ";
  }

  InFlightDiagnostic warning(StringRef key) {
    return emitWarning(locOf(key)) << "key '" << key << "': ";
  }

  const json::Value *get(StringRef key) {
    const json::Value *v = object.get(key);
    return v && v->kind() != json::Value::Null ? v : nullptr;
  }

  bool has(StringRef key) {
    const json::Value *v = object.get(key);
    return v && v->kind() != json::Value::Null;
  }

  /// A positive integer; `fallback` when absent (or an error when none).
  int64_t positiveInt(StringRef key, std::optional<int64_t> fallback = {}) {
    const json::Value *v = object.get(key);
    if (!v || v->kind() == json::Value::Null) {
      if (fallback)
        return *fallback;
      missing(key);
      return 0;
    }
    std::optional<int64_t> n = v->getAsInteger();
    if (!n || *n <= 0) {
      error(key) << "expected a positive integer, got " << render(*v);
      return 0;
    }
    return *n;
  }

  double positiveNumber(StringRef key, double fallback) {
    const json::Value *v = object.get(key);
    if (!v || v->kind() == json::Value::Null)
      return fallback;
    std::optional<double> x = v->getAsNumber();
    if (!x || !(*x > 0) || !std::isfinite(*x)) {
      error(key) << "expected a positive number, got " << render(*v);
      return fallback;
    }
    return *x;
  }

  bool boolean(StringRef key, bool fallback) {
    const json::Value *v = object.get(key);
    if (!v || v->kind() == json::Value::Null)
      return fallback;
    std::optional<bool> b = v->getAsBoolean();
    if (!b) {
      error(key) << "expected true or false, got " << render(*v);
      return fallback;
    }
    return *b;
  }

  std::optional<StringRef> string(StringRef key) {
    const json::Value *v = object.get(key);
    if (!v || v->kind() == json::Value::Null)
      return std::nullopt;
    std::optional<StringRef> s = v->getAsString();
    if (!s)
      error(key) << "expected a string, got " << render(*v);
    return s;
  }

  void missing(StringRef key) {
    ok = false;
    emitError(FileLineColLoc::get(ctx, file, 1, 1))
        << "missing key '" << key << "' (required for model_type '"
        << modelType << "')";
  }

  static std::string render(const json::Value &v) {
    std::string s;
    llvm::raw_string_ostream os(s);
    os << v;
    return s;
  }

  bool ok = true;
  std::string modelType;

private:
  MLIRContext *ctx;
  StringRef file, text;
  const json::Object &object;
};

/// The kind of a rope_scaling object ("rope_type", or "type" in older
/// configs), "?" if it names none.
std::string ropeScalingKind(const json::Object &scaling);
std::string ropeScalingKind(const json::Value &scaling);

/// RoPE's parameters: transformers 5 keeps them in "rope_parameters" (theta,
/// partial rotary and the scaling keys; per layer type where those differ,
/// as for Gemma 3), older configs in "rope_theta" and "rope_scaling". Reads
/// the "linear", "llama3", "yarn", "longrope" and "dynamic" rules into
/// spec.rope (and spec.localRope); another kind into spec.unmodeledRope.
LogicalResult readRopeParameters(ConfigReader &reader, ModelSpec &spec);

} // namespace seq1f1b::hf

#endif // SEQ1F1B_LIB_TRANSLATE_HFCONFIGREADER_H
