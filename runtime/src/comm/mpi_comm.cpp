//===- mpi_comm.cpp - Point-to-point over MPI with deadlines --------------===//

#include "seq1f1b/runtime/mpi_comm.h"

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>

namespace s1f::rt {

using Clock = std::chrono::steady_clock;

namespace {

std::string mpiError(int rc) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS)
    return "MPI error " + std::to_string(rc);
  return std::string(text, len);
}

/// Sleeps a little longer the longer a wait lasts: yields first (a message
/// in flight usually lands within microseconds), then 20 us steps, then
/// 0.5 ms, so a rank waiting for seconds costs (almost) no CPU.
class Backoff {
public:
  explicit Backoff(Clock::time_point start) : start_(start) {}
  void pause() {
    using namespace std::chrono_literals;
    if (++polls_ < 64)
      std::this_thread::yield();
    else if (Clock::now() - start_ < 10ms)
      std::this_thread::sleep_for(20us);
    else
      std::this_thread::sleep_for(500us);
  }

private:
  Clock::time_point start_;
  int polls_ = 0;
};

void checkField(const char *what, int value, int bits, const Tag &tag) {
  if (value < 0 || value >= (1 << bits))
    throw CommError("the " + tag.describe() + " does not fit an MPI tag: " +
                    what + " " + std::to_string(value) + " is outside [0, " +
                    std::to_string((1 << bits) - 1) + "]");
}

} // namespace

//===----------------------------------------------------------------------===//
// Tags
//===----------------------------------------------------------------------===//

int encodeMpiTag(const Tag &tag, int tagUpperBound) {
  using L = MpiTagLayout;
  static_assert(L::kindBits + L::chunkBits + L::microbatchBits + L::stageBits ==
                    31,
                "unit tags use 31 bits");
  static_assert(L::kindBits + L::indexBits == 31, "index tags use 31 bits");
  const int kind = static_cast<int>(tag.kind);
  if (kind < 0 || kind > static_cast<int>(MsgKind::ExpertParallel))
    throw CommError("message kind " + std::to_string(kind) + " has no MPI tag");
  int value;
  if (tag.kind == MsgKind::Activation || tag.kind == MsgKind::Gradient) {
    checkField("stage", tag.stage, L::stageBits, tag);
    checkField("micro-batch", tag.mb, L::microbatchBits, tag);
    checkField("chunk", tag.chunk, L::chunkBits, tag);
    value =
        (((tag.stage << L::microbatchBits | tag.mb) << L::chunkBits | tag.chunk)
         << L::kindBits) |
        kind;
  } else {
    checkField("index", tag.stage, L::indexBits, tag);
    if (tag.mb != 0 || tag.chunk != 0)
      throw CommError("the " + tag.describe() +
                      " does not fit an MPI tag: micro-batch and chunk must "
                      "be 0 for this kind");
    value = tag.stage << L::kindBits | kind;
  }
  if (value > tagUpperBound)
    throw CommError("the " + tag.describe() + " needs MPI tag " +
                    std::to_string(value) + ", above this MPI's MPI_TAG_UB " +
                    std::to_string(tagUpperBound));
  return value;
}

Tag decodeMpiTag(int mpiTag) {
  using L = MpiTagLayout;
  auto field = [&](int shift, int bits) {
    return (mpiTag >> shift) & ((1 << bits) - 1);
  };
  Tag tag{static_cast<MsgKind>(field(0, L::kindBits))};
  if (tag.kind == MsgKind::Activation || tag.kind == MsgKind::Gradient) {
    tag.chunk = field(L::kindBits, L::chunkBits);
    tag.mb = field(L::kindBits + L::chunkBits, L::microbatchBits);
    tag.stage =
        field(L::kindBits + L::chunkBits + L::microbatchBits, L::stageBits);
  } else {
    tag.stage = field(L::kindBits, L::indexBits);
  }
  return tag;
}

//===----------------------------------------------------------------------===//
// MpiEnvironment
//===----------------------------------------------------------------------===//

MpiEnvironment::MpiEnvironment(int &argc, char **&argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized)
    throw std::runtime_error("MPI is already initialized");
  int provided = MPI_THREAD_SINGLE;
  int rc = MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  if (rc != MPI_SUCCESS)
    throw std::runtime_error("MPI_Init_thread failed: " + mpiError(rc));
  if (provided < MPI_THREAD_FUNNELED) {
    MPI_Finalize();
    throw std::runtime_error(
        "this MPI does not support MPI_THREAD_FUNNELED (provided level " +
        std::to_string(provided) + ")");
  }
}

void MpiEnvironment::abort(const std::string &why) {
  int rank = -1, initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized)
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::fflush(stdout);
  std::fprintf(stderr, "seq1f1b: rank %d aborts the MPI job: %s\n", rank,
               why.c_str());
  std::fflush(stderr);
  if (initialized)
    MPI_Abort(MPI_COMM_WORLD, 1);
  std::_Exit(1);
}

MpiEnvironment::~MpiEnvironment() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized)
    MPI_Finalize();
}

//===----------------------------------------------------------------------===//
// MpiCommunicator
//===----------------------------------------------------------------------===//

struct MpiCommunicator::Impl {
  struct Pending {
    std::vector<char> data; ///< the copy MPI reads from
    int peer;
    Tag tag;
  };

  /// Kind 15 (no MsgKind): "the run failed", the text of the reason.
  static constexpr int kAbortTag = 15;

  MPI_Comm comm = MPI_COMM_NULL;
  int rank = 0, size = 0;
  int tagUb = 0;
  std::chrono::milliseconds timeout;
  /// The first abort notice received from another rank ("" if none).
  std::string failure;
  /// Parallel: requests (contiguous for MPI_Testsome) and their buffers.
  std::vector<MPI_Request> requests;
  std::vector<Pending> pending;

  void check(int rc, const std::string &what) const {
    if (rc != MPI_SUCCESS)
      throw CommError("rank " + std::to_string(rank) + ": " + what + ": " +
                      mpiError(rc));
  }

  /// Completes and frees finished sends (also drives MPI's progress).
  void progress() {
    if (requests.empty())
      return;
    int done = 0;
    std::vector<int> indices(requests.size());
    check(MPI_Testsome(static_cast<int>(requests.size()), requests.data(),
                       &done, indices.data(), MPI_STATUSES_IGNORE),
          "MPI_Testsome on the sends in flight");
    if (done == MPI_UNDEFINED || done == 0)
      return;
    size_t kept = 0;
    for (size_t i = 0; i < requests.size(); ++i) {
      if (requests[i] == MPI_REQUEST_NULL)
        continue;
      if (kept != i) {
        requests[kept] = requests[i];
        pending[kept] = std::move(pending[i]);
      }
      ++kept;
    }
    requests.resize(kept);
    pending.resize(kept);
  }

  /// Takes an abort notice off the wire if one came; returns whether the
  /// run has failed.
  bool failed() {
    if (!failure.empty())
      return true;
    int found = 0;
    MPI_Message message;
    MPI_Status status;
    if (MPI_Improbe(MPI_ANY_SOURCE, kAbortTag, comm, &found, &message,
                    &status) != MPI_SUCCESS ||
        !found)
      return false;
    int count = 0;
    MPI_Get_count(&status, MPI_CHAR, &count);
    std::vector<char> text(static_cast<size_t>(std::max(count, 0)));
    MPI_Mrecv(text.data(), count, MPI_CHAR, &message, MPI_STATUS_IGNORE);
    failure.assign(text.begin(), text.end());
    if (failure.empty())
      failure = "rank " + std::to_string(status.MPI_SOURCE) + " aborted";
    return true;
  }

  /// How long an aborting rank lets the others report what they were
  /// waiting for before it ends the job.
  std::chrono::milliseconds grace() const {
    using namespace std::chrono_literals;
    return std::clamp<std::chrono::milliseconds>(timeout / 4, 100ms, 1000ms);
  }

  /// Prints `why`, tells every other rank (unless this rank only learned of
  /// the failure from another one), waits the grace period so that ranks
  /// blocked in recv can say what they were waiting for, and ends the job.
  [[noreturn]] void abortJob(const std::string &why) {
    std::fflush(stdout);
    std::fprintf(stderr, "seq1f1b: rank %d aborts the MPI job: %s\n", rank,
                 why.c_str());
    std::fflush(stderr);
    if (comm != MPI_COMM_NULL) {
      std::vector<MPI_Request> notices;
      if (!failed()) {
        static std::string text; // must outlive the sends
        text = why;
        for (int r = 0; r < size; ++r)
          if (r != rank && MPI_Isend(text.data(), static_cast<int>(text.size()),
                                     MPI_CHAR, r, kAbortTag, comm,
                                     &notices.emplace_back()) != MPI_SUCCESS)
            notices.pop_back();
      }
      const Clock::time_point start = Clock::now();
      for (Backoff backoff(start); Clock::now() - start < grace();
           backoff.pause()) {
        int done = 0;
        if (!notices.empty())
          MPI_Testall(static_cast<int>(notices.size()), notices.data(), &done,
                      MPI_STATUSES_IGNORE);
      }
    }
    MPI_Abort(MPI_COMM_WORLD, 1);
    std::_Exit(1); // MPI_Abort does not return; in case it does
  }
};

MpiCommunicator::MpiCommunicator(std::chrono::milliseconds recvTimeout)
    : impl_(std::make_unique<Impl>()) {
  Impl &m = *impl_;
  m.timeout = recvTimeout;
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized)
    throw CommError("MpiCommunicator: MPI is not initialized (create an "
                    "MpiEnvironment first)");
  int isMain = 0;
  MPI_Is_thread_main(&isMain);
  if (!isMain)
    throw CommError("MpiCommunicator: must be used from the thread that "
                    "initialized MPI (MPI_THREAD_FUNNELED)");
  m.check(MPI_Comm_dup(MPI_COMM_WORLD, &m.comm), "MPI_Comm_dup");
  // Errors come back as return codes (then CommError) instead of killing
  // the job without a word.
  m.check(MPI_Comm_set_errhandler(m.comm, MPI_ERRORS_RETURN),
          "MPI_Comm_set_errhandler");
  m.check(MPI_Comm_rank(m.comm, &m.rank), "MPI_Comm_rank");
  m.check(MPI_Comm_size(m.comm, &m.size), "MPI_Comm_size");
  void *ub = nullptr;
  int found = 0;
  m.check(MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &ub, &found),
          "MPI_Comm_get_attr(MPI_TAG_UB)");
  m.tagUb = found ? *static_cast<int *>(ub) : 32767; // the standard's minimum
}

MpiCommunicator::~MpiCommunicator() {
  Impl &m = *impl_;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized)
    return;
  try {
    flush();
  } catch (const std::exception &e) {
    m.abortJob(e.what());
  }
  MPI_Comm_free(&m.comm);
}

int MpiCommunicator::rank() const { return impl_->rank; }
int MpiCommunicator::size() const { return impl_->size; }
std::chrono::milliseconds MpiCommunicator::timeout() const {
  return impl_->timeout;
}
size_t MpiCommunicator::pendingSends() const { return impl_->requests.size(); }

void MpiCommunicator::send(int peer, const Tag &tag, const void *data,
                           size_t bytes) {
  Impl &m = *impl_;
  const std::string what = "rank " + std::to_string(m.rank) + ": send of the " +
                           tag.describe() + " to rank " + std::to_string(peer);
  if (peer < 0 || peer >= m.size || peer == m.rank)
    throw CommError(what + ": invalid peer rank (world of " +
                    std::to_string(m.size) + ")");
  if (bytes > static_cast<size_t>(INT_MAX))
    throw CommError(what + ": " + std::to_string(bytes) +
                    " bytes exceed the 2^31 - 1 of one MPI message");
  int mpiTag;
  try {
    mpiTag = encodeMpiTag(tag, m.tagUb);
  } catch (const CommError &e) {
    throw CommError(what + ": " + e.what());
  }
  m.progress();
  const char *p = static_cast<const char *>(data);
  m.pending.push_back({std::vector<char>(p, p + bytes), peer, tag});
  m.requests.push_back(MPI_REQUEST_NULL);
  int rc = MPI_Isend(m.pending.back().data.data(), static_cast<int>(bytes),
                     MPI_BYTE, peer, mpiTag, m.comm, &m.requests.back());
  if (rc != MPI_SUCCESS) {
    m.pending.pop_back();
    m.requests.pop_back();
    m.check(rc, "MPI_Isend of the " + tag.describe() + " to rank " +
                    std::to_string(peer));
  }
}

void MpiCommunicator::recv(int peer, const Tag &tag, void *data, size_t bytes) {
  Impl &m = *impl_;
  const std::string what = describeRecv(m.rank, peer, tag);
  if (peer < 0 || peer >= m.size || peer == m.rank)
    throw CommError(what + ": invalid peer rank (world of " +
                    std::to_string(m.size) + ")");
  int mpiTag;
  try {
    mpiTag = encodeMpiTag(tag, m.tagUb);
  } catch (const CommError &e) {
    throw CommError(what + ": " + e.what());
  }

  // 1. Wait for the message to be there (nothing posted yet, so giving up
  //    leaves nothing behind).
  const Clock::time_point start = Clock::now();
  MPI_Message message = MPI_MESSAGE_NULL;
  MPI_Status status;
  for (Backoff backoff(start);; backoff.pause()) {
    int found = 0;
    m.check(MPI_Improbe(peer, mpiTag, m.comm, &found, &message, &status),
            "MPI_Improbe for the " + tag.describe());
    if (found)
      break;
    m.progress();
    if (m.failed())
      throw CommError(what + ": gave up after " + secondsSince(start) +
                      " s because the run failed (" + m.failure + ")");
    if (Clock::now() - start >= m.timeout)
      throw CommError(what + ": timed out after " + secondsSince(start) +
                      " s; rank " + std::to_string(peer) +
                      " never sent it (dead, hung or deadlocked?)");
  }

  // 2. Receive the matched message. A wrong size is received into a scratch
  //    buffer (to take it off the wire) and then reported.
  int count = 0;
  m.check(MPI_Get_count(&status, MPI_BYTE, &count), "MPI_Get_count");
  if (count < 0)
    count = 0;
  const bool sizeOk = static_cast<size_t>(count) == bytes;
  std::vector<char> scratch;
  if (!sizeOk)
    scratch.resize(static_cast<size_t>(count));
  MPI_Request request = MPI_REQUEST_NULL;
  m.check(MPI_Imrecv(sizeOk ? data : scratch.data(), count, MPI_BYTE, &message,
                     &request),
          "MPI_Imrecv of the " + tag.describe());
  const Clock::time_point matched = Clock::now();
  for (Backoff backoff(matched);; backoff.pause()) {
    int done = 0;
    m.check(MPI_Test(&request, &done, MPI_STATUS_IGNORE),
            "MPI_Test on the receive of the " + tag.describe());
    if (done)
      break;
    m.progress();
    // A matched receive cannot be cancelled and writes into `data`
    // whenever it completes: the only safe way out is to end the job.
    if (Clock::now() - matched >= m.timeout)
      m.abortJob(what + ": the message of " + std::to_string(count) +
                 " bytes was matched but its data did not arrive within " +
                 secondsSince(matched) + " s; rank " + std::to_string(peer) +
                 " died or hung while sending it");
  }
  if (!sizeOk)
    throw CommError(what + ": message has " + std::to_string(count) +
                    " bytes, expected " + std::to_string(bytes));
}

void MpiCommunicator::abort(const std::string &why) {
  impl_->abortJob(why.empty() ? "aborted" : why);
}

void MpiCommunicator::flush() {
  Impl &m = *impl_;
  const Clock::time_point start = Clock::now();
  for (Backoff backoff(start); !m.requests.empty(); backoff.pause()) {
    m.progress();
    if (!m.requests.empty() && Clock::now() - start >= m.timeout) {
      const Impl::Pending &p = m.pending.front();
      throw CommError("rank " + std::to_string(m.rank) + ": " +
                      std::to_string(m.requests.size()) +
                      " sends still incomplete after " + secondsSince(start) +
                      " s, the first the " + p.tag.describe() + " to rank " +
                      std::to_string(p.peer) +
                      " (dead, hung or never "
                      "received it?)");
    }
  }
}

} // namespace s1f::rt
