//===- LinearNormTest.cpp - Linear, LayerNorm and RMSNorm -----------------===//

#include "TestUtil.h"

#include "seq1f1b/runtime/cpu_kernels.h"

using namespace s1f::rt::cpu;
using namespace s1f::rt::cpu::test;

namespace {

// --- Linear
// -------------------------------------------------------------------

Vec naiveLinear(const Vec &x, const Vec &W, const Vec *bias, int64_t N,
                int64_t in, int64_t out) {
  Vec y(N * out);
  for (int64_t r = 0; r < N; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double s = bias ? (*bias)[o] : 0.0;
      for (int64_t i = 0; i < in; ++i)
        s += x[r * in + i] * W[o * in + i];
      y[r * out + o] = s;
    }
  return y;
}

class LinearTest : public ::testing::TestWithParam<bool> {};

TEST_P(LinearTest, ForwardAndGradients) {
  const bool withBias = GetParam();
  Rng rng(10 + withBias);
  const int64_t N = 5, in = 4, out = 3;
  Vec x = rng.uniform(N * in), W = rng.uniform(out * in), b = rng.uniform(out);
  const Vec R = rng.uniform(N * out);
  auto forward = [&] {
    Vec y(N * out);
    linear_fwd(x.data(), W.data(), withBias ? b.data() : nullptr, y.data(), N,
               in, out);
    return y;
  };
  expectClose(forward(), naiveLinear(x, W, withBias ? &b : nullptr, N, in, out),
              "y", 1e-12, 1e-12);

  auto loss = [&] { return dot(R, forward()); };
  const Vec gW0 = rng.uniform(out * in), gb0 = rng.uniform(out);
  Vec dx(N * in), dW = gW0, db = gb0;
  linear_bwd(x.data(), W.data(), R.data(), dx.data(), dW.data(),
             withBias ? db.data() : nullptr, N, in, out);
  expectGradient(x, dx, loss, "x");
  expectGradient(W, minus(dW, gW0), loss, "W");
  if (withBias)
    expectGradient(b, minus(db, gb0), loss, "b");
}

INSTANTIATE_TEST_SUITE_P(Bias, LinearTest, ::testing::Bool());

TEST(Linear, SplitInputAndWeightGradients) {
  Rng rng(12);
  const int64_t N = 3, in = 4, out = 2;
  const Vec x = rng.uniform(N * in), W = rng.uniform(out * in),
            dy = rng.uniform(N * out);
  Vec dxAll(N * in), dWAll(out * in, 0.0), dxOnly(N * in),
      dWOnly(out * in, 0.0);
  linear_bwd(x.data(), W.data(), dy.data(), dxAll.data(), dWAll.data(),
             static_cast<double *>(nullptr), N, in, out);
  linear_bwd(x.data(), W.data(), dy.data(), dxOnly.data(),
             static_cast<double *>(nullptr), static_cast<double *>(nullptr), N,
             in, out);
  linear_bwd(x.data(), W.data(), dy.data(), static_cast<double *>(nullptr),
             dWOnly.data(), static_cast<double *>(nullptr), N, in, out);
  EXPECT_EQ(dxAll, dxOnly);
  EXPECT_EQ(dWAll, dWOnly);
}

// --- Norms
// --------------------------------------------------------------------

TEST(LayerNorm, ForwardAndGradients) {
  Rng rng(20);
  const int64_t N = 3, D = 6;
  const double eps = 1e-5;
  Vec x = rng.uniform(N * D, -2, 3), gamma = rng.uniform(D, 0.5, 1.5),
      beta = rng.uniform(D);
  const Vec R = rng.uniform(N * D);
  Vec mean(N), rstd(N);
  auto forward = [&] {
    Vec y(N * D);
    layer_norm_fwd(x.data(), gamma.data(), beta.data(), y.data(), mean.data(),
                   rstd.data(), N, D, eps);
    return y;
  };
  const Vec y = forward();
  for (int64_t r = 0; r < N; ++r) {
    double mu = 0, var = 0;
    for (int64_t j = 0; j < D; ++j)
      mu += x[r * D + j] / D;
    for (int64_t j = 0; j < D; ++j)
      var += (x[r * D + j] - mu) * (x[r * D + j] - mu) / D;
    for (int64_t j = 0; j < D; ++j)
      EXPECT_NEAR(y[r * D + j],
                  (x[r * D + j] - mu) / std::sqrt(var + eps) * gamma[j] +
                      beta[j],
                  1e-12);
  }

  auto loss = [&] { return dot(R, forward()); };
  forward(); // mean/rstd of the unperturbed x
  const Vec gg0 = rng.uniform(D), gb0 = rng.uniform(D);
  Vec dx(N * D), dgamma = gg0, dbeta = gb0;
  layer_norm_bwd(x.data(), gamma.data(), mean.data(), rstd.data(), R.data(),
                 dx.data(), dgamma.data(), dbeta.data(), N, D);
  expectGradient(x, dx, loss, "x");
  expectGradient(gamma, minus(dgamma, gg0), loss, "gamma");
  expectGradient(beta, minus(dbeta, gb0), loss, "beta");
}

TEST(RmsNorm, ForwardAndGradients) {
  Rng rng(21);
  const int64_t N = 4, D = 5;
  const double eps = 1e-6;
  Vec x = rng.uniform(N * D, -2, 2), gamma = rng.uniform(D, 0.5, 1.5);
  const Vec R = rng.uniform(N * D);
  Vec rstd(N);
  auto forward = [&] {
    Vec y(N * D);
    rms_norm_fwd(x.data(), gamma.data(), y.data(), rstd.data(), N, D, eps);
    return y;
  };
  const Vec y = forward();
  for (int64_t r = 0; r < N; ++r) {
    double ms = 0;
    for (int64_t j = 0; j < D; ++j)
      ms += x[r * D + j] * x[r * D + j] / D;
    for (int64_t j = 0; j < D; ++j)
      EXPECT_NEAR(y[r * D + j], x[r * D + j] / std::sqrt(ms + eps) * gamma[j],
                  1e-12);
  }

  auto loss = [&] { return dot(R, forward()); };
  forward();
  const Vec gg0 = rng.uniform(D);
  Vec dx(N * D), dgamma = gg0;
  rms_norm_bwd(x.data(), gamma.data(), rstd.data(), R.data(), dx.data(),
               dgamma.data(), N, D);
  expectGradient(x, dx, loss, "x");
  expectGradient(gamma, minus(dgamma, gg0), loss, "gamma");
}

TEST(LinearNorm, Fp32MatchesFp64) {
  Rng rng(22);
  const int64_t N = 6, in = 32, out = 24;
  const Vec x = rng.uniform(N * in, -2, 2), W = rng.uniform(out * in),
            b = rng.uniform(out), gamma = rng.uniform(out, 0.5, 1.5),
            beta = rng.uniform(out);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    std::vector<T> xt = cast<T>(x), Wt = cast<T>(W), bt = cast<T>(b),
                   gt = cast<T>(gamma), bet = cast<T>(beta);
    std::vector<T> h(N * out), y(N * out), z(N * out), mean(N), rstd(N);
    linear_fwd(xt.data(), Wt.data(), bt.data(), h.data(), N, in, out);
    layer_norm_fwd(h.data(), gt.data(), bet.data(), y.data(), mean.data(),
                   rstd.data(), N, out, T(1e-5));
    rms_norm_fwd(h.data(), gt.data(), z.data(), rstd.data(), N, out, T(1e-6));
    Vec all = toDouble(h);
    all.insert(all.end(), y.begin(), y.end());
    all.insert(all.end(), z.begin(), z.end());
    return all;
  };
  EXPECT_LT(relMaxError(run(float()), run(double())), 1e-5);
}

} // namespace
