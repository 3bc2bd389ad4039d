//===- Simulate.cpp - step time, bubble and memory of a schedule ----------===//
#include "seq1f1b/Analysis/PipelineModel.h"
#include "seq1f1b/Dialect/Pipe/IR/PipeOps.h"
#include "seq1f1b/Dialect/Pipe/IR/ScheduleConversion.h"
#include "seq1f1b/Dialect/Pipe/Transforms/Passes.h"
#include "seq1f1b/Schedule/Timeline.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

namespace seq1f1b {
#define GEN_PASS_DEF_SIMULATE
#include "seq1f1b/Dialect/Pipe/Transforms/Passes.h.inc"
} // namespace seq1f1b

using namespace mlir;
using namespace seq1f1b;

static LogicalResult writeFile(StringRef path, StringRef text, Location loc) {
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec);
  if (ec)
    return emitError(loc) << "cannot write '" << path << "': " << ec.message();
  os << text;
  return success();
}

static double gib(int64_t bytes) { return bytes / double(1ull << 30); }

namespace {
struct SimulatePass : public seq1f1b::impl::SimulateBase<SimulatePass> {
  using SimulateBase::SimulateBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    FailureOr<func::FuncOp> model = findModelFunction(module);
    if (failed(model))
      return signalPassFailure();
    Location loc = model->getLoc();
    auto schedules = module.getOps<pipe::ScheduleOp>();
    if (schedules.empty()) {
      emitError(loc) << "has no pipe.schedule; run s1f-schedule first";
      return signalPassFailure();
    }
    std::optional<GpuProfile> profile = lookupGpuProfile(gpu);
    if (!profile || tensorParallel < 1) {
      emitError(loc) << "gpu=" << gpu << " tp=" << tensorParallel.getValue()
                     << ": expected gpu h100, h200 or a100 and tp >= 1";
      return signalPassFailure();
    }

    PipelineCostModel costs;
    costs.gpu = *profile;
    costs.memory.tensorParallel = tensorParallel;
    for (auto stage : model->getOps<pipe::StageOp>()) {
      OpList ops;
      for (Operation &op : stage.getBody().front().without_terminator())
        ops.push_back(&op);
      costs.stages.push_back(ops);
    }
    auto plans = module.getOps<pipe::ChunkPlanOp>();
    if (plans.empty())
      costs.chunkBounds = {0, getModelShape(*model).seqLen};
    else
      llvm::append_range(costs.chunkBounds, (*plans.begin()).getBounds());

    pipe::ScheduleOp scheduleOp = *schedules.begin();
    schedule::Schedule s = pipe::toLibrarySchedule(scheduleOp);
    if (s.config.numStages() != static_cast<int>(costs.stages.size()) ||
        s.config.chunks + 1 != static_cast<int>(costs.chunkBounds.size())) {
      scheduleOp.emitError() << "does not match the model: it has "
                             << s.config.numStages() << " stages and "
                             << s.config.chunks << " chunks, the model "
                             << costs.stages.size() << " stages and "
                             << costs.chunkBounds.size() - 1 << " chunks";
      return signalPassFailure();
    }
    schedule::Result<schedule::SimulationResult> result =
        schedule::simulateSchedule(s, costs.simulationModel());
    if (!result) {
      scheduleOp.emitError() << "cannot be simulated: " << result.error;
      return signalPassFailure();
    }
    print(*result);
    if (!trace.empty() &&
        failed(writeFile(trace, schedule::chromeTraceJson(*result), loc)))
      return signalPassFailure();
    if (!svg.empty() &&
        failed(writeFile(svg, schedule::timelineSvg(*result), loc)))
      return signalPassFailure();
  }

  void print(const schedule::SimulationResult &r) {
    llvm::raw_ostream &os = llvm::outs();
    os << llvm::format("simulated %s on %s: makespan %.3f ms, bubble %.2f%%\n",
                       std::string(schedule::scheduleKindName(r.config.kind)).c_str(),
                       gpu.getValue().c_str(), r.makespan * 1e3,
                       100 * r.bubbleFraction);
    os << "rank  bubble   peak GiB  weights  grads  optim  activ  kv  kvgrad  "
          "in-flight\n";
    for (auto [rank, stats] : llvm::enumerate(r.ranks)) {
      const schedule::MemoryBreakdown &m = stats.peakMemory;
      os << llvm::format(
          "%-4d %6.2f%% %9.3f %8.3f %6.3f %6.3f %6.3f %.3f %7.3f %10d\n",
          static_cast<int>(rank), 100 * stats.bubbleFraction, gib(m.total()),
          gib(m.weights), gib(m.grads), gib(m.optimizer), gib(m.activations),
          gib(m.kvCache), gib(m.kvGrad), stats.peakInFlight);
    }
  }
};
} // namespace
