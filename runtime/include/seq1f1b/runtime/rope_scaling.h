//===- rope_scaling.h - RoPE frequencies for longer contexts ----*- C++ -*-===//
//
// Models trained on a short context and extended to a long one rescale their
// rotary frequencies (Hugging Face's rope_scaling). The CPU and CUDA rope
// kernels both compute frequencies here, so they agree to the bit.
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_RUNTIME_ROPE_SCALING_H
#define SEQ1F1B_RUNTIME_ROPE_SCALING_H

#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define S1F_HOST_DEVICE __host__ __device__
#else
#define S1F_HOST_DEVICE
#endif

namespace s1f::rt {

/// `factor` alone divides every frequency (positions interpolated:
/// "linear"). With `originalContext` (Llama 3.1's "llama3"), wavelengths
/// above originalContext / lowFreqFactor are divided by `factor`, those
/// below originalContext / highFreqFactor are kept, and those between are
/// blended linearly in originalContext / wavelength.
struct RopeScaling {
  double factor = 1;
  double lowFreqFactor = 0, highFreqFactor = 0;
  double originalContext = 0; ///< 0: linear
};

/// The angle per position of frequency i of a head turning `rotary`
/// dimensions: theta^(-2i/rotary), rescaled.
S1F_HOST_DEVICE inline double ropeInvFreq(int64_t i, int64_t rotary,
                                          double theta,
                                          const RopeScaling &s) {
  const double invFreq =
      pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(rotary));
  if (s.originalContext <= 0)
    return s.factor == 1 ? invFreq : invFreq / s.factor;
  const double wavelength = 6.283185307179586 / invFreq;
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
