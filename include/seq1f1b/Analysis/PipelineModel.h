//===- PipelineModel.h - costs of stages and chunks for the scheduler -----===//
//
// Bridges the model graph and the schedule library: where the graph may be
// cut into stages, how to cut it into balanced stages, and what one (stage,
// chunk) unit costs in time and memory on a given GPU.
//
//===----------------------------------------------------------------------===//
#ifndef SEQ1F1B_ANALYSIS_PIPELINEMODEL_H
#define SEQ1F1B_ANALYSIS_PIPELINEMODEL_H

#include "seq1f1b/Analysis/ModelCost.h"
#include "seq1f1b/Schedule/Partition.h"
#include "seq1f1b/Schedule/Simulate.h"

#include "mlir/IR/Operation.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/Support/Error.h"

namespace seq1f1b {

/// The ops of a stage (or of the whole model), in program order.
using OpList = llvm::SmallVector<mlir::Operation *>;

/// The ops of `model`'s body, without the terminator.
OpList modelOps(mlir::func::FuncOp model);

/// Positions p (0 < p < ops.size()) where the graph may be cut between
/// ops[p-1] and ops[p]: exactly one activation crosses (the residual stream).
/// Function arguments (token ids, targets) are available to every stage and
/// parameter reads are repeated where needed, so neither counts. An
/// activation from before the list (a stage's input) crosses from its start
/// to its last use.
llvm::SmallVector<unsigned> legalCutPoints(const OpList &ops);

/// Cuts `ops` into `stages` contiguous groups at legal cut points minimizing
/// the largest group's training FLOPs over the full sequence (exact dynamic
/// programming; embedding and LM head counted). Returns stages+1 op indices.
/// Emits an error at `loc` when there are fewer cut points than needed.
mlir::FailureOr<llvm::SmallVector<unsigned>>
partitionIntoStages(const OpList &ops, int64_t seqLen, int64_t stages,
                    mlir::Location loc);

/// Op index ranges [first, last) of a stage.
using OpRanges = llvm::SmallVector<std::pair<unsigned, unsigned>>;

/// The transformer layers of each stage (the model's ops, in order), as op
/// index ranges of that stage: the pieces between legal cut points, two per
/// layer (attention and MLP halves), grouped by the attention op they belong
/// to; a stage cut inside a layer leaves each stage its part. The embedding
/// (the first stage's first piece) and the head (the last stage's last
/// piece) are not layers.
llvm::SmallVector<OpRanges> layerRanges(llvm::ArrayRef<OpList> stages);

/// Training FLOPs (forward + backward) of `ops` on the tokens [begin, end),
/// for balancing chunks. Every llm op's cost has the form
/// a*(s*e - s^2/2) + b*s, so the sum is fitted from two evaluations and
/// checked on a third; if the check fails (an op of another form) the
/// returned function sums the ops on every call instead.
schedule::RangeCost trainingFlopsCost(OpList ops, int64_t seqLen);

/// The collectives Megatron's tensor + sequence parallelism runs in the
/// forward of `ops` on a chunk of `chunkLen` tokens: an all-gather of the
/// input of each column-parallel linear (one per distinct input), a
/// reduce-scatter of the output of each row-parallel linear (a linear whose
/// input comes from a column-parallel one) and of each vocabulary-parallel
/// embedding. `bytes` sums the full (gathered) tensors; each GPU of a group
/// of t sends and receives (t-1)/t of them. The backward runs the same
/// collectives transposed. Norms, residual adds and position embeddings are
/// sequence-parallel and need none; the vocabulary-parallel cross-entropy's
/// few bytes per token are not counted.
struct CollectiveTraffic {
  int64_t collectives = 0;
  double bytes = 0;
};
CollectiveTraffic tensorParallelTraffic(llvm::ArrayRef<mlir::Operation *> ops,
                                        int64_t chunkLen);

/// A GPU as the simulator sees it.
struct GpuProfile {
  std::string name = "h100";
  double peakFlops = 989e12;     ///< dense bf16 tensor-core FLOP/s
  double matmulEfficiency = 0.7; ///< fraction of peak GEMMs reach
  double attentionEfficiency = 0.55;
  double memoryBandwidth = 3.35e12; ///< HBM bytes/s for memory-bound ops
  double linkBandwidth = 25e9;      ///< stage-to-stage bytes/s
  double linkLatency = 10e-6;       ///< seconds per transfer
  /// Bus bandwidth (bytes/s) of an all-gather or reduce-scatter between the
  /// GPUs of one node, as NCCL's tests report it: about 80% of NVLink 4's
  /// 450 GB/s per direction on the H100 and H200, of NVLink 3's 300 GB/s on
  /// the A100. Tensor parallelism stays within a node.
  double tpBandwidth = 360e9;
  double tpLatency = 10e-6; ///< seconds per collective
  int64_t gpusPerNode = 8;  ///< the largest tensor-parallel group
  /// Memory per GPU: 80 GiB for the H100 and the A100 80GB, 140 GiB for the
  /// H200 (143,771 MiB, as its driver reports it).
  double memoryBytes = 80.0 * (1ull << 30);
  std::string memoryName = "80GiB";
};
/// "h100", "h200", "a100"; nullopt for an unknown name.
std::optional<GpuProfile> lookupGpuProfile(llvm::StringRef name);

/// A built-in profile by name, or (a name ending in .json) one read from a
/// file, every key optional but "name", the H100's values otherwise:
///   {"name": "b200", "peak_tflops": 2250, "matmul_efficiency": 0.7,
///    "attention_efficiency": 0.55, "memory_bandwidth_gbps": 8000,
///    "link_bandwidth_gbps": 50, "link_latency_us": 10, "memory_gib": 180,
///    "tp_bandwidth_gbps": 720, "tp_latency_us": 10, "gpus_per_node": 8}
/// The error names the file and the key (unknown keys too: typos).
llvm::Expected<GpuProfile> gpuProfile(llvm::StringRef nameOrFile);

/// How memory is counted.
struct MemoryOptions {
  /// Tensor parallel degree: weights, activations and FLOPs divide by it
  /// (Megatron tensor + sequence parallelism), and its collectives are timed
  /// (tensorParallelTraffic).
  int64_t tensorParallel = 1;
  /// Context parallel degree (Megatron's ring attention): every chunk's
  /// tokens split over cp GPUs, load-balanced, so activations, K/V and FLOPs
  /// divide by it; the K/V of the prefix circulate around the ring (and dK,
  /// dV back in the backward), overlapped with the attention.
  int64_t contextParallel = 1;
  /// Data-parallel ranks the optimizer state (fp32 master weights, Adam
  /// moments) is sharded over, as Megatron's distributed optimizer does; 1
  /// keeps all of it on every rank.
  int64_t optimizerShards = 1;
  /// Expert-parallel degree (Megatron's --expert-model-parallel-size, taken
  /// from the data-parallel ranks): a mixture of experts' expert weights
  /// divide by it instead of by tensorParallel, their optimizer state is
  /// sharded over optimizerShards / expertParallel ranks, and each routed
  /// token crosses an all-to-all to its expert and back, forward and
  /// backward. Routing is taken as balanced.
  int64_t expertParallel = 1;
  /// With expert parallelism, how unevenly the router spreads tokens: the
  /// busiest expert-parallel rank gets this many times its even share of
  /// the routed copies (>= 1), and sets the pace. Its experts' GEMMs, its
  /// all-to-all bytes and its experts' saved activations scale by it.
  /// Without expert parallelism a GPU runs all its stage's experts, and how
  /// the tokens spread over them does not change its work.
  double expertImbalance = 1;
  /// Full activation recomputation, Megatron's uniform method with one layer
  /// per checkpoint: a layer's forward keeps only its input, and its backward
  /// runs the layer's forward again first, holding that layer's activations
  /// meanwhile. Layers are PipelineCostModel::layers; the embedding and the
  /// head keep what they save. K/V caches stay for the chunks after (N > 1).
  bool recompute = false;
};

/// A parallel layout of a job: tensor x context x pipeline x data parallel
/// GPUs. Megatron orders ranks tensor-parallel fastest, then context, then
/// data parallel, so those groups stay inside a node while tp * cp * dp fits.
struct ParallelLayout {
  int64_t tensorParallel = 1, contextParallel = 1, stages = 1, dataParallel = 1;
  /// Megatron's --use-distributed-optimizer: optimizer state sharded over
  /// the dp x cp ranks, gradients reduce-scattered and the updated 16-bit
  /// weights all-gathered instead of all-reduced gradients.
  bool distributedOptimizer = false;
  /// Of the data-parallel ranks, how many split the experts (1: none).
  int64_t expertParallel = 1;
  int64_t gpus() const {
    return tensorParallel * contextParallel * stages * dataParallel;
  }
};

/// Seconds a rank holding `weightBytes` of weights and `gradBytes` of fp32
/// gradients spends synchronizing them with its n = dp * cp peers after
/// the pipeline drains: an all-reduce of the gradients, or a reduce-scatter
/// of the gradients plus an all-gather of the weights with the distributed
/// optimizer, each GPU moving (n-1)/n of the bytes, over NVLink (the
/// profile's tp bandwidth) when the group is inside a node and over the
/// network (link bandwidth) otherwise. Not overlapped with the backward
/// (Megatron's --overlap-grad-reduce would hide part of it). 0 for n = 1.
/// With expert parallelism, `expertShare` of the bytes (the experts') syncs
/// in a collective of its own over the n / ep ranks holding the same
/// experts.
double dataParallelSyncSeconds(double weightBytes, double gradBytes,
                               const ParallelLayout &layout,
                               const GpuProfile &gpu, double expertShare = 0);

/// Whether `op` is a weight of a mixture of experts' experts (gate, up or
/// down of an llm.moe), which expert parallelism splits.
bool isExpertWeight(mlir::Operation *op);

/// Everything the schedule simulator needs about one partitioned model:
/// stage op ranges and chunk bounds give per-(stage, chunk) time and memory.
struct PipelineCostModel {
  llvm::SmallVector<OpList> stages;
  llvm::SmallVector<int64_t> chunkBounds; ///< N+1 token positions
  GpuProfile gpu;
  MemoryOptions memory;
  /// Per stage, its layers (layerRanges); read with memory.recompute.
  llvm::SmallVector<OpRanges> layers;

  schedule::UnitCost unitCost(int stage, int chunk) const;
  schedule::ChunkMemory chunkMemory(int stage, int chunk) const;
  schedule::StaticMemory staticMemory(int stage) const;
  /// The simulator's model, holding a copy of this one.
  schedule::SimulationModel simulationModel() const;
};

} // namespace seq1f1b

#endif // SEQ1F1B_ANALYSIS_PIPELINEMODEL_H
