//===- attention.cu - Attention over the KV prefix on tensor cores --------===//
//
// FlashAttention-2 style kernels for one sequence chunk attending to its KV
// prefix (attention.h has the contract). Three kernels:
//
//  * forward: one block of 4 warps per 64 queries of one head; each warp owns
//    16 query rows, keeps Q in registers and the output in fp32 registers,
//    and walks the prefix in 64-key tiles with an online softmax (base 2);
//  * backward dK/dV: one block per 64 keys of one kv head, looping over the
//    query heads of its group and over 32-query tiles; owning its keys
//    outright, it reads, adds and writes them without atomics (deterministic);
//  * backward dQ, by default in the dK/dV kernel: each block adds its keys'
//    share dS·K into an fp32 accumulator with atomics (5 matrix products in
//    all, as FlashAttention-2); or, deterministic, in a kernel of its own,
//    one block per 64 queries walking 32-key tiles, which recomputes scores
//    and probabilities from the saved log-sum-exp (7 products, no atomics).
//
// Matrix products: mma.sync m16n8k16 bf16 -> fp32. Tiles are staged
// row-major in shared memory with rows padded by 8 elements, which makes
// every fragment load conflict-free; operands needed transposed (V in P·V,
// K in dS·K, Q and dO in the dK/dV products) come out of the same tiles
// through ldmatrix.trans, the others through plain ldmatrix.
//
// The causal mask is bottom-right aligned: query row i (absolute start + i)
// sees keys 0..start+i. Rows past the chunk (i >= len) and keys past the
// prefix (>= start + len) are zero-filled and masked, never stored.
//
//===----------------------------------------------------------------------===//

#include "seq1f1b/runtime/cuda/attention.h"

#include "common.cuh"
#ifdef SEQ1F1B_HAVE_CUDNN
#include "attention_cudnn.h"
#endif

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace s1f::rt::cuda {
namespace {

using detail::ceilDiv;

constexpr int kThreads = 128; // 4 warps
constexpr float kLog2e = 1.4426950408889634f;

//===----------------------------------------------------------------------===//
// Tensor-core fragments (PTX ISA, mma.m16n8k16 with .bf16): lane = 4*g + t.
//  A (16x16, row): reg0 (g, 2t..2t+1), reg1 (g+8, 2t..), reg2 (g, 2t+8..),
//                  reg3 (g+8, 2t+8..)
//  B (16x8, col):  reg0 (k 2t..2t+1, n g), reg1 (k 2t+8.., n g)
//  C (16x8, f32):  c0,c1 (g, 2t..2t+1), c2,c3 (g+8, 2t..2t+1)
// So an fp32 C tile pair (n-tiles 2j, 2j+1) packs straight into an A
// fragment covering k = 16j..16j+15 (how P and dS feed the next product).
//===----------------------------------------------------------------------===//

__device__ __forceinline__ void mma(float (&c)[4], const uint32_t (&a)[4],
                                    uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
               "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0),
                 "r"(b1));
}

__device__ __forceinline__ uint32_t ld32(const bf16 *p) {
  return *reinterpret_cast<const uint32_t *>(p);
}

__device__ __forceinline__ uint32_t pack(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t *>(&v);
}

/// Loads four 8x8 bf16 matrices from shared memory with one ldmatrix: lane
/// l passes the address of row l & 7 of matrix l >> 3 and receives, of each
/// matrix, row g's elements 2t and 2t+1 (with Trans: column g's rows 2t and
/// 2t+1) -- exactly an A or B fragment's register.
template <bool Trans>
__device__ __forceinline__ void ldmatrix4(uint32_t (&r)[4], const bf16 *row) {
  const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(row));
  if constexpr (Trans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 "
                 "{%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 "
                 "{%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

/// The A fragment of rows [r0, r0+16), columns [c0, c0+16) of a row-major
/// shared matrix with row stride `ld` (matrices: rows r0 / r0+8 at column
/// c0, then the same rows at c0+8).
__device__ __forceinline__ void loadA(uint32_t (&a)[4], const bf16 *m, int ld,
                                      int r0, int c0, int lane) {
  ldmatrix4<false>(a, m + (r0 + (lane & 15)) * ld + c0 + (lane >> 4) * 8);
}

/// c0 += A · B[:, n0..n0+8) and c1 += A · B[:, n0+8..n0+16), where the
/// k x n operand B is stored TRANSPOSED, row-major [n][k], in shared memory:
/// element (k, n) = m[(n0 + n) * ld + k0 + k] (K in Q·Kᵀ, Q and dO as the
/// right-hand operands of the transposed products).
__device__ __forceinline__ void mmaRows(float (&c0)[4], float (&c1)[4],
                                        const uint32_t (&a)[4], const bf16 *m,
                                        int ld, int n0, int k0, int lane) {
  uint32_t b[4];
  ldmatrix4<false>(b, m + (n0 + (lane & 7) + ((lane >> 4) << 3)) * ld + k0 +
                          ((lane >> 3) & 1) * 8);
  mma(c0, a, b[0], b[1]);
  mma(c1, a, b[2], b[3]);
}

/// c0 += A · B[:, n0..n0+8) and c1 += A · B[:, n0+8..n0+16), where B (k x n)
/// is stored row-major in shared memory: element (k, n) = m[(k0 + k) * ld +
/// n] (V in P·V, K in dS·K, Q and dO in the dK/dV products). ldmatrix.trans
/// hands each lane the column pairs the B fragment wants: lanes 0-15 address
/// rows k0..k0+15 at column n0, lanes 16-31 at n0 + 8.
__device__ __forceinline__ void mmaCols(float (&c0)[4], float (&c1)[4],
                                        const uint32_t (&a)[4], const bf16 *m,
                                        int ld, int k0, int n0, int lane) {
  uint32_t b[4];
  ldmatrix4<true>(b, m + (k0 + (lane & 15)) * ld + n0 + (lane >> 4) * 8);
  mma(c0, a, b[0], b[1]);
  mma(c1, a, b[2], b[3]);
}

/// The A fragment of k-slice j (16 columns) from an fp32 C tile row pair.
__device__ __forceinline__ void packA(uint32_t (&a)[4], const float (&c0)[4],
                                      const float (&c1)[4]) {
  a[0] = pack(c0[0], c0[1]);
  a[1] = pack(c0[2], c0[3]);
  a[2] = pack(c1[0], c1[1]);
  a[3] = pack(c1[2], c1[3]);
}

using Vec8 = uint4; // 8 bf16, one 16-byte access

//===----------------------------------------------------------------------===//
// Tile loads. Kernels take kStages = 1 (load, wait, compute) or 2 (cp.async
// double buffering: the next tile streams in while this one is computed).
//===----------------------------------------------------------------------===//

/// Copies `rows` x D of a global matrix (row stride `gld`; rows from `valid`
/// on read as zeros) into shared memory, row stride `sld`. Consecutive
/// threads take consecutive 16-byte pieces of a row: coalesced. Async: the
/// copy is issued with cp.async (zero-fill through a source size of 0) and
/// completes at the next cpAsyncWait.
template <int D, bool Async>
__device__ __forceinline__ void loadTile(const bf16 *src, int64_t gld,
                                         int rows, int valid, bf16 *dst,
                                         int sld) {
  constexpr int kVecs = D / 8;
  for (int idx = threadIdx.x; idx < rows * kVecs; idx += kThreads) {
    const int r = idx / kVecs, c = (idx % kVecs) * 8;
    const bool ok = r < valid;
    if constexpr (Async) {
      const bf16 *from = src + (ok ? r : 0) * gld + c; // never out of bounds
      const uint32_t to =
          static_cast<uint32_t>(__cvta_generic_to_shared(dst + r * sld + c));
      asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(to),
                   "l"(from), "r"(ok ? 16 : 0));
    } else {
      Vec8 v = make_uint4(0, 0, 0, 0);
      if (ok)
        v = *reinterpret_cast<const Vec8 *>(src + r * gld + c);
      *reinterpret_cast<Vec8 *>(dst + r * sld + c) = v;
    }
  }
}

/// Ends a group of cp.async copies.
__device__ __forceinline__ void cpAsyncCommit() {
  asm volatile("cp.async.commit_group;\n" ::);
}

/// Waits until at most N groups of this thread's copies are in flight.
template <int N> __device__ __forceinline__ void cpAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

/// The software pipeline over tiles 0..count-1 shared by the kernels:
/// load(i, stage) issues tile i into buffer `stage`, compute(stage) uses it.
template <int Stages, typename Load, typename Compute>
__device__ __forceinline__ void pipeline(int count, Load load,
                                         Compute compute) {
  if constexpr (Stages == 2) {
    load(0, 0);
    cpAsyncCommit();
  }
  for (int i = 0; i < count; ++i) {
    if constexpr (Stages == 1) {
      load(i, 0);
    } else if (i + 1 < count) {
      load(i + 1, (i + 1) & 1);
      cpAsyncCommit();
      cpAsyncWait<1>();
    } else {
      cpAsyncWait<0>();
    }
    __syncthreads(); // tile i is in shared memory for every thread
    compute(Stages == 1 ? 0 : i & 1);
    __syncthreads(); // its buffer may be refilled
  }
}

struct Params {
  const bf16 *q, *k, *v, *out, *dout;
  const float *lse;
  bf16 *o, *dq, *dk, *dv;
  float *lseOut, *dkbuf, *dvbuf, *delta, *dqAccum;
  int64_t qStride, oStride, dqStride, dkvStride, kvStride;
  int heads, kvHeads, maxSeq, start, len;
  float scaleLog2; // softmax scale * log2(e)
  float scale;
};

/// Row stride of the shared-memory tiles: padded by 8 elements, so the 8
/// rows an ldmatrix phase or a fragment load touches hit distinct banks.
template <int D> constexpr int kRow = D + 8;

/// K and V rows [j*Bc, (j+1)*Bc) of one kv head, as the forward and dQ
/// kernels stream them.
template <int D, int Bc> struct KvTile {
  bf16 k[Bc * kRow<D>], v[Bc * kRow<D>];

  /// Loads tile j of the prefix that starts at kv (row stride p.kvStride);
  /// rows from `kend` on read as zeros.
  template <bool Async>
  __device__ __forceinline__ void load(const Params &p, int64_t kvOff, int j,
                                       int kend) {
    const int64_t off = kvOff + int64_t(j) * Bc * p.kvStride;
    loadTile<D, Async>(p.k + off, p.kvStride, Bc, kend - j * Bc, k, kRow<D>);
    loadTile<D, Async>(p.v + off, p.kvStride, Bc, kend - j * Bc, v, kRow<D>);
  }
};

/// A fragments of this warp's 16 rows [row0, row0+16) of a [len, stride]
/// bf16 matrix (columns 0..D); rows from `len` on are zeros.
template <int D>
__device__ __forceinline__ void loadRowFragments(uint32_t (&f)[D / 16][4],
                                                 const bf16 *base,
                                                 int64_t stride, int row0,
                                                 int len, int g, int t) {
#pragma unroll
  for (int ks = 0; ks < D / 16; ++ks)
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int row = row0 + g + ((r & 1) ? 8 : 0);
      const int col = ks * 16 + 2 * t + ((r & 2) ? 8 : 0);
      f[ks][r] = row < len ? ld32(base + int64_t(row) * stride + col) : 0u;
    }
}

//===----------------------------------------------------------------------===//
// Forward: block = 64 queries of one head, warp = 16 rows, 64-key tiles.
//===----------------------------------------------------------------------===//

template <int D> struct Fwd64 {
  static constexpr int Br = 64, Bc = 64;
  using Tile = KvTile<D, Bc>;
};

template <int D, int Stages>
__global__ void __launch_bounds__(kThreads) fwdKernel(Params p) {
  using Tile = typename Fwd64<D>::Tile;
  constexpr int Br = Fwd64<D>::Br, Bc = Fwd64<D>::Bc, RS = kRow<D>;
  extern __shared__ __align__(16) unsigned char smemRaw[];
  Tile *tiles = reinterpret_cast<Tile *>(smemRaw);

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int g = lane >> 2, t = lane & 3;
  const int qb = gridDim.x - 1 - blockIdx.x; // longest rows first
  const int h = blockIdx.y, b = blockIdx.z;
  const int kvh = h / (p.heads / p.kvHeads);
  const int row0 = qb * Br + warp * 16; // first chunk row of this warp
  const int kend = p.start + p.len;

  // Q fragments in registers (rows past the chunk are zeros).
  uint32_t qf[D / 16][4];
  loadRowFragments<D>(qf, p.q + int64_t(b) * p.len * p.qStride + h * D,
                      p.qStride, row0, p.len, g, t);
  // Absolute positions of this thread's two rows (clamped into the chunk so
  // that padding rows stay finite).
  const int pos[2] = {p.start + min(row0 + g, p.len - 1),
                      p.start + min(row0 + g + 8, p.len - 1)};

  float o[D / 8][4] = {};
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};

  const int blockLast = p.start + min(qb * Br + Br - 1, p.len - 1);
  const int64_t kvOff = int64_t(b) * p.maxSeq * p.kvStride + kvh * D;
  auto load = [&](int j, int stage) {
    tiles[stage].template load<Stages == 2>(p, kvOff, j, kend);
  };
  int j = 0; // the tile being computed
  auto compute = [&](int stage) {
    const bf16 *sK = tiles[stage].k, *sV = tiles[stage].v;
    const int key0 = j++ * Bc;
    float s[Bc / 8][4];
#pragma unroll
    for (int nt = 0; nt < Bc / 8; ++nt)
      s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks)
#pragma unroll
      for (int nt = 0; nt < Bc / 8; nt += 2)
        mmaRows(s[nt], s[nt + 1], qf[ks], sK, RS, nt * 8, ks * 16, lane);
    const bool masked = key0 + Bc - 1 > p.start + qb * Br;
#pragma unroll
    for (int nt = 0; nt < Bc / 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = key0 + nt * 8 + 2 * t + (e & 1);
        s[nt][e] = (masked && key > pos[e >> 1]) ? -INFINITY
                                                 : s[nt][e] * p.scaleLog2;
      }
#pragma unroll
    for (int rh = 0; rh < 2; ++rh) {
      float mx = -INFINITY;
#pragma unroll
      for (int nt = 0; nt < Bc / 8; ++nt)
        mx = fmaxf(mx, fmaxf(s[nt][2 * rh], s[nt][2 * rh + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float mNew = fmaxf(m[rh], mx); // finite: key 0 is in tile 0
      const float alpha = exp2f(m[rh] - mNew);
      m[rh] = mNew;
      float sum = 0.f;
#pragma unroll
      for (int nt = 0; nt < Bc / 8; ++nt) {
        s[nt][2 * rh] = exp2f(s[nt][2 * rh] - mNew);
        s[nt][2 * rh + 1] = exp2f(s[nt][2 * rh + 1] - mNew);
        sum += s[nt][2 * rh] + s[nt][2 * rh + 1];
      }
      l[rh] = l[rh] * alpha + sum; // this thread's partial row sum
#pragma unroll
      for (int dt = 0; dt < D / 8; ++dt) {
        o[dt][2 * rh] *= alpha;
        o[dt][2 * rh + 1] *= alpha;
      }
    }
#pragma unroll
    for (int ks = 0; ks < Bc / 16; ++ks) {
      uint32_t a[4];
      packA(a, s[2 * ks], s[2 * ks + 1]);
#pragma unroll
      for (int dt = 0; dt < D / 8; dt += 2)
        mmaCols(o[dt], o[dt + 1], a, sV, RS, ks * 16, dt * 8, lane);
    }
  };
  pipeline<Stages>(blockLast / Bc + 1, load, compute);

  bf16 *obase = p.o + int64_t(b) * p.len * p.oStride + h * D;
#pragma unroll
  for (int rh = 0; rh < 2; ++rh) {
    float sum = l[rh];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    const int row = row0 + g + 8 * rh;
    if (row >= p.len)
      continue;
    const float inv = 1.f / sum;
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt)
      *reinterpret_cast<uint32_t *>(obase + int64_t(row) * p.oStride + dt * 8 +
                                    2 * t) =
          pack(o[dt][2 * rh] * inv, o[dt][2 * rh + 1] * inv);
    if (t == 0)
      p.lseOut[(int64_t(b) * p.heads + h) * p.len + row] =
          (m[rh] + log2f(sum)) / kLog2e;
  }
}

//===----------------------------------------------------------------------===//
// Backward: delta = rowsum(dO ∘ O), one warp per (row, head).
//===----------------------------------------------------------------------===//

template <int D> __global__ void deltaKernel(Params p, int64_t rows) {
  const int64_t w = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (w >= rows * p.heads)
    return;
  const int h = int(w % p.heads);
  const int64_t bi = w / p.heads; // b * len + i
  const bf16 *o = p.out + bi * p.oStride + h * D;
  const bf16 *d = p.dout + bi * p.oStride + h * D;
  float acc = 0.f;
  for (int c = lane; c < D; c += 32)
    acc += __bfloat162float(o[c]) * __bfloat162float(d[c]);
  acc = detail::warpSum(acc);
  if (lane == 0) {
    const int64_t b = bi / p.len, i = bi % p.len;
    p.delta[(b * p.heads + h) * p.len + i] = acc;
  }
}

//===----------------------------------------------------------------------===//
// Backward dK/dV: block = 64 keys of one kv head; warp = 16 of those keys.
// Per 32-query tile (of every query head of the group): Sᵀ = K Qᵀ,
// Pᵀ = exp2(Sᵀ·c − lse₂), dPᵀ = V dOᵀ, dSᵀ = Pᵀ ∘ (dPᵀ − δ);
// dV += Pᵀ dO, dK += dSᵀ Q.
//===----------------------------------------------------------------------===//

template <int D> struct DkvTile {
  static constexpr int Bq = 32;
  bf16 q[Bq * kRow<D>], dout[Bq * kRow<D>];
  float lse2[Bq], delta[Bq];
};
template <int D> struct DkvSmem {
  static constexpr int Bk = 64, DsRow = Bk + 8;
  bf16 k[Bk * kRow<D>], v[Bk * kRow<D>];
  DkvTile<D> tile[2];
  bf16 ds[DkvTile<D>::Bq * DsRow]; ///< dS of the tile (AtomicDq only)
};

/// AtomicDq: also adds the tile's dQ = dS K into the fp32 accumulator
/// p.dqAccum with atomics (FlashAttention-2's scheme: 5 matrix products in
/// all instead of 7 with dqKernel), for dqConvertKernel to scale and round.
template <int D, int Stages, bool AtomicDq>
__global__ void __launch_bounds__(kThreads) dkvKernel(Params p) {
  using S = DkvSmem<D>;
  constexpr int Bk = S::Bk, Bq = DkvTile<D>::Bq, RS = kRow<D>;
  extern __shared__ __align__(16) unsigned char smemRaw[];
  S &sm = *reinterpret_cast<S *>(smemRaw);

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int g = lane >> 2, t = lane & 3;
  const int kb = blockIdx.x, kvh = blockIdx.y, b = blockIdx.z;
  const int group = p.heads / p.kvHeads;
  const int kend = p.start + p.len;
  const int key0 = kb * Bk;
  const int wkey = warp * 16; // this warp's first key within the block

  const int64_t kvOff = int64_t(b) * p.maxSeq * p.kvStride + kvh * D;
  loadTile<D, false>(p.k + kvOff + int64_t(key0) * p.kvStride, p.kvStride,
                     Bk, kend - key0, sm.k, RS);
  loadTile<D, false>(p.v + kvOff + int64_t(key0) * p.kvStride, p.kvStride,
                     Bk, kend - key0, sm.v, RS);

  float dk[D / 8][4] = {}, dv[D / 8][4] = {};
  // Chunk rows that see a key of this block: absolute position >= key0.
  const int firstRow = max(0, key0 - p.start) / Bq * Bq;
  const int rowTiles = (p.len - firstRow + Bq - 1) / Bq;

  // Tiles i = 0 .. group*rowTiles-1 walk the query heads of the group.
  auto tileHead = [&](int i) { return kvh * group + i / rowTiles; };
  auto tileRow = [&](int i) { return firstRow + (i % rowTiles) * Bq; };
  auto load = [&](int i, int stage) {
    const int h = tileHead(i), row0 = tileRow(i);
    DkvTile<D> &tl = sm.tile[stage];
    loadTile<D, Stages == 2>(p.q + (int64_t(b) * p.len + row0) * p.qStride +
                                 h * D,
                             p.qStride, Bq, p.len - row0, tl.q, RS);
    loadTile<D, Stages == 2>(p.dout + (int64_t(b) * p.len + row0) * p.oStride +
                                 h * D,
                             p.oStride, Bq, p.len - row0, tl.dout, RS);
    if (threadIdx.x < Bq) { // rows past the chunk are masked below
      const int64_t stat = (int64_t(b) * p.heads + h) * p.len +
                           min(row0 + int(threadIdx.x), p.len - 1);
      tl.lse2[threadIdx.x] = p.lse[stat] * kLog2e;
      tl.delta[threadIdx.x] = p.delta[stat];
    }
  };
  int i = 0;
  auto compute = [&](int stage) {
    const DkvTile<D> &tl = sm.tile[stage];
    const int row0 = tileRow(i++);
    float st[Bq / 8][4], dpt[Bq / 8][4];
#pragma unroll
    for (int nt = 0; nt < Bq / 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        st[nt][e] = dpt[nt][e] = 0.f;
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
      uint32_t ak[4], av[4];
      loadA(ak, sm.k, RS, wkey, ks * 16, lane);
      loadA(av, sm.v, RS, wkey, ks * 16, lane);
#pragma unroll
      for (int nt = 0; nt < Bq / 8; nt += 2) {
        mmaRows(st[nt], st[nt + 1], ak, tl.q, RS, nt * 8, ks * 16, lane);
        mmaRows(dpt[nt], dpt[nt + 1], av, tl.dout, RS, nt * 8, ks * 16, lane);
      }
    }
    // st -> Pᵀ, dpt -> dSᵀ. Element (key, query): key = key0 + wkey + g
    // (+8 for e >= 2), query row = row0 + nt*8 + 2t + (e & 1).
#pragma unroll
    for (int nt = 0; nt < Bq / 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = key0 + wkey + g + ((e & 2) ? 8 : 0);
        const int qi = nt * 8 + 2 * t + (e & 1);
        const bool visible =
            row0 + qi < p.len && key <= p.start + row0 + qi;
        const float pr =
            visible ? exp2f(st[nt][e] * p.scaleLog2 - tl.lse2[qi]) : 0.f;
        st[nt][e] = pr;
        dpt[nt][e] = pr * (dpt[nt][e] - tl.delta[qi]);
      }
    if constexpr (AtomicDq) { // dSᵀ -> dS [query][key] in shared memory
#pragma unroll
      for (int nt = 0; nt < Bq / 8; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          sm.ds[(nt * 8 + 2 * t + (e & 1)) * S::DsRow + wkey + g +
                ((e & 2) ? 8 : 0)] = __float2bfloat16_rn(dpt[nt][e]);
    }
#pragma unroll
    for (int ks = 0; ks < Bq / 16; ++ks) {
      uint32_t ap[4], ads[4];
      packA(ap, st[2 * ks], st[2 * ks + 1]);
      packA(ads, dpt[2 * ks], dpt[2 * ks + 1]);
#pragma unroll
      for (int dt = 0; dt < D / 8; dt += 2) {
        mmaCols(dv[dt], dv[dt + 1], ap, tl.dout, RS, ks * 16, dt * 8, lane);
        mmaCols(dk[dt], dk[dt + 1], ads, tl.q, RS, ks * 16, dt * 8, lane);
      }
    }
    if constexpr (AtomicDq) {
      // dQ[Bq, D] += dS[Bq, Bk] K[Bk, D]: warp w takes 16 query rows
      // ((w & 1) * 16) and half the columns ((w >> 1) * D/2).
      __syncthreads(); // every warp's dS is in
      const int qr = (warp & 1) * 16, d0 = (warp >> 1) * (D / 2);
      float acc[D / 16][4] = {};
#pragma unroll
      for (int ks = 0; ks < Bk / 16; ++ks) {
        uint32_t a[4];
        loadA(a, sm.ds, S::DsRow, qr, ks * 16, lane);
#pragma unroll
        for (int dt = 0; dt < D / 16; dt += 2)
          mmaCols(acc[dt], acc[dt + 1], a, sm.k, RS, ks * 16, d0 + dt * 8,
                  lane);
      }
      const int h = tileHead(i - 1);
#pragma unroll
      for (int rh = 0; rh < 2; ++rh) {
        const int row = row0 + qr + g + 8 * rh;
        if (row >= p.len)
          continue;
        float *dst = p.dqAccum + (int64_t(b) * p.len + row) * p.heads * D +
                     h * D + d0 + 2 * t;
#pragma unroll
        for (int dt = 0; dt < D / 16; ++dt)
          atomicAdd(reinterpret_cast<float2 *>(dst + dt * 8),
                    make_float2(acc[dt][2 * rh], acc[dt][2 * rh + 1]));
      }
    }
  };
  pipeline<Stages>(group * rowTiles, load, compute);

  // Keys before the chunk: add into the fp32 buffers. The chunk's own keys:
  // buffer (later chunks' part) + ours, written as bf16.
#pragma unroll
  for (int rh = 0; rh < 2; ++rh) {
    const int key = key0 + wkey + g + 8 * rh;
    if (key >= kend)
      continue;
    const int64_t bufRow = kvOff + int64_t(key) * p.kvStride;
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt) {
      const int col = dt * 8 + 2 * t;
      float2 gk = make_float2(dk[dt][2 * rh] * p.scale,
                              dk[dt][2 * rh + 1] * p.scale);
      float2 gv = make_float2(dv[dt][2 * rh], dv[dt][2 * rh + 1]);
      if (p.dkbuf) {
        const float2 bk =
            *reinterpret_cast<const float2 *>(p.dkbuf + bufRow + col);
        const float2 bv =
            *reinterpret_cast<const float2 *>(p.dvbuf + bufRow + col);
        gk.x += bk.x, gk.y += bk.y, gv.x += bv.x, gv.y += bv.y;
      }
      if (key < p.start) {
        *reinterpret_cast<float2 *>(p.dkbuf + bufRow + col) = gk;
        *reinterpret_cast<float2 *>(p.dvbuf + bufRow + col) = gv;
      } else {
        const int64_t r = (int64_t(b) * p.len + key - p.start) * p.dkvStride +
                          kvh * D + col;
        *reinterpret_cast<uint32_t *>(p.dk + r) = pack(gk.x, gk.y);
        *reinterpret_cast<uint32_t *>(p.dv + r) = pack(gv.x, gv.y);
      }
    }
  }
}

//===----------------------------------------------------------------------===//
// Backward dQ: block = 64 queries of one head; warp = 16 rows. Per 32-key
// tile: S = Q Kᵀ, P, dP = dO Vᵀ, dS = P ∘ (dP − δ), dQ += dS K.
//===----------------------------------------------------------------------===//

template <int D> struct Dq32 {
  static constexpr int Br = 64, Bc = 32;
  using Tile = KvTile<D, Bc>;
};

template <int D, int Stages>
__global__ void __launch_bounds__(kThreads) dqKernel(Params p) {
  using Tile = typename Dq32<D>::Tile;
  constexpr int Br = Dq32<D>::Br, Bc = Dq32<D>::Bc, RS = kRow<D>;
  extern __shared__ __align__(16) unsigned char smemRaw[];
  Tile *tiles = reinterpret_cast<Tile *>(smemRaw);

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int g = lane >> 2, t = lane & 3;
  const int qb = gridDim.x - 1 - blockIdx.x;
  const int h = blockIdx.y, b = blockIdx.z;
  const int kvh = h / (p.heads / p.kvHeads);
  const int row0 = qb * Br + warp * 16;
  const int kend = p.start + p.len;

  uint32_t qf[D / 16][4], df[D / 16][4];
  loadRowFragments<D>(qf, p.q + int64_t(b) * p.len * p.qStride + h * D,
                      p.qStride, row0, p.len, g, t);
  loadRowFragments<D>(df, p.dout + int64_t(b) * p.len * p.oStride + h * D,
                      p.oStride, row0, p.len, g, t);
  const int64_t statOff = (int64_t(b) * p.heads + h) * p.len;
  int pos[2];
  float lse2[2], delta[2];
#pragma unroll
  for (int rh = 0; rh < 2; ++rh) {
    const int row = row0 + g + 8 * rh;
    const bool valid = row < p.len;
    pos[rh] = valid ? p.start + row : -1; // padding rows see nothing
    lse2[rh] = valid ? p.lse[statOff + row] * kLog2e : 0.f;
    delta[rh] = valid ? p.delta[statOff + row] : 0.f;
  }

  float dq[D / 8][4] = {};
  const int blockLast = p.start + min(qb * Br + Br - 1, p.len - 1);
  const int64_t kvOff = int64_t(b) * p.maxSeq * p.kvStride + kvh * D;
  auto load = [&](int j, int stage) {
    tiles[stage].template load<Stages == 2>(p, kvOff, j, kend);
  };
  int j = 0;
  auto compute = [&](int stage) {
    const bf16 *sK = tiles[stage].k, *sV = tiles[stage].v;
    const int key0 = j++ * Bc;
    float s[Bc / 8][4], dp[Bc / 8][4];
#pragma unroll
    for (int nt = 0; nt < Bc / 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        s[nt][e] = dp[nt][e] = 0.f;
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks)
#pragma unroll
      for (int nt = 0; nt < Bc / 8; nt += 2) {
        mmaRows(s[nt], s[nt + 1], qf[ks], sK, RS, nt * 8, ks * 16, lane);
        mmaRows(dp[nt], dp[nt + 1], df[ks], sV, RS, nt * 8, ks * 16, lane);
      }
#pragma unroll
    for (int nt = 0; nt < Bc / 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int rh = e >> 1;
        const int key = key0 + nt * 8 + 2 * t + (e & 1);
        const float pr = key <= pos[rh]
                             ? exp2f(s[nt][e] * p.scaleLog2 - lse2[rh])
                             : 0.f;
        dp[nt][e] = pr * (dp[nt][e] - delta[rh]);
      }
#pragma unroll
    for (int ks = 0; ks < Bc / 16; ++ks) {
      uint32_t a[4];
      packA(a, dp[2 * ks], dp[2 * ks + 1]);
#pragma unroll
      for (int dt = 0; dt < D / 8; dt += 2)
        mmaCols(dq[dt], dq[dt + 1], a, sK, RS, ks * 16, dt * 8, lane);
    }
  };
  pipeline<Stages>(blockLast / Bc + 1, load, compute);

  bf16 *dqbase = p.dq + int64_t(b) * p.len * p.dqStride + h * D;
#pragma unroll
  for (int rh = 0; rh < 2; ++rh) {
    const int row = row0 + g + 8 * rh;
    if (row >= p.len)
      continue;
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt)
      *reinterpret_cast<uint32_t *>(dqbase + int64_t(row) * p.dqStride +
                                    dt * 8 + 2 * t) =
          pack(dq[dt][2 * rh] * p.scale, dq[dt][2 * rh + 1] * p.scale);
  }
}

/// dq [B, len, heads*D] (row stride dqStride) = scale * dqAccum (fp32,
/// packed), after the atomic backward.
template <int D> __global__ void dqConvertKernel(Params p, int64_t n) {
  const int64_t qw = int64_t(p.heads) * D;
  for (int64_t i = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * 2; i < n;
       i += int64_t(gridDim.x) * blockDim.x * 2) {
    const float2 v = *reinterpret_cast<const float2 *>(p.dqAccum + i);
    *reinterpret_cast<uint32_t *>(p.dq + (i / qw) * p.dqStride + i % qw) =
        pack(v.x * p.scale, v.y * p.scale);
  }
}

//===----------------------------------------------------------------------===//
// Host side.
//===----------------------------------------------------------------------===//

#define REQUIRE(cond, msg) S1F_CUDA_REQUIRE(cond, std::string("attention: ") + (msg))

void requireAligned(const void *ptr, const char *what) {
  REQUIRE(ptr == nullptr || detail::aligned16(ptr),
          std::string(what) + " must be 16-byte aligned");
}

Params makeParams(const cpu::AttentionDims &d, const AttentionStrides &s) {
  REQUIRE(d.batch > 0 && d.heads > 0 && d.kv_heads > 0 && d.len > 0,
          "batch, heads, kv_heads and len must be positive");
  REQUIRE(d.heads % d.kv_heads == 0, "heads must be a multiple of kv_heads");
  REQUIRE(d.head_dim == 64 || d.head_dim == 128,
          "head_dim must be 64 or 128, got " + std::to_string(d.head_dim));
  REQUIRE(d.start >= 0 && d.start + d.len <= d.max_seq,
          "the chunk [start, start+len) must lie within max_seq");
  REQUIRE(d.max_seq < (int64_t(1) << 30), "max_seq must be below 2^30");
  REQUIRE(d.window == 0, "sliding windows run on the fp32 and CPU kernels "
                         "only, not these");
  REQUIRE(d.scale == 0 && d.softcap == 0,
          "rescaled or soft-capped scores (Gemma 2) run on the CPU kernels "
          "only, not these");
  Params p{};
  const int64_t qw = d.heads * d.head_dim, kvw = d.kv_heads * d.head_dim;
  p.qStride = s.q ? s.q : qw;
  p.oStride = s.out ? s.out : qw;
  p.dqStride = s.dq ? s.dq : qw;
  p.dkvStride = s.dkv ? s.dkv : kvw;
  p.kvStride = kvw;
  for (int64_t st : {p.qStride, p.oStride, p.dqStride, p.dkvStride})
    REQUIRE(st % 8 == 0, "row strides must be multiples of 8 elements");
  REQUIRE(p.qStride >= qw && p.oStride >= qw && p.dqStride >= qw &&
              p.dkvStride >= kvw,
          "a row stride is smaller than the row");
  p.heads = int(d.heads);
  p.kvHeads = int(d.kv_heads);
  p.maxSeq = int(d.max_seq);
  p.start = int(d.start);
  p.len = int(d.len);
  p.scale = float(1.0 / std::sqrt(double(d.head_dim)));
  p.scaleLog2 = p.scale * kLog2e;
  return p;
}

/// Pipeline depth of the kernels: 2 (cp.async double buffering) unless
/// S1F_ATTENTION_STAGES=1 asks for plain loads (a debugging and measuring
/// knob: both are tested).
int stages() {
  const char *env = std::getenv("S1F_ATTENTION_STAGES");
  return env && std::string(env) == "1" ? 1 : 2;
}

/// The backward's dQ: by default added from the dK/dV kernel with fp32
/// atomics (FlashAttention-2's way; 4% faster on an H200, docs/cuda.md);
/// S1F_ATTENTION_BWD=deterministic computes it in dqKernel instead, which
/// recomputes the probabilities but gives bit-identical results run to run.
bool atomicDq() {
  const char *env = std::getenv("S1F_ATTENTION_BWD");
  return !(env && std::string(env) == "deterministic");
}

/// fp32 elements before the dQ accumulator in the backward's workspace: the
/// delta rows, rounded up to 16 bytes.
int64_t dqAccumOffset(const cpu::AttentionDims &d) {
  return (d.batch * d.heads * d.len + 3) / 4 * 4;
}

/// Launches `Kernel` with `smem` bytes of dynamic shared memory, raising the
/// kernel's limit past the default 48 KiB first (on every call: the setting
/// is per device, and costs a microsecond next to a millisecond kernel).
template <auto Kernel>
void launch(dim3 grid, size_t smem, cudaStream_t stream, const Params &p) {
  S1F_CUDA_CHECK(cudaFuncSetAttribute(
      Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  Kernel<<<grid, kThreads, smem, stream>>>(p);
}

template <int D, int Stages>
void launchFwd(const Params &p, const cpu::AttentionDims &d,
               cudaStream_t stream) {
  const dim3 grid(ceilDiv(d.len, Fwd64<D>::Br), unsigned(d.heads),
                  unsigned(d.batch));
  launch<fwdKernel<D, Stages>>(grid, Stages * sizeof(typename Fwd64<D>::Tile),
                               stream, p);
  S1F_CUDA_CHECK_LAUNCH();
}

template <int D, int Stages>
void launchBwd(const Params &p, const cpu::AttentionDims &d,
               cudaStream_t stream) {
  const int64_t rows = d.batch * d.len;
  deltaKernel<D><<<ceilDiv(rows * d.heads * 32, 256), 256, 0, stream>>>(p, rows);
  S1F_CUDA_CHECK_LAUNCH();

  const dim3 kvGrid(ceilDiv(d.start + d.len, DkvSmem<D>::Bk),
                    unsigned(d.kv_heads), unsigned(d.batch));
  if (atomicDq()) {
    const int64_t n = d.batch * d.len * d.heads * D;
    S1F_CUDA_CHECK(
        cudaMemsetAsync(p.dqAccum, 0, size_t(n) * sizeof(float), stream));
    launch<dkvKernel<D, Stages, true>>(kvGrid, sizeof(DkvSmem<D>), stream, p);
    S1F_CUDA_CHECK_LAUNCH();
    dqConvertKernel<D><<<detail::gridFor(n / 2, 256), 256, 0, stream>>>(p, n);
    S1F_CUDA_CHECK_LAUNCH();
    return;
  }
  launch<dkvKernel<D, Stages, false>>(kvGrid, sizeof(DkvSmem<D>), stream, p);
  S1F_CUDA_CHECK_LAUNCH();

  const dim3 qGrid(ceilDiv(d.len, Dq32<D>::Br), unsigned(d.heads),
                   unsigned(d.batch));
  launch<dqKernel<D, Stages>>(qGrid, Stages * sizeof(typename Dq32<D>::Tile),
                              stream, p);
  S1F_CUDA_CHECK_LAUNCH();
}

/// Calls F<D, Stages>::run for the runtime head_dim and pipeline depth.
template <template <int, int> class F, typename... Args>
void dispatch(int64_t headDim, Args &&...args) {
  const bool two = stages() == 2;
  if (headDim == 64)
    two ? F<64, 2>::run(args...) : F<64, 1>::run(args...);
  else
    two ? F<128, 2>::run(args...) : F<128, 1>::run(args...);
}
template <int D, int S> struct Fwd {
  static void run(const Params &p, const cpu::AttentionDims &d,
                  cudaStream_t st) {
    launchFwd<D, S>(p, d, st);
  }
};
template <int D, int S> struct Bwd {
  static void run(const Params &p, const cpu::AttentionDims &d,
                  cudaStream_t st) {
    launchBwd<D, S>(p, d, st);
  }
};

/// The row strides with the packed defaults filled in.
[[maybe_unused]] AttentionStrides resolved(const Params &p) {
  return {p.qStride, p.oStride, p.dqStride, p.dkvStride};
}

/// Whether attention_* runs on cuDNN; `split` says which of its two ways.
bool useCudnn(bool &split) {
  const AttentionEngine e = attention_engine();
  split = e == AttentionEngine::CudnnSplit;
  return e != AttentionEngine::Own;
}

[[noreturn, maybe_unused]] void noCudnn() {
  throw std::runtime_error("attention (cudnn engine): " +
                           cudnn_unavailable_reason());
}

} // namespace

AttentionEngine attention_engine() {
  const char *env = std::getenv("S1F_ATTENTION_ENGINE");
  const std::string v = env ? env : "";
  if (v.empty()) { // the faster engine that runs here (docs/benchmarks.md)
    static const AttentionEngine fastest = cudnn_unavailable_reason().empty()
                                               ? AttentionEngine::CudnnSplit
                                               : AttentionEngine::Own;
    return fastest;
  }
  if (v == "own")
    return AttentionEngine::Own;
  if (v == "cudnn")
    return AttentionEngine::Cudnn;
  if (v == "cudnn-split")
    return AttentionEngine::CudnnSplit;
  throw std::invalid_argument("attention: S1F_ATTENTION_ENGINE must be 'own', "
                              "'cudnn' or 'cudnn-split', got '" +
                              v + "'");
}

const char *attention_engine_name(AttentionEngine e) {
  switch (e) {
  case AttentionEngine::Own:
    return "own";
  case AttentionEngine::Cudnn:
    return "cudnn";
  case AttentionEngine::CudnnSplit:
    return "cudnn-split";
  }
  return "?";
}

std::string cudnn_unavailable_reason() {
#ifdef SEQ1F1B_HAVE_CUDNN
  return detail::cudnnUnavailableReason();
#else
  return "this build has no cuDNN (cudnn_graph.h was not found when it was "
         "configured)";
#endif
}

std::string cudnn_device_json() {
#ifdef SEQ1F1B_HAVE_CUDNN
  return detail::cudnnDeviceJson();
#else
  noCudnn();
#endif
}

void attention_fwd(const bf16 *q, const bf16 *kcache, const bf16 *vcache,
                   bf16 *out, float *lse, const cpu::AttentionDims &d,
                   const AttentionStrides &s, cudaStream_t stream) {
  Params p = makeParams(d, s);
  REQUIRE(q && kcache && vcache && out && lse, "null pointer argument");
  for (auto [ptr, what] : {std::pair<const void *, const char *>{q, "q"},
                           {kcache, "kcache"}, {vcache, "vcache"}, {out, "out"}})
    requireAligned(ptr, what);
  if (bool split; useCudnn(split)) {
#ifdef SEQ1F1B_HAVE_CUDNN // (throws, saying why, where cuDNN cannot run)
    return detail::cudnnAttentionFwd(q, kcache, vcache, out, lse, d,
                                     resolved(p), split, stream);
#else
    noCudnn();
#endif
  }
  p.q = q, p.k = kcache, p.v = vcache, p.o = out, p.lseOut = lse;
  dispatch<Fwd>(d.head_dim, p, d, stream);
}

int64_t attention_bwd_workspace_size(const cpu::AttentionDims &d,
                                     const AttentionStrides &s) {
  [[maybe_unused]] const Params p = makeParams(d, s); // checks d and s
  if (bool split; useCudnn(split)) {
#ifdef SEQ1F1B_HAVE_CUDNN // (throws, saying why, where cuDNN cannot run)
    return detail::cudnnAttentionBwdWorkspace(d, resolved(p), split);
#else
    noCudnn();
#endif
  }
  return dqAccumOffset(d) + d.batch * d.len * d.heads * d.head_dim;
}

void attention_bwd(const bf16 *q, const bf16 *kcache, const bf16 *vcache,
                   const bf16 *out, const bf16 *dout, const float *lse,
                   bf16 *dq, bf16 *dk, bf16 *dv, float *dkbuf, float *dvbuf,
                   float *workspace, const cpu::AttentionDims &d,
                   const AttentionStrides &s, cudaStream_t stream) {
  Params p = makeParams(d, s);
  REQUIRE(q && kcache && vcache && out && dout && lse && dq && dk && dv &&
              workspace,
          "null pointer argument");
  REQUIRE((dkbuf == nullptr) == (dvbuf == nullptr),
          "dkbuf and dvbuf must both be given or both be nullptr");
  REQUIRE(dkbuf || d.start == 0,
          "a chunk with start > 0 needs the KV-gradient buffers");
  for (auto [ptr, what] : {std::pair<const void *, const char *>{q, "q"},
                           {kcache, "kcache"}, {vcache, "vcache"},
                           {out, "out"}, {dout, "dout"}, {dq, "dq"},
                           {dk, "dk"}, {dv, "dv"}, {dkbuf, "dkbuf"},
                           {dvbuf, "dvbuf"}})
    requireAligned(ptr, what);
  if (bool split; useCudnn(split)) {
#ifdef SEQ1F1B_HAVE_CUDNN // (throws, saying why, where cuDNN cannot run)
    return detail::cudnnAttentionBwd(q, kcache, vcache, out, dout, lse, dq, dk,
                                     dv, dkbuf, dvbuf, workspace, d,
                                     resolved(p), split, stream);
#else
    noCudnn();
#endif
  }
  p.q = q, p.k = kcache, p.v = vcache, p.out = out, p.dout = dout;
  p.lse = lse, p.dq = dq, p.dk = dk, p.dv = dv;
  p.dkbuf = dkbuf, p.dvbuf = dvbuf, p.delta = workspace;
  p.dqAccum = workspace + dqAccumOffset(d);
  dispatch<Bwd>(d.head_dim, p, d, stream);
}

} // namespace s1f::rt::cuda
