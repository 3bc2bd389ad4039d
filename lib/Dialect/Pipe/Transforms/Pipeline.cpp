//===- Pipeline.cpp - the s1f-pipeline pass pipeline -----------------------===//
#include "seq1f1b/Dialect/Pipe/Transforms/Passes.h"

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"
#include "mlir/Pass/PassRegistry.h"

using namespace mlir;

namespace {
struct PipelineOptions : public PassPipelineOptions<PipelineOptions> {
  Option<int64_t> stages{*this, "stages", llvm::cl::desc("Pipeline ranks (P)"),
                         llvm::cl::init(1)};
  Option<int64_t> virtualStages{*this, "virtual",
                                llvm::cl::desc("Stages per rank (V)"),
                                llvm::cl::init(1)};
  Option<int64_t> chunks{*this, "chunks",
                         llvm::cl::desc("Sequence chunks (N)"),
                         llvm::cl::init(1)};
  Option<std::string> policy{*this, "policy",
                             llvm::cl::desc("even | flops | profile"),
                             llvm::cl::init("flops")};
  Option<std::string> profile{*this, "profile",
                              llvm::cl::desc("Measured chunk times (JSON)"),
                              llvm::cl::init("")};
  Option<int64_t> microbatches{*this, "microbatches",
                               llvm::cl::desc("Micro-batches per step (M)"),
                               llvm::cl::init(1)};
  Option<std::string> schedule{*this, "schedule",
                               llvm::cl::desc("Schedule kind"),
                               llvm::cl::init("seq1f1b")};
};
} // namespace

void seq1f1b::registerSeq1F1BPipeline() {
  PassPipelineRegistration<PipelineOptions>(
      "s1f-pipeline",
      "Partition, chunk, schedule and verify: the whole pipeline plan",
      [](OpPassManager &pm, const PipelineOptions &o) {
        pm.addPass(createPartitionStages(
            PartitionStagesOptions{o.stages, o.virtualStages}));
        pm.addPass(createSplitSequence(
            SplitSequenceOptions{o.chunks, o.policy, 1, o.profile}));
        pm.addPass(createSchedule(
            ScheduleOptions{o.schedule, o.microbatches, o.virtualStages}));
        pm.addPass(createVerifySchedule());
      });
}
