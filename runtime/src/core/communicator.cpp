//===- communicator.cpp - Tags and reductions over point-to-point ---------===//

#include "seq1f1b/runtime/communicator.h"

#include <algorithm>
#include <iomanip>
#include <sstream>
#include <stdexcept>
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
  case MsgKind::ReplicaGrad:
    return "replica gradient of parameter " + std::to_string(stage);
  case MsgKind::NormSquare:
    return "gradient sum of squares";
  case MsgKind::Loss:
    return stage == 0 ? "loss sum" : "target token count";
  case MsgKind::Report:
    return "report values " + std::to_string(stage);
  case MsgKind::TensorParallel:
    return "tensor-parallel sum of op " + std::to_string(stage);
  case MsgKind::TensorParallelGrad:
    return "tensor-parallel gradient of parameter " + std::to_string(stage);
  case MsgKind::ContextParallel:
    return "context-parallel K/V rows of op " + std::to_string(stage);
  case MsgKind::ExpertParallel:
    return "expert-parallel rows of op " + std::to_string(stage / 8) +
           " (phase " + std::to_string(stage % 8) + ")";
  }
  return "?";
}

std::string describeRecv(int self, int peer, const Tag &tag) {
  return "rank " + std::to_string(self) + ": receive of the " +
         tag.describe() + " from rank " + std::to_string(peer);
}

std::string secondsSince(std::chrono::steady_clock::time_point start) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(3)
    << std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
           .count();
  return s.str();
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

void allReduceSum(Communicator &comm, std::vector<float> &values,
                  const Tag &tag) {
  allReduceSum(comm, values.data(), values.size(), tag);
}

namespace {

/// Gathers every rank's `n` values on rank 0, which combines them in rank
/// order and sends the result back: bitwise the same on every rank.
template <typename Combine>
void allReduce(Communicator &comm, float *values, size_t n, const Tag &tag,
               Combine combine) {
  const size_t bytes = n * sizeof(float);
  if (comm.rank() != 0) {
    comm.send(0, tag, values, bytes);
    comm.recv(0, tag, values, bytes);
    return;
  }
  std::vector<float> part(n);
  for (int r = 1; r < comm.size(); ++r) {
    comm.recv(r, tag, part.data(), bytes);
    for (size_t i = 0; i < n; ++i)
      values[i] = combine(values[i], part[i]);
  }
  for (int r = 1; r < comm.size(); ++r)
    comm.send(r, tag, values, bytes);
}

} // namespace

void allReduceSum(Communicator &comm, float *values, size_t n,
                  const Tag &tag) {
  allReduce(comm, values, n, tag, [](float a, float b) { return a + b; });
}

void allReduceMax(Communicator &comm, float *values, size_t n,
                  const Tag &tag) {
  allReduce(comm, values, n, tag,
            [](float a, float b) { return std::max(a, b); });
}

GroupCommunicator::GroupCommunicator(Communicator &world,
                                     std::vector<int> members)
    : world_(world), members_(std::move(members)) {
  std::vector<bool> seen(world.size(), false);
  for (size_t i = 0; i < members_.size(); ++i) {
    const int m = members_[i];
    if (m < 0 || m >= world.size() || seen[m])
      throw std::invalid_argument("group member " + std::to_string(m) +
                                  " is not a distinct rank of a world of " +
                                  std::to_string(world.size()));
    seen[m] = true;
    if (m == world.rank())
      rank_ = static_cast<int>(i);
  }
  if (rank_ < 0)
    throw std::invalid_argument("rank " + std::to_string(world.rank()) +
                                " is not in its group");
}

std::vector<double> gatherToRoot(Communicator &comm,
                                 const std::vector<double> &values,
                                 const Tag &tag) {
  const size_t bytes = values.size() * sizeof(double);
  if (comm.rank() != 0) {
    comm.send(0, tag, values.data(), bytes);
    return {};
  }
  std::vector<double> all(values);
  all.resize(values.size() * comm.size());
  for (int r = 1; r < comm.size(); ++r)
    comm.recv(r, tag, all.data() + r * values.size(), bytes);
  return all;
}

} // namespace s1f::rt
