//===- rope_scaling.h - RoPE frequencies for longer contexts ----*- C++ -*-===//
//
// Models trained on a short context and extended to a long one rescale their
// rotary frequencies (Hugging Face's rope_scaling). The CPU and CUDA rope
// kernels both compute frequencies, and the pairs of dimensions they turn,
// here, so they agree to the bit.
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_RUNTIME_ROPE_SCALING_H
#define SEQ1F1B_RUNTIME_ROPE_SCALING_H

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef __CUDACC__
#define S1F_HOST_DEVICE __host__ __device__
#else
#define S1F_HOST_DEVICE
#endif

namespace s1f::rt {

/// `factor` alone divides every frequency (positions interpolated:
/// "linear"). With `originalContext` and frequency factors (Llama 3.1's
/// "llama3"), wavelengths above originalContext / lowFreqFactor are divided
/// by `factor`, those below originalContext / highFreqFactor are kept, and
/// those between are blended linearly in originalContext / wavelength. With
/// `originalContext` and betas (YaRN), frequencies turning fewer than
/// betaSlow times over originalContext are divided by `factor`, those
/// turning more than betaFast times are kept, and a linear ramp over the
/// frequency index blends the band between. With `numFactors` (LongRoPE,
/// Phi-3's 128k context), frequency i is divided by factors[i] instead.
/// `attentionFactor` then scales the rotated dimensions (YaRN's mscale and
/// LongRoPE's, which keep attention sharp over the longer context).
struct RopeScaling {
  /// Frequencies of a head of up to 256 dimensions; fixed so that the CUDA
  /// kernel takes the struct by value.
  static constexpr int kMaxFactors = 128;

  double factor = 1;
  double lowFreqFactor = 0, highFreqFactor = 0; ///< llama3
  double betaFast = 0, betaSlow = 0;            ///< yarn (betaFast 0: none)
  double originalContext = 0;                   ///< 0: linear
  double attentionFactor = 1;
  int numFactors = 0; ///< longrope (0: none)
  double factors[kMaxFactors] = {};
  /// GLM's pairing: frequency i turns dimensions 2i and 2i + 1, not i and
  /// i + rotary/2 (rotate-half).
  bool interleaved = false;

  /// The two dimensions of a head that frequency i of `rotary` turns.
  S1F_HOST_DEVICE int64_t first(int64_t i) const {
    return interleaved ? 2 * i : i;
  }
  S1F_HOST_DEVICE int64_t second(int64_t i, int64_t rotary) const {
    return interleaved ? 2 * i + 1 : i + rotary / 2;
  }

  static RopeScaling llama3(double factor, double low, double high,
                            double context) {
    RopeScaling s;
    s.factor = factor;
    s.lowFreqFactor = low;
    s.highFreqFactor = high;
    s.originalContext = context;
    return s;
  }
  /// Throws std::invalid_argument beyond kMaxFactors.
  static RopeScaling longrope(const std::vector<double> &factors,
                              double attentionFactor) {
    if (factors.size() > static_cast<size_t>(kMaxFactors))
      throw std::invalid_argument(
          "rope_scaling: " + std::to_string(factors.size()) +
          " frequency factors, at most " + std::to_string(kMaxFactors));
    RopeScaling s;
    s.numFactors = static_cast<int>(factors.size());
    std::copy(factors.begin(), factors.end(), s.factors);
    s.attentionFactor = attentionFactor;
    return s;
  }
  static RopeScaling yarn(double factor, double betaFast, double betaSlow,
                          double context, double attentionFactor) {
    RopeScaling s;
    s.factor = factor;
    s.betaFast = betaFast;
    s.betaSlow = betaSlow;
    s.originalContext = context;
    s.attentionFactor = attentionFactor;
    return s;
  }
};

/// The angle per position of frequency i of a head turning `rotary`
/// dimensions: theta^(-2i/rotary), rescaled.
S1F_HOST_DEVICE inline double ropeInvFreq(int64_t i, int64_t rotary,
                                          double theta,
                                          const RopeScaling &s) {
  const double dims = static_cast<double>(rotary);
  const double invFreq = pow(theta, -2.0 * static_cast<double>(i) / dims);
  if (s.numFactors > 0)
    return invFreq / s.factors[i];
  if (s.originalContext <= 0)
    return s.factor == 1 ? invFreq : invFreq / s.factor;
  const double twoPi = 6.283185307179586;
  if (s.betaFast > 0) {
    // The frequency index at which a frequency turns `turns` times over the
    // original context, rounded outward (transformers' "truncate").
    auto index = [&](double turns) {
      return dims * log(s.originalContext / (turns * twoPi)) /
             (2 * log(theta));
    };
    const double low = fmax(floor(index(s.betaFast)), 0.0);
    double high = fmin(ceil(index(s.betaSlow)), dims - 1);
    if (low == high)
      high += 0.001;
    const double ramp =
        fmin(fmax((static_cast<double>(i) - low) / (high - low), 0.0), 1.0);
    return invFreq / s.factor * ramp + invFreq * (1 - ramp);
  }
  const double wavelength = twoPi / invFreq;
  if (wavelength < s.originalContext / s.highFreqFactor)
    return invFreq;
  if (wavelength > s.originalContext / s.lowFreqFactor)
    return invFreq / s.factor;
  const double smooth = (s.originalContext / wavelength - s.lowFreqFactor) /
                        (s.highFreqFactor - s.lowFreqFactor);
  return (1 - smooth) * invFreq / s.factor + smooth * invFreq;
}

} // namespace s1f::rt

#endif // SEQ1F1B_RUNTIME_ROPE_SCALING_H
