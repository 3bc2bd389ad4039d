//===- Passes.h - seq1f1b conversion passes -------------------------------===//
#ifndef SEQ1F1B_CONVERSION_PASSES_H
#define SEQ1F1B_CONVERSION_PASSES_H

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace seq1f1b {

#define GEN_PASS_DECL
#include "seq1f1b/Conversion/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "seq1f1b/Conversion/Passes.h.inc"

} // namespace seq1f1b

#endif // SEQ1F1B_CONVERSION_PASSES_H
