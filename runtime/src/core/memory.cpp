//===- memory.cpp - Tracked buffers ---------------------------------------===//

#include "seq1f1b/runtime/memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
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
  windowPeak_ = std::max(windowPeak_, stats_.currentTotal());
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

//===----------------------------------------------------------------------===//
// RowBuffer
//===----------------------------------------------------------------------===//

RowBuffer::RowBuffer(int64_t batch, int64_t rows, int64_t width,
                     MemoryTracker *tracker, MemKind kind)
    : batch_(batch), rows_(rows), width_(width), committed_(size_t(rows)),
      tracker_(tracker), kind_(kind) {
  if (batch <= 0 || rows <= 0 || width <= 0)
    throw std::invalid_argument("RowBuffer: batch, rows and width must be "
                                "positive");
  mapped_ = size_t(batch * rows * width) * sizeof(float);
  // Reserved, not committed: the kernel gives a page memory when it is first
  // touched, and a never-written page reads as zeros.
  void *p = mmap(nullptr, mapped_, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    throw std::runtime_error("RowBuffer: cannot reserve " +
                             std::to_string(mapped_) +
                             " bytes: " + std::strerror(errno));
  data_ = static_cast<float *>(p);
}

RowBuffer::RowBuffer(RowBuffer &&o) noexcept { *this = std::move(o); }

RowBuffer &RowBuffer::operator=(RowBuffer &&o) noexcept {
  if (this != &o) {
    reset();
    std::swap(data_, o.data_);
    std::swap(mapped_, o.mapped_);
    std::swap(batch_, o.batch_);
    std::swap(rows_, o.rows_);
    std::swap(width_, o.width_);
    std::swap(committed_, o.committed_);
    std::swap(committedRows_, o.committedRows_);
    std::swap(tracker_, o.tracker_);
    std::swap(kind_, o.kind_);
  }
  return *this;
}

RowBuffer::~RowBuffer() { reset(); }

void RowBuffer::reset() {
  if (!data_)
    return;
  if (tracker_)
    tracker_->release(kind_, committedBytes());
  munmap(data_, mapped_);
  data_ = nullptr;
  committed_.clear();
  committedRows_ = 0;
}

int64_t RowBuffer::committedBytes() const {
  return committedRows_ * rowBytes();
}

void RowBuffer::commit(int64_t begin, int64_t end) {
  int64_t added = 0;
  for (int64_t r = std::max<int64_t>(begin, 0); r < std::min(end, rows_); ++r)
    if (!committed_[size_t(r)]) {
      committed_[size_t(r)] = true;
      ++added;
    }
  committedRows_ += added;
  if (tracker_ && added)
    tracker_->add(kind_, added * rowBytes());
}

void RowBuffer::release(int64_t begin, int64_t end) {
  begin = std::max<int64_t>(begin, 0);
  end = std::min(end, rows_);
  int64_t removed = 0;
  for (int64_t r = begin; r < end; ++r)
    if (committed_[size_t(r)]) {
      committed_[size_t(r)] = false;
      ++removed;
    }
  committedRows_ -= removed;
  if (tracker_ && removed)
    tracker_->release(kind_, removed * rowBytes());
  // Give back the pages that now hold no committed row, in each sequence's
  // run of rows: [first uncommitted row before begin, last after end).
  static const size_t page = size_t(sysconf(_SC_PAGESIZE));
  while (begin > 0 && !committed_[size_t(begin - 1)])
    --begin;
  while (end < rows_ && !committed_[size_t(end)])
    ++end;
  const size_t rowFloats = size_t(width_);
  auto *base = reinterpret_cast<char *>(data_);
  for (int64_t b = 0; b < batch_; ++b) {
    const size_t seq = size_t(b * rows_) * rowFloats * sizeof(float);
    size_t lo = seq + size_t(begin) * rowFloats * sizeof(float);
    size_t hi = seq + size_t(end) * rowFloats * sizeof(float);
    // A page wholly inside the free run (the mapping's end counts as free).
    lo = (lo + page - 1) / page * page;
    hi = hi == mapped_ ? (hi + page - 1) / page * page : hi / page * page;
    if (hi > lo)
      madvise(base + lo, hi - lo, MADV_DONTNEED);
  }
}

} // namespace s1f::rt
