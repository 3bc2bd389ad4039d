//===- graph_json.cpp - Load and save the model graph as JSON -------------===//

#include "seq1f1b/runtime/graph_json.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace s1f::rt {

using nlohmann::json;

namespace {

const char *initName(InitKind k) {
  return k == InitKind::Normal ? "normal" : k == InitKind::Zeros ? "zeros" : "ones";
}

[[noreturn]] void fail(const std::string &where, const std::string &msg) {
  throw std::invalid_argument(where + msg);
}

/// Reads `j[key]` as T, naming the field when it is missing or mistyped.
template <typename T>
T field(const json &j, const char *key, const std::string &where) {
  if (!j.is_object() || !j.contains(key))
    fail(where, std::string("missing field '") + key + "'");
  try {
    return j.at(key).get<T>();
  } catch (const json::exception &) {
    fail(where, std::string("field '") + key + "' has the wrong type");
  }
}

template <typename T>
T optional(const json &j, const char *key, T dflt, const std::string &where) {
  return j.contains(key) ? field<T>(j, key, where) : dflt;
}

ParamSpec parseParam(const json &j, size_t i) {
  std::string where = "param " + std::to_string(i) + ": ";
  ParamSpec p;
  p.name = field<std::string>(j, "name", where);
  p.shape = field<std::vector<int64_t>>(j, "shape", where);
  std::string init = field<std::string>(j, "init", where);
  if (init == "normal")
    p.init = InitKind::Normal;
  else if (init == "zeros")
    p.init = InitKind::Zeros;
  else if (init == "ones")
    p.init = InitKind::Ones;
  else
    fail(where, "unknown init '" + init + "' (normal, zeros, ones)");
  p.std = optional<double>(j, "std", 0.02, where);
  return p;
}

Op parseOp(const json &j, size_t i, const Graph &g) {
  std::string where = "op " + std::to_string(i) + ": ";
  std::string name = field<std::string>(j, "op", where);
  Op op{};
  if (!parseOpKind(name, op.kind))
    fail(where, "unknown op '" + name + "'");
  if (op.kind == OpKind::TpCopy || op.kind == OpKind::TpReduce)
    fail(where, "'" + name + "' is inserted by the runtime for tensor "
                "parallelism (--tp), not read from a graph");
  where = "op " + std::to_string(i) + " (" + name + "): ";
  op.inputs = optional<std::vector<int>>(j, "in", {}, where);
  for (const std::string &p :
       optional<std::vector<std::string>>(j, "params", {}, where)) {
    int idx = g.paramIndex(p);
    if (idx < 0)
      fail(where, "unknown parameter '" + p + "'");
    op.params.push_back(idx);
  }
  op.output = optional<int>(j, "out", -1, where);
  op.heads = optional<int>(j, "heads", 0, where);
  op.kvHeads = optional<int>(j, "kv_heads", 0, where);
  op.window = optional<int>(j, "window", 0, where);
  op.eps = optional<double>(j, "eps", 1e-5, where);
  op.theta = optional<double>(j, "theta", 10000.0, where);
  op.rotaryDim = optional<int>(j, "rotary_dim", 0, where);
  const bool interleaved = optional<bool>(j, "interleaved", false, where);
  if (j.contains("rope_scaling")) {
    const json &s = j.at("rope_scaling");
    const std::string at = where + "rope_scaling: ";
    op.ropeScaling.factor = field<double>(s, "factor", at);
    op.ropeScaling.lowFreqFactor = optional<double>(s, "low_freq_factor", 0, at);
    op.ropeScaling.highFreqFactor =
        optional<double>(s, "high_freq_factor", 0, at);
    op.ropeScaling.betaFast = optional<double>(s, "beta_fast", 0, at);
    op.ropeScaling.betaSlow = optional<double>(s, "beta_slow", 0, at);
    op.ropeScaling.originalContext =
        optional<double>(s, "original_context", 0, at);
    op.ropeScaling.attentionFactor =
        optional<double>(s, "attention_factor", 1, at);
    const auto factors = optional<std::vector<double>>(
        s, "frequency_factors", std::vector<double>(), at);
    if (!factors.empty()) {
      try {
        const RopeScaling longrope =
            RopeScaling::longrope(factors, op.ropeScaling.attentionFactor);
        op.ropeScaling = longrope;
      } catch (const std::invalid_argument &e) {
        fail(where, e.what());
      }
    }
  }
  op.ropeScaling.interleaved = interleaved;
  op.exact = optional<bool>(j, "exact", false, where);
  op.scale = optional<double>(j, "scale", 1.0, where);
  op.scoreScale = optional<double>(j, "score_scale", 0.0, where);
  op.softcap = optional<double>(j, "softcap", 0.0, where);
  op.topK = optional<int>(j, "top_k", 0, where);
  op.normalized = optional<bool>(j, "normalized", false, where);
  op.auxLoss = optional<double>(j, "aux_loss", 0.0, where);
  return op;
}

} // namespace

Graph graphFromJson(const std::string &text) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::parse_error &e) {
    throw std::invalid_argument(std::string("graph JSON: ") + e.what());
  }
  if (field<std::string>(root, "format", "graph: ") != "seq1f1b-graph")
    fail("graph: ", "format must be 'seq1f1b-graph'");
  if (int v = field<int>(root, "version", "graph: "); v != 1)
    fail("graph: ", "unsupported version " + std::to_string(v));
  Graph g;
  const json params = field<json>(root, "params", "graph: ");
  for (size_t i = 0; i < params.size(); ++i)
    g.params.push_back(parseParam(params[i], i));
  g.valueFeatures = field<std::vector<int64_t>>(root, "values", "graph: ");
  const json ops = field<json>(root, "ops", "graph: ");
  for (size_t i = 0; i < ops.size(); ++i)
    g.ops.push_back(parseOp(ops[i], i, g));
  g.stages = optional<std::vector<int>>(root, "stages", {}, "graph: ");
  g.modelType = optional<std::string>(root, "model_type", "", "graph: ");
  g.resolvedForSeqLen =
      optional<int64_t>(root, "resolved_for_seq_len", 0, "graph: ");
  g.validate();
  return g;
}

std::string graphToJson(const Graph &g) {
  json root = {{"format", "seq1f1b-graph"}, {"version", 1}};
  json params = json::array();
  for (const ParamSpec &p : g.params) {
    json jp = {{"name", p.name}, {"shape", p.shape}, {"init", initName(p.init)}};
    if (p.init == InitKind::Normal)
      jp["std"] = p.std;
    params.push_back(jp);
  }
  root["params"] = params;
  root["values"] = g.valueFeatures;
  json ops = json::array();
  for (const Op &op : g.ops) {
    json jo = {{"op", opKindName(op.kind)}};
    if (!op.inputs.empty())
      jo["in"] = op.inputs;
    if (!op.params.empty()) {
      std::vector<std::string> names;
      for (int p : op.params)
        names.push_back(g.params[p].name);
      jo["params"] = names;
    }
    if (op.output >= 0)
      jo["out"] = op.output;
    switch (op.kind) {
    case OpKind::LayerNorm:
    case OpKind::RmsNorm:
      jo["eps"] = op.eps;
      if (op.heads > 0)
        jo["heads"] = op.heads;
      break;
    case OpKind::Rope:
      jo["heads"] = op.heads;
      jo["theta"] = op.theta;
      if (op.rotaryDim)
        jo["rotary_dim"] = op.rotaryDim;
      if (op.ropeScaling.interleaved)
        jo["interleaved"] = true;
      if (const RopeScaling &s = op.ropeScaling;
          s.factor != 1 || s.originalContext > 0 || s.attentionFactor != 1 ||
          s.numFactors > 0) {
        json js = {{"factor", s.factor}};
        if (s.originalContext > 0 && s.betaFast > 0) {
          js["beta_fast"] = s.betaFast;
          js["beta_slow"] = s.betaSlow;
        } else if (s.originalContext > 0) {
          js["low_freq_factor"] = s.lowFreqFactor;
          js["high_freq_factor"] = s.highFreqFactor;
        }
        if (s.originalContext > 0)
          js["original_context"] = s.originalContext;
        if (s.numFactors > 0)
          js["frequency_factors"] =
              std::vector<double>(s.factors, s.factors + s.numFactors);
        if (s.attentionFactor != 1)
          js["attention_factor"] = s.attentionFactor;
        jo["rope_scaling"] = js;
      }
      break;
    case OpKind::Gelu:
      if (op.exact)
        jo["exact"] = true;
      break;
    case OpKind::Embedding:
      if (op.scale != 1)
        jo["scale"] = op.scale;
      break;
    case OpKind::Attention:
      jo["heads"] = op.heads;
      jo["kv_heads"] = op.kvHeads;
      if (op.window)
        jo["window"] = op.window;
      if (op.scoreScale)
        jo["score_scale"] = op.scoreScale;
      if (op.softcap)
        jo["softcap"] = op.softcap;
      break;
    case OpKind::Softcap:
      jo["softcap"] = op.softcap;
      break;
    case OpKind::Scale:
      jo["scale"] = op.scale;
      break;
    case OpKind::Moe:
      jo["top_k"] = op.topK;
      if (op.normalized)
        jo["normalized"] = true;
      if (op.auxLoss)
        jo["aux_loss"] = op.auxLoss;
      break;
    default:
      break;
    }
    ops.push_back(jo);
  }
  root["ops"] = ops;
  if (!g.stages.empty())
    root["stages"] = g.stages;
  if (!g.modelType.empty())
    root["model_type"] = g.modelType;
  if (g.resolvedForSeqLen)
    root["resolved_for_seq_len"] = g.resolvedForSeqLen;
  return root.dump(1);
}

Graph loadGraph(const std::string &path) {
  std::ifstream in(path);
  if (!in)
    throw std::invalid_argument("cannot open graph file '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return graphFromJson(ss.str());
  } catch (const std::invalid_argument &e) {
    throw std::invalid_argument(path + ": " + e.what());
  }
}

void saveGraph(const Graph &graph, const std::string &path) {
  std::ofstream out(path);
  out << graphToJson(graph) << "\n";
  if (!out)
    throw std::runtime_error("cannot write graph file '" + path + "'");
}

} // namespace s1f::rt
