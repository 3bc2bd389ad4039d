//===- Passes.td - seq1f1b pipeline passes -------------------*- tablegen -*-===//
#ifndef SEQ1F1B_PIPE_PASSES
#define SEQ1F1B_PIPE_PASSES

include "mlir/Pass/PassBase.td"

def PrintCost : Pass<"s1f-print-cost", "mlir::ModuleOp"> {
  let summary = "Print the parameter count and the FLOPs split of the model";
  let description = [{
    Prints, for the model function of the module: the parameter count (tied
    parameters once), forward and training FLOPs per token, and forward FLOPs
    split into attention / projections / MLP / embedding+head / other (memory
    bound ops, costed by bytes), in total and per layer. With `chunks=N` it
    also prints the cost of each of N even sequence chunks, the numbers that
    balance Seq1F1B's chunks. The module is left unchanged.

    Example: `seq1f1b-opt --s1f-print-cost="chunks=4" model.mlir`
  }];
  let options = [
    Option<"chunks", "chunks", "int64_t", /*default=*/"0",
           "Also print the cost of each of this many even sequence chunks">,
  ];
}

#endif // SEQ1F1B_PIPE_PASSES
