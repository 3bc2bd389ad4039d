//===- PipelineMemoryTest.cpp - Measured live bytes per rank --------------===//
//
// Prints each rank's peak of saved activations, KV caches and KV-gradient
// buffers for 1F1B-family schedules on one model (docs/runtime.md discusses
// the numbers) and checks the effects Seq1F1B is for: the first rank keeps
// about (P+N-1)/N micro-batches of activations instead of P.
//
//===----------------------------------------------------------------------===//

#include "PipelineTestUtil.h"

#include <gtest/gtest.h>

#include <cstdio>

namespace s1f::rt::test {
namespace {

using seq1f1b::schedule::ScheduleKind;

std::vector<MemoryStats> measure(const ModelCase &m, ScheduleKind kind, int N) {
  const int P = 4, M = 4;
  Pipeline pipe(m.graph, options(kind, P, M, N, ChunkPolicy::Even),
                static_cast<int>(m.seq));
  StepResult r = pipe.step(makeBatch(m, M, 5));
  EXPECT_TRUE(r.ok) << r.error;
  std::printf("%-12s N=%d  rank: activations / KV cache / KV grad (KiB)\n",
              std::string(seq1f1b::schedule::scheduleKindName(kind)).c_str(), N);
  for (size_t rank = 0; rank < r.memory.size(); ++rank) {
    const MemoryStats &s = r.memory[rank];
    std::printf("    %zu: %7.1f / %6.1f / %6.1f   (peak total %7.1f)\n", rank,
                s.peakOf(MemKind::Activations) / 1024.0,
                s.peakOf(MemKind::KvCache) / 1024.0,
                s.peakOf(MemKind::KvGrad) / 1024.0, s.peakTotal / 1024.0);
    // Everything is freed by the end of the step.
    EXPECT_EQ(s.currentTotal(), 0);
  }
  return r.memory;
}

TEST(PipelineMemory, Seq1F1BKeepsFewerActivations) {
  ModelCase m = tinyLlamaCase();
  m.seq = 64;
  std::vector<MemoryStats> oneF = measure(m, ScheduleKind::OneFOneB, 1);
  std::vector<MemoryStats> seq2 = measure(m, ScheduleKind::Seq1F1B, 2);
  std::vector<MemoryStats> seq4 = measure(m, ScheduleKind::Seq1F1B, 4);
  measure(m, ScheduleKind::ZBH1, 1);
  measure(m, ScheduleKind::Seq1F1BZB, 4);
  auto act = [](const MemoryStats &s) { return s.peakOf(MemKind::Activations); };
  auto kv = [](const MemoryStats &s) { return s.peakOf(MemKind::KvCache); };
  // Rank 0: 1F1B holds P = 4 micro-batches; Seq1F1B holds P+N-1 chunks,
  // i.e. 5/2 and 7/4 micro-batches (chunk lengths are equal here).
  EXPECT_NEAR(double(act(seq2[0])) / act(oneF[0]), 5.0 / 8, 0.02);
  EXPECT_NEAR(double(act(seq4[0])) / act(oneF[0]), 7.0 / 16, 0.02);
  // KV caches hold each chunk's rows from its forward to its backward, so
  // they follow the chunks in flight too: 1F1B's 4 whole micro-batches on
  // rank 0 (one attention op, K and V of a sequence: W bytes each), and
  // P+N-1 chunks of W/N for Seq1F1B.
  const int64_t W = kv(oneF[0]) / 4;
  EXPECT_EQ(kv(seq2[0]) * 2, 5 * W);
  EXPECT_EQ(kv(seq4[0]) * 4, 7 * W);
  // A KV-gradient buffer only where chunks share a prefix (N > 1), for one
  // micro-batch at a time. Its peak is chunk N-1's backward: the N-1 earlier
  // chunks' rows, and the chunk's own, which the CPU kernels add into too.
  auto kvGrad = [](const MemoryStats &s) { return s.peakOf(MemKind::KvGrad); };
  EXPECT_EQ(kvGrad(oneF[0]), 0);
  EXPECT_EQ(kvGrad(seq2[0]), W);
  EXPECT_EQ(kvGrad(seq4[0]), W);
}

} // namespace
} // namespace s1f::rt::test
