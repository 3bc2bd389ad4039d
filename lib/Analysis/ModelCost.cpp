//===- ModelCost.cpp - cost and size of a whole model graph --------------===//
#include "seq1f1b/Analysis/ModelCost.h"
#include "seq1f1b/Dialect/LLM/IR/LLMOps.h"

using namespace mlir;
using namespace seq1f1b;

FailureOr<func::FuncOp> seq1f1b::findModelFunction(ModuleOp module) {
  func::FuncOp found;
  for (auto func : module.getOps<func::FuncOp>()) {
    if (func.isExternal() || func.getNumArguments() == 0)
      continue;
    bool hasModelOps = false;
    func.walk([&](Operation *op) {
      if (isa<llm::CostOpInterface>(op)) {
        hasModelOps = true;
        return WalkResult::interrupt();
      }
      return WalkResult::advance();
    });
    if (!hasModelOps)
      continue;
    if (found)
      return module.emitError() << "expects one model function, found @"
                                << found.getSymName() << " and @"
                                << func.getSymName();
    found = func;
  }
  if (!found)
    return module.emitError()
           << "expects a func.func holding the llm model graph; found none";
  auto ids = dyn_cast<RankedTensorType>(found.getArgumentTypes().front());
  if (!ids || ids.getRank() != 2 || !ids.hasStaticShape())
    return found.emitError() << "expects the first argument to be the token "
                                "ids tensor<BATCHxSEQxi32>, got "
                             << found.getArgumentTypes().front();
  return found;
}

ModelShape seq1f1b::getModelShape(func::FuncOp model) {
  auto ids = cast<RankedTensorType>(model.getArgumentTypes().front());
  return {ids.getDimSize(0), ids.getDimSize(1)};
}

int64_t seq1f1b::countParameters(ModuleOp module) {
  int64_t total = 0;
  for (auto param : module.getOps<llm::ParamOp>())
    total += param.getNumElements();
  return total;
}

llm::OpCost CategoryCosts::total() const {
  llm::OpCost sum;
  for (const llm::OpCost &c : byCategory)
    sum += c;
  return sum;
}

CategoryCosts seq1f1b::chunkCost(ArrayRef<Operation *> ops, int64_t chunkLen,
                                 int64_t chunkEnd) {
  CategoryCosts costs;
  for (Operation *op : ops)
    if (auto costOp = dyn_cast<llm::CostOpInterface>(op)) {
      llm::OpCost cost = costOp.getChunkCost(chunkLen, chunkEnd);
      costs[cost.category] += cost;
    }
  return costs;
}

CategoryCosts seq1f1b::chunkCost(Region &region, int64_t chunkLen,
                                 int64_t chunkEnd) {
  SmallVector<Operation *> ops;
  region.walk([&](llm::CostOpInterface op) { ops.push_back(op); });
  return chunkCost(ops, chunkLen, chunkEnd);
}
