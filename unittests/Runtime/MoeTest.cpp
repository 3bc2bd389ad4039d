//===- MoeTest.cpp - The mixture of experts against fp64 references -------===//
//
// The forward equals a dense evaluation (every expert on every token, the
// top k picked by sorting the softmax); every gradient equals central finite
// differences in fp64, with and without renormalized weights and with the
// load-balancing loss; the fp32 path through a kernel set equals the fp64
// one.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "seq1f1b/runtime/kernel_set.h"
#include "seq1f1b/runtime/moe.h"

#include <numeric>

namespace s1f::rt::moe {
namespace {

using cpu::test::Rng;
using cpu::test::Vec;

struct Weights {
  Vec x, router, gate, up, down;
};

Weights randomWeights(const Dims &d, uint32_t seed) {
  Rng rng(seed);
  // A router scale that spreads the probabilities: no near-ties for the
  // finite differences to flip.
  return {rng.uniform(d.N * d.D), rng.uniform(d.E * d.D, -2, 2),
          rng.uniform(d.E * d.F * d.D), rng.uniform(d.E * d.F * d.D),
          rng.uniform(d.E * d.D * d.F)};
}

/// y by evaluating every expert on every token.
Vec denseReference(const Dims &d, const Weights &w) {
  Vec y(d.N * d.D, 0.0);
  for (int64_t t = 0; t < d.N; ++t) {
    const double *x = &w.x[t * d.D];
    Vec p(d.E), out(d.E * d.D);
    for (int64_t e = 0; e < d.E; ++e) {
      p[e] = std::exp(std::inner_product(x, x + d.D, &w.router[e * d.D], 0.0));
      Vec h(d.F);
      for (int64_t j = 0; j < d.F; ++j) {
        const double *gateRow = &w.gate[(e * d.F + j) * d.D];
        const double *upRow = &w.up[(e * d.F + j) * d.D];
        const double g = std::inner_product(x, x + d.D, gateRow, 0.0);
        const double u = std::inner_product(x, x + d.D, upRow, 0.0);
        h[j] = g / (1 + std::exp(-g)) * u;
      }
      for (int64_t i = 0; i < d.D; ++i)
        out[e * d.D + i] = std::inner_product(
            h.begin(), h.end(), &w.down[(e * d.D + i) * d.F], 0.0);
    }
    const double sum = std::accumulate(p.begin(), p.end(), 0.0);
    for (double &v : p)
      v /= sum;
    std::vector<int64_t> order(d.E);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(),
              [&](int64_t a, int64_t b) { return p[a] > p[b]; });
    double chosen = 0;
    for (int64_t k = 0; k < d.K; ++k)
      chosen += p[order[k]];
    for (int64_t k = 0; k < d.K; ++k) {
      const int64_t e = order[k];
      const double weight = d.normalized ? p[e] / chosen : p[e];
      for (int64_t i = 0; i < d.D; ++i)
        y[t * d.D + i] += weight * out[e * d.D + i];
    }
  }
  return y;
}

Vec run(const Dims &d, const Weights &w) {
  Vec y(d.N * d.D), routing, acts;
  forward(CpuKernels<double>(), d, w.x.data(), w.router.data(), w.gate.data(),
          w.up.data(), w.down.data(), y.data(), routing, acts);
  return y;
}

Dims dims(bool normalized) {
  Dims d;
  d.N = 7;
  d.D = 5;
  d.E = 4;
  d.F = 3;
  d.K = 2;
  d.normalized = normalized;
  return d;
}

class Moe : public ::testing::TestWithParam<bool> {};

TEST_P(Moe, ForwardIsTheDenseEvaluation) {
  const Dims d = dims(GetParam());
  const Weights w = randomWeights(d, 40);
  cpu::test::expectClose(run(d, w), denseReference(d, w), "y", 1e-12, 1e-12);
}

TEST_P(Moe, EveryGradientIsTheFiniteDifference) {
  const Dims d = dims(GetParam());
  Weights w = randomWeights(d, 41);
  const Vec R = Rng(42).uniform(d.N * d.D);
  auto loss = [&] { return cpu::test::dot(R, run(d, w)); };
  Vec y(d.N * d.D), routing, acts;
  forward(CpuKernels<double>(), d, w.x.data(), w.router.data(), w.gate.data(),
          w.up.data(), w.down.data(), y.data(), routing, acts);
  Vec dx(w.x.size()), drouter(w.router.size(), 0.0), dgate(w.gate.size(), 0.0),
      dup(w.up.size(), 0.0), ddown(w.down.size(), 0.0);
  backward(CpuKernels<double>(), d, w.x.data(), w.router.data(), w.gate.data(),
           w.up.data(), w.down.data(), routing.data(), acts.data(), R.data(),
           dx.data(), drouter.data(), dgate.data(), dup.data(), ddown.data());
  cpu::test::expectGradient(w.x, dx, loss, "x");
  cpu::test::expectGradient(w.router, drouter, loss, "router");
  cpu::test::expectGradient(w.gate, dgate, loss, "gate");
  cpu::test::expectGradient(w.up, dup, loss, "up");
  cpu::test::expectGradient(w.down, ddown, loss, "down");
  // The router is really trained: its gradient is not zero.
  EXPECT_GT(*std::max_element(drouter.begin(), drouter.end()), 1e-3);
}

TEST_P(Moe, Fp32KernelSetEqualsFp64) {
  const Dims d = dims(GetParam());
  const Weights w = randomWeights(d, 43);
  const Vec R = Rng(44).uniform(d.N * d.D);
  auto f = [](const Vec &v) { return cpu::test::cast<float>(v); };
  std::vector<float> x = f(w.x), router = f(w.router), gate = f(w.gate),
                     up = f(w.up), down = f(w.down), dy = f(R);
  std::vector<float> y(d.N * d.D), routing, acts, dx(x.size()),
      drouter(router.size(), 0.f),
      dgate(gate.size(), 0.f), dup(up.size(), 0.f), ddown(down.size(), 0.f);
  const KernelSet &k = cpuKernels();
  forward(k, d, x.data(), router.data(), gate.data(), up.data(), down.data(),
          y.data(), routing, acts);
  backward(k, d, x.data(), router.data(), gate.data(), up.data(), down.data(),
           routing.data(), acts.data(), dy.data(), dx.data(), drouter.data(),
           dgate.data(), dup.data(), ddown.data());

  Vec y64(d.N * d.D), routing64, acts64, dx64(w.x.size()),
      drouter64(w.router.size(), 0.0), dgate64(w.gate.size(), 0.0),
      dup64(w.up.size(), 0.0), ddown64(w.down.size(), 0.0);
  CpuKernels<double> k64;
  forward(k64, d, w.x.data(), w.router.data(), w.gate.data(), w.up.data(),
          w.down.data(), y64.data(), routing64, acts64);
  backward(k64, d, w.x.data(), w.router.data(), w.gate.data(), w.up.data(),
           w.down.data(), routing64.data(), acts64.data(), R.data(),
           dx64.data(), drouter64.data(), dgate64.data(), dup64.data(),
           ddown64.data());
  for (auto [a, b, what] :
       {std::tuple{&y, &y64, "y"}, {&dx, &dx64, "dx"},
        {&drouter, &drouter64, "drouter"}, {&dgate, &dgate64, "dgate"},
        {&dup, &dup64, "dup"}, {&ddown, &ddown64, "ddown"}})
    EXPECT_LT(cpu::test::relMaxError(cpu::test::toDouble(*a), *b), 1e-5)
        << what;
}

// Megatron's load-balancing loss: its gradient (probGrad, added to the
// router probabilities' gradient) is the finite difference of R . y + aux,
// the routed copies per expert constant between the evaluations (no
// routing flips over the steps taken).
TEST_P(Moe, LoadBalancingGradientIsTheFiniteDifference) {
  const Dims d = dims(GetParam());
  Weights w = randomWeights(d, 46);
  const Vec R = Rng(47).uniform(d.N * d.D);
  const double coef = 0.3;
  auto loss = [&] {
    Vec y(d.N * d.D), routing, acts;
    forward(CpuKernels<double>(), d, w.x.data(), w.router.data(),
            w.gate.data(), w.up.data(), w.down.data(), y.data(), routing, acts);
    Balance b;
    b.addRoutingSums(d, routing.data());
    return cpu::test::dot(R, y) + b.loss(coef, d.K, double(d.N));
  };
  Vec y(d.N * d.D), routing, acts;
  forward(CpuKernels<double>(), d, w.x.data(), w.router.data(), w.gate.data(),
          w.up.data(), w.down.data(), y.data(), routing, acts);
  Balance b;
  b.addRoutingSums(d, routing.data());
  const std::vector<double> probGrad = b.probGrad(coef, d.K, double(d.N), 1.0);
  Vec dx(w.x.size()), drouter(w.router.size(), 0.0), dgate(w.gate.size(), 0.0),
      dup(w.up.size(), 0.0), ddown(w.down.size(), 0.0);
  backward(CpuKernels<double>(), d, w.x.data(), w.router.data(), w.gate.data(),
           w.up.data(), w.down.data(), routing.data(), acts.data(), R.data(),
           dx.data(), drouter.data(), dgate.data(), dup.data(), ddown.data(),
           {}, {}, probGrad.data());
  cpu::test::expectGradient(w.x, dx, loss, "x");
  cpu::test::expectGradient(w.router, drouter, loss, "router");
}

// With K = E every expert serves every token: unnormalized, the result is
// the probability-weighted sum of all experts; normalized, the same (the
// weights already sum to 1).
TEST(MoeRouting, AllExpertsChosenIgnoresRenormalization) {
  Dims d = dims(false);
  d.K = d.E;
  const Weights w = randomWeights(d, 45);
  Vec plain = run(d, w);
  d.normalized = true;
  cpu::test::expectClose(run(d, w), plain, "y", 1e-12, 1e-12);
}

INSTANTIATE_TEST_SUITE_P(Weights, Moe, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool> &info) {
                           return info.param ? "normalized" : "plain";
                         });

} // namespace
} // namespace s1f::rt::moe
