//===- LLMInterfaces.cpp - sequence dependence and cost interfaces -------===//
#include "seq1f1b/Dialect/LLM/IR/LLMInterfaces.h"

using namespace seq1f1b::llm;

llvm::StringRef seq1f1b::llm::stringifySequenceDependence(SequenceDependence dep) {
  switch (dep) {
  case SequenceDependence::TokenLocal:
    return "token-local";
  case SequenceDependence::CausalPrefix:
    return "causal-prefix";
  case SequenceDependence::SumReduction:
    return "sum-reduction";
  }
  return "unknown";
}

llvm::StringRef seq1f1b::llm::stringifyCostCategory(CostCategory category) {
  switch (category) {
  case CostCategory::Attention:
    return "attention";
  case CostCategory::Projection:
    return "projections";
  case CostCategory::MLP:
    return "mlp";
  case CostCategory::EmbeddingHead:
    return "embedding+head";
  case CostCategory::Other:
    return "other";
  }
  return "unknown";
}

OpCost &OpCost::operator+=(const OpCost &other) {
  forwardFlops += other.forwardFlops;
  backwardInputFlops += other.backwardInputFlops;
  backwardWeightFlops += other.backwardWeightFlops;
  forwardBytes += other.forwardBytes;
  return *this;
}

#include "seq1f1b/Dialect/LLM/IR/LLMInterfaces.cpp.inc"
