//===- cross_entropy.cpp - Softmax cross-entropy with ignored targets -----===//

#include "seq1f1b/runtime/cpu_kernels.h"

#include "check.h"

#include <algorithm>
#include <cmath>

namespace s1f::rt::cpu {
namespace {

void checkTarget(int32_t target, int64_t V) {
  S1F_CHECK(target < V, "target " + std::to_string(target) + " outside [0, " +
                            std::to_string(V) + ")");
}

} // namespace

template <typename T>
LossSum cross_entropy_fwd(const T *logits, const int32_t *targets, T *lse,
                          int64_t N, int64_t V) {
  LossSum result;
  for (int64_t r = 0; r < N; ++r) {
    const T *row = logits + r * V;
    const double m = *std::max_element(row, row + V);
    double sum = 0;
    for (int64_t j = 0; j < V; ++j)
      sum += std::exp(row[j] - m);
    const double rowLse = m + std::log(sum);
    lse[r] = static_cast<T>(rowLse);
    if (targets[r] < 0)
      continue;
    checkTarget(targets[r], V);
    result.loss_sum += rowLse - row[targets[r]];
    ++result.count;
  }
  return result;
}

template <typename T>
void cross_entropy_bwd(const T *logits, const int32_t *targets, const T *lse,
                       T *dlogits, int64_t N, int64_t V, T scale) {
  for (int64_t r = 0; r < N; ++r) {
    const T *row = logits + r * V;
    T *drow = dlogits + r * V;
    if (targets[r] < 0) {
      std::fill_n(drow, V, T(0));
      continue;
    }
    checkTarget(targets[r], V);
    for (int64_t j = 0; j < V; ++j)
      drow[j] = scale * std::exp(row[j] - lse[r]);
    drow[targets[r]] -= scale;
  }
}

#define S1F_INSTANTIATE(T)                                                     \
  template LossSum cross_entropy_fwd<T>(const T *, const int32_t *, T *,       \
                                        int64_t, int64_t);                     \
  template void cross_entropy_bwd<T>(const T *, const int32_t *, const T *,    \
                                     T *, int64_t, int64_t, T);
S1F_INSTANTIATE(float)
S1F_INSTANTIATE(double)

} // namespace s1f::rt::cpu
