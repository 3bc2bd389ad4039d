//===- CommTest.cpp - In-process communicator: delivery, deadlines, abort -===//

#include "seq1f1b/runtime/inprocess_comm.h"

#include <gtest/gtest.h>

#include <thread>

namespace s1f::rt {
namespace {

using namespace std::chrono_literals;

TEST(InProcessComm, DeliversByTagInAnyOrder) {
  InProcessWorld world(2, 5s);
  Tag a{MsgKind::Activation, 1, 0, 2}, b{MsgKind::Gradient, 0, 1, 0};
  float x[2] = {1, 2}, y[3] = {3, 4, 5};
  world.comm(0).send(1, a, x, sizeof x);
  world.comm(0).send(1, b, y, sizeof y);
  float ry[3], rx[2];
  world.comm(1).recv(0, b, ry, sizeof ry); // out of send order
  world.comm(1).recv(0, a, rx, sizeof rx);
  EXPECT_EQ(rx[1], 2);
  EXPECT_EQ(ry[2], 5);
}

TEST(InProcessComm, SizeMismatchIsAnError) {
  InProcessWorld world(2, 5s);
  Tag t{MsgKind::Activation, 1, 0, 0};
  float x[2] = {1, 2}, r[3];
  world.comm(0).send(1, t, x, sizeof x);
  EXPECT_THROW(world.comm(1).recv(0, t, r, sizeof r), CommError);
}

TEST(InProcessComm, DeadlineNamesPeerUnitAndTime) {
  InProcessWorld world(2, 100ms);
  float r;
  auto start = std::chrono::steady_clock::now();
  try {
    world.comm(1).recv(0, Tag{MsgKind::Activation, 1, 3, 2}, &r, sizeof r);
    FAIL() << "recv returned";
  } catch (const CommError &e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("rank 1"), std::string::npos) << msg;
    EXPECT_NE(msg.find("from rank 0"), std::string::npos) << msg;
    EXPECT_NE(msg.find("stage 1, micro-batch 3, chunk 2"), std::string::npos)
        << msg;
    EXPECT_NE(msg.find("timed out after 0.1"), std::string::npos) << msg;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

TEST(InProcessComm, AbortWakesWaitersPromptly) {
  InProcessWorld world(3, 30s);
  std::string msg;
  std::thread waiter([&] {
    float r;
    try {
      world.comm(2).recv(1, Tag{MsgKind::Gradient, 0, 0, 0}, &r, sizeof r);
    } catch (const CommError &e) {
      msg = e.what();
    }
  });
  auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(50ms);
  world.comm(0).abort("rank 0 failed: boom");
  waiter.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_NE(msg.find("rank 0 failed: boom"), std::string::npos) << msg;
  EXPECT_NE(msg.find("from rank 1"), std::string::npos) << msg;
}

TEST(InProcessComm, AllReduceSum) {
  InProcessWorld world(4, 5s);
  std::vector<double> out(4);
  std::vector<std::thread> ts;
  for (int r = 0; r < 4; ++r)
    ts.emplace_back([&, r] {
      out[r] = allReduceSum(world.comm(r), r + 0.5, Tag{MsgKind::NormSquare});
    });
  for (auto &t : ts)
    t.join();
  for (double v : out)
    EXPECT_EQ(v, 8.0);
}

TEST(InProcessComm, GatherToRoot) {
  InProcessWorld world(3, 5s);
  std::vector<std::vector<double>> out(3);
  std::vector<std::thread> ts;
  for (int r = 0; r < 3; ++r)
    ts.emplace_back([&, r] {
      out[r] = gatherToRoot(world.comm(r), {double(r), 10.0 + r},
                            Tag{MsgKind::Report});
    });
  for (auto &t : ts)
    t.join();
  EXPECT_EQ(out[0], (std::vector<double>{0, 10, 1, 11, 2, 12}));
  EXPECT_TRUE(out[1].empty());
  EXPECT_TRUE(out[2].empty());
}

} // namespace
} // namespace s1f::rt
