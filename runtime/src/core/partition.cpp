//===- partition.cpp - Stage cutting and chunk bounds ---------------------===//

#include "seq1f1b/runtime/partition.h"

#include "seq1f1b/Schedule/Partition.h"

#include <algorithm>
#include <set>
#include <stdexcept>

namespace s1f::rt {

namespace sched = seq1f1b::schedule;

namespace {

/// Attention cost per query per key, and everything else per token.
void costTerms(const Graph &g, const Op &op, double &perKey, double &perToken) {
  perKey = perToken = 0;
  int64_t out = op.output >= 0 ? g.valueFeatures[op.output] : 0;
  switch (op.kind) {
  case OpKind::Linear:
    perToken = static_cast<double>(g.params[op.params[0]].numel());
    break;
  case OpKind::Attention:
    perKey = 2.0 * static_cast<double>(out); // QK^T and PV
    break;
  case OpKind::CrossEntropy:
    perToken = static_cast<double>(g.valueFeatures[op.inputs[0]]);
    break;
  default:
    perToken = static_cast<double>(out);
    break;
  }
}

} // namespace

std::vector<int> cutPoints(const Graph &g) {
  const int n = static_cast<int>(g.ops.size());
  std::vector<int> lastUse(g.valueFeatures.size(), -1);
  for (int i = 0; i < n; ++i)
    for (int v : g.ops[i].inputs)
      lastUse[v] = std::max(lastUse[v], i);
  std::vector<int> points;
  std::set<int> live; // defined before op i, used at or after op i
  for (int i = 1; i < n; ++i) {
    if (int v = g.ops[i - 1].output; v >= 0 && lastUse[v] >= i)
      live.insert(v);
    for (auto it = live.begin(); it != live.end();)
      it = lastUse[*it] < i ? live.erase(it) : std::next(it);
    if (live.size() == 1)
      points.push_back(i);
  }
  return points;
}

std::vector<std::pair<int, int>> layerRanges(const Graph &g, int begin,
                                             int end) {
  std::vector<int> bounds = {begin};
  for (int p : cutPoints(g))
    if (p > begin && p < end)
      bounds.push_back(p);
  bounds.push_back(end);
  std::vector<sched::LayerOpRole> roles;
  for (const Op &op : g.ops)
    roles.push_back(op.kind == OpKind::Attention ? sched::LayerOpRole::Attention
                    : op.kind == OpKind::Add     ? sched::LayerOpRole::Add
                                                 : sched::LayerOpRole::Other);
  const int before = static_cast<int>(std::count(
      roles.begin(), roles.begin() + begin, sched::LayerOpRole::Attention));
  return sched::groupLayers(bounds, roles, before, begin == 0,
                            end == static_cast<int>(g.ops.size()));
}

std::vector<double> opCosts(const Graph &g, int seq) {
  std::vector<double> costs;
  for (const Op &op : g.ops) {
    double perKey, perToken;
    costTerms(g, op, perKey, perToken);
    costs.push_back(perToken + perKey * seq / 2.0);
  }
  return costs;
}

std::pair<int, int> contextParallelPart(int begin, int end, int rank,
                                        int ranks) {
  const int64_t len = end - begin;
  return {begin + static_cast<int>(len * rank / ranks),
          begin + static_cast<int>(len * (rank + 1) / ranks)};
}

RankTokens rankTokens(int begin, int end, int cpRank, int cpRanks, int spRank,
                      int spRanks) {
  const auto [start, stop] = contextParallelPart(begin, end, cpRank, cpRanks);
  const auto [splitStart, splitEnd] =
      contextParallelPart(start, stop, spRank, spRanks);
  return {start, stop, splitStart, splitEnd};
}

std::vector<StageSpec> cutStages(const Graph &g, int stages, int seq) {
  std::vector<int> bounds = cutPoints(g);
  bounds.insert(bounds.begin(), 0);
  bounds.push_back(static_cast<int>(g.ops.size()));
  const int segments = static_cast<int>(bounds.size()) - 1;
  if (stages < 1 || stages > segments)
    throw std::invalid_argument(
        "cannot cut the graph into " + std::to_string(stages) +
        " stages: it has " + std::to_string(segments) +
        " segments between points where one activation crosses");
  std::vector<double> opCost = opCosts(g, seq), segCost(segments, 0);
  for (int s = 0; s < segments; ++s)
    for (int i = bounds[s]; i < bounds[s + 1]; ++i)
      segCost[s] += opCost[i];
  sched::Result<sched::StagePartition> part =
      sched::partitionStages(segCost, stages);
  if (!part)
    throw std::invalid_argument("stage partition: " + part.error);

  std::vector<int> cut;
  for (int b : part->boundaries)
    cut.push_back(bounds[b]);
  return stagesAt(g, cut);
}

std::vector<StageSpec> stagesAt(const Graph &g, const std::vector<int> &cut) {
  const int ops = static_cast<int>(g.ops.size());
  if (cut.size() < 2 || cut.front() != 0 || cut.back() != ops)
    throw std::invalid_argument("stage cut must run from op 0 to op " +
                                std::to_string(ops));
  std::vector<int> points = cutPoints(g);
  for (size_t k = 1; k + 1 < cut.size(); ++k)
    if (!std::binary_search(points.begin(), points.end(), cut[k]))
      throw std::invalid_argument(
          "stage cut at op " + std::to_string(cut[k]) +
          " is not a point where exactly one activation crosses");
  const int stages = static_cast<int>(cut.size()) - 1;
  std::vector<StageSpec> specs(stages);
  for (int k = 0; k < stages; ++k) {
    StageSpec &s = specs[k];
    s.opBegin = cut[k];
    s.opEnd = cut[k + 1];
    if (s.opBegin >= s.opEnd)
      throw std::invalid_argument("stage " + std::to_string(k) + " is empty");
    std::set<int> params, defined;
    for (int i = s.opBegin; i < s.opEnd; ++i) {
      const Op &op = g.ops[i];
      params.insert(op.params.begin(), op.params.end());
      for (int v : op.inputs)
        if (!defined.count(v))
          s.input = v; // the one value that crosses the cut
      if (op.output >= 0)
        defined.insert(op.output);
    }
    s.params.assign(params.begin(), params.end());
  }
  for (int k = 0; k + 1 < stages; ++k)
    specs[k].output = specs[k + 1].input;
  return specs;
}

std::vector<int> chunkBounds(const Graph &g, int seq, int chunks,
                             ChunkPolicy policy) {
  if (chunks < 1 || chunks > seq)
    throw std::invalid_argument("chunks must be in [1, " + std::to_string(seq) +
                                "], got " + std::to_string(chunks));
  std::vector<int> lengths;
  if (policy == ChunkPolicy::Even) {
    for (int c = 0; c < chunks; ++c)
      lengths.push_back(seq / chunks + (c < seq % chunks ? 1 : 0));
  } else {
    double a = 0, b = 0;
    for (const Op &op : g.ops) {
      double perKey, perToken;
      costTerms(g, op, perKey, perToken);
      a += perKey;
      b += perToken;
    }
    auto cost = [a, b](double begin, double end) {
      double s = end - begin;
      return a * (s * end - s * s / 2) + b * s;
    };
    sched::Result<std::vector<int>> r = sched::balanceChunks(seq, chunks, cost);
    if (!r)
      throw std::invalid_argument("chunk split: " + r.error);
    lengths = *r;
  }
  std::vector<int> bounds{0};
  for (int len : lengths)
    bounds.push_back(bounds.back() + len);
  return bounds;
}

} // namespace s1f::rt
