//===- mpi_comm.h - Ranks as MPI processes ----------------------*- C++ -*-===//
//
// One process per rank under `mpirun -np P`, on one machine or many. Built
// only when CMake finds MPI (then the target s1f_runtime_mpi exists and
// defines SEQ1F1B_HAVE_MPI for its users). <mpi.h> stays out of this header.
//
// Sends are MPI_Isend of a private copy (never block); receives poll
// MPI_Improbe / MPI_Test until the message is there or the deadline passes
// (no blocking MPI call that could hang forever). abort() ends the whole job
// with MPI_Abort, so every process exits non-zero. MPI calls are made from
// the thread that initialized MPI only (MPI_THREAD_FUNNELED).
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_RUNTIME_MPI_COMM_H
#define SEQ1F1B_RUNTIME_MPI_COMM_H

#include "seq1f1b/runtime/communicator.h"

#include <chrono>
#include <memory>

namespace s1f::rt {

/// MPI_Init_thread (MPI_THREAD_FUNNELED) in the constructor, MPI_Finalize
/// in the destructor; one per process, created before any MpiCommunicator
/// and destroyed after the last one. Throws std::runtime_error if MPI is
/// already initialized or cannot give the thread level.
class MpiEnvironment {
public:
  MpiEnvironment(int &argc, char **&argv);
  ~MpiEnvironment();
  /// For failures before or outside a communicator's reach (a bad file on
  /// one host): prints "seq1f1b: rank R aborts the MPI job: <why>" and calls
  /// MPI_Abort(MPI_COMM_WORLD, 1). Does not return.
  [[noreturn]] static void abort(const std::string &why);
  MpiEnvironment(const MpiEnvironment &) = delete;
  MpiEnvironment &operator=(const MpiEnvironment &) = delete;
};

/// The MPI tag of a message, 31 bits (bit 0 lowest):
///
///   activation, gradient:   stage [30:22]  micro-batch [21:11]
///                           chunk [10:4]   kind [3:0]
///   shared-param gradient,  index (the Tag's stage) [30:4]
///   replica gradient,       kind [3:0]
///   norm square, loss,
///   report, tensor-parallel
///   sum and gradient,
///   context-parallel and
///   expert-parallel rows:
///   abort notice:           15 (kind 15, the other bits 0)
///
/// kind is the MsgKind's value (0..10). So stage < 512, micro-batch < 2048,
/// chunk < 128, index < 2^27; the reduction kinds need micro-batch = chunk
/// = 0. The stage sits highest: a pipeline of K stages needs tags below
/// K * 2^22, so an MPI whose MPI_TAG_UB is below Open MPI's 2^31 - 1 still
/// runs short pipelines.
struct MpiTagLayout {
  static constexpr int kindBits = 4;
  static constexpr int chunkBits = 7;
  static constexpr int microbatchBits = 11;
  static constexpr int stageBits = 9;
  static constexpr int indexBits = 27;
};

/// `tag` as an MPI tag. Throws CommError naming the field if one is out of
/// range, or if the result exceeds `tagUpperBound` (the MPI's MPI_TAG_UB).
int encodeMpiTag(const Tag &tag, int tagUpperBound = 0x7fffffff);
/// The inverse of encodeMpiTag.
Tag decodeMpiTag(int mpiTag);

/// This process's rank in MPI_COMM_WORLD (on a private duplicate of it, so
/// its messages never meet other libraries'). Receives wait at most
/// `recvTimeout` for their message; then they throw CommError:
///   rank 3: receive of the activation for stage 3, micro-batch 1, chunk 0
///   from rank 2: timed out after 2.000 s; rank 2 never sent it (dead, hung
///   or deadlocked?)
class MpiCommunicator : public Communicator {
public:
  /// Needs an initialized MPI (MpiEnvironment) and the calling thread to be
  /// the one that initialized it.
  explicit MpiCommunicator(std::chrono::milliseconds recvTimeout);
  /// Waits (up to the deadline) until the sends still in flight are done;
  /// if they are not, aborts the job naming them.
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator &) = delete;
  MpiCommunicator &operator=(const MpiCommunicator &) = delete;

  int rank() const override;
  int size() const override;
  /// Copies the bytes and starts an MPI_Isend; never blocks. Messages over
  /// 2^31 - 1 bytes are an error.
  void send(int peer, const Tag &tag, const void *data, size_t bytes) override;
  /// Polls for the message until the deadline (CommError then, naming this
  /// rank, the peer, the unit and the time waited). A message of another
  /// size than `bytes` is received and then reported as a CommError. Once a
  /// message is matched, its data must arrive within a further deadline, or
  /// the job is aborted (the receive cannot be cancelled then).
  void recv(int peer, const Tag &tag, void *data, size_t bytes) override;
  /// Prints "seq1f1b: rank R aborts the MPI job: <why>" to stderr, sends
  /// `why` to every other rank (a rank waiting in recv then fails at once:
  /// "... from rank 2: gave up after 1.502 s because the run failed
  /// (<why>)"), lets them report for a grace period (a quarter of the
  /// deadline, 0.1 to 1 s), then calls MPI_Abort(MPI_COMM_WORLD, 1): every
  /// process of the job ends and mpirun exits non-zero. Does not return.
  void abort(const std::string &why) override;

  /// Waits until every send of this rank is complete; throws CommError
  /// naming the first pending one after the deadline.
  void flush();
  std::chrono::milliseconds timeout() const;
  /// Sends started and not yet known to be complete.
  size_t pendingSends() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace s1f::rt

#endif // SEQ1F1B_RUNTIME_MPI_COMM_H
