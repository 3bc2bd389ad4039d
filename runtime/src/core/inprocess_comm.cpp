//===- inprocess_comm.cpp - Mailboxes with deadlines ----------------------===//

#include "seq1f1b/runtime/inprocess_comm.h"

#include <cstring>

namespace s1f::rt {

class InProcessComm : public Communicator {
public:
  InProcessComm(InProcessWorld &world, int rank) : world(world), self(rank) {}

  int rank() const override { return self; }
  int size() const override { return world.size(); }

  void send(int peer, const Tag &tag, const void *data, size_t bytes) override {
    checkPeer(peer);
    InProcessWorld::Mailbox &box = *world.boxes_[peer];
    const char *p = static_cast<const char *>(data);
    {
      std::lock_guard<std::mutex> lock(box.mu);
      box.queues[{self, tag}].emplace_back(p, p + bytes);
    }
    box.cv.notify_all();
  }

  void recv(int peer, const Tag &tag, void *data, size_t bytes) override {
    checkPeer(peer);
    InProcessWorld::Mailbox &box = *world.boxes_[self];
    const auto start = std::chrono::steady_clock::now();
    const auto deadline = start + world.timeout();
    const std::pair<int, Tag> key{peer, tag};
    std::unique_lock<std::mutex> lock(box.mu);
    auto ready = [&] {
      auto it = box.queues.find(key);
      return (it != box.queues.end() && !it->second.empty()) || world.aborted();
    };
    bool arrived = box.cv.wait_until(lock, deadline, ready);
    auto it = box.queues.find(key);
    if (arrived && it != box.queues.end() && !it->second.empty()) {
      std::vector<char> msg = std::move(it->second.front());
      it->second.pop_front();
      if (it->second.empty())
        box.queues.erase(it);
      lock.unlock();
      if (msg.size() != bytes)
        throw CommError(prefix(peer, tag) + ": message has " +
                        std::to_string(msg.size()) + " bytes, expected " +
                        std::to_string(bytes));
      std::memcpy(data, msg.data(), bytes);
      return;
    }
    lock.unlock();
    const std::string waited = secondsSince(start);
    if (world.aborted())
      throw CommError(prefix(peer, tag) + ": gave up after " + waited +
                      " s because the run failed (" + world.abortReason() +
                      ")");
    throw CommError(prefix(peer, tag) + ": timed out after " + waited +
                    " s; rank " + std::to_string(peer) +
                    " never sent it (dead, hung or deadlocked?)");
  }

  void abort(const std::string &why) override { world.abort(why); }

private:
  std::string prefix(int peer, const Tag &tag) const {
    return describeRecv(self, peer, tag);
  }
  void checkPeer(int peer) const {
    if (peer < 0 || peer >= world.size() || peer == self)
      throw CommError("rank " + std::to_string(self) + ": invalid peer rank " +
                      std::to_string(peer));
  }

  InProcessWorld &world;
  int self;
};

InProcessWorld::InProcessWorld(int ranks, std::chrono::milliseconds recvTimeout)
    : timeout_(recvTimeout) {
  for (int r = 0; r < ranks; ++r)
    boxes_.push_back(std::make_unique<Mailbox>());
  for (int r = 0; r < ranks; ++r)
    comms_.push_back(std::make_unique<InProcessComm>(*this, r));
}

Communicator &InProcessWorld::comm(int rank) { return *comms_.at(rank); }

bool InProcessWorld::aborted() const {
  std::lock_guard<std::mutex> lock(abortMu_);
  return !abortReason_.empty();
}

std::string InProcessWorld::abortReason() const {
  std::lock_guard<std::mutex> lock(abortMu_);
  return abortReason_;
}

void InProcessWorld::abort(const std::string &why) {
  {
    std::lock_guard<std::mutex> lock(abortMu_);
    if (abortReason_.empty())
      abortReason_ = why.empty() ? "aborted" : why;
  }
  // Take each mailbox lock so that no waiter misses the wake-up between its
  // predicate check and its wait.
  for (auto &box : boxes_) {
    { std::lock_guard<std::mutex> lock(box->mu); }
    box->cv.notify_all();
  }
}

} // namespace s1f::rt
