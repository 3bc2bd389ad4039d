//===- TestUtil.h - Helpers for the CPU kernel tests ------------*- C++ -*-===//
//
// Random inputs (never zeros), central finite differences in fp64, and
// tolerance checks shared by the kernel tests, and the message of an
// expected std::invalid_argument.
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_UNITTESTS_RUNTIME_TESTUTIL_H
#define SEQ1F1B_UNITTESTS_RUNTIME_TESTUTIL_H

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace s1f::rt::cpu::test {

using Vec = std::vector<double>;

/// The message of the std::invalid_argument `f` throws; empty if none.
inline std::string invalidArgumentOf(const std::function<void()> &f) {
  try {
    f();
  } catch (const std::invalid_argument &e) {
    return e.what();
  }
  return "";
}

/// A seeded generator per test: reproducible, different per call site.
class Rng {
public:
  explicit Rng(uint32_t seed) : gen_(seed) {}
  Vec uniform(size_t n, double lo = -1.0, double hi = 1.0) {
    std::uniform_real_distribution<double> dist(lo, hi);
    Vec v(n);
    for (double &x : v)
      x = dist(gen_);
    return v;
  }
  std::vector<int32_t> ints(size_t n, int32_t lo, int32_t hi) {
    std::uniform_int_distribution<int32_t> dist(lo, hi);
    std::vector<int32_t> v(n);
    for (int32_t &x : v)
      x = dist(gen_);
    return v;
  }

private:
  std::mt19937 gen_;
};

inline double dot(const Vec &a, const Vec &b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i)
    s += a[i] * b[i];
  return s;
}

template <typename T> std::vector<T> cast(const Vec &v) {
  return std::vector<T>(v.begin(), v.end());
}

template <typename T> Vec toDouble(const std::vector<T> &v) {
  return Vec(v.begin(), v.end());
}

inline Vec minus(const Vec &a, const Vec &b) {
  Vec r(a.size());
  for (size_t i = 0; i < a.size(); ++i)
    r[i] = a[i] - b[i];
  return r;
}

/// Elementwise |a - b| <= atol + rtol * max(|a|, |b|).
inline void expectClose(const Vec &actual, const Vec &expected,
                        const std::string &what, double rtol = 1e-6,
                        double atol = 1e-8) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  int reported = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double tol =
        atol + rtol * std::max(std::abs(actual[i]), std::abs(expected[i]));
    if (std::abs(actual[i] - expected[i]) > tol && reported++ < 5)
      ADD_FAILURE() << what << "[" << i << "]: " << actual[i] << " vs "
                    << expected[i];
  }
}

/// max |a - b| / max |b|: the fp32-vs-fp64 agreement measure.
inline double relMaxError(const Vec &a, const Vec &b) {
  double err = 0, ref = 1e-30;
  for (size_t i = 0; i < a.size(); ++i) {
    err = std::max(err, std::abs(a[i] - b[i]));
    ref = std::max(ref, std::abs(b[i]));
  }
  return err / ref;
}

/// Central-difference gradient of loss() with respect to every element of x.
inline Vec numericGrad(Vec &x, const std::function<double()> &loss,
                       double h = 1e-5) {
  Vec g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + h;
    const double up = loss();
    x[i] = saved - h;
    const double down = loss();
    x[i] = saved;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

/// Checks an analytic gradient against central differences.
inline void expectGradient(Vec &x, const Vec &analytic,
                           const std::function<double()> &loss,
                           const std::string &what) {
  expectClose(analytic, numericGrad(x, loss), "d" + what);
}

} // namespace s1f::rt::cpu::test

#endif // SEQ1F1B_UNITTESTS_RUNTIME_TESTUTIL_H
