//===- Layouts.cpp - seq1f1b-plan --gpus: which layout of a cluster -------===//
//
// Every tensor x context x pipeline x data-parallel layout of --gpus GPUs,
// each with its best plan, timed with its collectives and gradient sync.
//
//===----------------------------------------------------------------------===//
#include "Plan.h"

#include "seq1f1b/Dialect/LLM/IR/LLMOps.h"
#include "seq1f1b/Schedule/Timeline.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"

#include <chrono>

using namespace mlir;

namespace seq1f1b::plan {

/// A layout's answer: the fastest plan that fits on it, or, when none does,
/// the plan closest to fitting.
struct LayoutRow {
  ParallelLayout layout;
  int64_t microbatches;
  Row row;
  double syncSeconds; ///< gradient synchronization past the pipeline

  double stepSeconds() const { return row.result.makespan + syncSeconds; }
  bool fits(double memoryBytes) const { return row.peak() <= memoryBytes; }
  std::string name() const { return layoutName(layout); }
};

/// Each rank's last action's end.
static SmallVector<double> rankEnds(const schedule::SimulationResult &r) {
  SmallVector<double> ends(r.ranks.size(), 0);
  for (const schedule::TimelineEvent &e : r.events)
    ends[e.rank] = std::max(ends[e.rank], e.end);
  return ends;
}

double syncSeconds(const Row &row, const ParallelLayout &layout,
                   const GpuProfile &gpu, ArrayRef<double> expertShares) {
  const SmallVector<double> ends = rankEnds(row.result);
  double step = row.result.makespan;
  for (auto [r, rank] : llvm::enumerate(row.result.ranks))
    step = std::max(step,
                    ends[r] + dataParallelSyncSeconds(
                                  rank.peakMemory.weights,
                                  rank.peakMemory.grads, layout, gpu,
                                  expertShares.empty() ? 0 : expertShares[r]));
  return step - row.result.makespan;
}

SmallVector<double> expertShares(const OpList &ops, ArrayRef<unsigned> bounds,
                                 int64_t ranks, const ParallelLayout &layout) {
  if (layout.expertParallel == 1)
    return {};
  // Each stage's parameters once, as PipelineCostModel::staticMemory counts
  // them: experts' divided by ep, the rest by tp.
  SmallVector<double> dense(ranks, 0), experts(ranks, 0);
  for (size_t s = 0; s + 1 < bounds.size(); ++s) {
    llvm::DenseSet<Attribute> seen;
    for (Operation *op : ArrayRef<Operation *>(ops).slice(
             bounds[s], bounds[s + 1] - bounds[s]))
      if (auto ref = dyn_cast<llm::ParamRefOp>(op))
        if (seen.insert(ref.getParamAttr()).second) {
          const double n = cast<RankedTensorType>(ref.getType()).getNumElements();
          if (isExpertWeight(op))
            experts[s % ranks] += n / layout.expertParallel;
          else
            dense[s % ranks] += n / layout.tensorParallel;
        }
  }
  SmallVector<double> shares(ranks, 0);
  for (int64_t r = 0; r < ranks; ++r)
    if (dense[r] + experts[r] > 0)
      shares[r] = experts[r] / (dense[r] + experts[r]);
  return shares;
}

static SmallVector<int64_t> divisors(int64_t n) {
  SmallVector<int64_t> out;
  for (int64_t d = 1; d <= n; ++d)
    if (n % d == 0)
      out.push_back(d);
  return out;
}

void SearchProgress::at(size_t index, size_t total) {
  const auto now = std::chrono::steady_clock::now();
  if (now - reported < std::chrono::seconds(2))
    return;
  llvm::errs() << llvm::formatv(
      "seq1f1b-plan: {0} of {1} layouts searched ({2:f1} s)\n", index, total,
      std::chrono::duration<double>(now - start).count());
  reported = now;
}

void printLayoutFootnotes(size_t shown, size_t total,
                          ArrayRef<int64_t> skippedBatch, int64_t microBatch) {
  if (shown < total)
    llvm::outs() << "(" << total - shown
                 << " more layouts: --top 0 prints all)\n";
  if (!skippedBatch.empty())
    llvm::outs() << "(not searched: data parallel "
                 << llvm::join(llvm::map_range(
                                   skippedBatch,
                                   [](int64_t d) { return std::to_string(d); }),
                               ", ")
                 << ", which the global batch " << globalBatch
                 << " does not divide into micro-batches of " << microBatch
                 << ")\n";
}

int64_t expertCount(const OpList &ops) {
  for (Operation *op : ops)
    if (auto moe = dyn_cast<llm::MoeOp>(op))
      return moe.getNumExperts();
  return 0;
}

FailureOr<SmallVector<ParallelLayout>> enumerateLayouts(const OpList &ops,
                                                        int64_t seqGranule,
                                                        DictionaryAttr config,
                                                        const GpuProfile &gpu) {
  const int64_t pieces = legalCutPoints(ops).size() + 1;
  const int64_t experts = expertCount(ops);
  if (expertParallel > 1 && !experts) {
    fail("--ep splits a mixture of experts, and " + configPath + " has none");
    return failure();
  }
  auto divides = [&](int64_t t) {
    return llvm::all_of(ArrayRef<StringRef>{"heads", "kv_heads", "ffn"},
                        [&](StringRef key) {
                          return cast<IntegerAttr>(config.get(key)).getInt() %
                                     t ==
                                 0;
                        }) &&
           llvm::all_of(ops, [&](Operation *op) { // each expert's width
             auto moe = dyn_cast<llm::MoeOp>(op);
             return !moe || moe.getExpertWidth() % t == 0;
           });
  };
  // Every tp x cp x P x dp = --gpus, the options fixing what they give.
  auto choices = [](const cl::opt<int64_t> &option, int64_t most) {
    return option.getNumOccurrences() ? SmallVector<int64_t>{option}
                                      : divisors(most);
  };
  SmallVector<ParallelLayout> layouts;
  for (int64_t tp : choices(tensorParallel, gpus)) {
    if (gpus % tp || tp > gpu.gpusPerNode || !divides(tp) ||
        (expertParallel > 1 && tp > 1))
      continue;
    for (int64_t cp : choices(contextParallel, gpus / tp)) {
      // Megatron balances causal attention over 2*cp pieces of a sequence.
      if ((gpus / tp) % cp || (cp > 1 && seqGranule % (2 * cp)))
        continue;
      for (int64_t p : choices(stages, gpus / (tp * cp))) {
        if ((gpus / (tp * cp)) % p || p > pieces)
          continue;
        const int64_t dp = gpus / (tp * cp * p);
        // Experts split over data-parallel ranks, each expert whole (tp 1).
        for (int64_t ep : experts && tp == 1 ? choices(expertParallel, dp)
                                             : SmallVector<int64_t>{1})
          if (dp % ep == 0 && (!experts || experts % ep == 0))
            layouts.push_back({tp, cp, p, dp, distributedOptimizer, ep});
      }
    }
  }
  if (layouts.empty()) {
    fail(llvm::formatv(
        "no layout tp x cp x P x dp of --gpus {0}: --tp, --cp and --stages "
        "must divide it, tp must divide the heads and the MLP and fit a "
        "node, 2 x cp the sequence, {2}and P be at most {1} stages",
        gpus.getValue(), pieces,
        experts ? "--ep run at tp 1 and divide dp and the experts, " : ""));
    return failure();
  }
  return layouts;
}

/// Searches every layout tp x cp x P x dp = --gpus (tp inside a node and
/// dividing the heads and the MLP, 2 x cp dividing the sequence, P at most
/// the model's pieces, dp dividing the global batch), each with every
/// schedule, chunk count and recomputation the options give, and prints each
/// layout's best plan, fastest first.
int planLayouts(const OpList &ops, ModelShape shape, DictionaryAttr config,
                int64_t parameters, const GpuProfile &gpu, double memoryBytes,
                ArrayRef<schedule::ScheduleKind> kinds,
                ArrayRef<int64_t> chunkCounts, ArrayRef<bool> recomputes,
                std::optional<llvm::raw_fd_ostream> &jsonFile) {
  FailureOr<SmallVector<ParallelLayout>> layouts =
      enumerateLayouts(ops, shape.seqLen, config, gpu);
  if (failed(layouts))
    return 1;
  const int64_t pieces = legalCutPoints(ops).size() + 1;

  const schedule::RangeCost flopsCost = trainingFlopsCost(ops, shape.seqLen);
  SmallVector<LayoutRow> found;
  SmallVector<int64_t> skippedBatch;
  std::optional<LayoutRow> fastestOneF1B;
  SearchProgress progress;
  for (auto [index, layout] : llvm::enumerate(*layouts)) {
    progress.at(index, layouts->size());
    const int64_t tp = layout.tensorParallel, p = layout.stages;
    if (globalBatch % (layout.dataParallel * shape.batch) != 0) {
      if (!llvm::is_contained(skippedBatch, layout.dataParallel))
        skippedBatch.push_back(layout.dataParallel);
      continue;
    }
    const int64_t m = globalBatch / (layout.dataParallel * shape.batch);
    Planner planner{ops,
                    shape.seqLen,
                    gpu,
                    p,
                    tp,
                    layout.contextParallel,
                    distributedOptimizer
                        ? layout.dataParallel * layout.contextParallel
                        : optimizerShards.getValue(),
                    m,
                    flopsCost,
                    {},
                    layout.expertParallel};
    std::optional<LayoutRow> best, oneF1B;
    auto better = [&](const std::optional<LayoutRow> &current,
                      const LayoutRow &candidate) {
      if (!current)
        return true;
      bool fits = candidate.fits(memoryBytes);
      if (fits != current->fits(memoryBytes))
        return fits;
      if (!fits)
        return candidate.row.peak() < current->row.peak();
      return fasterOrLeaner(candidate.stepSeconds(), candidate.row.peak(),
                            current->stepSeconds(), current->row.peak());
    };
    for (schedule::ScheduleKind kind : kinds) {
      int64_t v = schedule::isInterleaved(kind) ? virtualStages.getValue() : 1;
      if (p * v > pieces)
        continue;
      FailureOr<SmallVector<unsigned>> bounds = partitionIntoStages(
          ops, shape.seqLen, p * v, UnknownLoc::get(ops[0]->getContext()));
      if (failed(bounds))
        return 1;
      planner.stageBounds[kind] = *bounds;
      for (bool recompute : recomputes) {
        if (recompute && schedule::splitsBackward(kind))
          continue;
        const int64_t one = 1;
        for (int64_t n : schedule::isSequenceChunked(kind)
                             ? chunkCounts
                             : ArrayRef<int64_t>(one)) {
          // Kinds a layout cannot run (interleaving with M*N not a
          // multiple of P, ...) are left out of its search.
          schedule::Result<Row> row = planner.simulate(kind, n, recompute);
          if (!row)
            continue;
          LayoutRow candidate{layout, m, std::move(*row), 0};
          candidate.syncSeconds = syncSeconds(
              candidate.row, layout, gpu,
              expertShares(ops, planner.stageBounds[kind], p, layout));
          if (kind == schedule::ScheduleKind::OneFOneB &&
              candidate.fits(memoryBytes) && better(oneF1B, candidate))
            oneF1B = candidate;
          if (better(best, candidate))
            best = std::move(candidate);
        }
      }
    }
    if (!best)
      continue;
    found.push_back(std::move(*best));
    if (oneF1B && (!fastestOneF1B || shorterStep(oneF1B->stepSeconds(),
                                                 fastestOneF1B->stepSeconds())))
      fastestOneF1B = std::move(*oneF1B);
  }
  if (found.empty())
    return fail(llvm::formatv(
        "no layout of {0} GPUs can run --global-batch {1} with these "
        "schedules{2}",
        gpus.getValue(), globalBatch.getValue(),
        skippedBatch.empty()
            ? std::string()
            : " (the global batch must be a multiple of data parallel x "
              "micro-batch size)"));
  const double tokens = double(globalBatch) * shape.seqLen;
  llvm::stable_sort(found, [&](const LayoutRow &a, const LayoutRow &b) {
    if (a.fits(memoryBytes) != b.fits(memoryBytes))
      return a.fits(memoryBytes);
    return a.fits(memoryBytes) ? a.stepSeconds() < b.stepSeconds()
                               : a.row.peak() < b.row.peak();
  });

  llvm::outs() << "model " << configPath << ": "
               << cast<StringAttr>(config.get("model_type")).getValue() << ", "
               << parameters << " parameters, sequence " << shape.seqLen
               << " x micro-batch " << shape.batch << "\n"
               << "layouts of " << gpus << " GPUs (" << gpu.gpusPerNode
               << " per node), global batch " << globalBatch << ", " << gpu.name
               << " with " << gpuMemory << ", chunk split " << policy
               << (distributedOptimizer ? ", distributed optimizer" : "")
               << "\n\n";
  // A mixture of experts gets a column for the expert-parallel degree.
  const bool epColumn = expertCount(ops) > 0;
  llvm::outs()
      << " tp  cp   P  dp" << (epColumn ? "  ep" : "")
      << "    M  plan                                    "
         "bubble  pipeline ms     sync ms   tokens/s  per GPU  "
         "peak GiB  fits\n";
  const size_t shown = topLayouts > 0
                           ? std::min<size_t>(topLayouts, found.size())
                           : found.size();
  for (const LayoutRow &l : ArrayRef<LayoutRow>(found).take_front(shown))
    llvm::outs() << llvm::format(
        "%3lld %3lld %3lld %3lld%s %4lld  %-38s %6.1f%% %12.1f %11.1f %10.0f "
        "%8.0f %9.2f  %s\n",
        (long long)l.layout.tensorParallel, (long long)l.layout.contextParallel,
        (long long)l.layout.stages, (long long)l.layout.dataParallel,
        epColumn ? llvm::formatv(" {0,3}", l.layout.expertParallel).str().c_str()
                 : "",
        (long long)l.microbatches, l.row.name().c_str(),
        100 * l.row.result.bubbleFraction, l.row.result.makespan * 1e3,
        l.syncSeconds * 1e3, tokens / l.stepSeconds(),
        tokens / l.stepSeconds() / gpus, gib(l.row.peak()),
        static_cast<const char *>(l.fits(memoryBytes) ? "yes" : "OOM"));
  printLayoutFootnotes(shown, found.size(), skippedBatch, shape.batch);

  const LayoutRow &first = found.front();
  llvm::outs() << "\n";
  if (!first.fits(memoryBytes)) {
    llvm::outs() << llvm::format(
        "no layout fits in %s: the smallest peak is %s, %s at %.2f GiB\n"
        "  try more --chunks, --recompute none,full or "
        "--distributed-optimizer\n",
        gpuMemory.c_str(), first.name().c_str(), first.row.name().c_str(),
        gib(first.row.peak()));
  } else {
    llvm::outs() << llvm::format(
        "fastest layout: %s, %s: %.0f tokens/s (%.0f per GPU), peak %.2f GiB "
        "of %s\n",
        first.name().c_str(), first.row.name().c_str(),
        tokens / first.stepSeconds(), tokens / first.stepSeconds() / gpus,
        gib(first.row.peak()), gpuMemory.c_str());
    if (fastestOneF1B && fastestOneF1B->row.name() != first.row.name())
      llvm::outs() << llvm::format(
          "  against the fastest 1f1b layout (%s, %s): %.2fx the tokens/s\n",
          fastestOneF1B->name().c_str(), fastestOneF1B->row.name().c_str(),
          fastestOneF1B->stepSeconds() / first.stepSeconds());
    else if (!fastestOneF1B &&
             llvm::is_contained(kinds, schedule::ScheduleKind::OneFOneB))
      llvm::outs() << "  no layout fits with 1f1b\n";
    printBuildCommands(first.row, shape.seqLen, shape.batch,
                       first.layout.stages, first.microbatches,
                       first.layout.tensorParallel,
                       first.layout.contextParallel, first.layout.dataParallel,
                       first.layout.expertParallel);
  }

  if (!svgDir.empty()) {
    std::vector<schedule::LayoutPoint> points;
    for (const LayoutRow &l : found)
      points.push_back({l.name(), l.row.name(), tokens / l.stepSeconds() / gpus,
                        double(l.row.peak()), l.row.kindName()});
    std::string title = llvm::formatv(
        "{0} at {1} tokens: layouts of {2} GPUs, global batch {3}, {4}",
        cast<StringAttr>(config.get("model_type")).getValue(), shape.seqLen,
        gpus.getValue(), globalBatch.getValue(), gpu.name);
    if (llvm::Error e =
            writeSvg("layouts.svg",
                     schedule::layoutChartSvg(points, memoryBytes, title)))
      return fail(llvm::toString(std::move(e)));
    if (first.fits(memoryBytes)) {
      schedule::SvgOptions options;
      options.memoryLimit = memoryBytes;
      options.title = first.name() + ": " + first.row.name();
      if (llvm::Error e = writeSvg(
              "fastest.svg", schedule::timelineSvg(first.row.result, options)))
        return fail(llvm::toString(std::move(e)));
    }
  }
  if (jsonFile) {
    auto layoutJson = [&](const LayoutRow &l) {
      llvm::json::Object o = rowKey(l.row);
      o["tp"] = l.layout.tensorParallel;
      o["cp"] = l.layout.contextParallel;
      o["stages"] = l.layout.stages;
      o["dp"] = l.layout.dataParallel;
      o["ep"] = l.layout.expertParallel;
      o["microbatches"] = l.microbatches;
      o["bubble"] = l.row.result.bubbleFraction;
      o["pipeline_seconds"] = l.row.result.makespan;
      o["sync_seconds"] = l.syncSeconds;
      o["step_seconds"] = l.stepSeconds();
      o["tokens_per_second"] = tokens / l.stepSeconds();
      o["peak_bytes"] = l.row.peak();
      o["fits"] = l.fits(memoryBytes);
      llvm::json::Array ranks;
      const SmallVector<double> ends = rankEnds(l.row.result);
      for (auto [r, rank] : llvm::enumerate(l.row.result.ranks))
        ranks.push_back(
            llvm::json::Object{{"weights", rank.peakMemory.weights},
                               {"grads", rank.peakMemory.grads},
                               {"peak_bytes", rank.peakMemory.total()},
                               {"end_seconds", ends[r]}});
      o["ranks"] = std::move(ranks);
      return o;
    };
    llvm::json::Array rows;
    for (const LayoutRow &l : found)
      rows.push_back(layoutJson(l));
    llvm::json::Object out{
        {"config", configPath},
        {"parameters", parameters},
        {"seq_len", shape.seqLen},
        {"micro_batch", shape.batch},
        {"gpus", gpus.getValue()},
        {"gpus_per_node", gpu.gpusPerNode},
        {"global_batch", globalBatch.getValue()},
        {"distributed_optimizer", distributedOptimizer.getValue()},
        {"gpu", gpu.name},
        {"gpu_memory_bytes", memoryBytes},
        {"tp_bandwidth", gpu.tpBandwidth},
        {"tp_latency", gpu.tpLatency},
        {"link_bandwidth", gpu.linkBandwidth},
        {"link_latency", gpu.linkLatency},
        {"layouts", std::move(rows)},
        {"fastest", first.fits(memoryBytes)
                        ? llvm::json::Value(layoutJson(first))
                        : llvm::json::Value(nullptr)}};
    *jsonFile << llvm::formatv("{0:2}\n", llvm::json::Value(std::move(out)));
  }
  return 0;
}

} // namespace seq1f1b::plan
