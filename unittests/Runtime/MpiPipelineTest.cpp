//===- MpiPipelineTest.cpp - Pipelined runs over MPI processes ------------===//
//
// Run under mpirun, one process per rank (P = the number of processes):
//
//   mpirun -np 4 S1FRuntimeMpiTests              communicator + equivalence
//   mpirun -np 4 S1FRuntimeMpiTests --fault=hang rank 2 stops sending
//   mpirun -np 4 S1FRuntimeMpiTests --fault=exit rank 2 exits with status 3
//   mpirun -np 4 S1FRuntimeMpiTests --fault=kill rank 2 is killed (SIGKILL)
//
// Checks: the MPI tag layout; MpiCommunicator's matching by tag, size
// mismatch, deadline and all-reduce; and, for tiny GPT-2 and Llama with
// every kind (seq1f1b with N = 2, 4, even and flops chunks), M = 3, and
// with two data-parallel replicas (1f1b, seq1f1b): the loss and every
// gradient of the MPI run equal those of the
// single-rank in-process reference within 1e-5 relative (the helper of
// PipelineEquivalenceTest), and the losses of 3 AdamW steps agree. Every
// process checks the parameters it holds; together they must cover all.
// Exit status 0 on every process iff every check passed. The fault modes
// never succeed: the job must end non-zero (see check_mpi_failure.py).
//
//===----------------------------------------------------------------------===//

#include "PipelineTestUtil.h"

#include "seq1f1b/runtime/mpi_comm.h"

#include <mpi.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <thread>

namespace s1f::rt::test {
namespace {

namespace sched = seq1f1b::schedule;
using sched::ScheduleKind;
using namespace std::chrono_literals;

constexpr double kTol = 1e-5;
constexpr int kSteps = 3;
constexpr int kMicrobatches = 3;

int worldRank = 0;
int failures = 0;

#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      ++failures;                                                              \
      std::printf("rank %d: FAIL %s:%d: %s: ", worldRank, __FILE__, __LINE__,  \
                  #cond);                                                      \
      std::printf(__VA_ARGS__);                                                \
      std::printf("\n");                                                       \
      std::fflush(stdout);                                                     \
    }                                                                          \
  } while (0)

bool contains(const std::string &s, const std::string &part) {
  return s.find(part) != std::string::npos;
}

/// The message of the CommError that `f` throws ("" if none).
template <typename F> std::string commError(F &&f) {
  try {
    f();
  } catch (const CommError &e) {
    return e.what();
  }
  return "";
}

//===----------------------------------------------------------------------===//
// Tags and the communicator
//===----------------------------------------------------------------------===//

void checkTags() {
  const Tag tags[] = {{MsgKind::Activation, 0, 0, 0},
                      {MsgKind::Activation, 511, 2047, 127},
                      {MsgKind::Gradient, 3, 17, 5},
                      {MsgKind::ParamGrad, 12345, 0, 0},
                      {MsgKind::ReplicaGrad, 12345, 0, 0},
                      {MsgKind::NormSquare, 0, 0, 0},
                      {MsgKind::Loss, 1, 0, 0},
                      {MsgKind::Report, 2, 0, 0},
                      {MsgKind::TensorParallel, 4321, 0, 0},
                      {MsgKind::TensorParallelGrad, 4321, 0, 0},
                      {MsgKind::ContextParallel, 4321, 0, 0},
                      {MsgKind::ExpertParallel, 4321, 0, 0}};
  std::map<int, int> seen;
  for (const Tag &t : tags) {
    int v = encodeMpiTag(t);
    Tag back = decodeMpiTag(v);
    CHECK(v >= 0 && !(t < back) && !(back < t), "%s -> %d",
          t.describe().c_str(), v);
    CHECK(++seen[v] == 1, "tag %d is not unique", v);
  }
  const int largest = encodeMpiTag({MsgKind::Activation, 511, 2047, 127});
  CHECK(largest == 0x7ffffff0, "the largest unit tag is %#x", largest);
  // Out of range fields are errors naming the field.
  CHECK(contains(commError([] {
                   encodeMpiTag({MsgKind::Activation, 512, 0, 0});
                 }),
                 "stage 512 is outside [0, 511]"),
        "stage range");
  CHECK(contains(commError([] {
                   encodeMpiTag({MsgKind::Gradient, 0, 2048, 0});
                 }),
                 "micro-batch 2048 is outside [0, 2047]"),
        "micro-batch range");
  CHECK(contains(commError([] {
                   encodeMpiTag({MsgKind::Gradient, 0, 0, 128});
                 }),
                 "chunk 128 is outside [0, 127]"),
        "chunk range");
  CHECK(contains(commError([] {
                   encodeMpiTag({MsgKind::Gradient, 0, 0, -1});
                 }),
                 "chunk -1"),
        "negative chunk");
  CHECK(contains(commError([] {
                   encodeMpiTag({MsgKind::ParamGrad, 1, 1, 0});
                 }),
                 "must be 0"),
        "reduction tags carry no micro-batch");
  // Small runs fit the standard's minimum MPI_TAG_UB; large ones say so.
  CHECK(encodeMpiTag({MsgKind::Activation, 0, 7, 3}, 32767) > 0, "small tag");
  CHECK(contains(commError([] {
                   encodeMpiTag({MsgKind::Activation, 3, 0, 0}, 32767);
                 }),
                 "above this MPI's MPI_TAG_UB 32767"),
        "tag upper bound");
}

void checkCommunicator() {
  MpiCommunicator comm(300ms);
  const int r = comm.rank(), P = comm.size();
  // Every rank sends three tagged messages to the next; the next receives
  // them in the reverse order (matching is by tag, not arrival).
  const int next = (r + 1) % P, prev = (r + P - 1) % P;
  if (P > 1) {
    for (int c = 0; c < 3; ++c) {
      std::vector<int> data(c + 1, 100 * r + c);
      comm.send(next, Tag{MsgKind::Activation, 1, r, c}, data.data(),
                data.size() * sizeof(int));
    }
    for (int c = 2; c >= 0; --c) {
      std::vector<int> data(c + 1, -1);
      comm.recv(prev, Tag{MsgKind::Activation, 1, prev, c}, data.data(),
                data.size() * sizeof(int));
      CHECK(data == std::vector<int>(c + 1, 100 * prev + c),
            "message %d from rank %d", c, prev);
    }
  }
  double sum = allReduceSum(comm, r + 0.5, Tag{MsgKind::NormSquare});
  CHECK(sum == P * (P - 1) / 2.0 + 0.5 * P, "all-reduce gave %g", sum);
  std::vector<double> all =
      gatherToRoot(comm, {double(r), -1.0 * r}, Tag{MsgKind::Report});
  CHECK(all.size() == (r == 0 ? 2u * P : 0u), "gathered %zu", all.size());
  for (size_t i = 0; i < all.size(); ++i)
    CHECK(all[i] == (i % 2 ? -1.0 : 1.0) * double(i / 2), "gathered[%zu]", i);

  if (P > 1 && r < 2) {
    // A message of the wrong size is consumed and reported.
    const Tag t{MsgKind::Gradient, 0, 5, 1};
    if (r == 0) {
      double d[2] = {1, 2};
      comm.send(1, t, d, sizeof d);
    } else {
      float f = 0;
      std::string e = commError([&] { comm.recv(0, t, &f, sizeof f); });
      CHECK(contains(e, "rank 1: receive of the gradient for stage 0, "
                        "micro-batch 5, chunk 1 from rank 0: message has 16 "
                        "bytes, expected 4"),
            "size mismatch: '%s'", e.c_str());
    }
    // A message that never comes: the deadline, naming peer, unit and time.
    const int peer = 1 - r;
    auto start = std::chrono::steady_clock::now();
    float f = 0;
    std::string e = commError([&] {
      comm.recv(peer, Tag{MsgKind::Activation, 2, 7, 3}, &f, 4);
    });
    double waited =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    CHECK(contains(e, "rank " + std::to_string(r) +
                          ": receive of the activation for stage 2, "
                          "micro-batch 7, chunk 3 from rank " +
                          std::to_string(peer) + ": timed out after 0.3") &&
              contains(e, "rank " + std::to_string(peer) + " never sent it"),
          "timeout: '%s'", e.c_str());
    CHECK(waited >= 0.3 && waited < 2.0, "waited %.3f s", waited);
  }
  if (P > 1) {
    CHECK(
        contains(commError([&] { comm.send(r, Tag{MsgKind::Loss}, &sum, 8); }),
                 "invalid peer"),
        "send to self");
  }
  comm.flush();
  CHECK(comm.pendingSends() == 0, "%zu sends pending", comm.pendingSends());
  MPI_Barrier(MPI_COMM_WORLD);
}

//===----------------------------------------------------------------------===//
// Gradient equivalence
//===----------------------------------------------------------------------===//

/// P = 1, N = 1, in this process, over `M` micro-batches.
const Reference &reference(const ModelCase &m, int M) {
  std::string error;
  const Reference &ref = cachedReference(m, M, kSteps, error);
  CHECK(error.empty(), "reference: %s", error.c_str());
  return ref;
}

struct Case {
  ScheduleKind kind;
  int N;
  ChunkPolicy policy;
  int M = kMicrobatches; ///< per replica
  int D = 1;             ///< replicas: P = the processes / D
};

void checkEquivalence(const ModelCase &m, const Case &c, int processes,
                      double &worstOverall) {
  const int P = processes / c.D;
  const Reference &ref = reference(m, c.D * c.M);
  PipelineOptions o = options(c.kind, P, c.M, c.N, c.policy);
  o.dataParallel = c.D;
  o.recvTimeout = 30s;
  auto plan =
      std::make_shared<const PipelinePlan>(m.graph, o, static_cast<int>(m.seq));
  PipelineRank rank(plan, worldRank);
  MpiCommunicator comm(o.recvTimeout);
  const std::string name =
      m.name + " " + std::string(sched::scheduleKindName(c.kind)) +
      " P=" + std::to_string(P) + " N=" + std::to_string(c.N) +
      " M=" + std::to_string(c.M) +
      (c.D > 1 ? " D=" + std::to_string(c.D) : "") +
      (c.policy == ChunkPolicy::Even ? " even" : " flops");
  double worst = 0;
  const int failuresBefore = failures;
  std::vector<int> checked(m.graph.params.size(), 0);
  for (int step = 0; step < kSteps; ++step) {
    RankStepResult r = rank.step(makeBatch(m, c.D * c.M, 100 + step), comm);
    CHECK(r.ok, "%s: %s", name.c_str(), r.error.c_str()); // (abort ended it)
    double lossErr = std::fabs(r.loss() - ref.losses[step]) / ref.losses[step];
    CHECK(lossErr <= kTol, "%s step %d: loss %.9g vs %.9g", name.c_str(), step,
          r.loss(), ref.losses[step]);
    worst = std::max(worst, lossErr);
    if (step > 0)
      continue;
    for (size_t p = 0; p < m.graph.params.size(); ++p) {
      const std::string &pn = m.graph.params[p].name;
      if (!rank.holds(pn))
        continue;
      checked[p] = 1;
      double err =
          relError(rank.grad(pn), ref.grads.at(pn), 1e-3 * ref.largestGrad);
      CHECK(err <= kTol, "%s: gradient of %s: relative error %.3g",
            name.c_str(), pn.c_str(), err);
      worst = std::max(worst, err);
    }
  }
  // Together the ranks checked every parameter.
  MPI_Allreduce(MPI_IN_PLACE, checked.data(), static_cast<int>(checked.size()),
                MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  for (size_t p = 0; p < checked.size(); ++p)
    CHECK(checked[p] == 1, "%s: no rank holds %s", name.c_str(),
          m.graph.params[p].name.c_str());
  MPI_Allreduce(MPI_IN_PLACE, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  int failed = failures - failuresBefore;
  MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (worldRank == 0)
    std::printf("[ %-34s ] %s, worst relative error %.2e\n", name.c_str(),
                failed ? "MISMATCH" : "loss and every gradient match", worst);
  std::fflush(stdout);
  worstOverall = std::max(worstOverall, worst);
}

//===----------------------------------------------------------------------===//
// Faults on purpose
//===----------------------------------------------------------------------===//

/// Rank `who` stops before its third forward: "hang" sleeps (never sends
/// again), "exit" ends the process with status 3, "kill" sends itself
/// SIGKILL. The others must fail with a message, and the job must end
/// non-zero.
int runFault(const std::string &mode, int who,
             std::chrono::milliseconds timeout) {
  const ModelCase m = tinyGptCase();
  int P = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &P);
  PipelineOptions o =
      options(ScheduleKind::Seq1F1B, P, kMicrobatches, 2, ChunkPolicy::Even);
  o.recvTimeout = timeout;
  int forwards = 0;
  o.beforeAction = [&](int rank, const sched::Action &a) {
    if (rank != who || a.kind != sched::ActionKind::Forward || ++forwards != 3)
      return;
    std::printf("rank %d: injected fault '%s' before its third forward\n", rank,
                mode.c_str());
    std::fflush(stdout);
    if (mode == "exit")
      std::_Exit(3);
    if (mode == "kill")
      std::raise(SIGKILL);
    std::this_thread::sleep_for(60s);
  };
  auto plan =
      std::make_shared<const PipelinePlan>(m.graph, o, static_cast<int>(m.seq));
  PipelineRank rank(plan, worldRank);
  MpiCommunicator comm(o.recvTimeout);
  for (int step = 0; step < 3; ++step) {
    RankStepResult r = rank.step(makeBatch(m, kMicrobatches, 1 + step), comm);
    std::printf("rank %d: step %d %s\n", worldRank, step,
                r.ok ? "finished" : r.error.c_str());
  }
  return 0; // only reached if the fault did not fire
}

} // namespace
} // namespace s1f::rt::test

int main(int argc, char **argv) {
  using namespace s1f::rt;
  using namespace s1f::rt::test;
  MpiEnvironment env(argc, argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &worldRank);
  int P = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &P);

  std::string fault;
  int faultRank = 2;
  int timeoutMs = 1500;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--fault=", 0) == 0)
      fault = a.substr(8);
    else if (a.rfind("--fault-rank=", 0) == 0)
      faultRank = std::atoi(a.c_str() + 13);
    else if (a.rfind("--timeout-ms=", 0) == 0)
      timeoutMs = std::atoi(a.c_str() + 13);
    else {
      std::fprintf(stderr, "unknown argument '%s'\n", a.c_str());
      return 2;
    }
  }
  if (!fault.empty()) {
    if (fault != "hang" && fault != "exit" && fault != "kill") {
      std::fprintf(stderr, "--fault must be hang, exit or kill\n");
      return 2;
    }
    return runFault(fault, faultRank, std::chrono::milliseconds(timeoutMs));
  }

  const auto start = std::chrono::steady_clock::now();
  checkTags();
  checkCommunicator();
  double worst = 0;
  int cases = 0;
  // Every kind (interleaved-1f1b needs M divisible by P: M = 4).
  const Case grid[] = {
      {ScheduleKind::GPipe, 1, ChunkPolicy::Even},
      {ScheduleKind::OneFOneB, 1, ChunkPolicy::Even},
      {ScheduleKind::Interleaved1F1B, 1, ChunkPolicy::Even, 4},
      {ScheduleKind::ZBH1, 1, ChunkPolicy::Even},
      {ScheduleKind::Seq1F1BInterleaved, 4, ChunkPolicy::Flops},
      {ScheduleKind::Seq1F1B, 2, ChunkPolicy::Even},
      {ScheduleKind::Seq1F1B, 2, ChunkPolicy::Flops},
      {ScheduleKind::Seq1F1B, 4, ChunkPolicy::Even},
      {ScheduleKind::Seq1F1B, 4, ChunkPolicy::Flops},
      {ScheduleKind::Seq1F1BZB, 2, ChunkPolicy::Even},
      {ScheduleKind::Seq1F1BZB, 4, ChunkPolicy::Flops},
  };
  // Two replicas of a pipeline of half the processes.
  const Case replicated[] = {
      {ScheduleKind::OneFOneB, 1, ChunkPolicy::Even, 2, 2},
      {ScheduleKind::Seq1F1B, 2, ChunkPolicy::Flops, 2, 2},
  };
  for (const ModelCase &m : {tinyGptCase(), tinyLlamaCase()}) {
    for (const Case &c : grid) {
      checkEquivalence(m, c, P, worst);
      ++cases;
    }
    if (P % 2 == 0)
      for (const Case &c : replicated) {
        checkEquivalence(m, c, P, worst);
        ++cases;
      }
  }

  int total = failures;
  MPI_Allreduce(MPI_IN_PLACE, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (worldRank == 0)
    std::printf(
        "%s: %d processes, %d pipelined configurations x %d steps, "
        "worst relative error %.2e, %d failed checks, %.1f s\n",
        total ? "FAILED" : "PASSED", P, cases, kSteps, worst, total,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count());
  return total ? 1 : 0;
}
