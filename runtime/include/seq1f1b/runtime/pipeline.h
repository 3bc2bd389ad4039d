//===- pipeline.h - A pipelined training run on in-process ranks -*- C++ -*-===//
//
// Builds the plan (schedule with communication, stage cut, chunk bounds),
// places stages and parameters on P ranks, and runs training steps with one
// thread per rank over an InProcessWorld. A rank that fails (an exception,
// a receive past its deadline) aborts the world: the others stop waiting
// at once and step() returns an error naming the first failure.
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_RUNTIME_PIPELINE_H
#define SEQ1F1B_RUNTIME_PIPELINE_H

#include "seq1f1b/runtime/rank_executor.h"

#include <chrono>
#include <string>
#include <vector>

namespace s1f::rt {

struct PipelineOptions {
  /// Kind, ranks P, virtual stages V, micro-batches M, chunks N.
  seq1f1b::schedule::ScheduleConfig schedule;
  ChunkPolicy chunkPolicy = ChunkPolicy::Even;
  OptimizerConfig optimizer;
  std::chrono::milliseconds recvTimeout{60000};
  uint64_t seed = 0;   ///< parameter initialization
  ActionHook beforeAction; ///< optional
};

struct StepResult {
  bool ok = false;
  std::string error;                    ///< the first failure, if any
  std::vector<std::string> rankErrors;  ///< per rank, empty if it succeeded
  double lossSum = 0;                   ///< sum of token losses
  int64_t tokens = 0;                   ///< counted targets
  double gradNorm = 0;                  ///< global norm before clipping
  std::vector<MemoryStats> memory;      ///< per rank, peaks of this step

  double loss() const { return tokens ? lossSum / tokens : 0; }
};

class Pipeline {
public:
  /// Throws std::invalid_argument for a configuration the schedule library
  /// rejects, more stages than the graph can be cut into, or bad chunks.
  Pipeline(Graph graph, PipelineOptions options, int seqLen);

  /// One training step over `batch` (M micro-batches of S = seqLen tokens).
  /// After a failed step the pipeline's state is undefined.
  StepResult step(const Batch &batch);

  const Graph &graph() const { return graph_; }
  const seq1f1b::schedule::Schedule &schedule() const { return schedule_; }
  const std::vector<StageSpec> &stages() const { return stages_; }
  const std::vector<int> &chunkBounds() const { return bounds_; }
  /// Value / gradient (of the last step, after the cross-rank sum, before
  /// clipping) of a parameter, from the first rank that holds it.
  const std::vector<float> &param(const std::string &name) const;
  const std::vector<float> &grad(const std::string &name) const;

private:
  const ParamState &state(const std::string &name) const;

  Graph graph_;
  PipelineOptions options_;
  seq1f1b::schedule::Schedule schedule_;
  std::vector<StageSpec> stages_;
  std::vector<int> bounds_;
  std::vector<std::vector<int>> holders_;
  std::vector<std::unique_ptr<RankExecutor>> ranks_;
};

} // namespace s1f::rt

#endif // SEQ1F1B_RUNTIME_PIPELINE_H
