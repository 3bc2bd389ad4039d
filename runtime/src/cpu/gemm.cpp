//===- gemm.cpp - The one GEMM entry point (OpenBLAS) ---------------------===//
//
// Every matrix product of the CPU kernels goes through here, so swapping the
// BLAS (or adding a tiled fallback) touches one file.
//
//===----------------------------------------------------------------------===//

#include "seq1f1b/runtime/cpu_kernels.h"

#include "check.h"

#include <cblas.h>
#include <limits>

namespace s1f::rt::cpu {
namespace {

// OpenBLAS' LP64 interface takes int sizes.
blasint toBlas(int64_t v) {
  S1F_CHECK(v >= 0 && v <= std::numeric_limits<blasint>::max(),
            "gemm dimension out of range: " + std::to_string(v));
  return static_cast<blasint>(v);
}

CBLAS_TRANSPOSE op(bool t) { return t ? CblasTrans : CblasNoTrans; }

} // namespace

void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
          float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
          float beta, float *C, int64_t ldc) {
  if (m == 0 || n == 0)
    return;
  cblas_sgemm(CblasRowMajor, op(transA), op(transB), toBlas(m), toBlas(n),
              toBlas(k), alpha, A, toBlas(lda), B, toBlas(ldb), beta, C,
              toBlas(ldc));
}

void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
          double alpha, const double *A, int64_t lda, const double *B,
          int64_t ldb, double beta, double *C, int64_t ldc) {
  if (m == 0 || n == 0)
    return;
  cblas_dgemm(CblasRowMajor, op(transA), op(transB), toBlas(m), toBlas(n),
              toBlas(k), alpha, A, toBlas(lda), B, toBlas(ldb), beta, C,
              toBlas(ldc));
}

void set_gemm_threads(int threads) { openblas_set_num_threads(threads); }

} // namespace s1f::rt::cpu
