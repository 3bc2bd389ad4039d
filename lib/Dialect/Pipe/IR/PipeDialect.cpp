//===- PipeDialect.cpp - the pipe dialect --------------------------------===//
#include "seq1f1b/Dialect/Pipe/IR/PipeDialect.h"
#include "seq1f1b/Dialect/Pipe/IR/PipeOps.h"

using namespace mlir;
using namespace seq1f1b::pipe;

#include "seq1f1b/Dialect/Pipe/IR/PipeOpsDialect.cpp.inc"

void PipeDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "seq1f1b/Dialect/Pipe/IR/PipeOps.cpp.inc"
      >();
}
