//===- attention_cudnn.h - The cuDNN engine of attention_fwd/_bwd -*- C++
//-*-===//
//
// Internal to runtime/src/cuda. attention.cu checks the arguments, resolves
// the row strides (none is 0 here) and, when S1F_ATTENTION_ENGINE=cudnn,
// calls these instead of its own kernels. Same contract as attention.h.
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_RUNTIME_CUDA_ATTENTION_CUDNN_H
#define SEQ1F1B_RUNTIME_CUDA_ATTENTION_CUDNN_H

#include "seq1f1b/runtime/cuda/attention.h"

#include <string>

namespace s1f::rt::cuda::detail {

/// Empty when cuDNN's fused attention can run here; otherwise why not.
std::string cudnnUnavailableReason();

/// cuDNN's JSON description of the current GPU's properties.
std::string cudnnDeviceJson();

/// Builds the forward and backward operation graphs for this shape and
/// strides (none 0) without running them: cuDNN checks every operation as it
/// is finalized, on the host. With `deviceJson` (cuDNN's JSON description of
/// a device's properties) it also finds an engine and builds the execution
/// plans for that device, still without a GPU. Throws on the first step
/// cuDNN rejects.
void cudnnCheckAttentionGraphs(const cpu::AttentionDims &d,
                               const AttentionStrides &s,
                               const std::string &deviceJson = "");

void cudnnAttentionFwd(const bf16 *q, const bf16 *kcache, const bf16 *vcache,
                       bf16 *out, float *lse, const cpu::AttentionDims &d,
                       const AttentionStrides &s, cudaStream_t stream);

/// fp32 elements of attention_bwd's workspace on this engine (builds, or
/// finds, the backward's plan for this shape).
int64_t cudnnAttentionBwdWorkspace(const cpu::AttentionDims &d,
                                   const AttentionStrides &s);

void cudnnAttentionBwd(const bf16 *q, const bf16 *kcache, const bf16 *vcache,
                       const bf16 *out, const bf16 *dout, const float *lse,
                       bf16 *dq, bf16 *dk, bf16 *dv, float *dkbuf, float *dvbuf,
                       float *workspace, const cpu::AttentionDims &d,
                       const AttentionStrides &s, cudaStream_t stream);

/// cuDNN's dK/dV of the whole prefix (bf16 [B, start+len, kv_heads*
/// head_dim], packed) into the contract's outputs: rows [0, start) ADDED
/// into dkbuf/dvbuf, rows [start, start+len) written to dk/dv (row stride
/// dkvStride) as buffer row + part. Null buffers read as zeros.
void mergeKvGrad(const bf16 *partK, const bf16 *partV, float *dkbuf,
                 float *dvbuf, bf16 *dk, bf16 *dv, const cpu::AttentionDims &d,
                 int64_t dkvStride, cudaStream_t stream);

} // namespace s1f::rt::cuda::detail

#endif // SEQ1F1B_RUNTIME_CUDA_ATTENTION_CUDNN_H
