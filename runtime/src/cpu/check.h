//===- check.h - Argument checks of the CPU kernels -------------*- C++ -*-===//
//
// Kernels validate their shapes and indices once per call (never per element)
// and throw, so the C ABI layer can turn a bad call into an error message
// instead of a memory corruption.
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_RUNTIME_CPU_CHECK_H
#define SEQ1F1B_RUNTIME_CPU_CHECK_H

#include <stdexcept>
#include <string>

#define S1F_CHECK(cond, msg)                                                   \
  do {                                                                         \
    if (!(cond))                                                               \
      throw std::invalid_argument(std::string(__FILE__) + ":" +                \
                                  std::to_string(__LINE__) + ": " + (msg));    \
  } while (0)

#endif // SEQ1F1B_RUNTIME_CPU_CHECK_H
