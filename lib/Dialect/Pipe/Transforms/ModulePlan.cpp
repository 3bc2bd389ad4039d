//===- ModulePlan.cpp - The plan a scheduled module holds -----------------===//

#include "seq1f1b/Dialect/Pipe/Transforms/ModulePlan.h"
#include "seq1f1b/Dialect/Pipe/IR/ScheduleConversion.h"

using namespace mlir;
using namespace seq1f1b;

FailureOr<ModulePlan> seq1f1b::readModulePlan(ModuleOp module,
                                              const ModelOptions &options) {
  FailureOr<func::FuncOp> model = findModelFunction(module);
  if (failed(model))
    return failure();
  Location loc = model->getLoc();
  auto schedules = module.getOps<pipe::ScheduleOp>();
  if (schedules.empty())
    return emitError(loc) << "has no pipe.schedule; run s1f-schedule first";
  llvm::Expected<GpuProfile> profile = gpuProfile(options.gpu);
  if (!profile)
    return emitError(loc) << "gpu=" << options.gpu << ": "
                          << llvm::toString(profile.takeError());
  if (options.tensorParallel < 1 || options.contextParallel < 1 ||
      options.optimizerShards < 1)
    return emitError(loc) << "tp=" << options.tensorParallel
                          << " cp=" << options.contextParallel
                          << " optimizer-shards=" << options.optimizerShards
                          << ": all must be >= 1";
  if (options.tensorParallel > profile->gpusPerNode)
    return emitError(loc) << "tp=" << options.tensorParallel << " exceeds the "
                          << profile->gpusPerNode
                          << " GPUs per node of gpu=" << options.gpu
                          << ": tensor parallelism across nodes is not "
                          << "modelled";

  ModulePlan plan;
  PipelineCostModel &costs = plan.costs;
  costs.gpu = *profile;
  costs.memory.tensorParallel = options.tensorParallel;
  costs.memory.contextParallel = options.contextParallel;
  costs.memory.optimizerShards = options.optimizerShards;
  costs.memory.recompute = options.recompute;
  for (auto stage : model->getOps<pipe::StageOp>()) {
    OpList ops;
    for (Operation &op : stage.getBody().front().without_terminator())
      ops.push_back(&op);
    costs.stages.push_back(ops);
  }
  if (options.recompute)
    costs.layers = layerRanges(costs.stages);
  auto chunkPlans = module.getOps<pipe::ChunkPlanOp>();
  if (chunkPlans.empty())
    costs.chunkBounds = {0, getModelShape(*model).seqLen};
  else
    llvm::append_range(costs.chunkBounds, (*chunkPlans.begin()).getBounds());

  plan.op = *schedules.begin();
  plan.schedule = pipe::toLibrarySchedule(plan.op);
  const schedule::ScheduleConfig &c = plan.schedule.config;
  if (options.recompute && schedule::splitsBackward(c.kind))
    return plan.op.emitError()
           << "recompute=true is not modelled for "
           << schedule::scheduleKindName(c.kind)
           << ": its W passes would need every recomputed input kept";
  if (c.numStages() != static_cast<int>(costs.stages.size()) ||
      c.chunks + 1 != static_cast<int>(costs.chunkBounds.size()))
    return plan.op.emitError()
           << "does not match the model: it has " << c.numStages()
           << " stages and " << c.chunks << " chunks, the model "
           << costs.stages.size() << " stages and "
           << costs.chunkBounds.size() - 1 << " chunks";
  return plan;
}
