//===- train.cpp - The trainer's command line: seq1f1b-train, compiled plans ===//
//
// Runs the runtime graph the compiler exported (seq1f1b-translate
// --export-runtime-graph) with any schedule on P in-process ranks over a
// byte-level text corpus, printing the loss, the gradient norm and each
// rank's peak activation / KV memory per step. `--verify` also runs the
// single-rank full-sequence reference on the same batches and fails unless
// every step's loss and the first step's gradients agree (after the first
// AdamW step, rounding noise in near-zero gradients moves the two runs'
// parameters apart by up to a learning rate, so later gradients are not
// comparable element by element; later losses are). With `--comm mpi` each
// process of an MPI job (mpirun -np P) runs one rank and rank 0 prints.
// A compiled training executable (s1f_rt_main) runs the same command line
// with its graph, schedule and chunks fixed and its rank programs native.
//
//===----------------------------------------------------------------------===//
#include "seq1f1b/Schedule/Csv.h"
#include "seq1f1b/Schedule/Schedule.h"
#include "seq1f1b/Schedule/Timeline.h"
#include "seq1f1b/runtime/cpu_kernels.h"
#include "seq1f1b/runtime/data.h"
#include "seq1f1b/runtime/graph_json.h"
#include "seq1f1b/runtime/hf_weights.h"
#include "seq1f1b/runtime/lr_schedule.h"
#include "seq1f1b/runtime/pipeline.h"
#include "seq1f1b/runtime/tensor_parallel.h"
#include "seq1f1b/runtime/train.h"
#ifdef SEQ1F1B_HAVE_MPI
#include "seq1f1b/runtime/mpi_comm.h"
#endif
#ifdef SEQ1F1B_HAVE_CUDA
#include "seq1f1b/runtime/cuda/kernels.h" // device_count
#include "seq1f1b/runtime/cuda/staged_kernels.h"
#endif

#include <getopt.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>

using namespace s1f::rt;
namespace sched = seq1f1b::schedule;

namespace {

/// The program's name in messages: seq1f1b-train, or a compiled
/// executable's.
const char *gProgram = "seq1f1b-train";

const char *kCompiledUsage = R"(usage: %s --data FILE [options]

A training executable compiled by seq1f1b-compile: the model (%s), its stage
cut, its %d rank programs, the chunk bounds and the micro-batch size are
built in; its other options are seq1f1b-train's:

)";

const char *kUsage = R"(usage: seq1f1b-train --graph FILE --data FILE [options]

Trains a model graph (from seq1f1b-translate --export-runtime-graph) on a
text corpus (a token per byte) or a tokenized one, with a pipeline schedule
on in-process CPU ranks.

  --graph FILE          runtime graph JSON
  --data FILE           text corpus, or token ids with --tokens
  --tokens FORMAT       bytes: one token per byte of a text file (default;
                        the graph's vocabulary must be 256) | u16 | u32: a
                        flat file of little-endian token ids (nanoGPT's
                        train.bin is u16), each below the vocabulary
  --seq-len S           tokens per sequence (default 64)
  --batch B             sequences per micro-batch (default 1)
  --schedule K          gpipe | 1f1b | interleaved-1f1b | seq1f1b |
                        seq1f1b-interleaved | zb-h1 | seq1f1b-zb (default seq1f1b)
  --schedule-csv FILE   run these rank programs instead (PyTorch's text format,
                        e.g. from seq1f1b-translate --export-schedule-csv);
                        P, V, M and N come from the file, which must verify
  --ranks P             pipeline ranks, one thread each (default 1)
  --dp D                data parallelism: D replicas of the pipeline, each on
                        M of the step's D x M micro-batches, their gradients
                        summed before the optimizer step (default 1)
  --tp T                tensor parallelism: each pipeline rank is T ranks
                        that split every layer's heads, MLP width and
                        vocabulary, as Megatron-LM does (default 1)
  --sp                  sequence parallelism (with --tp): the residual stream
                        and norms split by tokens over the T ranks too
  --cp C                context parallelism: C ranks share every chunk's
                        tokens, each running a contiguous part and gathering
                        the chunk's keys and values (default 1)
  --ep X                expert parallelism (with --dp, --tp 1): groups of X
                        replicas split each mixture of experts' experts,
                        sending every routed token to its expert's replica
                        and back (default 1)
  --comm inprocess|mpi  ranks as threads of this process (default), or one
                        MPI process per rank: mpirun -np P*C*T*D
                        seq1f1b-train --comm mpi ... (P = the processes /
                        (C*T*D); rank 0 prints)
  --kernels cpu|cuda    the kernels the ranks run: the CPU reference kernels
                        (default), or every kernel on the GPU in fp32 with
                        operands copied per call (a check of the CUDA
                        backend, not a fast path; with --verify, against the
                        CPU reference run)
  --virtual V           stages per rank for interleaved kinds (default 2)
  --chunks N            sequence chunks per micro-batch (default 1)
  --policy even|flops   chunk split (default flops)
  --recompute none|full full activation recomputation: every layer keeps
                        only its input and runs again before its backward
                        (default none; not with zb-h1 or seq1f1b-zb)
  --microbatches M      micro-batches per step and replica (default 1)
  --steps T             training steps (default 10)
  --lr X, --weight-decay X, --clip X    AdamW (defaults 1e-3, 0.01, 1.0)
  --moe-aux-loss C      a mixture of experts' load-balancing loss with
                        coefficient C, per layer and micro-batch, as
                        Megatron's --moe-aux-loss-coeff (default 0: none)
  --warmup N            linear learning-rate warmup over the first N steps
  --lr-decay KIND       constant (default) | linear | cosine: from --lr to
                        --min-lr (default 0), reached at step --decay-steps
                        (default the run's last step), as Megatron decays
  --seed X              parameter init and data order (default 0)
  --timeout-ms X        receive deadline (default 60000)
  --memory              print every rank's peak live bytes after the last step
  --timeline FILE       the last step as it ran, drawn as the planner draws a
                        plan (SVG: every rank's actions, and its live memory
                        over time: parameters and optimizer state, then
                        activations and KV buffers)
  --trace FILE          the same as a Chrome trace (JSON; open in Perfetto)
  --profile-out FILE    the measured time of every (micro-batch, chunk) of
                        every step but the first, summed over the stages, as
                        the samples s1f-split-sequence policy=profile
                        profile=FILE fits and balances (vary the chunk
                        lengths: a flops split)
  --save FILE           after the last step, the training state as a
                        safetensors file: every parameter by its graph name,
                        its AdamW moments (optimizer.m.NAME, optimizer.v.NAME),
                        the step and where the data order stands
  --load FILE           start from such a file: the steps go on from its step,
                        exactly as one longer run would (same graph, data,
                        shapes and seed)
  --init-from PATH      start from a Hugging Face checkpoint's weights
                        (model.safetensors, a sharded checkpoint's
                        model.safetensors.index.json, or their directory;
                        F32, BF16 or F16) instead of random ones, for the
                        graph imported from the same config.json; the
                        optimizer starts fresh
  --save-hf FILE        after the last step, the weights as a Hugging Face
                        model.safetensors (F32, Hugging Face's names and
                        layouts) for Llama-family, StarCoder2 and GPT-2
                        graphs
  --verify              compare with the single-rank full-sequence run:
                        every step's loss and step 1's gradients
  --tolerance X         relative tolerance of --verify (default 1e-5)

example:
  seq1f1b-translate --import-hf-config examples/gpt-tiny.json --seq-len 64 |
    seq1f1b-translate --export-runtime-graph > gpt-tiny.graph.json
  seq1f1b-train --graph gpt-tiny.graph.json --data examples/data/declaration.txt \
    --ranks 4 --chunks 4 --microbatches 4 --steps 20 --verify
)";

struct Args {
  std::string graph, data, schedule = "seq1f1b", policy = "flops";
  std::string comm = "inprocess";
  std::string kernels = "cpu";
  std::string recompute = "none";
  std::string scheduleCsv, timeline, trace, tokens = "bytes", save, load;
  std::string initFrom, saveHf, profileOut;
  bool ranksGiven = false;
  int seqLen = 64, batch = 1, ranks = 1, virtualStages = 2, chunks = 1;
  int microbatches = 1, steps = 10, dataParallel = 1, tensorParallel = 1;
  int contextParallel = 1;
  int expertParallel = 1;
  bool sequenceParallel = false;
  double lr = 1e-3, weightDecay = 0.01, clip = 1.0, tolerance = 1e-5;
  double moeAuxLoss = 0;
  double minLr = 0;
  long warmup = 0, decaySteps = 0;
  std::string lrDecay = "constant";
  uint64_t seed = 0;
  long timeoutMs = 60000;
  bool verify = false;
  bool memory = false;
};

/// A compiled executable's help: seq1f1b-train's options less those the
/// plan fixes (an option's entry runs to the next line starting "  --").
void printCompiledUsage(const CompiledPlan &plan) {
  std::printf(kCompiledUsage, gProgram, plan.model.c_str(),
              static_cast<int>(plan.programs.size()));
  const char *fixed[] = {"--graph ",     "--seq-len ",     "--batch ",
                         "--schedule ",  "--schedule-csv ", "--ranks ",
                         "--virtual ",   "--chunks ",      "--policy ",
                         "--microbatches "};
  std::istringstream text(std::strstr(kUsage, "  --graph"));
  bool shown = true;
  for (std::string line; std::getline(text, line);) {
    if (line.rfind("example:", 0) == 0)
      break;
    if (line.rfind("  --", 0) == 0) {
      shown = true;
      for (const char *f : fixed)
        shown = shown && line.rfind(std::string("  ") + f, 0) != 0;
    }
    if (shown)
      std::printf("%s\n", line.c_str());
  }
}

[[noreturn]] void usageError(const std::string &message) {
  std::fprintf(stderr, "%s: error: %s\n(see --help)\n", gProgram,
               message.c_str());
  std::exit(1);
}

/// Parses a whole argument as a number, or fails naming the option.
template <typename T> T number(const char *option, const char *text) {
  char *end = nullptr;
  errno = 0;
  double value = std::strtod(text, &end);
  if (errno || end == text || *end != '\0' || !std::isfinite(value))
    usageError(std::string("--") + option + " expects a number, got '" + text +
               "'");
  if (std::is_integral_v<T> && value != std::floor(value))
    usageError(std::string("--") + option + " expects an integer, got '" +
               text + "'");
  return static_cast<T>(value);
}

Args parseArgs(int argc, char **argv, const CompiledPlan *compiled) {
  static const option options[] = {
      {"graph", required_argument, nullptr, 'g'},
      {"data", required_argument, nullptr, 'd'},
      {"seq-len", required_argument, nullptr, 's'},
      {"batch", required_argument, nullptr, 'b'},
      {"schedule", required_argument, nullptr, 'k'},
      {"ranks", required_argument, nullptr, 'p'},
      {"dp", required_argument, nullptr, 'D'},
      {"tp", required_argument, nullptr, 'P'},
      {"cp", required_argument, nullptr, 'Q'},
      {"ep", required_argument, nullptr, 'J'},
      {"sp", no_argument, nullptr, 'q'},
      {"comm", required_argument, nullptr, 'C'},
      {"kernels", required_argument, nullptr, 'K'},
      {"schedule-csv", required_argument, nullptr, 'S'},
      {"virtual", required_argument, nullptr, 'v'},
      {"chunks", required_argument, nullptr, 'n'},
      {"policy", required_argument, nullptr, 'o'},
      {"recompute", required_argument, nullptr, 'R'},
      {"microbatches", required_argument, nullptr, 'm'},
      {"steps", required_argument, nullptr, 't'},
      {"lr", required_argument, nullptr, 'l'},
      {"warmup", required_argument, nullptr, 'u'},
      {"lr-decay", required_argument, nullptr, 'e'},
      {"min-lr", required_argument, nullptr, 'N'},
      {"decay-steps", required_argument, nullptr, 'X'},
      {"weight-decay", required_argument, nullptr, 'w'},
      {"clip", required_argument, nullptr, 'c'},
      {"moe-aux-loss", required_argument, nullptr, 'A'},
      {"seed", required_argument, nullptr, 'r'},
      {"timeout-ms", required_argument, nullptr, 'x'},
      {"verify", no_argument, nullptr, 'V'},
      {"memory", no_argument, nullptr, 'M'},
      {"timeline", required_argument, nullptr, 'L'},
      {"tokens", required_argument, nullptr, 'y'},
      {"save", required_argument, nullptr, 'Y'},
      {"load", required_argument, nullptr, 'Z'},
      {"init-from", required_argument, nullptr, 'I'},
      {"save-hf", required_argument, nullptr, 'H'},
      {"trace", required_argument, nullptr, 'E'},
      {"profile-out", required_argument, nullptr, 'F'},
      {"tolerance", required_argument, nullptr, 'T'},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0}};
  Args a;
  opterr = 0;
  int c;
  int index = -1;
  while ((c = getopt_long(argc, argv, "", options, &index)) != -1) {
    const char *name = optind > 0 && optind <= argc ? argv[optind - 1] : "";
    if (compiled && index >= 0 && std::strchr("gsbkSpvnom", c))
      usageError(std::string("--") + options[index].name +
                 " is fixed by the compiled plan");
    switch (c) {
    case 'g': a.graph = optarg; break;
    case 'd': a.data = optarg; break;
    case 's': a.seqLen = number<int>("seq-len", optarg); break;
    case 'b': a.batch = number<int>("batch", optarg); break;
    case 'k': a.schedule = optarg; break;
    case 'p': a.ranks = number<int>("ranks", optarg); a.ranksGiven = true; break;
    case 'D':
      a.dataParallel = number<int>("dp", optarg);
      break;
    case 'P':
      a.tensorParallel = number<int>("tp", optarg);
      break;
    case 'Q':
      a.contextParallel = number<int>("cp", optarg);
      break;
    case 'J':
      a.expertParallel = number<int>("ep", optarg);
      break;
    case 'q':
      a.sequenceParallel = true;
      break;
    case 'C': a.comm = optarg; break;
    case 'K': a.kernels = optarg; break;
    case 'S': a.scheduleCsv = optarg; break;
    case 'v': a.virtualStages = number<int>("virtual", optarg); break;
    case 'n': a.chunks = number<int>("chunks", optarg); break;
    case 'o': a.policy = optarg; break;
    case 'R':
      a.recompute = optarg;
      break;
    case 'm': a.microbatches = number<int>("microbatches", optarg); break;
    case 't': a.steps = number<int>("steps", optarg); break;
    case 'l': a.lr = number<double>("lr", optarg); break;
    case 'u':
      a.warmup = number<long>("warmup", optarg);
      break;
    case 'e':
      a.lrDecay = optarg;
      break;
    case 'N':
      a.minLr = number<double>("min-lr", optarg);
      break;
    case 'X':
      a.decaySteps = number<long>("decay-steps", optarg);
      break;
    case 'w': a.weightDecay = number<double>("weight-decay", optarg); break;
    case 'c': a.clip = number<double>("clip", optarg); break;
    case 'A': a.moeAuxLoss = number<double>("moe-aux-loss", optarg); break;
    case 'r': a.seed = number<uint64_t>("seed", optarg); break;
    case 'x': a.timeoutMs = number<long>("timeout-ms", optarg); break;
    case 'V': a.verify = true; break;
    case 'M': a.memory = true; break;
    case 'L':
      a.timeline = optarg;
      break;
    case 'y':
      a.tokens = optarg;
      break;
    case 'Y':
      a.save = optarg;
      break;
    case 'Z':
      a.load = optarg;
      break;
    case 'I':
      a.initFrom = optarg;
      break;
    case 'H':
      a.saveHf = optarg;
      break;
    case 'F':
      a.profileOut = optarg;
      break;
    case 'E':
      a.trace = optarg;
      break;
    case 'T': a.tolerance = number<double>("tolerance", optarg); break;
    case 'h':
      if (compiled)
        printCompiledUsage(*compiled);
      else
        std::fputs(kUsage, stdout);
      std::exit(0);
    default: usageError(std::string("unknown or incomplete option '") + name + "'");
    }
  }
  if (optind < argc)
    usageError(std::string("unexpected argument '") + argv[optind] + "'");
  if (compiled)
    a.graph = compiled->model;
  if (a.graph.empty() || a.data.empty())
    usageError(compiled ? "--data is required" : "--graph and --data are required");
  if (a.seqLen < 1 || a.batch < 1 || a.ranks < 1 || a.dataParallel < 1 ||
      a.tensorParallel < 1 || a.contextParallel < 1 ||
      a.expertParallel < 1 || a.chunks < 1 || a.microbatches < 1 ||
      a.steps < 1 || a.timeoutMs < 1)
    usageError("--seq-len, --batch, --ranks, --dp, --tp, --cp, --ep, "
               "--chunks, --microbatches, --steps and --timeout-ms must be "
               ">= 1");
  LrSchedule::Decay decay;
  if (!parseDecay(a.lrDecay, decay))
    usageError("--lr-decay must be constant, linear or cosine, got '" +
               a.lrDecay + "'");
  if (a.policy != "even" && a.policy != "flops")
    usageError("--policy must be even or flops, got '" + a.policy + "'");
  if (a.recompute != "none" && a.recompute != "full")
    usageError("--recompute must be none or full, got '" + a.recompute + "'");
  if (a.comm != "inprocess" && a.comm != "mpi")
    usageError("--comm must be inprocess or mpi, got '" + a.comm + "'");
  if (a.kernels != "cpu" && a.kernels != "cuda")
    usageError("--kernels must be cpu or cuda, got '" + a.kernels + "'");
  if (a.tokens != "bytes" && a.tokens != "u16" && a.tokens != "u32")
    usageError("--tokens must be bytes, u16 or u32, got '" + a.tokens + "'");
  if (a.comm == "mpi" &&
      (!a.timeline.empty() || !a.trace.empty() || !a.profileOut.empty()))
    usageError("--timeline, --trace and --profile-out need the ranks in this "
               "process (--comm inprocess)");
  if (!a.load.empty() && !a.initFrom.empty())
    usageError("--load and --init-from both set the weights: give one");
#ifdef SEQ1F1B_HAVE_CUDA
  if (a.kernels == "cuda" && s1f::rt::cuda::device_count() == 0)
    usageError("--kernels cuda: no CUDA device visible");
#else
  if (a.kernels == "cuda")
    usageError("--kernels cuda: this build has no CUDA backend (needs the "
               "CUDA toolkit at configure time; docs/cuda.md)");
#endif
#ifndef SEQ1F1B_HAVE_MPI
  if (a.comm == "mpi")
    usageError("--comm mpi: this build has no MPI (install libopenmpi-dev "
               "openmpi-bin and reconfigure)");
#endif
  return a;
}

constexpr const char *kCheckpointFormat = "seq1f1b-train state";

void writeText(const std::string &path, const std::string &text) {
  std::ofstream out(path);
  if (!(out << text) || !(out.flush()))
    throw std::runtime_error("cannot write " + path);
}

PipelineOptions pipelineOptions(const Args &a, sched::ScheduleKind kind,
                                int ranks, int chunks,
                                std::optional<sched::Schedule> programs = {},
                                const CompiledPlan *compiled = nullptr) {
  PipelineOptions o;
  if (compiled) {
    o.chunkBounds = compiled->chunkBounds;
    o.compiledPrograms = compiled->programs;
  }
  o.programs = std::move(programs);
  o.schedule.kind = kind;
  o.schedule.ranks = ranks;
  o.schedule.virtualStages = sched::isInterleaved(kind) ? a.virtualStages : 1;
  o.schedule.microbatches = a.microbatches;
  o.schedule.chunks = chunks;
  o.chunkPolicy = a.policy == "even" ? ChunkPolicy::Even : ChunkPolicy::Flops;
  o.optimizer.adamw.lr = a.lr;
  o.optimizer.adamw.weight_decay = a.weightDecay;
  o.optimizer.maxGradNorm = a.clip;
  o.moeAuxLoss = a.moeAuxLoss;
  o.recvTimeout = std::chrono::milliseconds(a.timeoutMs);
  o.seed = a.seed;
  o.recompute = a.recompute == "full";
  o.dataParallel = a.dataParallel;
  o.tensorParallel = a.tensorParallel;
  o.contextParallel = a.contextParallel;
  o.expertParallel = a.expertParallel;
  o.sequenceParallel = a.sequenceParallel;
#ifdef SEQ1F1B_HAVE_CUDA
  if (a.kernels == "cuda")
    o.kernels = &s1f::rt::cuda::stagedKernels();
#endif
  return o;
}

/// The pipelined run: every rank a thread of this process, or (--comm mpi)
/// this process's rank of an MPI job, where rank 0 prints.
class Run {
public:
  virtual ~Run() = default;
  virtual const PipelinePlan &plan() const = 0;
  virtual bool prints() const { return true; }
  /// A step of all ranks; `memory` has every rank where this process prints.
  virtual StepResult step(const Batch &batch) = 0;
  /// This process's gradient of a parameter and the same part of the
  /// whole `reference` gradient (its tensor-parallel rank's part under
  /// MPI); nullopt where this process holds none of it.
  using GradPair = std::pair<std::vector<float>, std::vector<float>>;
  virtual std::optional<GradPair>
  grad(const std::string &name, const std::vector<float> &reference) const = 0;
  /// The largest (difference, parameter index) over all processes.
  virtual std::pair<double, int> worst(std::pair<double, int> local) {
    return local;
  }
  /// Sets the ranks' parameters from whole tensors, and with
  /// `optimizerSteps` >= 0 their AdamW moments and step count too.
  virtual void setState(const TensorMap &state, int64_t optimizerSteps) = 0;
  /// The training state in whole tensors where this process prints (every
  /// process must call it: under MPI the ranks send theirs to rank 0).
  virtual TensorMap trainingState() = 0;
  virtual int64_t optimizerSteps() const = 0;
  /// The learning rate of the following steps.
  virtual void setLearningRate(double lr) = 0;
};

class InProcessRun : public Run {
public:
  InProcessRun(const Graph &graph, PipelineOptions options, int seqLen)
      : pipeline_(graph, std::move(options), seqLen) {}
  const PipelinePlan &plan() const override { return pipeline_.plan(); }
  StepResult step(const Batch &batch) override { return pipeline_.step(batch); }
  std::optional<GradPair>
  grad(const std::string &name,
       const std::vector<float> &reference) const override {
    return GradPair{pipeline_.grad(name), reference};
  }
  void setLearningRate(double lr) override { pipeline_.setLearningRate(lr); }
  void setState(const TensorMap &state, int64_t optimizerSteps) override {
    if (optimizerSteps < 0)
      pipeline_.setParams(state);
    else
      pipeline_.restore(state, optimizerSteps);
  }
  TensorMap trainingState() override { return pipeline_.trainingState(); }
  int64_t optimizerSteps() const override {
    return pipeline_.optimizerSteps();
  }

private:
  Pipeline pipeline_;
};

#ifdef SEQ1F1B_HAVE_MPI
class MpiRun : public Run {
public:
  MpiRun(const Graph &graph, const PipelineOptions &options, int seqLen,
         MpiCommunicator &comm)
      : comm_(comm),
        rank_(std::make_shared<const PipelinePlan>(graph, options, seqLen),
              comm.rank()) {}
  const PipelinePlan &plan() const override { return rank_.plan(); }
  bool prints() const override { return comm_.rank() == 0; }
  StepResult step(const Batch &batch) override {
    RankStepResult r = rank_.step(batch, comm_); // a failure ends the job
    StepResult result;
    result.ok = r.ok;
    result.error = r.error;
    result.lossSum = r.lossSum;
    result.tokens = r.tokens;
    result.gradNorm = r.gradNorm;
    result.auxLoss = r.auxLoss;
    result.expertLoad = r.expertLoad;
    std::vector<double> mine{double(r.memory.peakTotal)};
    for (int64_t peak : r.memory.peak)
      mine.push_back(double(peak));
    std::vector<double> all =
        gatherToRoot(comm_, mine, Tag{MsgKind::Report, 0, 0, 0});
    // Replica 0's first tensor-parallel ranks, as the in-process run
    // reports.
    const PipelinePlan &plan = rank_.plan();
    for (int r = 0; r < plan.ranks() && !all.empty(); ++r) {
      const size_t i = plan.worldRank(r, 0, 0) * mine.size();
      MemoryStats &m = result.memory.emplace_back();
      m.peakTotal = static_cast<int64_t>(all[i]);
      for (int k = 0; k < kNumMemKinds; ++k)
        m.peak[k] = static_cast<int64_t>(all[i + 1 + k]);
    }
    return result;
  }
  std::optional<GradPair>
  grad(const std::string &name,
       const std::vector<float> &reference) const override {
    if (!rank_.holds(name))
      return std::nullopt;
    const PipelinePlan &plan = rank_.plan();
    return GradPair{rank_.grad(name),
                    plan.partOf(plan.graph().paramIndex(name), reference,
                                rank_.tpRank(), rank_.replica())};
  }
  void setLearningRate(double lr) override { rank_.setLearningRate(lr); }
  void setState(const TensorMap &state, int64_t optimizerSteps) override {
    rank_.setState(state, optimizerSteps);
  }
  TensorMap trainingState() override {
    return rank_.gatherTrainingState(comm_);
  }
  int64_t optimizerSteps() const override {
    return rank_.executor().optimizerSteps();
  }
  std::pair<double, int> worst(std::pair<double, int> local) override {
    std::vector<double> all = gatherToRoot(
        comm_, {local.first, double(local.second)}, Tag{MsgKind::Report, 1, 0, 0});
    for (size_t i = 0; i < all.size(); i += 2)
      if (all[i] > local.first)
        local = {all[i], static_cast<int>(all[i + 1])};
    return local;
  }

private:
  MpiCommunicator &comm_;
  PipelineRank rank_;
};
#endif

/// Largest relative gradient difference over all parameters, each measured
/// against its largest reference entry but never against less than 1e-3 of
/// the largest gradient overall (gradients that are zero in exact arithmetic
/// carry only rounding noise). Under MPI each process compares the
/// parameters it holds and the printing rank gets the largest.
double gradientDifference(Run &run, const Pipeline &reference,
                          std::string &worstParam) {
  const std::vector<ParamSpec> &params = reference.graph().params;
  double globalMax = 0;
  for (const ParamSpec &p : params)
    for (float g : reference.grad(p.name))
      globalMax = std::max(globalMax, double(std::fabs(g)));
  std::pair<double, int> worst{0, -1};
  for (size_t i = 0; i < params.size(); ++i) {
    std::optional<Run::GradPair> both =
        run.grad(params[i].name, reference.grad(params[i].name));
    if (!both)
      continue;
    const auto &[g, r] = *both;
    double scale = 1e-3 * globalMax, diff = 0;
    for (size_t j = 0; j < r.size(); ++j) {
      scale = std::max(scale, double(std::fabs(r[j])));
      diff = std::max(diff, double(std::fabs(g[j] - r[j])));
    }
    if (scale > 0 && diff / scale > worst.first)
      worst = {diff / scale, static_cast<int>(i)};
  }
  worst = run.worst(worst);
  if (worst.second >= 0)
    worstParam = params[worst.second].name;
  return worst.first;
}

/// The measured time of every (micro-batch, chunk) of a step, summed over
/// its compute actions on every stage, as s1f-split-sequence's profile
/// samples: {"length": s, "end": e, "seconds": t}.
void addChunkSamples(const sched::SimulationResult &timeline,
                     const std::vector<int> &bounds,
                     std::vector<std::string> &samples) {
  std::map<std::pair<int, int>, double> seconds;
  for (const sched::TimelineEvent &e : timeline.events)
    seconds[{e.microbatch, e.chunk}] += e.end - e.start;
  for (const auto &[unit, t] : seconds) {
    const int c = unit.second;
    std::ostringstream sample;
    sample << "{\"length\": " << bounds[c + 1] - bounds[c]
           << ", \"end\": " << bounds[c + 1] << ", \"seconds\": " << t
           << "}";
    samples.push_back(sample.str());
  }
}

/// The rank programs of `path`, or an error naming the file.
sched::Schedule readScheduleCsv(const std::string &path) {
  std::ifstream in(path);
  if (!in)
    throw std::invalid_argument("cannot open --schedule-csv '" + path + "'");
  std::stringstream text;
  text << in.rdbuf();
  sched::Result<sched::Schedule> imported = sched::importCsv(text.str());
  if (!imported)
    throw std::invalid_argument(path + ": " + imported.error);
  return *imported;
}

int run(Args a, const CompiledPlan *compiled) {
  std::optional<sched::Schedule> programs;
  if (compiled) {
    sched::Result<sched::Schedule> imported =
        sched::importCsv(compiled->scheduleCsv);
    if (!imported)
      throw std::invalid_argument("the compiled plan's schedule: " +
                                  imported.error);
    programs = *imported;
    a.seqLen = compiled->chunkBounds.back();
    a.batch = compiled->microBatchSize;
  } else if (!a.scheduleCsv.empty()) {
    programs = readScheduleCsv(a.scheduleCsv);
  }
  if (programs) {
    const sched::ScheduleConfig &c = programs->config;
    a.schedule = compiled ? std::string("compiled")
                          : "custom (" + a.scheduleCsv + ")";
    a.ranks = c.ranks;
    a.ranksGiven = true;
    a.virtualStages = c.virtualStages;
    a.microbatches = c.microbatches;
    a.chunks = c.chunks;
  }
  sched::Result<sched::ScheduleKind> kind =
      programs ? sched::Result<sched::ScheduleKind>(sched::ScheduleKind::Custom)
               : sched::parseScheduleKind(a.schedule);
  if (!kind)
    usageError("--schedule: " + kind.error);
  int chunks = programs || sched::isSequenceChunked(*kind) ? a.chunks : 1;
  if (chunks != a.chunks)
    std::fprintf(stderr, "%s: note: %s does not chunk sequences; "
                         "using 1 chunk\n", gProgram, a.schedule.c_str());

  int ranks = a.ranks;
#ifdef SEQ1F1B_HAVE_MPI
  std::unique_ptr<MpiCommunicator> comm;
  if (a.comm == "mpi") {
    comm = std::make_unique<MpiCommunicator>(
        std::chrono::milliseconds(a.timeoutMs));
    const int copies = a.dataParallel * a.tensorParallel * a.contextParallel;
    if (comm->size() % copies ||
        (a.ranksGiven && a.ranks * copies != comm->size()))
      throw std::invalid_argument(
          "--ranks " + std::to_string(a.ranks) +
          (a.tensorParallel > 1 ? " x --tp " + std::to_string(a.tensorParallel)
                                : std::string()) +
          (a.contextParallel > 1
               ? " x --cp " + std::to_string(a.contextParallel)
               : std::string()) +
          (a.dataParallel > 1 ? " x --dp " + std::to_string(a.dataParallel)
                              : std::string()) +
          " but the MPI job has " + std::to_string(comm->size()) +
          " processes (--comm mpi runs one rank per process)");
    ranks = comm->size() / copies;
  }
#endif
  if (ranks > 1)
    cpu::set_gemm_threads(1);
  Graph graph =
      compiled ? graphFromJson(compiled->graphJson) : loadGraph(a.graph);
  if (!a.saveHf.empty())
    if (std::string problem = checkHfNames(graph); !problem.empty())
      throw std::invalid_argument("--save-hf: " + problem);
  const TokenFormat format = a.tokens == "u16"   ? TokenFormat::U16
                             : a.tokens == "u32" ? TokenFormat::U32
                                                 : TokenFormat::Bytes;
  TextLoader loader(a.data, a.seqLen, a.batch, a.microbatches * a.dataParallel,
                    a.seed, format);
  for (const Op &op : graph.ops) {
    if (op.kind != OpKind::Embedding)
      continue;
    const int64_t rows = graph.params[op.params[0]].shape[0];
    if (format == TokenFormat::Bytes && rows != kByteVocab)
      throw std::invalid_argument(
          a.graph + ": the embedding table has " + std::to_string(rows) +
          " rows but the byte tokenizer needs " + std::to_string(kByteVocab) +
          " (a tokenized file: --tokens u16|u32)");
    if (loader.maxToken() >= rows)
      throw std::invalid_argument(
          a.data + ": token " + std::to_string(loader.maxToken()) +
          " at position " + std::to_string(loader.maxTokenAt()) +
          " is beyond the " + std::to_string(rows) + " rows of " + a.graph +
          "'s embedding table");
  }

  std::unique_ptr<Run> pipeline;
#ifdef SEQ1F1B_HAVE_MPI
  if (comm)
    pipeline = std::make_unique<MpiRun>(
        graph, pipelineOptions(a, *kind, ranks, chunks, programs, compiled),
        a.seqLen,
        *comm);
#endif
  if (!pipeline)
    pipeline = std::make_unique<InProcessRun>(
        graph, pipelineOptions(a, *kind, ranks, chunks, programs, compiled),
        a.seqLen);
  const bool prints = pipeline->prints();
  if (prints && graph.resolvedForSeqLen &&
      graph.resolvedForSeqLen != a.seqLen)
    std::fprintf(stderr,
                 "%s: warning: %s was imported for %lld-token "
                 "sequences, and its LongRoPE factors, dynamic NTK theta or "
                 "sliding windows depend on that length; --seq-len %d trains "
                 "another model than transformers runs at %d tokens "
                 "(re-import with --seq-len %d)\n",
                 gProgram, a.graph.c_str(),
                 static_cast<long long>(graph.resolvedForSeqLen), a.seqLen,
                 a.seqLen, a.seqLen);
  std::unique_ptr<Pipeline> reference;
  if (a.verify) {
    Graph whole = graph; // one stage, whatever cut the compiler made
    whole.stages.clear();
    PipelineOptions o = pipelineOptions(a, sched::ScheduleKind::OneFOneB, 1, 1);
    o.kernels = nullptr; // the reference always runs the CPU kernels
    o.recompute = false; // and keeps its activations
    o.dataParallel = 1;  // and runs all replicas' micro-batches
    o.tensorParallel = 1; // with whole layers
    o.contextParallel = 1; // and whole chunks
    o.expertParallel = 1;  // and every expert
    o.sequenceParallel = false;
    o.schedule.microbatches = a.microbatches * a.dataParallel;
    reference = std::make_unique<Pipeline>(whole, o, a.seqLen);
  }

  if (prints) {
    std::printf("%s: %zu params, %zu ops; %s P=%d N=%d M=%d%s%s%s, chunk bounds",
                a.graph.c_str(), graph.params.size(), graph.ops.size(),
                a.schedule.c_str(), ranks, chunks, a.microbatches,
                a.tensorParallel > 1
                    ? (" T=" + std::to_string(a.tensorParallel) +
                       (a.sequenceParallel ? " (sequence parallel)" : ""))
                          .c_str()
                    : "",
                a.contextParallel > 1
                    ? (" C=" + std::to_string(a.contextParallel)).c_str()
                    : "",
                a.dataParallel > 1
                    ? (" D=" + std::to_string(a.dataParallel) +
                       (a.expertParallel > 1
                            ? " (experts over " +
                                  std::to_string(a.expertParallel) + ")"
                            : ""))
                          .c_str()
                    : "");
    for (int b : pipeline->plan().chunkBounds())
      std::printf(" %d", b);
    std::printf("\n");
  }

  // Pretrained weights; the reference, if any, starts from them too.
  if (!a.initFrom.empty()) {
    std::vector<std::string> ignored;
    const TensorMap params =
        graphParamsFromHf(readHfCheckpoint(a.initFrom), graph, &ignored);
    pipeline->setState(params, -1);
    if (reference)
      reference->setParams(params);
    if (prints) {
      std::printf("initialized %zu parameters from %s", params.size(),
                  a.initFrom.c_str());
      // A multimodal checkpoint's vision tower is hundreds of tensors.
      const size_t shown = std::min<size_t>(ignored.size(), 6);
      for (size_t i = 0; i < shown; ++i)
        std::printf("%s%s", i ? ", " : " (ignored: ", ignored[i].c_str());
      if (ignored.size() > shown)
        std::printf(" and %zu more", ignored.size() - shown);
      std::printf("%s\n", ignored.empty() ? "" : ")");
    }
  }

  // A saved run goes on where it stopped: parameters, AdamW moments and step
  // count, and the data order (the reference, if any, starts there too).
  int first = 1;
  long savedDecaySteps = 0; // the saved run's, to keep its schedule
  if (!a.load.empty()) {
    StringMap meta;
    const TensorMap state = readSafetensors(a.load, &meta);
    if (meta["format"] != kCheckpointFormat)
      throw std::invalid_argument(a.load + ": not a seq1f1b-train checkpoint "
                                           "(--save writes them)");
    auto integer = [&](const char *key) {
      auto it = meta.find(key);
      char *end = nullptr;
      const long long v =
          it == meta.end() ? -1 : std::strtoll(it->second.c_str(), &end, 10);
      if (it == meta.end() || *end != '\0' || v < 0)
        throw std::invalid_argument(a.load + ": its metadata has no valid '" +
                                    key + "'");
      return v;
    };
    pipeline->setState(state, integer("optimizer_steps"));
    if (reference)
      reference->restore(state, integer("optimizer_steps"));
    loader.seek(integer("data_epoch"), integer("data_position"));
    first = int(integer("step")) + 1;
    if (meta.count("lr_decay_steps"))
      savedDecaySteps = long(integer("lr_decay_steps"));
    if (prints)
      std::printf("resumed from %s after step %d\n", a.load.c_str(), first - 1);
  }

  // The learning rate of each step; the reference follows it too.
  LrSchedule lrs;
  lrs.peak = a.lr;
  lrs.min = a.minLr;
  lrs.warmup = a.warmup;
  lrs.decaySteps = a.decaySteps      ? a.decaySteps
                   : savedDecaySteps ? savedDecaySteps
                                     : first + a.steps - 1;
  parseDecay(a.lrDecay, lrs.decay);
  if (std::string problem = lrs.check(); !problem.empty())
    throw std::invalid_argument("--lr, --min-lr, --warmup, --decay-steps: " +
                                problem);
  const bool scheduled =
      lrs.warmup > 0 || lrs.decay != LrSchedule::Decay::Constant;

  bool verified = true;
  std::vector<MemoryStats> lastMemory;
  sched::SimulationResult lastTimeline;
  std::vector<std::string> profileSamples; // --profile-out's JSON objects
  for (int step = first; step < first + a.steps; ++step) {
    Batch batch = loader.next();
    pipeline->setLearningRate(lrs.at(step));
    if (reference)
      reference->setLearningRate(lrs.at(step));
    auto start = std::chrono::steady_clock::now();
    StepResult result = pipeline->step(batch);
    double seconds = std::chrono::duration<double>(
                         std::chrono::steady_clock::now() - start).count();
    if (!result.ok) {
      std::fprintf(stderr, "%s: error: step %d failed: %s\n", gProgram,
                   step, result.error.c_str());
      return 1;
    }
    lastMemory = result.memory;
    lastTimeline = std::move(result.timeline);
    // The first step's times include the buffers' first allocation.
    if (!a.profileOut.empty() && (step > first || a.steps == 1))
      addChunkSamples(lastTimeline, pipeline->plan().chunkBounds(),
                      profileSamples);
    int64_t activations = 0, kv = 0;
    for (const MemoryStats &m : result.memory) {
      activations = std::max(activations, m.peakOf(MemKind::Activations));
      kv = std::max(kv, m.peakOf(MemKind::KvCache) + m.peakOf(MemKind::KvGrad));
    }
    if (prints)
      std::printf("step %3d  loss %.6f  grad-norm %.4f  %8.0f tokens/s  "
                  "peak activations %lld B, kv %lld B",
                  step, result.loss(), result.gradNorm,
                  batch.targetTokens() / seconds,
                  static_cast<long long>(activations),
                  static_cast<long long>(kv));
    if (prints && a.moeAuxLoss > 0)
      std::printf("  aux-loss %.6f", result.auxLoss);
    if (prints && result.expertLoad > 0)
      std::printf("  expert-load %.2fx", result.expertLoad);
    if (prints && scheduled)
      std::printf("  lr %.6e", lrs.at(step));
    if (reference) {
      StepResult ref = reference->step(batch);
      if (!ref.ok)
        throw std::runtime_error("reference step failed: " + ref.error);
      double lossDiff = std::fabs(result.loss() - ref.loss()) /
                        std::max(1e-12, std::fabs(ref.loss()));
      bool ok = lossDiff <= a.tolerance;
      if (prints)
        std::printf("  | reference loss %.6f, diff %.1e", ref.loss(),
                    lossDiff);
      if (step == 1) {
        std::string worstParam;
        double gradDiff = gradientDifference(*pipeline, *reference, worstParam);
        ok = ok && gradDiff <= a.tolerance;
        if (prints)
          std::printf(", gradients %.1e (worst: %s)", gradDiff,
                      worstParam.c_str());
      }
      if (prints)
        std::printf(" %s", ok ? "ok" : "MISMATCH");
      verified = verified && ok;
    }
    if (prints)
      std::printf("\n");
    std::fflush(stdout);
  }
  // Checkpoints: every process sends its parameters to the printing one.
  TensorMap state;
  if (!a.save.empty() || !a.saveHf.empty())
    state = pipeline->trainingState();
  if (!prints) // only the printing rank decides (it has every gradient check)
    return 0;
  if (a.memory) {
    std::printf("rank  peak bytes  activations  kv-cache  kv-grad  (peaks of "
                "the last step; the first column is the peak of the sum)\n");
    for (size_t r = 0; r < lastMemory.size(); ++r) {
      const MemoryStats &m = lastMemory[r];
      std::printf("%-4zu %11lld %12lld %9lld %8lld\n", r,
                  static_cast<long long>(m.peakTotal),
                  static_cast<long long>(m.peakOf(MemKind::Activations)),
                  static_cast<long long>(m.peakOf(MemKind::KvCache)),
                  static_cast<long long>(m.peakOf(MemKind::KvGrad)));
    }
  }
  if (!a.timeline.empty()) {
    char title[256];
    std::snprintf(title, sizeof title,
                  "measured %s   P=%d M=%d N=%d   bubble %.1f%%   (last step, "
                  "%s kernels)",
                  a.schedule.c_str(), ranks, a.microbatches, chunks,
                  100 * lastTimeline.bubbleFraction, a.kernels.c_str());
    writeText(a.timeline, sched::timelineSvg(lastTimeline, {title}));
  }
  if (!a.trace.empty())
    writeText(a.trace, sched::chromeTraceJson(lastTimeline));
  if (!a.profileOut.empty()) {
    std::string samples;
    for (const std::string &s : profileSamples)
      samples += (samples.empty() ? "\n    " : ",\n    ") + s;
    writeText(a.profileOut,
              "{\n  \"what\": \"" + a.graph +
                  ": seconds of each chunk's forward and backward over all "
                  "stages, every step but the first (seq1f1b-train "
                  "--profile-out)\",\n  \"samples\": [" +
                  samples + "\n  ]\n}\n");
  }
  if (!a.save.empty()) {
    writeSafetensors(a.save, state,
                     {{"format", kCheckpointFormat},
                      {"graph", a.graph},
                      {"step", std::to_string(first + a.steps - 1)},
                      {"optimizer_steps",
                       std::to_string(pipeline->optimizerSteps())},
                      {"data_epoch", std::to_string(loader.epoch())},
                      {"data_position", std::to_string(loader.position())},
                      {"lr_decay_steps", std::to_string(lrs.decaySteps)}});
    std::printf("saved %s after step %d\n", a.save.c_str(),
                first + a.steps - 1);
  }
  if (!a.saveHf.empty()) {
    TensorMap params;
    for (const ParamSpec &p : graph.params)
      params[p.name] = std::move(state.at(p.name));
    writeSafetensors(a.saveHf, hfFromGraphParams(params, graph),
                     {{"format", "pt"}});
    std::printf("saved the weights as Hugging Face's to %s\n",
                a.saveHf.c_str());
  }
  if (!verified) {
    std::fprintf(stderr, "%s: error: the pipelined run differs "
                         "from the single-rank reference by more than %g\n",
                 gProgram, a.tolerance);
    return 1;
  }
  if (a.verify)
    std::printf("verified: every step's loss and the first step's gradients "
                "match the single-rank full-sequence run within %g\n",
                a.tolerance);
  return 0;
}

} // namespace

int s1f::rt::trainMain(int argc, char **argv, const CompiledPlan *compiled) {
  if (compiled && argc > 0) {
    const char *slash = std::strrchr(argv[0], '/');
    gProgram = slash ? slash + 1 : argv[0];
  }
  Args args = parseArgs(argc, argv, compiled);
#ifdef SEQ1F1B_HAVE_MPI
  std::optional<MpiEnvironment> mpi;
  if (args.comm == "mpi")
    mpi.emplace(argc, argv);
#endif
  try {
    return run(args, compiled);
  } catch (const std::exception &e) {
#ifdef SEQ1F1B_HAVE_MPI
    if (mpi) // the other processes may be waiting for this one
      MpiEnvironment::abort(std::string(gProgram) + ": error: " + e.what());
#endif
    std::fprintf(stderr, "%s: error: %s\n", gProgram, e.what());
    return 1;
  }
}
