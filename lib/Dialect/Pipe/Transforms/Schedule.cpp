//===- Schedule.cpp - generate the rank programs --------------------------===//
#include "seq1f1b/Analysis/ModelCost.h"
#include "seq1f1b/Dialect/Pipe/IR/PipeOps.h"
#include "seq1f1b/Dialect/Pipe/IR/ScheduleConversion.h"
#include "seq1f1b/Dialect/Pipe/Transforms/Passes.h"

#include "mlir/IR/Builders.h"

namespace seq1f1b {
#define GEN_PASS_DEF_SCHEDULE
#include "seq1f1b/Dialect/Pipe/Transforms/Passes.h.inc"
} // namespace seq1f1b

using namespace mlir;
using namespace seq1f1b;

namespace {
struct SchedulePass : public seq1f1b::impl::ScheduleBase<SchedulePass> {
  using ScheduleBase::ScheduleBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    FailureOr<func::FuncOp> model = findModelFunction(module);
    if (failed(model))
      return signalPassFailure();
    Location loc = model->getLoc();
    int64_t numStages = llvm::range_size(model->getOps<pipe::StageOp>());
    if (numStages == 0) {
      emitError(loc) << "has no pipe.stage ops; run s1f-partition-stages first";
      return signalPassFailure();
    }
    schedule::Result<schedule::ScheduleKind> parsedKind =
        schedule::parseScheduleKind(kind);
    if (!parsedKind) {
      emitError(loc) << "kind=" << kind << ": " << parsedKind.error;
      return signalPassFailure();
    }
    if (virtualStages < 1 || numStages % virtualStages != 0) {
      emitError(loc) << "virtual=" << virtualStages.getValue()
                     << " does not divide the " << numStages << " stages";
      return signalPassFailure();
    }
    schedule::ScheduleConfig config;
    config.kind = *parsedKind;
    config.virtualStages = virtualStages;
    config.ranks = numStages / virtualStages;
    config.microbatches = microbatches;
    auto plans = module.getOps<pipe::ChunkPlanOp>();
    config.chunks = plans.empty() ? 1 : (*plans.begin()).getNumChunks();
    if (microbatches < 1) {
      emitError(loc) << "microbatches=" << microbatches.getValue()
                     << " must be >= 1";
      return signalPassFailure();
    }

    schedule::Result<schedule::Schedule> generated =
        schedule::generateSchedule(config);
    if (!generated) {
      emitError(loc) << "cannot build a " << kind << " schedule: "
                     << generated.error;
      return signalPassFailure();
    }
    schedule::Result<schedule::Schedule> withComm =
        schedule::addCommunication(*generated);
    if (!withComm) {
      emitError(loc) << withComm.error;
      return signalPassFailure();
    }
    for (auto old : llvm::make_early_inc_range(module.getOps<pipe::ScheduleOp>()))
      old.erase();
    OpBuilder builder = OpBuilder::atBlockEnd(module.getBody());
    pipe::buildScheduleOp(builder, loc, *withComm);
  }
};
} // namespace
