//===- ModulePlan.h - The plan a scheduled module holds ---------*- C++ -*-===//
//
// What s1f-simulate and s1f-plan-memory read from a module that
// s1f-partition-stages, s1f-split-sequence and s1f-schedule have run on: the
// cost model of its stages and chunks on a GPU profile, and its schedule.
//
//===----------------------------------------------------------------------===//
#ifndef SEQ1F1B_DIALECT_PIPE_TRANSFORMS_MODULEPLAN_H
#define SEQ1F1B_DIALECT_PIPE_TRANSFORMS_MODULEPLAN_H

#include "seq1f1b/Analysis/PipelineModel.h"
#include "seq1f1b/Dialect/Pipe/IR/PipeOps.h"
#include "seq1f1b/Schedule/Schedule.h"

#include "mlir/IR/BuiltinOps.h"

namespace seq1f1b {

/// The passes' shared options: gpu=, tp=, cp=, optimizer-shards=,
/// recompute=.
struct ModelOptions {
  std::string gpu = "h100";
  int64_t tensorParallel = 1, contextParallel = 1, optimizerShards = 1;
  bool recompute = false;
};

struct ModulePlan {
  PipelineCostModel costs; ///< its gpu is the profile the options name
  schedule::Schedule schedule;
  pipe::ScheduleOp op;
};

/// Reads `module`'s plan, or emits an error at the module's model, its
/// schedule or nothing (bad options) and fails: no schedule, an unknown GPU
/// profile, degrees below 1, tensor parallelism beyond a node, recomputation
/// with the I/W split, a schedule of other stages or chunks than the model.
mlir::FailureOr<ModulePlan> readModulePlan(mlir::ModuleOp module,
                                           const ModelOptions &options);

} // namespace seq1f1b

#endif // SEQ1F1B_DIALECT_PIPE_TRANSFORMS_MODULEPLAN_H
