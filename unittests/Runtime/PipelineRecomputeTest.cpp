//===- PipelineRecomputeTest.cpp - Full activation recomputation ----------===//
//
// Recomputation runs each layer's forward again before its backward, on the
// same inputs with the same kernels: the step must give exactly (bit for
// bit) the loss and gradients of the run that keeps everything, while the
// ranks hold fewer activations.
//
//===----------------------------------------------------------------------===//

#include "PipelineTestUtil.h"

#include "seq1f1b/runtime/partition.h"

#include <gtest/gtest.h>

namespace s1f::rt::test {
namespace {

using seq1f1b::schedule::ScheduleKind;

struct StepRun {
  StepResult result;
  std::map<std::string, std::vector<float>> grads;
};

StepRun step(const ModelCase &m, ScheduleKind kind, int P, int N,
             bool recompute) {
  PipelineOptions o = options(kind, P, 3, N, ChunkPolicy::Flops);
  o.recompute = recompute;
  Pipeline pipe(m.graph, o, static_cast<int>(m.seq));
  StepRun r{pipe.step(makeBatch(m, 3, 7)), {}};
  for (const ParamSpec &p : m.graph.params)
    r.grads[p.name] = pipe.grad(p.name);
  return r;
}

int64_t activations(const StepResult &r, size_t rank) {
  return r.memory[rank].peakOf(MemKind::Activations);
}

TEST(PipelineRecompute, LayersAreTheResidualPiecesOfEachTransformerLayer) {
  const Graph g = tinyLlamaCase().graph;
  const std::vector<std::pair<int, int>> all =
      layerRanges(g, 0, static_cast<int>(g.ops.size()));
  ASSERT_EQ(all.size(), 2u); // two layers, embedding and head excluded
  for (auto [first, last] : all) {
    int attentions = 0;
    for (int i = first; i < last; ++i)
      attentions += g.ops[i].kind == OpKind::Attention;
    EXPECT_EQ(attentions, 1);
  }
  EXPECT_GT(all[0].first, 0);
  EXPECT_EQ(all[0].second, all[1].first);
  EXPECT_LT(all[1].second, static_cast<int>(g.ops.size()));
  // A stage cut inside layer 1 splits it.
  const std::vector<int> cuts = cutPoints(g);
  const int middle = *std::find_if(cuts.begin(), cuts.end(), [&](int c) {
    return c > all[1].first && c < all[1].second;
  });
  const std::vector<std::pair<int, int>> half =
      layerRanges(g, middle, static_cast<int>(g.ops.size()));
  ASSERT_EQ(half.size(), 1u);
  EXPECT_EQ(half[0], std::make_pair(middle, all[1].second));
}

TEST(PipelineRecompute, SameLossAndGradientsWithFewerActivations) {
  for (const ModelCase &m : {tinyGptCase(), tinyLlamaCase()})
    for (auto [kind, P, N] :
         {std::tuple{ScheduleKind::OneFOneB, 2, 1},
          std::tuple{ScheduleKind::Seq1F1B, 1, 1},
          std::tuple{ScheduleKind::Seq1F1B, 2, 3},
          std::tuple{ScheduleKind::Seq1F1BInterleaved, 2, 2}}) {
      SCOPED_TRACE(m.name + " " +
                   std::string(seq1f1b::schedule::scheduleKindName(kind)) +
                   " P=" + std::to_string(P) + " N=" + std::to_string(N));
      const StepRun keep = step(m, kind, P, N, false);
      const StepRun again = step(m, kind, P, N, true);
      ASSERT_TRUE(keep.result.ok) << keep.result.error;
      ASSERT_TRUE(again.result.ok) << again.result.error;
      EXPECT_EQ(again.result.lossSum, keep.result.lossSum);
      for (const auto &[name, g] : keep.grads)
        EXPECT_EQ(again.grads.at(name), g) << "gradient of " << name;
      int64_t kept = 0, recomputed = 0;
      for (size_t r = 0; r < keep.result.memory.size(); ++r) {
        kept += activations(keep.result, r);
        recomputed += activations(again.result, r);
        EXPECT_EQ(again.result.memory[r].currentTotal(), 0);
      }
      EXPECT_LT(recomputed, kept);
    }
}

TEST(PipelineRecompute, RefusesTheSplitBackward) {
  const ModelCase m = tinyLlamaCase();
  PipelineOptions o = options(ScheduleKind::ZBH1, 2, 3, 1, ChunkPolicy::Even);
  o.recompute = true;
  try {
    Pipeline pipe(m.graph, o, static_cast<int>(m.seq));
    FAIL() << "zb-h1 with recomputation was accepted";
  } catch (const std::invalid_argument &e) {
    EXPECT_NE(std::string(e.what()).find("recomputation does not combine with "
                                         "zb-h1"),
              std::string::npos)
        << e.what();
  }
}

} // namespace
} // namespace s1f::rt::test
