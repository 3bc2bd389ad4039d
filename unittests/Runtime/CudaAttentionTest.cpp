//===- CudaAttentionTest.cpp - GPU attention against the fp64 CPU one -----===//
//
// cuda::attention_fwd/_bwd (bf16, tensor cores) against cpu::attention_fwd/
// _bwd in fp64 on the same bf16-rounded inputs: chunks at the start, in the
// middle and at the end of the prefix, lengths and starts that are not
// multiples of the tiles, a one-token chunk, grouped-query heads, head_dim 64
// and 128, and q/dq/dk/dv living in a fused QKV buffer (row strides). The
// KV-gradient buffers start from random values standing for what later
// chunks added; rows past the chunk must come back bit-identical. Every case
// runs on both engines: every variant of our kernels (CudaAttention.*) and
// cuDNN's fused attention (CudaAttentionCudnn.*).
//
//===----------------------------------------------------------------------===//

#include "CudaTestUtil.h"

#include "seq1f1b/runtime/cpu_kernels.h"
#include "seq1f1b/runtime/cuda/attention.h"

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace cpu = s1f::rt::cpu;
using namespace s1f::rt::cuda;
using namespace s1f::rt::cuda::test;

namespace {

using CudaAttention = CudaTest;

using Case = AttentionCase;

/// Rows [r0, r1) of every sequence of a [B, rows, width] tensor.
Vec rowsOf(const Vec &v, int64_t B, int64_t rows, int64_t width, int64_t r0,
           int64_t r1) {
  Vec out;
  for (int64_t b = 0; b < B; ++b)
    out.insert(out.end(), v.begin() + (b * rows + r0) * width,
               v.begin() + (b * rows + r1) * width);
  return out;
}

/// Columns [c0, c0 + width) of a [rows, stride] matrix.
Vec columns(const Vec &v, int64_t rows, int64_t stride, int64_t c0,
            int64_t width) {
  Vec out;
  for (int64_t r = 0; r < rows; ++r)
    out.insert(out.end(), v.begin() + r * stride + c0,
               v.begin() + r * stride + c0 + width);
  return out;
}

::testing::AssertionResult identical(const Vec &got, const Vec &want,
                                     const char *what) {
  for (size_t i = 0; i < want.size(); ++i)
    if (got[i] != want[i]) // NaN included
      return ::testing::AssertionFailure()
             << what << "[" << i << "] = " << got[i] << ", was " << want[i];
  return ::testing::AssertionSuccess();
}

/// A case's random inputs, rounded to the storage type T; the KV-gradient
/// buffers (what later chunks added) are fp32 on the GPU in both modes.
struct Inputs {
  Vec q, k, v, dout, dkInit, dvInit;
};

template <typename T> Inputs randomInputs(const Case &c, uint32_t seed) {
  const int64_t B = c.batch, L = c.len;
  const int64_t qw = c.heads * c.headDim, kvw = c.kvHeads * c.headDim;
  Rng rng(seed);
  Inputs in;
  in.q = rounded<T>(rng.uniform(B * L * qw, -2, 2));
  in.k = rounded<T>(rng.uniform(B * c.maxSeq * kvw, -2, 2));
  in.v = rounded<T>(rng.uniform(B * c.maxSeq * kvw));
  in.dout = rounded<T>(rng.uniform(B * L * qw));
  in.dkInit = rounded<float>(rng.uniform(B * c.maxSeq * kvw));
  in.dvInit = rounded<float>(rng.uniform(B * c.maxSeq * kvw));
  return in;
}

void runOnce(const Case &c, uint32_t seed) {
  const cpu::AttentionDims d = c.dims();
  const int64_t B = c.batch, L = c.len, kend = c.start + c.len;
  const int64_t qw = c.heads * c.headDim, kvw = c.kvHeads * c.headDim;
  const double tol = Storage<bf16>::tol;

  const Inputs in = randomInputs<bf16>(c, seed);
  const Vec &q = in.q, &k = in.k, &v = in.v, &dout = in.dout;
  const Vec &dkInit = in.dkInit, &dvInit = in.dvInit;
  const AttentionReference ref =
      attentionReference(q, k, v, dout, dkInit, dvInit, d);
  const Vec &out = ref.out, &lse = ref.lse, &dq = ref.dq;
  const Vec &dkRef = ref.dk, &dvRef = ref.dv;

  // The GPU run; with `fused`, q sits at column 0 of a [rows, 3*qw] buffer
  // and dq, dk, dv at columns 0, qw, 2*qw of another (how a QKV linear
  // layer lays them out). Unfused, the strides stay 0: the API's default.
  const AttentionStrides s = c.fused ? c.strides() : AttentionStrides{};
  const int64_t wide = c.strides().q;
  Vec qBuf(B * L * wide, 0.0);
  for (int64_t r = 0; r < B * L; ++r)
    for (int64_t j = 0; j < qw; ++j)
      qBuf[r * wide + j] = q[r * qw + j];
  auto gQ = toDevice<bf16>(qBuf), gK = toDevice<bf16>(k), gV = toDevice<bf16>(v);
  auto gDout = toDevice<bf16>(dout);
  DeviceBuffer<bf16> gOut(B * L * qw);
  DeviceBuffer<float> gLse(B * c.heads * L);
  attention_fwd(gQ.get(), gK.get(), gV.get(), gOut.get(), gLse.get(), d, s);
  const Vec gotOut = gOut.downloadDouble();
  S1F_EXPECT_CLOSE(gotOut, out, tol, "out");
  S1F_EXPECT_CLOSE(gLse.downloadDouble(), lse, 1e-5, "lse");

  // The backward reads the GPU's own output (delta = rowsum(dO * O)).
  DeviceBuffer<bf16> gGrad(B * L * (c.fused ? wide : qw));
  DeviceBuffer<bf16> gDk(c.fused ? 1 : B * L * kvw), gDv(c.fused ? 1 : B * L * kvw);
  bf16 *dqPtr = gGrad.get();
  bf16 *dkPtr = c.fused ? gGrad.get() + qw : gDk.get();
  bf16 *dvPtr = c.fused ? gGrad.get() + 2 * qw : gDv.get();
  auto gDkBuf = toDevice<float>(dkInit), gDvBuf = toDevice<float>(dvInit);
  DeviceBuffer<float> gWs(attention_bwd_workspace_size(d));
  attention_bwd(gQ.get(), gK.get(), gV.get(), gOut.get(), gDout.get(),
                gLse.get(), dqPtr, dkPtr, dvPtr, gDkBuf.get(), gDvBuf.get(),
                gWs.get(), d, s);

  const Vec grad = gGrad.downloadDouble();
  const Vec gotDq = c.fused ? columns(grad, B * L, wide, 0, qw) : grad;
  const Vec gotDk = c.fused ? columns(grad, B * L, wide, qw, kvw)
                            : gDk.downloadDouble();
  const Vec gotDv = c.fused ? columns(grad, B * L, wide, 2 * qw, kvw)
                            : gDv.downloadDouble();
  S1F_EXPECT_CLOSE(gotDq, dq, tol, "dq");
  // The chunk's own keys: complete gradients, written as bf16.
  S1F_EXPECT_CLOSE(gotDk, rowsOf(dkRef, B, c.maxSeq, kvw, c.start, kend), tol,
                   "dk_chunk");
  S1F_EXPECT_CLOSE(gotDv, rowsOf(dvRef, B, c.maxSeq, kvw, c.start, kend), tol,
                   "dv_chunk");
  const Vec dkBuf = gDkBuf.downloadDouble(), dvBuf = gDvBuf.downloadDouble();
  if (c.start > 0) { // earlier keys: accumulated in the fp32 buffers
    S1F_EXPECT_CLOSE(rowsOf(dkBuf, B, c.maxSeq, kvw, 0, c.start),
                     rowsOf(dkRef, B, c.maxSeq, kvw, 0, c.start), tol,
                     "dk_prefix");
    S1F_EXPECT_CLOSE(rowsOf(dvBuf, B, c.maxSeq, kvw, 0, c.start),
                     rowsOf(dvRef, B, c.maxSeq, kvw, 0, c.start), tol,
                     "dv_prefix");
  }
  // The chunk's rows are read, not written; rows after it are untouched.
  EXPECT_TRUE(identical(rowsOf(dkBuf, B, c.maxSeq, kvw, c.start, c.maxSeq),
                        rowsOf(dkInit, B, c.maxSeq, kvw, c.start, c.maxSeq),
                        "dk buffer row"));
  EXPECT_TRUE(identical(rowsOf(dvBuf, B, c.maxSeq, kvw, c.start, c.maxSeq),
                        rowsOf(dvInit, B, c.maxSeq, kvw, c.start, c.maxSeq),
                        "dv buffer row"));
  if (c.fused) { // the input q buffer is read only
    EXPECT_TRUE(identical(gQ.downloadDouble(), qBuf, "q"));
  }
}

/// Every variant of our kernels (attention.cu): both pipeline depths, dQ
/// added with atomics or computed by its own (deterministic) kernel.
void runOwn(const Case &c, uint32_t seed) {
  ::setenv("S1F_ATTENTION_ENGINE", "own", 1);
  for (const char *stages : {"1", "2"})
    for (const char *bwd : {"atomic", "deterministic"}) {
      SCOPED_TRACE(c.name() + ", S1F_ATTENTION_STAGES=" + stages +
                   ", S1F_ATTENTION_BWD=" + bwd);
      ::setenv("S1F_ATTENTION_STAGES", stages, 1);
      ::setenv("S1F_ATTENTION_BWD", bwd, 1);
      runOnce(c, seed);
      ::unsetenv("S1F_ATTENTION_STAGES");
      ::unsetenv("S1F_ATTENTION_BWD");
    }
  ::unsetenv("S1F_ATTENTION_ENGINE");
}

/// cuDNN's fused attention (attention_cudnn.cpp) under the same contract:
/// `cudnn` (one masked call per chunk) or `cudnn-split` (own and prefix keys
/// apart).
void runCudnn(const Case &c, uint32_t seed, const char *engine) {
  SCOPED_TRACE(c.name() + ", S1F_ATTENTION_ENGINE=" + engine);
  ::setenv("S1F_ATTENTION_ENGINE", engine, 1);
  runOnce(c, seed);
  ::unsetenv("S1F_ATTENTION_ENGINE");
}

/// The cudnn engine's tests: skipped, saying why, where it cannot run.
class CudaAttentionCudnn : public CudaTest {
protected:
  void SetUp() override {
    CudaTest::SetUp();
    if (IsSkipped())
      return;
    if (const std::string why = cudnn_unavailable_reason(); !why.empty())
      GTEST_SKIP() << why;
  }
};

/// The split engine's tests apart, so that each cudnn engine passes or fails
/// on its own.
class CudaAttentionCudnnSplit : public CudaAttentionCudnn {};

/// One case on every engine: CudaAttention.Name, CudaAttentionCudnn.Name and
/// CudaAttentionCudnnSplit.Name.
#define S1F_ATTENTION_CASE(Name, seed, ...)                                    \
  TEST_F(CudaAttention, Name) { runOwn(Case{__VA_ARGS__}, seed); }             \
  TEST_F(CudaAttentionCudnn, Name) {                                           \
    runCudnn(Case{__VA_ARGS__}, seed, "cudnn");                                \
  }                                                                            \
  TEST_F(CudaAttentionCudnnSplit, Name) {                                      \
    runCudnn(Case{__VA_ARGS__}, seed, "cudnn-split");                          \
  }

S1F_ATTENTION_CASE(WholeSequenceOneTile, 1, 1, 2, 2, 64, 64, 0, 64, false)
S1F_ATTENTION_CASE(WholeSequenceGroupedHeads, 2, 2, 4, 2, 64, 300, 0, 300,
                   false)
S1F_ATTENTION_CASE(MiddleChunkUnaligned, 3, 2, 4, 2, 128, 320, 130, 77, false)
S1F_ATTENTION_CASE(LastChunkAligned, 4, 1, 4, 1, 128, 512, 256, 256, false)
S1F_ATTENTION_CASE(OneTokenChunk, 5, 1, 3, 3, 64, 200, 199, 1, false)
S1F_ATTENTION_CASE(FusedQkvLayout, 6, 1, 4, 4, 128, 400, 96, 200, true)
// start 0 but a shorter chunk than the cache: rows after it untouched.
S1F_ATTENTION_CASE(FirstChunkOfSeveral, 7, 2, 2, 2, 128, 256, 0, 100, false)

/// The fp32 kernels against the same fp64 reference at 1e-5: CPU semantics
/// (the buffers get rows [0, start+len) added), any head_dim, sliding
/// windows.
void runFp32(const Case &c, uint32_t seed, int64_t window = 0) {
  SCOPED_TRACE(c.name() + " fp32, window " + std::to_string(window));
  cpu::AttentionDims d = c.dims();
  d.window = window;
  const int64_t B = c.batch, L = c.len;
  const int64_t qw = c.heads * c.headDim;
  const Inputs in = randomInputs<float>(c, seed);
  const Vec &q = in.q, &k = in.k, &v = in.v, &dout = in.dout;
  const Vec &dkInit = in.dkInit, &dvInit = in.dvInit;
  const AttentionReference ref =
      attentionReference(q, k, v, dout, dkInit, dvInit, d);

  auto gQ = toDevice<float>(q), gK = toDevice<float>(k), gV = toDevice<float>(v);
  auto gDout = toDevice<float>(dout);
  auto gDk = toDevice<float>(dkInit), gDv = toDevice<float>(dvInit);
  DeviceBuffer<float> gOut(B * L * qw), gLse(B * c.heads * L), gDq(B * L * qw);
  attention_fwd_fp32(gQ.get(), gK.get(), gV.get(), gOut.get(), gLse.get(), d);
  attention_bwd_fp32(gQ.get(), gK.get(), gV.get(), gOut.get(), gDout.get(),
                     gLse.get(), gDq.get(), gDk.get(), gDv.get(), d);
  const double tol = Storage<float>::tol;
  S1F_EXPECT_CLOSE(gOut.downloadDouble(), ref.out, tol, "out");
  S1F_EXPECT_CLOSE(gLse.downloadDouble(), ref.lse, tol, "lse");
  S1F_EXPECT_CLOSE(gDq.downloadDouble(), ref.dq, tol, "dq");
  S1F_EXPECT_CLOSE(gDk.downloadDouble(), ref.dk, tol, "dkcache");
  S1F_EXPECT_CLOSE(gDv.downloadDouble(), ref.dv, tol, "dvcache");
}

TEST_F(CudaAttention, Fp32MatchesCpuContract) {
  runFp32({2, 4, 2, 8, 40, 13, 17, false}, 11);  // GQA, tiny head_dim
  runFp32({1, 2, 2, 4, 14, 0, 14, false}, 12);   // whole sequence
  runFp32({1, 3, 1, 40, 90, 60, 30, false}, 13); // last chunk, head_dim 40
  runFp32({1, 2, 2, 128, 200, 64, 77, false}, 14);
  // Sliding windows: shorter than the chunk, than the prefix, of one key.
  runFp32({2, 4, 2, 8, 40, 13, 17, false}, 15, 5);
  runFp32({1, 3, 1, 40, 90, 60, 30, false}, 16, 45);
  runFp32({1, 2, 2, 4, 14, 0, 14, false}, 17, 1);
}

// Host-side argument checks: they throw before touching the device, so they
// run everywhere.
TEST(CudaAttentionArgs, BadShapesAndLayouts) {
  cpu::AttentionDims d;
  d.batch = 1, d.heads = 4, d.kv_heads = 2, d.head_dim = 96, d.max_seq = 64;
  d.start = 0, d.len = 64;
  alignas(16) static bf16 buf[64];
  float lse[4];
  auto fwd = [&](const AttentionStrides &s = {}) {
    attention_fwd(buf, buf, buf, buf, lse, d, s);
  };
  EXPECT_THROW(fwd(), std::invalid_argument); // head_dim 96
  d.head_dim = 64;
  d.kv_heads = 3;
  EXPECT_THROW(fwd(), std::invalid_argument); // 4 heads over 3 kv heads
  d.kv_heads = 2;
  d.start = 10;
  EXPECT_THROW(fwd(), std::invalid_argument); // past max_seq
  d.start = 0;
  EXPECT_THROW(fwd({260, 0, 0, 0}), std::invalid_argument); // stride % 8
  EXPECT_THROW(fwd({128, 0, 0, 0}), std::invalid_argument); // stride < row
  try {
    fwd({260, 0, 0, 0});
  } catch (const std::invalid_argument &e) {
    EXPECT_NE(std::string(e.what()).find("multiples of 8"), std::string::npos)
        << e.what();
  }
  d.start = 8, d.len = 56;
  float ws[4];
  EXPECT_THROW(attention_bwd(buf, buf, buf, buf, buf, lse, buf, buf, buf,
                             nullptr, nullptr, ws, d),
               std::invalid_argument); // start > 0 needs the buffers
}

TEST(CudaAttentionArgs, EngineFromEnvironment) {
  ::setenv("S1F_ATTENTION_ENGINE", "cudnn", 1);
  EXPECT_EQ(attention_engine(), AttentionEngine::Cudnn);
  ::setenv("S1F_ATTENTION_ENGINE", "cudnn-split", 1);
  EXPECT_EQ(attention_engine(), AttentionEngine::CudnnSplit);
  ::setenv("S1F_ATTENTION_ENGINE", "own", 1);
  EXPECT_EQ(attention_engine(), AttentionEngine::Own);
  ::setenv("S1F_ATTENTION_ENGINE", "flash", 1);
  try {
    attention_engine();
    ADD_FAILURE() << "S1F_ATTENTION_ENGINE=flash was accepted";
  } catch (const std::invalid_argument &e) {
    EXPECT_NE(std::string(e.what()).find("S1F_ATTENTION_ENGINE must be"),
              std::string::npos)
        << e.what();
  }
  // Unset: cuDNN's split engine, the faster one, wherever cuDNN can run.
  ::unsetenv("S1F_ATTENTION_ENGINE");
  EXPECT_EQ(attention_engine(), cudnn_unavailable_reason().empty()
                                    ? AttentionEngine::CudnnSplit
                                    : AttentionEngine::Own);
  EXPECT_STREQ(attention_engine_name(AttentionEngine::CudnnSplit),
               "cudnn-split");
  EXPECT_STREQ(attention_engine_name(AttentionEngine::Own), "own");
  EXPECT_STREQ(attention_engine_name(AttentionEngine::Cudnn), "cudnn");
}

} // namespace
