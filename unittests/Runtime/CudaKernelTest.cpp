//===- CudaKernelTest.cpp - CUDA kernels against the fp64 CPU reference ---===//
//
// Every kernel of runtime/src/cuda (except the GEMMs: CudaGemmTest.cpp) in
// bf16 and fp32 storage, at representative sizes (4096 rows of 1024, a
// 32000-word vocabulary) and at odd ones (not multiples of 8, 32 or 128,
// misaligned pointers) that take the scalar code paths. Fixture tests skip
// without a GPU; the error-macro and argument tests run everywhere.
//
//===----------------------------------------------------------------------===//

#include "CudaTestUtil.h"

#include "seq1f1b/runtime/cpu_kernels.h"
#include "seq1f1b/runtime/cuda/check.h"
#include "seq1f1b/runtime/cuda/kernels.h"

#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace cpu = s1f::rt::cpu;
using namespace s1f::rt::cuda;
using namespace s1f::rt::cuda::test;
using s1f::rt::RopeScaling;

namespace {

using CudaKernel = CudaTest; // the suite of this file


using Shape2 = std::pair<int64_t, int64_t>;

std::string tag(int64_t a, int64_t b) {
  return std::to_string(a) + "x" + std::to_string(b);
}

Vec slice(const Vec &v, size_t off, size_t n) {
  return Vec(v.begin() + off, v.begin() + off + n);
}

//===----------------------------------------------------------------------===//
// LayerNorm and RMSNorm.
//===----------------------------------------------------------------------===//

template <typename T> void LayerNormForward() {
  const double tol = Storage<T>::tol;
  Rng rng(101);
  for (auto [N, D] : std::vector<Shape2>{{4096, 1024}, {333, 997}}) {
    const std::string t = tag(N, D);
    const Vec x = rounded<T>(rng.uniform(N * D, -1.5, 2.5));
    const Vec gamma = rounded<T>(rng.uniform(D, 0.5, 1.5));
    const Vec beta = rounded<T>(rng.uniform(D, -0.5, 0.5));
    Vec y(N * D), mean(N), rstd(N);
    cpu::layer_norm_fwd<double>(x.data(), gamma.data(), beta.data(), y.data(),
                                mean.data(), rstd.data(), N, D, 1e-5);

    auto dX = toDevice<T>(x), dG = toDevice<T>(gamma), dB = toDevice<T>(beta);
    DeviceBuffer<T> dY(N * D);
    DeviceBuffer<float> dMean(N), dRstd(N);
    layer_norm_fwd<T>(dX.get(), dG.get(), dB.get(), dY.get(), dMean.get(),
                      dRstd.get(), N, D, 1e-5f);
    S1F_EXPECT_CLOSE(dY.downloadDouble(), y, tol, "y_" + t);
    S1F_EXPECT_CLOSE(dMean.downloadDouble(), mean, tol, "mean_" + t);
    S1F_EXPECT_CLOSE(dRstd.downloadDouble(), rstd, tol, "rstd_" + t);
  }
}
S1F_TEST_BOTH_TYPES(CudaKernel, LayerNormForward)

template <typename T> void LayerNormBackward() {
  const double tol = Storage<T>::tol;
  Rng rng(102);
  for (auto [N, D] : std::vector<Shape2>{{4096, 1024}, {333, 997}}) {
    const std::string t = tag(N, D);
    const bool inPlace = D % 8 != 0; // odd shape: dx overwrites dy
    const Vec x = rounded<T>(rng.uniform(N * D, -1.5, 2.5));
    const Vec gamma = rounded<T>(rng.uniform(D, 0.5, 1.5));
    const Vec beta = rounded<T>(rng.uniform(D, -0.5, 0.5));
    const Vec dy = rounded<T>(rng.uniform(N * D));
    Vec y(N * D), mean(N), rstd(N);
    cpu::layer_norm_fwd<double>(x.data(), gamma.data(), beta.data(), y.data(),
                                mean.data(), rstd.data(), N, D, 1e-5);
    mean = rounded<float>(mean); // the GPU saves them in fp32
    rstd = rounded<float>(rstd);
    Vec dx(N * D);
    Vec dgamma = rounded<float>(rng.uniform(D)); // added to
    Vec dbeta = rounded<float>(rng.uniform(D));
    auto dGammaDev = toDevice<float>(dgamma), dBetaDev = toDevice<float>(dbeta);
    cpu::layer_norm_bwd<double>(x.data(), gamma.data(), mean.data(),
                                rstd.data(), dy.data(), dx.data(),
                                dgamma.data(), dbeta.data(), N, D);

    auto dX = toDevice<T>(x), dG = toDevice<T>(gamma), dDy = toDevice<T>(dy);
    auto dMean = toDevice<float>(mean), dRstd = toDevice<float>(rstd);
    DeviceBuffer<T> dDx(N * D);
    T *dxOut = inPlace ? dDy.get() : dDx.get();
    layer_norm_bwd<T>(dX.get(), dG.get(), dMean.get(), dRstd.get(), dDy.get(),
                      dxOut, dGammaDev.get(), dBetaDev.get(), N, D);
    S1F_EXPECT_CLOSE((inPlace ? dDy : dDx).downloadDouble(), dx, tol,
                     "dx_" + t);
    S1F_EXPECT_CLOSE(dGammaDev.downloadDouble(), dgamma, tol, "dgamma_" + t);
    S1F_EXPECT_CLOSE(dBetaDev.downloadDouble(), dbeta, tol, "dbeta_" + t);
  }
}
S1F_TEST_BOTH_TYPES(CudaKernel, LayerNormBackward)

template <typename T> void RmsNormForward() {
  const double tol = Storage<T>::tol;
  Rng rng(103);
  for (auto [N, D] : std::vector<Shape2>{{4096, 1024}, {333, 997}}) {
    const std::string t = tag(N, D);
    const Vec x = rounded<T>(rng.uniform(N * D, -1.5, 2.5));
    const Vec gamma = rounded<T>(rng.uniform(D, 0.5, 1.5));
    Vec y(N * D), rstd(N);
    cpu::rms_norm_fwd<double>(x.data(), gamma.data(), y.data(), rstd.data(),
                              N, D, 1e-6);
    auto dX = toDevice<T>(x), dG = toDevice<T>(gamma);
    DeviceBuffer<T> dY(N * D);
    DeviceBuffer<float> dRstd(N);
    rms_norm_fwd<T>(dX.get(), dG.get(), dY.get(), dRstd.get(), N, D, 1e-6f);
    S1F_EXPECT_CLOSE(dY.downloadDouble(), y, tol, "y_" + t);
    S1F_EXPECT_CLOSE(dRstd.downloadDouble(), rstd, tol, "rstd_" + t);
  }
}
S1F_TEST_BOTH_TYPES(CudaKernel, RmsNormForward)

template <typename T> void RmsNormBackward() {
  const double tol = Storage<T>::tol;
  Rng rng(104);
  for (auto [N, D] : std::vector<Shape2>{{4096, 1024}, {333, 997}}) {
    const std::string t = tag(N, D);
    const bool inPlace = D % 8 != 0;
    const Vec x = rounded<T>(rng.uniform(N * D, -1.5, 2.5));
    const Vec gamma = rounded<T>(rng.uniform(D, 0.5, 1.5));
    const Vec dy = rounded<T>(rng.uniform(N * D));
    Vec y(N * D), rstd(N);
    cpu::rms_norm_fwd<double>(x.data(), gamma.data(), y.data(), rstd.data(),
                              N, D, 1e-6);
    rstd = rounded<float>(rstd);
    Vec dx(N * D), dgamma = rounded<float>(rng.uniform(D));
    auto dGammaDev = toDevice<float>(dgamma);
    cpu::rms_norm_bwd<double>(x.data(), gamma.data(), rstd.data(), dy.data(),
                              dx.data(), dgamma.data(), N, D);

    auto dX = toDevice<T>(x), dG = toDevice<T>(gamma), dDy = toDevice<T>(dy);
    auto dRstd = toDevice<float>(rstd);
    DeviceBuffer<T> dDx(N * D);
    rms_norm_bwd<T>(dX.get(), dG.get(), dRstd.get(), dDy.get(),
                    inPlace ? dDy.get() : dDx.get(), dGammaDev.get(), N, D);
    S1F_EXPECT_CLOSE((inPlace ? dDy : dDx).downloadDouble(), dx, tol,
                     "dx_" + t);
    S1F_EXPECT_CLOSE(dGammaDev.downloadDouble(), dgamma, tol, "dgamma_" + t);
  }
}
S1F_TEST_BOTH_TYPES(CudaKernel, RmsNormBackward)

//===----------------------------------------------------------------------===//
// Rotary embedding.
//===----------------------------------------------------------------------===//

/// GLM's pairing of adjacent dimensions.
RopeScaling interleaved() {
  RopeScaling s;
  s.interleaved = true;
  return s;
}

template <typename T> void RopeForwardBackwardAtAbsolutePositions() {
  const double tol = Storage<T>::tol;
  struct Case {
    int64_t B, S, H, hd, start;
    double theta;
    int64_t rotary; // 0: the whole head
    RopeScaling scaling;
  };
  Rng rng(105);
  for (const Case &c : {Case{2, 513, 8, 128, 100000, 10000.0, 0, {}},
                        Case{3, 7, 3, 6, 0, 500000.0, 0, {}},
                        Case{2, 65, 4, 64, 4000, 10000.0, 16, {}},
                        Case{1, 33, 8, 128, 120000, 500000.0, 0,
                             RopeScaling::llama3(8.0, 1.0, 4.0, 8192.0)},
                        Case{2, 17, 4, 64, 100000, 1e6, 32,
                             RopeScaling::yarn(4.0, 32.0, 1.0, 32768.0,
                                               1.1386)},
                        Case{1, 9, 3, 12, 9000, 1e4, 0,
                             RopeScaling::longrope({1.0, 1.5, 2.5, 4.0, 9.0,
                                                    20.0},
                                                   1.19)},
                        Case{2, 33, 4, 128, 5000, 1e4, 64, interleaved()}}) {
    const std::string t = std::to_string(c.S) + "@" + std::to_string(c.start) +
                          "r" + std::to_string(c.rotary) + "f" +
                          std::to_string(int(c.scaling.factor));
    const int64_t n = c.B * c.S * c.H * c.hd;
    const Vec x = rounded<T>(rng.uniform(n)), dy = rounded<T>(rng.uniform(n));
    Vec y(n), dx(n);
    cpu::rope_fwd<double>(x.data(), y.data(), c.B, c.S, c.H, c.hd, c.start,
                          c.theta, c.rotary, c.scaling);
    cpu::rope_bwd<double>(dy.data(), dx.data(), c.B, c.S, c.H, c.hd, c.start,
                          c.theta, c.rotary, c.scaling);

    auto dX = toDevice<T>(x), dDy = toDevice<T>(dy);
    DeviceBuffer<T> dY(n), dDx(n);
    dY.poison();
    dDx.poison();
    rope_fwd<T>(dX.get(), dY.get(), c.B, c.S, c.H, c.hd, c.start, c.theta,
                c.rotary, c.scaling);
    rope_bwd<T>(dDy.get(), dDx.get(), c.B, c.S, c.H, c.hd, c.start, c.theta,
                c.rotary, c.scaling);
    S1F_EXPECT_CLOSE(dY.downloadDouble(), y, tol, "y_" + t);
    S1F_EXPECT_CLOSE(dDx.downloadDouble(), dx, tol, "dx_" + t);
    // In place, as the executor rotates q and k.
    rope_fwd<T>(dX.get(), dX.get(), c.B, c.S, c.H, c.hd, c.start, c.theta,
                c.rotary, c.scaling);
    S1F_EXPECT_CLOSE(dX.downloadDouble(), y, tol, "y_inplace_" + t);
  }
}
S1F_TEST_BOTH_TYPES(CudaKernel, RopeForwardBackwardAtAbsolutePositions)

//===----------------------------------------------------------------------===//
// Elementwise ops: aligned (vector path) and offset by one element (scalar
// path), odd length.
//===----------------------------------------------------------------------===//

template <typename T> void Activations() {
  const double tol = Storage<T>::tol;
  const int64_t n = 4096 * 1024 + 5;
  Rng rng(106);
  const Vec a = rounded<T>(rng.uniform(n + 1, -4, 4));
  const Vec b = rounded<T>(rng.uniform(n + 1, -4, 4));
  const Vec g = rounded<T>(rng.uniform(n + 1));
  for (size_t off : {0, 1}) {
    const std::string t = off ? "_offset1" : "_aligned";
    const Vec x = slice(a, off, n), u = slice(b, off, n), dy = slice(g, off, n);
    auto dA = toDevice<T>(a), dB = toDevice<T>(b), dG = toDevice<T>(g);
    const T *X = dA.get() + off, *U = dB.get() + off, *DY = dG.get() + off;
    DeviceBuffer<T> o1(n + 1), o2(n + 1);
    auto got = [&](DeviceBuffer<T> &o) {
      return slice(o.downloadDouble(), off, n);
    };
    Vec r1(n), r2(n);

    // Each output is poisoned again before each kernel writes it.
    cpu::gelu_fwd<double>(x.data(), r1.data(), n);
    o1.poison();
    gelu_fwd<T>(X, o1.get() + off, n);
    S1F_EXPECT_CLOSE(got(o1), r1, tol, "gelu_fwd" + t);
    cpu::gelu_bwd<double>(x.data(), dy.data(), r1.data(), n);
    o1.poison();
    gelu_bwd<T>(X, DY, o1.get() + off, n);
    S1F_EXPECT_CLOSE(got(o1), r1, tol, "gelu_bwd" + t);

    cpu::gelu_erf_fwd<double>(x.data(), r1.data(), n);
    o1.poison();
    gelu_erf_fwd<T>(X, o1.get() + off, n);
    S1F_EXPECT_CLOSE(got(o1), r1, tol, "gelu_erf_fwd" + t);
    cpu::gelu_erf_bwd<double>(x.data(), dy.data(), r1.data(), n);
    o1.poison();
    gelu_erf_bwd<T>(X, DY, o1.get() + off, n);
    S1F_EXPECT_CLOSE(got(o1), r1, tol, "gelu_erf_bwd" + t);

    cpu::silu_fwd<double>(x.data(), r1.data(), n);
    o1.poison();
    silu_fwd<T>(X, o1.get() + off, n);
    S1F_EXPECT_CLOSE(got(o1), r1, tol, "silu_fwd" + t);
    cpu::silu_bwd<double>(x.data(), dy.data(), r1.data(), n);
    o1.poison();
    silu_bwd<T>(X, DY, o1.get() + off, n);
    S1F_EXPECT_CLOSE(got(o1), r1, tol, "silu_bwd" + t);

    cpu::swiglu_fwd<double>(x.data(), u.data(), r1.data(), n);
    o1.poison();
    swiglu_fwd<T>(X, U, o1.get() + off, n);
    S1F_EXPECT_CLOSE(got(o1), r1, tol, "swiglu_fwd" + t);
    cpu::swiglu_bwd<double>(x.data(), u.data(), dy.data(), r1.data(),
                            r2.data(), n);
    o1.poison();
    swiglu_bwd<T>(X, U, DY, o1.get() + off, o2.get() + off, n);
    S1F_EXPECT_CLOSE(got(o1), r1, tol, "swiglu_bwd_dgate" + t);
    S1F_EXPECT_CLOSE(got(o2), r2, tol, "swiglu_bwd_dup" + t);

    // (r1 keeps swiglu's dgate for the in-place check below.)
    Vec g1(n), g2(n);
    cpu::softcap_fwd<double>(x.data(), g1.data(), n, 1.5);
    o1.poison();
    softcap_fwd<T>(X, o1.get() + off, n, 1.5);
    S1F_EXPECT_CLOSE(got(o1), g1, tol, "softcap_fwd" + t);
    cpu::softcap_bwd<double>(x.data(), dy.data(), g1.data(), n, 1.5);
    o1.poison();
    softcap_bwd<T>(X, DY, o1.get() + off, n, 1.5);
    S1F_EXPECT_CLOSE(got(o1), g1, tol, "softcap_bwd" + t);

    cpu::geglu_fwd<double>(x.data(), u.data(), g1.data(), n);
    o1.poison();
    geglu_fwd<T>(X, U, o1.get() + off, n);
    S1F_EXPECT_CLOSE(got(o1), g1, tol, "geglu_fwd" + t);
    cpu::geglu_bwd<double>(x.data(), u.data(), dy.data(), g1.data(),
                           g2.data(), n);
    o1.poison();
    o2.poison();
    geglu_bwd<T>(X, U, DY, o1.get() + off, o2.get() + off, n);
    S1F_EXPECT_CLOSE(got(o1), g1, tol, "geglu_bwd_dgate" + t);
    S1F_EXPECT_CLOSE(got(o2), g2, tol, "geglu_bwd_dup" + t);
    // Only dgate, written over gate itself.
    swiglu_bwd<T>(dA.get() + off, U, DY, dA.get() + off, nullptr, n);
    S1F_EXPECT_CLOSE(slice(dA.downloadDouble(), off, n), r1, tol,
                     "swiglu_bwd_inplace" + t);
  }
}
S1F_TEST_BOTH_TYPES(CudaKernel, Activations)

template <typename T> void AddAccumulateScale() {
  const double tol = Storage<T>::tol;
  Rng rng(107);
  for (int64_t n : {int64_t(4096) * 1024, int64_t(1000003)}) {
    const std::string t = "_" + std::to_string(n);
    const Vec a = rounded<T>(rng.uniform(n)), b = rounded<T>(rng.uniform(n));
    auto dA = toDevice<T>(a), dB = toDevice<T>(b);
    DeviceBuffer<T> y(n), z(n);
    Vec r(n);

    cpu::add_fwd<double>(a.data(), b.data(), r.data(), n);
    add_fwd<T>(dA.get(), dB.get(), y.get(), n);
    S1F_EXPECT_CLOSE(y.downloadDouble(), r, tol, "add_fwd" + t);

    y.poison();
    add_bwd<T>(dA.get(), y.get(), z.get(), n); // z: fresh, poisoned
    S1F_EXPECT_CLOSE(y.downloadDouble(), a, tol, "add_bwd_da" + t);
    S1F_EXPECT_CLOSE(z.downloadDouble(), a, tol, "add_bwd_db" + t);
    z.poison();
    add_bwd<T>(dB.get(), nullptr, z.get(), n);
    S1F_EXPECT_CLOSE(z.downloadDouble(), b, tol, "add_bwd_db_only" + t);

    Vec acc = b;
    cpu::accumulate<double>(a.data(), acc.data(), n);
    accumulate<T>(dA.get(), dB.get(), n); // b += a
    S1F_EXPECT_CLOSE(dB.downloadDouble(), acc, tol, "accumulate" + t);

    Vec sc = a;
    cpu::scale<double>(sc.data(), n, 0.375); // exact in every type
    scale<T>(dA.get(), n, 0.375f);
    S1F_EXPECT_CLOSE(dA.downloadDouble(), sc, tol, "scale" + t);
  }
}
S1F_TEST_BOTH_TYPES(CudaKernel, AddAccumulateScale)

//===----------------------------------------------------------------------===//
// Embeddings.
//===----------------------------------------------------------------------===//

template <typename T> void EmbeddingForwardBackward() {
  const double tol = Storage<T>::tol;
  struct Case {
    int64_t N, V, D;
  };
  Rng rng(108);
  for (const Case &c : {Case{4096, 5003, 1024}, Case{300, 17, 999}}) {
    const std::string t = tag(c.N, c.D);
    const std::vector<int32_t> ids =
        rng.ints(c.N, 0, static_cast<int32_t>(c.V - 1)); // with repeats
    const Vec table = rounded<T>(rng.uniform(c.V * c.D));
    const Vec dout = rounded<T>(rng.uniform(c.N * c.D));
    Vec out(c.N * c.D), dtable = rounded<float>(rng.uniform(c.V * c.D));
    auto dTableGrad = toDevice<float>(dtable);
    cpu::embedding_fwd<double>(ids.data(), table.data(), out.data(), c.N, c.V,
                               c.D);
    cpu::embedding_bwd<double>(ids.data(), dout.data(), dtable.data(), c.N,
                               c.V, c.D);

    DeviceBuffer<int32_t> dIds(ids);
    auto dTable = toDevice<T>(table), dDout = toDevice<T>(dout);
    DeviceBuffer<T> dOut(c.N * c.D);
    embedding_fwd<T>(dIds.get(), dTable.get(), dOut.get(), c.N, c.V, c.D);
    embedding_bwd<T>(dIds.get(), dDout.get(), dTableGrad.get(), c.N, c.V, c.D);
    S1F_EXPECT_CLOSE(dOut.downloadDouble(), out, tol, "out_" + t);
    S1F_EXPECT_CLOSE(dTableGrad.downloadDouble(), dtable, tol, "dtable_" + t);
  }
}
S1F_TEST_BOTH_TYPES(CudaKernel, EmbeddingForwardBackward)

template <typename T> void PositionEmbeddingForwardBackward() {
  const double tol = Storage<T>::tol;
  struct Case {
    int64_t B, S, start, Pmax, D;
  };
  Rng rng(109);
  for (const Case &c :
       {Case{2, 777, 1000, 2048, 1024}, Case{3, 5, 0, 5, 250}}) {
    const std::string t = tag(c.S, c.D);
    const Vec table = rounded<T>(rng.uniform(c.Pmax * c.D));
    const Vec dout = rounded<T>(rng.uniform(c.B * c.S * c.D));
    Vec out(c.B * c.S * c.D), dtable = rounded<float>(rng.uniform(c.Pmax * c.D));
    auto dTableGrad = toDevice<float>(dtable);
    cpu::pos_embedding_fwd<double>(table.data(), out.data(), c.B, c.S, c.start,
                                   c.Pmax, c.D);
    cpu::pos_embedding_bwd<double>(dout.data(), dtable.data(), c.B, c.S,
                                   c.start, c.Pmax, c.D);

    auto dTable = toDevice<T>(table), dDout = toDevice<T>(dout);
    DeviceBuffer<T> dOut(c.B * c.S * c.D);
    pos_embedding_fwd<T>(dTable.get(), dOut.get(), c.B, c.S, c.start, c.Pmax,
                         c.D);
    pos_embedding_bwd<T>(dDout.get(), dTableGrad.get(), c.B, c.S, c.start,
                         c.Pmax, c.D);
    S1F_EXPECT_CLOSE(dOut.downloadDouble(), out, tol, "out_" + t);
    S1F_EXPECT_CLOSE(dTableGrad.downloadDouble(), dtable, tol, "dtable_" + t);
  }
}
S1F_TEST_BOTH_TYPES(CudaKernel, PositionEmbeddingForwardBackward)

TEST_F(CudaKernel, EmbeddingOutOfRangeIdGivesNaNRow) {
  const int64_t N = 3, V = 4, D = 8;
  DeviceBuffer<int32_t> ids(std::vector<int32_t>{1, 7, -1});
  auto table = toDevice<float>(Rng(110).uniform(V * D));
  DeviceBuffer<float> out(N * D);
  embedding_fwd<float>(ids.get(), table.get(), out.get(), N, V, D);
  const std::vector<float> o = out.download();
  for (int64_t j = 0; j < D; ++j) {
    EXPECT_TRUE(std::isfinite(o[j])) << j;
    EXPECT_TRUE(std::isnan(o[D + j])) << j;
    EXPECT_TRUE(std::isnan(o[2 * D + j])) << j;
  }
}

//===----------------------------------------------------------------------===//
// Cross-entropy.
//===----------------------------------------------------------------------===//

template <typename T> void CrossEntropyFusedAndSeparate() {
  const double tol = Storage<T>::tol;
  Rng rng(111);
  for (auto [N, V] : std::vector<Shape2>{{1024, 32000}, {77, 50257}}) {
    const std::string t = tag(N, V);
    const Vec logits = rounded<T>(rng.uniform(N * V, -6, 6));
    std::vector<int32_t> targets =
        rng.ints(N, 0, static_cast<int32_t>(V - 1));
    for (int64_t r = 0; r < N; r += 10)
      targets[r] = -100; // ignored rows
    Vec lse(N);
    const cpu::LossSum ls = cpu::cross_entropy_fwd<double>(
        logits.data(), targets.data(), lse.data(), N, V);
    const float scale = 1.0f / static_cast<float>(ls.count);
    Vec dlogits(N * V);
    cpu::cross_entropy_bwd<double>(logits.data(), targets.data(), lse.data(),
                                   dlogits.data(), N, V, scale);

    auto dLogits = toDevice<T>(logits);
    DeviceBuffer<int32_t> dTargets(targets);
    // Accumulators start non-zero: the kernels add to them.
    DeviceBuffer<double> loss(std::vector<double>{0.25});
    DeviceBuffer<int64_t> count(std::vector<int64_t>{7});
    DeviceBuffer<float> dLse(N);
    DeviceBuffer<T> dGrad(N * V);

    cross_entropy_fwd<T>(dLogits.get(), dTargets.get(), dLse.get(), loss.get(),
                         count.get(), N, V);
    S1F_EXPECT_CLOSE(loss.download(), Vec{0.25 + ls.loss_sum}, tol,
                     "loss_" + t);
    EXPECT_EQ(count.download()[0], 7 + ls.count);
    S1F_EXPECT_CLOSE(dLse.downloadDouble(), lse, tol, "lse_" + t);
    cross_entropy_bwd<T>(dLogits.get(), dTargets.get(), dLse.get(),
                         dGrad.get(), N, V, scale);
    S1F_EXPECT_CLOSE(dGrad.downloadDouble(), dlogits, tol, "dlogits_" + t);

    // Fused, out of place and in place (the gradient replaces the logits).
    loss.upload({0.0});
    count.upload({0});
    dLse.poison();
    dGrad.poison();
    cross_entropy_fused<T>(dLogits.get(), dTargets.get(), dLse.get(),
                           loss.get(), count.get(), dGrad.get(), N, V, scale);
    S1F_EXPECT_CLOSE(dGrad.downloadDouble(), dlogits, tol,
                     "fused_dlogits_" + t);
    S1F_EXPECT_CLOSE(dLse.downloadDouble(), lse, tol, "fused_lse_" + t);
    cross_entropy_fused<T>(dLogits.get(), dTargets.get(), nullptr, loss.get(),
                           count.get(), dLogits.get(), N, V, scale);
    S1F_EXPECT_CLOSE(dLogits.downloadDouble(), dlogits, tol,
                     "inplace_dlogits_" + t);
    S1F_EXPECT_CLOSE(loss.download(), Vec{2 * ls.loss_sum}, tol,
                     "fused_loss_" + t);
    EXPECT_EQ(count.download()[0], 2 * ls.count);
  }
}
S1F_TEST_BOTH_TYPES(CudaKernel, CrossEntropyFusedAndSeparate)

TEST_F(CudaKernel, CrossEntropyTargetOutOfRangeGivesNaN) {
  const int64_t N = 2, V = 5;
  auto logits = toDevice<float>(Rng(112).uniform(N * V));
  DeviceBuffer<int32_t> targets(std::vector<int32_t>{1, 5});
  DeviceBuffer<double> loss(std::vector<double>{0.0});
  DeviceBuffer<int64_t> count(std::vector<int64_t>{0});
  DeviceBuffer<float> grad(N * V);
  cross_entropy_fused<float>(logits.get(), targets.get(), nullptr, loss.get(),
                             count.get(), grad.get(), N, V, 1.0f);
  EXPECT_TRUE(std::isnan(loss.download()[0]));
  const std::vector<float> g = grad.download();
  EXPECT_TRUE(std::isfinite(g[0]));
  EXPECT_TRUE(std::isnan(g[V]));
}

//===----------------------------------------------------------------------===//
// Optimizer and gradient norm.
//===----------------------------------------------------------------------===//

template <typename T> void SumSquaresAddsIntoAccumulator() {
  Rng rng(113);
  for (int64_t n : {int64_t(1) << 22, int64_t(4099)}) {
    const Vec x = rounded<T>(rng.uniform(n));
    auto dX = toDevice<T>(x);
    DeviceBuffer<double> out(std::vector<double>{2.0});
    sum_squares<T>(dX.get(), n, out.get());
    S1F_EXPECT_CLOSE(out.download(),
                     Vec{2.0 + cpu::sum_squares<double>(x.data(), n)},
                     Storage<T>::tol, "sumsq_" + std::to_string(n));
  }
}
S1F_TEST_BOTH_TYPES(CudaKernel, SumSquaresAddsIntoAccumulator)

TEST_F(CudaKernel, AdamWMultiTensorMatchesCpu) {
  Rng rng(114);
  cpu::AdamWConfig cfg;
  cfg.lr = 3e-3;
  cfg.weight_decay = 0.1;
  const int64_t step = 3;
  const double hostScale = 0.75, deviceScale = 0.5;
  // 50 tensors: more than one launch's worth (36), sizes odd and even.
  const int64_t pattern[] = {1, 7, 4097, 1 << 20, 333, 70001, 4096, 12};
  struct Host {
    Vec p, g, m, v;
  };
  std::vector<Host> host;
  std::vector<std::unique_ptr<DeviceBuffer<float>>> bufs;
  std::vector<std::unique_ptr<DeviceBuffer<bf16>>> copies;
  std::vector<AdamWTensor> tensors;
  for (int i = 0; i < 50; ++i) {
    const int64_t n = pattern[i % 8];
    Host h{rounded<float>(rng.uniform(n)), rounded<float>(rng.uniform(n, -0.1, 0.1)),
           rounded<float>(rng.uniform(n, -0.01, 0.01)),
           rounded<float>(rng.uniform(n, 1e-6, 1e-4))};
    AdamWTensor t;
    t.n = n;
    for (const Vec *src : {&h.p, &h.g, &h.m, &h.v})
      bufs.push_back(
          std::make_unique<DeviceBuffer<float>>(toStorage<float>(*src)));
    t.master = bufs[bufs.size() - 4]->get();
    t.grad = bufs[bufs.size() - 3]->get();
    t.m = bufs[bufs.size() - 2]->get();
    t.v = bufs[bufs.size() - 1]->get();
    copies.push_back(std::make_unique<DeviceBuffer<bf16>>(n));
    t.param_bf16 = i % 2 == 0 ? copies.back()->get() : nullptr;
    tensors.push_back(t);
    cpu::adamw_step<double>(h.p.data(), h.g.data(), h.m.data(), h.v.data(), n,
                            step, cfg, hostScale * deviceScale);
    host.push_back(std::move(h));
  }
  DeviceBuffer<float> gs(std::vector<float>{static_cast<float>(deviceScale)});
  adamw_step(tensors.data(), static_cast<int64_t>(tensors.size()), step, cfg,
             hostScale, gs.get());

  Vec gotP, gotM, gotV, refP, refM, refV, gotCopy, refCopy;
  for (size_t i = 0; i < tensors.size(); ++i) {
    auto append = [](Vec &dst, const Vec &src) {
      dst.insert(dst.end(), src.begin(), src.end());
    };
    append(gotP, bufs[4 * i]->downloadDouble());
    append(gotM, bufs[4 * i + 2]->downloadDouble());
    append(gotV, bufs[4 * i + 3]->downloadDouble());
    append(refP, host[i].p);
    append(refM, host[i].m);
    append(refV, host[i].v);
    if (tensors[i].param_bf16) {
      append(gotCopy, copies[i]->downloadDouble());
      append(refCopy, host[i].p);
    }
  }
  S1F_EXPECT_CLOSE(gotP, refP, 1e-5, "master");
  S1F_EXPECT_CLOSE(gotM, refM, 1e-5, "m");
  S1F_EXPECT_CLOSE(gotV, refV, 1e-5, "v");
  S1F_EXPECT_CLOSE(gotCopy, refCopy, 1e-2, "param_bf16");
}

TEST_F(CudaKernel, AdamWCpuSignature) {
  Rng rng(115);
  cpu::AdamWConfig cfg;
  const int64_t n = 12345;
  Vec p = rounded<float>(rng.uniform(n)),
      g = rounded<float>(rng.uniform(n, -0.1, 0.1)),
      m = rounded<float>(rng.uniform(n, -0.01, 0.01)),
      v = rounded<float>(rng.uniform(n, 1e-6, 1e-4));
  auto dP = toDevice<float>(p), dG = toDevice<float>(g),
       dM = toDevice<float>(m), dV = toDevice<float>(v);
  cpu::adamw_step<double>(p.data(), g.data(), m.data(), v.data(), n, 1, cfg,
                          0.5);
  adamw_step(dP.get(), dG.get(), dM.get(), dV.get(), n, 1, cfg, 0.5);
  S1F_EXPECT_CLOSE(dP.downloadDouble(), p, 1e-5, "param");
  S1F_EXPECT_CLOSE(dM.downloadDouble(), m, 1e-5, "m");
  S1F_EXPECT_CLOSE(dV.downloadDouble(), v, 1e-5, "v");
}

TEST_F(CudaKernel, GlobalNormOverManyTensorsAndClipCoefficient) {
  Rng rng(116);
  std::vector<std::unique_ptr<DeviceBuffer<float>>> bufs;
  std::vector<SquaresSpan> spans;
  double ref = 1.5;
  for (int i = 0; i < 70; ++i) { // more than one launch's worth (64)
    const int64_t n = 1 + (i * 7919) % 50000;
    const Vec x = rounded<float>(rng.uniform(n, -0.05, 0.05));
    ref += cpu::sum_squares<double>(x.data(), n);
    bufs.push_back(std::make_unique<DeviceBuffer<float>>(toStorage<float>(x)));
    spans.push_back({bufs.back()->get(), n});
  }
  spans.push_back({nullptr, 0}); // empty spans are allowed
  DeviceBuffer<double> total(std::vector<double>{1.5});
  sum_squares(spans.data(), static_cast<int64_t>(spans.size()), total.get());
  S1F_EXPECT_CLOSE(total.download(), Vec{ref}, 1e-5, "sumsq");

  DeviceBuffer<float> coef(1);
  for (double maxNorm : {0.5, 1e6}) {
    clip_coefficient(total.get(), coef.get(), maxNorm);
    S1F_EXPECT_CLOSE(coef.downloadDouble(),
                     Vec{cpu::clip_coefficient(ref, maxNorm)}, 1e-5,
                     "clip_" + std::to_string(maxNorm));
  }
  DeviceBuffer<double> nanTotal(1); // poisoned: NaN
  clip_coefficient(nanTotal.get(), coef.get(), 1.0);
  EXPECT_TRUE(std::isnan(coef.download()[0]));
}

//===----------------------------------------------------------------------===//
// Error reporting and argument checks: no device needed.
//===----------------------------------------------------------------------===//

TEST(CudaCheck, CudaErrorNamesCallFileLineAndError) {
  const int line = __LINE__ + 2;
  try {
    S1F_CUDA_CHECK(static_cast<cudaError_t>(cudaErrorInvalidValue));
    FAIL() << "no exception";
  } catch (const std::runtime_error &e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("CudaKernelTest.cpp:" + std::to_string(line) + ":"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("static_cast<cudaError_t>(cudaErrorInvalidValue)"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("cudaErrorInvalidValue"), std::string::npos) << msg;
  }
}

TEST(CudaCheck, CublasErrorNamesCallAndStatus) {
  try {
    S1F_CUBLAS_CHECK(CUBLAS_STATUS_NOT_SUPPORTED);
    FAIL() << "no exception";
  } catch (const std::runtime_error &e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("CudaKernelTest.cpp:"), std::string::npos) << msg;
    EXPECT_NE(msg.find("CUBLAS_STATUS_NOT_SUPPORTED failed"),
              std::string::npos)
        << msg;
  }
}

TEST(CudaCheck, BadArgumentsThrowBeforeTouchingTheDevice) {
  EXPECT_THROW(rope_fwd<float>(nullptr, nullptr, 1, 1, 1, 5, 0, 1e4),
               std::invalid_argument); // odd head_dim
  EXPECT_THROW(pos_embedding_fwd<bf16>(nullptr, nullptr, 1, 10, 5, 12, 8),
               std::invalid_argument); // positions past the table
  EXPECT_THROW(layer_norm_fwd<float>(nullptr, nullptr, nullptr, nullptr,
                                     nullptr, nullptr, 4, 0, 1e-5f),
               std::invalid_argument);
  EXPECT_THROW(cross_entropy_fwd<bf16>(nullptr, nullptr, nullptr, nullptr,
                                       nullptr, 4, 10),
               std::invalid_argument); // no loss accumulators
  AdamWTensor t;
  EXPECT_THROW(adamw_step(&t, 1, 0, cpu::AdamWConfig{}), std::invalid_argument);
  t.n = 5; // and no pointers
  EXPECT_THROW(adamw_step(&t, 1, 1, cpu::AdamWConfig{}), std::invalid_argument);
}

TEST_F(CudaKernel, FailedRuntimeCallNamesIt) {
  void *p = nullptr;
  try {
    S1F_CUDA_CHECK(cudaMalloc(&p, size_t(1) << 62));
    FAIL() << "no exception";
  } catch (const std::runtime_error &e) {
    EXPECT_NE(std::string(e.what()).find("cudaMalloc(&p, size_t(1) << 62)"),
              std::string::npos)
        << e.what();
  }
  (void)cudaGetLastError();
}

} // namespace
