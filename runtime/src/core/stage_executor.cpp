//===- stage_executor.cpp - Forward/backward of one stage's ops -----------===//

#include "seq1f1b/runtime/stage_executor.h"

#include "seq1f1b/runtime/tensor_parallel.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <tuple>

namespace s1f::rt {

namespace {

/// Keys per attention tile: bounds the workspace to O(chunk length * 64).
constexpr int64_t kKeyTile = 64;

} // namespace

StageExecutor::StageExecutor(const Graph &graph, const StageSpec &spec,
                             int stage, ParamStore &params,
                             MemoryTracker &memory, const KernelSet &kernels,
                             bool recompute)
    : graph_(graph), kernels_(kernels), spec_(spec), stage_(stage),
      params_(params), memory_(memory),
      readByBackward_(graph.valueFeatures.size(), false),
      lastForwardRead_(graph.valueFeatures.size(), -1) {
  for (int p : spec_.params)
    if (!params_.count(p))
      throw std::invalid_argument("stage " + std::to_string(stage) +
                                  ": parameter '" + graph.params[p].name +
                                  "' is not on this rank");
  // The values the backward pass reads (see backwardOp); every other value
  // of a unit is dropped after its last reader in the forward.
  for (int i = spec_.opBegin; i < spec_.opEnd; ++i) {
    const Op &op = graph.ops[i];
    for (int v : op.inputs)
      lastForwardRead_[v] = i;
    switch (op.kind) {
    case OpKind::LayerNorm:
    case OpKind::RmsNorm:
    case OpKind::Linear:
    case OpKind::Moe:
    case OpKind::Gelu:
    case OpKind::Silu:
    case OpKind::Softcap:
    case OpKind::CrossEntropy:
      readByBackward_[op.inputs[0]] = true;
      break;
    case OpKind::Swiglu:
    case OpKind::Geglu:
    case OpKind::SigmoidGate:
      readByBackward_[op.inputs[0]] = readByBackward_[op.inputs[1]] = true;
      break;
    case OpKind::Attention: // K and V are read from the KV cache
      readByBackward_[op.inputs[0]] = readByBackward_[op.output] = true;
      break;
    case OpKind::Embedding:
    case OpKind::PositionEmbedding:
    case OpKind::Rope:
    case OpKind::Add:
    case OpKind::Scale:
    case OpKind::TpCopy:
    case OpKind::TpReduce:
      break;
    }
  }
  // Sequence parallelism: the column-parallel linears' gathered input is not
  // kept; their backward gathers it again from the rank's part, as
  // Megatron does, so only 1/T of it lives from forward to backward.
  gatheredBy_.assign(graph.valueFeatures.size(), -1);
  for (int i = spec_.opBegin; i < spec_.opEnd; ++i) {
    const Op &op = graph.ops[i];
    if (op.kind == OpKind::TpCopy && sequenceSplit(op.inputs[0])) {
      gatheredBy_[op.output] = i;
      readByBackward_[op.output] = false;
      readByBackward_[op.inputs[0]] = true;
    }
  }
  // Recomputation: what flows into each layer is kept (its checkpoint), and
  // of what the layer makes only what flows out of it.
  checkpoint_.assign(graph.valueFeatures.size(), false);
  leavesLayer_.assign(graph.valueFeatures.size(), false);
  if (recompute)
    layers_ = layerRanges(graph, spec_.opBegin, spec_.opEnd);
  std::vector<int> producer(graph.valueFeatures.size(), -1);
  for (int i = 0; i < static_cast<int>(graph.ops.size()); ++i)
    if (graph.ops[i].output >= 0)
      producer[graph.ops[i].output] = i;
  for (auto [first, last] : layers_) {
    auto inside = [&](int i) { return i >= first && i < last; };
    for (int i = spec_.opBegin; i < spec_.opEnd; ++i)
      for (int v : graph.ops[i].inputs) {
        if (inside(i) && !inside(producer[v]))
          checkpoint_[v] = true;
        if (!inside(i) && inside(producer[v]))
          leavesLayer_[v] = true;
      }
    if (spec_.output >= 0 && inside(producer[spec_.output]))
      leavesLayer_[spec_.output] = true;
  }
}

bool StageExecutor::droppable(int v) const {
  return !readByBackward_[v] && v != spec_.output && !checkpoint_[v];
}

void StageExecutor::dropLayer(Unit &u, std::pair<int, int> layer,
                              bool keepLeaving) {
  for (int i = layer.first; i < layer.second; ++i) {
    const int out = graph_.ops[i].output;
    if (out >= 0 && !(keepLeaving && leavesLayer_[out]))
      u.values[out] = Tensor();
    u.saveA[i - spec_.opBegin] = Tensor();
    u.saveB[i - spec_.opBegin] = Tensor();
  }
}

void StageExecutor::recomputeLayer(Unit &u, std::pair<int, int> layer) {
  for (int i = layer.first; i < layer.second; ++i) {
    forwardOp(u, i);
    for (int v : graph_.ops[i].inputs)
      if (lastForwardRead_[v] == i && droppable(v))
        u.values[v] = Tensor();
  }
}

void StageExecutor::beginStep(const Batch &batch, const std::vector<int> &bounds,
                              float lossScale, Communicator *tensorParallel,
                              Communicator *contextParallel,
                              Communicator *expertParallel, int microbatches) {
  checkDrained();
  const std::string where = "stage " + std::to_string(stage_) + ": ";
  const int tp = tensorParallel ? tensorParallel->size() : 1;
  if (tp != graph_.tensorParallel)
    throw std::invalid_argument(
        where + "the graph is sharded for " +
        std::to_string(graph_.tensorParallel) +
        " tensor-parallel ranks, the step has " + std::to_string(tp));
  if (bounds.size() < 2 || bounds.front() != 0 || bounds.back() != batch.seq)
    throw std::invalid_argument(where + "chunk bounds must run from 0 to S");
  const int cp = contextParallel ? contextParallel->size() : 1;
  for (size_t c = 0; c + 1 < bounds.size(); ++c)
    if (bounds[c] >= bounds[c + 1])
      throw std::invalid_argument(where + "chunk bounds must increase");
    else if (bounds[c + 1] - bounds[c] < cp)
      throw std::invalid_argument(
          where + "chunk " + std::to_string(c) + " has " +
          std::to_string(bounds[c + 1] - bounds[c]) + " tokens, fewer than " +
          "the " + std::to_string(cp) + " context-parallel ranks");
  if (batch.targets.size() != batch.tokens.size())
    throw std::invalid_argument(where + "tokens and targets differ in count");
  for (int mb = 0; mb < batch.microbatches(); ++mb)
    if (static_cast<int64_t>(batch.tokens[mb].size()) != batch.batch * batch.seq ||
        batch.targets[mb].size() != batch.tokens[mb].size())
      throw std::invalid_argument(where + "micro-batch " + std::to_string(mb) +
                                  " is not B*S tokens");
  batch_ = &batch;
  tp_ = tensorParallel;
  cp_ = contextParallel && contextParallel->size() > 1 ? contextParallel
                                                       : nullptr;
  ep_ = expertParallel && expertParallel->size() > 1 ? expertParallel : nullptr;
  bounds_ = bounds;
  lossScale_ = lossScale;
  loss_ = {};
  auxLoss_ = 0;
  microbatches_ = microbatches > 0 ? microbatches : batch.microbatches();
  routed_.clear();
  balanceGrad_.clear();
  nextForward_.clear();
  nextBackward_.clear();
}

void StageExecutor::checkDrained() const {
  if (units_.empty())
    return;
  const Unit &u = units_.begin()->second;
  throw std::logic_error(
      "stage " + std::to_string(stage_) + ": micro-batch " +
      std::to_string(u.mb) + " chunk " + std::to_string(u.chunk) +
      (u.inputDone ? " never ran its weight pass (W)"
                   : " never ran its backward"));
}

StageExecutor::Unit &StageExecutor::unit(int mb, int chunk, const char *what) {
  auto it = units_.find({mb, chunk});
  if (it == units_.end())
    throw std::logic_error("stage " + std::to_string(stage_) + ": " + what +
                           " of micro-batch " + std::to_string(mb) + " chunk " +
                           std::to_string(chunk) + " before its forward");
  return it->second;
}

cpu::AttentionDims StageExecutor::attentionDims(const Unit &u,
                                                const Op &op) const {
  cpu::AttentionDims d;
  d.batch = batch_->batch;
  d.heads = op.heads;
  d.kv_heads = op.kvHeads;
  d.head_dim = graph_.valueFeatures[op.inputs[0]] / op.heads;
  d.max_seq = batch_->seq;
  d.start = u.start;
  d.len = u.len;
  d.key_tile = kKeyTile;
  d.window = op.window;
  d.scale = op.scoreScale;
  d.softcap = op.softcap;
  return d;
}

//===----------------------------------------------------------------------===//
// Forward
//===----------------------------------------------------------------------===//

std::vector<float> StageExecutor::forward(int mb, int chunk,
                                          std::vector<float> input) {
  const std::string where = "stage " + std::to_string(stage_) +
                            " forward of micro-batch " + std::to_string(mb) +
                            " chunk " + std::to_string(chunk) + ": ";
  const int chunks = static_cast<int>(bounds_.size()) - 1;
  if (!batch_ || mb < 0 || mb >= batch_->microbatches() || chunk < 0 ||
      chunk >= chunks)
    throw std::invalid_argument(where + "out of range (or no step begun)");
  // A chunk attends to the KV cache rows of the chunks before it.
  if (nextForward_[mb] != chunk)
    throw std::logic_error(where + "expected chunk " +
                           std::to_string(nextForward_[mb]) + " first");
  ++nextForward_[mb];

  Unit &u = units_[{mb, chunk}];
  u.mb = mb;
  u.chunk = chunk;
  u.chunkStart = bounds_[chunk];
  u.chunkEnd = bounds_[chunk + 1];
  const bool sp = !graph_.sequenceSplit.empty();
  const RankTokens tokens = rankTokens(
      u.chunkStart, u.chunkEnd, cp_ ? cp_->rank() : 0, cp_ ? cp_->size() : 1,
      sp ? tp_->rank() : 0, sp ? tp_->size() : 1);
  u.start = tokens.start;
  u.len = tokens.end - tokens.start;
  u.spStart = tokens.splitStart;
  u.spLen = tokens.splitEnd - tokens.splitStart;
  const int64_t B = batch_->batch, S = batch_->seq;
  for (int64_t b = 0; b < B; ++b)
    for (int s = u.start; s < u.start + u.len; ++s) {
      u.ids.push_back(batch_->tokens[mb][b * S + s]);
      u.targets.push_back(batch_->targets[mb][b * S + s]);
    }
  u.values.resize(graph_.valueFeatures.size());
  u.saveA.resize(spec_.opEnd - spec_.opBegin);
  u.saveB.resize(spec_.opEnd - spec_.opBegin);
  if (spec_.input >= 0) {
    size_t expected = rows(u, spec_.input) * graph_.valueFeatures[spec_.input];
    if (input.size() != expected)
      throw std::invalid_argument(where + "input has " +
                                  std::to_string(input.size()) +
                                  " elements, expected " +
                                  std::to_string(expected));
    u.values[spec_.input] =
        Tensor(std::move(input), &memory_, MemKind::Activations);
  } else if (!input.empty()) {
    throw std::invalid_argument(where + "the first stage takes no input");
  }
  size_t layer = 0;
  for (int i = spec_.opBegin; i < spec_.opEnd; ++i) {
    forwardOp(u, i);
    // A value the backward does not read dies with its last forward reader.
    for (int v : graph_.ops[i].inputs)
      if (lastForwardRead_[v] == i && droppable(v))
        u.values[v] = Tensor();
    // A recomputed layer keeps only what leaves it, from its end on.
    if (layer < layers_.size() && i == layers_[layer].second - 1)
      dropLayer(u, layers_[layer++], true);
  }
  if (spec_.output < 0)
    return {};
  // The output goes to the next stage; keep a copy only if the backward
  // reads it.
  Tensor &out = u.values[spec_.output];
  if (readByBackward_[spec_.output])
    return std::vector<float>(out.data(), out.data() + out.size());
  return out.release();
}

void StageExecutor::forwardOp(Unit &u, int i) {
  const Op &op = graph_.ops[i];
  const int local = i - spec_.opBegin;
  // An op's rows are its output's (all but the gathering tp_copy and the
  // scattering tp_reduce have them on every value).
  const int64_t B = batch_->batch,
                N = rows(u, op.output >= 0 ? op.output : op.inputs[0]);
  auto in = [&](int k) { return u.values[op.inputs[k]].data(); };
  auto feat = [&](int v) { return graph_.valueFeatures[v]; };
  auto param = [&](int k) { return params_.at(op.params[k]).value.data(); };
  const ParamSpec *p0 =
      op.params.empty() ? nullptr : &graph_.params[op.params[0]];
  float *y = nullptr;
  if (op.output >= 0) {
    u.values[op.output] = Tensor(N * feat(op.output), &memory_);
    y = u.values[op.output].data();
  }
  auto save = [&](std::vector<Tensor> &slot, int64_t n) {
    slot[local] = Tensor(n, &memory_);
    return slot[local].data();
  };
  switch (op.kind) {
  case OpKind::Embedding:
    if (op.tpSplit) {
      // This rank's rows of the table; other tokens' rows are zero here and
      // come from their rank through the tp_reduce after this op.
      const int64_t mine = p0->shape[0], D = p0->shape[1],
                    first = tp_->rank() * mine;
      for (int64_t t = 0; t < N; ++t) {
        const int64_t row = u.ids[t] - first;
        if (row >= 0 && row < mine)
          std::copy_n(param(0) + row * D, D, y + t * D);
        else
          std::fill_n(y + t * D, D, 0.0f);
      }
    } else {
      kernels_.embedding_fwd(u.ids.data(), param(0), y, N, p0->shape[0],
                             p0->shape[1]);
    }
    if (op.scale != 1)
      kernels_.scale(y, y, N * p0->shape[1], static_cast<float>(op.scale));
    break;
  case OpKind::PositionEmbedding:
    kernels_.pos_embedding_fwd(param(0), y, B, N / B,
                               sequenceSplit(op.output) ? u.spStart : u.start,
                               p0->shape[0], p0->shape[1]);
    break;
  case OpKind::LayerNorm:
    kernels_.layer_norm_fwd(in(0), param(0), param(1), y, save(u.saveA, N),
                            save(u.saveB, N), N, feat(op.output),
                            static_cast<float>(op.eps));
    break;
  case OpKind::RmsNorm: {
    if (op.tpSplit) {
      splitRmsNormFwd(in(0), param(0), y, save(u.saveA, N), N,
                      feat(op.output), feat(op.output) * tp_->size(), op.eps,
                      *tp_, Tag{MsgKind::TensorParallel, i, 0, 0});
      break;
    }
    // Per-head norms (q and k of Qwen3) are the rows of each head.
    const int64_t heads = std::max(op.heads, 1);
    kernels_.rms_norm_fwd(in(0), param(0), y, save(u.saveA, N * heads),
                          N * heads, feat(op.output) / heads,
                          static_cast<float>(op.eps));
    break;
  }
  case OpKind::Linear:
    kernels_.linear_fwd(in(0), param(0),
                        op.params.size() > 1 ? param(1) : nullptr, y, N,
                        feat(op.inputs[0]), feat(op.output));
    break;
  case OpKind::Rope:
    kernels_.rope_fwd(in(0), y, B, u.len, op.heads, feat(op.output) / op.heads,
                      u.start, op.theta, op.rotaryDim, op.ropeScaling);
    break;
  case OpKind::Attention: {
    cpu::AttentionDims d = attentionDims(u, op);
    KvState &kv = kv_[{u.mb, i}];
    if (kv.k.empty()) { // chunk 0: the micro-batch's cache is born
      kv.k = RowBuffer(B, batch_->seq, feat(op.inputs[1]), &memory_,
                       MemKind::KvCache);
      kv.v = RowBuffer(B, batch_->seq, feat(op.inputs[2]), &memory_,
                       MemKind::KvCache);
    }
    kv.k.commit(u.start, u.start + u.len); // (again, when recomputing)
    kv.v.commit(u.start, u.start + u.len);
    kernels_.kv_cache_write(in(1), in(2), kv.k.data(), kv.v.data(), d);
    float *ws = scratch(0, kernels_.attention_workspace_size(d));
    if (!cp_) {
      kernels_.attention_fwd(in(0), kv.k.data(), kv.v.data(), y,
                             save(u.saveA, B * op.heads * u.len), ws, d);
      break;
    }
    // Context parallelism: the cache keeps this rank's rows; the prefix of
    // every rank is gathered for the op and freed after it.
    RowBuffer k = gatherPrefix(kv.k, u, feat(op.inputs[1]), i),
              v = gatherPrefix(kv.v, u, feat(op.inputs[2]), i);
    kernels_.attention_fwd(in(0), k.data(), v.data(), y,
                           save(u.saveA, B * op.heads * u.len), ws, d);
    break;
  }
  case OpKind::Gelu:
    if (op.exact)
      kernels_.gelu_erf_fwd(in(0), y, N * feat(op.output));
    else
      kernels_.gelu_fwd(in(0), y, N * feat(op.output));
    break;
  case OpKind::Silu:
    kernels_.silu_fwd(in(0), y, N * feat(op.output));
    break;
  case OpKind::Softcap:
    kernels_.softcap_fwd(in(0), y, N * feat(op.output), op.softcap);
    break;
  case OpKind::Scale:
    kernels_.scale(in(0), y, N * feat(op.output),
                   static_cast<float>(op.scale));
    break;
  case OpKind::Swiglu:
    kernels_.swiglu_fwd(in(0), in(1), y, N * feat(op.output));
    break;
  case OpKind::Geglu:
    kernels_.geglu_fwd(in(0), in(1), y, N * feat(op.output));
    break;
  case OpKind::Add:
    kernels_.add_fwd(in(0), in(1), y, N * feat(op.output));
    break;
  case OpKind::TpCopy:
    if (sequenceSplit(op.inputs[0]))
      gatherTokens(u, in(0), y, feat(op.output), i);
    else
      std::copy_n(in(0), N * feat(op.output), y);
    break;
  case OpKind::TpReduce: {
    const int64_t D = feat(op.output);
    if (sequenceSplit(op.output)) {
      reduceScatterTokens(u, in(0), y, D, i);
    } else {
      std::copy_n(in(0), N * D, y);
      if (tp_)
        allReduceSum(*tp_, y, N * D, Tag{MsgKind::TensorParallel, i, 0, 0});
    }
    if (!op.params.empty()) {
      const float *bias = param(0);
      for (int64_t r = 0; r < N; ++r)
        for (int64_t j = 0; j < D; ++j)
          y[r * D + j] += bias[j];
    }
    break;
  }
  case OpKind::SigmoidGate: // a host loop on any kernel set (a GEMV)
    cpu::sigmoid_gate_fwd(in(0), in(1), param(0), y, N, feat(op.output),
                          feat(op.inputs[1]));
    break;
  case OpKind::Moe: {
    std::vector<float> routing, acts;
    const moe::Dims d = moeDims(op, N);
    moe::forward(kernels_, d, in(0), param(0), param(1), param(2), param(3), y,
                 routing, acts, moe::ExpertParallel{ep_, i});
    moe::Balance &b = routed_[i][{u.mb, u.chunk}];
    b = {}; // (again, when recomputing: the same sums)
    b.addRoutingSums(d, routing.data());
    u.saveA[local] = Tensor(std::move(routing), &memory_, MemKind::Activations);
    u.saveB[local] = Tensor(std::move(acts), &memory_, MemKind::Activations);
    break;
  }
  case OpKind::CrossEntropy: {
    const int64_t V = feat(op.inputs[0]);
    cpu::LossSum l =
        op.tpSplit
            ? vocabParallelCrossEntropyFwd(
                  in(0), u.targets.data(), save(u.saveA, N), N, V,
                  tp_->rank() * V, *tp_, Tag{MsgKind::TensorParallel, i, 0, 0})
            : kernels_.cross_entropy_fwd(in(0), u.targets.data(),
                                         save(u.saveA, N), N, V);
    loss_.loss_sum += l.loss_sum;
    loss_.count += l.count;
    break;
  }
  }
}

//===----------------------------------------------------------------------===//
// Backward
//===----------------------------------------------------------------------===//

std::vector<float> StageExecutor::backward(int mb, int chunk,
                                           std::vector<float> dOutput) {
  Unit &u = unit(mb, chunk, "backward");
  std::vector<float> dInput = runBackward(u, std::move(dOutput), true, true);
  units_.erase({mb, chunk});
  return dInput;
}

std::vector<float> StageExecutor::backwardInput(int mb, int chunk,
                                                std::vector<float> dOutput) {
  Unit &u = unit(mb, chunk, "input backward (I)");
  std::vector<float> dInput = runBackward(u, std::move(dOutput), true, false);
  keepOnlyWeightInputs(u);
  u.inputDone = true;
  return dInput;
}

void StageExecutor::backwardWeight(int mb, int chunk) {
  Unit &u = unit(mb, chunk, "weight backward (W)");
  if (!u.inputDone)
    throw std::logic_error("stage " + std::to_string(stage_) +
                           ": weight backward of micro-batch " +
                           std::to_string(mb) + " chunk " +
                           std::to_string(chunk) + " before its I");
  for (int i = spec_.opEnd - 1; i >= spec_.opBegin; --i)
    if (!graph_.ops[i].params.empty())
      backwardOp(u, i, false, true);
  units_.erase({mb, chunk});
}

std::vector<float> StageExecutor::runBackward(Unit &u,
                                              std::vector<float> dOutput,
                                              bool input, bool weight) {
  const std::string where = "stage " + std::to_string(stage_) +
                            " backward of micro-batch " + std::to_string(u.mb) +
                            " chunk " + std::to_string(u.chunk) + ": ";
  if (u.inputDone)
    throw std::logic_error(where + "ran twice");
  // dK/dV of chunk c are complete only after chunks c+1.. ran backward.
  const int chunks = static_cast<int>(bounds_.size()) - 1;
  auto next = nextBackward_.try_emplace(u.mb, chunks - 1).first;
  if (next->second != u.chunk)
    throw std::logic_error(where + "expected chunk " +
                           std::to_string(next->second) + " first");
  --next->second;

  u.grads.resize(graph_.valueFeatures.size());
  if (spec_.output >= 0) {
    size_t expected =
        rows(u, spec_.output) * graph_.valueFeatures[spec_.output];
    if (dOutput.size() != expected)
      throw std::invalid_argument(
          where + "output gradient has " + std::to_string(dOutput.size()) +
          " elements, expected " + std::to_string(expected));
    u.grads[spec_.output] =
        Tensor(std::move(dOutput), nullptr, MemKind::Activations);
  }
  // With recomputation, each layer runs again just before its backward and
  // is dropped right after it: one layer's activations at a time.
  int layer = static_cast<int>(layers_.size()) - 1;
  for (int i = spec_.opEnd - 1; i >= spec_.opBegin; --i) {
    if (layer >= 0 && i == layers_[layer].second - 1)
      recomputeLayer(u, layers_[layer]);
    backwardOp(u, i, input, weight);
    if (layer >= 0 && i == layers_[layer].first) // nothing reads it now
      dropLayer(u, layers_[layer--], false);
  }
  if (spec_.input < 0)
    return {};
  Tensor &d = u.grads[spec_.input];
  if (d.empty()) // no path from the input to the output: zero gradient
    return std::vector<float>(
        rows(u, spec_.input) * graph_.valueFeatures[spec_.input], 0.0f);
  return d.release();
}

void StageExecutor::backwardOp(Unit &u, int i, bool input, bool weight) {
  const Op &op = graph_.ops[i];
  const int local = i - spec_.opBegin;
  const int64_t B = batch_->batch,
                N = rows(u, op.output >= 0 ? op.output : op.inputs[0]);
  auto feat = [&](int v) { return graph_.valueFeatures[v]; };
  auto val = [&](int k) { return u.values[op.inputs[k]].data(); };
  auto param = [&](int k) { return params_.at(op.params[k]).value.data(); };
  // Parameter gradients are accumulated; nullptr skips them (I pass).
  auto pgrad = [&](size_t k) {
    return weight && k < op.params.size() ? params_.at(op.params[k]).grad.data()
                                          : nullptr;
  };
  const ParamSpec *p0 =
      op.params.empty() ? nullptr : &graph_.params[op.params[0]];
  // Input gradients: kernels write into a scratch buffer, then it is added to
  // the value's gradient (a value with several uses sums them).
  auto addGrad = [&](int v, const float *src) {
    Tensor &g = u.grads[v];
    if (g.empty())
      g = Tensor(rows(u, v) * feat(v));
    kernels_.accumulate(src, g.data(), static_cast<int64_t>(g.size()));
  };
  const float *dy = nullptr;
  if (op.kind != OpKind::CrossEntropy) {
    if (u.grads[op.output].empty())
      return; // nothing downstream depends on this op
    dy = u.grads[op.output].data();
  }
  for (int v : op.inputs)
    if (gatheredBy_[v] >= 0 && u.values[v].empty()) {
      const Op &copy = graph_.ops[gatheredBy_[v]];
      u.values[v] = Tensor(rows(u, v) * feat(v), &memory_);
      gatherTokens(u, u.values[copy.inputs[0]].data(), u.values[v].data(),
                   feat(v), gatheredBy_[v]);
    }
  // Every kernel below writes all of dx (activation gradients are written,
  // not accumulated), so a reused buffer is safe.
  const int64_t dxSize =
      op.inputs.empty() ? 0 : rows(u, op.inputs[0]) * feat(op.inputs[0]);
  float *dx = scratch(0, dxSize);

  switch (op.kind) {
  case OpKind::Embedding:
    if (weight) {
      const float *g = dy;
      if (op.scale != 1) {
        float *scaled = scratch(1, N * p0->shape[1]);
        kernels_.scale(dy, scaled, N * p0->shape[1],
                       static_cast<float>(op.scale));
        g = scaled;
      }
      if (op.tpSplit) {
        const int64_t mine = p0->shape[0], D = p0->shape[1],
                      first = tp_->rank() * mine;
        float *table = pgrad(0);
        for (int64_t t = 0; t < N; ++t) {
          const int64_t row = u.ids[t] - first;
          if (row >= 0 && row < mine)
            kernels_.accumulate(g + t * D, table + row * D, D);
        }
      } else {
        kernels_.embedding_bwd(u.ids.data(), g, pgrad(0), N, p0->shape[0],
                               p0->shape[1]);
      }
    }
    break;
  case OpKind::PositionEmbedding:
    if (weight)
      kernels_.pos_embedding_bwd(dy, pgrad(0), B, N / B,
                                 sequenceSplit(op.output) ? u.spStart
                                                          : u.start,
                                 p0->shape[0],
                                 p0->shape[1]);
    break;
  case OpKind::LayerNorm:
    kernels_.layer_norm_bwd(val(0), param(0), u.saveA[local].data(),
                            u.saveB[local].data(), dy, dx, pgrad(0), pgrad(1),
                            N, feat(op.output));
    if (input)
      addGrad(op.inputs[0], dx);
    break;
  case OpKind::RmsNorm: {
    const int64_t heads = std::max(op.heads, 1);
    if (op.tpSplit)
      splitRmsNormBwd(val(0), param(0), u.saveA[local].data(), dy,
                      input ? dx : nullptr, pgrad(0), N, feat(op.output),
                      feat(op.output) * tp_->size(), *tp_,
                      Tag{MsgKind::TensorParallel, i, 0, 0});
    else
      kernels_.rms_norm_bwd(val(0), param(0), u.saveA[local].data(), dy,
                            dx, pgrad(0), N * heads, feat(op.output) / heads);
    if (input)
      addGrad(op.inputs[0], dx);
    break;
  }
  case OpKind::Linear:
    kernels_.linear_bwd(val(0), param(0), dy, input ? dx : nullptr, pgrad(0),
                        pgrad(1), N, feat(op.inputs[0]), feat(op.output));
    if (input)
      addGrad(op.inputs[0], dx);
    break;
  case OpKind::Rope:
    kernels_.rope_bwd(dy, dx, B, u.len, op.heads, feat(op.output) / op.heads,
                      u.start, op.theta, op.rotaryDim, op.ropeScaling);
    addGrad(op.inputs[0], dx);
    break;
  case OpKind::Attention: {
    cpu::AttentionDims d = attentionDims(u, op);
    KvState &kv = kv_.at({u.mb, i});
    float *ws = scratch(1, kernels_.attention_workspace_size(d));
    float *dk = scratch(2, N * feat(op.inputs[1]));
    float *dv = scratch(3, N * feat(op.inputs[2]));
    if (cp_) {
      attentionBackwardShared(u, i, d, kv, dy, dx, dk, dv, ws);
    } else if (d.start == 0 && d.len == d.max_seq) {
      // The whole sequence in one chunk: no other chunk shares its K/V, so
      // their gradient goes straight to dk, dv (laid out as the buffers
      // would be), and no KV-gradient buffer is needed.
      std::fill_n(dk, N * feat(op.inputs[1]), 0.f);
      std::fill_n(dv, N * feat(op.inputs[2]), 0.f);
      kernels_.attention_bwd(val(0), kv.k.data(), kv.v.data(),
                             u.values[op.output].data(), dy,
                             u.saveA[local].data(), dx, dk, dv, ws, d);
    } else {
      if (kv.dk.empty()) { // the micro-batch's first backward (chunk N-1)
        // Later chunks add into the rows of earlier ones: the prefix.
        kv.dk = RowBuffer(B, batch_->seq, feat(op.inputs[1]), &memory_,
                          MemKind::KvGrad);
        kv.dv = RowBuffer(B, batch_->seq, feat(op.inputs[2]), &memory_,
                          MemKind::KvGrad);
        kv.dk.commit(0, u.start);
        kv.dv.commit(0, u.start);
      }
      // These kernels also add the chunk's share to its own rows, which
      // kv_cache_write_bwd then gathers: for chunk N-1 rows that live only
      // while it runs (the GPU's kernels write them to dk, dv directly, as
      // the simulator assumes).
      kv.dk.commit(u.start, u.start + u.len);
      kv.dv.commit(u.start, u.start + u.len);
      kernels_.attention_bwd(
          val(0), kv.k.data(), kv.v.data(), u.values[op.output].data(), dy,
          u.saveA[local].data(), dx, kv.dk.data(), kv.dv.data(), ws, d);
      // Later chunks have added their share: this chunk's rows are complete,
      // and once gathered no one reads them again.
      kernels_.kv_cache_write_bwd(kv.dk.data(), kv.dv.data(), dk, dv, d);
      kv.dk.release(u.start, u.start + u.len);
      kv.dv.release(u.start, u.start + u.len);
    }
    addGrad(op.inputs[0], dx);
    addGrad(op.inputs[1], dk);
    addGrad(op.inputs[2], dv);
    // This chunk's K/V rows have no reader left (later chunks are done).
    kv.k.release(u.start, u.start + u.len);
    kv.v.release(u.start, u.start + u.len);
    if (u.chunk == 0) // no earlier chunk needs the prefix any more
      kv_.erase({u.mb, i});
    break;
  }
  case OpKind::Gelu:
    if (op.exact)
      kernels_.gelu_erf_bwd(val(0), dy, dx, dxSize);
    else
      kernels_.gelu_bwd(val(0), dy, dx, dxSize);
    addGrad(op.inputs[0], dx);
    break;
  case OpKind::Silu:
    kernels_.silu_bwd(val(0), dy, dx, dxSize);
    addGrad(op.inputs[0], dx);
    break;
  case OpKind::Softcap:
    kernels_.softcap_bwd(val(0), dy, dx, dxSize, op.softcap);
    addGrad(op.inputs[0], dx);
    break;
  case OpKind::Scale:
    kernels_.scale(dy, dx, dxSize, static_cast<float>(op.scale));
    addGrad(op.inputs[0], dx);
    break;
  case OpKind::Swiglu:
  case OpKind::Geglu: {
    float *dup = scratch(2, dxSize);
    if (op.kind == OpKind::Swiglu)
      kernels_.swiglu_bwd(val(0), val(1), dy, dx, dup, dxSize);
    else
      kernels_.geglu_bwd(val(0), val(1), dy, dx, dup, dxSize);
    addGrad(op.inputs[0], dx);
    addGrad(op.inputs[1], dup);
    break;
  }
  case OpKind::Add:
    addGrad(op.inputs[0], dy);
    addGrad(op.inputs[1], dy);
    break;
  case OpKind::TpCopy:
    // The column-parallel linears' input gradients are each rank's share.
    if (sequenceSplit(op.inputs[0])) {
      float *sum = scratch(1, N * feat(op.output));
      std::copy_n(dy, N * feat(op.output), sum);
      reduceScatterTokens(u, sum, dx, feat(op.output), i);
      // Its readers are done (but a split backward's W still reads it).
      if (weight)
        u.values[op.output] = Tensor();
    } else {
      std::copy_n(dy, dxSize, dx);
      if (tp_)
        allReduceSum(*tp_, dx, dxSize, Tag{MsgKind::TensorParallel, i, 0, 0});
    }
    addGrad(op.inputs[0], dx);
    break;
  case OpKind::TpReduce:
    if (float *gbias = pgrad(0)) {
      const int64_t D = feat(op.output);
      for (int64_t r = 0; r < N; ++r)
        for (int64_t j = 0; j < D; ++j)
          gbias[j] += dy[r * D + j];
    }
    if (input && sequenceSplit(op.output)) {
      gatherTokens(u, dy, dx, feat(op.output), i);
      addGrad(op.inputs[0], dx);
    } else if (input) {
      addGrad(op.inputs[0], dy);
    }
    break;
  case OpKind::SigmoidGate: {
    float *dgate = scratch(2, N * feat(op.inputs[1]));
    cpu::sigmoid_gate_bwd(val(0), val(1), param(0), dy, input ? dx : nullptr,
                          input ? dgate : nullptr, pgrad(0), N,
                          feat(op.output), feat(op.inputs[1]));
    if (input) {
      addGrad(op.inputs[0], dx);
      addGrad(op.inputs[1], dgate);
    }
    break;
  }
  case OpKind::Moe: {
    // One pass computes the input and the weight gradients: a split backward
    // does all of it in I, and W has nothing left.
    if (!input)
      break;
    auto grad = [&](int k) { return params_.at(op.params[k]).grad.data(); };
    moe::TensorParallel tp;
    if (op.tpSplit) {
      tp.sumOverRanks = [&](float *x, int64_t n) {
        allReduceSum(*tp_, x, n, Tag{MsgKind::TensorParallel, i, 0, 0});
      };
      tp.routerInputGrad = tp_->rank() == 0;
    }
    moe::backward(kernels_, moeDims(op, N), val(0), param(0), param(1),
                  param(2), param(3), u.saveA[local].data(),
                  u.saveB[local].data(), dy, dx, grad(0), grad(1), grad(2),
                  grad(3), tp, moe::ExpertParallel{ep_, i},
                  op.auxLoss > 0 ? balanceGrad(u, i).data() : nullptr);
    addGrad(op.inputs[0], dx);
    if (op.auxLoss > 0 && u.chunk == 0) // the micro-batch's last backward
      balanceGrad_.erase({u.mb, i});
    break;
  }
  case OpKind::CrossEntropy:
    if (op.tpSplit)
      vocabParallelCrossEntropyBwd(val(0), u.targets.data(),
                                   u.saveA[local].data(), dx, N,
                                   feat(op.inputs[0]),
                                   tp_->rank() * feat(op.inputs[0]),
                                   lossScale_);
    else
      kernels_.cross_entropy_bwd(val(0), u.targets.data(),
                                 u.saveA[local].data(), dx, N,
                                 feat(op.inputs[0]), lossScale_);
    addGrad(op.inputs[0], dx);
    break;
  }
}

std::map<int, std::vector<double>> StageExecutor::expertCounts() const {
  std::map<int, std::vector<double>> counts;
  for (const auto &[op, units] : routed_) {
    moe::Balance total;
    for (const auto &[unit, b] : units)
      total += b;
    counts[op] = total.counts;
  }
  return counts;
}

moe::Dims StageExecutor::moeDims(const Op &op, int64_t rows) const {
  const std::vector<int64_t> &router = graph_.params[op.params[0]].shape;
  moe::Dims d;
  d.N = rows;
  d.D = router[1];
  d.E = router[0];
  d.F = graph_.params[op.params[3]].shape[1]; // down [experts * D, F]
  d.K = op.topK;
  d.normalized = op.normalized;
  return d;
}

const std::vector<float> &StageExecutor::balanceGrad(const Unit &u, int i) {
  const Op &op = graph_.ops[i];
  std::vector<float> &grad = balanceGrad_[{u.mb, i}];
  if (!grad.empty())
    return grad;
  // Every chunk of the micro-batch has run forward (chunks go backward
  // only after); context-parallel ranks each hold their tokens' sums.
  moe::Balance total;
  for (const auto &[unit, b] : routed_.at(i))
    if (unit.first == u.mb)
      total += b;
  if (cp_)
    for (std::vector<double> *v : {&total.probSums, &total.counts})
      *v = [&] {
        std::vector<float> f(v->begin(), v->end());
        allReduceSum(*cp_, f, Tag{MsgKind::ContextParallel, i, 0, 0});
        return std::vector<double>(f.begin(), f.end());
      }();
  const double tokens = double(batch_->batch) * batch_->seq;
  auxLoss_ += total.loss(op.auxLoss, op.topK, tokens) / microbatches_;
  const std::vector<double> g =
      total.probGrad(op.auxLoss, op.topK, tokens, 1.0 / microbatches_);
  grad.assign(g.begin(), g.end());
  return grad;
}

RowBuffer StageExecutor::gatherPrefix(const RowBuffer &own, const Unit &u,
                                     int64_t width, int op) {
  const int64_t B = batch_->batch, S = batch_->seq;
  RowBuffer all(B, S, width, &memory_, MemKind::KvCache);
  all.commit(0, u.chunkEnd);
  for (int64_t b = 0; b < B; ++b) {
    // This rank's rows, the others' zero (never written): the sum gathers.
    float *rows = all.data() + b * S * width;
    std::copy_n(own.data() + b * S * width, u.chunkEnd * width, rows);
    allReduceSum(*cp_, rows, u.chunkEnd * width,
                 Tag{MsgKind::ContextParallel, op, 0, 0});
  }
  return all;
}

void StageExecutor::attentionBackwardShared(Unit &u, int i,
                                            const cpu::AttentionDims &d,
                                            KvState &kv, const float *dy,
                                            float *dx, float *dk, float *dv,
                                            float *ws) {
  const Op &op = graph_.ops[i];
  const int local = i - spec_.opBegin;
  const int64_t B = batch_->batch, S = batch_->seq;
  const int64_t kw = graph_.valueFeatures[op.inputs[1]],
                vw = graph_.valueFeatures[op.inputs[2]];
  // The prefix's K/V again, and its gradient from this rank's queries.
  RowBuffer k = gatherPrefix(kv.k, u, kw, i), v = gatherPrefix(kv.v, u, vw, i);
  RowBuffer dkAll(B, S, kw, &memory_, MemKind::KvGrad),
      dvAll(B, S, vw, &memory_, MemKind::KvGrad);
  dkAll.commit(0, u.chunkEnd);
  dvAll.commit(0, u.chunkEnd);
  kernels_.attention_bwd(u.values[op.inputs[0]].data(), k.data(), v.data(),
                         u.values[op.output].data(), dy, u.saveA[local].data(),
                         dx, dkAll.data(), dvAll.data(), ws, d);
  // Every rank's queries' share of every prefix row, summed; each rank keeps
  // its own rows (of this chunk and the earlier ones) in its buffers.
  if (kv.dk.empty()) {
    kv.dk = RowBuffer(B, S, kw, &memory_, MemKind::KvGrad);
    kv.dv = RowBuffer(B, S, vw, &memory_, MemKind::KvGrad);
  }
  const int chunks = static_cast<int>(bounds_.size()) - 1;
  for (auto [all, mine, width] : {std::tuple{&dkAll, &kv.dk, kw},
                                  std::tuple{&dvAll, &kv.dv, vw}})
    for (int64_t b = 0; b < B; ++b) {
      float *rows = all->data() + b * S * width;
      allReduceSum(*cp_, rows, u.chunkEnd * width,
                   Tag{MsgKind::ContextParallel, i, 0, 0});
      for (int c = 0; c < chunks && bounds_[c] < u.chunkEnd; ++c) {
        const auto [first, last] = contextParallelPart(
            bounds_[c], bounds_[c + 1], cp_->rank(), cp_->size());
        mine->commit(first, last);
        kernels_.accumulate(rows + first * width,
                            mine->data() + (b * S + first) * width,
                            (last - first) * width);
      }
    }
  // This chunk's own rows are complete now (later chunks added theirs).
  kernels_.kv_cache_write_bwd(kv.dk.data(), kv.dv.data(), dk, dv, d);
  kv.dk.release(u.start, u.start + u.len);
  kv.dv.release(u.start, u.start + u.len);
}

void StageExecutor::gatherTokens(const Unit &u, const float *part,
                                 float *full, int64_t width, int op) {
  const int64_t B = batch_->batch, row = width;
  std::fill_n(full, B * u.len * row, 0.0f);
  for (int64_t b = 0; b < B; ++b)
    std::copy_n(part + b * u.spLen * row, u.spLen * row,
                full + (b * u.len + u.spStart - u.start) * row);
  // Every other rank's tokens are zero here: the sum gathers them exactly.
  allReduceSum(*tp_, full, B * u.len * row,
               Tag{MsgKind::TensorParallel, op, 0, 0});
}

void StageExecutor::reduceScatterTokens(const Unit &u, float *full,
                                        float *part, int64_t width, int op) {
  const int64_t B = batch_->batch, row = width;
  allReduceSum(*tp_, full, B * u.len * row,
               Tag{MsgKind::TensorParallel, op, 0, 0});
  for (int64_t b = 0; b < B; ++b)
    std::copy_n(full + (b * u.len + u.spStart - u.start) * row,
                u.spLen * row, part + b * u.spLen * row);
}

float *StageExecutor::scratch(int slot, size_t n) {
  std::vector<float> &buffer = scratch_[slot];
  if (buffer.size() < n)
    buffer.resize(n);
  return buffer.data();
}

void StageExecutor::keepOnlyWeightInputs(Unit &u) {
  // W needs, per op with parameters: its input, its saved statistics and
  // the gradient of its output. Everything else goes now.
  std::vector<bool> keepValue(graph_.valueFeatures.size(), false);
  std::vector<bool> keepGrad(graph_.valueFeatures.size(), false);
  for (int i = spec_.opBegin; i < spec_.opEnd; ++i) {
    const Op &op = graph_.ops[i];
    const int local = i - spec_.opBegin;
    if (op.params.empty()) {
      u.saveA[local] = Tensor();
      u.saveB[local] = Tensor();
      continue;
    }
    for (int v : op.inputs)
      keepValue[v] = true;
    keepGrad[op.output] = true;
  }
  for (size_t v = 0; v < keepValue.size(); ++v) {
    if (!keepValue[v])
      u.values[v] = Tensor();
    if (!keepGrad[v])
      u.grads[v] = Tensor();
    else
      u.grads[v].track(&memory_, MemKind::Activations);
  }
}

} // namespace s1f::rt
