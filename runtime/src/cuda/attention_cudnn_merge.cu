//===- attention_cudnn_merge.cu - cuDNN's results into the contract -------===//
//
// cuDNN's attention backward writes the gradients of all the prefix keys;
// Seq1F1B wants the earlier chunks' share ADDED to the fp32 KV-gradient
// buffers and the chunk's own keys finished (attention.h). One pass over the
// prefix rows, 8 columns (16 bytes of bf16) per thread.
//
// Engine cudnn-split computes a chunk's attention in two parts (its own keys,
// the prefix keys); their outputs are merged by their log-sum-exps, and
// their dQ added.
//
//===----------------------------------------------------------------------===//

#include "attention_cudnn.h"

#include "common.cuh"

namespace s1f::rt::cuda::detail {
namespace {

constexpr int kCols = 8;

struct MergeArgs {
  const bf16 *part[2]; ///< k, v: [B, rows, width]
  float *buf[2];       ///< [B, maxSeq, width] or nullptr
  bf16 *own[2];        ///< [B, len, stride]
  int64_t rows, width, maxSeq, start, stride;
};

__global__ void mergeKernel(MergeArgs a, int64_t half) {
  const int64_t groups = a.width / kCols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < 2 * half;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int t = i < half ? 0 : 1; // k, then v
    const int64_t cell = i - t * half, col = (cell % groups) * kCols;
    const int64_t row = (cell / groups) % a.rows, b = cell / groups / a.rows;
    float part[kCols], lo[4] = {}, hi[4] = {};
    loadPack<bf16, kCols>(a.part[t] + (b * a.rows + row) * a.width + col, part);
    float *buf =
        a.buf[t] ? a.buf[t] + (b * a.maxSeq + row) * a.width + col : nullptr;
    if (buf) {
      loadPack<float, 4>(buf, lo);
      loadPack<float, 4>(buf + 4, hi);
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      lo[j] += part[j];
      hi[j] += part[4 + j];
    }
    if (row < a.start) {
      storePack<float, 4>(buf, lo);
      storePack<float, 4>(buf + 4, hi);
    } else {
      float sum[kCols];
#pragma unroll
      for (int j = 0; j < 4; ++j)
        sum[j] = lo[j], sum[4 + j] = hi[j];
      const int64_t r = b * (a.rows - a.start) + row - a.start;
      storePack<bf16, kCols>(a.own[t] + r * a.stride + col, sum);
    }
  }
}

/// One thread per (row, head): both parts' lse, then the head's columns.
__global__ void mergePartsKernel(bf16 *out, float *lse, const bf16 *outPrefix,
                                 const float *lsePrefix, int64_t len, int heads,
                                 int headDim, int64_t outStride, int64_t n) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= n)
    return;
  const int h = int(i % heads);
  const int64_t row = i / heads, b = row / len, r = row % len;
  const int64_t at = (b * heads + h) * len + r; // [B, heads, len]
  const float own = lse[at], prefix = lsePrefix[at];
  const float m = fmaxf(own, prefix);
  const float wOwn = expf(own - m), wPrefix = expf(prefix - m);
  const float sum = wOwn + wPrefix;
  bf16 *o = out + row * outStride + int64_t(h) * headDim;
  const bf16 *p = outPrefix + (row * heads + h) * int64_t(headDim);
  for (int c = 0; c < headDim; c += kCols) {
    float x[kCols], y[kCols];
    loadPack<bf16, kCols>(o + c, x);
    loadPack<bf16, kCols>(p + c, y);
#pragma unroll
    for (int j = 0; j < kCols; ++j)
      x[j] = (wOwn * x[j] + wPrefix * y[j]) / sum;
    storePack<bf16, kCols>(o + c, x);
  }
  lse[at] = m + logf(sum);
}

__global__ void addRowsKernel(bf16 *dq, const bf16 *part, int64_t width,
                              int64_t stride, int64_t n) {
  const int64_t groups = width / kCols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = i / groups, col = (i % groups) * kCols;
    float x[kCols], y[kCols];
    loadPack<bf16, kCols>(dq + row * stride + col, x);
    loadPack<bf16, kCols>(part + row * width + col, y);
#pragma unroll
    for (int j = 0; j < kCols; ++j)
      x[j] += y[j];
    storePack<bf16, kCols>(dq + row * stride + col, x);
  }
}

} // namespace

void mergeKvGrad(const bf16 *partK, const bf16 *partV, float *dkbuf,
                 float *dvbuf, bf16 *dk, bf16 *dv, const cpu::AttentionDims &d,
                 int64_t dkvStride, cudaStream_t stream) {
  MergeArgs a{
      {partK, partV},          {dkbuf, dvbuf}, {dk, dv}, d.start + d.len,
      d.kv_heads * d.head_dim, d.max_seq,      d.start,  dkvStride};
  // Rows before the chunk are added to the buffers, so these must exist.
  S1F_CUDA_REQUIRE(d.start == 0 || (dkbuf && dvbuf),
                   "attention: a chunk with start > 0 needs the KV-gradient "
                   "buffers");
  const int64_t half = d.batch * a.rows * (a.width / kCols);
  mergeKernel<<<gridFor(2 * half, 256), 256, 0, stream>>>(a, half);
  S1F_CUDA_CHECK_LAUNCH();
}

void mergeAttentionParts(bf16 *out, float *lse, const bf16 *outPrefix,
                         const float *lsePrefix, const cpu::AttentionDims &d,
                         int64_t outStride, cudaStream_t stream) {
  const int64_t n = d.batch * d.len * d.heads;
  mergePartsKernel<<<ceilDiv(n, 256), 256, 0, stream>>>(
      out, lse, outPrefix, lsePrefix, d.len, int(d.heads), int(d.head_dim),
      outStride, n);
  S1F_CUDA_CHECK_LAUNCH();
}

void addRows(bf16 *dq, const bf16 *part, const cpu::AttentionDims &d,
             int64_t dqStride, cudaStream_t stream) {
  const int64_t width = d.heads * d.head_dim;
  const int64_t n = d.batch * d.len * (width / kCols);
  addRowsKernel<<<gridFor(n, 256), 256, 0, stream>>>(dq, part, width, dqStride,
                                                     n);
  S1F_CUDA_CHECK_LAUNCH();
}

} // namespace s1f::rt::cuda::detail
