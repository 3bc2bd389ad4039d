//===- attention_cudnn_merge.cu - cuDNN's dK/dV into the KV contract ------===//
//
// cuDNN's attention backward writes the gradients of all the prefix keys;
// Seq1F1B wants the earlier chunks' share ADDED to the fp32 KV-gradient
// buffers and the chunk's own keys finished (attention.h). One pass over the
// prefix rows, 8 columns (16 bytes of bf16) per thread.
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

} // namespace s1f::rt::cuda::detail
