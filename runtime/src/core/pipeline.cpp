//===- pipeline.cpp - Plan, placement, one rank's step, threaded steps ----===//

#include "seq1f1b/runtime/pipeline.h"

#include "seq1f1b/Schedule/Verify.h"
#include "seq1f1b/runtime/inprocess_comm.h"

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

} // namespace

//===----------------------------------------------------------------------===//
// PipelinePlan
//===----------------------------------------------------------------------===//

PipelinePlan::PipelinePlan(Graph graph, PipelineOptions options, int seqLen)
    : graph_(std::move(graph)), options_(std::move(options)) {
  graph_.validate();
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
  if (options_.recompute && sched::splitsBackward(c.kind))
    throw std::invalid_argument(
        "recomputation does not combine with " +
        std::string(sched::scheduleKindName(c.kind)) +
        ": its W passes would need every recomputed input kept");
  if (graph_.stages.empty()) {
    stages_ = cutStages(graph_, c.numStages(), seqLen);
  } else {
    if (static_cast<int>(graph_.stages.size()) != c.numStages() + 1)
      throw std::invalid_argument(
          "the graph is cut into " + std::to_string(graph_.stages.size() - 1) +
          " stages but the schedule has " + std::to_string(c.numStages()) +
          " (P x V)");
    stages_ = stagesAt(graph_, graph_.stages);
  }
  bounds_ =
      s1f::rt::chunkBounds(graph_, seqLen, c.chunks, options_.chunkPolicy);

  holders_.assign(graph_.params.size(), {});
  for (int r = 0; r < c.ranks; ++r)
    for (int s = 0; s < c.numStages(); ++s)
      if (c.rankOfStage(s) == r)
        for (int p : stages_[s].params)
          if (holders_[p].empty() || holders_[p].back() != r)
            holders_[p].push_back(r);
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
                   initParams(plan->graph(), plan->options().seed)) {}

PipelineRank::PipelineRank(std::shared_ptr<const PipelinePlan> plan,
                           int worldRank,
                           const std::vector<std::vector<float>> &initialParams)
    : plan_(std::move(plan)), rank_(worldRank % plan_->ranks()),
      replica_(worldRank / plan_->ranks()),
      lr_(plan_->options().optimizer.adamw.lr) {
  if (worldRank < 0 || worldRank >= plan_->worldSize())
    throw std::invalid_argument("rank " + std::to_string(worldRank) +
                                " does not exist: the plan has " +
                                std::to_string(plan_->worldSize()) + " ranks");
  const KernelSet *kernels = plan_->options().kernels;
  exec_ = std::make_unique<RankExecutor>(
      plan_->graph(), plan_->stages(), plan_->schedule(), rank_, initialParams,
      plan_->holders(), kernels ? *kernels : cpuKernels(),
      plan_->options().recompute);
}

RankStepResult
PipelineRank::step(const Batch &batch, Communicator &comm,
                   std::chrono::steady_clock::time_point origin) {
  const PipelineOptions &o = plan_->options();
  RankStepResult result;
  try {
    const int P = plan_->ranks(), worldRank = replica_ * P + rank_;
    if (comm.size() != plan_->worldSize() || comm.rank() != worldRank)
      throw std::invalid_argument(
          "the communicator is rank " + std::to_string(comm.rank()) + " of " +
          std::to_string(comm.size()) + "; the plan needs rank " +
          std::to_string(worldRank) + " of " +
          std::to_string(plan_->worldSize()));
    std::string bad = plan_->checkBatch(batch);
    if (!bad.empty())
      throw std::invalid_argument(bad);
    // This replica's pipeline, and this rank's peers in the other replicas.
    std::vector<int> pipeline, peers;
    for (int r = 0; r < P; ++r)
      pipeline.push_back(replica_ * P + r);
    for (int d = 0; d < plan_->replicas(); ++d)
      peers.push_back(d * P + rank_);
    GroupCommunicator pipe(comm, pipeline), replicas(comm, peers);
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
                       origin, batch.targetTokens());
    OptimizerConfig optimizer = o.optimizer;
    optimizer.adamw.lr = lr_;
    result.gradNorm = exec_->optimizerStep(pipe, optimizer, &replicas);
    // The loss is known on the last stage's ranks; every rank gets the
    // totals over all replicas (bitwise the same everywhere: rank 0 adds in
    // rank order).
    const cpu::LossSum local = exec_->loss();
    result.lossSum =
        allReduceSum(comm, local.loss_sum, Tag{MsgKind::Loss, 0, 0, 0});
    result.tokens = std::llround(allReduceSum(
        comm, static_cast<double>(local.count), Tag{MsgKind::Loss, 1, 0, 0}));
    result.ok = true;
  } catch (const std::exception &e) {
    result.error = e.what();
    // Wake every waiting rank now rather than at its deadline.
    comm.abort("rank " + std::to_string(replica_ * plan_->ranks() + rank_) +
               " failed: " + e.what());
  }
  result.memory = exec_->memory();
  result.events = exec_->events();
  result.staticBytes = exec_->staticBytes();
  return result;
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
      initParams(plan_->graph(), plan_->options().seed);
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
  ranks.resize(P); // replica 0 stands for all
  for (int r = 0; r < P; ++r)
    result.memory.push_back(ranks[r].memory);
  result.timeline = measuredTimeline(plan_->schedule().config, ranks);
  if (result.ok) {
    result.lossSum = ranks[0].lossSum;
    result.tokens = ranks[0].tokens;
    result.gradNorm = ranks[0].gradNorm;
  } else {
    for (const std::unique_ptr<PipelineRank> &r : ranks_) {
      result.lossSum += r->localLoss().loss_sum;
      result.tokens += r->localLoss().count;
    }
  }
  return result;
}

TensorMap Pipeline::trainingState() const {
  const Graph &g = plan_->graph();
  TensorMap state;
  for (size_t p = 0; p < g.params.size(); ++p) {
    const std::vector<int> &h = plan_->holders()[p];
    if (h.empty())
      continue;
    const ParamState &st = ranks_[h.front()]->executor().params().at(int(p));
    const std::string &name = g.params[p].name;
    state[name] = {g.params[p].shape, st.value};
    state["optimizer.m." + name] = {g.params[p].shape, st.m};
    state["optimizer.v." + name] = {g.params[p].shape, st.v};
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
  const Graph &g = plan_->graph();
  for (size_t p = 0; p < g.params.size(); ++p) {
    const ParamSpec &spec = g.params[p];
    auto it = params.find(spec.name);
    if (it == params.end())
      throw std::invalid_argument("no value for parameter '" + spec.name + "'");
    if (it->second.shape != spec.shape)
      throw std::invalid_argument("the value for '" + spec.name +
                                  "' has another shape than the graph's");
    for (int d = 0; d < plan_->replicas(); ++d)
      for (int r : plan_->holders()[p])
        ranks_[d * plan_->ranks() + r]->executor().params().at(int(p)).value =
            it->second.data;
  }
}

void Pipeline::restore(const TensorMap &state, int64_t optimizerSteps) {
  const Graph &g = plan_->graph();
  auto tensor = [&](const std::string &key, const ParamSpec &spec) {
    auto it = state.find(key);
    if (it == state.end())
      throw std::invalid_argument("the checkpoint has no '" + key + "'");
    if (it->second.shape != spec.shape)
      throw std::invalid_argument("the checkpoint's '" + key +
                                  "' has another shape than the graph's");
    return it->second.data;
  };
  for (size_t p = 0; p < g.params.size(); ++p) {
    if (plan_->holders()[p].empty()) // as trainingState() leaves it out
      continue;
    const ParamSpec &spec = g.params[p];
    const std::vector<float> value = tensor(spec.name, spec),
                             m = tensor("optimizer.m." + spec.name, spec),
                             v = tensor("optimizer.v." + spec.name, spec);
    for (int d = 0; d < plan_->replicas(); ++d)
      for (int r : plan_->holders()[p]) {
        ParamState &st =
            ranks_[d * plan_->ranks() + r]->executor().params().at(int(p));
        st.value = value, st.m = m, st.v = v;
      }
  }
  for (std::unique_ptr<PipelineRank> &r : ranks_)
    r->executor().setOptimizerSteps(optimizerSteps);
}

const PipelineRank &Pipeline::holder(const std::string &name) const {
  const int p = plan_->graph().paramIndex(name);
  if (p < 0 || plan_->holders()[p].empty())
    throw std::invalid_argument("no parameter '" + name + "'");
  return *ranks_[plan_->holders()[p].front()];
}

const std::vector<float> &Pipeline::param(const std::string &name) const {
  return holder(name).param(name);
}

const std::vector<float> &Pipeline::grad(const std::string &name) const {
  return holder(name).grad(name);
}

} // namespace s1f::rt
