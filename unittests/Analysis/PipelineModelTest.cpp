//===- PipelineModelTest.cpp - tensor-parallel collectives and their time -===//
//
// Megatron's tensor + sequence parallelism runs, per transformer layer, two
// all-gathers and two reduce-scatters of the [b, s, h] residual stream in the
// forward and the same four in the backward (the Megatron-LM sequence
// parallelism paper, section 4.2.2), plus one reduce-scatter after the
// vocabulary-parallel embedding and one all-gather before the LM head. The
// cost model must find exactly these in the imported graphs, and time them.
//
//===----------------------------------------------------------------------===//
#include "seq1f1b/Analysis/ModelCost.h"
#include "seq1f1b/Analysis/PipelineModel.h"
#include "seq1f1b/Dialect/LLM/IR/LLMOps.h"
#include "seq1f1b/Translate/HFConfig.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"

#include <gtest/gtest.h>

using namespace mlir;
using namespace seq1f1b;

namespace {

struct Imported {
  MLIRContext context;
  OwningOpRef<ModuleOp> module;
  OpList ops;
};

std::unique_ptr<Imported> import(llvm::StringRef config, int64_t seqLen,
                                 int64_t batch) {
  auto result = std::make_unique<Imported>();
  result->context.loadDialect<llm::LLMDialect, func::FuncDialect>();
  llvm::SourceMgr sourceMgr;
  sourceMgr.AddNewSourceBuffer(llvm::MemoryBuffer::getMemBufferCopy(config),
                               llvm::SMLoc());
  result->module = importHFConfig(sourceMgr, &result->context,
                                  HFImportOptions{seqLen, batch, "bf16"});
  if (result->module)
    result->ops = modelOps(*findModelFunction(*result->module));
  return result;
}

constexpr const char *kLlama = R"({"model_type": "llama",
  "num_hidden_layers": 3, "hidden_size": 256, "intermediate_size": 688,
  "num_attention_heads": 8, "num_key_value_heads": 4, "vocab_size": 512,
  "max_position_embeddings": 4096})";
constexpr const char *kGpt2 = R"({"model_type": "gpt2", "n_layer": 2,
  "n_embd": 128, "n_head": 4, "vocab_size": 300, "n_positions": 1024})";
// Parallel residual: attention and MLP read the same input through two norms.
constexpr const char *kNeox = R"({"model_type": "gpt_neox",
  "num_hidden_layers": 2, "hidden_size": 128, "intermediate_size": 512,
  "num_attention_heads": 4, "vocab_size": 300, "rotary_pct": 0.25,
  "use_parallel_residual": true, "max_position_embeddings": 2048})";
/// Qwen3's per-head norms of q and k stay on the GPU that holds the heads.
constexpr const char *kQwen3 = R"({"model_type": "qwen3",
  "num_hidden_layers": 2, "hidden_size": 128, "intermediate_size": 384,
  "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64,
  "vocab_size": 300, "max_position_embeddings": 2048})";
/// Mixtral's experts split by width move what a dense MLP moves.
constexpr const char *kMixtral = R"({"model_type": "mixtral",
  "num_hidden_layers": 2, "hidden_size": 128, "intermediate_size": 256,
  "num_attention_heads": 4, "num_key_value_heads": 2, "num_local_experts": 4,
  "vocab_size": 300, "max_position_embeddings": 2048})";

struct Case {
  const char *config;
  int64_t layers, hidden;
};

TEST(TensorParallelTraffic, MegatronsCollectivesPerLayer) {
  for (Case c :
       {Case{kLlama, 3, 256}, Case{kGpt2, 2, 128}, Case{kNeox, 2, 128},
        Case{kQwen3, 2, 128}, Case{kMixtral, 2, 128}}) {
    const int64_t seqLen = 1024, batch = 2;
    std::unique_ptr<Imported> m = import(c.config, seqLen, batch);
    ASSERT_TRUE(m->module) << c.config;
    for (int64_t chunk : {int64_t(1), int64_t(256), seqLen}) {
      CollectiveTraffic t = tensorParallelTraffic(m->ops, chunk);
      const int64_t collectives = 4 * c.layers + 2;
      EXPECT_EQ(t.collectives, collectives) << c.config;
      // Each moves the bf16 residual stream of the chunk.
      EXPECT_DOUBLE_EQ(t.bytes,
                       double(collectives) * batch * chunk * c.hidden * 2)
          << c.config;
    }
  }
}

/// A single stage holding `ops`, with the chunks [0, S/4) and [S/4, S).
PipelineCostModel stageModel(const OpList &ops, int64_t seqLen, GpuProfile gpu,
                             int64_t tp, int64_t cp = 1,
                             bool recompute = false) {
  PipelineCostModel model;
  model.stages = {ops};
  model.chunkBounds = {0, seqLen / 4, seqLen};
  model.gpu = gpu;
  model.memory.tensorParallel = tp;
  model.memory.contextParallel = cp;
  model.memory.recompute = recompute;
  if (recompute)
    model.layers = layerRanges(model.stages);
  return model;
}

/// The second chunk's cost.
schedule::UnitCost unitCost(const OpList &ops, int64_t seqLen, GpuProfile gpu,
                            int64_t tp, bool recompute = false) {
  return stageModel(ops, seqLen, gpu, tp, 1, recompute).unitCost(0, 1);
}

TEST(TensorParallelTraffic, TimedOnTheNodesLinks) {
  const int64_t seqLen = 4096, batch = 1, hidden = 256, layers = 3;
  std::unique_ptr<Imported> m = import(kLlama, seqLen, batch);
  ASSERT_TRUE(m->module);
  GpuProfile gpu = *lookupGpuProfile("h100"), free = gpu;
  free.tpBandwidth = std::numeric_limits<double>::infinity();
  free.tpLatency = 0;
  const int64_t collectives = 4 * layers + 2, chunk = seqLen - seqLen / 4;
  for (int64_t tp : {2, 4, 8}) {
    // Ring collectives: each GPU sends and receives (t-1)/t of the tensor.
    const double expected = collectives * gpu.tpLatency +
                            collectives * double(batch) * chunk * hidden * 2 *
                                (tp - 1) / tp / gpu.tpBandwidth;
    schedule::UnitCost timed = unitCost(m->ops, seqLen, gpu, tp);
    schedule::UnitCost untimed = unitCost(m->ops, seqLen, free, tp);
    EXPECT_NEAR(timed.forward - untimed.forward, expected, 1e-12 * expected);
    EXPECT_NEAR(timed.backwardInput - untimed.backwardInput, expected,
                1e-12 * expected);
    EXPECT_DOUBLE_EQ(timed.backwardWeight, untimed.backwardWeight);
    // Recomputation runs each layer's forward collectives once more (the
    // embedding's and the head's are not in a layer).
    schedule::UnitCost again = unitCost(m->ops, seqLen, gpu, tp, true);
    schedule::UnitCost againFree = unitCost(m->ops, seqLen, free, tp, true);
    EXPECT_NEAR((again.backwardInput - againFree.backwardInput) -
                    (timed.backwardInput - untimed.backwardInput),
                expected * (4 * layers) / collectives, 1e-9 * expected);
  }
  // Without tensor parallelism there is nothing to communicate.
  schedule::UnitCost alone = unitCost(m->ops, seqLen, gpu, 1);
  schedule::UnitCost aloneFree = unitCost(m->ops, seqLen, free, 1);
  EXPECT_DOUBLE_EQ(alone.forward, aloneFree.forward);
  EXPECT_DOUBLE_EQ(alone.backwardInput, aloneFree.backwardInput);
}

} // namespace

TEST(ContextParallel, EachGpuHoldsItsShareOfTheTokens) {
  const int64_t seqLen = 4096;
  std::unique_ptr<Imported> m = import(kLlama, seqLen, 1);
  ASSERT_TRUE(m->module);
  GpuProfile gpu = *lookupGpuProfile("h100");
  for (int chunk : {0, 1}) {
    schedule::ChunkMemory whole =
        stageModel(m->ops, seqLen, gpu, 1, 1).chunkMemory(0, chunk);
    for (int64_t cp : {2, 4}) {
      schedule::ChunkMemory share =
          stageModel(m->ops, seqLen, gpu, 1, cp).chunkMemory(0, chunk);
      EXPECT_EQ(share.activations, whole.activations / cp);
      EXPECT_EQ(share.kvCache, whole.kvCache / cp);
    }
  }
}

TEST(ContextParallel, TheRingCarriesThePrefixKeysAndValues) {
  // Attention made free, so that the ring is all the attention costs.
  const int64_t seqLen = 4096, layers = 3, kvWidth = 4 * 32;
  std::unique_ptr<Imported> m = import(kLlama, seqLen, 1);
  ASSERT_TRUE(m->module);
  GpuProfile gpu = *lookupGpuProfile("h100"), free = gpu;
  gpu.attentionEfficiency = free.attentionEfficiency = 1e30;
  free.tpBandwidth = free.linkBandwidth =
      std::numeric_limits<double>::infinity();
  free.tpLatency = free.linkLatency = 0;
  for (auto [tp, cp] :
       {std::pair<int64_t, int64_t>{1, 2}, {1, 4}, {2, 4}, {2, 8}}) {
    const bool inNode = tp * cp <= gpu.gpusPerNode;
    const double bandwidth = inNode ? gpu.tpBandwidth : gpu.linkBandwidth;
    const double latency = inNode ? gpu.tpLatency : gpu.linkLatency;
    // The second chunk ends at S: K and V of all S tokens, bf16.
    const double ring =
        layers * (cp - 1) * latency +
        layers * 2.0 * seqLen * kvWidth * 2 / tp * (cp - 1) / cp / bandwidth;
    // Against infinitely fast links: the ring and the TP collectives.
    schedule::UnitCost timed =
        stageModel(m->ops, seqLen, gpu, tp, cp).unitCost(0, 1);
    schedule::UnitCost base =
        stageModel(m->ops, seqLen, free, tp, cp).unitCost(0, 1);
    CollectiveTraffic t = tensorParallelTraffic(m->ops, seqLen - seqLen / 4);
    const double collectives =
        tp == 1 ? 0
                : t.collectives * gpu.tpLatency +
                      t.bytes / cp * (tp - 1) / tp / gpu.tpBandwidth;
    EXPECT_NEAR(timed.forward - base.forward - collectives, ring, 1e-9 * ring);
    EXPECT_NEAR(timed.backwardInput - base.backwardInput - collectives,
                2 * ring, 1e-9 * ring);
  }
}

TEST(ContextParallel, GradientsAreReducedOverDataAndContextRanks) {
  GpuProfile gpu = *lookupGpuProfile("h100");
  const double grads = 4e9, weights = 2e9;
  // cp 2 x dp 2 with tp 2: 8 GPUs, one node.
  ParallelLayout inNode{2, 2, 1, 2, false};
  EXPECT_DOUBLE_EQ(dataParallelSyncSeconds(weights, grads, inNode, gpu),
                   gpu.tpLatency + 2 * grads * 3 / 4 / gpu.tpBandwidth);
  // Twice as many data-parallel ranks leave the node.
  ParallelLayout across{2, 2, 1, 4, true};
  EXPECT_DOUBLE_EQ(dataParallelSyncSeconds(weights, grads, across, gpu),
                   2 * gpu.linkLatency +
                       (grads + weights) * 7 / 8 / gpu.linkBandwidth);
  EXPECT_EQ(dataParallelSyncSeconds(weights, grads, {8, 1, 4, 1, true}, gpu),
            0);
}

namespace {

TEST(SlidingWindow, AttentionCountsThePairsInTheWindow) {
  // Mistral windows every layer; a window of 100 tokens at S = 1024.
  const int64_t seqLen = 1024, window = 100;
  std::unique_ptr<Imported> m = import(R"({"model_type": "mistral",
    "num_hidden_layers": 1, "hidden_size": 64, "intermediate_size": 128,
    "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 50,
    "max_position_embeddings": 4096, "sliding_window": 100})",
                                       seqLen, 1);
  ASSERT_TRUE(m->module);
  llm::AttentionOp attention;
  m->module->walk([&](llm::AttentionOp op) { attention = op; });
  ASSERT_TRUE(attention);
  ASSERT_EQ(attention.getWindow(), std::optional<uint64_t>(window));
  const double perPair = 4 * (4.0 * attention.getHeadDim() + 3);
  auto pairs = [&](int64_t begin, int64_t end) {
    return attention.getChunkCost(end - begin, end).forwardFlops / perPair;
  };
  double whole = 0;
  for (int64_t begin = 0; begin < seqLen; begin += 64) {
    const int64_t end = begin + 64;
    // Query i sees min(i + 1, w) keys; the count integrates that over the
    // chunk's positions, within half a pair per query of the sum.
    double exact = 0;
    for (int64_t i = begin; i < end; ++i)
      exact += std::min<int64_t>(i + 1, window);
    EXPECT_NEAR(pairs(begin, end), exact, 64 / 2.0) << begin;
    whole += pairs(begin, end);
  }
  EXPECT_DOUBLE_EQ(whole, pairs(0, seqLen)); // chunks add up
  // Past the window every query sees w keys; before it, the causal count.
  EXPECT_DOUBLE_EQ(pairs(512, 576), 64.0 * window);
  EXPECT_DOUBLE_EQ(pairs(0, 64), 64.0 * 64 - 64.0 * 64 / 2);
}

// The chunk balancer's cost of a model whose layers see different windows
// (Gemma 3: five windowed layers in six) is the sum of every op's exact
// cost, in closed form.
TEST(SlidingWindow, TrainingFlopsCostIsTheExactSumInClosedForm) {
  const int64_t seqLen = 4096;
  std::unique_ptr<Imported> m = import(R"({"model_type": "gemma3_text",
    "num_hidden_layers": 6, "hidden_size": 64, "intermediate_size": 128,
    "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
    "vocab_size": 50, "sliding_window": 300})",
                                       seqLen, 1);
  ASSERT_TRUE(m->module);
  int windowed = 0;
  m->module->walk(
      [&](llm::AttentionOp op) { windowed += bool(op.getWindow()); });
  ASSERT_EQ(windowed, 5);
  schedule::RangeCost cost = trainingFlopsCost(m->ops, seqLen);
  for (auto [begin, end] : {std::pair<int64_t, int64_t>{0, 1},
                            {0, 299},
                            {100, 700},
                            {300, 301},
                            {1000, 4096},
                            {0, 4096}}) {
    const llm::OpCost exact = chunkCost(m->ops, end - begin, end).total();
    const double flops = exact.forwardFlops + exact.backwardFlops();
    EXPECT_NEAR(cost(begin, end), flops, 1e-9 * flops) << begin << ".." << end;
  }
}

} // namespace

/// `gpu` with free links: infinite bandwidth, no latency.
static GpuProfile freeLinks(GpuProfile gpu) {
  gpu.tpBandwidth = gpu.linkBandwidth = std::numeric_limits<double>::infinity();
  gpu.tpLatency = gpu.linkLatency = 0;
  return gpu;
}

/// stageModel at tp 1 with `ep` expert-parallel ranks.
static PipelineCostModel expertModel(const OpList &ops, int64_t seqLen,
                                     const GpuProfile &gpu, int64_t ep) {
  PipelineCostModel c = stageModel(ops, seqLen, gpu, 1);
  c.memory.expertParallel = ep;
  return c;
}

// Expert parallelism: the experts' weights divide by ep (the rest does not),
// their optimizer state over the data-parallel ranks holding the same
// experts; each routed copy (2 per token) crosses an all-to-all to its
// expert and back, twice forward and twice backward.
TEST(ExpertParallel, ExpertsSplitAndTokensCrossAnAllToAll) {
  const int64_t seqLen = 4096, layers = 2, hidden = 128, experts = 4,
                width = 256;
  std::unique_ptr<Imported> m = import(kMixtral, seqLen, 1);
  ASSERT_TRUE(m->module);
  const GpuProfile gpu = *lookupGpuProfile("h100"), free = freeLinks(gpu);
  auto model = [&](const GpuProfile &g, int64_t ep, int64_t shards) {
    PipelineCostModel c = expertModel(m->ops, seqLen, g, ep);
    c.memory.optimizerShards = shards;
    return c;
  };
  const schedule::StaticMemory whole = model(gpu, 1, 8).staticMemory(0);
  const double expertElements = layers * 3.0 * experts * width * hidden;
  for (int64_t ep : {2, 4}) {
    const schedule::StaticMemory split = model(gpu, ep, 8).staticMemory(0);
    // bf16 weights, fp32 gradients.
    EXPECT_NEAR(whole.weights - split.weights,
                expertElements * 2 * (ep - 1) / ep, 1);
    EXPECT_NEAR(whole.grads - split.grads, expertElements * 4 * (ep - 1) / ep,
                1);
    // fp32 master weights and moments: dense over 8 ranks, experts over
    // 8 / ep, each rank holding 1/ep of them.
    EXPECT_NEAR(whole.optimizer - split.optimizer, 0, 1);
    const double allToAll =
        2 * (gpu.tpLatency + 3072.0 * hidden * 2 * 2 * (ep - 1) / ep /
                                 gpu.tpBandwidth) *
        layers;
    const schedule::UnitCost timed = model(gpu, ep, 1).unitCost(0, 1);
    const schedule::UnitCost base = model(free, ep, 1).unitCost(0, 1);
    EXPECT_NEAR(timed.forward - base.forward, allToAll, 1e-9 * allToAll);
    EXPECT_NEAR(timed.backwardInput - base.backwardInput, allToAll,
                1e-9 * allToAll);
  }
  // Without expert parallelism no token moves.
  EXPECT_DOUBLE_EQ(model(gpu, 1, 1).unitCost(0, 1).forward,
                   model(free, 1, 1).unitCost(0, 1).forward);
}

// With expert parallelism the experts' gradients sync over the ranks that
// hold the same experts, the rest over all data- and context-parallel ranks.
TEST(ExpertParallel, ExpertGradientsSyncOverTheRanksHoldingTheSameExperts) {
  GpuProfile gpu = *lookupGpuProfile("h100");
  const double grads = 4e9, weights = 2e9, share = 0.75;
  // cp 2 x dp 4, ep 2: dense over 8 ranks, experts over 4; one node.
  ParallelLayout l{1, 2, 1, 4, false, 2};
  EXPECT_DOUBLE_EQ(dataParallelSyncSeconds(weights, grads, l, gpu, share),
                   gpu.tpLatency + 2 * grads * 0.25 * 7 / 8 / gpu.tpBandwidth +
                       gpu.tpLatency +
                       2 * grads * 0.75 * 3 / 4 / gpu.tpBandwidth);
  // ep = dp x cp: every rank holds its own experts, nothing to sync.
  l.expertParallel = 8;
  EXPECT_DOUBLE_EQ(dataParallelSyncSeconds(weights, grads, l, gpu, share),
                   gpu.tpLatency + 2 * grads * 0.25 * 7 / 8 / gpu.tpBandwidth);
  // Without expert parallelism the share does not matter.
  l.expertParallel = 1;
  EXPECT_DOUBLE_EQ(dataParallelSyncSeconds(weights, grads, l, gpu, share),
                   dataParallelSyncSeconds(weights, grads, l, gpu));
}

// Uneven routing: the busiest expert-parallel rank, with 1.5x its share of
// the routed copies, runs 1.5x its experts' GEMMs, sends 1.5x the bytes and
// keeps 1.5x their gate and up activations. Without expert parallelism a
// GPU holds every expert of its stage, and the spread changes nothing.
TEST(ExpertParallel, UnevenRoutingLoadsTheBusiestRank) {
  const int64_t seqLen = 4096, layers = 2, hidden = 128, width = 256;
  const double chunk = seqLen - seqLen / 4; // the second chunk's tokens
  std::unique_ptr<Imported> m = import(kMixtral, seqLen, 1);
  ASSERT_TRUE(m->module);
  const GpuProfile gpu = *lookupGpuProfile("h100"), free = freeLinks(gpu);
  auto model = [&](const GpuProfile &g, int64_t ep, double imbalance) {
    PipelineCostModel c = expertModel(m->ops, seqLen, g, ep);
    c.memory.expertImbalance = imbalance;
    return c;
  };
  const double gemms = layers * chunk * 2 * 3 * 2 * hidden * width;
  const double matmul = gpu.peakFlops * gpu.matmulEfficiency;
  const schedule::UnitCost even = model(free, 2, 1).unitCost(0, 1),
                           uneven = model(free, 2, 1.5).unitCost(0, 1);
  EXPECT_NEAR(uneven.forward - even.forward, 0.5 * gemms / matmul,
              1e-9 * gemms / matmul);
  EXPECT_NEAR(uneven.backwardInput - even.backwardInput, 0.5 * gemms / matmul,
              1e-9 * gemms / matmul);
  EXPECT_NEAR(uneven.backwardWeight - even.backwardWeight,
              0.5 * gemms / matmul, 1e-9 * gemms / matmul);
  // The all-to-all: 1.5x the bytes (latency unchanged).
  const double bytes = layers * 2 * (chunk * hidden * 2 * 2 / 2 / gpu.tpBandwidth);
  const double timedEven = model(gpu, 2, 1).unitCost(0, 1).forward - even.forward,
               timedUneven =
                   model(gpu, 2, 1.5).unitCost(0, 1).forward - uneven.forward;
  EXPECT_NEAR(timedUneven - timedEven, 0.5 * bytes, 1e-9 * bytes);
  // Saved gate and up activations of the busiest rank (bf16).
  EXPECT_NEAR(double(model(gpu, 2, 1.5).chunkMemory(0, 1).activations -
                     model(gpu, 2, 1).chunkMemory(0, 1).activations),
              0.5 * layers * chunk * 2 * 2 * width * 2, 4);
  // Without expert parallelism: the same plan.
  EXPECT_DOUBLE_EQ(model(gpu, 1, 1.5).unitCost(0, 1).forward,
                   model(gpu, 1, 1).unitCost(0, 1).forward);
  EXPECT_EQ(model(gpu, 1, 1.5).chunkMemory(0, 1).activations,
            model(gpu, 1, 1).chunkMemory(0, 1).activations);
}
