//===- PipelineModel.cpp - costs of stages and chunks for the scheduler ---===//
#include "seq1f1b/Analysis/PipelineModel.h"
#include "seq1f1b/Dialect/LLM/IR/LLMOps.h"
#include "seq1f1b/Schedule/Partition.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>

using namespace mlir;
using namespace seq1f1b;

OpList seq1f1b::modelOps(func::FuncOp model) {
  OpList ops;
  for (Operation &op : model.getBody().front().without_terminator())
    ops.push_back(&op);
  return ops;
}

/// Parameter reads are cheap to repeat in every stage that needs them.
static bool isRematerializable(Value v) {
  return v.getDefiningOp<llm::ParamRefOp>() != nullptr;
}

/// A floating-point tensor: an activation, not token ids or targets.
static bool isActivation(Value v) {
  auto type = dyn_cast<RankedTensorType>(v.getType());
  return type && isa<FloatType>(type.getElementType());
}

SmallVector<unsigned> seq1f1b::legalCutPoints(const OpList &ops) {
  llvm::DenseMap<Operation *, unsigned> index;
  for (auto [i, op] : llvm::enumerate(ops))
    index[op] = i;
  // crossing[p] counts activations defined before p and used at or after p.
  SmallVector<int> delta(ops.size() + 2, 0);
  // Activations from before the list (a stage's input) are live from its
  // start to their last use in it.
  llvm::MapVector<Value, unsigned> fromBefore;
  for (auto [i, op] : llvm::enumerate(ops))
    for (Value operand : op->getOperands())
      if (!index.count(operand.getDefiningOp()) &&
          !isRematerializable(operand) && isActivation(operand))
        fromBefore[operand] = i;
  for (auto [v, lastUse] : fromBefore) {
    delta[1] += 1;
    delta[lastUse + 1] -= 1;
  }
  for (auto [i, op] : llvm::enumerate(ops)) {
    for (Value result : op->getResults()) {
      if (isRematerializable(result))
        continue;
      unsigned lastUse = i;
      for (Operation *user : result.getUsers()) {
        auto it = index.find(user);
        lastUse = std::max<unsigned>(lastUse, it == index.end() ? ops.size()
                                                                : it->second);
      }
      delta[i + 1] += 1;
      delta[lastUse + 1] -= 1;
    }
  }
  SmallVector<unsigned> cuts;
  int crossing = 0;
  for (unsigned p = 1; p < ops.size(); ++p) {
    crossing += delta[p];
    // Cut after computing ops only: parameter reads stay with their users.
    if (crossing == 1 && !isa<llm::ParamRefOp>(ops[p - 1]))
      cuts.push_back(p);
  }
  return cuts;
}

SmallVector<OpRanges> seq1f1b::layerRanges(ArrayRef<OpList> stages) {
  SmallVector<OpRanges> layers;
  int attentions = 0; // in the stages before
  for (auto [i, stage] : llvm::enumerate(stages)) {
    std::vector<int> bounds = {0};
    llvm::append_range(bounds, legalCutPoints(stage));
    bounds.push_back(stage.size());
    using Role = schedule::LayerOpRole;
    std::vector<Role> roles;
    for (Operation *op : stage)
      roles.push_back(isa<llm::AttentionOp>(op) ? Role::Attention
                      : isa<llm::AddOp>(op)     ? Role::Add
                                                : Role::Other);
    OpRanges &ranges = layers.emplace_back();
    for (auto [first, last] : schedule::groupLayers(
             bounds, roles, attentions, i == 0, i + 1 == stages.size()))
      ranges.push_back({unsigned(first), unsigned(last)});
    attentions += llvm::count(roles, Role::Attention);
  }
  return layers;
}

/// The (query, key) pairs of the first x queries under a causal mask with a
/// window of w keys (0: none): the area under min(t, w) over [0, x], as the
/// attention cost counts them.
static double windowedPairs(double x, double w) {
  if (w <= 0 || x <= w)
    return x * x / 2;
  return w * w / 2 + w * (x - w);
}

/// The training FLOPs of `ops` over [begin, end), all of whose attention
/// sees a window of w (0: none): a * pairs + b * tokens, fitted from two
/// exact costs and checked against a third; the exact sum where the check
/// fails.
static schedule::RangeCost windowGroupCost(OpList ops, int64_t seqLen,
                                           double w) {
  auto exact = [ops](double begin, double end) {
    llm::OpCost c = chunkCost(ops, end - begin, end).total();
    return c.forwardFlops + c.backwardFlops();
  };
  if (seqLen < 2)
    return exact;
  // cost(0, L) = a F(L) + b L and cost(0, 1) = a F(1) + b.
  const double L = seqLen, whole = exact(0, L), first = exact(0, 1);
  const double a = (whole - L * first) /
                   (windowedPairs(L, w) - L * windowedPairs(1, w));
  const double b = first - a * windowedPairs(1, w);
  auto fitted = [a, b, w](double begin, double end) {
    return a * (windowedPairs(end, w) - windowedPairs(begin, w)) +
           b * (end - begin);
  };
  double begin = seqLen / 3, end = 2 * seqLen / 3 + 1;
  double probe = exact(begin, end);
  if (std::abs(fitted(begin, end) - probe) > 1e-9 * std::abs(probe))
    return exact;
  return fitted;
}

schedule::RangeCost seq1f1b::trainingFlopsCost(OpList ops, int64_t seqLen) {
  // Each window's attention has its own closed form; the other ops join the
  // unwindowed group. Summing the exact cost of every op instead made the
  // chunk balancing of a windowed model (Mistral, Gemma) take seconds per
  // plan.
  std::map<int64_t, OpList> groups;
  for (Operation *op : ops) {
    int64_t window = 0;
    if (auto attention = dyn_cast<llm::AttentionOp>(op))
      window = attention.getWindow().value_or(0);
    groups[window].push_back(op);
  }
  std::vector<schedule::RangeCost> parts;
  for (const auto &[window, group] : groups)
    parts.push_back(windowGroupCost(group, seqLen, double(window)));
  if (parts.size() == 1)
    return parts.front();
  return [parts](double begin, double end) {
    double sum = 0;
    for (const schedule::RangeCost &part : parts)
      sum += part(begin, end);
    return sum;
  };
}

FailureOr<SmallVector<unsigned>>
seq1f1b::partitionIntoStages(const OpList &ops, int64_t seqLen, int64_t stages,
                             Location loc) {
  SmallVector<unsigned> bounds = {0};
  llvm::append_range(bounds, legalCutPoints(ops));
  bounds.push_back(ops.size());
  int64_t segments = bounds.size() - 1;
  if (stages < 1 || stages > segments)
    return emitError(loc) << "cannot cut the model into " << stages
                          << " stages: it has " << segments - 1
                          << " legal cut points (places where only the "
                             "residual stream crosses), so at most "
                          << segments << " stages";
  std::vector<double> costs;
  for (int64_t i = 0; i < segments; ++i) {
    ArrayRef<Operation *> segment(ops.begin() + bounds[i],
                                  ops.begin() + bounds[i + 1]);
    llm::OpCost c = chunkCost(segment, seqLen, seqLen).total();
    costs.push_back(c.forwardFlops + c.backwardFlops());
  }
  schedule::Result<schedule::StagePartition> partition =
      schedule::partitionStages(costs, stages);
  if (!partition)
    return emitError(loc) << partition.error;
  SmallVector<unsigned> result;
  for (int b : partition->boundaries)
    result.push_back(bounds[b]);
  return result;
}

std::optional<GpuProfile> seq1f1b::lookupGpuProfile(StringRef name) {
  GpuProfile gpu;
  gpu.name = name.str();
  if (name == "h100")
    return gpu;
  if (name == "h200") {
    gpu.memoryBandwidth = 4.8e12;
    gpu.memoryBytes = 140.0 * (1ull << 30);
    gpu.memoryName = "140GiB";
    return gpu;
  }
  if (name == "a100") {
    gpu.peakFlops = 312e12;
    gpu.memoryBandwidth = 2.0e12;
    gpu.tpBandwidth = 240e9;
    return gpu;
  }
  return std::nullopt;
}

llvm::Expected<GpuProfile> seq1f1b::gpuProfile(StringRef nameOrFile) {
  auto error = [&](const Twine &what) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(), what);
  };
  if (!nameOrFile.ends_with(".json")) {
    if (std::optional<GpuProfile> gpu = lookupGpuProfile(nameOrFile))
      return *gpu;
    return error("'" + nameOrFile +
                 "' is not one of h100, h200, a100 or a .json profile");
  }
  auto file = llvm::MemoryBuffer::getFile(nameOrFile);
  if (!file)
    return error("cannot read GPU profile " + nameOrFile + ": " +
                 file.getError().message());
  llvm::Expected<llvm::json::Value> json =
      llvm::json::parse((*file)->getBuffer());
  if (!json)
    return error("GPU profile " + nameOrFile + ": " +
                 llvm::toString(json.takeError()));
  const llvm::json::Object *o = json->getAsObject();
  if (!o)
    return error("GPU profile " + nameOrFile + ": expected a JSON object");
  GpuProfile gpu;
  // key -> where it goes and the unit it is given in.
  const std::pair<const char *, std::pair<double *, double>> numbers[] = {
      {"peak_tflops", {&gpu.peakFlops, 1e12}},
      {"matmul_efficiency", {&gpu.matmulEfficiency, 1}},
      {"attention_efficiency", {&gpu.attentionEfficiency, 1}},
      {"memory_bandwidth_gbps", {&gpu.memoryBandwidth, 1e9}},
      {"link_bandwidth_gbps", {&gpu.linkBandwidth, 1e9}},
      {"link_latency_us", {&gpu.linkLatency, 1e-6}},
      {"memory_gib", {&gpu.memoryBytes, double(1ull << 30)}},
      {"tp_bandwidth_gbps", {&gpu.tpBandwidth, 1e9}},
      {"tp_latency_us", {&gpu.tpLatency, 1e-6}}};
  for (const auto &[objectKey, value] : *o) {
    const StringRef key = objectKey;
    if (key == "gpus_per_node") {
      std::optional<int64_t> n = value.getAsInteger();
      if (!n || *n < 1)
        return error("GPU profile " + nameOrFile +
                     ": 'gpus_per_node' must be a positive integer");
      gpu.gpusPerNode = *n;
      continue;
    }
    if (key == "name") {
      std::optional<StringRef> name = value.getAsString();
      if (!name || name->empty())
        return error("GPU profile " + nameOrFile +
                     ": 'name' must be a non-empty string");
      gpu.name = name->str();
      continue;
    }
    auto it =
        llvm::find_if(numbers, [&](const auto &n) { return key == n.first; });
    if (it == std::end(numbers))
      return error("GPU profile " + nameOrFile + ": unknown key '" + key + "'");
    std::optional<double> x = value.getAsNumber();
    const bool fraction = StringRef(it->first).ends_with("efficiency");
    if (!x || !(*x > 0) || !std::isfinite(*x) || (fraction && *x > 1))
      return error("GPU profile " + nameOrFile + ": '" + key + "' must be " +
                   (fraction ? "in (0, 1]" : "a positive number"));
    *it->second.first = *x * it->second.second;
  }
  if (!o->get("name"))
    return error("GPU profile " + nameOrFile + ": no 'name'");
  if (o->get("memory_gib")) {
    char text[32];
    std::snprintf(text, sizeof text, "%gGiB",
                  gpu.memoryBytes / double(1ull << 30));
    gpu.memoryName = text;
  }
  return gpu;
}

double seq1f1b::dataParallelSyncSeconds(double weightBytes, double gradBytes,
                                        const ParallelLayout &layout,
                                        const GpuProfile &gpu,
                                        double expertShare) {
  // Gradients are reduced over the data- and context-parallel ranks; the
  // experts' over those holding the same experts.
  const bool inNode = layout.gpus() / layout.stages <= gpu.gpusPerNode;
  const double bandwidth = inNode ? gpu.tpBandwidth : gpu.linkBandwidth;
  const double latency = inNode ? gpu.tpLatency : gpu.linkLatency;
  const double bytes =
      layout.distributedOptimizer ? gradBytes + weightBytes : 2 * gradBytes;
  const int collectives = layout.distributedOptimizer ? 2 : 1;
  auto sync = [&](double ranks, double share) {
    if (ranks <= 1 || share == 0)
      return 0.0;
    return collectives * latency + bytes * share * (ranks - 1) / ranks / bandwidth;
  };
  const double dp = layout.dataParallel * layout.contextParallel;
  if (layout.expertParallel == 1)
    return sync(dp, 1);
  return sync(dp, 1 - expertShare) +
         sync(dp / double(layout.expertParallel), expertShare);
}

bool seq1f1b::isExpertWeight(Operation *op) {
  auto ref = dyn_cast<llm::ParamRefOp>(op);
  return ref && llvm::any_of(ref->getUsers(), [&](Operation *user) {
           auto moe = dyn_cast<llm::MoeOp>(user);
           return moe && (moe.getGate() == ref.getResult() ||
                          moe.getUp() == ref.getResult() ||
                          moe.getDown() == ref.getResult());
         });
}

//===----------------------------------------------------------------------===//
// PipelineCostModel
//===----------------------------------------------------------------------===//

static double elementBytes(Type type) {
  return std::max<unsigned>(1, type.getIntOrFloatBitWidth() / 8);
}

/// Bytes of an activation (or token tensor) for a chunk of `chunkLen` tokens.
static double chunkBytes(Value v, int64_t chunkLen) {
  auto type = cast<RankedTensorType>(v.getType());
  double bytes = elementBytes(type.getElementType());
  for (int64_t i = 0; i < type.getRank(); ++i)
    bytes *= i == 1 ? chunkLen : type.getDimSize(i);
  return bytes;
}

CollectiveTraffic seq1f1b::tensorParallelTraffic(ArrayRef<Operation *> ops,
                                                 int64_t chunkLen) {
  // Values split across the group (by heads, MLP columns or vocabulary), and
  // the inputs already gathered for a column-parallel linear.
  llvm::DenseSet<Value> split, gathered;
  CollectiveTraffic traffic;
  auto add = [&](Value v) {
    ++traffic.collectives;
    traffic.bytes += chunkBytes(v, chunkLen);
  };
  for (Operation *op : ops) {
    if (auto linear = dyn_cast<llm::LinearOp>(op)) {
      if (split.contains(linear.getInput())) {
        add(linear.getResult()); // row-parallel: reduce-scatter
        continue;
      }
      if (gathered.insert(linear.getInput()).second)
        add(linear.getInput()); // column-parallel: all-gather
      split.insert(linear.getResult());
    } else if (auto moe = dyn_cast<llm::MoeOp>(op)) {
      // Each expert's width split: gathered in, reduce-scattered out.
      if (gathered.insert(moe.getInput()).second)
        add(moe.getInput());
      add(moe.getResult());
    } else if (auto embedding = dyn_cast<llm::EmbeddingOp>(op)) {
      add(embedding.getResult()); // vocabulary-parallel: reduce-scatter
    } else if (llvm::any_of(op->getOperands(),
                            [&](Value v) { return split.contains(v); })) {
      split.insert(op->result_begin(), op->result_end());
    }
  }
  return traffic;
}

schedule::UnitCost PipelineCostModel::unitCost(int stage, int chunk) const {
  int64_t begin = chunkBounds[chunk], end = chunkBounds[chunk + 1];
  double tp = memory.tensorParallel, cp = memory.contextParallel;
  // Each GPU computes 1/(tp*cp) of the chunk: heads split tp ways, tokens
  // cp ways (load-balanced, as Megatron pairs early and late pieces).
  double gpus = tp * cp;
  double matmul = gpu.peakFlops * gpu.matmulEfficiency * gpus;
  double attn = gpu.peakFlops * gpu.attentionEfficiency * gpus;
  // The tensor-parallel collectives of `ops`, once forward or backward,
  // each GPU holding 1/cp of the tokens.
  auto collectiveSeconds = [&](ArrayRef<Operation *> ops) {
    if (tp == 1)
      return 0.0;
    CollectiveTraffic t = tensorParallelTraffic(ops, end - begin);
    return t.collectives * gpu.tpLatency +
           t.bytes / cp * (tp - 1) / tp / gpu.tpBandwidth;
  };
  // The context-parallel ring of `ops`: K and V of the prefix the chunk sees
  // ([0, end), or its window's part) pass every GPU once forward, and with
  // dK and dV twice backward.
  auto ringSeconds = [&](ArrayRef<Operation *> ops, int passes) {
    if (cp == 1)
      return 0.0;
    double bytes = 0, attentions = 0;
    for (Operation *op : ops)
      if (auto attention = dyn_cast<llm::AttentionOp>(op)) {
        int64_t keys = end;
        if (std::optional<uint64_t> window = attention.getWindow())
          keys = std::min<int64_t>(end, end - begin + int64_t(*window));
        bytes += chunkBytes(attention.getKey(), keys) +
                 chunkBytes(attention.getValue(), keys);
        ++attentions;
      }
    const bool inNode = gpus <= gpu.gpusPerNode;
    return passes *
           ((cp - 1) * attentions * (inNode ? gpu.tpLatency : gpu.linkLatency) +
            bytes / tp * (cp - 1) / cp /
                (inNode ? gpu.tpBandwidth : gpu.linkBandwidth));
  };
  // Expert parallelism: each GPU's routed copies (top_k per token) go to
  // their experts' GPUs and come back, an all-to-all each way (once more
  // each way backward), not overlapped; inside a node while tp x cp x ep
  // GPUs fit one (Megatron places the expert group inside data parallelism).
  auto allToAllSeconds = [&](ArrayRef<Operation *> ops) {
    const double ep = memory.expertParallel;
    if (ep == 1)
      return 0.0;
    const bool inNode = gpus * ep <= gpu.gpusPerNode;
    double seconds = 0;
    for (Operation *op : ops)
      if (auto moe = dyn_cast<llm::MoeOp>(op))
        seconds += 2 * ((inNode ? gpu.tpLatency : gpu.linkLatency) +
                        chunkBytes(moe.getInput(), end - begin) *
                            double(moe.getTopK()) * memory.expertImbalance /
                            gpus * (ep - 1) / ep /
                            (inNode ? gpu.tpBandwidth : gpu.linkBandwidth));
    return seconds;
  };
  // The busiest expert-parallel rank's experts' GEMMs beyond an even share
  // (each of forward, input and weight gradient).
  auto imbalanceSeconds = [&](ArrayRef<Operation *> ops) {
    if (memory.expertParallel == 1)
      return 0.0;
    double flops = 0;
    for (Operation *op : ops)
      if (auto moe = dyn_cast<llm::MoeOp>(op))
        flops += moe.getExpertFlops(end - begin);
    return (memory.expertImbalance - 1) * flops / matmul;
  };
  // Attention overlaps its ring transfers, as ring attention does.
  auto forwardSeconds = [&](ArrayRef<Operation *> ops) {
    CategoryCosts c = chunkCost(ops, end - begin, end);
    const llm::OpCost &attention = c[llm::CostCategory::Attention];
    llm::OpCost total = c.total();
    return (total.forwardFlops - attention.forwardFlops) / matmul +
           std::max(attention.forwardFlops / attn, ringSeconds(ops, 1)) +
           total.forwardBytes / (gpu.memoryBandwidth * gpus) +
           collectiveSeconds(ops) + allToAllSeconds(ops) +
           imbalanceSeconds(ops);
  };
  CategoryCosts c = chunkCost(stages[stage], end - begin, end);
  const llm::OpCost &attention = c[llm::CostCategory::Attention];
  llm::OpCost total = c.total();
  double bytes = total.forwardBytes / (gpu.memoryBandwidth * gpus);
  schedule::UnitCost unit;
  unit.forward = forwardSeconds(stages[stage]);
  unit.backwardInput =
      (total.backwardInputFlops - attention.backwardInputFlops) / matmul +
      std::max(attention.backwardInputFlops / attn,
               ringSeconds(stages[stage], 2)) +
      bytes + collectiveSeconds(stages[stage]) +
      allToAllSeconds(stages[stage]) + imbalanceSeconds(stages[stage]);
  if (memory.recompute) // each layer's forward again, before its backward
    for (auto [first, last] : layers[stage])
      unit.backwardInput += forwardSeconds(
          ArrayRef<Operation *>(stages[stage]).slice(first, last - first));
  unit.backwardWeight =
      total.backwardWeightFlops / matmul + imbalanceSeconds(stages[stage]);
  unit.backward = unit.backwardInput + unit.backwardWeight;

  // The activations this stage hands to later stages.
  llvm::DenseSet<Operation *> local(stages[stage].begin(), stages[stage].end());
  for (Operation *op : stages[stage])
    for (Value result : op->getResults())
      if (llvm::any_of(result.getUsers(), [&](Operation *user) {
            return !local.contains(user) && !isa<func::ReturnOp>(user);
          }))
        unit.boundaryBytes += chunkBytes(result, end - begin) / gpus;
  return unit;
}

schedule::ChunkMemory PipelineCostModel::chunkMemory(int stage,
                                                     int chunk) const {
  int64_t len = chunkBounds[chunk + 1] - chunkBounds[chunk];
  // Every GPU of a tensor- and context-parallel group holds its share.
  double gpus = memory.tensorParallel * memory.contextParallel;
  // With recomputation, the layer (index into layers[stage]) of each op the
  // backward runs again.
  constexpr int kKept = -1;
  llvm::DenseMap<Operation *, int> layerOf;
  if (memory.recompute)
    for (auto [i, range] : llvm::enumerate(layers[stage]))
      for (unsigned k = range.first; k < range.second; ++k)
        layerOf[stages[stage][k]] = int(i);
  auto layerOfOp = [&](Operation *op) {
    auto it = layerOf.find(op);
    return it == layerOf.end() ? kKept : it->second;
  };
  // With the zero-bubble split, W needs the inputs and the output gradients
  // of every op that has weights.
  llvm::DenseSet<Value> kv, weightInputs, checkpoints;
  llvm::MapVector<Value, int> saved; // value -> layer (kKept wins)
  double outputGrads = 0;
  // Bytes ops keep inside themselves (a mixture of experts' routing), by
  // layer as `saved`.
  llvm::SmallDenseMap<int, double> internal;
  for (Operation *op : stages[stage]) {
    int layer = layerOfOp(op);
    if (auto attention = dyn_cast<llm::AttentionOp>(op)) {
      kv.insert(attention.getKey());
      kv.insert(attention.getValue());
    }
    if (llvm::any_of(op->getOperands(), isRematerializable)) {
      for (Value operand : op->getOperands())
        if (!isRematerializable(operand))
          weightInputs.insert(operand);
      for (Value result : op->getResults())
        outputGrads += chunkBytes(result, len) / gpus;
    }
    // A recomputed layer keeps what flows into it from outside.
    if (layer != kKept)
      for (Value operand : op->getOperands())
        if (!isRematerializable(operand) &&
            layerOfOp(operand.getDefiningOp()) != layer)
          checkpoints.insert(operand);
    if (auto costOp = dyn_cast<llm::CostOpInterface>(op)) {
      if (double bytes = costOp.getInternalSavedBytes(len))
        internal[layer] += bytes / gpus;
      // The busiest expert-parallel rank keeps more routed copies' gate and
      // up activations.
      if (auto moe = dyn_cast<llm::MoeOp>(op); moe && memory.expertParallel > 1)
        internal[layer] += (memory.expertImbalance - 1) * 2 *
                           double(moe.getTopK()) * moe.getExpertWidth() *
                           chunkBytes(moe.getInput(), len) /
                           cast<RankedTensorType>(moe.getInput().getType())
                               .getDimSize(2) /
                           gpus;
      for (Value v : costOp.getSavedForBackward())
        if (!isRematerializable(v)) {
          auto [it, inserted] = saved.insert({v, layer});
          if (!inserted && layer == kKept)
            it->second = kKept;
        }
    }
  }
  const bool keepKv = chunkBounds.size() > 2; // later chunks read the prefix
  double activations = 0, kvCache = 0, weightGradInput = 0;
  SmallVector<double> recomputed(layers.empty() ? 0 : layers[stage].size());
  for (auto [v, layer] : saved) {
    double bytes = chunkBytes(v, len) / gpus;
    if (kv.contains(v) && (layer == kKept || keepKv)) {
      kvCache += bytes;
    } else if (layer != kKept) {
      if (!checkpoints.contains(v))
        recomputed[layer] += bytes;
    } else {
      activations += bytes;
      if (weightInputs.contains(v))
        weightGradInput += bytes;
    }
  }
  for (auto [layer, bytes] : internal)
    (layer == kKept ? activations : recomputed[layer]) += bytes;
  for (Value v : checkpoints)
    // Not counted above as a value a kept op saves.
    if (auto it = saved.find(v); it == saved.end() || it->second != kKept)
      activations += chunkBytes(v, len) / gpus;
  schedule::ChunkMemory m;
  m.activations = static_cast<int64_t>(activations);
  m.kvCache = static_cast<int64_t>(kvCache);
  m.weightGradInput = static_cast<int64_t>(weightGradInput);
  m.weightGradOutputGrads = static_cast<int64_t>(outputGrads);
  for (double bytes : recomputed)
    m.recomputed = std::max(m.recomputed, static_cast<int64_t>(bytes));
  return m;
}

schedule::StaticMemory PipelineCostModel::staticMemory(int stage) const {
  // Mixed precision as Megatron runs it: 16-bit weights with fp32 gradients,
  // fp32 master weights and two fp32 Adam moments; fp32 models keep no
  // master copy. The distributed optimizer shards the last two over the
  // data-parallel ranks (Megatron: 6 + 12/dp bytes per parameter).
  // Expert weights divide by the expert-parallel ranks (else by the
  // tensor-parallel ones, which split each expert), their optimizer state
  // over the data-parallel ranks holding the same experts.
  double dense = 0, experts = 0, weightBytes = 4;
  llvm::DenseSet<Attribute> seen;
  for (Operation *op : stages[stage])
    if (auto ref = dyn_cast<llm::ParamRefOp>(op))
      if (seen.insert(ref.getParamAttr()).second) {
        auto type = cast<RankedTensorType>(ref.getType());
        (isExpertWeight(op) ? experts : dense) += type.getNumElements();
        weightBytes = elementBytes(type.getElementType());
      }
  dense /= memory.tensorParallel;
  experts /= memory.expertParallel > 1 ? memory.expertParallel
                                       : memory.tensorParallel;
  const double elements = dense + experts;
  const double expertShards = std::max<double>(
      1, double(memory.optimizerShards) / memory.expertParallel);
  schedule::StaticMemory m;
  m.weights = static_cast<int64_t>(elements * weightBytes);
  m.grads = static_cast<int64_t>(elements * 4);
  m.optimizer = static_cast<int64_t>(
      (dense / double(memory.optimizerShards) + experts / expertShards) *
      (weightBytes < 4 ? 12 : 8));
  return m;
}

schedule::SimulationModel PipelineCostModel::simulationModel() const {
  // Every (stage, chunk) is evaluated once here: the simulator asks for each
  // unit of every micro-batch.
  struct Tables {
    std::vector<std::vector<schedule::UnitCost>> cost;
    std::vector<std::vector<schedule::ChunkMemory>> memory;
    std::vector<schedule::StaticMemory> statics;
  };
  auto tables = std::make_shared<Tables>();
  int chunks = chunkBounds.size() - 1;
  for (int s = 0, e = stages.size(); s < e; ++s) {
    tables->cost.emplace_back();
    tables->memory.emplace_back();
    for (int c = 0; c < chunks; ++c) {
      tables->cost.back().push_back(unitCost(s, c));
      tables->memory.back().push_back(chunkMemory(s, c));
    }
    tables->statics.push_back(staticMemory(s));
  }
  schedule::SimulationModel model;
  model.cost = [tables](int stage, int chunk) {
    return tables->cost[stage][chunk];
  };
  model.chunkMemory = [tables](int stage, int chunk) {
    return tables->memory[stage][chunk];
  };
  model.staticMemory = [tables](int stage) { return tables->statics[stage]; };
  model.comm.latencySeconds = gpu.linkLatency;
  model.comm.bytesPerSecond = gpu.linkBandwidth;
  return model;
}
