//===- Verify.cpp - Schedule verifier -------------------------------------===//

#include "seq1f1b/Schedule/Verify.h"

#include "Dependencies.h"
#include "seq1f1b/Schedule/Csv.h"

#include <optional>

namespace seq1f1b::schedule {

using detail::Dependency;
using detail::DepKind;

namespace {

constexpr int kNumActionKinds = 8;

struct Position {
  int rank = -1;
  int index = -1;
  bool exists() const { return rank >= 0; }
};

/// Indexes every (kind, stage, mb, chunk) of a config in a flat table.
class ActionTable {
public:
  explicit ActionTable(const ScheduleConfig &c)
      : stages(c.numStages()), mbs(c.microbatches), chunks(c.chunks),
        positions(static_cast<size_t>(kNumActionKinds) * stages * mbs *
                  chunks) {}

  Position &at(ActionKind kind, int stage, int mb, int chunk) {
    size_t slot = ((static_cast<size_t>(kind) * stages + stage) * mbs + mb) *
                      chunks + chunk;
    return positions[slot];
  }

  /// Where the action a dependency names is; AnyBackward prefers B over I.
  Position find(const Dependency &d) {
    switch (d.kind) {
    case DepKind::Forward:
      return at(ActionKind::Forward, d.stage, d.microbatch, d.chunk);
    case DepKind::AnyBackward: {
      Position b = at(ActionKind::Backward, d.stage, d.microbatch, d.chunk);
      return b.exists() ? b
                        : at(ActionKind::BackwardInput, d.stage, d.microbatch,
                             d.chunk);
    }
    case DepKind::BackwardInput:
      return at(ActionKind::BackwardInput, d.stage, d.microbatch, d.chunk);
    case DepKind::SendF:
      return at(ActionKind::SendF, d.stage, d.microbatch, d.chunk);
    case DepKind::SendB:
      return at(ActionKind::SendB, d.stage, d.microbatch, d.chunk);
    case DepKind::RecvF:
      return at(ActionKind::RecvF, d.stage, d.microbatch, d.chunk);
    case DepKind::RecvB:
      return at(ActionKind::RecvB, d.stage, d.microbatch, d.chunk);
    }
    return {};
  }

private:
  int stages, mbs, chunks;
  std::vector<Position> positions;
};

std::string depText(const Dependency &d, bool chunked) {
  static const ActionKind kinds[] = {
      ActionKind::Forward, ActionKind::Backward, ActionKind::BackwardInput,
      ActionKind::SendF,   ActionKind::SendB,    ActionKind::RecvF,
      ActionKind::RecvB};
  std::string text = formatAction(
      {kinds[static_cast<int>(d.kind)], d.stage, d.microbatch, d.chunk},
      chunked);
  if (d.kind == DepKind::AnyBackward) // "1B0" reads as "B or I".
    text += " (B or I)";
  return text;
}

/// The rank a comm action talks to, or -1 when out of the stage range.
int expectedPeer(const Action &a, const ScheduleConfig &c) {
  int other = (a.kind == ActionKind::SendF || a.kind == ActionKind::RecvB)
                  ? a.stage + 1
                  : a.stage - 1;
  return other >= 0 && other < c.numStages() ? c.rankOfStage(other) : -1;
}

class Verifier {
public:
  explicit Verifier(const Schedule &s)
      : schedule(s), c(s.config), chunked(c.chunks > 1), table(c) {}

  /// Requires a valid config with one program per rank.
  std::vector<Diagnostic> run() {
    for (const auto &program : schedule.ranks)
      for (const Action &a : program)
        withComm |= isComm(a.kind);

    bool indexed = indexActions();
    if (indexed) {
      checkCompleteness();
      if (withComm)
        checkPairing();
      checkLocalOrder();
    }
    if (diags.empty())
      simulate();
    return diags;
  }

private:
  void report(int rank, int index, std::string message) {
    diags.push_back({rank, index, std::move(message)});
  }

  std::string text(const Action &a) const { return formatAction(a, chunked); }

  /// Range, ownership, peer and uniqueness checks; fills the table.
  /// Returns false if any action could not be indexed.
  bool indexActions() {
    bool allIndexed = true;
    const int stages = c.numStages();
    for (int r = 0; r < c.ranks; ++r) {
      const auto &program = schedule.ranks[r];
      for (int i = 0; i < static_cast<int>(program.size()); ++i) {
        const Action &a = program[i];
        std::string range;
        if (a.stage < 0 || a.stage >= stages)
          range = "stage " + std::to_string(a.stage) + " is out of range [0, " +
                  std::to_string(stages) + ")";
        else if (a.microbatch < 0 || a.microbatch >= c.microbatches)
          range = "micro-batch " + std::to_string(a.microbatch) +
                  " is out of range [0, " + std::to_string(c.microbatches) +
                  ")";
        else if (a.chunk < 0 || a.chunk >= c.chunks)
          range = "chunk " + std::to_string(a.chunk) + " is out of range [0, " +
                  std::to_string(c.chunks) + ")";
        else if (isComm(a.kind) && expectedPeer(a, c) < 0)
          range = "stage " + std::to_string(a.stage) + " has no " +
                  (a.kind == ActionKind::SendF || a.kind == ActionKind::RecvB
                       ? "next"
                       : "previous") +
                  " stage to communicate with";
        if (!range.empty()) {
          report(r, i, text(a) + ": " + range);
          allIndexed = false;
          continue;
        }
        if (c.rankOfStage(a.stage) != r)
          report(r, i, text(a) + ": stage " + std::to_string(a.stage) +
                           " lives on rank " +
                           std::to_string(c.rankOfStage(a.stage)) +
                           ", not on rank " + std::to_string(r));
        if (isComm(a.kind)) {
          int peer = expectedPeer(a, c);
          if (peer == r)
            report(r, i, text(a) + ": communication between stages on the "
                                   "same rank");
          else if (a.peer >= 0 && a.peer != peer)
            report(r, i, text(a) + ": peer is rank " + std::to_string(a.peer) +
                             " but the other stage lives on rank " +
                             std::to_string(peer));
        }
        Position &p = table.at(a.kind, a.stage, a.microbatch, a.chunk);
        if (p.exists()) {
          report(r, i, text(a) + ": duplicate (first at rank " +
                           std::to_string(p.rank) + ", action " +
                           std::to_string(p.index) + ")");
          continue;
        }
        p = {r, i};
      }
    }
    return allIndexed;
  }

  /// Every stage runs F and either B or I+W for every (mb, chunk).
  void checkCompleteness() {
    for (int s = 0; s < c.numStages(); ++s)
      for (int mb = 0; mb < c.microbatches; ++mb)
        for (int ch = 0; ch < c.chunks; ++ch) {
          auto has = [&](ActionKind k) {
            return table.at(k, s, mb, ch).exists();
          };
          auto name = [&](ActionKind k) { return text({k, s, mb, ch}); };
          const int rank = c.rankOfStage(s);
          bool b = has(ActionKind::Backward);
          bool in = has(ActionKind::BackwardInput);
          bool w = has(ActionKind::BackwardWeight);
          if (!has(ActionKind::Forward))
            report(rank, -1, "missing " + name(ActionKind::Forward) +
                                 ": every stage runs the forward of every "
                                 "unit");
          if (!b && !in && !w)
            report(rank, -1, "missing " + name(ActionKind::Backward) +
                                 " (or " + name(ActionKind::BackwardInput) +
                                 " + " + name(ActionKind::BackwardWeight) +
                                 "): every stage runs the backward of every "
                                 "unit");
          else if (b && (in || w))
            report(rank, -1, name(ActionKind::Backward) +
                                 " together with I/W: a unit's backward is "
                                 "either B or I + W");
          else if (in != w && !b)
            report(rank, -1, "missing " +
                                 name(in ? ActionKind::BackwardWeight
                                         : ActionKind::BackwardInput) +
                                 ": a split backward needs both I and W");
        }
  }

  /// Every send has its recv and vice versa, and (with communication)
  /// every value that crosses ranks is sent.
  void checkPairing() {
    for (int r = 0; r < c.ranks; ++r) {
      const auto &program = schedule.ranks[r];
      for (int i = 0; i < static_cast<int>(program.size()); ++i) {
        const Action &a = program[i];
        const int last = c.numStages() - 1;
        std::optional<Action> partner;
        switch (a.kind) {
        case ActionKind::SendF:
          partner = Action{ActionKind::RecvF, a.stage + 1, a.microbatch,
                           a.chunk};
          break;
        case ActionKind::RecvF:
          partner = Action{ActionKind::SendF, a.stage - 1, a.microbatch,
                           a.chunk};
          break;
        case ActionKind::SendB:
          partner = Action{ActionKind::RecvB, a.stage - 1, a.microbatch,
                           a.chunk};
          break;
        case ActionKind::RecvB:
          partner = Action{ActionKind::SendB, a.stage + 1, a.microbatch,
                           a.chunk};
          break;
        case ActionKind::Forward:
          if (a.stage < last && c.rankOfStage(a.stage + 1) != r &&
              !table.at(ActionKind::SendF, a.stage, a.microbatch, a.chunk)
                   .exists())
            report(r, i, text(a) + ": its output goes to rank " +
                             std::to_string(c.rankOfStage(a.stage + 1)) +
                             " but there is no SEND_F");
          break;
        case ActionKind::Backward:
        case ActionKind::BackwardInput:
          if (a.stage > 0 && c.rankOfStage(a.stage - 1) != r &&
              !table.at(ActionKind::SendB, a.stage, a.microbatch, a.chunk)
                   .exists())
            report(r, i, text(a) + ": its input gradient goes to rank " +
                             std::to_string(c.rankOfStage(a.stage - 1)) +
                             " but there is no SEND_B");
          break;
        case ActionKind::BackwardWeight:
          break;
        }
        if (partner &&
            !table.at(partner->kind, partner->stage, partner->microbatch,
                      partner->chunk)
                 .exists())
          report(r, i, text(a) + " has no matching " + text(*partner) +
                           " on rank " + std::to_string(expectedPeer(a, c)));
      }
    }
  }

  /// On one rank, everything an action needs from this rank comes first.
  void checkLocalOrder() {
    for (int r = 0; r < c.ranks; ++r) {
      const auto &program = schedule.ranks[r];
      for (int i = 0; i < static_cast<int>(program.size()); ++i) {
        const Action &a = program[i];
        for (const Dependency &d : detail::dependenciesOf(a, c, withComm)) {
          Position p = table.find(d);
          if (!p.exists()) {
            // Missing computes are reported by checkCompleteness, missing
            // sends by checkPairing; a missing recv only shows up here.
            if (d.kind == DepKind::RecvF || d.kind == DepKind::RecvB)
              report(r, i, text(a) + ": no " + depText(d, chunked) +
                               " before it (" + d.rule + ")");
            continue;
          }
          if (p.rank == r && p.index > i)
            report(r, i, text(a) + " runs before " + depText(d, chunked) +
                             " (action " + std::to_string(p.index) +
                             ") on rank " + std::to_string(r) + ": " + d.rule);
        }
      }
    }
  }

  /// Runs all ranks in order (sends never block) until nothing can move.
  void simulate() {
    std::vector<std::vector<bool>> done(c.ranks);
    for (int r = 0; r < c.ranks; ++r)
      done[r].assign(schedule.ranks[r].size(), false);
    auto isDone = [&](const Dependency &d) {
      Position p = table.find(d);
      return p.exists() && done[p.rank][p.index];
    };
    std::vector<size_t> next(c.ranks, 0);
    for (bool progress = true; progress;) {
      progress = false;
      for (int r = 0; r < c.ranks; ++r) {
        const auto &program = schedule.ranks[r];
        for (; next[r] < program.size(); ++next[r]) {
          bool ready = true;
          for (const Dependency &d :
               detail::dependenciesOf(program[next[r]], c, withComm))
            ready = ready && isDone(d);
          if (!ready)
            break;
          done[r][next[r]] = true;
          progress = true;
        }
      }
    }
    for (int r = 0; r < c.ranks; ++r) {
      const auto &program = schedule.ranks[r];
      if (next[r] == program.size())
        continue;
      const Action &a = program[next[r]];
      for (const Dependency &d : detail::dependenciesOf(a, c, withComm)) {
        if (isDone(d))
          continue;
        Position p = table.find(d);
        report(r, static_cast<int>(next[r]),
               "deadlock: rank " + std::to_string(r) + " is blocked at " +
                   text(a) + " waiting for " + depText(d, chunked) +
                   " on rank " + std::to_string(p.rank) + " (" + d.rule + ")");
        break;
      }
    }
  }

  const Schedule &schedule;
  const ScheduleConfig &c;
  const bool chunked;
  bool withComm = false;
  ActionTable table;
  std::vector<Diagnostic> diags;
};

} // namespace

std::vector<Diagnostic> verifySchedule(const Schedule &schedule) {
  const ScheduleConfig &c = schedule.config;
  if (Status st = validateConfig(c); !st)
    return {{-1, -1, "invalid schedule config: " + st.error}};
  if (static_cast<int>(schedule.ranks.size()) != c.ranks)
    return {{-1, -1, "schedule has " + std::to_string(schedule.ranks.size()) +
                         " rank programs but the config says " +
                         std::to_string(c.ranks) + " ranks"}};
  return Verifier(schedule).run();
}

std::string formatDiagnostics(const std::vector<Diagnostic> &diagnostics) {
  std::string out;
  for (const Diagnostic &d : diagnostics) {
    if (d.rank >= 0)
      out += "rank " + std::to_string(d.rank);
    if (d.index >= 0)
      out += ", action " + std::to_string(d.index);
    out += (d.rank >= 0 ? ": " : "") + d.message + "\n";
  }
  return out;
}

} // namespace seq1f1b::schedule
