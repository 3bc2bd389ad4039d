//===- CudaTestUtil.h - Helpers for the CUDA kernel tests -------*- C++ -*-===//
//
// The CUDA kernels are checked against the CPU reference kernels run in fp64
// on the very values the GPU sees (inputs rounded to the storage type first):
//  * inputs are random and never all zeros; outputs are poisoned with NaN
//    (all bits set) before each run, so an element a kernel forgets to write
//    shows up as NaN, and a NaN never passes;
//  * accumulated outputs (parameter gradients, loss sums) start from random
//    values, so "added" is checked, not just "written";
//  * the measure is ||out - ref|| / ||ref|| (L2 over the whole tensor), below
//    1e-2 for bf16 paths and 1e-5 for fp32 paths. Each check records its
//    error as a test property (it lands in the gtest JSON/XML output).
// Without a visible device every fixture test reports SKIPPED.
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_UNITTESTS_RUNTIME_CUDATESTUTIL_H
#define SEQ1F1B_UNITTESTS_RUNTIME_CUDATESTUTIL_H

#include "seq1f1b/runtime/cpu_kernels.h"
#include "seq1f1b/runtime/cuda/attention.h"
#include "seq1f1b/runtime/cuda/check.h"
#include "seq1f1b/runtime/cuda/kernels.h"

#include "TestUtil.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace s1f::rt::cuda::test {

using Vec = std::vector<double>;

inline bool deviceVisible() {
  static const bool visible = device_count() > 0;
  return visible;
}

/// Fixture of every test that needs a GPU.
class CudaTest : public ::testing::Test {
protected:
  void SetUp() override {
    if (!deviceVisible())
      GTEST_SKIP() << "no CUDA device visible";
  }
};

/// Defines Suite.Name_fp32 and Suite.Name_bf16, which run Name<float>() and
/// Name<bf16>() (a test function template) under the CudaTest fixture.
#define S1F_TEST_BOTH_TYPES(Suite, Name)                                       \
  TEST_F(Suite, Name##_fp32) { Name<float>(); }                                \
  TEST_F(Suite, Name##_bf16) { Name<::s1f::rt::cuda::bf16>(); }

//===----------------------------------------------------------------------===//
// Storage types.
//===----------------------------------------------------------------------===//

template <typename T> struct Storage;
template <> struct Storage<float> {
  static constexpr double tol = 1e-5;
  static float from(double x) { return static_cast<float>(x); }
  static double to(float x) { return x; }
};
template <> struct Storage<bf16> {
  static constexpr double tol = 1e-2;
  static bf16 from(double x) { return __float2bfloat16(static_cast<float>(x)); }
  static double to(bf16 x) { return __bfloat162float(x); }
};

template <typename T> std::vector<T> toStorage(const Vec &v) {
  std::vector<T> r(v.size());
  for (size_t i = 0; i < v.size(); ++i)
    r[i] = Storage<T>::from(v[i]);
  return r;
}
template <typename T> Vec toDouble(const std::vector<T> &v) {
  Vec r(v.size());
  for (size_t i = 0; i < v.size(); ++i)
    r[i] = Storage<T>::to(v[i]);
  return r;
}
/// The values after a round trip through T: what the GPU will see.
template <typename T> Vec rounded(const Vec &v) {
  return toDouble(toStorage<T>(v));
}

//===----------------------------------------------------------------------===//
// Random inputs.
//===----------------------------------------------------------------------===//

using cpu::test::Rng;

//===----------------------------------------------------------------------===//
// Device memory.
//===----------------------------------------------------------------------===//

/// A device buffer, poisoned with NaN (every byte 0xFF) when created.
template <typename T> class DeviceBuffer {
public:
  explicit DeviceBuffer(size_t n) : n_(n) {
    S1F_CUDA_CHECK(cudaMalloc(reinterpret_cast<void **>(&p_),
                              (n > 0 ? n : 1) * sizeof(T)));
    poison();
  }
  explicit DeviceBuffer(const std::vector<T> &v) : DeviceBuffer(v.size()) {
    upload(v);
  }
  ~DeviceBuffer() { cudaFree(p_); }
  DeviceBuffer(const DeviceBuffer &) = delete;
  DeviceBuffer &operator=(const DeviceBuffer &) = delete;

  T *get() const { return p_; }
  size_t size() const { return n_; }
  void poison() { S1F_CUDA_CHECK(cudaMemset(p_, 0xFF, n_ * sizeof(T))); }
  void upload(const std::vector<T> &v) {
    S1F_CUDA_CHECK(
        cudaMemcpy(p_, v.data(), n_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  /// Copies back; cudaMemcpy waits for the kernels on the default stream.
  std::vector<T> download() const {
    std::vector<T> v(n_);
    S1F_CUDA_CHECK(cudaDeviceSynchronize()); // surface asynchronous errors
    S1F_CUDA_CHECK(
        cudaMemcpy(v.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return v;
  }
  Vec downloadDouble() const { return toDouble(download()); }

private:
  T *p_ = nullptr;
  size_t n_ = 0;
};

/// A new device buffer holding `values` rounded to T.
template <typename T> DeviceBuffer<T> toDevice(const Vec &values) {
  return DeviceBuffer<T>(toStorage<T>(values));
}

//===----------------------------------------------------------------------===//
// Comparison.
//===----------------------------------------------------------------------===//

/// ||out - ref|| / ||ref|| < tol, every element finite. Records the error
/// and the tolerance as the test properties relerr_<what> and tol_<what>.
inline ::testing::AssertionResult relErrorBelow(const Vec &out, const Vec &ref,
                                                double tol,
                                                const std::string &what) {
  if (out.size() != ref.size())
    return ::testing::AssertionFailure()
           << what << ": " << out.size() << " elements, expected "
           << ref.size();
  double num = 0, den = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (!std::isfinite(out[i]))
      return ::testing::AssertionFailure()
             << what << "[" << i << "] = " << out[i] << " (reference "
             << ref[i] << "): not written, or not finite";
    num += (out[i] - ref[i]) * (out[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  const double err = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3e", err);
  char tolBuf[32];
  std::snprintf(tolBuf, sizeof tolBuf, "%.0e", tol);
  ::testing::Test::RecordProperty("relerr_" + what, buf);
  ::testing::Test::RecordProperty("tol_" + what, tolBuf);
  if (err < tol)
    return ::testing::AssertionSuccess();
  size_t worst = 0;
  double worstAbs = -1;
  for (size_t i = 0; i < out.size(); ++i)
    if (std::abs(out[i] - ref[i]) > worstAbs) {
      worstAbs = std::abs(out[i] - ref[i]);
      worst = i;
    }
  return ::testing::AssertionFailure()
         << what << ": relative error " << buf << " >= " << tol
         << " (worst element " << worst << ": " << out[worst] << " vs "
         << ref[worst] << ")";
}

#define S1F_EXPECT_CLOSE(out, ref, tol, what)                                  \
  EXPECT_TRUE(::s1f::rt::cuda::test::relErrorBelow((out), (ref), (tol), (what)))

//===----------------------------------------------------------------------===//
// The attention reference.
//===----------------------------------------------------------------------===//

/// One attention call: B sequences, heads and kv_heads of head_dim, the
/// chunk [start, start+len) of a max_seq KV cache; `fused`: q, dq, dk, dv
/// rows live inside one [len, 3*heads*head_dim] buffer (a QKV layer's).
struct AttentionCase {
  int64_t batch, heads, kvHeads, headDim, maxSeq, start, len;
  bool fused;

  std::string name() const {
    return "B" + std::to_string(batch) + "_H" + std::to_string(heads) + "_KV" +
           std::to_string(kvHeads) + "_D" + std::to_string(headDim) + "_S" +
           std::to_string(start) + "+" + std::to_string(len) +
           (fused ? "_fused" : "");
  }
  cpu::AttentionDims dims() const {
    cpu::AttentionDims d;
    d.batch = batch, d.heads = heads, d.kv_heads = kvHeads;
    d.head_dim = headDim, d.max_seq = maxSeq, d.start = start, d.len = len;
    return d;
  }
  /// Row strides, none left 0: q and dq (and dk, dv) `3*heads*head_dim`
  /// apart when fused.
  AttentionStrides strides() const {
    const int64_t qw = heads * headDim, kvw = kvHeads * headDim;
    const int64_t wide = fused ? 3 * qw : qw;
    return {wide, qw, wide, fused ? wide : kvw};
  }
};

/// The fp64 CPU attention of one chunk (cpu::attention_fwd, then _bwd) on
/// packed inputs: out, lse, dq, and the KV-gradient caches `dk`, `dv` after
/// the backward added this chunk's share to rows [0, start+len).
struct AttentionReference {
  Vec out, lse, dq, dk, dv;
};

inline AttentionReference attentionReference(const Vec &q, const Vec &k,
                                             const Vec &v, const Vec &dout,
                                             Vec dk, Vec dv,
                                             const cpu::AttentionDims &d) {
  const size_t n = size_t(d.batch * d.len * d.heads * d.head_dim);
  AttentionReference r{Vec(n), Vec(size_t(d.batch * d.heads * d.len)), Vec(n),
                       std::move(dk), std::move(dv)};
  Vec ws(size_t(cpu::attention_workspace_size(d)));
  cpu::attention_fwd<double>(q.data(), k.data(), v.data(), r.out.data(),
                             r.lse.data(), ws.data(), d);
  cpu::attention_bwd<double>(q.data(), k.data(), v.data(), r.out.data(),
                             dout.data(), r.lse.data(), r.dq.data(),
                             r.dk.data(), r.dv.data(), ws.data(), d);
  return r;
}

} // namespace s1f::rt::cuda::test

#endif // SEQ1F1B_UNITTESTS_RUNTIME_CUDATESTUTIL_H
