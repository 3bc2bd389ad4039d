//===- rope.cpp - Rotary position embedding (rotate-half) -----------------===//

#include "seq1f1b/runtime/cpu_kernels.h"

#include "check.h"

#include <cmath>

namespace s1f::rt::cpu {
namespace {

// Rotates every head of every token by +angle (forward) or -angle (backward:
// the rotation is orthogonal, so its transpose is its inverse). Angles are
// computed in double: at positions ~1e5 a float angle has lost its phase.
template <typename T>
void rotate(const T *x, T *y, int64_t B, int64_t S, int64_t H, int64_t hd,
            int64_t start, double theta, double sign) {
  S1F_CHECK(hd % 2 == 0,
            "rope needs an even head_dim, got " + std::to_string(hd));
  S1F_CHECK(start >= 0, "rope start position must be >= 0");
  const int64_t half = hd / 2, rowStride = H * hd;
  for (int64_t s = 0; s < S; ++s) {
    const double pos = static_cast<double>(start + s);
    for (int64_t i = 0; i < half; ++i) {
      const double angle =
          pos * std::pow(theta, -2.0 * static_cast<double>(i) / hd);
      const T c = static_cast<T>(std::cos(angle));
      const T sn = static_cast<T>(sign * std::sin(angle));
      for (int64_t b = 0; b < B; ++b) {
        const int64_t row = (b * S + s) * rowStride;
        for (int64_t h = 0; h < H; ++h) {
          const int64_t lo = row + h * hd + i, hi = lo + half;
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
              int64_t start, double theta) {
  rotate(x, y, B, S, H, hd, start, theta, 1.0);
}

template <typename T>
void rope_bwd(const T *dy, T *dx, int64_t B, int64_t S, int64_t H, int64_t hd,
              int64_t start, double theta) {
  rotate(dy, dx, B, S, H, hd, start, theta, -1.0);
}

#define S1F_INSTANTIATE(T)                                                     \
  template void rope_fwd<T>(const T *, T *, int64_t, int64_t, int64_t,         \
                            int64_t, int64_t, double);                         \
  template void rope_bwd<T>(const T *, T *, int64_t, int64_t, int64_t,         \
                            int64_t, int64_t, double);
S1F_INSTANTIATE(float)
S1F_INSTANTIATE(double)

} // namespace s1f::rt::cpu
