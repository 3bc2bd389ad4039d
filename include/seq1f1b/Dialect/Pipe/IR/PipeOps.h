//===- PipeOps.h - ops of the pipe dialect -------------------------------===//
#ifndef SEQ1F1B_DIALECT_PIPE_IR_PIPEOPS_H
#define SEQ1F1B_DIALECT_PIPE_IR_PIPEOPS_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/RegionKindInterface.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "seq1f1b/Dialect/Pipe/IR/PipeDialect.h"

#include "seq1f1b/Dialect/Pipe/IR/PipeOpsEnums.h.inc"

#define GET_OP_CLASSES
#include "seq1f1b/Dialect/Pipe/IR/PipeOps.h.inc"

#endif // SEQ1F1B_DIALECT_PIPE_IR_PIPEOPS_H
