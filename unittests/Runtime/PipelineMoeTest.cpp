//===- PipelineMoeTest.cpp - Mixtures of experts across ranks -------------===//
//
// A tiny Mixtral: expert parallelism (replicas splitting the experts) and
// the load-balancing loss give the single-rank run's loss and gradients
// (fp32, 1e-5 relative) with pipelines, chunks, and tensor, context and
// data parallelism; the reported load-balancing loss and expert load are
// what the routing, evaluated independently, gives.
//
//===----------------------------------------------------------------------===//

#include "PipelineTestUtil.h"

#include "seq1f1b/runtime/moe.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

namespace s1f::rt::test {
namespace {

namespace sched = seq1f1b::schedule;
using sched::ScheduleKind;

constexpr double kTol = 1e-5;
constexpr int kSteps = 3, M = 2;

// Expert parallelism: replicas split a tiny Mixtral's 4 experts, sending
// each routed token to its expert's replica and back; the steps equal the
// single-rank run of every micro-batch, with context parallelism, the
// zero-bubble split and more replicas than experts' ranks too.
TEST(ExpertParallel, SplitExpertsEqualOneRunOfTheWholeBatch) {
  const ModelCase m = tinyMixtralCase();
  struct Case {
    ScheduleKind kind;
    int P, N, D, X, C;
  };
  for (const Case &c : {Case{ScheduleKind::Seq1F1B, 2, 2, 2, 2, 1},
                        Case{ScheduleKind::Seq1F1BZB, 2, 3, 2, 2, 2},
                        Case{ScheduleKind::OneFOneB, 1, 1, 4, 2, 1},
                        Case{ScheduleKind::Seq1F1B, 1, 2, 4, 4, 1}}) {
    SCOPED_TRACE(std::string(sched::scheduleKindName(c.kind)) +
                 " P=" + std::to_string(c.P) + " N=" + std::to_string(c.N) +
                 " D=" + std::to_string(c.D) + " X=" + std::to_string(c.X) +
                 " C=" + std::to_string(c.C));
    PipelineOptions o = options(c.kind, c.P, M, c.N, ChunkPolicy::Flops);
    o.dataParallel = c.D;
    o.expertParallel = c.X;
    o.contextParallel = c.C;
    Pipeline pipe(m.graph, o, static_cast<int>(m.seq));
    expectMatchesReference(pipe, m, kSteps, kTol);
    // The global norm counts every replica's experts.
    o.expertParallel = 1;
    Pipeline whole(m.graph, o, static_cast<int>(m.seq));
    PipelineOptions split = o;
    split.expertParallel = c.X;
    Pipeline experts(m.graph, split, static_cast<int>(m.seq));
    const Batch batch = makeBatch(m, c.D * M, 5);
    const StepResult a = whole.step(batch), b = experts.step(batch);
    ASSERT_TRUE(a.ok && b.ok);
    EXPECT_NEAR(b.gradNorm, a.gradNorm, kTol * a.gradNorm);
  }
}

// Each replica holds its block of the experts: replica 1 of 2 the second
// half of every stacked expert weight.
TEST(ExpertParallel, ReplicasHoldTheirBlockOfExperts) {
  const ModelCase m = tinyMixtralCase();
  PipelineOptions o = options(ScheduleKind::Seq1F1B, 1, M, 2, ChunkPolicy::Even);
  o.dataParallel = 2;
  o.expertParallel = 2;
  auto plan = std::make_shared<const PipelinePlan>(m.graph, o,
                                                   static_cast<int>(m.seq));
  const std::vector<std::vector<float>> whole = initParams(m.graph, o.seed);
  PipelineRank second(plan, 1);
  EXPECT_EQ(second.epRank(), 1);
  for (size_t p = 0; p < m.graph.params.size(); ++p) {
    const ParamSpec &spec = m.graph.params[p];
    const std::vector<float> &mine = second.param(spec.name);
    if (spec.name.find(".experts.") == std::string::npos) {
      EXPECT_EQ(mine, whole[p]) << spec.name;
      continue;
    }
    ASSERT_EQ(mine.size() * 2, whole[p].size()) << spec.name;
    EXPECT_TRUE(std::equal(mine.begin(), mine.end(),
                           whole[p].begin() + whole[p].size() / 2))
        << spec.name;
  }
}

TEST(ExpertParallel, LayoutsItCannotRunAreErrors) {
  const ModelCase m = tinyMixtralCase();
  auto error = [&](const Graph &g, int D, int X, int T) {
    PipelineOptions o = options(ScheduleKind::OneFOneB, 1, M, 1,
                                ChunkPolicy::Even);
    o.dataParallel = D;
    o.expertParallel = X;
    o.tensorParallel = T;
    try {
      Pipeline(g, o, static_cast<int>(m.seq));
    } catch (const std::invalid_argument &e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error(m.graph, 3, 2, 1).find(
                "expert parallelism (2) must divide the data-parallel "
                "replicas (3)"),
            std::string::npos);
  EXPECT_NE(error(m.graph, 2, 2, 2).find("tensor parallelism 1, got 2"),
            std::string::npos);
  EXPECT_NE(error(m.graph, 3, 3, 1).find(
                "(moe): its 4 experts do not split over 3 expert-parallel "
                "ranks"),
            std::string::npos)
      << error(m.graph, 3, 3, 1);
  EXPECT_NE(error(tinyLlamaCase().graph, 2, 2, 1).find(
                "needs a mixture of experts, and the graph has none"),
            std::string::npos);
  EXPECT_NE(error(m.graph, 2, 0, 1).find("must be >= 1"), std::string::npos);
}

/// tinyMixtralCase with Megatron's load-balancing loss (coefficient 0.1)
/// on every layer.
ModelCase balancedMixtralCase() {
  ModelCase m = tinyMixtralCase();
  m.name = "mixtral-balanced";
  for (Op &op : m.graph.ops)
    if (op.kind == OpKind::Moe)
      op.auxLoss = 0.1;
  return m;
}

// The loss needs every chunk's routing of a micro-batch: chunks, context-
// parallel parts, tensor-parallel ranks, replicas splitting the experts and
// recomputation all give the single-rank run's gradients (whose own
// gradient the finite-difference test of MoeTest checks).
TEST(LoadBalancingLoss, ChunksAndRanksEqualOneRunOfTheWholeBatch) {
  const ModelCase m = balancedMixtralCase();
  struct Case {
    ScheduleKind kind;
    int P, N, D, X, C, T;
    bool recompute;
  };
  for (const Case &c :
       {Case{ScheduleKind::Seq1F1B, 2, 3, 1, 1, 1, 1, false},
        Case{ScheduleKind::Seq1F1BZB, 2, 2, 1, 1, 2, 1, false},
        Case{ScheduleKind::Seq1F1B, 2, 2, 2, 2, 1, 1, false},
        Case{ScheduleKind::Seq1F1B, 1, 2, 1, 1, 1, 2, true},
        Case{ScheduleKind::Seq1F1BInterleaved, 2, 2, 1, 1, 1, 1, false}}) {
    SCOPED_TRACE(std::string(sched::scheduleKindName(c.kind)) +
                 " P=" + std::to_string(c.P) + " N=" + std::to_string(c.N) +
                 " D=" + std::to_string(c.D) + " X=" + std::to_string(c.X) +
                 " C=" + std::to_string(c.C) + " T=" + std::to_string(c.T));
    PipelineOptions o = options(c.kind, c.P, M, c.N, ChunkPolicy::Flops);
    o.dataParallel = c.D;
    o.expertParallel = c.X;
    o.contextParallel = c.C;
    o.tensorParallel = c.T;
    o.recompute = c.recompute;
    Pipeline pipe(m.graph, o, static_cast<int>(m.seq));
    expectMatchesReference(pipe, m, kSteps, kTol);
  }
}

/// A model whose experts read the token embeddings (embedding, moe with a
/// load-balancing loss of 0.25, head, loss), so a test can evaluate the
/// router's probabilities and choices itself; wide router weights and
/// embeddings make routing far from uniform.
struct EmbeddingMoe {
  static constexpr int64_t V = 16, H = 8, E = 4, F = 6, K = 2;
  Graph g;
  int table = 0, router = 0;

  EmbeddingMoe() {
    auto param = [&](const std::string &name, std::vector<int64_t> shape) {
      ParamSpec p{name, shape};
      p.std = name == "router" || name == "embed" ? 1.0 : 0.02;
      g.params.push_back(p);
      return int(g.params.size()) - 1;
    };
    table = param("embed", {V, H});
    router = param("router", {E, H});
    const int gate = param("gate", {E * F, H}), up = param("up", {E * F, H}),
              down = param("down", {E * H, F}), head = param("head", {V, H});
    g.valueFeatures = {H, H, V};
    auto op = [&](OpKind kind, std::vector<int> in, std::vector<int> params,
                  int out) {
      Op o{};
      o.kind = kind;
      o.inputs = std::move(in);
      o.params = std::move(params);
      o.output = out;
      g.ops.push_back(o);
      return &g.ops.back();
    };
    op(OpKind::Embedding, {}, {table}, 0);
    Op *moe = op(OpKind::Moe, {0}, {router, gate, up, down}, 1);
    moe->topK = K;
    moe->normalized = true;
    moe->auxLoss = 0.25;
    op(OpKind::Linear, {1}, {head}, 2);
    op(OpKind::CrossEntropy, {2}, {}, -1);
    g.validate();
  }

  /// Per micro-batch of `batch`: the sums of the tokens' router
  /// probabilities and the routed copies, per expert, in fp64.
  std::vector<std::pair<std::vector<double>, std::vector<double>>>
  routing(const Batch &batch, uint64_t seed) const {
    const std::vector<std::vector<float>> w = initParams(g, seed);
    std::vector<std::pair<std::vector<double>, std::vector<double>>> out;
    for (const std::vector<int32_t> &ids : batch.tokens) {
      std::vector<double> probs(E, 0), counts(E, 0);
      for (int32_t id : ids) {
        std::vector<double> p(E);
        for (int64_t e = 0; e < E; ++e)
          for (int64_t j = 0; j < H; ++j)
            p[e] += double(w[router][e * H + j]) * w[table][id * H + j];
        const double top = *std::max_element(p.begin(), p.end());
        double sum = 0;
        for (double &v : p)
          sum += v = std::exp(v - top);
        for (int64_t e = 0; e < E; ++e) {
          probs[e] += p[e] / sum;
          int64_t above = 0;
          for (double v : p)
            above += v > p[e];
          counts[e] += above < K;
        }
      }
      out.emplace_back(probs, counts);
    }
    return out;
  }
};

// The reported loss is Megatron's formula over each micro-batch's tokens,
// averaged over the micro-batches.
TEST(LoadBalancingLoss, ReportsMegatronsFormula) {
  const EmbeddingMoe model;
  const int64_t E = EmbeddingMoe::E, K = EmbeddingMoe::K;
  const ModelCase m{"embedding-moe", model.g, int(EmbeddingMoe::V), 2, 13};
  PipelineOptions o = options(ScheduleKind::Seq1F1B, 1, M, 3, ChunkPolicy::Even);
  Pipeline pipe(model.g, o, static_cast<int>(m.seq));
  const Batch batch = makeBatch(m, M, 3);
  double expected = 0;
  const double tokens = double(m.batch) * m.seq;
  for (const auto &[probs, counts] : model.routing(batch, o.seed)) {
    double sum = 0;
    for (int64_t e = 0; e < E; ++e)
      sum += probs[e] * counts[e];
    expected += 0.25 * E / (K * tokens * tokens) * sum / M;
  }
  const StepResult r = pipe.step(batch);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_NEAR(r.auxLoss, expected, 1e-5 * expected);
  EXPECT_GT(r.auxLoss, 0.25 * 1.05); // unbalanced routing costs more than 1
}

// The step's expert load: the busiest expert's routed copies over the
// whole batch against an even share, the same however the batch is split
// over chunks, context-parallel ranks, replicas and expert-parallel ranks.
TEST(ExpertLoad, IsTheBusiestExpertOverAnEvenShare) {
  const EmbeddingMoe model;
  const int64_t E = EmbeddingMoe::E;
  const ModelCase m{"embedding-moe", model.g, int(EmbeddingMoe::V), 2, 13};
  const int D = 2;
  const Batch batch = makeBatch(m, D * M, 4);
  std::vector<double> counts(E, 0);
  double total = 0;
  const uint64_t seed =
      options(ScheduleKind::Seq1F1B, 1, M, 1, ChunkPolicy::Even).seed;
  for (const auto &[probs, c] : model.routing(batch, seed))
    for (int64_t e = 0; e < E; ++e) {
      counts[e] += c[e];
      total += c[e];
    }
  const double expected =
      *std::max_element(counts.begin(), counts.end()) * E / total;
  EXPECT_GT(expected, 1.05);
  struct Case {
    int N, C, X;
  };
  for (const Case &c : {Case{1, 1, 1}, Case{3, 1, 1}, Case{2, 2, 1},
                        Case{2, 1, 2}}) {
    SCOPED_TRACE("N=" + std::to_string(c.N) + " C=" + std::to_string(c.C) +
                 " X=" + std::to_string(c.X));
    PipelineOptions o = options(ScheduleKind::Seq1F1B, 1, M, c.N,
                                ChunkPolicy::Even);
    o.dataParallel = D;
    o.contextParallel = c.C;
    o.expertParallel = c.X;
    Pipeline pipe(model.g, o, static_cast<int>(m.seq));
    const StepResult r = pipe.step(batch);
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_NEAR(r.expertLoad, expected, 1e-6 * expected);
  }
  // A model without experts reports none.
  const ModelCase llama = tinyLlamaCase();
  Pipeline dense(llama.graph,
                 options(ScheduleKind::Seq1F1B, 1, M, 2, ChunkPolicy::Even),
                 static_cast<int>(llama.seq));
  const StepResult r = dense.step(makeBatch(llama, M, 1));
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.expertLoad, 0);
}

} // namespace
} // namespace s1f::rt::test
