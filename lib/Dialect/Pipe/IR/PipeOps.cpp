//===- PipeOps.cpp - verifiers of the pipe ops ---------------------------===//
#include "seq1f1b/Dialect/Pipe/IR/PipeOps.h"

#include "seq1f1b/Dialect/LLM/IR/LLMOps.h"
#include "seq1f1b/Schedule/Schedule.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/DenseSet.h"

using namespace mlir;
using namespace seq1f1b::pipe;

#include "seq1f1b/Dialect/Pipe/IR/PipeOpsEnums.cpp.inc"

//===----------------------------------------------------------------------===//
// StageOp
//===----------------------------------------------------------------------===//

LogicalResult StageOp::verify() {
  if (getIndexAttr().getInt() < 0)
    return emitOpError() << "expects a stage index >= 0, got "
                         << getIndexAttr().getInt();
  Block &body = getBody().front();
  if (body.getArgumentTypes() != getInputs().getTypes())
    return emitOpError() << "expects block arguments of the input types";
  auto yield = dyn_cast<YieldOp>(body.getTerminator());
  if (!yield)
    return emitOpError() << "expects the body to end with pipe.yield";
  if (yield.getValues().getTypes() != getOutputs().getTypes())
    return yield.emitOpError() << "yields types that differ from the stage's "
                                  "output types";
  llvm::DenseSet<Attribute> owned(getParams().begin(), getParams().end());
  if (std::optional<ArrayAttr> shared = getShared())
    for (Attribute shared : *shared)
      if (!owned.contains(shared))
        return emitOpError() << "lists shared param " << shared
                             << " that is not in its params";
  return success();
}

LogicalResult StageOp::verifySymbolUses(SymbolTableCollection &symbols) {
  for (Attribute attr : getParams()) {
    auto ref = cast<SymbolRefAttr>(attr);
    if (!symbols.lookupNearestSymbolFrom<seq1f1b::llm::ParamOp>(*this, ref))
      return emitOpError() << "lists " << ref << ", which is not an llm.param";
  }
  llvm::DenseSet<Attribute> owned(getParams().begin(), getParams().end());
  WalkResult walk = getBody().walk([&](seq1f1b::llm::ParamRefOp ref) {
    if (owned.contains(ref.getParamAttr()))
      return WalkResult::advance();
    ref.emitOpError() << "reads " << ref.getParamAttr()
                      << ", which stage " << getIndexAttr().getInt()
                      << " does not list in its params";
    return WalkResult::interrupt();
  });
  return failure(walk.wasInterrupted());
}

//===----------------------------------------------------------------------===//
// ChunkPlanOp
//===----------------------------------------------------------------------===//

LogicalResult ChunkPlanOp::verify() {
  ArrayRef<int64_t> bounds = getBounds();
  if (bounds.size() < 2)
    return emitOpError() << "expects at least two bounds (one chunk)";
  if (bounds.front() != 0)
    return emitOpError() << "expects the first bound to be 0, got "
                         << bounds.front();
  for (size_t i = 1; i < bounds.size(); ++i)
    if (bounds[i] <= bounds[i - 1])
      return emitOpError() << "expects strictly rising bounds, but chunk "
                           << i - 1 << " is [" << bounds[i - 1] << ", "
                           << bounds[i] << ")";
  return success();
}

//===----------------------------------------------------------------------===//
// ScheduleOp / ProgramOp
//===----------------------------------------------------------------------===//

LogicalResult ScheduleOp::verifyRegions() {
  if (getKind() != "custom") {
    schedule::Result<schedule::ScheduleKind> kind =
        schedule::parseScheduleKind(getKind().str());
    if (!kind)
      return emitOpError() << kind.error << " (or custom)";
  }
  struct Named {
    StringRef name;
    int64_t value;
  };
  for (Named n : {Named{"stages", getStagesAttr().getInt()},
                  Named{"virtual", getVirtualStagesAttr().getInt()},
                  Named{"microbatches", getMicrobatchesAttr().getInt()},
                  Named{"chunks", getChunksAttr().getInt()}})
    if (n.value < 1)
      return emitOpError() << "expects " << n.name << " >= 1, got " << n.value;
  llvm::DenseSet<int64_t> ranks;
  for (Operation &op : getBody().front()) {
    auto program = dyn_cast<ProgramOp>(op);
    if (!program)
      return op.emitOpError() << "is not allowed directly in a pipe.schedule; "
                                 "expected pipe.program";
    int64_t rank = program.getRankAttr().getInt();
    if (rank < 0 || rank >= getStagesAttr().getInt())
      return program.emitOpError()
             << "rank " << rank << " is out of range [0, "
             << getStagesAttr().getInt() << ")";
    if (!ranks.insert(rank).second)
      return program.emitOpError() << "rank " << rank << " has two programs";
  }
  if (static_cast<int64_t>(ranks.size()) != getStagesAttr().getInt())
    return emitOpError() << "expects one program per rank (" << getStagesAttr().getInt()
                         << "), got " << ranks.size();
  return success();
}

LogicalResult ProgramOp::verifyRegions() {
  // Every unit and every transfer happens once per rank.
  llvm::DenseSet<std::tuple<StringRef, int64_t, int64_t, int64_t>> seen;
  for (Operation &op : getBody().front()) {
    auto stage = op.getAttrOfType<IntegerAttr>("stage");
    if (!stage)
      continue;
    auto key = std::make_tuple(op.getName().getStringRef(), stage.getInt(),
                               op.getAttrOfType<IntegerAttr>("microbatch").getInt(),
                               op.getAttrOfType<IntegerAttr>("chunk").getInt());
    if (!seen.insert(key).second)
      return op.emitOpError() << "repeats stage " << std::get<1>(key) << " mb "
                              << std::get<2>(key) << " chunk "
                              << std::get<3>(key) << " on rank "
                              << getRankAttr().getInt();
  }
  return success();
}

/// Range checks shared by units and transfers: the stage lives on the rank
/// and the micro-batch and chunk exist. `stageRank` is the rank that must own
/// `stage` (the program's rank for units; for transfers too, as the stage is
/// the local producer or consumer).
static LogicalResult verifyKey(Operation *op, int64_t stage, int64_t mb,
                               int64_t chunk) {
  auto program = op->getParentOfType<ProgramOp>();
  auto schedule = program->getParentOfType<ScheduleOp>();
  if (!schedule)
    return success(); // the HasParent traits report this
  int64_t ranks = schedule.getStagesAttr().getInt();
  int64_t stages = ranks * schedule.getVirtualStagesAttr().getInt();
  int64_t rank = program.getRankAttr().getInt();
  if (stage < 0 || stage >= stages)
    return op->emitOpError() << "stage " << stage << " is out of range [0, "
                             << stages << ")";
  if (ranks > 0 && stage % ranks != rank)
    return op->emitOpError() << "stage " << stage << " runs on rank "
                             << stage % ranks << ", not on rank " << rank;
  if (mb < 0 || mb >= schedule.getMicrobatchesAttr().getInt())
    return op->emitOpError() << "micro-batch " << mb << " is out of range [0, "
                             << schedule.getMicrobatchesAttr().getInt() << ")";
  if (chunk < 0 || chunk >= schedule.getChunksAttr().getInt())
    return op->emitOpError() << "chunk " << chunk << " is out of range [0, "
                             << schedule.getChunksAttr().getInt() << ")";
  return success();
}

template <typename UnitOp>
static LogicalResult verifyUnit(UnitOp op) {
  return verifyKey(op, op.getStageAttr().getInt(),
                   op.getMicrobatchAttr().getInt(), op.getChunkAttr().getInt());
}

template <typename CommOp>
static LogicalResult verifyComm(CommOp op) {
  if (failed(verifyUnit(op)))
    return failure();
  auto program = op->template getParentOfType<ProgramOp>();
  auto schedule = program->template getParentOfType<ScheduleOp>();
  int64_t peer = op.getPeerAttr().getInt();
  int64_t ranks = schedule.getStagesAttr().getInt();
  if (peer < 0 || peer >= ranks)
    return op.emitOpError() << "peer " << peer << " does not exist (ranks 0.."
                            << ranks - 1 << ")";
  if (peer == program.getRankAttr().getInt())
    return op.emitOpError() << "peer " << peer << " is its own rank";
  return success();
}

LogicalResult ForwardOp::verify() { return verifyUnit(*this); }
LogicalResult BackwardOp::verify() { return verifyUnit(*this); }
LogicalResult BackwardInputOp::verify() { return verifyUnit(*this); }
LogicalResult BackwardWeightOp::verify() { return verifyUnit(*this); }
LogicalResult SendFOp::verify() { return verifyComm(*this); }
LogicalResult RecvFOp::verify() { return verifyComm(*this); }
LogicalResult SendBOp::verify() { return verifyComm(*this); }
LogicalResult RecvBOp::verify() { return verifyComm(*this); }

#define GET_OP_CLASSES
#include "seq1f1b/Dialect/Pipe/IR/PipeOps.cpp.inc"
