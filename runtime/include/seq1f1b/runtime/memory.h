//===- memory.h - Tracked buffers and live-byte accounting -------*- C++ -*-===//
//
// The executor allocates what it keeps between schedule actions through
// Tensor, which reports its bytes to the rank's MemoryTracker by category, so
// a run can report each rank's peak of saved activations, KV caches and
// KV-gradient buffers (the quantities Seq1F1B trades against the bubble).
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_RUNTIME_MEMORY_H
#define SEQ1F1B_RUNTIME_MEMORY_H

#include <cstddef>
#include <cstdint>
#include <vector>

namespace s1f::rt {

enum class MemKind { Activations, KvCache, KvGrad };
constexpr int kNumMemKinds = 3;

struct MemoryStats {
  int64_t current[kNumMemKinds] = {};
  int64_t peak[kNumMemKinds] = {}; ///< per category
  int64_t peakTotal = 0;           ///< peak of the sum (not the sum of peaks)

  int64_t peakOf(MemKind k) const { return peak[static_cast<int>(k)]; }
  int64_t currentTotal() const;
};

/// Live bytes of one rank. Not thread-safe: a rank is one thread.
class MemoryTracker {
public:
  void add(MemKind kind, int64_t bytes);
  void release(MemKind kind, int64_t bytes);
  const MemoryStats &stats() const { return stats_; }
  /// Forgets the peaks (keeps what is live), e.g. at the start of a step.
  void resetPeaks();

private:
  MemoryStats stats_;
};

/// A float buffer, zero-initialized, optionally counted by a tracker.
class Tensor {
public:
  Tensor() = default;
  Tensor(size_t n, MemoryTracker *tracker = nullptr,
         MemKind kind = MemKind::Activations);
  Tensor(std::vector<float> data, MemoryTracker *tracker, MemKind kind);
  Tensor(Tensor &&o) noexcept;
  Tensor &operator=(Tensor &&o) noexcept;
  Tensor(const Tensor &) = delete;
  Tensor &operator=(const Tensor &) = delete;
  ~Tensor();

  float *data() { return data_.data(); }
  const float *data() const { return data_.data(); }
  size_t size() const { return data_.size(); }
  bool empty() const { return data_.empty(); }
  /// Starts counting this buffer (if not yet counted).
  void track(MemoryTracker *tracker, MemKind kind);
  /// Stops counting and hands out the data.
  std::vector<float> release();

private:
  void untrack();

  std::vector<float> data_;
  MemoryTracker *tracker_ = nullptr;
  MemKind kind_ = MemKind::Activations;
};

} // namespace s1f::rt

#endif // SEQ1F1B_RUNTIME_MEMORY_H
