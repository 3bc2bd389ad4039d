//===- PropertyTest.cpp - Every kind over a grid of configs ---------------===//
//
// Every generated schedule (with and without communication) verifies, and
// with unit costs the simulated bubble and in-flight counts match the closed
// forms. Unit-cost convention: F = B = 1 (I = W = 1 for the zero-bubble
// kinds), zero communication cost. The closed forms hold for any B/F ratio
// as long as every unit costs the same; F = B keeps them easy to read.
//
//===----------------------------------------------------------------------===//

#include "seq1f1b/Schedule/Simulate.h"
#include "seq1f1b/Schedule/Verify.h"

#include <gtest/gtest.h>

#include <algorithm>

using namespace seq1f1b::schedule;

namespace {

SimulationModel unitCosts(double f = 1, double b = 1) {
  SimulationModel m;
  m.cost = [f, b](int, int) {
    UnitCost u;
    u.forward = f;
    u.backward = b;
    u.backwardInput = 1;
    u.backwardWeight = 1;
    return u;
  };
  return m;
}

SimulationResult simulate(const Schedule &s, const SimulationModel &m) {
  Result<SimulationResult> r = simulateSchedule(s, m);
  EXPECT_TRUE(r.ok()) << r.error;
  return r.ok() ? *r : SimulationResult{};
}

// A sample of the grid P 1..16, N 1..8, M 1..32 that keeps the edge cases
// (1, primes, M < P, M*N < P) and keeps the suite at a few seconds.
const int kRanks[] = {1, 2, 3, 4, 5, 7, 8, 16};
const int kChunks[] = {1, 2, 3, 4, 8};
const int kMicrobatches[] = {1, 2, 3, 4, 5, 8, 12, 16, 32};

} // namespace

TEST(PropertyTest, EveryGeneratedScheduleVerifies) {
  // All P in 1..16 and N in 1..8; M sampled.
  int checked = 0;
  for (ScheduleKind kind : generatableScheduleKinds())
    for (int p = 1; p <= 16; ++p)
      for (int n = 1; n <= 8; ++n)
        for (int m : kMicrobatches)
          for (int v = 1; v <= 4; ++v) {
            ScheduleConfig c{p, v, m, n, kind};
            if (!validateConfig(c))
              continue;
            Result<Schedule> s = generateSchedule(c);
            ASSERT_TRUE(s.ok()) << s.error;
            std::vector<Diagnostic> d = verifySchedule(*s);
            ASSERT_TRUE(d.empty()) << scheduleKindName(kind) << " P=" << p
                                   << " V=" << v << " M=" << m << " N=" << n
                                   << "\n" << formatDiagnostics(d);
            Result<Schedule> withComm = addCommunication(*s);
            ASSERT_TRUE(withComm.ok()) << withComm.error;
            d = verifySchedule(*withComm);
            ASSERT_TRUE(d.empty()) << scheduleKindName(kind) << " P=" << p
                                   << " V=" << v << " M=" << m << " N=" << n
                                   << " with comm\n" << formatDiagnostics(d);
            ++checked;
          }
  EXPECT_GT(checked, 3500);
}

TEST(PropertyTest, OneFOneBBubbleAndInFlight) {
  for (int p : kRanks)
    for (int m : kMicrobatches)
      for (double b : {1.0, 2.0}) {
        Schedule s = *generateSchedule({p, 1, m, 1, ScheduleKind::OneFOneB});
        SimulationResult r = simulate(s, unitCosts(1, b));
        EXPECT_NEAR(r.bubbleFraction, double(p - 1) / (m + p - 1), 1e-12)
            << "P=" << p << " M=" << m << " B=" << b;
        EXPECT_DOUBLE_EQ(r.makespan, (m + p - 1) * (1 + b));
        for (int rank = 0; rank < p; ++rank)
          EXPECT_EQ(r.ranks[rank].peakInFlight, std::min(p - rank, m));
      }
}

TEST(PropertyTest, Seq1F1BBubbleAndInFlight) {
  for (int p : kRanks)
    for (int n : kChunks)
      for (int m : kMicrobatches) {
        Schedule s = *generateSchedule({p, 1, m, n, ScheduleKind::Seq1F1B});
        SimulationResult r = simulate(s, unitCosts());
        EXPECT_NEAR(r.bubbleFraction, double(p - 1) / (n * m + p - 1), 1e-12)
            << "P=" << p << " M=" << m << " N=" << n;
        for (int rank = 0; rank < p; ++rank)
          EXPECT_EQ(r.ranks[rank].peakInFlight,
                    std::min(p - rank + n - 1, m * n))
              << "P=" << p << " M=" << m << " N=" << n << " rank " << rank;
      }
}

TEST(PropertyTest, ZeroBubbleBeatsOneFOneB) {
  // With F = I = W = 1 (so B = 2), ZB-H1 leaves about a third of 1F1B's
  // idle time: (P-1) vs 3(P-1) time units per rank.
  for (int p : kRanks)
    for (int m : kMicrobatches) {
      if (p == 1)
        continue;
      SimulationResult zb = simulate(
          *generateSchedule({p, 1, m, 1, ScheduleKind::ZBH1}), unitCosts());
      SimulationResult fb =
          simulate(*generateSchedule({p, 1, m, 1, ScheduleKind::OneFOneB}),
                   unitCosts(1, 2));
      EXPECT_LT(zb.bubbleFraction, fb.bubbleFraction) << "P=" << p << " M=" << m;
      if (m >= p) {
        EXPECT_DOUBLE_EQ(zb.makespan, 3 * m + (p - 1))
            << "P=" << p << " M=" << m;
      }
    }
}

TEST(PropertyTest, ZeroBubbleMeetsThePaperBound) {
  // ZB-H1's bubble is (P-1)(F+I-W) per rank when W <= F (Qi et al.), so
  // makespan = M(F+I+W) + (P-1)(F+I-W); here F=1, I=1.5, W=0.5.
  SimulationModel m;
  m.cost = [](int, int) {
    UnitCost u;
    u.forward = 1;
    u.backward = 2;
    u.backwardInput = 1.5;
    u.backwardWeight = 0.5;
    return u;
  };
  for (int p : kRanks)
    for (int mb : kMicrobatches) {
      if (mb < p)
        continue;
      SimulationResult zb =
          simulate(*generateSchedule({p, 1, mb, 1, ScheduleKind::ZBH1}), m);
      EXPECT_DOUBLE_EQ(zb.makespan, mb * 3.0 + (p - 1) * 2.0)
          << "P=" << p << " M=" << mb;
    }
  // The same rule over (mb, chunk) units.
  for (int p : {2, 4, 8})
    for (int n : {2, 4})
      for (int mb : {2, 8}) {
        SimulationResult zb = simulate(
            *generateSchedule({p, 1, mb, n, ScheduleKind::Seq1F1BZB}), m);
        SimulationResult seq = simulate(
            *generateSchedule({p, 1, mb, n, ScheduleKind::Seq1F1B}), m);
        EXPECT_LT(zb.makespan, seq.makespan)
            << "P=" << p << " M=" << mb << " N=" << n;
      }
}

TEST(PropertyTest, InterleavingDividesTheBubble) {
  // With the same work per rank split over V virtual stages (F = B = 1/V
  // per unit), Megatron's bubble is (P-1)/(V*M + P-1); over (mb, chunk)
  // units it becomes (P-1)/(V*M*N + P-1), also when N does not divide P.
  for (int p : {2, 4, 8})
    for (int v = 2; v <= 4; ++v)
      for (int n : {1, 2, 3, 4, 8})
        for (int mb : {1, 2, 4, 8, 16}) {
          ScheduleKind kind = n == 1 ? ScheduleKind::Interleaved1F1B
                                     : ScheduleKind::Seq1F1BInterleaved;
          ScheduleConfig c{p, v, mb, n, kind};
          if (!validateConfig(c))
            continue;
          SimulationResult r =
              simulate(*generateSchedule(c), unitCosts(1.0 / v, 1.0 / v));
          EXPECT_NEAR(r.bubbleFraction,
                      double(p - 1) / (v * mb * n + p - 1), 1e-9)
              << "P=" << p << " V=" << v << " M=" << mb << " N=" << n;
        }
}
