//===- pipeline.h - A pipelined training run --------------------*- C++ -*-===//
//
// PipelinePlan builds the plan (schedule with communication, stage cut,
// chunk bounds) and places stages and parameters on P ranks, each split
// over T tensor-parallel ranks and C context-parallel ranks, replicated D
// times for data parallelism. PipelineRank runs one rank's part of each
// training step over a Communicator of all P x C x T x D ranks; Pipeline runs them
// all as threads over an InProcessWorld, and an MPI process runs one. A rank
// that fails (an exception, a receive past its deadline) aborts the run: the
// others stop waiting at once and step() returns an error naming the first
// failure.
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_RUNTIME_PIPELINE_H
#define SEQ1F1B_RUNTIME_PIPELINE_H

#include "seq1f1b/runtime/rank_executor.h"
#include "seq1f1b/runtime/safetensors.h"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace s1f::rt {

struct PipelineOptions {
  /// Kind, ranks P, virtual stages V, micro-batches M, chunks N.
  seq1f1b::schedule::ScheduleConfig schedule;
  /// Runs these rank programs (e.g. an imported CSV) instead of generating
  /// `schedule.kind`'s; their config replaces `schedule`. They must verify;
  /// communication is added when they have none.
  std::optional<seq1f1b::schedule::Schedule> programs;
  ChunkPolicy chunkPolicy = ChunkPolicy::Even;
  /// The chunk bounds (N+1, from 0 to the sequence length) instead of
  /// chunkPolicy's, e.g. the compiler's pipe.chunk_plan.
  std::vector<int> chunkBounds;
  /// Pipeline rank r runs compiledPrograms[r] (RankExecutor::setProgram)
  /// when given: the rank programs compiled to native code; they must make
  /// exactly the schedule's actions.
  std::vector<CompiledProgram> compiledPrograms;
  OptimizerConfig optimizer;
  std::chrono::milliseconds recvTimeout{60000};
  uint64_t seed = 0;       ///< parameter initialization
  ActionHook beforeAction; ///< optional
  /// The kernels the stages run (nullptr: cpuKernels()); must outlive the
  /// pipeline. kernel_set.h lists the sets.
  const KernelSet *kernels = nullptr;
  /// Full activation recomputation: every layer keeps only its input and
  /// runs again before its backward (partition.h, layerRanges). Not with
  /// the kinds that split the backward into I and W.
  bool recompute = false;
  /// Data parallelism: D replicas of the pipeline. A step's batch has D x M
  /// micro-batches; replica d runs micro-batches [d*M, (d+1)*M), and the
  /// gradients are summed over the replicas before the optimizer step, so
  /// every replica makes the same update.
  int dataParallel = 1;
  /// Tensor parallelism: each pipeline rank is T ranks that split every
  /// layer's heads and MLP width between them (tensor_parallel.h).
  int tensorParallel = 1;
  /// With tensor parallelism, the residual stream and norms split by tokens
  /// over the T ranks too (Megatron's sequence parallelism); every chunk
  /// (every context-parallel part of it) then needs at least T tokens.
  bool sequenceParallel = false;
  /// Context parallelism: C ranks share every chunk's tokens, each running
  /// a contiguous part (contextParallelPart) and gathering the chunk's K/V
  /// rows from the others; their gradients are summed as the replicas' are.
  /// Every chunk needs at least C tokens. World rank ((d*P + r)*C + c)*T + t
  /// is tensor-parallel rank t of context-parallel rank c of pipeline rank
  /// r of replica d.
  int contextParallel = 1;
  /// Expert parallelism: groups of X consecutive replicas (X divides D)
  /// split every mixture of experts' experts between them, replica d
  /// holding block d % X (moe.h); each routes its tokens to the replicas
  /// holding their experts and back. Expert weights' gradients are summed
  /// over the replicas holding the same experts. Needs tensorParallel = 1.
  int expertParallel = 1;
  /// Every mixture of experts gets Megatron's load-balancing loss with this
  /// coefficient (--moe-aux-loss-coeff; moe::Balance), averaged over the
  /// step's micro-batches; 0: none.
  double moeAuxLoss = 0;
};

struct StepResult {
  bool ok = false;
  std::string error;                   ///< the first failure, if any
  std::vector<std::string> rankErrors; ///< per rank, empty if it succeeded
  double lossSum = 0;                  ///< sum of token losses
  int64_t tokens = 0;                  ///< counted targets
  double gradNorm = 0;                 ///< global norm before clipping
  double auxLoss = 0; ///< the load-balancing losses (moeAuxLoss), summed
  /// The step's busiest expert, over all layers: its routed copies over an
  /// even share (1: balanced; 0: no mixture of experts).
  double expertLoad = 0;
  std::vector<MemoryStats> memory;     ///< per rank, peaks of this step
  /// The step as it ran, in the simulator's terms (Timeline.h draws it):
  /// every compute action's start and end (seconds from the step's start)
  /// and the rank's live bytes while it ran and after; per rank its busy
  /// time and bubble, its parameters, gradients and Adam moments as static
  /// bytes and, as peak, those plus its peak of activations and KV buffers.
  seq1f1b::schedule::SimulationResult timeline;

  double loss() const { return tokens ? lossSum / tokens : 0; }
};

/// The plan of a run: schedule with communication, stage cut, chunk bounds
/// and which ranks hold each parameter. A pure function of (graph, options,
/// seqLen), so every process of a multi-process run builds the same plan.
class PipelinePlan {
public:
  /// Throws std::invalid_argument for a configuration the schedule library
  /// rejects, more stages than the graph can be cut into, bad chunks, or a
  /// graph that tensor parallelism cannot split.
  PipelinePlan(Graph graph, PipelineOptions options, int seqLen);

  /// The graph each rank runs: sharded for T tensor-parallel ranks (its
  /// parameters are one rank's parts), else the whole graph.
  const Graph &graph() const { return graph_; }
  /// The graph as given, with the plan's stage cut: whole parameters.
  const Graph &wholeGraph() const { return whole_; }
  int tensorParallel() const { return options_.tensorParallel; }
  int contextParallel() const { return options_.contextParallel; }
  const PipelineOptions &options() const { return options_; }
  /// Pipeline ranks P (of one replica).
  int ranks() const { return options_.schedule.ranks; }
  int replicas() const { return options_.dataParallel; }
  /// All ranks, P x C x T x D.
  int worldSize() const {
    return ranks() * contextParallel() * tensorParallel() * replicas();
  }
  /// World rank of pipeline rank r, tensor-parallel rank t, replica d,
  /// context-parallel rank c.
  int worldRank(int r, int t, int d, int c = 0) const {
    return ((d * ranks() + r) * contextParallel() + c) * tensorParallel() + t;
  }
  const seq1f1b::schedule::Schedule &schedule() const { return schedule_; }
  const std::vector<StageSpec> &stages() const { return stages_; }
  const std::vector<int> &chunkBounds() const { return bounds_; }
  int expertParallel() const { return options_.expertParallel; }
  /// Parts parameter p is split into over the ranks: tensor-parallel or
  /// expert-parallel ones (never both).
  int parts(int p) const {
    return graph_.params[p].tpParts * graph_.params[p].epParts;
  }
  /// World rank of the first holder of part k of parameter p (context-
  /// parallel rank 0; the first tensor-parallel rank with part k, or the
  /// replica k for an expert-parallel part, else replica 0).
  int partHolder(int p, int k) const {
    if (graph_.params[p].epParts > 1)
      return worldRank(holders_[p].front(), 0, k, 0);
    return worldRank(holders_[p].front(),
                     k * tensorParallel() / graph_.params[p].tpParts, 0, 0);
  }
  /// Rank (tensor-parallel rank t, replica d)'s part of parameter p, whole.
  std::vector<float> partOf(int p, const std::vector<float> &whole, int t,
                            int d) const;
  /// Parameter p whole from its parts() parts.
  std::vector<float> join(int p,
                          const std::vector<std::vector<float>> &parts) const;
  /// Per parameter, the pipeline ranks holding it, ascending (empty if
  /// none).
  const std::vector<std::vector<int>> &holders() const { return holders_; }
  /// Empty if `batch` has the plan's D x M micro-batches and sequence
  /// length, else what is wrong.
  std::string checkBatch(const Batch &batch) const;

private:
  Graph whole_, graph_;
  PipelineOptions options_;
  seq1f1b::schedule::Schedule schedule_;
  std::vector<StageSpec> stages_;
  std::vector<int> bounds_;
  std::vector<std::vector<int>> holders_;
};

/// What one rank knows after its part of a step. Loss, token count and
/// gradient norm are summed over all ranks (every rank has the totals).
struct RankStepResult {
  bool ok = false;
  std::string error;   ///< this rank's failure, if any
  double lossSum = 0;  ///< sum of token losses (all ranks)
  int64_t tokens = 0;  ///< counted targets (all ranks)
  double gradNorm = 0; ///< global norm before clipping
  double auxLoss = 0;  ///< load-balancing losses (all ranks)
  double expertLoad = 0; ///< the busiest expert's load (all ranks)
  MemoryStats memory;  ///< this rank's peaks of this step
  /// This rank's compute actions as they ran (RankExecutor::events()).
  std::vector<seq1f1b::schedule::TimelineEvent> events;
  int64_t staticBytes = 0; ///< parameters, gradients, Adam moments

  double loss() const { return tokens ? lossSum / tokens : 0; }
};

/// One rank of a pipelined run, driven on the caller's thread over any
/// Communicator: a thread of `Pipeline` (in-process), or the one rank of an
/// MPI process (`comm.rank()` of the world, see mpi_comm.h).
class PipelineRank {
public:
  /// World rank `worldRank` (PipelinePlan::worldRank). Initializes its
  /// parameters from `plan.options().seed`.
  PipelineRank(std::shared_ptr<const PipelinePlan> plan, int worldRank);
  /// `initialParams[p]`, whole (this rank takes its part), for every
  /// parameter p this rank holds.
  PipelineRank(std::shared_ptr<const PipelinePlan> plan, int worldRank,
               const std::vector<std::vector<float>> &initialParams);

  /// One training step: the rank's actions on its replica's micro-batches,
  /// the shared-gradient sum, the sum over replicas, the global norm,
  /// clipping, AdamW, and the all-reduce of loss and token count. `comm`
  /// must have the plan's world size and this rank's world rank. On any
  /// failure (an exception, a receive past its deadline) calls
  /// `comm.abort("rank R failed: ...")` (under MPI that ends the job) and
  /// returns ok = false with the message; the state is then undefined.
  /// Action times count from `origin` (ranks of one process share it).
  RankStepResult step(const Batch &batch, Communicator &comm,
                      std::chrono::steady_clock::time_point origin =
                          std::chrono::steady_clock::now());

  /// Pipeline rank within the replica, tensor- and context-parallel rank,
  /// the replica.
  int rank() const { return rank_; }
  int tpRank() const { return tpRank_; }
  int epRank() const { return replica_ % plan_->expertParallel(); }
  int cpRank() const { return cpRank_; }
  int replica() const { return replica_; }
  int worldRank() const {
    return plan_->worldRank(rank_, tpRank_, replica_, cpRank_);
  }
  const PipelinePlan &plan() const { return *plan_; }
  /// The AdamW learning rate of the following steps (the plan's, until set).
  void setLearningRate(double lr) { lr_ = lr; }
  RankExecutor &executor() { return *exec_; }
  const RankExecutor &executor() const { return *exec_; }
  /// Loss of this rank's stages in the last step (non-zero on the last
  /// stage's rank only).
  cpu::LossSum localLoss() const { return exec_->loss(); }
  /// Whether this rank holds the parameter (unknown names: false).
  bool holds(const std::string &name) const;
  /// Sets this rank's parameters from whole tensors by graph name (its
  /// parts of them), and with `optimizerSteps` >= 0 also its AdamW moments
  /// ("optimizer.m.<name>", "optimizer.v.<name>") and step count. Throws
  /// std::invalid_argument naming the first tensor missing or misshapen.
  void setState(const TensorMap &state, int64_t optimizerSteps = -1);
  /// The training state as Pipeline::trainingState() has it, gathered over
  /// `world` (every rank of the plan calls it): on world rank 0; the other
  /// ranks send their parts and get an empty map.
  TensorMap gatherTrainingState(Communicator &world) const;
  /// Value / gradient (after the cross-rank sum, before clipping) of a
  /// parameter this rank holds (its part, with tensor parallelism); throws
  /// std::invalid_argument otherwise.
  const std::vector<float> &param(const std::string &name) const;
  const std::vector<float> &grad(const std::string &name) const;

private:
  const ParamState &state(const std::string &name) const;
  /// RankStepResult::expertLoad, over `world`; `replicas` this rank's
  /// data- and context-parallel peers.
  double expertLoad(Communicator &world, Communicator &replicas) const;

  std::shared_ptr<const PipelinePlan> plan_;
  int rank_, tpRank_, cpRank_, replica_;
  double lr_;
  std::unique_ptr<RankExecutor> exec_;
};

/// All ranks of a plan (P x C x T x D) as threads of this process over an
/// InProcessWorld. Memory and timeline are those of replica 0's
/// tensor-parallel rank 0; parameters and gradients are replica 0's (every
/// replica holds the same after a step), put together whole from the
/// tensor-parallel ranks' parts.
class Pipeline {
public:
  /// Throws std::invalid_argument for a configuration the schedule library
  /// rejects, more stages than the graph can be cut into, or bad chunks.
  Pipeline(Graph graph, PipelineOptions options, int seqLen);

  /// One training step over `batch` (D x M micro-batches of S = seqLen
  /// tokens).
  /// After a failed step the pipeline's state is undefined.
  StepResult step(const Batch &batch);

  const PipelinePlan &plan() const { return *plan_; }
  /// The graph as given (whole parameters; plan().graph() is sharded).
  const Graph &graph() const { return plan_->wholeGraph(); }
  const seq1f1b::schedule::Schedule &schedule() const {
    return plan_->schedule();
  }
  const std::vector<StageSpec> &stages() const { return plan_->stages(); }
  const std::vector<int> &chunkBounds() const { return plan_->chunkBounds(); }
  /// The AdamW learning rate of the following steps, on every rank.
  void setLearningRate(double lr);
  /// Value / gradient (of the last step, after the cross-rank sum, before
  /// clipping) of a whole parameter, from the first rank that holds it.
  std::vector<float> param(const std::string &name) const;
  std::vector<float> grad(const std::string &name) const;

  /// The training state: every parameter ("<name>") and its AdamW moments
  /// ("optimizer.m.<name>", "optimizer.v.<name>"), from its first holder,
  /// whole and shaped as the graph given to the pipeline says (so a
  /// checkpoint does not depend on the parallel layout).
  TensorMap trainingState() const;
  int64_t optimizerSteps() const;
  /// Sets every holder's parameters from `params` (by graph name; the AdamW
  /// moments stay as they are). Throws std::invalid_argument naming the first
  /// parameter missing or of another shape.
  void setParams(const TensorMap &params);
  /// Sets every holder's parameters and moments from `state` and the AdamW
  /// step count, so that the next step is the one that would have followed.
  /// Throws std::invalid_argument naming the first tensor missing or of
  /// another shape.
  void restore(const TensorMap &state, int64_t optimizerSteps);

private:
  /// The parameter called `name` (throws if none), its first pipeline
  /// holder, and that rank's `tp` tensor-parallel parts of `field`, whole.
  int paramOf(const std::string &name) const;
  std::vector<float> whole(int p,
                           std::vector<float> ParamState::*field) const;

  std::shared_ptr<const PipelinePlan> plan_;
  std::vector<std::unique_ptr<PipelineRank>> ranks_;
};

} // namespace s1f::rt

#endif // SEQ1F1B_RUNTIME_PIPELINE_H
