//===- linear.cpp - y = x W^T + b with W stored [out, in] -----------------===//

#include "seq1f1b/runtime/cpu_kernels.h"

namespace s1f::rt::cpu {

template <typename T>
void linear_fwd(const T *x, const T *W, const T *bias, T *y, int64_t N,
                int64_t in, int64_t out) {
  // Seed y with the bias so one GEMM with beta = 1 adds the product.
  T beta = T(0);
  if (bias) {
    for (int64_t r = 0; r < N; ++r)
      for (int64_t j = 0; j < out; ++j)
        y[r * out + j] = bias[j];
    beta = T(1);
  }
  gemm(false, true, N, out, in, T(1), x, in, W, in, beta, y, out);
}

template <typename T>
void linear_bwd(const T *x, const T *W, const T *dy, T *dx, T *dW, T *db,
                int64_t N, int64_t in, int64_t out) {
  if (dx)
    gemm(false, false, N, in, out, T(1), dy, out, W, in, T(0), dx, in);
  if (dW)
    gemm(true, false, out, in, N, T(1), dy, out, x, in, T(1), dW, in);
  if (db)
    for (int64_t r = 0; r < N; ++r)
      for (int64_t j = 0; j < out; ++j)
        db[j] += dy[r * out + j];
}

#define S1F_INSTANTIATE(T)                                                     \
  template void linear_fwd<T>(const T *, const T *, const T *, T *, int64_t,   \
                              int64_t, int64_t);                               \
  template void linear_bwd<T>(const T *, const T *, const T *, T *, T *, T *,  \
                              int64_t, int64_t, int64_t);
S1F_INSTANTIATE(float)
S1F_INSTANTIATE(double)

} // namespace s1f::rt::cpu
