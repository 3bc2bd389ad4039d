//===- embedding.cpp - Token and learned position embeddings --------------===//

#include "seq1f1b/runtime/cpu_kernels.h"

#include "check.h"

#include <algorithm>

namespace s1f::rt::cpu {
namespace {

void checkIds(const int32_t *ids, int64_t N, int64_t V) {
  for (int64_t t = 0; t < N; ++t)
    S1F_CHECK(ids[t] >= 0 && ids[t] < V, "token id " + std::to_string(ids[t]) +
                                             " outside [0, " +
                                             std::to_string(V) + ")");
}

void checkPositions(int64_t S, int64_t start, int64_t Pmax) {
  S1F_CHECK(start >= 0 && start + S <= Pmax,
            "positions [" + std::to_string(start) + ", " +
                std::to_string(start + S) + ") exceed the table of " +
                std::to_string(Pmax));
}

} // namespace

template <typename T>
void embedding_fwd(const int32_t *ids, const T *table, T *out, int64_t N,
                   int64_t V, int64_t D) {
  checkIds(ids, N, V);
  for (int64_t t = 0; t < N; ++t)
    std::copy_n(table + ids[t] * D, D, out + t * D);
}

template <typename T>
void embedding_bwd(const int32_t *ids, const T *dout, T *dtable, int64_t N,
                   int64_t V, int64_t D) {
  checkIds(ids, N, V);
  // Sequential over tokens: repeated ids add into the same row.
  for (int64_t t = 0; t < N; ++t) {
    T *row = dtable + ids[t] * D;
    const T *g = dout + t * D;
    for (int64_t j = 0; j < D; ++j)
      row[j] += g[j];
  }
}

template <typename T>
void pos_embedding_fwd(const T *table, T *out, int64_t B, int64_t S,
                       int64_t start, int64_t Pmax, int64_t D) {
  checkPositions(S, start, Pmax);
  for (int64_t b = 0; b < B; ++b)
    std::copy_n(table + start * D, S * D, out + b * S * D);
}

template <typename T>
void pos_embedding_bwd(const T *dout, T *dtable, int64_t B, int64_t S,
                       int64_t start, int64_t Pmax, int64_t D) {
  checkPositions(S, start, Pmax);
  T *rows = dtable + start * D;
  for (int64_t b = 0; b < B; ++b) {
    const T *g = dout + b * S * D;
    for (int64_t j = 0; j < S * D; ++j)
      rows[j] += g[j];
  }
}

#define S1F_INSTANTIATE(T)                                                     \
  template void embedding_fwd<T>(const int32_t *, const T *, T *, int64_t,     \
                                 int64_t, int64_t);                            \
  template void embedding_bwd<T>(const int32_t *, const T *, T *, int64_t,     \
                                 int64_t, int64_t);                            \
  template void pos_embedding_fwd<T>(const T *, T *, int64_t, int64_t,         \
                                     int64_t, int64_t, int64_t);               \
  template void pos_embedding_bwd<T>(const T *, T *, int64_t, int64_t,         \
                                     int64_t, int64_t, int64_t);
S1F_INSTANTIATE(float)
S1F_INSTANTIATE(double)

} // namespace s1f::rt::cpu
