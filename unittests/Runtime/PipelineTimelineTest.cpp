//===- PipelineTimelineTest.cpp - A step as it ran ------------------------===//
//
// StepResult::timeline records every compute action of a step as it ran, in
// the simulator's terms (so Timeline.h draws a run as it draws a plan). It
// must be each rank's program in order, one action at a time, causal across
// ranks (a stage's forward after the one before it has produced its input,
// a backward after the next stage's), and its live bytes must reach the peak
// the memory tracker reports, ending the step with everything freed.
//
//===----------------------------------------------------------------------===//

#include "PipelineTestUtil.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <tuple>

namespace s1f::rt::test {
namespace {

namespace sched = seq1f1b::schedule;
using sched::ActionKind;

void checkTimeline(sched::ScheduleKind kind, int P, int M, int N) {
  SCOPED_TRACE(std::string(sched::scheduleKindName(kind)));
  ModelCase m = tinyLlamaCase();
  Pipeline pipe(m.graph, options(kind, P, M, N, ChunkPolicy::Even),
                static_cast<int>(m.seq));
  StepResult r = pipe.step(makeBatch(m, M, 3));
  ASSERT_TRUE(r.ok) << r.error;
  const sched::SimulationResult &t = r.timeline;
  ASSERT_EQ(int(t.ranks.size()), P);
  EXPECT_TRUE(t.hasMemory);

  std::map<std::tuple<int, int, int, int>, const sched::TimelineEvent *> at;
  for (int rank = 0; rank < P; ++rank) {
    std::vector<const sched::TimelineEvent *> mine;
    for (const sched::TimelineEvent &e : t.events)
      if (e.rank == rank)
        mine.push_back(&e);
    std::vector<sched::Action> compute;
    for (const sched::Action &a : pipe.schedule().ranks[rank])
      if (!sched::isComm(a.kind))
        compute.push_back(a);
    ASSERT_EQ(mine.size(), compute.size()) << "rank " << rank;
    const int64_t staticBytes = t.ranks[rank].staticBytes;
    EXPECT_GT(staticBytes, 0);
    int64_t peak = 0;
    for (size_t i = 0; i < mine.size(); ++i) {
      const sched::TimelineEvent &e = *mine[i];
      EXPECT_EQ(e.kind, compute[i].kind);
      EXPECT_EQ(e.stage, compute[i].stage);
      EXPECT_EQ(e.microbatch, compute[i].microbatch);
      EXPECT_EQ(e.chunk, compute[i].chunk);
      EXPECT_LE(e.start, e.end);
      EXPECT_LE(e.end, t.makespan);
      if (i > 0) { // one action at a time
        EXPECT_GE(e.start, mine[i - 1]->end);
      }
      EXPECT_GE(e.liveDuring, e.liveAfter);
      EXPECT_GE(e.liveAfter, staticBytes);
      peak = std::max(peak, e.liveDuring);
      at[{int(e.kind), e.stage, e.microbatch, e.chunk}] = &e;
    }
    EXPECT_EQ(peak, staticBytes + r.memory[rank].peakTotal) << "rank " << rank;
    EXPECT_EQ(t.ranks[rank].peakMemory.total(), peak);
    EXPECT_EQ(mine.back()->liveAfter, staticBytes); // everything freed
    EXPECT_GT(t.ranks[rank].bubbleFraction, 0);
    EXPECT_LT(t.ranks[rank].bubbleFraction, 1);
  }
  // Causality: a forward runs after the previous stage's forward of the same
  // unit ended, a backward (or I) after the next stage's.
  const int stages = pipe.schedule().config.numStages();
  int checked = 0;
  for (const auto &[key, e] : at) {
    const auto [kind, stage, mb, chunk] = key;
    const bool fwd = kind == int(ActionKind::Forward);
    const bool bwd = sched::isInputBackward(ActionKind(kind));
    const int from = fwd ? stage - 1 : stage + 1;
    if ((!fwd && !bwd) || from < 0 || from >= stages)
      continue;
    const sched::TimelineEvent *before = nullptr;
    for (int k : {int(ActionKind::Forward), int(ActionKind::Backward),
                  int(ActionKind::BackwardInput)}) {
      if ((k == int(ActionKind::Forward)) != fwd)
        continue;
      if (auto it = at.find({k, from, mb, chunk}); it != at.end())
        before = it->second;
    }
    ASSERT_NE(before, nullptr);
    EXPECT_GE(e->start, before->end);
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

TEST(PipelineTimeline, RecordsEveryActionAsItRan) {
  checkTimeline(sched::ScheduleKind::Seq1F1B, 4, 2, 4);
  checkTimeline(sched::ScheduleKind::OneFOneB, 2, 3, 1);
  checkTimeline(sched::ScheduleKind::Seq1F1BZB, 2, 2, 2);
}

} // namespace
} // namespace s1f::rt::test
