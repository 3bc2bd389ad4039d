//===- OptimizerTest.cpp - AdamW and gradient clipping --------------------===//

#include "TestUtil.h"

#include "seq1f1b/runtime/cpu_kernels.h"

using namespace s1f::rt::cpu;
using namespace s1f::rt::cpu::test;

namespace {

/// Textbook AdamW in fp64 (Loshchilov & Hutter, PyTorch's bias correction).
void referenceAdamW(Vec &p, const Vec &g, Vec &m, Vec &v, int64_t step,
                    const AdamWConfig &c) {
  for (size_t i = 0; i < p.size(); ++i) {
    m[i] = c.beta1 * m[i] + (1 - c.beta1) * g[i];
    v[i] = c.beta2 * v[i] + (1 - c.beta2) * g[i] * g[i];
    const double mHat = m[i] / (1 - std::pow(c.beta1, step));
    const double vHat = v[i] / (1 - std::pow(c.beta2, step));
    p[i] -= c.lr * (mHat / (std::sqrt(vHat) + c.eps) + c.weight_decay * p[i]);
  }
}

TEST(AdamW, Fp32StepsMatchHandComputedFp64) {
  Rng rng(60);
  const int64_t n = 37;
  AdamWConfig cfg;
  cfg.lr = 3e-3;
  cfg.beta1 = 0.9;
  cfg.beta2 = 0.95;
  cfg.eps = 1e-8;
  cfg.weight_decay = 0.1;
  Vec p = rng.uniform(n), m(n, 0.0), v(n, 0.0);
  std::vector<float> pf = cast<float>(p), mf(n, 0.0f), vf(n, 0.0f);
  for (int64_t step = 1; step <= 3; ++step) {
    const Vec g = rng.uniform(n);
    const std::vector<float> gf = cast<float>(g);
    referenceAdamW(p, g, m, v, step, cfg);
    adamw_step(pf.data(), gf.data(), mf.data(), vf.data(), n, step, cfg);
    expectClose(toDouble(pf), p, "param step " + std::to_string(step), 1e-6,
                1e-7);
    expectClose(toDouble(mf), m, "m", 1e-6, 1e-8);
    expectClose(toDouble(vf), v, "v", 1e-6, 1e-9);
  }
}

TEST(AdamW, GradScaleEqualsPrescaledGradient) {
  Rng rng(61);
  const int64_t n = 9;
  AdamWConfig cfg;
  cfg.weight_decay = 0.01;
  const Vec p0 = rng.uniform(n), g = rng.uniform(n);
  Vec p1 = p0, m1(n, 0.0), v1(n, 0.0), p2 = p0, m2(n, 0.0), v2(n, 0.0);
  Vec gScaled = g;
  scale(gScaled.data(), n, 0.25);
  adamw_step(p1.data(), g.data(), m1.data(), v1.data(), n, 1, cfg, 0.25);
  adamw_step(p2.data(), gScaled.data(), m2.data(), v2.data(), n, 1, cfg);
  expectClose(p1, p2, "param", 1e-15, 0);
}

TEST(AdamW, RejectsStepZero) {
  std::vector<float> p(1, 1.0f), g(1, 1.0f), m(1), v(1);
  EXPECT_THROW(
      adamw_step(p.data(), g.data(), m.data(), v.data(), 1, 0, AdamWConfig()),
      std::invalid_argument);
}

TEST(Clip, GlobalNormOverSeveralTensors) {
  Rng rng(62);
  Vec a = rng.uniform(10, -3, 3), b = rng.uniform(7, -3, 3);
  const std::vector<float> af = cast<float>(a);
  const double total = sum_squares(a.data(), 10) + sum_squares(b.data(), 7);
  double expected = 0;
  for (double x : a)
    expected += x * x;
  for (double x : b)
    expected += x * x;
  EXPECT_NEAR(total, expected, 1e-12);
  EXPECT_NEAR(sum_squares(af.data(), 10), sum_squares(a.data(), 10), 1e-5);

  const double norm = std::sqrt(total);
  const double maxNorm = norm / 2;
  const double coef = clip_coefficient(total, maxNorm);
  EXPECT_NEAR(coef, maxNorm / (norm + 1e-6), 1e-15);
  scale(a.data(), 10, coef);
  scale(b.data(), 7, coef);
  EXPECT_NEAR(std::sqrt(sum_squares(a.data(), 10) + sum_squares(b.data(), 7)),
              maxNorm, 1e-6);

  EXPECT_EQ(clip_coefficient(total, 2 * norm), 1.0); // under the limit
  EXPECT_THROW(clip_coefficient(std::nan(""), 1.0), std::invalid_argument);
}

} // namespace
