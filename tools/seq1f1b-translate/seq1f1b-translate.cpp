//===- seq1f1b-translate.cpp - into and out of the seq1f1b dialects ------===//
#include "seq1f1b/Translate/HFConfig.h"
#include "seq1f1b/Translate/LLVMIR.h"
#include "seq1f1b/Translate/RuntimeGraph.h"
#include "seq1f1b/Translate/ScheduleCsv.h"

#include "mlir/Tools/mlir-translate/MlirTranslateMain.h"

int main(int argc, char **argv) {
  seq1f1b::registerHFConfigImport();
  seq1f1b::registerScheduleCsvTranslations();
  seq1f1b::registerRuntimeGraphExport();
  seq1f1b::registerLLVMIRExport();
  return mlir::failed(mlir::mlirTranslateMain(
      argc, argv, "seq1f1b translate: model configs and schedules in and out\n"));
}
