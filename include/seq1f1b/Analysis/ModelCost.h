//===- ModelCost.h - cost and size of a whole model graph ----------------===//
//
// Sums the per-op cost interface over the model function, for the whole
// sequence or one chunk of it. Used by the cost report, the chunk splitter and
// the planner.
//
//===----------------------------------------------------------------------===//
#ifndef SEQ1F1B_ANALYSIS_MODELCOST_H
#define SEQ1F1B_ANALYSIS_MODELCOST_H

#include "seq1f1b/Dialect/LLM/IR/LLMInterfaces.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include <array>

namespace seq1f1b {

/// The function holding the model graph: the one whose first argument is the
/// token ids [batch, seq] and that contains llm ops. Emits an error on the
/// module when there is none or more than one.
mlir::FailureOr<mlir::func::FuncOp> findModelFunction(mlir::ModuleOp module);

/// Batch size and sequence length of the model function's token ids.
struct ModelShape {
  int64_t batch = 0;
  int64_t seqLen = 0;
};
ModelShape getModelShape(mlir::func::FuncOp model);

/// Total scalars over all llm.param ops (a tied parameter is one param).
int64_t countParameters(mlir::ModuleOp module);

/// Costs summed per category.
struct CategoryCosts {
  std::array<llm::OpCost, 5> byCategory{};
  llm::OpCost &operator[](llm::CostCategory c) {
    return byCategory[static_cast<size_t>(c)];
  }
  llm::OpCost total() const;
};

/// Cost of running `ops` (or every op nested in `region`) on the chunk of
/// `chunkLen` tokens ending at absolute position `chunkEnd`.
CategoryCosts chunkCost(llvm::ArrayRef<mlir::Operation *> ops,
                        int64_t chunkLen, int64_t chunkEnd);
CategoryCosts chunkCost(mlir::Region &region, int64_t chunkLen,
                        int64_t chunkEnd);

} // namespace seq1f1b

#endif // SEQ1F1B_ANALYSIS_MODELCOST_H
