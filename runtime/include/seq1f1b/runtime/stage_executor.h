//===- stage_executor.h - Runs one pipeline stage's ops ---------*- C++ -*-===//
//
// Forward and backward of one stage for (micro-batch, chunk) units, chunk c
// covering absolute positions [bounds[c], bounds[c+1]) of every sequence.
//
// State kept between calls, all counted by the rank's MemoryTracker:
//  * per unit: every value the forward produced (and the received input),
//    norm statistics and log-sum-exps, until the unit's backward (or, split,
//    its weight pass) has run;
//  * per (micro-batch, attention op): the KV cache [B, S, kv] for K and V
//    (RowBuffer), whose rows of chunk c are committed by c's forward, read as
//    the prefix by later chunks, and released after c's backward; and the
//    KV-gradient buffers, whose prefix rows [0, start of chunk N-1) are
//    committed, zero, at the micro-batch's first backward (chunk N-1).
//    Chunks run backward descending; after chunk c's backward its rows are
//    complete, go to the K/V producers and are released. Both are freed
//    after chunk 0's backward.
// Parameter gradients accumulate across chunks and micro-batches into the
// ParamStore; the loss gradient is scaled by 1/(target tokens of the step).
//
// A tensor-parallel graph (tensor_parallel.h) sums over its group in the
// tp_copy, tp_reduce, vocabulary-parallel loss and split-norm ops; with
// sequence parallelism its sequence-split values hold the rank's part of
// the unit's tokens. With context parallelism the unit is the rank's part
// of the chunk, the caches hold the rank's rows, and each attention op
// gathers the prefix from the other ranks for as long as it runs.
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_RUNTIME_STAGE_EXECUTOR_H
#define SEQ1F1B_RUNTIME_STAGE_EXECUTOR_H

#include "seq1f1b/runtime/batch.h"
#include "seq1f1b/runtime/communicator.h"
#include "seq1f1b/runtime/cpu_kernels.h"
#include "seq1f1b/runtime/graph.h"
#include "seq1f1b/runtime/kernel_set.h"
#include "seq1f1b/runtime/memory.h"
#include "seq1f1b/runtime/moe.h"
#include "seq1f1b/runtime/params.h"
#include "seq1f1b/runtime/partition.h"

#include <map>
#include <utility>
#include <vector>

namespace s1f::rt {

class StageExecutor {
public:
  /// `params` must hold every parameter of `spec`; it, `memory` and
  /// `kernels` outlive the executor. With `recompute`, each layer
  /// (layerRanges) keeps only its input after the forward and runs again
  /// just before its backward (full activation recomputation).
  StageExecutor(const Graph &graph, const StageSpec &spec, int stage,
                ParamStore &params, MemoryTracker &memory,
                const KernelSet &kernels = cpuKernels(),
                bool recompute = false);

  /// Starts a step: the batch (kept by pointer until the step ends), chunk
  /// bounds (N+1 entries ending at S), the scale of the loss gradient and,
  /// kept by pointer: for a tensor-parallel graph, the group of its
  /// tensor-parallel ranks (the tp_copy and tp_reduce ops sum over it); with
  /// context parallelism, the group of ranks that share each chunk's tokens
  /// (this one runs its part, contextParallelPart, and they exchange K/V
  /// rows); with expert parallelism, the group of ranks that hold the
  /// mixtures of experts' experts between them; load-balancing losses
  /// average over the step's `microbatches` (0: the batch's). Resets the
  /// loss; throws if the previous step left state behind.
  void beginStep(const Batch &batch, const std::vector<int> &bounds,
                 float lossScale, Communicator *tensorParallel = nullptr,
                 Communicator *contextParallel = nullptr,
                 Communicator *expertParallel = nullptr,
                 int microbatches = 0);

  /// Runs the forward of (mb, chunk). `input` is the previous stage's output
  /// [B, len, feat] (empty for the first stage); returns this stage's output
  /// (empty for the last). Chunks of a micro-batch must come in order.
  std::vector<float> forward(int mb, int chunk, std::vector<float> input);

  /// Full backward (B) of (mb, chunk): `dOutput` is the gradient of the
  /// output (empty for the last stage, which starts from the loss). Returns
  /// the gradient of the input (empty for the first stage). Chunks of a
  /// micro-batch must come in descending order.
  std::vector<float> backward(int mb, int chunk, std::vector<float> dOutput);
  /// Zero-bubble split: I computes the input gradient and keeps only what
  /// the weight gradients need; W then adds the weight gradients.
  std::vector<float> backwardInput(int mb, int chunk,
                                   std::vector<float> dOutput);
  void backwardWeight(int mb, int chunk);

  /// Sum of token losses and counted targets of this step (last stage).
  cpu::LossSum loss() const { return loss_; }
  /// This step's load-balancing losses (moe ops with an aux_loss), each
  /// micro-batch's over the step's micro-batches.
  double auxLoss() const { return auxLoss_; }
  /// Per moe op (graph index) of this stage: the routed copies each expert
  /// got this step, from this rank's tokens.
  std::map<int, std::vector<double>> expertCounts() const;
  int stage() const { return stage_; }
  /// Throws unless every unit of the step has finished its backward.
  void checkDrained() const;

private:
  /// What one (mb, chunk) keeps from its forward to its backward.
  struct Unit {
    int mb = 0, chunk = 0, start = 0, len = 0; ///< this rank's tokens
    int chunkStart = 0, chunkEnd = 0;          ///< the chunk's
    int spStart = 0, spLen = 0; ///< of sequence-split values (else start, len)
    std::vector<int32_t> ids, targets; ///< [B*len] slices of the batch
    std::vector<Tensor> values;        ///< by value id
    std::vector<Tensor> saveA, saveB;  ///< by op - opBegin (norm stats, lse)
    std::vector<Tensor> grads;         ///< by value id, during backward
    bool inputDone = false;            ///< I ran, W pending
  };
  /// Per (mb, attention op): K/V prefix cache and its gradient.
  struct KvState {
    RowBuffer k, v, dk, dv;
  };

  Unit &unit(int mb, int chunk, const char *what);
  std::vector<float> runBackward(Unit &u, std::vector<float> dOutput,
                                 bool input, bool weight);
  void forwardOp(Unit &u, int i);
  void backwardOp(Unit &u, int i, bool input, bool weight);
  void keepOnlyWeightInputs(Unit &u);
  /// Recomputation: drops what layer [first, last) made and saved (but the
  /// values that leave it, if `keepLeaving`); runs its forward again.
  void dropLayer(Unit &u, std::pair<int, int> layer, bool keepLeaving);
  void recomputeLayer(Unit &u, std::pair<int, int> layer);
  /// Whether the forward may drop value v after its last forward reader.
  bool droppable(int v) const;
  cpu::AttentionDims attentionDims(const Unit &u, const Op &op) const;
  moe::Dims moeDims(const Op &op, int64_t rows) const;
  /// The gradient of op i's load-balancing loss for every token's router
  /// probabilities; at the micro-batch's first call, sums its chunks' (and
  /// context-parallel ranks') routing and adds the loss.
  const std::vector<float> &balanceGrad(const Unit &u, int i);
  /// Whether value v holds only this rank's part of the unit's tokens
  /// (sequence parallelism), and its rows: B x those tokens.
  bool sequenceSplit(int v) const {
    return !graph_.sequenceSplit.empty() && graph_.sequenceSplit[v];
  }
  int64_t rows(const Unit &u, int v) const {
    return batch_->batch * (sequenceSplit(v) ? u.spLen : u.len);
  }
  /// Sequence parallelism: `full` [B, len, width] from every rank's part
  /// `part` [B, spLen, width] (gather), or the sum of every rank's `full`,
  /// of which `part` gets this rank's tokens (reduce-scatter).
  void gatherTokens(const Unit &u, const float *part, float *full,
                    int64_t width, int op);
  void reduceScatterTokens(const Unit &u, float *full, float *part,
                           int64_t width, int op);
  /// Context parallelism: the K or V rows [0, end of the chunk) of every
  /// rank sharing it, from this rank's cache `own` (which holds its rows),
  /// in a buffer that lives as long as the op needs it.
  RowBuffer gatherPrefix(const RowBuffer &own, const Unit &u, int64_t width,
                         int op);
  /// Attention's backward over a gathered prefix: dx, and this chunk's dk,
  /// dv once every rank's queries have added their share to its rows (`ws`
  /// the kernel's workspace for `d`).
  void attentionBackwardShared(Unit &u, int i, const cpu::AttentionDims &d,
                               KvState &kv, const float *dy, float *dx,
                               float *dk, float *dv, float *ws);
  /// A reusable, grow-only buffer of at least `n` floats, so kernels' scratch
  /// space is not allocated per op in steady state. Contents are undefined.
  float *scratch(int slot, size_t n);

  const Graph &graph_;
  const KernelSet &kernels_;
  std::vector<float> scratch_[4];
  StageSpec spec_;
  int stage_;
  ParamStore &params_;
  MemoryTracker &memory_;
  std::vector<bool> readByBackward_; ///< by value id
  std::vector<int> gatheredBy_; ///< by value id: the tp_copy gathering it
  std::vector<int> lastForwardRead_; ///< by value id: op index, -1 if none
  std::vector<std::pair<int, int>> layers_; ///< recomputed, ascending
  std::vector<bool> checkpoint_;  ///< by value id: a recomputed layer's input
  std::vector<bool> leavesLayer_; ///< by value id: read after its layer

  const Batch *batch_ = nullptr;
  Communicator *tp_ = nullptr, *cp_ = nullptr, *ep_ = nullptr;
  std::vector<int> bounds_;
  float lossScale_ = 0;
  cpu::LossSum loss_;
  std::map<std::pair<int, int>, Unit> units_;      ///< (mb, chunk)
  std::map<std::pair<int, int>, KvState> kv_;      ///< (mb, op index)
  /// Per moe op, per (mb, chunk): its routing sums over this rank's tokens
  /// (a recomputed forward overwrites its own).
  std::map<int, std::map<std::pair<int, int>, moe::Balance>> routed_;
  /// Per (mb, moe op with a load-balancing loss), from the micro-batch's
  /// first backward: the loss's gradient for every token's probabilities.
  std::map<std::pair<int, int>, std::vector<float>> balanceGrad_;
  double auxLoss_ = 0;
  int microbatches_ = 1; ///< the step's, over which aux losses average
  std::map<int, int> nextForward_, nextBackward_;  ///< per mb: order checks
};

} // namespace s1f::rt

#endif // SEQ1F1B_RUNTIME_STAGE_EXECUTOR_H
