//===- LLMOps.h - ops of the llm dialect ---------------------------------===//
#ifndef SEQ1F1B_DIALECT_LLM_IR_LLMOPS_H
#define SEQ1F1B_DIALECT_LLM_IR_LLMOPS_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "seq1f1b/Dialect/LLM/IR/LLMDialect.h"
#include "seq1f1b/Dialect/LLM/IR/LLMInterfaces.h"

#include "seq1f1b/Dialect/LLM/IR/LLMOpsEnums.h.inc"

#define GET_OP_CLASSES
#include "seq1f1b/Dialect/LLM/IR/LLMOps.h.inc"

#endif // SEQ1F1B_DIALECT_LLM_IR_LLMOPS_H
