//===- rope.cpp - Rotary position embedding --------------------------------===//

#include "seq1f1b/runtime/cpu_kernels.h"

#include "check.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace s1f::rt::cpu {
namespace {

// Rotates the first `rotary` dimensions of every head of every token by
// +angle (forward) or -angle (backward: the rotation is orthogonal, so its
// transpose is its inverse), scaled by the attention factor; the rest pass
// through. Angles are computed in double: at positions ~1e5 a float angle
// has lost its phase.
template <typename T>
void rotate(const T *x, T *y, int64_t B, int64_t S, int64_t H, int64_t hd,
            int64_t start, double theta, int64_t rotary,
            const RopeScaling &scaling, double sign) {
  if (rotary == 0)
    rotary = hd;
  S1F_CHECK(hd % 2 == 0,
            "rope needs an even head_dim, got " + std::to_string(hd));
  S1F_CHECK(rotary > 0 && rotary <= hd && rotary % 2 == 0,
            "rope's rotary dimensions must be even and at most head_dim " +
                std::to_string(hd) + ", got " + std::to_string(rotary));
  S1F_CHECK(start >= 0, "rope start position must be >= 0");
  const int64_t half = rotary / 2, rowStride = H * hd;
  if (rotary < hd && x != y)
    for (int64_t r = 0; r < B * S * H; ++r)
      std::copy(x + r * hd + rotary, x + (r + 1) * hd, y + r * hd + rotary);
  std::vector<double> invFreq(half); // the same for every position
  for (int64_t i = 0; i < half; ++i)
    invFreq[i] = ropeInvFreq(i, rotary, theta, scaling);
  for (int64_t s = 0; s < S; ++s) {
    const double pos = static_cast<double>(start + s);
    for (int64_t i = 0; i < half; ++i) {
      const double angle = pos * invFreq[i];
      const T c = static_cast<T>(scaling.attentionFactor * std::cos(angle));
      const T sn =
          static_cast<T>(scaling.attentionFactor * sign * std::sin(angle));
      for (int64_t b = 0; b < B; ++b) {
        const int64_t row = (b * S + s) * rowStride;
        for (int64_t h = 0; h < H; ++h) {
          const int64_t lo = row + h * hd + scaling.first(i),
                        hi = row + h * hd + scaling.second(i, rotary);
          const T x0 = x[lo], x1 = x[hi]; // read both first: x may alias y
          y[lo] = x0 * c - x1 * sn;
          y[hi] = x1 * c + x0 * sn;
        }
      }
    }
  }
}

} // namespace

template <typename T>
void rope_fwd(const T *x, T *y, int64_t B, int64_t S, int64_t H, int64_t hd,
              int64_t start, double theta, int64_t rotary,
              const RopeScaling &scaling) {
  rotate(x, y, B, S, H, hd, start, theta, rotary, scaling, 1.0);
}

template <typename T>
void rope_bwd(const T *dy, T *dx, int64_t B, int64_t S, int64_t H, int64_t hd,
              int64_t start, double theta, int64_t rotary,
              const RopeScaling &scaling) {
  rotate(dy, dx, B, S, H, hd, start, theta, rotary, scaling, -1.0);
}

#define S1F_INSTANTIATE(T)                                                     \
  template void rope_fwd<T>(const T *, T *, int64_t, int64_t, int64_t,         \
                            int64_t, int64_t, double, int64_t,                 \
                            const RopeScaling &);                              \
  template void rope_bwd<T>(const T *, T *, int64_t, int64_t, int64_t,         \
                            int64_t, int64_t, double, int64_t,                 \
                            const RopeScaling &);
S1F_INSTANTIATE(float)
S1F_INSTANTIATE(double)

} // namespace s1f::rt::cpu
