//===- lr_schedule.cpp - The learning rate of each optimizer step ---------===//

#include "seq1f1b/runtime/lr_schedule.h"

#include <algorithm>
#include <cmath>

namespace s1f::rt {

double LrSchedule::at(int64_t step) const {
  if (warmup > 0 && step <= warmup)
    return peak * double(step) / double(warmup);
  if (decay == Decay::Constant)
    return peak;
  if (step >= decaySteps)
    return min;
  const double r = double(step - warmup) / double(decaySteps - warmup);
  const double coeff =
      decay == Decay::Linear ? 1 - r : 0.5 * (1 + std::cos(M_PI * r));
  return min + (peak - min) * coeff;
}

std::string LrSchedule::check() const {
  if (!(peak > 0) || !(min >= 0) || min > peak)
    return "the learning rates need 0 <= min <= peak and peak > 0";
  if (warmup < 0)
    return "the warmup must not be negative";
  if (decay != Decay::Constant && decaySteps <= warmup)
    return "the decay must end after the warmup (decay steps " +
           std::to_string(decaySteps) + ", warmup " + std::to_string(warmup) +
           ")";
  return "";
}

bool parseDecay(const std::string &name, LrSchedule::Decay &decay) {
  if (name == "constant")
    decay = LrSchedule::Decay::Constant;
  else if (name == "linear")
    decay = LrSchedule::Decay::Linear;
  else if (name == "cosine")
    decay = LrSchedule::Decay::Cosine;
  else
    return false;
  return true;
}

} // namespace s1f::rt
