//===- attention.h - Attention over the KV prefix on the GPU ----*- C++ -*-===//
//
// Causal grouped-query attention of one sequence chunk over its KV prefix,
// forward and backward, bf16 in and out, fp32 accumulation, on tensor cores
// (mma.sync m16n8k16). The CUDA twin of cpu::attention_fwd/_bwd:
//
//  * A chunk covers the absolute tokens [start, start + len) of each of the B
//    sequences. Its queries read keys/values [0, start + len) IN PLACE from
//    the stage's per-micro-batch KV cache ([B, max_seq, kv_heads*head_dim]);
//    the causal mask is aligned bottom-right (query start+i sees keys
//    0..start+i). Query head h uses kv head h / (heads / kv_heads); the
//    scale is 1/sqrt(head_dim).
//  * The forward saves the fp32 log-sum-exp of each score row, [B, heads,
//    len]; probabilities are never stored (FlashAttention-2 style).
//  * The backward never concatenates: it adds the chunk's contribution to
//    the keys of EARLIER chunks into the micro-batch's fp32 KV-gradient
//    buffers (rows [0, start)), and for the chunk's own keys (rows [start,
//    start + len)), whose gradients are complete once this last contribution
//    is in (Seq1F1B runs the backwards of a micro-batch chunk-descending),
//    writes the final bf16 dk/dv: buffer rows + this chunk's part.
//  * Row strides are explicit so that q/k/v can live in one fused QKV
//    buffer (0 = packed).
//
// head_dim must be 64 or 128; strides multiples of 8 elements and pointers
// 16-byte aligned. Violations throw std::invalid_argument naming the rule.
//
// Three engines implement the bf16 pair, chosen per call by the environment
// variable S1F_ATTENTION_ENGINE: `own` (attention.cu, ours), `cudnn`
// (attention_cudnn.cpp: cuDNN's fused flash attention through its graph API,
// loaded at run time, one call with the bottom-right mask) or `cudnn-split`
// (the same kernels called twice for a chunk after the first: its own keys
// with the plain causal mask, the prefix without a mask, merged by
// log-sum-exp). Unset, `cudnn-split` where cuDNN can run and `own` where it
// cannot: on an H200 it ran a 7B layer 1.9x faster than `own`, and its 4
// chunks 5-7% faster than `cudnn` (docs/benchmarks.md).
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_RUNTIME_CUDA_ATTENTION_H
#define SEQ1F1B_RUNTIME_CUDA_ATTENTION_H

#include "seq1f1b/runtime/cpu_kernels.h" // cpu::AttentionDims

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>

namespace s1f::rt::cuda {

using bf16 = __nv_bfloat16;

/// Row strides in elements; 0 means packed (heads*head_dim for q, out, dout,
/// dq; kv_heads*head_dim for dk, dv).
struct AttentionStrides {
  int64_t q = 0;   ///< q rows
  int64_t out = 0; ///< out and dout rows
  int64_t dq = 0;  ///< dq rows
  int64_t dkv = 0; ///< dk and dv rows
};

/// The implementations of attention_fwd/_bwd (bf16).
enum class AttentionEngine { Own, Cudnn, CudnnSplit };

/// The engine S1F_ATTENTION_ENGINE names (unset or empty: CudnnSplit where
/// cudnn_unavailable_reason() is empty, else Own). Any other value than
/// `own`, `cudnn` or `cudnn-split` throws std::invalid_argument.
AttentionEngine attention_engine();

/// `own`, `cudnn` or `cudnn-split`, as S1F_ATTENTION_ENGINE spells it.
const char *attention_engine_name(AttentionEngine e);

/// Empty when the cudnn engines can run in this process; otherwise why not
/// (built without cuDNN's headers, libcudnn.so.9 not found, too old).
std::string cudnn_unavailable_reason();

/// cuDNN's JSON description of the current GPU: what lets cuDNN build plans
/// for that GPU on a machine without one (the unit tests' H200 comes from
/// here). Throws std::runtime_error where the cudnn engine cannot run.
std::string cudnn_device_json();

/// out[B, len, heads*head_dim] = softmax(scale q k^T + mask) v; lse[B, heads,
/// len] (fp32, natural log) is saved for the backward. d.key_tile is ignored.
void attention_fwd(const bf16 *q, const bf16 *kcache, const bf16 *vcache,
                   bf16 *out, float *lse, const cpu::AttentionDims &d,
                   const AttentionStrides &s = {},
                   cudaStream_t stream = nullptr);

/// fp32 elements of the workspace attention_bwd needs with the same dims,
/// strides and engine. Own engine: the row sums of dout*out (B*heads*len)
/// and the fp32 dQ accumulator (B*len*heads*head_dim). cudnn engine: those,
/// cuDNN's bf16 dK/dV of the prefix (2*B*(start+len)*kv_heads*head_dim
/// halves) and cuDNN's own workspace (building the plan: needs a GPU);
/// cudnn-split with start > 0 adds a bf16 dQ (B*len*heads*head_dim halves).
int64_t attention_bwd_workspace_size(const cpu::AttentionDims &d,
                                     const AttentionStrides &s = {});

/// Writes dq [B, len, heads*head_dim] and the chunk's own dk, dv [B, len,
/// kv_heads*head_dim] (bf16), and ADDS the contribution to earlier keys into
/// rows [0, start) of dkbuf/dvbuf ([B, max_seq, kv_heads*head_dim], fp32,
/// zeroed by the caller before the micro-batch's first backward). Rows
/// [start, start+len) of the buffers are read (what later chunks added), not
/// written; rows from start+len on are untouched. dkbuf/dvbuf may be nullptr
/// only when start == 0 and no later chunk exists (one whole sequence).
void attention_bwd(const bf16 *q, const bf16 *kcache, const bf16 *vcache,
                   const bf16 *out, const bf16 *dout, const float *lse,
                   bf16 *dq, bf16 *dk, bf16 *dv, float *dkbuf, float *dvbuf,
                   float *workspace, const cpu::AttentionDims &d,
                   const AttentionStrides &s = {},
                   cudaStream_t stream = nullptr);

//===----------------------------------------------------------------------===//
// fp32 attention with the CPU kernels' exact contract (cpu::attention_fwd/
// _bwd at T = float): dkcache/dvcache rows [0, start+len) ADDED, any
// head_dim, no workspace. Plain CUDA cores, one warp per score row: for the
// fp32 mode that checks whole training steps against the CPU, not for speed.
//===----------------------------------------------------------------------===//

void attention_fwd_fp32(const float *q, const float *kcache,
                        const float *vcache, float *out, float *lse,
                        const cpu::AttentionDims &d,
                        cudaStream_t stream = nullptr);
void attention_bwd_fp32(const float *q, const float *kcache,
                        const float *vcache, const float *out,
                        const float *dout, const float *lse, float *dq,
                        float *dkcache, float *dvcache,
                        const cpu::AttentionDims &d,
                        cudaStream_t stream = nullptr);

} // namespace s1f::rt::cuda

#endif // SEQ1F1B_RUNTIME_CUDA_ATTENTION_H
