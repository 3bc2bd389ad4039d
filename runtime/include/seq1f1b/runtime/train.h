//===- train.h - The trainer's command line ---------------------*- C++ -*-===//
//
// seq1f1b-train's main, and a compiled training executable's (s1f_rt_main,
// runtime.h): the same options, but in a compiled executable the graph, the
// schedule, the chunks and the micro-batch size come with the plan and the
// rank programs are native code.
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_RUNTIME_TRAIN_H
#define SEQ1F1B_RUNTIME_TRAIN_H

#include "seq1f1b/runtime/rank_executor.h"

#include <string>
#include <vector>

namespace s1f::rt {

/// What a compiled executable carries (s1f-lower-to-runtime).
struct CompiledPlan {
  std::string model;                     ///< a name for messages
  std::string graphJson;                 ///< the graph, with the stage cut
  std::string scheduleCsv;               ///< the rank programs as text
  std::vector<int> chunkBounds;          ///< N+1, from 0 to S
  int microBatchSize = 1;                ///< sequences per micro-batch
  std::vector<CompiledProgram> programs; ///< by pipeline rank
};

/// Parses the command line, trains, and returns the exit status (usage
/// errors exit(1) at once; --help exits 0). `compiled` null: seq1f1b-train.
int trainMain(int argc, char **argv, const CompiledPlan *compiled = nullptr);

} // namespace s1f::rt

#endif // SEQ1F1B_RUNTIME_TRAIN_H
