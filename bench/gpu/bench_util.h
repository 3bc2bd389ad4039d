//===- bench_util.h - Shared pieces of the GPU benchmarks -------*- C++ -*-===//
//
// Device buffers, random fills and the JSON description of the device, for
// s1f-cuda-bench and s1f-layer-bench.
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_BENCH_GPU_BENCH_UTIL_H
#define SEQ1F1B_BENCH_GPU_BENCH_UTIL_H

#include "seq1f1b/runtime/cuda/check.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace s1f::bench {

/// cudaMalloc ran out of memory: a case too big for the device, which a
/// benchmark may skip, unlike any other CUDA error.
struct DeviceOutOfMemory : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Device memory that frees itself.
template <typename T> struct Buf {
  T *p = nullptr;
  size_t n = 0;
  explicit Buf(size_t count) : n(count) {
    const size_t bytes = (count ? count : 1) * sizeof(T);
    const cudaError_t err = cudaMalloc(reinterpret_cast<void **>(&p), bytes);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError(); // not sticky: keep it from failing the next launch
      size_t freeBytes = 0, totalBytes = 0;
      cudaMemGetInfo(&freeBytes, &totalBytes);
      char msg[160];
      std::snprintf(msg, sizeof msg,
                    "out of device memory: %.2f GiB requested, %.2f of "
                    "%.2f GiB free",
                    bytes / double(1 << 30), freeBytes / double(1 << 30),
                    totalBytes / double(1 << 30));
      throw DeviceOutOfMemory(msg);
    }
    S1F_CUDA_CHECK(err);
  }
  ~Buf() { cudaFree(p); }
  Buf(const Buf &) = delete;
  Buf &operator=(const Buf &) = delete;
  T *get() const { return p; }
};

/// Fills p[0, n) with a random block of `lo..hi` values tiled over it (a
/// whole buffer of fresh random numbers would take the host seconds).
template <typename T>
void fillRandom(T *p, size_t n, double lo, double hi, uint32_t seed) {
  const size_t block = std::min<size_t>(n, size_t(1) << 20);
  std::vector<T> host(block);
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  for (T &x : host)
    x = static_cast<T>(static_cast<float>(dist(gen)));
  S1F_CUDA_CHECK(
      cudaMemcpy(p, host.data(), block * sizeof(T), cudaMemcpyHostToDevice));
  for (size_t done = block; done < n;) { // double the filled prefix
    const size_t m = std::min(done, n - done);
    S1F_CUDA_CHECK(
        cudaMemcpy(p + done, p, m * sizeof(T), cudaMemcpyDeviceToDevice));
    done += m;
  }
}

template <typename T>
void fillRandom(Buf<T> &b, double lo, double hi, uint32_t seed) {
  fillRandom(b.p, b.n, lo, hi, seed);
}

/// The current device as a JSON object: name, SM count, compute capability,
/// memory, peak HBM bandwidth (from the clock and bus width), CUDA versions.
inline std::string deviceJson() {
  int dev = 0;
  cudaDeviceProp prop{};
  S1F_CUDA_CHECK(cudaGetDevice(&dev));
  S1F_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  int memClockKHz = 0, busBits = 0;
  cudaDeviceGetAttribute(&memClockKHz, cudaDevAttrMemoryClockRate, dev);
  cudaDeviceGetAttribute(&busBits, cudaDevAttrGlobalMemoryBusWidth, dev);
  const double peak = 2.0 * memClockKHz * 1e3 * busBits / 8.0 / 1e9;
  int runtimeVersion = 0, driverVersion = 0;
  cudaRuntimeGetVersion(&runtimeVersion);
  cudaDriverGetVersion(&driverVersion);
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "{\"name\": \"%s\", \"sm\": %d, \"cc\": \"%d.%d\", "
                "\"memory_gib\": %.1f, \"peak_gbps\": %.1f, \"cuda_runtime\": "
                "%d, \"cuda_driver\": %d}",
                prop.name, prop.multiProcessorCount, prop.major, prop.minor,
                prop.totalGlobalMem / double(1 << 30), peak, runtimeVersion,
                driverVersion);
  return buf;
}

} // namespace s1f::bench

#endif // SEQ1F1B_BENCH_GPU_BENCH_UTIL_H
