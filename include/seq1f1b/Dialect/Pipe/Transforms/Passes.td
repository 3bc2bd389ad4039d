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

def PartitionStages : Pass<"s1f-partition-stages", "mlir::ModuleOp"> {
  let summary = "Cut the model graph into cost-balanced contiguous stages";
  let description = [{
    Outlines the model function's ops into `stages * virtual` `pipe.stage`
    regions, cut only where the residual stream alone crosses, minimizing the
    most expensive stage's training FLOPs exactly (dynamic programming; the
    embedding and the LM head count). Parameters go with the stages that read
    them; one read by several stages (tied embeddings) is listed as shared.

    Example: `seq1f1b-opt --s1f-partition-stages="stages=4" model.mlir`
  }];
  let options = [
    Option<"stages", "stages", "int64_t", "1", "Pipeline ranks (P)">,
    Option<"virtualStages", "virtual", "int64_t", "1",
           "Stages per rank (V > 1 for interleaved schedules)">,
  ];
  let dependentDialects = ["seq1f1b::pipe::PipeDialect"];
}

def SplitSequence : Pass<"s1f-split-sequence", "mlir::ModuleOp"> {
  let summary = "Choose where every micro-batch's sequence is cut into chunks";
  let description = [{
    Writes a `pipe.chunk_plan` with N chunk bounds. `even`: equal lengths.
    `flops`: equal training FLOPs per chunk from the cost interface (later
    chunks attend to longer prefixes, so they are shorter). `profile`: reads
    measured chunk times (JSON `{"samples": [{"length": s, "end": e,
    "seconds": t}, ...]}`), fits t = a*(s*e - s^2/2) + b*s + c by least
    squares and balances the fitted time. Bounds are rounded to multiples of
    `align`. Every op of the model must be token-local, causal-prefix or a
    sum over tokens; any other op is an error naming it.

    Example: `seq1f1b-opt --s1f-split-sequence="chunks=4 policy=flops"`
  }];
  let options = [
    Option<"chunks", "chunks", "int64_t", "1", "Sequence chunks (N)">,
    Option<"policy", "policy", "std::string", "\"even\"",
           "even | flops | profile">,
    Option<"align", "align", "int64_t", "1", "Round chunk bounds to this">,
    Option<"profile", "profile", "std::string", "\"\"",
           "Measured chunk times (JSON) for policy=profile">,
  ];
  let dependentDialects = ["seq1f1b::pipe::PipeDialect"];
}

def Schedule : Pass<"s1f-schedule", "mlir::ModuleOp"> {
  let summary = "Generate every rank's program for one training step";
  let description = [{
    Reads the stage count from the `pipe.stage` ops and N from the
    `pipe.chunk_plan` (1 without one) and writes a `pipe.schedule` with one
    `pipe.program` per rank, communication included. Kinds: gpipe, 1f1b,
    interleaved-1f1b, seq1f1b, seq1f1b-interleaved, zb-h1, seq1f1b-zb.

    Example: `seq1f1b-opt --s1f-schedule="kind=seq1f1b microbatches=8"`
  }];
  let options = [
    Option<"kind", "kind", "std::string", "\"seq1f1b\"", "Schedule kind">,
    Option<"microbatches", "microbatches", "int64_t", "1",
           "Micro-batches per step (M)">,
    Option<"virtualStages", "virtual", "int64_t", "1",
           "Stages per rank (V); must match s1f-partition-stages">,
  ];
  let dependentDialects = ["seq1f1b::pipe::PipeDialect"];
}

def VerifySchedule : Pass<"s1f-verify-schedule", "mlir::ModuleOp"> {
  let summary = "Prove every pipe.schedule complete and deadlock free";
  let description = [{
    Checks each `pipe.schedule`: every unit once per stage, F before B (I
    before W), forward chunks ascending and backward chunks descending within
    a micro-batch, data dependencies across stages, every send paired with a
    receive, and, by a deterministic event simulation, that the programs
    cannot deadlock. Each problem is reported at the offending op.
  }];
}

def PlanMemory : Pass<"s1f-plan-memory", "mlir::ModuleOp"> {
  let summary = "A static memory arena per rank: every buffer at a fixed offset";
  let description = [{
    Lays out, per rank, every buffer the schedule creates (a unit's saved
    activations and what its W still needs, its K/V cache, I's output
    gradients, a recomputed layer, a micro-batch's KV-gradient buffer) in one
    arena, each at a fixed offset clear of every buffer alive at the same
    time (largest first, lowest offset). Prints, per rank, the buffers, the
    most bytes alive at once (the simulator's peak of activations and KV),
    the arena that holds them and the share the placement leaves unused, and
    the arena plus the weights, gradients and optimizer state against the
    GPU's memory. Attaches the arena bytes per rank to the schedule as
    `pipe.arena_bytes`. Takes s1f-simulate's memory options.

    Example: `seq1f1b-opt --s1f-plan-memory="gpu=h100 tp=2"`
  }];
  let options = [
    Option<"gpu", "gpu", "std::string", "\"h100\"",
           "h100 | h200 | a100 | a .json profile (its memory)">,
    Option<"tensorParallel", "tp", "int64_t", "1",
           "Tensor-parallel degree dividing weights and activations">,
    Option<"contextParallel", "cp", "int64_t", "1",
           "Context-parallel degree dividing activations and K/V">,
    Option<"optimizerShards", "optimizer-shards", "int64_t", "1",
           "Data-parallel ranks sharing the optimizer state">,
    Option<"recompute", "recompute", "bool", "false",
           "Full activation recomputation, one layer per checkpoint">,
    Option<"bytes", "bytes", "bool", "false",
           "Print memory in bytes instead of GiB">,
  ];
}

def Simulate : Pass<"s1f-simulate", "mlir::ModuleOp"> {
  let summary = "Simulate the schedule: step time, bubble, peak memory";
  let description = [{
    Times every (stage, chunk) unit from the cost interface on a GPU profile
    (h100, h200, a100), replays the schedule and prints the makespan, the
    bubble fraction per rank and the peak memory per rank, itemized (weights,
    gradients, optimizer state, saved activations, KV caches, KV gradients).
    Optionally writes a Chrome trace (open in Perfetto) and an SVG timeline.
    With `costs=FILE` the unit times come from measurements instead:
    `{"units": [{"stage": 0, "chunk": 0, "forward": 0.0081, "backward":
    0.0162, "backward_input": 0.0081, "backward_weight": 0.0081}, ...]}`
    (seconds; one entry per (stage, chunk); without the I/W split a backward
    counts half for each). `recompute=true` models full activation
    recomputation (one layer per checkpoint, as `seq1f1b-train --recompute
    full` runs it; not with the kinds that split the backward).

    Example: `seq1f1b-opt --s1f-simulate="gpu=h100 svg=plan.svg"`
  }];
  let options = [
    Option<"costs", "costs", "std::string", "\"model\"",
           "model (the cost interface on the GPU profile) or a JSON file of "
           "measured unit times">,
    Option<"gpu", "gpu", "std::string", "\"h100\"",
           "h100 | h200 | a100 | a .json profile (docs/user-guide.md)">,
    Option<"tensorParallel", "tp", "int64_t", "1",
           "Tensor-parallel degree dividing weights, activations and FLOPs">,
    Option<"contextParallel", "cp", "int64_t", "1",
           "Context-parallel degree (ring attention) dividing activations, "
           "K/V and FLOPs">,
    Option<"optimizerShards", "optimizer-shards", "int64_t", "1",
           "Data-parallel ranks sharing the optimizer state (Megatron's "
           "distributed optimizer)">,
    Option<"trace", "trace", "std::string", "\"\"", "Chrome trace JSON file">,
    Option<"svg", "svg", "std::string", "\"\"", "SVG timeline file">,
    Option<"bytes", "bytes", "bool", "false",
           "Print memory in bytes instead of GiB">,
    Option<"recompute", "recompute", "bool", "false",
           "Full activation recomputation, one layer per checkpoint">,
  ];
}

#endif // SEQ1F1B_PIPE_PASSES
