//===- Schedule.cpp - Schedule kinds, validation and generation -----------===//

#include "seq1f1b/Schedule/Schedule.h"

#include <algorithm>
#include <deque>
#include <numeric>
#include <string>

namespace seq1f1b::schedule {

namespace {

struct KindName {
  ScheduleKind kind;
  std::string_view name;
};

constexpr KindName kKindNames[] = {
    {ScheduleKind::GPipe, "gpipe"},
    {ScheduleKind::OneFOneB, "1f1b"},
    {ScheduleKind::Interleaved1F1B, "interleaved-1f1b"},
    {ScheduleKind::Seq1F1B, "seq1f1b"},
    {ScheduleKind::Seq1F1BInterleaved, "seq1f1b-interleaved"},
    {ScheduleKind::ZBH1, "zb-h1"},
    {ScheduleKind::Seq1F1BZB, "seq1f1b-zb"},
};

} // namespace

std::string_view scheduleKindName(ScheduleKind kind) {
  for (const KindName &k : kKindNames)
    if (k.kind == kind)
      return k.name;
  return "custom";
}

const std::vector<ScheduleKind> &generatableScheduleKinds() {
  static const std::vector<ScheduleKind> kinds = [] {
    std::vector<ScheduleKind> v;
    for (const KindName &k : kKindNames)
      v.push_back(k.kind);
    return v;
  }();
  return kinds;
}

Result<ScheduleKind> parseScheduleKind(std::string_view name) {
  std::string valid;
  for (const KindName &k : kKindNames) {
    if (k.name == name)
      return k.kind;
    valid += (valid.empty() ? "" : ", ") + std::string(k.name);
  }
  return Error{"unknown schedule '" + std::string(name) +
               "'; valid schedules: " + valid};
}

bool isInterleaved(ScheduleKind kind) {
  return kind == ScheduleKind::Interleaved1F1B ||
         kind == ScheduleKind::Seq1F1BInterleaved;
}

bool isSequenceChunked(ScheduleKind kind) {
  return kind == ScheduleKind::Seq1F1B ||
         kind == ScheduleKind::Seq1F1BInterleaved ||
         kind == ScheduleKind::Seq1F1BZB || kind == ScheduleKind::Custom;
}

bool splitsBackward(ScheduleKind kind) {
  return kind == ScheduleKind::ZBH1 || kind == ScheduleKind::Seq1F1BZB;
}

std::string_view actionKindName(ActionKind kind) {
  switch (kind) {
  case ActionKind::Forward:
    return "F";
  case ActionKind::Backward:
    return "B";
  case ActionKind::BackwardInput:
    return "I";
  case ActionKind::BackwardWeight:
    return "W";
  case ActionKind::SendF:
    return "SEND_F";
  case ActionKind::RecvF:
    return "RECV_F";
  case ActionKind::SendB:
    return "SEND_B";
  case ActionKind::RecvB:
    return "RECV_B";
  }
  return "?";
}

bool isComm(ActionKind kind) {
  return kind == ActionKind::SendF || kind == ActionKind::RecvF ||
         kind == ActionKind::SendB || kind == ActionKind::RecvB;
}

bool isInputBackward(ActionKind kind) {
  return kind == ActionKind::Backward || kind == ActionKind::BackwardInput;
}

Status validateConfig(const ScheduleConfig &c) {
  const std::string kind(scheduleKindName(c.kind));
  if (c.ranks < 1)
    return Error{"ranks (P) must be >= 1, got " + std::to_string(c.ranks)};
  if (c.microbatches < 1)
    return Error{"microbatches (M) must be >= 1, got " +
                 std::to_string(c.microbatches)};
  if (c.chunks < 1)
    return Error{"chunks (N) must be >= 1, got " + std::to_string(c.chunks)};
  if (c.virtualStages < 1)
    return Error{"virtual stages (V) must be >= 1, got " +
                 std::to_string(c.virtualStages)};
  if (c.chunks > 1 && !isSequenceChunked(c.kind))
    return Error{"schedule '" + kind + "' does not split sequences, so chunks "
                 "(N) must be 1, got " + std::to_string(c.chunks) +
                 "; use seq1f1b, seq1f1b-interleaved or seq1f1b-zb"};
  if (c.kind == ScheduleKind::Custom)
    return {};
  if (!isInterleaved(c.kind) && c.virtualStages != 1)
    return Error{"schedule '" + kind + "' is not interleaved, so virtual "
                 "stages (V) must be 1, got " + std::to_string(c.virtualStages)};
  if (isInterleaved(c.kind)) {
    if (c.virtualStages < 2)
      return Error{"schedule '" + kind + "' needs virtual stages (V) >= 2, "
                   "got " + std::to_string(c.virtualStages)};
    long units = static_cast<long>(c.microbatches) * c.chunks;
    if (units % c.ranks != 0)
      return Error{
          isSequenceChunked(c.kind)
              ? "schedule '" + kind + "' needs microbatches*chunks (M*N = " +
                    std::to_string(units) + ") divisible by ranks (P = " +
                    std::to_string(c.ranks) + ")"
              : "schedule '" + kind + "' needs microbatches (M = " +
                    std::to_string(c.microbatches) +
                    ") divisible by ranks (P = " + std::to_string(c.ranks) +
                    ")"};
  }
  return {};
}

namespace {

/// A (micro-batch, chunk) pair: the unit that sequence-level schedules move.
struct Unit {
  int mb;
  int chunk;
};

/// mb-major, chunk ascending: a chunk attends to the KV cache of the ones
/// before it, so forwards of one micro-batch must run in chunk order.
std::vector<Unit> forwardUnits(int m, int n) {
  std::vector<Unit> units;
  for (int mb = 0; mb < m; ++mb)
    for (int c = 0; c < n; ++c)
      units.push_back({mb, c});
  return units;
}

/// Micro-batches first-in-first-out, chunks last-in-first-out: the KV
/// gradient of chunk c is complete only after chunks c+1..N-1 ran backward.
std::vector<Unit> backwardUnits(int m, int n) {
  std::vector<Unit> units;
  for (int mb = 0; mb < m; ++mb)
    for (int c = n - 1; c >= 0; --c)
      units.push_back({mb, c});
  return units;
}

Action compute(ActionKind kind, int stage, Unit u) {
  return Action{kind, stage, u.mb, u.chunk};
}

std::vector<Action> gpipeProgram(int stage, int m) {
  std::vector<Action> program;
  for (int mb = 0; mb < m; ++mb)
    program.push_back({ActionKind::Forward, stage, mb});
  for (int mb = 0; mb < m; ++mb)
    program.push_back({ActionKind::Backward, stage, mb});
  return program;
}

/// Emits the backward passes of a 1F1B-style program. With the zero-bubble
/// split each B becomes I followed by a W that may be held back: at most
/// `maxPendingW` W's stay pending in the warmup/steady part, so rank r can
/// run the I's that other ranks wait on first and do its W's later, when it
/// would otherwise idle. All pending W's drain in order at the end.
class BackwardEmitter {
public:
  BackwardEmitter(std::vector<Action> &program, bool split)
      : program(program), split(split) {}

  void backward(int stage, Unit u, int maxPendingW) {
    if (!split) {
      program.push_back(compute(ActionKind::Backward, stage, u));
      return;
    }
    program.push_back(compute(ActionKind::BackwardInput, stage, u));
    pending.push_back({stage, u});
    while (static_cast<int>(pending.size()) > maxPendingW)
      popW();
  }

  void drain() {
    while (!pending.empty())
      popW();
  }

private:
  void popW() {
    program.push_back(compute(ActionKind::BackwardWeight,
                              pending.front().first, pending.front().second));
    pending.pop_front();
  }

  std::vector<Action> &program;
  bool split;
  std::deque<std::pair<int, Unit>> pending;
};

/// 1F1B over units on a single stage: `warmup` forwards, then one-forward-
/// one-backward pairs, then the remaining backwards. `deferW` is the number
/// of W's rank r keeps pending (zero-bubble kinds only).
std::vector<Action> oneFOneBProgram(int stage, int m, int n, int warmup,
                                    bool split, int deferW) {
  std::vector<Unit> fwd = forwardUnits(m, n);
  std::vector<Unit> bwd = backwardUnits(m, n);
  const int units = m * n;
  std::vector<Action> program;
  BackwardEmitter emit(program, split);
  for (int k = 0; k < warmup; ++k)
    program.push_back(compute(ActionKind::Forward, stage, fwd[k]));
  for (int k = 0; k < units - warmup; ++k) {
    program.push_back(compute(ActionKind::Forward, stage, fwd[warmup + k]));
    emit.backward(stage, bwd[k], deferW);
  }
  for (int k = units - warmup; k < units; ++k)
    emit.backward(stage, bwd[k], deferW);
  emit.drain();
  return program;
}

/// Megatron's virtual pipeline with every (mb, chunk) unit as one Megatron
/// micro-batch. Virtual step k runs model chunk (k / G) % V (reversed for
/// backward) on unit (k / (G*V)) * G + k % G. Megatron uses G = P; we use
/// G = lcm(P, N) so that a group never splits a micro-batch's chunks: then
/// the forward of chunk N-1 (which the first backward of the micro-batch
/// needs) is at most N-1 steps after that backward's slot, which the +(N-1)
/// warmup covers. G == P whenever N divides P (in particular N == 1).
std::vector<Action> interleavedProgram(const ScheduleConfig &c, int rank) {
  const int p = c.ranks, v = c.virtualStages, n = c.chunks;
  const int units = c.microbatches * n;
  const int group = std::lcm(p, n);
  const int total = units * v;
  const int warmup =
      std::min((v - 1) * group + 2 * (p - rank - 1) + (n - 1), total);

  auto step = [&](int k, bool forward) {
    int inGroup = k % (group * v);
    int model = inGroup / group;
    if (!forward)
      model = v - 1 - model;
    int unit = (k / (group * v)) * group + inGroup % group;
    int mb = unit / n;
    // Backward visits a micro-batch's chunks in descending order.
    int chunk = forward ? unit % n : n - 1 - unit % n;
    return Action{forward ? ActionKind::Forward : ActionKind::Backward,
                  model * p + rank, mb, chunk};
  };

  std::vector<Action> program;
  for (int k = 0; k < warmup; ++k)
    program.push_back(step(k, true));
  for (int k = 0; k < total - warmup; ++k) {
    program.push_back(step(warmup + k, true));
    program.push_back(step(k, false));
  }
  for (int k = total - warmup; k < total; ++k)
    program.push_back(step(k, false));
  return program;
}

} // namespace

Result<Schedule> generateSchedule(const ScheduleConfig &config) {
  if (Status s = validateConfig(config); !s)
    return Error{s.error};
  if (config.kind == ScheduleKind::Custom)
    return Error{"schedule 'custom' has no generator; import it from CSV"};

  const int p = config.ranks, m = config.microbatches, n = config.chunks;
  Schedule schedule{config, std::vector<std::vector<Action>>(p)};
  for (int r = 0; r < p; ++r) {
    std::vector<Action> &program = schedule.ranks[r];
    switch (config.kind) {
    case ScheduleKind::GPipe:
      program = gpipeProgram(r, m);
      break;
    case ScheduleKind::OneFOneB:
    case ScheduleKind::Seq1F1B:
    case ScheduleKind::ZBH1:
    case ScheduleKind::Seq1F1BZB: {
      // Stage r must cover the P-r-1 stages after it, plus N-1 extra chunks
      // so that a micro-batch's last chunk is forwarded before its first
      // backward.
      int warmup = std::min(p - r - 1 + (n - 1), m * n);
      // Zero-bubble H1: rank r defers its W's by r steps, so every rank holds
      // at most as many units as rank 0 of the non-split schedule (P+N-1).
      program = oneFOneBProgram(r, m, n, warmup, splitsBackward(config.kind),
                                /*deferW=*/r);
      break;
    }
    case ScheduleKind::Interleaved1F1B:
    case ScheduleKind::Seq1F1BInterleaved:
      program = interleavedProgram(config, r);
      break;
    case ScheduleKind::Custom:
      break;
    }
  }
  return schedule;
}

Result<Schedule> addCommunication(const Schedule &schedule) {
  const ScheduleConfig &c = schedule.config;
  const int last = c.numStages() - 1;
  Schedule out{c, std::vector<std::vector<Action>>(schedule.ranks.size())};
  for (size_t r = 0; r < schedule.ranks.size(); ++r) {
    const int rank = static_cast<int>(r);
    std::vector<Action> &program = out.ranks[r];
    auto comm = [&](ActionKind kind, const Action &a, int stage, int peer) {
      program.push_back({kind, stage, a.microbatch, a.chunk, peer});
    };
    for (const Action &a : schedule.ranks[r]) {
      if (isComm(a.kind))
        return Error{"schedule already has communication (rank " +
                     std::to_string(r) + ")"};
      const int s = a.stage;
      const bool fwd = a.kind == ActionKind::Forward;
      const bool bwd = isInputBackward(a.kind);
      const int prevRank = s > 0 ? c.rankOfStage(s - 1) : rank;
      const int nextRank = s < last ? c.rankOfStage(s + 1) : rank;
      if (fwd && prevRank != rank)
        comm(ActionKind::RecvF, a, s, prevRank);
      if (bwd && nextRank != rank)
        comm(ActionKind::RecvB, a, s, nextRank);
      program.push_back(a);
      if (fwd && nextRank != rank)
        comm(ActionKind::SendF, a, s, nextRank);
      if (bwd && prevRank != rank)
        comm(ActionKind::SendB, a, s, prevRank);
    }
  }
  return out;
}

Schedule removeCommunication(const Schedule &schedule) {
  Schedule out{schedule.config, {}};
  for (const std::vector<Action> &program : schedule.ranks) {
    std::vector<Action> &compute = out.ranks.emplace_back();
    for (const Action &a : program)
      if (!isComm(a.kind))
        compute.push_back(a);
  }
  return out;
}

} // namespace seq1f1b::schedule
