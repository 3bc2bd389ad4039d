//===- hf_weights.cpp - A model graph's parameters from Hugging Face ------===//

#include "seq1f1b/runtime/hf_weights.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <stdexcept>

namespace s1f::rt {

namespace {

bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string shapeText(const std::vector<int64_t> &shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

/// Rows [row0, row0 + rows) of the transpose of a [in, out] matrix's
/// columns: the [rows, in] weight of a Linear that Conv1D stored [in, out].
std::vector<float> transposedColumns(const Tensor32 &t, int64_t row0,
                                     int64_t rows) {
  const int64_t in = t.shape[0], out = t.shape[1];
  std::vector<float> w(rows * in);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < in; ++i)
      w[r * in + i] = t.data[i * out + row0 + r];
  return w;
}

/// Where a graph weight sits in a checkpoint that stacks it with others
/// (Phi-3: q, k, v rows in self_attn.qkv_proj; Phi-3 and GLM-4: gate and up
/// rows in mlp.gate_up_proj): the fused tensor's name and the weight's first row;
/// no source when the checkpoint has the weight itself or no fused one.
struct FusedRows {
  std::string source; ///< empty: none
  int64_t row0 = 0;
};

FusedRows fusedRows(const std::string &name, const Graph &graph,
                    const TensorMap &byName) {
  FusedRows f;
  if (byName.count(name))
    return f;
  auto rows = [&](const std::string &param) {
    const int i = graph.paramIndex(param);
    return i < 0 ? int64_t(0) : graph.params[i].shape[0];
  };
  const std::vector<std::pair<std::string, std::vector<std::string>>> groups = {
      {"self_attn.qkv_proj",
       {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"}},
      {"mlp.gate_up_proj", {"mlp.gate_proj", "mlp.up_proj"}}};
  for (const auto &[fused, parts] : groups)
    for (size_t k = 0; k < parts.size(); ++k) {
      const std::string suffix = parts[k] + ".weight";
      if (!endsWith(name, suffix))
        continue;
      const std::string block = name.substr(0, name.size() - suffix.size());
      const std::string source = block + fused + ".weight";
      if (!byName.count(source))
        return f;
      for (size_t j = 0; j < k; ++j)
        f.row0 += rows(block + parts[j] + ".weight");
      f.source = source;
      return f;
    }
  return f;
}

/// GPT-NeoX's query_key_value interleaves q, k and v by head: row
/// (h * 3 + part) * hd + j of the fused tensor is row h * hd + j of the
/// graph's query (part 0), key (1) or value (2).
int64_t neoxFusedRow(int64_t row, int part, int64_t hd) {
  return (row / hd * 3 + part) * hd + row % hd;
}

/// The query, key or value part (0, 1, 2) a GPT-NeoX graph parameter
/// ("layers.0.attention.key.bias") is of, or -1; `fused` gets the name of
/// the checkpoint's tensor that holds it.
int neoxPart(const std::string &name, std::string *fused) {
  const size_t at = name.find(".attention.");
  if (at == std::string::npos)
    return -1;
  const std::string rest = name.substr(at + 11);
  const char *parts[] = {"query.", "key.", "value."};
  for (int k = 0; k < 3; ++k)
    if (rest == std::string(parts[k]) + "weight" ||
        rest == std::string(parts[k]) + "bias") {
      if (fused)
        *fused = name.substr(0, at) + ".attention.query_key_value" +
                 (endsWith(rest, "bias") ? ".bias" : ".weight");
      return k;
    }
  return -1;
}

/// A mixture of experts' stacked weight ("layers.0.mlp.experts.up_proj.weight",
/// expert e's rows the checkpoint's "layers.0.mlp.experts.<e>.up_proj.weight"):
/// the checkpoint's name of expert e's part; empty for other parameters.
std::string expertPart(const std::string &name, int64_t e) {
  const size_t at = name.rfind(".experts.");
  if (at == std::string::npos)
    return "";
  const std::string rest = name.substr(at + 9);
  if (rest.empty() || std::isdigit(static_cast<unsigned char>(rest[0])))
    return "";
  return name.substr(0, at + 9) + std::to_string(e) + "." + rest;
}

/// The experts of the moe op whose stacked weight (gate, up or down) is
/// `name`: its router's rows; 0 for any other parameter.
int64_t expertCount(const Graph &graph, const std::string &name) {
  const int p = graph.paramIndex(name);
  for (const Op &op : graph.ops)
    if (op.kind == OpKind::Moe &&
        std::find(op.params.begin() + 1, op.params.end(), p) != op.params.end())
      return graph.params[op.params[0]].shape[0];
  return 0;
}

/// Gemma's RMSNorms scale by (1 + weight); the graph's rms_norm scales by
/// its parameter, which therefore holds 1 + the checkpoint's weight.
bool gemmaNorm(const Graph &graph, const std::string &name) {
  return graph.modelType.rfind("gemma", 0) == 0 &&
         endsWith(name, "norm.weight");
}

/// The head dimension of a graph's attention (GPT-NeoX: every layer's).
int64_t attentionHeadDim(const Graph &graph) {
  for (const Op &op : graph.ops)
    if (op.kind == OpKind::Attention)
      return graph.valueFeatures[op.output] / op.heads;
  throw std::invalid_argument("the graph has no attention");
}

} // namespace

TensorMap readHfCheckpoint(const std::string &path) {
  namespace fs = std::filesystem;
  std::string file = path;
  if (fs::is_directory(path)) {
    file = (fs::path(path) / "model.safetensors.index.json").string();
    if (!fs::exists(file))
      file = (fs::path(path) / "model.safetensors").string();
  }
  if (!endsWith(file, ".index.json"))
    return readSafetensors(file);
  std::ifstream in(file);
  if (!in)
    throw std::invalid_argument("cannot open the checkpoint index " + file);
  nlohmann::json index;
  try {
    index = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception &e) {
    throw std::invalid_argument(file + ": not JSON: " + e.what());
  }
  if (!index.is_object() || !index.contains("weight_map") ||
      !index["weight_map"].is_object())
    throw std::invalid_argument(file + ": no \"weight_map\" object");
  std::map<std::string, std::vector<std::string>> shards; // file -> tensors
  for (const auto &[tensor, shard] : index["weight_map"].items()) {
    if (!shard.is_string())
      throw std::invalid_argument(file + ": the file of '" + tensor +
                                  "' is not a string");
    shards[shard.get<std::string>()].push_back(tensor);
  }
  TensorMap all;
  for (const auto &[shard, tensors] : shards) {
    const std::string shardPath =
        (fs::path(file).parent_path() / shard).string();
    TensorMap part = readSafetensors(shardPath);
    for (const std::string &tensor : tensors) {
      auto it = part.find(tensor);
      if (it == part.end())
        throw std::invalid_argument(file + " puts '" + tensor + "' in " +
                                    shard + ", which does not hold it");
      all.emplace(tensor, std::move(it->second));
    }
  }
  return all;
}

TensorMap graphParamsFromHf(const TensorMap &checkpoint, const Graph &graph,
                            std::vector<std::string> *ignored) {
  // Names as the importer gives them.
  TensorMap byName;
  for (const auto &[name, t] : checkpoint) {
    std::string n = name;
    // A multimodal Gemma 3 keeps its language model under
    // language_model.model. (model.language_model. in newer transformers).
    for (const char *prefix :
         {"model.", "language_model.", "model.", "transformer.", "gpt_neox."})
      if (n.rfind(prefix, 0) == 0)
        n = n.substr(std::string(prefix).size());
    byName[n] = t;
  }
  bool gpt2 = false;
  for (const auto &[name, t] : byName)
    gpt2 |= name.find(".attn.c_attn.") != std::string::npos;
  const bool neox = graph.modelType == "gpt_neox";
  const int64_t neoxHeadDim = neox ? attentionHeadDim(graph) : 0;

  std::set<std::string> used;
  TensorMap params;
  for (const ParamSpec &p : graph.params) {
    const std::string &name = p.name;
    auto take = [&](const std::string &key) -> const Tensor32 * {
      auto it = byName.find(key);
      if (it == byName.end())
        return nullptr;
      used.insert(key);
      return &it->second;
    };
    Tensor32 value{p.shape, {}};
    // GPT-2's c_attn holds q, k and v side by side: [in, 3d] and [3d].
    const size_t attn = name.find(".attn.");
    const std::string rest =
        attn == std::string::npos ? "" : name.substr(attn + 6);
    const int part = rest.rfind("q.", 0) == 0   ? 0
                     : rest.rfind("k.", 0) == 0 ? 1
                     : rest.rfind("v.", 0) == 0 ? 2
                                                : -1;
    const Tensor32 *t = nullptr;
    std::string fusedName;
    if (const int neoxQkv = neox ? neoxPart(name, &fusedName) : -1;
        neoxQkv >= 0) {
      t = take(fusedName);
      const int64_t rows = p.shape[0];
      const int64_t cols = p.shape.size() == 2 ? p.shape[1] : 1;
      std::vector<int64_t> fusedShape = p.shape;
      fusedShape[0] = 3 * rows;
      if (t && t->shape == fusedShape) {
        value.data.resize(rows * cols);
        for (int64_t r = 0; r < rows; ++r)
          std::copy_n(t->data.begin() +
                          neoxFusedRow(r, neoxQkv, neoxHeadDim) * cols,
                      cols, value.data.begin() + r * cols);
      }
    } else if (gpt2 && part >= 0) {
      const bool bias = endsWith(name, ".bias");
      t = take(name.substr(0, attn) + ".attn.c_attn" +
               (bias ? ".bias" : ".weight"));
      const int64_t d = p.shape[0];
      if (t && bias && t->shape == std::vector<int64_t>{3 * d})
        value.data.assign(t->data.begin() + part * d,
                          t->data.begin() + (part + 1) * d);
      else if (t && !bias && t->shape.size() == 2 && t->shape[1] == 3 * d &&
               t->shape[0] == p.shape[1])
        value.data = transposedColumns(*t, part * d, d);
    } else if (const int64_t experts = expertCount(graph, name)) {
      // A mixture of experts: one tensor per expert, stacked by rows.
      const int64_t rows = p.shape[0] / experts, cols = p.shape[1];
      value.data.reserve(p.shape[0] * cols);
      for (int64_t e = 0; e < experts; ++e) {
        t = take(expertPart(name, e));
        if (!t)
          throw std::invalid_argument("the checkpoint has no tensor '" +
                                      expertPart(name, e) + "' for parameter '" +
                                      name + "'");
        if (t->shape != std::vector<int64_t>{rows, cols})
          throw std::invalid_argument(
              "the checkpoint's tensor '" + expertPart(name, e) + "' is " +
              shapeText(t->shape) + "; expert " + std::to_string(e) + " of '" +
              name + "' is " + shapeText({rows, cols}));
        value.data.insert(value.data.end(), t->data.begin(), t->data.end());
      }
    } else if (const FusedRows fused = fusedRows(name, graph, byName);
               !fused.source.empty()) {
      // Phi-3's qkv_proj and gate_up_proj: the graph's weights stacked.
      t = take(fused.source);
      if (t && t->shape.size() == 2 && t->shape[0] >= fused.row0 + p.shape[0] &&
          t->shape[1] == p.shape[1])
        value.data.assign(t->data.begin() + fused.row0 * p.shape[1],
                          t->data.begin() +
                              (fused.row0 + p.shape[0]) * p.shape[1]);
    } else {
      t = take(name);
      if (!t)
        t = take(name + ".weight"); // an embedding table
      const bool conv1d = gpt2 && (endsWith(name, ".c_proj.weight") ||
                                   endsWith(name, ".c_fc.weight"));
      if (t && conv1d && t->shape.size() == 2 &&
          t->shape == std::vector<int64_t>{p.shape[1], p.shape[0]})
        value.data = transposedColumns(*t, 0, p.shape[0]);
      else if (t && t->shape == p.shape)
        value.data = t->data;
    }
    if (!t)
      throw std::invalid_argument(
          "the checkpoint has no tensor for parameter '" + name + "'");
    if (gemmaNorm(graph, name))
      for (float &v : value.data)
        v += 1;
    if (value.data.empty())
      throw std::invalid_argument("the checkpoint's tensor for '" + name +
                                  "' is " + shapeText(t->shape) +
                                  "; the graph's parameter is " +
                                  shapeText(p.shape));
    params.emplace(name, std::move(value));
  }
  if (ignored)
    for (const auto &[name, t] : byName)
      if (!used.count(name))
        ignored->push_back(name);
  return params;
}

std::string checkHfNames(const Graph &graph) {
  if (graph.modelType == "gpt_neox" || graph.paramIndex("wte") >= 0 ||
      graph.paramIndex("embed_tokens") >= 0)
    return "";
  return "Hugging Face names are written for the graphs of Llama-family, "
         "StarCoder2, GPT-NeoX and GPT-2 configs only";
}

TensorMap hfFromGraphParams(const TensorMap &params, const Graph &graph) {
  if (std::string problem = checkHfNames(graph); !problem.empty())
    throw std::invalid_argument(problem);
  const bool gpt2 = graph.paramIndex("wte") >= 0;
  auto value = [&](const std::string &name) -> const Tensor32 & {
    auto it = params.find(name);
    if (it == params.end())
      throw std::invalid_argument("no value for parameter '" + name + "'");
    return it->second;
  };
  // [rows, in] Linear weights stacked, stored as Conv1D does: [in, rows...].
  auto conv1d = [](const std::vector<const Tensor32 *> &parts) {
    const int64_t in = parts[0]->shape[1];
    int64_t out = 0;
    for (const Tensor32 *p : parts)
      out += p->shape[0];
    Tensor32 t{{in, out}, std::vector<float>(in * out)};
    int64_t col = 0;
    for (const Tensor32 *p : parts) {
      for (int64_t r = 0; r < p->shape[0]; ++r)
        for (int64_t i = 0; i < in; ++i)
          t.data[i * out + col + r] = p->data[r * in + i];
      col += p->shape[0];
    }
    return t;
  };
  // Phi-3 stacks q, k and v, and gate and up, by rows.
  auto stacked = [&](const std::vector<std::string> &names) {
    Tensor32 t = value(names[0]);
    for (size_t i = 1; i < names.size(); ++i) {
      const Tensor32 &part = value(names[i]);
      t.data.insert(t.data.end(), part.data.begin(), part.data.end());
      t.shape[0] += part.shape[0];
    }
    return t;
  };
  const bool phi3 = graph.modelType == "phi3";
  // GLM-4 stacks gate and up too, but keeps q, k and v apart.
  const bool fusedMlp = phi3 || graph.modelType == "glm4";
  const bool neox = graph.modelType == "gpt_neox";
  TensorMap hf;
  const std::string prefix = gpt2   ? "transformer."
                             : neox ? "gpt_neox."
                                    : "model.";
  for (const ParamSpec &p : graph.params) {
    const std::string &name = p.name;
    std::string fused;
    if (name == "lm_head.weight" || name == "embed_out.weight") {
      hf[name] = value(name);
    } else if (const int part = neox ? neoxPart(name, &fused) : -1; part >= 0) {
      // q, k and v interleaved by head into query_key_value.
      const int64_t hd = attentionHeadDim(graph), rows = p.shape[0];
      const int64_t cols = p.shape.size() == 2 ? p.shape[1] : 1;
      Tensor32 &t = hf[prefix + fused];
      if (t.data.empty()) {
        t.shape = p.shape;
        t.shape[0] = 3 * rows;
        t.data.resize(3 * rows * cols);
      }
      const Tensor32 &v = value(name);
      for (int64_t r = 0; r < rows; ++r)
        std::copy_n(v.data.begin() + r * cols, cols,
                    t.data.begin() + neoxFusedRow(r, part, hd) * cols);
    } else if (name == "wte" || name == "wpe" || name == "embed_tokens" ||
               name == "embed_in") {
      hf[prefix + name + ".weight"] = value(name);
    } else if (gpt2 && (endsWith(name, ".attn.k.weight") ||
                        endsWith(name, ".attn.v.weight") ||
                        endsWith(name, ".attn.k.bias") ||
                        endsWith(name, ".attn.v.bias"))) {
      continue; // fused with q below
    } else if (gpt2 && endsWith(name, ".attn.q.weight")) {
      const std::string block = name.substr(0, name.size() - 9); // ".q.weight"
      hf[prefix + block + ".c_attn.weight"] =
          conv1d({&value(name), &value(block + ".k.weight"),
                  &value(block + ".v.weight")});
    } else if (gpt2 && endsWith(name, ".attn.q.bias")) {
      const std::string block = name.substr(0, name.size() - 7); // ".q.bias"
      Tensor32 t = value(name);
      for (const char *part : {".k.bias", ".v.bias"}) {
        const Tensor32 &b = value(block + part);
        t.data.insert(t.data.end(), b.data.begin(), b.data.end());
      }
      t.shape = {int64_t(t.data.size())};
      hf[prefix + block + ".c_attn.bias"] = std::move(t);
    } else if (gpt2 && (endsWith(name, ".c_proj.weight") ||
                        endsWith(name, ".c_fc.weight"))) {
      hf[prefix + name] = conv1d({&value(name)});
    } else if ((phi3 && (endsWith(name, ".self_attn.k_proj.weight") ||
                         endsWith(name, ".self_attn.v_proj.weight"))) ||
               (fusedMlp && endsWith(name, ".mlp.up_proj.weight"))) {
      continue; // stacked below
    } else if (phi3 && endsWith(name, ".self_attn.q_proj.weight")) {
      const std::string block =
          name.substr(0, name.size() - 13); // "q_proj.weight"
      hf[prefix + block + "qkv_proj.weight"] =
          stacked({name, block + "k_proj.weight", block + "v_proj.weight"});
    } else if (fusedMlp && endsWith(name, ".mlp.gate_proj.weight")) {
      const std::string block =
          name.substr(0, name.size() - 16); // "gate_proj.weight"
      hf[prefix + block + "gate_up_proj.weight"] =
          stacked({name, block + "up_proj.weight"});
    } else if (const int64_t experts = expertCount(graph, name)) {
      const Tensor32 &t = value(name);
      const int64_t rows = p.shape[0] / experts, cols = p.shape[1];
      for (int64_t e = 0; e < experts; ++e)
        hf[prefix + expertPart(name, e)] = Tensor32{
            {rows, cols}, std::vector<float>(t.data.begin() + e * rows * cols,
                                             t.data.begin() +
                                                 (e + 1) * rows * cols)};
    } else if (gemmaNorm(graph, name)) {
      Tensor32 t = value(name);
      for (float &v : t.data)
        v -= 1;
      hf[prefix + name] = std::move(t);
    } else {
      hf[prefix + name] = value(name);
    }
  }
  return hf;
}

} // namespace s1f::rt
