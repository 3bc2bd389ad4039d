//===- pipeline.cpp - Plan, placement, one rank's step, threaded steps ----===//

#include "seq1f1b/runtime/pipeline.h"

#include "seq1f1b/Schedule/Verify.h"
#include "seq1f1b/runtime/inprocess_comm.h"
#include "seq1f1b/runtime/tensor_parallel.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <thread>

namespace s1f::rt {

namespace sched = seq1f1b::schedule;

namespace {

/// The ranks' measured actions in the simulator's result type, so that the
/// same pictures and traces show a run as they show a plan.
sched::SimulationResult
measuredTimeline(const sched::ScheduleConfig &config,
                 const std::vector<RankStepResult> &ranks) {
  sched::SimulationResult t;
  t.config = config;
  t.hasMemory = true;
  for (const RankStepResult &r : ranks)
    for (const sched::TimelineEvent &e : r.events)
      t.makespan = std::max(t.makespan, e.end);
  double busyTotal = 0;
  for (const RankStepResult &r : ranks) {
    sched::RankStats &st = t.ranks.emplace_back();
    for (sched::TimelineEvent e : r.events) {
      st.busySeconds += e.end - e.start;
      // The tracker counts activations and KV buffers; the parameters and
      // optimizer state are there all along.
      e.liveDuring += r.staticBytes;
      e.liveAfter += r.staticBytes;
      t.events.push_back(e);
    }
    st.bubbleFraction = t.makespan > 0 ? 1 - st.busySeconds / t.makespan : 0;
    st.staticBytes = r.staticBytes;
    st.peakMemory.weights = r.staticBytes;
    st.peakMemory.activations = r.memory.peakTotal;
    busyTotal += st.busySeconds;
  }
  t.bubbleFraction =
      t.makespan > 0 ? 1 - busyTotal / (double(ranks.size()) * t.makespan) : 0;
  return t;
}

/// Expert parallelism: every moe op's stacked expert weights split into
/// blocks of whole experts, one per expert-parallel rank.
void splitExperts(Graph &g, const PipelineOptions &o) {
  const int X = o.expertParallel;
  if (X < 1)
    throw std::invalid_argument("expert parallelism must be >= 1, got " +
                                std::to_string(X));
  if (X == 1)
    return;
  if (o.dataParallel % X)
    throw std::invalid_argument(
        "expert parallelism (" + std::to_string(X) +
        ") must divide the data-parallel replicas (" +
        std::to_string(o.dataParallel) + "): its ranks are replicas");
  if (o.tensorParallel > 1)
    throw std::invalid_argument(
        "expert parallelism keeps every expert whole on its rank: it runs "
        "with tensor parallelism 1, got " + std::to_string(o.tensorParallel));
  bool any = false;
  for (size_t i = 0; i < g.ops.size(); ++i) {
    const Op &op = g.ops[i];
    if (op.kind != OpKind::Moe)
      continue;
    any = true;
    const int64_t E = g.params[op.params[0]].shape[0];
    if (E % X)
      throw std::invalid_argument(
          "op " + std::to_string(i) + " (moe): its " + std::to_string(E) +
          " experts do not split over " + std::to_string(X) +
          " expert-parallel ranks");
    for (int k = 1; k <= 3; ++k) {
      ParamSpec &spec = g.params[op.params[k]];
      if (spec.epParts == 1) {
        spec.epParts = X;
        spec.shape[0] /= X;
      }
    }
  }
  if (!any)
    throw std::invalid_argument(
        "expert parallelism needs a mixture of experts, and the graph has none");
}

} // namespace

//===----------------------------------------------------------------------===//
// PipelinePlan
//===----------------------------------------------------------------------===//

PipelinePlan::PipelinePlan(Graph graph, PipelineOptions options, int seqLen)
    : whole_(std::move(graph)), options_(std::move(options)) {
  whole_.validate();
  if (options_.programs) {
    options_.schedule = options_.programs->config;
    schedule_ = *options_.programs;
    bool hasComm = false;
    for (const auto &program : schedule_.ranks)
      for (const sched::Action &a : program)
        hasComm |= sched::isComm(a.kind);
    if (!hasComm) {
      sched::Result<sched::Schedule> withComm = sched::addCommunication(schedule_);
      if (!withComm)
        throw std::invalid_argument("schedule: " + withComm.error);
      schedule_ = *withComm;
    }
    std::vector<sched::Diagnostic> problems = sched::verifySchedule(schedule_);
    if (!problems.empty())
      throw std::invalid_argument("schedule does not verify:\n" +
                                  sched::formatDiagnostics(problems));
  } else {
    sched::Result<sched::Schedule> compute =
        sched::generateSchedule(options_.schedule);
    if (!compute)
      throw std::invalid_argument("schedule: " + compute.error);
    sched::Result<sched::Schedule> withComm = sched::addCommunication(*compute);
    if (!withComm)
      throw std::invalid_argument("schedule: " + withComm.error);
    schedule_ = *withComm;
  }
  const sched::ScheduleConfig &c = options_.schedule;
  if (options_.dataParallel < 1)
    throw std::invalid_argument("data parallelism must be >= 1, got " +
                                std::to_string(options_.dataParallel));
  if (options_.tensorParallel < 1 || options_.contextParallel < 1)
    throw std::invalid_argument(
        "tensor and context parallelism must be >= 1, got " +
        std::to_string(options_.tensorParallel) + " and " +
        std::to_string(options_.contextParallel));
  if (options_.recompute && sched::splitsBackward(c.kind))
    throw std::invalid_argument(
        "recomputation does not combine with " +
        std::string(sched::scheduleKindName(c.kind)) +
        ": its W passes would need every recomputed input kept");
  // Stages and chunks are those of the whole graph; the tensor-parallel
  // graph keeps its stage cut.
  if (whole_.stages.empty()) {
    for (const StageSpec &s : cutStages(whole_, c.numStages(), seqLen))
      whole_.stages.push_back(s.opBegin);
    whole_.stages.push_back(static_cast<int>(whole_.ops.size()));
  } else if (static_cast<int>(whole_.stages.size()) != c.numStages() + 1) {
    throw std::invalid_argument(
        "the graph is cut into " + std::to_string(whole_.stages.size() - 1) +
        " stages but the schedule has " + std::to_string(c.numStages()) +
        " (P x V)");
  }
  if (options_.sequenceParallel && options_.tensorParallel < 2)
    throw std::invalid_argument(
        "sequence parallelism splits tokens over tensor-parallel ranks: it "
        "needs tensor parallelism of 2 or more");
  graph_ = shardTensorParallel(whole_, options_.tensorParallel,
                               options_.sequenceParallel);
  splitExperts(graph_, options_);
  if (!(options_.moeAuxLoss >= 0 && std::isfinite(options_.moeAuxLoss)))
    throw std::invalid_argument(
        "the load-balancing loss coefficient must be a finite number >= 0, "
        "got " + std::to_string(options_.moeAuxLoss));
  if (options_.moeAuxLoss > 0 &&
      std::none_of(graph_.ops.begin(), graph_.ops.end(),
                   [](const Op &op) { return op.kind == OpKind::Moe; }))
    throw std::invalid_argument("a load-balancing loss needs a mixture of "
                                "experts, and the graph has none");
  for (Graph *g : {&whole_, &graph_})
    for (Op &op : g->ops)
      if (op.kind == OpKind::Moe && options_.moeAuxLoss > 0)
        op.auxLoss = options_.moeAuxLoss;
  stages_ = stagesAt(graph_, graph_.stages);
  if (options_.chunkBounds.empty()) {
    bounds_ =
        s1f::rt::chunkBounds(whole_, seqLen, c.chunks, options_.chunkPolicy);
  } else {
    bounds_ = options_.chunkBounds;
    bool increasing = true;
    for (size_t k = 0; k + 1 < bounds_.size(); ++k)
      increasing = increasing && bounds_[k] < bounds_[k + 1];
    if (static_cast<int>(bounds_.size()) != c.chunks + 1 || !increasing ||
        bounds_.front() != 0 || bounds_.back() != seqLen)
      throw std::invalid_argument(
          "the chunk bounds must be " + std::to_string(c.chunks + 1) +
          " increasing positions from 0 to the sequence length " +
          std::to_string(seqLen));
  }
  if (!options_.compiledPrograms.empty() &&
      static_cast<int>(options_.compiledPrograms.size()) != c.ranks)
    throw std::invalid_argument(
        std::to_string(options_.compiledPrograms.size()) +
        " compiled programs for " + std::to_string(c.ranks) + " ranks");
  const int sharing = options_.contextParallel *
                      (options_.sequenceParallel ? options_.tensorParallel : 1);
  for (size_t k = 0; k + 1 < bounds_.size(); ++k)
    if (bounds_[k + 1] - bounds_[k] < sharing)
      throw std::invalid_argument(
          "chunk " + std::to_string(k) + " has " +
          std::to_string(bounds_[k + 1] - bounds_[k]) + " tokens, fewer than "
          "the " + std::to_string(sharing) +
          (options_.sequenceParallel ? " context- and sequence-parallel"
                                     : " context-parallel") +
          " ranks that share it");

  holders_.assign(graph_.params.size(), {});
  for (int r = 0; r < c.ranks; ++r)
    for (int s = 0; s < c.numStages(); ++s)
      if (c.rankOfStage(s) == r)
        for (int p : stages_[s].params)
          if (holders_[p].empty() || holders_[p].back() != r)
            holders_[p].push_back(r);
}

std::vector<float> PipelinePlan::partOf(int p, const std::vector<float> &whole,
                                        int t, int d) const {
  const ParamSpec &spec = graph_.params[p];
  if (spec.epParts == 1)
    return shardOf(spec, whole, t, tensorParallel());
  const size_t n = spec.numel(), q = d % expertParallel();
  return std::vector<float>(whole.begin() + q * n, whole.begin() + (q + 1) * n);
}

std::vector<float>
PipelinePlan::join(int p, const std::vector<std::vector<float>> &parts) const {
  const ParamSpec &spec = graph_.params[p];
  if (spec.epParts == 1)
    return unshard(spec, parts);
  std::vector<float> whole;
  for (const std::vector<float> &part : parts)
    whole.insert(whole.end(), part.begin(), part.end());
  return whole;
}

std::string PipelinePlan::checkBatch(const Batch &batch) const {
  const int expected = options_.schedule.microbatches * replicas();
  if (batch.microbatches() == expected && batch.seq == bounds_.back())
    return "";
  return "batch has " + std::to_string(batch.microbatches()) +
         " micro-batches of " + std::to_string(batch.seq) +
         " tokens; the plan expects " + std::to_string(expected) + " of " +
         std::to_string(bounds_.back()) +
         (replicas() > 1
              ? " (" + std::to_string(replicas()) + " replicas x " +
                    std::to_string(options_.schedule.microbatches) + ")"
              : "");
}

//===----------------------------------------------------------------------===//
// PipelineRank
//===----------------------------------------------------------------------===//

PipelineRank::PipelineRank(std::shared_ptr<const PipelinePlan> plan,
                           int worldRank)
    : PipelineRank(plan, worldRank,
                   initParams(plan->wholeGraph(), plan->options().seed)) {}

PipelineRank::PipelineRank(std::shared_ptr<const PipelinePlan> plan,
                           int worldRank,
                           const std::vector<std::vector<float>> &initialParams)
    : plan_(std::move(plan)),
      rank_(worldRank / plan_->tensorParallel() / plan_->contextParallel() %
            plan_->ranks()),
      tpRank_(worldRank % plan_->tensorParallel()),
      cpRank_(worldRank / plan_->tensorParallel() % plan_->contextParallel()),
      replica_(worldRank / plan_->tensorParallel() /
               plan_->contextParallel() / plan_->ranks()),
      lr_(plan_->options().optimizer.adamw.lr) {
  if (worldRank < 0 || worldRank >= plan_->worldSize())
    throw std::invalid_argument("rank " + std::to_string(worldRank) +
                                " does not exist: the plan has " +
                                std::to_string(plan_->worldSize()) + " ranks");
  const Graph &g = plan_->graph();
  std::vector<std::vector<float>> mine(g.params.size());
  for (size_t p = 0; p < g.params.size(); ++p) {
    const std::vector<int> &h = plan_->holders()[p];
    if (std::find(h.begin(), h.end(), rank_) != h.end())
      mine[p] = plan_->partOf(int(p), initialParams.at(p), tpRank_, replica_);
  }
  const KernelSet *kernels = plan_->options().kernels;
  exec_ = std::make_unique<RankExecutor>(
      g, plan_->stages(), plan_->schedule(), rank_, mine, plan_->holders(),
      kernels ? *kernels : cpuKernels(), plan_->options().recompute);
  if (!plan_->options().compiledPrograms.empty())
    exec_->setProgram(plan_->options().compiledPrograms[rank_]);
}

RankStepResult
PipelineRank::step(const Batch &batch, Communicator &comm,
                   std::chrono::steady_clock::time_point origin) {
  const PipelineOptions &o = plan_->options();
  RankStepResult result;
  try {
    const int P = plan_->ranks(), T = plan_->tensorParallel(),
              C = plan_->contextParallel();
    if (comm.size() != plan_->worldSize() || comm.rank() != worldRank())
      throw std::invalid_argument(
          "the communicator is rank " + std::to_string(comm.rank()) + " of " +
          std::to_string(comm.size()) + "; the plan needs rank " +
          std::to_string(worldRank()) + " of " +
          std::to_string(plan_->worldSize()));
    std::string bad = plan_->checkBatch(batch);
    if (!bad.empty())
      throw std::invalid_argument(bad);
    // This replica's pipeline; the ranks whose gradients this one's add to
    // (its peers in the other replicas and context-parallel ranks; for
    // expert weights those holding the same experts); its tensor-,
    // context- and expert-parallel groups.
    const int X = plan_->expertParallel();
    std::vector<int> pipeline, peers, expertPeers, tpGroup, cpGroup, epGroup;
    for (int r = 0; r < P; ++r)
      pipeline.push_back(plan_->worldRank(r, tpRank_, replica_, cpRank_));
    for (int d = 0; d < plan_->replicas(); ++d)
      for (int c = 0; c < C; ++c) {
        peers.push_back(plan_->worldRank(rank_, tpRank_, d, c));
        if (d % X == epRank())
          expertPeers.push_back(peers.back());
      }
    for (int t = 0; t < T; ++t)
      tpGroup.push_back(plan_->worldRank(rank_, t, replica_, cpRank_));
    for (int c = 0; c < C; ++c)
      cpGroup.push_back(plan_->worldRank(rank_, tpRank_, replica_, c));
    for (int q = 0; q < X; ++q)
      epGroup.push_back(
          plan_->worldRank(rank_, tpRank_, replica_ - epRank() + q, cpRank_));
    GroupCommunicator pipe(comm, pipeline), replicas(comm, peers),
        expertReplicas(comm, expertPeers), tensorParallel(comm, tpGroup),
        contextParallel(comm, cpGroup), expertParallel(comm, epGroup);
    Communicator *tp = T > 1 ? &tensorParallel : nullptr;
    Communicator *cp = C > 1 ? &contextParallel : nullptr;
    Communicator *ep = X > 1 ? &expertParallel : nullptr;
    const Batch *mine = &batch;
    Batch slice;
    if (plan_->replicas() > 1) {
      const int M = o.schedule.microbatches;
      slice.batch = batch.batch;
      slice.seq = batch.seq;
      slice.tokens.assign(batch.tokens.begin() + replica_ * M,
                          batch.tokens.begin() + (replica_ + 1) * M);
      slice.targets.assign(batch.targets.begin() + replica_ * M,
                           batch.targets.begin() + (replica_ + 1) * M);
      mine = &slice;
    }
    exec_->runSchedule(*mine, plan_->chunkBounds(), pipe, o.beforeAction,
                       origin, batch.targetTokens(), tp, cp, ep,
                       batch.microbatches());
    OptimizerConfig optimizer = o.optimizer;
    optimizer.adamw.lr = lr_;
    result.gradNorm = exec_->optimizerStep(pipe, optimizer, &replicas, tp,
                                           &expertReplicas, ep);
    // The loss is known on the last stage's ranks (each tensor-parallel
    // rank has it, the first counts; each context-parallel rank has its
    // tokens'); every rank gets the totals over all replicas (bitwise the
    // same everywhere: rank 0 adds in rank order).
    const cpu::LossSum local =
        tpRank_ == 0 ? exec_->loss() : cpu::LossSum{};
    result.lossSum =
        allReduceSum(comm, local.loss_sum, Tag{MsgKind::Loss, 0, 0, 0});
    result.tokens = std::llround(allReduceSum(
        comm, static_cast<double>(local.count), Tag{MsgKind::Loss, 1, 0, 0}));
    // Each tensor- and context-parallel rank has the whole balance loss.
    result.auxLoss = allReduceSum(
        comm, tpRank_ == 0 && cpRank_ == 0 ? exec_->auxLoss() : 0.0,
        Tag{MsgKind::Loss, 2, 0, 0});
    result.expertLoad = expertLoad(comm, replicas);
    result.ok = true;
  } catch (const std::exception &e) {
    result.error = e.what();
    // Wake every waiting rank now rather than at its deadline.
    comm.abort("rank " + std::to_string(worldRank()) + " failed: " +
               e.what());
  }
  result.memory = exec_->memory();
  result.events = exec_->events();
  result.staticBytes = exec_->staticBytes();
  return result;
}

double PipelineRank::expertLoad(Communicator &world,
                                Communicator &replicas) const {
  // Each moe op's routed copies over the whole batch (every replica's and
  // context-parallel rank's tokens; tensor-parallel ranks route the same
  // ones), the busiest expert's over an even share; the largest of all.
  // A graph without experts (every rank's is the same) skips the reduction.
  const std::vector<Op> &ops = plan_->graph().ops;
  if (std::none_of(ops.begin(), ops.end(),
                   [](const Op &op) { return op.kind == OpKind::Moe; }))
    return 0;
  float load = 0;
  for (auto &[op, counts] : exec_->expertCounts()) {
    std::vector<float> sum(counts.begin(), counts.end());
    allReduceSum(replicas, sum, Tag{MsgKind::ExpertParallel, op * 8 + 5, 0, 0});
    double total = 0;
    for (float c : sum)
      total += c;
    if (total > 0)
      load = std::max<float>(
          load, *std::max_element(sum.begin(), sum.end()) * sum.size() / total);
  }
  allReduceMax(world, &load, 1, Tag{MsgKind::ExpertParallel, 6, 0, 0});
  return load;
}

void PipelineRank::setState(const TensorMap &state, int64_t optimizerSteps) {
  const Graph &whole = plan_->wholeGraph();
  const std::string what =
      optimizerSteps < 0 ? "the value for" : "the checkpoint's";
  auto tensor = [&](const std::string &key, const ParamSpec &spec) {
    auto it = state.find(key);
    if (it == state.end())
      throw std::invalid_argument(
          (optimizerSteps < 0 ? "no value for parameter '"
                              : "the checkpoint has no '") +
          key + "'");
    if (it->second.shape != spec.shape)
      throw std::invalid_argument(what + " '" + key +
                                  "' has another shape than the graph's");
    return it->second.data;
  };
  for (auto &[p, st] : exec_->params()) {
    const ParamSpec &spec = whole.params[p];
    auto mine = [&](const std::string &key) {
      return plan_->partOf(p, tensor(key, spec), tpRank_, replica_);
    };
    st.value = mine(spec.name);
    if (optimizerSteps < 0)
      continue;
    st.m = mine("optimizer.m." + spec.name);
    st.v = mine("optimizer.v." + spec.name);
  }
  if (optimizerSteps >= 0)
    exec_->setOptimizerSteps(optimizerSteps);
}

TensorMap PipelineRank::gatherTrainingState(Communicator &world) const {
  const Graph &whole = plan_->wholeGraph(), &g = plan_->graph();
  const bool root = world.rank() == 0;
  TensorMap state;
  using Field = std::vector<float> ParamState::*;
  const std::pair<const char *, Field> fields[] = {
      {"", &ParamState::value},
      {"optimizer.m.", &ParamState::m},
      {"optimizer.v.", &ParamState::v}};
  for (size_t p = 0; p < g.params.size(); ++p) {
    if (plan_->holders()[p].empty())
      continue;
    const ParamSpec &part = g.params[p];
    for (size_t f = 0; f < 3; ++f) {
      std::vector<std::vector<float>> parts(plan_->parts(int(p)));
      for (int k = 0; k < plan_->parts(int(p)); ++k) {
        const int from = plan_->partHolder(int(p), k);
        const Tag tag{MsgKind::Report, int(16 + 3 * p + f), 0, 0};
        const auto mine = [&]() -> const std::vector<float> & {
          return exec_->params().at(int(p)).*fields[f].second;
        };
        if (from == worldRank() && root)
          parts[k] = mine();
        else if (from == worldRank())
          world.send(0, tag, mine().data(), part.numel() * sizeof(float));
        else if (root) {
          parts[k].resize(part.numel());
          world.recv(from, tag, parts[k].data(), part.numel() * sizeof(float));
        }
      }
      if (root)
        state[fields[f].first + whole.params[p].name] = {
            whole.params[p].shape, plan_->join(int(p), parts)};
    }
  }
  return state;
}

const ParamState &PipelineRank::state(const std::string &name) const {
  const int p = plan_->graph().paramIndex(name);
  auto it = p < 0 ? exec_->params().end() : exec_->params().find(p);
  if (it == exec_->params().end())
    throw std::invalid_argument("rank " + std::to_string(rank_) +
                                " holds no parameter '" + name + "'");
  return it->second;
}

bool PipelineRank::holds(const std::string &name) const {
  const int p = plan_->graph().paramIndex(name);
  return p >= 0 && exec_->params().count(p) != 0;
}

const std::vector<float> &PipelineRank::param(const std::string &name) const {
  return state(name).value;
}

const std::vector<float> &PipelineRank::grad(const std::string &name) const {
  return state(name).grad;
}

//===----------------------------------------------------------------------===//
// Pipeline: every rank a thread
//===----------------------------------------------------------------------===//

Pipeline::Pipeline(Graph graph, PipelineOptions options, int seqLen)
    : plan_(std::make_shared<const PipelinePlan>(std::move(graph),
                                                 std::move(options), seqLen)) {
  const std::vector<std::vector<float>> init =
      initParams(plan_->wholeGraph(), plan_->options().seed);
  for (int r = 0; r < plan_->worldSize(); ++r)
    ranks_.push_back(std::make_unique<PipelineRank>(plan_, r, init));
}

StepResult Pipeline::step(const Batch &batch) {
  const int P = plan_->ranks(), W = plan_->worldSize();
  StepResult result;
  result.error = plan_->checkBatch(batch);
  if (!result.error.empty())
    return result;
  InProcessWorld world(W, plan_->options().recvTimeout);
  std::vector<RankStepResult> ranks(W);
  std::vector<std::thread> threads;
  const auto origin = std::chrono::steady_clock::now();
  for (int r = 0; r < W; ++r)
    threads.emplace_back(
        [&, r] { ranks[r] = ranks_[r]->step(batch, world.comm(r), origin); });
  for (std::thread &t : threads)
    t.join();
  result.ok = !world.aborted();
  result.error = world.abortReason();
  for (int r = 0; r < W; ++r)
    result.rankErrors.push_back(ranks[r].error);
  // Replica 0's first tensor-parallel ranks stand for all.
  std::vector<RankStepResult> shown;
  for (int r = 0; r < P; ++r)
    shown.push_back(std::move(ranks[plan_->worldRank(r, 0, 0)]));
  for (const RankStepResult &r : shown)
    result.memory.push_back(r.memory);
  result.timeline = measuredTimeline(plan_->schedule().config, shown);
  if (result.ok) {
    result.lossSum = shown[0].lossSum;
    result.tokens = shown[0].tokens;
    result.gradNorm = shown[0].gradNorm;
    result.auxLoss = shown[0].auxLoss;
    result.expertLoad = shown[0].expertLoad;
  } else {
    for (const std::unique_ptr<PipelineRank> &r : ranks_) {
      if (r->tpRank() != 0)
        continue;
      result.lossSum += r->localLoss().loss_sum;
      result.tokens += r->localLoss().count;
    }
  }
  return result;
}

int Pipeline::paramOf(const std::string &name) const {
  const int p = plan_->graph().paramIndex(name);
  if (p < 0 || plan_->holders()[p].empty())
    throw std::invalid_argument("no parameter '" + name + "'");
  return p;
}

std::vector<float> Pipeline::whole(int p,
                                   std::vector<float> ParamState::*field) const {
  std::vector<std::vector<float>> parts;
  for (int k = 0; k < plan_->parts(p); ++k)
    parts.push_back(
        ranks_[plan_->partHolder(p, k)]->executor().params().at(p).*field);
  return plan_->join(p, parts);
}

TensorMap Pipeline::trainingState() const {
  const Graph &g = plan_->wholeGraph();
  TensorMap state;
  for (size_t p = 0; p < g.params.size(); ++p) {
    if (plan_->holders()[p].empty())
      continue;
    const std::string &name = g.params[p].name;
    const std::vector<int64_t> &shape = g.params[p].shape;
    state[name] = {shape, whole(int(p), &ParamState::value)};
    state["optimizer.m." + name] = {shape, whole(int(p), &ParamState::m)};
    state["optimizer.v." + name] = {shape, whole(int(p), &ParamState::v)};
  }
  return state;
}

int64_t Pipeline::optimizerSteps() const {
  return ranks_.front()->executor().optimizerSteps();
}

void Pipeline::setLearningRate(double lr) {
  for (std::unique_ptr<PipelineRank> &r : ranks_)
    r->setLearningRate(lr);
}

void Pipeline::setParams(const TensorMap &params) {
  for (std::unique_ptr<PipelineRank> &r : ranks_)
    r->setState(params);
}

void Pipeline::restore(const TensorMap &state, int64_t optimizerSteps) {
  for (std::unique_ptr<PipelineRank> &r : ranks_)
    r->setState(state, optimizerSteps);
}

std::vector<float> Pipeline::param(const std::string &name) const {
  return whole(paramOf(name), &ParamState::value);
}

std::vector<float> Pipeline::grad(const std::string &name) const {
  return whole(paramOf(name), &ParamState::grad);
}

} // namespace s1f::rt
