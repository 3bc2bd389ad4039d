//===- GraphTest.cpp - Model graph, JSON form, stage cut, chunk bounds ----===//

#include "seq1f1b/runtime/graph_json.h"
#include "seq1f1b/runtime/models.h"
#include "seq1f1b/runtime/partition.h"

#include "PipelineTestUtil.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <functional>

namespace s1f::rt {
namespace {

void expectThrowsWith(const std::function<void()> &f, const std::string &what) {
  try {
    f();
    FAIL() << "no exception; expected one containing: " << what;
  } catch (const std::invalid_argument &e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
}

TEST(Graph, GptMatchesImporterNames) {
  Graph g = buildGpt(test::tinyGptConfig());
  ASSERT_GE(g.params.size(), 4u);
  EXPECT_EQ(g.params[0].name, "wte");
  EXPECT_EQ(g.params[1].name, "wpe");
  EXPECT_EQ(g.params[2].name, "h.0.ln_1.weight");
  EXPECT_EQ(g.params.back().name, "ln_f.bias");
  EXPECT_EQ(g.params.size(), 2u + 2 * 16 + 2);
  // The head reads wte: tied.
  const Op &head = g.ops[g.ops.size() - 2];
  EXPECT_EQ(head.kind, OpKind::Linear);
  EXPECT_EQ(head.params, std::vector<int>{0});
  // c_proj std is scaled by 1/sqrt(2 * layers).
  EXPECT_NEAR(g.params[g.paramIndex("h.0.attn.c_proj.weight")].std, 0.01, 1e-12);
}

TEST(Graph, LlamaMatchesImporterNames) {
  Graph g = buildLlama(LlamaConfig{});
  EXPECT_EQ(g.params.front().name, "embed_tokens");
  EXPECT_EQ(g.params.back().name, "lm_head.weight");
  int k = g.paramIndex("layers.1.self_attn.k_proj.weight");
  ASSERT_GE(k, 0);
  EXPECT_EQ(g.params[k].shape, (std::vector<int64_t>{16, 32})); // kv = 2 * 8
  EXPECT_EQ(g.paramIndex("layers.0.self_attn.q_proj.bias"), -1);
}

TEST(Graph, InitIsDeterministicPerName) {
  Graph g = buildGpt(test::tinyGptConfig());
  auto a = initParams(g, 7), b = initParams(g, 7), c = initParams(g, 8);
  EXPECT_EQ(a, b);
  EXPECT_NE(a[0], c[0]);
  EXPECT_EQ(a[g.paramIndex("h.0.ln_1.weight")][3], 1.0f);
  EXPECT_EQ(a[g.paramIndex("h.0.ln_1.bias")][3], 0.0f);
  double sq = 0;
  for (float x : a[0])
    sq += x * x;
  EXPECT_NEAR(std::sqrt(sq / a[0].size()), 0.02, 0.003);
}

TEST(GraphJson, RoundTrip) {
  for (const Graph &g : {buildGpt(test::tinyGptConfig()), buildLlama(LlamaConfig{})}) {
    std::string text = graphToJson(g);
    Graph back = graphFromJson(text);
    EXPECT_EQ(graphToJson(back), text);
    EXPECT_EQ(back.ops.size(), g.ops.size());
    EXPECT_EQ(back.valueFeatures, g.valueFeatures);
  }
}

TEST(GraphJson, PartialRotaryAndExactGeluRoundTrip) {
  Graph g = buildLlama(LlamaConfig{});
  Graph gpt = buildGpt(test::tinyGptConfig());
  // Llama 3.1's scaling on the queries, YaRN's on the keys.
  bool queries = true;
  for (Op &op : g.ops)
    if (op.kind == OpKind::Rope) {
      op.rotaryDim = 2;
      RopeScaling &s = op.ropeScaling;
      s.factor = 8;
      s.originalContext = 8192;
      if (queries) {
        s.lowFreqFactor = 1;
        s.highFreqFactor = 4;
      } else {
        s.betaFast = 32;
        s.betaSlow = 1;
        s.attentionFactor = 1.25;
        s.interleaved = true;
      }
      queries = !queries;
    }
  for (Op &op : gpt.ops) {
    if (op.kind == OpKind::Gelu)
      op.exact = true;
    if (op.kind == OpKind::Embedding)
      op.scale = 4;
    if (op.kind == OpKind::Attention) {
      op.scoreScale = 0.25;
      op.softcap = 50;
    }
  }
  for (const Graph *graph : {&g, &gpt}) {
    const std::string text = graphToJson(*graph);
    const Graph back = graphFromJson(text);
    EXPECT_EQ(graphToJson(back), text);
    for (size_t i = 0; i < back.ops.size(); ++i) {
      EXPECT_EQ(back.ops[i].rotaryDim, graph->ops[i].rotaryDim);
      EXPECT_EQ(back.ops[i].ropeScaling.originalContext,
                graph->ops[i].ropeScaling.originalContext);
      const RopeScaling &a = back.ops[i].ropeScaling,
                        &b = graph->ops[i].ropeScaling;
      EXPECT_EQ(a.lowFreqFactor, b.lowFreqFactor);
      EXPECT_EQ(a.highFreqFactor, b.highFreqFactor);
      EXPECT_EQ(a.betaFast, b.betaFast);
      EXPECT_EQ(a.betaSlow, b.betaSlow);
      EXPECT_EQ(a.attentionFactor, b.attentionFactor);
      EXPECT_EQ(a.interleaved, b.interleaved);
      EXPECT_EQ(back.ops[i].exact, graph->ops[i].exact);
      EXPECT_EQ(back.ops[i].scale, graph->ops[i].scale);
      EXPECT_EQ(back.ops[i].scoreScale, graph->ops[i].scoreScale);
      EXPECT_EQ(back.ops[i].softcap, graph->ops[i].softcap);
    }
  }
  EXPECT_NE(graphToJson(g).find("\"rotary_dim\": 2"), std::string::npos);
  EXPECT_NE(graphToJson(g).find("\"original_context\": 8192"),
            std::string::npos);
  EXPECT_NE(graphToJson(g).find("\"beta_fast\": 32"), std::string::npos);
  EXPECT_NE(graphToJson(g).find("\"interleaved\": true"), std::string::npos);
  EXPECT_NE(graphToJson(g).find("\"attention_factor\": 1.25"),
            std::string::npos);
  EXPECT_NE(graphToJson(gpt).find("\"exact\": true"), std::string::npos);
  // Absent, they keep the defaults (whole head, tanh form).
  EXPECT_EQ(graphToJson(buildLlama(LlamaConfig{})).find("rotary_dim"),
            std::string::npos);
  for (Op &op : g.ops)
    if (op.kind == OpKind::Rope)
      op.ropeScaling.highFreqFactor = 0.5;
  expectThrowsWith([&] { graphFromJson(graphToJson(g)); },
                   "0 < low_freq_factor < high_freq_factor");
  for (Op &op : g.ops)
    if (op.kind == OpKind::Rope)
      op.rotaryDim = 3;
  expectThrowsWith([&] { graphFromJson(graphToJson(g)); },
                   "rotary_dim must be even and at most the head dimension");
}

TEST(GraphJson, LongRopeFactorsRoundTripOnePerFrequency) {
  Graph g = buildLlama(LlamaConfig{});
  std::vector<double> factors;
  for (Op &op : g.ops)
    if (op.kind == OpKind::Rope) {
      const int frequencies = g.valueFeatures[op.output] / op.heads / 2;
      factors.assign(frequencies, 1.0);
      factors.back() = 3.5;
      op.ropeScaling = RopeScaling::longrope(factors, 1.19);
    }
  const std::string text = graphToJson(g);
  const Graph back = graphFromJson(text);
  EXPECT_EQ(graphToJson(back), text);
  for (const Op &op : back.ops)
    if (op.kind == OpKind::Rope) {
      ASSERT_EQ(op.ropeScaling.numFactors, int(factors.size()));
      EXPECT_EQ(op.ropeScaling.factors[factors.size() - 1], 3.5);
      EXPECT_EQ(op.ropeScaling.attentionFactor, 1.19);
    }
  // One factor too many for the head.
  for (Op &op : g.ops)
    if (op.kind == OpKind::Rope) {
      factors.push_back(1.0);
      op.ropeScaling = RopeScaling::longrope(factors, 1.19);
      break;
    }
  expectThrowsWith([&] { graphFromJson(graphToJson(g)); },
                   "frequency_factors must be positive, one per frequency");
}

TEST(GraphJson, ResolvedLengthRoundTrips) {
  Graph g = buildLlama(LlamaConfig{});
  EXPECT_EQ(graphToJson(g).find("resolved_for_seq_len"), std::string::npos);
  g.resolvedForSeqLen = 4096;
  EXPECT_EQ(graphFromJson(graphToJson(g)).resolvedForSeqLen, 4096);
}

TEST(GraphJson, RopeScalingMustBeOneKind) {
  auto withScaling = [](double fast, double slow, double low, double high) {
    Graph g = buildLlama(LlamaConfig{});
    for (Op &op : g.ops)
      if (op.kind == OpKind::Rope)
        op.ropeScaling = RopeScaling{};
    for (Op &op : g.ops)
      if (op.kind == OpKind::Rope) {
        op.ropeScaling.factor = 4;
        op.ropeScaling.originalContext = 4096;
        op.ropeScaling.betaFast = fast;
        op.ropeScaling.betaSlow = slow;
        op.ropeScaling.lowFreqFactor = low;
        op.ropeScaling.highFreqFactor = high;
        break;
      }
    return graphToJson(g);
  };
  EXPECT_NO_THROW(graphFromJson(withScaling(32, 1, 0, 0)));
  EXPECT_NO_THROW(graphFromJson(withScaling(0, 0, 1, 4)));
  for (const std::string &bad :
       {withScaling(1, 32, 0, 0), withScaling(0, 0, 0, 0)})
    expectThrowsWith([&] { graphFromJson(bad); },
                     "0 < beta_slow < beta_fast (yarn)");
}

TEST(GraphJson, FileRoundTripAndMissingFile) {
  std::string path = ::testing::TempDir() + "/graph.json";
  saveGraph(buildLlama(LlamaConfig{}), path);
  EXPECT_EQ(loadGraph(path).params.size(), buildLlama(LlamaConfig{}).params.size());
  std::remove(path.c_str());
  expectThrowsWith([&] { loadGraph(path); }, "cannot open graph file");
}

TEST(GraphJson, ErrorsNameTheProblem) {
  const std::string head =
      R"({"format": "seq1f1b-graph", "version": 1,
          "params": [{"name": "w", "shape": [4, 4], "init": "normal"}],
          "values": [4, 4], "ops": )";
  expectThrowsWith([&] { graphFromJson(head + R"([{"op": "conv"}]})"); },
                   "op 0: unknown op 'conv'");
  expectThrowsWith(
      [&] { graphFromJson(head + R"([{"op": "tp_reduce", "in": [0]}]})"); },
      "op 0: 'tp_reduce' is inserted by the runtime for tensor "
      "parallelism (--tp), not read from a graph");
  expectThrowsWith(
      [&] {
        graphFromJson(head + R"([{"op": "embedding", "params": ["w"], "out": 0},
            {"op": "linear", "in": [7], "params": ["w"], "out": 1}]})");
      },
      "op 1 (linear): input value 7 does not exist");
  expectThrowsWith(
      [&] {
        graphFromJson(head + R"([{"op": "linear", "in": [1], "params": ["w"],
            "out": 0}]})");
      },
      "op 0 (linear): input value 1 is used before it is defined");
  expectThrowsWith(
      [&] {
        graphFromJson(head + R"([{"op": "embedding", "params": ["nope"],
            "out": 0}]})");
      },
      "unknown parameter 'nope'");
  expectThrowsWith(
      [&] {
        graphFromJson(head + R"([{"op": "embedding", "params": ["w"], "out": 0}]})");
      },
      "must end with its only cross_entropy");
  expectThrowsWith([&] { graphFromJson("{"); }, "graph JSON");
  expectThrowsWith([&] { graphFromJson(R"({"format": "x"})"); },
                   "format must be");
}

TEST(Partition, CutPointsAreResidualStream) {
  Graph g = buildGpt(test::tinyGptConfig());
  std::vector<int> cuts = cutPoints(g);
  // After the token embedding, after wte + wpe, after each of the 2 * layers
  // residual adds, after ln_f and after the head.
  EXPECT_EQ(cuts.size(), 1u + 1 + 2 * 2 + 2);
  std::vector<StageSpec> stages = cutStages(g, 4, 16);
  ASSERT_EQ(stages.size(), 4u);
  EXPECT_EQ(stages[0].opBegin, 0);
  EXPECT_EQ(stages.back().opEnd, static_cast<int>(g.ops.size()));
  for (size_t k = 0; k + 1 < stages.size(); ++k) {
    EXPECT_EQ(stages[k].opEnd, stages[k + 1].opBegin);
    EXPECT_EQ(stages[k].output, stages[k + 1].input);
    EXPECT_GE(stages[k].output, 0);
  }
  EXPECT_EQ(stages[0].input, -1);
  EXPECT_EQ(stages.back().output, -1);
  // wte (parameter 0) is held by the first and the last stage.
  EXPECT_EQ(stages[0].params.front(), 0);
  EXPECT_EQ(stages.back().params.front(), 0);
  expectThrowsWith([&] { cutStages(g, 50, 16); }, "cannot cut the graph into 50");
}

TEST(Partition, ChunkBounds) {
  Graph g = buildLlama(LlamaConfig{});
  EXPECT_EQ(chunkBounds(g, 11, 4, ChunkPolicy::Even),
            (std::vector<int>{0, 3, 6, 9, 11}));
  std::vector<int> f = chunkBounds(g, 64, 4, ChunkPolicy::Flops);
  ASSERT_EQ(f.size(), 5u);
  EXPECT_EQ(f.back(), 64);
  // Later chunks attend to longer prefixes, so they are shorter.
  EXPECT_GT(f[1] - f[0], f[4] - f[3]);
  expectThrowsWith([&] { chunkBounds(g, 3, 4, ChunkPolicy::Even); },
                   "chunks must be in [1, 3]");
}

} // namespace
} // namespace s1f::rt
