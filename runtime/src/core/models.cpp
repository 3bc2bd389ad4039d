//===- models.cpp - GPT-2 and Llama graph builders ------------------------===//

#include "seq1f1b/runtime/models.h"

#include <cmath>

namespace s1f::rt {

namespace {

/// Appends params, values and ops in program order.
class Builder {
public:
  int param(const std::string &name, std::vector<int64_t> shape, InitKind init,
            double std = 0) {
    g.params.push_back({name, std::move(shape), init, std});
    return static_cast<int>(g.params.size()) - 1;
  }
  int op(OpKind kind, std::vector<int> inputs, std::vector<int> params,
         int64_t outFeat) {
    Op o{};
    o.kind = kind;
    o.inputs = std::move(inputs);
    o.params = std::move(params);
    if (outFeat > 0) {
      o.output = static_cast<int>(g.valueFeatures.size());
      g.valueFeatures.push_back(outFeat);
    }
    g.ops.push_back(o);
    return o.output;
  }
  Op &last() { return g.ops.back(); }
  /// Linear layer "<name>.weight" [out, in] (+ "<name>.bias" zeros).
  int linear(const std::string &name, int x, int64_t in, int64_t out,
             double std, bool bias) {
    std::vector<int> ps{param(name + ".weight", {out, in}, InitKind::Normal, std)};
    if (bias)
      ps.push_back(param(name + ".bias", {out}, InitKind::Zeros));
    return op(OpKind::Linear, {x}, ps, out);
  }
  Graph take() {
    g.validate();
    return std::move(g);
  }

private:
  Graph g;
};

} // namespace

Graph buildGpt(const GptConfig &c) {
  Builder b;
  const int64_t H = c.hidden;
  // GPT-2 scales the residual projections by 1/sqrt(2 * layers).
  const double projStd = c.initStd / std::sqrt(2.0 * c.layers);
  int wte = b.param("wte", {c.vocab, H}, InitKind::Normal, c.initStd);
  int tok = b.op(OpKind::Embedding, {}, {wte}, H);
  int wpe = b.param("wpe", {c.positions, H}, InitKind::Normal, 0.01);
  int pos = b.op(OpKind::PositionEmbedding, {}, {wpe}, H);
  int x = b.op(OpKind::Add, {tok, pos}, {}, H);
  auto layerNorm = [&](const std::string &name, int in) {
    int w = b.param(name + ".weight", {H}, InitKind::Ones);
    int bias = b.param(name + ".bias", {H}, InitKind::Zeros);
    int y = b.op(OpKind::LayerNorm, {in}, {w, bias}, H);
    b.last().eps = c.eps;
    return y;
  };
  for (int l = 0; l < c.layers; ++l) {
    const std::string p = "h." + std::to_string(l) + ".";
    int h = layerNorm(p + "ln_1", x);
    int q = b.linear(p + "attn.q", h, H, H, c.initStd, true);
    int k = b.linear(p + "attn.k", h, H, H, c.initStd, true);
    int v = b.linear(p + "attn.v", h, H, H, c.initStd, true);
    int a = b.op(OpKind::Attention, {q, k, v}, {}, H);
    b.last().heads = b.last().kvHeads = c.heads;
    int o = b.linear(p + "attn.c_proj", a, H, H, projStd, true);
    x = b.op(OpKind::Add, {x, o}, {}, H);
    h = layerNorm(p + "ln_2", x);
    int f = b.linear(p + "mlp.c_fc", h, H, c.ffn, c.initStd, true);
    int g = b.op(OpKind::Gelu, {f}, {}, c.ffn);
    int m = b.linear(p + "mlp.c_proj", g, c.ffn, H, projStd, true);
    x = b.op(OpKind::Add, {x, m}, {}, H);
  }
  int h = layerNorm("ln_f", x);
  int logits = b.op(OpKind::Linear, {h}, {wte}, c.vocab); // tied head
  b.op(OpKind::CrossEntropy, {logits}, {}, 0);
  return b.take();
}

Graph buildLlama(const LlamaConfig &c) {
  Builder b;
  const int64_t H = c.hidden, hd = c.hidden / c.heads, kv = hd * c.kvHeads;
  auto rmsNorm = [&](const std::string &name, int in) {
    int w = b.param(name + ".weight", {H}, InitKind::Ones);
    int y = b.op(OpKind::RmsNorm, {in}, {w}, H);
    b.last().eps = c.eps;
    return y;
  };
  auto headNorm = [&](const std::string &name, int in, int64_t feat,
                      int heads) {
    int w = b.param(name + ".weight", {hd}, InitKind::Ones);
    int y = b.op(OpKind::RmsNorm, {in}, {w}, feat);
    b.last().eps = c.eps;
    b.last().heads = heads;
    return y;
  };
  auto rope = [&](int in, int64_t feat, int heads) {
    int y = b.op(OpKind::Rope, {in}, {}, feat);
    b.last().heads = heads;
    b.last().theta = c.theta;
    return y;
  };
  int emb = b.param("embed_tokens", {c.vocab, H}, InitKind::Normal, c.initStd);
  int x = b.op(OpKind::Embedding, {}, {emb}, H);
  for (int l = 0; l < c.layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    int h = rmsNorm(p + "input_layernorm", x);
    int q = b.linear(p + "self_attn.q_proj", h, H, H, c.initStd, false);
    int k = b.linear(p + "self_attn.k_proj", h, H, kv, c.initStd, false);
    int v = b.linear(p + "self_attn.v_proj", h, H, kv, c.initStd, false);
    if (c.qkNorm) {
      q = headNorm(p + "self_attn.q_norm", q, H, c.heads);
      k = headNorm(p + "self_attn.k_norm", k, kv, c.kvHeads);
    }
    int qr = rope(q, H, c.heads);
    int kr = rope(k, kv, c.kvHeads);
    int a = b.op(OpKind::Attention, {qr, kr, v}, {}, H);
    b.last().heads = c.heads;
    b.last().kvHeads = c.kvHeads;
    int o = b.linear(p + "self_attn.o_proj", a, H, H, c.initStd, false);
    x = b.op(OpKind::Add, {x, o}, {}, H);
    h = rmsNorm(p + "post_attention_layernorm", x);
    if (c.experts > 0) {
      const std::string m = p + "block_sparse_moe.";
      auto weight = [&](const std::string &name, int64_t rows, int64_t cols) {
        return b.param(m + name + ".weight", {rows, cols}, InitKind::Normal,
                       c.initStd);
      };
      const int64_t E = c.experts, F = c.ffn;
      std::vector<int> params{weight("gate", E, H), weight("experts.w1", E * F, H),
                              weight("experts.w3", E * F, H),
                              weight("experts.w2", E * H, F)};
      int y = b.op(OpKind::Moe, {h}, params, H);
      b.last().topK = c.topK;
      b.last().normalized = c.normalizedTopK;
      x = b.op(OpKind::Add, {x, y}, {}, H);
      continue;
    }
    int gate = b.linear(p + "mlp.gate_proj", h, H, c.ffn, c.initStd, false);
    int up = b.linear(p + "mlp.up_proj", h, H, c.ffn, c.initStd, false);
    int s = b.op(OpKind::Swiglu, {gate, up}, {}, c.ffn);
    int d = b.linear(p + "mlp.down_proj", s, c.ffn, H, c.initStd, false);
    x = b.op(OpKind::Add, {x, d}, {}, H);
  }
  int h = rmsNorm("norm", x);
  int logits = b.linear("lm_head", h, H, c.vocab, c.initStd, false);
  b.op(OpKind::CrossEntropy, {logits}, {}, 0);
  return b.take();
}

} // namespace s1f::rt
