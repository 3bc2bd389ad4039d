//===- seq1f1b-plan.cpp - which schedule, how many chunks, does it fit? ---===//
//
// Builds the model graph from a config.json, partitions it into stages and
// simulates several schedules and chunk counts side by side: bubble, step
// time, tokens/s and peak memory per stage, against the GPU's memory. The
// options, the table of one layout and main(); --gpus searches layouts
// (Layouts.cpp), --longest sequence lengths (Longest.cpp).
//
//===----------------------------------------------------------------------===//
#include "Plan.h"

#include "seq1f1b/Dialect/LLM/IR/LLMOps.h"
#include "seq1f1b/Translate/HFConfig.h"
#include "seq1f1b/Schedule/Partition.h"
#include "seq1f1b/Schedule/Timeline.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"

#include <map>
#include <optional>

using namespace mlir;
using namespace seq1f1b;
using namespace seq1f1b::plan;

namespace seq1f1b::plan {

static cl::OptionCategory category("seq1f1b-plan options");
cl::opt<std::string> configPath("config", cl::desc("Hugging Face config.json (or the model directory holding it)"),
                                cl::value_desc("file"), cl::Required,
                                cl::cat(category));
static cl::opt<int64_t> seqLen("seq-len", cl::desc("Tokens per sequence (default: the config's context length)"),
                               cl::init(0), cl::cat(category));
static cl::opt<int64_t> microBatchSize("micro-batch-size", cl::desc("Sequences per micro-batch"),
                                       cl::init(1), cl::cat(category));
cl::opt<int64_t> stages("stages", cl::desc("Pipeline ranks P"), cl::init(4),
                        cl::cat(category));
static cl::opt<int64_t> microbatches("microbatches",
                                     cl::desc("Micro-batches per step M (default 2*P)"),
                                     cl::init(0), cl::cat(category));
static cl::opt<std::string> chunkList("chunks", cl::desc("Chunk counts N to compare"),
                                      cl::init("1,2,4,8"), cl::cat(category));
static cl::opt<std::string> scheduleList(
    "schedules", cl::desc("Schedule kinds to compare"),
    cl::init("1f1b,interleaved-1f1b,seq1f1b,seq1f1b-interleaved,zb-h1,seq1f1b-zb"),
    cl::cat(category));
cl::opt<int64_t>
    virtualStages("virtual", cl::desc("Stages per rank for interleaved kinds"),
                  cl::init(2), cl::cat(category));
cl::opt<int64_t> optimizerShards(
    "optimizer-shards",
    cl::desc("Data-parallel ranks sharing the optimizer state, as Megatron's "
             "--use-distributed-optimizer shards it (default 1: unsharded)"),
    cl::init(1), cl::cat(category));
cl::opt<int64_t> tensorParallel("tp", cl::desc("Tensor-parallel degree"),
                                cl::init(1), cl::cat(category));
cl::opt<int64_t> expertParallel(
    "ep",
    cl::desc("Expert-parallel degree of a mixture of experts (Megatron's "
             "--expert-model-parallel-size): its experts split over ep of the "
             "data-parallel ranks, each routed token sent to its expert and "
             "back; with --tp 1"),
    cl::init(1), cl::cat(category));
static cl::opt<double> expertImbalance(
    "expert-imbalance",
    cl::desc("With expert parallelism: the busiest rank's routed tokens over "
             "an even share (>= 1; default 1, balanced routing)"),
    cl::init(1.0), cl::cat(category));
cl::opt<int64_t> contextParallel(
    "cp",
    cl::desc(
        "Context-parallel degree: every chunk's tokens split over cp "
        "GPUs, K/V passed around a ring (Megatron's --context-parallel-size)"),
    cl::init(1), cl::cat(category));
static cl::opt<std::string>
    gpuName("gpu",
            cl::desc("GPU profile: h100, h200, a100, or a .json file of your "
                     "own (docs/user-guide.md)"),
            cl::init("h100"), cl::cat(category));
cl::opt<std::string> gpuMemory(
    "gpu-memory",
    cl::desc("Memory per GPU, e.g. 80GiB (default: the --gpu's, 80GiB for "
             "h100 and a100, 140GiB for h200)"),
    cl::cat(category));
cl::opt<std::string> policy("policy", cl::desc("Chunk split: even or flops"),
                            cl::init("flops"), cl::cat(category));
static cl::opt<std::string> dtype("dtype", cl::desc("f32, bf16 or f16 (default: the config's)"),
                                  cl::init(""), cl::cat(category));
static cl::opt<std::string> recomputeList(
    "recompute",
    cl::desc("Activation recomputation to compare: none, full (Megatron's "
             "uniform method, one layer per checkpoint), or none,full"),
    cl::init("none"), cl::cat(category));
cl::opt<int64_t> gpus(
    "gpus",
    cl::desc("Search the layouts (tensor x context x pipeline x data "
             "parallel) of this many GPUs for --global-batch; --tp, --cp and "
             "--stages, when given, fix those degrees"),
    cl::init(0), cl::cat(category));
cl::opt<int64_t> globalBatch(
    "global-batch",
    cl::desc("Sequences per step over all data-parallel replicas (with "
             "--gpus)"),
    cl::init(0), cl::cat(category));
cl::opt<int64_t> topLayouts(
    "top",
    cl::desc("With --gpus: print the best K layouts (default 15; 0: all; "
             "--json has all)"),
    cl::init(15), cl::cat(category));
cl::opt<bool> distributedOptimizer(
    "distributed-optimizer",
    cl::desc("With --gpus: shard the optimizer state over each layout's "
             "dp x cp ranks (Megatron's --use-distributed-optimizer)"),
    cl::init(false), cl::cat(category));
static cl::opt<bool> longest(
    "longest",
    cl::desc("Find, for every schedule and chunk count, the longest sequence "
             "(a multiple of --seq-step) whose plan fits --gpu-memory"),
    cl::init(false), cl::cat(category));
cl::opt<int64_t> seqStep("seq-step",
                         cl::desc("With --longest: the granularity of "
                                  "sequence lengths (default 1024)"),
                         cl::init(1024), cl::cat(category));
static cl::opt<std::string>
    jsonPath("json",
             cl::desc("Also write the table, itemized per rank, as JSON"),
             cl::value_desc("file"), cl::init(""), cl::cat(category));
cl::opt<std::string> svgDir(
    "svg",
    cl::desc("Write one SVG timeline per row into this directory (with --gpus: "
             "the layouts as a chart, and the fastest one's timeline)"),
    cl::value_desc("dir"), cl::init(""), cl::cat(category));

int fail(const llvm::Twine &message) {
  llvm::errs() << "seq1f1b-plan: error: " << message << "\n";
  return 1;
}

schedule::Result<Row> Planner::simulate(schedule::ScheduleKind kind, int64_t n,
                                        bool recompute) const {
  const std::string name(schedule::scheduleKindName(kind));
  if (n > seqLen)
    return schedule::Error{"--chunks " + std::to_string(n) +
                           " exceeds the sequence length " +
                           std::to_string(seqLen)};
  const SmallVector<unsigned> &bounds = stageBounds.at(kind);
  PipelineCostModel costs;
  costs.gpu = gpu;
  costs.memory.tensorParallel = tp;
  costs.memory.contextParallel = cp;
  costs.memory.optimizerShards = shards;
  costs.memory.expertParallel = ep;
  costs.memory.expertImbalance = expertImbalance;
  costs.memory.recompute = recompute;
  for (size_t i = 0; i + 1 < bounds.size(); ++i)
    costs.stages.push_back(
        OpList(ops.begin() + bounds[i], ops.begin() + bounds[i + 1]));
  if (recompute)
    costs.layers = layerRanges(costs.stages);
  schedule::RangeCost cost =
      policy == "even" ? schedule::RangeCost([](double begin, double end) {
        return end - begin;
      })
                       : flopsCost;
  schedule::Result<std::vector<int>> lengths =
      schedule::balanceChunks(seqLen, n, cost);
  if (!lengths)
    return schedule::Error{"cannot split " + std::to_string(seqLen) +
                           " tokens into " + std::to_string(n) +
                           " chunks: " + lengths.error};
  costs.chunkBounds = {0};
  for (int len : *lengths)
    costs.chunkBounds.push_back(costs.chunkBounds.back() + len);

  schedule::ScheduleConfig sc;
  sc.kind = kind;
  sc.ranks = ranks;
  sc.virtualStages =
      schedule::isInterleaved(kind) ? virtualStages.getValue() : 1;
  sc.microbatches = microbatches;
  sc.chunks = n;
  schedule::Result<schedule::Schedule> s = schedule::generateSchedule(sc);
  if (!s)
    return schedule::Error{name + ": " + s.error};
  schedule::Result<schedule::SimulationResult> r =
      schedule::simulateSchedule(*s, costs.simulationModel());
  if (!r)
    return schedule::Error{name + ": " + r.error};
  return Row{kind, sc.virtualStages, n, recompute, std::move(*r)};
}

/// Writes `text` to `name` in the --svg directory, creating it.
llvm::Error writeSvg(const llvm::Twine &name, llvm::StringRef text) {
  if (std::error_code ec = llvm::sys::fs::create_directories(svgDir))
    return llvm::createStringError(ec, "cannot create --svg directory " +
                                           svgDir + ": " + ec.message());
  llvm::SmallString<128> path(svgDir);
  llvm::sys::path::append(path, name);
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec);
  if (ec)
    return llvm::createStringError(ec, "cannot write " + path + ": " +
                                           ec.message());
  os << text;
  return llvm::Error::success();
}

/// A row's identity, as the JSON names it.
llvm::json::Object rowKey(const Row &row) {
  return llvm::json::Object{{"schedule", row.kindName()},
                            {"virtual", row.virtualStages},
                            {"chunks", row.chunks},
                            {"recompute", row.recompute}};
}

} // namespace seq1f1b::plan

/// "80GiB", "80GB", "80G", "85899345920" -> bytes.
static std::optional<double> parseBytes(StringRef text) {
  StringRef digits = text.take_while([](char c) { return isdigit(c) || c == '.'; });
  StringRef unit = text.drop_front(digits.size()).trim();
  double value;
  if (digits.empty() || digits.getAsDouble(value) || value <= 0)
    return std::nullopt;
  if (unit.empty() || unit == "B")
    return value;
  if (unit == "GiB" || unit == "G")
    return value * (1ull << 30);
  if (unit == "GB")
    return value * 1e9;
  if (unit == "MiB")
    return value * (1ull << 20);
  return std::nullopt;
}

/// The row with the shortest step among those that fit, of equally fast ones
/// the one with the smallest peak, then the first; null if none fits.
static const Row *fastestFitting(ArrayRef<Row> rows, double memoryBytes) {
  const Row *fastest = nullptr;
  for (const Row &row : rows) {
    if (row.peak() > memoryBytes)
      continue;
    if (!fastest || fasterOrLeaner(row.result.makespan, row.peak(),
                                   fastest->result.makespan, fastest->peak()))
      fastest = &row;
  }
  return fastest;
}

int64_t seq1f1b::plan::vocabulary = 0;

void seq1f1b::plan::printBuildCommands(const Row &row, int64_t seqLength,
                                       int64_t microBatch, int64_t p,
                                       int64_t m, int64_t tp, int64_t cp,
                                       int64_t dp, int64_t ep) {
  std::string compile = llvm::formatv(
      "seq1f1b-compile --config {0} --seq-len {1} --micro-batch-size {2} "
      "--stages {3} --chunks {4} --microbatches {5} --schedule {6}",
      configPath.getValue(), seqLength, microBatch, p, row.chunks, m,
      row.kindName());
  if (row.virtualStages > 1)
    compile += " --virtual " + std::to_string(row.virtualStages);
  if (row.chunks > 1 && policy != "flops")
    compile += " --policy " + policy;
  std::string run = "mpirun -np " + std::to_string(tp * cp * p * dp) +
                    " ./train --comm mpi --data FILE";
  for (auto [flag, degree] : {std::pair{" --tp ", tp}, {" --cp ", cp},
                              {" --dp ", dp}, {" --ep ", ep}})
    if (degree > 1)
      run += flag + std::to_string(degree);
  if (tp > 1 && vocabulary % tp == 0)
    run += " --sp";
  if (row.recompute)
    run += " --recompute full";
  llvm::outs() << "  build it: " << compile << " -o train\n"
               << "  run it:   " << run
               << "  (CPU ranks today: docs/status.md)\n";
}

/// Chunk counts the search for a fitting plan tries, up to this many.
static constexpr int64_t kMaxSearchedChunks = 64;

/// The answer under the table: the fastest row that fits, against 1F1B (and
/// 1F1B with recomputation) when they are there. When nothing fits: the row
/// that comes closest, and the fastest chunked plan with more chunks than
/// the table's that would fit.
static void printVerdict(ArrayRef<Row> rows, double memoryBytes, double tokens,
                         const Planner &planner) {
  const Row *fastest = fastestFitting(rows, memoryBytes), *smallest = nullptr;
  const Row *oneF1B[2] = {nullptr, nullptr}; // without, with recomputation
  for (const Row &row : rows) {
    if (row.kind == schedule::ScheduleKind::OneFOneB && !oneF1B[row.recompute])
      oneF1B[row.recompute] = &row;
    if (!smallest || row.peak() < smallest->peak())
      smallest = &row;
  }
  llvm::outs() << "\n";
  if (fastest) {
    llvm::outs() << llvm::format(
        "fastest that fits: %s, %.0f tokens/s, peak %.2f GiB of %s\n",
        fastest->name().c_str(), tokens / fastest->result.makespan,
        gib(fastest->peak()), gpuMemory.c_str());
    for (const Row *base : oneF1B)
      if (base && base != fastest) {
        const char *name = base->recompute ? "1f1b recompute" : "1f1b";
        llvm::outs() << llvm::format(
            "  against %s: %.2fx the tokens/s at %.2fx the peak memory "
            "(%s: %.2f GiB, %s)\n",
            name, base->result.makespan / fastest->result.makespan,
            double(fastest->peak()) / base->peak(), name, gib(base->peak()),
            base->peak() <= memoryBytes ? "fits" : "OOM");
      }
    printBuildCommands(*fastest, planner.seqLen, microBatchSize, planner.ranks,
                       planner.microbatches, planner.tp, planner.cp,
                       planner.ep, planner.ep);
    return;
  }
  llvm::outs() << llvm::format(
      "nothing fits in %s: the smallest peak is %s at %.2f GiB (%.2f GiB "
      "over)\n",
      gpuMemory.c_str(), smallest->name().c_str(), gib(smallest->peak()),
      gib(smallest->peak()) - memoryBytes / double(1ull << 30));
  // Each chunked kind in the table, with twice its most chunks, and so on.
  std::optional<Row> found;
  for (const auto &[kind, bounds] : planner.stageBounds) {
    if (!schedule::isSequenceChunked(kind))
      continue;
    int64_t most = 0;
    for (const Row &row : rows)
      if (row.kind == kind && !row.recompute)
        most = std::max(most, row.chunks);
    for (int64_t n = 2 * most; most && n <= kMaxSearchedChunks; n *= 2) {
      schedule::Result<Row> row = planner.simulate(kind, n, false);
      if (!row || row->peak() > memoryBytes)
        continue;
      if (!found || shorterStep(row->result.makespan, found->result.makespan))
        found = std::move(*row);
      break;
    }
  }
  if (found)
    llvm::outs() << llvm::format(
        "  with more chunks, %s fits: %.0f tokens/s, peak %.2f GiB (simulated "
        "beyond --chunks)\n",
        found->name().c_str(), tokens / found->result.makespan,
        gib(found->peak()));
  else
    llvm::outs() << "  no chunked schedule fits with up to "
                 << kMaxSearchedChunks << " chunks\n";
  // The table's rows with full recomputation, unless it has them already.
  std::optional<Row> recomputed;
  if (llvm::none_of(rows, [](const Row &row) { return row.recompute; }))
    for (const Row &table : rows) {
      if (schedule::splitsBackward(table.kind))
        continue;
      schedule::Result<Row> row =
          planner.simulate(table.kind, table.chunks, true);
      if (row && row->peak() <= memoryBytes &&
          (!recomputed ||
           shorterStep(row->result.makespan, recomputed->result.makespan)))
        recomputed = std::move(*row);
    }
  if (recomputed)
    llvm::outs() << llvm::format(
        "  with --recompute full, %s fits: %.0f tokens/s, peak %.2f GiB\n",
        recomputed->name().c_str(), tokens / recomputed->result.makespan,
        gib(recomputed->peak()));
  llvm::outs() << "  memory per GPU also falls with more stages (--stages), "
               << (expertCount(planner.ops)
                       ? "tensor, context or expert parallelism (--tp, --cp, "
                         "--ep)"
                       : "tensor or context parallelism (--tp, --cp)")
               << (optimizerShards == 1
                       ? " and a sharded optimizer (--optimizer-shards)"
                       : "")
               << "; --gpus searches the layouts of a cluster\n";
}

/// The table as JSON: every row with its ranks' peaks itemized.
static llvm::json::Value tableJson(ArrayRef<Row> rows, double memoryBytes,
                                   double tokens, llvm::json::Object header) {
  llvm::json::Array out;
  for (const Row &row : rows) {
    llvm::json::Object o = rowKey(row);
    llvm::json::Array ranks;
    for (auto [r, rank] : llvm::enumerate(row.result.ranks)) {
      const schedule::MemoryBreakdown &p = rank.peakMemory;
      ranks.push_back(llvm::json::Object{
          {"rank", int64_t(r)},
          {"bubble", rank.bubbleFraction},
          {"peak_bytes", p.total()},
          {"peak", llvm::json::Object{{"weights", p.weights},
                                      {"grads", p.grads},
                                      {"optimizer", p.optimizer},
                                      {"activations", p.activations},
                                      {"kv_cache", p.kvCache},
                                      {"kv_grad", p.kvGrad}}}});
    }
    o["bubble"] = row.result.bubbleFraction;
    o["step_seconds"] = row.result.makespan;
    o["tokens_per_second"] = tokens / row.result.makespan;
    o["peak_bytes"] = row.peak();
    o["fits"] = row.peak() <= memoryBytes;
    o["ranks"] = std::move(ranks);
    out.push_back(std::move(o));
  }
  const Row *fastest = fastestFitting(rows, memoryBytes);
  header["rows"] = std::move(out);
  header["fastest_that_fits"] = fastest ? llvm::json::Value(rowKey(*fastest))
                                        : llvm::json::Value(nullptr);
  return llvm::json::Value(std::move(header));
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(
      argc, argv,
      "seq1f1b-plan: compare pipeline schedules and sequence chunk counts\n\n"
      "Examples:\n"
      "  seq1f1b-plan --config examples/gpt2-small.json --stages 4 --chunks 4\n"
      "  seq1f1b-plan --config examples/llama-7b.json --seq-len 65536 --stages "
      "8 \\\n"
      "      --microbatches 16 --chunks 1,2,4,8 --schedules 1f1b,seq1f1b \\\n"
      "      --tp 1 --gpu-memory 80GiB --svg plans/\n"
      "  seq1f1b-plan --config examples/llama-7b.json --seq-len 32768 \\\n"
      "      --recompute none,full --json plan.json\n"
      "  seq1f1b-plan --config examples/llama-7b.json --seq-len 65536 \\\n"
      "      --gpus 32 --global-batch 64 --distributed-optimizer\n"
      "  seq1f1b-plan --config examples/llama-7b.json --longest --chunks "
      "1,4,16\n");

  llvm::Expected<GpuProfile> gpu = gpuProfile(gpuName);
  if (!gpu)
    return fail("--gpu: " + llvm::toString(gpu.takeError()));
  if (gpuMemory.empty())
    gpuMemory = gpu->memoryName;
  std::optional<double> memoryBytes = parseBytes(gpuMemory);
  if (!memoryBytes)
    return fail("--gpu-memory=" + gpuMemory + " is not a size like 80GiB or 80GB");
  if (stages < 1 || tensorParallel < 1 || contextParallel < 1 ||
      expertParallel < 1 || optimizerShards < 1 || virtualStages < 2)
    return fail("--stages, --tp, --cp, --ep and --optimizer-shards must be "
                ">= 1 and --virtual >= 2");
  if (!(expertImbalance >= 1))
    return fail(llvm::formatv("--expert-imbalance must be >= 1 (the busiest "
                              "rank's share over an even one), got {0}",
                              expertImbalance.getValue()));
  if (expertImbalance.getNumOccurrences() && expertParallel == 1 && !gpus)
    return fail("--expert-imbalance needs --ep (or --gpus): a GPU holding all "
                "its experts does the same work however tokens spread");
  if (expertParallel > 1 && tensorParallel > 1)
    return fail("--ep keeps every expert whole on its GPU: it runs with "
                "--tp 1, as the runtime does");
  if (tensorParallel > gpu->gpusPerNode)
    return fail("--tp " + llvm::Twine(tensorParallel.getValue()) +
                " exceeds the " + llvm::Twine(gpu->gpusPerNode) +
                " GPUs per node of --gpu " + gpuName +
                ": tensor parallelism across nodes is not modelled");
  if (longest && !svgDir.empty())
    return fail("--longest does not draw (--svg): plan one length for that");
  if (seqStep < 1)
    return fail("--seq-step must be >= 1");
  if (gpus.getNumOccurrences()) {
    if (gpus < 1)
      return fail("--gpus must be >= 1");
    if (topLayouts < 0)
      return fail("--top must be >= 0");
    if (globalBatch < 1)
      return fail("--gpus needs --global-batch: the sequences of one step "
                  "over all data-parallel replicas");
    if (microbatches.getNumOccurrences())
      return fail("--microbatches is set by each layout: --global-batch / "
                  "(data parallel x --micro-batch-size)");
    if (distributedOptimizer && optimizerShards.getNumOccurrences())
      return fail("--distributed-optimizer shards over each layout's data "
                  "parallel ranks: leave out --optimizer-shards");
  } else if (globalBatch.getNumOccurrences() || distributedOptimizer) {
    return fail("--global-batch and --distributed-optimizer need --gpus");
  }
  if (policy != "even" && policy != "flops")
    return fail("--policy=" + policy + " is not one of even, flops");
  int64_t m = microbatches ? microbatches.getValue() : 2 * stages;
  if (m < 1)
    return fail("--microbatches must be >= 1");
  SmallVector<int64_t> chunkCounts;
  for (StringRef item : llvm::split(chunkList, ',')) {
    int64_t n;
    if (item.trim().getAsInteger(10, n) || n < 1)
      return fail("--chunks: '" + item + "' is not a positive integer");
    chunkCounts.push_back(n);
  }
  SmallVector<bool> recomputes;
  for (StringRef item : llvm::split(recomputeList, ',')) {
    item = item.trim();
    if (item != "none" && item != "full")
      return fail("--recompute: '" + item + "' is not none or full");
    recomputes.push_back(item == "full");
  }
  SmallVector<schedule::ScheduleKind> kinds;
  for (StringRef item : llvm::split(scheduleList, ',')) {
    schedule::Result<schedule::ScheduleKind> kind =
        schedule::parseScheduleKind(item.trim().str());
    if (!kind)
      return fail("--schedules: " + kind.error);
    kinds.push_back(*kind);
  }

  // Opened first, so that a bad path fails before any work.
  std::optional<llvm::raw_fd_ostream> jsonFile;
  if (!jsonPath.empty()) {
    std::error_code ec;
    jsonFile.emplace(jsonPath, ec);
    if (ec)
      return fail("cannot write --json " + jsonPath + ": " + ec.message());
  }

  HFImportOptions importOptions{seqLen, microBatchSize, dtype};
  if (std::string problem = checkImportOptions(importOptions); !problem.empty())
    return fail(problem);
  configPath = configFilePath(configPath);
  auto file = llvm::MemoryBuffer::getFile(configPath, /*IsText=*/true);
  if (!file)
    return fail("cannot open --config " + configPath + ": " +
                file.getError().message());
  const std::string configText = (*file)->getBuffer().str();
  MLIRContext context;
  context.loadDialect<llm::LLMDialect, func::FuncDialect>();
  llvm::SourceMgr sourceMgr;
  sourceMgr.AddNewSourceBuffer(std::move(*file), llvm::SMLoc());
  SourceMgrDiagnosticHandler diagnostics(sourceMgr, &context);
  // Errors about options rather than the file carry no location.
  ScopedDiagnosticHandler optionErrors(&context, [](Diagnostic &diag) {
    if (!isa<UnknownLoc>(diag.getLocation()))
      return failure();
    llvm::errs() << "seq1f1b-plan: error: " << diag.str() << "\n";
    return success();
  });
  OwningOpRef<ModuleOp> module =
      importHFConfig(sourceMgr, &context, importOptions);
  if (!module)
    return 1;
  func::FuncOp model = *findModelFunction(*module);
  ModelShape shape = getModelShape(model);
  OpList ops = modelOps(model);

  if (!gpus && contextParallel > 1 && shape.seqLen % (2 * contextParallel))
    return fail(llvm::formatv("--cp {0} needs a sequence length divisible by "
                              "2 x cp (Megatron balances causal attention "
                              "over 2 x cp pieces); it is {1}",
                              contextParallel.getValue(), shape.seqLen));
  auto config = (*module)->getAttrOfType<DictionaryAttr>("llm.config");
  vocabulary = cast<IntegerAttr>(config.get("vocab")).getInt();
  // Megatron splits heads and the MLP across tensor-parallel ranks.
  for (StringRef key : {"heads", "kv_heads", "ffn"}) {
    int64_t value = cast<IntegerAttr>(config.get(key)).getInt();
    if (value % tensorParallel != 0)
      return fail("--tp " + llvm::Twine(tensorParallel.getValue()) +
                  " does not divide the model's " + key + " (" +
                  llvm::Twine(value) + ")");
  }

  if (expertParallel > 1) {
    const int64_t experts = expertCount(ops);
    if (!experts)
      return fail("--ep splits a mixture of experts, and " + configPath +
                  " has none");
    if (experts % expertParallel)
      return fail(llvm::formatv("--ep {0} does not divide the model's {1} "
                                "experts",
                                expertParallel.getValue(), experts));
  }
  if (longest) {
    // A learned position table bounds the sequence.
    int64_t positions = 0;
    (*module)->walk([&](llm::PositionEmbeddingOp op) {
      positions = cast<RankedTensorType>(op.getTable().getType()).getDimSize(0);
    });
    if (gpus)
      return planLongestLayouts(context, configText, importOptions, config,
                                countParameters(*module), positions, ops, *gpu,
                                *memoryBytes, kinds, chunkCounts, recomputes,
                                jsonFile);
    return planLongest(context, configText, importOptions, config,
                       countParameters(*module), positions, *gpu, *memoryBytes,
                       m, kinds, chunkCounts, recomputes, jsonFile);
  }
  if (gpus)
    return planLayouts(ops, shape, config, countParameters(*module), *gpu,
                       *memoryBytes, kinds, chunkCounts, recomputes, jsonFile);

  Planner planner{ops,
                  shape.seqLen,
                  *gpu,
                  stages,
                  tensorParallel,
                  contextParallel,
                  optimizerShards,
                  m,
                  trainingFlopsCost(ops, shape.seqLen),
                  {}};
  planner.ep = expertParallel;
  SmallVector<Row> rows;
  SmallVector<std::string> unmodelled; // kinds without recompute=full
  for (schedule::ScheduleKind kind : kinds) {
    int64_t v = schedule::isInterleaved(kind) ? virtualStages.getValue() : 1;
    FailureOr<SmallVector<unsigned>> bounds = partitionIntoStages(
        ops, shape.seqLen, stages * v, UnknownLoc::get(&context));
    if (failed(bounds))
      return 1;
    planner.stageBounds[kind] = *bounds;
    SmallVector<int64_t> counts = schedule::isSequenceChunked(kind)
                                      ? chunkCounts
                                      : SmallVector<int64_t>{1};
    for (bool recompute : recomputes) {
      // Not modelled: W would need the recomputed layer inputs kept.
      if (recompute && schedule::splitsBackward(kind)) {
        unmodelled.emplace_back(schedule::scheduleKindName(kind));
        continue;
      }
      for (int64_t n : counts) {
        schedule::Result<Row> row = planner.simulate(kind, n, recompute);
        if (!row)
          return fail(row.error);
        rows.push_back(std::move(*row));
      }
    }
  }
  if (rows.empty())
    return fail("--recompute full is not modelled for " +
                llvm::join(unmodelled, ", ") + ", and no other row is left");

  llvm::outs() << "model " << configPath << ": "
               << cast<StringAttr>(config.get("model_type")).getValue() << ", "
               << countParameters(*module) << " parameters, sequence "
               << shape.seqLen << " x micro-batch " << shape.batch << "\n"
               << "pipeline: P=" << stages << " M=" << m
               << " tp=" << tensorParallel
               << (contextParallel > 1
                       ? " cp=" + std::to_string(contextParallel)
                       : std::string())
               << (expertParallel > 1
                       ? " ep=" + std::to_string(expertParallel)
                       : std::string())
               << (optimizerShards > 1
                       ? " optimizer-shards=" + std::to_string(optimizerShards)
                       : std::string())
               << ", " << gpu->name << " with " << gpuMemory << ", chunk split "
               << policy << "\n\n";
  const bool recomputeColumn = llvm::is_contained(recomputes, true);
  llvm::outs() << "schedule              V   N  bubble  step ms   tokens/s  "
                  "peak GiB (max)  stage 0 GiB  free GiB  fits"
               << (recomputeColumn ? "  recompute" : "") << "\n";
  double tokens = double(m) * shape.batch * shape.seqLen;
  // The timelines share their time axis and memory scale.
  schedule::SvgOptions svg;
  svg.memoryLimit = *memoryBytes;
  for (const Row &row : rows) {
    svg.timeSpan = std::max(svg.timeSpan, row.result.makespan);
    svg.memoryScale = std::max(svg.memoryScale, double(row.peak()));
  }
  for (const Row &row : rows) {
    int64_t peak = row.peak();
    int64_t first = row.result.ranks.front().peakMemory.total();
    llvm::outs() << llvm::format(
        "%-20s %2lld %3lld %6.1f%% %8.1f %10.0f %15.2f %12.2f %9.2f  %-3s%s\n",
        row.kindName().c_str(), (long long)row.virtualStages,
        (long long)row.chunks, 100 * row.result.bubbleFraction,
        row.result.makespan * 1e3, tokens / row.result.makespan, gib(peak),
        gib(first), (*memoryBytes - peak) / double(1ull << 30),
        static_cast<const char *>(peak <= *memoryBytes ? "yes" : "OOM"),
        static_cast<const char *>(!recomputeColumn ? ""
                                  : row.recompute  ? "   full"
                                                   : "   none"));
    if (!svgDir.empty())
      if (llvm::Error e =
              writeSvg(row.kindName() + "-N" + std::to_string(row.chunks) +
                           (row.recompute ? "-recompute" : "") + ".svg",
                       schedule::timelineSvg(row.result, svg)))
        return fail(llvm::toString(std::move(e)));
  }
  if (!unmodelled.empty())
    llvm::outs() << "(recompute=full is not modelled for "
                 << llvm::join(unmodelled, ", ")
                 << ": their W passes would need the recomputed layer inputs "
                    "kept)\n";
  printVerdict(rows, *memoryBytes, tokens, planner);
  if (jsonFile) {
    llvm::json::Object header{
        {"config", configPath},
        {"model_type", cast<StringAttr>(config.get("model_type")).getValue()},
        {"parameters", countParameters(*module)},
        {"seq_len", shape.seqLen},
        {"micro_batch", shape.batch},
        {"stages", stages.getValue()},
        {"microbatches", m},
        {"tp", tensorParallel.getValue()},
        {"cp", contextParallel.getValue()},
        {"ep", expertParallel.getValue()},
        {"optimizer_shards", optimizerShards.getValue()},
        {"gpu", gpu->name},
        {"gpu_memory_bytes", *memoryBytes},
        {"policy", policy.getValue()}};
    *jsonFile << llvm::formatv(
        "{0:2}\n", tableJson(rows, *memoryBytes, tokens, std::move(header)));
  }
  return 0;
}
