//===- Dependencies.h - Data dependencies between actions -------*- C++ -*-===//
//
// Private to the schedule library: the verifier and the simulator agree on
// what every action waits for through this one table.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "seq1f1b/Schedule/Schedule.h"


namespace seq1f1b::schedule::detail {

/// What an action waits for. `AnyBackward` is whichever of B or I the
/// schedule uses for that unit.
enum class DepKind { Forward, AnyBackward, BackwardInput, SendF, SendB,
                     RecvF, RecvB };

struct Dependency {
  DepKind kind;
  int stage;
  int microbatch;
  int chunk;
  const char *rule; ///< Why, for diagnostics.
};

/// At most three dependencies, without heap allocation: the verifier and
/// the simulator ask for them once per action and step.
class Dependencies {
public:
  void push_back(const Dependency &d) { items[count++] = d; }
  const Dependency *begin() const { return items; }
  const Dependency *end() const { return items + count; }

private:
  Dependency items[3];
  int count = 0;
};

/// The actions `a` waits for. With `withComm`, data from another rank is
/// awaited through the RECV on this rank (and a RECV waits for its SEND);
/// without, the consuming compute waits for the remote compute directly.
inline Dependencies dependenciesOf(const Action &a,
                                              const ScheduleConfig &c,
                                              bool withComm) {
  Dependencies deps;
  const int s = a.stage, mb = a.microbatch, ch = a.chunk;
  const int rank = c.rankOfStage(s);
  const int last = c.numStages() - 1;
  switch (a.kind) {
  case ActionKind::Forward:
    if (s > 0) {
      if (withComm && c.rankOfStage(s - 1) != rank)
        deps.push_back({DepKind::RecvF, s, mb, ch,
                        "a forward on another rank's data runs after its "
                        "RECV_F"});
      else
        deps.push_back({DepKind::Forward, s - 1, mb, ch,
                        "a forward needs the previous stage's forward"});
    }
    if (ch > 0)
      deps.push_back({DepKind::Forward, s, mb, ch - 1,
                      "forward chunks of a micro-batch must ascend (a chunk "
                      "attends to the KV cache of the chunk before it)"});
    break;
  case ActionKind::Backward:
  case ActionKind::BackwardInput:
    deps.push_back({DepKind::Forward, s, mb, ch,
                    "a backward needs the forward of the same unit"});
    if (s < last) {
      if (withComm && c.rankOfStage(s + 1) != rank)
        deps.push_back({DepKind::RecvB, s, mb, ch,
                        "a backward on another rank's gradient runs after "
                        "its RECV_B"});
      else
        deps.push_back({DepKind::AnyBackward, s + 1, mb, ch,
                        "a backward needs the next stage's backward"});
    }
    if (ch + 1 < c.chunks)
      deps.push_back({DepKind::AnyBackward, s, mb, ch + 1,
                      "backward chunks of a micro-batch must descend (a "
                      "chunk needs the KV gradient of the chunks after it)"});
    break;
  case ActionKind::BackwardWeight:
    deps.push_back({DepKind::BackwardInput, s, mb, ch,
                    "a W (weight gradient) needs the I of the same unit"});
    break;
  case ActionKind::SendF:
    deps.push_back({DepKind::Forward, s, mb, ch,
                    "a SEND_F follows the forward that produces its data"});
    break;
  case ActionKind::SendB:
    deps.push_back({DepKind::AnyBackward, s, mb, ch,
                    "a SEND_B follows the backward that produces its data"});
    break;
  case ActionKind::RecvF:
    deps.push_back({DepKind::SendF, s - 1, mb, ch,
                    "a RECV_F waits for the matching SEND_F"});
    break;
  case ActionKind::RecvB:
    deps.push_back({DepKind::SendB, s + 1, mb, ch,
                    "a RECV_B waits for the matching SEND_B"});
    break;
  }
  return deps;
}

} // namespace seq1f1b::schedule::detail
