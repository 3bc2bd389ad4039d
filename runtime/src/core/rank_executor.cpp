//===- rank_executor.cpp - One rank's program and optimizer step ----------===//

#include "seq1f1b/runtime/rank_executor.h"

#include "seq1f1b/runtime/tensor_parallel.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace s1f::rt {

namespace sched = seq1f1b::schedule;
using sched::Action;
using sched::ActionKind;

namespace {

std::string describe(const Action &a) {
  std::string text = std::to_string(a.stage) +
                     std::string(sched::actionKindName(a.kind)) +
                     std::to_string(a.microbatch) + "." +
                     std::to_string(a.chunk);
  return sched::isComm(a.kind) ? text + " (peer " + std::to_string(a.peer) + ")"
                               : text;
}

} // namespace

RankExecutor::RankExecutor(const Graph &graph,
                           const std::vector<StageSpec> &stages,
                           const sched::Schedule &schedule, int rank,
                           const std::vector<std::vector<float>> &initialParams,
                           std::vector<std::vector<int>> holders,
                           const KernelSet &kernels, bool recompute)
    : graph_(graph), stages_(stages), schedule_(schedule), rank_(rank),
      holders_(std::move(holders)) {
  for (int s = 0; s < static_cast<int>(stages.size()); ++s) {
    if (schedule.config.rankOfStage(s) != rank)
      continue;
    for (int p : stages[s].params) {
      ParamState &st = params_[p];
      if (st.value.empty()) {
        st.value = initialParams[p];
        st.grad.assign(st.value.size(), 0.0f);
        st.m.assign(st.value.size(), 0.0f);
        st.v.assign(st.value.size(), 0.0f);
      }
    }
  }
  for (int s = 0; s < static_cast<int>(stages.size()); ++s)
    if (schedule.config.rankOfStage(s) == rank)
      executors_[s] = std::make_unique<StageExecutor>(
          graph, stages[s], s, params_, memory_, kernels, recompute);
}

int64_t RankExecutor::staticBytes() const {
  int64_t floats = 0;
  for (const auto &[p, st] : params_)
    floats +=
        int64_t(st.value.size() + st.grad.size() + st.m.size() + st.v.size());
  return floats * int64_t(sizeof(float));
}

cpu::LossSum RankExecutor::loss() const {
  cpu::LossSum total;
  for (const auto &[s, exec] : executors_) {
    total.loss_sum += exec->loss().loss_sum;
    total.count += exec->loss().count;
  }
  return total;
}

double RankExecutor::auxLoss() const {
  double total = 0;
  for (const auto &[s, exec] : executors_)
    total += exec->auxLoss();
  return total;
}

std::map<int, std::vector<double>> RankExecutor::expertCounts() const {
  std::map<int, std::vector<double>> all;
  for (const auto &[s, exec] : executors_)
    for (auto &[op, counts] : exec->expertCounts())
      all[op] = std::move(counts);
  return all;
}

void RankExecutor::runSchedule(const Batch &batch,
                               const std::vector<int> &bounds,
                               Communicator &comm, const ActionHook &hook,
                               std::chrono::steady_clock::time_point origin,
                               int64_t lossTokens,
                               Communicator *tensorParallel,
                               Communicator *contextParallel,
                               Communicator *expertParallel,
                               int lossMicrobatches) {
  for (auto &[p, st] : params_)
    std::fill(st.grad.begin(), st.grad.end(), 0.0f);
  memory_.resetPeaks();
  const float scale =
      1.0f / static_cast<float>(std::max<int64_t>(
                 1, lossTokens ? lossTokens : batch.targetTokens()));
  for (auto &[s, exec] : executors_)
    exec->beginStep(batch, bounds, scale, tensorParallel, contextParallel,
                    expertParallel,
                    lossMicrobatches ? lossMicrobatches : batch.microbatches());
  events_.clear();
  auto seconds = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                         origin)
        .count();
  };
  auto act = [&](const Action &a) {
    if (hook)
      hook(rank_, a);
    if (sched::isComm(a.kind)) {
      run(a, batch, bounds, comm, tensorParallel, contextParallel);
      return;
    }
    memory_.startWindow();
    const double start = seconds();
    run(a, batch, bounds, comm, tensorParallel, contextParallel);
    events_.push_back({rank_, a.stage, a.kind, a.microbatch, a.chunk, start,
                       seconds(), memory_.windowPeak(),
                       memory_.stats().currentTotal()});
  };
  const std::vector<Action> &actions = schedule_.ranks[rank_];
  if (!program_) {
    for (const Action &a : actions)
      act(a);
  } else {
    // The compiled program calls back for each action; each must be the
    // verified schedule's next one.
    s1f_rt_rank self;
    size_t next = 0;
    self.act = [&](const Action &a) {
      if (next >= actions.size() || a != actions[next])
        throw std::logic_error(
            "action " + std::to_string(next) + " of the compiled program is " +
            describe(a) + ", the plan's is " +
            (next < actions.size() ? describe(actions[next]) : "none"));
      ++next;
      act(a);
    };
    program_(&self);
    if (!self.error.empty())
      throw std::runtime_error("rank " + std::to_string(rank_) +
                               "'s compiled program: " + self.error);
    if (!self.ended || next != actions.size())
      throw std::logic_error(
          "rank " + std::to_string(rank_) + "'s compiled program ran " +
          std::to_string(next) + " of its " + std::to_string(actions.size()) +
          " actions and " +
          (self.ended ? "then its optimizer step" : "no optimizer step"));
  }
  for (auto &[s, exec] : executors_)
    exec->checkDrained();
  if (!boxes_.empty())
    throw std::logic_error("rank " + std::to_string(rank_) + ": the " +
                           boxes_.begin()->first.second.describe() +
                           " was never consumed or sent");
}

std::vector<float> RankExecutor::take(const Tag &tag, bool outbox,
                                      const Action &a) {
  auto it = boxes_.find({outbox ? 1 : 0, tag});
  if (it == boxes_.end())
    throw std::logic_error("rank " + std::to_string(rank_) + ", action " +
                           describe(a) + ": the " + tag.describe() +
                           (outbox ? " was not produced before its send"
                                   : " has not arrived (no RECV before it?)"));
  std::vector<float> data = std::move(it->second);
  boxes_.erase(it);
  return data;
}

void RankExecutor::put(const Tag &tag, int toStage, std::vector<float> data) {
  // Local hand-over when the consuming stage is on this rank; otherwise
  // the SEND action of the schedule ships it.
  bool local = schedule_.config.rankOfStage(toStage) == rank_;
  boxes_[{local ? 0 : 1, tag}] = std::move(data);
}

void RankExecutor::run(const Action &a, const Batch &batch,
                       const std::vector<int> &bounds, Communicator &comm,
                       Communicator *tensorParallel,
                       Communicator *contextParallel) {
  const int last = static_cast<int>(stages_.size()) - 1;
  if (a.stage < 0 || a.stage > last ||
      schedule_.config.rankOfStage(a.stage) != rank_)
    throw std::logic_error("rank " + std::to_string(rank_) + ", action " +
                           describe(a) + ": stage not on this rank");
  const int mb = a.microbatch, c = a.chunk;
  const Tag fwdIn{MsgKind::Activation, a.stage, mb, c};
  const Tag fwdOut{MsgKind::Activation, a.stage + 1, mb, c};
  const Tag bwdIn{MsgKind::Gradient, a.stage, mb, c};
  const Tag bwdOut{MsgKind::Gradient, a.stage - 1, mb, c};
  // This rank's tokens of the chunk: its context-parallel part, and of
  // that, with sequence parallelism, its tensor-parallel part.
  const bool split = !graph_.sequenceSplit.empty();
  const RankTokens tokens = rankTokens(
      bounds.at(c), bounds.at(c + 1),
      contextParallel ? contextParallel->rank() : 0,
      contextParallel ? contextParallel->size() : 1,
      split ? tensorParallel->rank() : 0, split ? tensorParallel->size() : 1);
  auto elements = [&](int value) {
    const int64_t n = split && graph_.sequenceSplit[value]
                          ? tokens.splitEnd - tokens.splitStart
                          : tokens.end - tokens.start;
    return static_cast<size_t>(batch.batch * n *
                               graph_.valueFeatures.at(value));
  };
  StageExecutor &exec = *executors_.at(a.stage);
  switch (a.kind) {
  case ActionKind::Forward: {
    std::vector<float> in = a.stage > 0 ? take(fwdIn, false, a)
                                        : std::vector<float>{};
    std::vector<float> out = exec.forward(mb, c, std::move(in));
    if (a.stage < last)
      put(fwdOut, a.stage + 1, std::move(out));
    break;
  }
  case ActionKind::Backward:
  case ActionKind::BackwardInput: {
    std::vector<float> dOut = a.stage < last ? take(bwdIn, false, a)
                                             : std::vector<float>{};
    std::vector<float> dIn =
        a.kind == ActionKind::Backward
            ? exec.backward(mb, c, std::move(dOut))
            : exec.backwardInput(mb, c, std::move(dOut));
    if (a.stage > 0)
      put(bwdOut, a.stage - 1, std::move(dIn));
    break;
  }
  case ActionKind::BackwardWeight:
    exec.backwardWeight(mb, c);
    break;
  case ActionKind::SendF: {
    std::vector<float> data = take(fwdOut, true, a);
    comm.send(a.peer, fwdOut, data.data(), data.size() * sizeof(float));
    break;
  }
  case ActionKind::SendB: {
    std::vector<float> data = take(bwdOut, true, a);
    comm.send(a.peer, bwdOut, data.data(), data.size() * sizeof(float));
    break;
  }
  case ActionKind::RecvF:
  case ActionKind::RecvB: {
    bool fwd = a.kind == ActionKind::RecvF;
    const StageSpec &spec = stages_[a.stage];
    std::vector<float> data(elements(fwd ? spec.input : spec.output));
    const Tag &tag = fwd ? fwdIn : bwdIn;
    comm.recv(a.peer, tag, data.data(), data.size() * sizeof(float));
    boxes_[{0, tag}] = std::move(data);
    break;
  }
  }
}

double RankExecutor::optimizerStep(Communicator &comm,
                                   const OptimizerConfig &config,
                                   Communicator *replicas,
                                   Communicator *tensorParallel,
                                   Communicator *expertReplicas,
                                   Communicator *expertParallel) {
  // Shared parameters (e.g. GPT-2's wte on the first and last stage): the
  // first holder sums the copies in rank order and sends the sum back, so
  // every copy gets the same gradient and so the same update.
  for (auto &[p, st] : params_) {
    const std::vector<int> &h = holders_[p];
    if (h.size() < 2)
      continue;
    const Tag tag{MsgKind::ParamGrad, p, 0, 0};
    const size_t bytes = st.grad.size() * sizeof(float);
    if (rank_ == h[0]) {
      std::vector<float> part(st.grad.size());
      for (size_t i = 1; i < h.size(); ++i) {
        comm.recv(h[i], tag, part.data(), bytes);
        cpu::accumulate(part.data(), st.grad.data(),
                        static_cast<int64_t>(part.size()));
      }
      for (size_t i = 1; i < h.size(); ++i)
        comm.send(h[i], tag, st.grad.data(), bytes);
    } else {
      comm.send(h[0], tag, st.grad.data(), bytes);
      comm.recv(h[0], tag, st.grad.data(), bytes);
    }
  }
  // A parameter whose holders among the tensor-parallel ranks each compute
  // a share of its gradient (a per-head norm weight, a kv head shared by
  // ranks with different query heads): they sum their shares.
  const bool tp = tensorParallel && tensorParallel->size() > 1;
  const int T = tp ? tensorParallel->size() : 1,
            t = tp ? tensorParallel->rank() : 0;
  for (auto &[p, st] : params_) {
    const ParamSpec &spec = graph_.params[p];
    if (!tp || !spec.tpPartialGrad)
      continue;
    std::vector<int> sharing;
    for (int u = 0; u < T; ++u)
      if (tpPartOf(spec, u, T) == tpPartOf(spec, t, T))
        sharing.push_back(u);
    GroupCommunicator group(*tensorParallel, sharing);
    allReduceSum(group, st.grad, Tag{MsgKind::TensorParallelGrad, p, 0, 0});
  }
  // Every replica then holds the step's whole gradient, so the norm and
  // the update below are the same in all of them.
  // Expert-parallel parts: over the replicas holding the same experts.
  for (auto &[p, st] : params_) {
    Communicator *group =
        graph_.params[p].epParts > 1 ? expertReplicas : replicas;
    if (group && group->size() > 1)
      allReduceSum(*group, st.grad, Tag{MsgKind::ReplicaGrad, p, 0, 0});
  }
  // Each shared parameter counts once, and each part of a parameter once
  // over the tensor-parallel ranks (the first of the ranks holding it);
  // the expert-parallel ranks' parts all count.
  double squares = 0, experts = 0;
  for (auto &[p, st] : params_)
    if (holders_[p].front() == rank_ &&
        t % (T / graph_.params[p].tpParts) == 0)
      (graph_.params[p].epParts > 1 ? experts : squares) +=
          cpu::sum_squares(st.grad.data(), static_cast<int64_t>(st.grad.size()));
  if (expertParallel && expertParallel->size() > 1)
    experts = allReduceSum(*expertParallel, experts,
                           Tag{MsgKind::NormSquare, 2, 0, 0});
  squares = allReduceSum(comm, squares + experts,
                         Tag{MsgKind::NormSquare, 0, 0, 0});
  if (tp)
    squares = allReduceSum(*tensorParallel, squares,
                           Tag{MsgKind::NormSquare, 1, 0, 0});
  const double coef = config.maxGradNorm > 0
                          ? cpu::clip_coefficient(squares, config.maxGradNorm)
                          : 1.0;
  ++step_;
  for (auto &[p, st] : params_) {
    // As Megatron and transformers' Trainer: biases and norm weights (the
    // 1-D parameters) get no weight decay.
    cpu::AdamWConfig adamw = config.adamw;
    if (graph_.params[p].shape.size() == 1)
      adamw.weight_decay = 0;
    cpu::adamw_step(st.value.data(), st.grad.data(), st.m.data(), st.v.data(),
                    static_cast<int64_t>(st.value.size()), step_, adamw, coef);
  }
  return std::sqrt(squares);
}

} // namespace s1f::rt
