//===- PipelineContextParallelTest.cpp - Shared chunks equal whole ones ---===//
//
// Context parallelism: C ranks share every chunk's tokens, each running a
// contiguous part and gathering the chunk's K/V rows from the others (and
// summing their K/V gradients). Pipelined runs with C = 2..4, alone and with
// tensor parallelism, replicas, recomputation and the zero-bubble split:
// the loss and every gradient equal the single-rank, full-sequence run
// (fp32, 1e-5 relative), and the losses still agree after AdamW steps.
//
//===----------------------------------------------------------------------===//

#include "PipelineTestUtil.h"

#include <gtest/gtest.h>

namespace s1f::rt::test {
namespace {

namespace sched = seq1f1b::schedule;
using sched::ScheduleKind;

constexpr double kTol = 1e-5;
constexpr int kSteps = 3;

TEST(ContextParallel, PartsTileTheChunk) {
  for (int ranks : {1, 2, 3, 4})
    for (auto [begin, end] : {std::pair{0, 7}, {5, 9}, {3, 14}}) {
      int next = begin;
      for (int r = 0; r < ranks; ++r) {
        const auto [first, last] = contextParallelPart(begin, end, r, ranks);
        EXPECT_EQ(first, next);
        const int len = last - first;
        EXPECT_GE(len, (end - begin) / ranks);
        EXPECT_LE(len, (end - begin + ranks - 1) / ranks);
        next = last;
      }
      EXPECT_EQ(next, end);
    }
}

struct Case {
  ModelCase model;
  ScheduleKind kind;
  int P, N, C, T, D;
  bool recompute;
};

std::string describe(const Case &c) {
  return c.model.name + " " + std::string(sched::scheduleKindName(c.kind)) +
         " P=" + std::to_string(c.P) + " N=" + std::to_string(c.N) +
         " C=" + std::to_string(c.C) + " T=" + std::to_string(c.T) +
         " D=" + std::to_string(c.D) + (c.recompute ? " recompute" : "");
}

TEST(ContextParallel, SharedChunksEqualTheSingleRankRun) {
  constexpr int M = 2;
  const std::vector<Case> cases = {
      // GPT-2 (B = 2, learned positions): each rank's positions.
      {tinyGptCase(), ScheduleKind::Seq1F1B, 2, 2, 2, 1, 1, false},
      {tinyGptCase(), ScheduleKind::OneFOneB, 2, 1, 4, 1, 1, false},
      // Llama (S = 14): uneven chunks and parts.
      {tinyLlamaCase(), ScheduleKind::Seq1F1B, 1, 2, 3, 1, 1, false},
      {tinyLlamaCase(), ScheduleKind::Seq1F1B, 2, 3, 2, 1, 1, true},
      {tinyLlamaCase(), ScheduleKind::Seq1F1BZB, 2, 2, 2, 2, 1, false},
      {tinyLlamaCase(), ScheduleKind::Seq1F1BInterleaved, 2, 2, 2, 1, 2, false},
      {tinyLlamaCase(), ScheduleKind::ZBH1, 2, 1, 2, 2, 2, false},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(describe(c));
    PipelineOptions o = options(c.kind, c.P, M, c.N, ChunkPolicy::Flops);
    o.contextParallel = c.C;
    o.tensorParallel = c.T;
    o.dataParallel = c.D;
    o.recompute = c.recompute;
    Pipeline pipe(c.model.graph, o, static_cast<int>(c.model.seq));
    EXPECT_EQ(pipe.plan().worldSize(), c.P * c.C * c.T * c.D);
    expectMatchesReference(pipe, c.model, kSteps, kTol);
  }
}

TEST(ContextParallel, EachRankKeepsItsPartOfTheActivations) {
  // The same plan with 1 and 2 context-parallel ranks: a rank's peak of
  // activations (not K/V, which every rank gathers) drops by about half.
  const ModelCase m = tinyLlamaCase();
  int64_t peak[2] = {0, 0};
  for (int C : {1, 2}) {
    PipelineOptions o = options(ScheduleKind::Seq1F1B, 2, 2, 2, ChunkPolicy::Even);
    o.contextParallel = C;
    Pipeline pipe(m.graph, o, static_cast<int>(m.seq));
    StepResult r = pipe.step(makeBatch(m, 2, 1));
    ASSERT_TRUE(r.ok) << r.error;
    for (const MemoryStats &s : r.memory)
      peak[C - 1] = std::max(peak[C - 1], s.peakOf(MemKind::Activations));
  }
  EXPECT_LT(peak[1], 0.6 * peak[0]) << peak[1] << " vs " << peak[0];
  EXPECT_GT(peak[1], 0.4 * peak[0]) << peak[1] << " vs " << peak[0];
}

TEST(ContextParallel, TheCacheKeepsARanksPartOfThePrefix) {
  // One stage of 4 layers, 4 even chunks of 4 tokens, one micro-batch: at the
  // last chunk's last layer a rank holds its 1/C of every layer's rows, and
  // the gathered whole prefix of that one layer: (4/C + 1) / 4 of C = 1's.
  LlamaConfig c = tinyLlamaConfig();
  c.layers = 4;
  const ModelCase m{"llama4", buildLlama(c), c.vocab, 1, 16};
  int64_t kv[5] = {};
  for (int C : {1, 2, 4}) {
    PipelineOptions o = options(ScheduleKind::Seq1F1B, 1, 1, 4, ChunkPolicy::Even);
    o.contextParallel = C;
    Pipeline pipe(m.graph, o, static_cast<int>(m.seq));
    StepResult r = pipe.step(makeBatch(m, 1, 5));
    ASSERT_TRUE(r.ok) << r.error;
    kv[C] = r.memory[0].peakOf(MemKind::KvCache);
  }
  EXPECT_EQ(kv[2] * 4, kv[1] * 3);
  EXPECT_EQ(kv[4] * 2, kv[1]);
}

TEST(ContextParallel, EveryChunkNeedsATokenPerRank) {
  const ModelCase m = tinyLlamaCase(); // S = 14
  PipelineOptions o = options(ScheduleKind::Seq1F1B, 1, 1, 4, ChunkPolicy::Even);
  o.contextParallel = 4; // chunks of 4 and 3 tokens
  try {
    Pipeline pipe(m.graph, o, static_cast<int>(m.seq));
    ADD_FAILURE() << "no error";
  } catch (const std::invalid_argument &e) {
    EXPECT_NE(std::string(e.what()).find(
                  "chunk 2 has 3 tokens, fewer than the 4 context-parallel "
                  "ranks that share it"),
              std::string::npos)
        << e.what();
  }
  o.contextParallel = 0;
  EXPECT_THROW(Pipeline(m.graph, o, static_cast<int>(m.seq)),
               std::invalid_argument);
}

} // namespace
} // namespace s1f::rt::test
