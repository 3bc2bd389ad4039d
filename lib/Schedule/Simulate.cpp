//===- Simulate.cpp - Cost and memory simulation of a schedule ------------===//

#include "seq1f1b/Schedule/Simulate.h"

#include "Dependencies.h"
#include "seq1f1b/Schedule/Csv.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace seq1f1b::schedule {

using detail::Dependency;
using detail::DepKind;

namespace {

/// End times of the passes that others wait for; negative = not yet run.
class FinishTimes {
public:
  explicit FinishTimes(const ScheduleConfig &c)
      : mbs(c.microbatches), chunks(c.chunks),
        size(static_cast<size_t>(c.numStages()) * mbs * chunks),
        forward(size, -1), backward(size, -1), input(size, -1) {}

  void record(const Action &a, double end) {
    size_t i = index(a.stage, a.microbatch, a.chunk);
    if (a.kind == ActionKind::Forward)
      forward[i] = end;
    if (isInputBackward(a.kind)) // I also counts as "the backward" of a unit.
      backward[i] = end;
    if (a.kind == ActionKind::BackwardInput)
      input[i] = end;
  }

  double of(const Dependency &d) const {
    size_t i = index(d.stage, d.microbatch, d.chunk);
    switch (d.kind) {
    case DepKind::Forward:
      return forward[i];
    case DepKind::BackwardInput:
      return input[i];
    default: // AnyBackward; comm dependencies do not occur without comm.
      return backward[i];
    }
  }

private:
  size_t index(int stage, int mb, int chunk) const {
    return (static_cast<size_t>(stage) * mbs + mb) * chunks + chunk;
  }


  int mbs, chunks;
  size_t size;
  std::vector<double> forward, backward, input;
};

double duration(const UnitCost &cost, ActionKind kind) {
  switch (kind) {
  case ActionKind::Forward:
    return cost.forward;
  case ActionKind::Backward:
    return cost.backward;
  case ActionKind::BackwardInput:
    return cost.backwardInput;
  default:
    return cost.backwardWeight;
  }
}

/// Live bytes of one rank along its program.
class MemoryTracker {
public:
  MemoryTracker(const ScheduleConfig &c, const SimulationModel &m, int rank)
      : config(c), model(m) {
    if (model.staticMemory)
      for (int s = rank; s < c.numStages(); s += c.ranks) {
        StaticMemory st = model.staticMemory(s);
        live.weights += st.weights;
        live.grads += st.grads;
        live.optimizer += st.optimizer;
      }
    peak = live;
    staticBytes = live.total();
  }

  /// Applies `a`'s allocations and frees; returns the live bytes while it
  /// runs and after it.
  std::pair<std::int64_t, std::int64_t> run(const Action &a) {
    const ChunkMemory mem = chunkMemory(a.stage, a.chunk);
    const bool lastChunk = a.chunk == config.chunks - 1;
    const bool kvGradBuffer = config.chunks > 1 && isInputBackward(a.kind);
    // Allocations.
    if (a.kind == ActionKind::Forward) {
      live.activations += mem.activations;
      live.kvCache += mem.kvCache;
      peakInFlight = std::max(peakInFlight, ++inFlight);
    }
    if (a.kind == ActionKind::BackwardInput)
      live.activations += mem.weightGradOutputGrads;
    if (isInputBackward(a.kind))
      live.activations += mem.recomputed;
    if (kvGradBuffer && lastChunk)
      live.kvGrad += prefixKvBytes(a.stage);
    if (live.total() > peak.total())
      peak = live;
    const std::int64_t during = live.total();
    // Frees.
    if (isInputBackward(a.kind))
      live.activations -= mem.recomputed;
    if (a.kind == ActionKind::Backward)
      live.activations -= mem.activations;
    if (a.kind == ActionKind::BackwardInput)
      live.activations -= mem.activations - mem.weightGradInput;
    if (a.kind == ActionKind::BackwardWeight)
      live.activations -= mem.weightGradInput + mem.weightGradOutputGrads;
    if (isInputBackward(a.kind)) {
      live.kvCache -= mem.kvCache;
      --inFlight;
    }
    if (kvGradBuffer && a.chunk == 0)
      live.kvGrad -= prefixKvBytes(a.stage);
    return {during, live.total()};
  }

  MemoryBreakdown peak;
  std::int64_t staticBytes = 0;
  int peakInFlight = 0;

private:
  ChunkMemory chunkMemory(int stage, int chunk) const {
    return model.chunkMemory ? model.chunkMemory(stage, chunk) : ChunkMemory{};
  }

  /// KV bytes of chunks 0..N-2: the prefix whose gradient later chunks add.
  std::int64_t prefixKvBytes(int stage) const {
    std::int64_t bytes = 0;
    for (int ch = 0; ch + 1 < config.chunks; ++ch)
      bytes += chunkMemory(stage, ch).kvCache;
    return bytes;
  }

  const ScheduleConfig &config;
  const SimulationModel &model;
  MemoryBreakdown live;
  int inFlight = 0;
};

Status checkModel(const ScheduleConfig &c, const SimulationModel &m) {
  if (!m.cost)
    return Error{"simulation model has no cost function"};
  if (!(m.comm.latencySeconds >= 0) || !(m.comm.bytesPerSecond >= 0))
    return Error{"communication latency and bandwidth must be >= 0"};
  for (int s = 0; s < c.numStages(); ++s)
    for (int ch = 0; ch < c.chunks; ++ch) {
      const std::string where = "stage " + std::to_string(s) + ", chunk " +
                                std::to_string(ch);
      UnitCost u = m.cost(s, ch);
      for (double v : {u.forward, u.backward, u.backwardInput,
                       u.backwardWeight, u.boundaryBytes})
        if (!std::isfinite(v) || v < 0)
          return Error{"cost of " + where + " is negative or not finite"};
      if (m.chunkMemory) {
        ChunkMemory mem = m.chunkMemory(s, ch);
        if (mem.activations < 0 || mem.kvCache < 0 || mem.weightGradInput < 0 ||
            mem.weightGradInput > mem.activations ||
            mem.weightGradOutputGrads < 0 || mem.recomputed < 0)
          return Error{"memory of " + where +
                       " must satisfy 0 <= "
                       "weightGradInput <= activations and kvCache, "
                       "recomputed >= 0"};
      }
    }
  return {};
}

} // namespace

Result<SimulationResult> simulateSchedule(const Schedule &input,
                                          const SimulationModel &model) {
  const ScheduleConfig &c = input.config;
  if (Status s = validateConfig(c); !s)
    return Error{"invalid schedule config: " + s.error};
  if (static_cast<int>(input.ranks.size()) != c.ranks)
    return Error{"schedule has " + std::to_string(input.ranks.size()) +
                 " rank programs but the config says " +
                 std::to_string(c.ranks) + " ranks"};
  if (Status s = checkModel(c, model); !s)
    return Error{s.error};
  const Schedule schedule = removeCommunication(input);
  for (const auto &program : schedule.ranks)
    for (const Action &a : program)
      if (a.stage < 0 || a.stage >= c.numStages() || a.microbatch < 0 ||
          a.microbatch >= c.microbatches || a.chunk < 0 ||
          a.chunk >= c.chunks)
        return Error{"action " + formatAction(a, c.chunks > 1) +
                     " is out of the config's range"};

  FinishTimes finish(c);
  std::vector<MemoryTracker> memory;
  for (int r = 0; r < c.ranks; ++r)
    memory.emplace_back(c, model, r);
  std::vector<size_t> next(c.ranks, 0);
  std::vector<double> clock(c.ranks, 0.0);
  std::vector<std::vector<TimelineEvent>> events(c.ranks);

  // Runs each rank as far as its dependencies allow until all are stuck.
  // Start times depend only on the finish times of dependencies, so the
  // sweep order does not change the result.
  for (bool progress = true; progress;) {
    progress = false;
    for (int r = 0; r < c.ranks; ++r) {
      const auto &program = schedule.ranks[r];
      for (; next[r] < program.size(); ++next[r]) {
        const Action &a = program[next[r]];
        double start = clock[r];
        bool ready = true;
        for (const Dependency &d : detail::dependenciesOf(a, c, false)) {
          double end = finish.of(d);
          if (end < 0) {
            ready = false;
            break;
          }
          if (c.rankOfStage(d.stage) != r) {
            double bytes = model.cost(std::min(d.stage, a.stage), a.chunk)
                               .boundaryBytes;
            end += model.comm.latencySeconds;
            if (model.comm.bytesPerSecond > 0)
              end += bytes / model.comm.bytesPerSecond;
          }
          start = std::max(start, end);
        }
        if (!ready)
          break;
        double end = start + duration(model.cost(a.stage, a.chunk), a.kind);
        finish.record(a, end);
        clock[r] = end;
        const auto [during, after] = memory[r].run(a);
        events[r].push_back({r, a.stage, a.kind, a.microbatch, a.chunk, start,
                             end, during, after});
        progress = true;
      }
    }
  }
  for (int r = 0; r < c.ranks; ++r)
    if (next[r] < schedule.ranks[r].size())
      return Error{"schedule cannot run to completion: rank " +
                   std::to_string(r) + " is stuck at " +
                   formatAction(schedule.ranks[r][next[r]], c.chunks > 1) +
                   " (run the verifier for details)"};

  SimulationResult result;
  result.config = c;
  result.makespan = *std::max_element(clock.begin(), clock.end());
  double busyTotal = 0;
  for (int r = 0; r < c.ranks; ++r) {
    RankStats &stats = result.ranks.emplace_back();
    for (const TimelineEvent &e : events[r])
      stats.busySeconds += e.end - e.start;
    stats.bubbleFraction =
        result.makespan > 0 ? 1 - stats.busySeconds / result.makespan : 0;
    stats.peakMemory = memory[r].peak;
    stats.staticBytes = memory[r].staticBytes;
    stats.peakInFlight = memory[r].peakInFlight;
    busyTotal += stats.busySeconds;
    result.events.insert(result.events.end(), events[r].begin(),
                         events[r].end());
  }
  result.bubbleFraction =
      result.makespan > 0 ? 1 - busyTotal / (c.ranks * result.makespan) : 0;
  result.hasMemory = bool(model.chunkMemory) || bool(model.staticMemory);
  return result;
}

} // namespace seq1f1b::schedule
