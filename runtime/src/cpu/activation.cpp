//===- activation.cpp - GELU, SiLU, SwiGLU and residual adds --------------===//

#include "seq1f1b/runtime/cpu_kernels.h"

#include <cmath>

namespace s1f::rt::cpu {
namespace {

// GPT-2's tanh approximation: 0.5 x (1 + tanh(k (x + c x^3))).
constexpr double kGeluK = 0.7978845608028654; // sqrt(2 / pi)
constexpr double kGeluC = 0.044715;

template <typename T> T sigmoid(T x) { return T(1) / (T(1) + std::exp(-x)); }

} // namespace

template <typename T> void gelu_fwd(const T *x, T *y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const T u = T(kGeluK) * (x[i] + T(kGeluC) * x[i] * x[i] * x[i]);
    y[i] = T(0.5) * x[i] * (T(1) + std::tanh(u));
  }
}

template <typename T> void gelu_bwd(const T *x, const T *dy, T *dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const T xi = x[i];
    const T t = std::tanh(T(kGeluK) * (xi + T(kGeluC) * xi * xi * xi));
    const T du = T(kGeluK) * (T(1) + T(3 * kGeluC) * xi * xi);
    dx[i] = dy[i] * (T(0.5) * (T(1) + t) + T(0.5) * xi * (T(1) - t * t) * du);
  }
}

// The exact form, x Phi(x) (GPT-NeoX's "gelu"): Phi through erf.
template <typename T> void gelu_erf_fwd(const T *x, T *y, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    y[i] = T(0.5) * x[i] * (T(1) + std::erf(x[i] * T(M_SQRT1_2)));
}

// d/dx x Phi(x) = Phi(x) + x phi(x).
template <typename T>
void gelu_erf_bwd(const T *x, const T *dy, T *dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const T xi = x[i];
    const T cdf = T(0.5) * (T(1) + std::erf(xi * T(M_SQRT1_2)));
    const T pdf = T(0.5 * M_2_SQRTPI * M_SQRT1_2) * std::exp(T(-0.5) * xi * xi);
    dx[i] = dy[i] * (cdf + xi * pdf);
  }
}

template <typename T> void silu_fwd(const T *x, T *y, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    y[i] = x[i] * sigmoid(x[i]);
}

template <typename T> void silu_bwd(const T *x, const T *dy, T *dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const T s = sigmoid(x[i]);
    dx[i] = dy[i] * s * (T(1) + x[i] * (T(1) - s));
  }
}

template <typename T>
void swiglu_fwd(const T *gate, const T *up, T *y, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    y[i] = gate[i] * sigmoid(gate[i]) * up[i];
}

template <typename T>
void swiglu_bwd(const T *gate, const T *up, const T *dy, T *dgate, T *dup,
                int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const T g = gate[i], s = sigmoid(g), u = up[i], d = dy[i];
    // Read everything first: dgate/dup may alias gate/up.
    if (dgate)
      dgate[i] = d * u * s * (T(1) + g * (T(1) - s));
    if (dup)
      dup[i] = d * g * s;
  }
}

template <typename T> void softcap_fwd(const T *x, T *y, int64_t n, double c) {
  for (int64_t i = 0; i < n; ++i)
    y[i] = static_cast<T>(c) * std::tanh(x[i] / static_cast<T>(c));
}

template <typename T>
void softcap_bwd(const T *x, const T *dy, T *dx, int64_t n, double c) {
  for (int64_t i = 0; i < n; ++i) {
    const T t = std::tanh(x[i] / static_cast<T>(c));
    dx[i] = dy[i] * (T(1) - t * t);
  }
}

// gelu(gate) * up with GELU's tanh form (Gemma).
template <typename T>
void geglu_fwd(const T *gate, const T *up, T *y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    T g;
    gelu_fwd(&gate[i], &g, 1);
    y[i] = g * up[i];
  }
}

template <typename T>
void geglu_bwd(const T *gate, const T *up, const T *dy, T *dgate, T *dup,
               int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    // Read everything first: dgate/dup may alias gate/up.
    const T x = gate[i], u = up[i], d = dy[i], du = d * u;
    T g, dg;
    gelu_fwd(&x, &g, 1);
    gelu_bwd(&x, &du, &dg, 1);
    if (dgate)
      dgate[i] = dg;
    if (dup)
      dup[i] = d * g;
  }
}

template <typename T> void add_fwd(const T *a, const T *b, T *y, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    y[i] = a[i] + b[i];
}

template <typename T> void add_bwd(const T *dy, T *da, T *db, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const T g = dy[i];
    if (da)
      da[i] = g;
    if (db)
      db[i] = g;
  }
}

namespace {
/// sigmoid(gate row r . w), in double.
template <typename T>
double gateOf(const T *gate, const T *w, int64_t r, int64_t H) {
  double z = 0;
  for (int64_t j = 0; j < H; ++j)
    z += double(gate[r * H + j]) * w[j];
  return 1 / (1 + std::exp(-z));
}
} // namespace

template <typename T>
void sigmoid_gate_fwd(const T *value, const T *gate, const T *w, T *y,
                      int64_t N, int64_t D, int64_t H) {
  for (int64_t r = 0; r < N; ++r) {
    const T s = static_cast<T>(gateOf(gate, w, r, H));
    for (int64_t j = 0; j < D; ++j)
      y[r * D + j] = s * value[r * D + j];
  }
}

template <typename T>
void sigmoid_gate_bwd(const T *value, const T *gate, const T *w, const T *dy,
                      T *dvalue, T *dgate, T *dw, int64_t N, int64_t D,
                      int64_t H) {
  for (int64_t r = 0; r < N; ++r) {
    const double s = gateOf(gate, w, r, H);
    double ds = 0;
    for (int64_t j = 0; j < D; ++j) {
      ds += double(dy[r * D + j]) * value[r * D + j];
      if (dvalue)
        dvalue[r * D + j] = static_cast<T>(s * dy[r * D + j]);
    }
    const double dz = ds * s * (1 - s);
    for (int64_t j = 0; j < H; ++j) {
      if (dgate)
        dgate[r * H + j] = static_cast<T>(dz * w[j]);
      if (dw)
        dw[j] += static_cast<T>(dz * gate[r * H + j]);
    }
  }
}

template <typename T> void accumulate(const T *x, T *y, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    y[i] += x[i];
}

#define S1F_INSTANTIATE(T)                                                     \
  template void gelu_fwd<T>(const T *, T *, int64_t);                          \
  template void gelu_bwd<T>(const T *, const T *, T *, int64_t);               \
  template void gelu_erf_fwd<T>(const T *, T *, int64_t);                      \
  template void gelu_erf_bwd<T>(const T *, const T *, T *, int64_t);           \
  template void silu_fwd<T>(const T *, T *, int64_t);                          \
  template void silu_bwd<T>(const T *, const T *, T *, int64_t);               \
  template void swiglu_fwd<T>(const T *, const T *, T *, int64_t);             \
  template void swiglu_bwd<T>(const T *, const T *, const T *, T *, T *,       \
                              int64_t);                                        \
  template void softcap_fwd<T>(const T *, T *, int64_t, double);               \
  template void softcap_bwd<T>(const T *, const T *, T *, int64_t, double);    \
  template void geglu_fwd<T>(const T *, const T *, T *, int64_t);              \
  template void geglu_bwd<T>(const T *, const T *, const T *, T *, T *,        \
                             int64_t);                                         \
  template void add_fwd<T>(const T *, const T *, T *, int64_t);                \
  template void add_bwd<T>(const T *, T *, T *, int64_t);                      \
  template void accumulate<T>(const T *, T *, int64_t);                       \
  template void sigmoid_gate_fwd<T>(const T *, const T *, const T *, T *,      \
                                    int64_t, int64_t, int64_t);                \
  template void sigmoid_gate_bwd<T>(const T *, const T *, const T *,           \
                                    const T *, T *, T *, T *, int64_t,         \
                                    int64_t, int64_t);
S1F_INSTANTIATE(float)
S1F_INSTANTIATE(double)

} // namespace s1f::rt::cpu
