//===- data.h - Tokens and batches from a text or token file ----*- C++ -*-===//
//
// Tokens come from a text file, one per byte (vocab 256: the simplest
// tokenizer, no vocabulary file), or from a file already tokenized: a flat
// array of little-endian uint16 or uint32 token ids (nanoGPT's train.bin is
// uint16). The loader cuts the tokens into windows of S+1 (tokens and
// next-token targets), shuffles the window order with a seeded generator,
// and serves batches of M micro-batches x B windows; an epoch ends when too
// few windows are left, and the next one reshuffles.
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

/// How a data file holds its tokens.
enum class TokenFormat { Bytes, U16, U32 };

class TextLoader {
public:
  /// Throws std::invalid_argument naming the path when the file is missing,
  /// empty, not a whole number of token ids, or too short for one batch (M*B
  /// windows of S+1 tokens).
  TextLoader(const std::string &path, int64_t seq, int64_t batch,
             int microbatches, uint64_t seed,
             TokenFormat format = TokenFormat::Bytes);

  Batch next();
  /// The largest token id in the file (and the first place it occurs), for
  /// checking it against a model's vocabulary before training.
  int32_t maxToken() const { return maxToken_; }
  int64_t maxTokenAt() const { return maxTokenAt_; }
  int64_t epoch() const { return epoch_; }
  /// Windows served in this epoch; seek(epoch(), position()) on a loader of
  /// the same file, shape and seed continues exactly here (a resumed run).
  int64_t position() const { return static_cast<int64_t>(cursor_); }
  /// Throws std::invalid_argument when `position` is past the epoch's end.
  void seek(int64_t epoch, int64_t position);
  int64_t windows() const { return static_cast<int64_t>(order_.size()); }

private:
  void shuffle();

  std::vector<int32_t> tokens_;
  int32_t maxToken_ = -1;
  int64_t maxTokenAt_ = -1;
  int64_t seq_, batch_;
  int microbatches_;
  uint64_t seed_;
  std::vector<int64_t> order_; ///< window starts, shuffled per epoch
  size_t cursor_ = 0;
  int64_t epoch_ = 0;
};

} // namespace s1f::rt

#endif // SEQ1F1B_RUNTIME_DATA_H
