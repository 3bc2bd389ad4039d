//===- PipelineTensorParallelTest.cpp - Split layers equal whole ones -----===//
//
// Tensor parallelism as a graph rewrite (tensor_parallel.h): the sharded
// graph's structure; parts and wholes of parameters; the vocabulary-parallel
// cross-entropy against the whole one; and pipelined runs of
// T tensor-parallel ranks per stage (with replicas, recomputation and the
// zero-bubble split) whose loss and every gradient equal the single-rank,
// whole-graph run (fp32, 1e-5 relative), whose losses still agree after
// AdamW steps, and whose tensor-parallel ranks keep the whole parameters
// bitwise the same.
//
//===----------------------------------------------------------------------===//

#include "PipelineTestUtil.h"

#include "seq1f1b/runtime/inprocess_comm.h"
#include "seq1f1b/runtime/tensor_parallel.h"

#include <gtest/gtest.h>

#include <random>
#include <thread>

namespace s1f::rt::test {
namespace {

namespace sched = seq1f1b::schedule;
using sched::ScheduleKind;

constexpr double kTol = 1e-5;
constexpr int kSteps = 3;

int countOps(const Graph &g, OpKind kind) {
  return static_cast<int>(std::count_if(
      g.ops.begin(), g.ops.end(), [&](const Op &op) { return op.kind == kind; }));
}

const ParamSpec &param(const Graph &g, const std::string &name) {
  return g.params.at(g.paramIndex(name));
}

std::string thrown(const Graph &g, int tp) {
  try {
    shardTensorParallel(g, tp);
  } catch (const std::invalid_argument &e) {
    return e.what();
  }
  return "";
}

/// Tiny Llama with OLMo 2's q and k norms: RMSNorm over all heads at once,
/// before rope.
ModelCase olmoCase() {
  ModelCase m = tinyLlamaCase();
  m.name = "olmo";
  Graph &g = m.graph;
  for (size_t i = 0; i < g.ops.size(); ++i) {
    if (g.ops[i].kind != OpKind::Rope)
      continue;
    Op norm;
    norm.kind = OpKind::RmsNorm;
    norm.inputs = {g.ops[i].inputs[0]};
    norm.output = static_cast<int>(g.valueFeatures.size());
    g.valueFeatures.push_back(g.valueFeatures[norm.inputs[0]]);
    g.params.push_back({"norm." + std::to_string(i),
                        {g.valueFeatures[norm.output]}});
    g.params.back().init = InitKind::Ones;
    norm.params = {static_cast<int>(g.params.size()) - 1};
    g.ops[i].inputs[0] = norm.output;
    g.ops.insert(g.ops.begin() + i, norm);
    ++i;
  }
  g.validate();
  return m;
}

TEST(TensorParallel, ShardsLinearsHeadsAndInsertsTheCollectives) {
  const Graph whole = tinyLlamaCase().graph; // 4 heads, 2 kv heads
  const Graph g = shardTensorParallel(whole, 2);
  EXPECT_EQ(g.tensorParallel, 2);
  // Per layer: f before q/k/v and before gate/up; g after o and down. The
  // vocabulary: g after the embedding, f before the head.
  EXPECT_EQ(countOps(g, OpKind::TpCopy), 2 * 2 + 1);
  EXPECT_EQ(countOps(g, OpKind::TpReduce), 2 * 2 + 1);
  EXPECT_EQ(g.ops.size(), whole.ops.size() + 10);
  const ParamSpec &q = param(g, "layers.0.self_attn.q_proj.weight");
  EXPECT_EQ(q.shape, (std::vector<int64_t>{8, 16}));
  EXPECT_EQ(q.tpDim, 0);
  EXPECT_FALSE(q.tpPartialGrad);
  const ParamSpec &down = param(g, "layers.0.mlp.down_proj.weight");
  EXPECT_EQ(down.shape, (std::vector<int64_t>{16, 20}));
  EXPECT_EQ(down.tpDim, 1);
  const ParamSpec &norm = param(g, "layers.0.input_layernorm.weight");
  EXPECT_EQ(norm.tpDim, -1);
  EXPECT_FALSE(norm.tpPartialGrad);
  // The vocabulary (48) is split: tables, head and loss.
  EXPECT_EQ(param(g, "lm_head.weight").shape, (std::vector<int64_t>{24, 16}));
  EXPECT_EQ(param(g, "embed_tokens").tpDim, 0);
  EXPECT_TRUE(g.ops.front().tpSplit);
  EXPECT_TRUE(g.ops.back().tpSplit);
  for (const Op &op : g.ops)
    if (op.kind == OpKind::Attention) {
      EXPECT_EQ(op.heads, 2);
      EXPECT_EQ(op.kvHeads, 1);
    }
  // With more ranks than kv heads, two ranks share each kv head.
  const Graph g4 = shardTensorParallel(whole, 4);
  const ParamSpec &k = param(g4, "layers.0.self_attn.k_proj.weight");
  EXPECT_EQ(k.tpParts, 2);
  EXPECT_EQ(k.shape, (std::vector<int64_t>{4, 16}));
  EXPECT_TRUE(k.tpPartialGrad);
  EXPECT_EQ(tpPartOf(k, 3, 4), 1);
  // A vocabulary the ranks do not divide stays whole.
  LlamaConfig odd = tinyLlamaConfig();
  odd.vocab = 50;
  const Graph g4odd = shardTensorParallel(buildLlama(odd), 4);
  EXPECT_EQ(param(g4odd, "lm_head.weight").tpDim, -1);
  EXPECT_FALSE(g4odd.ops.back().tpSplit);
  // One rank: the graph as it was.
  EXPECT_EQ(shardTensorParallel(whole, 1).ops.size(), whole.ops.size());
}

TEST(TensorParallel, APerHeadNormWeightIsWholeWithAPartialGradient) {
  LlamaConfig c = tinyLlamaConfig();
  c.qkNorm = true;
  const Graph g = shardTensorParallel(buildLlama(c), 2);
  const ParamSpec &qNorm = param(g, "layers.0.self_attn.q_norm.weight");
  EXPECT_EQ(qNorm.tpDim, -1);
  EXPECT_TRUE(qNorm.tpPartialGrad);
}

TEST(TensorParallel, ANormOverAllHeadsSumsItsSquaresOverTheRanks) {
  const Graph g = shardTensorParallel(olmoCase().graph, 2);
  int split = 0;
  for (const Op &op : g.ops)
    if (op.kind == OpKind::RmsNorm && op.tpSplit) {
      ++split;
      const ParamSpec &w = g.params[op.params[0]];
      EXPECT_EQ(w.tpDim, 0);
      EXPECT_FALSE(w.tpPartialGrad); // each rank's features, whole
    }
  EXPECT_EQ(split, 2 * 2); // q and k of 2 layers
}

TEST(TensorParallel, PartsPutTogetherGiveTheWhole) {
  ParamSpec rows{"w", {2, 3}}, cols{"w", {4, 1}}, shared{"k", {1, 2}};
  rows.tpDim = 0, rows.tpParts = 2;   // whole [4, 3]
  cols.tpDim = 1, cols.tpParts = 2;   // whole [4, 2]
  shared.tpDim = 0, shared.tpParts = 2; // whole [2, 2], 4 ranks
  std::vector<float> w12(12), w8(8), w4(4);
  for (size_t i = 0; i < w12.size(); ++i)
    w12[i] = float(i);
  std::copy_n(w12.begin(), 8, w8.begin());
  std::copy_n(w12.begin(), 4, w4.begin());
  EXPECT_EQ(shardOf(rows, w12, 1, 2),
            (std::vector<float>{6, 7, 8, 9, 10, 11}));
  EXPECT_EQ(shardOf(cols, w8, 1, 2), (std::vector<float>{1, 3, 5, 7}));
  EXPECT_EQ(shardOf(shared, w4, 1, 4), (std::vector<float>{0, 1}));
  EXPECT_EQ(shardOf(shared, w4, 2, 4), (std::vector<float>{2, 3}));
  EXPECT_EQ(unshard(rows, {shardOf(rows, w12, 0, 2), shardOf(rows, w12, 1, 2)}),
            w12);
  EXPECT_EQ(unshard(cols, {shardOf(cols, w8, 0, 2), shardOf(cols, w8, 1, 2)}),
            w8);
  ParamSpec whole{"b", {3}};
  EXPECT_EQ(shardOf(whole, {1, 2, 3}, 1, 2), (std::vector<float>{1, 2, 3}));
  // Two experts' stacked rows [4, 1] (rows 0-1 expert 0, 2-3 expert 1): each
  // rank holds its slice of every expert.
  ParamSpec experts{"e", {2, 1}};
  experts.tpDim = 0, experts.tpParts = 2, experts.tpGroups = 2;
  const std::vector<float> e4{0, 1, 2, 3};
  EXPECT_EQ(shardOf(experts, e4, 0, 2), (std::vector<float>{0, 2}));
  EXPECT_EQ(shardOf(experts, e4, 1, 2), (std::vector<float>{1, 3}));
  EXPECT_EQ(unshard(experts,
                    {shardOf(experts, e4, 0, 2), shardOf(experts, e4, 1, 2)}),
            e4);
}

TEST(TensorParallel, VocabParallelCrossEntropyEqualsTheWholeOne) {
  constexpr int T = 3;
  constexpr int64_t N = 5, V = 12, part = V / T;
  std::mt19937 gen(9);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  std::vector<float> logits(N * V);
  for (float &x : logits)
    x = dist(gen);
  const std::vector<int32_t> targets = {0, 11, -1, 5, 4}; // every rank's
  std::vector<float> lse(N), dlogits(N * V);
  const cpu::LossSum whole =
      cpu::cross_entropy_fwd(logits.data(), targets.data(), lse.data(), N, V);
  cpu::cross_entropy_bwd(logits.data(), targets.data(), lse.data(),
                         dlogits.data(), N, V, 0.25f);
  InProcessWorld world(T, std::chrono::milliseconds(20000));
  std::vector<cpu::LossSum> losses(T);
  std::vector<std::vector<float>> lses(T, std::vector<float>(N)),
      grads(T, std::vector<float>(N * part));
  std::vector<std::thread> threads;
  for (int t = 0; t < T; ++t)
    threads.emplace_back([&, t] {
      std::vector<float> mine;
      for (int64_t r = 0; r < N; ++r)
        mine.insert(mine.end(), logits.begin() + r * V + t * part,
                    logits.begin() + r * V + (t + 1) * part);
      losses[t] = vocabParallelCrossEntropyFwd(
          mine.data(), targets.data(), lses[t].data(), N, part, t * part,
          world.comm(t), Tag{MsgKind::TensorParallel, 0, 0, 0});
      vocabParallelCrossEntropyBwd(mine.data(), targets.data(),
                                   lses[t].data(), grads[t].data(), N, part,
                                   t * part, 0.25f);
    });
  for (std::thread &th : threads)
    th.join();
  for (int t = 0; t < T; ++t) {
    EXPECT_NEAR(losses[t].loss_sum, whole.loss_sum, 1e-5);
    EXPECT_EQ(losses[t].count, whole.count);
    for (int64_t r = 0; r < N; ++r) {
      EXPECT_NEAR(lses[t][r], lse[r], 1e-5);
      for (int64_t j = 0; j < part; ++j)
        EXPECT_NEAR(grads[t][r * part + j], dlogits[r * V + t * part + j], 1e-6)
            << "rank " << t << " row " << r << " column " << j;
    }
  }
}

TEST(TensorParallel, SplitRmsNormEqualsTheWholeOne) {
  constexpr int T = 2;
  constexpr int64_t N = 3, D = 8, part = D / T;
  std::mt19937 gen(4);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(N * D), gamma(D), dy(N * D);
  for (std::vector<float> *v : {&x, &gamma, &dy})
    for (float &e : *v)
      e = dist(gen);
  std::vector<float> y(N * D), rstd(N), dx(N * D), dgamma(D, 0.0f);
  cpu::rms_norm_fwd(x.data(), gamma.data(), y.data(), rstd.data(), N, D, 1e-6f);
  cpu::rms_norm_bwd(x.data(), gamma.data(), rstd.data(), dy.data(), dx.data(),
                    dgamma.data(), N, D);
  auto columns = [&](const std::vector<float> &m, int t) {
    std::vector<float> c(N * part);
    for (int64_t r = 0; r < N; ++r)
      for (int64_t j = 0; j < part; ++j)
        c[r * part + j] = m[r * D + t * part + j];
    return c;
  };
  InProcessWorld world(T, std::chrono::milliseconds(20000));
  std::vector<std::vector<float>> ys(T), dxs(T), dgammas(T);
  std::vector<std::thread> threads;
  for (int t = 0; t < T; ++t)
    threads.emplace_back([&, t] {
      const std::vector<float> xt = columns(x, t), dyt = columns(dy, t);
      std::vector<float> gt(part);
      for (int64_t j = 0; j < part; ++j)
        gt[j] = gamma[t * part + j];
      std::vector<float> rs(N);
      ys[t].resize(N * part), dxs[t].resize(N * part);
      dgammas[t].assign(part, 0.0f);
      const Tag tag{MsgKind::TensorParallel, 0, 0, 0};
      splitRmsNormFwd(xt.data(), gt.data(), ys[t].data(), rs.data(), N, part,
                      D, 1e-6, world.comm(t), tag);
      splitRmsNormBwd(xt.data(), gt.data(), rs.data(), dyt.data(),
                      dxs[t].data(), dgammas[t].data(), N, part, D,
                      world.comm(t), tag);
    });
  for (std::thread &th : threads)
    th.join();
  for (int t = 0; t < T; ++t) {
    const std::vector<float> yt = columns(y, t), dxt = columns(dx, t);
    for (int64_t i = 0; i < N * part; ++i) {
      EXPECT_NEAR(ys[t][i], yt[i], 1e-6) << "y, rank " << t;
      EXPECT_NEAR(dxs[t][i], dxt[i], 1e-6) << "dx, rank " << t;
    }
    for (int64_t j = 0; j < part; ++j)
      EXPECT_NEAR(dgammas[t][j], dgamma[t * part + j], 1e-6);
  }
}

TEST(TensorParallel, GraphsItCannotSplitAreErrorsNamingTheOp) {
  const Graph gpt = tinyGptCase().graph; // 2 heads
  EXPECT_NE(thrown(gpt, 4).find("op 7 (attention): its heads (2) is not "
                                "divisible by 4 (the tensor-parallel ranks)"),
            std::string::npos)
      << thrown(gpt, 4);
  EXPECT_NE(thrown(tinyLlamaCase().graph, 3).find("heads (4) is not divisible"),
            std::string::npos);
  EXPECT_NE(thrown(gpt, 0).find("tensor parallelism must be >= 1"),
            std::string::npos);
  // OLMo 2's k norm (over all kv heads at once) with 2 kv heads: 4 ranks
  // would hold each kv head twice.
  EXPECT_NE(thrown(olmoCase().graph, 4)
                .find("(rms_norm): normalizes all kv heads together, and 4 "
                      "ranks share 2 parts of them"),
            std::string::npos)
      << thrown(olmoCase().graph, 4);
  EXPECT_THROW(shardTensorParallel(shardTensorParallel(gpt, 2), 2),
               std::invalid_argument);
  // Experts of width 10 do not split over 4 ranks.
  LlamaConfig narrow = tinyLlamaConfig();
  narrow.experts = 4;
  narrow.ffn = 10;
  const Graph mixtral = buildLlama(narrow);
  EXPECT_NE(thrown(mixtral, 4).find(
                "(moe): its experts' width (10) is not divisible by 4"),
            std::string::npos)
      << thrown(mixtral, 4);
}

struct Case {
  ModelCase model;
  ScheduleKind kind;
  int P, N, T, D;
  bool recompute;
  bool sequenceParallel = false;
};

std::string describe(const Case &c) {
  return c.model.name + " " + std::string(sched::scheduleKindName(c.kind)) +
         " P=" + std::to_string(c.P) + " N=" + std::to_string(c.N) +
         " T=" + std::to_string(c.T) + " D=" + std::to_string(c.D) +
         (c.recompute ? " recompute" : "") +
         (c.sequenceParallel ? " sequence-parallel" : "");
}

ModelCase qwen3Case() {
  LlamaConfig c = tinyLlamaConfig();
  c.qkNorm = true;
  return {"qwen3", buildLlama(c), c.vocab, 1, 14};
}

/// A vocabulary of 50: 4 ranks hold the tables and the head whole.
ModelCase oddVocabCase() {
  LlamaConfig c = tinyLlamaConfig();
  c.vocab = 50;
  return {"llama-v50", buildLlama(c), c.vocab, 1, 14};
}

TEST(TensorParallel, SplitLayersEqualTheSingleRankRun) {
  constexpr int M = 2;
  const std::vector<Case> cases = {
      {tinyGptCase(), ScheduleKind::OneFOneB, 2, 1, 2, 1, false},
      {tinyGptCase(), ScheduleKind::Seq1F1B, 2, 2, 2, 1, false},
      {tinyGptCase(), ScheduleKind::Seq1F1BZB, 2, 2, 2, 1, false},
      {tinyLlamaCase(), ScheduleKind::Seq1F1B, 2, 2, 2, 1, false},
      {tinyLlamaCase(), ScheduleKind::Seq1F1B, 1, 4, 4, 1, false}, // kv shared
      {tinyLlamaCase(), ScheduleKind::Seq1F1BInterleaved, 2, 2, 2, 1, false},
      {tinyLlamaCase(), ScheduleKind::ZBH1, 2, 1, 2, 1, false},
      {tinyLlamaCase(), ScheduleKind::Seq1F1B, 2, 2, 2, 1, true},
      {tinyLlamaCase(), ScheduleKind::Seq1F1B, 2, 2, 2, 2, false},
      {qwen3Case(), ScheduleKind::Seq1F1B, 2, 2, 2, 1, false},
      {qwen3Case(), ScheduleKind::Seq1F1B, 1, 2, 4, 1, false},
      {oddVocabCase(), ScheduleKind::Seq1F1B, 2, 2, 4, 1, false},
      {olmoCase(), ScheduleKind::Seq1F1B, 2, 2, 2, 1, false},
      {olmoCase(), ScheduleKind::Seq1F1BZB, 2, 2, 2, 1, false},
      // Sequence parallelism: GPT-2's position embeddings and biases (B = 2).
      {tinyGptCase(), ScheduleKind::Seq1F1B, 2, 2, 2, 1, false, true},
      {tinyLlamaCase(), ScheduleKind::Seq1F1B, 1, 2, 4, 1, false, true},
      {tinyLlamaCase(), ScheduleKind::Seq1F1BZB, 2, 2, 2, 2, false, true},
      {qwen3Case(), ScheduleKind::Seq1F1B, 2, 2, 2, 1, true, true},
      {olmoCase(), ScheduleKind::Seq1F1BInterleaved, 2, 2, 2, 1, false, true},
      // Mixtral: each expert's width split, the routing weights' gradients
      // summed over the ranks.
      {tinyMixtralCase(), ScheduleKind::Seq1F1B, 2, 2, 2, 1, false},
      {tinyMixtralCase(), ScheduleKind::Seq1F1BZB, 1, 2, 4, 2, false},
      {tinyMixtralCase(), ScheduleKind::Seq1F1B, 2, 2, 2, 1, true},
      {tinyMixtralCase(), ScheduleKind::Seq1F1B, 2, 2, 2, 1, false, true},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(describe(c));
    PipelineOptions o = options(c.kind, c.P, M, c.N, ChunkPolicy::Flops);
    o.tensorParallel = c.T;
    o.dataParallel = c.D;
    o.recompute = c.recompute;
    o.sequenceParallel = c.sequenceParallel;
    Pipeline pipe(c.model.graph, o, static_cast<int>(c.model.seq));
    EXPECT_EQ(pipe.plan().worldSize(), c.P * c.T * c.D);
    expectMatchesReference(pipe, c.model, kSteps, kTol);
  }
}

TEST(TensorParallel, SequenceParallelismSplitsTheResidualStreamByTokens) {
  const Graph g = shardTensorParallel(tinyLlamaCase().graph, 2, true);
  ASSERT_EQ(g.sequenceSplit.size(), g.valueFeatures.size());
  for (const Op &op : g.ops) {
    // Between the regions: the tables' partial sums and tp_copy's outputs
    // hold every token; what tp_reduce, norms and adds make, the rank's.
    if (op.kind == OpKind::TpCopy) {
      EXPECT_TRUE(g.sequenceSplit[op.inputs[0]]);
      EXPECT_FALSE(g.sequenceSplit[op.output]);
    }
    if (op.kind == OpKind::TpReduce) {
      EXPECT_FALSE(g.sequenceSplit[op.inputs[0]]);
      EXPECT_TRUE(g.sequenceSplit[op.output]);
    }
    if (op.kind == OpKind::Attention || op.kind == OpKind::Swiglu) {
      EXPECT_FALSE(g.sequenceSplit[op.output]);
    }
    if (op.kind == OpKind::RmsNorm || op.kind == OpKind::Add) {
      EXPECT_TRUE(g.sequenceSplit[op.output]);
      for (int p : op.params)
        EXPECT_TRUE(g.params[p].tpPartialGrad) << g.params[p].name;
    }
  }
  // The stage cut's residual is split: pipeline messages carry 1/T.
  const ModelCase m = tinyLlamaCase();
  int64_t peak[2] = {0, 0};
  for (bool sp : {false, true}) {
    PipelineOptions o = options(ScheduleKind::Seq1F1B, 2, 2, 2, ChunkPolicy::Even);
    o.tensorParallel = 2;
    o.sequenceParallel = sp;
    Pipeline pipe(m.graph, o, static_cast<int>(m.seq));
    StepResult r = pipe.step(makeBatch(m, 2, 3));
    ASSERT_TRUE(r.ok) << r.error;
    for (const MemoryStats &s : r.memory)
      peak[sp] = std::max(peak[sp], s.peakOf(MemKind::Activations));
  }
  EXPECT_LT(peak[1], peak[0]);
  // It needs the vocabulary split, and tensor parallelism.
  LlamaConfig odd = tinyLlamaConfig();
  odd.vocab = 50;
  EXPECT_THROW(shardTensorParallel(buildLlama(odd), 4, true),
               std::invalid_argument);
  PipelineOptions alone = options(ScheduleKind::Seq1F1B, 1, 1, 1, ChunkPolicy::Even);
  alone.sequenceParallel = true;
  EXPECT_THROW(Pipeline(m.graph, alone, static_cast<int>(m.seq)),
               std::invalid_argument);
}

TEST(TensorParallel, RanksHoldingAWholeParameterMakeTheSameUpdate) {
  // The ranks driven as an MPI job drives them: one per world rank.
  const ModelCase m = qwen3Case();
  PipelineOptions o = options(ScheduleKind::Seq1F1B, 2, 2, 2, ChunkPolicy::Even);
  o.tensorParallel = 4; // kv heads shared by pairs of ranks
  auto plan = std::make_shared<const PipelinePlan>(m.graph, o,
                                                   static_cast<int>(m.seq));
  const int W = plan->worldSize();
  ASSERT_EQ(W, 8);
  std::vector<std::unique_ptr<PipelineRank>> ranks;
  for (int w = 0; w < W; ++w)
    ranks.push_back(std::make_unique<PipelineRank>(plan, w));
  EXPECT_EQ(ranks[5]->rank(), 1);
  EXPECT_EQ(ranks[5]->tpRank(), 1);
  for (int step = 0; step < kSteps; ++step) {
    const std::vector<RankStepResult> results =
        stepRanks(ranks, makeBatch(m, 2, 7 + step));
    for (const RankStepResult &r : results) {
      ASSERT_TRUE(r.ok) << r.error;
      EXPECT_EQ(r.lossSum, results[0].lossSum);
      EXPECT_EQ(r.gradNorm, results[0].gradNorm);
    }
  }
  // Every rank holding a part (or the whole) has the same numbers.
  const Graph &g = plan->graph();
  for (const ParamSpec &p : g.params)
    for (int w = 0; w < W; ++w)
      for (int u = w + 1; u < W; ++u)
        if (ranks[w]->rank() == ranks[u]->rank() && ranks[w]->holds(p.name) &&
            tpPartOf(p, ranks[w]->tpRank(), 4) ==
                tpPartOf(p, ranks[u]->tpRank(), 4)) {
          EXPECT_EQ(ranks[w]->param(p.name), ranks[u]->param(p.name))
              << p.name << " on world ranks " << w << " and " << u;
        }
}

TEST(TensorParallel, CheckpointsDoNotDependOnTheLayout) {
  // Two steps with T = 2, saved, restored into a T = 1 pipeline: its third
  // step is the third step of one uninterrupted T = 2 run.
  const ModelCase m = tinyLlamaCase();
  PipelineOptions split = options(ScheduleKind::Seq1F1B, 2, 2, 2, ChunkPolicy::Even);
  split.tensorParallel = 2;
  Pipeline a(m.graph, split, static_cast<int>(m.seq));
  for (int step = 0; step < 2; ++step)
    ASSERT_TRUE(a.step(makeBatch(m, 2, 50 + step)).ok);
  const TensorMap state = a.trainingState();
  EXPECT_EQ(state.at("layers.0.self_attn.q_proj.weight").shape,
            (std::vector<int64_t>{16, 16}));
  Pipeline b(m.graph, options(ScheduleKind::Seq1F1B, 2, 2, 2, ChunkPolicy::Even),
             static_cast<int>(m.seq));
  b.restore(state, a.optimizerSteps());
  StepResult ra = a.step(makeBatch(m, 2, 52)), rb = b.step(makeBatch(m, 2, 52));
  ASSERT_TRUE(ra.ok && rb.ok);
  EXPECT_LE(std::fabs(ra.loss() - rb.loss()) / rb.loss(), kTol);
  for (const ParamSpec &p : m.graph.params)
    EXPECT_LE(relError(a.param(p.name), b.param(p.name), 1e-6), kTol) << p.name;
}

} // namespace
} // namespace s1f::rt::test
