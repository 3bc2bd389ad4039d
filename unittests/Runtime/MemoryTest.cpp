//===- MemoryTest.cpp - Tracked buffers and their accounting --------------===//
//
// RowBuffer, the KV caches' and KV-gradient buffers' storage: rows counted
// while committed, contents kept across commits, pages really given back
// (mincore) when their rows are released, and the tracker's peaks.
//
//===----------------------------------------------------------------------===//

#include "seq1f1b/runtime/memory.h"

#include <gtest/gtest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <vector>

namespace s1f::rt {
namespace {

const int64_t kPage = sysconf(_SC_PAGESIZE);

/// Resident pages of [p, p + bytes) (p page-aligned).
int64_t residentPages(const float *p, int64_t bytes) {
  const int64_t pages = (bytes + kPage - 1) / kPage;
  std::vector<unsigned char> in(size_t(pages), 0);
  EXPECT_EQ(mincore(const_cast<float *>(p), size_t(bytes), in.data()), 0);
  int64_t n = 0;
  for (unsigned char c : in)
    n += c & 1;
  return n;
}

TEST(RowBuffer, CountsCommittedRowsOnce) {
  MemoryTracker t;
  {
    RowBuffer b(2, 10, 3, &t, MemKind::KvCache); // rows of 2*3 floats: 24 B
    EXPECT_EQ(t.stats().current[1], 0);          // reserved, not counted
    b.commit(0, 4);
    b.commit(2, 6); // rows 2, 3 again: counted once
    EXPECT_EQ(b.committedBytes(), 6 * 24);
    EXPECT_EQ(t.stats().peakOf(MemKind::KvCache), 6 * 24);
    b.release(4, 6);
    b.release(4, 6); // nothing left there
    EXPECT_EQ(t.stats().current[1], 4 * 24);
    EXPECT_EQ(t.stats().peakOf(MemKind::KvCache), 6 * 24);
    b.commit(8, 20); // clipped to the buffer
    EXPECT_EQ(b.committedBytes(), 6 * 24);
  }
  EXPECT_EQ(t.stats().current[1], 0); // the rest released when it goes
}

TEST(RowBuffer, KeepsDataAndReadsZerosUnwritten) {
  RowBuffer b(2, 8, 4, nullptr, MemKind::KvGrad);
  b.commit(0, 8);
  for (int i = 0; i < 2 * 8 * 4; ++i)
    EXPECT_EQ(b.data()[i], 0.f);
  for (int i = 0; i < 2 * 8 * 4; ++i)
    b.data()[i] = float(i);
  b.release(4, 8); // tiny rows: no whole page is free, nothing is lost
  b.commit(4, 8);
  for (int i = 0; i < 2 * 8 * 4; ++i)
    ASSERT_EQ(b.data()[i], float(i));
  RowBuffer moved = std::move(b);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(moved.data()[5], 5.f);
}

TEST(RowBuffer, GivesPagesBackWhenTheirRowsGo) {
  // One sequence of 8 rows of 4 pages each: the chunk-sized case.
  const int64_t width = 4 * kPage / 4, rowBytes = 4 * kPage;
  RowBuffer b(1, 8, width, nullptr, MemKind::KvCache);
  EXPECT_EQ(residentPages(b.data(), 8 * rowBytes), 0); // nothing behind it
  b.commit(0, 8);
  for (int64_t i = 0; i < 8 * width; ++i)
    b.data()[i] = 1.f;
  EXPECT_EQ(residentPages(b.data(), 8 * rowBytes), 32);
  b.release(6, 8); // the last chunk's rows first, as backwards run
  EXPECT_EQ(residentPages(b.data(), 8 * rowBytes), 24);
  b.release(2, 4); // a hole in the middle
  EXPECT_EQ(residentPages(b.data(), 8 * rowBytes), 16);
  EXPECT_EQ(b.data()[4 * width], 1.f); // rows 4, 5 untouched
  b.commit(2, 4);                      // a released row reads as zeros again
  EXPECT_EQ(b.data()[2 * width], 0.f);
}

TEST(RowBuffer, BadShape) {
  EXPECT_THROW(RowBuffer(0, 8, 4, nullptr, MemKind::KvCache),
               std::invalid_argument);
}

} // namespace
} // namespace s1f::rt
