//===- data.cpp - Byte tokenizer and shuffled token loader ----------------===//

#include "seq1f1b/runtime/data.h"

#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace s1f::rt {

namespace {

/// SplitMix64: the shuffle must not depend on the standard library.
uint64_t splitmix(uint64_t &state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

} // namespace

std::vector<int32_t> byteTokenize(const std::string &text) {
  std::vector<int32_t> ids;
  ids.reserve(text.size());
  for (unsigned char c : text)
    ids.push_back(c);
  return ids;
}

namespace {

/// Little-endian unsigned token ids of `width` bytes each.
std::vector<int32_t> tokenIds(const std::string &data, size_t width,
                              const std::string &path) {
  if (data.size() % width != 0)
    throw std::invalid_argument("text loader: '" + path + "' has " +
                                std::to_string(data.size()) +
                                " bytes, not a whole number of " +
                                std::to_string(width * 8) + "-bit token ids");
  std::vector<int32_t> ids(data.size() / width);
  for (size_t i = 0; i < ids.size(); ++i) {
    uint32_t v = 0;
    for (size_t b = 0; b < width; ++b)
      v |= uint32_t(static_cast<unsigned char>(data[i * width + b])) << (8 * b);
    if (v > uint32_t(std::numeric_limits<int32_t>::max()))
      throw std::invalid_argument("text loader: '" + path + "': token " +
                                  std::to_string(v) + " at position " +
                                  std::to_string(i) + " is out of range");
    ids[i] = int32_t(v);
  }
  return ids;
}

} // namespace

TextLoader::TextLoader(const std::string &path, int64_t seq, int64_t batch,
                       int microbatches, uint64_t seed, TokenFormat format)
    : seq_(seq), batch_(batch), microbatches_(microbatches), seed_(seed) {
  if (seq < 1 || batch < 1 || microbatches < 1)
    throw std::invalid_argument("text loader: S, B and M must be >= 1");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw std::invalid_argument("text loader: cannot open '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  tokens_ = format == TokenFormat::Bytes ? byteTokenize(ss.str())
            : format == TokenFormat::U16 ? tokenIds(ss.str(), 2, path)
                                         : tokenIds(ss.str(), 4, path);
  if (tokens_.empty())
    throw std::invalid_argument("text loader: '" + path + "' is empty");
  for (size_t i = 0; i < tokens_.size(); ++i)
    if (tokens_[i] > maxToken_)
      maxToken_ = tokens_[i], maxTokenAt_ = int64_t(i);
  const int64_t windows = static_cast<int64_t>(tokens_.size() - 1) / seq_;
  const int64_t needed = batch_ * microbatches_;
  if (windows < needed)
    throw std::invalid_argument(
        "text loader: '" + path + "' has " + std::to_string(tokens_.size()) +
        " tokens, too short for one batch of " + std::to_string(needed) +
        " windows of " + std::to_string(seq_ + 1) + " tokens");
  for (int64_t w = 0; w < windows; ++w)
    order_.push_back(w * seq_);
  shuffle();
}

void TextLoader::shuffle() {
  // Fisher-Yates over the window starts, seeded by (seed, epoch).
  uint64_t state = seed_ * 0x100000001b3ull + static_cast<uint64_t>(epoch_);
  for (size_t i = order_.size() - 1; i > 0; --i)
    std::swap(order_[i], order_[splitmix(state) % (i + 1)]);
  cursor_ = 0;
}

void TextLoader::seek(int64_t epoch, int64_t position) {
  if (epoch < 0 || position < 0 || position > windows())
    throw std::invalid_argument("text loader: cannot resume at window " +
                                std::to_string(position) + " of epoch " +
                                std::to_string(epoch) + ": the file has " +
                                std::to_string(windows()) + " windows");
  // Each epoch shuffles the order the one before left: replay them all.
  for (size_t w = 0; w < order_.size(); ++w)
    order_[w] = int64_t(w) * seq_;
  for (epoch_ = 0; epoch_ <= epoch; ++epoch_)
    shuffle();
  epoch_ = epoch;
  cursor_ = static_cast<size_t>(position);
}

Batch TextLoader::next() {
  const size_t needed = static_cast<size_t>(batch_ * microbatches_);
  if (cursor_ + needed > order_.size()) {
    ++epoch_;
    shuffle();
  }
  Batch b;
  b.batch = batch_;
  b.seq = seq_;
  for (int mb = 0; mb < microbatches_; ++mb) {
    std::vector<int32_t> tokens, targets;
    for (int64_t i = 0; i < batch_; ++i) {
      const int64_t start = order_[cursor_++];
      tokens.insert(tokens.end(), tokens_.begin() + start,
                    tokens_.begin() + start + seq_);
      targets.insert(targets.end(), tokens_.begin() + start + 1,
                     tokens_.begin() + start + seq_ + 1);
    }
    b.tokens.push_back(std::move(tokens));
    b.targets.push_back(std::move(targets));
  }
  return b;
}

} // namespace s1f::rt
