//===- safetensors.cpp - fp32 tensors in the safetensors format -----------===//

#include "seq1f1b/runtime/safetensors.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace s1f::rt {

namespace {

int64_t elements(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

std::invalid_argument bad(const std::string &path, const std::string &what) {
  return std::invalid_argument(path + ": " + what);
}

} // namespace

void writeSafetensors(const std::string &path, const TensorMap &tensors,
                      const StringMap &metadata) {
  nlohmann::ordered_json header;
  if (!metadata.empty())
    header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto &[name, t] : tensors) {
    if (elements(t.shape) != int64_t(t.data.size()))
      throw std::invalid_argument("safetensors: tensor '" + name + "' has " +
                                  std::to_string(t.data.size()) +
                                  " elements for its shape");
    const uint64_t bytes = t.data.size() * sizeof(float);
    header[name] = {{"dtype", "F32"},
                    {"shape", t.shape},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' '); // the data 8-byte aligned
  std::ofstream out(path, std::ios::binary);
  const uint64_t size = text.size();
  unsigned char length[8];
  for (int i = 0; i < 8; ++i)
    length[i] = static_cast<unsigned char>(size >> (8 * i));
  out.write(reinterpret_cast<const char *>(length), 8);
  out << text;
  // The runtime runs on little-endian machines only (x86-64, aarch64).
  for (const auto &[name, t] : tensors)
    out.write(reinterpret_cast<const char *>(t.data.data()),
              std::streamsize(t.data.size() * sizeof(float)));
  if (!out.flush())
    throw std::runtime_error("cannot write " + path);
}

namespace {

/// bfloat16: the high half of an IEEE float.
float bf16ToFloat(uint16_t h) {
  const uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

/// IEEE half (1 sign, 5 exponent, 10 mantissa bits) to float, subnormals,
/// infinities and NaN included.
float halfToFloat(uint16_t h) {
  const int sign = h >> 15, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  float magnitude;
  if (exponent == 0)
    magnitude = std::ldexp(float(mantissa), -24);
  else if (exponent == 31)
    magnitude = mantissa ? std::numeric_limits<float>::quiet_NaN()
                         : std::numeric_limits<float>::infinity();
  else
    magnitude = std::ldexp(float(mantissa | 0x400), exponent - 25);
  return sign ? -magnitude : magnitude;
}

} // namespace

TensorMap readSafetensors(const std::string &path, StringMap *metadata) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw bad(path, "cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string file = ss.str();
  if (file.size() < 8)
    throw bad(path, "not a safetensors file (shorter than its 8-byte header "
                    "length)");
  uint64_t size = 0;
  for (int i = 0; i < 8; ++i)
    size |= uint64_t(static_cast<unsigned char>(file[i])) << (8 * i);
  if (size > file.size() - 8)
    throw bad(path, "not a safetensors file (a header of " +
                        std::to_string(size) + " bytes in a file of " +
                        std::to_string(file.size()) + ")");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(file.substr(8, size));
  } catch (const nlohmann::json::exception &e) {
    throw bad(path, std::string("not a safetensors file (its header: ") +
                        e.what() + ")");
  }
  if (!header.is_object())
    throw bad(path, "not a safetensors file (its header is not an object)");
  const uint64_t dataStart = 8 + size, dataBytes = file.size() - dataStart;
  TensorMap tensors;
  for (const auto &[name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (metadata)
        for (const auto &[k, v] : entry.items())
          (*metadata)[k] = v.is_string() ? v.get<std::string>() : v.dump();
      continue;
    }
    try {
      const std::string dtype = entry.at("dtype").get<std::string>();
      const size_t width = dtype == "F32"                      ? 4
                           : dtype == "BF16" || dtype == "F16" ? 2
                                                               : 0;
      if (!width)
        throw bad(path, "tensor '" + name + "' is " + dtype +
                            "; F32, BF16 and F16 are read");
      Tensor32 t;
      t.shape = entry.at("shape").get<std::vector<int64_t>>();
      const auto range = entry.at("data_offsets").get<std::vector<uint64_t>>();
      const uint64_t want = uint64_t(elements(t.shape)) * width;
      if (range.size() != 2 || range[1] < range[0] ||
          range[1] - range[0] != want || range[1] > dataBytes)
        throw bad(path, "tensor '" + name +
                            "': its byte range does not fit its shape or the "
                            "file");
      t.data.resize(size_t(elements(t.shape)));
      const char *raw = file.data() + dataStart + range[0];
      if (width == 4) {
        std::memcpy(t.data.data(), raw, want);
      } else {
        for (size_t i = 0; i < t.data.size(); ++i) {
          uint16_t h;
          std::memcpy(&h, raw + 2 * i, 2);
          t.data[i] = dtype == "BF16" ? bf16ToFloat(h) : halfToFloat(h);
        }
      }
      tensors.emplace(name, std::move(t));
    } catch (const nlohmann::json::exception &e) {
      throw bad(path, "tensor '" + name + "': " + e.what());
    }
  }
  return tensors;
}

} // namespace s1f::rt
