//===- memory.cpp - Tracked buffers ---------------------------------------===//

#include "seq1f1b/runtime/memory.h"

#include <algorithm>
#include <utility>

namespace s1f::rt {

int64_t MemoryStats::currentTotal() const {
  int64_t total = 0;
  for (int64_t c : current)
    total += c;
  return total;
}

void MemoryTracker::add(MemKind kind, int64_t bytes) {
  int k = static_cast<int>(kind);
  stats_.current[k] += bytes;
  stats_.peak[k] = std::max(stats_.peak[k], stats_.current[k]);
  stats_.peakTotal = std::max(stats_.peakTotal, stats_.currentTotal());
}

void MemoryTracker::release(MemKind kind, int64_t bytes) {
  stats_.current[static_cast<int>(kind)] -= bytes;
}

void MemoryTracker::resetPeaks() {
  for (int k = 0; k < kNumMemKinds; ++k)
    stats_.peak[k] = stats_.current[k];
  stats_.peakTotal = stats_.currentTotal();
}

Tensor::Tensor(size_t n, MemoryTracker *tracker, MemKind kind) : data_(n) {
  track(tracker, kind);
}

Tensor::Tensor(std::vector<float> data, MemoryTracker *tracker, MemKind kind)
    : data_(std::move(data)) {
  track(tracker, kind);
}

Tensor::Tensor(Tensor &&o) noexcept
    : data_(std::move(o.data_)), tracker_(o.tracker_), kind_(o.kind_) {
  o.data_.clear();
  o.tracker_ = nullptr;
}

Tensor &Tensor::operator=(Tensor &&o) noexcept {
  if (this != &o) {
    untrack();
    data_ = std::move(o.data_);
    tracker_ = o.tracker_;
    kind_ = o.kind_;
    o.data_.clear();
    o.tracker_ = nullptr;
  }
  return *this;
}

Tensor::~Tensor() { untrack(); }

void Tensor::track(MemoryTracker *tracker, MemKind kind) {
  if (tracker_ || !tracker)
    return;
  tracker_ = tracker;
  kind_ = kind;
  tracker_->add(kind_, static_cast<int64_t>(data_.size() * sizeof(float)));
}

std::vector<float> Tensor::release() {
  untrack();
  std::vector<float> out = std::move(data_);
  data_.clear();
  return out;
}

void Tensor::untrack() {
  if (tracker_)
    tracker_->release(kind_, static_cast<int64_t>(data_.size() * sizeof(float)));
  tracker_ = nullptr;
}

} // namespace s1f::rt
