//===- cuda_bench.cpp - Timings of the CUDA backend's kernels -------------===//
//
// Times every kernel of runtime/src/cuda at the sizes of one sequence chunk
// of a 7B-class decoder layer (8192 tokens, hidden 4096, MLP 11008, 32 heads
// of 128, vocabulary 32000; AdamW over one layer's 202M parameters) and
// writes one JSON object: the device, its peak memory bandwidth, and per
// kernel the median time, the achieved bandwidth (logical bytes: each tensor
// read or written once) or TFLOP/s.
//
// CUDA events around each launch, warm-up first, the median of --reps runs;
// inputs are random (a random block tiled over each buffer), never zeros.
//
//   s1f-cuda-bench [--json FILE] [--reps N] [--tokens N] [--filter SUBSTR]
//   s1f-cuda-bench --cudnn-device FILE   (cuDNN's JSON of the GPU, no timing)
//
//===----------------------------------------------------------------------===//

#include "bench_util.h"

#include "seq1f1b/runtime/cuda/attention.h"
#include "seq1f1b/runtime/cuda/check.h"
#include "seq1f1b/runtime/cuda/gemm.h"
#include "seq1f1b/runtime/cuda/kernels.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

using namespace s1f::rt::cuda;
using s1f::bench::Buf;
using s1f::bench::fillRandom;

namespace {

struct Options {
  std::string json, cudnnDevice;
  std::string filter;
  int reps = 20;
  int64_t tokens = 8192;
};

struct Result {
  std::string name, dtype, shape;
  double ms = 0, gbps = 0, tflops = 0;
};

void fillIds(Buf<int32_t> &b, int32_t V, uint32_t seed) {
  std::vector<int32_t> host(b.n);
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int32_t> dist(0, V - 1);
  for (int32_t &x : host)
    x = dist(gen);
  S1F_CUDA_CHECK(cudaMemcpy(b.p, host.data(), b.n * sizeof(int32_t),
                            cudaMemcpyHostToDevice));
}

class Bench {
public:
  explicit Bench(const Options &o) : opt_(o) {
    S1F_CUDA_CHECK(cudaEventCreate(&start_));
    S1F_CUDA_CHECK(cudaEventCreate(&stop_));
  }
  ~Bench() {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }

  bool wanted(const std::string &name) const {
    return opt_.filter.empty() || name.find(opt_.filter) != std::string::npos;
  }

  /// Median milliseconds of fn() over the repetitions, after warm-up.
  double time(const std::function<void()> &fn) {
    for (int i = 0; i < 3; ++i)
      fn();
    S1F_CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<double> ms;
    for (int i = 0; i < opt_.reps; ++i) {
      S1F_CUDA_CHECK(cudaEventRecord(start_));
      fn();
      S1F_CUDA_CHECK(cudaEventRecord(stop_));
      S1F_CUDA_CHECK(cudaEventSynchronize(stop_));
      float t = 0;
      S1F_CUDA_CHECK(cudaEventElapsedTime(&t, start_, stop_));
      ms.push_back(t);
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
  }

  void memory(const std::string &name, const std::string &dtype,
              const std::string &shape, double bytes,
              const std::function<void()> &fn) {
    if (!wanted(name))
      return;
    Result r{name, dtype, shape};
    r.ms = time(fn);
    r.gbps = bytes / (r.ms * 1e-3) / 1e9;
    report(r);
  }

  void compute(const std::string &name, const std::string &dtype,
               const std::string &shape, double flops,
               const std::function<void()> &fn) {
    if (!wanted(name))
      return;
    Result r{name, dtype, shape};
    r.ms = time(fn);
    r.tflops = flops / (r.ms * 1e-3) / 1e12;
    report(r);
  }

  const std::vector<Result> &results() const { return results_; }

private:
  void report(const Result &r) {
    std::printf("%-28s %-5s %-22s %9.4f ms", r.name.c_str(), r.dtype.c_str(),
                r.shape.c_str(), r.ms);
    if (r.gbps > 0)
      std::printf(" %8.1f GB/s", r.gbps);
    if (r.tflops > 0)
      std::printf(" %8.1f TFLOP/s", r.tflops);
    std::printf("\n");
    std::fflush(stdout);
    results_.push_back(r);
  }

  Options opt_;
  cudaEvent_t start_{}, stop_{};
  std::vector<Result> results_;
};

std::string dims(std::initializer_list<int64_t> d) {
  std::string s;
  for (int64_t x : d)
    s += (s.empty() ? "" : "x") + std::to_string(x);
  return s;
}

void runAll(Bench &b, int64_t T) {
  const int64_t H = 4096, F = 11008, heads = 32, hd = 128, V = 32000;
  const double e2 = 2.0; // bytes of a bf16

  // Baseline: what a plain device-to-device copy achieves.
  {
    Buf<char> src(size_t(1) << 30), dst(size_t(1) << 30);
    S1F_CUDA_CHECK(cudaMemset(src.get(), 1, src.n));
    b.memory("memcpy_d2d", "u8", "1GiB", 2.0 * src.n, [&] {
      S1F_CUDA_CHECK(cudaMemcpyAsync(dst.get(), src.get(), src.n,
                                     cudaMemcpyDeviceToDevice));
    });
  }

  // Norms over [T, H].
  {
    Buf<bf16> x(T * H), y(T * H), dy(T * H), dx(T * H), g(H), be(H);
    Buf<float> mean(T), rstd(T), dg(H), db(H);
    fillRandom(x, -2, 2, 1);
    fillRandom(dy, -1, 1, 2);
    fillRandom(g, 0.5, 1.5, 3);
    fillRandom(be, -0.5, 0.5, 4);
    fillRandom(dg, -1, 1, 5);
    fillRandom(db, -1, 1, 6);
    const std::string s = dims({T, H});
    const double n = double(T) * H;
    b.memory("layer_norm_fwd", "bf16", s, 2 * n * e2, [&] {
      layer_norm_fwd<bf16>(x.get(), g.get(), be.get(), y.get(), mean.get(),
                           rstd.get(), T, H, 1e-5f);
    });
    b.memory("layer_norm_bwd", "bf16", s, 3 * n * e2, [&] {
      layer_norm_bwd<bf16>(x.get(), g.get(), mean.get(), rstd.get(), dy.get(),
                           dx.get(), dg.get(), db.get(), T, H);
    });
    b.memory("rms_norm_fwd", "bf16", s, 2 * n * e2, [&] {
      rms_norm_fwd<bf16>(x.get(), g.get(), y.get(), rstd.get(), T, H, 1e-6f);
    });
    b.memory("rms_norm_bwd", "bf16", s, 3 * n * e2, [&] {
      rms_norm_bwd<bf16>(x.get(), g.get(), rstd.get(), dy.get(), dx.get(),
                         dg.get(), T, H);
    });
    b.memory("add_fwd", "bf16", s, 3 * n * e2, [&] {
      add_fwd<bf16>(x.get(), dy.get(), y.get(), T * H);
    });
    b.memory("rope_fwd_inplace", "bf16", dims({T, heads, hd}), 2 * n * e2,
             [&] {
               rope_fwd<bf16>(y.get(), y.get(), 1, T, heads, hd, 65536,
                              10000.0);
             });
  }

  // MLP activations over [T, F].
  {
    Buf<bf16> a(T * F), u(T * F), d(T * F), o(T * F), o2(T * F);
    fillRandom(a, -4, 4, 7);
    fillRandom(u, -4, 4, 8);
    fillRandom(d, -1, 1, 9);
    const std::string s = dims({T, F});
    const double n = double(T) * F;
    b.memory("gelu_fwd", "bf16", s, 2 * n * e2,
             [&] { gelu_fwd<bf16>(a.get(), o.get(), T * F); });
    b.memory("gelu_bwd", "bf16", s, 3 * n * e2,
             [&] { gelu_bwd<bf16>(a.get(), d.get(), o.get(), T * F); });
    b.memory("swiglu_fwd", "bf16", s, 3 * n * e2,
             [&] { swiglu_fwd<bf16>(a.get(), u.get(), o.get(), T * F); });
    b.memory("swiglu_bwd", "bf16", s, 5 * n * e2, [&] {
      swiglu_bwd<bf16>(a.get(), u.get(), d.get(), o.get(), o2.get(), T * F);
    });
  }

  // Embedding, [V, H] table.
  {
    Buf<int32_t> ids(T);
    Buf<bf16> table(V * H), out(T * H), dout(T * H);
    Buf<float> dtable(V * H);
    fillIds(ids, static_cast<int32_t>(V), 10);
    fillRandom(table, -1, 1, 11);
    fillRandom(dout, -1, 1, 12);
    fillRandom(dtable, -1, 1, 13);
    const std::string s = dims({T, H});
    const double n = double(T) * H;
    b.memory("embedding_fwd", "bf16", s, 2 * n * e2, [&] {
      embedding_fwd<bf16>(ids.get(), table.get(), out.get(), T, V, H);
    });
    // dout read (bf16) + dtable rows read and written (fp32).
    b.memory("embedding_bwd", "bf16", s, n * (e2 + 8), [&] {
      embedding_bwd<bf16>(ids.get(), dout.get(), dtable.get(), T, V, H);
    });
  }

  // Cross-entropy over [T, V] bf16 logits, gradient in place.
  {
    Buf<bf16> logits(T * V), pristine(T * V);
    Buf<int32_t> targets(T);
    Buf<float> lse(T);
    Buf<double> loss(1);
    Buf<int64_t> count(1);
    fillRandom(pristine, -8, 8, 14);
    S1F_CUDA_CHECK(cudaMemcpy(logits.get(), pristine.get(),
                              logits.n * sizeof(bf16),
                              cudaMemcpyDeviceToDevice));
    fillIds(targets, static_cast<int32_t>(V), 15);
    S1F_CUDA_CHECK(cudaMemset(loss.get(), 0, sizeof(double)));
    S1F_CUDA_CHECK(cudaMemset(count.get(), 0, sizeof(int64_t)));
    const std::string s = dims({T, V});
    const double n = double(T) * V;
    // Forward only; fused out of place (pristine logits stay logits); fused
    // in place, where after the first run the buffer holds gradients: the
    // same traffic and arithmetic, on different (still random) values.
    b.memory("cross_entropy_fwd", "bf16", s, n * e2, [&] {
      cross_entropy_fwd<bf16>(pristine.get(), targets.get(), lse.get(),
                              loss.get(), count.get(), T, V);
    });
    b.memory("cross_entropy_fused", "bf16", s, 2 * n * e2, [&] {
      cross_entropy_fused<bf16>(pristine.get(), targets.get(), lse.get(),
                                loss.get(), count.get(), logits.get(), T, V,
                                1.0f / static_cast<float>(T));
    });
    b.memory("cross_entropy_fused_inplace", "bf16", s, 2 * n * e2, [&] {
      // In place on data that is already a gradient: same traffic and work.
      cross_entropy_fused<bf16>(logits.get(), targets.get(), nullptr,
                                loss.get(), count.get(), logits.get(), T, V,
                                1.0f / static_cast<float>(T));
    });
  }

  // Optimizer over one layer's parameters, fp32 master + state, bf16 copy.
  {
    const int64_t sizes[] = {H * H, H * H, H * H, H * H, F * H, F * H, F * H,
                             H, H};
    std::vector<std::unique_ptr<Buf<float>>> bufs;
    std::vector<std::unique_ptr<Buf<bf16>>> copies;
    std::vector<AdamWTensor> tensors;
    std::vector<SquaresSpan> spans;
    int64_t total = 0;
    uint32_t seed = 20;
    for (int64_t n : sizes) {
      AdamWTensor t;
      t.n = n;
      // master, grad, m, v
      const double lo[4] = {-1, -1e-2, -1e-3, 1e-8}, hi[4] = {1, 1e-2, 1e-3, 1e-6};
      for (int i = 0; i < 4; ++i) {
        bufs.push_back(std::make_unique<Buf<float>>(n));
        fillRandom(*bufs.back(), lo[i], hi[i], ++seed);
      }
      t.master = bufs[bufs.size() - 4]->get();
      t.grad = bufs[bufs.size() - 3]->get();
      t.m = bufs[bufs.size() - 2]->get();
      t.v = bufs[bufs.size() - 1]->get();
      copies.push_back(std::make_unique<Buf<bf16>>(n));
      t.param_bf16 = copies.back()->get();
      tensors.push_back(t);
      spans.push_back({t.grad, n});
      total += n;
    }
    AdamWConfig cfg;
    cfg.weight_decay = 0.1;
    Buf<double> sumsq(1);
    Buf<float> coef(1);
    S1F_CUDA_CHECK(cudaMemset(sumsq.get(), 0, sizeof(double)));
    const std::string s = std::to_string(total / 1000000) + "M_params";
    b.memory("sum_squares_multi", "fp32", s, 4.0 * total, [&] {
      sum_squares(spans.data(), static_cast<int64_t>(spans.size()),
                  sumsq.get());
    });
    clip_coefficient(sumsq.get(), coef.get(), 1e30);
    // Reads master, grad, m, v; writes master, m, v and the bf16 copy.
    b.memory("adamw_multi", "fp32", s, (16.0 + 12.0 + 2.0) * total, [&] {
      adamw_step(tensors.data(), static_cast<int64_t>(tensors.size()), 10, cfg,
                 1.0, coef.get());
    });
  }

  // GEMMs of the layer (cuBLASLt, bf16 in, fp32 accumulate).
  {
    Gemm gemm;
    Buf<bf16> x(T * H), w(F * H), bias(F), y(T * F), pre(T * F), dy(T * F),
        dx(T * H), head(V * H), logits(T * V);
    Buf<float> dW(F * H);
    fillRandom(x, -1, 1, 30);
    fillRandom(w, -0.05, 0.05, 31);
    fillRandom(bias, -0.1, 0.1, 32);
    fillRandom(dy, -1, 1, 33);
    fillRandom(head, -0.05, 0.05, 34);
    fillRandom(dW, -1, 1, 35);
    const double tHH = 2.0 * T * H * H, tHF = 2.0 * T * H * F,
                 tHV = 2.0 * T * H * V;
    b.compute("linear_fwd_qkvo", "bf16", dims({T, H, H}), tHH, [&] {
      linear_fwd<bf16>(gemm, x.get(), w.get(), bias.get(), y.get(), T, H, H);
    });
    b.compute("linear_fwd_mlp_up", "bf16", dims({T, H, F}), tHF, [&] {
      linear_fwd<bf16>(gemm, x.get(), w.get(), bias.get(), y.get(), T, H, F);
    });
    b.compute("linear_gelu_fwd_mlp_up", "bf16", dims({T, H, F}), tHF, [&] {
      linear_gelu_fwd<bf16>(gemm, x.get(), w.get(), bias.get(), pre.get(),
                            y.get(), T, H, F);
    });
    b.compute("linear_fwd_mlp_down", "bf16", dims({T, F, H}), tHF, [&] {
      linear_fwd<bf16>(gemm, y.get(), w.get(), nullptr, dx.get(), T, F, H);
    });
    b.compute("linear_bwd_dx_mlp_up", "bf16", dims({T, H, F}), tHF, [&] {
      linear_bwd<bf16>(gemm, x.get(), w.get(), dy.get(), dx.get(), nullptr,
                       nullptr, T, H, F);
    });
    b.compute("linear_bwd_dW_mlp_up", "bf16>fp32", dims({T, H, F}), tHF, [&] {
      linear_bwd<bf16>(gemm, x.get(), w.get(), dy.get(), nullptr, dW.get(),
                       nullptr, T, H, F);
    });
    b.compute("linear_fwd_lm_head", "bf16", dims({T, H, V}), tHV, [&] {
      linear_fwd<bf16>(gemm, x.get(), head.get(), nullptr, logits.get(), T, H,
                       V);
    });
  }

  // Attention over a 32k prefix, 32 heads of 128: the whole causal sequence
  // and the last of four even chunks (8k queries over 32k keys, bottom-right
  // mask). Model FLOPs: forward 4*hd*heads*(len*end - len^2/2) (QK^T and PV,
  // causal half), backward 2.5x that. Both pipeline depths of our kernels
  // (named: unset, the engine is cuDNN's where it runs), then cuDNN's.
  {
    ::setenv("S1F_ATTENTION_ENGINE", "own", 1); // the workspace size is ours
    const int64_t S = 32768;
    Buf<bf16> q(S * H), k(S * H), v(S * H), o(S * H), dout(S * H), dq(S * H),
        dk(S * H), dv(S * H);
    s1f::rt::cpu::AttentionDims whole; // the largest case
    whole.batch = 1, whole.heads = heads, whole.kv_heads = heads;
    whole.head_dim = hd, whole.max_seq = S, whole.len = S;
    Buf<float> lse(heads * S), dkbuf(S * H), dvbuf(S * H),
        ws(attention_bwd_workspace_size(whole));
    fillRandom(q, -1, 1, 40);
    fillRandom(k, -1, 1, 41);
    fillRandom(v, -1, 1, 42);
    fillRandom(dout, -1, 1, 43);
    for (int64_t start : {int64_t(0), S - S / 4}) {
      s1f::rt::cpu::AttentionDims d;
      d.batch = 1, d.heads = heads, d.kv_heads = heads, d.head_dim = hd;
      d.max_seq = S, d.start = start, d.len = S - start;
      const double len = double(d.len), fwd = 4.0 * hd * heads *
                                              (len * S - len * len / 2);
      const std::string shape =
          dims({heads, hd}) + "_q" + std::to_string(d.len) + "@" +
          std::to_string(start);
      float *kb = start ? dkbuf.get() : nullptr, *vb = start ? dvbuf.get() : nullptr;
      // The variants (attention.cu): pipeline depth, dQ atomic or not.
      ::setenv("S1F_ATTENTION_ENGINE", "own", 1);
      for (const char *stages : {"2", "1"}) {
        ::setenv("S1F_ATTENTION_STAGES", stages, 1);
        const std::string tag = std::string(stages) == "2" ? "" : "_stages1";
        b.compute("attention_fwd" + tag, "bf16", shape, fwd, [&] {
          attention_fwd(q.get(), k.get(), v.get(), o.get(), lse.get(), d);
        });
        for (const char *bwd : {"atomic", "deterministic"}) {
          ::setenv("S1F_ATTENTION_BWD", bwd, 1);
          const std::string btag =
              tag + (std::string(bwd) == "atomic" ? "" : "_deterministic");
          b.compute("attention_bwd" + btag, "bf16", shape, 2.5 * fwd, [&] {
            attention_bwd(q.get(), k.get(), v.get(), o.get(), dout.get(),
                          lse.get(), dq.get(), dk.get(), dv.get(), kb, vb,
                          ws.get(), d);
          });
        }
      }
      ::unsetenv("S1F_ATTENTION_STAGES");
      ::unsetenv("S1F_ATTENTION_BWD");
      ::unsetenv("S1F_ATTENTION_ENGINE");
      // cuDNN's fused attention (the cudnn engines), same calls; the split
      // engine differs from cudnn only for a chunk after the first.
      for (const std::string engine : {"cudnn", "cudnn-split"}) {
        if (engine == "cudnn-split" && start == 0)
          continue;
        std::string tag = "_" + engine;
        std::replace(tag.begin(), tag.end(), '-', '_');
        if (!b.wanted("attention_fwd" + tag) &&
            !b.wanted("attention_bwd" + tag))
          continue;
        if (const std::string why = cudnn_unavailable_reason(); !why.empty()) {
          std::printf("attention_*%s: skipped: %s\n", tag.c_str(), why.c_str());
          continue;
        }
        ::setenv("S1F_ATTENTION_ENGINE", engine.c_str(), 1);
        try {
          Buf<float> cws(attention_bwd_workspace_size(d));
          b.compute("attention_fwd" + tag, "bf16", shape, fwd, [&] {
            attention_fwd(q.get(), k.get(), v.get(), o.get(), lse.get(), d);
          });
          b.compute("attention_bwd" + tag, "bf16", shape, 2.5 * fwd, [&] {
            attention_bwd(q.get(), k.get(), v.get(), o.get(), dout.get(),
                          lse.get(), dq.get(), dk.get(), dv.get(), kb, vb,
                          cws.get(), d);
          });
        } catch (const std::exception &e) {
          std::printf("attention_*%s %s: failed: %s\n", tag.c_str(),
                      shape.c_str(), e.what());
        }
        ::unsetenv("S1F_ATTENTION_ENGINE");
      }
    }
  }
}

void writeJson(const std::string &path, const std::vector<Result> &results,
               int64_t tokens) {
  FILE *f = std::fopen(path.c_str(), "w");
  if (!f) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::exit(1);
  }
  std::fprintf(f, "{\n  \"device\": %s,\n", s1f::bench::deviceJson().c_str());
  std::fprintf(f, "  \"tokens\": %lld,\n  \"results\": [\n",
               static_cast<long long>(tokens));
  for (size_t i = 0; i < results.size(); ++i) {
    const Result &r = results[i];
    std::fprintf(f,
                 "    {\"name\": \"%s\", \"dtype\": \"%s\", \"shape\": "
                 "\"%s\", \"ms\": %.5f, \"gbps\": %.1f, \"tflops\": %.1f}%s\n",
                 r.name.c_str(), r.dtype.c_str(), r.shape.c_str(), r.ms,
                 r.gbps, r.tflops, i + 1 < results.size() ? "," : "");
  }
  std::fprintf(f, "  ]\n}\n");
  std::fclose(f);
}

} // namespace

int main(int argc, char **argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--json")
      opt.json = next();
    else if (a == "--reps")
      opt.reps = std::max(1, std::atoi(next().c_str()));
    else if (a == "--tokens")
      opt.tokens = std::max(1, std::atoi(next().c_str()));
    else if (a == "--filter")
      opt.filter = next();
    else if (a == "--cudnn-device")
      opt.cudnnDevice = next();
    else {
      std::fprintf(stderr,
                   "usage: %s [--json FILE] [--reps N] [--tokens N] "
                   "[--filter SUBSTR]\n"
                   "       %s --cudnn-device FILE\n",
                   argv[0], argv[0]);
      return 2;
    }
  }
  if (device_count() == 0) {
    std::fprintf(stderr, "s1f-cuda-bench: no CUDA device visible\n");
    return 3;
  }
  try {
    if (!opt.cudnnDevice.empty()) {
      const std::string json = cudnn_device_json();
      std::unique_ptr<FILE, int (*)(FILE *)> f(
          std::fopen(opt.cudnnDevice.c_str(), "w"), &std::fclose);
      if (!f || std::fputs(json.c_str(), f.get()) < 0)
        throw std::runtime_error("cannot write " + opt.cudnnDevice);
      return 0;
    }
    Bench b(opt);
    runAll(b, opt.tokens);
    if (!opt.json.empty())
      writeJson(opt.json, b.results(), opt.tokens);
  } catch (const std::exception &e) {
    std::fprintf(stderr, "s1f-cuda-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
