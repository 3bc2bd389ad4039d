//===- attention_fp32.cu - fp32 attention with the CPU contract -----------===//
//
// The fp32 twin of cpu::attention_fwd/_bwd (attention.h has the contract):
// one warp per score row, lanes over head_dim (at most 256, 8 per lane), an
// online softmax in the forward; the backward recomputes probabilities from
// the log-sum-exp, dQ per query row, dK/dV per key row (each warp owns its
// key, so the buffer rows are added without atomics). A sliding window
// narrows every loop to the keys (or queries) it lets through. Meant for
// checking training steps in fp32, where exactness matters and speed does not.
//
//===----------------------------------------------------------------------===//

#include "seq1f1b/runtime/cuda/attention.h"

#include "common.cuh"

#include <cmath>
#include <string>

namespace s1f::rt::cuda {
namespace {

constexpr int kMaxPerLane = 8; // head_dim <= 256
constexpr int kWarpsPerBlock = 4;

struct Dims {
  int64_t heads, kvHeads, hd, maxSeq, start, len;
  float scale;
  int64_t window; ///< 0: the whole prefix

  /// The first key absolute position p sees.
  __device__ int64_t firstKey(int64_t p) const {
    return window && p >= window ? p - window + 1 : 0;
  }
};

/// Sum over the warp of x[c] * y[c], c = lane, lane+32, ... < hd.
__device__ __forceinline__ float dot(const float *x, const float *y,
                                     int64_t hd, int lane) {
  float s = 0.f;
  for (int64_t c = lane; c < hd; c += 32)
    s += x[c] * y[c];
  return detail::warpSum(s);
}

__global__ void fwdKernel(const float *q, const float *kc, const float *vc,
                          float *out, float *lse, Dims d, int64_t rows) {
  const int64_t w = int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x & 31;
  if (w >= rows)
    return;
  // w = (b * len + i) * heads + h
  const int64_t h = w % d.heads, bi = w / d.heads;
  const int64_t b = bi / d.len, i = bi % d.len;
  const int64_t kvh = h / (d.heads / d.kvHeads), kvw = d.kvHeads * d.hd;
  const float *qi = q + bi * d.heads * d.hd + h * d.hd;
  float acc[kMaxPerLane] = {};
  float m = -INFINITY, l = 0.f;
  for (int64_t j = d.firstKey(d.start + i); j <= d.start + i; ++j) {
    const int64_t row = (b * d.maxSeq + j) * kvw + kvh * d.hd;
    const float s = dot(qi, kc + row, d.hd, lane) * d.scale;
    const float mNew = fmaxf(m, s);
    const float alpha = expf(m - mNew), p = expf(s - mNew);
    l = l * alpha + p;
    for (int r = 0; r < kMaxPerLane && lane + 32 * r < d.hd; ++r)
      acc[r] = acc[r] * alpha + p * vc[row + lane + 32 * r];
    m = mNew;
  }
  float *oi = out + bi * d.heads * d.hd + h * d.hd;
  for (int r = 0; r < kMaxPerLane && lane + 32 * r < d.hd; ++r)
    oi[lane + 32 * r] = acc[r] / l;
  if (lane == 0)
    lse[(b * d.heads + h) * d.len + i] = m + logf(l);
}

__global__ void dqKernel(const float *q, const float *kc, const float *vc,
                         const float *out, const float *dout, const float *lse,
                         float *dq, Dims d, int64_t rows) {
  const int64_t w = int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x & 31;
  if (w >= rows)
    return;
  const int64_t h = w % d.heads, bi = w / d.heads;
  const int64_t b = bi / d.len, i = bi % d.len;
  const int64_t kvh = h / (d.heads / d.kvHeads), kvw = d.kvHeads * d.hd;
  const int64_t off = bi * d.heads * d.hd + h * d.hd;
  const float delta = dot(dout + off, out + off, d.hd, lane);
  const float L = lse[(b * d.heads + h) * d.len + i];
  float acc[kMaxPerLane] = {};
  for (int64_t j = d.firstKey(d.start + i); j <= d.start + i; ++j) {
    const int64_t row = (b * d.maxSeq + j) * kvw + kvh * d.hd;
    const float p = expf(dot(q + off, kc + row, d.hd, lane) * d.scale - L);
    const float ds = p * (dot(dout + off, vc + row, d.hd, lane) - delta);
    for (int r = 0; r < kMaxPerLane && lane + 32 * r < d.hd; ++r)
      acc[r] += ds * kc[row + lane + 32 * r];
  }
  for (int r = 0; r < kMaxPerLane && lane + 32 * r < d.hd; ++r)
    dq[off + lane + 32 * r] = acc[r] * d.scale;
}

/// One warp per (b, key j, kv head): the query rows of every head of the
/// group that see key j.
__global__ void dkvKernel(const float *q, const float *kc, const float *vc,
                          const float *out, const float *dout,
                          const float *lse, float *dkc, float *dvc, Dims d,
                          int64_t keys, int64_t batch) {
  const int64_t w = int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x & 31;
  if (w >= batch * keys * d.kvHeads)
    return;
  const int64_t kvh = w % d.kvHeads, bj = w / d.kvHeads;
  const int64_t b = bj / keys, j = bj % keys;
  const int64_t group = d.heads / d.kvHeads, kvw = d.kvHeads * d.hd;
  const int64_t row = (b * d.maxSeq + j) * kvw + kvh * d.hd;
  float dk[kMaxPerLane] = {}, dv[kMaxPerLane] = {};
  // The queries that see key j: from position j on, and with a window
  // only the `window` of them starting there.
  int64_t lastQuery = d.len;
  if (d.window && j - d.start + d.window < lastQuery)
    lastQuery = j - d.start + d.window;
  for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h)
    for (int64_t i = j > d.start ? j - d.start : 0; i < lastQuery; ++i) {
      const int64_t off = ((b * d.len + i) * d.heads + h) * d.hd;
      const float L = lse[(b * d.heads + h) * d.len + i];
      const float delta = dot(dout + off, out + off, d.hd, lane);
      const float p = expf(dot(q + off, kc + row, d.hd, lane) * d.scale - L);
      const float ds = p * (dot(dout + off, vc + row, d.hd, lane) - delta);
      for (int r = 0; r < kMaxPerLane && lane + 32 * r < d.hd; ++r) {
        dk[r] += ds * q[off + lane + 32 * r];
        dv[r] += p * dout[off + lane + 32 * r];
      }
    }
  for (int r = 0; r < kMaxPerLane && lane + 32 * r < d.hd; ++r) {
    dkc[row + lane + 32 * r] += dk[r] * d.scale;
    dvc[row + lane + 32 * r] += dv[r];
  }
}

Dims makeDims(const cpu::AttentionDims &a) {
  S1F_CUDA_REQUIRE(a.batch > 0 && a.heads > 0 && a.kv_heads > 0 &&
                       a.len > 0 && a.heads % a.kv_heads == 0,
                   "attention_fp32: bad batch/heads/kv_heads/len");
  S1F_CUDA_REQUIRE(a.head_dim > 0 && a.head_dim <= 32 * kMaxPerLane,
                   "attention_fp32: head_dim must be in 1.." +
                       std::to_string(32 * kMaxPerLane));
  S1F_CUDA_REQUIRE(a.start >= 0 && a.start + a.len <= a.max_seq,
                   "attention_fp32: the chunk must lie within max_seq");
  S1F_CUDA_REQUIRE(a.window >= 0, "attention_fp32: negative window");
  S1F_CUDA_REQUIRE(a.scale == 0 && a.softcap == 0,
                   "attention_fp32: rescaled or soft-capped scores (Gemma 2) "
                   "run on the CPU kernels only");
  return {a.heads,
          a.kv_heads,
          a.head_dim,
          a.max_seq,
          a.start,
          a.len,
          float(1.0 / std::sqrt(double(a.head_dim))),
          a.window};
}

unsigned blocksFor(int64_t warps) {
  return detail::ceilDiv(warps, kWarpsPerBlock);
}

} // namespace

void attention_fwd_fp32(const float *q, const float *kcache,
                        const float *vcache, float *out, float *lse,
                        const cpu::AttentionDims &a, cudaStream_t stream) {
  const Dims d = makeDims(a);
  const int64_t rows = a.batch * a.len * a.heads;
  fwdKernel<<<blocksFor(rows), 32 * kWarpsPerBlock, 0, stream>>>(
      q, kcache, vcache, out, lse, d, rows);
  S1F_CUDA_CHECK_LAUNCH();
}

void attention_bwd_fp32(const float *q, const float *kcache,
                        const float *vcache, const float *out,
                        const float *dout, const float *lse, float *dq,
                        float *dkcache, float *dvcache,
                        const cpu::AttentionDims &a, cudaStream_t stream) {
  const Dims d = makeDims(a);
  const int64_t rows = a.batch * a.len * a.heads;
  dqKernel<<<blocksFor(rows), 32 * kWarpsPerBlock, 0, stream>>>(
      q, kcache, vcache, out, dout, lse, dq, d, rows);
  S1F_CUDA_CHECK_LAUNCH();
  const int64_t keys = a.start + a.len;
  dkvKernel<<<blocksFor(a.batch * keys * a.kv_heads), 32 * kWarpsPerBlock, 0,
              stream>>>(q, kcache, vcache, out, dout, lse, dkcache, dvcache, d,
                        keys, a.batch);
  S1F_CUDA_CHECK_LAUNCH();
}

} // namespace s1f::rt::cuda
