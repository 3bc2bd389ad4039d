//===- Simulate.cpp - step time, bubble and memory of a schedule ----------===//
#include "seq1f1b/Analysis/PipelineModel.h"
#include "seq1f1b/Dialect/Pipe/IR/PipeOps.h"
#include "seq1f1b/Dialect/Pipe/IR/ScheduleConversion.h"
#include "seq1f1b/Dialect/Pipe/Transforms/ModulePlan.h"
#include "seq1f1b/Dialect/Pipe/Transforms/Passes.h"
#include "seq1f1b/Schedule/Timeline.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include <cmath>
#include <map>
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

/// Measured seconds per (stage, chunk) unit, read from `path`.
static FailureOr<std::map<std::pair<int, int>, schedule::UnitCost>>
readMeasuredCosts(StringRef path, int stages, int chunks, Location loc) {
  auto buffer = llvm::MemoryBuffer::getFile(path);
  if (!buffer)
    return emitError(loc) << "cannot read costs '" << path
                          << "': " << buffer.getError().message();
  llvm::Expected<llvm::json::Value> parsed =
      llvm::json::parse((*buffer)->getBuffer());
  if (!parsed)
    return emitError(loc) << "costs '" << path << "' is not valid JSON: "
                          << llvm::toString(parsed.takeError());
  const llvm::json::Object *root = parsed->getAsObject();
  const llvm::json::Array *units = root ? root->getArray("units") : nullptr;
  if (!units)
    return emitError(loc) << "costs '" << path
                          << "' needs a top-level \"units\" array";
  std::map<std::pair<int, int>, schedule::UnitCost> costs;
  for (auto [i, v] : llvm::enumerate(*units)) {
    const llvm::json::Object *o = v.getAsObject();
    auto number = [&](StringRef key) {
      return o ? o->getNumber(key) : std::nullopt;
    };
    std::optional<int64_t> stage = o ? o->getInteger("stage") : std::nullopt;
    std::optional<int64_t> chunk = o ? o->getInteger("chunk") : std::nullopt;
    std::optional<double> forward = number("forward"),
                          backward = number("backward");
    if (!stage || !chunk || !forward || !backward)
      return emitError(loc) << "costs '" << path << "' unit " << i
                            << " needs \"stage\", \"chunk\", \"forward\" "
                               "and \"backward\"";
    if (*stage < 0 || *stage >= stages || *chunk < 0 || *chunk >= chunks)
      return emitError(loc) << "costs '" << path << "' unit " << i
                            << " is stage " << *stage << " chunk " << *chunk
                            << ", outside the " << stages << " stages and "
                            << chunks << " chunks";
    schedule::UnitCost unit;
    unit.forward = *forward;
    unit.backward = *backward;
    unit.backwardInput = number("backward_input").value_or(*backward / 2);
    unit.backwardWeight = number("backward_weight").value_or(*backward / 2);
    for (double t : {unit.forward, unit.backward, unit.backwardInput,
                     unit.backwardWeight})
      if (!(t >= 0) || !std::isfinite(t))
        return emitError(loc) << "costs '" << path << "' unit " << i
                              << " has a negative or non-finite time";
    costs[{*stage, *chunk}] = unit;
  }
  for (int s = 0; s < stages; ++s)
    for (int c = 0; c < chunks; ++c)
      if (!costs.count({s, c}))
        return emitError(loc) << "costs '" << path << "' has no time for stage "
                              << s << " chunk " << c;
  return costs;
}

static double gib(int64_t bytes) { return bytes / double(1ull << 30); }

namespace {
struct SimulatePass : public seq1f1b::impl::SimulateBase<SimulatePass> {
  using SimulateBase::SimulateBase;

  void runOnOperation() override {
    ModelOptions options{gpu, tensorParallel, contextParallel, optimizerShards,
                         recompute};
    FailureOr<ModulePlan> plan = readModulePlan(getOperation(), options);
    if (failed(plan))
      return signalPassFailure();
    const schedule::Schedule &s = plan->schedule;
    pipe::ScheduleOp scheduleOp = plan->op;
    Location loc = (*findModelFunction(getOperation())).getLoc();
    const GpuProfile *profile = &plan->costs.gpu;
    schedule::SimulationModel simModel = plan->costs.simulationModel();
    if (costs != "model") {
      FailureOr<std::map<std::pair<int, int>, schedule::UnitCost>> measured =
          readMeasuredCosts(costs, s.config.numStages(), s.config.chunks,
                            loc);
      if (failed(measured))
        return signalPassFailure();
      // Keep the model's boundary bytes: transfers are not measured.
      simModel.cost = [measured = *measured, modelCost = simModel.cost](
                          int stage, int chunk) {
        schedule::UnitCost unit = measured.at({stage, chunk});
        unit.boundaryBytes = modelCost(stage, chunk).boundaryBytes;
        return unit;
      };
    }
    schedule::Result<schedule::SimulationResult> result =
        schedule::simulateSchedule(s, simModel);
    if (!result) {
      scheduleOp.emitError() << "cannot be simulated: " << result.error;
      return signalPassFailure();
    }
    print(*result, profile->name);
    if (!trace.empty() &&
        failed(writeFile(trace, schedule::chromeTraceJson(*result), loc)))
      return signalPassFailure();
    schedule::SvgOptions picture;
    picture.memoryLimit = profile->memoryBytes; // drawn when a peak passes it
    if (!svg.empty() &&
        failed(writeFile(svg, schedule::timelineSvg(*result, picture), loc)))
      return signalPassFailure();
  }

  void print(const schedule::SimulationResult &r, const std::string &gpuName) {
    llvm::raw_ostream &os = llvm::outs();
    os << llvm::format(
        "simulated %s on %s: makespan %.3f ms, bubble %.2f%%\n",
        std::string(schedule::scheduleKindName(r.config.kind)).c_str(),
        gpuName.c_str(), r.makespan * 1e3, 100 * r.bubbleFraction);
    os << "rank  bubble   peak " << (bytes ? "bytes" : "GiB")
       << "  weights  grads  optim  activ  kv  kvgrad  in-flight\n";
    for (auto [rank, stats] : llvm::enumerate(r.ranks)) {
      const schedule::MemoryBreakdown &m = stats.peakMemory;
      os << llvm::format("%-4d %6.2f%%", static_cast<int>(rank),
                         100 * stats.bubbleFraction);
      for (int64_t v : {m.total(), m.weights, m.grads, m.optimizer,
                        m.activations, m.kvCache, m.kvGrad}) {
        if (bytes)
          os << " " << v;
        else
          os << llvm::format(" %.3f", gib(v));
      }
      os << llvm::format(" %10d\n", stats.peakInFlight);
    }
  }
};
} // namespace
