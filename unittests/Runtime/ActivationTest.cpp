//===- ActivationTest.cpp - GELU, SiLU, SwiGLU, residual add --------------===//

#include "TestUtil.h"

#include "seq1f1b/runtime/cpu_kernels.h"

using namespace s1f::rt::cpu;
using namespace s1f::rt::cpu::test;

namespace {

constexpr int64_t kN = 11;

/// The backward of an elementwise op at x, fed R, is the gradient of R . f(x)
/// (finite differences).
template <typename Fwd, typename Bwd>
void expectElementwiseGradient(Vec &x, const Vec &R, Fwd fwd, Bwd bwd) {
  auto loss = [&] {
    Vec o(kN);
    fwd(x.data(), o.data());
    return dot(R, o);
  };
  Vec dx(kN);
  bwd(x.data(), R.data(), dx.data());
  expectGradient(x, dx, loss, "x");
}

TEST(Gelu, ForwardAndGradient) {
  Rng rng(30);
  Vec x = rng.uniform(kN, -4, 4);
  const Vec R = rng.uniform(kN);
  Vec y(kN);
  gelu_fwd(x.data(), y.data(), kN);
  for (int64_t i = 0; i < kN; ++i) {
    const double u =
        std::sqrt(2 / M_PI) * (x[i] + 0.044715 * std::pow(x[i], 3));
    EXPECT_NEAR(y[i], 0.5 * x[i] * (1 + std::tanh(u)), 1e-14);
  }
  expectElementwiseGradient(
      x, R, [](const double *in, double *out) { gelu_fwd(in, out, kN); },
      [](const double *in, const double *dy, double *dx) {
        gelu_bwd(in, dy, dx, kN);
      });
}

TEST(GeluErf, ForwardAndGradient) {
  Rng rng(33);
  Vec x = rng.uniform(kN, -4, 4);
  const Vec R = rng.uniform(kN);
  Vec y(kN), tanhForm(kN);
  gelu_erf_fwd(x.data(), y.data(), kN);
  gelu_fwd(x.data(), tanhForm.data(), kN);
  double apart = 0;
  for (int64_t i = 0; i < kN; ++i) {
    // x Phi(x), Phi by the complementary error function.
    EXPECT_NEAR(y[i], x[i] * 0.5 * std::erfc(-x[i] / std::sqrt(2.0)), 1e-14);
    apart = std::max(apart, std::abs(y[i] - tanhForm[i]));
  }
  EXPECT_GT(apart, 1e-5); // not the tanh approximation
  expectElementwiseGradient(
      x, R, [](const double *in, double *out) { gelu_erf_fwd(in, out, kN); },
      [](const double *in, const double *dy, double *dx) {
        gelu_erf_bwd(in, dy, dx, kN);
      });
}

TEST(Geglu, ForwardAndGradients) {
  Rng rng(34);
  Vec gate = rng.uniform(kN, -4, 4), up = rng.uniform(kN, -2, 2);
  const Vec R = rng.uniform(kN);
  Vec y(kN), g(kN);
  geglu_fwd(gate.data(), up.data(), y.data(), kN);
  gelu_fwd(gate.data(), g.data(), kN);
  for (int64_t i = 0; i < kN; ++i)
    EXPECT_NEAR(y[i], g[i] * up[i], 1e-15);
  auto loss = [&] {
    Vec o(kN);
    geglu_fwd(gate.data(), up.data(), o.data(), kN);
    return dot(R, o);
  };
  Vec dgate(kN), dup(kN);
  geglu_bwd(gate.data(), up.data(), R.data(), dgate.data(), dup.data(), kN);
  expectGradient(gate, dgate, loss, "gate");
  expectGradient(up, dup, loss, "up");
}

TEST(Softcap, ForwardAndGradient) {
  Rng rng(35);
  Vec x = rng.uniform(kN, -8, 8);
  const Vec R = rng.uniform(kN);
  Vec y(kN);
  softcap_fwd(x.data(), y.data(), kN, 3.0);
  for (int64_t i = 0; i < kN; ++i) {
    EXPECT_NEAR(y[i], 3 * std::tanh(x[i] / 3), 1e-15);
    EXPECT_LT(std::abs(y[i]), 3.0);
  }
  expectElementwiseGradient(
      x, R,
      [](const double *in, double *out) { softcap_fwd(in, out, kN, 3.0); },
      [](const double *in, const double *dy, double *dx) {
        softcap_bwd(in, dy, dx, kN, 3.0);
      });
}

TEST(Silu, ForwardAndGradient) {
  Rng rng(31);
  Vec x = rng.uniform(kN, -4, 4);
  const Vec R = rng.uniform(kN);
  Vec y(kN);
  silu_fwd(x.data(), y.data(), kN);
  for (int64_t i = 0; i < kN; ++i)
    EXPECT_NEAR(y[i], x[i] / (1 + std::exp(-x[i])), 1e-14);
  expectElementwiseGradient(
      x, R, [](const double *in, double *out) { silu_fwd(in, out, kN); },
      [](const double *in, const double *dy, double *dx) {
        silu_bwd(in, dy, dx, kN);
      });
}

TEST(Swiglu, ForwardAndGradients) {
  Rng rng(32);
  Vec gate = rng.uniform(kN, -4, 4), up = rng.uniform(kN, -2, 2);
  const Vec R = rng.uniform(kN);
  auto forward = [&] {
    Vec o(kN);
    swiglu_fwd(gate.data(), up.data(), o.data(), kN);
    return o;
  };
  const Vec y = forward();
  for (int64_t i = 0; i < kN; ++i)
    EXPECT_NEAR(y[i], gate[i] / (1 + std::exp(-gate[i])) * up[i], 1e-14);
  auto loss = [&] { return dot(R, forward()); };
  Vec dgate(kN), dup(kN);
  swiglu_bwd(gate.data(), up.data(), R.data(), dgate.data(), dup.data(), kN);
  expectGradient(gate, dgate, loss, "gate");
  expectGradient(up, dup, loss, "up");
}

// Qwen2-MoE's shared-expert gate: y = sigmoid(gate . w) value per row.
TEST(SigmoidGate, ForwardAndGradients) {
  constexpr int64_t N = 3, D = 4, H = 5;
  Rng rng(38);
  Vec value = rng.uniform(N * D, -2, 2), gate = rng.uniform(N * H),
      w = rng.uniform(H, -2, 2);
  const Vec R = rng.uniform(N * D);
  auto forward = [&] {
    Vec o(N * D);
    sigmoid_gate_fwd(value.data(), gate.data(), w.data(), o.data(), N, D, H);
    return o;
  };
  const Vec y = forward();
  for (int64_t r = 0; r < N; ++r) {
    double z = 0;
    for (int64_t j = 0; j < H; ++j)
      z += gate[r * H + j] * w[j];
    for (int64_t j = 0; j < D; ++j)
      EXPECT_NEAR(y[r * D + j], value[r * D + j] / (1 + std::exp(-z)), 1e-14);
  }
  auto loss = [&] { return dot(R, forward()); };
  Vec dvalue(N * D), dgate(N * H), dw(H, 0.0);
  sigmoid_gate_bwd(value.data(), gate.data(), w.data(), R.data(),
                   dvalue.data(), dgate.data(), dw.data(), N, D, H);
  expectGradient(value, dvalue, loss, "value");
  expectGradient(gate, dgate, loss, "gate");
  expectGradient(w, dw, loss, "w");
}

TEST(Add, ForwardGradientsAndAccumulate) {
  Rng rng(33);
  Vec a = rng.uniform(kN), b = rng.uniform(kN);
  const Vec R = rng.uniform(kN);
  auto loss = [&] {
    Vec o(kN);
    add_fwd(a.data(), b.data(), o.data(), kN);
    return dot(R, o);
  };
  Vec da(kN), db(kN);
  add_bwd(R.data(), da.data(), db.data(), kN);
  expectGradient(a, da, loss, "a");
  expectGradient(b, db, loss, "b");

  Vec acc = a;
  accumulate(b.data(), acc.data(), kN);
  Vec sum(kN);
  add_fwd(a.data(), b.data(), sum.data(), kN);
  EXPECT_EQ(acc, sum);
}

TEST(Activation, Fp32MatchesFp64) {
  Rng rng(34);
  const int64_t n = 257;
  const Vec x = rng.uniform(n, -6, 6), u = rng.uniform(n, -3, 3);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    std::vector<T> xt = cast<T>(x), ut = cast<T>(u), g(n), s(n), w(n);
    gelu_fwd(xt.data(), g.data(), n);
    silu_fwd(xt.data(), s.data(), n);
    swiglu_fwd(xt.data(), ut.data(), w.data(), n);
    Vec all = toDouble(g);
    all.insert(all.end(), s.begin(), s.end());
    all.insert(all.end(), w.begin(), w.end());
    return all;
  };
  EXPECT_LT(relMaxError(run(float()), run(double())), 1e-6);
}

} // namespace
