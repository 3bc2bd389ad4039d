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

#include <tuple>

using namespace mlir;

namespace seq1f1b::plan {

/// Sequences longer than this are not searched (2M tokens).
static constexpr int64_t kLongestSearched = int64_t(1) << 21;

namespace {

/// What a Planner needs besides the model: one pipeline's shape.
struct PipelineShape {
  int64_t stages, tp, cp, shards, microbatches, ep = 1;
  auto key() const {
    return std::tie(stages, tp, cp, shards, microbatches, ep);
  }
};

/// A row's answer: the longest sequence and the plan there.
struct Found {
  Row row;             ///< the plan at the longest length
  int64_t seq = 0;     ///< 0: not even --seq-step tokens fit
  bool capped = false; ///< the search's upper end fits
  /// Per rank, its weights' expert share (expertShares) at that length.
  std::vector<double> expertShares;
};

/// The model imported at each length searched, and a planner per pipeline
/// shape and length, made when first asked for.
class LongestSearch {
public:
  LongestSearch(MLIRContext &context, StringRef configText,
                HFImportOptions importOptions, const GpuProfile &gpu,
                ArrayRef<schedule::ScheduleKind> kinds, int64_t most)
      : context(context), configText(configText), importOptions(importOptions),
        gpu(gpu), kinds(kinds), most(most) {}

  /// The longest multiple of --seq-step (up to `most` of them) at which
  /// the row's plan on `shape` fits `memoryBytes`: exponential search, then
  /// bisection (the peak grows with the sequence). Nothing when the row
  /// cannot run on `shape` at all.
  std::optional<Found> longest(const PipelineShape &shape,
                               schedule::ScheduleKind kind, int64_t n,
                               bool recompute, double memoryBytes) {
    auto planAt = [&](int64_t k) -> std::optional<Row> {
      Planner *p = planner(shape, k * seqStep);
      if (!p || !p->stageBounds.count(kind))
        return std::nullopt;
      schedule::Result<Row> row = p->simulate(kind, n, recompute);
      if (!row)
        return std::nullopt;
      return std::move(*row);
    };
    auto fits = [&](int64_t k) {
      std::optional<Row> row = planAt(k);
      return row && row->peak() <= memoryBytes;
    };
    std::optional<Row> first = planAt(1);
    if (!first)
      return std::nullopt;
    Found f{std::move(*first), 0, false};
    if (f.row.peak() > memoryBytes)
      return f;
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
    f.row = *planAt(lo);
    const Planner *at = planner(shape, f.seq);
    ParallelLayout layout;
    layout.tensorParallel = shape.tp;
    layout.expertParallel = shape.ep;
    const SmallVector<double> shares =
        expertShares(at->ops, at->stageBounds.at(kind), shape.stages, layout);
    f.expertShares.assign(shares.begin(), shares.end());
    return f;
  }

private:
  struct ModelAt {
    OwningOpRef<ModuleOp> module;
    OpList ops;
  };

  ModelAt *modelAt(int64_t seq) {
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
    slot = std::move(at);
    return slot.get();
  }

  Planner *planner(const PipelineShape &shape, int64_t seq) {
    auto key = std::tuple_cat(shape.key(), std::make_tuple(seq));
    auto it = planners.find(key);
    if (it != planners.end())
      return it->second.get();
    std::unique_ptr<Planner> &slot = planners[key];
    ModelAt *at = modelAt(seq);
    if (!at)
      return nullptr;
    slot = std::make_unique<Planner>(Planner{at->ops,
                                             seq,
                                             gpu,
                                             shape.stages,
                                             shape.tp,
                                             shape.cp,
                                             shape.shards,
                                             shape.microbatches,
                                             trainingFlopsCost(at->ops, seq),
                                             {},
                                             shape.ep});
    for (schedule::ScheduleKind kind : kinds) {
      int64_t v = schedule::isInterleaved(kind) ? virtualStages.getValue() : 1;
      if (shape.stages * v > int64_t(legalCutPoints(at->ops).size()) + 1)
        continue; // the kind cannot cut this many stages
      FailureOr<SmallVector<unsigned>> bounds = partitionIntoStages(
          at->ops, seq, shape.stages * v, UnknownLoc::get(&context));
      if (succeeded(bounds))
        slot->stageBounds[kind] = *bounds;
    }
    return slot.get();
  }

  MLIRContext &context;
  StringRef configText;
  HFImportOptions importOptions;
  const GpuProfile &gpu;
  ArrayRef<schedule::ScheduleKind> kinds;
  int64_t most;
  std::map<int64_t, std::unique_ptr<ModelAt>> models;
  std::map<std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                      int64_t>,
           std::unique_ptr<Planner>>
      planners;
};

/// Every (kind, chunk count, recomputation) row the options give.
template <typename F>
void forEachRow(ArrayRef<schedule::ScheduleKind> kinds,
                ArrayRef<int64_t> chunkCounts, ArrayRef<bool> recomputes,
                F &&f) {
  for (schedule::ScheduleKind kind : kinds)
    for (bool recompute : recomputes) {
      if (recompute && schedule::splitsBackward(kind))
        continue;
      const int64_t one = 1;
      for (int64_t n : schedule::isSequenceChunked(kind)
                           ? chunkCounts
                           : ArrayRef<int64_t>(one))
        if (n <= seqStep)
          f(kind, n, recompute);
    }
}

std::string lengthText(const Found &f) {
  if (!f.seq)
    return "none";
  return (f.capped ? ">=" : "") + std::to_string(f.seq);
}

} // namespace

/// For every (kind, chunks, recompute) row, the longest sequence, a multiple
/// of --seq-step up to the model's learned positions (or 2M tokens), whose
/// plan's peak fits `memoryBytes`. Prints a row each, with the plan at that
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
  const int64_t most = (positions ? positions : kLongestSearched) / seqStep;
  LongestSearch search(context, configText, importOptions, gpu, kinds, most);
  const PipelineShape shape{stages,          tensorParallel, contextParallel,
                            optimizerShards, m,              expertParallel};
  SmallVector<Found> found;
  forEachRow(kinds, chunkCounts, recomputes,
             [&](schedule::ScheduleKind kind, int64_t n, bool recompute) {
               if (std::optional<Found> f =
                       search.longest(shape, kind, n, recompute, memoryBytes))
                 found.push_back(std::move(*f));
             });
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
               << (expertParallel > 1
                       ? " ep=" + std::to_string(expertParallel)
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
    llvm::outs() << llvm::format("%-20s %2lld %3lld %11s", r.kindName().c_str(),
                                 (long long)r.virtualStages,
                                 (long long)r.chunks, lengthText(f).c_str());
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

/// --longest --gpus: for every layout of the GPUs, the longest sequence any
/// row fits (ties: the most tokens/s, gradient sync included), longest
/// first; and the longest of all against the longest 1F1B layout's.
int planLongestLayouts(MLIRContext &context, StringRef configText,
                       HFImportOptions importOptions, DictionaryAttr config,
                       int64_t parameters, int64_t positions, const OpList &ops,
                       const GpuProfile &gpu, double memoryBytes,
                       ArrayRef<schedule::ScheduleKind> kinds,
                       ArrayRef<int64_t> chunkCounts, ArrayRef<bool> recomputes,
                       std::optional<llvm::raw_fd_ostream> &jsonFile) {
  // Every length searched is a multiple of --seq-step: 2 x cp must divide it.
  FailureOr<SmallVector<ParallelLayout>> layouts =
      enumerateLayouts(ops, seqStep, config, gpu);
  if (failed(layouts))
    return 1;
  ScopedDiagnosticHandler quiet(&context,
                                [](Diagnostic &) { return success(); });
  const int64_t most = (positions ? positions : kLongestSearched) / seqStep;
  LongestSearch search(context, configText, importOptions, gpu, kinds, most);
  const int64_t mbs = importOptions.microBatchSize;

  struct LayoutLongest {
    ParallelLayout layout;
    int64_t microbatches;
    Found found;
    double tokensPerSecond = 0; ///< at the longest length, sync included
    std::string name() const { return layoutName(layout); }
  };
  auto better = [](const LayoutLongest &a, const LayoutLongest &b) {
    return std::make_pair(a.found.seq, a.tokensPerSecond) >
           std::make_pair(b.found.seq, b.tokensPerSecond);
  };
  SmallVector<LayoutLongest> rows;
  std::optional<LayoutLongest> longestOneF1B;
  SmallVector<int64_t> skippedBatch;
  SearchProgress progress;
  for (auto [index, layout] : llvm::enumerate(*layouts)) {
    progress.at(index, layouts->size());
    if (globalBatch % (layout.dataParallel * mbs) != 0) {
      if (!llvm::is_contained(skippedBatch, layout.dataParallel))
        skippedBatch.push_back(layout.dataParallel);
      continue;
    }
    const int64_t m = globalBatch / (layout.dataParallel * mbs);
    const PipelineShape shape{
        layout.stages, layout.tensorParallel, layout.contextParallel,
        distributedOptimizer ? layout.dataParallel * layout.contextParallel
                             : optimizerShards.getValue(),
        m, layout.expertParallel};
    std::optional<LayoutLongest> best, oneF1B;
    forEachRow(kinds, chunkCounts, recomputes,
               [&](schedule::ScheduleKind kind, int64_t n, bool recompute) {
                 std::optional<Found> f =
                     search.longest(shape, kind, n, recompute, memoryBytes);
                 if (!f)
                   return;
                 LayoutLongest candidate{layout, m, std::move(*f), 0};
                 if (candidate.found.seq)
                   candidate.tokensPerSecond =
                       double(globalBatch) * candidate.found.seq /
                       (candidate.found.row.result.makespan +
                        syncSeconds(candidate.found.row, layout, gpu,
                                    candidate.found.expertShares));
                 if (kind == schedule::ScheduleKind::OneFOneB && !recompute &&
                     (!oneF1B || better(candidate, *oneF1B)))
                   oneF1B = candidate;
                 if (!best || better(candidate, *best))
                   best = std::move(candidate);
               });
    if (!best)
      continue;
    rows.push_back(std::move(*best));
    if (oneF1B && (!longestOneF1B || better(*oneF1B, *longestOneF1B)))
      longestOneF1B = std::move(*oneF1B);
  }
  if (rows.empty())
    return fail(llvm::formatv(
        "no layout of {0} GPUs can run --global-batch {1} with these "
        "schedules",
        gpus.getValue(), globalBatch.getValue()));
  llvm::stable_sort(rows, better);

  llvm::outs() << "model " << configPath << ": "
               << cast<StringAttr>(config.get("model_type")).getValue() << ", "
               << parameters << " parameters, micro-batch " << mbs << "\n"
               << "longest sequence on " << gpus << " GPUs (" << gpu.gpusPerNode
               << " per node), global batch " << globalBatch << ", " << gpu.name
               << " with " << gpuMemory << ", chunk split " << policy
               << (distributedOptimizer ? ", distributed optimizer" : "")
               << ", multiples of " << seqStep << " tokens up to "
               << most * seqStep
               << (positions ? " (the model's learned positions)" : "")
               << "\n\n";
  const bool epColumn = llvm::any_of(rows, [](const LayoutLongest &l) {
    return l.layout.expertParallel > 1;
  });
  llvm::outs()
      << " tp  cp   P  dp" << (epColumn ? "  ep" : "")
      << "    M  plan                                   "
         "     longest   step ms   tokens/s  peak GiB\n";
  const size_t shown =
      topLayouts > 0 ? std::min<size_t>(topLayouts, rows.size()) : rows.size();
  for (const LayoutLongest &l :
       ArrayRef<LayoutLongest>(rows).take_front(shown)) {
    llvm::outs() << llvm::format(
        "%3lld %3lld %3lld %3lld%s %4lld  %-38s %11s",
        (long long)l.layout.tensorParallel, (long long)l.layout.contextParallel,
        (long long)l.layout.stages, (long long)l.layout.dataParallel,
        epColumn ? llvm::formatv(" {0,3}", l.layout.expertParallel).str().c_str()
                 : "",
        (long long)l.microbatches, l.found.row.name().c_str(),
        lengthText(l.found).c_str());
    if (l.found.seq)
      llvm::outs() << llvm::format(" %9.1f %10.0f %9.2f\n",
                                   l.found.row.result.makespan * 1e3,
                                   l.tokensPerSecond, gib(l.found.row.peak()));
    else
      llvm::outs() << "         -          -         -\n";
  }
  printLayoutFootnotes(shown, rows.size(), skippedBatch, mbs);

  const LayoutLongest &first = rows.front();
  llvm::outs() << "\n";
  if (!first.found.seq) {
    llvm::outs() << "nothing fits " << gpuMemory << " even at " << seqStep
                 << " tokens on any layout\n";
  } else {
    llvm::outs() << "longest: " << first.name() << ", "
                 << first.found.row.name() << ", " << lengthText(first.found)
                 << " tokens per sequence";
    if (first.found.row.kind == schedule::ScheduleKind::OneFOneB)
      ; // nothing to compare with
    else if (longestOneF1B && longestOneF1B->found.seq &&
             longestOneF1B->found.seq < first.found.seq)
      llvm::outs() << llvm::formatv(
          ", {0:f2}x the longest 1f1b layout's ({1}: {2})",
          double(first.found.seq) / longestOneF1B->found.seq,
          longestOneF1B->name(), lengthText(longestOneF1B->found));
    else if (longestOneF1B && longestOneF1B->found.seq)
      llvm::outs() << "; 1f1b reaches as far on " << longestOneF1B->name();
    llvm::outs() << "\n";
  }

  if (jsonFile) {
    llvm::json::Array out;
    for (const LayoutLongest &l : rows) {
      llvm::json::Object o = rowKey(l.found.row);
      o["tp"] = l.layout.tensorParallel;
      o["cp"] = l.layout.contextParallel;
      o["stages"] = l.layout.stages;
      o["dp"] = l.layout.dataParallel;
      o["ep"] = l.layout.expertParallel;
      o["microbatches"] = l.microbatches;
      o["longest"] = l.found.seq;
      o["capped"] = l.found.capped;
      if (l.found.seq) {
        o["peak_bytes"] = l.found.row.peak();
        o["tokens_per_second"] = l.tokensPerSecond;
      }
      out.push_back(std::move(o));
    }
    llvm::json::Object root{{"config", configPath},
                            {"gpus", gpus.getValue()},
                            {"global_batch", globalBatch.getValue()},
                            {"gpu", gpu.name},
                            {"gpu_memory_bytes", memoryBytes},
                            {"seq_step", seqStep.getValue()},
                            {"searched_up_to", most * seqStep},
                            {"layouts", std::move(out)}};
    *jsonFile << llvm::formatv("{0:2}\n", llvm::json::Value(std::move(root)));
  }
  return 0;
}

} // namespace seq1f1b::plan
