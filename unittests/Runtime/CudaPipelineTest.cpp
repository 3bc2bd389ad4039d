//===- CudaPipelineTest.cpp - Training steps on the GPU equal the CPU's ---===//
//
// The fp32 mode: the pipeline runs on cuda::stagedKernels() (every kernel of
// the step on the GPU) and its loss and every parameter gradient must equal
// the CPU reference's, the single-rank full-sequence run of
// PipelineEquivalenceTest, to the same 1e-5; so must the losses over three
// AdamW steps. Tiny GPT (LayerNorm, GELU, learned positions, tied
// embeddings) and tiny Llama (RMSNorm, rope, SwiGLU, grouped-query heads),
// Seq1F1B and its zero-bubble form with uneven chunks, 1F1B, the tiny
// Llama under every other schedule kind and with a sliding window, and a
// tiny Mixtral (a mixture of experts). Skipped without a GPU.
//
//===----------------------------------------------------------------------===//

#include "CudaTestUtil.h"
#include "PipelineTestUtil.h"

#include "seq1f1b/runtime/cuda/staged_kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace s1f::rt::test {
namespace {

namespace sched = seq1f1b::schedule;
using cuda::test::CudaTest;

constexpr double kTol = 1e-5;
constexpr int kSteps = 3;

struct Case {
  sched::ScheduleKind kind;
  int P, N, M;
  bool recompute = false;
};

void compare(const ModelCase &m, const Case &c) {
  const std::string kind(sched::scheduleKindName(c.kind));
  SCOPED_TRACE(m.name + " " + kind + " P=" + std::to_string(c.P) +
               " N=" + std::to_string(c.N) + " M=" + std::to_string(c.M) +
               (c.recompute ? " recompute" : ""));
  std::string error;
  const Reference &ref = cachedReference(m, c.M, kSteps, error); // CPU
  ASSERT_TRUE(error.empty()) << error;
  PipelineOptions o = options(c.kind, c.P, c.M, c.N, ChunkPolicy::Flops);
  o.kernels = &cuda::stagedKernels();
  o.recompute = c.recompute;
  Pipeline pipe(m.graph, o, static_cast<int>(m.seq));
  double worst = 0;
  for (int step = 0; step < kSteps; ++step) {
    StepResult r = pipe.step(makeBatch(m, c.M, 100 + step));
    ASSERT_TRUE(r.ok) << r.error;
    const double lossErr =
        std::fabs(r.loss() - ref.losses[step]) / ref.losses[step];
    EXPECT_LE(lossErr, kTol) << "step " << step << ": " << r.loss() << " vs "
                             << ref.losses[step];
    worst = std::max(worst, lossErr);
    if (step > 0)
      continue;
    for (const ParamSpec &p : m.graph.params) {
      const double err = relError(pipe.grad(p.name), ref.grads.at(p.name),
                                  1e-3 * ref.largestGrad);
      EXPECT_LE(err, kTol) << "gradient of " << p.name;
      worst = std::max(worst, err);
    }
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3e", worst);
  ::testing::Test::RecordProperty("relerr_" + m.name + "_" + kind, buf);
}

using CudaPipeline = CudaTest;

TEST_F(CudaPipeline, Seq1F1BMatchesCpuReference) {
  for (const ModelCase &m : {tinyGptCase(), tinyLlamaCase()})
    compare(m, {sched::ScheduleKind::Seq1F1B, 2, 2, 2});
}

TEST_F(CudaPipeline, ZeroBubbleSplitBackwardMatchesCpuReference) {
  for (const ModelCase &m : {tinyGptCase(), tinyLlamaCase()})
    compare(m, {sched::ScheduleKind::Seq1F1BZB, 2, 4, 2});
}

TEST_F(CudaPipeline, OneFOneBMatchesCpuReference) {
  for (const ModelCase &m : {tinyGptCase(), tinyLlamaCase()})
    compare(m, {sched::ScheduleKind::OneFOneB, 2, 1, 3});
}

// Full recomputation: each layer's forward runs again on the GPU before its
// backward (the CPU reference keeps its activations).
TEST_F(CudaPipeline, RecomputeMatchesCpuReference) {
  for (const ModelCase &m : {tinyGptCase(), tinyLlamaCase()})
    compare(m, {sched::ScheduleKind::Seq1F1B, 2, 2, 2, true});
}

// The other kinds (GPipe, the interleaved ones with two stages per rank,
// ZB-H1): the same kernels in other orders.
TEST_F(CudaPipeline, OtherScheduleKindsMatchCpuReference) {
  for (sched::ScheduleKind kind : sched::generatableScheduleKinds()) {
    if (kind == sched::ScheduleKind::Seq1F1B ||
        kind == sched::ScheduleKind::Seq1F1BZB ||
        kind == sched::ScheduleKind::OneFOneB)
      continue; // above
    const int N = sched::isSequenceChunked(kind) ? 2 : 1;
    compare(tinyLlamaCase(), {kind, 2, N, 2});
  }
}

// Sliding windows (5 of the 14 tokens) on the fp32 attention kernel: three
// chunks, so later ones read only part of the prefix.
TEST_F(CudaPipeline, SlidingWindowMatchesCpuReference) {
  ModelCase m = tinyLlamaCase();
  m.name = "llama-window5";
  for (Op &op : m.graph.ops)
    if (op.kind == OpKind::Attention)
      op.window = 5;
  compare(m, {sched::ScheduleKind::Seq1F1B, 2, 3, 2});
}

// A mixture of experts: the router's and every expert's GEMMs on the GPU,
// the routing on the host.
TEST_F(CudaPipeline, MixtureOfExpertsMatchesCpuReference) {
  compare(tinyMixtralCase(), {sched::ScheduleKind::Seq1F1B, 2, 3, 2});
  compare(tinyMixtralCase(), {sched::ScheduleKind::Seq1F1BZB, 2, 2, 2});
}

} // namespace
} // namespace s1f::rt::test
