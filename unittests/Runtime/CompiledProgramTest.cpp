//===- CompiledProgramTest.cpp - Programs over the C ABI (runtime.h) ------===//
//
// Hand-written rank programs that call libseq1f1b_runtime's C ABI, as the
// code s1f-lower-to-runtime generates does: the schedule's actions give the
// interpreter's step exactly; a program that leaves out, reorders or adds
// actions, or never reaches its optimizer step, fails the step with a
// message naming the rank and the first difference.
//
//===----------------------------------------------------------------------===//

#include "PipelineTestUtil.h"

#include "seq1f1b/runtime.h"

#include <gtest/gtest.h>

namespace s1f::rt::test {
namespace {

using seq1f1b::schedule::ScheduleKind;

// GPipe, one rank, two micro-batches: F0.0 F1.0 B0.0 B1.0.
void whole(s1f_rt_rank *r) {
  s1f_rt_forward(r, 0, 0, 0);
  s1f_rt_forward(r, 0, 1, 0);
  s1f_rt_backward(r, 0, 0, 0);
  s1f_rt_backward(r, 0, 1, 0);
  s1f_rt_optimizer_step(r);
}
void reordered(s1f_rt_rank *r) {
  s1f_rt_forward(r, 0, 0, 0);
  s1f_rt_backward(r, 0, 0, 0);
  s1f_rt_forward(r, 0, 1, 0);
  s1f_rt_backward(r, 0, 1, 0);
  s1f_rt_optimizer_step(r);
}
void shortened(s1f_rt_rank *r) {
  s1f_rt_forward(r, 0, 0, 0);
  s1f_rt_forward(r, 0, 1, 0);
  s1f_rt_backward(r, 0, 0, 0);
  s1f_rt_optimizer_step(r);
}
void unended(s1f_rt_rank *r) {
  s1f_rt_forward(r, 0, 0, 0);
  s1f_rt_forward(r, 0, 1, 0);
  s1f_rt_backward(r, 0, 0, 0);
  s1f_rt_backward(r, 0, 1, 0);
}
void overlong(s1f_rt_rank *r) {
  whole(r);
  s1f_rt_forward(r, 0, 0, 0);
}

PipelineOptions gpipe(CompiledProgram program) {
  PipelineOptions o = options(ScheduleKind::GPipe, 1, 2, 1, ChunkPolicy::Even);
  o.compiledPrograms = {program};
  return o;
}

TEST(CompiledProgram, TheSchedulesActionsGiveTheInterpretersStep) {
  const ModelCase m = tinyLlamaCase();
  Pipeline interpreted(m.graph, options(ScheduleKind::GPipe, 1, 2, 1,
                                        ChunkPolicy::Even),
                       static_cast<int>(m.seq));
  Pipeline compiled(m.graph, gpipe(whole), static_cast<int>(m.seq));
  for (int step = 0; step < 3; ++step) {
    const Batch batch = makeBatch(m, 2, 40 + step);
    StepResult a = interpreted.step(batch), b = compiled.step(batch);
    ASSERT_TRUE(a.ok && b.ok) << a.error << b.error;
    EXPECT_EQ(a.lossSum, b.lossSum) << "step " << step;
  }
  for (const ParamSpec &p : m.graph.params)
    EXPECT_EQ(interpreted.param(p.name), compiled.param(p.name)) << p.name;
}

TEST(CompiledProgram, AProgramThatDiffersFromThePlanFailsNamingWhere) {
  const ModelCase m = tinyLlamaCase();
  const std::pair<CompiledProgram, const char *> cases[] = {
      {reordered, "action 1 of the compiled program is 0B0.0, the plan's is "
                  "0F1.0"},
      {shortened, "ran 3 of its 4 actions and then its optimizer step"},
      {unended, "ran 4 of its 4 actions and no optimizer step"},
      {overlong, "an action after the optimizer step"},
  };
  for (auto [program, expected] : cases) {
    Pipeline pipe(m.graph, gpipe(program), static_cast<int>(m.seq));
    StepResult r = pipe.step(makeBatch(m, 2, 1));
    EXPECT_FALSE(r.ok);
    EXPECT_NE(r.error.find("rank 0"), std::string::npos) << r.error;
    EXPECT_NE(r.error.find(expected), std::string::npos) << r.error;
  }
}

TEST(CompiledProgram, OneProgramPerRank) {
  const ModelCase m = tinyLlamaCase();
  PipelineOptions o = options(ScheduleKind::OneFOneB, 2, 2, 1, ChunkPolicy::Even);
  o.compiledPrograms = {whole};
  EXPECT_THROW(Pipeline(m.graph, o, static_cast<int>(m.seq)),
               std::invalid_argument);
}

} // namespace
} // namespace s1f::rt::test
