//===- common.cuh - Helpers shared by the CUDA kernels ----------*- C++ -*-===//
//
// Storage-type conversions (bf16 <-> fp32), 16-byte vector packs, warp and
// block reductions, launch-size helpers and the host-side argument check.
// Internal to runtime/src/cuda.
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_RUNTIME_CUDA_COMMON_CUH
#define SEQ1F1B_RUNTIME_CUDA_COMMON_CUH

#include "seq1f1b/runtime/cuda/check.h"
#include "seq1f1b/runtime/cuda/kernels.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

/// Host-side argument check, the CUDA twin of the CPU kernels' S1F_CHECK.
#define S1F_CUDA_REQUIRE(cond, msg)                                            \
  do {                                                                         \
    if (!(cond))                                                               \
      throw std::invalid_argument(std::string(__FILE__) + ":" +                \
                                  std::to_string(__LINE__) + ": " + (msg));    \
  } while (0)

namespace s1f::rt::cuda::detail {

//===----------------------------------------------------------------------===//
// Storage types.
//===----------------------------------------------------------------------===//

__device__ __forceinline__ float toFloat(float x) { return x; }
__device__ __forceinline__ float toFloat(bf16 x) { return __bfloat162float(x); }

template <typename T> __device__ __forceinline__ T fromFloat(float x);
template <> __device__ __forceinline__ float fromFloat<float>(float x) {
  return x;
}
template <> __device__ __forceinline__ bf16 fromFloat<bf16>(float x) {
  return __float2bfloat16_rn(x);
}

/// Elements of T in one 16-byte vector access.
template <typename T> constexpr int kVec = 16 / static_cast<int>(sizeof(T));

/// V consecutive elements loaded or stored with one access of V*sizeof(T)
/// bytes (the pointer must be aligned to that).
template <typename T, int V> struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

template <typename T, int V>
__device__ __forceinline__ void loadPack(const T *p, float (&out)[V]) {
  const Pack<T, V> pk = *reinterpret_cast<const Pack<T, V> *>(p);
#pragma unroll
  for (int i = 0; i < V; ++i)
    out[i] = toFloat(pk.v[i]);
}

template <typename T, int V>
__device__ __forceinline__ void storePack(T *p, const float (&in)[V]) {
  Pack<T, V> pk;
#pragma unroll
  for (int i = 0; i < V; ++i)
    pk.v[i] = fromFloat<T>(in[i]);
  *reinterpret_cast<Pack<T, V> *>(p) = pk;
}

__host__ __device__ __forceinline__ bool aligned16(const void *p) {
  return (reinterpret_cast<uintptr_t>(p) & 15u) == 0;
}

//===----------------------------------------------------------------------===//
// Reductions.
//===----------------------------------------------------------------------===//

__device__ __forceinline__ float warpSum(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1)
    x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

__device__ __forceinline__ float warpMax(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1)
    x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}

/// Sum over the block (blockDim.x a multiple of 32, at most 1024); every
/// thread gets the result. `scratch` holds 32 floats of shared memory.
__device__ __forceinline__ float blockSum(float x, float *scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = blockDim.x >> 5;
  x = warpSum(x);
  __syncthreads(); // scratch may still be read by a previous call
  if (lane == 0)
    scratch[warp] = x;
  __syncthreads();
  x = lane < warps ? scratch[lane] : 0.0f;
  return warpSum(x);
}

//===----------------------------------------------------------------------===//
// Launch sizes.
//===----------------------------------------------------------------------===//

/// Streaming multiprocessors of the current device (cached per device).
int smCount();

/// Blocks for a grid-stride loop over `work` items with `block` threads:
/// enough to fill the GPU several times over, never more than needed.
inline unsigned gridFor(int64_t work, int block) {
  const int64_t needed = (work + block - 1) / block;
  const int64_t cap = static_cast<int64_t>(smCount()) * 16;
  const int64_t g = needed < cap ? needed : cap;
  return static_cast<unsigned>(g < 1 ? 1 : g);
}

inline unsigned ceilDiv(int64_t a, int64_t b) {
  return static_cast<unsigned>((a + b - 1) / b);
}

} // namespace s1f::rt::cuda::detail

#endif // SEQ1F1B_RUNTIME_CUDA_COMMON_CUH
