//===- DataTest.cpp - Byte tokenizer and text loader ----------------------===//

#include "seq1f1b/runtime/data.h"

#include <gtest/gtest.h>

#include <fstream>
#include <functional>

namespace s1f::rt {
namespace {

std::string writeFile(const std::string &name, const std::string &text) {
  std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

std::string errorOf(const std::function<void()> &f) {
  try {
    f();
  } catch (const std::invalid_argument &e) {
    return e.what();
  }
  return "";
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

TEST(Data, ErrorsNameTheFile) {
  EXPECT_NE(errorOf([] { TextLoader("/nonexistent/x.txt", 8, 1, 1, 0); })
                .find("cannot open '/nonexistent/x.txt'"),
            std::string::npos);
  std::string empty = writeFile("empty.txt", "");
  EXPECT_NE(errorOf([&] { TextLoader(empty, 8, 1, 1, 0); }).find("is empty"),
            std::string::npos);
  std::string shortFile = writeFile("short.txt", "hello world");
  EXPECT_NE(errorOf([&] { TextLoader(shortFile, 8, 2, 1, 0); })
                .find("too short for one batch of 2 windows of 9 bytes"),
            std::string::npos);
}

} // namespace
} // namespace s1f::rt
