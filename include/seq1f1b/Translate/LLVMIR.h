//===- LLVMIR.h - The lowered program as LLVM IR ----------------*- C++ -*-===//
#ifndef SEQ1F1B_TRANSLATE_LLVMIR_H
#define SEQ1F1B_TRANSLATE_LLVMIR_H

namespace seq1f1b {

/// Registers `--mlir-to-llvmir`: a module in the LLVM dialect (the output of
/// s1f-lower-to-runtime) as textual LLVM IR, for llc. Only the builtin and
/// LLVM dialects are translated, so other ops are an error naming them.
void registerLLVMIRExport();

} // namespace seq1f1b

#endif // SEQ1F1B_TRANSLATE_LLVMIR_H
