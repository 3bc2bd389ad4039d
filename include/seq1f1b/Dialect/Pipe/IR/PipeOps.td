//===- PipeOps.td - the pipe dialect: stages, chunks, schedules -*- tablegen -*-===//
//
// What the pipeline compiler decides, as IR: which ops form each stage, where
// the sequence is cut into chunks, and the program every rank runs.
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_PIPE_OPS
#define SEQ1F1B_PIPE_OPS

include "mlir/IR/OpBase.td"
include "mlir/IR/EnumAttr.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/IR/RegionKindInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def Pipe_Dialect : Dialect {
  let name = "pipe";
  let cppNamespace = "::seq1f1b::pipe";
  let summary = "Pipeline stages, sequence chunks and per-rank schedules";
  let description = [{
    The pipeline plan of a model: `pipe.stage` regions cut the llm graph into
    contiguous stages, `pipe.chunk_plan` says where each micro-batch's sequence
    is cut, and `pipe.schedule` holds one `pipe.program` per rank: the order of
    forward / backward units keyed by (stage, micro-batch, chunk), the sends and
    receives between ranks, and the optimizer step.
  }];
}

class Pipe_Op<string mnemonic, list<Trait> traits = []>
    : Op<Pipe_Dialect, mnemonic, traits>;

//===----------------------------------------------------------------------===//
// Stages
//===----------------------------------------------------------------------===//

def Pipe_StageOp : Pipe_Op<"stage", [IsolatedFromAbove,
    DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "a contiguous pipeline stage of the model";
  let description = [{
    A region of llm ops with explicit inputs (block arguments) and outputs
    (`pipe.yield`), isolated from above so it can be compiled per rank. Stage
    `index` runs on rank `index % stages`. `params` lists the parameters its
    ops read; those also read by another stage (tied embeddings) are listed in
    `shared`, and their gradients are summed across the stages.

    Example:
    ```mlir
    %h = pipe.stage 0 (%ids) params [@wte] shared [@wte] : (tensor<1x8xi32>) -> tensor<1x8x16xf32> {
    ^bb0(%i: tensor<1x8xi32>):
      %w = llm.param_ref @wte : tensor<64x16xf32>
      %x = llm.embedding %i, %w : tensor<1x8xi32>, tensor<64x16xf32> -> tensor<1x8x16xf32>
      pipe.yield %x : tensor<1x8x16xf32>
    }
    ```
  }];
  let arguments = (ins Variadic<AnyType>:$inputs, I64Attr:$index,
                       SymbolRefArrayAttr:$params,
                       OptionalAttr<SymbolRefArrayAttr>:$shared);
  let results = (outs Variadic<AnyType>:$outputs);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    $index `(` $inputs `)` `params` $params (`shared` $shared^)? attr-dict
    `:` functional-type($inputs, $outputs) $body
  }];
  let hasVerifier = 1;
}

def Pipe_YieldOp : Pipe_Op<"yield", [Pure, Terminator, HasParent<"StageOp">]> {
  let summary = "the outputs of a stage";
  let description = [{
    Example:
    ```mlir
    pipe.yield %h : tensor<1x8x16xf32>
    ```
  }];
  let arguments = (ins Variadic<AnyType>:$values);
  let assemblyFormat = "($values^ `:` type($values))? attr-dict";
}

//===----------------------------------------------------------------------===//
// Sequence chunks
//===----------------------------------------------------------------------===//

def Pipe_ChunkEven : I32EnumAttrCase<"even", 0>;
def Pipe_ChunkFlops : I32EnumAttrCase<"flops", 1>;
def Pipe_ChunkProfile : I32EnumAttrCase<"profile", 2>;
def Pipe_ChunkPolicy : I32EnumAttr<"ChunkPolicy",
    "how the chunk bounds were chosen",
    [Pipe_ChunkEven, Pipe_ChunkFlops, Pipe_ChunkProfile]> {
  let cppNamespace = "::seq1f1b::pipe";
}

def Pipe_ChunkPlanOp : Pipe_Op<"chunk_plan"> {
  let summary = "where every micro-batch's sequence is cut into chunks";
  let description = [{
    Chunk i covers tokens [bounds[i], bounds[i+1]); bounds start at 0, rise
    strictly and end at the sequence length. `policy` records how they were
    chosen: even lengths, equal FLOPs, or equal measured (profiled) time.

    Example:
    ```mlir
    pipe.chunk_plan bounds [0, 11024, 19440, 26528, 32768] policy flops
    ```
  }];
  let arguments = (ins DenseI64ArrayAttr:$bounds, Pipe_ChunkPolicy:$policy);
  let assemblyFormat = "`bounds` $bounds `policy` $policy attr-dict";
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    int64_t getNumChunks() { return getBounds().size() - 1; }
    int64_t getSeqLen() { return getBounds().back(); }
  }];
}

//===----------------------------------------------------------------------===//
// Schedules
//===----------------------------------------------------------------------===//

def Pipe_ScheduleOp : Pipe_Op<"schedule", [NoTerminator, SingleBlock,
    NoRegionArguments]> {
  let summary = "the programs of all ranks for one training step";
  let description = [{
    `stages` ranks (P) each hold `virtual` stages (V > 1 for interleaved
    schedules): stage s runs on rank s % P. A step processes `microbatches`
    micro-batches (M) cut into `chunks` sequence chunks (N). The region holds
    exactly one `pipe.program` per rank. `kind` names the schedule that
    generated it (gpipe, 1f1b, interleaved-1f1b, seq1f1b, seq1f1b-interleaved,
    zb-h1, seq1f1b-zb, or custom for imported ones).

    Example:
    ```mlir
    pipe.schedule "1f1b" stages 2 virtual 1 microbatches 1 chunks 1 {
      pipe.program rank 0 {
        pipe.forward stage 0 mb 0 chunk 0
        pipe.send_f stage 0 mb 0 chunk 0 peer 1
        pipe.recv_b stage 0 mb 0 chunk 0 peer 1
        pipe.backward stage 0 mb 0 chunk 0
        pipe.optimizer_step
      }
      pipe.program rank 1 {
        pipe.recv_f stage 1 mb 0 chunk 0 peer 0
        pipe.forward stage 1 mb 0 chunk 0
        pipe.backward stage 1 mb 0 chunk 0
        pipe.send_b stage 1 mb 0 chunk 0 peer 0
        pipe.optimizer_step
      }
    }
    ```
  }];
  let arguments = (ins StrAttr:$kind, I64Attr:$stages, I64Attr:$virtual_stages,
                       I64Attr:$microbatches, I64Attr:$chunks);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    $kind `stages` $stages `virtual` $virtual_stages `microbatches`
    $microbatches `chunks` $chunks attr-dict-with-keyword $body
  }];
  let hasRegionVerifier = 1;
}

def Pipe_ProgramOp : Pipe_Op<"program", [NoTerminator, SingleBlock,
    NoRegionArguments, HasParent<"ScheduleOp">]> {
  let summary = "the ordered actions of one rank";
  let description = [{
    Runs top to bottom on rank `rank`. See `pipe.schedule` for an example.
  }];
  let arguments = (ins I64Attr:$rank);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = "`rank` $rank attr-dict-with-keyword $body";
  let hasRegionVerifier = 1;
}

class Pipe_UnitOp<string mnemonic, string summaryText>
    : Pipe_Op<mnemonic, [HasParent<"ProgramOp">]> {
  let summary = summaryText;
  let description = [{
    A unit of work keyed by (stage, micro-batch, chunk). The stage must live on
    the enclosing program's rank, and every index must be in the range the
    enclosing schedule declares.

    Example:
    ```mlir
    pipe.}] # mnemonic # [{ stage 0 mb 1 chunk 3
    ```
  }];
  let arguments = (ins I64Attr:$stage, I64Attr:$microbatch, I64Attr:$chunk);
  let assemblyFormat = "`stage` $stage `mb` $microbatch `chunk` $chunk attr-dict";
  let hasVerifier = 1;
}

def Pipe_ForwardOp : Pipe_UnitOp<"forward", "forward of one chunk on one stage">;
def Pipe_BackwardOp : Pipe_UnitOp<"backward",
    "backward (input and weight gradients) of one chunk on one stage">;
def Pipe_BackwardInputOp : Pipe_UnitOp<"backward_input",
    "input-gradient half of a backward (zero-bubble I)">;
def Pipe_BackwardWeightOp : Pipe_UnitOp<"backward_weight",
    "weight-gradient half of a backward (zero-bubble W)">;

class Pipe_CommOp<string mnemonic, string summaryText>
    : Pipe_Op<mnemonic, [HasParent<"ProgramOp">]> {
  let summary = summaryText;
  let description = [{
    Moves the activation (`_f`) or gradient (`_b`) of one (stage, micro-batch,
    chunk) between the enclosing rank and `peer`. `stage` is the stage whose
    unit produces (send) or consumes (recv) the tensor on this rank, as in
    PyTorch's schedule text format.

    Example:
    ```mlir
    pipe.}] # mnemonic # [{ stage 0 mb 1 chunk 2 peer 1
    ```
  }];
  let arguments = (ins I64Attr:$stage, I64Attr:$microbatch, I64Attr:$chunk,
                       I64Attr:$peer);
  let assemblyFormat = [{
    `stage` $stage `mb` $microbatch `chunk` $chunk `peer` $peer attr-dict
  }];
  let hasVerifier = 1;
}

def Pipe_SendFOp : Pipe_CommOp<"send_f", "send an activation to the next stage's rank">;
def Pipe_RecvFOp : Pipe_CommOp<"recv_f", "receive an activation from the previous stage's rank">;
def Pipe_SendBOp : Pipe_CommOp<"send_b", "send a gradient to the previous stage's rank">;
def Pipe_RecvBOp : Pipe_CommOp<"recv_b", "receive a gradient from the next stage's rank">;

def Pipe_OptimizerStepOp : Pipe_Op<"optimizer_step", [HasParent<"ProgramOp">]> {
  let summary = "apply the accumulated gradients (AdamW) on this rank";
  let description = [{
    Ends a training step: gradients of all micro-batches and chunks have been
    accumulated; shared parameters' gradients are summed across ranks first.

    Example:
    ```mlir
    pipe.optimizer_step
    ```
  }];
  let assemblyFormat = "attr-dict";
}

#endif // SEQ1F1B_PIPE_OPS
