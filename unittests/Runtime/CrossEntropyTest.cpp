//===- CrossEntropyTest.cpp - Loss sums, ignored targets, scaling ---------===//

#include "TestUtil.h"

#include "seq1f1b/runtime/cpu_kernels.h"

using namespace s1f::rt::cpu;
using namespace s1f::rt::cpu::test;

namespace {

TEST(CrossEntropy, SumCountAndScaledGradientWithIgnoredTarget) {
  Rng rng(40);
  const int64_t N = 6, V = 5;
  Vec logits = rng.uniform(N * V, -3, 3);
  std::vector<int32_t> targets = rng.ints(N, 0, V - 1);
  targets[2] = -100; // ignored, like PyTorch's ignore_index
  Vec lse(N);
  const LossSum ls =
      cross_entropy_fwd(logits.data(), targets.data(), lse.data(), N, V);
  EXPECT_EQ(ls.count, N - 1);

  double expected = 0;
  for (int64_t r = 0; r < N; ++r) {
    if (targets[r] < 0)
      continue;
    double z = 0;
    for (int64_t j = 0; j < V; ++j)
      z += std::exp(logits[r * V + j]);
    expected += std::log(z) - logits[r * V + targets[r]];
  }
  EXPECT_NEAR(ls.loss_sum, expected, 1e-12);

  // The gradient of scale * loss_sum, e.g. the mean over the whole batch.
  const double scale = 1.0 / 13;
  auto loss = [&] {
    Vec l(N);
    return scale *
           cross_entropy_fwd(logits.data(), targets.data(), l.data(), N, V)
               .loss_sum;
  };
  Vec dlogits(N * V);
  cross_entropy_bwd(logits.data(), targets.data(), lse.data(), dlogits.data(),
                    N, V, scale);
  expectGradient(logits, dlogits, loss, "logits");
  for (int64_t j = 0; j < V; ++j)
    EXPECT_EQ(dlogits[2 * V + j], 0.0);
}

TEST(CrossEntropy, GradientInPlaceOverLogits) {
  Rng rng(41);
  const int64_t N = 3, V = 4;
  const Vec logits = rng.uniform(N * V, -3, 3);
  const std::vector<int32_t> targets = {1, -1, 3};
  Vec lse(N), separate(N * V), inPlace = logits;
  cross_entropy_fwd(logits.data(), targets.data(), lse.data(), N, V);
  cross_entropy_bwd(logits.data(), targets.data(), lse.data(), separate.data(),
                    N, V, 0.5);
  cross_entropy_bwd(inPlace.data(), targets.data(), lse.data(), inPlace.data(),
                    N, V, 0.5);
  EXPECT_EQ(inPlace, separate);
}

TEST(CrossEntropy, RejectsTargetsPastTheVocabulary) {
  std::vector<float> logits(2 * 3, 0.5f), lse(2);
  const std::vector<int32_t> targets = {0, 3};
  EXPECT_THROW(
      cross_entropy_fwd(logits.data(), targets.data(), lse.data(), 2, 3),
      std::invalid_argument);
}

TEST(CrossEntropy, Fp32MatchesFp64) {
  Rng rng(42);
  const int64_t N = 8, V = 100;
  const Vec logits = rng.uniform(N * V, -8, 8);
  const std::vector<int32_t> targets = rng.ints(N, 0, V - 1);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    std::vector<T> l = cast<T>(logits), lse(N), d(N * V);
    const LossSum ls =
        cross_entropy_fwd(l.data(), targets.data(), lse.data(), N, V);
    cross_entropy_bwd(l.data(), targets.data(), lse.data(), d.data(), N, V,
                      T(1));
    Vec all = toDouble(d);
    all.push_back(ls.loss_sum);
    return all;
  };
  const Vec f = run(float()), d = run(double());
  EXPECT_LT(relMaxError(f, d), 1e-5);
  EXPECT_NEAR(f.back(), d.back(), 1e-5 * std::abs(d.back()));
}

} // namespace
