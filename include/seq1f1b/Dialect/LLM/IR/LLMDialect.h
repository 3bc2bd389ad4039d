//===- LLMDialect.h - the llm dialect ------------------------------------===//
#ifndef SEQ1F1B_DIALECT_LLM_IR_LLMDIALECT_H
#define SEQ1F1B_DIALECT_LLM_IR_LLMDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/Dialect.h"

#include "seq1f1b/Dialect/LLM/IR/LLMOpsDialect.h.inc"

#endif // SEQ1F1B_DIALECT_LLM_IR_LLMDIALECT_H
