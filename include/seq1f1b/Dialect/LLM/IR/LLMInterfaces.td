//===- LLMInterfaces.td - what passes ask of a model op ------*- tablegen -*-===//
//
// Pipeline passes never switch on op names: they ask every op how it depends
// on the token axis (may the sequence be cut into chunks?) and what a chunk of
// it costs (how to balance stages and chunks, how much memory it keeps).
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_LLM_INTERFACES
#define SEQ1F1B_LLM_INTERFACES

include "mlir/IR/OpBase.td"

def LLM_SequenceDependenceOpInterface
    : OpInterface<"SequenceDependenceOpInterface"> {
  let cppNamespace = "::seq1f1b::llm";
  let description = [{
    How the results of an op depend on the token (sequence) axis. Seq1F1B may
    cut a micro-batch into sequence chunks only if every op of a stage is
    token-local (token t depends on token t only), causal-prefix (token t
    depends on tokens 0..t, e.g. causal attention, which then keeps a KV prefix
    cache) or a sum-reduction over tokens (the loss).
  }];
  let methods = [
    InterfaceMethod<"How results depend on the token axis.",
      "::seq1f1b::llm::SequenceDependence", "getSequenceDependence", (ins), [{}],
      [{ return ::seq1f1b::llm::SequenceDependence::TokenLocal; }]>,
  ];
}

def LLM_CostOpInterface : OpInterface<"CostOpInterface"> {
  let cppNamespace = "::seq1f1b::llm";
  let description = [{
    The cost of running the op on a sequence chunk of `chunkLen` tokens that
    ends at absolute position `chunkEnd` (so it covers [chunkEnd - chunkLen,
    chunkEnd)), for the whole micro-batch (the batch size comes from the op's
    types). FLOPs count matrix products (and the attention softmax, as the
    Seq1F1B paper does); element-wise ops are memory bound and cost bytes.
  }];
  let methods = [
    InterfaceMethod<"Cost of a chunk of `chunkLen` tokens ending at `chunkEnd`.",
      "::seq1f1b::llm::OpCost", "getChunkCost",
      (ins "int64_t":$chunkLen, "int64_t":$chunkEnd)>,
    InterfaceMethod<[{Values (operands or results) this op keeps alive from
      its forward to its backward. Shared values are counted once by callers.}],
      "::llvm::SmallVector<::mlir::Value>", "getSavedForBackward", (ins), [{}],
      [{ return {}; }]>,
    InterfaceMethod<[{Bytes the op keeps from its forward to its backward
      beyond the values getSavedForBackward names (a mixture of experts'
      routing and per-expert activations), for a chunk of `chunkLen`
      tokens.}],
      "double", "getInternalSavedBytes", (ins "int64_t":$chunkLen), [{}],
      [{ return 0; }]>,
  ];
}

#endif // SEQ1F1B_LLM_INTERFACES
