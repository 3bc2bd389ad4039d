//===- VerifySchedule.cpp - prove schedules complete and deadlock free ----===//
#include "seq1f1b/Dialect/Pipe/IR/PipeOps.h"
#include "seq1f1b/Dialect/Pipe/IR/ScheduleConversion.h"
#include "seq1f1b/Dialect/Pipe/Transforms/Passes.h"
#include "seq1f1b/Schedule/Verify.h"

namespace seq1f1b {
#define GEN_PASS_DEF_VERIFYSCHEDULE
#include "seq1f1b/Dialect/Pipe/Transforms/Passes.h.inc"
} // namespace seq1f1b

using namespace mlir;
using namespace seq1f1b;

namespace {
struct VerifySchedulePass
    : public seq1f1b::impl::VerifyScheduleBase<VerifySchedulePass> {
  void runOnOperation() override {
    bool failedAny = false;
    for (auto op : getOperation().getOps<pipe::ScheduleOp>()) {
      SmallVector<SmallVector<Operation *>> opsByRank;
      schedule::Schedule s = pipe::toLibrarySchedule(op, &opsByRank);
      SmallVector<pipe::ProgramOp> programs(op.getBody().getOps<pipe::ProgramOp>());
      for (const schedule::Diagnostic &d : schedule::verifySchedule(s)) {
        failedAny = true;
        // Point at the action, else its program, else the schedule.
        Operation *at = op;
        if (d.rank >= 0 && d.index >= 0 &&
            d.index < static_cast<int>(opsByRank[d.rank].size()))
          at = opsByRank[d.rank][d.index];
        else if (d.rank >= 0)
          for (pipe::ProgramOp program : programs)
            if (program.getRankAttr().getInt() == d.rank)
              at = program;
        at->emitError() << "invalid schedule: " << d.message;
      }
    }
    if (failedAny)
      signalPassFailure();
  }
};
} // namespace
