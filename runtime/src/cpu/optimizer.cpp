//===- optimizer.cpp - AdamW and global-norm gradient clipping ------------===//

#include "seq1f1b/runtime/cpu_kernels.h"

#include "check.h"

#include <algorithm>
#include <cmath>

namespace s1f::rt::cpu {

template <typename T>
void adamw_step(T *param, const T *grad, T *m, T *v, int64_t n, int64_t step,
                const AdamWConfig &cfg, double grad_scale) {
  S1F_CHECK(step >= 1, "adamw step is 1-based, got " + std::to_string(step));
  // Per-call scalars in double; per-element math in T.
  const double c1 = 1.0 - std::pow(cfg.beta1, static_cast<double>(step));
  const double c2 = 1.0 - std::pow(cfg.beta2, static_cast<double>(step));
  const T b1 = static_cast<T>(cfg.beta1), b2 = static_cast<T>(cfg.beta2);
  const T stepSize = static_cast<T>(cfg.lr / c1);
  const T rsqrtC2 = static_cast<T>(1.0 / std::sqrt(c2));
  const T eps = static_cast<T>(cfg.eps);
  const T decay = static_cast<T>(1.0 - cfg.lr * cfg.weight_decay);
  const T gs = static_cast<T>(grad_scale);
  for (int64_t i = 0; i < n; ++i) {
    const T g = grad[i] * gs;
    m[i] = b1 * m[i] + (T(1) - b1) * g;
    v[i] = b2 * v[i] + (T(1) - b2) * g * g;
    // PyTorch order: decay the weight first, then the Adam update
    // lr * m_hat / (sqrt(v_hat) + eps).
    param[i] =
        param[i] * decay - stepSize * m[i] / (std::sqrt(v[i]) * rsqrtC2 + eps);
  }
}

template <typename T> double sum_squares(const T *x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i)
    s += static_cast<double>(x[i]) * x[i];
  return s;
}

double clip_coefficient(double total_sum_squares, double max_norm) {
  S1F_CHECK(std::isfinite(total_sum_squares) && total_sum_squares >= 0,
            "gradient norm is not finite");
  S1F_CHECK(max_norm > 0, "clip max_norm must be positive");
  return std::min(1.0, max_norm / (std::sqrt(total_sum_squares) + 1e-6));
}

template <typename T> void scale(T *x, int64_t n, T s) {
  for (int64_t i = 0; i < n; ++i)
    x[i] *= s;
}

#define S1F_INSTANTIATE(T)                                                     \
  template void adamw_step<T>(T *, const T *, T *, T *, int64_t, int64_t,      \
                              const AdamWConfig &, double);                    \
  template double sum_squares<T>(const T *, int64_t);                          \
  template void scale<T>(T *, int64_t, T);
S1F_INSTANTIATE(float)
S1F_INSTANTIATE(double)

} // namespace s1f::rt::cpu
