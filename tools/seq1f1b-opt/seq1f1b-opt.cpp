//===- seq1f1b-opt.cpp - mlir-opt with the seq1f1b dialects and passes ---===//
#include "seq1f1b/Conversion/Passes.h"
#include "seq1f1b/Dialect/LLM/IR/LLMDialect.h"
#include "seq1f1b/Dialect/Pipe/IR/PipeDialect.h"
#include "seq1f1b/Dialect/Pipe/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char **argv) {
  mlir::registerCanonicalizerPass();
  mlir::registerCSEPass();
  mlir::registerSymbolDCEPass();
  seq1f1b::registerSeq1F1BPasses();
  seq1f1b::registerSeq1F1BPipeline();
  seq1f1b::registerSeq1F1BConversionPasses();

  mlir::DialectRegistry registry;
  registry.insert<seq1f1b::llm::LLMDialect, seq1f1b::pipe::PipeDialect,
                  mlir::func::FuncDialect, mlir::LLVM::LLVMDialect>();
  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "seq1f1b optimizer: the Seq1F1B pipeline compiler passes\n",
      registry));
}
