//===- HFRope.cpp - RoPE's parameters in a Hugging Face config -------------===//
//
// Theta, partial rotary and every rope_scaling kind transformers defines
// (linear, dynamic NTK, Llama 3.1's llama3, YaRN, LongRoPE), from the old
// keys (rope_theta, rope_scaling) or transformers 5's rope_parameters, per
// layer type where they differ (Gemma 3). Each rule as transformers'
// modeling_rope_utils computes it.
//
//===----------------------------------------------------------------------===//
#include "HFConfigReader.h"

#include "llvm/ADT/STLExtras.h"
#include <algorithm>

namespace seq1f1b::hf {

std::string ropeScalingKind(const json::Object &scaling) {
  for (StringRef k : {"rope_type", "type"})
    if (std::optional<StringRef> t = scaling.getString(k))
      return t->str();
  return "?";
}

std::string ropeScalingKind(const json::Value &scaling) {
  const json::Object *o = scaling.getAsObject();
  return o ? ropeScalingKind(*o) : "?";
}

namespace {

/// YaRN's attention factor as transformers derives it when the config gives
/// none: 0.1 mscale ln(factor) + 1, or the ratio of two such for DeepSeek's
/// mscale and mscale_all_dim.
double yarnAttentionFactor(double factor, std::optional<double> mscale,
                           std::optional<double> mscaleAllDim) {
  auto get = [&](double m) {
    return factor <= 1 ? 1.0 : 0.1 * m * std::log(factor) + 1.0;
  };
  if (mscale.value_or(0) && mscaleAllDim.value_or(0))
    return get(*mscale) / get(*mscaleAllDim);
  return get(1);
}

/// Reads one RoPE object (rope_scaling, or transformers 5's rope_parameters
/// or one of its per-layer-type objects) into `rope`; errors are located
/// at `key`.
class RopeObjectReader {
public:
  RopeObjectReader(ConfigReader &reader, ModelSpec &spec,
                   const json::Object &o, StringRef key)
      : reader(reader), spec(spec), o(o), key(key) {}

  /// rope_parameters' theta and partial rotary (`parameters`), and the
  /// "linear", "llama3", "yarn", "longrope" and "dynamic" scaling kinds;
  /// another kind is recorded in spec.unmodeledRope.
  LogicalResult read(RopeSpec &rope, bool parameters) {
    if (parameters) {
      if (std::optional<double> theta = positive("rope_theta"))
        rope.theta = *theta;
      if (std::optional<double> partial = positive("partial_rotary_factor")) {
        const int64_t dims = int64_t(spec.headDim * std::min(*partial, 1.0));
        if (*partial > 1 || dims < 2 || dims % 2 != 0)
          return error() << "'partial_rotary_factor' turns " << dims << " of "
                         << "each head's " << spec.headDim << " dimensions; "
                         << "rotary embeddings need an even number";
        spec.rotaryDim = dims == spec.headDim ? 0 : dims;
      }
    }
    std::string kind = ropeScalingKind(o);
    if (kind == "su") // Phi-3's first name for LongRoPE
      kind = "longrope";
    static constexpr StringRef modeled[] = {"linear", "llama3", "yarn",
                                            "longrope", "dynamic"};
    if (!llvm::is_contained(modeled, kind)) {
      if (kind != "default")
        spec.unmodeledRope = kind;
      return success(reader.ok);
    }
    rope.kind = kind;
    if (kind == "longrope")
      return readLongRope(rope);
    if (kind == "yarn")
      return readYarn(rope);
    std::optional<double> factor = required("factor");
    if (!factor)
      return failure();
    if (kind == "dynamic") {
      if ((spec.rotaryDim ? spec.rotaryDim : spec.headDim) <= 2)
        return error() << "'dynamic' scaling needs more than 2 rotary "
                          "dimensions per head";
      rope.dynamicFactor = *factor;
      return success();
    }
    rope.factor = *factor;
    if (kind == "linear")
      return success();
    std::optional<double> low = required("low_freq_factor");
    std::optional<double> high = required("high_freq_factor");
    std::optional<double> context =
        required("original_max_position_embeddings");
    if (!low || !high || !context)
      return failure();
    if (!(*high > *low))
      return error()
             << "'llama3' scaling needs high_freq_factor > low_freq_factor, "
             << "got " << ConfigReader::render(*o.get("high_freq_factor"))
             << " and " << ConfigReader::render(*o.get("low_freq_factor"));
    rope.lowFreqFactor = *low;
    rope.highFreqFactor = *high;
    rope.originalContext = int64_t(*context);
    return success();
  }

private:
  InFlightDiagnostic error() { return reader.error(key); }

  /// `name`'s number if present; a located error unless positive.
  std::optional<double> positive(StringRef name) {
    if (const json::Value *v = o.get(name); v && !v->getAsNull()) {
      std::optional<double> x = v->getAsNumber();
      if (x && *x > 0 && std::isfinite(*x))
        return x;
      error() << "'" << name << "' must be a positive number, got "
              << ConfigReader::render(*v);
    }
    return std::nullopt;
  }

  std::optional<double> required(StringRef name) {
    std::optional<double> x = positive(name);
    if (!x && reader.ok)
      error() << "'" << ropeScalingKind(o)
              << "' scaling needs a positive '" << name << "'";
    return x;
  }

  /// YaRN: without a factor, transformers extends the original context to
  /// max_position_embeddings; without an original context, it is
  /// max_position_embeddings.
  LogicalResult readYarn(RopeSpec &rope) {
    const bool hasContext = o.get("original_max_position_embeddings");
    std::optional<double> context =
        hasContext ? required("original_max_position_embeddings")
                   : std::optional<double>(spec.maxPositions);
    std::optional<double> factor;
    if (o.get("factor") || !hasContext)
      factor = required("factor");
    else if (context)
      factor = spec.maxPositions / *context;
    std::optional<double> fast = positive("beta_fast");
    std::optional<double> slow = positive("beta_slow");
    std::optional<double> attention = positive("attention_factor");
    std::optional<double> mscale = positive("mscale");
    std::optional<double> mscaleAllDim = positive("mscale_all_dim");
    if (!reader.ok || !context || !factor)
      return failure();
    rope.factor = *factor;
    rope.originalContext = int64_t(*context);
    rope.betaFast = fast.value_or(32);
    rope.betaSlow = slow.value_or(1);
    if (!(rope.betaFast > rope.betaSlow))
      return error() << "'yarn' scaling needs beta_fast > beta_slow, got "
                     << ConfigReader::render(rope.betaFast) << " and "
                     << ConfigReader::render(rope.betaSlow);
    rope.attentionFactor = attention.value_or(
        yarnAttentionFactor(*factor, mscale, mscaleAllDim));
    return success();
  }

  /// Phi-3's LongRoPE: a divisor per frequency, short_factor for sequences
  /// up to original_max_position_embeddings (in the scaling object or, as
  /// Phi-3 writes it, at the top level) and long_factor beyond, and an
  /// attention factor sqrt(1 + ln(factor) / ln(original)) unless given,
  /// factor being max_position_embeddings / original unless given.
  LogicalResult readLongRope(RopeSpec &rope) {
    const int64_t frequencies =
        (spec.rotaryDim ? spec.rotaryDim : spec.headDim) / 2;
    auto list = [&](StringRef name,
                    std::vector<double> &out) -> LogicalResult {
      const json::Array *a = o.getArray(name);
      if (!a || int64_t(a->size()) != frequencies)
        return error() << "'longrope' scaling needs '" << name
                       << "': a list of " << frequencies
                       << " positive numbers, one per frequency";
      for (const json::Value &v : *a) {
        std::optional<double> x = v.getAsNumber();
        if (!x || !(*x > 0) || !std::isfinite(*x))
          return error() << "'" << name << "' holds "
                         << ConfigReader::render(v)
                         << ", not a positive number";
        out.push_back(*x);
      }
      return success();
    };
    if (failed(list("short_factor", rope.shortFactors)) ||
        failed(list("long_factor", rope.longFactors)))
      return failure();
    const json::Value *context = o.get("original_max_position_embeddings");
    StringRef contextKey = key;
    if (!context &&
        (context = reader.get("original_max_position_embeddings")))
      contextKey = "original_max_position_embeddings";
    std::optional<int64_t> original =
        context ? context->getAsInteger() : std::nullopt;
    if (!original || *original <= 1)
      return reader.error(contextKey)
             << "'longrope' scaling needs an original_max_position_embeddings"
                " > 1 (the context the short factors serve)";
    std::optional<double> factor = positive("factor");
    std::optional<double> attention = positive("attention_factor");
    if (!reader.ok)
      return failure();
    if (!factor)
      factor = double(spec.maxPositions) / double(*original);
    rope.originalContext = *original;
    rope.factor = *factor;
    rope.attentionFactor =
        attention ? *attention
                  : (*factor <= 1
                         ? 1.0
                         : std::sqrt(1 + std::log(*factor) /
                                             std::log(double(*original))));
    return success();
  }

  ConfigReader &reader;
  ModelSpec &spec;
  const json::Object &o;
  StringRef key;
};

} // namespace

LogicalResult readRopeParameters(ConfigReader &reader, ModelSpec &spec) {
  if (spec.gpt2)
    return success();
  if (spec.modelType == "gemma3_text") {
    spec.localRope = RopeSpec();
    spec.localRope->theta =
        reader.positiveNumber("rope_local_base_freq", 10000.0);
  }
  for (StringRef key : {"rope_parameters", "rope_scaling"}) {
    const json::Value *value = reader.get(key);
    if (!value)
      continue;
    const json::Object *o = value->getAsObject();
    if (!o) {
      spec.unmodeledRope = "?";
      return success();
    }
    const bool parameters = key == "rope_parameters";
    const json::Object *full = o->getObject("full_attention");
    const json::Object *sliding = o->getObject("sliding_attention");
    if (parameters && (full || sliding)) {
      if (full && failed(RopeObjectReader(reader, spec, *full, key)
                             .read(spec.rope, true)))
        return failure();
      if (sliding) {
        spec.localRope = RopeSpec();
        return RopeObjectReader(reader, spec, *sliding, key)
            .read(*spec.localRope, true);
      }
      return success();
    }
    return RopeObjectReader(reader, spec, *o, key).read(spec.rope, parameters);
  }
  return success();
}

} // namespace seq1f1b::hf
