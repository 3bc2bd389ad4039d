//===- Arena.cpp - A static memory arena per rank -------------------------===//

#include "seq1f1b/Schedule/Arena.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <tuple>

namespace seq1f1b::schedule {

namespace {

/// "1F2.0": stage, kind, micro-batch and chunk, as the CSV writes actions.
std::string unitName(const Action &a) {
  return std::to_string(a.stage) + std::string(actionKindName(a.kind)) +
         std::to_string(a.microbatch) + "." + std::to_string(a.chunk);
}

} // namespace

std::vector<ArenaBuffer> rankBuffers(const Schedule &schedule,
                                     const SimulationModel &model, int rank) {
  const ScheduleConfig &c = schedule.config;
  auto memory = [&](int stage, int chunk) {
    return model.chunkMemory ? model.chunkMemory(stage, chunk) : ChunkMemory{};
  };
  std::vector<ArenaBuffer> buffers;
  // Open buffers by (what, stage, micro-batch, chunk); closed by the action
  // that frees them.
  using Key = std::tuple<int, int, int, int>;
  enum { Activations, KeptForW, KvCache, OutputGrads, KvGrad };
  std::map<Key, size_t> open;
  auto allocate = [&](int what, const Action &a, const char *name,
                      std::int64_t bytes, int index) {
    if (bytes <= 0)
      return;
    open[{what, a.stage, a.microbatch, what == KvGrad ? 0 : a.chunk}] =
        buffers.size();
    buffers.push_back(
        {std::string(name) + " " + unitName(a), bytes, index, index});
  };
  auto release = [&](int what, const Action &a, int index) {
    auto it =
        open.find({what, a.stage, a.microbatch, what == KvGrad ? 0 : a.chunk});
    if (it == open.end())
      return;
    buffers[it->second].last = index;
    open.erase(it);
  };
  int index = 0;
  for (const Action &a : schedule.ranks[rank]) {
    if (isComm(a.kind))
      continue;
    const ChunkMemory mem = memory(a.stage, a.chunk);
    const bool input = isInputBackward(a.kind);
    switch (a.kind) {
    case ActionKind::Forward:
      // What W needs apart, so that I can free the rest.
      allocate(Activations, a, "activations",
               mem.activations - mem.weightGradInput, index);
      allocate(KeptForW, a, "kept for W", mem.weightGradInput, index);
      allocate(KvCache, a, "kv cache", mem.kvCache, index);
      break;
    case ActionKind::BackwardWeight:
      release(KeptForW, a, index);
      release(OutputGrads, a, index);
      break;
    default:
      break;
    }
    if (input) {
      if (a.kind == ActionKind::BackwardInput)
        allocate(OutputGrads, a, "output grads", mem.weightGradOutputGrads,
                 index);
      if (c.chunks > 1 && a.chunk == c.chunks - 1) {
        std::int64_t prefix = 0;
        for (int ch = 0; ch + 1 < c.chunks; ++ch)
          prefix += memory(a.stage, ch).kvCache;
        allocate(KvGrad, a, "kv grad", prefix, index);
      }
      if (mem.recomputed > 0)
        buffers.push_back(
            {"recomputed " + unitName(a), mem.recomputed, index, index});
      release(Activations, a, index);
      if (a.kind == ActionKind::Backward)
        release(KeptForW, a, index);
      release(KvCache, a, index);
      if (a.chunk == 0)
        release(KvGrad, a, index);
    }
    ++index;
  }
  return buffers;
}

ArenaPlan planArena(std::vector<ArenaBuffer> buffers) {
  ArenaPlan plan;
  // Most bytes alive at once: +bytes at first, -bytes after last.
  std::map<int, std::int64_t> delta;
  for (const ArenaBuffer &b : buffers) {
    delta[b.first] += b.bytes;
    delta[b.last + 1] -= b.bytes;
  }
  std::int64_t live = 0;
  for (auto [at, change] : delta)
    plan.peakLive = std::max(plan.peakLive, live += change);

  // Three orders of placement, the smallest arena wins: largest first,
  // longest-lived first (ties: earliest) and in allocation order (ties:
  // largest), each buffer at the lowest offset it fits (finding the least
  // arena is NP-hard; these are the usual greedy answers).
  auto place = [&](auto before) {
    std::vector<size_t> order(buffers.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), before);
    std::vector<std::int64_t> offsets(buffers.size(), 0);
    std::int64_t arena = 0;
    std::vector<size_t> placed;
    for (size_t i : order) {
      const ArenaBuffer &b = buffers[i];
      // The placed buffers alive with this one, by offset: the first gap.
      std::vector<std::pair<std::int64_t, std::int64_t>> busy;
      for (size_t j : placed)
        if (buffers[j].first <= b.last && b.first <= buffers[j].last)
          busy.push_back({offsets[j], offsets[j] + buffers[j].bytes});
      std::sort(busy.begin(), busy.end());
      std::int64_t offset = 0;
      for (auto [begin, end] : busy) {
        if (begin - offset >= b.bytes)
          break;
        offset = std::max(offset, end);
      }
      offsets[i] = offset;
      arena = std::max(arena, offset + b.bytes);
      placed.push_back(i);
    }
    return std::make_pair(arena, offsets);
  };
  auto bySize = place([&](size_t a, size_t b) {
    return std::tie(buffers[b].bytes, buffers[a].first) <
           std::tie(buffers[a].bytes, buffers[b].first);
  });
  auto byLifetime = place([&](size_t a, size_t b) {
    const int la = buffers[a].last - buffers[a].first,
              lb = buffers[b].last - buffers[b].first;
    return std::tie(lb, buffers[a].first) < std::tie(la, buffers[b].first);
  });
  auto byStart = place([&](size_t a, size_t b) {
    return std::tie(buffers[a].first, buffers[b].bytes) <
           std::tie(buffers[b].first, buffers[a].bytes);
  });
  std::tie(plan.bytes, plan.offsets) =
      std::min({bySize, byLifetime, byStart},
               [](const auto &a, const auto &b) { return a.first < b.first; });
  plan.buffers = std::move(buffers);
  return plan;
}

} // namespace seq1f1b::schedule
