//===- batch.h - The token data of one training step -------------*- C++ -*-===//

#ifndef SEQ1F1B_RUNTIME_BATCH_H
#define SEQ1F1B_RUNTIME_BATCH_H

#include <cstdint>
#include <vector>

namespace s1f::rt {

/// M micro-batches of B sequences of S tokens. Every stage sees all of it:
/// embeddings read the tokens, the loss reads the targets (< 0: ignored).
struct Batch {
  int64_t batch = 1; ///< B, sequences per micro-batch
  int64_t seq = 0;   ///< S, tokens per sequence
  std::vector<std::vector<int32_t>> tokens;  ///< [M][B*S]
  std::vector<std::vector<int32_t>> targets; ///< [M][B*S]

  int microbatches() const { return static_cast<int>(tokens.size()); }
  /// Targets >= 0 over all micro-batches: the loss is their mean.
  int64_t targetTokens() const {
    int64_t n = 0;
    for (const auto &t : targets)
      for (int32_t x : t)
        n += x >= 0;
    return n;
  }
};

} // namespace s1f::rt

#endif // SEQ1F1B_RUNTIME_BATCH_H
