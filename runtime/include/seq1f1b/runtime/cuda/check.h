//===- check.h - Error checks of the CUDA backend ---------------*- C++ -*-===//
//
// Every CUDA runtime call, every cuBLASLt call and every kernel launch of the
// backend goes through one of these macros. A failure throws
// std::runtime_error naming the call as written in the source, the file, the
// line and the library's error string, e.g.
//
//   runtime/src/cuda/gemm.cpp:212: cudaMalloc(&workspace_, bytes) failed:
//   cudaErrorMemoryAllocation (out of memory)
//
// Kernel launches are asynchronous: S1F_CUDA_CHECK_LAUNCH() catches launch
// configuration errors at once; errors while the kernel runs surface at the
// next synchronizing call. Set S1F_CUDA_SYNC_CHECK=1 in the environment to
// synchronize after every launch so such errors name the kernel that failed
// (slow; for debugging).
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_RUNTIME_CUDA_CHECK_H
#define SEQ1F1B_RUNTIME_CUDA_CHECK_H

#include <cublasLt.h>
#include <cuda_runtime_api.h>

namespace s1f::rt::cuda::detail {

[[noreturn]] void throwCudaError(cudaError_t err, const char *call,
                                 const char *file, int line);
[[noreturn]] void throwCublasError(cublasStatus_t status, const char *call,
                                   const char *file, int line);
/// cudaGetLastError() after a launch (and, with S1F_CUDA_SYNC_CHECK=1, a
/// device synchronization); `where` names the launching function.
void checkLaunch(const char *where, const char *file, int line);

} // namespace s1f::rt::cuda::detail

/// Throws std::runtime_error if the CUDA runtime call does not return
/// cudaSuccess.
#define S1F_CUDA_CHECK(call)                                                   \
  do {                                                                         \
    const cudaError_t s1fCudaErr_ = (call);                                    \
    if (s1fCudaErr_ != cudaSuccess)                                            \
      ::s1f::rt::cuda::detail::throwCudaError(s1fCudaErr_, #call, __FILE__,    \
                                              __LINE__);                       \
  } while (0)

/// Throws std::runtime_error if the cuBLAS(Lt) call does not return
/// CUBLAS_STATUS_SUCCESS.
#define S1F_CUBLAS_CHECK(call)                                                 \
  do {                                                                         \
    const cublasStatus_t s1fCublasStatus_ = (call);                            \
    if (s1fCublasStatus_ != CUBLAS_STATUS_SUCCESS)                             \
      ::s1f::rt::cuda::detail::throwCublasError(s1fCublasStatus_, #call,       \
                                                __FILE__, __LINE__);           \
  } while (0)

/// Put right after every <<<...>>> launch.
#define S1F_CUDA_CHECK_LAUNCH()                                                \
  ::s1f::rt::cuda::detail::checkLaunch(__func__, __FILE__, __LINE__)

#endif // SEQ1F1B_RUNTIME_CUDA_CHECK_H
