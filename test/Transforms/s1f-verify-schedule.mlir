// RUN: seq1f1b-opt %s -split-input-file -verify-diagnostics --s1f-verify-schedule
// Hand-broken schedules: one per rule of the verifier.

pipe.schedule "1f1b" stages 1 virtual 1 microbatches 1 chunks 1 {
  pipe.program rank 0 {
    // expected-error @+1 {{invalid schedule: 0B0 runs before 0F0 (action 1) on rank 0: a backward needs the forward of the same unit}}
    pipe.backward stage 0 mb 0 chunk 0
    pipe.forward stage 0 mb 0 chunk 0
  }
}

// -----

pipe.schedule "seq1f1b" stages 1 virtual 1 microbatches 1 chunks 2 {
  pipe.program rank 0 {
    // expected-error @+1 {{forward chunks of a micro-batch must ascend}}
    pipe.forward stage 0 mb 0 chunk 1
    pipe.forward stage 0 mb 0 chunk 0
    pipe.backward stage 0 mb 0 chunk 1
    pipe.backward stage 0 mb 0 chunk 0
  }
}

// -----

pipe.schedule "seq1f1b" stages 1 virtual 1 microbatches 1 chunks 2 {
  pipe.program rank 0 {
    pipe.forward stage 0 mb 0 chunk 0
    pipe.forward stage 0 mb 0 chunk 1
    // expected-error @+1 {{backward chunks of a micro-batch must descend (a chunk needs the KV gradient of the chunks after it)}}
    pipe.backward stage 0 mb 0 chunk 0
    pipe.backward stage 0 mb 0 chunk 1
  }
}

// -----

pipe.schedule "zb-h1" stages 1 virtual 1 microbatches 1 chunks 1 {
  pipe.program rank 0 {
    pipe.forward stage 0 mb 0 chunk 0
    // expected-error @+1 {{a W (weight gradient) needs the I of the same unit}}
    pipe.backward_weight stage 0 mb 0 chunk 0
    pipe.backward_input stage 0 mb 0 chunk 0
  }
}

// -----

pipe.schedule "1f1b" stages 1 virtual 1 microbatches 2 chunks 1 {
  // expected-error @+2 {{missing 0F1: every stage runs the forward of every unit}}
  // expected-error @+1 {{missing 0B1 (or 0I1 + 0W1)}}
  pipe.program rank 0 {
    pipe.forward stage 0 mb 0 chunk 0
    pipe.backward stage 0 mb 0 chunk 0
  }
}

// -----

pipe.schedule "1f1b" stages 2 virtual 1 microbatches 1 chunks 1 {
  pipe.program rank 0 {
    pipe.forward stage 0 mb 0 chunk 0
    pipe.send_f stage 0 mb 0 chunk 0 peer 1
    // expected-error @+1 {{0B0: no 0RECV_B0 before it}}
    pipe.backward stage 0 mb 0 chunk 0
  }
  pipe.program rank 1 {
    pipe.recv_f stage 1 mb 0 chunk 0 peer 0
    pipe.forward stage 1 mb 0 chunk 0
    pipe.backward stage 1 mb 0 chunk 0
    // expected-error @+1 {{1SEND_B0 has no matching 0RECV_B0 on rank 0}}
    pipe.send_b stage 1 mb 0 chunk 0 peer 0
  }
}

// -----

// Every rule holds locally, but rank 1 takes the micro-batches in the other
// order: each rank waits for the other.
pipe.schedule "1f1b" stages 2 virtual 1 microbatches 2 chunks 1 {
  pipe.program rank 0 {
    pipe.forward stage 0 mb 0 chunk 0
    pipe.send_f stage 0 mb 0 chunk 0 peer 1
    // expected-error @+1 {{deadlock: rank 0 is blocked at 0RECV_B0 waiting for 1SEND_B0 on rank 1}}
    pipe.recv_b stage 0 mb 0 chunk 0 peer 1
    pipe.backward stage 0 mb 0 chunk 0
    pipe.forward stage 0 mb 1 chunk 0
    pipe.send_f stage 0 mb 1 chunk 0 peer 1
    pipe.recv_b stage 0 mb 1 chunk 0 peer 1
    pipe.backward stage 0 mb 1 chunk 0
  }
  pipe.program rank 1 {
    // expected-error @+1 {{deadlock: rank 1 is blocked at 1RECV_F1 waiting for 0SEND_F1 on rank 0}}
    pipe.recv_f stage 1 mb 1 chunk 0 peer 0
    pipe.forward stage 1 mb 1 chunk 0
    pipe.backward stage 1 mb 1 chunk 0
    pipe.send_b stage 1 mb 1 chunk 0 peer 0
    pipe.recv_f stage 1 mb 0 chunk 0 peer 0
    pipe.forward stage 1 mb 0 chunk 0
    pipe.backward stage 1 mb 0 chunk 0
    pipe.send_b stage 1 mb 0 chunk 0 peer 0
  }
}

// -----

// Two stages on one rank (interleaved): stage 1 cannot run before stage 0.
pipe.schedule "interleaved-1f1b" stages 1 virtual 2 microbatches 1 chunks 1 {
  pipe.program rank 0 {
    // expected-error @+1 {{1F0 runs before 0F0 (action 1) on rank 0: a forward needs the previous stage's forward}}
    pipe.forward stage 1 mb 0 chunk 0
    pipe.forward stage 0 mb 0 chunk 0
    pipe.backward stage 1 mb 0 chunk 0
    pipe.backward stage 0 mb 0 chunk 0
  }
}

// -----

pipe.schedule "1f1b" stages 2 virtual 1 microbatches 1 chunks 1 {
  pipe.program rank 0 {
    // expected-error @+1 {{0SEND_F0 runs before 0F0 (action 1) on rank 0: a SEND_F follows the forward that produces its data}}
    pipe.send_f stage 0 mb 0 chunk 0 peer 1
    pipe.forward stage 0 mb 0 chunk 0
    pipe.recv_b stage 0 mb 0 chunk 0 peer 1
    pipe.backward stage 0 mb 0 chunk 0
  }
  pipe.program rank 1 {
    pipe.recv_f stage 1 mb 0 chunk 0 peer 0
    pipe.forward stage 1 mb 0 chunk 0
    pipe.backward stage 1 mb 0 chunk 0
    pipe.send_b stage 1 mb 0 chunk 0 peer 0
  }
}
