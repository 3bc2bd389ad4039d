//===- params.h - A rank's parameters, gradients, optimizer state -*- C++ -*-===//

#ifndef SEQ1F1B_RUNTIME_PARAMS_H
#define SEQ1F1B_RUNTIME_PARAMS_H

#include <map>
#include <vector>

namespace s1f::rt {

struct ParamState {
  std::vector<float> value, grad, m, v; ///< grad, AdamW m and v: fp32
};

/// The parameters one rank holds, by graph parameter index. Stages of the
/// same rank that read the same parameter share its entry, so their
/// gradients add up in one buffer.
using ParamStore = std::map<int, ParamState>;

} // namespace s1f::rt

#endif // SEQ1F1B_RUNTIME_PARAMS_H
