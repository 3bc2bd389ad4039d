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
//  * the vocabulary is split too, when T divides it (Megatron's
//    vocab-parallel embedding, head and cross-entropy): rank t holds rows
//    [t*V/T, (t+1)*V/T) of the embedding table (tokens elsewhere give zero
//    rows, and a tp_reduce sums them) and of the head, whose logits the
//    cross-entropy reads split, summing row maxima, exponentials and the
//    targets' logits over the ranks;
//  * a mixture of experts splits each expert's width (Megatron's expert
//    tensor parallelism): rank t holds the same slice of every expert's
//    gate and up rows and down columns (ParamSpec::tpGroups), the router
//    whole; a tp_copy stands before it and a tp_reduce after it, and its
//    backward sums the routing weights' gradients over the ranks (moe.h);
//  * a norm over all heads at once (OLMo 2's q and k norms) sums its
//    squares over the ranks, each holding its features' part of the weight;
//  * everything else (norms, residual adds, position embeddings) runs whole
//    on every rank on the same numbers, and so makes the same gradients
//    there, except a per-head norm weight, which sees only its
//    rank's heads: its gradient is summed over the ranks, as is a kv
//    head's over the ranks that share it (ParamSpec::tpPartialGrad).
// Parameters keep their names and order; shardOf cuts a whole parameter
// into a rank's part and unshard puts the parts together again.
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_RUNTIME_TENSOR_PARALLEL_H
#define SEQ1F1B_RUNTIME_TENSOR_PARALLEL_H

#include "seq1f1b/runtime/communicator.h"
#include "seq1f1b/runtime/cpu_kernels.h"
#include "seq1f1b/runtime/graph.h"

#include <vector>

namespace s1f::rt {

/// The graph of one of `tp` tensor-parallel ranks (the same for all of
/// them: only their parts of the parameters differ). A stage cut
/// (Graph::stages) is carried over. `tp` = 1 returns `graph` as it is.
/// Throws std::invalid_argument naming the op when the graph cannot be
/// split so: heads, kv heads, the MLP or experts' width not divisible by
/// `tp`, or a
/// norm over all kv heads that ranks share.
///
/// With `sequenceParallel` (Megatron's --sequence-parallel), the values
/// between the tensor-parallel regions (the residual stream, the norms,
/// position embeddings) hold only the rank's part of the tokens
/// (Graph::sequenceSplit, contextParallelPart of the unit's tokens): a
/// tp_copy then gathers the tokens and its backward sums and scatters
/// them, a tp_reduce sums and scatters and its backward gathers, and the
/// weights those values meet (norms, position embeddings, row-parallel
/// biases) get a share of their gradient from each rank. It needs the
/// vocabulary split (T dividing it).
Graph shardTensorParallel(const Graph &graph, int tp,
                          bool sequenceParallel = false);

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

/// RMSNorm of rows whose D features are split over `comm`: `x` [N, D] are
/// this rank's, `gamma` [D] its part of the weight, the statistics summed
/// over the ranks (whole rows of `wholeD` features). Writes y and rstd.
void splitRmsNormFwd(const float *x, const float *gamma, float *y, float *rstd,
                     int64_t N, int64_t D, int64_t wholeD, double eps,
                     Communicator &comm, const Tag &tag);
/// Its backward: dx (if not null; then sums over `comm`) and adds dgamma
/// (if not null).
void splitRmsNormBwd(const float *x, const float *gamma, const float *rstd,
                     const float *dy, float *dx, float *dgamma, int64_t N,
                     int64_t D, int64_t wholeD, Communicator &comm,
                     const Tag &tag);

/// Cross-entropy of logits split by vocabulary: `logits` [N, V] are this
/// rank's columns [first, first + V) of the whole logits. Sums over `comm`
/// (every rank calls it with the same targets; `tag` is reused in turn).
/// Writes each row's log-sum-exp over the whole vocabulary and returns the
/// sum of token losses and the targets counted (the same on every rank).
cpu::LossSum vocabParallelCrossEntropyFwd(const float *logits,
                                          const int32_t *targets, float *lse,
                                          int64_t N, int64_t V, int64_t first,
                                          Communicator &comm, const Tag &tag);
/// Its backward, without communication: the softmax's columns of this rank
/// less the one-hot target, times `scale`; ignored rows (target < 0) zero.
void vocabParallelCrossEntropyBwd(const float *logits, const int32_t *targets,
                                  const float *lse, float *dlogits, int64_t N,
                                  int64_t V, int64_t first, float scale);

} // namespace s1f::rt

#endif // SEQ1F1B_RUNTIME_TENSOR_PARALLEL_H
