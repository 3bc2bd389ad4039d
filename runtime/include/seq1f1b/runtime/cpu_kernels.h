//===- cpu_kernels.h - CPU reference kernels of the runtime -----*- C++ -*-===//
//
// Forward and backward kernels of a decoder LLM on the CPU, templated on the
// scalar type T (float for training runs, double for gradient checks). This is
// an internal C++ header of the runtime: the C ABI (runtime.h) wraps it.
//
// Conventions (docs/runtime-kernels.md has the long form):
//  * Row-major, dense. Activations are [B, S, ...] where S is the number of
//    tokens of the current sequence chunk; "N" below is B*S rows.
//  * Callers own every buffer (outputs, saved values, workspaces); no kernel
//    allocates.
//  * Gradients of activations (dx, dq, dlogits, ...) are WRITTEN. Gradients of
//    parameters (dW, db, dgamma, dtable, ...) and the KV-gradient buffer are
//    ACCUMULATED (+=), so they can be summed over chunks and micro-batches.
//    Optional outputs are skipped when passed nullptr.
//  * Reductions (means, softmax sums, losses) accumulate in double.
//  * Invalid arguments throw std::invalid_argument naming file and line.
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_RUNTIME_CPU_KERNELS_H
#define SEQ1F1B_RUNTIME_CPU_KERNELS_H

#include "seq1f1b/runtime/rope_scaling.h"

#include <cstdint>

namespace s1f::rt::cpu {

//===----------------------------------------------------------------------===//
// GEMM: the single entry point to OpenBLAS.
//===----------------------------------------------------------------------===//

/// Row-major C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C, where op
/// transposes when the flag is set. lda/ldb/ldc are row strides of the stored
/// (untransposed) matrices, so strided views (one head of [S, H*hd]) work.
void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
          float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
          float beta, float *C, int64_t ldc);
void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
          double alpha, const double *A, int64_t lda, const double *B,
          int64_t ldb, double beta, double *C, int64_t ldc);

/// Threads each gemm may use. Pipeline ranks are threads of their own, so a
/// multi-rank run sets 1 to keep BLAS from oversubscribing the cores.
void set_gemm_threads(int threads);

//===----------------------------------------------------------------------===//
// Embeddings.
//===----------------------------------------------------------------------===//

/// out[t, :] = table[ids[t], :] for the N = B*S tokens; ids in [0, V).
template <typename T>
void embedding_fwd(const int32_t *ids, const T *table, T *out, int64_t N,
                   int64_t V, int64_t D);
/// dtable[ids[t], :] += dout[t, :].
template <typename T>
void embedding_bwd(const int32_t *ids, const T *dout, T *dtable, int64_t N,
                   int64_t V, int64_t D);

/// Learned positions: out[b, s, :] = table[start + s, :], table is [Pmax, D]
/// and start is the chunk's first absolute position (start + S <= Pmax).
template <typename T>
void pos_embedding_fwd(const T *table, T *out, int64_t B, int64_t S,
                       int64_t start, int64_t Pmax, int64_t D);
/// dtable[start + s, :] += sum_b dout[b, s, :].
template <typename T>
void pos_embedding_bwd(const T *dout, T *dtable, int64_t B, int64_t S,
                       int64_t start, int64_t Pmax, int64_t D);

//===----------------------------------------------------------------------===//
// Normalization over the last dimension D of N rows.
//===----------------------------------------------------------------------===//

/// y = (x - mean) * rstd * gamma + beta; saves mean[N] and rstd[N].
template <typename T>
void layer_norm_fwd(const T *x, const T *gamma, const T *beta, T *y, T *mean,
                    T *rstd, int64_t N, int64_t D, T eps);
template <typename T>
void layer_norm_bwd(const T *x, const T *gamma, const T *mean, const T *rstd,
                    const T *dy, T *dx, T *dgamma, T *dbeta, int64_t N,
                    int64_t D);

/// y = x * rstd * gamma with rstd = 1/sqrt(mean(x^2) + eps); saves rstd[N].
template <typename T>
void rms_norm_fwd(const T *x, const T *gamma, T *y, T *rstd, int64_t N,
                  int64_t D, T eps);
template <typename T>
void rms_norm_bwd(const T *x, const T *gamma, const T *rstd, const T *dy, T *dx,
                  T *dgamma, int64_t N, int64_t D);

//===----------------------------------------------------------------------===//
// Linear layer: y[N, out] = x[N, in] * W^T + bias, W stored [out, in].
//===----------------------------------------------------------------------===//

template <typename T>
void linear_fwd(const T *x, const T *W, const T *bias, T *y, int64_t N,
                int64_t in, int64_t out);
/// dx = dy * W (written); dW += dy^T * x; db += column sums of dy. Any of
/// dx, dW, db may be nullptr (input-grad and weight-grad can run separately,
/// as zero-bubble schedules do).
template <typename T>
void linear_bwd(const T *x, const T *W, const T *dy, T *dx, T *dW, T *db,
                int64_t N, int64_t in, int64_t out);

//===----------------------------------------------------------------------===//
// Rotary position embedding, rotate-half (Llama / Hugging Face) convention.
//===----------------------------------------------------------------------===//

/// x, y are [B, S, H*hd]; token s has absolute position start + s. For
/// i < hd/2 with angle = pos * theta^(-2i/hd):
///   y[i]        = x[i] cos - x[i + hd/2] sin
///   y[i + hd/2] = x[i + hd/2] cos + x[i] sin
/// x and y may be the same buffer. hd must be even. With `rotary` < hd
/// (partial rotary, GPT-NeoX) only each head's first `rotary` dimensions
/// turn, hd replaced by `rotary` above, and the rest pass through; 0 means
/// the whole head. `scaling` rescales the frequencies theta^(-2i/hd) for
/// long contexts (rope_scaling.h).
template <typename T>
void rope_fwd(const T *x, T *y, int64_t B, int64_t S, int64_t H, int64_t hd,
              int64_t start, double theta, int64_t rotary = 0,
              const RopeScaling &scaling = {});
/// The inverse rotation (the transpose); dy and dx may be the same buffer.
template <typename T>
void rope_bwd(const T *dy, T *dx, int64_t B, int64_t S, int64_t H, int64_t hd,
              int64_t start, double theta, int64_t rotary = 0,
              const RopeScaling &scaling = {});

//===----------------------------------------------------------------------===//
// Causal grouped-query attention of one sequence chunk over its KV prefix.
//===----------------------------------------------------------------------===//

/// A chunk covers the absolute tokens [start, start + len) of each of the B
/// sequences of a micro-batch. Its queries attend to keys/values [0, start +
/// len) that live in the stage's per-micro-batch KV cache, [B, max_seq,
/// kv_heads*head_dim] for K and for V, read in place. Query head h uses kv
/// head h / (heads / kv_heads); scale is 1/sqrt(head_dim).
struct AttentionDims {
  int64_t batch = 0;
  int64_t heads = 0;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  int64_t max_seq = 0;
  int64_t start = 0;
  int64_t len = 0;
  /// Keys processed per tile; the workspace is O(len * key_tile).
  int64_t key_tile = 128;
  /// Sliding window: 0 for the whole prefix, else query p sees only the
  /// `window` keys (p - window, p] (Mistral's sliding_window).
  int64_t window = 0;
  /// Scores are scale q.k, scale 1/sqrt(head_dim) when 0 (Gemma 2: 1/sqrt
  /// of query_pre_attn_scalar), and with `softcap` c then c tanh(s / c)
  /// (Gemma 2's attn_logit_softcapping; 0: none).
  double scale = 0, softcap = 0;
};

/// Elements of T the workspace of attention_fwd / attention_bwd needs.
int64_t attention_workspace_size(const AttentionDims &d);

/// Copies the chunk's k, v ([B, len, kv_heads*head_dim]) into rows
/// [start, start + len) of the caches. Run it before attention_fwd.
template <typename T>
void kv_cache_write(const T *k, const T *v, T *kcache, T *vcache,
                    const AttentionDims &d);
/// Backward of kv_cache_write: gathers rows [start, start + len) of the
/// KV-gradient buffers into dk, dv ([B, len, kv_heads*head_dim]). Those rows
/// are complete only once the backward of every LATER chunk of the
/// micro-batch has run (Seq1F1B runs backwards chunk-descending).
template <typename T>
void kv_cache_write_bwd(const T *dkcache, const T *dvcache, T *dk, T *dv,
                        const AttentionDims &d);

/// out[B, len, heads*head_dim] = softmax(scale q k^T + causal mask) v with the
/// mask aligned bottom-right: query start+i sees keys 0..start+i (with a
/// window w, only start+i-w+1..start+i, tiles before them skipped). Saves the
/// log-sum-exp of each score row in lse[B, heads, len] (no probabilities).
template <typename T>
void attention_fwd(const T *q, const T *kcache, const T *vcache, T *out, T *lse,
                   T *workspace, const AttentionDims &d);
/// Writes dq [B, len, heads*head_dim] and ADDS the chunk's contribution to dK
/// and dV of the whole prefix, rows [0, start + len), into the micro-batch's
/// KV-gradient buffers dkcache/dvcache ([B, max_seq, kv_heads*head_dim],
/// zeroed by the caller before the micro-batch's first backward).
/// Probabilities are recomputed per key tile from lse.
template <typename T>
void attention_bwd(const T *q, const T *kcache, const T *vcache, const T *out,
                   const T *dout, const T *lse, T *dq, T *dkcache, T *dvcache,
                   T *workspace, const AttentionDims &d);

//===----------------------------------------------------------------------===//
// Elementwise ops over n elements.
//===----------------------------------------------------------------------===//

/// GELU, tanh approximation (GPT-2).
template <typename T> void gelu_fwd(const T *x, T *y, int64_t n);
template <typename T> void gelu_bwd(const T *x, const T *dy, T *dx, int64_t n);

/// GELU, exact: y = x * Phi(x), Phi the normal CDF (GPT-NeoX's "gelu").
template <typename T> void gelu_erf_fwd(const T *x, T *y, int64_t n);
template <typename T>
void gelu_erf_bwd(const T *x, const T *dy, T *dx, int64_t n);

/// SiLU: y = x * sigmoid(x).
template <typename T> void silu_fwd(const T *x, T *y, int64_t n);
template <typename T> void silu_bwd(const T *x, const T *dy, T *dx, int64_t n);

/// SwiGLU: y = silu(gate) * up.
template <typename T>
void swiglu_fwd(const T *gate, const T *up, T *y, int64_t n);
template <typename T>
void swiglu_bwd(const T *gate, const T *up, const T *dy, T *dgate, T *dup,
                int64_t n);

/// Soft-capping: y = c tanh(x / c) (Gemma 2's final logits).
template <typename T> void softcap_fwd(const T *x, T *y, int64_t n, double c);
template <typename T>
void softcap_bwd(const T *x, const T *dy, T *dx, int64_t n, double c);

/// GeGLU: y = gelu(gate) * up, GELU in its tanh form (Gemma).
template <typename T>
void geglu_fwd(const T *gate, const T *up, T *y, int64_t n);
template <typename T>
void geglu_bwd(const T *gate, const T *up, const T *dy, T *dgate, T *dup,
               int64_t n);

/// Sigmoid gate (Qwen2-MoE's shared expert): for each of N rows,
/// y = sigmoid(gate . w) * value, value and y [N, D], gate [N, H], w [H].
template <typename T>
void sigmoid_gate_fwd(const T *value, const T *gate, const T *w, T *y,
                      int64_t N, int64_t D, int64_t H);
/// dvalue and dgate written (either may be nullptr); dw += its gradient
/// (nullptr: skipped).
template <typename T>
void sigmoid_gate_bwd(const T *value, const T *gate, const T *w, const T *dy,
                      T *dvalue, T *dgate, T *dw, int64_t N, int64_t D,
                      int64_t H);

/// Residual add y = a + b (y may alias a or b).
template <typename T> void add_fwd(const T *a, const T *b, T *y, int64_t n);
/// da = dy and db = dy (either may be nullptr).
template <typename T> void add_bwd(const T *dy, T *da, T *db, int64_t n);
/// y += x: sums the gradients of a value with several uses.
template <typename T> void accumulate(const T *x, T *y, int64_t n);

//===----------------------------------------------------------------------===//
// Cross-entropy loss over N rows of V logits.
//===----------------------------------------------------------------------===//

struct LossSum {
  double loss_sum =
      0;             ///< sum of -log softmax(logits)[target] over counted rows
  int64_t count = 0; ///< rows with a target >= 0
};

/// Rows whose target is < 0 are ignored. Saves lse[N] for the backward.
template <typename T>
LossSum cross_entropy_fwd(const T *logits, const int32_t *targets, T *lse,
                          int64_t N, int64_t V);
/// dlogits = scale * (softmax(logits) - onehot(target)), zero for ignored
/// rows. With scale = 1 / (tokens of the whole batch), summing chunk and
/// micro-batch gradients gives the gradient of the batch mean loss.
/// dlogits may alias logits.
template <typename T>
void cross_entropy_bwd(const T *logits, const int32_t *targets, const T *lse,
                       T *dlogits, int64_t N, int64_t V, T scale);

//===----------------------------------------------------------------------===//
// Optimizer.
//===----------------------------------------------------------------------===//

struct AdamWConfig {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0; ///< decoupled: param -= lr * wd * param
};

/// One AdamW step (PyTorch semantics, bias-corrected) on n elements; step is
/// 1-based. g = grad * grad_scale (the clipping coefficient), state m and v
/// has the parameter's type (fp32 in training runs).
template <typename T>
void adamw_step(T *param, const T *grad, T *m, T *v, int64_t n, int64_t step,
                const AdamWConfig &cfg, double grad_scale = 1.0);

/// Sum of squares of x in double; add it up over every gradient tensor (and
/// rank) to get the global norm's square.
template <typename T> double sum_squares(const T *x, int64_t n);
/// Gradient-clipping coefficient min(1, max_norm / (norm + 1e-6)) for the
/// global norm sqrt(total_sum_squares) (PyTorch clip_grad_norm_).
double clip_coefficient(double total_sum_squares, double max_norm);
/// x *= s.
template <typename T> void scale(T *x, int64_t n, T s);

} // namespace s1f::rt::cpu

#endif // SEQ1F1B_RUNTIME_CPU_KERNELS_H
