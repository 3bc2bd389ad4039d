//===- Verify.h - Schedule verifier -------------------------------*- C++ -*-===//
//
// Checks that a schedule (with or without communication actions) is
// complete, respects every data dependency, pairs its sends and receives,
// and cannot deadlock.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "seq1f1b/Schedule/Schedule.h"

#include <string>
#include <vector>

namespace seq1f1b::schedule {

struct Diagnostic {
  int rank;  ///< -1 when not about one rank.
  int index; ///< Position in ranks[rank]; -1 when not about one action.
  std::string message;
};

/// Returns every problem found; empty means the schedule is valid.
/// Checked, each with its own message: the config; ranges of stage, micro-
/// batch and chunk; the stage of each action lives on its rank; comm peers;
/// each (kind, stage, mb, chunk) at most once; every stage runs F and either
/// B or I+W for every unit; on one rank, each action after what it needs
/// (F before B/I, I before W, forward chunks ascending, backward chunks
/// descending, F(s) after F(s-1) and B(s) after B(s+1) when both stages are
/// local, sends after their compute, recvs before theirs); every send has
/// its recv and vice versa. When all that holds, an event simulation (ranks
/// run in order, sends never block, a recv or compute waits for its data)
/// must run every action; otherwise each stuck rank's blocking action is
/// reported as a deadlock.
std::vector<Diagnostic> verifySchedule(const Schedule &schedule);

/// "rank 1, action 4: message" lines.
std::string formatDiagnostics(const std::vector<Diagnostic> &diagnostics);

} // namespace seq1f1b::schedule
