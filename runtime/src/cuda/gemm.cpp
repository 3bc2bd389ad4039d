//===- gemm.cpp - Row-major GEMMs over cuBLASLt ---------------------------===//
//
// cuBLASLt is column-major. A row-major matrix X[r, c] with row stride ld is,
// read column-major, X^T [c, r] with the same ld. So the row-major product
// C[m, n] = op(A) op(B) is the column-major C^T[n, m] = op(B)^T op(A)^T: call
// cuBLASLt with the operands swapped (its "A" is our B, its "B" is our A),
// the same transpose flags, and m and n exchanged. The bias epilogue adds a
// vector over the rows of the column-major result, i.e. over our columns n.
//
// NOT VERIFIED ON A GPU YET: see docs/cuda.md.
//
//===----------------------------------------------------------------------===//

#include "seq1f1b/runtime/cuda/gemm.h"
#include "seq1f1b/runtime/cuda/check.h"
#include "seq1f1b/runtime/cuda/kernels.h"

#include <cublasLt.h>

#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>

namespace s1f::rt::cuda {
namespace {

#define S1F_GEMM_REQUIRE(cond, msg)                                            \
  do {                                                                         \
    if (!(cond))                                                               \
      throw std::invalid_argument(std::string(__FILE__) + ":" +                \
                                  std::to_string(__LINE__) + ": gemm: " +      \
                                  (msg));                                      \
  } while (0)

cudaDataType_t cudaType(DType t) {
  return t == DType::BF16 ? CUDA_R_16BF : CUDA_R_32F;
}

const char *typeName(DType t) { return t == DType::BF16 ? "bf16" : "fp32"; }

cublasLtEpilogue_t cublasEpilogue(Epilogue e) {
  switch (e) {
  case Epilogue::None:
    return CUBLASLT_EPILOGUE_DEFAULT;
  case Epilogue::Bias:
    return CUBLASLT_EPILOGUE_BIAS;
  case Epilogue::Gelu:
    return CUBLASLT_EPILOGUE_GELU;
  case Epilogue::GeluBias:
    return CUBLASLT_EPILOGUE_GELU_BIAS;
  case Epilogue::GeluAux:
    return CUBLASLT_EPILOGUE_GELU_AUX;
  case Epilogue::GeluAuxBias:
    return CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
  }
  return CUBLASLT_EPILOGUE_DEFAULT;
}

bool hasBias(Epilogue e) {
  return e == Epilogue::Bias || e == Epilogue::GeluBias ||
         e == Epilogue::GeluAuxBias;
}
bool hasAux(Epilogue e) {
  return e == Epilogue::GeluAux || e == Epilogue::GeluAuxBias;
}

/// Largest power of two (up to 256) dividing the address; cuBLASLt picks
/// vectorized kernels from it, so it is part of the plan's key.
uint32_t alignmentOf(const void *p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  uint32_t al = 256;
  while (al > 1 && (a % al) != 0)
    al >>= 1;
  return al;
}

using PlanKey = std::tuple<bool, bool, int64_t, int64_t, int64_t, int64_t,
                           int64_t, int64_t, int64_t, int, int, int, uint32_t,
                           uint32_t, uint32_t, uint32_t, uint32_t>;

std::string describe(const GemmArgs &a) {
  return "m=" + std::to_string(a.m) + " n=" + std::to_string(a.n) +
         " k=" + std::to_string(a.k) + (a.transA ? " A^T" : "") +
         (a.transB ? " B^T" : "") + " lda=" + std::to_string(a.lda) +
         " ldb=" + std::to_string(a.ldb) + " ldc=" + std::to_string(a.ldc) +
         " " + typeName(a.abType) + "->" + typeName(a.cType) +
         " epilogue=" + std::to_string(static_cast<int>(a.epilogue));
}

} // namespace

struct Gemm::Impl {
  struct Plan {
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
    ~Plan() {
      // Destructors must not throw: errors here are ignored.
      if (c)
        cublasLtMatrixLayoutDestroy(c);
      if (b)
        cublasLtMatrixLayoutDestroy(b);
      if (a)
        cublasLtMatrixLayoutDestroy(a);
      if (op)
        cublasLtMatmulDescDestroy(op);
    }
  };

  cublasLtHandle_t handle = nullptr;
  void *workspace = nullptr;
  size_t workspaceBytes = 0;
  mutable std::mutex mu;
  std::map<PlanKey, std::unique_ptr<Plan>> plans;

  Plan &plan(const GemmArgs &g);
};

Gemm::Impl::Plan &Gemm::Impl::plan(const GemmArgs &g) {
  const PlanKey key{g.transA,
                    g.transB,
                    g.m,
                    g.n,
                    g.k,
                    g.lda,
                    g.ldb,
                    g.ldc,
                    hasAux(g.epilogue) ? g.ldaux : 0,
                    static_cast<int>(g.abType),
                    static_cast<int>(g.cType),
                    static_cast<int>(g.epilogue),
                    alignmentOf(g.A),
                    alignmentOf(g.B),
                    alignmentOf(g.C),
                    hasBias(g.epilogue) ? alignmentOf(g.bias) : 256u,
                    hasAux(g.epilogue) ? alignmentOf(g.aux) : 256u};
  auto it = plans.find(key);
  if (it != plans.end())
    return *it->second;

  auto p = std::make_unique<Plan>();
  S1F_CUBLAS_CHECK(
      cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  // Column-major view: cuBLASLt's A is our B, its B is our A.
  const cublasOperation_t opA = g.transB ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t opB = g.transA ? CUBLAS_OP_T : CUBLAS_OP_N;
  S1F_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
      p->op, CUBLASLT_MATMUL_DESC_TRANSA, &opA, sizeof(opA)));
  S1F_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
      p->op, CUBLASLT_MATMUL_DESC_TRANSB, &opB, sizeof(opB)));
  const cublasLtEpilogue_t epi = cublasEpilogue(g.epilogue);
  S1F_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
      p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
  // Pointers matter to the heuristic (alignment): set this call's now,
  // run() sets them again for every call.
  if (hasBias(g.epilogue))
    S1F_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
        p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g.bias, sizeof(g.bias)));
  if (hasAux(g.epilogue)) {
    S1F_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
        p->op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &g.aux,
        sizeof(g.aux)));
    S1F_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
        p->op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &g.ldaux,
        sizeof(g.ldaux)));
  }

  const cudaDataType_t ab = cudaType(g.abType), c = cudaType(g.cType);
  // Stored shapes, column-major: our B is [k, n] row-major (n x k col-major)
  // or [n, k] when transposed (k x n); likewise A; C is n x m.
  S1F_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(
      &p->a, ab, static_cast<uint64_t>(g.transB ? g.k : g.n),
      static_cast<uint64_t>(g.transB ? g.n : g.k), g.ldb));
  S1F_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(
      &p->b, ab, static_cast<uint64_t>(g.transA ? g.m : g.k),
      static_cast<uint64_t>(g.transA ? g.k : g.m), g.lda));
  S1F_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(
      &p->c, c, static_cast<uint64_t>(g.n), static_cast<uint64_t>(g.m),
      g.ldc));

  cublasLtMatmulPreference_t pref = nullptr;
  S1F_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  try {
    S1F_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspaceBytes,
        sizeof(workspaceBytes)));
    const uint32_t alA = alignmentOf(g.B), alB = alignmentOf(g.A),
                   alC = alignmentOf(g.C);
    S1F_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &alA, sizeof(alA)));
    S1F_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &alB, sizeof(alB)));
    S1F_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &alC, sizeof(alC)));
    S1F_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &alC, sizeof(alC)));
    S1F_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(handle, p->op, p->a, p->b,
                                                    p->c, p->c, pref, 1,
                                                    &result, &found));
  } catch (...) {
    cublasLtMatmulPreferenceDestroy(pref);
    throw;
  }
  S1F_CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(pref));
  if (found == 0 || result.state != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string(__FILE__) + ":" +
                             std::to_string(__LINE__) +
                             ": cuBLASLt has no algorithm for " +
                             describe(g));
  p->algo = result.algo;
  return *plans.emplace(key, std::move(p)).first->second;
}

Gemm::Gemm(size_t workspace_bytes) : impl_(std::make_unique<Impl>()) {
  S1F_CUBLAS_CHECK(cublasLtCreate(&impl_->handle));
  impl_->workspaceBytes = workspace_bytes;
  if (workspace_bytes > 0) {
    const cudaError_t err = cudaMalloc(&impl_->workspace, workspace_bytes);
    if (err != cudaSuccess) {
      cublasLtDestroy(impl_->handle);
      detail::throwCudaError(err, "cudaMalloc(&workspace, workspace_bytes)",
                             __FILE__, __LINE__);
    }
  }
}

Gemm::~Gemm() {
  impl_->plans.clear();
  if (impl_->workspace)
    cudaFree(impl_->workspace); // errors ignored: destructors must not throw
  if (impl_->handle)
    cublasLtDestroy(impl_->handle);
}

size_t Gemm::cached_plans() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->plans.size();
}

void Gemm::run(const GemmArgs &g, cudaStream_t stream) {
  S1F_GEMM_REQUIRE(g.m >= 0 && g.n >= 0 && g.k >= 0,
                   "negative size in " + describe(g));
  if (g.m == 0 || g.n == 0)
    return;
  S1F_GEMM_REQUIRE(g.k > 0, "k = 0 is not supported: " + describe(g));
  S1F_GEMM_REQUIRE(g.A && g.B && g.C, "null matrix in " + describe(g));
  S1F_GEMM_REQUIRE(g.lda >= (g.transA ? g.m : g.k),
                   "lda too small in " + describe(g));
  S1F_GEMM_REQUIRE(g.ldb >= (g.transB ? g.k : g.n),
                   "ldb too small in " + describe(g));
  S1F_GEMM_REQUIRE(g.ldc >= g.n, "ldc too small in " + describe(g));
  S1F_GEMM_REQUIRE(!(g.abType == DType::F32 && g.cType == DType::BF16),
                   "fp32 inputs need an fp32 output: " + describe(g));
  S1F_GEMM_REQUIRE(!hasBias(g.epilogue) || g.bias,
                   "bias epilogue without a bias: " + describe(g));
  S1F_GEMM_REQUIRE(!hasAux(g.epilogue) ||
                       (g.aux && g.ldaux >= g.n && g.ldaux % 8 == 0),
                   "GELU aux needs a buffer with ldaux >= n and a multiple "
                   "of 8: " +
                       describe(g));

  std::lock_guard<std::mutex> lock(impl_->mu);
  Impl::Plan &p = impl_->plan(g);
  if (hasBias(g.epilogue))
    S1F_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
        p.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g.bias, sizeof(g.bias)));
  if (hasAux(g.epilogue))
    S1F_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
        p.op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &g.aux,
        sizeof(g.aux)));
  S1F_CUBLAS_CHECK(cublasLtMatmul(
      impl_->handle, p.op, &g.alpha, g.B, p.a, g.A, p.b, &g.beta, g.C, p.c,
      g.C, p.c, &p.algo, impl_->workspace, impl_->workspaceBytes, stream));
}

//===----------------------------------------------------------------------===//
// Linear layer.
//===----------------------------------------------------------------------===//

namespace {

template <typename T> constexpr DType dtypeOf();
template <> constexpr DType dtypeOf<float>() { return DType::F32; }
template <> constexpr DType dtypeOf<bf16>() { return DType::BF16; }

void checkLinear(int64_t N, int64_t in, int64_t out, const char *what) {
  if (N < 0 || in <= 0 || out <= 0)
    throw std::invalid_argument(std::string(__FILE__) + ":" +
                                std::to_string(__LINE__) + ": " + what +
                                ": bad shape N=" + std::to_string(N) +
                                " in=" + std::to_string(in) +
                                " out=" + std::to_string(out));
}

/// y[N, out] = x[N, in] W^T, W stored [out, in]; the caller adds epilogues.
template <typename T>
GemmArgs forwardArgs(const T *x, const T *W, T *y, int64_t N, int64_t in,
                     int64_t out) {
  GemmArgs g;
  g.transA = false;
  g.transB = true;
  g.m = N;
  g.n = out;
  g.k = in;
  g.abType = g.cType = dtypeOf<T>();
  g.A = x;
  g.lda = in;
  g.B = W;
  g.ldb = in;
  g.C = y;
  g.ldc = out;
  return g;
}

} // namespace

template <typename T>
void linear_fwd(Gemm &gemm, const T *x, const T *W, const T *bias, T *y,
                int64_t N, int64_t in, int64_t out, cudaStream_t stream) {
  checkLinear(N, in, out, "linear_fwd");
  GemmArgs g = forwardArgs(x, W, y, N, in, out);
  g.epilogue = bias ? Epilogue::Bias : Epilogue::None;
  g.bias = bias;
  gemm.run(g, stream);
}

template <typename T>
void linear_gelu_fwd(Gemm &gemm, const T *x, const T *W, const T *bias, T *pre,
                     T *y, int64_t N, int64_t in, int64_t out,
                     cudaStream_t stream) {
  checkLinear(N, in, out, "linear_gelu_fwd");
  GemmArgs g = forwardArgs(x, W, y, N, in, out);
  g.epilogue = bias ? Epilogue::GeluAuxBias : Epilogue::GeluAux;
  g.bias = bias;
  g.aux = pre;
  g.ldaux = out;
  gemm.run(g, stream);
}

template <typename T>
void linear_bwd(Gemm &gemm, const T *x, const T *W, const T *dy, T *dx,
                float *dW, float *db, int64_t N, int64_t in, int64_t out,
                cudaStream_t stream) {
  checkLinear(N, in, out, "linear_bwd");
  if (N == 0)
    return;
  if (dx) { // dx[N, in] = dy[N, out] W[out, in], written
    GemmArgs g;
    g.m = N;
    g.n = in;
    g.k = out;
    g.abType = g.cType = dtypeOf<T>();
    g.A = dy;
    g.lda = out;
    g.B = W;
    g.ldb = in;
    g.C = dx;
    g.ldc = in;
    gemm.run(g, stream);
  }
  if (dW) { // dW[out, in] += dy^T[out, N] x[N, in], fp32
    GemmArgs g;
    g.transA = true;
    g.m = out;
    g.n = in;
    g.k = N;
    g.abType = dtypeOf<T>();
    g.cType = DType::F32;
    g.A = dy;
    g.lda = out;
    g.B = x;
    g.ldb = in;
    g.C = dW;
    g.ldc = in;
    g.beta = 1.0f;
    gemm.run(g, stream);
  }
  if (db)
    bias_grad<T>(dy, db, N, out, stream);
}

#define S1F_INSTANTIATE(T)                                                     \
  template void linear_fwd<T>(Gemm &, const T *, const T *, const T *, T *,    \
                              int64_t, int64_t, int64_t, cudaStream_t);        \
  template void linear_gelu_fwd<T>(Gemm &, const T *, const T *, const T *,    \
                                   T *, T *, int64_t, int64_t, int64_t,        \
                                   cudaStream_t);                              \
  template void linear_bwd<T>(Gemm &, const T *, const T *, const T *, T *,    \
                              float *, float *, int64_t, int64_t, int64_t,     \
                              cudaStream_t);
S1F_INSTANTIATE(float)
S1F_INSTANTIATE(bf16)

} // namespace s1f::rt::cuda
