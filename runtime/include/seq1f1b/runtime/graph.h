//===- graph.h - The runtime's model graph -----------------------*- C++ -*-===//
//
// A decoder LLM as the executor sees it: parameters and an ordered op list
// that mirrors the llm dialect ops. Values are float activations [B, S, feat]
// identified by ids (SSA: each produced by exactly one op); only the
// per-token feature size is part of the graph, B and S come with the batch.
// Token ids and targets are not values: embedding and cross_entropy read them
// from the batch, which every stage has.
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_RUNTIME_GRAPH_H
#define SEQ1F1B_RUNTIME_GRAPH_H

#include "seq1f1b/runtime/rope_scaling.h"

#include <cstdint>
#include <string>
#include <vector>

namespace s1f::rt {

enum class InitKind { Normal, Zeros, Ones };

struct ParamSpec {
  std::string name;
  std::vector<int64_t> shape;
  InitKind init = InitKind::Normal;
  double std = 0.02; ///< Only for Normal.
  /// Tensor parallelism (tensor_parallel.h): the dimension of the whole
  /// parameter that is split into `tpParts` equal parts (-1: none; `shape`
  /// is one part). Tensor-parallel rank t of T holds part t * tpParts / T:
  /// with fewer parts than ranks (kv heads fewer than the ranks), several
  /// ranks hold each part.
  int tpDim = -1;
  int tpParts = 1;
  /// The split dimension holds `tpGroups` equal groups (a mixture of
  /// experts' stacked experts), each cut into tpParts: a part is every
  /// group's slice.
  int tpGroups = 1;
  /// Expert parallelism: a mixture of experts' stacked weight whose experts
  /// are split over `epParts` ranks, expert-parallel rank q holding the q-th
  /// of epParts equal blocks of rows (`shape` is one block).
  int epParts = 1;
  /// Each tensor-parallel rank holding a part (or the whole parameter)
  /// computes only some of its gradient (a per-head norm weight, each rank
  /// having some heads; a kv head shared by ranks with different query
  /// heads): the holders of a part sum their gradients before the optimizer.
  bool tpPartialGrad = false;

  int64_t numel() const;
};

enum class OpKind {
  Embedding,         ///< params [table V x D]; reads token ids; scale
  PositionEmbedding, ///< params [table Pmax x D]; absolute positions
  LayerNorm,         ///< in [x]; params [gamma, beta]; eps
  RmsNorm,           ///< in [x]; params [gamma]; eps
  Linear,            ///< in [x]; params [W out x in] or [W, bias]
  Rope,              ///< in [x]; heads, theta, rotary_dim (rotate-half)
  Attention,         ///< in [q, k, v]; heads, kv_heads; causal over prefix
  Gelu,              ///< in [x]; exact (erf) or tanh form
  Silu,              ///< in [x]
  Swiglu,            ///< in [gate, up]
  Geglu,             ///< in [gate, up]; GELU (tanh form) gate
  Add,               ///< in [a, b]
  Softcap,           ///< in [x]; softcap c: c tanh(x / c)
  Scale,             ///< in [x]; scale s: s x
  SigmoidGate, ///< in [value, gate]; params [w 1 x H]: sigmoid(gate w) value
  Moe, ///< in [x]; params [router E x D, gate E*F x D, up E*F x D,
       ///< down E*D x F]; top_k, normalized (moe.h)
  CrossEntropy,      ///< in [logits]; reads targets; no output value
  // Tensor parallelism's collectives (Megatron's f and g), inserted by
  // shardTensorParallel; never in an imported graph.
  TpCopy,   ///< in [x]: identity; backward sums the gradient over the ranks
  TpReduce, ///< in [x part]: sum over the ranks (+ bias); backward identity
};

/// "embedding", "position_embedding", ... (the llm dialect's op names).
const char *opKindName(OpKind kind);
/// Returns false if `name` is not an op name.
bool parseOpKind(const std::string &name, OpKind &kind);

struct Op {
  OpKind kind;
  std::vector<int> inputs; ///< value ids
  std::vector<int> params; ///< indices into Graph::params
  int output = -1;         ///< value id; -1 for cross_entropy
  int heads = 0;           ///< rope, attention, rms_norm (one per head)
  int kvHeads = 0;         ///< attention
  int window = 0;          ///< attention: sliding window (0: whole prefix)
  double eps = 1e-5;       ///< layer_norm, rms_norm
  double theta = 10000.0;  ///< rope
  int rotaryDim = 0;       ///< rope: dims turned per head (0: all of them)
  RopeScaling ropeScaling; ///< rope: frequencies for a longer context
  bool exact = false;      ///< gelu: x Phi(x) through erf (else tanh form)
  double scale = 1; ///< embedding: rows times it (Gemma: sqrt(D)); scale: s
  double scoreScale = 0;   ///< attention: 0 for 1/sqrt(head_dim)
  double softcap = 0;      ///< attention scores, softcap: c tanh(x / c)
  /// Of a tensor-parallel graph: embedding, cross_entropy: the vocabulary is
  /// split over the ranks, rank t having rows [t*V/T, (t+1)*V/T); rms_norm:
  /// the features it normalizes together (OLMo 2's q and k norms).
  bool tpSplit = false;
  int topK = 0;            ///< moe: experts per token
  bool normalized = false; ///< moe: the chosen experts' weights sum to 1
  /// moe: the coefficient of Megatron's load-balancing loss (moe::Balance),
  /// averaged over the step's micro-batches; 0: none.
  double auxLoss = 0;
};

struct Graph {
  std::vector<ParamSpec> params;
  std::vector<int64_t> valueFeatures; ///< per-token size of each value id
  std::vector<Op> ops;                ///< in execution order
  /// Optional stage cut made by the compiler: K+1 op indices, 0 first and
  /// ops.size() last; stage k runs ops [stages[k], stages[k+1]). Empty: the
  /// runtime cuts the stages itself.
  std::vector<int> stages;
  /// The Hugging Face model_type the graph was imported from ("" unknown):
  /// how its checkpoints name and lay out weights.
  std::string modelType;
  /// The sequence length the importer resolved length-dependent parts for
  /// (LongRoPE, dynamic NTK, windows dropped as no shorter than the
  /// sequence); 0: none.
  int64_t resolvedForSeqLen = 0;
  /// Tensor-parallel ranks the graph is sharded for (shardTensorParallel):
  /// each runs this graph on its part of the parameters and heads.
  int tensorParallel = 1;
  /// Sequence parallelism, by value id (empty: none): the values between
  /// the tensor-parallel regions (residual stream, norms), of which each
  /// tensor-parallel rank holds its part of the tokens.
  std::vector<bool> sequenceSplit;

  /// Index of the parameter called `name`, or -1.
  int paramIndex(const std::string &name) const;
  /// Checks the graph; throws std::invalid_argument naming the op (index
  /// and kind) and the problem: bad value/param ids, a value used before it
  /// is defined or defined twice, shapes that do not fit, a missing or
  /// repeated cross_entropy.
  void validate() const;
};

/// Deterministic initial values of every parameter: parameter i's stream
/// depends only on (seed, its name), so every rank that holds a copy of a
/// (shared) parameter gets the same numbers.
std::vector<std::vector<float>> initParams(const Graph &graph, uint64_t seed);

} // namespace s1f::rt

#endif // SEQ1F1B_RUNTIME_GRAPH_H
