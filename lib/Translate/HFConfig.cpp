//===- HFConfig.cpp - Hugging Face config.json to the llm dialect --------===//
//
// Reads the few keys that fix a decoder's shape and writes the model graph:
// GPT-2 (LayerNorm, GELU, learned positions, tied embeddings); the Llama
// family (RMSNorm, RoPE, a gated MLP, grouped-query attention: Llama,
// Mistral, Qwen2, Qwen3 and Gemma 3 with norms of each q and k head, Phi-3,
// Gemma, Gemma 2 and 3 with four norms per block, OLMo 2 with norms after
// only, SmolLM3 with RoPE-less layers, Granite with its multipliers); and
// GPT-NeoX (Pythia) and StarCoder2 (LayerNorm, RoPE, a GELU MLP; NeoX with
// attention and MLP side by side on the residual). RoPE's parameters are
// read in HFRope.cpp. Every problem with the file is reported at the
// offending key's line and column.
//
//===----------------------------------------------------------------------===//
#include "seq1f1b/Translate/HFConfig.h"

#include "HFConfigReader.h"
#include "seq1f1b/Dialect/LLM/IR/LLMOps.h"
#include "seq1f1b/Dialect/Pipe/IR/PipeOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Tools/mlir-translate/Translation.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Regex.h"
#include <cmath>
#include <tuple>
#include <utility>

using namespace mlir;
using namespace seq1f1b;
using namespace seq1f1b::hf;
namespace json = llvm::json;

namespace {

/// Maps torch_dtype names to ours.
std::optional<std::string> dtypeFromTorch(StringRef torch) {
  if (torch == "float32")
    return "f32";
  if (torch == "bfloat16")
    return "bf16";
  if (torch == "float16")
    return "f16";
  return std::nullopt;
}

/// The model types whose block is Llama's (RMSNorm, RoPE, gated MLP, GQA).
constexpr StringRef kLlamaFamily[] = {
    "llama", "mistral", "qwen2",       "qwen3", "phi3",
    "gemma", "gemma2",  "gemma3_text", "olmo2", "smollm3", "granite", "glm4",
    "mixtral", "qwen2_moe", "qwen3_moe", "olmoe"};
constexpr const char *kSupported =
    "gpt2, llama, mistral, qwen2, qwen3, phi3, gemma, gemma2, gemma3_text, "
    "olmo2, smollm3, granite, glm4, gpt_neox, starcoder2, mixtral, qwen2_moe, "
    "qwen3_moe, olmoe";


/// The config of the language model a config describes: a multimodal Gemma 3
/// describes its in "text_config" (the dtype at the top level); the keys it
/// leaves out take Gemma3TextConfig's defaults, as transformers reads them.
json::Object languageModelConfig(const json::Object &top) {
  const json::Object *text = top.getObject("text_config");
  const bool multimodal = top.getString("model_type") == "gemma3" && text;
  json::Object config = multimodal ? *text : top;
  if (!multimodal && config.getString("model_type") != "gemma3_text")
    return config;
  config.try_emplace("model_type", "gemma3_text");
  if (const json::Value *dtype = top.get("torch_dtype"))
    config.try_emplace("torch_dtype", *dtype);
  const std::pair<const char *, json::Value> defaults[] = {
      {"vocab_size", 262208},          {"hidden_size", 2304},
      {"intermediate_size", 9216},     {"num_hidden_layers", 26},
      {"num_attention_heads", 8},      {"num_key_value_heads", 4},
      {"head_dim", 256},               {"max_position_embeddings", 131072},
      {"rms_norm_eps", 1e-6},          {"rope_theta", 1e6},
      {"query_pre_attn_scalar", 256},  {"sliding_window", 4096},
      {"rope_local_base_freq", 1e4},   {"sliding_window_pattern", 6},
      {"tie_word_embeddings", true}};
  for (const auto &[key, value] : defaults)
    config.try_emplace(key, value);
  return config;
}

/// SmolLM3's layers without RoPE: "no_rope_layers" (1: RoPE, 0: none) where
/// given, else every no_rope_layer_interval-th layer (4 by default).
LogicalResult readNoRopeLayers(ConfigReader &reader, ModelSpec &spec) {
  if (spec.modelType != "smollm3")
    return success();
  if (const json::Value *flags = reader.get("no_rope_layers")) {
    const json::Array *list = flags->getAsArray();
    if (!list || int64_t(list->size()) != spec.layers)
      return reader.error("no_rope_layers")
             << "expected a list of " << spec.layers << " flags, one per "
             << "layer (1: RoPE, 0: none)";
    for (const json::Value &f : *list) {
      std::optional<int64_t> flag = f.getAsInteger();
      if (!flag || (*flag != 0 && *flag != 1))
        return reader.error("no_rope_layers")
               << "expected 0 or 1, got " << ConfigReader::render(f);
      spec.noRopeLayers.push_back(*flag == 0);
    }
    return success();
  }
  const int64_t interval = reader.positiveInt("no_rope_layer_interval", 4);
  for (int64_t i = 0; i < spec.layers; ++i)
    spec.noRopeLayers.push_back((i + 1) % interval == 0);
  return success(reader.ok);
}

/// Mixtral's, Qwen2-MoE's, Qwen3-MoE's and OLMoE's mixture of experts (their
/// configs' defaults where a key is absent); the Qwens' dense layers and
/// Qwen2-MoE's shared expert.
LogicalResult readExperts(ConfigReader &reader, ModelSpec &spec) {
  const std::string &type = spec.modelType;
  if (type != "mixtral" && type != "qwen2_moe" && type != "qwen3_moe" &&
      type != "olmoe")
    return success();
  const bool mixtral = type == "mixtral", qwen2 = type == "qwen2_moe",
             qwen = qwen2 || type == "qwen3_moe";
  spec.experts = reader.positiveInt(mixtral ? "num_local_experts" : "num_experts",
                                    mixtral ? 8 : qwen2 ? 60 : qwen ? 128 : 64);
  spec.expertsPerToken =
      reader.positiveInt("num_experts_per_tok", mixtral ? 2 : qwen2 ? 4 : 8);
  spec.expertFfn =
      qwen ? reader.positiveInt("moe_intermediate_size", qwen2 ? 1408 : 768)
           : spec.ffn;
  if (qwen2)
    spec.sharedExpertFfn =
        reader.positiveInt("shared_expert_intermediate_size", 5632);
  spec.normTopK = mixtral || reader.boolean("norm_topk_prob", false);
  if (!reader.ok)
    return failure();
  if (spec.expertsPerToken > spec.experts)
    return reader.error("num_experts_per_tok")
           << "routes each token to " << spec.expertsPerToken
           << " experts, but the model has " << spec.experts;
  if (!qwen)
    return success();
  const int64_t step = reader.positiveInt("decoder_sparse_step", 1);
  spec.denseLayers.assign(spec.layers, false);
  for (int64_t i = 0; i < spec.layers; ++i)
    spec.denseLayers[i] = (i + 1) % step != 0;
  if (const json::Value *only = reader.get("mlp_only_layers")) {
    const json::Array *list = only->getAsArray();
    if (!list)
      return reader.error("mlp_only_layers") << "expected a list of layers";
    for (const json::Value &l : *list) {
      std::optional<int64_t> layer = l.getAsInteger();
      if (!layer || *layer < 0 || *layer >= spec.layers)
        return reader.error("mlp_only_layers")
               << "expected layers in [0, " << spec.layers << "), got "
               << ConfigReader::render(l);
      spec.denseLayers[*layer] = true;
    }
  }
  return success(reader.ok);
}

/// Which layers slide: "layer_types" where the config lists them
/// (transformers 5), else each family's rule: Mistral, Phi-3 and StarCoder2
/// every layer, Gemma 2 the even ones, Gemma 3 all but every
/// sliding_window_pattern-th, Qwen2 and Qwen3 with use_sliding_window those
/// from max_window_layers on. sliding_window null: none.
LogicalResult readSlidingLayers(ConfigReader &reader, ModelSpec &spec) {
  const std::string &type = spec.modelType;
  if (const json::Value *types = reader.get("layer_types")) {
    const json::Array *list = types->getAsArray();
    if (!list || int64_t(list->size()) != spec.layers)
      return reader.error("layer_types")
             << "expected a list of " << spec.layers
             << " layer types, one per layer";
    for (const json::Value &t : *list) {
      std::optional<StringRef> name = t.getAsString();
      if (!name || (*name != "sliding_attention" && *name != "full_attention"))
        return reader.error("layer_types")
               << "unknown layer type " << ConfigReader::render(t)
               << " (known: sliding_attention, full_attention)";
      spec.slidingLayers.push_back(*name == "sliding_attention");
    }
  } else if (type == "mistral" || type == "phi3" || type == "starcoder2" ||
             type == "mixtral") {
    spec.slidingLayers.assign(spec.layers, true);
  } else if (type == "gemma2" || type == "gemma3_text") {
    const int64_t pattern =
        type == "gemma2" ? 2 : reader.positiveInt("sliding_window_pattern", 6);
    for (int64_t i = 0; i < spec.layers; ++i)
      spec.slidingLayers.push_back((i + 1) % pattern != 0);
  } else if ((type == "qwen2" || type == "qwen3" || type == "qwen2_moe" ||
              type == "qwen3_moe") &&
             reader.boolean("use_sliding_window", false)) {
    const int64_t from = reader.positiveInt("max_window_layers", 28);
    for (int64_t i = 0; i < spec.layers; ++i)
      spec.slidingLayers.push_back(i >= from);
  }
  if (const json::Value *w = reader.get("sliding_window");
      w && llvm::is_contained(spec.slidingLayers, true))
    spec.slidingWindow = reader.positiveInt("sliding_window");
  return success(reader.ok);
}

LogicalResult readSpec(ConfigReader &reader, ModelSpec &spec,
                       MLIRContext *ctx, StringRef file) {
  std::optional<StringRef> type = reader.string("model_type");
  if (!reader.ok)
    return failure();
  if (!type)
    return emitError(FileLineColLoc::get(ctx, file, 1, 1))
           << "missing key 'model_type' (supported: " << kSupported << ")";
  spec.modelType = type->str();
  reader.modelType = spec.modelType;
  if (spec.modelType == "gpt2") {
    spec.gpt2 = true;
    spec.layers = reader.positiveInt("n_layer");
    spec.hidden = reader.positiveInt("n_embd");
    spec.heads = reader.positiveInt("n_head");
    spec.maxPositions = reader.positiveInt("n_positions");
    spec.vocab = reader.positiveInt("vocab_size");
    spec.kvHeads = spec.heads;
    spec.ffn = reader.positiveInt("n_inner", 4 * spec.hidden);
    spec.normEps = reader.positiveNumber("layer_norm_epsilon", 1e-5);
    spec.tied = reader.boolean("tie_word_embeddings", true);
    spec.attentionBias = spec.mlpBias = true;
  } else if (llvm::is_contained(kLlamaFamily, spec.modelType)) {
    const bool gemma = StringRef(spec.modelType).starts_with("gemma");
    const bool gemma3 = spec.modelType == "gemma3_text";
    spec.sandwichNorms = spec.modelType == "gemma2" || gemma3;
    const bool olmo2 = spec.modelType == "olmo2";
    spec.qkNorm =
        spec.modelType == "qwen3" || spec.modelType == "qwen3_moe" || gemma3
            ? ModelSpec::QkNorm::PerHead
        : olmo2 || spec.modelType == "olmoe" ? ModelSpec::QkNorm::Whole
                                             : ModelSpec::QkNorm::None;
    spec.postNormsOnly = olmo2;
    spec.glmNorms = spec.interleavedRope = spec.modelType == "glm4";
    spec.sandwichNorms |= spec.glmNorms;
    spec.geglu = spec.scaledEmbedding = gemma;
    spec.layers = reader.positiveInt("num_hidden_layers");
    spec.hidden = reader.positiveInt("hidden_size");
    spec.ffn = reader.positiveInt("intermediate_size");
    spec.heads = reader.positiveInt("num_attention_heads");
    spec.kvHeads = reader.positiveInt("num_key_value_heads", spec.heads);
    spec.vocab = reader.positiveInt("vocab_size");
    spec.maxPositions = reader.positiveInt("max_position_embeddings", 4096);
    spec.rope.theta = reader.positiveNumber("rope_theta", 10000.0);
    spec.normEps = reader.positiveNumber("rms_norm_eps", 1e-6);
    spec.tied = reader.boolean("tie_word_embeddings",
                               gemma || spec.modelType == "smollm3");
    // Qwen2 always biases its q/k/v projections.
    spec.attentionBias = reader.boolean(
        "attention_bias", spec.modelType == "qwen2" ||
                              spec.modelType == "qwen2_moe" || spec.glmNorms);
    spec.mlpBias = reader.boolean("mlp_bias", false);
    if (reader.has("head_dim"))
      spec.headDim = reader.positiveInt("head_dim");
    if (failed(readExperts(reader, spec)))
      return failure();
  } else if (spec.modelType == "gpt_neox" || spec.modelType == "starcoder2") {
    spec.layerNorms = true;
    spec.neox = spec.modelType == "gpt_neox";
    spec.layers = reader.positiveInt("num_hidden_layers");
    spec.hidden = reader.positiveInt("hidden_size");
    spec.ffn = reader.positiveInt("intermediate_size");
    spec.heads = reader.positiveInt("num_attention_heads");
    spec.vocab = reader.positiveInt("vocab_size");
    spec.maxPositions = reader.positiveInt("max_position_embeddings", 2048);
    if (spec.neox) {
      spec.kvHeads = spec.heads;
      spec.rope.theta = reader.positiveNumber("rotary_emb_base", 10000.0);
      spec.normEps = reader.positiveNumber("layer_norm_eps", 1e-5);
      spec.tied = reader.boolean("tie_word_embeddings", false);
      spec.parallelResidual = reader.boolean("use_parallel_residual", true);
      spec.attentionBias = reader.boolean("attention_bias", true);
      spec.mlpBias = true;
    } else {
      spec.kvHeads = reader.positiveInt("num_key_value_heads", spec.heads);
      spec.rope.theta = reader.positiveNumber("rope_theta", 10000.0);
      spec.normEps = reader.positiveNumber("norm_epsilon", 1e-5);
      spec.tied = reader.boolean("tie_word_embeddings", true);
      spec.attentionBias = spec.mlpBias = reader.boolean("use_bias", true);
    }
  } else {
    return emitError(reader.locOf("model_type"))
           << "key 'model_type': unsupported model type '" << spec.modelType
           << "' (supported: " << kSupported << ")";
  }
  if (failed(readSlidingLayers(reader, spec)) ||
      failed(readNoRopeLayers(reader, spec)))
    return failure();
  spec.initStd = reader.positiveNumber("initializer_range", 0.02);
  if (std::optional<StringRef> torch = reader.string("torch_dtype")) {
    std::optional<std::string> ours = dtypeFromTorch(*torch);
    if (!ours)
      reader.error("torch_dtype") << "unsupported dtype '" << *torch
                                  << "' (supported: float32, bfloat16, float16)";
    else
      spec.dtype = *ours;
  }
  if (std::optional<StringRef> act =
          reader.string(spec.gpt2 ? "activation_function" : "hidden_act"))
    spec.activation = act->str();
  if (!reader.ok)
    return failure();

  StringRef headsKey = spec.gpt2 ? "n_head" : "num_attention_heads";
  StringRef hiddenKey = spec.gpt2 ? "n_embd" : "hidden_size";
  if (spec.headDim == 0) {
    if (spec.hidden % spec.heads != 0)
      return reader.error(headsKey)
             << spec.heads << " heads do not divide the hidden size "
             << spec.hidden << " ('" << hiddenKey << "')";
    spec.headDim = spec.hidden / spec.heads;
  }
  if (spec.heads % spec.kvHeads != 0)
    return reader.error("num_key_value_heads")
           << spec.kvHeads << " kv heads do not divide the " << spec.heads
           << " attention heads";
  if (!spec.gpt2 && spec.headDim % 2 != 0)
    return reader.error(headsKey) << "rotary embeddings need an even head "
                                     "dimension, got "
                                  << spec.headDim;
  // Partial rotary: transformers turns int(head_dim * factor) dimensions.
  if (spec.glmNorms) // Glm4Config turns half of each head by default
    spec.rotaryDim = spec.headDim / 2;
  for (StringRef key : {"partial_rotary_factor", "rotary_pct"}) {
    const json::Value *v = reader.get(key);
    if (spec.gpt2 || !v)
      continue;
    std::optional<double> factor = v->getAsNumber();
    if (!factor || !(*factor > 0 && *factor <= 1))
      return reader.error(key) << "expected a number in (0, 1]";
    const int64_t dims = int64_t(spec.headDim * *factor);
    if (dims < 2 || dims % 2 != 0)
      return reader.error(key)
             << "turns " << dims << " of each head's " << spec.headDim
             << " dimensions; rotary embeddings need an even number";
    spec.rotaryDim = dims == spec.headDim ? 0 : dims;
  }
  spec.exactGelu = (spec.gpt2 || spec.layerNorms) && spec.activation == "gelu";
  if (spec.modelType == "gemma2" || spec.modelType == "gemma3_text") {
    spec.attnSoftcap = reader.positiveNumber("attn_logit_softcapping", 0);
    spec.finalSoftcap = reader.positiveNumber("final_logit_softcapping", 0);
    const double q = reader.positiveNumber("query_pre_attn_scalar",
                                           double(spec.headDim));
    if (q != double(spec.headDim))
      spec.queryScale = 1 / std::sqrt(q);
    if (!reader.ok)
      return failure();
  }
  if (spec.modelType == "granite") {
    // GraniteConfig's defaults are 1, the attention's scale included.
    spec.embeddingScale = reader.positiveNumber("embedding_multiplier", 1);
    spec.residualScale = reader.positiveNumber("residual_multiplier", 1);
    spec.logitsDivisor = reader.positiveNumber("logits_scaling", 1);
    spec.queryScale = reader.positiveNumber("attention_multiplier", 1);
    if (!reader.ok)
      return failure();
  }
  return readRopeParameters(reader, spec);
}

/// Keys that change the model but that the graph does not express get a
/// warning at the key (never an error: plans are still right for everything
/// else), so no plan or run is silently of another model.
void warnUnmodeled(ConfigReader &reader, const ModelSpec &spec, int64_t seq) {
  static constexpr StringRef gelus[] = {"gelu_new", "gelu", "gelu_pytorch_tanh",
                                        "gelu_fast"};
  if (spec.gpt2 || spec.layerNorms) {
    StringRef key = spec.gpt2 ? "activation_function" : "hidden_act";
    if (!spec.activation.empty() &&
        !llvm::is_contained(gelus, StringRef(spec.activation)))
      reader.warning(key) << "'" << spec.activation
                          << "' is not modeled: the MLP uses GELU";
  }
  if (spec.gpt2)
    return;
  // Gemma's GELU gate is modeled (GeGLU); the rest of the family gates with
  // SiLU.
  if (!spec.geglu && !spec.layerNorms && !spec.activation.empty() &&
      spec.activation != "silu") {
    reader.warning("hidden_act")
        << "'" << spec.activation
        << "' is not modeled: the MLP uses SwiGLU (SiLU)";
  }
  if (spec.experts) {
    if (reader.boolean("output_router_logits", false))
      reader.warning("output_router_logits")
          << "transformers' load-balancing loss (over all layers at once) is "
             "not modeled; seq1f1b-train --moe-aux-loss adds Megatron's, "
             "per layer";
    if (reader.positiveNumber("router_jitter_noise", 0) > 0)
      reader.warning("router_jitter_noise")
          << "router jitter is not modeled: tokens are routed without noise";
    if (reader.has("clip_qkv"))
      reader.warning("clip_qkv")
          << "clipping q, k and v is not modeled";
  }
  if (!spec.unmodeledRope.empty()) {
    StringRef key = reader.has("rope_parameters") ? "rope_parameters"
                                                  : "rope_scaling";
    reader.warning(key)
        << "RoPE scaling '" << spec.unmodeledRope
        << "' is not applied: positions use plain RoPE with rope_theta "
        << ConfigReader::render(spec.rope.theta)
        << " (plans do not depend on it; a trained model's positions do)";
  }
  if (seq > spec.maxPositions && spec.rope.kind.empty() &&
      spec.unmodeledRope.empty() && reader.has("max_position_embeddings"))
    reader.warning("max_position_embeddings")
        << "--seq-len " << seq << " is beyond the " << spec.maxPositions
        << " positions the model was trained for, and no rope_scaling "
        << "extends them: RoPE extrapolates (long-context fine-tunes add "
        << "rope_scaling, e.g. yarn or linear)";
  for (StringRef key : {"rope_parameters", "rope_scaling"})
    if (const json::Value *rope = reader.get(key);
        rope && ropeScalingKind(*rope) == "yarn" &&
        rope->getAsObject()->getBoolean("truncate") == false)
      reader.warning(key)
          << "YaRN's 'truncate': false is not modeled: the blended band's "
          << "ends are rounded outward, as with 'truncate': true";
}

/// Emits the model graph into a fresh module.
class GraphBuilder {
public:
  GraphBuilder(MLIRContext *ctx, const ModelSpec &spec, int64_t batch,
               int64_t seq, Location fileLoc)
      : spec(spec), batch(batch), seq(seq), fileLoc(fileLoc), builder(ctx) {
    if (spec.dtype == "bf16")
      elt = builder.getBF16Type();
    else if (spec.dtype == "f16")
      elt = builder.getF16Type();
    else
      elt = builder.getF32Type();
  }

  OwningOpRef<ModuleOp> build() {
    OwningOpRef<ModuleOp> module = ModuleOp::create(fileLoc);
    moduleBody = module->getBody();
    setConfigAttr(*module);
    auto ids = RankedTensorType::get({batch, seq}, builder.getI32Type());
    auto scalarF32 = RankedTensorType::get({}, builder.getF32Type());
    auto scalarI64 = RankedTensorType::get({}, builder.getI64Type());
    builder.setInsertionPointToEnd(moduleBody);
    auto func = builder.create<func::FuncOp>(
        fileLoc, "model",
        builder.getFunctionType({ids, ids}, {scalarF32, scalarI64}));
    modelFunc = func;
    func->setAttr("llm.inputs", builder.getStrArrayAttr({"tokens", "targets"}));
    Block *entry = func.addEntryBlock();
    funcBuilder = std::make_unique<OpBuilder>(OpBuilder::atBlockEnd(entry));
    Value tokens = entry->getArgument(0), targets = entry->getArgument(1);

    Value x = spec.gpt2         ? gpt2Embeddings(tokens)
              : spec.layerNorms ? normBlockEmbeddings(tokens)
                                : llamaEmbeddings(tokens);
    for (int64_t i = 0; i < spec.layers; ++i)
      x = spec.gpt2         ? gpt2Block(x, i)
          : spec.layerNorms ? normBlock(x, i)
                            : llamaBlock(x, i);
    Value logits = spec.gpt2         ? gpt2Head(x)
                   : spec.layerNorms ? normBlockHead(x)
                                     : llamaHead(x);
    Location loc = named("loss");
    auto ce = funcBuilder->create<llm::CrossEntropyOp>(loc, scalarF32, scalarI64,
                                                       logits, targets);
    funcBuilder->create<func::ReturnOp>(loc, ce.getResults());
    return module;
  }

private:
  void setConfigAttr(ModuleOp module) {
    NamedAttrList attrs;
    auto i64 = [&](StringRef name, int64_t v) {
      attrs.append(name, builder.getI64IntegerAttr(v));
    };
    attrs.append("model_type", builder.getStringAttr(spec.modelType));
    i64("layers", spec.layers);
    i64("hidden", spec.hidden);
    i64("heads", spec.heads);
    i64("kv_heads", spec.kvHeads);
    i64("head_dim", spec.headDim);
    i64("ffn", spec.ffn);
    i64("vocab", spec.vocab);
    i64("seq_len", seq);
    i64("micro_batch", batch);
    attrs.append("tied_embeddings", builder.getBoolAttr(spec.tied));
    if (resolvedForLength())
      i64("resolved_for_seq_len", seq);
    module->setAttr("llm.config", attrs.getDictionary(builder.getContext()));
  }

  /// Whether the graph holds what only this sequence length decides:
  /// LongRoPE's factor list, dynamic NTK's theta, or a window no shorter
  /// than the sequence, dropped.
  bool resolvedForLength() const {
    auto byLength = [](const RopeSpec &r) {
      return r.kind == "longrope" || r.kind == "dynamic";
    };
    return byLength(spec.rope) ||
           (spec.localRope && byLength(*spec.localRope)) ||
           (spec.slidingWindow >= seq &&
            llvm::is_contained(spec.slidingLayers, true));
  }

  Location named(const Twine &name) {
    return NameLoc::get(builder.getStringAttr(name), fileLoc);
  }

  RankedTensorType act(int64_t features) {
    return RankedTensorType::get({batch, seq, features}, elt);
  }

  /// Declares `llm.param @name` once and reads it where it is used.
  Value param(const Twine &name, ArrayRef<int64_t> shape, llm::ParamInit init,
              double std = 0) {
    std::string symbol = name.str();
    auto type = RankedTensorType::get(shape, elt);
    if (!declared.count(symbol)) {
      declared.insert(symbol);
      // Params come before the model function in the module.
      OpBuilder::InsertionGuard guard(builder);
      builder.setInsertionPoint(modelFunc);
      auto stdAttr = init == llm::ParamInit::normal
                         ? builder.getF64FloatAttr(std)
                         : FloatAttr();
      builder.create<llm::ParamOp>(named(symbol), symbol, type, init, stdAttr);
    }
    return funcBuilder->create<llm::ParamRefOp>(named(symbol), type, symbol);
  }
  Value normalParam(const Twine &name, ArrayRef<int64_t> shape, double std) {
    return param(name, shape, llm::ParamInit::normal, std);
  }
  Value zeros(const Twine &name, int64_t n) {
    return param(name, {n}, llm::ParamInit::zeros);
  }
  Value ones(const Twine &name, int64_t n) {
    return param(name, {n}, llm::ParamInit::ones);
  }

  /// x W^T (+ b) with W [out, in] named `<prefix>.weight`.
  Value linear(Value x, const Twine &prefix, int64_t out, bool bias,
               llm::LinearRole role, double std) {
    int64_t in = cast<RankedTensorType>(x.getType()).getDimSize(2);
    Value w = normalParam(prefix + ".weight", {out, in}, std);
    Value b = bias ? zeros(prefix + ".bias", out) : Value();
    return funcBuilder->create<llm::LinearOp>(
        named(prefix), act(out), x, w, b,
        llm::LinearRoleAttr::get(builder.getContext(), role));
  }

  Value add(Value a, Value b, const Twine &name) {
    return funcBuilder->create<llm::AddOp>(named(name), a, b);
  }

  Value layerNorm(Value x, const Twine &prefix) {
    Value g = ones(prefix + ".weight", spec.hidden);
    Value b = zeros(prefix + ".bias", spec.hidden);
    return funcBuilder->create<llm::LayerNormOp>(
        named(prefix), x.getType(), x, g, b,
        builder.getF64FloatAttr(spec.normEps));
  }

  Value rmsNorm(Value x, const Twine &prefix) {
    return rmsNorm(x, prefix, spec.hidden);
  }

  Value rmsNorm(Value x, const Twine &prefix, int64_t features) {
    Value g = ones(prefix + ".weight", features);
    return funcBuilder->create<llm::RMSNormOp>(
        named(prefix), x.getType(), x, g, builder.getF64FloatAttr(spec.normEps),
        IntegerAttr());
  }

  /// Each of `heads` heads normalized on its own, one weight for all.
  Value headNorm(Value x, int64_t heads, const Twine &prefix) {
    Value g = ones(prefix + ".weight", spec.headDim);
    return funcBuilder->create<llm::RMSNormOp>(
        named(prefix), x.getType(), x, g, builder.getF64FloatAttr(spec.normEps),
        builder.getI64IntegerAttr(heads));
  }

  /// Layer `layer`'s attention, windowed where the model says so (a window
  /// as long as the sequence is none).
  Value attention(Value q, Value k, Value v, const Twine &name, int64_t layer) {
    const bool windowed = spec.slidingWindow && spec.slidingWindow < seq &&
                          slides(layer);
    return funcBuilder->create<llm::AttentionOp>(
        named(name), q.getType(), q, k, v,
        builder.getI64IntegerAttr(spec.heads),
        builder.getI64IntegerAttr(spec.kvHeads),
        windowed ? builder.getI64IntegerAttr(spec.slidingWindow)
                 : IntegerAttr(),
        spec.queryScale ? builder.getF64FloatAttr(spec.queryScale)
                        : FloatAttr(),
        spec.attnSoftcap ? builder.getF64FloatAttr(spec.attnSoftcap)
                         : FloatAttr());
  }

  // --- GPT-2 -----------------------------------------------------------------
  Value gpt2Embeddings(Value tokens) {
    Value wte = normalParam("wte", {spec.vocab, spec.hidden}, spec.initStd);
    Value x = funcBuilder->create<llm::EmbeddingOp>(
        named("wte"), act(spec.hidden), tokens, wte, FloatAttr());
    Value wpe = normalParam("wpe", {spec.maxPositions, spec.hidden}, 0.01);
    Value pos = funcBuilder->create<llm::PositionEmbeddingOp>(
        named("wpe"), act(spec.hidden), wpe);
    return add(x, pos, "embeddings");
  }

  Value gpt2Block(Value x, int64_t i) {
    std::string p = "h." + std::to_string(i);
    // GPT-2 scales the residual projections by 1/sqrt(2 * layers).
    double residualStd = spec.initStd / std::sqrt(2.0 * spec.layers);
    auto attnRole = llm::LinearRole::attention;
    Value h = layerNorm(x, p + ".ln_1");
    Value q = linear(h, p + ".attn.q", spec.hidden, true, attnRole, spec.initStd);
    Value k = linear(h, p + ".attn.k", spec.hidden, true, attnRole, spec.initStd);
    Value v = linear(h, p + ".attn.v", spec.hidden, true, attnRole, spec.initStd);
    Value a = attention(q, k, v, p + ".attn", i);
    Value o = linear(a, p + ".attn.c_proj", spec.hidden, true, attnRole,
                     residualStd);
    x = add(x, o, p + ".attn.residual");
    h = layerNorm(x, p + ".ln_2");
    Value f = linear(h, p + ".mlp.c_fc", spec.ffn, true, llm::LinearRole::mlp,
                     spec.initStd);
    f = gelu(f, p + ".mlp.gelu");
    Value m = linear(f, p + ".mlp.c_proj", spec.hidden, true,
                     llm::LinearRole::mlp, residualStd);
    return add(x, m, p + ".mlp.residual");
  }

  Value gpt2Head(Value x) {
    x = layerNorm(x, "ln_f");
    return headLinear(x, spec.tied ? "wte" : "lm_head");
  }

  /// The LM head reads the embedding table when the embeddings are tied.
  Value headLinear(Value x, StringRef weightPrefix) {
    Value w = spec.tied
                  ? param(weightPrefix, {spec.vocab, spec.hidden},
                          llm::ParamInit::normal, spec.initStd)
                  : normalParam(weightPrefix + ".weight", {spec.vocab, spec.hidden},
                                spec.initStd);
    Value logits = funcBuilder->create<llm::LinearOp>(
        named("lm_head"), act(spec.vocab), x, w, Value(),
        llm::LinearRoleAttr::get(builder.getContext(), llm::LinearRole::head));
    if (spec.finalSoftcap) // Gemma 2
      logits = funcBuilder->create<llm::SoftcapOp>(
          named("lm_head.softcap"), logits,
          builder.getF64FloatAttr(spec.finalSoftcap));
    if (spec.logitsDivisor != 1) // Granite
      logits = scale(logits, 1 / spec.logitsDivisor, "lm_head.scale");
    return logits;
  }

  Value scale(Value x, double factor, const std::string &name) {
    return funcBuilder->create<llm::ScaleOp>(named(name), x,
                                             builder.getF64FloatAttr(factor));
  }

  // --- Llama / Mistral / Qwen2 -----------------------------------------------
  Value llamaEmbeddings(Value tokens) {
    Value table = normalParam("embed_tokens", {spec.vocab, spec.hidden},
                              spec.initStd);
    // transformers multiplies by sqrt(hidden) in the model's dtype.
    FloatAttr rowScale;
    if (spec.scaledEmbedding) {
      APFloat root(std::sqrt(double(spec.hidden)));
      bool lost;
      root.convert(cast<FloatType>(elt).getFloatSemantics(),
                   APFloat::rmNearestTiesToEven, &lost);
      rowScale = builder.getF64FloatAttr(root.convertToDouble());
    } else if (spec.embeddingScale != 1) { // Granite, as given
      rowScale = builder.getF64FloatAttr(spec.embeddingScale);
    }
    return funcBuilder->create<llm::EmbeddingOp>(
        named("embed_tokens"), act(spec.hidden), tokens, table, rowScale);
  }

  Value llamaBlock(Value x, int64_t i) {
    std::string p = "layers." + std::to_string(i);
    auto attnRole = llm::LinearRole::attention;
    auto mlpRole = llm::LinearRole::mlp;
    int64_t qDim = spec.heads * spec.headDim, kvDim = spec.kvHeads * spec.headDim;
    // OLMo 2 normalizes only what joins the residual stream, Gemma 2 and 3
    // both what leaves and what joins it, the rest what leaves it.
    const bool post = spec.sandwichNorms || spec.postNormsOnly;
    Value h = spec.postNormsOnly ? x : rmsNorm(x, p + ".input_layernorm");
    Value q = linear(h, p + ".self_attn.q_proj", qDim, spec.attentionBias,
                     attnRole, spec.initStd);
    Value k = linear(h, p + ".self_attn.k_proj", kvDim, spec.attentionBias,
                     attnRole, spec.initStd);
    Value v = linear(h, p + ".self_attn.v_proj", kvDim, spec.attentionBias,
                     attnRole, spec.initStd);
    if (spec.qkNorm == ModelSpec::QkNorm::PerHead) {
      q = headNorm(q, spec.heads, p + ".self_attn.q_norm");
      k = headNorm(k, spec.kvHeads, p + ".self_attn.k_norm");
    } else if (spec.qkNorm == ModelSpec::QkNorm::Whole) {
      q = rmsNorm(q, p + ".self_attn.q_norm", qDim);
      k = rmsNorm(k, p + ".self_attn.k_norm", kvDim);
    }
    if (!(i < int64_t(spec.noRopeLayers.size()) && spec.noRopeLayers[i]))
      std::tie(q, k) = rope(q, k, p + ".self_attn", i);
    Value a = attention(q, k, v, p + ".self_attn", i);
    Value o = linear(a, p + ".self_attn.o_proj", spec.hidden, false, attnRole,
                     spec.initStd);
    if (post)
      o = rmsNorm(o, p + (spec.glmNorms ? ".post_self_attn_layernorm"
                                        : ".post_attention_layernorm"));
    if (spec.residualScale != 1)
      o = scale(o, spec.residualScale, p + ".self_attn.scale");
    x = add(x, o, p + ".self_attn.residual");
    const char *preMlpNorm =
        spec.sandwichNorms && !spec.glmNorms ? ".pre_feedforward_layernorm"
                                             : ".post_attention_layernorm";
    h = spec.postNormsOnly ? x : rmsNorm(x, p + preMlpNorm);
    if (spec.experts &&
        !(i < int64_t(spec.denseLayers.size()) && spec.denseLayers[i]))
      return add(x, experts(h, p), p + ".mlp.residual");
    Value gate = linear(h, p + ".mlp.gate_proj", spec.ffn, spec.mlpBias,
                        mlpRole, spec.initStd);
    Value up = linear(h, p + ".mlp.up_proj", spec.ffn, spec.mlpBias, mlpRole,
                      spec.initStd);
    Value g = spec.geglu ? funcBuilder
                               ->create<llm::GegluOp>(named(p + ".mlp.geglu"),
                                                      gate, up)
                               .getResult()
                         : funcBuilder
                               ->create<llm::SwigluOp>(
                                   named(p + ".mlp.swiglu"), gate, up)
                               .getResult();
    Value d = linear(g, p + ".mlp.down_proj", spec.hidden, spec.mlpBias,
                     mlpRole, spec.initStd);
    if (post)
      d = rmsNorm(d, p + (spec.glmNorms ? ".post_mlp_layernorm"
                                        : ".post_feedforward_layernorm"));
    if (spec.residualScale != 1)
      d = scale(d, spec.residualScale, p + ".mlp.scale");
    return add(x, d, p + ".mlp.residual");
  }

  /// The mixture of experts under transformers' names: Mixtral's
  /// block_sparse_moe with w1 (gate), w3 (up) and w2 (down), or mlp with
  /// gate_proj, up_proj and down_proj; the router is `gate`. Each expert's
  /// weights are stacked by rows into one parameter, `experts.<name>`.
  Value experts(Value h, const std::string &p) {
    const bool mixtral = spec.modelType == "mixtral";
    const std::string block = p + (mixtral ? ".block_sparse_moe" : ".mlp");
    const int64_t e = spec.experts, d = spec.hidden, f = spec.expertFfn;
    auto stacked = [&](const char *name, int64_t rows, int64_t cols) {
      return normalParam(block + ".experts." + name + ".weight", {rows, cols},
                         spec.initStd);
    };
    Value router = normalParam(block + ".gate.weight", {e, d}, spec.initStd);
    Value gate = stacked(mixtral ? "w1" : "gate_proj", e * f, d);
    Value up = stacked(mixtral ? "w3" : "up_proj", e * f, d);
    Value down = stacked(mixtral ? "w2" : "down_proj", e * d, f);
    Value routed = funcBuilder->create<llm::MoeOp>(
        named(block), h.getType(), h, router, gate, up, down,
        builder.getI64IntegerAttr(spec.expertsPerToken),
        spec.normTopK ? builder.getUnitAttr() : UnitAttr());
    if (!spec.sharedExpertFfn)
      return routed;
    // Qwen2-MoE: a shared SwiGLU expert every token goes through, scaled by
    // a sigmoid gate of its own.
    const std::string shared = block + ".shared_expert";
    auto role = llm::LinearRole::mlp;
    Value sg = linear(h, shared + ".gate_proj", spec.sharedExpertFfn, false,
                      role, spec.initStd);
    Value su = linear(h, shared + ".up_proj", spec.sharedExpertFfn, false, role,
                      spec.initStd);
    Value sh = funcBuilder->create<llm::SwigluOp>(named(shared + ".swiglu"),
                                                  sg, su);
    Value so = linear(sh, shared + ".down_proj", d, false, role, spec.initStd);
    Value gw = normalParam(block + ".shared_expert_gate.weight", {1, d},
                           spec.initStd);
    Value gated = funcBuilder->create<llm::SigmoidGateOp>(
        named(block + ".shared_expert_gate"), so.getType(), so, h, gw);
    return add(routed, gated, block + ".shared");
  }

  Value llamaHead(Value x) {
    x = rmsNorm(x, "norm");
    return headLinear(x, spec.tied ? "embed_tokens" : "lm_head");
  }

  bool slides(int64_t layer) const {
    return layer < int64_t(spec.slidingLayers.size()) &&
           spec.slidingLayers[layer];
  }

  /// Theta, grown as transformers' "dynamic" (NTK-aware) scaling grows it
  /// for a sequence of `seq` tokens: every training sequence has that length,
  /// so the frequencies are fixed.
  double ropeTheta(const RopeSpec &r) const {
    if (!r.dynamicFactor || seq <= spec.maxPositions)
      return r.theta;
    const double dims = spec.rotaryDim ? spec.rotaryDim : spec.headDim;
    const double f = r.dynamicFactor;
    return r.theta *
           std::pow(f * double(seq) / double(spec.maxPositions) - (f - 1),
                    dims / (dims - 2));
  }

  /// q and k rotated by position (every family but GPT-2), as layer `layer`
  /// turns them.
  std::pair<Value, Value> rope(Value q, Value k, const std::string &p,
                               int64_t layer) {
    const RopeSpec &r =
        spec.localRope && slides(layer) ? *spec.localRope : spec.rope;
    auto theta = builder.getF64FloatAttr(ropeTheta(r));
    IntegerAttr rotary =
        spec.rotaryDim ? builder.getI64IntegerAttr(spec.rotaryDim) : nullptr;
    auto number = [&](double x) {
      return x ? builder.getF64FloatAttr(x) : FloatAttr();
    };
    // LongRoPE divides by one factor per frequency: the long list when the
    // sequence outgrows the original context, as transformers chooses by
    // the highest position.
    const bool longrope = r.kind == "longrope";
    DenseF64ArrayAttr factors;
    if (longrope)
      factors = builder.getDenseF64ArrayAttr(
          seq > r.originalContext ? r.longFactors : r.shortFactors);
    const bool bands = r.kind == "llama3" || r.kind == "yarn";
    FloatAttr factor = number(longrope ? 0 : r.factor);
    FloatAttr low = number(r.lowFreqFactor);
    FloatAttr high = number(r.highFreqFactor);
    FloatAttr fast = number(r.betaFast), slow = number(r.betaSlow);
    FloatAttr attention =
        number(r.attentionFactor == 1 ? 0 : r.attentionFactor);
    IntegerAttr context = bands ? builder.getI64IntegerAttr(r.originalContext)
                                : IntegerAttr();
    auto create = [&](Value x, int64_t heads, const std::string &name) {
      return funcBuilder->create<llm::RopeOp>(
          named(name), x, builder.getI64IntegerAttr(heads), theta, rotary,
          spec.interleavedRope ? builder.getUnitAttr() : UnitAttr(), factor,
          low, high, fast, slow, context,
          factors, attention);
    };
    return {create(q, spec.heads, p + ".rope_q"),
            create(k, spec.kvHeads, p + ".rope_k")};
  }

  Value gelu(Value x, const std::string &name) {
    return funcBuilder->create<llm::GeluOp>(named(name), x, spec.exactGelu);
  }

  // --- GPT-NeoX (Pythia) and StarCoder2 --------------------------------------
  /// Where the two families keep their weights (Hugging Face's names).
  struct NormBlockNames {
    const char *embed, *attn, *q, *k, *v, *o, *fcIn, *fcOut, *finalNorm, *head;
  };
  const NormBlockNames &names() const {
    static const NormBlockNames neox{
        "embed_in",      "attention",     "query",
        "key",           "value",         "dense",
        "dense_h_to_4h", "dense_4h_to_h", "final_layer_norm",
        "embed_out"},
        starcoder{"embed_tokens", "self_attn", "q_proj", "k_proj", "v_proj",
                  "o_proj",       "c_fc",      "c_proj", "norm",   "lm_head"};
    return spec.neox ? neox : starcoder;
  }

  Value normBlockEmbeddings(Value tokens) {
    Value table =
        normalParam(names().embed, {spec.vocab, spec.hidden}, spec.initStd);
    return funcBuilder->create<llm::EmbeddingOp>(
        named(names().embed), act(spec.hidden), tokens, table, FloatAttr());
  }

  /// LayerNorm, RoPE, grouped-query attention and a GELU MLP; with
  /// parallelResidual (GPT-NeoX's default) x + attn(ln1 x) + mlp(ln2 x). A
  /// fused query_key_value comes in as three linears (the same parameters
  /// and FLOPs), as GPT-2's c_attn does.
  Value normBlock(Value x, int64_t i) {
    const NormBlockNames &n = names();
    std::string p = "layers." + std::to_string(i);
    std::string a = p + "." + n.attn + ".", m = p + ".mlp.";
    auto attnRole = llm::LinearRole::attention;
    auto mlpRole = llm::LinearRole::mlp;
    int64_t qDim = spec.heads * spec.headDim,
            kvDim = spec.kvHeads * spec.headDim;
    Value h = layerNorm(x, p + ".input_layernorm");
    Value q =
        linear(h, a + n.q, qDim, spec.attentionBias, attnRole, spec.initStd);
    Value k =
        linear(h, a + n.k, kvDim, spec.attentionBias, attnRole, spec.initStd);
    Value v =
        linear(h, a + n.v, kvDim, spec.attentionBias, attnRole, spec.initStd);
    std::tie(q, k) = rope(q, k, p + "." + n.attn, i);
    Value o = attention(q, k, v, p + "." + n.attn, i);
    o = linear(o, a + n.o, spec.hidden, spec.attentionBias, attnRole,
               spec.initStd);
    Value mlpIn = x;
    if (!spec.parallelResidual)
      mlpIn = x = add(x, o, a + "residual");
    h = layerNorm(mlpIn, p + ".post_attention_layernorm");
    Value f =
        linear(h, m + n.fcIn, spec.ffn, spec.mlpBias, mlpRole, spec.initStd);
    f = gelu(f, m + "gelu");
    Value d = linear(f, m + n.fcOut, spec.hidden, spec.mlpBias, mlpRole,
                     spec.initStd);
    if (spec.parallelResidual)
      x = add(x, o, a + "residual");
    return add(x, d, m + "residual");
  }

  Value normBlockHead(Value x) {
    x = layerNorm(x, names().finalNorm);
    return headLinear(x, spec.tied ? names().embed : names().head);
  }

  const ModelSpec &spec;
  int64_t batch, seq;
  Location fileLoc;
  OpBuilder builder;
  std::unique_ptr<OpBuilder> funcBuilder;
  Block *moduleBody = nullptr;
  Operation *modelFunc = nullptr;
  Type elt;
  llvm::StringSet<> declared;
};

} // namespace

std::string seq1f1b::configFilePath(StringRef path) {
  if (!llvm::sys::fs::is_directory(path))
    return path.str();
  llvm::SmallString<256> inDir(path);
  llvm::sys::path::append(inDir, "config.json");
  return std::string(inDir);
}

std::string seq1f1b::checkImportOptions(const HFImportOptions &options) {
  if (options.seqLen < 0)
    return "--seq-len must be >= 1, got " + std::to_string(options.seqLen);
  if (options.microBatchSize < 1)
    return "--micro-batch-size must be >= 1, got " +
           std::to_string(options.microBatchSize);
  if (!options.dtype.empty() && options.dtype != "f32" &&
      options.dtype != "bf16" && options.dtype != "f16")
    return "--dtype must be f32, bf16 or f16, got '" + options.dtype + "'";
  return "";
}

OwningOpRef<ModuleOp> seq1f1b::importHFConfig(llvm::SourceMgr &sourceMgr,
                                              MLIRContext *ctx,
                                              const HFImportOptions &options) {
  ctx->loadDialect<llm::LLMDialect, func::FuncDialect>();
  const llvm::MemoryBuffer *buffer =
      sourceMgr.getMemoryBuffer(sourceMgr.getMainFileID());
  StringRef file = buffer->getBufferIdentifier();
  StringRef text = buffer->getBuffer();
  Location fileLoc = FileLineColLoc::get(ctx, file, 1, 1);

  llvm::Expected<json::Value> parsed = json::parse(text);
  if (!parsed) {
    // json::ParseError prints "[line:col, byte=N]: message".
    std::string message = llvm::toString(parsed.takeError());
    llvm::SmallVector<StringRef> m;
    llvm::Regex re("^\\[([0-9]+):([0-9]+), byte=[0-9]+\\]: (.*)$");
    if (re.match(message, &m)) {
      unsigned line = 1, col = 1;
      m[1].getAsInteger(10, line);
      m[2].getAsInteger(10, col);
      emitError(FileLineColLoc::get(ctx, file, line, col))
          << "malformed JSON: " << m[3];
    } else {
      emitError(fileLoc) << "malformed JSON: " << message;
    }
    return nullptr;
  }
  const json::Object *object = parsed->getAsObject();
  if (!object) {
    emitError(fileLoc) << "expected a JSON object at the top level";
    return nullptr;
  }
  json::Object config = languageModelConfig(*object);

  ConfigReader reader(ctx, file, text, config);
  ModelSpec spec;
  if (failed(readSpec(reader, spec, ctx, file)))
    return nullptr;
  if (std::string problem = checkImportOptions(options); !problem.empty()) {
    emitError(UnknownLoc::get(ctx)) << problem;
    return nullptr;
  }
  if (!options.dtype.empty())
    spec.dtype = options.dtype;
  int64_t seq = options.seqLen ? options.seqLen : spec.maxPositions;
  if (spec.gpt2 && seq > spec.maxPositions) {
    emitError(reader.locOf("n_positions"))
        << "--seq-len " << seq << " exceeds the " << spec.maxPositions
        << " learned positions of this GPT-2 model (key 'n_positions')";
    return nullptr;
  }
  warnUnmodeled(reader, spec, seq);
  return GraphBuilder(ctx, spec, options.microBatchSize, seq, fileLoc).build();
}

void seq1f1b::registerHFConfigImport() {
  static llvm::cl::opt<int64_t> seqLen(
      "seq-len", llvm::cl::desc("Tokens per sequence for --import-hf-config "
                                "(default: the config's context length)"),
      llvm::cl::init(0));
  static llvm::cl::opt<int64_t> microBatchSize(
      "micro-batch-size",
      llvm::cl::desc("Sequences per micro-batch for --import-hf-config"),
      llvm::cl::init(1));
  static llvm::cl::opt<std::string> dtype(
      "dtype",
      llvm::cl::desc("Element type f32, bf16 or f16 for --import-hf-config "
                     "(default: the config's torch_dtype, else f32)"),
      llvm::cl::init(""));
  static TranslateToMLIRRegistration registration(
      "import-hf-config", "Hugging Face config.json to the llm dialect",
      [](llvm::SourceMgr &sourceMgr, MLIRContext *ctx) -> OwningOpRef<Operation *> {
        HFImportOptions options{seqLen, microBatchSize, dtype};
        if (std::string problem = checkImportOptions(options); !problem.empty()) {
          llvm::errs() << "seq1f1b-translate: error: " << problem << "\n";
          return nullptr;
        }
        OwningOpRef<ModuleOp> module = importHFConfig(sourceMgr, ctx, options);
        if (!module)
          return nullptr;
        return OwningOpRef<Operation *>(module.release());
      },
      [](DialectRegistry &registry) {
        registry.insert<llm::LLMDialect, pipe::PipeDialect, func::FuncDialect>();
      });
}
