//===- communicator.cpp - Tags and reductions over point-to-point ---------===//

#include "seq1f1b/runtime/communicator.h"

#include <tuple>

namespace s1f::rt {

bool Tag::operator<(const Tag &o) const {
  return std::tie(kind, stage, mb, chunk) <
         std::tie(o.kind, o.stage, o.mb, o.chunk);
}

std::string Tag::describe() const {
  switch (kind) {
  case MsgKind::Activation:
  case MsgKind::Gradient:
    return std::string(kind == MsgKind::Activation ? "activation" : "gradient") +
           " for stage " + std::to_string(stage) + ", micro-batch " +
           std::to_string(mb) + ", chunk " + std::to_string(chunk);
  case MsgKind::ParamGrad:
    return "gradient of shared parameter " + std::to_string(stage);
  case MsgKind::NormSquare:
    return "gradient sum of squares";
  }
  return "?";
}

double allReduceSum(Communicator &comm, double value, const Tag &tag) {
  const int n = comm.size();
  if (comm.rank() != 0) {
    comm.send(0, tag, &value, sizeof value);
    comm.recv(0, tag, &value, sizeof value);
    return value;
  }
  for (int r = 1; r < n; ++r) {
    double part;
    comm.recv(r, tag, &part, sizeof part);
    value += part;
  }
  for (int r = 1; r < n; ++r)
    comm.send(r, tag, &value, sizeof value);
  return value;
}

} // namespace s1f::rt
