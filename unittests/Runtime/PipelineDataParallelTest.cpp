//===- PipelineDataParallelTest.cpp - Replicas equal one full pass --------===//
//
// D = 2 replicas of a P = 2 pipeline, each on M = 2 of a step's 4
// micro-batches: the loss and every gradient equal the single-rank run of
// all 4 (fp32, 1e-5 relative), the losses still agree after AdamW steps, and
// the replicas' parameters stay bitwise the same.
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

} // namespace
} // namespace s1f::rt::test
