//===- LLMInterfaces.h - sequence dependence and cost of model ops --------===//
#ifndef SEQ1F1B_DIALECT_LLM_IR_LLMINTERFACES_H
#define SEQ1F1B_DIALECT_LLM_IR_LLMINTERFACES_H

#include "mlir/IR/OpDefinition.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"

namespace seq1f1b::llm {

/// How an op's results depend on the token axis (see the interface).
enum class SequenceDependence { TokenLocal, CausalPrefix, SumReduction };

llvm::StringRef stringifySequenceDependence(SequenceDependence dep);

/// Where an op's cost is reported in per-layer splits.
enum class CostCategory { Attention, Projection, MLP, EmbeddingHead, Other };

llvm::StringRef stringifyCostCategory(CostCategory category);

/// Cost of one op on one sequence chunk of one micro-batch.
struct OpCost {
  double forwardFlops = 0;
  /// Backward split as Zero Bubble PP does: gradient w.r.t. the inputs (I)
  /// and w.r.t. the weights (W).
  double backwardInputFlops = 0;
  double backwardWeightFlops = 0;
  /// Bytes read plus bytes written by the forward.
  double forwardBytes = 0;
  CostCategory category = CostCategory::Other;

  double backwardFlops() const { return backwardInputFlops + backwardWeightFlops; }
  OpCost &operator+=(const OpCost &other);
};

} // namespace seq1f1b::llm

#include "seq1f1b/Dialect/LLM/IR/LLMInterfaces.h.inc"

#endif // SEQ1F1B_DIALECT_LLM_IR_LLMINTERFACES_H
