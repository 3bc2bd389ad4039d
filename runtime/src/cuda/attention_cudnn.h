//===- attention_cudnn.h - The cuDNN attention engine -----------*- C++ -*-===//
//
// Internal to runtime/src/cuda. attention.cu checks the arguments, resolves
// the row strides (none is 0 here) and, when S1F_ATTENTION_ENGINE is cudnn
// or cudnn-split, calls these instead of its own kernels. Same contract as
// attention.h.
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_RUNTIME_CUDA_ATTENTION_CUDNN_H
#define SEQ1F1B_RUNTIME_CUDA_ATTENTION_CUDNN_H

#include "seq1f1b/runtime/cuda/attention.h"

#include <cudnn_graph.h>

#include <deque>
#include <string>
#include <vector>

namespace s1f::rt::cuda::detail {

//===----------------------------------------------------------------------===//
// The operation graphs the engine hands to cuDNN, also as data: what the unit
// tests evaluate on the host to check that they compute attention.
//===----------------------------------------------------------------------===//

struct GraphTensor {
  int64_t uid;
  std::string name;
  std::vector<int64_t> dims, strides;
  cudnnDataType_t type;
  bool isVirtual, byValue;
  double value; ///< a by-value scalar's
};

struct GraphOp {
  enum Kind { Matmul, Pointwise, Reduction, Reshape } kind;
  std::string name;
  int mode;     ///< cudnnPointwiseMode_t or cudnnReduceTensorOp_t
  int64_t axis; ///< GEN_INDEX's
  std::vector<const GraphTensor *> in; ///< pointwise: x, then b, then t
  const GraphTensor *out;
};

struct GraphTrace {
  std::deque<GraphTensor> tensors; ///< stable: the operations point here
  std::vector<GraphOp> ops;
};

/// Unique ids of the tensors in memory (the variant pack binds them).
namespace uid {
enum : int64_t {
  Q = 1,  ///< [B, heads, len, head_dim] over q's rows
  K,      ///< K^T: [B, kv_heads, head_dim, start+len] over the KV cache
  V,      ///< V (forward) or V^T (backward), over the KV cache
  O,      ///< the output / the forward's output
  Lse,    ///< [B, heads, len, 1] fp32
  Dout,   ///< dO, laid out as O
  Dq,     ///< dQ over dq's rows
  DkPart, ///< dK of the prefix: [B, kv_heads, start+len, head_dim], packed
  DvPart, ///< dV of the prefix, the same
  Delta,  ///< rowsum(dO * O), [B, heads, len, 1] fp32, workspace
  DqAccum ///< dQ in fp32, [B, heads, len, head_dim] packed, workspace
};
} // namespace uid

/// Which of a chunk's keys [0, start+len) one graph covers.
///
/// Engine `cudnn` runs one graph over all of them (All), with the causal
/// mask aligned bottom-right. Engine `cudnn-split` runs two when start > 0,
/// each one a shape cuDNN's fused kernels know best, and merges them:
///  * Own: keys [start, start+len), K/V bound at cache row `start`: the
///    plain causal mask of a whole sequence. The forward writes out and lse;
///    the backward writes dQ and rows [start, start+len) of the dK/dV parts.
///  * Prefix: keys [0, start), no mask. The forward writes its output to a
///    packed [B, len, heads*head_dim] temporary and its lse to a [B, heads,
///    len] one, which mergeAttentionParts folds into out and lse. The
///    backward reads the merged out and lse (so its probabilities are the
///    whole row's), writes dQ to a packed temporary that addRows adds to dq,
///    and rows [0, start) of the dK/dV parts.
/// The dK/dV parts keep start+len rows per sequence in every case.
enum class CudnnKeys { All, Own, Prefix };

/// The forward's (backward false) or the backward's graph for this shape,
/// strides (none 0) and keys, recorded only: no cuDNN needed.
GraphTrace cudnnAttentionGraph(bool backward, const cpu::AttentionDims &d,
                               const AttentionStrides &s,
                               CudnnKeys keys = CudnnKeys::All);

/// Empty when cuDNN's fused attention can run here; otherwise why not.
std::string cudnnUnavailableReason();

/// cuDNN's JSON description of the current GPU's properties.
std::string cudnnDeviceJson();

/// Builds the forward and backward operation graphs for this shape and
/// strides (none 0), those of both engines, without running them: cuDNN
/// checks every operation as it is finalized, on the host. With `deviceJson`
/// (cuDNN's JSON description of a device's properties) it also finds an engine
/// and builds the execution plans for that device, still without a GPU. Throws
/// on the first step cuDNN rejects.
void cudnnCheckAttentionGraphs(const cpu::AttentionDims &d,
                               const AttentionStrides &s,
                               const std::string &deviceJson = "");

/// `split`: engine `cudnn-split` (see CudnnKeys), else `cudnn`.
void cudnnAttentionFwd(const bf16 *q, const bf16 *kcache, const bf16 *vcache,
                       bf16 *out, float *lse, const cpu::AttentionDims &d,
                       const AttentionStrides &s, bool split,
                       cudaStream_t stream);

/// fp32 elements of attention_bwd's workspace on this engine (builds, or
/// finds, the backward's plans for this shape).
int64_t cudnnAttentionBwdWorkspace(const cpu::AttentionDims &d,
                                   const AttentionStrides &s, bool split);

void cudnnAttentionBwd(const bf16 *q, const bf16 *kcache, const bf16 *vcache,
                       const bf16 *out, const bf16 *dout, const float *lse,
                       bf16 *dq, bf16 *dk, bf16 *dv, float *dkbuf, float *dvbuf,
                       float *workspace, const cpu::AttentionDims &d,
                       const AttentionStrides &s, bool split,
                       cudaStream_t stream);

/// Folds the Prefix forward's temporaries into the Own forward's results:
/// lse = log(e^lse + e^lsePrefix), out = e^(lse_own - lse) out +
/// e^(lsePrefix - lse) outPrefix, per query row and head. out has row
/// stride outStride; outPrefix is packed.
void mergeAttentionParts(bf16 *out, float *lse, const bf16 *outPrefix,
                         const float *lsePrefix, const cpu::AttentionDims &d,
                         int64_t outStride, cudaStream_t stream);

/// dq[b, r, 0:heads*head_dim] += part[b, r, :] for the chunk's rows; dq has
/// row stride dqStride, part is packed.
void addRows(bf16 *dq, const bf16 *part, const cpu::AttentionDims &d,
             int64_t dqStride, cudaStream_t stream);

/// cuDNN's dK/dV of the whole prefix (bf16 [B, start+len, kv_heads*
/// head_dim], packed) into the contract's outputs: rows [0, start) ADDED
/// into dkbuf/dvbuf, rows [start, start+len) written to dk/dv (row stride
/// dkvStride) as buffer row + part. Null buffers read as zeros.
void mergeKvGrad(const bf16 *partK, const bf16 *partV, float *dkbuf,
                 float *dvbuf, bf16 *dk, bf16 *dv, const cpu::AttentionDims &d,
                 int64_t dkvStride, cudaStream_t stream);

} // namespace s1f::rt::cuda::detail

#endif // SEQ1F1B_RUNTIME_CUDA_ATTENTION_CUDNN_H
