//===- Arena.h - A static memory arena per rank -----------------*- C++ -*-===//
//
// What a compiled rank program would allocate, laid out ahead of time: every
// buffer the schedule creates (a unit's saved activations, its K/V cache,
// the micro-batch's KV-gradient buffer, ...) with its lifetime in the rank's
// program, placed at a fixed offset so that buffers alive at the same time
// never overlap. The arena's size is the peak the rank needs, plus what the
// placement leaves unused.
//
//===----------------------------------------------------------------------===//
#ifndef SEQ1F1B_SCHEDULE_ARENA_H
#define SEQ1F1B_SCHEDULE_ARENA_H

#include "seq1f1b/Schedule/Simulate.h"

#include <cstdint>
#include <string>
#include <vector>

namespace seq1f1b::schedule {

/// A buffer live from the compute action `first` to `last` (indices into the
/// rank's compute actions, both included: allocated before `first` runs,
/// freed after `last` ran).
struct ArenaBuffer {
  std::string what; ///< e.g. "activations 1F2.0" (stage, micro-batch, chunk)
  std::int64_t bytes = 0;
  int first = 0, last = 0;
};

/// The buffers of `rank` under `model`'s chunk memory, by the simulator's
/// rules (saved activations from F to B, or to I and, for what W needs, to
/// W; K/V caches from F to B/I; I's output gradients to W; recomputed
/// layers during B/I; a micro-batch's KV-gradient buffer from its last
/// chunk's backward to its first's). Weights, gradients and optimizer state
/// are static and not among them.
std::vector<ArenaBuffer> rankBuffers(const Schedule &schedule,
                                     const SimulationModel &model, int rank);

struct ArenaPlan {
  std::vector<ArenaBuffer> buffers;
  std::vector<std::int64_t> offsets; ///< per buffer
  std::int64_t bytes = 0;            ///< the arena: max(offset + size)
  std::int64_t peakLive = 0;         ///< most bytes alive at once
};

/// Places `buffers` greedily, each at the lowest offset clear of every placed
/// buffer whose lifetime overlaps its own, in three orders (largest first,
/// longest-lived first, in allocation order), and keeps the smallest arena.
/// It is at least `peakLive`; with equal sizes, exactly (the least arena is
/// NP-hard to find, so in general it may exceed the least possible).
ArenaPlan planArena(std::vector<ArenaBuffer> buffers);

} // namespace seq1f1b::schedule

#endif // SEQ1F1B_SCHEDULE_ARENA_H
