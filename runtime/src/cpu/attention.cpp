//===- attention.cpp - Causal GQA attention of a chunk over its KV prefix -===//
//
// The Seq1F1B attention: a chunk's queries [start, start+len) read K/V rows
// [0, start+len) in place from the micro-batch's KV cache. Both directions
// walk the prefix in key tiles (FlashAttention-2 style): the forward keeps a
// running max and sum per query row and saves only the log-sum-exp; the
// backward recomputes each tile's probabilities from it. Memory is thus
// O(len * key_tile), never O(len * prefix). Per (sequence, head) and tile the
// products are GEMMs on strided views of the [tokens, heads*head_dim] rows.
//
//===----------------------------------------------------------------------===//

#include "seq1f1b/runtime/cpu_kernels.h"

#include "check.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace s1f::rt::cpu {
namespace {

void checkDims(const AttentionDims &d) {
  S1F_CHECK(d.batch >= 0 && d.len >= 0 && d.start >= 0,
            "attention: negative batch, len or start");
  S1F_CHECK(d.heads > 0 && d.kv_heads > 0 && d.heads % d.kv_heads == 0,
            "attention: heads (" + std::to_string(d.heads) +
                ") must be a positive multiple of kv_heads (" +
                std::to_string(d.kv_heads) + ")");
  S1F_CHECK(d.head_dim > 0 && d.key_tile > 0,
            "attention: head_dim and key_tile must be positive");
  S1F_CHECK(d.window >= 0,
            "attention: negative window " + std::to_string(d.window));
  S1F_CHECK(d.scale >= 0 && d.softcap >= 0,
            "attention: negative scale or softcap");
  S1F_CHECK(d.start + d.len <= d.max_seq,
            "attention: chunk [" + std::to_string(d.start) + ", " +
                std::to_string(d.start + d.len) + ") exceeds the KV cache of " +
                std::to_string(d.max_seq) + " rows");
}

/// Strided views of one (sequence b, query head h) pair.
struct HeadView {
  int64_t qStride, kvStride; // row strides of q/out and of the caches
  int64_t qOff, kvOff;       // element offsets of row 0 of this head
};

HeadView headView(const AttentionDims &d, int64_t b, int64_t h) {
  const int64_t qStride = d.heads * d.head_dim;
  const int64_t kvStride = d.kv_heads * d.head_dim;
  const int64_t kvHead = h / (d.heads / d.kv_heads);
  return {qStride, kvStride, b * d.len * qStride + h * d.head_dim,
          b * d.max_seq * kvStride + kvHead * d.head_dim};
}

/// Key tile [j0, j0+jn) is seen by query rows i >= firstRow (query i has
/// absolute position start+i and sees keys <= start+i); of those, row i sees
/// the tile's keys [first(i), visible(i)): all up to its own position, or,
/// with a window, only the last `window` of them.
struct Tile {
  int64_t j0, jn, firstRow, window;
  int64_t visible(int64_t start, int64_t i) const {
    return std::min(jn, start + i - j0 + 1);
  }
  int64_t first(int64_t start, int64_t i) const {
    return window ? std::clamp<int64_t>(start + i - window + 1 - j0, 0, jn) : 0;
  }
};

/// The first key tile any query of the chunk sees.
int64_t firstTile(const AttentionDims &d) {
  if (!d.window || d.start < d.window)
    return 0;
  return (d.start - d.window + 1) / d.key_tile * d.key_tile;
}

Tile keyTile(const AttentionDims &d, int64_t j0) {
  const int64_t end = d.start + d.len;
  return {j0, std::min(d.key_tile, end - j0),
          std::max<int64_t>(0, j0 - d.start), d.window};
}

template <typename T> T scoreScale(const AttentionDims &d) {
  return static_cast<T>(d.scale > 0 ? d.scale
                                    : 1.0 / std::sqrt(double(d.head_dim)));
}

/// Caps a tile's scores at +-c: s = c tanh(s / c). With `slope`, keeps
/// ds_capped/ds = 1 - tanh^2 for the backward.
template <typename T>
void capScores(T *s, T *slope, int64_t rows, int64_t cols, int64_t ld,
               double c) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j) {
      const T t = std::tanh(s[r * ld + j] / static_cast<T>(c));
      s[r * ld + j] = static_cast<T>(c) * t;
      if (slope)
        slope[r * ld + j] = T(1) - t * t;
    }
}

} // namespace

int64_t attention_workspace_size(const AttentionDims &d) {
  // fwd: scores tile + running max + running sum; bwd: P and dP tiles + D,
  // and with soft-capping the slope tile.
  return (d.softcap > 0 ? 3 : 2) * d.len * d.key_tile + 2 * d.len;
}

template <typename T>
void kv_cache_write(const T *k, const T *v, T *kcache, T *vcache,
                    const AttentionDims &d) {
  checkDims(d);
  const int64_t C = d.kv_heads * d.head_dim;
  for (int64_t b = 0; b < d.batch; ++b) {
    const int64_t dst = (b * d.max_seq + d.start) * C, src = b * d.len * C;
    std::copy_n(k + src, d.len * C, kcache + dst);
    std::copy_n(v + src, d.len * C, vcache + dst);
  }
}

template <typename T>
void kv_cache_write_bwd(const T *dkcache, const T *dvcache, T *dk, T *dv,
                        const AttentionDims &d) {
  checkDims(d);
  const int64_t C = d.kv_heads * d.head_dim;
  for (int64_t b = 0; b < d.batch; ++b) {
    const int64_t src = (b * d.max_seq + d.start) * C, dst = b * d.len * C;
    std::copy_n(dkcache + src, d.len * C, dk + dst);
    std::copy_n(dvcache + src, d.len * C, dv + dst);
  }
}

template <typename T>
void attention_fwd(const T *q, const T *kcache, const T *vcache, T *out, T *lse,
                   T *workspace, const AttentionDims &d) {
  checkDims(d);
  const int64_t hd = d.head_dim, len = d.len, ld = d.key_tile;
  const int64_t end = d.start + len;
  const T scale = scoreScale<T>(d);
  T *scores = workspace;
  T *rowMax = scores + len * ld;
  T *rowSum = rowMax + len;

  for (int64_t b = 0; b < d.batch; ++b) {
    for (int64_t h = 0; h < d.heads; ++h) {
      const HeadView v = headView(d, b, h);
      const T *qh = q + v.qOff;
      T *oh = out + v.qOff;
      const T *kh = kcache + v.kvOff, *vh = vcache + v.kvOff;
      std::fill_n(rowMax, len, -std::numeric_limits<T>::infinity());
      std::fill_n(rowSum, len, T(0));
      for (int64_t i = 0; i < len; ++i)
        std::fill_n(oh + i * v.qStride, hd, T(0));

      for (int64_t j0 = firstTile(d); j0 < end; j0 += d.key_tile) {
        const Tile t = keyTile(d, j0);
        const int64_t rows = len - t.firstRow;
        const T *qRows = qh + t.firstRow * v.qStride;
        gemm(false, true, rows, t.jn, hd, scale, qRows, v.qStride,
             kh + j0 * v.kvStride, v.kvStride, T(0), scores, ld);
        if (d.softcap > 0)
          capScores<T>(scores, nullptr, rows, t.jn, ld, d.softcap);
        // Online softmax: rescale what was accumulated under the old max.
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t i = t.firstRow + r, vis = t.visible(d.start, i);
          const int64_t lo = t.first(d.start, i);
          T *s = scores + r * ld;
          if (lo >= vis) { // the window ended before this tile
            std::fill(s, s + t.jn, T(0));
            continue;
          }
          const T newMax =
              std::max(rowMax[i], *std::max_element(s + lo, s + vis));
          double sum = 0;
          for (int64_t c = lo; c < vis; ++c) {
            s[c] = std::exp(s[c] - newMax);
            sum += s[c];
          }
          std::fill(s, s + lo, T(0));
          std::fill(s + vis, s + t.jn, T(0));
          const T corr = std::exp(rowMax[i] - newMax);
          rowSum[i] = rowSum[i] * corr + static_cast<T>(sum);
          rowMax[i] = newMax;
          if (corr != T(1))
            for (int64_t c = 0; c < hd; ++c)
              oh[i * v.qStride + c] *= corr;
        }
        gemm(false, false, rows, hd, t.jn, T(1), scores, ld,
             vh + j0 * v.kvStride, v.kvStride, T(1),
             oh + t.firstRow * v.qStride, v.qStride);
      }

      T *lseh = lse + (b * d.heads + h) * len;
      for (int64_t i = 0; i < len; ++i) {
        const T inv = T(1) / rowSum[i];
        for (int64_t c = 0; c < hd; ++c)
          oh[i * v.qStride + c] *= inv;
        lseh[i] = rowMax[i] + std::log(rowSum[i]);
      }
    }
  }
}

template <typename T>
void attention_bwd(const T *q, const T *kcache, const T *vcache, const T *out,
                   const T *dout, const T *lse, T *dq, T *dkcache, T *dvcache,
                   T *workspace, const AttentionDims &d) {
  checkDims(d);
  const int64_t hd = d.head_dim, len = d.len, ld = d.key_tile;
  const int64_t end = d.start + len;
  const T scale = scoreScale<T>(d);
  T *P = workspace;
  T *dP = P + len * ld;
  T *rowDot = dP + len * ld;
  T *slope = rowDot + 2 * len; // soft-capping only

  for (int64_t b = 0; b < d.batch; ++b) {
    for (int64_t h = 0; h < d.heads; ++h) {
      const HeadView v = headView(d, b, h);
      const T *qh = q + v.qOff, *oh = out + v.qOff, *doh = dout + v.qOff;
      T *dqh = dq + v.qOff;
      const T *kh = kcache + v.kvOff, *vh = vcache + v.kvOff;
      T *dkh = dkcache + v.kvOff, *dvh = dvcache + v.kvOff;
      const T *lseh = lse + (b * d.heads + h) * len;
      // rowDot_i = dO_i . O_i = sum_j P_ij dP_ij, the softmax backward's shift.
      for (int64_t i = 0; i < len; ++i) {
        double dot = 0;
        for (int64_t c = 0; c < hd; ++c)
          dot += static_cast<double>(doh[i * v.qStride + c]) *
                 oh[i * v.qStride + c];
        rowDot[i] = static_cast<T>(dot);
        std::fill_n(dqh + i * v.qStride, hd, T(0));
      }

      for (int64_t j0 = firstTile(d); j0 < end; j0 += d.key_tile) {
        const Tile t = keyTile(d, j0);
        const int64_t rows = len - t.firstRow;
        const T *qRows = qh + t.firstRow * v.qStride;
        const T *doRows = doh + t.firstRow * v.qStride;
        const T *kTile = kh + j0 * v.kvStride, *vTile = vh + j0 * v.kvStride;
        gemm(false, true, rows, t.jn, hd, scale, qRows, v.qStride, kTile,
             v.kvStride, T(0), P, ld);
        if (d.softcap > 0)
          capScores<T>(P, slope, rows, t.jn, ld, d.softcap);
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t i = t.firstRow + r, vis = t.visible(d.start, i);
          const int64_t lo = std::min(t.first(d.start, i), vis);
          T *p = P + r * ld;
          for (int64_t c = lo; c < vis; ++c)
            p[c] = std::exp(p[c] - lseh[i]);
          std::fill(p, p + lo, T(0));
          std::fill(p + vis, p + t.jn, T(0));
        }
        // dV += P^T dO;  dP = dO V^T;  dS = P * (dP - rowDot).
        gemm(true, false, t.jn, hd, rows, T(1), P, ld, doRows, v.qStride, T(1),
             dvh + j0 * v.kvStride, v.kvStride);
        gemm(false, true, rows, t.jn, hd, T(1), doRows, v.qStride, vTile,
             v.kvStride, T(0), dP, ld);
        for (int64_t r = 0; r < rows; ++r) {
          const T shift = rowDot[t.firstRow + r];
          for (int64_t c = 0; c < t.jn; ++c)
            dP[r * ld + c] = P[r * ld + c] * (dP[r * ld + c] - shift);
          if (d.softcap > 0) // through the cap: times 1 - tanh^2
            for (int64_t c = 0; c < t.jn; ++c)
              dP[r * ld + c] *= slope[r * ld + c];
        }
        // dQ += scale dS K;  dK += scale dS^T Q.
        gemm(false, false, rows, hd, t.jn, scale, dP, ld, kTile, v.kvStride,
             T(1), dqh + t.firstRow * v.qStride, v.qStride);
        gemm(true, false, t.jn, hd, rows, scale, dP, ld, qRows, v.qStride, T(1),
             dkh + j0 * v.kvStride, v.kvStride);
      }
    }
  }
}

#define S1F_INSTANTIATE(T)                                                     \
  template void kv_cache_write<T>(const T *, const T *, T *, T *,              \
                                  const AttentionDims &);                      \
  template void kv_cache_write_bwd<T>(const T *, const T *, T *, T *,          \
                                      const AttentionDims &);                  \
  template void attention_fwd<T>(const T *, const T *, const T *, T *, T *,    \
                                 T *, const AttentionDims &);                  \
  template void attention_bwd<T>(const T *, const T *, const T *, const T *,   \
                                 const T *, const T *, T *, T *, T *, T *,     \
                                 const AttentionDims &);
S1F_INSTANTIATE(float)
S1F_INSTANTIATE(double)

} // namespace s1f::rt::cpu
