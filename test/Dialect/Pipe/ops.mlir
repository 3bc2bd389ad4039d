// RUN: seq1f1b-opt %s | seq1f1b-opt | FileCheck %s
// Every pipe op parses, verifies and prints back the same.

llm.param @wte : tensor<64x16xf32> init normal std 2.000000e-02

// CHECK-LABEL: func.func @staged
func.func @staged(%ids: tensor<1x8xi32>) -> tensor<1x8x64xf32> {
  // CHECK: pipe.stage 0(%{{.*}}) params [@wte] shared [@wte] : (tensor<1x8xi32>) -> tensor<1x8x16xf32> {
  %h = pipe.stage 0 (%ids) params [@wte] shared [@wte] : (tensor<1x8xi32>) -> tensor<1x8x16xf32> {
  ^bb0(%i: tensor<1x8xi32>):
    %w = llm.param_ref @wte : tensor<64x16xf32>
    %x = llm.embedding %i, %w : tensor<1x8xi32>, tensor<64x16xf32> -> tensor<1x8x16xf32>
    // CHECK: pipe.yield %{{.*}} : tensor<1x8x16xf32>
    pipe.yield %x : tensor<1x8x16xf32>
  }
  // CHECK: pipe.stage 1(%{{.*}}) params [@wte] shared [@wte]
  %l = pipe.stage 1 (%h) params [@wte] shared [@wte] : (tensor<1x8x16xf32>) -> tensor<1x8x64xf32> {
  ^bb0(%x: tensor<1x8x16xf32>):
    %w = llm.param_ref @wte : tensor<64x16xf32>
    %y = llm.linear %x, %w role head : tensor<1x8x16xf32>, tensor<64x16xf32> -> tensor<1x8x64xf32>
    pipe.yield %y : tensor<1x8x64xf32>
  }
  return %l : tensor<1x8x64xf32>
}

// CHECK: pipe.chunk_plan bounds [0, 5, 8] policy flops
pipe.chunk_plan bounds [0, 5, 8] policy flops

// CHECK: pipe.schedule "seq1f1b" stages 2 virtual 1 microbatches 1 chunks 2 {
pipe.schedule "seq1f1b" stages 2 virtual 1 microbatches 1 chunks 2 {
  // CHECK-NEXT: pipe.program rank 0 {
  pipe.program rank 0 {
    // CHECK-NEXT: pipe.forward stage 0 mb 0 chunk 0
    pipe.forward stage 0 mb 0 chunk 0
    // CHECK-NEXT: pipe.send_f stage 0 mb 0 chunk 0 peer 1
    pipe.send_f stage 0 mb 0 chunk 0 peer 1
    pipe.forward stage 0 mb 0 chunk 1
    pipe.send_f stage 0 mb 0 chunk 1 peer 1
    // CHECK: pipe.recv_b stage 0 mb 0 chunk 1 peer 1
    pipe.recv_b stage 0 mb 0 chunk 1 peer 1
    // CHECK-NEXT: pipe.backward_input stage 0 mb 0 chunk 1
    pipe.backward_input stage 0 mb 0 chunk 1
    pipe.recv_b stage 0 mb 0 chunk 0 peer 1
    pipe.backward_input stage 0 mb 0 chunk 0
    // CHECK: pipe.backward_weight stage 0 mb 0 chunk 1
    pipe.backward_weight stage 0 mb 0 chunk 1
    // CHECK-NEXT: pipe.backward_weight stage 0 mb 0 chunk 0
    pipe.backward_weight stage 0 mb 0 chunk 0
    // CHECK-NEXT: pipe.optimizer_step
    pipe.optimizer_step
  }
  pipe.program rank 1 {
    // CHECK: pipe.recv_f stage 1 mb 0 chunk 0 peer 0
    pipe.recv_f stage 1 mb 0 chunk 0 peer 0
    pipe.forward stage 1 mb 0 chunk 0
    pipe.recv_f stage 1 mb 0 chunk 1 peer 0
    pipe.forward stage 1 mb 0 chunk 1
    // CHECK: pipe.backward stage 1 mb 0 chunk 1
    pipe.backward stage 1 mb 0 chunk 1
    // CHECK-NEXT: pipe.send_b stage 1 mb 0 chunk 1 peer 0
    pipe.send_b stage 1 mb 0 chunk 1 peer 0
    pipe.backward stage 1 mb 0 chunk 0
    pipe.send_b stage 1 mb 0 chunk 0 peer 0
    pipe.optimizer_step
  }
}
