//===- Passes.td - seq1f1b conversion passes ------------------*- tablegen -*-===//
#ifndef SEQ1F1B_CONVERSION_PASSES
#define SEQ1F1B_CONVERSION_PASSES

include "mlir/Pass/PassBase.td"

def LowerToRuntime : Pass<"s1f-lower-to-runtime", "mlir::ModuleOp"> {
  let summary = "Lower a planned module to a training program over the runtime's C ABI";
  let description = [{
    Replaces the module that s1f-pipeline planned (stages, chunk plan and a
    pipe.schedule) by a training program in the LLVM dialect:

    - per `pipe.program`, `llvm.func @s1f_rank_<r>(!llvm.ptr)` whose body is
      the rank's actions in order, each a call of the runtime's C ABI
      (`runtime/include/seq1f1b/runtime.h`): `pipe.forward` becomes
      `s1f_rt_forward(rank, stage, mb, chunk)`, `pipe.send_f`
      `s1f_rt_send_f(rank, stage, mb, chunk, peer)`, `pipe.optimizer_step`
      `s1f_rt_optimizer_step(rank)`, and so on;
    - `@s1f_graph`: the model as the runtime's graph JSON, with the stage cut
      (what `seq1f1b-translate --export-runtime-graph` writes), which the
      runtime's kernels run;
    - `@s1f_plan`: the schedule (PyTorch's text format), the chunk bounds, the
      micro-batch size and the model's name, as JSON;
    - `main`, which registers every rank's program and calls `s1f_rt_main`.

    `seq1f1b-translate --mlir-to-llvmir` then writes LLVM IR, which `llc`
    compiles and `-lseq1f1b_runtime` links into a training executable
    (`seq1f1b-compile` does all of it). The schedule must verify; a module
    without one, or without the model, is an error.

    Example: `seq1f1b-opt plan.mlir --s1f-lower-to-runtime | seq1f1b-translate --mlir-to-llvmir`
  }];
  let dependentDialects = ["mlir::LLVM::LLVMDialect"];
}

#endif // SEQ1F1B_CONVERSION_PASSES
