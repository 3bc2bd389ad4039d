//===- layer_bench.cpp - One GPT layer: whole sequence vs. Seq1F1B chunks -===//
//
// Times the forward and backward of one GPT decoder layer (bf16 activations
// and weights, fp32 weight gradients, batch 1, heads of 128, MLP 4d) on S
// tokens, as one sequence (N = 1) and cut into N chunks the way Seq1F1B runs
// them: the forwards of chunks 0..N-1, then the backwards of N-1..0. The K
// and V GEMMs of every chunk write rows [start, start + len) of a
// whole-sequence KV cache and attention reads the prefix there in place; the
// backward adds each chunk's share of the earlier keys' gradients into fp32
// KV-gradient buffers. Nothing is copied between chunks.
//
//   x -> ln1 -> Q, K, V (one W_qkv [3d, d]) -> attention -> O -> + x -> ln2
//     -> fc1 [4d, d] + GELU (one GEMM) -> fc2 [d, 4d] -> + residual
//
// Chunk lengths: the paper's FLOPs-balanced split (paperChunkSplit, chunk
// ends at multiples of 64). The 7B 32k 4-chunk case also runs the even split;
// the per-chunk times of both splits fit the measured cost model
// (fitChunkCost), whose balanced split (balanceChunks) runs last: the
// profile-balanced split, refitted with its own times and re-run (up to 3
// rounds) while its spread is above 3%. Each split's spread is max/min - 1
// of its per-chunk forward+backward times.
//
// Model FLOPs (matrix products only; the causal mask halves the score
// matrix; backward = 2 x forward):
//   layer of S tokens:               3 * (24 d^2 S + 2 d S^2)
//   chunk [s, e) of len = e - s:     3 * (24 d^2 len + 4 d (len e - len^2/2))
// 24 d^2 per token: QKV 6, O 2, MLP 16; 4 d per causal query-key pair: QK^T
// and PV. The chunks of a split sum to the layer's count, so chunked runs are
// credited the same work; TFLOP/s = model FLOPs / time.
//
// Timing: CUDA events on one stream. One warm-up run, then the median of
// --reps runs of the whole layer (all chunks), and per chunk the medians of
// its forward and of its backward (events between consecutive steps).
//
//   s1f-layer-bench [--json FILE] [--reps N] [--filter SUBSTR] [--small]
//                   [--attention own|cudnn|cudnn-split]  (default: as
//                   S1F_ATTENTION_ENGINE: cudnn-split where cuDNN runs)
//   s1f-layer-bench --cases-json FILE      (lists the cases; no GPU needed)
//   s1f-layer-bench --samples-json FILE    (also writes the profile case's
//                                           chunk times for the split pass)
//
//===----------------------------------------------------------------------===//

#include "bench_util.h"

#include "seq1f1b/Schedule/Partition.h"
#include "seq1f1b/runtime/cuda/attention.h"
#include "seq1f1b/runtime/cuda/check.h"
#include "seq1f1b/runtime/cuda/gemm.h"
#include "seq1f1b/runtime/cuda/kernels.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using namespace s1f::rt::cuda;
using s1f::bench::Buf;
using s1f::bench::DeviceOutOfMemory;
using s1f::bench::fillRandom;
using AttentionDims = s1f::rt::cpu::AttentionDims;
namespace sched = seq1f1b::schedule;

namespace {

constexpr int64_t kHeadDim = 128;
constexpr int kAlign = 64;
constexpr float kEps = 1e-5f;
constexpr const char *kProg = "s1f-layer-bench";

//===----------------------------------------------------------------------===//
// Options and cases (no CUDA here: --cases-json runs without a GPU).
//===----------------------------------------------------------------------===//

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Options {
  std::string json, filter, casesJson, samplesJson, attention; // "": the default
  int reps = 5;
  bool small = false, help = false;
};

void printUsage(FILE *f) {
  std::fprintf(
      f,
      "usage: %s [--json FILE] [--reps N] [--filter SUBSTR] [--small]\n"
      "       %s --cases-json FILE [--filter SUBSTR] [--small]\n"
      "\n"
      "Times one GPT decoder layer forward+backward on a whole sequence and\n"
      "on Seq1F1B sequence chunks (bench/gpu/layer_bench.cpp).\n"
      "\n"
      "  --json FILE        write the results as JSON\n"
      "  --reps N           timed runs per case, median reported (default 5)\n"
      "  --filter SUBSTR    only the cases whose name contains SUBSTR\n"
      "  --small            tiny cases (d=512, 4 heads, S=2048) for a smoke "
      "run\n"
      "  --attention ENGINE own (our kernels), cudnn (cuDNN's fused\n"
      "                     attention) or cudnn-split (cuDNN, a chunk's own\n"
      "                     and prefix keys apart), as S1F_ATTENTION_ENGINE;\n"
      "                     default: that variable's engine, unset\n"
      "                     cudnn-split where cuDNN runs, else own\n"
      "  --cases-json FILE  write the cases and their chunk lengths, run "
      "nothing\n"
      "  --samples-json FILE  write the profile case's measured chunk times\n"
      "                     for seq1f1b-opt --s1f-split-sequence=\"policy=\n"
      "                     profile profile=FILE\"\n"
      "  --help             this text\n"
      "\n"
      "Exit status: 0 success, 1 runtime error, 2 bad options.\n",
      kProg, kProg);
}

Options parseArgs(int argc, char **argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc)
        throw UsageError(a + " needs a value");
      return argv[++i];
    };
    if (a == "--json") {
      o.json = value();
    } else if (a == "--reps") {
      const std::string v = value();
      char *end = nullptr;
      errno = 0;
      const long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end || errno || n < 1 || n > 1000)
        throw UsageError("--reps needs an integer in [1, 1000], got '" + v +
                         "'");
      o.reps = static_cast<int>(n);
    } else if (a == "--filter") {
      o.filter = value();
    } else if (a == "--cases-json") {
      o.casesJson = value();
    } else if (a == "--samples-json") {
      o.samplesJson = value();
    } else if (a == "--attention") {
      o.attention = value();
      if (o.attention != "own" && o.attention != "cudnn" &&
          o.attention != "cudnn-split")
        throw UsageError(
            "--attention must be 'own', 'cudnn' or 'cudnn-split', got '" +
            o.attention + "'");
    } else if (a == "--small") {
      o.small = true;
    } else if (a == "--help" || a == "-h") {
      o.help = true;
    } else {
      throw UsageError("unknown option '" + a + "'");
    }
  }
  return o;
}

struct Case {
  std::string name;
  int64_t d = 0, heads = 0, seq = 0;
  std::vector<int> chunks; ///< lengths, summing to seq
};

sched::TransformerShape shapeOf(int64_t d, int64_t heads) {
  sched::TransformerShape s;
  s.hidden = static_cast<int>(d);
  s.heads = static_cast<int>(heads);
  s.headDim = static_cast<int>(kHeadDim);
  s.ffn = static_cast<int>(4 * d);
  s.layers = 1;
  return s;
}

/// The case whose flops and even splits feed the profile-balanced split.
std::string profileCase(bool small) {
  return small ? "small-2k-n4" : "7b-32k-n4";
}

std::vector<Case> buildCases(bool small) {
  std::vector<Case> cases;
  auto add = [&](const char *model, int64_t d, int64_t heads, int64_t S,
                 int N) {
    Case c;
    c.name = std::string(model) + "-" + std::to_string(S / 1024) + "k-n" +
             std::to_string(N);
    c.d = d;
    c.heads = heads;
    c.seq = S;
    auto split = sched::paperChunkSplit(static_cast<int>(S), N,
                                        shapeOf(d, heads), kAlign);
    if (!split)
      throw std::runtime_error("paperChunkSplit for " + c.name + ": " +
                               split.error);
    c.chunks = *split;
    cases.push_back(c);
    if (c.name == profileCase(small)) {
      c.name += "-even";
      c.chunks.assign(N, static_cast<int>(S / N));
      cases.push_back(c);
    }
  };
  if (small) {
    add("small", 512, 4, 2048, 1);
    add("small", 512, 4, 2048, 4);
    return cases;
  }
  add("7b", 4096, 32, 32768, 1);
  add("7b", 4096, 32, 32768, 4);
  add("7b", 4096, 32, 65536, 1);
  add("7b", 4096, 32, 65536, 8);
  add("13b", 5120, 40, 32768, 1);
  add("13b", 5120, 40, 32768, 4);
  return cases;
}

std::vector<Case> selectCases(const Options &o) {
  std::vector<Case> all = buildCases(o.small), picked;
  std::string names;
  for (const Case &c : all) {
    names += (names.empty() ? "" : ", ") + c.name;
    if (c.name.find(o.filter) != std::string::npos)
      picked.push_back(c);
  }
  if (picked.empty())
    throw UsageError("no case name contains '" + o.filter +
                     "' (cases: " + names + ")");
  return picked;
}

double layerFlops(const Case &c) {
  const double d = c.d, S = c.seq;
  return 3 * (24 * d * d * S + 2 * d * S * S);
}

double chunkFlops(const Case &c, double s, double e) {
  const double d = c.d, len = e - s;
  return 3 * (24 * d * d * len + 4 * d * (len * e - len * len / 2));
}

//===----------------------------------------------------------------------===//
// JSON pieces.
//===----------------------------------------------------------------------===//

template <typename T>
std::string jsonArray(const std::vector<T> &v, const char *fmt) {
  std::string s = "[";
  char buf[64];
  for (size_t i = 0; i < v.size(); ++i) {
    std::snprintf(buf, sizeof buf, fmt, v[i]);
    s += (i ? ", " : "") + std::string(buf);
  }
  return s + "]";
}

std::string jsonNumber(const char *fmt, double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, x);
  return buf;
}

/// Quotes s for JSON (error messages may hold quotes or backslashes).
std::string jsonString(const std::string &s) {
  std::string q = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\')
      q += '\\';
    q += (static_cast<unsigned char>(ch) < 0x20) ? ' ' : ch;
  }
  return q + "\"";
}

/// "name", "d", ... "chunks": what --cases-json writes and results repeat.
std::string caseFields(const Case &c) {
  return "\"name\": " + jsonString(c.name) + ", \"d\": " + std::to_string(c.d) +
         ", \"heads\": " + std::to_string(c.heads) +
         ", \"head_dim\": " + std::to_string(kHeadDim) +
         ", \"seq\": " + std::to_string(c.seq) +
         ", \"chunks\": " + jsonArray(c.chunks, "%d");
}

void writeFile(const std::string &path, const std::string &text) {
  std::unique_ptr<FILE, int (*)(FILE *)> f(std::fopen(path.c_str(), "w"),
                                           &std::fclose);
  if (!f || std::fputs(text.c_str(), f.get()) < 0)
    throw std::runtime_error("cannot write " + path);
}

void writeCasesJson(const std::string &path, const std::vector<Case> &cases) {
  std::string s = "{\"cases\": [\n";
  for (size_t i = 0; i < cases.size(); ++i)
    s += "  {" + caseFields(cases[i]) + "}" +
         (i + 1 < cases.size() ? ",\n" : "\n");
  writeFile(path, s + "]}\n");
}

//===----------------------------------------------------------------------===//
// The layer on the device.
//===----------------------------------------------------------------------===//

/// Hands out 256-byte aligned pieces of one device allocation. A first pass
/// without memory only counts bytes, so a case that does not fit fails at
/// one cudaMalloc, before any work.
class Arena {
public:
  template <typename T> void take(T *&p, int64_t n) {
    p = base_ ? reinterpret_cast<T *>(base_ + used_) : nullptr;
    used_ += (static_cast<size_t>(n) * sizeof(T) + 255) / 256 * 256;
  }
  size_t used() const { return used_; }
  void reset(char *base) {
    base_ = base;
    used_ = 0;
  }

private:
  char *base_ = nullptr;
  size_t used_ = 0;
};

/// Weights, weight gradients, saved activations, KV cache and scratch of one
/// layer for one case. Activations the backward needs are kept for the
/// whole sequence, chunk c at rows [start, start + len); scratch holds the
/// longest chunk.
class Layer {
public:
  Layer(const Case &c, cudaStream_t stream)
      : d_(c.d), heads_(c.heads), S_(c.seq), stream_(stream) {
    int64_t start = 0;
    for (int len : c.chunks) {
      start_.push_back(start);
      len_.push_back(len);
      start += len;
      maxLen_ = std::max<int64_t>(maxLen_, len);
      wsFloats_ = std::max(wsFloats_, attention_bwd_workspace_size(
                                          dims(len_.size() - 1), bwdStrides()));
    }
    Arena a;
    layout(a);
    mem_ = std::make_unique<Buf<char>>(a.used());
    a.reset(mem_->get());
    layout(a);
    // Zero everything (gradients start at 0), then random weights and data.
    S1F_CUDA_CHECK(cudaMemset(mem_->get(), 0, a.used()));
    const int64_t d = d_;
    fillRandom(wqkv_, 3 * d * d, -0.02, 0.02, 1);
    fillRandom(bqkv_, 3 * d, -0.02, 0.02, 2);
    fillRandom(wo_, d * d, -0.02, 0.02, 3);
    fillRandom(bo_, d, -0.02, 0.02, 4);
    fillRandom(w1_, 4 * d * d, -0.02, 0.02, 5);
    fillRandom(b1_, 4 * d, -0.02, 0.02, 6);
    fillRandom(w2_, 4 * d * d, -0.02, 0.02, 7);
    fillRandom(b2_, d, -0.02, 0.02, 8);
    fillRandom(ln1g_, d, 0.8, 1.2, 9);
    fillRandom(ln1b_, d, -0.02, 0.02, 10);
    fillRandom(ln2g_, d, 0.8, 1.2, 11);
    fillRandom(ln2b_, d, -0.02, 0.02, 12);
    fillRandom(x_, S_ * d, -1, 1, 13);
    fillRandom(dy_, S_ * d, -1, 1, 14);
    S1F_CUDA_CHECK(cudaDeviceSynchronize());
  }

  int chunks() const { return static_cast<int>(len_.size()); }

  /// Forwards of chunks 0..N-1, then backwards of N-1..0. ev[k] (2N + 1
  /// events) is recorded before step k, ev[2N] at the end.
  void run(Gemm &gemm, const std::vector<cudaEvent_t> &ev) {
    const int N = chunks();
    for (int c = 0; c < N; ++c) {
      S1F_CUDA_CHECK(cudaEventRecord(ev[c], stream_));
      forward(gemm, c);
    }
    for (int k = 0; k < N; ++k) {
      S1F_CUDA_CHECK(cudaEventRecord(ev[N + k], stream_));
      if (k == 0 && dkbuf_) { // the micro-batch's first backward
        S1F_CUDA_CHECK(
            cudaMemsetAsync(dkbuf_, 0, S_ * d_ * sizeof(float), stream_));
        S1F_CUDA_CHECK(
            cudaMemsetAsync(dvbuf_, 0, S_ * d_ * sizeof(float), stream_));
      }
      backward(gemm, N - 1 - k);
    }
    S1F_CUDA_CHECK(cudaEventRecord(ev[2 * N], stream_));
  }

private:
  /// dq, dk, dv side by side in dqkv [L, 3d]: one GEMM takes all three.
  AttentionStrides bwdStrides() const {
    AttentionStrides s;
    s.dq = s.dkv = 3 * d_;
    return s;
  }

  AttentionDims dims(size_t c) const {
    AttentionDims a;
    a.batch = 1;
    a.heads = heads_;
    a.kv_heads = heads_;
    a.head_dim = kHeadDim;
    a.max_seq = S_;
    a.start = start_[c];
    a.len = len_[c];
    return a;
  }

  void layout(Arena &a) {
    const int64_t d = d_, S = S_, L = maxLen_;
    a.take(wqkv_, 3 * d * d);
    a.take(bqkv_, 3 * d);
    a.take(wo_, d * d);
    a.take(bo_, d);
    a.take(w1_, 4 * d * d);
    a.take(b1_, 4 * d);
    a.take(w2_, 4 * d * d);
    a.take(b2_, d);
    a.take(ln1g_, d);
    a.take(ln1b_, d);
    a.take(ln2g_, d);
    a.take(ln2b_, d);
    a.take(dwqkv_, 3 * d * d);
    a.take(dbqkv_, 3 * d);
    a.take(dwo_, d * d);
    a.take(dbo_, d);
    a.take(dw1_, 4 * d * d);
    a.take(db1_, 4 * d);
    a.take(dw2_, 4 * d * d);
    a.take(db2_, d);
    a.take(dln1g_, d);
    a.take(dln1b_, d);
    a.take(dln2g_, d);
    a.take(dln2b_, d);
    for (bf16 **p :
         {&x_, &ln1_, &q_, &kcache_, &vcache_, &attn_, &x1_, &ln2_, &dy_})
      a.take(*p, S * d);
    a.take(pre_, S * 4 * d);
    a.take(h_, S * 4 * d);
    for (float **p : {&mean1_, &rstd1_, &mean2_, &rstd2_})
      a.take(*p, S);
    a.take(lse_, heads_ * S);
    // One whole sequence needs no KV-gradient buffers (attention.h).
    if (chunks() > 1) {
      a.take(dkbuf_, S * d);
      a.take(dvbuf_, S * d);
    }
    for (bf16 **p : {&y_, &dln2_, &dx1_, &dattn_, &dln1_, &dx_})
      a.take(*p, L * d);
    a.take(dh_, L * 4 * d);
    a.take(dqkv_, L * 3 * d);
    a.take(ws_, wsFloats_);
  }

  void forward(Gemm &gemm, int c) {
    const int64_t s = start_[c], L = len_[c], d = d_;
    cudaStream_t st = stream_;
    const bf16 *x = x_ + s * d;
    bf16 *ln1 = ln1_ + s * d, *q = q_ + s * d, *attn = attn_ + s * d,
         *x1 = x1_ + s * d, *ln2 = ln2_ + s * d, *pre = pre_ + s * 4 * d,
         *h = h_ + s * 4 * d;
    layer_norm_fwd<bf16>(x, ln1g_, ln1b_, ln1, mean1_ + s, rstd1_ + s, L, d,
                         kEps, st);
    // Q, K, V from the row blocks of W_qkv; K and V straight into the cache.
    linear_fwd<bf16>(gemm, ln1, wqkv_, bqkv_, q, L, d, d, st);
    linear_fwd<bf16>(gemm, ln1, wqkv_ + d * d, bqkv_ + d, kcache_ + s * d, L, d,
                     d, st);
    linear_fwd<bf16>(gemm, ln1, wqkv_ + 2 * d * d, bqkv_ + 2 * d,
                     vcache_ + s * d, L, d, d, st);
    attention_fwd(q, kcache_, vcache_, attn, lse_ + heads_ * s, dims(c), {},
                  st);
    linear_fwd<bf16>(gemm, attn, wo_, bo_, x1, L, d, d, st);
    accumulate<bf16>(x, x1, L * d, st);
    layer_norm_fwd<bf16>(x1, ln2g_, ln2b_, ln2, mean2_ + s, rstd2_ + s, L, d,
                         kEps, st);
    linear_gelu_fwd<bf16>(gemm, ln2, w1_, b1_, pre, h, L, d, 4 * d, st);
    linear_fwd<bf16>(gemm, h, w2_, b2_, y_, L, 4 * d, d, st);
    accumulate<bf16>(x1, y_, L * d, st);
  }

  void backward(Gemm &gemm, int c) {
    const int64_t s = start_[c], L = len_[c], d = d_;
    cudaStream_t st = stream_;
    const bf16 *x = x_ + s * d, *ln1 = ln1_ + s * d, *q = q_ + s * d,
               *attn = attn_ + s * d, *x1 = x1_ + s * d, *ln2 = ln2_ + s * d,
               *pre = pre_ + s * 4 * d, *h = h_ + s * 4 * d, *dy = dy_ + s * d;
    linear_bwd<bf16>(gemm, h, w2_, dy, dh_, dw2_, db2_, L, 4 * d, d, st);
    gelu_bwd<bf16>(pre, dh_, dh_, L * 4 * d, st);
    linear_bwd<bf16>(gemm, ln2, w1_, dh_, dln2_, dw1_, db1_, L, d, 4 * d, st);
    layer_norm_bwd<bf16>(x1, ln2g_, mean2_ + s, rstd2_ + s, dln2_, dx1_, dln2g_,
                         dln2b_, L, d, st);
    accumulate<bf16>(dy, dx1_, L * d, st);
    linear_bwd<bf16>(gemm, attn, wo_, dx1_, dattn_, dwo_, dbo_, L, d, d, st);
    attention_bwd(q, kcache_, vcache_, attn, dattn_, lse_ + heads_ * s, dqkv_,
                  dqkv_ + d, dqkv_ + 2 * d, dkbuf_, dvbuf_, ws_, dims(c),
                  bwdStrides(), st);
    linear_bwd<bf16>(gemm, ln1, wqkv_, dqkv_, dln1_, dwqkv_, dbqkv_, L, d,
                     3 * d, st);
    layer_norm_bwd<bf16>(x, ln1g_, mean1_ + s, rstd1_ + s, dln1_, dx_, dln1g_,
                         dln1b_, L, d, st);
    accumulate<bf16>(dx1_, dx_, L * d, st);
  }

  int64_t d_, heads_, S_, maxLen_ = 0, wsFloats_ = 0;
  std::vector<int64_t> start_, len_;
  cudaStream_t stream_;
  std::unique_ptr<Buf<char>> mem_;
  // Weights (bf16) and their gradients (fp32).
  bf16 *wqkv_, *bqkv_, *wo_, *bo_, *w1_, *b1_, *w2_, *b2_, *ln1g_, *ln1b_,
      *ln2g_, *ln2b_;
  float *dwqkv_, *dbqkv_, *dwo_, *dbo_, *dw1_, *db1_, *dw2_, *db2_, *dln1g_,
      *dln1b_, *dln2g_, *dln2b_;
  // Whole sequence: input, saved activations, KV cache, output gradient.
  bf16 *x_, *ln1_, *q_, *kcache_, *vcache_, *attn_, *x1_, *ln2_, *pre_, *h_,
      *dy_;
  float *mean1_, *rstd1_, *mean2_, *rstd2_, *lse_;
  float *dkbuf_ = nullptr, *dvbuf_ = nullptr;
  // Scratch for one chunk.
  bf16 *y_, *dh_, *dln2_, *dx1_, *dattn_, *dqkv_, *dln1_, *dx_;
  float *ws_;
};

//===----------------------------------------------------------------------===//
// Timing and reporting.
//===----------------------------------------------------------------------===//

struct CaseResult {
  Case c;
  std::string skipped; ///< why it did not run; empty when it did
  double ms = 0, tflops = 0;
  std::vector<double> fwd, bwd; ///< per chunk, ms

  std::vector<double> chunkMs() const {
    std::vector<double> t(fwd.size());
    for (size_t i = 0; i < t.size(); ++i)
      t[i] = fwd[i] + bwd[i];
    return t;
  }
  std::vector<double> chunkTflops() const {
    std::vector<double> t;
    double s = 0;
    for (size_t i = 0; i < fwd.size(); ++i) {
      const double e = s + c.chunks[i];
      t.push_back(chunkFlops(c, s, e) / ((fwd[i] + bwd[i]) * 1e-3) / 1e12);
      s = e;
    }
    return t;
  }
  /// max/min - 1 of the per-chunk forward+backward times.
  double spread() const {
    const std::vector<double> t = chunkMs();
    return *std::max_element(t.begin(), t.end()) /
               *std::min_element(t.begin(), t.end()) -
           1;
  }
};

struct ProfileBalance {
  std::string error; ///< what went wrong; empty when all three splits ran
  bool fitted = false;
  int rounds = 0; ///< profile splits timed (the last one is reported)
  std::vector<sched::ProfileSample> samples; ///< every chunk timed
  sched::ChunkCostFit fit;
  CaseResult flops, even, profile; ///< profile.c is empty until it is known
};

struct Report {
  std::string device, attention;
  int reps = 0;
  std::vector<CaseResult> cases;
  std::unique_ptr<ProfileBalance> profile;
  std::string error; ///< the error that ended the run early
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Events {
  std::vector<cudaEvent_t> ev;
  explicit Events(size_t n) : ev(n, nullptr) {
    for (cudaEvent_t &e : ev)
      S1F_CUDA_CHECK(cudaEventCreate(&e));
  }
  ~Events() {
    for (cudaEvent_t e : ev)
      cudaEventDestroy(e);
  }
};

/// Runs the case, or marks it skipped when its buffers do not fit.
CaseResult timeCase(const Case &c, Gemm &gemm, cudaStream_t stream, int reps) {
  CaseResult r;
  r.c = c;
  std::unique_ptr<Layer> layer;
  try {
    layer = std::make_unique<Layer>(c, stream);
  } catch (const DeviceOutOfMemory &e) {
    r.skipped = e.what();
    std::fprintf(stderr, "case %s: skipped (%s)\n", c.name.c_str(), e.what());
    return r;
  }
  const int N = layer->chunks();
  Events ev(2 * N + 1);
  layer->run(gemm, ev.ev); // warm-up (and the GEMM plans)
  S1F_CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<std::vector<double>> steps(2 * N);
  std::vector<double> total;
  auto elapsed = [&](int from, int to) {
    float ms = 0;
    S1F_CUDA_CHECK(cudaEventElapsedTime(&ms, ev.ev[from], ev.ev[to]));
    return double(ms);
  };
  for (int i = 0; i < reps; ++i) {
    layer->run(gemm, ev.ev);
    S1F_CUDA_CHECK(cudaEventSynchronize(ev.ev[2 * N]));
    for (int k = 0; k < 2 * N; ++k)
      steps[k].push_back(elapsed(k, k + 1));
    total.push_back(elapsed(0, 2 * N));
  }
  r.ms = median(total);
  r.tflops = layerFlops(c) / (r.ms * 1e-3) / 1e12;
  for (int k = 0; k < N; ++k) {
    r.fwd.push_back(median(steps[k]));
    r.bwd.push_back(median(steps[2 * N - 1 - k]));
  }
  std::fprintf(stderr, "case %s: %.1f ms, %.0f TFLOP/s\n", c.name.c_str(), r.ms,
               r.tflops);
  return r;
}

/// Fits the chunk cost model to the per-chunk times of the flops and even
/// splits and times its balanced split; while that split's spread is above
/// kTargetSpread, refits on every split timed so far and tries again (at most
/// kProfileRounds splits): one round's error in the fitted model shows up as
/// the next round's extra samples.
std::unique_ptr<ProfileBalance> profileBalance(const CaseResult &flops,
                                               const CaseResult &even,
                                               Gemm &gemm, cudaStream_t stream,
                                               int reps) {
  constexpr int kProfileRounds = 3;
  constexpr double kTargetSpread = 0.03;
  auto pb = std::make_unique<ProfileBalance>();
  pb->flops = flops;
  pb->even = even;
  if (!flops.skipped.empty() || !even.skipped.empty()) {
    pb->error = "the flops or even split was skipped";
    return pb;
  }
  std::vector<sched::ProfileSample> &samples = pb->samples;
  auto addSamples = [&](const CaseResult &r) {
    const std::vector<double> ms = r.chunkMs();
    double end = 0;
    for (size_t i = 0; i < ms.size(); ++i) {
      end += r.c.chunks[i];
      samples.push_back({double(r.c.chunks[i]), end, ms[i] * 1e-3});
    }
  };
  addSamples(flops);
  addSamples(even);
  for (pb->rounds = 1; pb->rounds <= kProfileRounds; ++pb->rounds) {
    auto fit = sched::fitChunkCost(samples);
    if (!fit) {
      pb->error = "fitChunkCost: " + fit.error;
      return pb;
    }
    pb->fit = *fit;
    pb->fitted = true;
    const sched::ChunkCostFit model = *fit;
    auto split = sched::balanceChunks(
        static_cast<int>(flops.c.seq), static_cast<int>(flops.c.chunks.size()),
        [model](double b, double e) { return model.rangeCost(b, e); }, kAlign);
    if (!split) {
      pb->error = "balanceChunks: " + split.error;
      return pb;
    }
    Case c = flops.c;
    c.name += "-profile";
    c.chunks = *split;
    pb->profile = timeCase(c, gemm, stream, reps);
    if (!pb->profile.skipped.empty()) {
      pb->error = "profile split skipped: " + pb->profile.skipped;
      return pb;
    }
    addSamples(pb->profile);
    if (pb->profile.spread() <= kTargetSpread)
      break;
  }
  pb->rounds = std::min(pb->rounds, kProfileRounds);
  return pb;
}

std::string reportJson(const Report &rep) {
  std::string s = "{\n  \"device\": " + rep.device +
                  ",\n  \"attention\": " + jsonString(rep.attention) +
                  ",\n  \"reps\": " + std::to_string(rep.reps) +
                  ",\n  \"cases\": [\n";
  for (size_t i = 0; i < rep.cases.size(); ++i) {
    const CaseResult &r = rep.cases[i];
    s += "    {" + caseFields(r.c);
    if (!r.skipped.empty())
      s += ", \"skipped\": " + jsonString(r.skipped);
    else
      s += ", \"ms\": " + jsonNumber("%.4f", r.ms) +
           ", \"tflops\": " + jsonNumber("%.2f", r.tflops) +
           ", \"chunk_fwd_ms\": " + jsonArray(r.fwd, "%.4f") +
           ", \"chunk_bwd_ms\": " + jsonArray(r.bwd, "%.4f") +
           ", \"chunk_tflops\": " + jsonArray(r.chunkTflops(), "%.2f");
    s += std::string("}") + (i + 1 < rep.cases.size() ? "," : "") + "\n";
  }
  s += "  ],\n  \"profile_balance\": ";
  if (const ProfileBalance *pb = rep.profile.get()) {
    s += "{\"case\": " + jsonString(pb->flops.c.name);
    if (!pb->error.empty())
      s += ", \"error\": " + jsonString(pb->error);
    const std::pair<std::string, const CaseResult *> splits[] = {
        {"flops", &pb->flops}, {"even", &pb->even}, {"profile", &pb->profile}};
    for (const auto &[k, r] : splits) {
      if (r->fwd.empty()) // skipped, or never run
        continue;
      s += ",\n    \"" + k + "_split\": " + jsonArray(r->c.chunks, "%d") +
           ", \"" + k + "_chunk_ms\": " + jsonArray(r->chunkMs(), "%.4f") +
           ", \"" + k + "_spread\": " + jsonNumber("%.4f", r->spread()) +
           ", \"" + k + "_ms\": " + jsonNumber("%.4f", r->ms);
    }
    if (pb->fitted)
      s += ",\n    \"fit\": {\"a\": " + jsonNumber("%.6e", pb->fit.a) +
           ", \"b\": " + jsonNumber("%.6e", pb->fit.b) +
           ", \"c\": " + jsonNumber("%.6e", pb->fit.c) +
           ", \"unit\": \"seconds\"}";
    s += ",\n    \"profile_rounds\": " + std::to_string(pb->rounds) + "}";
  } else {
    s += "null";
  }
  if (!rep.error.empty())
    s += ",\n  \"error\": " + jsonString(rep.error);
  return s + "\n}\n";
}

void printTable(const Report &rep) {
  std::printf("\nattention engine: %s", rep.attention.c_str());
  std::printf("\n%-20s %5s %5s %6s %3s %10s %8s  %s\n", "case", "d", "heads",
              "seq", "N", "ms", "TFLOP/s", "chunks (length:fwd+bwd ms)");
  for (const CaseResult &r : rep.cases) {
    std::printf("%-20s %5lld %5lld %6lld %3zu ", r.c.name.c_str(),
                static_cast<long long>(r.c.d),
                static_cast<long long>(r.c.heads),
                static_cast<long long>(r.c.seq), r.c.chunks.size());
    if (!r.skipped.empty()) {
      std::printf("skipped: %s\n", r.skipped.c_str());
      continue;
    }
    std::printf("%10.2f %8.1f ", r.ms, r.tflops);
    const std::vector<double> ms = r.chunkMs();
    for (size_t i = 0; i < ms.size(); ++i)
      std::printf(" %d:%.2f", r.c.chunks[i], ms[i]);
    std::printf("\n");
  }
  if (const ProfileBalance *pb = rep.profile.get()) {
    std::printf("\nprofile balance of %s", pb->flops.c.name.c_str());
    if (pb->fitted)
      std::printf(": seconds = %.4g*(s*e - s^2/2) + %.4g*s + %.4g (%d "
                  "round%s)",
                  pb->fit.a, pb->fit.b, pb->fit.c, pb->rounds,
                  pb->rounds == 1 ? "" : "s");
    std::printf("\n");
    if (!pb->error.empty())
      std::printf("  error: %s\n", pb->error.c_str());
    for (const CaseResult *r : {&pb->flops, &pb->even, &pb->profile})
      if (!r->fwd.empty())
        std::printf("  %-26s %9.2f ms  spread %5.1f%%\n", r->c.name.c_str(),
                    r->ms, 100 * r->spread());
  }
  std::fflush(stdout);
}

struct Stream {
  cudaStream_t s = nullptr;
  Stream() { S1F_CUDA_CHECK(cudaStreamCreate(&s)); }
  ~Stream() { cudaStreamDestroy(s); }
};

/// The profile case's per-chunk times in the split pass's profile format:
/// {"samples": [{"length", "end", "seconds"}, ...]} plus where they came from.
void writeSamplesJson(const std::string &path, const ProfileBalance &pb,
                      const std::string &device) {
  std::string s = "{\n  \"case\": " + jsonString(pb.flops.c.name) +
                  ",\n  \"device\": " + device +
                  ",\n  \"what\": \"one layer forward+backward per chunk\",\n"
                  "  \"samples\": [";
  for (size_t i = 0; i < pb.samples.size(); ++i) {
    const sched::ProfileSample &p = pb.samples[i];
    s += std::string(i ? "," : "") + "\n    {\"length\": " +
         jsonNumber("%.0f", p.length) + ", \"end\": " +
         jsonNumber("%.0f", p.end) + ", \"seconds\": " +
         jsonNumber("%.6e", p.seconds) + "}";
  }
  s += "\n  ]\n}\n";
  std::unique_ptr<FILE, int (*)(FILE *)> f(std::fopen(path.c_str(), "w"),
                                            &std::fclose);
  if (!f || std::fputs(s.c_str(), f.get()) < 0)
    throw std::runtime_error("cannot write " + path);
}

int runCases(const Options &opt, const std::vector<Case> &cases) {
  const std::string engine =
      opt.attention.empty() ? attention_engine_name(attention_engine())
                            : opt.attention;
  if (engine != "own")
    if (const std::string why = cudnn_unavailable_reason(); !why.empty())
      throw std::runtime_error("--attention " + engine + ": " + why);
  if (device_count() == 0)
    throw std::runtime_error("no CUDA device visible");
  // Fail on an unwritable --json now, not after the GPU time is spent.
  std::unique_ptr<FILE, int (*)(FILE *)> json(nullptr, &std::fclose);
  if (!opt.json.empty()) {
    json.reset(std::fopen(opt.json.c_str(), "w"));
    if (!json)
      throw std::runtime_error("cannot write " + opt.json);
  }
  Report rep;
  rep.device = s1f::bench::deviceJson();
  rep.attention = engine;
  rep.reps = opt.reps;
  // attention_fwd/_bwd read the engine from the environment (attention.h).
  ::setenv("S1F_ATTENTION_ENGINE", engine.c_str(), 1);
  try {
    Stream stream;
    Gemm gemm;
    const std::string pc = profileCase(opt.small);
    for (const Case &c : cases) {
      rep.cases.push_back(timeCase(c, gemm, stream.s, opt.reps));
      if (c.name != pc + "-even")
        continue;
      for (const CaseResult &f : rep.cases)
        if (f.c.name == pc) {
          rep.profile =
              profileBalance(f, rep.cases.back(), gemm, stream.s, opt.reps);
          if (!rep.profile->profile.c.name.empty())
            rep.cases.push_back(rep.profile->profile);
          break;
        }
    }
  } catch (const std::exception &e) {
    rep.error = e.what(); // a CUDA error may be sticky: keep what ran
  }
  printTable(rep);
  if (json && std::fputs(reportJson(rep).c_str(), json.get()) < 0)
    throw std::runtime_error("cannot write " + opt.json);
  if (!opt.samplesJson.empty()) {
    if (rep.profile && !rep.profile->samples.empty())
      writeSamplesJson(opt.samplesJson, *rep.profile, rep.device);
    else
      std::fprintf(stderr,
                   "%s: warning: no chunk times for --samples-json (the "
                   "profile case %s did not run)\n",
                   kProg, profileCase(opt.small).c_str());
  }
  if (!rep.error.empty())
    throw std::runtime_error(rep.error);
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  Options opt;
  std::vector<Case> cases;
  try {
    opt = parseArgs(argc, argv);
    if (opt.help) {
      printUsage(stdout);
      return 0;
    }
    cases = selectCases(opt);
  } catch (const UsageError &e) {
    std::fprintf(stderr, "%s: error: %s (see --help)\n", kProg, e.what());
    return 2;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "%s: error: %s\n", kProg, e.what());
    return 1;
  }
  try {
    if (!opt.casesJson.empty()) {
      writeCasesJson(opt.casesJson, cases);
      return 0;
    }
    return runCases(opt, cases);
  } catch (const std::exception &e) {
    std::fprintf(stderr, "%s: error: %s\n", kProg, e.what());
    return 1;
  }
}
