// RUN: seq1f1b-opt %s -split-input-file -verify-diagnostics

// expected-error @+1 {{expects every dimension to be positive}}
llm.param @w : tensor<0x4xf32> init zeros

// -----

// expected-error @+1 {{expects a vector or a matrix}}
llm.param @w : tensor<2x2x2xf32> init zeros

// -----

// expected-error @+1 {{with init normal needs a std}}
llm.param @w : tensor<4xf32> init normal

// -----

// expected-error @+1 {{expects std > 0, got -1}}
llm.param @w : tensor<4xf32> init normal std -1.0

// -----

// expected-error @+1 {{std is only meaningful with init normal}}
llm.param @w : tensor<4xf32> init ones std 1.0

// -----

func.func @f() -> tensor<4xf32> {
  // expected-error @+1 {{refers to @missing, which is not an llm.param}}
  %w = llm.param_ref @missing : tensor<4xf32>
  return %w : tensor<4xf32>
}

// -----

llm.param @w : tensor<4xf32> init zeros
func.func @f() -> tensor<8xf32> {
  // expected-error @+1 {{result type 'tensor<8xf32>' does not match the type of @w: 'tensor<4xf32>'}}
  %w = llm.param_ref @w : tensor<8xf32>
  return %w : tensor<8xf32>
}

// -----

func.func @f(%ids: tensor<1x8xi32>, %t: tensor<64x16xf32>) -> tensor<1x8x32xf32> {
  // expected-error @+1 {{expects result shape [1, 8, 16], got 'tensor<1x8x32xf32>'}}
  %x = llm.embedding %ids, %t : tensor<1x8xi32>, tensor<64x16xf32> -> tensor<1x8x32xf32>
  return %x : tensor<1x8x32xf32>
}

// -----

func.func @f(%ids: tensor<8xi32>, %t: tensor<64x16xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expects ids [batch, seq] of rank 2, got 'tensor<8xi32>'}}
  %x = llm.embedding %ids, %t : tensor<8xi32>, tensor<64x16xf32> -> tensor<1x8x16xf32>
  return %x : tensor<1x8x16xf32>
}

// -----

func.func @f(%ids: tensor<1x8xi32>, %t: tensor<64x16xbf16>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expects table and result to have the same element type, got 'bf16' and 'f32'}}
  %x = llm.embedding %ids, %t : tensor<1x8xi32>, tensor<64x16xbf16> -> tensor<1x8x16xf32>
  return %x : tensor<1x8x16xf32>
}

// -----

func.func @f(%ids: tensor<1x8xf32>, %t: tensor<64x16xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{operand #0 must be ranked tensor of 32-bit signless integer values}}
  %x = llm.embedding %ids, %t : tensor<1x8xf32>, tensor<64x16xf32> -> tensor<1x8x16xf32>
  return %x : tensor<1x8x16xf32>
}

// -----

func.func @f(%t: tensor<4x16xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{sequence length 8 exceeds the 4 positions of the table}}
  %p = llm.position_embedding %t : tensor<4x16xf32> -> tensor<1x8x16xf32>
  return %p : tensor<1x8x16xf32>
}

// -----

func.func @f(%t: tensor<8x16xf32>) -> tensor<1x8x32xf32> {
  // expected-error @+1 {{expects result hidden size 16 (the table's), got 32}}
  %p = llm.position_embedding %t : tensor<8x16xf32> -> tensor<1x8x32xf32>
  return %p : tensor<1x8x32xf32>
}

// -----

func.func @f(%x: tensor<1x8x16xf32>, %g: tensor<32xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expects weight of size 16 (the feature size), got 'tensor<32xf32>'}}
  %y = llm.layer_norm %x, %g, %g eps 1.0e-5 : tensor<1x8x16xf32>, tensor<32xf32>
  return %y : tensor<1x8x16xf32>
}

// -----

func.func @f(%x: tensor<1x8x16xf32>, %g: tensor<4xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expects heads that divide the 16 features, got 3}}
  %y = llm.rms_norm %x, %g eps 1.0e-5 heads 3 : tensor<1x8x16xf32>, tensor<4xf32>
  return %y : tensor<1x8x16xf32>
}

// -----

func.func @f(%x: tensor<1x8x16xf32>, %g: tensor<16xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expects weight of size 4 (one head), got 'tensor<16xf32>'}}
  %y = llm.rms_norm %x, %g eps 1.0e-5 heads 4 : tensor<1x8x16xf32>, tensor<16xf32>
  return %y : tensor<1x8x16xf32>
}

// -----

func.func @f(%x: tensor<1x8x16xf32>, %g: tensor<16xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expects eps > 0, got 0}}
  %y = llm.rms_norm %x, %g eps 0.0 : tensor<1x8x16xf32>, tensor<16xf32>
  return %y : tensor<1x8x16xf32>
}

// -----

func.func @f(%x: tensor<8x16xf32>, %g: tensor<16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{expects input of rank 3, got 'tensor<8x16xf32>'}}
  %y = llm.rms_norm %x, %g eps 1.0e-5 : tensor<8x16xf32>, tensor<16xf32>
  return %y : tensor<8x16xf32>
}

// -----

func.func @f(%x: tensor<1x?x16xf32>, %g: tensor<16xf32>) -> tensor<1x?x16xf32> {
  // expected-error @+1 {{expects input to have a static shape, got 'tensor<1x?x16xf32>'}}
  %y = llm.rms_norm %x, %g eps 1.0e-5 : tensor<1x?x16xf32>, tensor<16xf32>
  return %y : tensor<1x?x16xf32>
}

// -----

func.func @f(%x: tensor<1x8x16xf32>, %w: tensor<32x8xf32>) -> tensor<1x8x32xf32> {
  // expected-error @+1 {{weight 'tensor<32x8xf32>' expects 8 input features, got 16}}
  %y = llm.linear %x, %w : tensor<1x8x16xf32>, tensor<32x8xf32> -> tensor<1x8x32xf32>
  return %y : tensor<1x8x32xf32>
}

// -----

func.func @f(%x: tensor<1x8x16xf32>, %w: tensor<32x16xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expects result shape [1, 8, 32], got 'tensor<1x8x16xf32>'}}
  %y = llm.linear %x, %w : tensor<1x8x16xf32>, tensor<32x16xf32> -> tensor<1x8x16xf32>
  return %y : tensor<1x8x16xf32>
}

// -----

func.func @f(%x: tensor<1x8x16xf32>, %w: tensor<32x16xf32>, %b: tensor<16xf32>) -> tensor<1x8x32xf32> {
  // expected-error @+1 {{expects bias of size 32 (the feature size), got 'tensor<16xf32>'}}
  %y = llm.linear %x, %w, %b : tensor<1x8x16xf32>, tensor<32x16xf32>, tensor<16xf32> -> tensor<1x8x32xf32>
  return %y : tensor<1x8x32xf32>
}

// -----

func.func @f(%x: tensor<1x8x16xf32>, %w: tensor<32x16xbf16>) -> tensor<1x8x32xf32> {
  // expected-error @+1 {{expects input and weight to have the same element type, got 'f32' and 'bf16'}}
  %y = llm.linear %x, %w : tensor<1x8x16xf32>, tensor<32x16xbf16> -> tensor<1x8x32xf32>
  return %y : tensor<1x8x32xf32>
}

// -----

func.func @f(%x: tensor<1x8x16xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{3 heads do not divide the 16 features}}
  %y = llm.rope %x heads 3 theta 1.0e4 : tensor<1x8x16xf32>
  return %y : tensor<1x8x16xf32>
}

// -----

func.func @f(%x: tensor<1x8x12xf32>) -> tensor<1x8x12xf32> {
  // expected-error @+1 {{expects an even head dimension, got 3}}
  %y = llm.rope %x heads 4 theta 1.0e4 : tensor<1x8x12xf32>
  return %y : tensor<1x8x12xf32>
}

// -----

func.func @f(%x: tensor<1x8x16xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expects theta > 0, got -1}}
  %y = llm.rope %x heads 4 theta -1.0 : tensor<1x8x16xf32>
  return %y : tensor<1x8x16xf32>
}

// -----

func.func @f(%x: tensor<1x8x16xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expects heads > 0, got 0}}
  %y = llm.rope %x heads 0 theta 1.0e4 : tensor<1x8x16xf32>
  return %y : tensor<1x8x16xf32>
}

// -----

func.func @f(%x: tensor<1x8x16xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expects an even rotary dimension count in [2, 4], got 3}}
  %y = llm.rope %x heads 4 theta 1.0e4 rotary 3 : tensor<1x8x16xf32>
  return %y : tensor<1x8x16xf32>
}

// -----

func.func @f(%x: tensor<1x8x16xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expects a scaling factor > 0, got 0}}
  %y = llm.rope %x heads 4 theta 1.0e4 scaling 0.0 : tensor<1x8x16xf32>
  return %y : tensor<1x8x16xf32>
}

// -----

func.func @f(%x: tensor<1x8x16xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{llama3 scaling needs a scaling factor}}
  %y = llm.rope %x heads 4 theta 1.0e4 llama3(1.0, 4.0, 8192) : tensor<1x8x16xf32>
  return %y : tensor<1x8x16xf32>
}

// -----

func.func @f(%x: tensor<1x8x16xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expects 0 < low < high frequency factors, got 4.000000e+00 and 1.000000e+00}}
  %y = llm.rope %x heads 4 theta 1.0e4 scaling 8.0 llama3(4.0, 1.0, 8192) : tensor<1x8x16xf32>
  return %y : tensor<1x8x16xf32>
}

// -----

func.func @f(%x: tensor<1x8x16xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expects an original context > 0, got 0}}
  %y = llm.rope %x heads 4 theta 1.0e4 scaling 8.0 llama3(1.0, 4.0, 0) : tensor<1x8x16xf32>
  return %y : tensor<1x8x16xf32>
}

// -----

func.func @f(%x: tensor<1x8x16xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{yarn scaling needs a scaling factor}}
  %y = llm.rope %x heads 4 theta 1.0e4 yarn(32.0, 1.0, 4096) : tensor<1x8x16xf32>
  return %y : tensor<1x8x16xf32>
}

// -----

func.func @f(%x: tensor<1x8x16xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expects 0 < beta_slow < beta_fast, got beta_fast 1.000000e+00 and beta_slow 3.200000e+01}}
  %y = llm.rope %x heads 4 theta 1.0e4 scaling 4.0 yarn(1.0, 32.0, 4096) : tensor<1x8x16xf32>
  return %y : tensor<1x8x16xf32>
}

// -----

func.func @f(%x: tensor<1x8x16xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expects an original context > 0, got -1}}
  %y = llm.rope %x heads 4 theta 1.0e4 scaling 4.0 yarn(32.0, 1.0, -1) : tensor<1x8x16xf32>
  return %y : tensor<1x8x16xf32>
}

// -----

func.func @f(%x: tensor<1x8x16xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expects an attention factor > 0, got -1.000000e+00}}
  %y = llm.rope %x heads 4 theta 1.0e4 scaling 4.0 yarn(32.0, 1.0, 4096) attention_factor -1.0 : tensor<1x8x16xf32>
  return %y : tensor<1x8x16xf32>
}

// -----

func.func @f(%x: tensor<1x8x16xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expected '('}}
  %y = llm.rope %x heads 4 theta 1.0e4 scaling 4.0 yarn 32.0 : tensor<1x8x16xf32>
  return %y : tensor<1x8x16xf32>
}

// -----

func.func @f(%x: tensor<1x8x16xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expects one longrope factor per frequency (2), got 3}}
  %y = llm.rope %x heads 4 theta 1.0e4 longrope([1.0, 2.0, 3.0]) : tensor<1x8x16xf32>
  return %y : tensor<1x8x16xf32>
}

// -----

func.func @f(%x: tensor<1x8x16xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expects one longrope factor per frequency (1), got 2}}
  %y = llm.rope %x heads 4 theta 1.0e4 rotary 2 longrope([1.0, 2.0]) : tensor<1x8x16xf32>
  return %y : tensor<1x8x16xf32>
}

// -----

func.func @f(%x: tensor<1x8x16xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expects longrope factors > 0}}
  %y = llm.rope %x heads 4 theta 1.0e4 longrope([1.0, 0.0]) : tensor<1x8x16xf32>
  return %y : tensor<1x8x16xf32>
}

// -----

func.func @f(%x: tensor<1x8x16xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expected '['}}
  %y = llm.rope %x heads 4 theta 1.0e4 longrope(1.0, 2.0) : tensor<1x8x16xf32>
  return %y : tensor<1x8x16xf32>
}

// -----

func.func @f(%x: tensor<1x8x16xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expects an even rotary dimension count in [2, 4], got 6}}
  %y = llm.rope %x heads 4 theta 1.0e4 rotary 6 : tensor<1x8x16xf32>
  return %y : tensor<1x8x16xf32>
}

// -----

func.func @f(%q: tensor<1x8x16xf32>, %k: tensor<1x8x16xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{3 heads do not divide the query's 16 features}}
  %o = llm.attention %q, %k, %k heads 3 kv_heads 1 : tensor<1x8x16xf32>, tensor<1x8x16xf32>
  return %o : tensor<1x8x16xf32>
}

// -----

func.func @f(%q: tensor<1x8x16xf32>, %k: tensor<1x8x12xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{3 kv heads do not divide the 4 query heads}}
  %o = llm.attention %q, %k, %k heads 4 kv_heads 3 : tensor<1x8x16xf32>, tensor<1x8x12xf32>
  return %o : tensor<1x8x16xf32>
}

// -----

func.func @f(%q: tensor<1x8x16xf32>, %k: tensor<1x8x16xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expects key features 8 (2 kv heads x head dim 4), got 16}}
  %o = llm.attention %q, %k, %k heads 4 kv_heads 2 : tensor<1x8x16xf32>, tensor<1x8x16xf32>
  return %o : tensor<1x8x16xf32>
}

// -----

func.func @f(%q: tensor<1x8x16xf32>, %k: tensor<1x4x16xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expects query and key with the same batch and sequence sizes}}
  %o = llm.attention %q, %k, %k heads 4 kv_heads 4 : tensor<1x8x16xf32>, tensor<1x4x16xf32>
  return %o : tensor<1x8x16xf32>
}

// -----

func.func @f(%q: tensor<1x8x16xf32>, %k: tensor<1x8x16xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expects heads > 0 and kv_heads > 0, got 4 and -2}}
  %o = llm.attention %q, %k, %k heads 4 kv_heads -2 : tensor<1x8x16xf32>, tensor<1x8x16xf32>
  return %o : tensor<1x8x16xf32>
}

// -----

func.func @f(%q: tensor<1x8x16xf32>, %k: tensor<1x8x16xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expects a window of at least one token, got 0}}
  %o = llm.attention %q, %k, %k heads 4 kv_heads 4 window 0 : tensor<1x8x16xf32>, tensor<1x8x16xf32>
  return %o : tensor<1x8x16xf32>
}

// -----

func.func @f(%x: tensor<8x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{expects input of rank 3}}
  %y = llm.gelu %x : tensor<8x16xf32>
  return %y : tensor<8x16xf32>
}

// -----

func.func @f(%x: tensor<1x8x16xi32>) -> tensor<1x8x16xi32> {
  // expected-error @+1 {{operand #0 must be ranked tensor of 32-bit float or bfloat16 type or 16-bit float values}}
  %y = llm.silu %x : tensor<1x8x16xi32>
  return %y : tensor<1x8x16xi32>
}

// -----

func.func @f(%a: tensor<1x8x16xf32>, %b: tensor<1x8x32xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{use of value '%b' expects different type than prior uses}}
  %y = llm.add %a, %b : tensor<1x8x16xf32>
  // expected-note @-3 {{prior use here}}
  return %y : tensor<1x8x16xf32>
}

// -----

func.func @f(%l: tensor<1x8x64xf32>, %t: tensor<1x4xi32>) -> tensor<f32> {
  // expected-error @+1 {{expects targets of shape [1, 8], got 'tensor<1x4xi32>'}}
  %loss, %n = llm.cross_entropy %l, %t : tensor<1x8x64xf32>, tensor<1x4xi32> -> tensor<f32>, tensor<i64>
  return %loss : tensor<f32>
}

// -----

func.func @f(%q: tensor<1x8x16xf32>, %k: tensor<1x8x8xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expects softcap > 0, got 0}}
  %y = llm.attention %q, %k, %k heads 4 kv_heads 2 softcap 0.0 : tensor<1x8x16xf32>, tensor<1x8x8xf32>
  return %y : tensor<1x8x16xf32>
}

// -----

func.func @f(%q: tensor<1x8x16xf32>, %k: tensor<1x8x8xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expects scale > 0, got -1}}
  %y = llm.attention %q, %k, %k heads 4 kv_heads 2 scale -1.0 : tensor<1x8x16xf32>, tensor<1x8x8xf32>
  return %y : tensor<1x8x16xf32>
}

// -----

func.func @f(%x: tensor<1x8x16xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expects cap > 0, got 0}}
  %y = llm.softcap %x cap 0.0 : tensor<1x8x16xf32>
  return %y : tensor<1x8x16xf32>
}

// -----

func.func @f(%x: tensor<1x8x16xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expects a finite, nonzero factor, got 0}}
  %y = llm.scale %x by 0.0 : tensor<1x8x16xf32>
  return %y : tensor<1x8x16xf32>
}

// -----

func.func @f(%x: tensor<1x8x16xf32>, %r: tensor<4x16xf32>, %g: tensor<30x16xf32>, %d: tensor<64x8xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expects gate [E*F, 16] with E = 4 (the router's rows), got 'tensor<30x16xf32>'}}
  %y = llm.moe %x, %r, %g, %g, %d top_k 2 : tensor<1x8x16xf32>, tensor<4x16xf32>, tensor<30x16xf32>, tensor<30x16xf32>, tensor<64x8xf32> -> tensor<1x8x16xf32>
  return %y : tensor<1x8x16xf32>
}

// -----

func.func @f(%x: tensor<1x8x16xf32>, %r: tensor<4x16xf32>, %g: tensor<32x16xf32>, %d: tensor<64x4xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expects down [64, 8] (E*D, F), got 'tensor<64x4xf32>'}}
  %y = llm.moe %x, %r, %g, %g, %d top_k 2 : tensor<1x8x16xf32>, tensor<4x16xf32>, tensor<32x16xf32>, tensor<32x16xf32>, tensor<64x4xf32> -> tensor<1x8x16xf32>
  return %y : tensor<1x8x16xf32>
}

// -----

func.func @f(%x: tensor<1x8x16xf32>, %r: tensor<4x16xf32>, %g: tensor<32x16xf32>, %d: tensor<64x8xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expects top_k in [1, 4] (experts), got 5}}
  %y = llm.moe %x, %r, %g, %g, %d top_k 5 : tensor<1x8x16xf32>, tensor<4x16xf32>, tensor<32x16xf32>, tensor<32x16xf32>, tensor<64x8xf32> -> tensor<1x8x16xf32>
  return %y : tensor<1x8x16xf32>
}

// -----

func.func @f(%x: tensor<1x8x16xf32>, %r: tensor<4x8xf32>, %g: tensor<32x16xf32>, %d: tensor<64x8xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expects router [E, 16], got 'tensor<4x8xf32>'}}
  %y = llm.moe %x, %r, %g, %g, %d top_k 2 : tensor<1x8x16xf32>, tensor<4x8xf32>, tensor<32x16xf32>, tensor<32x16xf32>, tensor<64x8xf32> -> tensor<1x8x16xf32>
  return %y : tensor<1x8x16xf32>
}

// -----

func.func @f(%v: tensor<1x8x16xf32>, %g: tensor<1x8x4xf32>, %w: tensor<1x8xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expects weight [1, 4], got 'tensor<1x8xf32>'}}
  %y = llm.sigmoid_gate %v, %g, %w : tensor<1x8x16xf32>, tensor<1x8x4xf32>, tensor<1x8xf32>
  return %y : tensor<1x8x16xf32>
}

// -----

func.func @f(%v: tensor<1x8x16xf32>, %g: tensor<1x4x4xf32>, %w: tensor<1x4xf32>) -> tensor<1x8x16xf32> {
  // expected-error @+1 {{expects the gate's batch and sequence to be the value's}}
  %y = llm.sigmoid_gate %v, %g, %w : tensor<1x8x16xf32>, tensor<1x4x4xf32>, tensor<1x4xf32>
  return %y : tensor<1x8x16xf32>
}
