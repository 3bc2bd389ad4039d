//===- PipelineDataParallelTest.cpp - Replicas equal one full pass --------===//
//
// D = 2 replicas of a P = 2 pipeline, each on M = 2 of a step's 4
// micro-batches: the loss and every gradient equal the single-rank run of
// all 4 (fp32, 1e-5 relative), the losses still agree after AdamW steps, and
// the replicas' parameters stay bitwise the same. Expert parallelism splits
// a mixture of experts' experts over the replicas, with the same result.
//
//===----------------------------------------------------------------------===//

#include "PipelineTestUtil.h"


#include <gtest/gtest.h>


namespace s1f::rt::test {
namespace {

namespace sched = seq1f1b::schedule;
using sched::ScheduleKind;

constexpr double kTol = 1e-5;
constexpr int kSteps = 3, P = 2, D = 2, M = 2;

PipelineOptions replicated(ScheduleKind kind, int chunks) {
  PipelineOptions o = options(kind, P, M, chunks, ChunkPolicy::Flops);
  o.dataParallel = D;
  return o;
}

TEST(DataParallel, ReplicasTogetherEqualOneRunOfTheWholeBatch) {
  for (const ModelCase &m : {tinyGptCase(), tinyLlamaCase()}) {
    std::string error;
    const Reference &ref = cachedReference(m, D * M, kSteps, error);
    ASSERT_TRUE(error.empty()) << error;
    for (auto [kind, chunks] : {std::pair{ScheduleKind::OneFOneB, 1},
                                {ScheduleKind::Seq1F1B, 2},
                                {ScheduleKind::Seq1F1BInterleaved, 2},
                                {ScheduleKind::Seq1F1BZB, 2}}) {
      SCOPED_TRACE(m.name + " " + std::string(sched::scheduleKindName(kind)));
      Pipeline pipe(m.graph, replicated(kind, chunks), static_cast<int>(m.seq));
      expectReferenceSteps(pipe, m, ref, D * M, kTol);
    }
  }
}

TEST(DataParallel, ReplicasMakeTheSameUpdate) {
  // The ranks driven as an MPI job drives them: one per world rank.
  const ModelCase m = tinyLlamaCase();
  auto plan = std::make_shared<const PipelinePlan>(
      m.graph, replicated(ScheduleKind::Seq1F1B, 2), static_cast<int>(m.seq));
  ASSERT_EQ(plan->worldSize(), P * D);
  std::vector<std::unique_ptr<PipelineRank>> ranks;
  for (int g = 0; g < P * D; ++g)
    ranks.push_back(std::make_unique<PipelineRank>(plan, g));
  EXPECT_EQ(ranks[3]->rank(), 1);
  EXPECT_EQ(ranks[3]->replica(), 1);
  for (int step = 0; step < kSteps; ++step) {
    const Batch batch = makeBatch(m, D * M, 7 + step);
    const std::vector<RankStepResult> results = stepRanks(ranks, batch);
    for (const RankStepResult &r : results) {
      ASSERT_TRUE(r.ok) << r.error;
      EXPECT_EQ(r.lossSum, results[0].lossSum); // the same totals everywhere
      EXPECT_EQ(r.tokens, batch.targetTokens());
    }
  }
  for (const ParamSpec &p : m.graph.params)
    for (int r = 0; r < P; ++r)
      if (ranks[r]->holds(p.name)) {
        EXPECT_EQ(ranks[r]->param(p.name), ranks[P + r]->param(p.name))
            << p.name << " on rank " << r;
        EXPECT_EQ(ranks[r]->grad(p.name), ranks[P + r]->grad(p.name))
            << p.name << " on rank " << r;
      }
}

TEST(DataParallel, TheBatchMustHaveEveryReplicasMicroBatches) {
  const ModelCase m = tinyGptCase();
  Pipeline pipe(m.graph, replicated(ScheduleKind::OneFOneB, 1),
                static_cast<int>(m.seq));
  StepResult r = pipe.step(makeBatch(m, M, 1));
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("the plan expects 4 of 11 (2 replicas x 2)"),
            std::string::npos)
      << r.error;
  PipelineOptions bad = replicated(ScheduleKind::OneFOneB, 1);
  bad.dataParallel = 0;
  EXPECT_THROW(Pipeline(m.graph, bad, static_cast<int>(m.seq)),
               std::invalid_argument);
}

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
    std::string error;
    const Reference &ref = cachedReference(m, c.D * M, kSteps, error);
    ASSERT_TRUE(error.empty()) << error;
    PipelineOptions o = options(c.kind, c.P, M, c.N, ChunkPolicy::Flops);
    o.dataParallel = c.D;
    o.expertParallel = c.X;
    o.contextParallel = c.C;
    Pipeline pipe(m.graph, o, static_cast<int>(m.seq));
    expectReferenceSteps(pipe, m, ref, c.D * M, kTol);
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

} // namespace
} // namespace s1f::rt::test
