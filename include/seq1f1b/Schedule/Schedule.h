//===- Schedule.h - Pipeline schedules: data model and generation -*- C++ -*-===//
//
// A schedule is one ordered action list per rank. Stages are numbered
// 0..P*V-1 and placed Megatron-style: stage s lives on rank s % P, so with V
// virtual stages rank r holds stages r, r+P, r+2P, ...  Sequence-chunked
// kinds (seq1f1b*) split every micro-batch into N chunks and schedule
// (micro-batch, chunk) units; the other kinds use N == 1.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "seq1f1b/Schedule/Result.h"

#include <string_view>
#include <vector>

namespace seq1f1b::schedule {

enum class ScheduleKind {
  GPipe,
  OneFOneB,
  Interleaved1F1B,
  Seq1F1B,
  Seq1F1BInterleaved,
  ZBH1,
  Seq1F1BZB,
  /// Imported from text; no generator, any V.
  Custom,
};

/// "gpipe", "1f1b", "interleaved-1f1b", "seq1f1b", "seq1f1b-interleaved",
/// "zb-h1", "seq1f1b-zb"; Custom prints as "custom".
std::string_view scheduleKindName(ScheduleKind kind);
/// Parses one of the generatable kind names; the error lists them all.
Result<ScheduleKind> parseScheduleKind(std::string_view name);
/// The kinds generateSchedule accepts, in declaration order.
const std::vector<ScheduleKind> &generatableScheduleKinds();

bool isInterleaved(ScheduleKind kind);     ///< Uses virtual stages (V >= 2).
bool isSequenceChunked(ScheduleKind kind); ///< Allows N > 1 chunks.
bool splitsBackward(ScheduleKind kind);    ///< Emits I + W instead of B.

enum class ActionKind {
  Forward,
  Backward,       ///< Full backward (input and weight gradients).
  BackwardInput,  ///< Zero-bubble "I": gradient w.r.t. the stage input.
  BackwardWeight, ///< Zero-bubble "W": gradient w.r.t. the weights.
  SendF,
  RecvF,
  SendB,
  RecvB,
};

/// "F", "B", "I", "W", "SEND_F", "RECV_F", "SEND_B", "RECV_B".
std::string_view actionKindName(ActionKind kind);
bool isComm(ActionKind kind);
/// B or I: the pass that produces the gradient sent to the previous stage.
bool isInputBackward(ActionKind kind);

/// One step of a rank program. For SEND_F/SEND_B `stage` is the producing
/// stage (on this rank); for RECV_F/RECV_B it is the consuming stage (on this
/// rank), as in torch.distributed.pipelining. `peer` is the other rank of a
/// communication action and -1 for compute.
struct Action {
  ActionKind kind;
  int stage;
  int microbatch;
  int chunk = 0;
  int peer = -1;

  bool operator==(const Action &o) const {
    return kind == o.kind && stage == o.stage && microbatch == o.microbatch &&
           chunk == o.chunk && peer == o.peer;
  }
  bool operator!=(const Action &o) const { return !(*this == o); }
};

struct ScheduleConfig {
  int ranks = 1;         ///< P
  int virtualStages = 1; ///< V: stages per rank (>= 2 only when interleaved)
  int microbatches = 1;  ///< M
  int chunks = 1;        ///< N: sequence chunks per micro-batch
  ScheduleKind kind = ScheduleKind::OneFOneB;

  int numStages() const { return ranks * virtualStages; }
  int rankOfStage(int stage) const { return stage % ranks; }
};

/// Checks the ranges and the per-kind constraints, naming the bad value.
Status validateConfig(const ScheduleConfig &config);

struct Schedule {
  ScheduleConfig config;
  std::vector<std::vector<Action>> ranks; ///< ranks[r] runs in order.
};

/// Builds the compute-only programs (F/B or F/I/W) of `config.kind`.
/// Rules (w_r = warmup forwards of rank r, U = M*N units):
///  gpipe            all F (mb ascending), then all B.
///  1f1b             w_r = min(P-r-1, M); w_r F, (F,B) pairs, w_r B.
///  seq1f1b          units F: mb-major chunk-ascending, B: mb ascending,
///                   chunk descending; w_r = min(P-r-1+N-1, U).
///  interleaved-*    Megatron virtual pipeline over units; see Schedule.cpp.
///  zb-h1/seq1f1b-zb 1f1b/seq1f1b with B split into I and W; rank r keeps
///                   up to r W's pending (oldest first out, rest at the end).
Result<Schedule> generateSchedule(const ScheduleConfig &config);

/// Returns `schedule` with SEND_F/RECV_F/SEND_B/RECV_B around every compute
/// action whose data crosses ranks: a send right after the producing
/// compute, the matching recv right before the consuming compute. Fails if
/// the input already contains communication.
Result<Schedule> addCommunication(const Schedule &schedule);

/// Returns `schedule` with every communication action removed.
Schedule removeCommunication(const Schedule &schedule);

} // namespace seq1f1b::schedule
