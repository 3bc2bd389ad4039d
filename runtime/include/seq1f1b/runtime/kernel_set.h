//===- kernel_set.h - The kernels a stage executor calls --------*- C++ -*-===//
//
// The fp32 operations of a StageExecutor, behind one interface, so that the
// same executor (schedule, KV caches, chunk bookkeeping) runs on the CPU
// reference kernels or on another backend's. Arguments and semantics are
// exactly those of cpu_kernels.h at T = float; buffers are host memory.
//
//  * cpuKernels(): cpu_kernels.h itself (the default).
//  * cuda::stagedKernels() (cuda/staged_kernels.h, CUDA builds only): every
//    call runs the CUDA kernel on the GPU, its operands copied there and its
//    results back. A correctness vehicle, not a fast path: it proves the
//    CUDA kernels compute the same training step as the CPU reference.
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_RUNTIME_KERNEL_SET_H
#define SEQ1F1B_RUNTIME_KERNEL_SET_H

#include "seq1f1b/runtime/cpu_kernels.h"

#include <cstdint>

namespace s1f::rt {

class KernelSet {
public:
  virtual ~KernelSet() = default;
  /// "cpu", "cuda", ...: for messages.
  virtual const char *name() const = 0;

  virtual void embedding_fwd(const int32_t *ids, const float *table, float *out,
                             int64_t N, int64_t V, int64_t D) const = 0;
  virtual void embedding_bwd(const int32_t *ids, const float *dout,
                             float *dtable, int64_t N, int64_t V,
                             int64_t D) const = 0;
  virtual void pos_embedding_fwd(const float *table, float *out, int64_t B,
                                 int64_t S, int64_t start, int64_t Pmax,
                                 int64_t D) const = 0;
  virtual void pos_embedding_bwd(const float *dout, float *dtable, int64_t B,
                                 int64_t S, int64_t start, int64_t Pmax,
                                 int64_t D) const = 0;
  virtual void layer_norm_fwd(const float *x, const float *gamma,
                              const float *beta, float *y, float *mean,
                              float *rstd, int64_t N, int64_t D,
                              float eps) const = 0;
  virtual void layer_norm_bwd(const float *x, const float *gamma,
                              const float *mean, const float *rstd,
                              const float *dy, float *dx, float *dgamma,
                              float *dbeta, int64_t N, int64_t D) const = 0;
  virtual void rms_norm_fwd(const float *x, const float *gamma, float *y,
                            float *rstd, int64_t N, int64_t D,
                            float eps) const = 0;
  virtual void rms_norm_bwd(const float *x, const float *gamma,
                            const float *rstd, const float *dy, float *dx,
                            float *dgamma, int64_t N, int64_t D) const = 0;
  virtual void linear_fwd(const float *x, const float *W, const float *bias,
                          float *y, int64_t N, int64_t in,
                          int64_t out) const = 0;
  virtual void linear_bwd(const float *x, const float *W, const float *dy,
                          float *dx, float *dW, float *db, int64_t N,
                          int64_t in, int64_t out) const = 0;
  virtual void rope_fwd(const float *x, float *y, int64_t B, int64_t S,
                        int64_t H, int64_t hd, int64_t start, double theta,
                        int64_t rotary, const RopeScaling &scaling) const = 0;
  virtual void rope_bwd(const float *dy, float *dx, int64_t B, int64_t S,
                        int64_t H, int64_t hd, int64_t start, double theta,
                        int64_t rotary, const RopeScaling &scaling) const = 0;
  virtual void kv_cache_write(const float *k, const float *v, float *kcache,
                              float *vcache,
                              const cpu::AttentionDims &d) const = 0;
  virtual void kv_cache_write_bwd(const float *dkcache, const float *dvcache,
                                  float *dk, float *dv,
                                  const cpu::AttentionDims &d) const = 0;
  /// Floats of workspace attention_fwd/_bwd need.
  virtual int64_t attention_workspace_size(
      const cpu::AttentionDims &d) const = 0;
  virtual void attention_fwd(const float *q, const float *kcache,
                             const float *vcache, float *out, float *lse,
                             float *workspace,
                             const cpu::AttentionDims &d) const = 0;
  virtual void attention_bwd(const float *q, const float *kcache,
                             const float *vcache, const float *out,
                             const float *dout, const float *lse, float *dq,
                             float *dkcache, float *dvcache, float *workspace,
                             const cpu::AttentionDims &d) const = 0;
  virtual void gelu_fwd(const float *x, float *y, int64_t n) const = 0;
  virtual void gelu_bwd(const float *x, const float *dy, float *dx,
                        int64_t n) const = 0;
  virtual void gelu_erf_fwd(const float *x, float *y, int64_t n) const = 0;
  virtual void gelu_erf_bwd(const float *x, const float *dy, float *dx,
                            int64_t n) const = 0;
  virtual void silu_fwd(const float *x, float *y, int64_t n) const = 0;
  virtual void silu_bwd(const float *x, const float *dy, float *dx,
                        int64_t n) const = 0;
  virtual void swiglu_fwd(const float *gate, const float *up, float *y,
                          int64_t n) const = 0;
  virtual void swiglu_bwd(const float *gate, const float *up, const float *dy,
                          float *dgate, float *dup, int64_t n) const = 0;
  virtual void geglu_fwd(const float *gate, const float *up, float *y,
                         int64_t n) const = 0;
  virtual void geglu_bwd(const float *gate, const float *up, const float *dy,
                         float *dgate, float *dup, int64_t n) const = 0;
  virtual void add_fwd(const float *a, const float *b, float *y,
                       int64_t n) const = 0;
  /// y = c tanh(x / c) and its backward.
  virtual void softcap_fwd(const float *x, float *y, int64_t n,
                           double c) const = 0;
  virtual void softcap_bwd(const float *x, const float *dy, float *dx,
                           int64_t n, double c) const = 0;
  /// y = s x; y may be x.
  virtual void scale(const float *x, float *y, int64_t n, float s) const = 0;
  virtual void accumulate(const float *x, float *y, int64_t n) const = 0;
  virtual cpu::LossSum cross_entropy_fwd(const float *logits,
                                         const int32_t *targets, float *lse,
                                         int64_t N, int64_t V) const = 0;
  virtual void cross_entropy_bwd(const float *logits, const int32_t *targets,
                                 const float *lse, float *dlogits, int64_t N,
                                 int64_t V, float scale) const = 0;
};

/// The CPU reference kernels (cpu_kernels.h at T = float).
const KernelSet &cpuKernels();

} // namespace s1f::rt

#endif // SEQ1F1B_RUNTIME_KERNEL_SET_H
