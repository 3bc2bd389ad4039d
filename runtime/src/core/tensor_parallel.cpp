//===- tensor_parallel.cpp - Column/row-parallel linears, f and g ---------===//

#include "seq1f1b/runtime/tensor_parallel.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace s1f::rt {

namespace {

bool isActivation(OpKind k) {
  return k == OpKind::Gelu || k == OpKind::Silu || k == OpKind::Swiglu ||
         k == OpKind::Geglu;
}

/// Ops that keep a value's split: per head (rope, a per-head norm) or per
/// element (scale).
bool keepsSplit(const Op &op) {
  return op.kind == OpKind::Rope || op.kind == OpKind::Scale ||
         (op.kind == OpKind::RmsNorm && op.heads > 0);
}

enum class Role { Whole, Column, Row };

class Sharder {
public:
  Sharder(const Graph &g, int tp)
      : g(g), tp(tp), parts(g.valueFeatures.size(), 0),
        producer(g.valueFeatures.size(), -1), role(g.ops.size(), Role::Whole),
        paramRole(g.params.size(), -1), paramParts(g.params.size(), 1) {
    for (int i = 0; i < static_cast<int>(g.ops.size()); ++i)
      if (g.ops[i].output >= 0)
        producer[g.ops[i].output] = i;
  }

  Graph run() {
    findSplitValues();
    checkOps();
    return rewrite();
  }

private:
  [[noreturn]] void fail(int i, const std::string &why) const {
    throw std::invalid_argument(
        "tensor parallelism (" + std::to_string(tp) + " ranks): op " +
        std::to_string(i) + " (" + opKindName(g.ops[i].kind) + "): " + why);
  }
  void divisible(int i, int64_t n, int by, const std::string &what) const {
    if (n % by)
      fail(i, "its " + what + " (" + std::to_string(n) +
                  ") is not divisible by " + std::to_string(by) +
                  (by == tp ? " (the tensor-parallel ranks)" : ""));
  }

  /// Marks `v` as split into `n` parts across the ranks, and what makes it:
  /// back through ops that keep a split to the column-parallel linear.
  void markSplit(int v, int n, int reader) {
    if (parts[v] == n)
      return;
    if (parts[v])
      fail(reader, "reads value " + std::to_string(v) + " in " +
                       std::to_string(n) + " parts, but another op reads it "
                       "in " + std::to_string(parts[v]));
    parts[v] = n;
    const int p = producer[v];
    if (p < 0)
      fail(reader, "reads value " + std::to_string(v) +
                       ", which no op makes, across the ranks");
    const Op &op = g.ops[p];
    if (keepsSplit(op))
      markSplit(op.inputs[0], n, p);
    else if (op.kind == OpKind::Linear)
      role[p] = Role::Column;
    else if (op.kind == OpKind::RmsNorm || op.kind == OpKind::LayerNorm)
      fail(p, "normalizes all heads together (OLMo 2's q and k norms), "
              "which needs a sum over the tensor-parallel ranks that the "
              "runtime does not make; train this model with --tp 1");
    else if (op.kind != OpKind::Attention && !isActivation(op.kind))
      fail(p, "makes value " + std::to_string(v) +
                  ", which attention or an MLP activation reads split "
                  "across the ranks, but it needs the value whole");
  }

  /// Attention and activations read and make values split across the
  /// ranks (by head, by MLP width); linears after them are row-parallel.
  /// K and V come in min(T, kv heads) parts: with fewer kv heads than
  /// ranks, each kv head goes to the T / kv ranks whose query heads use it.
  void findSplitValues() {
    for (int i = 0; i < static_cast<int>(g.ops.size()); ++i) {
      const Op &op = g.ops[i];
      if (op.kind == OpKind::Attention) {
        divisible(i, op.heads, tp, "heads");
        const int kv = std::min(op.kvHeads, tp);
        if (op.kvHeads < tp)
          divisible(i, tp, op.kvHeads, "tensor-parallel ranks");
        else
          divisible(i, op.kvHeads, tp, "kv heads");
        markSplit(op.inputs[0], tp, i);
        markSplit(op.inputs[1], kv, i);
        markSplit(op.inputs[2], kv, i);
      } else if (isActivation(op.kind)) {
        for (int v : op.inputs)
          markSplit(v, tp, i);
      }
    }
    for (int i = 0; i < static_cast<int>(g.ops.size()); ++i) {
      const Op &op = g.ops[i];
      const int in = op.inputs.empty() ? 0 : parts[op.inputs[0]];
      if (op.kind == OpKind::Attention || isActivation(op.kind))
        parts[op.output] = tp;
      else if (in && keepsSplit(op))
        parts[op.output] = in;
      else if (in && op.kind == OpKind::Linear)
        role[i] = Role::Row;
    }
  }

  void checkOps() {
    for (int i = 0; i < static_cast<int>(g.ops.size()); ++i) {
      const Op &op = g.ops[i];
      const int out = op.output >= 0 ? parts[op.output] : 0;
      for (int v : op.inputs) {
        const int in = parts[v];
        const bool ok = role[i] == Role::Column ? in == 0
                        : role[i] == Role::Row  ? in == tp
                        : op.kind == OpKind::Attention ? in > 0
                                                       : in == out;
        if (!ok)
          fail(i, "reads value " + std::to_string(v) +
                      (in ? " split across the tensor-parallel ranks but "
                            "needs it whole"
                          : " whole but makes a split value"));
      }
      if (role[i] == Role::Column)
        divisible(i, g.valueFeatures[op.output], out, "output size");
      if (role[i] == Role::Row && out)
        fail(i, "reads a value split across the ranks and makes one that "
                "attention or an activation reads split: two tensor-parallel "
                "linears in a row");
      if (role[i] == Role::Row)
        divisible(i, g.valueFeatures[op.inputs[0]], tp, "input size");
      if (out && op.heads > 0 && op.kind != OpKind::Attention)
        divisible(i, op.heads, out, "heads");
      if (out && isActivation(op.kind))
        divisible(i, g.valueFeatures[op.output], tp, "size");
      // A parameter read by a column- and a row-parallel linear, or by one
      // of them and a whole op, cannot be split both ways.
      for (size_t k = 0; k < op.params.size(); ++k) {
        const int p = op.params[k];
        const int mine = static_cast<int>(role[i]);
        if (paramRole[p] >= 0 && (paramRole[p] != mine ||
                                  (mine == static_cast<int>(Role::Column) &&
                                   paramParts[p] != out)))
          fail(i, "parameter '" + g.params[p].name +
                      "' is also read by an op that splits it differently");
        paramRole[p] = mine;
        if (role[i] == Role::Column)
          paramParts[p] = out;
      }
    }
  }

  Graph rewrite() const {
    Graph s = g;
    s.ops.clear();
    s.tensorParallel = tp;
    for (size_t v = 0; v < s.valueFeatures.size(); ++v)
      if (parts[v])
        s.valueFeatures[v] /= parts[v];
    for (size_t p = 0; p < s.params.size(); ++p) {
      ParamSpec &spec = s.params[p];
      if (paramRole[p] == static_cast<int>(Role::Column)) {
        spec.tpDim = 0;
        spec.tpParts = paramParts[p];
        // A kv head on several ranks gets a share of its gradient from
        // each rank's query heads.
        spec.tpPartialGrad = paramParts[p] < tp;
      } else if (paramRole[p] == static_cast<int>(Role::Row) &&
                 spec.shape.size() == 2) { // a row-parallel bias stays whole
        spec.tpDim = 1;
        spec.tpParts = tp;
      }
      if (spec.tpDim >= 0)
        spec.shape[spec.tpDim] /= spec.tpParts;
    }
    // copies[v]: the tp_copy of whole value v that column-parallel linears
    // read instead of v.
    std::vector<int> copies(g.valueFeatures.size(), -1);
    std::vector<int> start(g.ops.size() + 1); // old op -> first new op
    for (int i = 0; i < static_cast<int>(g.ops.size()); ++i) {
      start[i] = static_cast<int>(s.ops.size());
      Op op = g.ops[i];
      const int in = op.inputs.empty() ? 0 : parts[op.inputs[0]];
      if (role[i] == Role::Column) {
        int &copy = copies[op.inputs[0]];
        if (copy < 0) {
          copy = static_cast<int>(s.valueFeatures.size());
          s.valueFeatures.push_back(g.valueFeatures[op.inputs[0]]);
          Op f;
          f.kind = OpKind::TpCopy;
          f.inputs = {op.inputs[0]};
          f.output = copy;
          s.ops.push_back(f);
        }
        op.inputs[0] = copy;
      }
      if (in && op.heads > 0 &&
          (op.kind == OpKind::Rope || op.kind == OpKind::RmsNorm)) {
        op.heads /= in;
        // Each rank's heads give a share of the norm weight's gradient.
        if (op.kind == OpKind::RmsNorm)
          s.params[op.params[0]].tpPartialGrad = true;
      }
      if (op.kind == OpKind::Attention) {
        op.heads /= tp;
        op.kvHeads /= parts[op.inputs[1]];
      }
      if (role[i] == Role::Row) {
        Op reduce;
        reduce.kind = OpKind::TpReduce;
        reduce.output = op.output;
        if (op.params.size() > 1) // the bias, added once after the sum
          reduce.params = {op.params[1]};
        op.params.resize(1);
        op.output = static_cast<int>(s.valueFeatures.size());
        s.valueFeatures.push_back(g.valueFeatures[reduce.output]);
        reduce.inputs = {op.output};
        s.ops.push_back(op);
        s.ops.push_back(reduce);
        continue;
      }
      s.ops.push_back(op);
    }
    start[g.ops.size()] = static_cast<int>(s.ops.size());
    for (int &b : s.stages)
      b = start[b];
    s.validate();
    return s;
  }

  const Graph &g;
  const int tp;
  std::vector<int> parts;     ///< by value: its parts across the ranks, 0 whole
  std::vector<int> producer;  ///< by value: op index
  std::vector<Role> role;     ///< by op: linears' parallel kind
  std::vector<int> paramRole; ///< by parameter: Role of its readers, -1 none
  std::vector<int> paramParts; ///< by parameter: parts, if column-parallel
};

/// A parameter as [outer, mid, inner] around its split dimension.
struct Blocks {
  int64_t outer = 1, mid = 1, inner = 1;
  Blocks(const ParamSpec &spec) {
    for (int d = 0; d < static_cast<int>(spec.shape.size()); ++d)
      (d < spec.tpDim ? outer : d == spec.tpDim ? mid : inner) *= spec.shape[d];
  }
};

} // namespace

Graph shardTensorParallel(const Graph &graph, int tp) {
  if (tp < 1)
    throw std::invalid_argument("tensor parallelism must be >= 1, got " +
                                std::to_string(tp));
  if (graph.tensorParallel != 1)
    throw std::invalid_argument("the graph is already sharded for " +
                                std::to_string(graph.tensorParallel) +
                                " tensor-parallel ranks");
  if (tp == 1)
    return graph;
  return Sharder(graph, tp).run();
}

int tpPartOf(const ParamSpec &spec, int rank, int tp) {
  return rank * spec.tpParts / tp;
}

std::vector<float> shardOf(const ParamSpec &spec,
                           const std::vector<float> &whole, int rank, int tp) {
  if (spec.tpDim < 0)
    return whole;
  const Blocks b(spec);
  const int64_t k = tpPartOf(spec, rank, tp);
  std::vector<float> part;
  part.reserve(b.outer * b.mid * b.inner);
  for (int64_t o = 0; o < b.outer; ++o) {
    auto first = whole.begin() + ((o * spec.tpParts + k) * b.mid) * b.inner;
    part.insert(part.end(), first, first + b.mid * b.inner);
  }
  return part;
}

std::vector<float> unshard(const ParamSpec &spec,
                           const std::vector<std::vector<float>> &parts) {
  if (spec.tpDim < 0)
    return parts.at(0);
  const Blocks b(spec);
  std::vector<float> whole;
  whole.reserve(b.outer * b.mid * b.inner * parts.size());
  for (int64_t o = 0; o < b.outer; ++o)
    for (const std::vector<float> &part : parts) {
      auto first = part.begin() + o * b.mid * b.inner;
      whole.insert(whole.end(), first, first + b.mid * b.inner);
    }
  return whole;
}

} // namespace s1f::rt
