//===- data.h - Byte-level tokens and batches from a text file ---*- C++ -*-===//
//
// The simplest tokenizer that needs no vocabulary file: one token per byte
// (vocab 256). The loader cuts the file into windows of S+1 bytes (tokens
// and next-token targets), shuffles the window order with a seeded
// generator, and serves batches of M micro-batches x B windows; an epoch
// ends when too few windows are left, and the next one reshuffles.
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_RUNTIME_DATA_H
#define SEQ1F1B_RUNTIME_DATA_H

#include "seq1f1b/runtime/batch.h"

#include <string>

namespace s1f::rt {

constexpr int kByteVocab = 256;

/// One token per byte.
std::vector<int32_t> byteTokenize(const std::string &text);

class TextLoader {
public:
  /// Throws std::invalid_argument naming the path when the file is missing,
  /// empty, or too short for one batch (M*B windows of S+1 bytes).
  TextLoader(const std::string &path, int64_t seq, int64_t batch,
             int microbatches, uint64_t seed);

  Batch next();
  int64_t epoch() const { return epoch_; }
  int64_t windows() const { return static_cast<int64_t>(order_.size()); }

private:
  void shuffle();

  std::vector<int32_t> tokens_;
  int64_t seq_, batch_;
  int microbatches_;
  uint64_t seed_;
  std::vector<int64_t> order_; ///< window starts, shuffled per epoch
  size_t cursor_ = 0;
  int64_t epoch_ = 0;
};

} // namespace s1f::rt

#endif // SEQ1F1B_RUNTIME_DATA_H
