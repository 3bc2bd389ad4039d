//===- memory.h - Tracked buffers and live-byte accounting ------*- C++ -*-===//
//
// The executor allocates what it keeps between schedule actions through
// Tensor and RowBuffer, which report their bytes to the rank's MemoryTracker
// by category, so a run can report each rank's peak of saved activations, KV
// caches and KV-gradient buffers (the quantities Seq1F1B trades against the
// bubble).
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
  /// The most bytes live (all categories) since the last startWindow(), e.g.
  /// while one schedule action ran.
  void startWindow() { windowPeak_ = stats_.currentTotal(); }
  int64_t windowPeak() const { return windowPeak_; }

private:
  MemoryStats stats_;
  int64_t windowPeak_ = 0;
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

/// A [batch, rows, width] float buffer whose rows come and go by range (the
/// same rows of every sequence): the KV caches and KV-gradient buffers, which
/// grow chunk by chunk while kernels read their prefix [0, end) in place.
/// The whole address range is reserved at once with no memory behind it
/// (mmap); a page gets memory when first written and gives it back
/// (madvise) when every row on it is released. The tracker counts the
/// committed rows' bytes. Rows never written read as zeros.
class RowBuffer {
public:
  RowBuffer() = default;
  RowBuffer(int64_t batch, int64_t rows, int64_t width, MemoryTracker *tracker,
            MemKind kind);
  RowBuffer(RowBuffer &&o) noexcept;
  RowBuffer &operator=(RowBuffer &&o) noexcept;
  RowBuffer(const RowBuffer &) = delete;
  RowBuffer &operator=(const RowBuffer &) = delete;
  ~RowBuffer();

  float *data() { return data_; }
  const float *data() const { return data_; }
  bool empty() const { return data_ == nullptr; }
  /// Counts rows [begin, end) (those not yet committed) from now on.
  void commit(int64_t begin, int64_t end);
  /// Stops counting rows [begin, end) and returns their whole pages.
  void release(int64_t begin, int64_t end);
  int64_t committedBytes() const;

private:
  void reset();
  int64_t rowBytes() const { return batch_ * width_ * int64_t(sizeof(float)); }

  float *data_ = nullptr;
  size_t mapped_ = 0; ///< bytes reserved
  int64_t batch_ = 0, rows_ = 0, width_ = 0;
  std::vector<bool> committed_; ///< per row
  int64_t committedRows_ = 0;
  MemoryTracker *tracker_ = nullptr;
  MemKind kind_ = MemKind::Activations;
};

} // namespace s1f::rt

#endif // SEQ1F1B_RUNTIME_MEMORY_H
