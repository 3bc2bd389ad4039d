//===- partition.h - Stages of a graph and chunks of a sequence --*- C++ -*-===//
//
// Stages are contiguous op ranges cut where exactly one activation (the
// residual stream) crosses; token ids and targets are on every stage. A
// parameter read by ops of several stages (GPT-2's wte: embedding and tied
// head) is held by each of them; its gradients are summed across them
// before the optimizer.
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_RUNTIME_PARTITION_H
#define SEQ1F1B_RUNTIME_PARTITION_H

#include "seq1f1b/runtime/graph.h"

#include <utility>
#include <vector>

namespace s1f::rt {

struct StageSpec {
  int opBegin = 0, opEnd = 0; ///< ops [opBegin, opEnd)
  int input = -1;             ///< value received from the previous stage
  int output = -1;            ///< value sent to the next stage
  std::vector<int> params;    ///< parameters its ops read, ascending
};

/// Op indices i (0 < i < #ops) before which exactly one value is live:
/// defined before op i and used at or after it.
std::vector<int> cutPoints(const Graph &graph);

/// The transformer layers among ops [begin, end) (a stage: its bounds are cut
/// points or the ends of the graph), as op ranges [first, last): the pieces
/// between cut points, two per layer (attention and MLP halves), grouped by
/// the attention op they belong to. The embedding before the first cut point
/// and the head after the last are not layers. Full recomputation keeps each
/// layer's input and runs the layer again in the backward.
std::vector<std::pair<int, int>> layerRanges(const Graph &graph, int begin,
                                             int end);

/// Per-token cost estimate of each op (multiply-adds; attention counted per
/// key, i.e. scaled by the sequence length `seq`).
std::vector<double> opCosts(const Graph &graph, int seq);

/// Splits the graph into `stages` contiguous stages at cut points,
/// minimizing the most expensive stage (schedule::partitionStages). Throws
/// std::invalid_argument when the graph has fewer cut segments than stages.
std::vector<StageSpec> cutStages(const Graph &graph, int stages, int seq);

/// The stages [bounds[k], bounds[k+1]) of a given cut (e.g. the compiler's,
/// Graph::stages). Throws std::invalid_argument when a bound is not a cut
/// point or the bounds do not run from 0 to the op count.
std::vector<StageSpec> stagesAt(const Graph &graph,
                                const std::vector<int> &bounds);

enum class ChunkPolicy { Even, Flops };

/// N+1 chunk boundaries [0, ..., seq]. Even: lengths differ by at most one
/// (longer chunks first). Flops: equal cost under a*(s*e - s^2/2) + b*s per
/// chunk of s tokens ending at e, with a from the graph's attention ops and
/// b from its per-token ops (schedule::balanceChunks). Throws when
/// chunks < 1 or chunks > seq.
std::vector<int> chunkBounds(const Graph &graph, int seq, int chunks,
                             ChunkPolicy policy);

/// Context parallelism: the tokens [first, last) of chunk [begin, end) that
/// context-parallel rank `rank` of `ranks` runs: contiguous parts whose
/// lengths differ by at most one.
std::pair<int, int> contextParallelPart(int begin, int end, int rank,
                                        int ranks);

/// The tokens of chunk [begin, end) a rank runs: [start, end) its
/// context-parallel part (rank cpRank of cpRanks), and [splitStart,
/// splitEnd) its part of those in sequence-split values (rank spRank of
/// spRanks; 1 rank without sequence parallelism).
struct RankTokens {
  int start, end, splitStart, splitEnd;
};
RankTokens rankTokens(int begin, int end, int cpRank, int cpRanks, int spRank,
                      int spRanks);

} // namespace s1f::rt

#endif // SEQ1F1B_RUNTIME_PARTITION_H
