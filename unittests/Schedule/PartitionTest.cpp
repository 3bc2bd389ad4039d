//===- PartitionTest.cpp - Stage DP, chunk balance, profile fit -----------===//

#include "seq1f1b/Schedule/Partition.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

using namespace seq1f1b::schedule;

namespace {

/// Smallest max-group cost over all ways to cut `costs` into k groups.
double bruteForce(const std::vector<double> &costs, int k, int start = 0) {
  const int n = static_cast<int>(costs.size());
  if (k == 1)
    return std::accumulate(costs.begin() + start, costs.end(), 0.0);
  double best = INFINITY, group = 0;
  for (int end = start + 1; end <= n - (k - 1); ++end) {
    group += costs[end - 1];
    best = std::min(best, std::max(group, bruteForce(costs, k - 1, end)));
  }
  return best;
}

std::vector<double> chunkCosts(const std::vector<int> &lengths,
                               const RangeCost &cost) {
  std::vector<double> out;
  double begin = 0;
  for (int len : lengths) {
    out.push_back(cost(begin, begin + len));
    begin += len;
  }
  return out;
}

void expectEqualCosts(const std::vector<double> &costs, double tolerance) {
  auto [lo, hi] = std::minmax_element(costs.begin(), costs.end());
  EXPECT_LE(*hi / *lo - 1, tolerance);
}

} // namespace

TEST(PartitionTest, StagesMatchBruteForce) {
  unsigned seed = 12345;
  auto random = [&] {
    seed = seed * 1103515245u + 12345u;
    return static_cast<double>((seed >> 16) % 100) + 1;
  };
  for (int n = 1; n <= 9; ++n)
    for (int k = 1; k <= n; ++k)
      for (int trial = 0; trial < 4; ++trial) {
        std::vector<double> costs(n);
        for (double &c : costs)
          c = random();
        Result<StagePartition> p = partitionStages(costs, k);
        ASSERT_TRUE(p.ok()) << p.error;
        ASSERT_EQ(p->boundaries.size(), static_cast<size_t>(k + 1));
        EXPECT_EQ(p->boundaries.front(), 0);
        EXPECT_EQ(p->boundaries.back(), n);
        double worst = 0;
        for (int g = 0; g < k; ++g) {
          ASSERT_LT(p->boundaries[g], p->boundaries[g + 1]);
          worst = std::max(worst, std::accumulate(
                                      costs.begin() + p->boundaries[g],
                                      costs.begin() + p->boundaries[g + 1], 0.0));
        }
        EXPECT_DOUBLE_EQ(worst, p->maxCost);
        EXPECT_DOUBLE_EQ(p->maxCost, bruteForce(costs, k));
      }
}

TEST(PartitionTest, StageErrors) {
  EXPECT_NE(partitionStages({1, 2}, 3).error.find("2 segments into 3"),
            std::string::npos);
  EXPECT_FALSE(partitionStages({1, 2}, 0).ok());
  EXPECT_FALSE(partitionStages({1, -2}, 1).ok());
  Result<StagePartition> p = partitionStages({4, 1, 1, 1, 1}, 2);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->boundaries, (std::vector<int>{0, 1, 5}));
}

TEST(PartitionTest, BalancedChunksHaveEqualCost) {
  // Attention-like cost: token t costs t + 100.
  RangeCost cost = [](double b, double e) {
    return (e * e - b * b) / 2 + 100 * (e - b);
  };
  Result<std::vector<int>> lengths = balanceChunks(8192, 4, cost);
  ASSERT_TRUE(lengths.ok()) << lengths.error;
  EXPECT_EQ(std::accumulate(lengths->begin(), lengths->end(), 0), 8192);
  EXPECT_TRUE(std::is_sorted(lengths->rbegin(), lengths->rend()));
  expectEqualCosts(chunkCosts(*lengths, cost), 1e-3);

  Result<std::vector<int>> aligned = balanceChunks(8192, 4, cost, 128);
  ASSERT_TRUE(aligned.ok());
  EXPECT_EQ(std::accumulate(aligned->begin(), aligned->end(), 0), 8192);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ((*aligned)[i] % 128, 0);
    EXPECT_LE(std::abs((*aligned)[i] - (*lengths)[i]), 128); // nearest ends
  }

  // Uniform cost: equal lengths; N == L: one token each.
  RangeCost flat = [](double b, double e) { return e - b; };
  EXPECT_EQ(*balanceChunks(100, 4, flat), (std::vector<int>{25, 25, 25, 25}));
  EXPECT_EQ(*balanceChunks(3, 3, cost), (std::vector<int>{1, 1, 1}));
}

TEST(PartitionTest, ChunkErrors) {
  RangeCost flat = [](double b, double e) { return e - b; };
  EXPECT_NE(balanceChunks(10, 0, flat).error.find(">= 1"), std::string::npos);
  EXPECT_NE(balanceChunks(3, 4, flat).error.find("3 tokens into 4 chunks"),
            std::string::npos);
  EXPECT_NE(balanceChunks(100, 4, flat, 32).error.find("aligned to 32"),
            std::string::npos);
  EXPECT_FALSE(balanceChunks(10, 2, nullptr).ok());
  EXPECT_FALSE(paperChunkSplit(10, 11, {4096, 32, 128, 16384, 1}).ok());
}

TEST(PartitionTest, PaperSplitFor7B) {
  const TransformerShape shape{4096, 32, 128, 16384, 32};
  Result<std::vector<int>> lengths = paperChunkSplit(32768, 4, shape);
  ASSERT_TRUE(lengths.ok()) << lengths.error;
  const int expected[] = {11024, 8416, 7088, 6240}; // Seq1F1B paper
  for (int i = 0; i < 4; ++i)
    EXPECT_NEAR((*lengths)[i], expected[i], 0.02 * expected[i]) << i;
  EXPECT_EQ(std::accumulate(lengths->begin(), lengths->end(), 0), 32768);
  EXPECT_TRUE(std::is_sorted(lengths->rbegin(), lengths->rend()));
  RangeCost flops = [&](double b, double e) {
    return paperChunkFlops(shape, b, e);
  };
  expectEqualCosts(chunkCosts(*lengths, flops), 0.01);
  // The generic bisection agrees with the closed form.
  Result<std::vector<int>> bisected = balanceChunks(32768, 4, flops);
  ASSERT_TRUE(bisected.ok());
  for (int i = 0; i < 4; ++i)
    EXPECT_NEAR((*bisected)[i], (*lengths)[i], 1);
}

TEST(PartitionTest, ProfileFitRecoversModel) {
  const ChunkCostFit truth{2e-9, 3e-6, 1e-4};
  std::vector<ProfileSample> samples;
  for (double s : {1024.0, 4096.0, 8192.0})
    for (double e : {8192.0, 16384.0, 32768.0})
      samples.push_back({s, e, truth.seconds(s, e)});
  Result<ChunkCostFit> fit = fitChunkCost(samples);
  ASSERT_TRUE(fit.ok()) << fit.error;
  EXPECT_NEAR(fit->a, truth.a, 1e-6 * truth.a);
  EXPECT_NEAR(fit->b, truth.b, 1e-6 * truth.b);
  EXPECT_NEAR(fit->c, truth.c, 1e-6 * truth.c);
  // A fitted model drives the chunk balance.
  Result<std::vector<int>> lengths = balanceChunks(
      32768, 4, [&](double b, double e) { return fit->rangeCost(b, e); });
  ASSERT_TRUE(lengths.ok());
  EXPECT_GT((*lengths)[0], (*lengths)[3]);
}

TEST(PartitionTest, ProfileFitErrors) {
  EXPECT_NE(fitChunkCost({{1, 1, 1}, {2, 2, 2}}).error.find("at least 3"),
            std::string::npos);
  EXPECT_NE(fitChunkCost({{1, 1, 1}, {2, 2, -2}, {3, 3, 3}})
                .error.find("sample 1 has a negative"),
            std::string::npos);
  EXPECT_FALSE(fitChunkCost({{1, 1, 1}, {2, 2, NAN}, {3, 3, 3}}).ok());
  EXPECT_NE(fitChunkCost({{4, 8, 1}, {4, 8, 1.1}, {4, 8, 0.9}})
                .error.find("singular"),
            std::string::npos);
}

TEST(GroupLayers, PiecesGroupByTheirAttentionAndStageCutsSplitThem) {
  // Ops: embedding [0,2), layer 0 = attention half [2,5) (attention at 3,
  // residual add at 4) + MLP half [5,7) (add at 6), layer 1 = [7,10) + [10,12)
  // likewise, head [12,14).
  std::vector<LayerOpRole> roles(14, LayerOpRole::Other);
  roles[3] = roles[8] = LayerOpRole::Attention;
  roles[4] = roles[6] = roles[9] = roles[11] = LayerOpRole::Add;
  using Ranges = std::vector<std::pair<int, int>>;
  EXPECT_EQ(groupLayers({0, 2, 5, 7, 10, 12, 14}, roles, 0, true, true),
            (Ranges{{2, 7}, {7, 12}}));
  // Cut at op 5, inside layer 0: each stage its part.
  EXPECT_EQ(groupLayers({0, 2, 5}, roles, 0, true, false), (Ranges{{2, 5}}));
  EXPECT_EQ(groupLayers({5, 7, 10, 12, 14}, roles, 1, false, true),
            (Ranges{{5, 7}, {7, 12}}));
  // A middle stage keeps its first and last pieces.
  EXPECT_EQ(groupLayers({5, 7, 10}, roles, 1, false, false),
            (Ranges{{5, 7}, {7, 10}}));
}

TEST(GroupLayers, TheHeadIsEveryPieceAfterTheLastAdd) {
  // As above, with the head cut where one activation crosses: final norm
  // [12,13), LM head [13,14), loss [14,15). None of it is a layer, nor is
  // a last stage holding only the head.
  std::vector<LayerOpRole> roles(15, LayerOpRole::Other);
  roles[3] = roles[8] = LayerOpRole::Attention;
  roles[4] = roles[6] = roles[9] = roles[11] = LayerOpRole::Add;
  using Ranges = std::vector<std::pair<int, int>>;
  EXPECT_EQ(groupLayers({0, 2, 5, 7, 10, 12, 13, 14, 15}, roles, 0, true, true),
            (Ranges{{2, 7}, {7, 12}}));
  EXPECT_EQ(groupLayers({10, 12, 13, 14, 15}, roles, 2, false, true),
            (Ranges{{10, 12}}));
  EXPECT_EQ(groupLayers({12, 13, 14, 15}, roles, 2, false, true), Ranges{});
}
