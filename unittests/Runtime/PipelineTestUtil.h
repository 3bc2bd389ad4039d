//===- PipelineTestUtil.h - Tiny models and batches for executor tests ----===//

#ifndef SEQ1F1B_UNITTESTS_RUNTIME_PIPELINETESTUTIL_H
#define SEQ1F1B_UNITTESTS_RUNTIME_PIPELINETESTUTIL_H

#include "seq1f1b/runtime/inprocess_comm.h"
#include "seq1f1b/runtime/models.h"
#include "seq1f1b/runtime/pipeline.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <tuple>

namespace s1f::rt::test {

struct ModelCase {
  std::string name;
  Graph graph;
  int vocab;
  int64_t batch, seq; ///< B, S
};

/// GPT-2: 2 layers, hidden 16, 2 heads, vocab 40.
inline GptConfig tinyGptConfig() {
  GptConfig c;
  c.layers = 2;
  c.hidden = 16;
  c.heads = 2;
  c.ffn = 64;
  c.vocab = 40;
  c.positions = 32;
  return c;
}

/// Tiny GPT-2 with B = 2, S = 11 (neither 2 nor 4 chunks divide it).
inline ModelCase tinyGptCase() {
  GptConfig c = tinyGptConfig();
  return {"gpt", buildGpt(c), c.vocab, 2, 11};
}

/// Llama: 2 layers, hidden 16, 4 heads / 2 kv heads (GQA, head_dim 4),
/// vocab 48.
inline LlamaConfig tinyLlamaConfig() {
  LlamaConfig c;
  c.layers = 2;
  c.hidden = 16;
  c.heads = 4;
  c.kvHeads = 2;
  c.ffn = 40;
  c.vocab = 48;
  return c;
}

/// tinyLlamaConfig's model, B = 1, S = 14 (4 chunks do not divide it).
inline ModelCase tinyLlamaCase() {
  LlamaConfig c = tinyLlamaConfig();
  return {"llama", buildLlama(c), c.vocab, 1, 14};
}

/// Mixtral: tinyLlamaConfig's model with 4 experts of width 12, 2 per
/// token, for its MLPs; B = 2, S = 13. Its routers start wide (std 1), so
/// that routing is far from uniform and their gradients are as large as
/// the other weights': a wrong one shows.
inline ModelCase tinyMixtralCase() {
  LlamaConfig c = tinyLlamaConfig();
  c.experts = 4;
  c.ffn = 12;
  c.topK = 2;
  Graph g = buildLlama(c);
  for (ParamSpec &p : g.params)
    if (p.name.find(".gate.weight") != std::string::npos)
      p.std = 1.0;
  return {"mixtral", std::move(g), c.vocab, 2, 13};
}

/// Random tokens; targets are the next token, -1 (ignored) at the end of
/// each sequence and at one more random place per micro-batch.
inline Batch makeBatch(const ModelCase &m, int microbatches, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int32_t> tok(0, m.vocab - 1);
  Batch b;
  b.batch = m.batch;
  b.seq = m.seq;
  for (int mb = 0; mb < microbatches; ++mb) {
    std::vector<int32_t> seqTokens(m.batch * (m.seq + 1));
    for (int32_t &t : seqTokens)
      t = tok(gen);
    std::vector<int32_t> tokens, targets;
    for (int64_t i = 0; i < m.batch; ++i)
      for (int64_t s = 0; s < m.seq; ++s) {
        tokens.push_back(seqTokens[i * (m.seq + 1) + s]);
        targets.push_back(s + 1 < m.seq ? seqTokens[i * (m.seq + 1) + s + 1]
                                        : -1);
      }
    targets[gen() % targets.size()] = -1;
    b.tokens.push_back(tokens);
    b.targets.push_back(targets);
  }
  return b;
}

inline PipelineOptions options(seq1f1b::schedule::ScheduleKind kind, int P,
                               int M, int N, ChunkPolicy policy) {
  PipelineOptions o;
  o.schedule.kind = kind;
  o.schedule.ranks = P;
  o.schedule.microbatches = M;
  o.schedule.chunks = N;
  o.schedule.virtualStages = seq1f1b::schedule::isInterleaved(kind) ? 2 : 1;
  o.chunkPolicy = policy;
  o.optimizer.adamw.lr = 1e-3;
  o.optimizer.adamw.weight_decay = 0.1;
  o.optimizer.maxGradNorm = 1.0;
  o.seed = 1234;
  return o;
}

inline double maxAbs(const std::vector<float> &x) {
  double m = 0;
  for (float v : x)
    m = std::max(m, std::fabs(double(v)));
  return m;
}

/// max |a - b| relative to max |b| (so near-zero elements do not dominate),
/// but never relative to less than `floor`: the gradient of the K bias is
/// zero in exact arithmetic (softmax ignores a constant per query), so its
/// reference is rounding noise (~1e-12) that no other order reproduces.
inline double relError(const std::vector<float> &a,
                       const std::vector<float> &b, double floor) {
  double diff = 0;
  for (size_t i = 0; i < a.size(); ++i)
    diff = std::max(diff, std::fabs(double(a[i]) - b[i]));
  return diff / std::max(maxAbs(b), floor);
}

/// The single-rank, full-sequence run every pipelined run is compared with:
/// P = 1, N = 1 over M micro-batches; its first-step gradients and its
/// losses over `steps` steps. `error` gets the first failed step's message.
struct Reference {
  double largestGrad = 0; ///< max |g| over all parameters
  std::map<std::string, std::vector<float>> grads;
  std::vector<double> losses;
};

inline Reference runReference(const ModelCase &m, int M, int steps,
                              std::string &error) {
  Reference ref;
  Pipeline pipe(m.graph,
                options(seq1f1b::schedule::ScheduleKind::GPipe, 1, M, 1,
                        ChunkPolicy::Even),
                static_cast<int>(m.seq));
  for (int step = 0; step < steps; ++step) {
    StepResult r = pipe.step(makeBatch(m, M, 100 + step));
    if (!r.ok) {
      error = r.error;
      return ref;
    }
    ref.losses.push_back(r.loss());
    if (step == 0)
      for (const ParamSpec &p : m.graph.params)
        ref.grads[p.name] = pipe.grad(p.name);
  }
  for (const auto &[name, g] : ref.grads)
    ref.largestGrad = std::max(ref.largestGrad, maxAbs(g));
  return ref;
}

/// runReference, run once per (model, M, steps) in this process; `error`
/// gets that run's failure, if any.
inline const Reference &cachedReference(const ModelCase &m, int M, int steps,
                                        std::string &error) {
  static std::map<std::tuple<std::string, int, int>,
                  std::pair<Reference, std::string>>
      cache;
  auto [it, inserted] = cache.try_emplace({m.name, M, steps});
  if (inserted)
    it->second.first = runReference(m, M, steps, it->second.second);
  error = it->second.second;
  return it->second.first;
}

/// Runs as many steps of `pipe` as `ref` ran, on the same batches (`mbs`
/// micro-batches each), and expects every loss, and every gradient of the
/// first step, to equal the reference's within `tol` (relative; a gradient
/// against at least 1e-3 of the largest).
inline void expectReferenceSteps(Pipeline &pipe, const ModelCase &m,
                                 const Reference &ref, int mbs, double tol) {
  for (int step = 0; step < static_cast<int>(ref.losses.size()); ++step) {
    StepResult r = pipe.step(makeBatch(m, mbs, 100 + step));
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_LE(std::fabs(r.loss() - ref.losses[step]) / ref.losses[step], tol)
        << "step " << step;
    if (step > 0)
      continue;
    for (const ParamSpec &p : m.graph.params)
      EXPECT_LE(relError(pipe.grad(p.name), ref.grads.at(p.name),
                         1e-3 * ref.largestGrad),
                tol)
          << "gradient of " << p.name;
  }
}

/// expectReferenceSteps against the single-rank run of all of `pipe`'s
/// micro-batches (every replica's), `steps` steps.
inline void expectMatchesReference(Pipeline &pipe, const ModelCase &m,
                                   int steps, double tol) {
  const PipelineOptions &o = pipe.plan().options();
  const int mbs = o.dataParallel * o.schedule.microbatches;
  std::string error;
  const Reference &ref = cachedReference(m, mbs, steps, error);
  ASSERT_TRUE(error.empty()) << error;
  expectReferenceSteps(pipe, m, ref, mbs, tol);
}

/// One step of `ranks` (world rank i is ranks[i]) as threads over an
/// InProcessWorld, as an MPI job drives them: one result per rank.
inline std::vector<RankStepResult>
stepRanks(std::vector<std::unique_ptr<PipelineRank>> &ranks,
          const Batch &batch) {
  const int W = static_cast<int>(ranks.size());
  InProcessWorld world(W, std::chrono::milliseconds(20000));
  std::vector<RankStepResult> results(W);
  std::vector<std::thread> threads;
  for (int w = 0; w < W; ++w)
    threads.emplace_back(
        [&, w] { results[w] = ranks[w]->step(batch, world.comm(w)); });
  for (std::thread &t : threads)
    t.join();
  return results;
}

} // namespace s1f::rt::test

#endif // SEQ1F1B_UNITTESTS_RUNTIME_PIPELINETESTUTIL_H
