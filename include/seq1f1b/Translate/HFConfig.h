//===- HFConfig.h - Hugging Face config.json to the llm dialect ----------===//
#ifndef SEQ1F1B_TRANSLATE_HFCONFIG_H
#define SEQ1F1B_TRANSLATE_HFCONFIG_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/Support/SourceMgr.h"
#include <optional>
#include <string>

namespace seq1f1b {

struct HFImportOptions {
  /// Tokens per sequence; 0 means the config's context length.
  int64_t seqLen = 0;
  int64_t microBatchSize = 1;
  /// "f32", "bf16" or "f16"; empty means the config's torch_dtype (f32 if none).
  std::string dtype;
};

/// The problem with `options` (a seq-len below 0, a micro-batch size below 1,
/// an unknown dtype), or an empty string.
std::string checkImportOptions(const HFImportOptions &options);

/// `path`, or its config.json when `path` is a model directory (as Hugging
/// Face saves one, and as --init-from takes it).
std::string configFilePath(llvm::StringRef path);

/// Builds the llm model graph of a GPT-2 or Llama/Mistral/Qwen2 config.json
/// held by the main buffer of `sourceMgr`. Errors are emitted as diagnostics
/// located in that file (naming the key and the problem); returns null then.
mlir::OwningOpRef<mlir::ModuleOp> importHFConfig(llvm::SourceMgr &sourceMgr,
                                                 mlir::MLIRContext *context,
                                                 const HFImportOptions &options);

/// Registers the `--import-hf-config` translation and its options
/// (`--seq-len`, `--micro-batch-size`, `--dtype`).
void registerHFConfigImport();

} // namespace seq1f1b

#endif // SEQ1F1B_TRANSLATE_HFCONFIG_H
