//===- PipeDialect.h - the pipe dialect ----------------------------------===//
#ifndef SEQ1F1B_DIALECT_PIPE_IR_PIPEDIALECT_H
#define SEQ1F1B_DIALECT_PIPE_IR_PIPEDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/Dialect.h"

#include "seq1f1b/Dialect/Pipe/IR/PipeOpsDialect.h.inc"

#endif // SEQ1F1B_DIALECT_PIPE_IR_PIPEDIALECT_H
