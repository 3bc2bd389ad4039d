//===- check.cpp - Error reporting of the CUDA backend --------------------===//

#include "seq1f1b/runtime/cuda/check.h"
#include "seq1f1b/runtime/cuda/kernels.h"

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace s1f::rt::cuda {
namespace detail {
namespace {

std::string where(const char *file, int line) {
  return std::string(file) + ":" + std::to_string(line) + ": ";
}

bool syncAfterLaunch() {
  static const bool enabled = [] {
    const char *v = std::getenv("S1F_CUDA_SYNC_CHECK");
    return v && *v && std::strcmp(v, "0") != 0;
  }();
  return enabled;
}

} // namespace

void throwCudaError(cudaError_t err, const char *call, const char *file,
                    int line) {
  throw std::runtime_error(where(file, line) + call + " failed: " +
                           cudaGetErrorName(err) + " (" +
                           cudaGetErrorString(err) + ")");
}

void throwCublasError(cublasStatus_t status, const char *call,
                      const char *file, int line) {
  throw std::runtime_error(where(file, line) + call + " failed: " +
                           cublasLtGetStatusName(status) + " (" +
                           cublasLtGetStatusString(status) + ")");
}

void checkLaunch(const char *fn, const char *file, int line) {
  cudaError_t err = cudaGetLastError();
  if (err == cudaSuccess && syncAfterLaunch())
    err = cudaDeviceSynchronize();
  if (err != cudaSuccess)
    throwCudaError(err, (std::string("kernel launch in ") + fn).c_str(), file,
                   line);
}

} // namespace detail

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError(); // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

} // namespace s1f::rt::cuda
