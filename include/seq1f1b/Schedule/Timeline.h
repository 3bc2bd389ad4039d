//===- Timeline.h - Pictures of a simulated schedule --------------*- C++ -*-===//
#pragma once

#include "seq1f1b/Schedule/Simulate.h"

#include <string>
#include <vector>

namespace seq1f1b::schedule {

/// Chrome trace JSON (chrome://tracing, ui.perfetto.dev): one process, one
/// thread per rank, an "X" event per action named like "F1.2" (kind,
/// micro-batch, chunk) with args stage/microbatch/chunk. Times in us.
std::string chromeTraceJson(const SimulationResult &result);

struct SvgOptions {
  std::string title; ///< Empty: "<kind>  P=.. V=.. M=.. N=..  bubble ..%".
  int width = 1200;  ///< Pixels.
  /// Shared scales, so that pictures of several plans compare at a glance:
  /// the time axis's span (seconds; 0: the makespan) and the bytes at the
  /// top of a memory strip (0: the largest peak).
  double timeSpan = 0, memoryScale = 0;
  double memoryLimit = 0; ///< A GPU's memory, drawn as a line (0: none).
};

/// An SVG timeline: one row per rank, one box per action colored by micro-
/// batch; F solid, B a darker shade, I darker and hatched, W a light tint
/// with a dashed outline; box labels (e.g. "F1.2", or just the chunk) where
/// they fit; a time axis, a legend and a title. With a memory model
/// (result.hasMemory), a strip per rank below shows its live bytes over
/// time, weights and optimizer state apart from activations and KV caches,
/// with its peak.
std::string timelineSvg(const SimulationResult &result,
                        const SvgOptions &options = {});

/// One parallel layout of a cluster with its best plan, for layoutChartSvg.
struct LayoutPoint {
  std::string layout;         ///< e.g. "tp 1 x cp 8 x P 4 x dp 1"
  std::string plan;           ///< e.g. "seq1f1b N=4"
  double tokensPerSecond = 0; ///< per GPU
  double peakBytes = 0;       ///< the largest over the ranks
  std::string schedule;       ///< the plan's kind, e.g. "seq1f1b": its color
};

/// The layouts whose plans fit in `memoryLimit` bytes and that no other such
/// layout beats on both memory and speed, by growing peak: the trade-off
/// between the two. Indices into `points`.
std::vector<size_t> layoutFrontier(const std::vector<LayoutPoint> &points,
                                   double memoryLimit);

/// A scatter of layouts: peak memory per GPU across, tokens/s per GPU up,
/// a color per schedule (with a legend), the GPU's memory as a red line
/// with the layouts beyond it hollow. The frontier (layoutFrontier) is
/// joined, numbered, and listed under the plot with each layout's plan; the
/// fastest layout that fits is ringed.
std::string layoutChartSvg(const std::vector<LayoutPoint> &points,
                           double memoryLimit, const std::string &title);

} // namespace seq1f1b::schedule
