//===- Result.h - Error reporting without exceptions -------------*- C++ -*-===//
//
// The schedule library is linked into MLIR passes, the planner and the
// runtime, so it never throws: fallible functions return a Status or a
// Result<T> that carries a human-readable message on failure.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace seq1f1b::schedule {

/// A failure message; converts into both Status and Result<T>.
struct Error {
  std::string message;
};

/// Success, or a failure with a message.
struct Status {
  std::string error; ///< Empty on success.

  Status() = default;
  Status(Error e) : error(std::move(e.message)) {}

  bool ok() const { return error.empty(); }
  explicit operator bool() const { return ok(); }
};

/// A value, or a failure with a message.
template <class T> struct Result {
  std::optional<T> value;
  std::string error; ///< Set iff !value.

  Result(T v) : value(std::move(v)) {}
  Result(Error e) : error(std::move(e.message)) {}

  bool ok() const { return value.has_value(); }
  explicit operator bool() const { return ok(); }
  T &operator*() { return *value; }
  const T &operator*() const { return *value; }
  T *operator->() { return &*value; }
  const T *operator->() const { return &*value; }
};

} // namespace seq1f1b::schedule
