//===- Csv.h - PyTorch-compatible schedule text format -----------*- C++ -*-===//
//
// One row per rank, comma-separated actions, as written by
// torch.distributed.pipelining's _dump_csv. An action is
//   <stage><K><microbatch>[.<chunk>]
// with K in F, B, I, W, SEND_F, RECV_F, SEND_B, RECV_B, e.g. `2F0`, `0B1.3`,
// `0SEND_F1.2`, `1RECV_F1.2`. The `.<chunk>` suffix is written only for
// chunked schedules (N > 1). For a send the stage is the producing stage, for
// a recv the consuming stage (both on the row's rank), as in PyTorch; the
// peer rank is implied by the stage placement and is not written.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "seq1f1b/Schedule/Schedule.h"

#include <optional>
#include <string>
#include <string_view>

namespace seq1f1b::schedule {

/// Text of one action; appends `.<chunk>` when `chunked`.
std::string formatAction(const Action &action, bool chunked);

/// Parses one action token (no surrounding whitespace). `peer` stays -1.
Result<Action> parseAction(std::string_view token);

/// Writes one line per rank; chunk suffixes iff config.chunks > 1.
std::string exportCsv(const Schedule &schedule);

/// Reads a schedule. P is the number of rows (trailing blank lines dropped),
/// M, N and the stage count are one more than the largest index seen, and V
/// is the stage count divided by P (rounded up). Empty cells and whitespace
/// are skipped; comm peers are derived from the stage placement. The kind is
/// `kind` when given, else ScheduleKind::Custom. Bad tokens fail with their
/// 1-based row and column.
Result<Schedule> importCsv(std::string_view text,
                           std::optional<ScheduleKind> kind = std::nullopt);

} // namespace seq1f1b::schedule
