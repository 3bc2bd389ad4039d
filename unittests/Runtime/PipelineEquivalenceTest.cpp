//===- PipelineEquivalenceTest.cpp - Pipelined runs equal one full pass ---===//
//
// For tiny GPT-2, Llama and Mixtral (a mixture of experts) models, every
// schedule kind, P in {1,2,4}, N in {1,2,4} (chunked kinds), M in
// {1,3} (and 4 for interleaved kinds) and both chunk policies: the loss and every parameter gradient of
// the pipelined step equal those of a single-rank, full-sequence run of the
// same micro-batches (fp32, 1e-5 relative), and after 5 AdamW steps the
// losses still agree. Combinations the schedule library rejects (interleaved
// with M*N not divisible by P) are skipped.
//
//===----------------------------------------------------------------------===//

#include "PipelineTestUtil.h"
#include "seq1f1b/runtime/graph_json.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

namespace s1f::rt::test {
namespace {

namespace sched = seq1f1b::schedule;
using sched::ScheduleKind;

constexpr double kTol = 1e-5;
constexpr int kSteps = 5;

const Reference &reference(const ModelCase &m, int M) {
  std::string error;
  const Reference &ref = cachedReference(m, M, kSteps, error);
  EXPECT_TRUE(error.empty()) << error;
  return ref;
}

struct Case {
  ScheduleKind kind;
  int P, N, M;
  ChunkPolicy policy;
  bool trainSteps; ///< also run kSteps optimizer steps
};

std::string describe(const Case &c) {
  return std::string(sched::scheduleKindName(c.kind)) + " P=" +
         std::to_string(c.P) + " N=" + std::to_string(c.N) +
         " M=" + std::to_string(c.M) +
         (c.policy == ChunkPolicy::Even ? " even" : " flops");
}

/// The grid for one kind. Interleaved kinds need M*N % P == 0, so they also
/// get M = 4 (else only P = 1 would run unchunked). Optimizer steps run for
/// P >= 2 at M >= 3.
std::vector<Case> grid(ScheduleKind kind) {
  std::vector<Case> cases;
  std::vector<int> chunks = sched::isSequenceChunked(kind)
                                ? std::vector<int>{1, 2, 4}
                                : std::vector<int>{1};
  for (int N : chunks)
    for (ChunkPolicy policy : {ChunkPolicy::Even, ChunkPolicy::Flops}) {
      if (N == 1 && policy == ChunkPolicy::Flops)
        continue;
      std::vector<int> mbs{1, 3};
      if (sched::isInterleaved(kind))
        mbs.push_back(4);
      for (int M : mbs)
        for (int P : {1, 2, 4})
          cases.push_back({kind, P, N, M, policy, M >= 3 && P >= 2});
    }
  return cases;
}

class Equivalence
    : public ::testing::TestWithParam<std::tuple<int, ScheduleKind>> {};

TEST_P(Equivalence, LossAndEveryGradientMatchTheReference) {
  const int model = std::get<0>(GetParam());
  const ModelCase m = model == 0   ? tinyGptCase()
                      : model == 1 ? tinyLlamaCase()
                                   : tinyMixtralCase();
  int ran = 0, skipped = 0;
  double worst = 0;
  for (const Case &c : grid(std::get<1>(GetParam()))) {
    SCOPED_TRACE(m.name + " " + describe(c));
    std::unique_ptr<Pipeline> pipe;
    try {
      pipe = std::make_unique<Pipeline>(
          m.graph, options(c.kind, c.P, c.M, c.N, c.policy),
          static_cast<int>(m.seq));
    } catch (const std::invalid_argument &e) {
      // Only the schedule library may reject a combination.
      EXPECT_NE(std::string(e.what()).find("schedule: "), std::string::npos)
          << e.what();
      ++skipped;
      continue;
    }
    ++ran;
    const Reference &ref = reference(m, c.M);
    const int steps = c.trainSteps ? kSteps : 1;
    for (int step = 0; step < steps; ++step) {
      StepResult r = pipe->step(makeBatch(m, c.M, 100 + step));
      ASSERT_TRUE(r.ok) << r.error;
      double lossErr = std::fabs(r.loss() - ref.losses[step]) / ref.losses[step];
      EXPECT_LE(lossErr, kTol) << "step " << step << ": " << r.loss()
                               << " vs " << ref.losses[step];
      worst = std::max(worst, lossErr);
      if (step > 0)
        continue;
      for (const ParamSpec &p : m.graph.params) {
        double err = relError(pipe->grad(p.name), ref.grads.at(p.name),
                              1e-3 * ref.largestGrad);
        EXPECT_LE(err, kTol) << "gradient of " << p.name;
        worst = std::max(worst, err);
      }
    }
  }
  std::printf("[ %s %s ] %d configurations compared, %d rejected by the "
              "schedule library, worst relative error %.2e\n",
              m.name.c_str(),
              std::string(sched::scheduleKindName(std::get<1>(GetParam())))
                  .c_str(),
              ran, skipped, worst);
  EXPECT_GT(ran, 0);
}

std::string caseName(
    const ::testing::TestParamInfo<std::tuple<int, ScheduleKind>> &info) {
  std::string kind(sched::scheduleKindName(std::get<1>(info.param)));
  std::replace(kind.begin(), kind.end(), '-', '_');
  static const char *const models[] = {"gpt_", "llama_", "mixtral_"};
  return models[std::get<0>(info.param)] + kind;
}

INSTANTIATE_TEST_SUITE_P(
    AllKinds, Equivalence,
    ::testing::Combine(::testing::Values(0, 1, 2),
                       ::testing::ValuesIn(sched::generatableScheduleKinds())),
    caseName);

} // namespace
} // namespace s1f::rt::test

namespace s1f::rt::test {
namespace {

// The optimizer really trains (so matching losses after steps mean
// something): a fixed batch is fitted by a pipelined run.
TEST(PipelineTraining, LossFallsOnAFixedBatch) {
  ModelCase m = tinyLlamaCase();
  PipelineOptions o = options(seq1f1b::schedule::ScheduleKind::Seq1F1BZB, 2, 2,
                              3, ChunkPolicy::Flops);
  o.optimizer.adamw.lr = 1e-2;
  Pipeline pipe(m.graph, o, static_cast<int>(m.seq));
  Batch batch = makeBatch(m, 2, 9);
  double first = 0, last = 0;
  for (int step = 0; step < 30; ++step) {
    StepResult r = pipe.step(batch);
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_GT(r.gradNorm, 0);
    (step == 0 ? first : last) = r.loss();
  }
  EXPECT_LT(last, 0.7 * first) << first << " -> " << last;
}

// An embedding scaled by s (Gemma's sqrt(hidden)) over table T is the
// unscaled embedding over s T, so the loss is the same and the table's
// gradient is s times the unscaled one's (Llama's head is untied).
TEST(PipelineTraining, ScaledEmbeddingIsTheUnscaledOneOfAScaledTable) {
  ModelCase m = tinyLlamaCase();
  const double s = 3.0;
  Graph scaled = m.graph;
  std::vector<std::string> tables;
  for (Op &op : scaled.ops)
    if (op.kind == OpKind::Embedding) {
      op.scale = s;
      tables.push_back(scaled.params[op.params[0]].name);
    }
  ASSERT_EQ(tables.size(), 1u);
  const std::string table = tables[0];
  Batch batch = makeBatch(m, 2, 6);
  PipelineOptions o = options(seq1f1b::schedule::ScheduleKind::Seq1F1B, 2, 2,
                              2, ChunkPolicy::Even);
  o.optimizer.adamw.lr = 0; // compare the first step's gradients
  Pipeline a(scaled, o, static_cast<int>(m.seq));
  Pipeline b(m.graph, o, static_cast<int>(m.seq));
  TensorMap params = a.trainingState();
  for (float &v : params.at(table).data)
    v *= static_cast<float>(s);
  b.setParams(params);
  StepResult ra = a.step(batch), rb = b.step(batch);
  ASSERT_TRUE(ra.ok && rb.ok);
  EXPECT_NEAR(ra.loss(), rb.loss(), 1e-5 * rb.loss());
  std::vector<float> expected = b.grad(table);
  for (float &v : expected)
    v *= static_cast<float>(s);
  EXPECT_LT(relError(a.grad(table), expected, 1e-6), 1e-5);
}

// Qwen3's per-head norms of q and k: the gradient of each shared weight
// (summed over heads and tokens) is the loss's finite difference (fp32, so a
// wide step and a loose bound); a pipelined, chunked run gives the same.
TEST(PipelineTraining, PerHeadNormGradientIsTheFiniteDifference) {
  ModelCase m = tinyLlamaCase();
  LlamaConfig c = tinyLlamaConfig();
  c.qkNorm = true;
  m.graph = buildLlama(c);
  Batch batch = makeBatch(m, 2, 9);
  PipelineOptions o = options(seq1f1b::schedule::ScheduleKind::GPipe, 1, 2, 1,
                              ChunkPolicy::Even);
  o.optimizer.adamw.lr = 0;
  Pipeline pipe(m.graph, o, static_cast<int>(m.seq));
  TensorMap params = pipe.trainingState();
  // Random weights: ones would make every head's gradient alike.
  uint32_t state = 7;
  for (auto &[name, t] : params)
    if (name.find("_norm") != std::string::npos)
      for (float &v : t.data) {
        state = state * 1664525u + 1013904223u;
        v = 0.5f + static_cast<float>(state >> 8) / float(1 << 24);
      }
  pipe.setParams(params);
  StepResult r = pipe.step(batch);
  ASSERT_TRUE(r.ok) << r.error;
  const std::string names[] = {"layers.0.self_attn.q_norm.weight",
                               "layers.1.self_attn.k_norm.weight"};
  std::map<std::string, std::vector<float>> grads;
  for (const std::string &name : names)
    grads[name] = pipe.grad(name);
  for (const std::string &name : names) {
    const std::vector<float> &grad = grads[name];
    ASSERT_EQ(grad.size(), 4u);
    std::vector<float> fd(grad.size());
    const float h = 0.05f;
    for (size_t i = 0; i < grad.size(); ++i) {
      double loss[2];
      for (int side = 0; side < 2; ++side) {
        TensorMap moved = params;
        moved.at(name).data[i] += side ? h : -h;
        pipe.setParams(moved);
        StepResult s = pipe.step(batch);
        ASSERT_TRUE(s.ok) << s.error;
        loss[side] = s.loss();
      }
      fd[i] = static_cast<float>((loss[1] - loss[0]) / (2 * h));
    }
    EXPECT_LT(relError(grad, fd, 1e-4), 1e-2) << name;
  }
  PipelineOptions chunked = options(seq1f1b::schedule::ScheduleKind::Seq1F1B,
                                    2, 2, 3, ChunkPolicy::Even);
  chunked.optimizer.adamw.lr = 0;
  Pipeline piped(m.graph, chunked, static_cast<int>(m.seq));
  piped.setParams(params);
  pipe.setParams(params);
  ASSERT_TRUE(piped.step(batch).ok && pipe.step(batch).ok);
  EXPECT_LT(relError(piped.grad("layers.0.self_attn.q_norm.weight"),
                     pipe.grad("layers.0.self_attn.q_norm.weight"), 1e-6),
            1e-5);
}

// A residual branch scaled by s (Granite's residual_multiplier) is the
// unscaled branch of s times its output projection: the same loss, and s
// times that projection's gradient.
TEST(PipelineTraining, ScaledBranchIsTheUnscaledOneOfAScaledProjection) {
  ModelCase m = tinyLlamaCase();
  const double s = 0.25;
  // Insert "scale" after every o_proj: its output value gets a new id.
  Graph g = m.graph;
  g.ops.clear();
  std::vector<int> remap(g.valueFeatures.size());
  for (size_t v = 0; v < remap.size(); ++v)
    remap[v] = static_cast<int>(v);
  std::vector<std::string> projections;
  for (Op op : m.graph.ops) {
    for (int &in : op.inputs)
      in = remap[in];
    g.ops.push_back(op);
    if (op.kind == OpKind::Linear &&
        g.params[op.params[0]].name.find("o_proj") != std::string::npos) {
      projections.push_back(g.params[op.params[0]].name);
      Op scale;
      scale.kind = OpKind::Scale;
      scale.inputs = {op.output};
      scale.output = static_cast<int>(g.valueFeatures.size());
      scale.scale = s;
      g.valueFeatures.push_back(g.valueFeatures[op.output]);
      remap[op.output] = scale.output;
      g.ops.push_back(scale);
    }
  }
  ASSERT_EQ(projections.size(), 2u);
  Batch batch = makeBatch(m, 2, 6);
  PipelineOptions o = options(seq1f1b::schedule::ScheduleKind::Seq1F1B, 2, 2,
                              2, ChunkPolicy::Even);
  o.optimizer.adamw.lr = 0; // compare the first step's gradients
  Pipeline a(graphFromJson(graphToJson(g)), o, static_cast<int>(m.seq));
  Pipeline b(m.graph, o, static_cast<int>(m.seq));
  TensorMap params = a.trainingState();
  for (const std::string &name : projections)
    for (float &v : params.at(name).data)
      v *= static_cast<float>(s);
  b.setParams(params);
  StepResult ra = a.step(batch), rb = b.step(batch);
  ASSERT_TRUE(ra.ok && rb.ok) << ra.error << rb.error;
  EXPECT_NEAR(ra.loss(), rb.loss(), 1e-5 * rb.loss());
  for (const std::string &name : projections) {
    std::vector<float> expected = b.grad(name);
    for (float &v : expected)
      v *= static_cast<float>(s);
    EXPECT_LT(relError(a.grad(name), expected, 1e-6), 1e-5) << name;
  }
}

// Weight decay shrinks the matrices only: biases and norm weights (the
// 1-D parameters) take the same step with and without it, as Megatron and
// transformers' Trainer exclude them.
TEST(PipelineTraining, WeightDecaySkipsBiasesAndNorms) {
  ModelCase m = tinyGptCase();
  Batch batch = makeBatch(m, 2, 5);
  auto stepWith = [&](double decay) {
    PipelineOptions o = options(seq1f1b::schedule::ScheduleKind::Seq1F1B, 2,
                                2, 2, ChunkPolicy::Even);
    o.optimizer.adamw.lr = 1e-2;
    o.optimizer.adamw.weight_decay = decay;
    Pipeline pipe(m.graph, o, static_cast<int>(m.seq));
    EXPECT_TRUE(pipe.step(batch).ok);
    return pipe.trainingState();
  };
  const TensorMap without = stepWith(0), with = stepWith(0.5);
  int vectors = 0, matrices = 0;
  for (const ParamSpec &p : m.graph.params) {
    const std::vector<float> &a = without.at(p.name).data,
                             &b = with.at(p.name).data;
    if (p.shape.size() == 1) {
      EXPECT_EQ(a, b) << p.name;
      ++vectors;
    } else {
      EXPECT_NE(a, b) << p.name;
      ++matrices;
    }
  }
  EXPECT_GT(vectors, 0);
  EXPECT_GT(matrices, 0);
}

} // namespace
} // namespace s1f::rt::test
