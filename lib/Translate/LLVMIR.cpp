//===- LLVMIR.cpp - --mlir-to-llvmir for the lowered training program -----===//
//
// Upstream's mlir-to-llvmir registration translates every dialect MLIR has
// (GPU, OpenMP, ...); the lowered program uses only builtin and LLVM, so
// this registers just those two and keeps seq1f1b-translate small.
//
//===----------------------------------------------------------------------===//
#include "seq1f1b/Translate/LLVMIR.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "mlir/Tools/mlir-translate/Translation.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"

using namespace mlir;

void seq1f1b::registerLLVMIRExport() {
  static TranslateFromMLIRRegistration registration(
      "mlir-to-llvmir", "the lowered training program as LLVM IR",
      [](Operation *op, llvm::raw_ostream &os) -> LogicalResult {
        llvm::LLVMContext context;
        std::unique_ptr<llvm::Module> module =
            translateModuleToLLVMIR(op, context);
        if (!module)
          return failure();
        module->print(os, nullptr);
        return success();
      },
      [](DialectRegistry &registry) {
        registry.insert<LLVM::LLVMDialect>();
        registerBuiltinDialectTranslation(registry);
        registerLLVMDialectTranslation(registry);
      });
}
