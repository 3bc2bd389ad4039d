//===- communicator.h - Point-to-point messages between ranks ----*- C++ -*-===//
//
// The executor talks to other ranks only through this interface: tagged
// sends (never block) and receives into a caller buffer (block until the
// message is there, with a deadline). Reductions (shared-parameter
// gradients, the global gradient norm) are built on it, so an MPI or NCCL
// implementation only has to provide send and recv.
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_RUNTIME_COMMUNICATOR_H
#define SEQ1F1B_RUNTIME_COMMUNICATOR_H

#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace s1f::rt {

enum class MsgKind {
  Activation,  ///< forward: output of stage-1, input of `stage`
  Gradient,    ///< backward: gradient of stage's output, from stage+1
  ParamGrad,   ///< shared parameter `stage` (= parameter index) gradient
  ReplicaGrad, ///< parameter `stage`'s gradient, summed over replicas
  NormSquare,  ///< partial / total sum of squares of the gradients
  Loss,        ///< step loss: stage 0 = sum of token losses, 1 = token count
  Report,      ///< values gathered for a report (memory peaks, checks)
  TensorParallel, ///< op `stage`'s sum over the tensor-parallel ranks
  TensorParallelGrad, ///< parameter `stage`'s partial gradients summed
  ContextParallel,    ///< op `stage`'s K/V rows of a chunk, over its ranks
  ExpertParallel, ///< rows of moe op `stage` / 8 (phase `stage` % 8)
                  ///< between the ranks holding its experts; phase 5: the
                  ///< op's routed copies summed for the load report, 6:
                  ///< the report's maximum
};

/// Identifies a message: kind, stage, micro-batch, chunk.
struct Tag {
  MsgKind kind;
  int stage = 0;
  int mb = 0;
  int chunk = 0;

  bool operator<(const Tag &o) const;
  /// "activation for stage 2, micro-batch 1, chunk 0".
  std::string describe() const;
};

/// A receive failed: its deadline passed or another rank failed. The
/// message names this rank, the peer, the unit and the time waited.
class CommError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

class Communicator {
public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// Queues `bytes` bytes for `peer`; never blocks.
  virtual void send(int peer, const Tag &tag, const void *data,
                    size_t bytes) = 0;
  /// Blocks until the message `tag` from `peer` arrives and copies it into
  /// `data`, which must be exactly its size. Throws CommError on timeout,
  /// when the run was aborted, or on a size mismatch.
  virtual void recv(int peer, const Tag &tag, void *data, size_t bytes) = 0;
  /// Marks the whole run failed, so that every rank waiting in recv stops
  /// promptly with a message naming `why`.
  virtual void abort(const std::string &why) = 0;
};

/// "rank 1: receive of the activation for stage 2, micro-batch 0, chunk 1
/// from rank 0": how every communicator starts its receive errors.
std::string describeRecv(int self, int peer, const Tag &tag);
/// Seconds since `start`, three decimals ("0.200").
std::string secondsSince(std::chrono::steady_clock::time_point start);

/// Some ranks of `world` as a communicator of their own: its rank i is
/// world rank members[i]. Tags pass unchanged, so groups that share a pair of
/// world ranks must use different tags; errors name world ranks.
class GroupCommunicator : public Communicator {
public:
  /// Throws std::invalid_argument unless `members` holds world.rank() and
  /// only ranks of `world`, each once.
  GroupCommunicator(Communicator &world, std::vector<int> members);
  int rank() const override { return rank_; }
  int size() const override { return static_cast<int>(members_.size()); }
  void send(int peer, const Tag &tag, const void *data, size_t bytes) override {
    world_.send(members_.at(peer), tag, data, bytes);
  }
  void recv(int peer, const Tag &tag, void *data, size_t bytes) override {
    world_.recv(members_.at(peer), tag, data, bytes);
  }
  void abort(const std::string &why) override { world_.abort(why); }

private:
  Communicator &world_;
  std::vector<int> members_;
  int rank_ = -1;
};

/// Sum of `value` over all ranks, on every rank (gather to rank 0, which
/// adds in rank order and sends the total back: bitwise the same everywhere).
double allReduceSum(Communicator &comm, double value, const Tag &tag);
/// The same for a vector, element by element (the same size on every rank).
void allReduceSum(Communicator &comm, std::vector<float> &values,
                  const Tag &tag);
/// The same for `n` floats at `values`.
void allReduceSum(Communicator &comm, float *values, size_t n, const Tag &tag);
/// The largest of each element over all ranks, on every rank.
void allReduceMax(Communicator &comm, float *values, size_t n, const Tag &tag);

/// Every rank's `values` (the same count on every rank), concatenated in
/// rank order, on rank 0; the other ranks get an empty vector.
std::vector<double> gatherToRoot(Communicator &comm,
                                 const std::vector<double> &values,
                                 const Tag &tag);

} // namespace s1f::rt

#endif // SEQ1F1B_RUNTIME_COMMUNICATOR_H
