//===- LowerToRuntime.cpp - rank programs to calls of the runtime's C ABI -===//
//
// The planned module becomes a program in the LLVM dialect: one function per
// rank program whose body calls runtime.h in the schedule's order, the
// graph and the plan as string constants, and a main. The runtime's symbols
// are declared from one table (kAbi).
//
//===----------------------------------------------------------------------===//
#include "seq1f1b/Conversion/Passes.h"

#include "seq1f1b/Dialect/Pipe/IR/PipeOps.h"
#include "seq1f1b/Dialect/Pipe/IR/ScheduleConversion.h"
#include "seq1f1b/Schedule/Csv.h"
#include "seq1f1b/Schedule/Verify.h"
#include "seq1f1b/Translate/RuntimeGraph.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"

namespace seq1f1b {
#define GEN_PASS_DEF_LOWERTORUNTIME
#include "seq1f1b/Conversion/Passes.h.inc"
} // namespace seq1f1b

using namespace mlir;
using namespace seq1f1b;

namespace {

/// The runtime symbols a program calls: name and its i32 arguments after
/// the rank pointer (runtime.h).
struct AbiFunction {
  const char *name;
  int ints;
};
constexpr AbiFunction kAbi[] = {
    {"s1f_rt_forward", 3},        {"s1f_rt_backward", 3},
    {"s1f_rt_backward_input", 3}, {"s1f_rt_backward_weight", 3},
    {"s1f_rt_send_f", 4},         {"s1f_rt_recv_f", 4},
    {"s1f_rt_send_b", 4},         {"s1f_rt_recv_b", 4},
    {"s1f_rt_optimizer_step", 0},
};

/// The runtime call an action op becomes, and its integer arguments.
std::optional<std::pair<StringRef, SmallVector<int64_t>>>
abiCall(Operation *op) {
  using Call = std::pair<StringRef, SmallVector<int64_t>>;
  auto unit = [](StringRef name, auto u) {
    return Call{name, {int64_t(u.getStage()), int64_t(u.getMicrobatch()),
                       int64_t(u.getChunk())}};
  };
  auto comm = [](StringRef name, auto c) {
    return Call{name,
                {int64_t(c.getStage()), int64_t(c.getMicrobatch()),
                 int64_t(c.getChunk()), int64_t(c.getPeer())}};
  };
  return llvm::TypeSwitch<Operation *, std::optional<Call>>(op)
      .Case([&](pipe::ForwardOp u) { return unit("s1f_rt_forward", u); })
      .Case([&](pipe::BackwardOp u) { return unit("s1f_rt_backward", u); })
      .Case([&](pipe::BackwardInputOp u) {
        return unit("s1f_rt_backward_input", u);
      })
      .Case([&](pipe::BackwardWeightOp u) {
        return unit("s1f_rt_backward_weight", u);
      })
      .Case([&](pipe::SendFOp c) { return comm("s1f_rt_send_f", c); })
      .Case([&](pipe::RecvFOp c) { return comm("s1f_rt_recv_f", c); })
      .Case([&](pipe::SendBOp c) { return comm("s1f_rt_send_b", c); })
      .Case([&](pipe::RecvBOp c) { return comm("s1f_rt_recv_b", c); })
      .Case([&](pipe::OptimizerStepOp) {
        return Call{"s1f_rt_optimizer_step", {}};
      })
      .Default([](Operation *) { return std::nullopt; });
}

struct LowerToRuntime
    : public seq1f1b::impl::LowerToRuntimeBase<LowerToRuntime> {
  void runOnOperation() override;

private:
  /// What the runtime needs besides the programs: the graph JSON and the
  /// plan JSON; fails with a located error.
  LogicalResult describe(pipe::ScheduleOp schedule, std::string &graph,
                         std::string &plan);
  LLVM::GlobalOp stringConstant(OpBuilder &b, StringRef name,
                                StringRef value);
};

LogicalResult LowerToRuntime::describe(pipe::ScheduleOp scheduleOp,
                                       std::string &graph, std::string &plan) {
  ModuleOp module = getOperation();
  auto config = module->getAttrOfType<DictionaryAttr>("llm.config");
  auto seqLen = config ? config.getAs<IntegerAttr>("seq_len") : IntegerAttr();
  auto batch = config ? config.getAs<IntegerAttr>("micro_batch") : IntegerAttr();
  if (!seqLen || !batch)
    return module.emitError()
           << "expects the importer's llm.config with seq_len and "
              "micro_batch";
  auto name = config.getAs<StringAttr>("model_type");

  const schedule::Schedule lib = pipe::toLibrarySchedule(scheduleOp);
  std::vector<schedule::Diagnostic> problems = schedule::verifySchedule(lib);
  if (!problems.empty())
    return scheduleOp.emitError()
           << "the schedule does not verify (s1f-verify-schedule names each "
              "problem):\n"
           << schedule::formatDiagnostics(problems);

  std::vector<int64_t> bounds{0, seqLen.getInt()};
  for (auto chunkPlan : module.getOps<pipe::ChunkPlanOp>())
    bounds.assign(chunkPlan.getBounds().begin(), chunkPlan.getBounds().end());
  if (static_cast<int64_t>(bounds.size()) != lib.config.chunks + 1)
    return scheduleOp.emitError()
           << "the schedule has " << lib.config.chunks
           << " chunks but the module's chunk plan " << bounds.size() - 1
           << " (run s1f-split-sequence)";

  llvm::raw_string_ostream graphOs(graph);
  if (failed(writeRuntimeGraph(module, graphOs)))
    return failure();
  llvm::json::Object object{
      {"model", name ? name.getValue() : "model"},
      {"schedule_csv", schedule::exportCsv(lib)},
      {"chunk_bounds", llvm::json::Array(bounds)},
      {"micro_batch_size", batch.getInt()},
  };
  plan = llvm::formatv("{0}", llvm::json::Value(std::move(object))).str();
  return success();
}

LLVM::GlobalOp LowerToRuntime::stringConstant(OpBuilder &b, StringRef name,
                                              StringRef value) {
  std::string text = value.str();
  text.push_back('\0');
  auto type = LLVM::LLVMArrayType::get(b.getI8Type(), text.size());
  return b.create<LLVM::GlobalOp>(getOperation().getLoc(), type,
                                  /*isConstant=*/true, LLVM::Linkage::Internal,
                                  name, b.getStringAttr(text));
}

void LowerToRuntime::runOnOperation() {
  ModuleOp module = getOperation();
  SmallVector<pipe::ScheduleOp> schedules(module.getOps<pipe::ScheduleOp>());
  if (schedules.size() != 1) {
    module.emitError() << "expects one pipe.schedule (run s1f-pipeline), "
                          "found "
                       << schedules.size();
    return signalPassFailure();
  }
  pipe::ScheduleOp scheduleOp = schedules.front();
  std::string graph, plan;
  if (failed(describe(scheduleOp, graph, plan)))
    return signalPassFailure();

  // The programs, before the module's model ops go.
  MLIRContext *ctx = &getContext();
  Location loc = module.getLoc();
  SmallVector<std::pair<int64_t, SmallVector<Operation *>>> programs;
  for (auto program : scheduleOp.getBody().getOps<pipe::ProgramOp>()) {
    auto &[rank, ops] = programs.emplace_back();
    rank = program.getRank();
    for (Operation &op : program.getBody().getOps())
      ops.push_back(&op);
  }

  OpBuilder b(ctx);
  auto ptr = LLVM::LLVMPointerType::get(ctx);
  auto i32 = b.getI32Type();
  auto voidType = LLVM::LLVMVoidType::get(ctx);
  auto lowered = ModuleOp::create(loc);
  b.setInsertionPointToEnd(lowered.getBody());
  llvm::StringMap<LLVM::LLVMFuncOp> abi;
  for (const AbiFunction &f : kAbi) {
    SmallVector<Type> args{ptr};
    args.append(f.ints, i32);
    abi[f.name] = b.create<LLVM::LLVMFuncOp>(
        loc, f.name, LLVM::LLVMFunctionType::get(voidType, args));
  }
  auto registerFn = b.create<LLVM::LLVMFuncOp>(
      loc, "s1f_rt_register_program",
      LLVM::LLVMFunctionType::get(voidType, {i32, ptr}));
  auto mainFn = b.create<LLVM::LLVMFuncOp>(
      loc, "s1f_rt_main",
      LLVM::LLVMFunctionType::get(i32, {i32, ptr, ptr, ptr}));
  LLVM::GlobalOp graphGlobal = stringConstant(b, "s1f_graph", graph);
  LLVM::GlobalOp planGlobal = stringConstant(b, "s1f_plan", plan);

  SmallVector<std::pair<int64_t, LLVM::LLVMFuncOp>> rankFns;
  for (auto &[rank, ops] : programs) {
    OpBuilder::InsertionGuard guard(b);
    auto fn = b.create<LLVM::LLVMFuncOp>(
        loc, "s1f_rank_" + std::to_string(rank),
        LLVM::LLVMFunctionType::get(voidType, {ptr}));
    rankFns.push_back({rank, fn});
    Block *body = fn.addEntryBlock(b);
    b.setInsertionPointToEnd(body);
    // One constant per distinct integer, at the top of the function.
    llvm::DenseMap<int64_t, Value> constants;
    auto constant = [&](int64_t v) {
      auto [it, inserted] = constants.try_emplace(v);
      if (inserted) {
        OpBuilder::InsertionGuard top(b);
        b.setInsertionPointToStart(body);
        it->second =
            b.create<LLVM::ConstantOp>(loc, i32, b.getI32IntegerAttr(v));
      }
      return it->second;
    };
    for (Operation *op : ops) {
      auto call = abiCall(op);
      if (!call) {
        op->emitError() << "has no runtime call";
        return signalPassFailure();
      }
      SmallVector<Value> args{body->getArgument(0)};
      for (int64_t v : call->second)
        args.push_back(constant(v));
      b.create<LLVM::CallOp>(op->getLoc(), abi[call->first], args);
    }
    b.create<LLVM::ReturnOp>(loc, ValueRange());
  }

  auto main = b.create<LLVM::LLVMFuncOp>(
      loc, "main", LLVM::LLVMFunctionType::get(i32, {i32, ptr}));
  Block *entry = main.addEntryBlock(b);
  b.setInsertionPointToEnd(entry);
  for (auto &[rank, fn] : rankFns) {
    Value r = b.create<LLVM::ConstantOp>(loc, i32, b.getI32IntegerAttr(rank));
    Value f = b.create<LLVM::AddressOfOp>(loc, fn);
    b.create<LLVM::CallOp>(loc, registerFn, ValueRange{r, f});
  }
  Value g = b.create<LLVM::AddressOfOp>(loc, graphGlobal);
  Value p = b.create<LLVM::AddressOfOp>(loc, planGlobal);
  auto rc = b.create<LLVM::CallOp>(
      loc, mainFn,
      ValueRange{entry->getArgument(0), entry->getArgument(1), g, p});
  b.create<LLVM::ReturnOp>(loc, rc.getResult());

  // The module is now the program: the model travels as the graph JSON.
  module.getBody()->getOperations().clear();
  module->setAttrs(ArrayRef<NamedAttribute>{});
  module.getBody()->getOperations().splice(
      module.getBody()->end(), lowered.getBody()->getOperations());
  lowered.erase();
}

} // namespace
