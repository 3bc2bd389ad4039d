//===- gemm.h - cuBLASLt matrix products of the CUDA backend ----*- C++ -*-===//
//
// Every matrix product of the CUDA backend goes through Gemm::run, a
// row-major interface over cuBLASLt (which is column-major): the row-major
// C[m, n] = A B is computed as the column-major C^T = B^T A^T, so no data is
// ever transposed.
//
//  * Inputs bf16 (fp32 accumulation) or fp32 (full fp32, no TF32); output
//    bf16 or fp32. bf16 inputs with an fp32 output is how weight gradients
//    are accumulated into fp32 buffers (beta = 1).
//  * Epilogues: bias (one value per output column n), GELU (tanh form), and
//    GELU with the pre-activation saved to `aux` (for gelu_bwd), so a
//    linear + bias + GELU is one kernel.
//  * The heuristic query runs once per distinct problem (shape, types,
//    transposes, leading dimensions, epilogue, pointer alignment); the plan
//    is cached in the Gemm object.
//  * One Gemm object owns a cuBLASLt handle and a workspace; the workspace is
//    stream-ordered, so use one Gemm per stream (e.g. one per pipeline rank).
//
// Checked on an H200 against the fp64 CPU reference (docs/cuda.md).
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_RUNTIME_CUDA_GEMM_H
#define SEQ1F1B_RUNTIME_CUDA_GEMM_H

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace s1f::rt::cuda {

enum class DType { F32, BF16 };

enum class Epilogue {
  None,
  Bias,        ///< C = AB + bias (bias has C's type, length n)
  Gelu,        ///< C = gelu(AB)
  GeluBias,    ///< C = gelu(AB + bias)
  GeluAux,     ///< aux = AB, C = gelu(aux)
  GeluAuxBias, ///< aux = AB + bias, C = gelu(aux)
};

/// Row-major C[m, n] = alpha * op(A)[m, k] * op(B)[k, n] + beta * C, then the
/// epilogue. lda/ldb/ldc are the row strides of the STORED matrices (A is
/// stored [m, k], or [k, m] when transA; B is [k, n], or [n, k] when transB).
struct GemmArgs {
  bool transA = false, transB = false;
  int64_t m = 0, n = 0, k = 0;
  DType abType = DType::BF16; ///< type of A and B
  DType cType = DType::BF16;  ///< type of C (and bias, aux)
  const void *A = nullptr;
  int64_t lda = 0;
  const void *B = nullptr;
  int64_t ldb = 0;
  void *C = nullptr;
  int64_t ldc = 0;
  float alpha = 1.0f, beta = 0.0f;
  Epilogue epilogue = Epilogue::None;
  const void *bias = nullptr;
  void *aux = nullptr; ///< [m, n] row-major, row stride ldaux (multiple of 8)
  int64_t ldaux = 0;
};

class Gemm {
public:
  /// 32 MiB of workspace is what cuBLAS recommends on Hopper.
  explicit Gemm(size_t workspace_bytes = size_t(32) << 20);
  ~Gemm();
  Gemm(const Gemm &) = delete;
  Gemm &operator=(const Gemm &) = delete;

  /// Enqueues the product on `stream`. Throws std::invalid_argument for bad
  /// shapes and std::runtime_error (naming the shape) when cuBLASLt has no
  /// algorithm for it.
  void run(const GemmArgs &args, cudaStream_t stream = nullptr);

  /// Distinct problems planned so far (each cost one heuristic query).
  size_t cached_plans() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

//===----------------------------------------------------------------------===//
// The linear layer on top of Gemm: y[N, out] = x[N, in] W^T + b, W [out, in].
// T = bf16 or float for x, W, b, y, dy, dx; dW and db are fp32 and ADDED.
//===----------------------------------------------------------------------===//

template <typename T>
void linear_fwd(Gemm &gemm, const T *x, const T *W, const T *bias, T *y,
                int64_t N, int64_t in, int64_t out,
                cudaStream_t stream = nullptr);
/// y = gelu(x W^T + b) in one GEMM; pre (the GELU input, [N, out]) is saved
/// for gelu_bwd. out must be a multiple of 8 (a cuBLASLt requirement).
template <typename T>
void linear_gelu_fwd(Gemm &gemm, const T *x, const T *W, const T *bias, T *pre,
                     T *y, int64_t N, int64_t in, int64_t out,
                     cudaStream_t stream = nullptr);
/// dx = dy W (written); dW += dy^T x; db += column sums of dy. Any of dx, dW,
/// db may be nullptr (zero-bubble schedules split input and weight grads).
template <typename T>
void linear_bwd(Gemm &gemm, const T *x, const T *W, const T *dy, T *dx,
                float *dW, float *db, int64_t N, int64_t in, int64_t out,
                cudaStream_t stream = nullptr);

} // namespace s1f::rt::cuda

#endif // SEQ1F1B_RUNTIME_CUDA_GEMM_H
