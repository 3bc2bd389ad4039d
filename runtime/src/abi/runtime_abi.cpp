//===- runtime_abi.cpp - The C ABI of compiled training programs ----------===//
//
// runtime.h: the action calls a compiled rank program makes, each checked
// and run by the rank's executor (RankExecutor::setProgram), and the
// executable's main. Exceptions stop here: a C caller cannot unwind them.
//
//===----------------------------------------------------------------------===//

#include "seq1f1b/runtime.h"

#include "seq1f1b/runtime/train.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <exception>
#include <map>

namespace {

namespace sched = seq1f1b::schedule;
using sched::ActionKind;

void act(s1f_rt_rank *rank, ActionKind kind, int32_t stage, int32_t mb,
         int32_t chunk, int32_t peer = -1) {
  if (!rank->error.empty())
    return; // the first failure stands; the runtime reports it
  try {
    if (rank->ended)
      throw std::logic_error("an action after the optimizer step");
    rank->act(sched::Action{kind, stage, mb, chunk, peer});
  } catch (const std::exception &e) {
    rank->error = e.what();
  }
}

/// The registered programs, by pipeline rank.
std::map<int, s1f_rt_program> &programs() {
  static std::map<int, s1f_rt_program> table;
  return table;
}

} // namespace

extern "C" {

void s1f_rt_forward(s1f_rt_rank *r, int32_t stage, int32_t mb, int32_t chunk) {
  act(r, ActionKind::Forward, stage, mb, chunk);
}
void s1f_rt_backward(s1f_rt_rank *r, int32_t stage, int32_t mb, int32_t chunk) {
  act(r, ActionKind::Backward, stage, mb, chunk);
}
void s1f_rt_backward_input(s1f_rt_rank *r, int32_t stage, int32_t mb,
                           int32_t chunk) {
  act(r, ActionKind::BackwardInput, stage, mb, chunk);
}
void s1f_rt_backward_weight(s1f_rt_rank *r, int32_t stage, int32_t mb,
                            int32_t chunk) {
  act(r, ActionKind::BackwardWeight, stage, mb, chunk);
}
void s1f_rt_send_f(s1f_rt_rank *r, int32_t stage, int32_t mb, int32_t chunk,
                   int32_t peer) {
  act(r, ActionKind::SendF, stage, mb, chunk, peer);
}
void s1f_rt_recv_f(s1f_rt_rank *r, int32_t stage, int32_t mb, int32_t chunk,
                   int32_t peer) {
  act(r, ActionKind::RecvF, stage, mb, chunk, peer);
}
void s1f_rt_send_b(s1f_rt_rank *r, int32_t stage, int32_t mb, int32_t chunk,
                   int32_t peer) {
  act(r, ActionKind::SendB, stage, mb, chunk, peer);
}
void s1f_rt_recv_b(s1f_rt_rank *r, int32_t stage, int32_t mb, int32_t chunk,
                   int32_t peer) {
  act(r, ActionKind::RecvB, stage, mb, chunk, peer);
}
void s1f_rt_optimizer_step(s1f_rt_rank *r) {
  if (r->error.empty() && r->ended)
    r->error = "a second optimizer step";
  r->ended = true;
}

void s1f_rt_register_program(int32_t rank, s1f_rt_program program) {
  programs()[rank] = program;
}

int32_t s1f_rt_main(int32_t argc, char **argv, const char *graph_json,
                    const char *plan_json) {
  s1f::rt::CompiledPlan plan;
  try {
    const nlohmann::json j = nlohmann::json::parse(plan_json);
    plan.model = j.at("model").get<std::string>();
    plan.scheduleCsv = j.at("schedule_csv").get<std::string>();
    plan.chunkBounds = j.at("chunk_bounds").get<std::vector<int>>();
    plan.microBatchSize = j.at("micro_batch_size").get<int>();
    plan.graphJson = graph_json;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "%s: error: the embedded plan is malformed: %s\n",
                 argc > 0 ? argv[0] : "s1f_rt_main", e.what());
    return 1;
  }
  for (const auto &[rank, program] : programs()) {
    if (rank != static_cast<int>(plan.programs.size())) {
      std::fprintf(stderr, "%s: error: no program for rank %d\n",
                   argc > 0 ? argv[0] : "s1f_rt_main",
                   static_cast<int>(plan.programs.size()));
      return 1;
    }
    plan.programs.push_back(program);
  }
  return s1f::rt::trainMain(argc, argv, &plan);
}

} // extern "C"
