//===- lr_schedule.h - The learning rate of each optimizer step -*- C++ -*-===//
//
// Megatron's schedule: a linear warmup to the peak rate, then a decay to the
// minimum (linear or cosine) that ends at step `decaySteps`, warmup
// included; constant afterwards.
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_RUNTIME_LR_SCHEDULE_H
#define SEQ1F1B_RUNTIME_LR_SCHEDULE_H

#include <cstdint>
#include <string>

namespace s1f::rt {

struct LrSchedule {
  enum class Decay { Constant, Linear, Cosine };
  double peak = 1e-3;
  double min = 0;
  int64_t warmup = 0;     ///< steps of linear warmup
  int64_t decaySteps = 0; ///< the step the decay reaches `min` at
  Decay decay = Decay::Constant;

  /// The rate of optimizer step `step` (1-based): peak * step / warmup
  /// during the warmup; then, for the linear and cosine decays, from peak
  /// to min as r = (step - warmup) / (decaySteps - warmup) goes from 0 to 1
  /// (cosine: min + (peak - min) (1 + cos(pi r)) / 2); min after.
  double at(int64_t step) const;
  /// Empty, or what is wrong (negative values, min above peak, a decay that
  /// ends before the warmup does).
  std::string check() const;
};

/// "constant", "linear", "cosine"; false for another name.
bool parseDecay(const std::string &name, LrSchedule::Decay &decay);

} // namespace s1f::rt

#endif // SEQ1F1B_RUNTIME_LR_SCHEDULE_H
