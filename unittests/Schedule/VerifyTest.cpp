//===- VerifyTest.cpp - One hand-broken schedule per verifier rule --------===//

#include "seq1f1b/Schedule/Csv.h"
#include "seq1f1b/Schedule/Verify.h"

#include <gtest/gtest.h>

using namespace seq1f1b::schedule;

namespace {

Schedule fromCsv(const std::string &text) {
  Result<Schedule> s = importCsv(text);
  EXPECT_TRUE(s.ok()) << s.error;
  return s.ok() ? *s : Schedule{};
}

/// All diagnostics as one string, for substring checks.
std::string verify(const Schedule &s) {
  return formatDiagnostics(verifySchedule(s));
}

// A valid 1F1B with P=2, M=2, and the same with communication.
const char *kOneFOneB = "0F0,0F1,0B0,0B1\n1F0,1B0,1F1,1B1\n";
const char *kOneFOneBComm =
    "0F0,0SEND_F0,0F1,0SEND_F1,0RECV_B0,0B0,0RECV_B1,0B1\n"
    "1RECV_F0,1F0,1B0,1SEND_B0,1RECV_F1,1F1,1B1,1SEND_B1\n";

} // namespace

TEST(VerifyTest, AcceptsValidSchedules) {
  EXPECT_EQ(verify(fromCsv(kOneFOneB)), "");
  EXPECT_EQ(verify(fromCsv(kOneFOneBComm)), "");
}

TEST(VerifyTest, StageMustLiveOnItsRank) {
  std::string d = verify(fromCsv("0F0,0F1,0B0,0B1,1F0\n1B0,1F1,1B1\n"));
  EXPECT_NE(d.find("rank 0, action 4: 1F0: stage 1 lives on rank 1, not on "
                   "rank 0"),
            std::string::npos)
      << d;
}

TEST(VerifyTest, IndicesInRange) {
  Schedule s = fromCsv(kOneFOneB);
  s.ranks[1][2].microbatch = 7;
  EXPECT_NE(verify(s).find("micro-batch 7 is out of range [0, 2)"),
            std::string::npos);
  s = fromCsv(kOneFOneB);
  s.ranks[0][0].stage = -1;
  EXPECT_NE(verify(s).find("stage -1 is out of range"), std::string::npos);
  s = fromCsv("1RECV_B0,1F0\n");
  EXPECT_NE(verify(s).find("no next stage"), std::string::npos) << verify(s);
}

TEST(VerifyTest, ActionsExactlyOnceAndComplete) {
  std::string dup = verify(fromCsv("0F0,0F1,0B0,0B1,0B1\n1F0,1B0,1F1,1B1\n"));
  EXPECT_NE(dup.find("0B1: duplicate (first at rank 0, action 3)"),
            std::string::npos)
      << dup;
  std::string missing = verify(fromCsv("0F0,0F1,0B0,0B1\n1F0,1B0,1F1\n"));
  EXPECT_NE(missing.find("missing 1B1 (or 1I1 + 1W1)"), std::string::npos)
      << missing;
  std::string noForward = verify(fromCsv("0F0,0B0\n1B0,1F1,1B1\n"));
  EXPECT_NE(noForward.find("missing 1F0"), std::string::npos) << noForward;
  std::string both = verify(fromCsv("0F0,0B0,0I0,0W0\n"));
  EXPECT_NE(both.find("0B0 together with I/W"), std::string::npos) << both;
  std::string noW = verify(fromCsv("0F0,0I0\n"));
  EXPECT_NE(noW.find("missing 0W0: a split backward needs both I and W"),
            std::string::npos)
      << noW;
}

TEST(VerifyTest, ForwardBeforeBackwardAndIBeforeW) {
  std::string fb = verify(fromCsv("0F0,0F1,0B0,0B1\n1B0,1F0,1F1,1B1\n"));
  EXPECT_NE(fb.find("1B0 runs before 1F0 (action 1) on rank 1: a backward "
                    "needs the forward of the same unit"),
            std::string::npos)
      << fb;
  std::string iw = verify(fromCsv("0F0,0W0,0I0\n"));
  EXPECT_NE(iw.find("0W0 runs before 0I0"), std::string::npos) << iw;
}

TEST(VerifyTest, ChunkOrderWithinMicroBatch) {
  std::string fwd = verify(fromCsv("0F0.1,0F0.0,0B0.1,0B0.0\n"));
  EXPECT_NE(fwd.find("forward chunks of a micro-batch must ascend"),
            std::string::npos)
      << fwd;
  std::string bwd = verify(fromCsv("0F0.0,0F0.1,0B0.0,0B0.1\n"));
  EXPECT_NE(bwd.find("0B0.0 runs before 0B0.1 (B or I) (action 3)"),
            std::string::npos)
      << bwd;
  EXPECT_NE(bwd.find("backward chunks of a micro-batch must descend"),
            std::string::npos);
}

TEST(VerifyTest, LocalCrossStageDependencies) {
  // One rank, two virtual stages: stage 1 consumes stage 0's forward.
  std::string d = verify(fromCsv("1F0,0F0,1B0,0B0\n"));
  EXPECT_NE(d.find("1F0 runs before 0F0 (action 1) on rank 0: a forward "
                   "needs the previous stage's forward"),
            std::string::npos)
      << d;
  d = verify(fromCsv("0F0,1F0,0B0,1B0\n"));
  EXPECT_NE(d.find("a backward needs the next stage's backward"),
            std::string::npos)
      << d;
}

TEST(VerifyTest, SendsPairWithRecvs) {
  Schedule s = fromCsv(kOneFOneBComm);
  s.ranks[1].erase(s.ranks[1].begin()); // drop 1RECV_F0
  std::string d = verify(s);
  EXPECT_NE(d.find("0SEND_F0 has no matching 1RECV_F0 on rank 1"),
            std::string::npos)
      << d;
  EXPECT_NE(d.find("1F0: no 1RECV_F0 before it"), std::string::npos) << d;

  s = fromCsv(kOneFOneBComm);
  s.ranks[0].erase(s.ranks[0].begin() + 1); // drop 0SEND_F0
  d = verify(s);
  EXPECT_NE(d.find("0F0: its output goes to rank 1 but there is no SEND_F"),
            std::string::npos)
      << d;
  EXPECT_NE(d.find("1RECV_F0 has no matching 0SEND_F0"), std::string::npos);

  s = fromCsv(kOneFOneBComm);
  s.ranks[0][1].peer = 5;
  EXPECT_NE(verify(s).find("peer is rank 5 but the other stage lives on "
                           "rank 1"),
            std::string::npos);
}

TEST(VerifyTest, SendFollowsItsCompute) {
  Schedule s = fromCsv(kOneFOneBComm);
  std::swap(s.ranks[0][0], s.ranks[0][1]); // 0SEND_F0 before 0F0
  EXPECT_NE(verify(s).find("0SEND_F0 runs before 0F0 (action 1) on rank 0: a "
                           "SEND_F follows the forward"),
            std::string::npos);
}

TEST(VerifyTest, DetectsDeadlockWithoutComm) {
  // Rank 0 waits in B0 for rank 1's B0, which waits behind F1, which needs
  // rank 0's F1, which comes after B0.
  std::string d = verify(fromCsv("0F0,0B0,0F1,0B1\n1F0,1F1,1B0,1B1\n"));
  EXPECT_NE(d.find("deadlock: rank 0 is blocked at 0B0 waiting for 1B0 (B or "
                   "I) on rank 1"),
            std::string::npos)
      << d;
  EXPECT_NE(d.find("deadlock: rank 1 is blocked at 1F1 waiting for 0F1 on "
                   "rank 0"),
            std::string::npos)
      << d;
}

TEST(VerifyTest, DetectsDeadlockOnRecvs) {
  // Each rank waits on a recv that the other sends later.
  std::string d = verify(
      fromCsv("0F0,0SEND_F0,0RECV_B0,0B0,0F1,0SEND_F1,0RECV_B1,0B1\n"
              "1RECV_F0,1F0,1RECV_F1,1F1,1B0,1SEND_B0,1B1,1SEND_B1\n"));
  EXPECT_NE(d.find("rank 0, action 2: deadlock: rank 0 is blocked at 0RECV_B0 "
                   "waiting for 1SEND_B0 on rank 1"),
            std::string::npos)
      << d;
  EXPECT_NE(d.find("rank 1, action 2: deadlock: rank 1 is blocked at 1RECV_F1 "
                   "waiting for 0SEND_F1 on rank 0"),
            std::string::npos)
      << d;
}

TEST(VerifyTest, RejectsBadConfigAndRankCount) {
  Schedule s = fromCsv(kOneFOneB);
  s.ranks.pop_back();
  EXPECT_NE(verify(s).find("1 rank programs but the config says 2 ranks"),
            std::string::npos);
  s.config.ranks = 0;
  EXPECT_NE(verify(s).find("invalid schedule config: ranks (P)"),
            std::string::npos);
}
