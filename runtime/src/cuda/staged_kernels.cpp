//===- staged_kernels.cpp - The fp32 CUDA kernels behind a KernelSet ------===//

#include "seq1f1b/runtime/cuda/staged_kernels.h"

#include "seq1f1b/runtime/cuda/attention.h"
#include "seq1f1b/runtime/cuda/check.h"
#include "seq1f1b/runtime/cuda/gemm.h"
#include "seq1f1b/runtime/cuda/kernels.h"

#include <cuda_runtime_api.h>

#include <memory>
#include <mutex>
#include <vector>

namespace s1f::rt::cuda {
namespace {

/// The device copies of one call's operands: `in` uploads, `out` is copied
/// back by finish(), `inout` both. Host nullptr gives device nullptr.
class Staging {
public:
  Staging() = default;
  Staging(const Staging &) = delete;
  Staging &operator=(const Staging &) = delete;
  ~Staging() {
    for (const Buffer &b : buffers_)
      cudaFree(b.device);
  }

  template <typename T> const T *in(const T *host, int64_t n) {
    return static_cast<const T *>(add(const_cast<T *>(host), n * sizeof(T),
                                      /*upload=*/true, /*download=*/false));
  }
  template <typename T> T *out(T *host, int64_t n) {
    return static_cast<T *>(add(host, n * sizeof(T), false, true));
  }
  template <typename T> T *inout(T *host, int64_t n) {
    return static_cast<T *>(add(host, n * sizeof(T), true, true));
  }
  /// Waits for the kernels and copies the outputs back.
  void finish() {
    S1F_CUDA_CHECK(cudaDeviceSynchronize());
    for (const Buffer &b : buffers_)
      if (b.download)
        S1F_CUDA_CHECK(
            cudaMemcpy(b.host, b.device, b.bytes, cudaMemcpyDeviceToHost));
  }

private:
  struct Buffer {
    void *host, *device;
    size_t bytes;
    bool download;
  };

  void *add(void *host, size_t bytes, bool upload, bool download) {
    if (!host)
      return nullptr;
    void *device = nullptr;
    S1F_CUDA_CHECK(cudaMalloc(&device, bytes ? bytes : 1));
    buffers_.push_back({host, device, bytes, download});
    if (upload && bytes)
      S1F_CUDA_CHECK(cudaMemcpy(device, host, bytes, cudaMemcpyHostToDevice));
    return device;
  }

  std::vector<Buffer> buffers_;
};

class StagedKernelSet final : public KernelSet {
public:
  const char *name() const override { return "cuda"; }

  void embedding_fwd(const int32_t *ids, const float *table, float *out,
                     int64_t N, int64_t V, int64_t D) const override {
    Call c(*this);
    cuda::embedding_fwd(c.s.in(ids, N), c.s.in(table, V * D),
                        c.s.out(out, N * D), N, V, D);
  }
  void embedding_bwd(const int32_t *ids, const float *dout, float *dtable,
                     int64_t N, int64_t V, int64_t D) const override {
    Call c(*this);
    cuda::embedding_bwd(c.s.in(ids, N), c.s.in(dout, N * D),
                        c.s.inout(dtable, V * D), N, V, D);
  }
  void pos_embedding_fwd(const float *table, float *out, int64_t B, int64_t S,
                         int64_t start, int64_t Pmax,
                         int64_t D) const override {
    Call c(*this);
    cuda::pos_embedding_fwd(c.s.in(table, Pmax * D), c.s.out(out, B * S * D),
                            B, S, start, Pmax, D);
  }
  void pos_embedding_bwd(const float *dout, float *dtable, int64_t B,
                         int64_t S, int64_t start, int64_t Pmax,
                         int64_t D) const override {
    Call c(*this);
    cuda::pos_embedding_bwd(c.s.in(dout, B * S * D),
                            c.s.inout(dtable, Pmax * D), B, S, start, Pmax, D);
  }
  void layer_norm_fwd(const float *x, const float *gamma, const float *beta,
                      float *y, float *mean, float *rstd, int64_t N, int64_t D,
                      float eps) const override {
    Call c(*this);
    cuda::layer_norm_fwd(c.s.in(x, N * D), c.s.in(gamma, D), c.s.in(beta, D),
                         c.s.out(y, N * D), c.s.out(mean, N),
                         c.s.out(rstd, N), N, D, eps);
  }
  void layer_norm_bwd(const float *x, const float *gamma, const float *mean,
                      const float *rstd, const float *dy, float *dx,
                      float *dgamma, float *dbeta, int64_t N,
                      int64_t D) const override {
    Call c(*this);
    cuda::layer_norm_bwd(c.s.in(x, N * D), c.s.in(gamma, D), c.s.in(mean, N),
                         c.s.in(rstd, N), c.s.in(dy, N * D),
                         c.s.out(dx, N * D), c.s.inout(dgamma, D),
                         c.s.inout(dbeta, D), N, D);
  }
  void rms_norm_fwd(const float *x, const float *gamma, float *y, float *rstd,
                    int64_t N, int64_t D, float eps) const override {
    Call c(*this);
    cuda::rms_norm_fwd(c.s.in(x, N * D), c.s.in(gamma, D), c.s.out(y, N * D),
                       c.s.out(rstd, N), N, D, eps);
  }
  void rms_norm_bwd(const float *x, const float *gamma, const float *rstd,
                    const float *dy, float *dx, float *dgamma, int64_t N,
                    int64_t D) const override {
    Call c(*this);
    cuda::rms_norm_bwd(c.s.in(x, N * D), c.s.in(gamma, D), c.s.in(rstd, N),
                       c.s.in(dy, N * D), c.s.out(dx, N * D),
                       c.s.inout(dgamma, D), N, D);
  }
  void linear_fwd(const float *x, const float *W, const float *bias, float *y,
                  int64_t N, int64_t in, int64_t out) const override {
    Call c(*this);
    cuda::linear_fwd<float>(c.gemm(), c.s.in(x, N * in), c.s.in(W, out * in),
                            c.s.in(bias, out), c.s.out(y, N * out), N, in,
                            out);
  }
  void linear_bwd(const float *x, const float *W, const float *dy, float *dx,
                  float *dW, float *db, int64_t N, int64_t in,
                  int64_t out) const override {
    Call c(*this);
    cuda::linear_bwd<float>(c.gemm(), c.s.in(x, N * in), c.s.in(W, out * in),
                            c.s.in(dy, N * out), c.s.out(dx, N * in),
                            c.s.inout(dW, out * in), c.s.inout(db, out), N, in,
                            out);
  }
  void rope_fwd(const float *x, float *y, int64_t B, int64_t S, int64_t H,
                int64_t hd, int64_t start, double theta, int64_t rotary,
                const RopeScaling &scaling) const override {
    Call c(*this);
    const int64_t n = B * S * H * hd;
    cuda::rope_fwd(c.s.in(x, n), c.s.out(y, n), B, S, H, hd, start, theta,
                   rotary, scaling);
  }
  void rope_bwd(const float *dy, float *dx, int64_t B, int64_t S, int64_t H,
                int64_t hd, int64_t start, double theta, int64_t rotary,
                const RopeScaling &scaling) const override {
    Call c(*this);
    const int64_t n = B * S * H * hd;
    cuda::rope_bwd(c.s.in(dy, n), c.s.out(dx, n), B, S, H, hd, start, theta,
                   rotary, scaling);
  }
  // Row copies: on the host (see staged_kernels.h).
  void kv_cache_write(const float *k, const float *v, float *kcache,
                      float *vcache,
                      const cpu::AttentionDims &d) const override {
    cpu::kv_cache_write(k, v, kcache, vcache, d);
  }
  void kv_cache_write_bwd(const float *dkcache, const float *dvcache,
                          float *dk, float *dv,
                          const cpu::AttentionDims &d) const override {
    cpu::kv_cache_write_bwd(dkcache, dvcache, dk, dv, d);
  }
  int64_t attention_workspace_size(const cpu::AttentionDims &) const override {
    return 0;
  }
  void attention_fwd(const float *q, const float *kcache, const float *vcache,
                     float *out, float *lse, float *,
                     const cpu::AttentionDims &d) const override {
    Call c(*this);
    const int64_t rows = d.batch * d.len * d.heads * d.head_dim;
    const int64_t cache = d.batch * d.max_seq * d.kv_heads * d.head_dim;
    attention_fwd_fp32(c.s.in(q, rows), c.s.in(kcache, cache),
                       c.s.in(vcache, cache), c.s.out(out, rows),
                       c.s.out(lse, d.batch * d.heads * d.len), d);
  }
  void attention_bwd(const float *q, const float *kcache, const float *vcache,
                     const float *out, const float *dout, const float *lse,
                     float *dq, float *dkcache, float *dvcache, float *,
                     const cpu::AttentionDims &d) const override {
    Call c(*this);
    const int64_t rows = d.batch * d.len * d.heads * d.head_dim;
    const int64_t cache = d.batch * d.max_seq * d.kv_heads * d.head_dim;
    attention_bwd_fp32(c.s.in(q, rows), c.s.in(kcache, cache),
                       c.s.in(vcache, cache), c.s.in(out, rows),
                       c.s.in(dout, rows),
                       c.s.in(lse, d.batch * d.heads * d.len),
                       c.s.out(dq, rows), c.s.inout(dkcache, cache),
                       c.s.inout(dvcache, cache), d);
  }
  void gelu_fwd(const float *x, float *y, int64_t n) const override {
    Call c(*this);
    cuda::gelu_fwd(c.s.in(x, n), c.s.out(y, n), n);
  }
  void gelu_bwd(const float *x, const float *dy, float *dx,
                int64_t n) const override {
    Call c(*this);
    cuda::gelu_bwd(c.s.in(x, n), c.s.in(dy, n), c.s.out(dx, n), n);
  }
  void gelu_erf_fwd(const float *x, float *y, int64_t n) const override {
    Call c(*this);
    cuda::gelu_erf_fwd(c.s.in(x, n), c.s.out(y, n), n);
  }
  void gelu_erf_bwd(const float *x, const float *dy, float *dx,
                    int64_t n) const override {
    Call c(*this);
    cuda::gelu_erf_bwd(c.s.in(x, n), c.s.in(dy, n), c.s.out(dx, n), n);
  }
  void silu_fwd(const float *x, float *y, int64_t n) const override {
    Call c(*this);
    cuda::silu_fwd(c.s.in(x, n), c.s.out(y, n), n);
  }
  void silu_bwd(const float *x, const float *dy, float *dx,
                int64_t n) const override {
    Call c(*this);
    cuda::silu_bwd(c.s.in(x, n), c.s.in(dy, n), c.s.out(dx, n), n);
  }
  void swiglu_fwd(const float *gate, const float *up, float *y,
                  int64_t n) const override {
    Call c(*this);
    cuda::swiglu_fwd(c.s.in(gate, n), c.s.in(up, n), c.s.out(y, n), n);
  }
  void swiglu_bwd(const float *gate, const float *up, const float *dy,
                  float *dgate, float *dup, int64_t n) const override {
    Call c(*this);
    cuda::swiglu_bwd(c.s.in(gate, n), c.s.in(up, n), c.s.in(dy, n),
                     c.s.out(dgate, n), c.s.out(dup, n), n);
  }
  void softcap_fwd(const float *x, float *y, int64_t n,
                   double c) const override {
    Call c2(*this);
    cuda::softcap_fwd(c2.s.in(x, n), c2.s.out(y, n), n, c);
  }
  void softcap_bwd(const float *x, const float *dy, float *dx, int64_t n,
                   double c) const override {
    Call c2(*this);
    cuda::softcap_bwd(c2.s.in(x, n), c2.s.in(dy, n), c2.s.out(dx, n), n, c);
  }
  void scale(const float *x, float *y, int64_t n, float s) const override {
    if (x != y)
      std::copy(x, x + n, y);
    Call c(*this);
    cuda::scale(c.s.inout(y, n), n, s);
  }
  void geglu_fwd(const float *gate, const float *up, float *y,
                 int64_t n) const override {
    Call c(*this);
    cuda::geglu_fwd(c.s.in(gate, n), c.s.in(up, n), c.s.out(y, n), n);
  }
  void geglu_bwd(const float *gate, const float *up, const float *dy,
                 float *dgate, float *dup, int64_t n) const override {
    Call c(*this);
    cuda::geglu_bwd(c.s.in(gate, n), c.s.in(up, n), c.s.in(dy, n),
                    c.s.out(dgate, n), c.s.out(dup, n), n);
  }
  void add_fwd(const float *a, const float *b, float *y,
               int64_t n) const override {
    Call c(*this);
    cuda::add_fwd(c.s.in(a, n), c.s.in(b, n), c.s.out(y, n), n);
  }
  void accumulate(const float *x, float *y, int64_t n) const override {
    Call c(*this);
    cuda::accumulate(c.s.in(x, n), c.s.inout(y, n), n);
  }
  cpu::LossSum cross_entropy_fwd(const float *logits, const int32_t *targets,
                                 float *lse, int64_t N,
                                 int64_t V) const override {
    cpu::LossSum sum;
    {
      Call c(*this);
      cuda::cross_entropy_fwd(c.s.in(logits, N * V), c.s.in(targets, N),
                              c.s.out(lse, N), c.s.inout(&sum.loss_sum, 1),
                              c.s.inout(&sum.count, 1), N, V);
    }
    return sum;
  }
  void cross_entropy_bwd(const float *logits, const int32_t *targets,
                         const float *lse, float *dlogits, int64_t N,
                         int64_t V, float scale) const override {
    Call c(*this);
    cuda::cross_entropy_bwd(c.s.in(logits, N * V), c.s.in(targets, N),
                            c.s.in(lse, N), c.s.out(dlogits, N * V), N, V,
                            scale);
  }

private:
  /// One call: holds the set's lock, stages the operands, and copies the
  /// results back when it ends (the kernel has been launched by then).
  struct Call {
    explicit Call(const StagedKernelSet &set) : lock(set.mutex_), set(set) {}
    ~Call() noexcept(false) {
      if (std::uncaught_exceptions() == 0)
        s.finish();
    }
    Gemm &gemm() {
      if (!set.gemm_)
        set.gemm_ = std::make_unique<Gemm>();
      return *set.gemm_;
    }
    std::lock_guard<std::mutex> lock;
    const StagedKernelSet &set;
    Staging s;
  };

  mutable std::mutex mutex_;
  mutable std::unique_ptr<Gemm> gemm_; ///< created at the first product
};

} // namespace

const KernelSet &stagedKernels() {
  static const StagedKernelSet set;
  return set;
}

} // namespace s1f::rt::cuda
