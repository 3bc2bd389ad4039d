//===- RopeTest.cpp - Rotary embedding at absolute chunk positions --------===//

#include "TestUtil.h"

#include "seq1f1b/runtime/cpu_kernels.h"

using namespace s1f::rt::cpu;
using namespace s1f::rt::cpu::test;
using s1f::rt::RopeScaling;
using s1f::rt::ropeInvFreq;

namespace {

/// Hugging Face's formulation: x * cos(emb) + rotate_half(x) * sin(emb) with
/// emb = cat(freqs, freqs) and rotate_half(x) = cat(-x2, x1); with partial
/// rotary (GPT-NeoX) on the first `rotary` dimensions of each head, freqs
/// over `rotary`, the rest passed through (cat(x_rot, x_pass)).
Vec hfRope(const Vec &x, int64_t B, int64_t S, int64_t H, int64_t hd,
           int64_t start, double theta, int64_t rotary = 0) {
  Vec y(x.size());
  const int64_t r = rotary ? rotary : hd, half = r / 2;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s < S; ++s)
      for (int64_t h = 0; h < H; ++h) {
        const double *xh = &x[((b * S + s) * H + h) * hd];
        double *yh = &y[((b * S + s) * H + h) * hd];
        for (int64_t j = 0; j < hd; ++j) {
          if (j >= r) {
            yh[j] = xh[j];
            continue;
          }
          const double invFreq = 1.0 / std::pow(theta, 2.0 * (j % half) / r);
          const double emb = (start + s) * invFreq;
          const double rot = j < half ? -xh[j + half] : xh[j - half];
          yh[j] = xh[j] * std::cos(emb) + rot * std::sin(emb);
        }
      }
  return y;
}

constexpr int64_t B = 2, S = 3, H = 2, hd = 6;
constexpr double kTheta = 100.0;

TEST(Rope, MatchesHuggingFaceAtNonZeroStart) {
  Rng rng(50);
  const int64_t start = 7;
  const Vec x = rng.uniform(B * S * H * hd);
  Vec y(x.size());
  rope_fwd(x.data(), y.data(), B, S, H, hd, start, kTheta);
  expectClose(y, hfRope(x, B, S, H, hd, start, kTheta), "y", 1e-12, 1e-14);

  Vec inPlace = x;
  rope_fwd(inPlace.data(), inPlace.data(), B, S, H, hd, start, kTheta);
  EXPECT_EQ(inPlace, y);
}

TEST(Rope, GradientAtNonZeroStart) {
  Rng rng(51);
  const int64_t start = 5;
  Vec x = rng.uniform(B * S * H * hd);
  const Vec R = rng.uniform(x.size());
  auto loss = [&] {
    Vec y(x.size());
    rope_fwd(x.data(), y.data(), B, S, H, hd, start, kTheta);
    return dot(R, y);
  };
  Vec dx(x.size());
  rope_bwd(R.data(), dx.data(), B, S, H, hd, start, kTheta);
  expectGradient(x, dx, loss, "x");
}

TEST(Rope, PartialRotaryTurnsTheFirstDimensionsOnly) {
  Rng rng(54);
  const int64_t hd8 = 8, start = 11;
  Vec x = rng.uniform(B * S * H * hd8);
  for (int64_t rotary : {2, 4}) {
    Vec y(x.size());
    rope_fwd(x.data(), y.data(), B, S, H, hd8, start, kTheta, rotary);
    expectClose(y, hfRope(x, B, S, H, hd8, start, kTheta, rotary), "y", 1e-12,
                1e-14);
    EXPECT_NE(y, hfRope(x, B, S, H, hd8, start, kTheta)); // not the full one
    Vec inPlace = x;
    rope_fwd(inPlace.data(), inPlace.data(), B, S, H, hd8, start, kTheta,
             rotary);
    EXPECT_EQ(inPlace, y);

    const Vec R = rng.uniform(x.size());
    auto loss = [&] {
      Vec o(x.size());
      rope_fwd(x.data(), o.data(), B, S, H, hd8, start, kTheta, rotary);
      return dot(R, o);
    };
    Vec dx(x.size());
    rope_bwd(R.data(), dx.data(), B, S, H, hd8, start, kTheta, rotary);
    expectGradient(x, dx, loss, "x");
  }
  EXPECT_THROW(rope_fwd(x.data(), x.data(), B, S, H, hd8, 0, kTheta, 3),
               std::invalid_argument);
  EXPECT_THROW(rope_fwd(x.data(), x.data(), B, S, H, hd8, 0, kTheta, 10),
               std::invalid_argument);
}

TEST(Rope, LinearScalingInterpolatesPositions) {
  // Frequencies divided by f turn position p as plain RoPE turns p / f.
  Rng rng(55);
  const Vec x = rng.uniform(H * hd);
  const RopeScaling linear{4.0};
  for (int64_t p : {0, 3, 12, 1000}) {
    Vec scaled(x.size()), plain(x.size());
    rope_fwd(x.data(), scaled.data(), 1, 1, H, hd, p, kTheta, 0, linear);
    std::vector<double> at(x.size());
    for (int64_t h = 0; h < H; ++h)
      for (int64_t j = 0; j < hd; ++j) {
        const int64_t half = hd / 2, i = j % half;
        const double angle = p / 4.0 * std::pow(kTheta, -2.0 * i / hd);
        const double *xh = &x[h * hd];
        at[h * hd + j] = xh[j] * std::cos(angle) +
                         (j < half ? -xh[j + half] : xh[j - half]) *
                             std::sin(angle);
      }
    expectClose(scaled, at, "linear", 1e-12, 1e-14);
  }
}

TEST(Rope, Llama3ScalingKeepsDividesAndBlendsByWavelength) {
  // Head of 8 at theta 1e4: wavelengths 2 pi x {1, 10, 100, 1000}. With an
  // original context of 128 and band factors 1 and 16, the first (6.3 <
  // 128 / 16) is kept, the last two (> 128) are divided by 8, and the
  // second is blended: smooth = (128 / 62.8 - 1) / 15.
  const RopeScaling s = RopeScaling::llama3(8.0, 1.0, 16.0, 128.0);
  const double plain[4] = {1, 0.1, 0.01, 0.001};
  EXPECT_DOUBLE_EQ(ropeInvFreq(0, 8, 1e4, s), plain[0]);
  EXPECT_DOUBLE_EQ(ropeInvFreq(2, 8, 1e4, s), plain[2] / 8);
  EXPECT_DOUBLE_EQ(ropeInvFreq(3, 8, 1e4, s), plain[3] / 8);
  const double smooth = (128 / (2 * M_PI / plain[1]) - 1) / 15;
  EXPECT_NEAR(ropeInvFreq(1, 8, 1e4, s),
              (1 - smooth) * plain[1] / 8 + smooth * plain[1], 1e-15);
  // The kernel turns by these frequencies: its gradient is its transpose.
  Rng rng(56);
  Vec x = rng.uniform(B * S * H * 8);
  const Vec R = rng.uniform(x.size());
  auto loss = [&] {
    Vec o(x.size());
    rope_fwd(x.data(), o.data(), B, S, H, 8, 100, 1e4, 0, s);
    return dot(R, o);
  };
  Vec dx(x.size());
  rope_bwd(R.data(), dx.data(), B, S, H, 8, 100, 1e4, 0, s);
  expectGradient(x, dx, loss, "x");
}

TEST(Rope, InterleavedTurnsAdjacentPairs) {
  // GLM's rotate_half_llm: frequency i turns dimensions 2i and 2i + 1 of the
  // first `rotary`; the rest pass. The backward is the transpose.
  Rng rng(58);
  const int64_t head = 10, turned = 6;
  RopeScaling s;
  s.interleaved = true;
  Vec x = rng.uniform(B * S * H * head);
  Vec y(x.size());
  rope_fwd(x.data(), y.data(), B, S, H, head, 7, kTheta, turned, s);
  for (int64_t t = 0; t < B * S; ++t)
    for (int64_t h = 0; h < H; ++h) {
      const double pos = 7 + t % S;
      const double *xh = &x[(t * H + h) * head];
      const double *yh = &y[(t * H + h) * head];
      for (int64_t i = 0; i < turned / 2; ++i) {
        const double a = pos * std::pow(kTheta, -2.0 * i / turned);
        const double x0 = xh[2 * i], x1 = xh[2 * i + 1];
        EXPECT_NEAR(yh[2 * i], x0 * std::cos(a) - x1 * std::sin(a), 1e-14);
        EXPECT_NEAR(yh[2 * i + 1], x1 * std::cos(a) + x0 * std::sin(a), 1e-14);
      }
      for (int64_t j = turned; j < head; ++j)
        EXPECT_EQ(yh[j], xh[j]);
    }
  const Vec R = rng.uniform(x.size());
  auto loss = [&] {
    Vec o(x.size());
    rope_fwd(x.data(), o.data(), B, S, H, head, 7, kTheta, turned, s);
    return dot(R, o);
  };
  Vec dx(x.size());
  rope_bwd(R.data(), dx.data(), B, S, H, head, 7, kTheta, turned, s);
  expectGradient(x, dx, loss, "x");
}

TEST(Rope, YarnScalingRampsOverTheFrequencyIndex) {
  // 16 rotary dimensions at theta 1e4 over an original context of 256: the
  // frequency turning 32 times sits at index 16 ln(256 / 64 pi) / (2 ln 1e4)
  // = 0.21 (floored: 0), the one turning once at 3.22 (ceiled: 4). So
  // frequency 0 is kept, 4 and above are divided by the factor, and 1 to 3
  // are blended by the ramp i / 4.
  const RopeScaling s = RopeScaling::yarn(4.0, 32.0, 1.0, 256.0, 1.0);
  for (int64_t i = 0; i < 8; ++i) {
    const double plain = std::pow(1e4, -2.0 * i / 16);
    const double ramp = std::min(i / 4.0, 1.0);
    EXPECT_NEAR(ropeInvFreq(i, 16, 1e4, s),
                plain * (1 - ramp) + plain / 4 * ramp, 1e-15 * plain)
        << "frequency " << i;
  }
}

TEST(Rope, LongRopeDividesEachFrequencyByItsFactor) {
  const RopeScaling s = RopeScaling::longrope({1.0, 1.5, 4.0}, 1.19);
  for (int64_t i = 0; i < 3; ++i)
    EXPECT_DOUBLE_EQ(ropeInvFreq(i, 6, 1e4, s),
                     std::pow(1e4, -2.0 * i / 6) / s.factors[i]);
  EXPECT_DOUBLE_EQ(s.attentionFactor, 1.19);
  EXPECT_THROW(RopeScaling::longrope(
                   std::vector<double>(RopeScaling::kMaxFactors + 1, 1.0), 1),
               std::invalid_argument);
}

TEST(Rope, YarnAttentionFactorScalesTheRotatedDimensionsOnly) {
  // Heads of 20, 16 of them turned: the turned dimensions are the unscaled
  // rotation times the factor, the last 4 pass through; the backward is the
  // forward's transpose.
  Rng rng(57);
  const int64_t head = 20, turned = 16;
  const RopeScaling scaled = RopeScaling::yarn(4.0, 32.0, 1.0, 256.0, 1.25);
  RopeScaling unscaled = scaled;
  unscaled.attentionFactor = 1;
  Vec x = rng.uniform(B * S * H * head);
  Vec y(x.size()), plain(x.size());
  rope_fwd(x.data(), y.data(), B, S, H, head, 300, 1e4, turned, scaled);
  rope_fwd(x.data(), plain.data(), B, S, H, head, 300, 1e4, turned, unscaled);
  for (size_t j = 0; j < x.size(); ++j) {
    const double want = j % head < turned ? 1.25 * plain[j] : x[j];
    EXPECT_NEAR(y[j], want, 1e-14) << j;
  }
  const Vec R = rng.uniform(x.size());
  auto loss = [&] {
    Vec o(x.size());
    rope_fwd(x.data(), o.data(), B, S, H, head, 300, 1e4, turned, scaled);
    return dot(R, o);
  };
  Vec dx(x.size());
  rope_bwd(R.data(), dx.data(), B, S, H, head, 300, 1e4, turned, scaled);
  expectGradient(x, dx, loss, "x");
}

TEST(Rope, ChunkAtItsStartEqualsTheFullSequenceSlice) {
  Rng rng(52);
  const int64_t Sfull = 9, a = 4, len = 3, Bc = 1;
  const int64_t row = H * hd;
  const Vec x = rng.uniform(Bc * Sfull * row);
  Vec full(x.size());
  rope_fwd(x.data(), full.data(), Bc, Sfull, H, hd, 0, 10000.0);
  const Vec chunkIn(x.begin() + a * row, x.begin() + (a + len) * row);
  Vec chunk(chunkIn.size());
  rope_fwd(chunkIn.data(), chunk.data(), Bc, len, H, hd, a, 10000.0);
  EXPECT_EQ(chunk, Vec(full.begin() + a * row, full.begin() + (a + len) * row));
}

TEST(Rope, RejectsOddHeadDim) {
  std::vector<float> x(3, 1.0f);
  EXPECT_THROW(rope_fwd(x.data(), x.data(), 1, 1, 1, 3, 0, 10000.0),
               std::invalid_argument);
}

TEST(Rope, Fp32MatchesFp64AtLongContextPositions) {
  Rng rng(53);
  const Vec x = rng.uniform(B * S * H * hd);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    std::vector<T> xt = cast<T>(x), y(x.size());
    rope_fwd(xt.data(), y.data(), B, S, H, hd, 131000, 10000.0);
    return toDouble(y);
  };
  EXPECT_LT(relMaxError(run(float()), run(double())), 1e-6);
}

} // namespace
