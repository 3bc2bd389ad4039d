//===- ScheduleConversion.h - pipe.schedule <-> schedule library ---------===//
#ifndef SEQ1F1B_DIALECT_PIPE_IR_SCHEDULECONVERSION_H
#define SEQ1F1B_DIALECT_PIPE_IR_SCHEDULECONVERSION_H

#include "seq1f1b/Dialect/Pipe/IR/PipeOps.h"
#include "seq1f1b/Schedule/Schedule.h"

namespace seq1f1b::pipe {

/// The library form of `op`. When `opsByRank` is given it receives, per rank,
/// the op of every action (same order), so diagnostics can point at ops.
schedule::Schedule
toLibrarySchedule(ScheduleOp op,
                  llvm::SmallVector<llvm::SmallVector<mlir::Operation *>>
                      *opsByRank = nullptr);

/// Builds a pipe.schedule holding `schedule` at the builder's position.
ScheduleOp buildScheduleOp(mlir::OpBuilder &builder, mlir::Location loc,
                           const schedule::Schedule &schedule);

} // namespace seq1f1b::pipe

#endif // SEQ1F1B_DIALECT_PIPE_IR_SCHEDULECONVERSION_H
