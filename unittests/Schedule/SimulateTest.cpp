//===- SimulateTest.cpp - Timing and memory accounting --------------------===//

#include "seq1f1b/Schedule/Csv.h"
#include "seq1f1b/Schedule/Simulate.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

using namespace seq1f1b::schedule;

namespace {

SimulationModel model(double f, double b) {
  SimulationModel m;
  m.cost = [=](int, int) {
    UnitCost u;
    u.forward = f;
    u.backward = b;
    u.backwardInput = b / 2;
    u.backwardWeight = b / 2;
    u.boundaryBytes = 100;
    return u;
  };
  return m;
}

/// Memory of the hand-computed cases: chunk c saves 10*(c+1) bytes of
/// activations (5 of them needed by W) and a KV cache of 4 (c=0) or 2 (c=1).
void addMemory(SimulationModel &m) {
  m.staticMemory = [](int stage) {
    StaticMemory s;
    s.weights = 100 * (stage + 1);
    s.grads = 200 * (stage + 1);
    s.optimizer = 400 * (stage + 1);
    return s;
  };
  m.chunkMemory = [](int, int chunk) {
    ChunkMemory c;
    c.activations = 10 * (chunk + 1);
    c.weightGradInput = 5;
    c.kvCache = chunk == 0 ? 4 : 2;
    return c;
  };
}

} // namespace

TEST(SimulateTest, CommunicationDelaysCrossRankData) {
  Result<Schedule> s = generateSchedule({2, 1, 1, 1, ScheduleKind::GPipe});
  ASSERT_TRUE(s.ok());
  SimulationModel m = model(1, 2);
  m.comm.latencySeconds = 0.5;
  m.comm.bytesPerSecond = 100; // 100 bytes: 1 s, so 1.5 s per hop
  Result<SimulationResult> r = simulateSchedule(*s, m);
  ASSERT_TRUE(r.ok()) << r.error;
  // rank 0 F [0,1]; rank 1 F [2.5,3.5], B [3.5,5.5]; rank 0 B [7,9].
  EXPECT_DOUBLE_EQ(r->makespan, 9);
  ASSERT_EQ(r->events.size(), 4u);
  EXPECT_DOUBLE_EQ(r->events[1].start, 7);
  EXPECT_DOUBLE_EQ(r->events[2].start, 2.5);
  EXPECT_DOUBLE_EQ(r->ranks[0].busySeconds, 3);
  EXPECT_DOUBLE_EQ(r->ranks[0].bubbleFraction, 1 - 3.0 / 9);
  EXPECT_DOUBLE_EQ(r->bubbleFraction, 1 - 6.0 / 18);
}

TEST(SimulateTest, IgnoresCommActionsAndUsesPerChunkCosts) {
  Result<Schedule> s = generateSchedule({2, 1, 1, 2, ScheduleKind::Seq1F1B});
  ASSERT_TRUE(s.ok());
  SimulationModel m;
  m.cost = [](int, int chunk) {
    UnitCost u;
    u.forward = chunk == 0 ? 1 : 3; // the later chunk attends to more keys
    u.backward = 2 * u.forward;
    return u;
  };
  Result<SimulationResult> plain = simulateSchedule(*s, m);
  Result<SimulationResult> comm = simulateSchedule(*addCommunication(*s), m);
  ASSERT_TRUE(plain.ok() && comm.ok());
  // Critical path: F0.0 F0.1 on both ranks, then B0.1 B0.0 back:
  // rank0 F [0,1][1,4]; rank1 F [1,2][4,7], B0.1 [7,13], B0.0 [13,15];
  // rank0 B0.1 [13,19], B0.0 [19,21].
  EXPECT_DOUBLE_EQ(plain->makespan, 21);
  EXPECT_DOUBLE_EQ(comm->makespan, 21);
  EXPECT_EQ(comm->events.size(), plain->events.size());
}

TEST(SimulateTest, MemoryOfSeq1F1BByHand) {
  // P=2, M=2, N=2. Rank 0: F0.0 F0.1 F1.0 B0.1 F1.1 B0.0 B1.1 B1.0.
  // Live (act, kv, kvgrad): F0.0 (10,4,0) F0.1 (30,6,0) F1.0 (40,10,0)
  // B0.1 allocates the KV-grad buffer (KV of chunk 0 = 4): (40,10,4) = 54,
  // the peak; it frees chunk 1: (20,8,4); F1.1 (40,10,4) ties; ...
  Result<Schedule> s = generateSchedule({2, 1, 2, 2, ScheduleKind::Seq1F1B});
  ASSERT_TRUE(s.ok());
  SimulationModel m = model(1, 1);
  addMemory(m);
  Result<SimulationResult> r = simulateSchedule(*s, m);
  ASSERT_TRUE(r.ok()) << r.error;
  const MemoryBreakdown &p = r->ranks[0].peakMemory;
  EXPECT_EQ(p.weights, 100);
  EXPECT_EQ(p.grads, 200);
  EXPECT_EQ(p.optimizer, 400);
  EXPECT_EQ(p.activations, 40);
  EXPECT_EQ(p.kvCache, 10);
  EXPECT_EQ(p.kvGrad, 4);
  EXPECT_EQ(p.total(), 754);
  EXPECT_EQ(r->ranks[0].peakInFlight, 3);

  // The live bytes of each action (what the timeline's memory strips draw):
  // rank 0 in program order, during / after, static 700 included. B0.0
  // frees chunk 0 and the KV-grad buffer (18), B1.1 allocates it again.
  EXPECT_TRUE(r->hasMemory);
  EXPECT_EQ(r->ranks[0].staticBytes, 700);
  std::vector<std::pair<std::int64_t, std::int64_t>> live;
  for (const TimelineEvent &e : r->events)
    if (e.rank == 0)
      live.push_back({e.liveDuring, e.liveAfter});
  const std::vector<std::pair<std::int64_t, std::int64_t>> want = {
      {714, 714}, {736, 736}, {750, 750}, {754, 732},  // F0.0 F0.1 F1.0 B0.1
      {754, 754}, {754, 736}, {740, 718}, {718, 700}}; // F1.1 B0.0 B1.1 B1.0
  EXPECT_EQ(live, want);
}

TEST(SimulateTest, MemoryOfZeroBubbleSplitByHand) {
  // seq1f1b-zb, P=2, M=2, N=2. Rank 1 (W deferred by 1):
  //   F0.0 F0.1 I0.1 F1.0 I0.0 W0.1 F1.1 I1.1 W0.0 I1.0 W1.1 W1.0
  // I frees activations except the 5 bytes W needs; W frees those.
  // Live (act, kv, kvgrad): F0.0 (10,4,0) F0.1 (30,6,0) I0.1 (30,6,4)
  // -> (15,4,4); F1.0 (25,8,4); I0.0 -> (20,4,0); W0.1 (15,4,0);
  // F1.1 (35,6,0); I1.1 allocates (35,6,4) = 45, the peak.
  Result<Schedule> s =
      generateSchedule({2, 1, 2, 2, ScheduleKind::Seq1F1BZB});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(exportCsv(*s).substr(exportCsv(*s).find('\n') + 1),
            "1F0.0,1F0.1,1I0.1,1F1.0,1I0.0,1W0.1,1F1.1,1I1.1,1W0.0,1I1.0,"
            "1W1.1,1W1.0\n");
  SimulationModel m = model(1, 2);
  addMemory(m);
  Result<SimulationResult> r = simulateSchedule(*s, m);
  ASSERT_TRUE(r.ok()) << r.error;
  const MemoryBreakdown &p = r->ranks[1].peakMemory;
  EXPECT_EQ(p.weights, 200);
  EXPECT_EQ(p.grads, 400);
  EXPECT_EQ(p.optimizer, 800);
  EXPECT_EQ(p.activations, 35);
  EXPECT_EQ(p.kvCache, 6);
  EXPECT_EQ(p.kvGrad, 4);
  EXPECT_EQ(r->ranks[1].peakInFlight, 2);
}

TEST(SimulateTest, RecomputedBytesLiveOnlyDuringTheBackward) {
  // The Seq1F1B case above with 7 bytes recomputed by every B: rank 0's
  // F-side peak stays 54 (after F1.0), but B0.1 now holds (47,10,4) = 61,
  // and B0.0, after F1.1 (40,10,4), holds 47 + 10 + 4 = 61 too.
  Result<Schedule> s = generateSchedule({2, 1, 2, 2, ScheduleKind::Seq1F1B});
  ASSERT_TRUE(s.ok());
  SimulationModel m = model(1, 1);
  addMemory(m);
  auto plain = m.chunkMemory;
  m.chunkMemory = [plain](int stage, int chunk) {
    ChunkMemory c = plain(stage, chunk);
    c.recomputed = 7;
    return c;
  };
  Result<SimulationResult> r = simulateSchedule(*s, m);
  ASSERT_TRUE(r.ok()) << r.error;
  const MemoryBreakdown &p = r->ranks[0].peakMemory;
  EXPECT_EQ(p.activations, 47);
  EXPECT_EQ(p.kvCache, 10);
  EXPECT_EQ(p.kvGrad, 4);
  m.chunkMemory = [plain](int stage, int chunk) {
    ChunkMemory c = plain(stage, chunk);
    c.recomputed = -1;
    return c;
  };
  EXPECT_NE(simulateSchedule(*s, m).error.find("recomputed >= 0"),
            std::string::npos);
}

TEST(SimulateTest, RejectsBadInput) {
  Result<Schedule> s = generateSchedule({2, 1, 2, 1, ScheduleKind::OneFOneB});
  ASSERT_TRUE(s.ok());
  EXPECT_NE(simulateSchedule(*s, SimulationModel{}).error.find("no cost"),
            std::string::npos);
  SimulationModel m = model(-1, 1);
  EXPECT_NE(simulateSchedule(*s, m).error.find("negative or not finite"),
            std::string::npos);
  m = model(1, 1);
  m.chunkMemory = [](int, int) {
    ChunkMemory c;
    c.activations = 1;
    c.weightGradInput = 2;
    return c;
  };
  EXPECT_NE(simulateSchedule(*s, m).error.find("weightGradInput <= "),
            std::string::npos);
  Schedule stuck = *importCsv("0F0,0B0,0F1,0B1\n1F0,1F1,1B0,1B1\n");
  Result<SimulationResult> r = simulateSchedule(stuck, model(1, 1));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error.find("cannot run to completion"), std::string::npos);
}
