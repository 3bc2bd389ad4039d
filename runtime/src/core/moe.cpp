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

/// dlogits [N, E] from the gradient of the weights dweight [N, K] (and a
/// gradient of every token's probabilities, `probGrad` [E], if given).
template <typename T>
void routeBackward(const Dims &d, const T *routing, const T *dweight,
                   T *dlogits, const T *probGrad) {
  std::vector<T> dprob(d.E);
  for (int64_t t = 0; t < d.N; ++t) {
    Route<const T> r = routeOf(d, routing, t);
    const T *dw = dweight + t * d.K;
    if (probGrad)
      std::copy_n(probGrad, d.E, dprob.begin());
    else
      std::fill(dprob.begin(), dprob.end(), T(0));
    if (d.normalized) { // w_k = p_k / s, s the chosen experts' sum
      T chosen = 0, dot = 0;
      for (int64_t k = 0; k < d.K; ++k) {
        chosen += r.prob(int64_t(r.expert(k)));
        dot += dw[k] * r.weight(k);
      }
      for (int64_t k = 0; k < d.K; ++k)
        dprob[int64_t(r.expert(k))] += (dw[k] - dot) / chosen;
    } else {
      for (int64_t k = 0; k < d.K; ++k)
        dprob[int64_t(r.expert(k))] += dw[k];
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

template <typename T> using Buffers = std::vector<std::vector<T>>;

/// Sends out[p] to rank p of the group and receives in[p] (sized by the
/// caller) from it; a rank's own buffer moves. Messages of one op and
/// phase keep their order (the communicators deliver a tag's messages in
/// order), so units repeat tags safely.
template <typename T>
void exchange(const ExpertParallel &ep, int phase, Buffers<T> &out,
              Buffers<T> &in) {
  if (!ep.comm) {
    in[0] = std::move(out[0]);
    return;
  }
  if constexpr (!std::is_same_v<T, float>) {
    throw std::logic_error("moe: expert parallelism runs in fp32");
  } else {
    Communicator &c = *ep.comm;
    const Tag tag{MsgKind::ExpertParallel, ep.op * 8 + phase, 0, 0};
    for (int p = 0; p < c.size(); ++p)
      if (p != c.rank())
        c.send(p, tag, out[p].data(), out[p].size() * sizeof(T));
    in[c.rank()] = std::move(out[c.rank()]);
    for (int p = 0; p < c.size(); ++p)
      if (p != c.rank())
        c.recv(p, tag, in[p].data(), in[p].size() * sizeof(T));
  }
}

/// Where the rows this rank's experts run came from: rows[s][j] rows of
/// source s for local expert j, starting at row first[s][j] of all received
/// rows (source-major, then expert, then the source's order).
struct Received {
  std::vector<std::vector<int64_t>> rows, first;
  int64_t total = 0;
  template <typename T> Received(const T *counts, int X, int64_t experts) {
    rows.assign(X, std::vector<int64_t>(experts));
    first = rows;
    for (int s = 0; s < X; ++s)
      for (int64_t j = 0; j < experts; ++j) {
        rows[s][j] = int64_t(counts[s * experts + j]);
        first[s][j] = total;
        total += rows[s][j];
      }
  }
  /// Rows from source s before its expert j's.
  int64_t offset(int s, int64_t j) const { return first[s][j] - first[s][0]; }
  /// Rows local expert j got from every source.
  int64_t ofExpert(int64_t j) const {
    int64_t n = 0;
    for (const std::vector<int64_t> &r : rows)
      n += r[j];
    return n;
  }
};

int groupSize(const ExpertParallel &ep) { return ep.comm ? ep.comm->size() : 1; }

} // namespace

template <typename T, typename Kernels>
void forward(const Kernels &k, const Dims &d, const T *x, const T *router,
             const T *gate, const T *up, const T *down, T *y,
             std::vector<T> &routing, std::vector<T> &acts,
             const ExpertParallel &ep) {
  const int X = groupSize(ep);
  const int64_t D = d.D, F = d.F, local = d.E / X;
  std::vector<T> logits(d.N * d.E);
  k.linear_fwd(x, router, nullptr, logits.data(), d.N, D, d.E);
  routing.resize(d.routingSize());
  route(d, logits.data(), routing.data());
  const Assignment a = assign(d, routing.data());
  // To each rank: how many rows each of its experts gets, then the rows.
  Buffers<T> counts(X), rows(X), inCounts(X, std::vector<T>(local)),
      inRows(X);
  for (int p = 0; p < X; ++p) {
    const int64_t begin = a.offset[p * local], end = a.offset[(p + 1) * local];
    for (int64_t j = 0; j < local; ++j)
      counts[p].push_back(
          T(a.offset[p * local + j + 1] - a.offset[p * local + j]));
    rows[p].resize((end - begin) * D);
    for (int64_t i = begin; i < end; ++i)
      std::copy_n(x + a.pairs[i] / d.K * D, D, rows[p].data() + (i - begin) * D);
  }
  exchange(ep, 0, counts, inCounts);
  std::vector<T> header;
  for (const std::vector<T> &c : inCounts)
    header.insert(header.end(), c.begin(), c.end());
  const Received got(header.data(), X, local);
  for (int s = 0; s < X; ++s)
    inRows[s].resize(std::accumulate(got.rows[s].begin(), got.rows[s].end(),
                                     int64_t(0)) *
                     D);
  exchange(ep, 1, rows, inRows);

  acts = header;
  acts.resize(header.size() + got.total * 2 * F);
  T *saved = acts.data() + header.size();
  Buffers<T> outputs(X), back(X);
  for (int s = 0; s < X; ++s)
    outputs[s].resize(inRows[s].size());
  std::vector<T> xe, g, u, h, o;
  for (int64_t j = 0; j < local; ++j) {
    const int64_t n = got.ofExpert(j);
    if (n == 0)
      continue;
    xe.resize(n * D);
    g.resize(n * F);
    u.resize(n * F);
    h.resize(n * F);
    o.resize(n * D);
    for (int s = 0, r = 0; s < X; r += got.rows[s++][j])
      std::copy_n(inRows[s].data() + got.offset(s, j) * D, got.rows[s][j] * D,
                  xe.data() + r * D);
    k.linear_fwd(xe.data(), gate + j * F * D, nullptr, g.data(), n, D, F);
    k.linear_fwd(xe.data(), up + j * F * D, nullptr, u.data(), n, D, F);
    k.swiglu_fwd(g.data(), u.data(), h.data(), n * F);
    k.linear_fwd(h.data(), down + j * D * F, nullptr, o.data(), n, F, D);
    for (int s = 0, r = 0; s < X; r += got.rows[s++][j]) {
      std::copy_n(o.data() + r * D, got.rows[s][j] * D,
                  outputs[s].data() + got.offset(s, j) * D);
      for (int64_t i = 0; i < got.rows[s][j]; ++i) {
        T *row = saved + (got.first[s][j] + i) * 2 * F;
        std::copy_n(g.data() + (r + i) * F, F, row);
        std::copy_n(u.data() + (r + i) * F, F, row + F);
      }
    }
  }
  for (int p = 0; p < X; ++p)
    back[p].resize(rows[p].size());
  exchange(ep, 2, outputs, back);
  std::fill_n(y, d.N * D, T(0));
  for (int p = 0; p < X; ++p)
    for (int64_t i = a.offset[p * local]; i < a.offset[(p + 1) * local]; ++i) {
      const int64_t pair = a.pairs[i], t = pair / d.K;
      const T w = routeOf(d, routing.data(), t).weight(pair % d.K);
      const T *o = back[p].data() + (i - a.offset[p * local]) * D;
      for (int64_t c = 0; c < D; ++c)
        y[t * D + c] += w * o[c];
    }
}

template <typename T, typename Kernels>
void backward(const Kernels &k, const Dims &d, const T *x, const T *router,
              const T *gate, const T *up, const T *down, const T *routing,
              const T *acts, const T *dy, T *dx, T *drouter, T *dgate,
              T *dup, T *ddown, const TensorParallel &tp,
              const ExpertParallel &ep, const T *probGrad) {
  const int X = groupSize(ep);
  const int64_t D = d.D, F = d.F, local = d.E / X;
  const Assignment a = assign(d, routing);
  // To each rank, per routed copy: the output gradient, the input again and
  // the routing weight.
  const int64_t width = 2 * D + 1;
  Buffers<T> out(X), in(X);
  for (int p = 0; p < X; ++p) {
    const int64_t begin = a.offset[p * local], end = a.offset[(p + 1) * local];
    out[p].resize((end - begin) * width);
    for (int64_t i = begin; i < end; ++i) {
      const int64_t pair = a.pairs[i], t = pair / d.K;
      T *row = out[p].data() + (i - begin) * width;
      std::copy_n(dy + t * D, D, row);
      std::copy_n(x + t * D, D, row + D);
      row[2 * D] = routeOf(d, routing, t).weight(pair % d.K);
    }
  }
  const Received got(acts, X, local);
  const T *saved = acts + X * local;
  for (int s = 0; s < X; ++s)
    in[s].resize(std::accumulate(got.rows[s].begin(), got.rows[s].end(),
                                 int64_t(0)) *
                 width);
  exchange(ep, 3, out, in);

  // Back to each source, per row: the input gradient and the routing
  // weight's.
  Buffers<T> ret(X), back(X);
  for (int s = 0; s < X; ++s)
    ret[s].resize(in[s].size() / width * (D + 1));
  std::vector<T> xe, dye, w, g, u, h, hw, dh, dg, du, dxe, dxe2;
  for (int64_t j = 0; j < local; ++j) {
    const int64_t n = got.ofExpert(j);
    if (n == 0)
      continue;
    for (std::vector<T> *v : {&xe, &dye, &dxe, &dxe2})
      v->resize(n * D);
    for (std::vector<T> *v : {&g, &u, &h, &hw, &dh, &dg, &du})
      v->resize(n * F);
    w.resize(n);
    for (int s = 0, r = 0; s < X; r += got.rows[s++][j])
      for (int64_t i = 0; i < got.rows[s][j]; ++i) {
        const T *row = in[s].data() + (got.offset(s, j) + i) * width;
        std::copy_n(row, D, dye.data() + (r + i) * D);
        std::copy_n(row + D, D, xe.data() + (r + i) * D);
        w[r + i] = row[2 * D];
        const T *act = saved + (got.first[s][j] + i) * 2 * F;
        std::copy_n(act, F, g.data() + (r + i) * F);
        std::copy_n(act + F, F, u.data() + (r + i) * F);
      }
    k.swiglu_fwd(g.data(), u.data(), h.data(), n * F);
    // down's input scaled by the routing weight w: its weight gradient is
    // then dy^T (w h), and its input gradient dy down_e, unscaled, gives
    // both dw = <dy down_e, h> and dh = w dy down_e.
    for (int64_t r = 0; r < n; ++r)
      for (int64_t c = 0; c < F; ++c)
        hw[r * F + c] = w[r] * h[r * F + c];
    k.linear_bwd(hw.data(), down + j * D * F, dye.data(), dh.data(),
                 at(ddown, j * D * F), nullptr, n, F, D);
    std::vector<T> dweight(n);
    for (int64_t r = 0; r < n; ++r) {
      T dot = 0;
      for (int64_t c = 0; c < F; ++c) {
        dot += dh[r * F + c] * h[r * F + c];
        dh[r * F + c] *= w[r];
      }
      dweight[r] = dot;
    }
    k.swiglu_bwd(g.data(), u.data(), dh.data(), dg.data(), du.data(), n * F);
    k.linear_bwd(xe.data(), gate + j * F * D, dg.data(), dxe.data(),
                 at(dgate, j * F * D), nullptr, n, D, F);
    k.linear_bwd(xe.data(), up + j * F * D, du.data(), dxe2.data(),
                 at(dup, j * F * D), nullptr, n, D, F);
    for (int s = 0, r = 0; s < X; r += got.rows[s++][j])
      for (int64_t i = 0; i < got.rows[s][j]; ++i) {
        T *row = ret[s].data() + (got.offset(s, j) + i) * (D + 1);
        for (int64_t c = 0; c < D; ++c)
          row[c] = dxe[(r + i) * D + c] + dxe2[(r + i) * D + c];
        row[D] = dweight[r + i];
      }
  }
  for (int p = 0; p < X; ++p)
    back[p].resize(out[p].size() / width * (D + 1));
  exchange(ep, 4, ret, back);

  std::fill_n(dx, d.N * D, T(0));
  std::vector<T> dweight(d.N * d.K, T(0));
  for (int p = 0; p < X; ++p)
    for (int64_t i = a.offset[p * local]; i < a.offset[(p + 1) * local]; ++i) {
      const int64_t pair = a.pairs[i];
      const T *row = back[p].data() + (i - a.offset[p * local]) * (D + 1);
      for (int64_t c = 0; c < D; ++c)
        dx[pair / d.K * D + c] += row[c];
      dweight[pair] = row[D];
    }
  if (tp.sumOverRanks) {
    if constexpr (std::is_same_v<T, float>)
      tp.sumOverRanks(dweight.data(), d.N * d.K);
    else
      throw std::logic_error("moe: tensor parallelism runs in fp32");
  }
  std::vector<T> dlogits(d.N * d.E), dxr(d.N * D);
  routeBackward(d, routing, dweight.data(), dlogits.data(), probGrad);
  k.linear_bwd(x, router, dlogits.data(),
               tp.routerInputGrad ? dxr.data() : nullptr, drouter, nullptr,
               d.N, D, d.E);
  if (tp.routerInputGrad)
    for (int64_t i = 0; i < d.N * D; ++i)
      dx[i] += dxr[i];
}

template <typename T>
void Balance::addRoutingSums(const Dims &d, const T *routing) {
  probSums.resize(d.E, 0.0);
  counts.resize(d.E, 0.0);
  for (int64_t t = 0; t < d.N; ++t) {
    Route<const T> r = routeOf(d, routing, t);
    for (int64_t e = 0; e < d.E; ++e)
      probSums[e] += r.prob(e);
    for (int64_t k = 0; k < d.K; ++k)
      counts[int64_t(r.expert(k))] += 1;
  }
}

Balance &Balance::operator+=(const Balance &o) {
  probSums.resize(o.probSums.size(), 0.0);
  counts.resize(o.counts.size(), 0.0);
  for (size_t e = 0; e < o.counts.size(); ++e) {
    probSums[e] += o.probSums[e];
    counts[e] += o.counts[e];
  }
  return *this;
}

double Balance::loss(double coef, int64_t k, double tokens) const {
  double sum = 0;
  for (size_t e = 0; e < counts.size(); ++e)
    sum += probSums[e] * counts[e];
  return coef * double(counts.size()) / (double(k) * tokens * tokens) * sum;
}

std::vector<double> Balance::probGrad(double coef, int64_t k, double tokens,
                                      double scale) const {
  std::vector<double> g(counts.size());
  for (size_t e = 0; e < counts.size(); ++e)
    g[e] = coef * double(counts.size()) * counts[e] /
           (double(k) * tokens * tokens) * scale;
  return g;
}

template void Balance::addRoutingSums<float>(const Dims &, const float *);
template void Balance::addRoutingSums<double>(const Dims &, const double *);

#define S1F_INSTANTIATE(T, K)                                                  \
  template void forward<T, K>(const K &, const Dims &, const T *, const T *,   \
                              const T *, const T *, const T *, T *,            \
                              std::vector<T> &, std::vector<T> &,              \
                              const ExpertParallel &);                         \
  template void backward<T, K>(const K &, const Dims &, const T *, const T *,  \
                               const T *, const T *, const T *, const T *,     \
                               const T *, const T *, T *, T *, T *, T *, T *,  \
                               const TensorParallel &, const ExpertParallel &, \
                               const T *);
S1F_INSTANTIATE(float, KernelSet)
S1F_INSTANTIATE(float, CpuKernels<float>)
S1F_INSTANTIATE(double, CpuKernels<double>)

} // namespace s1f::rt::moe
