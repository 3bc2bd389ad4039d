//===- CsvTest.cpp - PyTorch-compatible schedule text ---------------------===//

#include "seq1f1b/Schedule/Csv.h"
#include "seq1f1b/Schedule/Verify.h"

#include <gtest/gtest.h>

using namespace seq1f1b::schedule;

TEST(CsvTest, ActionText) {
  EXPECT_EQ(formatAction({ActionKind::Forward, 2, 0}, false), "2F0");
  EXPECT_EQ(formatAction({ActionKind::Backward, 0, 1, 3}, true), "0B1.3");
  EXPECT_EQ(formatAction({ActionKind::SendF, 0, 1, 2, 1}, true), "0SEND_F1.2");
  Result<Action> a = parseAction("1RECV_F1.2");
  ASSERT_TRUE(a.ok()) << a.error;
  EXPECT_EQ(*a, (Action{ActionKind::RecvF, 1, 1, 2}));
  a = parseAction("12W34");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, (Action{ActionKind::BackwardWeight, 12, 34, 0}));
  for (const char *bad : {"F0", "0X0", "0F", "0F1.", "0F1x", "0SEND0"})
    EXPECT_FALSE(parseAction(bad).ok()) << bad;
}

TEST(CsvTest, RoundTripWithCommunication) {
  Result<Schedule> s =
      generateSchedule({3, 2, 3, 2, ScheduleKind::Seq1F1BInterleaved});
  ASSERT_TRUE(s.ok()) << s.error;
  Result<Schedule> comm = addCommunication(*s);
  ASSERT_TRUE(comm.ok());
  std::string text = exportCsv(*comm);
  EXPECT_NE(text.find("SEND_F"), std::string::npos);
  Result<Schedule> back =
      importCsv(text, ScheduleKind::Seq1F1BInterleaved);
  ASSERT_TRUE(back.ok()) << back.error;
  EXPECT_EQ(back->config.ranks, 3);
  EXPECT_EQ(back->config.virtualStages, 2);
  EXPECT_EQ(back->config.microbatches, 3);
  EXPECT_EQ(back->config.chunks, 2);
  EXPECT_EQ(back->config.kind, ScheduleKind::Seq1F1BInterleaved);
  EXPECT_EQ(back->ranks, comm->ranks); // peers are restored too
  EXPECT_EQ(exportCsv(*back), text);
  EXPECT_TRUE(verifySchedule(*back).empty());
}

TEST(CsvTest, ImportsPyTorchComputeOnly) {
  // As torch.distributed.pipelining's _dump_csv writes a compute-only
  // 1F1B: idle time steps are empty cells; we also allow stray spaces and
  // CRLF line ends.
  const char *text = "0F0,0F1,0F2,,0B0,,0B1,,0B2\r\n"
                     ",1F0,1F1,1B0,1F2,1B1,,1B2\r\n"
                     ",,2F0,2B0,2F1,2B1 , 2F2,2B2\r\n\r\n";
  Result<Schedule> s = importCsv(text);
  ASSERT_TRUE(s.ok()) << s.error;
  EXPECT_EQ(s->config.ranks, 3);
  EXPECT_EQ(s->config.virtualStages, 1);
  EXPECT_EQ(s->config.microbatches, 3);
  EXPECT_EQ(s->config.chunks, 1);
  EXPECT_EQ(s->config.kind, ScheduleKind::Custom);
  EXPECT_EQ(s->ranks[1].size(), 6u);
  EXPECT_EQ(s->ranks[2][4], (Action{ActionKind::Forward, 2, 2, 0}));
  EXPECT_TRUE(verifySchedule(*s).empty())
      << formatDiagnostics(verifySchedule(*s));
  EXPECT_EQ(exportCsv(*s), "0F0,0F1,0F2,0B0,0B1,0B2\n"
                           "1F0,1F1,1B0,1F2,1B1,1B2\n"
                           "2F0,2B0,2F1,2B1,2F2,2B2\n");
}

TEST(CsvTest, ImportsZeroBubbleActions) {
  Result<Schedule> s = importCsv("0F0,0I0,0W0\n", ScheduleKind::ZBH1);
  ASSERT_TRUE(s.ok()) << s.error;
  EXPECT_EQ(s->ranks[0][1].kind, ActionKind::BackwardInput);
  EXPECT_TRUE(verifySchedule(*s).empty());
}

TEST(CsvTest, ErrorsNameRowAndColumn) {
  Result<Schedule> s = importCsv("0F0,0F1\n1F0, 1Q1 ,1B0\n");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error.find("row 2, column 2: bad action '1Q1'"),
            std::string::npos)
      << s.error;
  EXPECT_FALSE(importCsv("\n\n").ok());
  // A given kind must fit the inferred config.
  s = importCsv("0F0.0,0F0.1,0B0.1,0B0.0\n", ScheduleKind::OneFOneB);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error.find("does not fit '1f1b'"), std::string::npos) << s.error;
}
