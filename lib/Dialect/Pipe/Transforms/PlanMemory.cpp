//===- PlanMemory.cpp - a static memory arena per rank --------------------===//
#include "seq1f1b/Dialect/Pipe/Transforms/ModulePlan.h"
#include "seq1f1b/Dialect/Pipe/Transforms/Passes.h"
#include "seq1f1b/Schedule/Arena.h"

#include "mlir/IR/Builders.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

namespace seq1f1b {
#define GEN_PASS_DEF_PLANMEMORY
#include "seq1f1b/Dialect/Pipe/Transforms/Passes.h.inc"
} // namespace seq1f1b

using namespace mlir;
using namespace seq1f1b;

namespace {
struct PlanMemoryPass : public seq1f1b::impl::PlanMemoryBase<PlanMemoryPass> {
  using PlanMemoryBase::PlanMemoryBase;

  void runOnOperation() override {
    ModelOptions options{gpu, tensorParallel, contextParallel, optimizerShards,
                         recompute};
    FailureOr<ModulePlan> plan = readModulePlan(getOperation(), options);
    if (failed(plan))
      return signalPassFailure();
    const schedule::Schedule &s = plan->schedule;
    const schedule::SimulationModel model = plan->costs.simulationModel();
    const GpuProfile &profile = plan->costs.gpu;

    llvm::raw_ostream &os = llvm::outs();
    auto size = [&](int64_t v) {
      return bytes ? llvm::formatv("{0}", v).str()
                   : llvm::formatv("{0:f3}", v / double(1ull << 30)).str();
    };
    os << "memory plan of " << schedule::scheduleKindName(s.config.kind)
       << ": a static arena per rank (" << (bytes ? "bytes" : "GiB") << ", "
       << profile.name << " with " << profile.memoryName << ")\n"
       << "rank  buffers  peak live  arena  unused  static  total  fits\n";
    SmallVector<int64_t> arenas;
    for (int r = 0; r < s.config.ranks; ++r) {
      schedule::ArenaPlan arena =
          schedule::planArena(schedule::rankBuffers(s, model, r));
      int64_t staticBytes = 0;
      for (int stage = r; stage < s.config.numStages();
           stage += s.config.ranks) {
        schedule::StaticMemory st = model.staticMemory(stage);
        staticBytes += st.weights + st.grads + st.optimizer;
      }
      const int64_t total = arena.bytes + staticBytes;
      os << llvm::format("%-4d %8zu", r, arena.buffers.size()) << " "
         << size(arena.peakLive) << " " << size(arena.bytes) << " "
         << llvm::format("%5.1f%%",
                         arena.bytes ? 100.0 * (arena.bytes - arena.peakLive) /
                                           arena.bytes
                                     : 0.0)
         << " " << size(staticBytes) << " " << size(total) << " "
         << (total <= profile.memoryBytes ? "yes" : "OOM") << "\n";
      arenas.push_back(arena.bytes);
    }
    plan->op->setAttr("pipe.arena_bytes",
                      Builder(&getContext()).getDenseI64ArrayAttr(arenas));
  }
};
} // namespace
