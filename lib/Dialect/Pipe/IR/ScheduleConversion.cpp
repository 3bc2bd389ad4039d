//===- ScheduleConversion.cpp - pipe.schedule <-> schedule library -------===//
#include "seq1f1b/Dialect/Pipe/IR/ScheduleConversion.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace seq1f1b;
using namespace seq1f1b::pipe;
using schedule::ActionKind;

static std::optional<ActionKind> actionKindOf(Operation *op) {
  return llvm::TypeSwitch<Operation *, std::optional<ActionKind>>(op)
      .Case([](ForwardOp) { return ActionKind::Forward; })
      .Case([](BackwardOp) { return ActionKind::Backward; })
      .Case([](BackwardInputOp) { return ActionKind::BackwardInput; })
      .Case([](BackwardWeightOp) { return ActionKind::BackwardWeight; })
      .Case([](SendFOp) { return ActionKind::SendF; })
      .Case([](RecvFOp) { return ActionKind::RecvF; })
      .Case([](SendBOp) { return ActionKind::SendB; })
      .Case([](RecvBOp) { return ActionKind::RecvB; })
      .Default([](Operation *) { return std::nullopt; });
}

schedule::Schedule pipe::toLibrarySchedule(
    ScheduleOp op, SmallVector<SmallVector<Operation *>> *opsByRank) {
  schedule::Schedule result;
  schedule::ScheduleConfig &config = result.config;
  config.ranks = op.getStagesAttr().getInt();
  config.virtualStages = op.getVirtualStagesAttr().getInt();
  config.microbatches = op.getMicrobatchesAttr().getInt();
  config.chunks = op.getChunksAttr().getInt();
  schedule::Result<schedule::ScheduleKind> kind =
      schedule::parseScheduleKind(op.getKind().str());
  config.kind = kind ? *kind : schedule::ScheduleKind::Custom;
  result.ranks.resize(config.ranks);
  if (opsByRank)
    opsByRank->assign(config.ranks, {});
  for (auto program : op.getBody().getOps<ProgramOp>()) {
    int64_t rank = program.getRankAttr().getInt();
    for (Operation &action : program.getBody().front()) {
      std::optional<ActionKind> actionKind = actionKindOf(&action);
      if (!actionKind)
        continue;
      schedule::Action a{*actionKind,
                         static_cast<int>(action.getAttrOfType<IntegerAttr>("stage").getInt()),
                         static_cast<int>(action.getAttrOfType<IntegerAttr>("microbatch").getInt()),
                         static_cast<int>(action.getAttrOfType<IntegerAttr>("chunk").getInt())};
      if (auto peer = action.getAttrOfType<IntegerAttr>("peer"))
        a.peer = peer.getInt();
      result.ranks[rank].push_back(a);
      if (opsByRank)
        (*opsByRank)[rank].push_back(&action);
    }
  }
  return result;
}

template <typename UnitOp>
static void createUnit(OpBuilder &b, Location loc, const schedule::Action &a) {
  b.create<UnitOp>(loc, a.stage, a.microbatch, a.chunk);
}

template <typename CommOp>
static void createComm(OpBuilder &b, Location loc, const schedule::Action &a) {
  b.create<CommOp>(loc, a.stage, a.microbatch, a.chunk, a.peer);
}

ScheduleOp pipe::buildScheduleOp(OpBuilder &builder, Location loc,
                                 const schedule::Schedule &s) {
  const schedule::ScheduleConfig &c = s.config;
  auto op = builder.create<ScheduleOp>(
      loc, std::string(schedule::scheduleKindName(c.kind)), c.ranks,
      c.virtualStages, c.microbatches, c.chunks);
  Block *body = new Block();
  op.getBody().push_back(body);
  OpBuilder b = OpBuilder::atBlockEnd(body);
  for (auto [rank, actions] : llvm::enumerate(s.ranks)) {
    auto program = b.create<ProgramOp>(loc, rank);
    Block *programBody = new Block();
    program.getBody().push_back(programBody);
    OpBuilder pb = OpBuilder::atBlockEnd(programBody);
    for (const schedule::Action &a : actions) {
      switch (a.kind) {
      case ActionKind::Forward:
        createUnit<ForwardOp>(pb, loc, a);
        break;
      case ActionKind::Backward:
        createUnit<BackwardOp>(pb, loc, a);
        break;
      case ActionKind::BackwardInput:
        createUnit<BackwardInputOp>(pb, loc, a);
        break;
      case ActionKind::BackwardWeight:
        createUnit<BackwardWeightOp>(pb, loc, a);
        break;
      case ActionKind::SendF:
        createComm<SendFOp>(pb, loc, a);
        break;
      case ActionKind::RecvF:
        createComm<RecvFOp>(pb, loc, a);
        break;
      case ActionKind::SendB:
        createComm<SendBOp>(pb, loc, a);
        break;
      case ActionKind::RecvB:
        createComm<RecvBOp>(pb, loc, a);
        break;
      }
    }
    pb.create<OptimizerStepOp>(loc);
  }
  return op;
}
