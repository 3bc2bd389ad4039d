//===- Plan.h - What the seq1f1b-plan modes share ---------------*- C++ -*-===//
//
// seq1f1b-plan's options (defined in seq1f1b-plan.cpp), a simulated plan
// (Row), and the Planner that simulates a schedule kind on the model cut for
// it. The table of one layout (seq1f1b-plan.cpp), the layout search
// (Layouts.cpp) and the longest-sequence search (Longest.cpp) build on them.
//
//===----------------------------------------------------------------------===//
#ifndef SEQ1F1B_TOOLS_SEQ1F1B_PLAN_PLAN_H
#define SEQ1F1B_TOOLS_SEQ1F1B_PLAN_PLAN_H

#include "seq1f1b/Analysis/PipelineModel.h"
#include "seq1f1b/Schedule/Schedule.h"
#include "seq1f1b/Translate/HFConfig.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <map>
#include <optional>
#include <string>

namespace seq1f1b::plan {

namespace cl = llvm::cl;

// The options the modes share.
extern cl::opt<std::string> configPath, gpuMemory, policy, svgDir;
extern cl::opt<int64_t> stages, virtualStages, optimizerShards, tensorParallel,
    contextParallel, expertParallel, gpus, globalBatch, topLayouts, seqStep;
extern cl::opt<bool> distributedOptimizer;
/// The model's vocabulary (llm.config), which the run commands need.
extern int64_t vocabulary;

/// Prints "seq1f1b-plan: error: <message>"; returns the exit status 1.
int fail(const llvm::Twine &message);


inline double gib(int64_t bytes) { return bytes / double(1ull << 30); }

/// Whether a step of `seconds` is shorter than one of `than` by more than the
/// simulator's rounding. Plans that differ only in rounding (every schedule
/// on one stage, say) count as equally fast, so the searches keep the one
/// with less memory, or the first tried: the simplest.
inline bool shorterStep(double seconds, double than) {
  return seconds < than * (1 - 1e-9);
}

/// Whether a plan of `seconds` per step and `peak` bytes beats one of `than`
/// and `thanPeak`: it is faster, or as fast with less memory.
inline bool fasterOrLeaner(double seconds, int64_t peak, double than,
                           int64_t thanPeak) {
  return shorterStep(seconds, than) ||
         (!shorterStep(than, seconds) && peak < thanPeak);
}

/// "tp 1 x cp 8 x P 4 x dp 1": how the layout searches name a layout
/// ("dp 8 (ep 8)": its experts split over the 8 data-parallel ranks).
inline std::string layoutName(const ParallelLayout &l) {
  std::string name =
      llvm::formatv("tp {0} x cp {1} x P {2} x dp {3}", l.tensorParallel,
                    l.contextParallel, l.stages, l.dataParallel);
  if (l.expertParallel > 1)
    name += " (ep " + std::to_string(l.expertParallel) + ")";
  return name;
}

struct Row {
  schedule::ScheduleKind kind;
  int64_t virtualStages, chunks;
  bool recompute;
  schedule::SimulationResult result;

  /// The largest peak over the stages.
  int64_t peak() const {
    int64_t bytes = 0;
    for (const schedule::RankStats &rank : result.ranks)
      bytes = std::max(bytes, rank.peakMemory.total());
    return bytes;
  }
  std::string kindName() const {
    return std::string(schedule::scheduleKindName(kind));
  }
  std::string name() const {
    return kindName() +
           (virtualStages > 1 ? " V=" + std::to_string(virtualStages) : "") +
           " N=" + std::to_string(chunks) + (recompute ? " recompute" : "");
  }
};

/// Simulates one schedule kind at one chunk count on the stages partitioned
/// for it (stageBounds[kind], from partitionIntoStages).
struct Planner {
  const OpList &ops;
  int64_t seqLen;
  GpuProfile gpu;
  int64_t ranks, tp, cp, shards, microbatches;
  schedule::RangeCost flopsCost;
  std::map<schedule::ScheduleKind, llvm::SmallVector<unsigned>> stageBounds;
  int64_t ep = 1; ///< expert-parallel degree

  schedule::Result<Row> simulate(schedule::ScheduleKind kind, int64_t n,
                                 bool recompute) const;
};

/// Under a verdict: the seq1f1b-compile command that builds `row`'s plan (P
/// stages, M micro-batches) into a training executable, and how to run it
/// on its tp x cp x P x dp ranks (with sequence parallelism, as the plan
/// models tensor parallelism, when tp divides the vocabulary).
void printBuildCommands(const Row &row, int64_t seqLen,
                        int64_t microBatch, int64_t stages,
                        int64_t microbatches, int64_t tp, int64_t cp,
                        int64_t dp, int64_t ep);

/// Writes `text` to `name` in the --svg directory, creating it.
llvm::Error writeSvg(const llvm::Twine &name, llvm::StringRef text);

/// A row's identity, as the JSON names it.
llvm::json::Object rowKey(const Row &row);

/// Every layout tp x cp x P x dp = --gpus that --tp, --cp and --stages
/// allow: tp inside a node and dividing the heads and the MLP, 2 x cp
/// dividing `seqGranule` (the sequence, or every length searched), P at most
/// the model's pieces; for a mixture of experts at tp 1, every expert-
/// parallel degree (--ep) dividing dp and the experts too. Fails, saying
/// why, when there is none.
mlir::FailureOr<llvm::SmallVector<ParallelLayout>>
enumerateLayouts(const OpList &ops, int64_t seqGranule,
                 mlir::DictionaryAttr config, const GpuProfile &gpu);

/// The experts of the model's mixtures of experts (0: it has none); every
/// llm.moe of a model has the same number.
int64_t expertCount(const OpList &ops);

/// How long the gradient synchronization of `row`'s plan on `layout` runs
/// past the pipeline: each rank starts its own when its last action ends,
/// as Megatron reduces after the last backward, and the step ends with the
/// last rank to finish.
double syncSeconds(const Row &row, const ParallelLayout &layout,
                   const GpuProfile &gpu,
                   llvm::ArrayRef<double> expertShares = {});

/// With expert parallelism, the share of each rank's weights that are
/// experts' (whose gradients sync over fewer ranks), the model cut at
/// `bounds` over `ranks` ranks; empty without.
llvm::SmallVector<double> expertShares(const OpList &ops,
                                       llvm::ArrayRef<unsigned> bounds,
                                       int64_t ranks,
                                       const ParallelLayout &layout);

/// Says on stderr, every 2 s, how far a search of many layouts is.
class SearchProgress {
public:
  void at(size_t index, size_t total);

private:
  std::chrono::steady_clock::time_point start =
                                            std::chrono::steady_clock::now(),
                                        reported = start;
};

/// Under a table of layouts: how many more there are than the `shown`, and
/// the data-parallel degrees the global batch did not divide.
void printLayoutFootnotes(size_t shown, size_t total,
                          llvm::ArrayRef<int64_t> skippedBatch,
                          int64_t microBatch);

/// --gpus: every layout tp x cp x P x dp of the GPUs (Layouts.cpp).
int planLayouts(const OpList &ops, ModelShape shape,
                mlir::DictionaryAttr config, int64_t parameters,
                const GpuProfile &gpu, double memoryBytes,
                llvm::ArrayRef<schedule::ScheduleKind> kinds,
                llvm::ArrayRef<int64_t> chunkCounts,
                llvm::ArrayRef<bool> recomputes,
                std::optional<llvm::raw_fd_ostream> &jsonFile);

/// --longest --gpus: every layout's longest sequence (Longest.cpp).
int planLongestLayouts(mlir::MLIRContext &context, llvm::StringRef configText,
                       HFImportOptions importOptions,
                       mlir::DictionaryAttr config, int64_t parameters,
                       int64_t positions, const OpList &ops,
                       const GpuProfile &gpu, double memoryBytes,
                       llvm::ArrayRef<schedule::ScheduleKind> kinds,
                       llvm::ArrayRef<int64_t> chunkCounts,
                       llvm::ArrayRef<bool> recomputes,
                       std::optional<llvm::raw_fd_ostream> &jsonFile);

/// --longest: the longest sequence every row fits (Longest.cpp).
int planLongest(mlir::MLIRContext &context, llvm::StringRef configText,
                HFImportOptions importOptions, mlir::DictionaryAttr config,
                int64_t parameters, int64_t positions, const GpuProfile &gpu,
                double memoryBytes, int64_t microbatches,
                llvm::ArrayRef<schedule::ScheduleKind> kinds,
                llvm::ArrayRef<int64_t> chunkCounts,
                llvm::ArrayRef<bool> recomputes,
                std::optional<llvm::raw_fd_ostream> &jsonFile);

} // namespace seq1f1b::plan

#endif // SEQ1F1B_TOOLS_SEQ1F1B_PLAN_PLAN_H
