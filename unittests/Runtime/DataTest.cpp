//===- DataTest.cpp - Byte tokenizer and text loader ----------------------===//

#include "seq1f1b/runtime/data.h"

#include "TestUtil.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <functional>
#include <utility>
#include <vector>

namespace s1f::rt {
namespace {

std::string writeFile(const std::string &name, const std::string &text) {
  std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

std::string errorOf(const std::function<void()> &f) {
  return cpu::test::invalidArgumentOf(f);
}

TEST(Data, ByteTokens) {
  EXPECT_EQ(byteTokenize("A\xff"), (std::vector<int32_t>{65, 255}));
}

TEST(Data, WindowsAreShiftedAndShuffledBySeed) {
  std::string text;
  for (int i = 0; i < 200; ++i)
    text += static_cast<char>('a' + i % 26);
  std::string path = writeFile("corpus.txt", text);
  TextLoader a(path, 8, 2, 3, 42), b(path, 8, 2, 3, 42), c(path, 8, 2, 3, 43);
  Batch x = a.next(), y = b.next(), z = c.next();
  ASSERT_EQ(x.microbatches(), 3);
  ASSERT_EQ(x.tokens[0].size(), 16u);
  EXPECT_EQ(x.tokens, y.tokens);
  EXPECT_NE(x.tokens, z.tokens);
  for (size_t i = 0; i + 1 < 8; ++i) // targets are the next byte
    EXPECT_EQ(x.targets[1][i], x.tokens[1][i + 1]);
  // 24 windows, 6 per batch: the fifth batch starts epoch 1.
  for (int i = 0; i < 4; ++i)
    a.next();
  EXPECT_EQ(a.epoch(), 1);
}

TEST(Data, SeekResumesTheOrderAcrossEpochs) {
  std::string text;
  for (int i = 0; i < 200; ++i)
    text += static_cast<char>('a' + (i * 7) % 26);
  const std::string path = writeFile("resume.txt", text);
  TextLoader a(path, 8, 2, 3, 42); // 24 windows, 6 per batch
  for (int i = 0; i < 9; ++i)      // into epoch 2
    a.next();
  ASSERT_EQ(a.epoch(), 2);
  TextLoader b(path, 8, 2, 3, 42);
  b.seek(a.epoch(), a.position());
  for (int i = 0; i < 6; ++i) // and on into epoch 3
    EXPECT_EQ(a.next().tokens, b.next().tokens) << "batch " << i;
  EXPECT_NE(errorOf([&] { b.seek(0, 25); })
                .find("cannot resume at window 25 of epoch 0: the file has 24 "
                      "windows"),
            std::string::npos);
}

TEST(Data, ErrorsNameTheFile) {
  EXPECT_NE(errorOf([] { TextLoader("/nonexistent/x.txt", 8, 1, 1, 0); })
                .find("cannot open '/nonexistent/x.txt'"),
            std::string::npos);
  std::string empty = writeFile("empty.txt", "");
  EXPECT_NE(errorOf([&] { TextLoader(empty, 8, 1, 1, 0); }).find("is empty"),
            std::string::npos);
  std::string shortFile = writeFile("short.txt", "hello world");
  EXPECT_NE(errorOf([&] {
              TextLoader(shortFile, 8, 2, 1, 0);
            }).find("too short for one batch of 2 windows of 9 tokens"),
            std::string::npos);
}

/// Token ids as a little-endian file of `width`-byte integers.
std::string idFile(const std::string &name, const std::vector<uint32_t> &ids,
                   int width) {
  std::string bytes;
  for (uint32_t id : ids)
    for (int b = 0; b < width; ++b)
      bytes += static_cast<char>((id >> (8 * b)) & 0xff);
  return writeFile(name, bytes);
}

TEST(Data, TokenIdFiles) {
  std::vector<uint32_t> ids;
  for (uint32_t i = 0; i < 41; ++i)
    ids.push_back(50000 + 7 * i); // u16 still: below 65536
  for (auto [format, width] :
       {std::pair{TokenFormat::U16, 2}, std::pair{TokenFormat::U32, 4}}) {
    const std::string path = idFile("ids.bin", ids, width);
    TextLoader l(path, 8, 1, 5, 1, format); // 5 windows of 9 tokens
    EXPECT_EQ(l.windows(), 5);
    EXPECT_EQ(l.maxToken(), 50280);
    EXPECT_EQ(l.maxTokenAt(), 40);
    Batch b = l.next();
    for (int mb = 0; mb < 5; ++mb) {
      const int32_t first = b.tokens[mb][0];
      EXPECT_EQ((first - 50000) % 7, 0);
      for (int i = 0; i < 8; ++i) { // the file's ids in order, shifted by one
        EXPECT_EQ(b.tokens[mb][i], first + 7 * i);
        EXPECT_EQ(b.targets[mb][i], first + 7 * (i + 1));
      }
    }
  }
  const std::string odd = writeFile("odd.bin", "abc");
  EXPECT_NE(errorOf([&] {
              TextLoader(odd, 1, 1, 1, 0, TokenFormat::U16);
            }).find("3 bytes, not a whole number of 16-bit token ids"),
            std::string::npos);
  const std::string huge = idFile("huge.bin", {1, 2, 0x80000000u}, 4);
  EXPECT_NE(errorOf([&] {
              TextLoader(huge, 1, 1, 1, 0, TokenFormat::U32);
            }).find("token 2147483648 at position 2 is out of range"),
            std::string::npos);
}

} // namespace
} // namespace s1f::rt
