//===- graph.cpp - Model graph: names, validation, initialization ---------===//

#include "seq1f1b/runtime/graph.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace s1f::rt {

namespace {

struct OpName {
  OpKind kind;
  const char *name;
};

constexpr OpName kOpNames[] = {
    {OpKind::Embedding, "embedding"},
    {OpKind::PositionEmbedding, "position_embedding"},
    {OpKind::LayerNorm, "layer_norm"},
    {OpKind::RmsNorm, "rms_norm"},
    {OpKind::Linear, "linear"},
    {OpKind::Rope, "rope"},
    {OpKind::Attention, "attention"},
    {OpKind::Gelu, "gelu"},
    {OpKind::Silu, "silu"},
    {OpKind::Swiglu, "swiglu"},
    {OpKind::Geglu, "geglu"},
    {OpKind::Softcap, "softcap"},
    {OpKind::Scale, "scale"},
    {OpKind::Add, "add"},
    {OpKind::SigmoidGate, "sigmoid_gate"},
    {OpKind::Moe, "moe"},
    {OpKind::CrossEntropy, "cross_entropy"},
    {OpKind::TpCopy, "tp_copy"},
    {OpKind::TpReduce, "tp_reduce"},
};

/// Checks one op against the values defined so far and the parameter list.
class OpChecker {
public:
  OpChecker(const Graph &g, size_t index, std::vector<bool> &defined)
      : g(g), op(g.ops[index]), defined(defined),
        where("op " + std::to_string(index) + " (" + opKindName(op.kind) +
              "): ") {}

  void check() {
    for (int v : op.inputs) {
      require(v >= 0 && v < numValues(),
              "input value " + std::to_string(v) + " does not exist");
      require(defined[v], "input value " + std::to_string(v) +
                              " is used before it is defined");
    }
    for (int p : op.params)
      require(p >= 0 && p < static_cast<int>(g.params.size()),
              "parameter index " + std::to_string(p) + " does not exist");
    if (op.kind == OpKind::CrossEntropy) {
      require(op.output == -1, "cross_entropy has no output value");
    } else {
      require(op.output >= 0 && op.output < numValues(),
              "output value " + std::to_string(op.output) + " does not exist");
      require(!defined[op.output], "value " + std::to_string(op.output) +
                                       " is defined twice");
    }
    checkKind();
    if (op.output >= 0)
      defined[op.output] = true;
  }

private:
  int numValues() const { return static_cast<int>(g.valueFeatures.size()); }
  int64_t feat(int v) const { return g.valueFeatures[v]; }
  int64_t outFeat() const { return feat(op.output); }
  const ParamSpec &param(int i) const { return g.params[op.params[i]]; }

  void require(bool cond, const std::string &msg) const {
    if (!cond)
      throw std::invalid_argument(where + msg);
  }
  void arity(size_t inputs, size_t paramsMin, size_t paramsMax) const {
    require(op.inputs.size() == inputs,
            "expects " + std::to_string(inputs) + " inputs, got " +
                std::to_string(op.inputs.size()));
    require(op.params.size() >= paramsMin && op.params.size() <= paramsMax,
            "expects " + std::to_string(paramsMin) +
                (paramsMax != paramsMin ? "-" + std::to_string(paramsMax) : "") +
                " parameters, got " + std::to_string(op.params.size()));
  }
  void shape(int i, std::vector<int64_t> expected) const {
    require(param(i).shape == expected,
            "parameter '" + param(i).name + "' has the wrong shape for this op");
  }
  void sameFeat(int v) const {
    require(feat(v) == outFeat(), "value " + std::to_string(v) +
                                      " and the output differ in size");
  }

  void checkKind() const {
    switch (op.kind) {
    case OpKind::Embedding:
    case OpKind::PositionEmbedding:
      arity(0, 1, 1);
      require(param(0).shape.size() == 2 && param(0).shape[1] == outFeat(),
              "table '" + param(0).name + "' must be [rows, output size]");
      break;
    case OpKind::LayerNorm:
    case OpKind::RmsNorm:
      arity(1, op.kind == OpKind::LayerNorm ? 2 : 1,
            op.kind == OpKind::LayerNorm ? 2 : 1);
      sameFeat(op.inputs[0]);
      require(op.heads >= 0 && (op.heads == 0 || outFeat() % op.heads == 0),
              "heads must divide the size");
      for (size_t i = 0; i < op.params.size(); ++i)
        shape(static_cast<int>(i),
              {op.heads > 0 ? outFeat() / op.heads : outFeat()});
      require(op.eps > 0, "eps must be > 0");
      break;
    case OpKind::Linear:
      arity(1, 1, 2);
      shape(0, {outFeat(), feat(op.inputs[0])});
      if (op.params.size() == 2)
        shape(1, {outFeat()});
      break;
    case OpKind::Rope:
      arity(1, 0, 0);
      sameFeat(op.inputs[0]);
      require(op.heads > 0 && outFeat() % op.heads == 0 &&
                  (outFeat() / op.heads) % 2 == 0,
              "heads must divide the size into even head dimensions");
      require(op.rotaryDim >= 0 && op.rotaryDim % 2 == 0 &&
                  (op.heads <= 0 || op.rotaryDim <= outFeat() / op.heads),
              "rotary_dim must be even and at most the head dimension");
      {
        const RopeScaling &s = op.ropeScaling;
        const bool llama3 =
            s.lowFreqFactor > 0 && s.highFreqFactor > s.lowFreqFactor;
        const bool yarn = s.betaSlow > 0 && s.betaFast > s.betaSlow;
        require(s.factor > 0 && s.attentionFactor > 0 &&
                    (s.originalContext <= 0 || llama3 != yarn),
                "rope_scaling needs factor > 0, attention_factor > 0 and, "
                "with original_context, either 0 < low_freq_factor < "
                "high_freq_factor (llama3) or 0 < beta_slow < beta_fast "
                "(yarn)");
        const int turned =
            op.rotaryDim ? op.rotaryDim
                         : (op.heads > 0 ? outFeat() / op.heads : 0);
        require(s.numFactors == 0 ||
                    (s.numFactors == turned / 2 &&
                     std::all_of(s.factors, s.factors + s.numFactors,
                                 [](double f) { return f > 0; })),
                "rope_scaling's frequency_factors must be positive, one per "
                "frequency (" + std::to_string(turned / 2) + ")");
      }
      break;
    case OpKind::Attention: {
      arity(3, 0, 0);
      require(op.heads > 0 && op.kvHeads > 0 && op.heads % op.kvHeads == 0,
              "kv_heads must divide heads");
      require(op.window >= 0, "the window must not be negative");
      require(op.scoreScale >= 0 && op.softcap >= 0,
              "score_scale and softcap must not be negative");
      sameFeat(op.inputs[0]);
      require(outFeat() % op.heads == 0, "heads must divide the query size");
      int64_t kv = outFeat() / op.heads * op.kvHeads;
      require(feat(op.inputs[1]) == kv && feat(op.inputs[2]) == kv,
              "keys and values must have kv_heads * head_dim features");
      break;
    }
    case OpKind::Gelu:
    case OpKind::Silu:
      arity(1, 0, 0);
      sameFeat(op.inputs[0]);
      break;
    case OpKind::Softcap:
      arity(1, 0, 0);
      sameFeat(op.inputs[0]);
      require(op.softcap > 0, "softcap must be > 0");
      break;
    case OpKind::Scale:
      arity(1, 0, 0);
      sameFeat(op.inputs[0]);
      require(std::isfinite(op.scale) && op.scale != 0,
              "scale must be finite and nonzero");
      break;
    case OpKind::Swiglu:
    case OpKind::Geglu:
    case OpKind::Add:
      arity(2, 0, 0);
      sameFeat(op.inputs[0]);
      sameFeat(op.inputs[1]);
      break;
    case OpKind::SigmoidGate:
      arity(2, 1, 1);
      sameFeat(op.inputs[0]);
      shape(0, {1, feat(op.inputs[1])});
      break;
    case OpKind::Moe: {
      arity(1, 4, 4);
      sameFeat(op.inputs[0]);
      const int64_t D = outFeat();
      require(param(0).shape.size() == 2 && param(0).shape[1] == D,
              "router '" + param(0).name + "' must be [experts, size]");
      const int64_t E = param(0).shape[0];
      require(param(1).shape.size() == 2 && param(1).shape[0] % E == 0,
              "gate '" + param(1).name + "' must be [experts * width, size]");
      const int64_t F = param(1).shape[0] / E;
      shape(1, {E * F, D});
      shape(2, {E * F, D});
      shape(3, {E * D, F});
      require(op.topK >= 1 && op.topK <= E,
              "top_k must be in [1, " + std::to_string(E) + "] (experts)");
      require(op.auxLoss >= 0 && std::isfinite(op.auxLoss),
              "aux_loss must be a finite number >= 0");
      break;
    }
    case OpKind::CrossEntropy:
      arity(1, 0, 0);
      break;
    case OpKind::TpCopy:
    case OpKind::TpReduce:
      arity(1, 0, op.kind == OpKind::TpReduce ? 1 : 0);
      sameFeat(op.inputs[0]);
      if (!op.params.empty())
        shape(0, {outFeat()});
      break;
    }
  }

  const Graph &g;
  const Op &op;
  std::vector<bool> &defined;
  std::string where;
};

/// SplitMix64: a tiny, portable generator, so initial weights do not depend
/// on the standard library's distributions.
class SplitMix {
public:
  explicit SplitMix(uint64_t s) : state(s) {}
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  /// Uniform in (0, 1].
  double uniform() { return (static_cast<double>(next() >> 11) + 1) * 0x1p-53; }
  /// Standard normal (Box-Muller).
  double normal() {
    double u = uniform(), v = uniform();
    return std::sqrt(-2 * std::log(u)) * std::cos(6.283185307179586 * v);
  }

private:
  uint64_t state;
};

uint64_t fnv1a(const std::string &s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s)
    h = (h ^ c) * 0x100000001b3ull;
  return h;
}

} // namespace

int64_t ParamSpec::numel() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

const char *opKindName(OpKind kind) {
  for (const OpName &o : kOpNames)
    if (o.kind == kind)
      return o.name;
  return "?";
}

bool parseOpKind(const std::string &name, OpKind &kind) {
  for (const OpName &o : kOpNames)
    if (name == o.name) {
      kind = o.kind;
      return true;
    }
  return false;
}

int Graph::paramIndex(const std::string &name) const {
  for (size_t i = 0; i < params.size(); ++i)
    if (params[i].name == name)
      return static_cast<int>(i);
  return -1;
}

void Graph::validate() const {
  for (size_t i = 0; i < params.size(); ++i) {
    const ParamSpec &p = params[i];
    if (p.name.empty() || paramIndex(p.name) != static_cast<int>(i))
      throw std::invalid_argument("parameter " + std::to_string(i) +
                                  " has an empty or repeated name '" + p.name +
                                  "'");
    for (int64_t d : p.shape)
      if (d <= 0)
        throw std::invalid_argument("parameter '" + p.name +
                                    "' has a non-positive dimension");
  }
  for (size_t v = 0; v < valueFeatures.size(); ++v)
    if (valueFeatures[v] <= 0)
      throw std::invalid_argument("value " + std::to_string(v) +
                                  " has a non-positive feature size");
  std::vector<bool> defined(valueFeatures.size(), false);
  int losses = 0;
  for (size_t i = 0; i < ops.size(); ++i) {
    OpChecker(*this, i, defined).check();
    losses += ops[i].kind == OpKind::CrossEntropy;
  }
  if (losses != 1 || ops.back().kind != OpKind::CrossEntropy)
    throw std::invalid_argument(
        "the graph must end with its only cross_entropy op (found " +
        std::to_string(losses) + ")");
}

std::vector<std::vector<float>> initParams(const Graph &graph, uint64_t seed) {
  std::vector<std::vector<float>> values;
  for (const ParamSpec &p : graph.params) {
    std::vector<float> &v = values.emplace_back(p.numel());
    SplitMix rng(seed ^ fnv1a(p.name));
    for (float &x : v)
      x = p.init == InitKind::Ones    ? 1.0f
          : p.init == InitKind::Zeros ? 0.0f
                                      : static_cast<float>(p.std * rng.normal());
  }
  return values;
}

} // namespace s1f::rt
