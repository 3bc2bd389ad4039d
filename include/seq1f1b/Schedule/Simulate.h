//===- Simulate.h - Cost and memory simulation of a schedule -----*- C++ -*-===//
//
// Replays a schedule against a cost model: every rank runs its actions in
// order, each as early as its data allows; data that crosses ranks arrives
// `latency + bytes / bandwidth` after it was produced (sends never block and
// links never contend). Memory is tracked per rank along its program.
//
// Memory model, per (stage, chunk) unit:
//   F       allocates `activations` (saved for backward) and `kvCache`.
//   B       frees both.
//   I       frees the KV cache and `activations - weightGradInput`; the
//           `weightGradInput` part (layer inputs W needs) stays until W, and
//           I allocates `weightGradOutputGrads` (the gradients of the
//           weighted ops' outputs, which W needs too), freed by W.
//   B, I    also hold `recomputed` while they run (what recomputation
//           materializes again), freed when they end.
//   KV grad for N > 1: a micro-batch's first backward (chunk N-1) allocates
//           a buffer of the KV bytes of chunks 0..N-2 on that stage, in which
//           later chunks accumulate the gradient of the prefix K/V; it is
//           freed after chunk 0's backward.
// Static bytes (weights, gradients, optimizer state) of a rank's stages are
// held throughout. A peak is measured after an action's allocations and
// before its frees.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "seq1f1b/Schedule/Schedule.h"

#include <cstdint>
#include <functional>
#include <vector>

namespace seq1f1b::schedule {

/// Seconds of each pass of one (stage, chunk), and the activation bytes its
/// forward sends to the next stage (its backward returns as many).
struct UnitCost {
  double forward = 0;
  double backward = 0;       ///< Used by B.
  double backwardInput = 0;  ///< Used by I.
  double backwardWeight = 0; ///< Used by W.
  double boundaryBytes = 0;
};

struct CommModel {
  double latencySeconds = 0;
  double bytesPerSecond = 0; ///< 0 means infinite bandwidth.
};

struct StaticMemory {
  std::int64_t weights = 0;
  std::int64_t grads = 0;
  std::int64_t optimizer = 0;
};

struct ChunkMemory {
  std::int64_t activations = 0;     ///< Saved by F, including the next field.
  std::int64_t weightGradInput = 0; ///< Part of `activations` W still needs.
  std::int64_t weightGradOutputGrads = 0; ///< Made by I, kept until W.
  std::int64_t kvCache = 0;         ///< K/V of this chunk, kept until B/I.
  std::int64_t recomputed = 0;      ///< Held by B/I while they run.
};

struct SimulationModel {
  std::function<UnitCost(int stage, int chunk)> cost; ///< Required.
  CommModel comm;
  std::function<StaticMemory(int stage)> staticMemory;          ///< Optional.
  std::function<ChunkMemory(int stage, int chunk)> chunkMemory; ///< Optional.
};

struct MemoryBreakdown {
  std::int64_t weights = 0;
  std::int64_t grads = 0;
  std::int64_t optimizer = 0;
  std::int64_t activations = 0;
  std::int64_t kvCache = 0;
  std::int64_t kvGrad = 0;

  std::int64_t total() const {
    return weights + grads + optimizer + activations + kvCache + kvGrad;
  }
};

struct TimelineEvent {
  int rank;
  int stage;
  ActionKind kind;
  int microbatch;
  int chunk;
  double start;
  double end;
  std::int64_t liveDuring = 0; ///< Rank's bytes while it runs (peak candidate).
  std::int64_t liveAfter = 0;  ///< Rank's bytes once it has freed.
};

struct RankStats {
  double busySeconds = 0;
  double bubbleFraction = 0;  ///< 1 - busy / makespan.
  MemoryBreakdown peakMemory; ///< Itemized at the moment of the peak.
  std::int64_t staticBytes = 0; ///< Weights, gradients, optimizer state.
  int peakInFlight = 0;       ///< Most units forwarded but not backwarded.
};

struct SimulationResult {
  ScheduleConfig config;
  double makespan = 0;
  double bubbleFraction = 0; ///< 1 - sum(busy) / (P * makespan).
  std::vector<RankStats> ranks;
  std::vector<TimelineEvent> events; ///< Grouped by rank, in program order.
  bool hasMemory = false; ///< The model had memory: live bytes are set.
};

/// Simulates the compute actions of `schedule` (communication actions are
/// ignored: transfers are modeled from the dependencies). Fails on a bad
/// config or model, or if the schedule cannot run to completion.
Result<SimulationResult> simulateSchedule(const Schedule &schedule,
                                          const SimulationModel &model);

} // namespace seq1f1b::schedule
