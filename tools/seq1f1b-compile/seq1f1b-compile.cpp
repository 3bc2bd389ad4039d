//===- seq1f1b-compile.cpp - config.json to a training executable ---------===//
//
// The whole chain in one command: import the config (or read a module),
// plan it (s1f-pipeline) unless it is planned, lower the rank programs to
// calls of the runtime's C ABI (s1f-lower-to-runtime), write LLVM IR, compile
// it with llc and link it with libseq1f1b_runtime. The executable trains
// that plan: `./train --data corpus.txt --steps 100 [--verify]`.
//
//===----------------------------------------------------------------------===//
#include "seq1f1b/Conversion/Passes.h"
#include "seq1f1b/Dialect/LLM/IR/LLMDialect.h"
#include "seq1f1b/Dialect/Pipe/IR/PipeDialect.h"
#include "seq1f1b/Dialect/Pipe/IR/PipeOps.h"
#include "seq1f1b/Dialect/Pipe/Transforms/Passes.h"
#include "seq1f1b/Translate/HFConfig.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"

using namespace mlir;
using namespace seq1f1b;
namespace cl = llvm::cl;

static cl::OptionCategory category("seq1f1b-compile options");
static cl::opt<std::string> input(cl::Positional,
                                  cl::desc("[module.mlir]"), cl::init(""),
                                  cl::cat(category));
static cl::opt<std::string> configPath(
    "config", cl::desc("Hugging Face config.json (or the directory holding it)"),
    cl::value_desc("file"), cl::cat(category));
static cl::opt<int64_t> seqLen("seq-len",
                               cl::desc("Tokens per sequence (default: the "
                                        "config's context length)"),
                               cl::init(0), cl::cat(category));
static cl::opt<int64_t> microBatchSize("micro-batch-size",
                                       cl::desc("Sequences per micro-batch"),
                                       cl::init(1), cl::cat(category));
static cl::opt<int64_t> stages("stages", cl::desc("Pipeline ranks P"),
                               cl::init(1), cl::cat(category));
static cl::opt<int64_t> virtualStages(
    "virtual", cl::desc("Stages per rank for interleaved kinds"), cl::init(1),
    cl::cat(category));
static cl::opt<int64_t> chunks("chunks", cl::desc("Sequence chunks N"),
                               cl::init(1), cl::cat(category));
static cl::opt<std::string>
    policy("policy", cl::desc("Chunk split: even|flops|profile"),
           cl::init("flops"), cl::cat(category));
static cl::opt<std::string> profile(
    "profile",
    cl::desc("Measured chunk times for --policy profile (seq1f1b-train "
             "--profile-out writes them)"),
    cl::value_desc("file"), cl::init(""), cl::cat(category));
static cl::opt<int64_t> microbatches("microbatches",
                                     cl::desc("Micro-batches per step M"),
                                     cl::init(1), cl::cat(category));
static cl::opt<std::string>
    scheduleKind("schedule", cl::desc("Schedule kind (default seq1f1b)"),
                 cl::init("seq1f1b"), cl::cat(category));
static cl::opt<std::string> output("o", cl::desc("The executable to write"),
                                   cl::value_desc("file"), cl::init("train"),
                                   cl::cat(category));
static cl::opt<std::string> emitLLVM(
    "emit-llvm", cl::desc("Also keep the program's LLVM IR in this file"),
    cl::value_desc("file"), cl::init(""), cl::cat(category));
static cl::opt<std::string> llcPath("llc", cl::desc("The llc to compile with"),
                                    cl::init(SEQ1F1B_LLC), cl::cat(category));
static cl::opt<std::string> cxxPath("cxx",
                                    cl::desc("The C++ compiler that links"),
                                    cl::init(SEQ1F1B_CXX), cl::cat(category));
static cl::opt<std::string> runtimeDir(
    "runtime-dir", cl::desc("Where libseq1f1b_runtime.so is"),
    cl::init(SEQ1F1B_RUNTIME_DIR), cl::cat(category));

static int fail(const llvm::Twine &message) {
  llvm::errs() << "seq1f1b-compile: error: " << message << "\n";
  return 1;
}

/// Runs `argv` and fails naming the command when it does not exit 0.
static bool run(llvm::ArrayRef<llvm::StringRef> argv) {
  std::string error;
  const int rc = llvm::sys::ExecuteAndWait(argv.front(), argv, std::nullopt,
                                           {}, 0, 0, &error);
  if (rc == 0)
    return true;
  std::string command;
  for (llvm::StringRef a : argv)
    command += " " + a.str();
  fail("`" + command.substr(1) + "` failed" +
       (error.empty() ? " (exit " + std::to_string(rc) + ")" : ": " + error));
  return false;
}

/// The module to lower: imported from --config, or read from the input.
static OwningOpRef<ModuleOp> load(MLIRContext &ctx, llvm::SourceMgr &sources) {
  const std::string path =
      configPath.empty() ? input.getValue() : configFilePath(configPath);
  auto buffer = llvm::MemoryBuffer::getFileOrSTDIN(path, /*IsText=*/true);
  if (!buffer) {
    fail("cannot read '" + path + "': " + buffer.getError().message());
    return nullptr;
  }
  sources.AddNewSourceBuffer(std::move(*buffer), llvm::SMLoc());
  if (configPath.empty())
    return parseSourceFile<ModuleOp>(sources, &ctx);
  HFImportOptions options;
  options.seqLen = seqLen;
  options.microBatchSize = microBatchSize;
  if (std::string bad = checkImportOptions(options); !bad.empty()) {
    fail(bad);
    return nullptr;
  }
  return importHFConfig(sources, &ctx, options);
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(
      argc, argv,
      "seq1f1b-compile: a model config (or module) to a training executable\n\n"
      "  seq1f1b-compile --config examples/gpt-tiny.json --seq-len 128 \\\n"
      "      --stages 4 --chunks 4 --microbatches 4 -o train\n"
      "  ./train --data examples/data/declaration.txt --steps 20 --verify\n\n"
      "A module that s1f-pipeline planned keeps its plan; an unplanned one is\n"
      "planned with --stages, --virtual, --chunks, --policy, --microbatches\n"
      "and --schedule. The executable takes seq1f1b-train's options but those\n"
      "of the plan (its --help lists them).\n");
  if (configPath.empty() == input.empty())
    return fail("give --config FILE or a module, not both or neither");

  DialectRegistry registry;
  registry.insert<llm::LLMDialect, pipe::PipeDialect, func::FuncDialect,
                  LLVM::LLVMDialect>();
  registerBuiltinDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  MLIRContext ctx(registry);
  llvm::SourceMgr sources;
  SourceMgrDiagnosticHandler diagnostics(sources, &ctx);
  OwningOpRef<ModuleOp> module = load(ctx, sources);
  if (!module)
    return 1;

  PassManager pm(&ctx);
  const bool planned = !module->getOps<pipe::ScheduleOp>().empty();
  if (!planned) {
    pm.addPass(createPartitionStages({stages, virtualStages}));
    pm.addPass(createSplitSequence({chunks, policy, 1, profile}));
    pm.addPass(createSchedule({scheduleKind, microbatches, virtualStages}));
    pm.addPass(createVerifySchedule());
  }
  pm.addPass(createLowerToRuntime());
  if (failed(pm.run(*module)))
    return 1;
  int programs = 0, actions = 0;
  module->walk([&](LLVM::LLVMFuncOp fn) {
    if (!fn.getName().starts_with("s1f_rank_"))
      return;
    ++programs;
    fn.walk([&](LLVM::CallOp) { ++actions; });
  });
  llvm::outs() << "seq1f1b-compile: " << (planned ? "lowered" : "planned and lowered")
               << " " << programs << " rank programs (" << actions
               << " runtime calls)\n";

  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> ir = translateModuleToLLVMIR(*module, llvmContext);
  if (!ir)
    return fail("the lowered program does not translate to LLVM IR");
  llvm::SmallString<128> irPath(emitLLVM.getValue()), objPath;
  if (irPath.empty() &&
      llvm::sys::fs::createTemporaryFile("seq1f1b-compile", "ll", irPath))
    return fail("cannot create a temporary file");
  if (llvm::sys::fs::createTemporaryFile("seq1f1b-compile", "o", objPath))
    return fail("cannot create a temporary file");
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(irPath, ec);
    if (ec)
      return fail("cannot write '" + irPath + "': " + ec.message());
    ir->print(os, nullptr);
  }
  const std::string libFlag = "-L" + runtimeDir.getValue(),
                    rpath = "-Wl,-rpath," + runtimeDir.getValue();
  const bool ok =
      run({llcPath, "-O2", "-filetype=obj", "-relocation-model=pic", irPath,
           "-o", objPath}) &&
      run({cxxPath, objPath, "-o", output, libFlag, "-lseq1f1b_runtime",
           rpath});
  if (emitLLVM.empty())
    llvm::sys::fs::remove(irPath);
  llvm::sys::fs::remove(objPath);
  if (!ok)
    return 1;
  llvm::outs() << "seq1f1b-compile: wrote " << output << " (run it with --data "
               << "FILE; --help lists its options)\n";
  return 0;
}
