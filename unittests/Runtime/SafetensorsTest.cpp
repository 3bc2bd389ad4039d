//===- SafetensorsTest.cpp - Checkpoint files -----------------------------===//
//
// writeSafetensors/readSafetensors round trip, the bytes the format fixes
// (checked against the format by hand here; test/Runtime/seq1f1b-train.test
// reads a checkpoint with an independent Python reader), and the errors for
// files that are not safetensors, other dtypes and ranges that do not fit.
//
//===----------------------------------------------------------------------===//

#include "seq1f1b/runtime/safetensors.h"

#include "TestUtil.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>

namespace s1f::rt {
namespace {

std::string tempPath(const std::string &name) {
  return ::testing::TempDir() + "/" + name;
}

std::string readAll(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void writeAll(const std::string &path, const std::string &bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string errorOf(const std::function<void()> &f) {
  return cpu::test::invalidArgumentOf(f);
}

/// A file with this header text and `data` after it.
std::string file(const std::string &header, const std::string &data = "") {
  std::string bytes(8, '\0');
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i)
    bytes[i] = static_cast<char>(n >> (8 * i));
  return bytes + header + data;
}

TEST(Safetensors, RoundTripsTensorsAndMetadata) {
  TensorMap t;
  t["b"] = {{2, 3}, {1, 2, 3, 4, 5, -6.5f}};
  t["a.bias"] = {{1}, {0.25f}};
  const std::string path = tempPath("t.safetensors");
  writeSafetensors(path, t, {{"step", "7"}});
  StringMap meta;
  TensorMap back = readSafetensors(path, &meta);
  EXPECT_EQ(meta.at("step"), "7");
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back.at("b").shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(back.at("b").data, t.at("b").data);
  EXPECT_EQ(back.at("a.bias").data, t.at("a.bias").data);

  // The layout: header length, a header padded to 8 bytes, then the data in
  // name order ("a.bias" first), little-endian fp32.
  const std::string bytes = readAll(path);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i)
    n |= uint64_t(static_cast<unsigned char>(bytes[i])) << (8 * i);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + n + 7 * sizeof(float));
  const std::string header = bytes.substr(8, n);
  EXPECT_NE(header.find("\"a.bias\":{\"dtype\":\"F32\",\"shape\":[1],"
                        "\"data_offsets\":[0,4]}"),
            std::string::npos)
      << header;
  EXPECT_NE(header.find("\"data_offsets\":[4,28]"), std::string::npos);
  float first;
  std::memcpy(&first, bytes.data() + 8 + n, 4);
  EXPECT_EQ(first, 0.25f);
}

TEST(Safetensors, ReadsHalfPrecisionAsFloat) {
  // bf16 1.5 = 0x3fc0, -2^-10 = 0xba80; f16 1.5 = 0x3e00, the smallest
  // subnormal 2^-24 = 0x0001, -65504 = 0xfbff, infinity = 0x7c00.
  const std::string path = tempPath("half.safetensors");
  std::string data;
  for (uint16_t h : {0x3fc0, 0xba80, 0x3e00, 0x0001, 0xfbff, 0x7c00}) {
    data += char(h & 0xff);
    data += char(h >> 8);
  }
  writeAll(path, file("{\"b\":{\"dtype\":\"BF16\",\"shape\":[2],"
                      "\"data_offsets\":[0,4]},"
                      "\"h\":{\"dtype\":\"F16\",\"shape\":[2,2],"
                      "\"data_offsets\":[4,12]}}",
                      data));
  TensorMap t = readSafetensors(path);
  EXPECT_EQ(t.at("b").data, (std::vector<float>{1.5f, -0x1p-10f}));
  EXPECT_EQ(t.at("h").shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(t.at("h").data,
            (std::vector<float>{1.5f, 0x1p-24f, -65504.0f,
                                std::numeric_limits<float>::infinity()}));
}

TEST(Safetensors, RejectsWhatItCannotRead) {
  const std::string path = tempPath("bad.safetensors");
  EXPECT_NE(errorOf([] {
              readSafetensors("/nonexistent/x.safetensors");
            }).find("cannot open"),
            std::string::npos);
  writeAll(path, "abc");
  EXPECT_NE(errorOf([&] {
              readSafetensors(path);
            }).find("not a safetensors file (shorter than"),
            std::string::npos);
  writeAll(path, file("{\"x\":"));
  EXPECT_NE(errorOf([&] { readSafetensors(path); }).find("its header"),
            std::string::npos);
  writeAll(path, file("{\"x\":{\"dtype\":\"I64\",\"shape\":[1],"
                      "\"data_offsets\":[0,8]}}",
                      "abcdefgh"));
  EXPECT_NE(errorOf([&] {
              readSafetensors(path);
            }).find("tensor 'x' is I64; F32, BF16 and F16 are read"),
            std::string::npos);
  writeAll(path, file("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],"
                      "\"data_offsets\":[0,8]}}",
                      "abcd")); // 4 of the 8 bytes
  EXPECT_NE(errorOf([&] {
              readSafetensors(path);
            }).find("tensor 'x': its byte range does not fit"),
            std::string::npos);
  EXPECT_THROW(writeSafetensors(path, {{"y", {{3}, {1, 2}}}}),
               std::invalid_argument);
}

} // namespace
} // namespace s1f::rt
