//===- norm.cpp - LayerNorm and RMSNorm over the last dimension -----------===//

#include "seq1f1b/runtime/cpu_kernels.h"

#include <cmath>

namespace s1f::rt::cpu {

template <typename T>
void layer_norm_fwd(const T *x, const T *gamma, const T *beta, T *y, T *mean,
                    T *rstd, int64_t N, int64_t D, T eps) {
  for (int64_t r = 0; r < N; ++r) {
    const T *xr = x + r * D;
    double sum = 0;
    for (int64_t j = 0; j < D; ++j)
      sum += xr[j];
    const double mu = sum / D;
    // Two-pass variance: no cancellation for rows with a large mean.
    double sq = 0;
    for (int64_t j = 0; j < D; ++j)
      sq += (xr[j] - mu) * (xr[j] - mu);
    const double rs = 1.0 / std::sqrt(sq / D + static_cast<double>(eps));
    T *yr = y + r * D;
    for (int64_t j = 0; j < D; ++j)
      yr[j] = static_cast<T>((xr[j] - mu) * rs) * gamma[j] + beta[j];
    mean[r] = static_cast<T>(mu);
    rstd[r] = static_cast<T>(rs);
  }
}

template <typename T>
void layer_norm_bwd(const T *x, const T *gamma, const T *mean, const T *rstd,
                    const T *dy, T *dx, T *dgamma, T *dbeta, int64_t N,
                    int64_t D) {
  for (int64_t r = 0; r < N; ++r) {
    const T *xr = x + r * D;
    const T *gr = dy + r * D;
    const T mu = mean[r], rs = rstd[r];
    // dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * gamma.
    double sumG = 0, sumGX = 0;
    for (int64_t j = 0; j < D; ++j) {
      const T xhat = (xr[j] - mu) * rs;
      const T g = gr[j] * gamma[j];
      sumG += g;
      sumGX += g * xhat;
      if (dgamma)
        dgamma[j] += gr[j] * xhat;
      if (dbeta)
        dbeta[j] += gr[j];
    }
    if (!dx)
      continue;
    const T meanG = static_cast<T>(sumG / D),
            meanGX = static_cast<T>(sumGX / D);
    T *dxr = dx + r * D;
    for (int64_t j = 0; j < D; ++j) {
      const T xhat = (xr[j] - mu) * rs;
      dxr[j] = rs * (gr[j] * gamma[j] - meanG - xhat * meanGX);
    }
  }
}

template <typename T>
void rms_norm_fwd(const T *x, const T *gamma, T *y, T *rstd, int64_t N,
                  int64_t D, T eps) {
  for (int64_t r = 0; r < N; ++r) {
    const T *xr = x + r * D;
    double sq = 0;
    for (int64_t j = 0; j < D; ++j)
      sq += static_cast<double>(xr[j]) * xr[j];
    const T rs =
        static_cast<T>(1.0 / std::sqrt(sq / D + static_cast<double>(eps)));
    T *yr = y + r * D;
    for (int64_t j = 0; j < D; ++j)
      yr[j] = xr[j] * rs * gamma[j];
    rstd[r] = rs;
  }
}

template <typename T>
void rms_norm_bwd(const T *x, const T *gamma, const T *rstd, const T *dy, T *dx,
                  T *dgamma, int64_t N, int64_t D) {
  for (int64_t r = 0; r < N; ++r) {
    const T *xr = x + r * D;
    const T *gr = dy + r * D;
    const T rs = rstd[r];
    // dx = rstd * (g - xhat * mean(g * xhat)) with g = dy * gamma.
    double sumGX = 0;
    for (int64_t j = 0; j < D; ++j) {
      const T xhat = xr[j] * rs;
      sumGX += gr[j] * gamma[j] * xhat;
      if (dgamma)
        dgamma[j] += gr[j] * xhat;
    }
    if (!dx)
      continue;
    const T meanGX = static_cast<T>(sumGX / D);
    T *dxr = dx + r * D;
    for (int64_t j = 0; j < D; ++j)
      dxr[j] = rs * (gr[j] * gamma[j] - xr[j] * rs * meanGX);
  }
}

#define S1F_INSTANTIATE(T)                                                     \
  template void layer_norm_fwd<T>(const T *, const T *, const T *, T *, T *,   \
                                  T *, int64_t, int64_t, T);                   \
  template void layer_norm_bwd<T>(const T *, const T *, const T *, const T *,  \
                                  const T *, T *, T *, T *, int64_t, int64_t); \
  template void rms_norm_fwd<T>(const T *, const T *, T *, T *, int64_t,       \
                                int64_t, T);                                   \
  template void rms_norm_bwd<T>(const T *, const T *, const T *, const T *,    \
                                T *, T *, int64_t, int64_t);
S1F_INSTANTIATE(float)
S1F_INSTANTIATE(double)

} // namespace s1f::rt::cpu
