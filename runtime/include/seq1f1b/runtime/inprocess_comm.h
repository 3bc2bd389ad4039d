//===- inprocess_comm.h - Ranks as threads of one process --------*- C++ -*-===//
//
// One mailbox per destination rank guarded by a mutex and a condition
// variable. A receive waits until its message arrives, the deadline passes,
// or any rank aborts the run (then every waiter wakes at once).
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_RUNTIME_INPROCESS_COMM_H
#define SEQ1F1B_RUNTIME_INPROCESS_COMM_H

#include "seq1f1b/runtime/communicator.h"

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

namespace s1f::rt {

/// The shared state of P in-process ranks.
class InProcessWorld {
public:
  InProcessWorld(int ranks, std::chrono::milliseconds recvTimeout);
  int size() const { return static_cast<int>(boxes_.size()); }
  std::chrono::milliseconds timeout() const { return timeout_; }
  /// The communicator of one rank (owned by the world).
  Communicator &comm(int rank);
  bool aborted() const;
  std::string abortReason() const;

private:
  friend class InProcessComm;
  struct Mailbox {
    std::mutex mu;
    std::condition_variable cv;
    /// (source rank, tag) -> messages in send order
    std::map<std::pair<int, Tag>, std::deque<std::vector<char>>> queues;
  };

  void abort(const std::string &why);

  std::chrono::milliseconds timeout_;
  std::vector<std::unique_ptr<Mailbox>> boxes_;
  std::vector<std::unique_ptr<Communicator>> comms_;
  mutable std::mutex abortMu_;
  std::string abortReason_; ///< first reason; empty while healthy
};

} // namespace s1f::rt

#endif // SEQ1F1B_RUNTIME_INPROCESS_COMM_H
