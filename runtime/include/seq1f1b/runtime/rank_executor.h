//===- rank_executor.h - Runs one rank's schedule actions --------*- C++ -*-===//
//
// A rank holds the stages r, r+P, r+2P, ... (schedule::ScheduleConfig's
// placement), their parameters (one copy per rank even if two local stages
// read it) and runs its action list in order: F/B/I/W on its stages,
// SEND/RECV through a Communicator, and hand-overs between two of its own
// stages in memory. Then it finishes the step: sums the gradients of
// parameters held by several ranks, computes the global gradient norm, and
// takes an AdamW step with clipping.
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_RUNTIME_RANK_EXECUTOR_H
#define SEQ1F1B_RUNTIME_RANK_EXECUTOR_H

#include "seq1f1b/Schedule/Schedule.h"
#include "seq1f1b/runtime.h"
#include "seq1f1b/Schedule/Simulate.h"
#include "seq1f1b/runtime/communicator.h"
#include "seq1f1b/runtime/stage_executor.h"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace s1f::rt {

/// Called before each action (tracing, fault injection in tests), on the
/// rank's own thread: ranks call it concurrently.
using ActionHook =
    std::function<void(int rank, const seq1f1b::schedule::Action &)>;

} // namespace s1f::rt

/// What a compiled rank program (runtime.h) acts on: each s1f_rt_* action
/// call runs `act`; the first failure is kept in `error` and turns the
/// later calls into no-ops; s1f_rt_optimizer_step sets `ended`.
struct s1f_rt_rank {
  std::function<void(const seq1f1b::schedule::Action &)> act;
  std::string error;
  bool ended = false;
};

namespace s1f::rt {

/// A rank's program compiled to native code (s1f-lower-to-runtime).
using CompiledProgram = s1f_rt_program;

struct OptimizerConfig {
  cpu::AdamWConfig adamw;
  double maxGradNorm = 1.0; ///< <= 0: no clipping
};

class RankExecutor {
public:
  /// `holders[p]` lists, ascending, the ranks that hold parameter p (empty if
  /// none); the first one owns it for the gradient norm. The stages run on
  /// `kernels` (which outlives the executor), recomputing their layers in
  /// the backward if `recompute`.
  RankExecutor(const Graph &graph, const std::vector<StageSpec> &stages,
               const seq1f1b::schedule::Schedule &schedule, int rank,
               const std::vector<std::vector<float>> &initialParams,
               std::vector<std::vector<int>> holders,
               const KernelSet &kernels = cpuKernels(), bool recompute = false);

  /// Runs the rank's actions for one step; throws on any failure. Times the
  /// compute actions from `origin` (events()). The loss is the mean over
  /// `lossTokens` targets (0: those of `batch`; a data-parallel replica
  /// passes the whole step's). A tensor-parallel graph's stages sum over
  /// `tensorParallel`, this rank's tensor-parallel group; with context
  /// parallelism, the stages run this rank's part of each chunk and
  /// exchange K/V rows over `contextParallel`; a mixture of experts sends
  /// its rows to the experts over `expertParallel`. Load-balancing losses
  /// average over `lossMicrobatches` (0: those of `batch`).
  void runSchedule(const Batch &batch, const std::vector<int> &bounds,
                   Communicator &comm, const ActionHook &hook,
                   std::chrono::steady_clock::time_point origin =
                       std::chrono::steady_clock::now(),
                   int64_t lossTokens = 0,
                   Communicator *tensorParallel = nullptr,
                   Communicator *contextParallel = nullptr,
                   Communicator *expertParallel = nullptr,
                   int lossMicrobatches = 0);
  /// Sums shared gradients within the pipeline (`comm`), the partial
  /// gradients of whole parameters over the tensor-parallel group
  /// (`tensorParallel`; null: none), then every gradient over the
  /// data-parallel replicas (`replicas`, this rank's peers in the other
  /// replicas; null: none; for expert-parallel parts `expertReplicas`, the
  /// peers holding the same experts), clips by the global norm (its expert
  /// parts' squares summed over `expertParallel`), applies AdamW. Returns
  /// the global gradient norm (before clipping).
  double optimizerStep(Communicator &comm, const OptimizerConfig &config,
                       Communicator *replicas = nullptr,
                       Communicator *tensorParallel = nullptr,
                       Communicator *expertReplicas = nullptr,
                       Communicator *expertParallel = nullptr);

  /// Loss of this rank's stages in the last step (non-zero on the last
  /// stage's rank only).
  cpu::LossSum loss() const;
  /// Load-balancing losses of this rank's stages in the last step.
  double auxLoss() const;
  /// Per moe op of this rank's stages: the routed copies each expert got
  /// from this rank's tokens in the last step.
  std::map<int, std::vector<double>> expertCounts() const;
  const MemoryStats &memory() const { return memory_.stats(); }
  /// The compute actions of the last step as they ran: seconds from its
  /// origin, and the rank's live bytes while each ran and after it.
  const std::vector<seq1f1b::schedule::TimelineEvent> &events() const {
    return events_;
  }
  /// Bytes of this rank's parameters, gradients and Adam moments (fp32).
  int64_t staticBytes() const;
  /// Runs this compiled program instead of walking the action list; it must
  /// make exactly the schedule's actions, in order, then its optimizer step
  /// (else runSchedule throws naming the first difference).
  void setProgram(CompiledProgram program) { program_ = program; }
  const ParamStore &params() const { return params_; }
  /// For restoring a checkpoint: the parameters and the AdamW step count.
  ParamStore &params() { return params_; }
  int64_t optimizerSteps() const { return step_; }
  void setOptimizerSteps(int64_t steps) { step_ = steps; }

private:
  using Key = std::pair<int, Tag>; // (0 = in, 1 = out box), tag
  void run(const seq1f1b::schedule::Action &a, const Batch &batch,
           const std::vector<int> &bounds, Communicator &comm,
           Communicator *tensorParallel, Communicator *contextParallel);
  std::vector<float> take(const Tag &tag, bool outbox,
                          const seq1f1b::schedule::Action &a);
  void put(const Tag &tag, int toStage, std::vector<float> data);

  const Graph &graph_;
  const std::vector<StageSpec> &stages_;
  const seq1f1b::schedule::Schedule &schedule_;
  int rank_;
  std::vector<std::vector<int>> holders_;
  ParamStore params_;
  MemoryTracker memory_;
  std::map<int, std::unique_ptr<StageExecutor>> executors_; ///< by stage
  std::map<Key, std::vector<float>> boxes_; ///< pending activations/grads
  std::vector<seq1f1b::schedule::TimelineEvent> events_;
  int64_t step_ = 0;
  CompiledProgram program_ = nullptr;
};

} // namespace s1f::rt

#endif // SEQ1F1B_RUNTIME_RANK_EXECUTOR_H
