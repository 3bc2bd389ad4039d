//===- seq1f1b-train.cpp - train a model graph on pipelined CPU ranks -----===//
//
// Runs the runtime graph the compiler exported (seq1f1b-translate
// --export-runtime-graph) with any schedule on P in-process ranks over a
// byte-level text corpus, printing the loss, the gradient norm and each
// rank's peak activation / KV memory per step. `--verify` also runs the
// single-rank full-sequence reference on the same batches and fails unless
// every step's loss and the first step's gradients agree (after the first
// AdamW step, rounding noise in near-zero gradients moves the two runs'
// parameters apart by up to a learning rate, so later gradients are not
// comparable element by element; later losses are).
//
//===----------------------------------------------------------------------===//
#include "seq1f1b/Schedule/Schedule.h"
#include "seq1f1b/runtime/cpu_kernels.h"
#include "seq1f1b/runtime/data.h"
#include "seq1f1b/runtime/graph_json.h"
#include "seq1f1b/runtime/pipeline.h"

#include <getopt.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

using namespace s1f::rt;
namespace sched = seq1f1b::schedule;

namespace {

const char *kUsage = R"(usage: seq1f1b-train --graph FILE --data FILE [options]

Trains a model graph (from seq1f1b-translate --export-runtime-graph) on a
byte-level text corpus with a pipeline schedule on in-process CPU ranks.

  --graph FILE          runtime graph JSON (vocabulary 256: bytes)
  --data FILE           text corpus
  --seq-len S           tokens per sequence (default 64)
  --batch B             sequences per micro-batch (default 1)
  --schedule K          gpipe | 1f1b | interleaved-1f1b | seq1f1b |
                        seq1f1b-interleaved | zb-h1 | seq1f1b-zb (default seq1f1b)
  --ranks P             pipeline ranks, one thread each (default 1)
  --virtual V           stages per rank for interleaved kinds (default 2)
  --chunks N            sequence chunks per micro-batch (default 1)
  --policy even|flops   chunk split (default flops)
  --microbatches M      micro-batches per step (default 1)
  --steps T             training steps (default 10)
  --lr X, --weight-decay X, --clip X    AdamW (defaults 1e-3, 0.01, 1.0)
  --seed X              parameter init and data order (default 0)
  --timeout-ms X        receive deadline (default 60000)
  --memory              print every rank's peak live bytes after the last step
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
  int seqLen = 64, batch = 1, ranks = 1, virtualStages = 2, chunks = 1;
  int microbatches = 1, steps = 10;
  double lr = 1e-3, weightDecay = 0.01, clip = 1.0, tolerance = 1e-5;
  uint64_t seed = 0;
  long timeoutMs = 60000;
  bool verify = false;
  bool memory = false;
};

[[noreturn]] void usageError(const std::string &message) {
  std::fprintf(stderr, "seq1f1b-train: error: %s\n(see --help)\n",
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

Args parseArgs(int argc, char **argv) {
  static const option options[] = {
      {"graph", required_argument, nullptr, 'g'},
      {"data", required_argument, nullptr, 'd'},
      {"seq-len", required_argument, nullptr, 's'},
      {"batch", required_argument, nullptr, 'b'},
      {"schedule", required_argument, nullptr, 'k'},
      {"ranks", required_argument, nullptr, 'p'},
      {"virtual", required_argument, nullptr, 'v'},
      {"chunks", required_argument, nullptr, 'n'},
      {"policy", required_argument, nullptr, 'o'},
      {"microbatches", required_argument, nullptr, 'm'},
      {"steps", required_argument, nullptr, 't'},
      {"lr", required_argument, nullptr, 'l'},
      {"weight-decay", required_argument, nullptr, 'w'},
      {"clip", required_argument, nullptr, 'c'},
      {"seed", required_argument, nullptr, 'r'},
      {"timeout-ms", required_argument, nullptr, 'x'},
      {"verify", no_argument, nullptr, 'V'},
      {"memory", no_argument, nullptr, 'M'},
      {"tolerance", required_argument, nullptr, 'T'},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0}};
  Args a;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "", options, nullptr)) != -1) {
    const char *name = optind > 0 && optind <= argc ? argv[optind - 1] : "";
    switch (c) {
    case 'g': a.graph = optarg; break;
    case 'd': a.data = optarg; break;
    case 's': a.seqLen = number<int>("seq-len", optarg); break;
    case 'b': a.batch = number<int>("batch", optarg); break;
    case 'k': a.schedule = optarg; break;
    case 'p': a.ranks = number<int>("ranks", optarg); break;
    case 'v': a.virtualStages = number<int>("virtual", optarg); break;
    case 'n': a.chunks = number<int>("chunks", optarg); break;
    case 'o': a.policy = optarg; break;
    case 'm': a.microbatches = number<int>("microbatches", optarg); break;
    case 't': a.steps = number<int>("steps", optarg); break;
    case 'l': a.lr = number<double>("lr", optarg); break;
    case 'w': a.weightDecay = number<double>("weight-decay", optarg); break;
    case 'c': a.clip = number<double>("clip", optarg); break;
    case 'r': a.seed = number<uint64_t>("seed", optarg); break;
    case 'x': a.timeoutMs = number<long>("timeout-ms", optarg); break;
    case 'V': a.verify = true; break;
    case 'M': a.memory = true; break;
    case 'T': a.tolerance = number<double>("tolerance", optarg); break;
    case 'h': std::fputs(kUsage, stdout); std::exit(0);
    default: usageError(std::string("unknown or incomplete option '") + name + "'");
    }
  }
  if (optind < argc)
    usageError(std::string("unexpected argument '") + argv[optind] + "'");
  if (a.graph.empty() || a.data.empty())
    usageError("--graph and --data are required");
  if (a.seqLen < 1 || a.batch < 1 || a.ranks < 1 || a.chunks < 1 ||
      a.microbatches < 1 || a.steps < 1 || a.timeoutMs < 1)
    usageError("--seq-len, --batch, --ranks, --chunks, --microbatches, "
               "--steps and --timeout-ms must be >= 1");
  if (a.policy != "even" && a.policy != "flops")
    usageError("--policy must be even or flops, got '" + a.policy + "'");
  return a;
}

PipelineOptions pipelineOptions(const Args &a, sched::ScheduleKind kind,
                                int ranks, int chunks) {
  PipelineOptions o;
  o.schedule.kind = kind;
  o.schedule.ranks = ranks;
  o.schedule.virtualStages = sched::isInterleaved(kind) ? a.virtualStages : 1;
  o.schedule.microbatches = a.microbatches;
  o.schedule.chunks = chunks;
  o.chunkPolicy = a.policy == "even" ? ChunkPolicy::Even : ChunkPolicy::Flops;
  o.optimizer.adamw.lr = a.lr;
  o.optimizer.adamw.weight_decay = a.weightDecay;
  o.optimizer.maxGradNorm = a.clip;
  o.recvTimeout = std::chrono::milliseconds(a.timeoutMs);
  o.seed = a.seed;
  return o;
}

/// Largest relative gradient difference over all parameters, each measured
/// against its largest reference entry but never against less than 1e-3 of
/// the largest gradient overall (gradients that are zero in exact arithmetic
/// carry only rounding noise).
double gradientDifference(const Pipeline &run, const Pipeline &reference,
                          std::string &worstParam) {
  double globalMax = 0;
  for (const ParamSpec &p : reference.graph().params)
    for (float g : reference.grad(p.name))
      globalMax = std::max(globalMax, double(std::fabs(g)));
  double worst = 0;
  for (const ParamSpec &p : reference.graph().params) {
    const std::vector<float> &g = run.grad(p.name), &r = reference.grad(p.name);
    double scale = 1e-3 * globalMax, diff = 0;
    for (size_t i = 0; i < r.size(); ++i) {
      scale = std::max(scale, double(std::fabs(r[i])));
      diff = std::max(diff, double(std::fabs(g[i] - r[i])));
    }
    if (scale > 0 && diff / scale > worst) {
      worst = diff / scale;
      worstParam = p.name;
    }
  }
  return worst;
}

int run(const Args &a) {
  sched::Result<sched::ScheduleKind> kind = sched::parseScheduleKind(a.schedule);
  if (!kind)
    usageError("--schedule: " + kind.error);
  int chunks = sched::isSequenceChunked(*kind) ? a.chunks : 1;
  if (chunks != a.chunks)
    std::fprintf(stderr, "seq1f1b-train: note: %s does not chunk sequences; "
                         "using 1 chunk\n", a.schedule.c_str());

  if (a.ranks > 1)
    cpu::set_gemm_threads(1);
  Graph graph = loadGraph(a.graph);
  for (const Op &op : graph.ops)
    if (op.kind == OpKind::Embedding &&
        graph.params[op.params[0]].shape[0] != kByteVocab)
      throw std::invalid_argument(
          a.graph + ": the embedding table has " +
          std::to_string(graph.params[op.params[0]].shape[0]) +
          " rows but the byte tokenizer needs " + std::to_string(kByteVocab));

  Pipeline pipeline(graph, pipelineOptions(a, *kind, a.ranks, chunks), a.seqLen);
  std::unique_ptr<Pipeline> reference;
  if (a.verify)
    reference = std::make_unique<Pipeline>(
        graph,
        pipelineOptions(a, sched::ScheduleKind::OneFOneB, 1, 1), a.seqLen);
  TextLoader loader(a.data, a.seqLen, a.batch, a.microbatches, a.seed);

  std::printf("%s: %zu params, %zu ops; %s P=%d N=%d M=%d, chunk bounds",
              a.graph.c_str(), graph.params.size(), graph.ops.size(),
              a.schedule.c_str(), a.ranks, chunks, a.microbatches);
  for (int b : pipeline.chunkBounds())
    std::printf(" %d", b);
  std::printf("\n");

  bool verified = true;
  std::vector<MemoryStats> lastMemory;
  for (int step = 1; step <= a.steps; ++step) {
    Batch batch = loader.next();
    auto start = std::chrono::steady_clock::now();
    StepResult result = pipeline.step(batch);
    double seconds = std::chrono::duration<double>(
                         std::chrono::steady_clock::now() - start).count();
    if (!result.ok) {
      std::fprintf(stderr, "seq1f1b-train: error: step %d failed: %s\n", step,
                   result.error.c_str());
      return 1;
    }
    lastMemory = result.memory;
    int64_t activations = 0, kv = 0;
    for (const MemoryStats &m : result.memory) {
      activations = std::max(activations, m.peakOf(MemKind::Activations));
      kv = std::max(kv, m.peakOf(MemKind::KvCache) + m.peakOf(MemKind::KvGrad));
    }
    std::printf("step %3d  loss %.6f  grad-norm %.4f  %8.0f tokens/s  "
                "peak activations %lld B, kv %lld B",
                step, result.loss(), result.gradNorm,
                batch.targetTokens() / seconds,
                static_cast<long long>(activations), static_cast<long long>(kv));
    if (reference) {
      StepResult ref = reference->step(batch);
      if (!ref.ok)
        throw std::runtime_error("reference step failed: " + ref.error);
      double lossDiff = std::fabs(result.loss() - ref.loss()) /
                        std::max(1e-12, std::fabs(ref.loss()));
      bool ok = lossDiff <= a.tolerance;
      std::printf("  | reference loss %.6f, diff %.1e", ref.loss(), lossDiff);
      if (step == 1) {
        std::string worstParam;
        double gradDiff = gradientDifference(pipeline, *reference, worstParam);
        ok = ok && gradDiff <= a.tolerance;
        std::printf(", gradients %.1e (worst: %s)", gradDiff,
                    worstParam.c_str());
      }
      std::printf(" %s", ok ? "ok" : "MISMATCH");
      verified = verified && ok;
    }
    std::printf("\n");
    std::fflush(stdout);
  }
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
  if (!verified) {
    std::fprintf(stderr, "seq1f1b-train: error: the pipelined run differs "
                         "from the single-rank reference by more than %g\n",
                 a.tolerance);
    return 1;
  }
  if (a.verify)
    std::printf("verified: every step's loss and the first step's gradients "
                "match the single-rank full-sequence run within %g\n",
                a.tolerance);
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  Args args = parseArgs(argc, argv);
  try {
    return run(args);
  } catch (const std::exception &e) {
    std::fprintf(stderr, "seq1f1b-train: error: %s\n", e.what());
    return 1;
  }
}
