//===- kernels.h - CUDA kernels of the runtime ------------------*- C++ -*-===//
//
// The CUDA twins of the CPU reference kernels (cpu_kernels.h), with the same
// argument order and conventions so that an executor can dispatch to either:
//
//  * Row-major, dense; activations [B, S, ...], N = B*S rows.
//  * Callers own every buffer (device memory); no kernel allocates.
//  * Gradients of activations (dx, dlogits, ...) are WRITTEN. Gradients of
//    parameters (dgamma, dbeta, db, dtable) and accumulators (loss sums,
//    sums of squares) are ADDED. Optional outputs are skipped when nullptr.
//
// What differs from the CPU kernels (docs/cuda.md has the long form):
//  * Storage type T is __nv_bfloat16 (bf16 training) or float (fp32 mode).
//    All arithmetic and every reduction runs in fp32.
//  * Parameter gradients, saved statistics (mean, rstd, lse), optimizer state
//    and master weights are always fp32 (`float`), whatever T is.
//  * Every function is asynchronous on `stream` (default: the legacy default
//    stream). Losses and sums of squares are added into DEVICE accumulators,
//    so a training step never synchronizes for them.
//  * Shapes are checked on the host (std::invalid_argument naming file and
//    line, as on the CPU). Token ids, targets and positions live on the device
//    and are NOT checked there: an id outside [0, V) yields a NaN row
//    (embedding_fwd) or is skipped (embedding_bwd); a target >= V adds NaN to
//    the loss and writes a NaN gradient row, so the error cannot go unseen.
//  * Parameter-gradient reductions use fp32 atomics: results are not bitwise
//    deterministic from run to run.
//
// Checked on an H200 against the fp64 CPU reference (docs/cuda.md).
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_RUNTIME_CUDA_KERNELS_H
#define SEQ1F1B_RUNTIME_CUDA_KERNELS_H

#include "seq1f1b/runtime/cpu_kernels.h" // AdamWConfig

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace s1f::rt::cuda {

using bf16 = __nv_bfloat16;

//===----------------------------------------------------------------------===//
// Embeddings (T = bf16 or float; dtable is fp32 and ADDED).
//===----------------------------------------------------------------------===//

/// out[t, :] = table[ids[t], :] for the N = B*S tokens.
template <typename T>
void embedding_fwd(const int32_t *ids, const T *table, T *out, int64_t N,
                   int64_t V, int64_t D, cudaStream_t stream = nullptr);
/// dtable[ids[t], :] += dout[t, :] (fp32 atomics: repeated ids are fine).
template <typename T>
void embedding_bwd(const int32_t *ids, const T *dout, float *dtable, int64_t N,
                   int64_t V, int64_t D, cudaStream_t stream = nullptr);

/// out[b, s, :] = table[start + s, :]; table is [Pmax, D].
template <typename T>
void pos_embedding_fwd(const T *table, T *out, int64_t B, int64_t S,
                       int64_t start, int64_t Pmax, int64_t D,
                       cudaStream_t stream = nullptr);
/// dtable[start + s, :] += sum_b dout[b, s, :].
template <typename T>
void pos_embedding_bwd(const T *dout, float *dtable, int64_t B, int64_t S,
                       int64_t start, int64_t Pmax, int64_t D,
                       cudaStream_t stream = nullptr);

//===----------------------------------------------------------------------===//
// Normalization over the last dimension D of N rows. gamma/beta are the
// (bf16 or fp32) working copies of the weights; mean/rstd are saved in fp32.
//===----------------------------------------------------------------------===//

template <typename T>
void layer_norm_fwd(const T *x, const T *gamma, const T *beta, T *y,
                    float *mean, float *rstd, int64_t N, int64_t D, float eps,
                    cudaStream_t stream = nullptr);
/// dx written; dgamma, dbeta (fp32) added. Any of the three may be nullptr.
template <typename T>
void layer_norm_bwd(const T *x, const T *gamma, const float *mean,
                    const float *rstd, const T *dy, T *dx, float *dgamma,
                    float *dbeta, int64_t N, int64_t D,
                    cudaStream_t stream = nullptr);

template <typename T>
void rms_norm_fwd(const T *x, const T *gamma, T *y, float *rstd, int64_t N,
                  int64_t D, float eps, cudaStream_t stream = nullptr);
template <typename T>
void rms_norm_bwd(const T *x, const T *gamma, const float *rstd, const T *dy,
                  T *dx, float *dgamma, int64_t N, int64_t D,
                  cudaStream_t stream = nullptr);

//===----------------------------------------------------------------------===//
// Rotary position embedding, rotate-half; token s has position start + s.
// Angles are computed in double (exact at positions ~1e5). x may alias y.
//===----------------------------------------------------------------------===//

template <typename T>
void rope_fwd(const T *x, T *y, int64_t B, int64_t S, int64_t H, int64_t hd,
              int64_t start, double theta, int64_t rotary = 0,
              const RopeScaling &scaling = {}, cudaStream_t stream = nullptr);
template <typename T>
void rope_bwd(const T *dy, T *dx, int64_t B, int64_t S, int64_t H, int64_t hd,
              int64_t start, double theta, int64_t rotary = 0,
              const RopeScaling &scaling = {}, cudaStream_t stream = nullptr);

//===----------------------------------------------------------------------===//
// Elementwise ops over n elements (outputs may alias inputs).
//===----------------------------------------------------------------------===//

template <typename T>
void gelu_fwd(const T *x, T *y, int64_t n, cudaStream_t stream = nullptr);
template <typename T>
void gelu_bwd(const T *x, const T *dy, T *dx, int64_t n,
              cudaStream_t stream = nullptr);
/// GELU's exact form, x Phi(x).
template <typename T>
void gelu_erf_fwd(const T *x, T *y, int64_t n, cudaStream_t stream = nullptr);
template <typename T>
void gelu_erf_bwd(const T *x, const T *dy, T *dx, int64_t n,
                  cudaStream_t stream = nullptr);
template <typename T>
void silu_fwd(const T *x, T *y, int64_t n, cudaStream_t stream = nullptr);
template <typename T>
void silu_bwd(const T *x, const T *dy, T *dx, int64_t n,
              cudaStream_t stream = nullptr);
template <typename T>
void swiglu_fwd(const T *gate, const T *up, T *y, int64_t n,
                cudaStream_t stream = nullptr);
/// dgate and dup may each be nullptr, and may alias gate / up.
template <typename T>
void swiglu_bwd(const T *gate, const T *up, const T *dy, T *dgate, T *dup,
                int64_t n, cudaStream_t stream = nullptr);
/// y = c tanh(x / c) (Gemma 2's final logits) and its backward.
template <typename T>
void softcap_fwd(const T *x, T *y, int64_t n, double c,
                 cudaStream_t stream = nullptr);
template <typename T>
void softcap_bwd(const T *x, const T *dy, T *dx, int64_t n, double c,
                 cudaStream_t stream = nullptr);
/// GeGLU: gelu(gate) * up, GELU in its tanh form (Gemma); as swiglu.
template <typename T>
void geglu_fwd(const T *gate, const T *up, T *y, int64_t n,
               cudaStream_t stream = nullptr);
template <typename T>
void geglu_bwd(const T *gate, const T *up, const T *dy, T *dgate, T *dup,
               int64_t n, cudaStream_t stream = nullptr);
template <typename T>
void add_fwd(const T *a, const T *b, T *y, int64_t n,
             cudaStream_t stream = nullptr);
template <typename T>
void add_bwd(const T *dy, T *da, T *db, int64_t n,
             cudaStream_t stream = nullptr);
/// y += x.
template <typename T>
void accumulate(const T *x, T *y, int64_t n, cudaStream_t stream = nullptr);
/// x *= s.
template <typename T>
void scale(T *x, int64_t n, float s, cudaStream_t stream = nullptr);

/// db[j] += sum_r dy[r, j] over N rows of `cols` columns (the bias gradient
/// of a linear layer; linear_bwd in gemm.h calls it).
template <typename T>
void bias_grad(const T *dy, float *db, int64_t N, int64_t cols,
               cudaStream_t stream = nullptr);

//===----------------------------------------------------------------------===//
// Cross-entropy over N rows of V logits, fused with the softmax.
//
// One thread block per row: an online softmax over the row (running max and
// sum, fp32) gives the log-sum-exp; a second sweep over the same row writes
// the gradient. Nothing of size [N, V] besides the logits and the gradient
// (which may overwrite the logits) is ever allocated, in any precision.
//===----------------------------------------------------------------------===//

/// Adds sum of (lse - logit[target]) over rows with target >= 0 into
/// *loss_sum and the number of those rows into *count (device accumulators);
/// saves lse[N] (fp32) when lse is not nullptr.
template <typename T>
void cross_entropy_fwd(const T *logits, const int32_t *targets, float *lse,
                       double *loss_sum, int64_t *count, int64_t N, int64_t V,
                       cudaStream_t stream = nullptr);
/// dlogits = scale * (softmax - onehot), zero rows for ignored targets;
/// dlogits may alias logits.
template <typename T>
void cross_entropy_bwd(const T *logits, const int32_t *targets,
                       const float *lse, T *dlogits, int64_t N, int64_t V,
                       float scale, cudaStream_t stream = nullptr);
/// Forward and backward in one kernel (the logits are read twice, from L2 when
/// a row fits). loss_sum/count/lse as in cross_entropy_fwd (lse may be
/// nullptr); dlogits as in cross_entropy_bwd and may alias logits, the usual
/// case: the bf16 logits buffer becomes the bf16 gradient in place.
template <typename T>
void cross_entropy_fused(const T *logits, const int32_t *targets, float *lse,
                         double *loss_sum, int64_t *count, T *dlogits,
                         int64_t N, int64_t V, float scale,
                         cudaStream_t stream = nullptr);

//===----------------------------------------------------------------------===//
// Optimizer: multi-tensor AdamW on fp32 master weights and state.
//===----------------------------------------------------------------------===//

using AdamWConfig = ::s1f::rt::cpu::AdamWConfig;

/// One parameter tensor of an AdamW step. master, grad, m, v are fp32;
/// param_bf16 (may be nullptr) receives the updated weights rounded to bf16,
/// the copy the forward and backward use.
struct AdamWTensor {
  float *master = nullptr;
  const float *grad = nullptr;
  float *m = nullptr;
  float *v = nullptr;
  bf16 *param_bf16 = nullptr;
  int64_t n = 0;
};

/// One AdamW step (PyTorch semantics, as cpu::adamw_step) over every tensor,
/// a few kernel launches in all. g = grad * grad_scale * (*grad_scale_device
/// when not nullptr: a clipping coefficient computed on the device).
void adamw_step(const AdamWTensor *tensors, int64_t count, int64_t step,
                const AdamWConfig &cfg, double grad_scale = 1.0,
                const float *grad_scale_device = nullptr,
                cudaStream_t stream = nullptr);
/// The CPU kernel's signature (fp32 mode: no bf16 copy).
void adamw_step(float *param, const float *grad, float *m, float *v, int64_t n,
                int64_t step, const AdamWConfig &cfg, double grad_scale = 1.0,
                cudaStream_t stream = nullptr);

/// One tensor of a multi-tensor sum of squares.
struct SquaresSpan {
  const float *data = nullptr;
  int64_t n = 0;
};

/// *out += sum of x^2 over every span (fp32 partial sums, fp64 across
/// blocks): the square of the global gradient norm, without a sync.
void sum_squares(const SquaresSpan *spans, int64_t count, double *out,
                 cudaStream_t stream = nullptr);
template <typename T>
void sum_squares(const T *x, int64_t n, double *out,
                 cudaStream_t stream = nullptr);
/// *coef = min(1, max_norm / (sqrt(*total_sum_squares) + 1e-6)) on the
/// device; NaN when the sum is not finite (the host must check it, as
/// cpu::clip_coefficient throws).
void clip_coefficient(const double *total_sum_squares, float *coef,
                      double max_norm, cudaStream_t stream = nullptr);

//===----------------------------------------------------------------------===//
// Device queries.
//===----------------------------------------------------------------------===//

/// Number of visible CUDA devices; 0 (not an exception) when there is no
/// driver or no device.
int device_count();

} // namespace s1f::rt::cuda

#endif // SEQ1F1B_RUNTIME_CUDA_KERNELS_H
