//===- ScheduleTest.cpp - Kinds, config validation, generation, comm ------===//

#include "seq1f1b/Schedule/Csv.h"
#include "seq1f1b/Schedule/Schedule.h"
#include "seq1f1b/Schedule/Verify.h"

#include <gtest/gtest.h>

using namespace seq1f1b::schedule;

namespace {

/// A rank program as space-separated action text without the stage, e.g.
/// "F0.0 F0.1 B0.1".
std::string programText(const std::vector<Action> &program, bool chunked) {
  std::string out;
  for (const Action &a : program) {
    std::string t = formatAction(a, chunked);
    out += (out.empty() ? "" : " ") +
           t.substr(std::to_string(a.stage).size());
  }
  return out;
}

Schedule generate(ScheduleKind kind, int p, int m, int n = 1, int v = 1) {
  Result<Schedule> s = generateSchedule({p, v, m, n, kind});
  EXPECT_TRUE(s.ok()) << s.error;
  return s.ok() ? *s : Schedule{};
}

} // namespace

TEST(ScheduleKindTest, NamesRoundTrip) {
  for (ScheduleKind k : generatableScheduleKinds()) {
    Result<ScheduleKind> parsed = parseScheduleKind(scheduleKindName(k));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, k);
  }
  EXPECT_EQ(generatableScheduleKinds().size(), 7u);
  EXPECT_EQ(scheduleKindName(ScheduleKind::Seq1F1BZB), "seq1f1b-zb");
}

TEST(ScheduleKindTest, ParseErrorListsValidNames) {
  Result<ScheduleKind> r = parseScheduleKind("2f2b");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error.find("'2f2b'"), std::string::npos);
  for (const char *name : {"gpipe", "1f1b", "interleaved-1f1b", "seq1f1b",
                           "seq1f1b-interleaved", "zb-h1", "seq1f1b-zb"})
    EXPECT_NE(r.error.find(name), std::string::npos) << name;
  EXPECT_FALSE(parseScheduleKind("custom").ok());
}

TEST(ConfigTest, RejectsBadValuesByName) {
  auto error = [](ScheduleConfig c) { return validateConfig(c).error; };
  EXPECT_NE(error({0, 1, 4, 1, ScheduleKind::OneFOneB}).find("ranks (P)"),
            std::string::npos);
  EXPECT_NE(error({2, 1, 0, 1, ScheduleKind::OneFOneB}).find("microbatches"),
            std::string::npos);
  EXPECT_NE(error({2, 1, 2, 0, ScheduleKind::Seq1F1B}).find("chunks (N)"),
            std::string::npos);
  EXPECT_NE(error({2, 2, 2, 1, ScheduleKind::OneFOneB}).find("got 2"),
            std::string::npos);
  EXPECT_NE(error({2, 1, 2, 1, ScheduleKind::Interleaved1F1B}).find("V) >= 2"),
            std::string::npos);
  EXPECT_NE(error({4, 2, 6, 1, ScheduleKind::Interleaved1F1B}).find("M = 6"),
            std::string::npos);
  EXPECT_NE(error({4, 2, 3, 2, ScheduleKind::Seq1F1BInterleaved}).find("M*N"),
            std::string::npos);
  EXPECT_TRUE(validateConfig({4, 2, 2, 2, ScheduleKind::Seq1F1BInterleaved}));
  EXPECT_NE(error({2, 1, 2, 4, ScheduleKind::OneFOneB}).find("chunks (N)"),
            std::string::npos);
  EXPECT_FALSE(generateSchedule({0, 1, 1, 1, ScheduleKind::GPipe}).ok());
}

TEST(GenerateTest, Seq1F1BWorkedExample) {
  // DESIGN.md: P=4, N=4, M=2, rank 0.
  Schedule s = generate(ScheduleKind::Seq1F1B, 4, 2, 4);
  EXPECT_EQ(programText(s.ranks[0], true),
            "F0.0 F0.1 F0.2 F0.3 F1.0 F1.1 F1.2 B0.3 F1.3 B0.2 B0.1 B0.0 "
            "B1.3 B1.2 B1.1 B1.0");
  // Same rule, w_r = P-r-1+N-1: 5, 4, 3 warmup forwards.
  EXPECT_EQ(programText(s.ranks[1], true),
            "F0.0 F0.1 F0.2 F0.3 F1.0 F1.1 B0.3 F1.2 B0.2 F1.3 B0.1 B0.0 "
            "B1.3 B1.2 B1.1 B1.0");
  EXPECT_EQ(programText(s.ranks[2], true),
            "F0.0 F0.1 F0.2 F0.3 F1.0 B0.3 F1.1 B0.2 F1.2 B0.1 F1.3 B0.0 "
            "B1.3 B1.2 B1.1 B1.0");
  EXPECT_EQ(programText(s.ranks[3], true),
            "F0.0 F0.1 F0.2 F0.3 B0.3 F1.0 B0.2 F1.1 B0.1 F1.2 B0.0 F1.3 "
            "B1.3 B1.2 B1.1 B1.0");
  for (const Action &a : s.ranks[2])
    EXPECT_EQ(a.stage, 2);
}

TEST(GenerateTest, GPipeAndOneFOneB) {
  Schedule g = generate(ScheduleKind::GPipe, 2, 3);
  EXPECT_EQ(programText(g.ranks[1], false), "F0 F1 F2 B0 B1 B2");
  Schedule s = generate(ScheduleKind::OneFOneB, 3, 4);
  EXPECT_EQ(programText(s.ranks[0], false), "F0 F1 F2 B0 F3 B1 B2 B3");
  EXPECT_EQ(programText(s.ranks[1], false), "F0 F1 B0 F2 B1 F3 B2 B3");
  EXPECT_EQ(programText(s.ranks[2], false), "F0 B0 F1 B1 F2 B2 F3 B3");
  // Fewer micro-batches than the warmup: w_r = M.
  Schedule few = generate(ScheduleKind::OneFOneB, 4, 2);
  EXPECT_EQ(programText(few.ranks[0], false), "F0 F1 B0 B1");
}

TEST(GenerateTest, InterleavedFollowsMegatron) {
  // P=2, V=2, M=4: warmup on rank 0 = (V-1)*P + 2*(P-1) = 4.
  Schedule s = generate(ScheduleKind::Interleaved1F1B, 2, 4, 1, 2);
  std::string r0;
  for (const Action &a : s.ranks[0])
    r0 += (r0.empty() ? "" : " ") + formatAction(a, false);
  EXPECT_EQ(r0, "0F0 0F1 2F0 2F1 0F2 2B0 0F3 2B1 2F2 0B0 2F3 0B1 2B2 2B3 "
                "0B2 0B3");
  for (const Action &a : s.ranks[1])
    EXPECT_EQ(a.stage % 2, 1);
}

TEST(GenerateTest, ZeroBubbleSplitsAndDefersW) {
  Schedule s = generate(ScheduleKind::ZBH1, 3, 4);
  // Rank 0 runs W right after I; rank 2 keeps up to 2 W's pending.
  EXPECT_EQ(programText(s.ranks[0], false),
            "F0 F1 F2 I0 W0 F3 I1 W1 I2 W2 I3 W3");
  EXPECT_EQ(programText(s.ranks[2], false),
            "F0 I0 F1 I1 F2 I2 W0 F3 I3 W1 W2 W3");
}

TEST(GenerateTest, SeqInterleavedBackwardChunksDescend) {
  Schedule s = generate(ScheduleKind::Seq1F1BInterleaved, 2, 2, 3, 2);
  for (const auto &program : s.ranks)
    for (size_t i = 0; i < program.size(); ++i)
      for (size_t j = i + 1; j < program.size(); ++j) {
        const Action &a = program[i], &b = program[j];
        if (a.kind == ActionKind::Backward && b.kind == a.kind &&
            a.stage == b.stage && a.microbatch == b.microbatch) {
          EXPECT_GT(a.chunk, b.chunk);
        }
      }
  EXPECT_TRUE(verifySchedule(s).empty()) << formatDiagnostics(verifySchedule(s));
}

TEST(CommTest, InsertsMatchingSendsAndRecvs) {
  Schedule s = generate(ScheduleKind::OneFOneB, 2, 2);
  Result<Schedule> c = addCommunication(s);
  ASSERT_TRUE(c.ok()) << c.error;
  EXPECT_EQ(exportCsv(*c),
            "0F0,0SEND_F0,0F1,0SEND_F1,0RECV_B0,0B0,0RECV_B1,0B1\n"
            "1RECV_F0,1F0,1B0,1SEND_B0,1RECV_F1,1F1,1B1,1SEND_B1\n");
  EXPECT_EQ(c->ranks[0][1].peer, 1);
  EXPECT_EQ(c->ranks[1][0].peer, 0);
  EXPECT_FALSE(addCommunication(*c).ok());
  EXPECT_EQ(exportCsv(removeCommunication(*c)), exportCsv(s));
}

TEST(CommTest, SingleRankHasNoCommunication) {
  for (ScheduleKind k : {ScheduleKind::Seq1F1B, ScheduleKind::Interleaved1F1B}) {
    Schedule s = generate(k, 1, 2, k == ScheduleKind::Seq1F1B ? 2 : 1,
                          k == ScheduleKind::Seq1F1B ? 1 : 3);
    Result<Schedule> c = addCommunication(s);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(exportCsv(*c), exportCsv(s));
  }
}

TEST(CommTest, ZeroBubbleSendsAfterI) {
  Schedule s = generate(ScheduleKind::ZBH1, 2, 1);
  Result<Schedule> c = addCommunication(s);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(exportCsv(*c), "0F0,0SEND_F0,0RECV_B0,0I0,0W0\n"
                           "1RECV_F0,1F0,1I0,1SEND_B0,1W0\n");
}
