//===- Passes.h - seq1f1b pipeline passes --------------------------------===//
#ifndef SEQ1F1B_DIALECT_PIPE_TRANSFORMS_PASSES_H
#define SEQ1F1B_DIALECT_PIPE_TRANSFORMS_PASSES_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace seq1f1b {

#define GEN_PASS_DECL
#include "seq1f1b/Dialect/Pipe/Transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "seq1f1b/Dialect/Pipe/Transforms/Passes.h.inc"

/// Registers `s1f-pipeline="stages=P virtual=V chunks=N policy=flops
/// microbatches=M schedule=seq1f1b"`: partition, split, schedule, verify.
void registerSeq1F1BPipeline();

} // namespace seq1f1b

#endif // SEQ1F1B_DIALECT_PIPE_TRANSFORMS_PASSES_H
