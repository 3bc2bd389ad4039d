//===- kernel_set.cpp - The CPU reference kernels as a KernelSet ----------===//

#include "seq1f1b/runtime/kernel_set.h"

namespace s1f::rt {
namespace {

class CpuKernelSet final : public KernelSet {
public:
  const char *name() const override { return "cpu"; }

  void embedding_fwd(const int32_t *ids, const float *table, float *out,
                     int64_t N, int64_t V, int64_t D) const override {
    cpu::embedding_fwd(ids, table, out, N, V, D);
  }
  void embedding_bwd(const int32_t *ids, const float *dout, float *dtable,
                     int64_t N, int64_t V, int64_t D) const override {
    cpu::embedding_bwd(ids, dout, dtable, N, V, D);
  }
  void pos_embedding_fwd(const float *table, float *out, int64_t B, int64_t S,
                         int64_t start, int64_t Pmax,
                         int64_t D) const override {
    cpu::pos_embedding_fwd(table, out, B, S, start, Pmax, D);
  }
  void pos_embedding_bwd(const float *dout, float *dtable, int64_t B,
                         int64_t S, int64_t start, int64_t Pmax,
                         int64_t D) const override {
    cpu::pos_embedding_bwd(dout, dtable, B, S, start, Pmax, D);
  }
  void layer_norm_fwd(const float *x, const float *gamma, const float *beta,
                      float *y, float *mean, float *rstd, int64_t N, int64_t D,
                      float eps) const override {
    cpu::layer_norm_fwd(x, gamma, beta, y, mean, rstd, N, D, eps);
  }
  void layer_norm_bwd(const float *x, const float *gamma, const float *mean,
                      const float *rstd, const float *dy, float *dx,
                      float *dgamma, float *dbeta, int64_t N,
                      int64_t D) const override {
    cpu::layer_norm_bwd(x, gamma, mean, rstd, dy, dx, dgamma, dbeta, N, D);
  }
  void rms_norm_fwd(const float *x, const float *gamma, float *y, float *rstd,
                    int64_t N, int64_t D, float eps) const override {
    cpu::rms_norm_fwd(x, gamma, y, rstd, N, D, eps);
  }
  void rms_norm_bwd(const float *x, const float *gamma, const float *rstd,
                    const float *dy, float *dx, float *dgamma, int64_t N,
                    int64_t D) const override {
    cpu::rms_norm_bwd(x, gamma, rstd, dy, dx, dgamma, N, D);
  }
  void linear_fwd(const float *x, const float *W, const float *bias, float *y,
                  int64_t N, int64_t in, int64_t out) const override {
    cpu::linear_fwd(x, W, bias, y, N, in, out);
  }
  void linear_bwd(const float *x, const float *W, const float *dy, float *dx,
                  float *dW, float *db, int64_t N, int64_t in,
                  int64_t out) const override {
    cpu::linear_bwd(x, W, dy, dx, dW, db, N, in, out);
  }
  void rope_fwd(const float *x, float *y, int64_t B, int64_t S, int64_t H,
                int64_t hd, int64_t start, double theta, int64_t rotary,
                const RopeScaling &scaling) const override {
    cpu::rope_fwd(x, y, B, S, H, hd, start, theta, rotary, scaling);
  }
  void rope_bwd(const float *dy, float *dx, int64_t B, int64_t S, int64_t H,
                int64_t hd, int64_t start, double theta, int64_t rotary,
                const RopeScaling &scaling) const override {
    cpu::rope_bwd(dy, dx, B, S, H, hd, start, theta, rotary, scaling);
  }
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
  int64_t attention_workspace_size(
      const cpu::AttentionDims &d) const override {
    return cpu::attention_workspace_size(d);
  }
  void attention_fwd(const float *q, const float *kcache, const float *vcache,
                     float *out, float *lse, float *workspace,
                     const cpu::AttentionDims &d) const override {
    cpu::attention_fwd(q, kcache, vcache, out, lse, workspace, d);
  }
  void attention_bwd(const float *q, const float *kcache, const float *vcache,
                     const float *out, const float *dout, const float *lse,
                     float *dq, float *dkcache, float *dvcache,
                     float *workspace,
                     const cpu::AttentionDims &d) const override {
    cpu::attention_bwd(q, kcache, vcache, out, dout, lse, dq, dkcache, dvcache,
                       workspace, d);
  }
  void gelu_fwd(const float *x, float *y, int64_t n) const override {
    cpu::gelu_fwd(x, y, n);
  }
  void gelu_bwd(const float *x, const float *dy, float *dx,
                int64_t n) const override {
    cpu::gelu_bwd(x, dy, dx, n);
  }
  void gelu_erf_fwd(const float *x, float *y, int64_t n) const override {
    cpu::gelu_erf_fwd(x, y, n);
  }
  void gelu_erf_bwd(const float *x, const float *dy, float *dx,
                    int64_t n) const override {
    cpu::gelu_erf_bwd(x, dy, dx, n);
  }
  void silu_fwd(const float *x, float *y, int64_t n) const override {
    cpu::silu_fwd(x, y, n);
  }
  void silu_bwd(const float *x, const float *dy, float *dx,
                int64_t n) const override {
    cpu::silu_bwd(x, dy, dx, n);
  }
  void swiglu_fwd(const float *gate, const float *up, float *y,
                  int64_t n) const override {
    cpu::swiglu_fwd(gate, up, y, n);
  }
  void geglu_fwd(const float *gate, const float *up, float *y,
                 int64_t n) const override {
    cpu::geglu_fwd(gate, up, y, n);
  }
  void softcap_fwd(const float *x, float *y, int64_t n,
                   double c) const override {
    cpu::softcap_fwd(x, y, n, c);
  }
  void softcap_bwd(const float *x, const float *dy, float *dx, int64_t n,
                   double c) const override {
    cpu::softcap_bwd(x, dy, dx, n, c);
  }
  void scale(const float *x, float *y, int64_t n, float s) const override {
    for (int64_t i = 0; i < n; ++i)
      y[i] = s * x[i];
  }
  void geglu_bwd(const float *gate, const float *up, const float *dy,
                 float *dgate, float *dup, int64_t n) const override {
    cpu::geglu_bwd(gate, up, dy, dgate, dup, n);
  }
  void swiglu_bwd(const float *gate, const float *up, const float *dy,
                  float *dgate, float *dup, int64_t n) const override {
    cpu::swiglu_bwd(gate, up, dy, dgate, dup, n);
  }
  void add_fwd(const float *a, const float *b, float *y,
               int64_t n) const override {
    cpu::add_fwd(a, b, y, n);
  }
  void accumulate(const float *x, float *y, int64_t n) const override {
    cpu::accumulate(x, y, n);
  }
  cpu::LossSum cross_entropy_fwd(const float *logits, const int32_t *targets,
                                 float *lse, int64_t N,
                                 int64_t V) const override {
    return cpu::cross_entropy_fwd(logits, targets, lse, N, V);
  }
  void cross_entropy_bwd(const float *logits, const int32_t *targets,
                         const float *lse, float *dlogits, int64_t N,
                         int64_t V, float scale) const override {
    cpu::cross_entropy_bwd(logits, targets, lse, dlogits, N, V, scale);
  }
};

} // namespace

const KernelSet &cpuKernels() {
  static const CpuKernelSet set;
  return set;
}

} // namespace s1f::rt
