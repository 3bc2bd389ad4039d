//===- ScheduleCsv.cpp - pipe.schedule to and from the schedule text format ===//
#include "seq1f1b/Translate/ScheduleCsv.h"

#include "seq1f1b/Dialect/LLM/IR/LLMDialect.h"
#include "seq1f1b/Dialect/Pipe/IR/PipeOps.h"
#include "seq1f1b/Dialect/Pipe/IR/ScheduleConversion.h"
#include "seq1f1b/Schedule/Csv.h"
#include "seq1f1b/Schedule/Verify.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Tools/mlir-translate/Translation.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Regex.h"
#include "llvm/Support/SourceMgr.h"

using namespace mlir;
using namespace seq1f1b;

static LogicalResult exportScheduleCsv(Operation *op, llvm::raw_ostream &os) {
  SmallVector<pipe::ScheduleOp> schedules;
  op->walk([&](pipe::ScheduleOp s) { schedules.push_back(s); });
  if (schedules.size() != 1)
    return op->emitError() << "expects exactly one pipe.schedule to export, "
                              "found "
                           << schedules.size();
  os << schedule::exportCsv(pipe::toLibrarySchedule(schedules.front()));
  return success();
}

/// "row R, column C: why" -> a location on line R of the file.
static Location rowLocation(MLIRContext *ctx, StringRef file,
                            StringRef message) {
  SmallVector<StringRef> m;
  unsigned row = 1;
  if (llvm::Regex("^row ([0-9]+), column [0-9]+").match(message, &m))
    m[1].getAsInteger(10, row);
  return FileLineColLoc::get(ctx, file, row, 1);
}

static OwningOpRef<Operation *> importScheduleCsv(llvm::SourceMgr &sourceMgr,
                                                  MLIRContext *ctx,
                                                  StringRef kindName) {
  ctx->loadDialect<pipe::PipeDialect>();
  const llvm::MemoryBuffer *buffer =
      sourceMgr.getMemoryBuffer(sourceMgr.getMainFileID());
  StringRef file = buffer->getBufferIdentifier();
  Location fileLoc = FileLineColLoc::get(ctx, file, 1, 1);
  std::optional<schedule::ScheduleKind> kind;
  if (!kindName.empty()) {
    schedule::Result<schedule::ScheduleKind> parsed =
        schedule::parseScheduleKind(kindName.str());
    if (!parsed) {
      emitError(fileLoc) << "--schedule-kind: " << parsed.error;
      return nullptr;
    }
    kind = *parsed;
  }
  schedule::Result<schedule::Schedule> imported =
      schedule::importCsv(buffer->getBuffer(), kind);
  if (!imported) {
    emitError(rowLocation(ctx, file, imported.error)) << imported.error;
    return nullptr;
  }
  schedule::Schedule s = *imported;
  bool hasComm = llvm::any_of(s.ranks, [](const auto &program) {
    return llvm::any_of(program, [](const schedule::Action &a) {
      return schedule::isComm(a.kind);
    });
  });
  if (!hasComm) {
    schedule::Result<schedule::Schedule> withComm = schedule::addCommunication(s);
    if (!withComm) {
      emitError(fileLoc) << withComm.error;
      return nullptr;
    }
    s = *withComm;
  }
  std::vector<schedule::Diagnostic> problems = schedule::verifySchedule(s);
  if (!problems.empty()) {
    for (const schedule::Diagnostic &d : problems)
      emitError(FileLineColLoc::get(ctx, file, d.rank >= 0 ? d.rank + 1 : 1, 1))
          << "invalid schedule: " << d.message;
    return nullptr;
  }
  OwningOpRef<ModuleOp> module = ModuleOp::create(fileLoc);
  OpBuilder builder = OpBuilder::atBlockEnd(module->getBody());
  pipe::buildScheduleOp(builder, fileLoc, s);
  return OwningOpRef<Operation *>(module.release());
}

void seq1f1b::registerScheduleCsvTranslations() {
  static llvm::cl::opt<std::string> kind(
      "schedule-kind",
      llvm::cl::desc("Kind recorded by --import-schedule-csv (default custom)"),
      llvm::cl::init(""));
  static TranslateFromMLIRRegistration exportRegistration(
      "export-schedule-csv", "pipe.schedule to PyTorch's schedule text format",
      exportScheduleCsv, [](DialectRegistry &registry) {
        registry.insert<llm::LLMDialect, pipe::PipeDialect, func::FuncDialect>();
      });
  static TranslateToMLIRRegistration importRegistration(
      "import-schedule-csv", "PyTorch's schedule text format to pipe.schedule",
      [](llvm::SourceMgr &sourceMgr, MLIRContext *ctx) {
        return importScheduleCsv(sourceMgr, ctx, kind);
      },
      [](DialectRegistry &registry) { registry.insert<pipe::PipeDialect>(); });
}
