//===- tensor_parallel.cpp - Megatron's splits of a graph, their kernels --===//

#include "seq1f1b/runtime/tensor_parallel.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace s1f::rt {

namespace {

bool isActivation(OpKind k) {
  return k == OpKind::Gelu || k == OpKind::Silu || k == OpKind::Swiglu ||
         k == OpKind::Geglu;
}

/// Ops that keep a value's split: per head (rope, a per-head norm), per
/// element (scale, the logits' softcap), or an RMSNorm of whole rows, whose
/// squares the ranks sum.
bool keepsSplit(const Op &op) {
  return op.kind == OpKind::Rope || op.kind == OpKind::Scale ||
         op.kind == OpKind::Softcap || op.kind == OpKind::RmsNorm;
}

/// Linears are column- or row-parallel; an embedding whose table is split
/// by vocabulary is Vocab; a mixture of experts splits each expert's width
/// (column- then row-parallel inside the op); the rest runs whole.
enum class Role { Whole, Column, Row, Vocab, Experts };

/// How a parameter is split: along `dim` into `parts` (dim -1: whole), each
/// of `groups` groups along it separately.
struct Split {
  int dim = -1, parts = 1, groups = 1;
  bool operator!=(const Split &o) const {
    return dim != o.dim || parts != o.parts || groups != o.groups;
  }
};

class Sharder {
public:
  Sharder(const Graph &g, int tp, bool sequenceParallel)
      : g(g), tp(tp), sequenceParallel(sequenceParallel),
        parts(g.valueFeatures.size(), 0),
        producer(g.valueFeatures.size(), -1), role(g.ops.size(), Role::Whole),
        paramSplit(g.params.size()), paramSeen(g.params.size(), false) {
    for (int i = 0; i < static_cast<int>(g.ops.size()); ++i)
      if (g.ops[i].output >= 0)
        producer[g.ops[i].output] = i;
    // The vocabulary is split when the ranks divide every table and the
    // logits (else the tables and the head run whole).
    for (const Op &op : g.ops) {
      const int64_t rows = op.kind == OpKind::Embedding
                               ? g.params[op.params[0]].shape[0]
                           : op.kind == OpKind::CrossEntropy
                               ? g.valueFeatures[op.inputs[0]]
                               : 0;
      if (rows % tp) {
        vocab = false;
        vocabRows = rows;
      }
    }
  }

  Graph run() {
    if (sequenceParallel && !vocab)
      throw std::invalid_argument(
          "sequence parallelism needs the vocabulary split too, but " +
          std::to_string(tp) + " tensor-parallel ranks do not divide its " +
          std::to_string(vocabRows) + " rows");
    findSplitValues();
    checkOps();
    Graph s = rewrite();
    if (sequenceParallel)
      splitSequence(s);
    return s;
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
    if (op.kind == OpKind::RmsNorm && op.heads == 0 && n != tp)
      fail(p, "normalizes all kv heads together, and " + std::to_string(tp) +
                  " ranks share " + std::to_string(n) +
                  " parts of them: train this model with a --tp that "
                  "divides its kv heads");
    if (keepsSplit(op))
      markSplit(op.inputs[0], n, p);
    else if (op.kind == OpKind::Linear)
      role[p] = Role::Column;
    else if (op.kind == OpKind::LayerNorm)
      fail(p, "normalizes all heads together with a LayerNorm, which the "
              "runtime does not split over tensor-parallel ranks; train this "
              "model with --tp 1");
    else if (op.kind != OpKind::Attention && !isActivation(op.kind))
      fail(p, "makes value " + std::to_string(v) +
                  ", which attention, an MLP activation or the loss reads "
                  "split across the ranks, but it needs the value whole");
  }

  /// Attention and activations read and make values split across the
  /// ranks (by head, by MLP width), the loss reads the logits split by
  /// vocabulary; linears after attention and activations are row-parallel.
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
      } else if (isActivation(op.kind) ||
                 (vocab && op.kind == OpKind::CrossEntropy)) {
        for (int v : op.inputs)
          markSplit(v, tp, i);
      } else if (vocab && op.kind == OpKind::Embedding) {
        role[i] = Role::Vocab;
      } else if (op.kind == OpKind::Moe) {
        role[i] = Role::Experts;
        divisible(i, g.params[op.params[3]].shape[1], tp, "experts' width");
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

  /// How op i's k-th parameter is split.
  Split splitOf(int i, size_t k) const {
    switch (role[i]) {
    case Role::Column:
      return {0, parts[g.ops[i].output]};
    case Role::Row: // the bias is added whole, after the sum
      return k == 0 ? Split{1, tp} : Split{};
    case Role::Vocab:
      return {0, tp};
    case Role::Experts: { // router whole; gate, up by rows; down by columns
      const int64_t experts = g.params[g.ops[i].params[0]].shape[0];
      return k == 0 ? Split{} : k == 3 ? Split{1, tp} : Split{0, tp, int(experts)};
    }
    case Role::Whole:
      break;
    }
    const Op &op = g.ops[i];
    if (op.kind == OpKind::RmsNorm && op.heads == 0 && parts[op.inputs[0]])
      return {0, tp}; // each rank's features
    return {};
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
                        : op.kind == OpKind::CrossEntropy ? in == (vocab ? tp : 0)
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
      // A parameter read by two ops (tied embeddings) must be split the
      // same way by both.
      for (size_t k = 0; k < op.params.size(); ++k) {
        const int p = op.params[k];
        const Split split = splitOf(i, k);
        if (paramSeen[p] && paramSplit[p] != split)
          fail(i, "parameter '" + g.params[p].name +
                      "' is also read by an op that splits it differently");
        paramSplit[p] = split;
        paramSeen[p] = true;
      }
    }
  }

  /// Op `op` with its output renamed to a new value, which `reduce` (a
  /// tp_reduce op) sums into the old one.
  Op partialOutput(Graph &s, Op &op) const {
    Op reduce;
    reduce.kind = OpKind::TpReduce;
    reduce.output = op.output;
    op.output = static_cast<int>(s.valueFeatures.size());
    s.valueFeatures.push_back(g.valueFeatures[reduce.output]);
    reduce.inputs = {op.output};
    return reduce;
  }

  /// Sequence parallelism: whole values are split by tokens, but those made
  /// for the tensor-parallel regions (tp_copy outputs) and the partial sums
  /// that tp_reduce takes; weights of ops making split values see only the
  /// rank's tokens.
  static void splitSequence(Graph &s) {
    s.sequenceSplit.assign(s.valueFeatures.size(), false);
    std::vector<bool> full(s.valueFeatures.size(), false);
    for (const Op &op : s.ops) {
      if (op.kind == OpKind::TpCopy)
        full[op.output] = true;
      if (op.kind == OpKind::TpReduce)
        full[op.inputs[0]] = true;
    }
    std::vector<bool> splitByHeads(s.valueFeatures.size(), false);
    for (const Op &op : s.ops)
      if (op.output >= 0 && !full[op.output]) {
        // Whole values are what reads only whole values makes (or a
        // tp_reduce); anything downstream of a tp_copy is split by heads.
        bool heads = op.kind != OpKind::TpReduce &&
                     std::any_of(op.inputs.begin(), op.inputs.end(),
                                 [&](int v) {
                                   return full[v] || splitByHeads[v];
                                 });
        splitByHeads[op.output] = heads;
        s.sequenceSplit[op.output] = !heads;
      }
    for (const Op &op : s.ops)
      if (op.output >= 0 && s.sequenceSplit[op.output])
        for (int p : op.params)
          s.params[p].tpPartialGrad = true;
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
      spec.tpDim = paramSplit[p].dim;
      spec.tpParts = paramSplit[p].parts;
      spec.tpGroups = paramSplit[p].groups;
      if (spec.tpDim >= 0)
        spec.shape[spec.tpDim] /= spec.tpParts;
      // A kv head on several ranks gets a share of its gradient from each
      // rank's query heads.
      spec.tpPartialGrad = spec.tpDim == 0 && spec.tpParts < tp;
    }
    // copies[v]: the tp_copy of whole value v that column-parallel linears
    // read instead of v.
    std::vector<int> copies(g.valueFeatures.size(), -1);
    std::vector<int> start(g.ops.size() + 1); // old op -> first new op
    for (int i = 0; i < static_cast<int>(g.ops.size()); ++i) {
      start[i] = static_cast<int>(s.ops.size());
      Op op = g.ops[i];
      const int in = op.inputs.empty() ? 0 : parts[op.inputs[0]];
      if (role[i] == Role::Column || role[i] == Role::Experts) {
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
      op.tpSplit = role[i] == Role::Vocab || role[i] == Role::Experts ||
                   (in && (op.kind == OpKind::CrossEntropy ||
                           (op.kind == OpKind::RmsNorm && op.heads == 0)));
      if (role[i] == Role::Experts) {
        Op reduce = partialOutput(s, op);
        s.ops.push_back(op);
        s.ops.push_back(reduce);
        continue;
      }
      if (role[i] == Role::Row || role[i] == Role::Vocab) {
        Op reduce = partialOutput(s, op);
        if (op.params.size() > 1) // the bias, added once after the sum
          reduce.params = {op.params[1]};
        op.params.resize(1);
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
  const bool sequenceParallel;
  bool vocab = true;          ///< the vocabulary is split
  int64_t vocabRows = 0;      ///< a vocabulary size tp does not divide
  std::vector<int> parts;     ///< by value: its parts across the ranks, 0 whole
  std::vector<int> producer;  ///< by value: op index
  std::vector<Role> role;     ///< by op
  std::vector<Split> paramSplit; ///< by parameter
  std::vector<bool> paramSeen;   ///< by parameter: read by an op
};

/// A parameter as [outer, mid, inner] around its split dimension.
struct Blocks {
  int64_t outer = 1, mid = 1, inner = 1;
  Blocks(const ParamSpec &spec) {
    for (int d = 0; d < static_cast<int>(spec.shape.size()); ++d)
      (d < spec.tpDim ? outer : d == spec.tpDim ? mid : inner) *= spec.shape[d];
    outer *= spec.tpGroups;
    mid /= spec.tpGroups;
  }
};

} // namespace

Graph shardTensorParallel(const Graph &graph, int tp, bool sequenceParallel) {
  if (tp < 1)
    throw std::invalid_argument("tensor parallelism must be >= 1, got " +
                                std::to_string(tp));
  if (graph.tensorParallel != 1)
    throw std::invalid_argument("the graph is already sharded for " +
                                std::to_string(graph.tensorParallel) +
                                " tensor-parallel ranks");
  if (tp == 1)
    return graph;
  return Sharder(graph, tp, sequenceParallel).run();
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

void splitRmsNormFwd(const float *x, const float *gamma, float *y, float *rstd,
                     int64_t N, int64_t D, int64_t wholeD, double eps,
                     Communicator &comm, const Tag &tag) {
  std::vector<float> squares(N);
  for (int64_t r = 0; r < N; ++r) {
    double sq = 0;
    for (int64_t j = 0; j < D; ++j)
      sq += double(x[r * D + j]) * x[r * D + j];
    squares[r] = static_cast<float>(sq);
  }
  allReduceSum(comm, squares.data(), N, tag);
  for (int64_t r = 0; r < N; ++r) {
    const float rs =
        static_cast<float>(1.0 / std::sqrt(double(squares[r]) / wholeD + eps));
    for (int64_t j = 0; j < D; ++j)
      y[r * D + j] = x[r * D + j] * rs * gamma[j];
    rstd[r] = rs;
  }
}

void splitRmsNormBwd(const float *x, const float *gamma, const float *rstd,
                     const float *dy, float *dx, float *dgamma, int64_t N,
                     int64_t D, int64_t wholeD, Communicator &comm,
                     const Tag &tag) {
  // dx = rstd * (g - xhat * mean(g * xhat)) with g = dy * gamma, the mean
  // over the whole row.
  std::vector<float> sumGX(N);
  for (int64_t r = 0; r < N; ++r) {
    double s = 0;
    for (int64_t j = 0; j < D; ++j) {
      const float xhat = x[r * D + j] * rstd[r];
      s += dy[r * D + j] * gamma[j] * xhat;
      if (dgamma)
        dgamma[j] += dy[r * D + j] * xhat;
    }
    sumGX[r] = static_cast<float>(s);
  }
  if (!dx)
    return;
  allReduceSum(comm, sumGX.data(), N, tag);
  for (int64_t r = 0; r < N; ++r) {
    const float mean = static_cast<float>(double(sumGX[r]) / wholeD);
    for (int64_t j = 0; j < D; ++j)
      dx[r * D + j] =
          rstd[r] * (dy[r * D + j] * gamma[j] - x[r * D + j] * rstd[r] * mean);
  }
}

cpu::LossSum vocabParallelCrossEntropyFwd(const float *logits,
                                          const int32_t *targets, float *lse,
                                          int64_t N, int64_t V, int64_t first,
                                          Communicator &comm, const Tag &tag) {
  auto mine = [&](int32_t target) {
    return target >= first && target < first + V;
  };
  std::vector<float> max(N), sum(N), target(N, 0.0f);
  for (int64_t r = 0; r < N; ++r) {
    const float *row = logits + r * V;
    max[r] = *std::max_element(row, row + V);
    if (mine(targets[r]))
      target[r] = row[targets[r] - first];
  }
  allReduceMax(comm, max.data(), N, tag);
  for (int64_t r = 0; r < N; ++r) {
    const float *row = logits + r * V;
    double s = 0;
    for (int64_t j = 0; j < V; ++j)
      s += std::exp(double(row[j]) - max[r]);
    sum[r] = static_cast<float>(s);
  }
  allReduceSum(comm, sum.data(), N, tag);
  allReduceSum(comm, target.data(), N, tag);
  cpu::LossSum result;
  for (int64_t r = 0; r < N; ++r) {
    const double rowLse = max[r] + std::log(double(sum[r]));
    lse[r] = static_cast<float>(rowLse);
    if (targets[r] < 0)
      continue;
    result.loss_sum += rowLse - target[r];
    ++result.count;
  }
  return result;
}

void vocabParallelCrossEntropyBwd(const float *logits, const int32_t *targets,
                                  const float *lse, float *dlogits, int64_t N,
                                  int64_t V, int64_t first, float scale) {
  for (int64_t r = 0; r < N; ++r) {
    const float *row = logits + r * V;
    float *drow = dlogits + r * V;
    if (targets[r] < 0) {
      std::fill_n(drow, V, 0.0f);
      continue;
    }
    for (int64_t j = 0; j < V; ++j)
      drow[j] = scale * std::exp(row[j] - lse[r]);
    if (targets[r] >= first && targets[r] < first + V)
      drow[targets[r] - first] -= scale;
  }
}

} // namespace s1f::rt
