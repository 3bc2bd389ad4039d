//===- Timeline.h - Pictures of a simulated schedule --------------*- C++ -*-===//
#pragma once

#include "seq1f1b/Schedule/Simulate.h"

#include <string>

namespace seq1f1b::schedule {

/// Chrome trace JSON (chrome://tracing, ui.perfetto.dev): one process, one
/// thread per rank, an "X" event per action named like "F1.2" (kind,
/// micro-batch, chunk) with args stage/microbatch/chunk. Times in us.
std::string chromeTraceJson(const SimulationResult &result);

struct SvgOptions {
  std::string title; ///< Empty: "<kind>  P=.. V=.. M=.. N=..  bubble ..%".
  int width = 1200;  ///< Pixels.
};

/// An SVG timeline: one row per rank, one box per action colored by micro-
/// batch; F solid, B a darker shade, I darker and hatched, W a light tint
/// with a dashed outline; box labels (e.g. "F1.2", or just the chunk) where
/// they fit; a time axis, a legend and a title.
std::string timelineSvg(const SimulationResult &result,
                        const SvgOptions &options = {});

} // namespace seq1f1b::schedule
