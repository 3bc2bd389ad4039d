//===- AttentionTest.cpp - KV-prefix attention and the Seq1F1B order ------===//

#include "TestUtil.h"

#include "seq1f1b/runtime/cpu_kernels.h"

#include <limits>
#include <numeric>

using namespace s1f::rt::cpu;
using namespace s1f::rt::cpu::test;

namespace {

/// Softmax attention written out, O(len * prefix) memory.
Vec naiveAttention(const Vec &q, const Vec &kc, const Vec &vc,
                   const AttentionDims &d) {
  const int64_t hd = d.head_dim, QC = d.heads * hd, C = d.kv_heads * hd;
  Vec out(d.batch * d.len * QC);
  for (int64_t b = 0; b < d.batch; ++b)
    for (int64_t h = 0; h < d.heads; ++h) {
      const int64_t g = h / (d.heads / d.kv_heads);
      for (int64_t i = 0; i < d.len; ++i) {
        // Keys [first, start + i]: all of them, or the window's.
        const int64_t keys = d.start + i + 1;
        const int64_t first =
            d.window ? std::max<int64_t>(0, keys - d.window) : 0;
        Vec p(keys, -std::numeric_limits<double>::infinity());
        for (int64_t j = first; j < keys; ++j) {
          double s = 0;
          for (int64_t c = 0; c < hd; ++c)
            s += q[(b * d.len + i) * QC + h * hd + c] *
                 kc[(b * d.max_seq + j) * C + g * hd + c];
          s *= d.scale > 0 ? d.scale : 1 / std::sqrt(double(hd));
          p[j] = d.softcap > 0 ? d.softcap * std::tanh(s / d.softcap) : s;
        }
        const double m = *std::max_element(p.begin(), p.end());
        double z = 0;
        for (double &x : p)
          z += (x = std::exp(x - m));
        for (int64_t j = 0; j < keys; ++j)
          for (int64_t c = 0; c < hd; ++c)
            out[(b * d.len + i) * QC + h * hd + c] +=
                p[j] / z * vc[(b * d.max_seq + j) * C + g * hd + c];
      }
    }
  return out;
}

// --- One chunk over a prefix: forward vs naive, backward vs differences
// -------

struct ChunkCase {
  int64_t heads, kvHeads, start, len, keyTile, window = 0;
  double scale = 0, softcap = 0; // Gemma 2
};

class AttentionChunkTest : public ::testing::TestWithParam<ChunkCase> {};

TEST_P(AttentionChunkTest, ForwardAndGradientsOverThePrefix) {
  const ChunkCase c = GetParam();
  AttentionDims d;
  d.batch = 2;
  d.heads = c.heads;
  d.kv_heads = c.kvHeads;
  d.head_dim = 4;
  d.max_seq = c.start + c.len + 2; // rows past the chunk must stay untouched
  d.start = c.start;
  d.len = c.len;
  d.key_tile = c.keyTile;
  d.window = c.window;
  d.scale = c.scale;
  d.softcap = c.softcap;
  const int64_t qSize = d.batch * d.len * d.heads * d.head_dim;
  const int64_t cacheSize = d.batch * d.max_seq * d.kv_heads * d.head_dim;

  Rng rng(70 + c.start + 10 * c.keyTile);
  // The cache holds the earlier chunks' K/V [0, start) and this chunk's rows.
  Vec q = rng.uniform(qSize, -2, 2), kc = rng.uniform(cacheSize, -2, 2),
      vc = rng.uniform(cacheSize);
  const Vec R = rng.uniform(qSize);
  Vec ws(attention_workspace_size(d)), lse(d.batch * d.heads * d.len);
  auto forward = [&] {
    Vec out(qSize);
    attention_fwd(q.data(), kc.data(), vc.data(), out.data(), lse.data(),
                  ws.data(), d);
    return out;
  };
  const Vec out = forward();
  expectClose(out, naiveAttention(q, kc, vc, d), "out", 1e-12, 1e-13);

  auto loss = [&] { return dot(R, forward()); };
  const Vec dk0 = rng.uniform(cacheSize), dv0 = rng.uniform(cacheSize);
  Vec dq(qSize), dk = dk0, dv = dv0;
  attention_bwd(q.data(), kc.data(), vc.data(), out.data(), R.data(),
                lse.data(), dq.data(), dk.data(), dv.data(), ws.data(), d);
  expectGradient(q, dq, loss, "q");
  expectGradient(kc, minus(dk, dk0), loss, "kcache");
  expectGradient(vc, minus(dv, dv0), loss, "vcache");
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, AttentionChunkTest,
    ::testing::Values(ChunkCase{4, 2, 0, 5, 2},   // GQA, first chunk
                      ChunkCase{4, 2, 4, 3, 2},   // GQA over a prefix
                      ChunkCase{4, 2, 4, 3, 128}, // one tile
                      ChunkCase{2, 2, 3, 4, 3},   // multi-head
                      ChunkCase{3, 1, 5, 2, 4},   // multi-query
                      // Sliding windows: inside a tile, across tiles (the
                      // first ones skipped), of one key, and wider than the
                      // prefix.
                      ChunkCase{4, 2, 4, 3, 2, 3}, ChunkCase{4, 2, 9, 4, 2, 3},
                      ChunkCase{2, 2, 3, 4, 3, 1},
                      ChunkCase{4, 2, 4, 3, 128, 20},
                      // Gemma 2: its own score scale, soft-capped scores
                      // (the cap at 1.5 bites: scores reach ~8), across
                      // tiles and in a window.
                      ChunkCase{4, 2, 4, 3, 2, 0, 0.3, 1.5},
                      ChunkCase{4, 2, 9, 4, 2, 3, 0, 0.8},
                      ChunkCase{2, 2, 3, 4, 128, 0, 0.7, 0}));

TEST(Attention, RejectsBadShapes) {
  AttentionDims d;
  d.batch = 1;
  d.heads = 3;
  d.kv_heads = 2;
  d.head_dim = 2;
  d.max_seq = 4;
  d.len = 4;
  std::vector<float> buf(64), ws(attention_workspace_size(d)), lse(16);
  EXPECT_THROW(attention_fwd(buf.data(), buf.data(), buf.data(), buf.data(),
                             lse.data(), ws.data(), d),
               std::invalid_argument); // 3 heads over 2 kv heads
  d.kv_heads = 1;
  d.start = 1; // chunk [1, 5) past max_seq 4
  EXPECT_THROW(
      kv_cache_write(buf.data(), buf.data(), buf.data(), buf.data(), d),
      std::invalid_argument);
}

// --- Seq1F1B: chunked forwards ascending, backwards descending
// ----------------

struct Attn {
  Vec out, dq, dk, dv;
};

/// Runs one micro-batch of B sequences through attention chunk by chunk, as a
/// Seq1F1B stage does: every forward writes its K/V into the cache and reads
/// the prefix in place; backwards run chunk-descending, add dK/dV of the prefix
/// into the gradient buffer, and a chunk gathers its own dK/dV right after its
/// backward (all later chunks have run by then).
template <typename T>
Attn runChunked(const Vec &q, const Vec &k, const Vec &v, const Vec &dout,
                AttentionDims base, const std::vector<int64_t> &lens) {
  const int64_t S = std::accumulate(lens.begin(), lens.end(), int64_t(0));
  const int64_t B = base.batch, QC = base.heads * base.head_dim,
                C = base.kv_heads * base.head_dim;
  const T nan = std::numeric_limits<T>::quiet_NaN();
  base.max_seq = S + 3;
  // NaN everywhere not yet written: reading past the prefix poisons results.
  std::vector<T> kc(B * base.max_seq * C, nan), vc(kc.size(), nan);
  std::vector<T> dkc(kc.size(), T(0)), dvc(kc.size(), T(0));
  std::vector<AttentionDims> dims;
  int64_t start = 0;
  for (int64_t len : lens) {
    AttentionDims d = base;
    d.start = start;
    d.len = len;
    dims.push_back(d);
    start += len;
  }

  // Rows [a, a+len) of each sequence of a [B, S, width] tensor.
  auto slice = [&](const Vec &x, const AttentionDims &d, int64_t width) {
    std::vector<T> r(B * d.len * width);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < d.len * width; ++i)
        r[b * d.len * width + i] = T(x[(b * S + d.start) * width + i]);
    return r;
  };
  auto unslice = [&](const std::vector<T> &r, Vec &x, const AttentionDims &d,
                     int64_t width) {
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < d.len * width; ++i)
        x[(b * S + d.start) * width + i] = r[b * d.len * width + i];
  };

  Attn res{Vec(B * S * QC), Vec(B * S * QC), Vec(B * S * C), Vec(B * S * C)};
  std::vector<std::vector<T>> outs, lses;
  for (const AttentionDims &d : dims) {
    const std::vector<T> qc = slice(q, d, QC), kch = slice(k, d, C),
                         vch = slice(v, d, C);
    std::vector<T> out(qc.size()), lse(B * d.heads * d.len);
    std::vector<T> ws(attention_workspace_size(d), nan);
    kv_cache_write(kch.data(), vch.data(), kc.data(), vc.data(), d);
    attention_fwd(qc.data(), kc.data(), vc.data(), out.data(), lse.data(),
                  ws.data(), d);
    unslice(out, res.out, d, QC);
    outs.push_back(out);
    lses.push_back(lse);
  }
  for (size_t c = dims.size(); c-- > 0;) {
    const AttentionDims &d = dims[c];
    const std::vector<T> qc = slice(q, d, QC), doc = slice(dout, d, QC);
    std::vector<T> dq(qc.size()), dk(B * d.len * C), dv(dk.size());
    std::vector<T> ws(attention_workspace_size(d), nan);
    attention_bwd(qc.data(), kc.data(), vc.data(), outs[c].data(), doc.data(),
                  lses[c].data(), dq.data(), dkc.data(), dvc.data(), ws.data(),
                  d);
    kv_cache_write_bwd(dkc.data(), dvc.data(), dk.data(), dv.data(), d);
    unslice(dq, res.dq, d, QC);
    unslice(dk, res.dk, d, C);
    unslice(dv, res.dv, d, C);
  }
  return res;
}

struct SplitCase {
  int64_t heads, kvHeads, keyTile;
  std::vector<int64_t> lens;
  int64_t window = 0;
};

class Seq1F1BAttentionTest : public ::testing::TestWithParam<SplitCase> {};

TEST_P(Seq1F1BAttentionTest, ChunkedEqualsFullSequence) {
  const SplitCase c = GetParam();
  AttentionDims base;
  base.batch = 2;
  base.heads = c.heads;
  base.kv_heads = c.kvHeads;
  base.head_dim = 4;
  base.key_tile = c.keyTile;
  base.window = c.window;
  const int64_t S = std::accumulate(c.lens.begin(), c.lens.end(), int64_t(0));
  const int64_t QC = c.heads * base.head_dim, C = c.kvHeads * base.head_dim;
  Rng rng(80 + c.keyTile);
  const Vec q = rng.uniform(2 * S * QC, -2, 2),
            k = rng.uniform(2 * S * C, -2, 2), v = rng.uniform(2 * S * C),
            dout = rng.uniform(2 * S * QC);

  const Attn full = runChunked<double>(q, k, v, dout, base, {S});
  const Attn chunked = runChunked<double>(q, k, v, dout, base, c.lens);
  expectClose(chunked.out, full.out, "out", 1e-12, 1e-13);
  expectClose(chunked.dq, full.dq, "dq", 1e-12, 1e-13);
  expectClose(chunked.dk, full.dk, "dk", 1e-12, 1e-13);
  expectClose(chunked.dv, full.dv, "dv", 1e-12, 1e-13);

  // The fp32 kernels follow the same path to within fp32 rounding.
  const Attn f32 = runChunked<float>(q, k, v, dout, base, c.lens);
  EXPECT_LT(relMaxError(f32.out, full.out), 1e-5);
  EXPECT_LT(relMaxError(f32.dq, full.dq), 1e-5);
  EXPECT_LT(relMaxError(f32.dk, full.dk), 1e-5);
  EXPECT_LT(relMaxError(f32.dv, full.dv), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Splits, Seq1F1BAttentionTest,
                         ::testing::Values(SplitCase{4, 2, 3, {5, 4, 4}},
                                           SplitCase{4, 2, 4, {1, 7, 5}},
                                           SplitCase{4, 2, 1, {1, 7, 5}},
                                           SplitCase{4, 2, 128, {4, 4, 5}},
                                           SplitCase{2, 2, 2, {6, 7}},
                                           SplitCase{3, 1, 3, {2, 2, 2, 2, 5}},
                                           SplitCase{4, 2, 2, {5, 4, 4}, 3},
                                           SplitCase{4, 2, 3, {1, 7, 5}, 6}));

} // namespace
