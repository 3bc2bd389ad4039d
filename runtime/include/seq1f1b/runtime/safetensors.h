//===- safetensors.h - fp32 tensors in the safetensors format ---*- C++ -*-===//
//
// Training checkpoints are safetensors files, so that PyTorch
// (`safetensors.torch.load_file`) and other tools read them as they are: an
// 8-byte little-endian header length, a JSON header naming every tensor's
// dtype, shape and byte range (plus string metadata under "__metadata__"),
// then the raw little-endian data. Written as F32, which is what the runtime
// keeps; read from F32, BF16 or F16 (Hugging Face checkpoints). The format is
// small enough to write here; Debian packages no C++ library for it.
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_RUNTIME_SAFETENSORS_H
#define SEQ1F1B_RUNTIME_SAFETENSORS_H

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace s1f::rt {

struct Tensor32 {
  std::vector<int64_t> shape;
  std::vector<float> data; ///< row-major, as many elements as the shape says
};

using TensorMap = std::map<std::string, Tensor32>;
using StringMap = std::map<std::string, std::string>;

/// Writes the tensors (in name order) and the metadata. Throws
/// std::runtime_error naming the path when it cannot write, and
/// std::invalid_argument when a tensor's data does not match its shape.
void writeSafetensors(const std::string &path, const TensorMap &tensors,
                      const StringMap &metadata = {});

/// Reads a file written as above, or any safetensors file of F32, BF16 or
/// F16 tensors (Hugging Face checkpoints), as fp32. Throws
/// std::invalid_argument naming the path and what is wrong: missing file,
/// not a safetensors file, a tensor of another dtype, byte ranges that do not
/// fit the data.
TensorMap readSafetensors(const std::string &path,
                          StringMap *metadata = nullptr);

} // namespace s1f::rt

#endif // SEQ1F1B_RUNTIME_SAFETENSORS_H
