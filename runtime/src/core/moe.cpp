//===- moe.cpp - A mixture of SwiGLU experts ------------------------------===//

#include "seq1f1b/runtime/moe.h"

#include "seq1f1b/runtime/kernel_set.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <type_traits>
#include <vector>

namespace s1f::rt::moe {

namespace {

/// Token t's routing row: E probabilities, K experts, K weights.
template <typename T> struct Route {
  T *row;
  int64_t E, K;
  T &prob(int64_t e) const { return row[e]; }
  T &expert(int64_t k) const { return row[E + k]; }
  T &weight(int64_t k) const { return row[E + K + k]; }
};

template <typename T> Route<T> routeOf(const Dims &d, T *routing, int64_t t) {
  return {routing + t * (d.E + 2 * d.K), d.E, d.K};
}

template <typename T>
void route(const Dims &d, const T *logits, T *routing) {
  std::vector<int64_t> order(d.E);
  for (int64_t t = 0; t < d.N; ++t) {
    Route<T> r = routeOf(d, routing, t);
    const T *l = logits + t * d.E;
    const T top = *std::max_element(l, l + d.E);
    T sum = 0;
    for (int64_t e = 0; e < d.E; ++e)
      sum += r.prob(e) = std::exp(l[e] - top);
    for (int64_t e = 0; e < d.E; ++e)
      r.prob(e) /= sum;
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      return r.prob(a) > r.prob(b);
    });
    T chosen = 0;
    for (int64_t k = 0; k < d.K; ++k)
      chosen += r.prob(order[k]);
    for (int64_t k = 0; k < d.K; ++k) {
      r.expert(k) = T(order[k]);
      r.weight(k) = d.normalized ? r.prob(order[k]) / chosen
                                 : r.prob(order[k]);
    }
  }
}

/// dlogits [N, E] from the gradient of the weights dweight [N, K].
template <typename T>
void routeBackward(const Dims &d, const T *routing, const T *dweight,
                   T *dlogits) {
  std::vector<T> dprob(d.E);
  for (int64_t t = 0; t < d.N; ++t) {
    Route<const T> r = routeOf(d, routing, t);
    const T *dw = dweight + t * d.K;
    std::fill(dprob.begin(), dprob.end(), T(0));
    if (d.normalized) { // w_k = p_k / s, s the chosen experts' sum
      T chosen = 0, dot = 0;
      for (int64_t k = 0; k < d.K; ++k) {
        chosen += r.prob(int64_t(r.expert(k)));
        dot += dw[k] * r.weight(k);
      }
      for (int64_t k = 0; k < d.K; ++k)
        dprob[int64_t(r.expert(k))] = (dw[k] - dot) / chosen;
    } else {
      for (int64_t k = 0; k < d.K; ++k)
        dprob[int64_t(r.expert(k))] = dw[k];
    }
    T dot = 0; // the softmax's backward
    for (int64_t e = 0; e < d.E; ++e)
      dot += r.prob(e) * dprob[e];
    for (int64_t e = 0; e < d.E; ++e)
      dlogits[t * d.E + e] = r.prob(e) * (dprob[e] - dot);
  }
}

/// The routed copies (t * K + k) each expert serves, in token order:
/// expert e's are pairs[offset[e] .. offset[e+1]).
struct Assignment {
  std::vector<int64_t> offset, pairs;
};

template <typename T>
Assignment assign(const Dims &d, const T *routing) {
  Assignment a;
  a.offset.assign(d.E + 1, 0);
  for (int64_t t = 0; t < d.N; ++t)
    for (int64_t k = 0; k < d.K; ++k)
      ++a.offset[int64_t(routeOf(d, routing, t).expert(k)) + 1];
  std::partial_sum(a.offset.begin(), a.offset.end(), a.offset.begin());
  a.pairs.resize(d.N * d.K);
  std::vector<int64_t> next(a.offset.begin(), a.offset.end() - 1);
  for (int64_t t = 0; t < d.N; ++t)
    for (int64_t k = 0; k < d.K; ++k)
      a.pairs[next[int64_t(routeOf(d, routing, t).expert(k))]++] = t * d.K + k;
  return a;
}

/// p + offset, or nullptr when p is (a gradient not wanted).
template <typename T> T *at(T *p, int64_t offset) {
  return p ? p + offset : nullptr;
}

} // namespace

template <typename T, typename Kernels>
void forward(const Kernels &k, const Dims &d, const T *x, const T *router,
             const T *gate, const T *up, const T *down, T *y, T *routing,
             T *acts) {
  const int64_t D = d.D, F = d.F;
  std::vector<T> logits(d.N * d.E);
  k.linear_fwd(x, router, nullptr, logits.data(), d.N, D, d.E);
  route(d, logits.data(), routing);
  const Assignment a = assign(d, routing);
  std::fill_n(y, d.N * D, T(0));
  std::vector<T> xe, g, u, h, o;
  for (int64_t e = 0; e < d.E; ++e) {
    const int64_t first = a.offset[e], n = a.offset[e + 1] - first;
    if (n == 0)
      continue;
    xe.resize(n * D);
    g.resize(n * F);
    u.resize(n * F);
    h.resize(n * F);
    o.resize(n * D);
    for (int64_t r = 0; r < n; ++r)
      std::copy_n(x + a.pairs[first + r] / d.K * D, D, xe.data() + r * D);
    k.linear_fwd(xe.data(), gate + e * F * D, nullptr, g.data(), n, D, F);
    k.linear_fwd(xe.data(), up + e * F * D, nullptr, u.data(), n, D, F);
    k.swiglu_fwd(g.data(), u.data(), h.data(), n * F);
    k.linear_fwd(h.data(), down + e * D * F, nullptr, o.data(), n, F, D);
    for (int64_t r = 0; r < n; ++r) {
      const int64_t pair = a.pairs[first + r], t = pair / d.K;
      const T w = routeOf(d, routing, t).weight(pair % d.K);
      for (int64_t j = 0; j < D; ++j)
        y[t * D + j] += w * o[r * D + j];
      std::copy_n(g.data() + r * F, F, acts + pair * 2 * F);
      std::copy_n(u.data() + r * F, F, acts + pair * 2 * F + F);
    }
  }
}

template <typename T, typename Kernels>
void backward(const Kernels &k, const Dims &d, const T *x, const T *router,
              const T *gate, const T *up, const T *down, const T *routing,
              const T *acts, const T *dy, T *dx, T *drouter, T *dgate,
              T *dup, T *ddown, const TensorParallel &tp) {
  const int64_t D = d.D, F = d.F;
  const Assignment a = assign(d, routing);
  std::fill_n(dx, d.N * D, T(0));
  std::vector<T> dweight(d.N * d.K, T(0));
  std::vector<T> xe, dye, g, u, h, hw, dh, dg, du, dxe;
  for (int64_t e = 0; e < d.E; ++e) {
    const int64_t first = a.offset[e], n = a.offset[e + 1] - first;
    if (n == 0)
      continue;
    for (std::vector<T> *v : {&xe, &dye, &dxe})
      v->resize(n * D);
    for (std::vector<T> *v : {&g, &u, &h, &hw, &dh, &dg, &du})
      v->resize(n * F);
    for (int64_t r = 0; r < n; ++r) {
      const int64_t pair = a.pairs[first + r], t = pair / d.K;
      std::copy_n(x + t * D, D, xe.data() + r * D);
      std::copy_n(dy + t * D, D, dye.data() + r * D);
      std::copy_n(acts + pair * 2 * F, F, g.data() + r * F);
      std::copy_n(acts + pair * 2 * F + F, F, u.data() + r * F);
    }
    k.swiglu_fwd(g.data(), u.data(), h.data(), n * F);
    // down's input scaled by the routing weight w: its weight gradient is
    // then dy^T (w h), and its input gradient dy down_e, unscaled, gives
    // both dw = <dy down_e, h> and dh = w dy down_e.
    for (int64_t r = 0; r < n; ++r) {
      const int64_t pair = a.pairs[first + r];
      const T w = routeOf(d, routing, pair / d.K).weight(pair % d.K);
      for (int64_t j = 0; j < F; ++j)
        hw[r * F + j] = w * h[r * F + j];
    }
    k.linear_bwd(hw.data(), down + e * D * F, dye.data(), dh.data(),
                 at(ddown, e * D * F), nullptr, n, F, D);
    for (int64_t r = 0; r < n; ++r) {
      const int64_t pair = a.pairs[first + r];
      const T w = routeOf(d, routing, pair / d.K).weight(pair % d.K);
      T dot = 0;
      for (int64_t j = 0; j < F; ++j) {
        dot += dh[r * F + j] * h[r * F + j];
        dh[r * F + j] *= w;
      }
      dweight[pair] = dot;
    }
    k.swiglu_bwd(g.data(), u.data(), dh.data(), dg.data(), du.data(), n * F);
    auto inputBackward = [&](const T *w, T *dw, const std::vector<T> &dpre) {
      k.linear_bwd(xe.data(), w + e * F * D, dpre.data(), dxe.data(),
                   at(dw, e * F * D), nullptr, n, D, F);
      for (int64_t r = 0; r < n; ++r) {
        T *row = dx + a.pairs[first + r] / d.K * D;
        for (int64_t j = 0; j < D; ++j)
          row[j] += dxe[r * D + j];
      }
    };
    inputBackward(gate, dgate, dg);
    inputBackward(up, dup, du);
  }
  if (tp.sumOverRanks) {
    if constexpr (std::is_same_v<T, float>)
      tp.sumOverRanks(dweight.data(), d.N * d.K);
    else
      throw std::logic_error("moe: tensor parallelism runs in fp32");
  }
  std::vector<T> dlogits(d.N * d.E), dxr(d.N * D);
  routeBackward(d, routing, dweight.data(), dlogits.data());
  k.linear_bwd(x, router, dlogits.data(),
               tp.routerInputGrad ? dxr.data() : nullptr, drouter, nullptr,
               d.N, D, d.E);
  if (tp.routerInputGrad)
    for (int64_t i = 0; i < d.N * D; ++i)
      dx[i] += dxr[i];
}

#define S1F_INSTANTIATE(T, K)                                                  \
  template void forward<T, K>(const K &, const Dims &, const T *, const T *,   \
                              const T *, const T *, const T *, T *, T *, T *); \
  template void backward<T, K>(const K &, const Dims &, const T *, const T *,  \
                               const T *, const T *, const T *, const T *,     \
                               const T *, const T *, T *, T *, T *, T *, T *,  \
                               const TensorParallel &);
S1F_INSTANTIATE(float, KernelSet)
S1F_INSTANTIATE(float, CpuKernels<float>)
S1F_INSTANTIATE(double, CpuKernels<double>)

} // namespace s1f::rt::moe
