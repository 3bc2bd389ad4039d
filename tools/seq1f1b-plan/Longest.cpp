//===- Longest.cpp - seq1f1b-plan --longest: how long a sequence fits -----===//
//
// For every schedule, chunk count and recomputation, the longest sequence
// whose plan fits the GPU's memory, found by re-importing the model.
//
//===----------------------------------------------------------------------===//
#include "Plan.h"

#include "seq1f1b/Dialect/LLM/IR/LLMOps.h"
#include "seq1f1b/Schedule/Timeline.h"

#include "seq1f1b/Analysis/ModelCost.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"

#include "mlir/IR/Diagnostics.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"

using namespace mlir;

namespace seq1f1b::plan {

/// Sequences longer than this are not searched (2M tokens).
static constexpr int64_t kLongestSearched = int64_t(1) << 21;

/// The model imported at one sequence length, partitioned for every kind.
struct ModelAt {
  OwningOpRef<ModuleOp> module;
  OpList ops;
  std::optional<Planner> planner;
};

/// For every (kind, chunks, recompute) row, the longest sequence, a multiple
/// of --seq-step up to the model's learned positions (or 2M tokens), whose
/// plan's peak fits `memoryBytes`: exponential search, then bisection (the
/// peak grows with the sequence). Prints a row each, with the plan at that
/// length, and the longest of all against 1F1B's.
int planLongest(MLIRContext &context, StringRef configText,
                HFImportOptions importOptions, DictionaryAttr config,
                int64_t parameters, int64_t positions, const GpuProfile &gpu,
                double memoryBytes, int64_t m,
                ArrayRef<schedule::ScheduleKind> kinds,
                ArrayRef<int64_t> chunkCounts, ArrayRef<bool> recomputes,
                std::optional<llvm::raw_fd_ostream> &jsonFile) {
  // The first import reported the config's problems and warnings already.
  ScopedDiagnosticHandler quiet(&context,
                                [](Diagnostic &) { return success(); });
  std::map<int64_t, std::unique_ptr<ModelAt>> models;
  auto modelAt = [&](int64_t seq) -> ModelAt * {
    std::unique_ptr<ModelAt> &slot = models[seq];
    if (slot)
      return slot.get();
    llvm::SourceMgr sourceMgr;
    sourceMgr.AddNewSourceBuffer(
        llvm::MemoryBuffer::getMemBufferCopy(configText, configPath),
        llvm::SMLoc());
    importOptions.seqLen = seq;
    auto at = std::make_unique<ModelAt>();
    at->module = importHFConfig(sourceMgr, &context, importOptions);
    if (!at->module)
      return nullptr;
    at->ops = modelOps(*findModelFunction(*at->module));
    at->planner.emplace(Planner{at->ops,
                                seq,
                                gpu,
                                stages,
                                tensorParallel,
                                contextParallel,
                                optimizerShards,
                                m,
                                trainingFlopsCost(at->ops, seq),
                                {}});
    for (schedule::ScheduleKind kind : kinds) {
      int64_t v = schedule::isInterleaved(kind) ? virtualStages.getValue() : 1;
      FailureOr<SmallVector<unsigned>> bounds = partitionIntoStages(
          at->ops, seq, stages * v, UnknownLoc::get(&context));
      if (failed(bounds))
        return nullptr;
      at->planner->stageBounds[kind] = *bounds;
    }
    slot = std::move(at);
    return slot.get();
  };
  const int64_t most = (positions ? positions : kLongestSearched) / seqStep;
  // The plan of a row at `k` steps of tokens, if it simulates.
  auto planAt = [&](schedule::ScheduleKind kind, int64_t n, bool recompute,
                    int64_t k) -> std::optional<Row> {
    ModelAt *at = modelAt(k * seqStep);
    if (!at)
      return std::nullopt;
    schedule::Result<Row> row = at->planner->simulate(kind, n, recompute);
    if (!row)
      return std::nullopt;
    return std::move(*row);
  };

  struct Found {
    Row row;             ///< the plan at the longest length
    int64_t seq = 0;     ///< 0: not even --seq-step tokens fit
    bool capped = false; ///< the search's upper end fits
  };
  SmallVector<Found> found;
  for (schedule::ScheduleKind kind : kinds)
    for (bool recompute : recomputes) {
      if (recompute && schedule::splitsBackward(kind))
        continue;
      const int64_t one = 1;
      for (int64_t n : schedule::isSequenceChunked(kind)
                           ? chunkCounts
                           : ArrayRef<int64_t>(one)) {
        if (n > seqStep)
          continue;
        auto fits = [&](int64_t k) {
          std::optional<Row> row = planAt(kind, n, recompute, k);
          return row && row->peak() <= memoryBytes;
        };
        std::optional<Row> first = planAt(kind, n, recompute, 1);
        if (!first) // the kind cannot run this configuration at all
          continue;
        Found f{std::move(*first), 0, false};
        if (f.row.peak() <= memoryBytes) {
          int64_t lo = 1, hi = 2; // fits at lo; hi fits not (or is past most)
          while (hi <= most && fits(hi))
            lo = hi, hi *= 2;
          hi = std::min(hi, most + 1);
          while (hi - lo > 1) {
            const int64_t mid = lo + (hi - lo) / 2;
            (fits(mid) ? lo : hi) = mid;
          }
          f.seq = lo * seqStep;
          f.capped = lo == most;
          f.row = *planAt(kind, n, recompute, lo);
        }
        found.push_back(std::move(f));
      }
    }
  if (found.empty())
    return fail("no schedule can run these options (see the table without "
                "--longest)");

  llvm::outs() << "model " << configPath << ": "
               << cast<StringAttr>(config.get("model_type")).getValue() << ", "
               << parameters << " parameters, micro-batch "
               << importOptions.microBatchSize << "\n"
               << "longest sequence that fits " << gpuMemory << ": P=" << stages
               << " M=" << m << " tp=" << tensorParallel
               << (contextParallel > 1
                       ? " cp=" + std::to_string(contextParallel)
                       : std::string())
               << ", " << gpu.name << ", chunk split " << policy
               << ", multiples of " << seqStep << " tokens up to "
               << most * seqStep
               << (positions ? " (the model's learned positions)" : "")
               << "\n\n";
  const bool recomputeColumn = llvm::is_contained(recomputes, true);
  llvm::outs() << "schedule              V   N     longest   step ms   "
                  "tokens/s  peak GiB"
               << (recomputeColumn ? "  recompute" : "") << "\n";
  for (const Found &f : found) {
    const Row &r = f.row;
    std::string seq = f.seq ? std::to_string(f.seq) : "none";
    if (f.capped)
      seq = ">=" + seq;
    llvm::outs() << llvm::format("%-20s %2lld %3lld %11s", r.kindName().c_str(),
                                 (long long)r.virtualStages,
                                 (long long)r.chunks, seq.c_str());
    if (f.seq)
      llvm::outs() << llvm::format(
          " %9.1f %10.0f %9.2f", r.result.makespan * 1e3,
          double(m) * importOptions.microBatchSize * f.seq / r.result.makespan,
          gib(r.peak()));
    else
      llvm::outs() << "         -          -         -";
    llvm::outs() << (recomputeColumn
                         ? r.recompute ? "       full" : "       none"
                         : "")
                 << "\n";
  }

  // The longest plan, against 1F1B's, without and with recomputation.
  llvm::outs() << "\n";
  for (bool recompute : recomputes) {
    const Found *best = nullptr, *oneF1B = nullptr;
    for (const Found &f : found) {
      if (f.row.recompute != recompute)
        continue;
      if (!best || f.seq > best->seq)
        best = &f;
      if (f.row.kind == schedule::ScheduleKind::OneFOneB)
        oneF1B = &f;
    }
    if (!best)
      continue;
    llvm::outs() << "longest" << (recompute ? " with full recomputation" : "")
                 << ": ";
    if (!best->seq) {
      llvm::outs() << "nothing fits " << gpuMemory << " even at " << seqStep
                   << " tokens\n";
      continue;
    }
    llvm::outs() << best->row.name() << ", " << (best->capped ? ">=" : "")
                 << best->seq << " tokens per sequence";
    if (oneF1B && oneF1B != best)
      llvm::outs() << (oneF1B->seq
                           ? llvm::formatv(", {0:f2}x 1f1b's {1}",
                                           double(best->seq) / oneF1B->seq,
                                           oneF1B->seq)
                                 .str()
                           : "; 1f1b fits not even " + std::to_string(seqStep));
    llvm::outs() << "\n";
  }

  if (jsonFile) {
    llvm::json::Array rows;
    for (const Found &f : found) {
      llvm::json::Object o = rowKey(f.row);
      o["longest"] = f.seq;
      o["capped"] = f.capped;
      if (f.seq) {
        o["peak_bytes"] = f.row.peak();
        o["step_seconds"] = f.row.result.makespan;
        o["tokens_per_second"] = double(m) * importOptions.microBatchSize *
                                 f.seq / f.row.result.makespan;
      }
      rows.push_back(std::move(o));
    }
    llvm::json::Object out{{"config", configPath},
                           {"stages", stages.getValue()},
                           {"microbatches", m},
                           {"tp", tensorParallel.getValue()},
                           {"cp", contextParallel.getValue()},
                           {"gpu", gpu.name},
                           {"gpu_memory_bytes", memoryBytes},
                           {"seq_step", seqStep.getValue()},
                           {"searched_up_to", most * seqStep},
                           {"rows", std::move(rows)}};
    *jsonFile << llvm::formatv("{0:2}\n", llvm::json::Value(std::move(out)));
  }
  return 0;
}

} // namespace seq1f1b::plan
