// RUN: seq1f1b-opt %s -split-input-file -verify-diagnostics --s1f-lower-to-runtime

// expected-error@+1 {{expects one pipe.schedule (run s1f-pipeline), found 0}}
module {
}

// -----

// expected-error@+1 {{expects the importer's llm.config with seq_len and micro_batch}}
module {
  pipe.schedule "gpipe" stages 1 virtual 1 microbatches 1 chunks 1 {
    pipe.program rank 0 {
      pipe.forward stage 0 mb 0 chunk 0
      pipe.backward stage 0 mb 0 chunk 0
      pipe.optimizer_step
    }
  }
}

// -----

module attributes {llm.config = {micro_batch = 1 : i64, seq_len = 8 : i64}} {
  // expected-error@+1 {{the schedule does not verify}}
  pipe.schedule "gpipe" stages 1 virtual 1 microbatches 1 chunks 1 {
    pipe.program rank 0 {
      pipe.backward stage 0 mb 0 chunk 0
      pipe.forward stage 0 mb 0 chunk 0
      pipe.optimizer_step
    }
  }
}

// -----

module attributes {llm.config = {micro_batch = 1 : i64, seq_len = 8 : i64}} {
  pipe.chunk_plan bounds [0, 8] policy even
  // expected-error@+1 {{the schedule has 2 chunks but the module's chunk plan 1 (run s1f-split-sequence)}}
  pipe.schedule "seq1f1b" stages 1 virtual 1 microbatches 1 chunks 2 {
    pipe.program rank 0 {
      pipe.forward stage 0 mb 0 chunk 0
      pipe.forward stage 0 mb 0 chunk 1
      pipe.backward stage 0 mb 0 chunk 1
      pipe.backward stage 0 mb 0 chunk 0
      pipe.optimizer_step
    }
  }
}
