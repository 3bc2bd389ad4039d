//===- CudaGemmTest.cpp - cuBLASLt GEMMs against the fp64 CPU gemm --------===//
//
// The row-major wrapper over cuBLASLt: every transpose combination, bf16 and
// fp32 inputs, bf16 and fp32 outputs, beta = 0 and 1, padded leading
// dimensions, odd sizes, the bias and GELU epilogues, the plan cache, and
// the linear layer (forward, GELU-fused forward, backward with fp32 weight
// gradients added). The reference is cpu::gemm / cpu::linear_* in fp64 on
// the rounded inputs. An fp32 output of exact inputs is held to 1e-5 even
// with bf16 inputs (it shows fp32 accumulation, and which GELU cuBLASLt
// applies: erf and tanh forms differ by ~1.5e-4); bf16 outputs to 1e-2.
//
//===----------------------------------------------------------------------===//

#include "CudaTestUtil.h"

#include "seq1f1b/runtime/cpu_kernels.h"
#include "seq1f1b/runtime/cuda/gemm.h"

#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

namespace cpu = s1f::rt::cpu;
using namespace s1f::rt::cuda;
using namespace s1f::rt::cuda::test;

namespace {

using CudaGemm = CudaTest; // the suite of this file

template <typename T> DType dtypeOf() {
  return std::is_same_v<T, float> ? DType::F32 : DType::BF16;
}
template <typename T> const char *nameOf() {
  return std::is_same_v<T, float> ? "fp32" : "bf16";
}

struct Problem {
  bool transA = false, transB = false;
  int64_t m = 0, n = 0, k = 0;
  int64_t pad = 0; ///< extra elements per row of A, B and C
  float beta = 0.0f;
  Epilogue epilogue = Epilogue::None;
};

std::string describe(const Problem &p) {
  return std::to_string(p.m) + "x" + std::to_string(p.n) + "x" +
         std::to_string(p.k) + (p.transA ? "_At" : "") +
         (p.transB ? "_Bt" : "") + (p.pad ? "_pad" : "") +
         (p.beta != 0 ? "_beta1" : "") + "_epi" +
         std::to_string(static_cast<int>(p.epilogue));
}

/// Runs one GEMM on the GPU and in fp64 on the CPU and compares.
template <typename AB, typename C>
void checkGemm(Gemm &gemm, const Problem &p, uint32_t seed) {
  Rng rng(seed);
  const int64_t aRows = p.transA ? p.k : p.m, aCols = p.transA ? p.m : p.k;
  const int64_t bRows = p.transB ? p.n : p.k, bCols = p.transB ? p.k : p.n;
  const int64_t lda = aCols + p.pad, ldb = bCols + p.pad, ldc = p.n + p.pad;
  const Vec A = rounded<AB>(rng.uniform(aRows * lda));
  const Vec B = rounded<AB>(rng.uniform(bRows * ldb));
  const Vec C0 = rounded<C>(rng.uniform(p.m * ldc));
  const Vec bias = rounded<C>(rng.uniform(p.n));
  const bool withBias = p.epilogue == Epilogue::Bias ||
                        p.epilogue == Epilogue::GeluBias ||
                        p.epilogue == Epilogue::GeluAuxBias;
  const bool withGelu = p.epilogue != Epilogue::None &&
                        p.epilogue != Epilogue::Bias;
  const bool withAux = p.epilogue == Epilogue::GeluAux ||
                       p.epilogue == Epilogue::GeluAuxBias;

  Vec pre = C0; // reference: pre-activation, then output
  cpu::gemm(p.transA, p.transB, p.m, p.n, p.k, 1.0, A.data(), lda, B.data(),
            ldb, static_cast<double>(p.beta), pre.data(), ldc);
  Vec refPre(p.m * p.n), refOut(p.m * p.n);
  for (int64_t i = 0; i < p.m; ++i)
    for (int64_t j = 0; j < p.n; ++j)
      refPre[i * p.n + j] = pre[i * ldc + j] + (withBias ? bias[j] : 0.0);
  if (withGelu)
    cpu::gelu_fwd<double>(refPre.data(), refOut.data(), p.m * p.n);
  else
    refOut = refPre;

  auto dA = toDevice<AB>(A), dB = toDevice<AB>(B), dC = toDevice<C>(C0);
  auto dBias = toDevice<C>(bias);
  if (p.beta == 0)
    dC.poison();
  DeviceBuffer<C> dAux(p.m * ldc);
  GemmArgs g;
  g.transA = p.transA;
  g.transB = p.transB;
  g.m = p.m;
  g.n = p.n;
  g.k = p.k;
  g.abType = dtypeOf<AB>();
  g.cType = dtypeOf<C>();
  g.A = dA.get();
  g.lda = lda;
  g.B = dB.get();
  g.ldb = ldb;
  g.C = dC.get();
  g.ldc = ldc;
  g.beta = p.beta;
  g.epilogue = p.epilogue;
  g.bias = withBias ? dBias.get() : nullptr;
  g.aux = withAux ? dAux.get() : nullptr;
  g.ldaux = withAux ? ldc : 0;
  gemm.run(g);

  auto crop = [&](const Vec &full) {
    Vec r(p.m * p.n);
    for (int64_t i = 0; i < p.m; ++i)
      for (int64_t j = 0; j < p.n; ++j)
        r[i * p.n + j] = full[i * ldc + j];
    return r;
  };
  const double tol = Storage<C>::tol;
  const std::string what =
      std::string(nameOf<AB>()) + "_" + nameOf<C>() + "_" + describe(p);
  S1F_EXPECT_CLOSE(crop(dC.downloadDouble()), refOut, tol, what);
  if (withAux) {
    S1F_EXPECT_CLOSE(crop(dAux.downloadDouble()), refPre, tol, "aux_" + what);
  }
}

template <typename AB, typename C> void allLayouts(Gemm &gemm) {
  uint32_t seed = 200;
  for (auto [m, n, k] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {512, 384, 256}, {77, 45, 33}, {1000, 200, 120}})
    for (bool tA : {false, true})
      for (bool tB : {false, true}) {
        Problem p;
        p.transA = tA;
        p.transB = tB;
        p.m = m;
        p.n = n;
        p.k = k;
        checkGemm<AB, C>(gemm, p, ++seed);
      }
  Problem p; // accumulate into C, padded rows
  p.m = 300;
  p.n = 264;
  p.k = 136;
  p.transB = true;
  p.pad = 8;
  p.beta = 1.0f;
  checkGemm<AB, C>(gemm, p, ++seed);
}

TEST_F(CudaGemm, LayoutsBf16ToBf16) {
  Gemm gemm;
  allLayouts<bf16, bf16>(gemm);
}
TEST_F(CudaGemm, LayoutsBf16ToFp32) {
  Gemm gemm;
  allLayouts<bf16, float>(gemm);
}
TEST_F(CudaGemm, LayoutsFp32ToFp32) {
  Gemm gemm;
  allLayouts<float, float>(gemm);
}

template <typename AB, typename C> void allEpilogues(Gemm &gemm) {
  uint32_t seed = 300;
  for (Epilogue e : {Epilogue::Bias, Epilogue::Gelu, Epilogue::GeluBias,
                     Epilogue::GeluAux, Epilogue::GeluAuxBias})
    for (auto [m, n, k] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
             {256, 136, 96}, {333, 200, 120}}) {
      Problem p;
      p.transB = true; // the linear layer's layout: x W^T
      p.m = m;
      p.n = n;
      p.k = k;
      p.epilogue = e;
      checkGemm<AB, C>(gemm, p, ++seed);
    }
}

TEST_F(CudaGemm, EpiloguesBf16ToBf16) {
  Gemm gemm;
  allEpilogues<bf16, bf16>(gemm);
}
TEST_F(CudaGemm, EpiloguesBf16ToFp32) {
  Gemm gemm;
  allEpilogues<bf16, float>(gemm);
}
TEST_F(CudaGemm, EpiloguesFp32ToFp32) {
  Gemm gemm;
  allEpilogues<float, float>(gemm);
}

TEST_F(CudaGemm, PlansAreCachedPerProblem) {
  Gemm gemm;
  Problem p;
  p.m = 64;
  p.n = 64;
  p.k = 64;
  checkGemm<bf16, bf16>(gemm, p, 1);
  checkGemm<bf16, bf16>(gemm, p, 2);
  EXPECT_EQ(gemm.cached_plans(), 1u);
  p.k = 72;
  checkGemm<bf16, bf16>(gemm, p, 3);
  EXPECT_EQ(gemm.cached_plans(), 2u);
}

TEST_F(CudaGemm, RejectsBadArguments) {
  Gemm gemm;
  DeviceBuffer<bf16> buf(64 * 64);
  GemmArgs g;
  g.m = g.n = g.k = 64;
  g.A = g.B = g.C = buf.get();
  g.lda = 32; // < k
  g.ldb = g.ldc = 64;
  EXPECT_THROW(gemm.run(g), std::invalid_argument);
  g.lda = 64;
  g.epilogue = Epilogue::GeluAux;
  g.aux = buf.get();
  g.ldaux = 65; // not a multiple of 8
  EXPECT_THROW(gemm.run(g), std::invalid_argument);
  g.epilogue = Epilogue::Bias; // without a bias
  EXPECT_THROW(gemm.run(g), std::invalid_argument);
  g.epilogue = Epilogue::None;
  g.abType = DType::F32; // fp32 inputs, bf16 output
  EXPECT_THROW(gemm.run(g), std::invalid_argument);
}

//===----------------------------------------------------------------------===//
// The linear layer.
//===----------------------------------------------------------------------===//

template <typename T> void LinearForwardBackward() {
  const double tol = Storage<T>::tol;
  Gemm gemm;
  Rng rng(400);
  struct Case {
    int64_t N, in, out;
    bool bias;
  };
  for (const Case &c : {Case{1024, 1024, 768, true}, Case{333, 200, 45, true},
                        Case{96, 64, 136, false}}) {
    const std::string t = std::to_string(c.N) + "x" + std::to_string(c.in) +
                          "x" + std::to_string(c.out);
    const Vec x = rounded<T>(rng.uniform(c.N * c.in));
    const Vec W = rounded<T>(rng.uniform(c.out * c.in, -0.1, 0.1));
    const Vec b = rounded<T>(rng.uniform(c.out));
    const Vec dy = rounded<T>(rng.uniform(c.N * c.out));
    Vec y(c.N * c.out), dx(c.N * c.in);
    Vec dW = rounded<float>(rng.uniform(c.out * c.in)); // added to
    Vec db = rounded<float>(rng.uniform(c.out));
    auto dDW = toDevice<float>(dW), dDb = toDevice<float>(db);
    cpu::linear_fwd<double>(x.data(), W.data(), c.bias ? b.data() : nullptr,
                            y.data(), c.N, c.in, c.out);
    cpu::linear_bwd<double>(x.data(), W.data(), dy.data(), dx.data(),
                            dW.data(), c.bias ? db.data() : nullptr, c.N, c.in,
                            c.out);

    auto dX = toDevice<T>(x), dWt = toDevice<T>(W), dB = toDevice<T>(b),
         dDy = toDevice<T>(dy);
    DeviceBuffer<T> dY(c.N * c.out), dDx(c.N * c.in);
    linear_fwd<T>(gemm, dX.get(), dWt.get(), c.bias ? dB.get() : nullptr,
                  dY.get(), c.N, c.in, c.out);
    // Input and weight gradients in separate calls, as zero-bubble
    // schedules issue them.
    linear_bwd<T>(gemm, dX.get(), dWt.get(), dDy.get(), dDx.get(), nullptr,
                  nullptr, c.N, c.in, c.out);
    linear_bwd<T>(gemm, dX.get(), dWt.get(), dDy.get(), nullptr, dDW.get(),
                  c.bias ? dDb.get() : nullptr, c.N, c.in, c.out);
    S1F_EXPECT_CLOSE(dY.downloadDouble(), y, tol, "y_" + t);
    S1F_EXPECT_CLOSE(dDx.downloadDouble(), dx, tol, "dx_" + t);
    S1F_EXPECT_CLOSE(dDW.downloadDouble(), dW, tol, "dW_" + t);
    S1F_EXPECT_CLOSE(dDb.downloadDouble(), db, tol, "db_" + t);
  }
}
S1F_TEST_BOTH_TYPES(CudaGemm, LinearForwardBackward)

template <typename T> void LinearGeluForward() {
  const double tol = Storage<T>::tol;
  Gemm gemm;
  Rng rng(401);
  const int64_t N = 512, in = 256, out = 384;
  const Vec x = rounded<T>(rng.uniform(N * in));
  const Vec W = rounded<T>(rng.uniform(out * in, -0.15, 0.15));
  const Vec b = rounded<T>(rng.uniform(out));
  Vec pre(N * out), y(N * out);
  cpu::linear_fwd<double>(x.data(), W.data(), b.data(), pre.data(), N, in, out);
  cpu::gelu_fwd<double>(pre.data(), y.data(), N * out);

  auto dX = toDevice<T>(x), dW = toDevice<T>(W), dB = toDevice<T>(b);
  DeviceBuffer<T> dPre(N * out), dY(N * out);
  linear_gelu_fwd<T>(gemm, dX.get(), dW.get(), dB.get(), dPre.get(), dY.get(),
                     N, in, out);
  S1F_EXPECT_CLOSE(dPre.downloadDouble(), pre, tol, "pre");
  S1F_EXPECT_CLOSE(dY.downloadDouble(), y, tol, "y");
}
S1F_TEST_BOTH_TYPES(CudaGemm, LinearGeluForward)

} // namespace
