// RUN: seq1f1b-opt %s -split-input-file -verify-diagnostics

llm.param @w : tensor<4x4xf32> init zeros
func.func @f(%x: tensor<1x2x4xf32>) -> tensor<1x2x4xf32> {
  // expected-error @+1 {{expects a stage index >= 0, got -1}}
  %y = pipe.stage -1 (%x) params [] : (tensor<1x2x4xf32>) -> tensor<1x2x4xf32> {
  ^bb0(%a: tensor<1x2x4xf32>):
    pipe.yield %a : tensor<1x2x4xf32>
  }
  return %y : tensor<1x2x4xf32>
}

// -----

func.func @f(%x: tensor<1x2x4xf32>) -> tensor<1x2x4xf32> {
  // expected-error @+1 {{expects block arguments of the input types}}
  %y = pipe.stage 0 (%x) params [] : (tensor<1x2x4xf32>) -> tensor<1x2x4xf32> {
  ^bb0(%a: tensor<1x2x8xf32>):
    pipe.yield %x : tensor<1x2x4xf32>
  }
  return %y : tensor<1x2x4xf32>
}

// -----

func.func @f(%x: tensor<1x2x4xf32>) -> tensor<1x2x4xf32> {
  %y = pipe.stage 0 (%x) params [] : (tensor<1x2x4xf32>) -> tensor<1x2x4xf32> {
  ^bb0(%a: tensor<1x2x4xf32>):
    %c = llm.gelu %a : tensor<1x2x4xf32>
    // expected-error @+1 {{yields types that differ from the stage's output types}}
    pipe.yield %a, %c : tensor<1x2x4xf32>, tensor<1x2x4xf32>
  }
  return %y : tensor<1x2x4xf32>
}

// -----

func.func @f(%x: tensor<1x2x4xf32>) -> tensor<1x2x4xf32> {
  // expected-note @+1 {{required by region isolation constraints}}
  %y = pipe.stage 0 (%x) params [] : (tensor<1x2x4xf32>) -> tensor<1x2x4xf32> {
  ^bb0(%a: tensor<1x2x4xf32>):
    // expected-error @+1 {{using value defined outside the region}}
    %c = llm.gelu %x : tensor<1x2x4xf32>
    pipe.yield %c : tensor<1x2x4xf32>
  }
  return %y : tensor<1x2x4xf32>
}

// -----

llm.param @w : tensor<4xf32> init zeros
func.func @f(%x: tensor<1x2x4xf32>) -> tensor<1x2x4xf32> {
  // expected-error @+1 {{lists shared param @w that is not in its params}}
  %y = pipe.stage 0 (%x) params [] shared [@w] : (tensor<1x2x4xf32>) -> tensor<1x2x4xf32> {
  ^bb0(%a: tensor<1x2x4xf32>):
    pipe.yield %a : tensor<1x2x4xf32>
  }
  return %y : tensor<1x2x4xf32>
}

// -----

func.func @f(%x: tensor<1x2x4xf32>) -> tensor<1x2x4xf32> {
  // expected-error @+1 {{lists @nope, which is not an llm.param}}
  %y = pipe.stage 0 (%x) params [@nope] : (tensor<1x2x4xf32>) -> tensor<1x2x4xf32> {
  ^bb0(%a: tensor<1x2x4xf32>):
    pipe.yield %a : tensor<1x2x4xf32>
  }
  return %y : tensor<1x2x4xf32>
}

// -----

llm.param @g : tensor<4xf32> init ones
func.func @f(%x: tensor<1x2x4xf32>) -> tensor<1x2x4xf32> {
  %y = pipe.stage 0 (%x) params [] : (tensor<1x2x4xf32>) -> tensor<1x2x4xf32> {
  ^bb0(%a: tensor<1x2x4xf32>):
    // expected-error @+1 {{reads @g, which stage 0 does not list in its params}}
    %g = llm.param_ref @g : tensor<4xf32>
    %c = llm.rms_norm %a, %g eps 1.0e-5 : tensor<1x2x4xf32>, tensor<4xf32>
    pipe.yield %c : tensor<1x2x4xf32>
  }
  return %y : tensor<1x2x4xf32>
}

// -----

// expected-error @+1 {{expects the first bound to be 0, got 1}}
pipe.chunk_plan bounds [1, 8] policy even

// -----

// expected-error @+1 {{expects strictly rising bounds, but chunk 1 is [4, 4)}}
pipe.chunk_plan bounds [0, 4, 4, 8] policy even

// -----

// expected-error @+1 {{expects at least two bounds (one chunk)}}
pipe.chunk_plan bounds [0] policy even

// -----

// expected-error @+1 {{unknown schedule 'zigzag'; valid schedules: gpipe, 1f1b, interleaved-1f1b, seq1f1b, seq1f1b-interleaved, zb-h1, seq1f1b-zb (or custom)}}
pipe.schedule "zigzag" stages 1 virtual 1 microbatches 1 chunks 1 {
  pipe.program rank 0 {
  }
}

// -----

// expected-error @+1 {{expects microbatches >= 1, got 0}}
pipe.schedule "1f1b" stages 1 virtual 1 microbatches 0 chunks 1 {
  pipe.program rank 0 {
  }
}

// -----

// expected-error @+1 {{expects one program per rank (2), got 1}}
pipe.schedule "1f1b" stages 2 virtual 1 microbatches 1 chunks 1 {
  pipe.program rank 0 {
  }
}

// -----

pipe.schedule "1f1b" stages 2 virtual 1 microbatches 1 chunks 1 {
  pipe.program rank 0 {
  }
  // expected-error @+1 {{rank 2 is out of range [0, 2)}}
  pipe.program rank 2 {
  }
}

// -----

pipe.schedule "1f1b" stages 2 virtual 1 microbatches 1 chunks 1 {
  pipe.program rank 0 {
  }
  // expected-error @+1 {{rank 0 has two programs}}
  pipe.program rank 0 {
  }
}

// -----

pipe.schedule "1f1b" stages 2 virtual 1 microbatches 1 chunks 1 {
  pipe.program rank 0 {
    // expected-error @+1 {{stage 1 runs on rank 1, not on rank 0}}
    pipe.forward stage 1 mb 0 chunk 0
  }
  pipe.program rank 1 {
  }
}

// -----

pipe.schedule "1f1b" stages 2 virtual 1 microbatches 1 chunks 1 {
  pipe.program rank 0 {
    // expected-error @+1 {{stage 4 is out of range [0, 2)}}
    pipe.backward stage 4 mb 0 chunk 0
  }
  pipe.program rank 1 {
  }
}

// -----

pipe.schedule "1f1b" stages 1 virtual 1 microbatches 2 chunks 1 {
  pipe.program rank 0 {
    // expected-error @+1 {{micro-batch 2 is out of range [0, 2)}}
    pipe.forward stage 0 mb 2 chunk 0
  }
}

// -----

pipe.schedule "seq1f1b" stages 1 virtual 1 microbatches 1 chunks 2 {
  pipe.program rank 0 {
    // expected-error @+1 {{chunk 2 is out of range [0, 2)}}
    pipe.backward_input stage 0 mb 0 chunk 2
  }
}

// -----

pipe.schedule "seq1f1b" stages 1 virtual 1 microbatches 1 chunks 2 {
  pipe.program rank 0 {
    pipe.forward stage 0 mb 0 chunk 1
    // expected-error @+1 {{repeats stage 0 mb 0 chunk 1 on rank 0}}
    pipe.forward stage 0 mb 0 chunk 1
  }
}

// -----

pipe.schedule "1f1b" stages 2 virtual 1 microbatches 1 chunks 1 {
  pipe.program rank 0 {
    // expected-error @+1 {{peer 3 does not exist (ranks 0..1)}}
    pipe.send_f stage 0 mb 0 chunk 0 peer 3
  }
  pipe.program rank 1 {
  }
}

// -----

pipe.schedule "1f1b" stages 2 virtual 1 microbatches 1 chunks 1 {
  pipe.program rank 0 {
    // expected-error @+1 {{peer 0 is its own rank}}
    pipe.recv_b stage 0 mb 0 chunk 0 peer 0
  }
  pipe.program rank 1 {
  }
}

// -----

pipe.program rank 0 {
  // expected-error @-1 {{expects parent op 'pipe.schedule'}}
}

// -----

pipe.schedule "1f1b" stages 1 virtual 1 microbatches 1 chunks 1 {
  // expected-error @+1 {{is not allowed directly in a pipe.schedule; expected pipe.program}}
  pipe.chunk_plan bounds [0, 8] policy even
}
