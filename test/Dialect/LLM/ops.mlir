// RUN: seq1f1b-opt %s | seq1f1b-opt | FileCheck %s
// Every llm op parses, verifies and prints back the same.

// CHECK: llm.param @wte : tensor<64x16xf32> init normal std 2.000000e-02
llm.param @wte : tensor<64x16xf32> init normal std 2.000000e-02
// CHECK: llm.param @wpe : tensor<32x16xf32> init normal std 1.000000e-02
llm.param @wpe : tensor<32x16xf32> init normal std 1.000000e-02
// CHECK: llm.param @g : tensor<16xf32> init ones
llm.param @g : tensor<16xf32> init ones
// CHECK: llm.param @b : tensor<16xf32> init zeros
llm.param @b : tensor<16xf32> init zeros
llm.param @wq : tensor<16x16xf32> init normal std 2.000000e-02
llm.param @wk : tensor<8x16xf32> init normal std 2.000000e-02
llm.param @wup : tensor<48x16xf32> init normal std 2.000000e-02
llm.param @gh : tensor<4xf32> init ones
llm.param @router : tensor<4x16xf32> init normal std 2.000000e-02
llm.param @egate : tensor<48x16xf32> init normal std 2.000000e-02
llm.param @edown : tensor<64x12xf32> init normal std 2.000000e-02
llm.param @sgw : tensor<1x16xf32> init normal std 2.000000e-02

// CHECK-LABEL: func.func @model
func.func @model(%ids: tensor<2x8xi32>, %targets: tensor<2x8xi32>) -> (tensor<f32>, tensor<i64>) {
  // CHECK: %[[WTE:.*]] = llm.param_ref @wte : tensor<64x16xf32>
  %wte = llm.param_ref @wte : tensor<64x16xf32>
  // CHECK: %[[X:.*]] = llm.embedding %{{.*}}, %[[WTE]] : tensor<2x8xi32>, tensor<64x16xf32> -> tensor<2x8x16xf32>
  %x = llm.embedding %ids, %wte : tensor<2x8xi32>, tensor<64x16xf32> -> tensor<2x8x16xf32>
  %wpe = llm.param_ref @wpe : tensor<32x16xf32>
  // CHECK: llm.position_embedding %{{.*}} : tensor<32x16xf32> -> tensor<2x8x16xf32>
  %p = llm.position_embedding %wpe : tensor<32x16xf32> -> tensor<2x8x16xf32>
  // CHECK: llm.add %{{.*}}, %{{.*}} : tensor<2x8x16xf32>
  %h = llm.add %x, %p : tensor<2x8x16xf32>
  %g = llm.param_ref @g : tensor<16xf32>
  %b = llm.param_ref @b : tensor<16xf32>
  // CHECK: llm.layer_norm %{{.*}}, %{{.*}}, %{{.*}} eps 1.000000e-05 : tensor<2x8x16xf32>, tensor<16xf32>
  %ln = llm.layer_norm %h, %g, %b eps 1.000000e-05 : tensor<2x8x16xf32>, tensor<16xf32>
  // CHECK: llm.rms_norm %{{.*}}, %{{.*}} eps 9.9999999999999995E-7 : tensor<2x8x16xf32>, tensor<16xf32>
  %rn = llm.rms_norm %ln, %g eps 9.9999999999999995E-7 : tensor<2x8x16xf32>, tensor<16xf32>
  %gh = llm.param_ref @gh : tensor<4xf32>
  // CHECK: llm.rms_norm %{{.*}}, %{{.*}} eps 9.9999999999999995E-7 heads 4 : tensor<2x8x16xf32>, tensor<4xf32>
  %hn = llm.rms_norm %rn, %gh eps 9.9999999999999995E-7 heads 4 : tensor<2x8x16xf32>, tensor<4xf32>
  %wq = llm.param_ref @wq : tensor<16x16xf32>
  %wk = llm.param_ref @wk : tensor<8x16xf32>
  // CHECK: llm.linear %{{.*}}, %{{.*}}, %{{.*}} role attention : tensor<2x8x16xf32>, tensor<16x16xf32>, tensor<16xf32> -> tensor<2x8x16xf32>
  %q = llm.linear %rn, %wq, %b role attention : tensor<2x8x16xf32>, tensor<16x16xf32>, tensor<16xf32> -> tensor<2x8x16xf32>
  // CHECK: llm.linear %{{.*}}, %{{.*}} : tensor<2x8x16xf32>, tensor<8x16xf32> -> tensor<2x8x8xf32>
  %k = llm.linear %rn, %wk : tensor<2x8x16xf32>, tensor<8x16xf32> -> tensor<2x8x8xf32>
  %v = llm.linear %rn, %wk role attention : tensor<2x8x16xf32>, tensor<8x16xf32> -> tensor<2x8x8xf32>
  // CHECK: llm.rope %{{.*}} heads 4 theta 1.000000e+04 : tensor<2x8x16xf32>
  %qr = llm.rope %q heads 4 theta 1.000000e+04 : tensor<2x8x16xf32>
  // CHECK: llm.rope %{{.*}} heads 2 theta 1.000000e+04 : tensor<2x8x8xf32>
  %kr = llm.rope %k heads 2 theta 1.000000e+04 : tensor<2x8x8xf32>
  // CHECK: llm.rope %{{.*}} heads 2 theta 1.000000e+04 rotary 2 : tensor<2x8x8xf32>
  %kp = llm.rope %k heads 2 theta 1.000000e+04 rotary 2 : tensor<2x8x8xf32>
  // CHECK: llm.rope %{{.*}} heads 2 theta 1.000000e+04 rotary 2 interleaved : tensor<2x8x8xf32>
  %ki = llm.rope %k heads 2 theta 1.000000e+04 rotary 2 interleaved : tensor<2x8x8xf32>
  // CHECK: llm.rope %{{.*}} heads 2 theta 1.000000e+04 scaling 2.000000e+00 : tensor<2x8x8xf32>
  %kl = llm.rope %k heads 2 theta 1.000000e+04 scaling 2.0 : tensor<2x8x8xf32>
  // CHECK: llm.rope %{{.*}} heads 2 theta 5.000000e+05 scaling 8.000000e+00 llama3(1.000000e+00, 4.000000e+00, 8192) : tensor<2x8x8xf32>
  %k3 = llm.rope %k heads 2 theta 5.0e5 scaling 8.0 llama3(1.0, 4.0, 8192) : tensor<2x8x8xf32>
  // CHECK: llm.rope %{{.*}} heads 2 theta 1.000000e+06 scaling 4.000000e+00 yarn(3.200000e+01, 1.000000e+00, 32768) attention_factor 1.138600e+00 : tensor<2x8x8xf32>
  %ky = llm.rope %k heads 2 theta 1.0e6 scaling 4.0 yarn(32.0, 1.0, 32768) attention_factor 1.1386 : tensor<2x8x8xf32>
  // CHECK: llm.rope %{{.*}} heads 2 theta 1.000000e+04 longrope([1.000000e+00, 2.500000e+00]) attention_factor 1.250000e+00 : tensor<2x8x8xf32>
  %klr = llm.rope %k heads 2 theta 1.0e4 longrope([1.0, 2.5]) attention_factor 1.25 : tensor<2x8x8xf32>
  // CHECK: llm.attention %{{.*}}, %{{.*}}, %{{.*}} heads 4 kv_heads 2 : tensor<2x8x16xf32>, tensor<2x8x8xf32>
  %a = llm.attention %qr, %kr, %v heads 4 kv_heads 2 : tensor<2x8x16xf32>, tensor<2x8x8xf32>
  // CHECK: llm.attention %{{.*}}, %{{.*}}, %{{.*}} heads 4 kv_heads 2 window 3 : tensor<2x8x16xf32>, tensor<2x8x8xf32>
  %aw = llm.attention %qr, %kr, %v heads 4 kv_heads 2 window 3 : tensor<2x8x16xf32>, tensor<2x8x8xf32>
  // CHECK: llm.attention %{{.*}}, %{{.*}}, %{{.*}} heads 4 kv_heads 2 window 3 scale 2.500000e-01 softcap 5.000000e+01 : tensor<2x8x16xf32>, tensor<2x8x8xf32>
  %ag = llm.attention %qr, %kr, %v heads 4 kv_heads 2 window 3 scale 0.25 softcap 50.0 : tensor<2x8x16xf32>, tensor<2x8x8xf32>
  // CHECK: llm.softcap %{{.*}} cap 3.000000e+01 : tensor<2x8x16xf32>
  %sc = llm.softcap %ag cap 30.0 : tensor<2x8x16xf32>
  // CHECK: llm.scale %{{.*}} by 2.200000e-01 : tensor<2x8x16xf32>
  %ss = llm.scale %sc by 0.22 : tensor<2x8x16xf32>
  %wup = llm.param_ref @wup : tensor<48x16xf32>
  %up = llm.linear %a, %wup role mlp : tensor<2x8x16xf32>, tensor<48x16xf32> -> tensor<2x8x48xf32>
  // CHECK: llm.gelu %{{.*}} : tensor<2x8x48xf32>
  %ge = llm.gelu %up : tensor<2x8x48xf32>
  // CHECK: llm.gelu %{{.*}} exact : tensor<2x8x48xf32>
  %gx = llm.gelu %up exact : tensor<2x8x48xf32>
  // CHECK: llm.silu %{{.*}} : tensor<2x8x48xf32>
  %si = llm.silu %ge : tensor<2x8x48xf32>
  // CHECK: llm.moe %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} top_k 2 normalized : tensor<2x8x16xf32>, tensor<4x16xf32>, tensor<48x16xf32>, tensor<48x16xf32>, tensor<64x12xf32> -> tensor<2x8x16xf32>
  %router = llm.param_ref @router : tensor<4x16xf32>
  %egate = llm.param_ref @egate : tensor<48x16xf32>
  %edown = llm.param_ref @edown : tensor<64x12xf32>
  %moe = llm.moe %h, %router, %egate, %egate, %edown top_k 2 normalized : tensor<2x8x16xf32>, tensor<4x16xf32>, tensor<48x16xf32>, tensor<48x16xf32>, tensor<64x12xf32> -> tensor<2x8x16xf32>
  %sgw = llm.param_ref @sgw : tensor<1x16xf32>
  // CHECK: llm.sigmoid_gate %{{.*}}, %{{.*}}, %{{.*}} : tensor<2x8x16xf32>, tensor<2x8x16xf32>, tensor<1x16xf32>
  %sgate = llm.sigmoid_gate %moe, %h, %sgw : tensor<2x8x16xf32>, tensor<2x8x16xf32>, tensor<1x16xf32>
  // CHECK: llm.swiglu %{{.*}}, %{{.*}} : tensor<2x8x48xf32>
  %sw = llm.swiglu %si, %up : tensor<2x8x48xf32>
  // CHECK: llm.embedding %{{.*}}, %{{.*}} scale 4.000000e+00 :
  %es = llm.embedding %ids, %wte scale 4.0 : tensor<2x8xi32>, tensor<64x16xf32> -> tensor<2x8x16xf32>
  // CHECK: llm.geglu %{{.*}}, %{{.*}} : tensor<2x8x48xf32>
  %gg = llm.geglu %si, %up : tensor<2x8x48xf32>
  // CHECK: llm.linear %{{.*}}, %[[WTE]] role head : tensor<2x8x16xf32>, tensor<64x16xf32> -> tensor<2x8x64xf32>
  %logits = llm.linear %a, %wte role head : tensor<2x8x16xf32>, tensor<64x16xf32> -> tensor<2x8x64xf32>
  // CHECK: llm.cross_entropy %{{.*}}, %{{.*}} : tensor<2x8x64xf32>, tensor<2x8xi32> -> tensor<f32>, tensor<i64>
  %loss, %n = llm.cross_entropy %logits, %targets : tensor<2x8x64xf32>, tensor<2x8xi32> -> tensor<f32>, tensor<i64>
  return %loss, %n : tensor<f32>, tensor<i64>
}

// Reduced precisions are accepted.
// CHECK-LABEL: func.func @bf16
func.func @bf16(%x: tensor<1x4x8xbf16>, %y: tensor<1x4x8xf16>) -> (tensor<1x4x8xbf16>, tensor<1x4x8xf16>) {
  // CHECK: llm.gelu %{{.*}} : tensor<1x4x8xbf16>
  %a = llm.gelu %x : tensor<1x4x8xbf16>
  // CHECK: llm.silu %{{.*}} : tensor<1x4x8xf16>
  %b = llm.silu %y : tensor<1x4x8xf16>
  return %a, %b : tensor<1x4x8xbf16>, tensor<1x4x8xf16>
}
