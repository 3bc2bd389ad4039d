//===- ArenaTest.cpp - A static arena per rank ----------------------------===//
//
// The buffers derived from a schedule hold, at every action, exactly the
// bytes the simulator's memory tracker counts (its peak is their peak), and
// the placement never puts two buffers alive at once on the same bytes.
//
//===----------------------------------------------------------------------===//

#include "seq1f1b/Schedule/Arena.h"

#include <gtest/gtest.h>

using namespace seq1f1b::schedule;

namespace {

/// Unit memory that differs by stage and chunk, with what W keeps, I's
/// output gradients and (without the I/W split) recomputed layers.
SimulationModel model(bool splitsW) {
  SimulationModel m;
  m.cost = [](int, int chunk) {
    UnitCost u;
    u.forward = 1e-3 * (1 + chunk);
    u.backward = 2 * u.forward;
    u.backwardInput = u.backwardWeight = u.forward;
    return u;
  };
  m.chunkMemory = [splitsW](int stage, int chunk) {
    ChunkMemory c;
    c.activations = 1000 + 100 * stage + 37 * chunk;
    c.weightGradInput = 300 + 11 * chunk;
    c.weightGradOutputGrads = splitsW ? 200 + 5 * stage : 0;
    c.kvCache = 64 + 8 * chunk;
    c.recomputed = splitsW ? 0 : 150 + stage;
    return c;
  };
  m.staticMemory = [](int stage) { return StaticMemory{10 * stage, 20, 40}; };
  return m;
}

TEST(Arena, BuffersHoldWhatTheSimulatorCountsAndNeverOverlap) {
  int checked = 0;
  for (ScheduleKind kind : generatableScheduleKinds())
    for (int chunks : {1, 3}) {
      ScheduleConfig c;
      c.kind = kind;
      c.ranks = 3;
      c.virtualStages = isInterleaved(kind) ? 2 : 1;
      c.microbatches = 6;
      c.chunks = isSequenceChunked(kind) ? chunks : 1;
      Result<Schedule> s = generateSchedule(c);
      ASSERT_TRUE(s.ok()) << s.error;
      const SimulationModel m = model(splitsBackward(kind));
      Result<SimulationResult> sim = simulateSchedule(*s, m);
      ASSERT_TRUE(sim.ok()) << sim.error;
      for (int r = 0; r < c.ranks; ++r) {
        SCOPED_TRACE(std::string(scheduleKindName(kind)) + " N=" +
                     std::to_string(c.chunks) + " rank " + std::to_string(r));
        const ArenaPlan plan = planArena(rankBuffers(*s, m, r));
        const RankStats &st = sim->ranks[r];
        EXPECT_EQ(plan.peakLive, st.peakMemory.total() - st.staticBytes);
        EXPECT_GE(plan.bytes, plan.peakLive);
        for (size_t i = 0; i < plan.buffers.size(); ++i)
          for (size_t j = i + 1; j < plan.buffers.size(); ++j) {
            const ArenaBuffer &a = plan.buffers[i], &b = plan.buffers[j];
            if (a.first > b.last || b.first > a.last)
              continue; // never alive together
            EXPECT_TRUE(plan.offsets[i] + a.bytes <= plan.offsets[j] ||
                        plan.offsets[j] + b.bytes <= plan.offsets[i])
                << a.what << " and " << b.what << " overlap";
          }
        ++checked;
      }
    }
  EXPECT_GT(checked, 20);
}

TEST(Arena, EqualBuffersPackExactly) {
  // Intervals of one size: the largest-first, earliest-first placement is
  // the interval colouring, so the arena is the peak.
  std::vector<ArenaBuffer> buffers = {{"a", 8, 0, 3},
                                      {"b", 8, 1, 1},
                                      {"c", 8, 2, 5},
                                      {"d", 8, 4, 6},
                                      {"e", 8, 6, 7}};
  ArenaPlan plan = planArena(buffers);
  EXPECT_EQ(plan.peakLive, 16);
  EXPECT_EQ(plan.bytes, 16);
  // Largest first: "late" at 0, "big" (alive with it) above it, and
  // "small", alive only with "big", in the space below.
  plan = planArena({{"big", 10, 0, 1}, {"small", 6, 0, 0}, {"late", 12, 1, 2}});
  EXPECT_EQ(plan.peakLive, 22);
  EXPECT_EQ(plan.offsets, (std::vector<std::int64_t>{12, 0, 0}));
  EXPECT_EQ(plan.bytes, 22);
}

} // namespace
