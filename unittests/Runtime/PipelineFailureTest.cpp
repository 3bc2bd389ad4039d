//===- PipelineFailureTest.cpp - A dead or hung rank fails the run --------===//

#include "PipelineTestUtil.h"

#include <gtest/gtest.h>

#include <thread>

namespace s1f::rt::test {
namespace {

using namespace std::chrono_literals;
using seq1f1b::schedule::Action;
using seq1f1b::schedule::ActionKind;
using seq1f1b::schedule::ScheduleKind;

bool contains(const std::string &s, const std::string &part) {
  return s.find(part) != std::string::npos;
}

TEST(PipelineFailure, DeadRankFailsEveryonePromptly) {
  ModelCase m = tinyGptCase();
  PipelineOptions o = options(ScheduleKind::Seq1F1B, 4, 3, 2, ChunkPolicy::Even);
  o.recvTimeout = 30s; // the others must not wait for this
  int computes = 0;
  o.beforeAction = [&](int rank, const Action &a) {
    if (rank == 2 && a.kind == ActionKind::Forward && ++computes == 3)
      throw std::runtime_error("injected failure");
  };
  Pipeline pipe(m.graph, o, static_cast<int>(m.seq));
  auto start = std::chrono::steady_clock::now();
  StepResult r = pipe.step(makeBatch(m, 3, 1));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(contains(r.error, "rank 2 failed: injected failure")) << r.error;
  EXPECT_EQ(r.rankErrors[2], "injected failure");
  // A rank that waited on rank 2 says so.
  EXPECT_TRUE(contains(r.rankErrors[1] + r.rankErrors[3], "from rank 2"))
      << r.rankErrors[1] << " | " << r.rankErrors[3];
}

TEST(PipelineFailure, HungRankHitsTheDeadline) {
  ModelCase m = tinyLlamaCase();
  PipelineOptions o = options(ScheduleKind::OneFOneB, 2, 2, 1, ChunkPolicy::Even);
  o.recvTimeout = 200ms;
  bool slept = false;
  o.beforeAction = [&](int rank, const Action &) {
    if (rank == 1 && !slept) {
      slept = true;
      std::this_thread::sleep_for(1500ms);
    }
  };
  Pipeline pipe(m.graph, o, static_cast<int>(m.seq));
  auto start = std::chrono::steady_clock::now();
  StepResult r = pipe.step(makeBatch(m, 2, 1));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(contains(r.error, "rank 0: receive of the gradient for stage 0"))
      << r.error;
  EXPECT_TRUE(contains(r.error, "from rank 1: timed out after 0.2")) << r.error;
}

TEST(PipelineFailure, RejectedConfigurationsThrow) {
  ModelCase m = tinyGptCase();
  // Interleaved needs M*N divisible by P.
  EXPECT_THROW(Pipeline(m.graph,
                        options(ScheduleKind::Interleaved1F1B, 2, 1, 1,
                                ChunkPolicy::Even),
                        static_cast<int>(m.seq)),
               std::invalid_argument);
  // More stages than the graph has cut segments.
  EXPECT_THROW(Pipeline(m.graph,
                        options(ScheduleKind::OneFOneB, 16, 1, 1,
                                ChunkPolicy::Even),
                        static_cast<int>(m.seq)),
               std::invalid_argument);
}

TEST(PipelineFailure, WrongBatchIsAnError) {
  ModelCase m = tinyGptCase();
  Pipeline pipe(m.graph, options(ScheduleKind::OneFOneB, 2, 2, 1,
                                 ChunkPolicy::Even),
                static_cast<int>(m.seq));
  StepResult r = pipe.step(makeBatch(m, 3, 1));
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(contains(r.error, "3 micro-batches")) << r.error;
}

} // namespace
} // namespace s1f::rt::test
