//===- rowwise.cu - Norms, rotary embedding, embeddings, bias grads -------===//
//
// Kernels that work row by row (LayerNorm, RMSNorm: one warp per row) or
// column by column (the parameter gradients dgamma, dbeta, db: a column tile
// per block, fp32 partial sums added with one atomic per column and block),
// plus the rotary and the token/position embeddings.
//
// NOT VERIFIED ON A GPU YET: see docs/cuda.md.
//
//===----------------------------------------------------------------------===//

#include "common.cuh"

#include <cmath>
#include <initializer_list>

namespace s1f::rt::cuda {
namespace detail {

int smCount() {
  constexpr int kMaxDevices = 64;
  static int cached[kMaxDevices] = {}; // 0: not asked yet (benign race)
  int dev = 0;
  S1F_CUDA_CHECK(cudaGetDevice(&dev));
  if (dev < 0 || dev >= kMaxDevices)
    dev = 0;
  if (cached[dev] == 0) {
    int sms = 0;
    S1F_CUDA_CHECK(
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    cached[dev] = sms > 0 ? sms : 1;
  }
  return cached[dev];
}

namespace {

constexpr int kRowsPerBlock = 4; // warps per block, one row each

//===----------------------------------------------------------------------===//
// LayerNorm / RMSNorm forward: one warp per row, fp32 statistics.
//===----------------------------------------------------------------------===//

template <typename T, int V, bool Layer>
__global__ void normFwdKernel(const T *__restrict__ x,
                              const T *__restrict__ gamma,
                              const T *__restrict__ beta, T *__restrict__ y,
                              float *__restrict__ mean,
                              float *__restrict__ rstd, int64_t N, int64_t D,
                              float eps) {
  const int64_t row =
      static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + (threadIdx.x >> 5);
  if (row >= N)
    return;
  const int lane = threadIdx.x & 31;
  const T *xr = x + row * D;
  T *yr = y + row * D;
  const int64_t packs = D / V;
  const float invD = 1.0f / static_cast<float>(D);

  float mu = 0.0f;
  if (Layer) {
    float s = 0.0f;
    for (int64_t p = lane; p < packs; p += 32) {
      float v[V];
      loadPack<T, V>(xr + p * V, v);
#pragma unroll
      for (int i = 0; i < V; ++i)
        s += v[i];
    }
    mu = warpSum(s) * invD;
  }
  // Two-pass variance (no cancellation for rows with a large mean); the
  // second read of the row hits L1/L2.
  float q = 0.0f;
  for (int64_t p = lane; p < packs; p += 32) {
    float v[V];
    loadPack<T, V>(xr + p * V, v);
#pragma unroll
    for (int i = 0; i < V; ++i)
      q += (v[i] - mu) * (v[i] - mu);
  }
  const float rs = 1.0f / sqrtf(warpSum(q) * invD + eps);
  for (int64_t p = lane; p < packs; p += 32) {
    float v[V], g[V], o[V];
    loadPack<T, V>(xr + p * V, v);
    loadPack<T, V>(gamma + p * V, g);
    if (Layer) {
      float b[V];
      loadPack<T, V>(beta + p * V, b);
#pragma unroll
      for (int i = 0; i < V; ++i)
        o[i] = (v[i] - mu) * rs * g[i] + b[i];
    } else {
#pragma unroll
      for (int i = 0; i < V; ++i)
        o[i] = v[i] * rs * g[i];
    }
    storePack<T, V>(yr + p * V, o);
  }
  if (lane == 0) {
    if (Layer)
      mean[row] = mu;
    rstd[row] = rs;
  }
}

//===----------------------------------------------------------------------===//
// Norm backward, dx: one warp per row.
//   LayerNorm: dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy*gamma
//   RMSNorm:   dx = rstd * (g - xhat * mean(g * xhat))
//===----------------------------------------------------------------------===//

template <typename T, int V, bool Layer>
__global__ void normBwdDxKernel(const T *__restrict__ x,
                                const T *__restrict__ gamma,
                                const float *__restrict__ mean,
                                const float *__restrict__ rstd,
                                const T *dy, T *dx, int64_t N, int64_t D) {
  const int64_t row =
      static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + (threadIdx.x >> 5);
  if (row >= N)
    return;
  const int lane = threadIdx.x & 31;
  const T *xr = x + row * D;
  const T *gr = dy + row * D;
  T *dxr = dx + row * D;
  const int64_t packs = D / V;
  const float invD = 1.0f / static_cast<float>(D);
  const float mu = Layer ? mean[row] : 0.0f;
  const float rs = rstd[row];

  float sumG = 0.0f, sumGX = 0.0f;
  for (int64_t p = lane; p < packs; p += 32) {
    float v[V], d[V], w[V];
    loadPack<T, V>(xr + p * V, v);
    loadPack<T, V>(gr + p * V, d);
    loadPack<T, V>(gamma + p * V, w);
#pragma unroll
    for (int i = 0; i < V; ++i) {
      const float g = d[i] * w[i];
      sumG += g;
      sumGX += g * (v[i] - mu) * rs;
    }
  }
  const float meanG = Layer ? warpSum(sumG) * invD : 0.0f;
  const float meanGX = warpSum(sumGX) * invD;
  for (int64_t p = lane; p < packs; p += 32) {
    float v[V], d[V], w[V], o[V];
    loadPack<T, V>(xr + p * V, v);
    loadPack<T, V>(gr + p * V, d);
    loadPack<T, V>(gamma + p * V, w);
#pragma unroll
    for (int i = 0; i < V; ++i)
      o[i] = rs * (d[i] * w[i] - meanG - (v[i] - mu) * rs * meanGX);
    storePack<T, V>(dxr + p * V, o);
  }
}

//===----------------------------------------------------------------------===//
// Column sums for parameter gradients (ADDED into fp32):
//   kLayer: acc1 += dy * (x - mean) * rstd, acc2 += dy   (dgamma, dbeta)
//   kRms:   acc1 += dy * x * rstd                        (dgamma)
//   kSum:   acc2 += dy                                   (bias grad)
// Block (32, 8): a tile of 32 columns, 8 row lanes; one atomicAdd per column
// and block.
//===----------------------------------------------------------------------===//

enum ColumnMode { kLayer, kRms, kSum };
constexpr int kColTile = 32, kColRows = 8;

template <typename T, int Mode>
__global__ void columnGradKernel(const T *__restrict__ x,
                                 const float *__restrict__ mean,
                                 const float *__restrict__ rstd,
                                 const T *__restrict__ dy, float *acc1Out,
                                 float *acc2Out, int64_t N, int64_t D,
                                 int64_t rowsPerBlock) {
  __shared__ float s1[kColRows][kColTile + 1], s2[kColRows][kColTile + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kColTile + tx;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * rowsPerBlock;
  const int64_t r1 = r0 + rowsPerBlock < N ? r0 + rowsPerBlock : N;
  float acc1 = 0.0f, acc2 = 0.0f;
  if (j < D) {
    for (int64_t r = r0 + ty; r < r1; r += kColRows) {
      const float d = toFloat(dy[r * D + j]);
      if (Mode == kLayer) {
        acc1 += d * (toFloat(x[r * D + j]) - mean[r]) * rstd[r];
        acc2 += d;
      } else if (Mode == kRms) {
        acc1 += d * toFloat(x[r * D + j]) * rstd[r];
      } else {
        acc2 += d;
      }
    }
  }
  s1[ty][tx] = acc1;
  s2[ty][tx] = acc2;
  __syncthreads();
  if (ty == 0 && j < D) {
    float t1 = 0.0f, t2 = 0.0f;
#pragma unroll
    for (int i = 0; i < kColRows; ++i) {
      t1 += s1[i][tx];
      t2 += s2[i][tx];
    }
    if (acc1Out)
      atomicAdd(acc1Out + j, t1);
    if (acc2Out)
      atomicAdd(acc2Out + j, t2);
  }
}

template <typename T, int Mode>
void launchColumnGrad(const T *x, const float *mean, const float *rstd,
                      const T *dy, float *acc1, float *acc2, int64_t N,
                      int64_t D, cudaStream_t stream) {
  if (N == 0 || D == 0 || (!acc1 && !acc2))
    return;
  const int64_t colTiles = (D + kColTile - 1) / kColTile;
  // About 8 resident blocks of 256 threads per SM, at least 32 rows each.
  int64_t rowBlocks = (static_cast<int64_t>(smCount()) * 8 + colTiles - 1) /
                      colTiles;
  const int64_t maxRowBlocks = (N + 31) / 32;
  rowBlocks = rowBlocks < maxRowBlocks ? rowBlocks : maxRowBlocks;
  rowBlocks = rowBlocks < 1 ? 1 : (rowBlocks > 65535 ? 65535 : rowBlocks);
  const int64_t rowsPerBlock = (N + rowBlocks - 1) / rowBlocks;
  const dim3 grid(static_cast<unsigned>(colTiles),
                  static_cast<unsigned>(rowBlocks));
  columnGradKernel<T, Mode><<<grid, dim3(kColTile, kColRows), 0, stream>>>(
      x, mean, rstd, dy, acc1, acc2, N, D, rowsPerBlock);
  S1F_CUDA_CHECK_LAUNCH();
}

//===----------------------------------------------------------------------===//
// Rotary embedding: one thread per (token, frequency), looping over the
// batch and heads; the angle is computed once, in double.
//===----------------------------------------------------------------------===//

template <typename T>
__global__ void ropeKernel(const T *x, T *y, int64_t B, int64_t S, int64_t H,
                           int64_t hd, int64_t start, double theta,
                           int64_t rotary, RopeScaling scaling, double sign) {
  const int64_t half = rotary / 2;
  const int64_t total = S * half;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) +
                     threadIdx.x;
       idx < total; idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t s = idx / half, i = idx % half;
    const double angle = static_cast<double>(start + s) *
                         ropeInvFreq(i, rotary, theta, scaling);
    double sn, cs;
    sincos(angle, &sn, &cs);
    const float c = static_cast<float>(scaling.attentionFactor * cs);
    const float sf = static_cast<float>(scaling.attentionFactor * sign * sn);
    for (int64_t b = 0; b < B; ++b) {
      const int64_t rowBase = (b * S + s) * H * hd;
      for (int64_t h = 0; h < H; ++h) {
        const int64_t lo = rowBase + h * hd + scaling.first(i),
                      hi = rowBase + h * hd + scaling.second(i, rotary);
        const float x0 = toFloat(x[lo]), x1 = toFloat(x[hi]); // x may alias y
        y[lo] = fromFloat<T>(x0 * c - x1 * sf);
        y[hi] = fromFloat<T>(x1 * c + x0 * sf);
      }
    }
  }
}

// The dimensions past `rotary` in every head pass through.
template <typename T>
__global__ void ropePassKernel(const T *x, T *y, int64_t rows, int64_t hd,
                               int64_t rotary) {
  const int64_t rest = hd - rotary, total = rows * rest;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) +
                     threadIdx.x;
       idx < total; idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t at = idx / rest * hd + rotary + idx % rest;
    y[at] = x[at];
  }
}

template <typename T>
void launchRope(const T *x, T *y, int64_t B, int64_t S, int64_t H, int64_t hd,
                int64_t start, double theta, int64_t rotary,
                const RopeScaling &scaling, double sign, cudaStream_t stream) {
  if (rotary == 0)
    rotary = hd;
  S1F_CUDA_REQUIRE(B >= 0 && S >= 0 && H >= 0 && hd > 0,
                   "rope: bad shape");
  S1F_CUDA_REQUIRE(hd % 2 == 0,
                   "rope needs an even head_dim, got " + std::to_string(hd));
  S1F_CUDA_REQUIRE(rotary > 0 && rotary <= hd && rotary % 2 == 0,
                   "rope's rotary dimensions must be even and at most "
                   "head_dim " + std::to_string(hd) + ", got " +
                       std::to_string(rotary));
  S1F_CUDA_REQUIRE(start >= 0, "rope start position must be >= 0");
  S1F_CUDA_REQUIRE(theta > 0, "rope theta must be positive");
  if (B == 0 || S == 0 || H == 0)
    return;
  const int block = 128;
  ropeKernel<T><<<gridFor(S * (rotary / 2), block), block, 0, stream>>>(
      x, y, B, S, H, hd, start, theta, rotary, scaling, sign);
  S1F_CUDA_CHECK_LAUNCH();
  if (rotary < hd && x != y) {
    ropePassKernel<T><<<gridFor(B * S * H * (hd - rotary), block), block, 0,
                        stream>>>(x, y, B * S * H, hd, rotary);
    S1F_CUDA_CHECK_LAUNCH();
  }
}

//===----------------------------------------------------------------------===//
// Embeddings.
//===----------------------------------------------------------------------===//

template <typename T, int V>
__global__ void embeddingFwdKernel(const int32_t *__restrict__ ids,
                                   const T *__restrict__ table,
                                   T *__restrict__ out, int64_t N, int64_t vocab,
                                   int64_t D) {
  const int64_t packsPerRow = D / V, total = N * packsPerRow;
  for (int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
       p < total; p += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = p / packsPerRow, c = p % packsPerRow;
    const int32_t id = ids[t];
    Pack<T, V> pk;
    if (id >= 0 && id < vocab) {
      pk = *reinterpret_cast<const Pack<T, V> *>(table + id * D + c * V);
    } else {
#pragma unroll
      for (int i = 0; i < V; ++i)
        pk.v[i] = fromFloat<T>(__int_as_float(0x7fc00000)); // NaN: bad id
    }
    *reinterpret_cast<Pack<T, V> *>(out + t * D + c * V) = pk;
  }
}

template <typename T>
__global__ void embeddingBwdKernel(const int32_t *__restrict__ ids,
                                   const T *__restrict__ dout, float *dtable,
                                   int64_t N, int64_t vocab, int64_t D) {
  const int64_t total = N * D;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
       e < total; e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = e / D, j = e % D;
    const int32_t id = ids[t];
    if (id >= 0 && id < vocab)
      atomicAdd(dtable + id * D + j, toFloat(dout[e]));
  }
}

template <typename T, int V>
__global__ void posEmbeddingFwdKernel(const T *__restrict__ table,
                                      T *__restrict__ out, int64_t B, int64_t S,
                                      int64_t start, int64_t D) {
  const int64_t packsPerRow = D / V, total = B * S * packsPerRow;
  for (int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
       p < total; p += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = p / packsPerRow, c = p % packsPerRow;
    const int64_t s = row % S;
    *reinterpret_cast<Pack<T, V> *>(out + row * D + c * V) =
        *reinterpret_cast<const Pack<T, V> *>(table + (start + s) * D + c * V);
  }
}

template <typename T>
__global__ void posEmbeddingBwdKernel(const T *__restrict__ dout,
                                      float *__restrict__ dtable, int64_t B,
                                      int64_t S, int64_t start, int64_t D) {
  const int64_t total = S * D;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
       e < total; e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float sum = 0.0f;
    for (int64_t b = 0; b < B; ++b)
      sum += toFloat(dout[b * S * D + e]);
    dtable[start * D + e] += sum; // one thread per element: no atomics
  }
}

void checkRows(int64_t N, int64_t D, const char *what) {
  S1F_CUDA_REQUIRE(N >= 0 && D > 0, std::string(what) + ": bad shape N=" +
                                        std::to_string(N) +
                                        " D=" + std::to_string(D));
}

void checkPositions(int64_t B, int64_t S, int64_t start, int64_t Pmax,
                    int64_t D) {
  S1F_CUDA_REQUIRE(B >= 0 && S >= 0 && D > 0, "pos_embedding: bad shape");
  S1F_CUDA_REQUIRE(start >= 0 && start + S <= Pmax,
                   "positions [" + std::to_string(start) + ", " +
                       std::to_string(start + S) +
                       ") exceed the table of " + std::to_string(Pmax));
}

/// Whether rows of D elements can be walked in 16-byte packs.
template <typename T>
bool vectorRows(int64_t D, std::initializer_list<const void *> ptrs) {
  if (D % kVec<T> != 0)
    return false;
  for (const void *p : ptrs)
    if (p && !aligned16(p))
      return false;
  return true;
}

template <typename T, bool Layer>
void launchNormFwd(const T *x, const T *gamma, const T *beta, T *y,
                   float *mean, float *rstd, int64_t N, int64_t D, float eps,
                   cudaStream_t stream) {
  checkRows(N, D, Layer ? "layer_norm_fwd" : "rms_norm_fwd");
  if (N == 0)
    return;
  const unsigned grid = ceilDiv(N, kRowsPerBlock);
  const int block = kRowsPerBlock * 32;
  if (vectorRows<T>(D, {x, gamma, beta, y}))
    normFwdKernel<T, kVec<T>, Layer><<<grid, block, 0, stream>>>(
        x, gamma, beta, y, mean, rstd, N, D, eps);
  else
    normFwdKernel<T, 1, Layer><<<grid, block, 0, stream>>>(
        x, gamma, beta, y, mean, rstd, N, D, eps);
  S1F_CUDA_CHECK_LAUNCH();
}

template <typename T, bool Layer>
void launchNormBwd(const T *x, const T *gamma, const float *mean,
                   const float *rstd, const T *dy, T *dx, float *dgamma,
                   float *dbeta, int64_t N, int64_t D, cudaStream_t stream) {
  checkRows(N, D, Layer ? "layer_norm_bwd" : "rms_norm_bwd");
  if (N == 0)
    return;
  // Parameter gradients first: they read dy, which dx may overwrite.
  if (Layer)
    launchColumnGrad<T, kLayer>(x, mean, rstd, dy, dgamma, dbeta, N, D,
                                stream);
  else
    launchColumnGrad<T, kRms>(x, mean, rstd, dy, dgamma, nullptr, N, D,
                              stream);
  if (dx) {
    const unsigned grid = ceilDiv(N, kRowsPerBlock);
    const int block = kRowsPerBlock * 32;
    if (vectorRows<T>(D, {x, gamma, dy, dx}))
      normBwdDxKernel<T, kVec<T>, Layer><<<grid, block, 0, stream>>>(
          x, gamma, mean, rstd, dy, dx, N, D);
    else
      normBwdDxKernel<T, 1, Layer><<<grid, block, 0, stream>>>(
          x, gamma, mean, rstd, dy, dx, N, D);
    S1F_CUDA_CHECK_LAUNCH();
  }
}

} // namespace
} // namespace detail

using namespace detail;

//===----------------------------------------------------------------------===//
// Public entry points.
//===----------------------------------------------------------------------===//

template <typename T>
void layer_norm_fwd(const T *x, const T *gamma, const T *beta, T *y,
                    float *mean, float *rstd, int64_t N, int64_t D, float eps,
                    cudaStream_t stream) {
  launchNormFwd<T, true>(x, gamma, beta, y, mean, rstd, N, D, eps, stream);
}

template <typename T>
void layer_norm_bwd(const T *x, const T *gamma, const float *mean,
                    const float *rstd, const T *dy, T *dx, float *dgamma,
                    float *dbeta, int64_t N, int64_t D, cudaStream_t stream) {
  launchNormBwd<T, true>(x, gamma, mean, rstd, dy, dx, dgamma, dbeta, N, D,
                         stream);
}

template <typename T>
void rms_norm_fwd(const T *x, const T *gamma, T *y, float *rstd, int64_t N,
                  int64_t D, float eps, cudaStream_t stream) {
  launchNormFwd<T, false>(x, gamma, nullptr, y, nullptr, rstd, N, D, eps,
                          stream);
}

template <typename T>
void rms_norm_bwd(const T *x, const T *gamma, const float *rstd, const T *dy,
                  T *dx, float *dgamma, int64_t N, int64_t D,
                  cudaStream_t stream) {
  launchNormBwd<T, false>(x, gamma, nullptr, rstd, dy, dx, dgamma, nullptr, N,
                          D, stream);
}

template <typename T>
void bias_grad(const T *dy, float *db, int64_t N, int64_t cols,
               cudaStream_t stream) {
  checkRows(N, cols, "bias_grad");
  launchColumnGrad<T, kSum>(nullptr, nullptr, nullptr, dy, nullptr, db, N,
                            cols, stream);
}

template <typename T>
void rope_fwd(const T *x, T *y, int64_t B, int64_t S, int64_t H, int64_t hd,
              int64_t start, double theta, int64_t rotary,
              const RopeScaling &scaling, cudaStream_t stream) {
  launchRope(x, y, B, S, H, hd, start, theta, rotary, scaling, 1.0, stream);
}

template <typename T>
void rope_bwd(const T *dy, T *dx, int64_t B, int64_t S, int64_t H, int64_t hd,
              int64_t start, double theta, int64_t rotary,
              const RopeScaling &scaling, cudaStream_t stream) {
  launchRope(dy, dx, B, S, H, hd, start, theta, rotary, scaling, -1.0,
             stream);
}

template <typename T>
void embedding_fwd(const int32_t *ids, const T *table, T *out, int64_t N,
                   int64_t V, int64_t D, cudaStream_t stream) {
  checkRows(N, D, "embedding_fwd");
  S1F_CUDA_REQUIRE(V > 0, "embedding_fwd: empty vocabulary");
  if (N == 0)
    return;
  const int block = 256;
  if (vectorRows<T>(D, {table, out})) {
    embeddingFwdKernel<T, kVec<T>>
        <<<gridFor(N * (D / kVec<T>), block), block, 0, stream>>>(
            ids, table, out, N, V, D);
  } else {
    embeddingFwdKernel<T, 1><<<gridFor(N * D, block), block, 0, stream>>>(
        ids, table, out, N, V, D);
  }
  S1F_CUDA_CHECK_LAUNCH();
}

template <typename T>
void embedding_bwd(const int32_t *ids, const T *dout, float *dtable, int64_t N,
                   int64_t V, int64_t D, cudaStream_t stream) {
  checkRows(N, D, "embedding_bwd");
  S1F_CUDA_REQUIRE(V > 0, "embedding_bwd: empty vocabulary");
  if (N == 0)
    return;
  const int block = 256;
  embeddingBwdKernel<T><<<gridFor(N * D, block), block, 0, stream>>>(
      ids, dout, dtable, N, V, D);
  S1F_CUDA_CHECK_LAUNCH();
}

template <typename T>
void pos_embedding_fwd(const T *table, T *out, int64_t B, int64_t S,
                       int64_t start, int64_t Pmax, int64_t D,
                       cudaStream_t stream) {
  checkPositions(B, S, start, Pmax, D);
  if (B == 0 || S == 0)
    return;
  const int block = 256;
  if (vectorRows<T>(D, {table, out})) {
    posEmbeddingFwdKernel<T, kVec<T>>
        <<<gridFor(B * S * (D / kVec<T>), block), block, 0, stream>>>(
            table, out, B, S, start, D);
  } else {
    posEmbeddingFwdKernel<T, 1><<<gridFor(B * S * D, block), block, 0,
                                  stream>>>(table, out, B, S, start, D);
  }
  S1F_CUDA_CHECK_LAUNCH();
}

template <typename T>
void pos_embedding_bwd(const T *dout, float *dtable, int64_t B, int64_t S,
                       int64_t start, int64_t Pmax, int64_t D,
                       cudaStream_t stream) {
  checkPositions(B, S, start, Pmax, D);
  if (B == 0 || S == 0)
    return;
  const int block = 256;
  posEmbeddingBwdKernel<T><<<gridFor(S * D, block), block, 0, stream>>>(
      dout, dtable, B, S, start, D);
  S1F_CUDA_CHECK_LAUNCH();
}

#define S1F_INSTANTIATE(T)                                                     \
  template void layer_norm_fwd<T>(const T *, const T *, const T *, T *,        \
                                  float *, float *, int64_t, int64_t, float,   \
                                  cudaStream_t);                               \
  template void layer_norm_bwd<T>(const T *, const T *, const float *,         \
                                  const float *, const T *, T *, float *,      \
                                  float *, int64_t, int64_t, cudaStream_t);    \
  template void rms_norm_fwd<T>(const T *, const T *, T *, float *, int64_t,   \
                                int64_t, float, cudaStream_t);                 \
  template void rms_norm_bwd<T>(const T *, const T *, const float *,           \
                                const T *, T *, float *, int64_t, int64_t,     \
                                cudaStream_t);                                 \
  template void bias_grad<T>(const T *, float *, int64_t, int64_t,             \
                             cudaStream_t);                                    \
  template void rope_fwd<T>(const T *, T *, int64_t, int64_t, int64_t,         \
                            int64_t, int64_t, double, int64_t,                 \
                            const RopeScaling &, cudaStream_t);                \
  template void rope_bwd<T>(const T *, T *, int64_t, int64_t, int64_t,         \
                            int64_t, int64_t, double, int64_t,                 \
                            const RopeScaling &, cudaStream_t);                \
  template void embedding_fwd<T>(const int32_t *, const T *, T *, int64_t,     \
                                 int64_t, int64_t, cudaStream_t);              \
  template void embedding_bwd<T>(const int32_t *, const T *, float *,          \
                                 int64_t, int64_t, int64_t, cudaStream_t);     \
  template void pos_embedding_fwd<T>(const T *, T *, int64_t, int64_t,         \
                                     int64_t, int64_t, int64_t,                \
                                     cudaStream_t);                            \
  template void pos_embedding_bwd<T>(const T *, float *, int64_t, int64_t,     \
                                     int64_t, int64_t, int64_t, cudaStream_t);
S1F_INSTANTIATE(float)
S1F_INSTANTIATE(bf16)

} // namespace s1f::rt::cuda
