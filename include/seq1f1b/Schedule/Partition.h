//===- Partition.h - Stage partition and sequence chunk split ----*- C++ -*-===//
#pragma once

#include "seq1f1b/Schedule/Result.h"

#include <functional>
#include <utility>
#include <vector>

namespace seq1f1b::schedule {

//===-- Stages --------------------------------------------------------------//

/// Groups k = [boundaries[k], boundaries[k+1]) of the segment list.
struct StagePartition {
  std::vector<int> boundaries; ///< K+1 entries, 0 first, #segments last.
  double maxCost = 0;          ///< Cost of the most expensive group.
};

/// Splits `costs` (one per segment, e.g. per layer) into `stages` contiguous
/// non-empty groups minimizing the largest group cost, exactly (dynamic
/// programming, O(K n^2)). Ties go to the earliest boundaries.
Result<StagePartition> partitionStages(const std::vector<double> &costs,
                                       int stages);

/// What an op is to groupLayers.
enum class LayerOpRole { Other, Attention, Add };

/// The transformer layers of a stage, for full recomputation. `bounds` are
/// its pieces' boundaries (its first op, the cut points where only the
/// residual stream crosses, its end), `roles[i]` says whether op i is an
/// attention or an add. Pieces (two per layer: attention and MLP halves) are
/// grouped by the attention op they follow, counting `attentionsBefore` of
/// the stages before. Not layers: pieces before any attention, the first
/// stage's first piece (the embedding) and the last stage's pieces after its
/// last add (the head: final norm, LM head, loss; a layer ends with its
/// residual add). Returns op ranges [first, last), ascending.
std::vector<std::pair<int, int>>
groupLayers(const std::vector<int> &bounds,
            const std::vector<LayerOpRole> &roles, int attentionsBefore,
            bool firstStage, bool lastStage);

//===-- Sequence chunks -----------------------------------------------------//

/// Cost of the tokens [begin, end) of a sequence, e.g. seconds or FLOPs.
/// Must grow with `end` and shrink with `begin`.
using RangeCost = std::function<double(double begin, double end)>;

/// N chunk lengths summing to `length` with (before rounding) equal cost:
/// solved from the last chunk backwards, each chunk's start found by
/// bisection, the common cost by an outer bisection (for an additive cost
/// that is cost(0, length) / N). Chunk ends are then rounded to multiples of
/// `align` keeping the sum and every chunk non-empty. Errors: N < 1,
/// N > length, align < 1, length < N * align, bad cost values.
Result<std::vector<int>> balanceChunks(int length, int chunks,
                                       const RangeCost &cost, int align = 1);

/// Decoder layer shape for the Seq1F1B paper's FLOPs model.
struct TransformerShape {
  int hidden = 0;  ///< H
  int heads = 0;   ///< h
  int headDim = 0; ///< d
  int ffn = 0;     ///< F
  int layers = 1;
};

/// FLOPs of tokens [begin, end) over all layers, per the paper: per layer,
/// a chunk of s tokens ending at e costs
///   h(4d+3)(s*e - s^2/2) + 8*H*(h*d)*s + 4*H*F*s.
double paperChunkFlops(const TransformerShape &shape, double begin,
                       double end);

/// The paper's computation-wise partition: equal-FLOPs chunks solved in
/// closed form (one quadratic per chunk, last chunk first), rounded like
/// balanceChunks.
Result<std::vector<int>> paperChunkSplit(int length, int chunks,
                                         const TransformerShape &shape,
                                         int align = 1);

//===-- Measured chunk costs -------------------------------------------------//

/// One measurement: a chunk of `length` tokens ending at position `end`
/// took `seconds`.
struct ProfileSample {
  double length;
  double end;
  double seconds;
};

/// seconds = a*(s*e - s^2/2) + b*s + c for a chunk of s tokens ending at e:
/// attention over the prefix, per-token work, and a fixed per-chunk cost.
struct ChunkCostFit {
  double a = 0, b = 0, c = 0;

  double seconds(double length, double end) const {
    return a * (length * end - length * length / 2) + b * length + c;
  }
  /// As a RangeCost for balanceChunks.
  double rangeCost(double begin, double end) const {
    return seconds(end - begin, end);
  }
};

/// Least-squares fit of a, b, c. Errors: fewer than 3 samples, a negative
/// or non-finite value, or samples that do not determine all three (e.g.
/// every chunk the same length and position).
Result<ChunkCostFit> fitChunkCost(const std::vector<ProfileSample> &samples);

} // namespace seq1f1b::schedule
