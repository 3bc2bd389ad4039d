//===- PartitionStages.cpp - outline cost-balanced pipeline stages --------===//
#include "seq1f1b/Analysis/PipelineModel.h"
#include "seq1f1b/Dialect/LLM/IR/LLMOps.h"
#include "seq1f1b/Dialect/Pipe/IR/PipeOps.h"
#include "seq1f1b/Dialect/Pipe/Transforms/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/SetVector.h"

namespace seq1f1b {
#define GEN_PASS_DEF_PARTITIONSTAGES
#include "seq1f1b/Dialect/Pipe/Transforms/Passes.h.inc"
} // namespace seq1f1b

using namespace mlir;
using namespace seq1f1b;

/// Moves `ops` into a new `pipe.stage index` placed before the first of them.
/// Values they use from outside become stage inputs, except parameter reads,
/// which are repeated inside; values used after them become stage outputs.
static pipe::StageOp outlineStage(ArrayRef<Operation *> ops, int64_t index) {
  llvm::DenseSet<Operation *> inside(ops.begin(), ops.end());
  llvm::SetVector<Value> inputs, outputs;
  llvm::SetVector<Operation *> paramReads;
  for (Operation *op : ops) {
    for (Value operand : op->getOperands()) {
      Operation *def = operand.getDefiningOp();
      if (def && inside.contains(def))
        continue;
      if (auto read = dyn_cast_or_null<llm::ParamRefOp>(def))
        paramReads.insert(read);
      else
        inputs.insert(operand);
    }
    for (Value result : op->getResults())
      if (llvm::any_of(result.getUsers(),
                       [&](Operation *user) { return !inside.contains(user); }))
        outputs.insert(result);
  }

  OpBuilder builder(ops.front());
  SmallVector<Attribute> params;
  llvm::DenseSet<Attribute> seenParams;
  auto noteParam = [&](llm::ParamRefOp read) {
    if (seenParams.insert(read.getParamAttr()).second)
      params.push_back(read.getParamAttr());
  };
  SmallVector<Type> outputTypes;
  for (Value v : outputs)
    outputTypes.push_back(v.getType());
  auto stage = builder.create<pipe::StageOp>(
      ops.front()->getLoc(), outputTypes, inputs.getArrayRef(), index,
      builder.getArrayAttr({}), ArrayAttr());
  Block *body = new Block();
  stage.getBody().push_back(body);
  IRMapping mapping;
  for (Value input : inputs)
    mapping.map(input, body->addArgument(input.getType(), input.getLoc()));
  OpBuilder inner = OpBuilder::atBlockEnd(body);
  for (Operation *read : paramReads) {
    Operation *clone = inner.clone(*read);
    mapping.map(read->getResult(0), clone->getResult(0));
    noteParam(cast<llm::ParamRefOp>(clone));
  }
  auto yield = inner.create<pipe::YieldOp>(stage.getLoc(), outputs.getArrayRef());
  for (Operation *op : ops) {
    op->moveBefore(yield);
    if (auto read = dyn_cast<llm::ParamRefOp>(op))
      noteParam(read);
    for (OpOperand &operand : op->getOpOperands())
      if (Value mapped = mapping.lookupOrNull(operand.get()))
        operand.set(mapped);
  }
  for (auto [i, value] : llvm::enumerate(outputs)) {
    Value output = value;
    output.replaceUsesWithIf(stage.getResult(i), [&](OpOperand &use) {
      return use.getOwner() != yield;
    });
  }
  stage.setParamsAttr(builder.getArrayAttr(params));
  for (Operation *read : paramReads)
    if (read->use_empty())
      read->erase();
  return stage;
}

namespace {
struct PartitionStagesPass
    : public seq1f1b::impl::PartitionStagesBase<PartitionStagesPass> {
  using PartitionStagesBase::PartitionStagesBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    FailureOr<func::FuncOp> model = findModelFunction(module);
    if (failed(model))
      return signalPassFailure();
    if (!model->getOps<pipe::StageOp>().empty()) {
      model->emitError() << "is already partitioned into pipe.stage ops";
      return signalPassFailure();
    }
    if (stages < 1 || virtualStages < 1) {
      model->emitError() << "stages=" << stages.getValue() << " and virtual="
                         << virtualStages.getValue() << " must both be >= 1";
      return signalPassFailure();
    }
    OpList ops = modelOps(*model);
    FailureOr<SmallVector<unsigned>> bounds = partitionIntoStages(
        ops, getModelShape(*model).seqLen, stages * virtualStages,
        model->getLoc());
    if (failed(bounds))
      return signalPassFailure();

    SmallVector<pipe::StageOp> created;
    for (size_t i = 0; i + 1 < bounds->size(); ++i)
      created.push_back(outlineStage(
          ArrayRef<Operation *>(ops).slice((*bounds)[i],
                                           (*bounds)[i + 1] - (*bounds)[i]),
          i));
    markSharedParams(created);
  }

  /// A parameter read by several stages (tied embeddings) is shared: each
  /// holds a copy and their gradients are summed.
  static void markSharedParams(ArrayRef<pipe::StageOp> stages) {
    llvm::DenseMap<Attribute, int> readers;
    for (pipe::StageOp stage : stages)
      for (Attribute param : stage.getParams())
        ++readers[param];
    for (pipe::StageOp stage : stages) {
      SmallVector<Attribute> shared;
      for (Attribute param : stage.getParams())
        if (readers[param] > 1)
          shared.push_back(param);
      if (!shared.empty())
        stage.setSharedAttr(ArrayAttr::get(stage.getContext(), shared));
    }
  }
};
} // namespace
