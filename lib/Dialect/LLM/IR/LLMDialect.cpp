//===- LLMDialect.cpp - the llm dialect ----------------------------------===//
#include "seq1f1b/Dialect/LLM/IR/LLMDialect.h"
#include "seq1f1b/Dialect/LLM/IR/LLMOps.h"

using namespace mlir;
using namespace seq1f1b::llm;

#include "seq1f1b/Dialect/LLM/IR/LLMOpsDialect.cpp.inc"

void LLMDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "seq1f1b/Dialect/LLM/IR/LLMOps.cpp.inc"
      >();
}
