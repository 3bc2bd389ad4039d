//===- pipeline.cpp - Plan, placement and threaded steps ------------------===//

#include "seq1f1b/runtime/pipeline.h"

#include "seq1f1b/runtime/inprocess_comm.h"

#include <stdexcept>
#include <thread>

namespace s1f::rt {

namespace sched = seq1f1b::schedule;

Pipeline::Pipeline(Graph graph, PipelineOptions options, int seqLen)
    : graph_(std::move(graph)), options_(std::move(options)) {
  graph_.validate();
  const sched::ScheduleConfig &c = options_.schedule;
  sched::Result<sched::Schedule> compute = sched::generateSchedule(c);
  if (!compute)
    throw std::invalid_argument("schedule: " + compute.error);
  sched::Result<sched::Schedule> withComm = sched::addCommunication(*compute);
  if (!withComm)
    throw std::invalid_argument("schedule: " + withComm.error);
  schedule_ = *withComm;
  stages_ = cutStages(graph_, c.numStages(), seqLen);
  bounds_ = s1f::rt::chunkBounds(graph_, seqLen, c.chunks, options_.chunkPolicy);

  holders_.assign(graph_.params.size(), {});
  for (int r = 0; r < c.ranks; ++r)
    for (int s = 0; s < c.numStages(); ++s)
      if (c.rankOfStage(s) == r)
        for (int p : stages_[s].params)
          if (holders_[p].empty() || holders_[p].back() != r)
            holders_[p].push_back(r);
  const std::vector<std::vector<float>> init =
      initParams(graph_, options_.seed);
  for (int r = 0; r < c.ranks; ++r)
    ranks_.push_back(std::make_unique<RankExecutor>(graph_, stages_, schedule_,
                                                    r, init, holders_));
}

StepResult Pipeline::step(const Batch &batch) {
  const int P = options_.schedule.ranks;
  StepResult result;
  if (batch.microbatches() != options_.schedule.microbatches ||
      batch.seq != bounds_.back()) {
    result.error = "batch has " + std::to_string(batch.microbatches()) +
                   " micro-batches of " + std::to_string(batch.seq) +
                   " tokens; the plan expects " +
                   std::to_string(options_.schedule.microbatches) + " of " +
                   std::to_string(bounds_.back());
    return result;
  }
  InProcessWorld world(P, options_.recvTimeout);
  result.rankErrors.assign(P, "");
  std::vector<double> norms(P, 0);
  std::vector<std::thread> threads;
  for (int r = 0; r < P; ++r)
    threads.emplace_back([&, r] {
      Communicator &comm = world.comm(r);
      try {
        ranks_[r]->runSchedule(batch, bounds_, comm, options_.beforeAction);
        norms[r] = ranks_[r]->optimizerStep(comm, options_.optimizer);
      } catch (const std::exception &e) {
        result.rankErrors[r] = e.what();
        // Wake every waiting rank now rather than at its deadline.
        comm.abort("rank " + std::to_string(r) + " failed: " + e.what());
      }
    });
  for (std::thread &t : threads)
    t.join();
  result.ok = !world.aborted();
  result.error = world.abortReason();
  for (int r = 0; r < P; ++r) {
    cpu::LossSum l = ranks_[r]->loss();
    result.lossSum += l.loss_sum;
    result.tokens += l.count;
    result.memory.push_back(ranks_[r]->memory());
  }
  result.gradNorm = norms[0];
  return result;
}

const ParamState &Pipeline::state(const std::string &name) const {
  int p = graph_.paramIndex(name);
  if (p < 0 || holders_[p].empty())
    throw std::invalid_argument("no parameter '" + name + "'");
  return ranks_[holders_[p].front()]->params().at(p);
}

const std::vector<float> &Pipeline::param(const std::string &name) const {
  return state(name).value;
}

const std::vector<float> &Pipeline::grad(const std::string &name) const {
  return state(name).grad;
}

} // namespace s1f::rt
