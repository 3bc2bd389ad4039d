//===- EmbeddingTest.cpp - Token and position embeddings ------------------===//

#include "TestUtil.h"

#include "seq1f1b/runtime/cpu_kernels.h"

using namespace s1f::rt::cpu;
using namespace s1f::rt::cpu::test;

namespace {

TEST(Embedding, GathersRowsAndScatterAddsRepeatedIds) {
  Rng rng(1);
  const int64_t V = 5, D = 3, N = 8; // 8 tokens over 5 ids: repeats
  const std::vector<int32_t> ids = rng.ints(N, 0, V - 1);
  Vec table = rng.uniform(V * D);
  const Vec R = rng.uniform(N * D);
  auto loss = [&] {
    Vec out(N * D);
    embedding_fwd(ids.data(), table.data(), out.data(), N, V, D);
    return dot(R, out);
  };
  Vec out(N * D);
  embedding_fwd(ids.data(), table.data(), out.data(), N, V, D);
  for (int64_t t = 0; t < N; ++t)
    for (int64_t j = 0; j < D; ++j)
      EXPECT_EQ(out[t * D + j], table[ids[t] * D + j]);

  const Vec g0 = rng.uniform(V * D); // dtable accumulates
  Vec dtable = g0;
  embedding_bwd(ids.data(), R.data(), dtable.data(), N, V, D);
  expectGradient(table, minus(dtable, g0), loss, "table");
}

TEST(Embedding, RejectsOutOfRangeIds) {
  const std::vector<int32_t> ids = {0, 4};
  std::vector<float> table(4 * 2, 1.0f), out(2 * 2);
  EXPECT_THROW(embedding_fwd(ids.data(), table.data(), out.data(), 2, 4, 2),
               std::invalid_argument);
}

TEST(PosEmbedding, TakesRowsAtTheChunkPositions) {
  Rng rng(2);
  const int64_t B = 2, S = 3, start = 2, Pmax = 7, D = 4;
  Vec table = rng.uniform(Pmax * D);
  const Vec R = rng.uniform(B * S * D);
  Vec out(B * S * D);
  pos_embedding_fwd(table.data(), out.data(), B, S, start, Pmax, D);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s < S; ++s)
      for (int64_t j = 0; j < D; ++j)
        EXPECT_EQ(out[(b * S + s) * D + j], table[(start + s) * D + j]);

  auto loss = [&] {
    Vec o(B * S * D);
    pos_embedding_fwd(table.data(), o.data(), B, S, start, Pmax, D);
    return dot(R, o);
  };
  const Vec g0 = rng.uniform(Pmax * D);
  Vec dtable = g0;
  pos_embedding_bwd(R.data(), dtable.data(), B, S, start, Pmax, D);
  expectGradient(table, minus(dtable, g0), loss, "table");
}

TEST(PosEmbedding, RejectsPositionsPastTheTable) {
  std::vector<float> table(4 * 2, 1.0f), out(3 * 2);
  EXPECT_THROW(pos_embedding_fwd(table.data(), out.data(), 1, 3, 2, 4, 2),
               std::invalid_argument);
}

TEST(Embedding, Fp32MatchesFp64) {
  Rng rng(3);
  const int64_t V = 7, D = 5, B = 2, S = 4, Pmax = 9, start = 3;
  const std::vector<int32_t> ids = rng.ints(B * S, 0, V - 1);
  const Vec table = rng.uniform(V * D), pos = rng.uniform(Pmax * D);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    std::vector<T> t = cast<T>(table), p = cast<T>(pos);
    std::vector<T> x(B * S * D), y(B * S * D);
    embedding_fwd(ids.data(), t.data(), x.data(), B * S, V, D);
    pos_embedding_fwd(p.data(), y.data(), B, S, start, Pmax, D);
    add_fwd(x.data(), y.data(), x.data(), B * S * D);
    return toDouble(x);
  };
  EXPECT_LT(relMaxError(run(float()), run(double())), 1e-6);
}

} // namespace
