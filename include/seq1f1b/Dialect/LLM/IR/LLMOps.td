//===- LLMOps.td - the llm dialect: a decoder model graph ----*- tablegen -*-===//
//
// Ops of a decoder-only language model at the granularity pipeline
// scheduling needs: big enough to cost and differentiate one at a time, small
// enough that every layer of GPT-2 and Llama is a short chain of them.
//
// Activations are ranked tensors [batch, sequence, features]; token ids are
// [batch, sequence] i32. Weights are module-level `llm.param` symbols read with
// `llm.param_ref`.
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_LLM_OPS
#define SEQ1F1B_LLM_OPS

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "seq1f1b/Dialect/LLM/IR/LLMInterfaces.td"

def LLM_Dialect : Dialect {
  let name = "llm";
  let cppNamespace = "::seq1f1b::llm";
  let summary = "Decoder-only language model graphs";
  let description = [{
    The model graph that the seq1f1b compiler partitions into pipeline stages
    and sequence chunks. Every op implements the sequence-dependence and cost
    interfaces.
  }];
}

//===----------------------------------------------------------------------===//
// Types and attributes
//===----------------------------------------------------------------------===//

def LLM_Float : AnyTypeOf<[F32, BF16, F16]>;
def LLM_FloatTensor : RankedTensorOf<[F32, BF16, F16]>;
def LLM_TokenTensor : RankedTensorOf<[I32]>;
def LLM_ScalarF32 : 0DTensorOf<[F32]>;
def LLM_ScalarI64 : 0DTensorOf<[I64]>;

def LLM_InitNormal : I32EnumAttrCase<"normal", 0>;
def LLM_InitZeros : I32EnumAttrCase<"zeros", 1>;
def LLM_InitOnes : I32EnumAttrCase<"ones", 2>;
def LLM_ParamInit : I32EnumAttr<"ParamInit", "how a parameter is initialized",
    [LLM_InitNormal, LLM_InitZeros, LLM_InitOnes]> {
  let cppNamespace = "::seq1f1b::llm";
}

def LLM_RoleAttention : I32EnumAttrCase<"attention", 0>;
def LLM_RoleMLP : I32EnumAttrCase<"mlp", 1>;
def LLM_RoleHead : I32EnumAttrCase<"head", 2>;
def LLM_LinearRole : I32EnumAttr<"LinearRole",
    "where a linear layer sits in the model (for cost reports)",
    [LLM_RoleAttention, LLM_RoleMLP, LLM_RoleHead]> {
  let cppNamespace = "::seq1f1b::llm";
}

// Every model op is costed and says how it depends on the token axis;
// ops that are not token-local pass their own `sequenceDependence` trait.
class LLM_Op<string mnemonic, list<Trait> traits = [],
             Trait sequenceDependence = LLM_SequenceDependenceOpInterface,
             list<string> costMethods = ["getSavedForBackward"]>
    : Op<LLM_Dialect, mnemonic, !listconcat(traits, [sequenceDependence,
        DeclareOpInterfaceMethods<LLM_CostOpInterface, costMethods>])>;

def LLM_NotTokenLocal : DeclareOpInterfaceMethods<
    LLM_SequenceDependenceOpInterface, ["getSequenceDependence"]>;

//===----------------------------------------------------------------------===//
// Parameters
//===----------------------------------------------------------------------===//

def LLM_ParamOp : Op<LLM_Dialect, "param", [Symbol]> {
  let summary = "a trainable parameter of the model";
  let description = [{
    A module-level weight tensor with a static shape, an element type and an
    initializer (`normal` with standard deviation `std`, `zeros` or `ones`).
    Stages own the params their ops read; a param read by two stages (tied
    embeddings) is shared and its gradients are summed.

    Example:
    ```mlir
    llm.param @wte : tensor<50257x768xf32> init normal std 2.000000e-02
    llm.param @ln_f.bias : tensor<768xf32> init zeros
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name,
                       TypeAttrOf<LLM_FloatTensor>:$param_type,
                       LLM_ParamInit:$init,
                       OptionalAttr<F64Attr>:$std);
  let assemblyFormat = [{
    $sym_name `:` $param_type `init` $init (`std` $std^)? attr-dict
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// Number of scalars in the parameter.
    int64_t getNumElements();
  }];
}

def LLM_ParamRefOp : Op<LLM_Dialect, "param_ref", [Pure,
    DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "reads a parameter as an SSA value";
  let description = [{
    Example:
    ```mlir
    %wte = llm.param_ref @wte : tensor<50257x768xf32>
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$param);
  let results = (outs LLM_FloatTensor:$result);
  let assemblyFormat = "$param attr-dict `:` type($result)";
}

//===----------------------------------------------------------------------===//
// Model ops
//===----------------------------------------------------------------------===//

def LLM_EmbeddingOp : LLM_Op<"embedding", [Pure]> {
  let summary = "token embedding lookup";
  let description = [{
    `result[b, s, :] = table[ids[b, s], :]`, times `scale` when given
    (Gemma's sqrt(hidden)).

    Example:
    ```mlir
    %x = llm.embedding %ids, %wte : tensor<1x1024xi32>, tensor<50257x768xf32> -> tensor<1x1024x768xf32>
    %g = llm.embedding %ids, %emb scale 4.525000e+01 : tensor<1x8192xi32>, tensor<256000x2048xbf16> -> tensor<1x8192x2048xbf16>
    ```
  }];
  let arguments = (ins LLM_TokenTensor:$ids, LLM_FloatTensor:$table,
                       OptionalAttr<F64Attr>:$scale);
  let results = (outs LLM_FloatTensor:$result);
  let assemblyFormat = [{
    $ids `,` $table (`scale` $scale^)? attr-dict `:` type($ids) `,` type($table)
    `->` type($result)
  }];
  let hasVerifier = 1;
}

def LLM_PositionEmbeddingOp : LLM_Op<"position_embedding", [Pure]> {
  let summary = "learned absolute position embedding";
  let description = [{
    Rows of a learned position table at the absolute positions of the tokens
    (for a sequence chunk [a, b): rows a..b-1), broadcast over the batch.

    Example:
    ```mlir
    %p = llm.position_embedding %wpe : tensor<1024x768xf32> -> tensor<1x1024x768xf32>
    ```
  }];
  let arguments = (ins LLM_FloatTensor:$table);
  let results = (outs LLM_FloatTensor:$result);
  let assemblyFormat = "$table attr-dict `:` type($table) `->` type($result)";
  let hasVerifier = 1;
}

def LLM_LayerNormOp : LLM_Op<"layer_norm", [Pure,
    AllTypesMatch<["input", "result"]>, AllTypesMatch<["weight", "bias"]>]> {
  let summary = "layer normalization over the feature axis";
  let description = [{
    Example:
    ```mlir
    %y = llm.layer_norm %x, %g, %b eps 1.000000e-05 : tensor<1x1024x768xf32>, tensor<768xf32>
    ```
  }];
  let arguments = (ins LLM_FloatTensor:$input, LLM_FloatTensor:$weight,
                       LLM_FloatTensor:$bias, F64Attr:$eps);
  let results = (outs LLM_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight `,` $bias `eps` $eps attr-dict `:` type($input) `,` type($weight)
  }];
  let hasVerifier = 1;
}

def LLM_RMSNormOp : LLM_Op<"rms_norm", [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "root-mean-square normalization over the feature axis";
  let description = [{
    With `heads` h, each of the h heads the feature axis holds is normalized
    on its own, all with the same weight of one head's size (Qwen3's and
    Gemma 3's norms of queries and keys).

    Example:
    ```mlir
    %y = llm.rms_norm %x, %g eps 1.000000e-05 : tensor<1x4096x4096xbf16>, tensor<4096xbf16>
    %qn = llm.rms_norm %q, %gq eps 1.000000e-06 heads 32 : tensor<1x4096x4096xbf16>, tensor<128xbf16>
    ```
  }];
  let arguments = (ins LLM_FloatTensor:$input, LLM_FloatTensor:$weight,
                       F64Attr:$eps, OptionalAttr<I64Attr>:$num_heads);
  let results = (outs LLM_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight `eps` $eps (`heads` $num_heads^)? attr-dict `:`
    type($input) `,` type($weight)
  }];
  let hasVerifier = 1;
}

def LLM_LinearOp : LLM_Op<"linear", [Pure]> {
  let summary = "affine map of the feature axis: x W^T (+ b)";
  let description = [{
    `weight` is [out, in] as in PyTorch, so a tied LM head reads the token
    embedding table directly. The optional `role` says where the layer sits
    (attention projection, MLP or LM head) for cost reports.

    Example:
    ```mlir
    %q = llm.linear %x, %wq, %bq role attention : tensor<1x1024x768xf32>, tensor<768x768xf32>, tensor<768xf32> -> tensor<1x1024x768xf32>
    ```
  }];
  let arguments = (ins LLM_FloatTensor:$input, LLM_FloatTensor:$weight,
                       Optional<LLM_FloatTensor>:$bias,
                       OptionalAttr<LLM_LinearRole>:$role);
  let results = (outs LLM_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight (`,` $bias^)? (`role` $role^)? attr-dict `:` type($input)
    `,` type($weight) (`,` type($bias)^)? `->` type($result)
  }];
  let hasVerifier = 1;
}

def LLM_RopeOp : LLM_Op<"rope", [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "rotary position embedding of query or key heads";
  let description = [{
    Rotates each head (rotate-half convention) by angles that depend on the
    token's absolute position and `theta`. The feature axis holds `num_heads`
    heads of an even head dimension. With `rotary` r (GPT-NeoX's partial
    rotary), only each head's first r dimensions turn, as a head of r would,
    and the rest pass through. Frequency i turns dimensions i and i + r/2
    (rotate-half), or with `interleaved` (GLM) dimensions 2i and 2i + 1. With `scaling` f (Hugging Face's rope_scaling)
    the frequencies are divided by f ("linear"); with `llama3(low, high,
    context)` too, Llama 3.1's rule: wavelengths above context / low are
    divided by f, those below context / high are kept, those between
    blended. With `yarn(beta_fast, beta_slow, context)` instead, YaRN's rule:
    frequencies turning fewer than beta_slow times over the original context
    are divided by f, those turning more than beta_fast times are kept, and a
    linear ramp over the frequency index blends those between. With
    `longrope([f0, f1, ...])` (Phi-3's LongRoPE), frequency i is divided by
    fi, one factor per frequency. `attention_factor` a (YaRN's and
    LongRoPE's) multiplies the rotated dimensions.

    Example:
    ```mlir
    %qr = llm.rope %q heads 32 theta 5.000000e+05 scaling 8.000000e+00 llama3(1.000000e+00, 4.000000e+00, 8192) : tensor<1x8192x4096xbf16>
    %kr = llm.rope %k heads 32 theta 1.000000e+04 rotary 32 : tensor<1x2048x4096xf32>
    %kl = llm.rope %k heads 2 theta 1.000000e+04 longrope([1.000000e+00, 1.500000e+00, 4.000000e+00]) attention_factor 1.250000e+00 : tensor<1x4096x12xf32>
    %qy = llm.rope %q heads 28 theta 1.000000e+06 scaling 4.000000e+00 yarn(3.200000e+01, 1.000000e+00, 32768) attention_factor 1.138629e+00 : tensor<1x131072x3584xbf16>
    ```
  }];
  let arguments = (ins LLM_FloatTensor:$input, I64Attr:$num_heads,
                       F64Attr:$theta, OptionalAttr<I64Attr>:$rotary_dim,
                       UnitAttr:$interleaved,
                       OptionalAttr<F64Attr>:$scaling_factor,
                       OptionalAttr<F64Attr>:$low_freq_factor,
                       OptionalAttr<F64Attr>:$high_freq_factor,
                       OptionalAttr<F64Attr>:$beta_fast,
                       OptionalAttr<F64Attr>:$beta_slow,
                       OptionalAttr<I64Attr>:$original_context,
                       OptionalAttr<DenseF64ArrayAttr>:$frequency_factors,
                       OptionalAttr<F64Attr>:$attention_factor);
  let results = (outs LLM_FloatTensor:$result);
  let assemblyFormat = [{
    $input `heads` $num_heads `theta` $theta (`rotary` $rotary_dim^)?
    (`interleaved` $interleaved^)? (`scaling` $scaling_factor^)?
    (custom<RopeBands>($low_freq_factor, $high_freq_factor, $beta_fast,
                       $beta_slow, $original_context, $frequency_factors)^)?
    (`attention_factor` $attention_factor^)? attr-dict `:` type($input)
  }];
  let hasVerifier = 1;
}

def LLM_AttentionOp : LLM_Op<"attention", [Pure,
    AllTypesMatch<["query", "result"]>, AllTypesMatch<["key", "value"]>],
    LLM_NotTokenLocal> {
  let summary = "causal scaled-dot-product attention with grouped-query heads";
  let description = [{
    Causal softmax(Q K^T / sqrt(head_dim)) V. `query` holds `num_heads` heads,
    `key` and `value` hold `num_kv_heads` heads of the same head dimension;
    every group of num_heads / num_kv_heads query heads shares one kv head.
    Token t attends to tokens 0..t: when the sequence is cut into chunks, a
    chunk attends to the keys and values of all earlier chunks (the KV prefix).
    With a sliding `window` w, token t attends only to tokens t-w+1..t
    (Mistral's and Gemma 2's local layers). Gemma 2 scales scores by
    `scale` instead of 1/sqrt(head_dim) and caps them at `softcap` c:
    c tanh(s / c) before the softmax.

    Example:
    ```mlir
    %o = llm.attention %q, %k, %v heads 32 kv_heads 8 : tensor<1x8192x4096xbf16>, tensor<1x8192x1024xbf16>
    %l = llm.attention %q, %k, %v heads 32 kv_heads 8 window 4096 : tensor<1x8192x4096xbf16>, tensor<1x8192x1024xbf16>
    %g = llm.attention %q, %k, %v heads 8 kv_heads 4 window 4096 scale 6.250000e-02 softcap 5.000000e+01 : tensor<1x8192x2048xbf16>, tensor<1x8192x1024xbf16>
    ```
  }];
  let arguments = (ins LLM_FloatTensor:$query, LLM_FloatTensor:$key,
                       LLM_FloatTensor:$value, I64Attr:$num_heads,
                       I64Attr:$num_kv_heads, OptionalAttr<I64Attr>:$window,
                       OptionalAttr<F64Attr>:$scale,
                       OptionalAttr<F64Attr>:$softcap);
  let results = (outs LLM_FloatTensor:$result);
  let assemblyFormat = [{
    $query `,` $key `,` $value `heads` $num_heads `kv_heads` $num_kv_heads
    (`window` $window^)? (`scale` $scale^)? (`softcap` $softcap^)? attr-dict
    `:` type($query) `,` type($key)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    int64_t getHeadDim();
  }];
}

class LLM_UnaryOp<string mnemonic, string summaryText, string exampleText>
    : LLM_Op<mnemonic, [Pure, SameOperandsAndResultType]> {
  let summary = summaryText;
  let description = "Example:\n```mlir\n" # exampleText # "\n```";
  let arguments = (ins LLM_FloatTensor:$input);
  let results = (outs LLM_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let hasVerifier = 1;
}

def LLM_GeluOp : LLM_Op<"gelu", [Pure, SameOperandsAndResultType]> {
  let summary = "GELU: tanh approximation (GPT-2), or `exact` through erf";
  let description = [{
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) as GPT-2 defines it, or
    with `exact` x Phi(x), Phi the normal CDF (GPT-NeoX's "gelu").

    Example:
    ```mlir
    %y = llm.gelu %x : tensor<1x1024x3072xf32>
    %z = llm.gelu %x exact : tensor<1x2048x8192xf32>
    ```
  }];
  let arguments = (ins LLM_FloatTensor:$input, UnitAttr:$exact);
  let results = (outs LLM_FloatTensor:$result);
  let assemblyFormat = "$input (`exact` $exact^)? attr-dict `:` type($input)";
  let hasVerifier = 1;
}
def LLM_SiluOp : LLM_UnaryOp<"silu", "SiLU: x * sigmoid(x)",
    "%y = llm.silu %x : tensor<1x4096x11008xbf16>">;

class LLM_BinaryOp<string mnemonic, string summaryText, string exampleText>
    : LLM_Op<mnemonic, [Pure, SameOperandsAndResultType]> {
  let summary = summaryText;
  let description = "Example:\n```mlir\n" # exampleText # "\n```";
  let arguments = (ins LLM_FloatTensor:$lhs, LLM_FloatTensor:$rhs);
  let results = (outs LLM_FloatTensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def LLM_SwigluOp : LLM_BinaryOp<"swiglu", "SwiGLU gate: silu(lhs) * rhs",
    "%h = llm.swiglu %gate, %up : tensor<1x4096x11008xbf16>">;
def LLM_GegluOp : LLM_BinaryOp<"geglu",
    "GeGLU gate: gelu(lhs) * rhs, GELU in its tanh form (Gemma)",
    "%h = llm.geglu %gate, %up : tensor<1x8192x16384xbf16>">;
def LLM_AddOp : LLM_BinaryOp<"add", "element-wise sum (the residual stream)",
    "%h = llm.add %x, %attn : tensor<1x1024x768xf32>">;

def LLM_MoeOp : LLM_Op<"moe", [Pure], LLM_SequenceDependenceOpInterface,
    ["getSavedForBackward", "getInternalSavedBytes"]> {
  let summary = "a mixture of SwiGLU experts, each token routed to top_k";
  let description = [{
    Mixtral's sparse MLP. The router scores E experts per token,
    `p = softmax(x router^T)`; the token goes to its `top_k` most probable
    experts with weights p (renormalized to sum to 1 with `normalized`,
    as Mixtral and Qwen3-MoE do; OLMoE does not). Expert e computes
    `down_e (silu(gate_e x) * up_e x)`; the result is the weighted sum.

    The experts' weights are stacked by rows so that every parameter stays
    a matrix: `gate` and `up` are [E*F, D] (rows [e*F, (e+1)*F) are expert
    e's [F, D] Linear weight) and `down` is [E*D, F].

    Example:
    ```mlir
    %y = llm.moe %x, %router, %gate, %up, %down top_k 2 normalized : tensor<1x4096x4096xbf16>, tensor<8x4096xbf16>, tensor<114688x4096xbf16>, tensor<114688x4096xbf16>, tensor<32768x14336xbf16> -> tensor<1x4096x4096xbf16>
    ```
  }];
  let arguments = (ins LLM_FloatTensor:$input, LLM_FloatTensor:$router,
                       LLM_FloatTensor:$gate, LLM_FloatTensor:$up,
                       LLM_FloatTensor:$down, I64Attr:$top_k,
                       UnitAttr:$normalized);
  let results = (outs LLM_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $router `,` $gate `,` $up `,` $down `top_k` $top_k
    (`normalized` $normalized^)? attr-dict `:` type($input) `,` type($router)
    `,` type($gate) `,` type($up) `,` type($down) `->` type($result)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    int64_t getNumExperts();
    /// Each expert's hidden width F.
    int64_t getExpertWidth();
    /// Forward FLOPs of the experts' GEMMs (gate, up and down of each
    /// token's top_k) on a chunk of `chunkLen` tokens; the router's are not
    /// in it.
    double getExpertFlops(int64_t chunkLen);
  }];
}

def LLM_SoftcapOp : LLM_Op<"softcap", [Pure, SameOperandsAndResultType]> {
  let summary = "soft-capping: cap tanh(x / cap) (Gemma 2's final logits)";
  let description = [{
    Example:
    ```mlir
    %c = llm.softcap %logits cap 3.000000e+01 : tensor<1x8192x256000xbf16>
    ```
  }];
  let arguments = (ins LLM_FloatTensor:$input, F64Attr:$cap);
  let results = (outs LLM_FloatTensor:$result);
  let assemblyFormat = "$input `cap` $cap attr-dict `:` type($input)";
  let hasVerifier = 1;
}

def LLM_ScaleOp : LLM_Op<"scale", [Pure, SameOperandsAndResultType]> {
  let summary = "multiplication by a constant (Granite's residual and logit multipliers)";
  let description = [{
    Example:
    ```mlir
    %s = llm.scale %o by 2.200000e-01 : tensor<1x8192x4096xbf16>
    ```
  }];
  let arguments = (ins LLM_FloatTensor:$input, F64Attr:$factor);
  let results = (outs LLM_FloatTensor:$result);
  let assemblyFormat = "$input `by` $factor attr-dict `:` type($input)";
  let hasVerifier = 1;
}

def LLM_SigmoidGateOp : LLM_Op<"sigmoid_gate", [Pure,
    AllTypesMatch<["value", "result"]>]> {
  let summary = "a value scaled per token by a sigmoid gate: sigmoid(x w^T) * v";
  let description = [{
    Qwen2-MoE's shared expert: its output `value` [B, S, D] times, for each
    token, sigmoid of the gate `x` [B, S, H] projected by `weight` [1, H].

    Example:
    ```mlir
    %g = llm.sigmoid_gate %shared, %h, %w : tensor<1x4096x2048xbf16>, tensor<1x4096x2048xbf16>, tensor<1x2048xbf16>
    ```
  }];
  let arguments = (ins LLM_FloatTensor:$value, LLM_FloatTensor:$gate,
                       LLM_FloatTensor:$weight);
  let results = (outs LLM_FloatTensor:$result);
  let assemblyFormat = [{
    $value `,` $gate `,` $weight attr-dict `:` type($value) `,` type($gate)
    `,` type($weight)
  }];
  let hasVerifier = 1;
}

def LLM_CrossEntropyOp : LLM_Op<"cross_entropy", [Pure], LLM_NotTokenLocal> {
  let summary = "summed token cross-entropy and the number of counted tokens";
  let description = [{
    Softmax cross-entropy of `logits` [batch, seq, vocab] against `targets`
    [batch, seq]. Returns the sum of token losses and the number of tokens
    counted (targets < 0 are ignored), so that summing chunks and micro-batches
    and dividing once gives the full-batch mean.

    Example:
    ```mlir
    %loss, %n = llm.cross_entropy %logits, %targets : tensor<1x1024x50257xf32>, tensor<1x1024xi32> -> tensor<f32>, tensor<i64>
    ```
  }];
  let arguments = (ins LLM_FloatTensor:$logits, LLM_TokenTensor:$targets);
  let results = (outs LLM_ScalarF32:$loss, LLM_ScalarI64:$count);
  let assemblyFormat = [{
    $logits `,` $targets attr-dict `:` type($logits) `,` type($targets) `->`
    type($loss) `,` type($count)
  }];
  let hasVerifier = 1;
}

#endif // SEQ1F1B_LLM_OPS
