//===- tensor_parallel.h - Megatron's tensor parallelism as a rewrite -----===//
//
// shardTensorParallel(graph, T) returns the graph that each of T
// tensor-parallel ranks runs, in Megatron-LM's layout (without sequence
// parallelism):
//  * a linear whose output feeds attention or an MLP activation (through
//    rope, per-head norms or a scale) is column-parallel: rank t holds rows
//    [t*out/T, (t+1)*out/T) of its weight and bias, so it makes heads
//    [t*H/T, (t+1)*H/T) (and kv heads likewise; with fewer kv heads than
//    ranks, the kv head those query heads read) or that slice of the MLP;
//  * a linear that reads such a slice is row-parallel: rank t holds the
//    same slice of its weight's columns and makes a partial sum, which a
//    tp_reduce op adds up over the ranks (Megatron's g), adding the bias
//    once;
//  * a tp_copy op (Megatron's f) stands before the column-parallel linears:
//    the identity, whose backward sums their input gradients over the ranks;
//  * everything else (embeddings, norms, residual adds, the head, the loss)
//    runs whole on every rank on the same numbers, and so makes the same
//    gradients there, except a per-head norm weight, which sees only its
//    rank's heads: its gradient is summed over the ranks, as is a kv
//    head's over the ranks that share it (ParamSpec::tpPartialGrad).
// Parameters keep their names and order; shardOf cuts a whole parameter
// into a rank's part and unshard puts the parts together again.
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_RUNTIME_TENSOR_PARALLEL_H
#define SEQ1F1B_RUNTIME_TENSOR_PARALLEL_H

#include "seq1f1b/runtime/graph.h"

#include <vector>

namespace s1f::rt {

/// The graph of one of `tp` tensor-parallel ranks (the same for all of
/// them: only their parts of the parameters differ). A stage cut
/// (Graph::stages) is carried over. `tp` = 1 returns `graph` as it is.
/// Throws std::invalid_argument naming the op when the graph cannot be
/// split so: heads, kv heads or the MLP width not divisible by `tp`, or an
/// op that needs every head at once (a norm over all heads together, as
/// OLMo 2's q and k norms).
Graph shardTensorParallel(const Graph &graph, int tp);

/// The part of parameter `spec` (of the sharded graph) that
/// tensor-parallel rank `rank` of `tp` holds: rank * spec.tpParts / tp.
int tpPartOf(const ParamSpec &spec, int rank, int tp);

/// Rank `rank`'s part of the whole parameter `whole`, `spec` being the
/// parameter of the sharded graph (its shape is one part). A parameter that
/// is not split is returned whole.
std::vector<float> shardOf(const ParamSpec &spec, const std::vector<float> &whole,
                           int rank, int tp);

/// The whole parameter from its spec.tpParts parts, in order (the inverse
/// of shardOf); a parameter that is not split is parts[0].
std::vector<float> unshard(const ParamSpec &spec,
                           const std::vector<std::vector<float>> &parts);

} // namespace s1f::rt

#endif // SEQ1F1B_RUNTIME_TENSOR_PARALLEL_H
