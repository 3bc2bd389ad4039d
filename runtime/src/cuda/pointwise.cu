//===- pointwise.cu - Activations, adds, cross-entropy, AdamW, norms ------===//
//
// Elementwise kernels (one generic kernel, 16-byte vector accesses when every
// pointer is aligned), the fused softmax cross-entropy (a block per row,
// online softmax), the multi-tensor AdamW and the multi-tensor sum of
// squares for gradient clipping.
//
// NOT VERIFIED ON A GPU YET: see docs/cuda.md.
//
//===----------------------------------------------------------------------===//

#include "common.cuh"

#include <array>
#include <cmath>
#include <vector>

namespace s1f::rt::cuda {
namespace detail {
namespace {

//===----------------------------------------------------------------------===//
// Generic elementwise kernel: NIn inputs, NOut outputs (nullptr outputs are
// skipped), op(float in[NIn], float out[NOut]) in fp32. Each element is read
// and written by the same thread, all inputs before any output, so outputs
// may alias inputs.
//===----------------------------------------------------------------------===//

template <typename T, int NIn, int NOut> struct Ptrs {
  const T *in[NIn];
  T *out[NOut];
};

template <typename T, int V, int NIn, int NOut, typename Op>
__global__ void elementwiseKernel(Ptrs<T, NIn, NOut> p, int64_t n, Op op) {
  const int64_t packs = n / V;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t tid = blockIdx.x * static_cast<int64_t>(blockDim.x) +
                      threadIdx.x;
  for (int64_t k = tid; k < packs; k += stride) {
    float in[NIn][V], out[NOut][V];
#pragma unroll
    for (int a = 0; a < NIn; ++a)
      loadPack<T, V>(p.in[a] + k * V, in[a]);
#pragma unroll
    for (int i = 0; i < V; ++i) {
      float x[NIn], y[NOut];
#pragma unroll
      for (int a = 0; a < NIn; ++a)
        x[a] = in[a][i];
      op(x, y);
#pragma unroll
      for (int b = 0; b < NOut; ++b)
        out[b][i] = y[b];
    }
#pragma unroll
    for (int b = 0; b < NOut; ++b)
      if (p.out[b])
        storePack<T, V>(p.out[b] + k * V, out[b]);
  }
  if (V > 1) { // the n % V elements after the last full pack
    const int64_t e = packs * V + tid;
    if (e < n) {
      float x[NIn], y[NOut];
#pragma unroll
      for (int a = 0; a < NIn; ++a)
        x[a] = toFloat(p.in[a][e]);
      op(x, y);
#pragma unroll
      for (int b = 0; b < NOut; ++b)
        if (p.out[b])
          p.out[b][e] = fromFloat<T>(y[b]);
    }
  }
}

template <typename T, int NIn, int NOut, typename Op>
void launchElementwise(const std::array<const T *, NIn> &in,
                       const std::array<T *, NOut> &out, int64_t n, Op op,
                       cudaStream_t stream, const char *what) {
  S1F_CUDA_REQUIRE(n >= 0, std::string(what) + ": negative size");
  if (n == 0)
    return;
  Ptrs<T, NIn, NOut> p;
  bool vec = true;
  for (int a = 0; a < NIn; ++a) {
    S1F_CUDA_REQUIRE(in[a] != nullptr, std::string(what) + ": null input");
    p.in[a] = in[a];
    vec = vec && aligned16(in[a]);
  }
  for (int b = 0; b < NOut; ++b) {
    p.out[b] = out[b];
    vec = vec && (!out[b] || aligned16(out[b]));
  }
  const int block = 256;
  if (vec) {
    constexpr int V = kVec<T>;
    elementwiseKernel<T, V, NIn, NOut, Op>
        <<<gridFor(n / V > 0 ? n / V : 1, block), block, 0, stream>>>(p, n,
                                                                      op);
  } else {
    elementwiseKernel<T, 1, NIn, NOut, Op>
        <<<gridFor(n, block), block, 0, stream>>>(p, n, op);
  }
  S1F_CUDA_CHECK_LAUNCH();
}

// GPT-2's tanh approximation: 0.5 x (1 + tanh(k (x + c x^3))).
constexpr float kGeluK = 0.7978845608028654f; // sqrt(2 / pi)
constexpr float kGeluC = 0.044715f;

__device__ __forceinline__ float sigmoidf(float x) {
  return 1.0f / (1.0f + expf(-x));
}

__device__ __forceinline__ float geluTanh(float x) {
  return 0.5f * x * (1.0f + tanhf(kGeluK * (x + kGeluC * x * x * x)));
}
__device__ __forceinline__ float geluTanhGrad(float x) {
  const float t = tanhf(kGeluK * (x + kGeluC * x * x * x));
  const float du = kGeluK * (1.0f + 3.0f * kGeluC * x * x);
  return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
}

struct GeluFwd {
  __device__ void operator()(const float (&x)[1], float (&y)[1]) const {
    y[0] = geluTanh(x[0]);
  }
};
struct GeluBwd { // in: x, dy
  __device__ void operator()(const float (&in)[2], float (&y)[1]) const {
    y[0] = in[1] * geluTanhGrad(in[0]);
  }
};
// The exact form, x Phi(x) (GPT-NeoX's "gelu").
struct GeluErfFwd {
  __device__ void operator()(const float (&x)[1], float (&y)[1]) const {
    y[0] = 0.5f * x[0] * (1.0f + erff(x[0] * 0.70710678118654752f));
  }
};
struct GeluErfBwd { // in: x, dy; Phi(x) + x phi(x)
  __device__ void operator()(const float (&in)[2], float (&y)[1]) const {
    const float x = in[0];
    const float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752f));
    const float pdf = 0.39894228040143268f * expf(-0.5f * x * x);
    y[0] = in[1] * (cdf + x * pdf);
  }
};
struct SiluFwd {
  __device__ void operator()(const float (&x)[1], float (&y)[1]) const {
    y[0] = x[0] * sigmoidf(x[0]);
  }
};
struct SiluBwd { // in: x, dy
  __device__ void operator()(const float (&in)[2], float (&y)[1]) const {
    const float s = sigmoidf(in[0]);
    y[0] = in[1] * s * (1.0f + in[0] * (1.0f - s));
  }
};
struct SwigluFwd { // in: gate, up
  __device__ void operator()(const float (&in)[2], float (&y)[1]) const {
    y[0] = in[0] * sigmoidf(in[0]) * in[1];
  }
};
struct SwigluBwd { // in: gate, up, dy; out: dgate, dup
  __device__ void operator()(const float (&in)[3], float (&y)[2]) const {
    const float g = in[0], u = in[1], d = in[2], s = sigmoidf(g);
    y[0] = d * u * s * (1.0f + g * (1.0f - s));
    y[1] = d * g * s;
  }
};
struct SoftcapFwd {
  float c;
  __device__ void operator()(const float (&x)[1], float (&y)[1]) const {
    y[0] = c * tanhf(x[0] / c);
  }
};
struct SoftcapBwd { // in: x, dy
  float c;
  __device__ void operator()(const float (&in)[2], float (&y)[1]) const {
    const float t = tanhf(in[0] / c);
    y[0] = in[1] * (1.0f - t * t);
  }
};
struct GegluFwd { // in: gate, up
  __device__ void operator()(const float (&in)[2], float (&y)[1]) const {
    y[0] = geluTanh(in[0]) * in[1];
  }
};
struct GegluBwd { // in: gate, up, dy; out: dgate, dup
  __device__ void operator()(const float (&in)[3], float (&y)[2]) const {
    const float g = in[0], u = in[1], d = in[2];
    y[0] = d * u * geluTanhGrad(g);
    y[1] = d * geluTanh(g);
  }
};
struct AddOp { // in: a, b (accumulate: x, y)
  __device__ void operator()(const float (&in)[2], float (&y)[1]) const {
    y[0] = in[0] + in[1];
  }
};
struct CopyTwice { // in: dy; out: da, db
  __device__ void operator()(const float (&in)[1], float (&y)[2]) const {
    y[0] = in[0];
    y[1] = in[0];
  }
};
struct ScaleOp {
  float s;
  __device__ void operator()(const float (&in)[1], float (&y)[1]) const {
    y[0] = in[0] * s;
  }
};

//===----------------------------------------------------------------------===//
// Cross-entropy: a block per row. Pass 1 (Fwd): online softmax, each thread
// keeps a running (max, sum) over its elements; the block merges them into
// the row's log-sum-exp. Pass 2 (Grad): scale * (exp(x - lse) - onehot),
// written over the same row positions it reads (dlogits may alias logits).
//===----------------------------------------------------------------------===//

constexpr int kCeBlock = 512;
constexpr float kLog2e = 1.4426950408889634f;

__device__ __forceinline__ void mergeMaxSum(float &m, float &s, float om,
                                            float os) {
  const float nm = fmaxf(m, om);
  if (nm == -INFINITY) // both empty
    return;
  s = s * exp2f((m - nm) * kLog2e) + os * exp2f((om - nm) * kLog2e);
  m = nm;
}

template <typename T, int V, bool Fwd, bool Grad>
__global__ void __launch_bounds__(kCeBlock)
    crossEntropyKernel(const T *logits, const int32_t *__restrict__ targets,
                       float *__restrict__ lseOut,
                       const float *__restrict__ lseIn,
                       double *__restrict__ lossSum,
                       unsigned long long *__restrict__ count, T *dlogits,
                       int64_t vocab, float scale) {
  const int64_t row = blockIdx.x;
  const T *xr = logits + row * vocab;
  const int32_t target = targets[row];
  const int64_t packs = vocab / V;
  const int tid = threadIdx.x;
  const float nan = __int_as_float(0x7fc00000);

  __shared__ float sm[32], ss[32];
  __shared__ float rowLseShared;
  float rowLse;
  if (Fwd) {
    float m = -INFINITY, s = 0.0f;
    bool sawNan = false;
    for (int64_t p = tid; p < packs; p += blockDim.x) {
      float v[V];
      loadPack<T, V>(xr + p * V, v);
      float pm = v[0];
#pragma unroll
      for (int i = 1; i < V; ++i)
        pm = fmaxf(pm, v[i]);
      float ps = 0.0f;
#pragma unroll
      for (int i = 0; i < V; ++i)
        ps += exp2f((v[i] - pm) * kLog2e);
      sawNan = sawNan || ps != ps; // fmaxf drops NaNs: remember them
      mergeMaxSum(m, s, pm, ps);
    }
    const bool rowNan = __syncthreads_or(sawNan) != 0;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float om = __shfl_xor_sync(0xffffffffu, m, o);
      const float os = __shfl_xor_sync(0xffffffffu, s, o);
      mergeMaxSum(m, s, om, os);
    }
    const int lane = tid & 31, warp = tid >> 5, warps = blockDim.x >> 5;
    if (lane == 0) {
      sm[warp] = m;
      ss[warp] = s;
    }
    __syncthreads();
    if (warp == 0) {
      m = lane < warps ? sm[lane] : -INFINITY;
      s = lane < warps ? ss[lane] : 0.0f;
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) {
        const float om = __shfl_xor_sync(0xffffffffu, m, o);
        const float os = __shfl_xor_sync(0xffffffffu, s, o);
        mergeMaxSum(m, s, om, os);
      }
      if (lane == 0) {
        const float l = rowNan ? nan : m + logf(s);
        rowLseShared = l;
        if (lseOut)
          lseOut[row] = l;
        if (target >= 0) {
          // Read the target logit before pass 2 may overwrite it in place.
          const float loss =
              target < vocab ? l - toFloat(xr[target]) : nan; // bad target
          atomicAdd(lossSum, static_cast<double>(loss));
          atomicAdd(count, 1ull);
        }
      }
    }
    __syncthreads();
    rowLse = rowLseShared;
  } else {
    rowLse = lseIn[row];
  }

  if (Grad) {
    T *dr = dlogits + row * vocab;
    if (target < 0) {
      float z[V];
#pragma unroll
      for (int i = 0; i < V; ++i)
        z[i] = 0.0f;
      for (int64_t p = tid; p < packs; p += blockDim.x)
        storePack<T, V>(dr + p * V, z);
      return;
    }
    const bool bad = target >= vocab;
    for (int64_t p = tid; p < packs; p += blockDim.x) {
      float v[V], d[V];
      loadPack<T, V>(xr + p * V, v);
#pragma unroll
      for (int i = 0; i < V; ++i) {
        d[i] = scale * exp2f((v[i] - rowLse) * kLog2e);
        if (p * V + i == target)
          d[i] -= scale;
        if (bad)
          d[i] = nan;
      }
      storePack<T, V>(dr + p * V, d);
    }
  }
}

template <typename T, bool Fwd, bool Grad>
void launchCrossEntropy(const T *logits, const int32_t *targets, float *lseOut,
                        const float *lseIn, double *lossSum, int64_t *count,
                        T *dlogits, int64_t N, int64_t V, float scale,
                        cudaStream_t stream, const char *what) {
  S1F_CUDA_REQUIRE(N >= 0 && V > 0, std::string(what) + ": bad shape");
  S1F_CUDA_REQUIRE(N <= 0x7fffffff, std::string(what) + ": too many rows");
  S1F_CUDA_REQUIRE(!Fwd || (lossSum && count),
                   std::string(what) + ": needs loss_sum and count");
  S1F_CUDA_REQUIRE(Fwd || lseIn, std::string(what) + ": needs lse");
  S1F_CUDA_REQUIRE(!Grad || dlogits, std::string(what) + ": needs dlogits");
  if (N == 0)
    return;
  auto *cnt = reinterpret_cast<unsigned long long *>(count);
  static_assert(sizeof(unsigned long long) == sizeof(int64_t), "count");
  const bool vec = V % kVec<T> == 0 && aligned16(logits) &&
                   (!dlogits || aligned16(dlogits));
  const unsigned grid = static_cast<unsigned>(N);
  if (vec)
    crossEntropyKernel<T, kVec<T>, Fwd, Grad><<<grid, kCeBlock, 0, stream>>>(
        logits, targets, lseOut, lseIn, lossSum, cnt, dlogits, V, scale);
  else
    crossEntropyKernel<T, 1, Fwd, Grad><<<grid, kCeBlock, 0, stream>>>(
        logits, targets, lseOut, lseIn, lossSum, cnt, dlogits, V, scale);
  S1F_CUDA_CHECK_LAUNCH();
}

//===----------------------------------------------------------------------===//
// Multi-tensor kernels: up to kMaxTensors tensors per launch, passed by value
// in the kernel parameters (< 4 KiB); block b works on chunk
// b - blockStart[t] of the tensor t whose block range contains b.
//===----------------------------------------------------------------------===//

constexpr int kMultiBlock = 256;
constexpr int64_t kMultiChunk = 16 * kMultiBlock; // elements per block

template <typename Tensor, int Max> struct TensorBatch {
  Tensor t[Max];
  int64_t blockStart[Max + 1];
  int count;
};

template <typename Batch>
__device__ __forceinline__ int findTensor(const Batch &batch, int64_t b) {
  int t = 0;
  while (t + 1 < batch.count && batch.blockStart[t + 1] <= b)
    ++t;
  return t;
}

/// Splits `tensors` into batches and calls launch(batch, blocks) for each.
template <int Max, typename Tensor, typename Launch>
void forEachBatch(const Tensor *tensors, int64_t count, Launch launch) {
  TensorBatch<Tensor, Max> batch;
  batch.count = 0;
  int64_t blocks = 0;
  auto flush = [&] {
    if (batch.count == 0)
      return;
    batch.blockStart[batch.count] = blocks;
    launch(batch, blocks);
    batch.count = 0;
    blocks = 0;
  };
  for (int64_t i = 0; i < count; ++i) {
    if (tensors[i].n == 0)
      continue;
    batch.t[batch.count] = tensors[i];
    batch.blockStart[batch.count] = blocks;
    blocks += (tensors[i].n + kMultiChunk - 1) / kMultiChunk;
    if (++batch.count == Max || blocks >= (int64_t(1) << 30))
      flush();
  }
  flush();
}

struct AdamWScalars {
  float b1, b2, stepSize, rsqrtC2, eps, decay, gs;
  const float *gsDevice;
};

constexpr int kAdamMax = 36; // 36 * 48 + 37 * 8 bytes of parameters
using AdamWBatch = TensorBatch<AdamWTensor, kAdamMax>;

__global__ void __launch_bounds__(kMultiBlock)
    adamwKernel(const AdamWBatch batch, const AdamWScalars sc) {
  const int64_t b = blockIdx.x;
  const int ti = findTensor(batch, b);
  const AdamWTensor &t = batch.t[ti];
  const int64_t begin = (b - batch.blockStart[ti]) * kMultiChunk;
  const int64_t end = begin + kMultiChunk < t.n ? begin + kMultiChunk : t.n;
  const float gs = sc.gsDevice ? sc.gs * *sc.gsDevice : sc.gs;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const float g = t.grad[i] * gs;
    const float m = sc.b1 * t.m[i] + (1.0f - sc.b1) * g;
    const float v = sc.b2 * t.v[i] + (1.0f - sc.b2) * g * g;
    // PyTorch order: decay the weight, then lr * m_hat / (sqrt(v_hat) + eps).
    const float p =
        t.master[i] * sc.decay - sc.stepSize * m / (sqrtf(v) * sc.rsqrtC2 +
                                                    sc.eps);
    t.m[i] = m;
    t.v[i] = v;
    t.master[i] = p;
    if (t.param_bf16)
      t.param_bf16[i] = __float2bfloat16_rn(p);
  }
}

struct SquaresTensor {
  const void *data;
  int64_t n;
};
constexpr int kSquaresMax = 64;
using SquaresBatch = TensorBatch<SquaresTensor, kSquaresMax>;

template <typename T>
__global__ void __launch_bounds__(kMultiBlock)
    sumSquaresKernel(const SquaresBatch batch, double *out) {
  __shared__ float scratch[32];
  const int64_t b = blockIdx.x;
  const int ti = findTensor(batch, b);
  const T *x = static_cast<const T *>(batch.t[ti].data);
  const int64_t begin = (b - batch.blockStart[ti]) * kMultiChunk;
  const int64_t n = batch.t[ti].n;
  const int64_t end = begin + kMultiChunk < n ? begin + kMultiChunk : n;
  float s = 0.0f;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const float v = toFloat(x[i]);
    s += v * v;
  }
  s = blockSum(s, scratch);
  if (threadIdx.x == 0)
    atomicAdd(out, static_cast<double>(s));
}

template <typename T>
void launchSumSquares(const SquaresTensor *spans, int64_t count, double *out,
                      cudaStream_t stream) {
  S1F_CUDA_REQUIRE(count >= 0 && (count == 0 || spans), "sum_squares: spans");
  S1F_CUDA_REQUIRE(out, "sum_squares: null output");
  for (int64_t i = 0; i < count; ++i)
    S1F_CUDA_REQUIRE(spans[i].n >= 0 && (spans[i].n == 0 || spans[i].data),
                     "sum_squares: bad span " + std::to_string(i));
  forEachBatch<kSquaresMax>(spans, count,
                            [&](const SquaresBatch &batch, int64_t blocks) {
                              sumSquaresKernel<T>
                                  <<<static_cast<unsigned>(blocks),
                                     kMultiBlock, 0, stream>>>(batch, out);
                              S1F_CUDA_CHECK_LAUNCH();
                            });
}

__global__ void clipCoefficientKernel(const double *sumsq, float *coef,
                                      double maxNorm) {
  const double t = *sumsq;
  *coef = (isfinite(t) && t >= 0.0)
              ? static_cast<float>(fmin(1.0, maxNorm / (sqrt(t) + 1e-6)))
              : __int_as_float(0x7fc00000);
}

} // namespace
} // namespace detail

using namespace detail;

//===----------------------------------------------------------------------===//
// Public entry points.
//===----------------------------------------------------------------------===//

template <typename T>
void gelu_fwd(const T *x, T *y, int64_t n, cudaStream_t stream) {
  launchElementwise<T, 1, 1>({x}, {y}, n, GeluFwd{}, stream, "gelu_fwd");
}
template <typename T>
void gelu_bwd(const T *x, const T *dy, T *dx, int64_t n, cudaStream_t stream) {
  launchElementwise<T, 2, 1>({x, dy}, {dx}, n, GeluBwd{}, stream, "gelu_bwd");
}
template <typename T>
void gelu_erf_fwd(const T *x, T *y, int64_t n, cudaStream_t stream) {
  launchElementwise<T, 1, 1>({x}, {y}, n, GeluErfFwd{}, stream, "gelu_erf_fwd");
}
template <typename T>
void gelu_erf_bwd(const T *x, const T *dy, T *dx, int64_t n,
                  cudaStream_t stream) {
  launchElementwise<T, 2, 1>({x, dy}, {dx}, n, GeluErfBwd{}, stream,
                             "gelu_erf_bwd");
}
template <typename T>
void silu_fwd(const T *x, T *y, int64_t n, cudaStream_t stream) {
  launchElementwise<T, 1, 1>({x}, {y}, n, SiluFwd{}, stream, "silu_fwd");
}
template <typename T>
void silu_bwd(const T *x, const T *dy, T *dx, int64_t n, cudaStream_t stream) {
  launchElementwise<T, 2, 1>({x, dy}, {dx}, n, SiluBwd{}, stream, "silu_bwd");
}
template <typename T>
void swiglu_fwd(const T *gate, const T *up, T *y, int64_t n,
                cudaStream_t stream) {
  launchElementwise<T, 2, 1>({gate, up}, {y}, n, SwigluFwd{}, stream,
                             "swiglu_fwd");
}
template <typename T>
void softcap_fwd(const T *x, T *y, int64_t n, double c, cudaStream_t stream) {
  S1F_CUDA_REQUIRE(c > 0, "softcap: the cap must be > 0");
  launchElementwise<T, 1, 1>({x}, {y}, n, SoftcapFwd{static_cast<float>(c)},
                             stream, "softcap_fwd");
}
template <typename T>
void softcap_bwd(const T *x, const T *dy, T *dx, int64_t n, double c,
                 cudaStream_t stream) {
  S1F_CUDA_REQUIRE(c > 0, "softcap: the cap must be > 0");
  launchElementwise<T, 2, 1>({x, dy}, {dx}, n,
                             SoftcapBwd{static_cast<float>(c)}, stream,
                             "softcap_bwd");
}
template <typename T>
void geglu_fwd(const T *gate, const T *up, T *y, int64_t n,
               cudaStream_t stream) {
  launchElementwise<T, 2, 1>({gate, up}, {y}, n, GegluFwd{}, stream,
                             "geglu_fwd");
}
template <typename T>
void geglu_bwd(const T *gate, const T *up, const T *dy, T *dgate, T *dup,
               int64_t n, cudaStream_t stream) {
  launchElementwise<T, 3, 2>({gate, up, dy}, {dgate, dup}, n, GegluBwd{},
                             stream, "geglu_bwd");
}
template <typename T>
void swiglu_bwd(const T *gate, const T *up, const T *dy, T *dgate, T *dup,
                int64_t n, cudaStream_t stream) {
  if (!dgate && !dup)
    return;
  launchElementwise<T, 3, 2>({gate, up, dy}, {dgate, dup}, n, SwigluBwd{},
                             stream, "swiglu_bwd");
}
template <typename T>
void add_fwd(const T *a, const T *b, T *y, int64_t n, cudaStream_t stream) {
  launchElementwise<T, 2, 1>({a, b}, {y}, n, AddOp{}, stream, "add_fwd");
}
template <typename T>
void add_bwd(const T *dy, T *da, T *db, int64_t n, cudaStream_t stream) {
  if (!da && !db)
    return;
  launchElementwise<T, 1, 2>({dy}, {da, db}, n, CopyTwice{}, stream,
                             "add_bwd");
}
template <typename T>
void accumulate(const T *x, T *y, int64_t n, cudaStream_t stream) {
  launchElementwise<T, 2, 1>({x, y}, {y}, n, AddOp{}, stream, "accumulate");
}
template <typename T>
void scale(T *x, int64_t n, float s, cudaStream_t stream) {
  launchElementwise<T, 1, 1>({x}, {x}, n, ScaleOp{s}, stream, "scale");
}

template <typename T>
void cross_entropy_fwd(const T *logits, const int32_t *targets, float *lse,
                       double *loss_sum, int64_t *count, int64_t N, int64_t V,
                       cudaStream_t stream) {
  launchCrossEntropy<T, true, false>(logits, targets, lse, nullptr, loss_sum,
                                     count, nullptr, N, V, 0.0f, stream,
                                     "cross_entropy_fwd");
}
template <typename T>
void cross_entropy_bwd(const T *logits, const int32_t *targets,
                       const float *lse, T *dlogits, int64_t N, int64_t V,
                       float scale, cudaStream_t stream) {
  launchCrossEntropy<T, false, true>(logits, targets, nullptr, lse, nullptr,
                                     nullptr, dlogits, N, V, scale, stream,
                                     "cross_entropy_bwd");
}
template <typename T>
void cross_entropy_fused(const T *logits, const int32_t *targets, float *lse,
                         double *loss_sum, int64_t *count, T *dlogits,
                         int64_t N, int64_t V, float scale,
                         cudaStream_t stream) {
  launchCrossEntropy<T, true, true>(logits, targets, lse, nullptr, loss_sum,
                                    count, dlogits, N, V, scale, stream,
                                    "cross_entropy_fused");
}

void adamw_step(const AdamWTensor *tensors, int64_t count, int64_t step,
                const AdamWConfig &cfg, double grad_scale,
                const float *grad_scale_device, cudaStream_t stream) {
  S1F_CUDA_REQUIRE(step >= 1,
                   "adamw step is 1-based, got " + std::to_string(step));
  S1F_CUDA_REQUIRE(count >= 0 && (count == 0 || tensors), "adamw: tensors");
  for (int64_t i = 0; i < count; ++i) {
    const AdamWTensor &t = tensors[i];
    S1F_CUDA_REQUIRE(t.n >= 0 && (t.n == 0 || (t.master && t.grad && t.m &&
                                                t.v)),
                     "adamw: tensor " + std::to_string(i) +
                         " lacks master, grad, m or v");
  }
  // Per-call scalars in double, per-element math in fp32 (as on the CPU).
  const double c1 = 1.0 - std::pow(cfg.beta1, static_cast<double>(step));
  const double c2 = 1.0 - std::pow(cfg.beta2, static_cast<double>(step));
  AdamWScalars sc;
  sc.b1 = static_cast<float>(cfg.beta1);
  sc.b2 = static_cast<float>(cfg.beta2);
  sc.stepSize = static_cast<float>(cfg.lr / c1);
  sc.rsqrtC2 = static_cast<float>(1.0 / std::sqrt(c2));
  sc.eps = static_cast<float>(cfg.eps);
  sc.decay = static_cast<float>(1.0 - cfg.lr * cfg.weight_decay);
  sc.gs = static_cast<float>(grad_scale);
  sc.gsDevice = grad_scale_device;
  forEachBatch<kAdamMax>(tensors, count,
                         [&](const AdamWBatch &batch, int64_t blocks) {
                           adamwKernel<<<static_cast<unsigned>(blocks),
                                         kMultiBlock, 0, stream>>>(batch, sc);
                           S1F_CUDA_CHECK_LAUNCH();
                         });
}

void adamw_step(float *param, const float *grad, float *m, float *v, int64_t n,
                int64_t step, const AdamWConfig &cfg, double grad_scale,
                cudaStream_t stream) {
  AdamWTensor t;
  t.master = param;
  t.grad = grad;
  t.m = m;
  t.v = v;
  t.n = n;
  adamw_step(&t, 1, step, cfg, grad_scale, nullptr, stream);
}

void sum_squares(const SquaresSpan *spans, int64_t count, double *out,
                 cudaStream_t stream) {
  S1F_CUDA_REQUIRE(count >= 0 && (count == 0 || spans), "sum_squares: spans");
  std::vector<SquaresTensor> t(static_cast<size_t>(count > 0 ? count : 0));
  for (int64_t i = 0; i < count; ++i)
    t[i] = {spans[i].data, spans[i].n};
  launchSumSquares<float>(t.data(), count, out, stream);
}

template <typename T>
void sum_squares(const T *x, int64_t n, double *out, cudaStream_t stream) {
  const SquaresTensor t{x, n};
  launchSumSquares<T>(&t, 1, out, stream);
}

void clip_coefficient(const double *total_sum_squares, float *coef,
                      double max_norm, cudaStream_t stream) {
  S1F_CUDA_REQUIRE(max_norm > 0, "clip max_norm must be positive");
  clipCoefficientKernel<<<1, 1, 0, stream>>>(total_sum_squares, coef,
                                             max_norm);
  S1F_CUDA_CHECK_LAUNCH();
}

#define S1F_INSTANTIATE(T)                                                     \
  template void gelu_fwd<T>(const T *, T *, int64_t, cudaStream_t);            \
  template void gelu_bwd<T>(const T *, const T *, T *, int64_t, cudaStream_t); \
  template void gelu_erf_fwd<T>(const T *, T *, int64_t, cudaStream_t);        \
  template void gelu_erf_bwd<T>(const T *, const T *, T *, int64_t,            \
                                cudaStream_t);                                 \
  template void silu_fwd<T>(const T *, T *, int64_t, cudaStream_t);            \
  template void silu_bwd<T>(const T *, const T *, T *, int64_t, cudaStream_t); \
  template void softcap_fwd<T>(const T *, T *, int64_t, double, cudaStream_t); \
  template void softcap_bwd<T>(const T *, const T *, T *, int64_t, double,     \
                               cudaStream_t);                                  \
  template void geglu_fwd<T>(const T *, const T *, T *, int64_t,               \
                             cudaStream_t);                                    \
  template void geglu_bwd<T>(const T *, const T *, const T *, T *, T *,        \
                             int64_t, cudaStream_t);                           \
  template void swiglu_fwd<T>(const T *, const T *, T *, int64_t,              \
                              cudaStream_t);                                   \
  template void swiglu_bwd<T>(const T *, const T *, const T *, T *, T *,       \
                              int64_t, cudaStream_t);                          \
  template void add_fwd<T>(const T *, const T *, T *, int64_t, cudaStream_t);  \
  template void add_bwd<T>(const T *, T *, T *, int64_t, cudaStream_t);        \
  template void accumulate<T>(const T *, T *, int64_t, cudaStream_t);          \
  template void scale<T>(T *, int64_t, float, cudaStream_t);                   \
  template void cross_entropy_fwd<T>(const T *, const int32_t *, float *,      \
                                     double *, int64_t *, int64_t, int64_t,    \
                                     cudaStream_t);                            \
  template void cross_entropy_bwd<T>(const T *, const int32_t *,               \
                                     const float *, T *, int64_t, int64_t,     \
                                     float, cudaStream_t);                     \
  template void cross_entropy_fused<T>(const T *, const int32_t *, float *,    \
                                       double *, int64_t *, T *, int64_t,      \
                                       int64_t, float, cudaStream_t);          \
  template void sum_squares<T>(const T *, int64_t, double *, cudaStream_t);
S1F_INSTANTIATE(float)
S1F_INSTANTIATE(bf16)

} // namespace s1f::rt::cuda
