"""A tiny Hugging Face model, written out as a checkpoint, and its loss
computed here in plain Python the way transformers defines the model.

  hf_reference.py MODEL DIR [F32|BF16 [SHARDS]]   (MODEL: llama, llama31,
      llama_dynamic, qwen2, qwen3, qwen25_yarn, phi3, phi3_longrope,
      phi3_longrope_short, phi4_mini, glm4, mistral, gemma, gemma2, gemma3, gemma3_multimodal,
      olmo2, smollm3, granite, gpt2, gpt_neox,
      starcoder2, mixtral, qwen2_moe, qwen3_moe, olmoe) writes
      DIR/config.json, DIR/model.safetensors (or SHARDS files and
      model.safetensors.index.json) and DIR/tokens.bin (one sequence of
      S + 1 uint16 token ids), and prints the mean next-token cross-entropy
      of that sequence under the checkpoint's weights
  hf_reference.py eval llama|qwen3|olmo2|glm4|gemma|gemma2|gemma3|gpt2|phi3|gpt_neox|mixtral|qwen2_moe DIR FILE
      the same loss under the weights of FILE (an F32 checkpoint, as
      seq1f1b-train --save-hf writes it: every tensor must have the name and
      shape transformers expects)
  hf_reference.py check EXPECTED TRAIN_OUTPUT [STEP]
      compares it with "step STEP  loss X" of seq1f1b-train (default step 1;
      relative 1e-5)

The model code follows transformers' LlamaForCausalLM (RMSNorm, rotate-half
RoPE, grouped-query attention, SwiGLU) and GPT2LMHeadModel (learned
positions, LayerNorm, Conv1D weights stored [in, out], a fused c_attn,
tanh GELU, tied head) and GPTNeoXForCausalLM (Pythia: LayerNorm, q, k and v
interleaved by head in query_key_value, RoPE on part of each head, exact
GELU, attention and MLP side by side on the residual stream) and the sparse
mixtures of experts of Mixtral, Qwen2-MoE (with its gated shared expert),
Qwen3-MoE and OLMoE: an independent
check of what seq1f1b builds from the same config.json.
"""
import json
import math
import os
import random
import re
import struct
import sys

S = 10  # tokens per sequence


def matmul_t(x, w):
    """x [n][k] times w^T, w [m][k] (a Linear's [out, in] weight)."""
    return [[sum(a * b for a, b in zip(row, wr)) for wr in w] for row in x]


def conv1d(x, w, b):
    """x [n][k] times w [k][m] plus b (GPT-2's Conv1D)."""
    cols = list(zip(*w))
    return [[sum(a * c for a, c in zip(row, col)) + bb for col, bb in zip(cols, b)]
            for row in x]


def add(x, y):
    return [[a + b for a, b in zip(r, s)] for r, s in zip(x, y)]


def rms_norm(x, w, eps):
    out = []
    for row in x:
        inv = 1 / math.sqrt(sum(v * v for v in row) / len(row) + eps)
        out.append([v * inv * g for v, g in zip(row, w)])
    return out


def layer_norm(x, w, b, eps):
    out = []
    for row in x:
        mean = sum(row) / len(row)
        var = sum((v - mean) ** 2 for v in row) / len(row)
        inv = 1 / math.sqrt(var + eps)
        out.append([(v - mean) * inv * g + bb for v, g, bb in zip(row, w, b)])
    return out


def llama3_inv_freq(inv_freq, scaling):
    """transformers' "llama3" rope_scaling, as its _compute_llama3_parameters
    writes it: by wavelength, low frequencies divided by the factor, high
    ones kept, the band between smoothed."""
    factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
    old = scaling["original_max_position_embeddings"]
    low_wavelen, high_wavelen = old / low, old / high
    out = []
    for f in inv_freq:
        wavelen = 2 * math.pi / f
        scaled = f / factor if wavelen > low_wavelen else f
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = not wavelen < high_wavelen and not wavelen > low_wavelen
        out.append(smoothed if medium else scaled)
    return out


def yarn_inv_freq(theta, dim, scaling):
    """transformers' "yarn" rope_scaling, as its _compute_yarn_parameters
    writes it: the frequency indices where a frequency turns beta_fast and
    beta_slow times over the original context, rounded outward, bound a
    linear ramp from kept (extrapolated) to divided (interpolated)
    frequencies; the attention factor is 0.1 ln(factor) + 1 unless given."""
    factor = scaling["factor"]
    context = scaling["original_max_position_embeddings"]
    fast, slow = scaling.get("beta_fast") or 32, scaling.get("beta_slow") or 1

    def correction_dim(turns):
        return dim * math.log(context / (turns * 2 * math.pi)) / (2 * math.log(theta))

    low = max(math.floor(correction_dim(fast)), 0)
    high = min(math.ceil(correction_dim(slow)), dim - 1)
    if low == high:
        high += 0.001
    inv_freq = []
    for i in range(dim // 2):
        pos_freq = theta ** (2 * i / dim)
        ramp = min(max((i - low) / (high - low), 0), 1)
        extrapolation = 1 - ramp
        inv_freq.append(1 / (factor * pos_freq) * (1 - extrapolation)
                        + 1 / pos_freq * extrapolation)
    attention = scaling.get("attention_factor")
    if attention is None:
        attention = 0.1 * math.log(factor) + 1 if factor > 1 else 1.0
    return inv_freq, attention


def longrope_inv_freq(theta, dim, scaling, seq_len, max_positions):
    """transformers' "longrope" (Phi-3): each frequency divided by its own
    factor, long_factor once the sequence (its highest position + 1)
    outgrows the original context, short_factor before; the attention
    factor sqrt(1 + ln(factor) / ln(original)) with factor max_positions /
    original unless given."""
    original = scaling["original_max_position_embeddings"]
    ext = scaling["long_factor"] if seq_len > original else scaling["short_factor"]
    inv_freq = [1 / (e * theta ** (2 * i / dim)) for i, e in enumerate(ext)]
    factor = scaling.get("factor") or max_positions / original
    attention = scaling.get("attention_factor")
    if attention is None:
        attention = math.sqrt(1 + math.log(factor) / math.log(original)) if factor > 1 else 1.0
    return inv_freq, attention


def rope(x, heads, hd, theta, rotary=None, scaling=None, max_positions=None,
         interleaved=False):
    """Rotate-half RoPE on the first `rotary` dimensions of each head (all
    by default), frequencies over those dimensions, rescaled by a
    rope_scaling dict ("linear", "llama3", "yarn" or "longrope"; YaRN's and
    LongRoPE's attention factors multiply cos and sin); the rest pass."""
    r = rotary or hd
    kind = scaling and scaling.get("rope_type", scaling.get("type"))
    if kind == "dynamic":  # _compute_dynamic_ntk_parameters at the sequence's length
        seq_len = max(len(x), max_positions)
        f = scaling["factor"]
        theta = theta * ((f * seq_len / max_positions) - (f - 1)) ** (r / (r - 2))
    inv_freq = [theta ** (-2 * i / r) for i in range(r // 2)]
    attention = 1.0
    if kind == "linear":
        inv_freq = [f / scaling["factor"] for f in inv_freq]
    elif kind == "yarn":
        inv_freq, attention = yarn_inv_freq(theta, r, scaling)
    elif kind == "longrope":
        inv_freq, attention = longrope_inv_freq(theta, r, scaling, len(x), max_positions)
    elif kind == "llama3":
        inv_freq = llama3_inv_freq(inv_freq, scaling)
    out = []
    for pos, row in enumerate(x):
        new = list(row)
        for h in range(heads):
            base = h * hd
            for i in range(r // 2):
                angle = pos * inv_freq[i]
                c, s = attention * math.cos(angle), attention * math.sin(angle)
                # GLM's rotate_half_llm pairs 2i with 2i + 1.
                lo, hi = (base + 2 * i, base + 2 * i + 1) if interleaved else \
                    (base + i, base + i + r // 2)
                x1, x2 = row[lo], row[hi]
                new[lo] = x1 * c - x2 * s
                new[hi] = x2 * c + x1 * s
        out.append(new)
    return out


def attention(q, k, v, heads, kv_heads, hd, window=None, scale=None, softcap=None):
    """Causal; with a sliding window, transformers' mask: query i sees key j
    when i - window < j <= i. Gemma 2 scales scores by `scale` and caps them:
    softcap * tanh(score / softcap)."""
    scale = scale or 1 / math.sqrt(hd)
    cap = (lambda s: softcap * math.tanh(s / softcap)) if softcap else (lambda s: s)
    out = [[0.0] * (heads * hd) for _ in q]
    for h in range(heads):
        g = h // (heads // kv_heads)
        for i in range(len(q)):
            keys = [j for j in range(i + 1) if window is None or j > i - window]
            scores = [cap(sum(q[i][h * hd + c] * k[j][g * hd + c] for c in range(hd)) * scale)
                      for j in keys]
            m = max(scores)
            p = [math.exp(s - m) for s in scores]
            z = sum(p)
            for c in range(hd):
                out[i][h * hd + c] = sum(pj / z * v[j][g * hd + c] for pj, j in zip(p, keys))
    return out


def loss(logits, targets):
    total = 0.0
    for row, t in zip(logits, targets):
        m = max(row)
        total += m + math.log(sum(math.exp(v - m) for v in row)) - row[t]
    return total / len(targets)


def gelu_erf(v):
    return 0.5 * v * (1 + math.erf(v / math.sqrt(2)))


def linear(x, w, b):
    return [[a + bb for a, bb in zip(r, b)] for r in matmul_t(x, w)]


def gelu_tanh(v):
    return 0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3)))


def read_safetensors(path):
    """name -> (shape, values) of an F32 safetensors file."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    tensors = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", (name, e["dtype"])
        a, b = e["data_offsets"]
        data = raw[8 + n + a:8 + n + b]
        tensors[name] = (e["shape"], list(struct.unpack("<%df" % (len(data) // 4), data)))
    return tensors


class Weights:
    """Random tensors by name, rounded to the checkpoint's dtype; or, given
    `saved`, a checkpoint's tensors, which must have the names and shapes
    transformers expects."""

    def __init__(self, dtype, saved=None):
        self.rng = random.Random(7)
        self.dtype = dtype
        self.tensors = {}
        self.saved = saved

    def round(self, v):
        if self.dtype == "F32":
            return struct.unpack("<f", struct.pack("<f", v))[0]
        return struct.unpack("<f", b"\0\0" + struct.pack("<f", v)[2:])[0]

    def new(self, name, shape, scale=0.3, offset=0.0):
        n = 1
        for d in shape:
            n *= d
        flat = [self.round(offset + self.rng.gauss(0, scale)) for _ in range(n)]
        if self.saved is not None:
            assert name in self.saved, f"no tensor '{name}'"
            saved_shape, flat = self.saved[name]
            assert saved_shape == shape, (name, saved_shape, shape)
        self.tensors[name] = (shape, flat)
        if len(shape) == 1:
            return flat
        return [flat[r * shape[1]:(r + 1) * shape[1]] for r in range(shape[0])]

    def buffer(self, name, shape):
        """A tensor the model does not train (not saved back)."""
        if self.saved is None:
            self.new(name, shape)

    def write(self, path, names=None):
        header, data = {}, b""
        for name, (shape, flat) in sorted(self.tensors.items()):
            if names is not None and name not in names:
                continue
            if self.dtype == "F32":
                raw = struct.pack("<%df" % len(flat), *flat)
            else:
                raw = b"".join(struct.pack("<f", v)[2:] for v in flat)
            header[name] = {"dtype": self.dtype, "shape": shape,
                            "data_offsets": [len(data), len(data) + len(raw)]}
            data += raw
        text = json.dumps(header).encode()
        text += b" " * (-len(text) % 8)
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text + data)


def fuse(w, fused, names):
    """Phi-3 stores these Linear weights stacked by rows in one tensor."""
    shapes = [w.tensors[n][0] for n in names]
    flat = [v for n in names for v in w.tensors.pop(n)[1]]
    w.tensors[fused] = ([sum(sh[0] for sh in shapes), shapes[0][1]], flat)


def phi3(w, tokens, scaling=None, partial=None):
    """Llama's model with Phi-3's checkpoint: q, k, v in self_attn.qkv_proj
    and gate, up in mlp.gate_up_proj."""
    config, logits = llama(w, tokens, scaling=scaling, partial=partial)
    config["model_type"] = "phi3"
    for i in range(config["num_hidden_layers"]):
        p = "model.layers.%d." % i
        fuse(w, p + "self_attn.qkv_proj.weight",
             [p + "self_attn.%s_proj.weight" % x for x in "qkv"])
        fuse(w, p + "mlp.gate_up_proj.weight",
             [p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight"])
    return config, logits


def phi3_longrope(w, tokens, original=8, partial=None):
    """Phi-3 with LongRoPE as Phi-3-mini-128k writes it ("type": "longrope",
    original_max_position_embeddings at the top level). With an original
    context of 8 the 10-token sequence takes the long factors and the
    attention factor is sqrt(1 + ln 8 / ln 8) (max_position_embeddings 64);
    with 16 (phi3_longrope_short) the short ones and sqrt(1 + ln 4 / ln 16)."""
    n = 2 if partial else 4  # one factor per turned frequency
    config, logits = phi3(w, tokens, partial=partial, scaling={
        "type": "longrope", "short_factor": [1.0, 1.25, 2.0, 3.5][:n],
        "long_factor": [1.5, 3.0, 6.0, 12.0][:n], "original_max_position_embeddings": original})
    config["original_max_position_embeddings"] = config["rope_scaling"].pop(
        "original_max_position_embeddings")
    return config, logits


def phi3_longrope_short(w, tokens):
    return phi3_longrope(w, tokens, original=16)


def phi4_mini(w, tokens):
    """Phi-4-mini's RoPE: LongRoPE on part of each head (half here: 4 of 8
    dimensions, 2 factors per list)."""
    return phi3_longrope(w, tokens, partial=0.5)


def mistral(w, tokens):
    """Llama's model with Mistral's sliding window of 4 tokens."""
    return llama(w, tokens, window=4)


def llama31(w, tokens):
    """Llama's model with Llama 3.1's rope_scaling, its context cut so that
    a 10-token sequence meets every band: of the 4 frequencies of a head of
    8, the first is kept, the second smoothed, the last two divided."""
    return llama(w, tokens, scaling={"rope_type": "llama3", "factor": 8.0,
                                     "low_freq_factor": 1.0, "high_freq_factor": 16.0,
                                     "original_max_position_embeddings": 128})


def qwen2(w, tokens):
    """Llama's model with Qwen2's biases on q, k and v."""
    return llama(w, tokens, qkv_bias=True)


def qwen25_yarn(w, tokens):
    """Qwen2 with the YaRN rope_scaling Qwen2.5 documents for 128k tokens
    (factor 4, default betas), its original context cut to 64 so that the 4
    frequencies of a head of 8 meet every part of the ramp: the first is
    kept, the second blended, the last two divided."""
    return llama(w, tokens, qkv_bias=True, scaling={
        "rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64})


def llama_dynamic(w, tokens):
    """Llama with dynamic (NTK) rope_scaling, factor 2: max_position_embeddings
    cut to 8, so the 10-token sequence grows theta by (2 x 10 / 8 - 1)^(8/6)."""
    return llama(w, tokens, scaling={"rope_type": "dynamic", "factor": 2.0}, max_positions=8)


def qwen3(w, tokens):
    """Qwen3ForCausalLM: Llama's block with each q and k head RMS-normalized
    (q_norm, k_norm: one weight of head_dim for all heads) before RoPE, and a
    head_dim of its own (8, not hidden / heads = 4)."""
    return llama(w, tokens, qk_norm=True)


def granite(w, tokens):
    """GraniteForCausalLM: Llama's block with multipliers: embeddings times
    embedding_multiplier, attention scores times attention_multiplier (not
    1/sqrt(head_dim)), each residual branch times residual_multiplier, logits
    divided by logits_scaling."""
    return llama(w, tokens, multipliers={"embedding_multiplier": 3.0, "attention_multiplier": 0.125,
                                         "residual_multiplier": 0.5, "logits_scaling": 4.0})


def smollm3(w, tokens):
    """SmolLM3ForCausalLM: Llama's block, every no_rope_layer_interval-th
    layer (2 here: layer 1 of 2) without RoPE (NoPE)."""
    return llama(w, tokens, nope_every=2)


def mixtral(w, tokens):
    """MixtralForCausalLM: Llama's block with a sparse mixture of 4 experts
    (block_sparse_moe: router `gate`, experts' w1 gate, w3 up, w2 down), 2 per
    token, their weights renormalized."""
    return llama(w, tokens, moe={"model_type": "mixtral", "num_local_experts": 4,
                                 "num_experts_per_tok": 2})


def qwen3_moe(w, tokens):
    """Qwen3MoeForCausalLM: Qwen3's attention; layer 0 a mixture of 6
    experts of width moe_intermediate_size 12, 3 per token, renormalized
    (norm_topk_prob); layer 1 in mlp_only_layers, a dense MLP."""
    return llama(w, tokens, qk_norm=True,
                 moe={"model_type": "qwen3_moe", "num_experts": 6, "num_experts_per_tok": 3,
                      "moe_intermediate_size": 12, "norm_topk_prob": True,
                      "mlp_only_layers": [1]})


def qwen2_moe(w, tokens):
    """Qwen2MoeForCausalLM: Qwen2's attention (q, k and v biased) and a
    mixture of 4 experts of width 12, 2 per token, not renormalized, plus a
    shared expert of width 20 that every token goes through, scaled by a
    sigmoid gate of its own (mlp.shared_expert_gate)."""
    return llama(w, tokens, qkv_bias=True,
                 moe={"model_type": "qwen2_moe", "num_experts": 4, "num_experts_per_tok": 2,
                      "moe_intermediate_size": 12, "norm_topk_prob": False,
                      "shared_expert_intermediate_size": 20})


def olmoe(w, tokens):
    """OlmoeForCausalLM: Llama's block with q and k RMS-normalized whole
    (as OLMo 2) and a mixture of 4 experts, 2 per token, their weights the
    router's probabilities as they are (norm_topk_prob false)."""
    return llama(w, tokens, qk_norm="whole",
                 moe={"model_type": "olmoe", "num_experts": 4, "num_experts_per_tok": 2,
                      "norm_topk_prob": False})


def sparse_moe(w, h, block, names, experts, top_k, normalize, d, ffn):
    """transformers' sparse mixture of experts: softmax of the router's
    logits, each token's top_k experts, their weights renormalized with
    `normalize`, the weighted sum of their SwiGLU MLPs."""
    router = w.new(block + "gate.weight", [experts, d])
    mats = [[w.new(block + "experts.%d.%s.weight" % (e, n), shape)
             for n, shape in zip(names, ([ffn, d], [ffn, d], [d, ffn]))]
            for e in range(experts)]
    out = []
    for row in h:
        logits = matmul_t([row], router)[0]
        top = max(logits)
        exps = [math.exp(v - top) for v in logits]
        probs = [v / sum(exps) for v in exps]
        chosen = sorted(range(experts), key=lambda e: -probs[e])[:top_k]
        weights = [probs[e] for e in chosen]
        if normalize:
            weights = [v / sum(weights) for v in weights]
        y = [0.0] * d
        for e, weight in zip(chosen, weights):
            gate, up = (matmul_t([row], m)[0] for m in mats[e][:2])
            mid = [g / (1 + math.exp(-g)) * u for g, u in zip(gate, up)]
            y = [a + weight * b for a, b in zip(y, matmul_t([mid], mats[e][2])[0])]
        out.append(y)
    return out


def llama(w, tokens, window=None, scaling=None, qkv_bias=False, max_positions=64,
          qk_norm=False, nope_every=None, multipliers=None, partial=None, moe=None):
    d, heads, kv, hd, ffn, vocab, layers = 16, 4, 2, 4, 24, 32, 2
    if scaling:
        heads, kv, hd = 2, 1, 8
    if qk_norm is True:
        hd = 8
    config = {"model_type": "llama", "num_hidden_layers": layers, "hidden_size": d,
              "intermediate_size": ffn, "num_attention_heads": heads,
              "num_key_value_heads": kv, "vocab_size": vocab, "rms_norm_eps": 1e-5,
              "rope_theta": 10000.0, "max_position_embeddings": max_positions,
              "tie_word_embeddings": False, "hidden_act": "silu",
              "torch_dtype": "float32"}
    if window:
        config.update(model_type="mistral", sliding_window=window)
    if scaling:
        config.update(rope_scaling=scaling)
    if qkv_bias and not moe:
        config.update(model_type="qwen2")
    if qk_norm is True:
        config.update(model_type="qwen3", head_dim=hd, rms_norm_eps=1e-6)
    if moe:
        config.update(moe)
    if nope_every:
        config.update(model_type="smollm3", no_rope_layer_interval=nope_every)
    m = dict(embedding_multiplier=1.0, attention_multiplier=None, residual_multiplier=1.0,
             logits_scaling=1.0)
    if multipliers:
        config.update(model_type="granite", **multipliers)
        m.update(multipliers)
    rotary = int(hd * partial) if partial else None
    if partial:
        config.update(partial_rotary_factor=partial)
    eps = config["rms_norm_eps"]

    def head_norm(x, n, name):
        g = w.new(name + ".weight", [hd], 0.1, 1.0)
        return [[v for h in range(n) for v in rms_norm([row[h * hd:(h + 1) * hd]], g, eps)[0]]
                for row in x]

    proj = lambda h, name, rows: (
        linear(h, w.new(name + ".weight", [rows, d]), w.new(name + ".bias", [rows], 0.1))
        if qkv_bias else matmul_t(h, w.new(name + ".weight", [rows, d])))
    emb = w.new("model.embed_tokens.weight", [vocab, d])
    x = [[v * m["embedding_multiplier"] for v in emb[t]] for t in tokens]
    branch = lambda y: [[v * m["residual_multiplier"] for v in r] for r in y]
    for i in range(layers):
        p = "model.layers.%d." % i
        h = rms_norm(x, w.new(p + "input_layernorm.weight", [d], 0.1, 1.0), eps)
        q = proj(h, p + "self_attn.q_proj", heads * hd)
        k = proj(h, p + "self_attn.k_proj", kv * hd)
        v = proj(h, p + "self_attn.v_proj", kv * hd)
        if qk_norm == "whole":
            q = rms_norm(q, w.new(p + "self_attn.q_norm.weight", [heads * hd], 0.1, 1.0), eps)
            k = rms_norm(k, w.new(p + "self_attn.k_norm.weight", [kv * hd], 0.1, 1.0), eps)
        elif qk_norm:
            q = head_norm(q, heads, p + "self_attn.q_norm")
            k = head_norm(k, kv, p + "self_attn.k_norm")
        if not (nope_every and (i + 1) % nope_every == 0):
            q = rope(q, heads, hd, 1e4, rotary, scaling, max_positions)
            k = rope(k, kv, hd, 1e4, rotary, scaling, max_positions)
        a = attention(q, k, v, heads, kv, hd, window, m["attention_multiplier"])
        x = add(x, branch(matmul_t(a, w.new(p + "self_attn.o_proj.weight", [d, heads * hd]))))
        h = rms_norm(x, w.new(p + "post_attention_layernorm.weight", [d], 0.1, 1.0), eps)
        if moe and i not in moe.get("mlp_only_layers", []):
            mixtral_names = moe["model_type"] == "mixtral"
            block = p + ("block_sparse_moe." if mixtral_names else "mlp.")
            names = ("w1", "w3", "w2") if mixtral_names else ("gate_proj", "up_proj", "down_proj")
            experts = moe.get("num_local_experts", moe.get("num_experts"))
            y = sparse_moe(w, h, block, names, experts, moe["num_experts_per_tok"],
                           mixtral_names or moe["norm_topk_prob"], d,
                           moe.get("moe_intermediate_size", ffn))
            if "shared_expert_intermediate_size" in moe:
                width = moe["shared_expert_intermediate_size"]
                s = block + "shared_expert."
                gate = matmul_t(h, w.new(s + "gate_proj.weight", [width, d]))
                up = matmul_t(h, w.new(s + "up_proj.weight", [width, d]))
                mid = [[g / (1 + math.exp(-g)) * u for g, u in zip(gr, ur)]
                       for gr, ur in zip(gate, up)]
                shared = matmul_t(mid, w.new(s + "down_proj.weight", [d, width]))
                z = matmul_t(h, w.new(block + "shared_expert_gate.weight", [1, d]))
                y = add(y, [[v / (1 + math.exp(-zr[0])) for v in row]
                            for row, zr in zip(shared, z)])
            x = add(x, y)
            continue
        gate = matmul_t(h, w.new(p + "mlp.gate_proj.weight", [ffn, d]))
        up = matmul_t(h, w.new(p + "mlp.up_proj.weight", [ffn, d]))
        mid = [[g / (1 + math.exp(-g)) * u for g, u in zip(gr, ur)] for gr, ur in zip(gate, up)]
        x = add(x, branch(matmul_t(mid, w.new(p + "mlp.down_proj.weight", [d, ffn]))))
    x = rms_norm(x, w.new("model.norm.weight", [d], 0.1, 1.0), eps)
    # A buffer the graph has no parameter for.
    w.buffer("model.layers.0.self_attn.rotary_emb.inv_freq", [hd // 2])
    logits = matmul_t(x, w.new("lm_head.weight", [vocab, d]))
    return config, [[v / m["logits_scaling"] for v in r] for r in logits]


def gemma_embeddings(w, tokens, vocab, d):
    """Gemma's embedding table and the tokens' rows times sqrt(hidden),
    rounded to the model's dtype (float32 here) as transformers rounds it."""
    emb = w.new("model.embed_tokens.weight", [vocab, d])
    normalizer = struct.unpack("<f", struct.pack("<f", d ** 0.5))[0]
    return emb, [[v * normalizer for v in emb[t]] for t in tokens]


def gemma2_block_rest(w, x, a, p, norm, d, width, ffn):
    """Gemma 2's (and 3's) block after attention: the output projection
    normalized into the residual, the GeGLU MLP between two norms."""
    o = matmul_t(a, w.new(p + "self_attn.o_proj.weight", [d, width]))
    x = add(x, norm(o, p + "post_attention_layernorm.weight"))
    h = norm(x, p + "pre_feedforward_layernorm.weight")
    gate = matmul_t(h, w.new(p + "mlp.gate_proj.weight", [ffn, d]))
    up = matmul_t(h, w.new(p + "mlp.up_proj.weight", [ffn, d]))
    mid = [[gelu_tanh(g) * u for g, u in zip(gr, ur)] for gr, ur in zip(gate, up)]
    m = matmul_t(mid, w.new(p + "mlp.down_proj.weight", [d, ffn]))
    return add(x, norm(m, p + "post_feedforward_layernorm.weight"))


def gemma2(w, tokens):
    """Gemma2ForCausalLM: Gemma's block with four norms (after attention and
    after the MLP too), a sliding window on even layers, scores scaled by
    1/sqrt(query_pre_attn_scalar) and soft-capped, logits soft-capped."""
    d, heads, kv, hd, ffn, vocab, layers, window = 24, 2, 1, 8, 32, 32, 2, 4
    qscalar, attn_cap, final_cap = 16, 2.0, 3.0
    config = {"model_type": "gemma2", "num_hidden_layers": layers, "hidden_size": d,
              "intermediate_size": ffn, "num_attention_heads": heads,
              "num_key_value_heads": kv, "head_dim": hd, "vocab_size": vocab,
              "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "max_position_embeddings": 64,
              "hidden_activation": "gelu_pytorch_tanh", "tie_word_embeddings": True,
              "sliding_window": window, "query_pre_attn_scalar": qscalar,
              "attn_logit_softcapping": attn_cap, "final_logit_softcapping": final_cap,
              "torch_dtype": "float32"}
    norm = lambda x, name: rms_norm(x, [1 + g for g in w.new(name, [d], 0.1)], 1e-6)
    emb, x = gemma_embeddings(w, tokens, vocab, d)
    for i in range(layers):
        p = "model.layers.%d." % i
        h = norm(x, p + "input_layernorm.weight")
        q = rope(matmul_t(h, w.new(p + "self_attn.q_proj.weight", [heads * hd, d])), heads, hd, 1e4)
        k = rope(matmul_t(h, w.new(p + "self_attn.k_proj.weight", [kv * hd, d])), kv, hd, 1e4)
        v = matmul_t(h, w.new(p + "self_attn.v_proj.weight", [kv * hd, d]))
        a = attention(q, k, v, heads, kv, hd, window if i % 2 == 0 else None,
                      qscalar ** -0.5, attn_cap)
        x = gemma2_block_rest(w, x, a, p, norm, d, heads * hd, ffn)
    x = norm(x, "model.norm.weight")
    logits = matmul_t(x, emb)  # tied head
    return config, [[final_cap * math.tanh(v / final_cap) for v in r] for r in logits]


def gemma3(w, tokens):
    """Gemma3ForCausalLM (text): Gemma 2's four norms, each q and k head
    RMS-normalized (1 + weight) before RoPE, no soft-capping; every
    sliding_window_pattern-th layer global (pattern 2 here: layers 0 and 2
    slide), the sliding ones turning by rope_local_base_freq unscaled, the
    global ones by rope_theta with rope_scaling (linear, 2 here)."""
    d, heads, kv, hd, ffn, vocab, layers, window = 24, 2, 1, 8, 32, 32, 3, 4
    qscalar, local_theta, scaling = 16, 10.0, {"rope_type": "linear", "factor": 2.0}
    config = {"model_type": "gemma3_text", "num_hidden_layers": layers, "hidden_size": d,
              "intermediate_size": ffn, "num_attention_heads": heads,
              "num_key_value_heads": kv, "head_dim": hd, "vocab_size": vocab,
              "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "rope_local_base_freq": local_theta,
              "rope_scaling": scaling, "max_position_embeddings": 64,
              "hidden_activation": "gelu_pytorch_tanh", "tie_word_embeddings": True,
              "sliding_window": window, "sliding_window_pattern": 2,
              "query_pre_attn_scalar": qscalar, "attn_logit_softcapping": None,
              "final_logit_softcapping": None, "torch_dtype": "float32"}
    norm = lambda x, name, n=d: rms_norm(x, [1 + g for g in w.new(name, [n], 0.1)], 1e-6)

    def head_norm(x, n, name):
        g = [1 + v for v in w.new(name, [hd], 0.1)]
        return [[v for h in range(n) for v in rms_norm([row[h * hd:(h + 1) * hd]], g, 1e-6)[0]]
                for row in x]

    emb, x = gemma_embeddings(w, tokens, vocab, d)
    for i in range(layers):
        p = "model.layers.%d." % i
        sliding = (i + 1) % 2 != 0
        theta, rule = (local_theta, None) if sliding else (1e4, scaling)
        h = norm(x, p + "input_layernorm.weight")
        q = matmul_t(h, w.new(p + "self_attn.q_proj.weight", [heads * hd, d]))
        k = matmul_t(h, w.new(p + "self_attn.k_proj.weight", [kv * hd, d]))
        v = matmul_t(h, w.new(p + "self_attn.v_proj.weight", [kv * hd, d]))
        q = rope(head_norm(q, heads, p + "self_attn.q_norm.weight"), heads, hd, theta, scaling=rule)
        k = rope(head_norm(k, kv, p + "self_attn.k_norm.weight"), kv, hd, theta, scaling=rule)
        a = attention(q, k, v, heads, kv, hd, window if sliding else None, qscalar ** -0.5)
        x = gemma2_block_rest(w, x, a, p, norm, d, heads * hd, ffn)
    x = norm(x, "model.norm.weight")
    return config, matmul_t(x, emb)  # tied head


def olmo2(w, tokens):
    """Olmo2ForCausalLM: norms only after attention and after the MLP (none
    before), and q and k RMS-normalized over the whole projection (not per
    head) before RoPE."""
    d, heads, kv, hd, ffn, vocab, layers = 16, 4, 2, 4, 24, 32, 2
    config = {"model_type": "olmo2", "num_hidden_layers": layers, "hidden_size": d,
              "intermediate_size": ffn, "num_attention_heads": heads,
              "num_key_value_heads": kv, "vocab_size": vocab, "rms_norm_eps": 1e-6,
              "rope_theta": 10000.0, "max_position_embeddings": 64,
              "tie_word_embeddings": False, "hidden_act": "silu", "torch_dtype": "float32"}
    norm = lambda x, name, n=d: rms_norm(x, w.new(name, [n], 0.1, 1.0), 1e-6)
    emb = w.new("model.embed_tokens.weight", [vocab, d])
    x = [list(emb[t]) for t in tokens]
    for i in range(layers):
        p = "model.layers.%d." % i
        q = matmul_t(x, w.new(p + "self_attn.q_proj.weight", [heads * hd, d]))
        k = matmul_t(x, w.new(p + "self_attn.k_proj.weight", [kv * hd, d]))
        v = matmul_t(x, w.new(p + "self_attn.v_proj.weight", [kv * hd, d]))
        q = rope(norm(q, p + "self_attn.q_norm.weight", heads * hd), heads, hd, 1e4)
        k = rope(norm(k, p + "self_attn.k_norm.weight", kv * hd), kv, hd, 1e4)
        a = attention(q, k, v, heads, kv, hd)
        o = matmul_t(a, w.new(p + "self_attn.o_proj.weight", [d, heads * hd]))
        x = add(x, norm(o, p + "post_attention_layernorm.weight"))
        gate = matmul_t(x, w.new(p + "mlp.gate_proj.weight", [ffn, d]))
        up = matmul_t(x, w.new(p + "mlp.up_proj.weight", [ffn, d]))
        mid = [[g / (1 + math.exp(-g)) * u for g, u in zip(gr, ur)] for gr, ur in zip(gate, up)]
        m = matmul_t(mid, w.new(p + "mlp.down_proj.weight", [d, ffn]))
        x = add(x, norm(m, p + "post_feedforward_layernorm.weight"))
    x = norm(x, "model.norm.weight")
    return config, matmul_t(x, w.new("lm_head.weight", [vocab, d]))


def glm4(w, tokens):
    """Glm4ForCausalLM: biased q, k and v; RoPE on half of each head, turning
    adjacent dimensions 2i and 2i + 1 together; four norms per block
    (post_self_attn_layernorm after attention, post_mlp_layernorm after the
    MLP); gate and up stacked in mlp.gate_up_proj."""
    d, heads, kv, hd, ffn, vocab, layers = 16, 2, 1, 8, 24, 32, 2
    config = {"model_type": "glm4", "num_hidden_layers": layers, "hidden_size": d,
              "intermediate_size": ffn, "num_attention_heads": heads,
              "num_key_value_heads": kv, "head_dim": hd, "vocab_size": vocab,
              "partial_rotary_factor": 0.5, "attention_bias": True, "rms_norm_eps": 1e-5,
              "rope_theta": 10000.0, "max_position_embeddings": 64,
              "tie_word_embeddings": False, "hidden_act": "silu", "torch_dtype": "float32"}
    norm = lambda x, name: rms_norm(x, w.new(name, [d], 0.1, 1.0), 1e-5)
    proj = lambda h, name, rows: linear(h, w.new(name + ".weight", [rows, d]),
                                        w.new(name + ".bias", [rows], 0.1))
    emb = w.new("model.embed_tokens.weight", [vocab, d])
    x = [list(emb[t]) for t in tokens]
    for i in range(layers):
        p = "model.layers.%d." % i
        h = norm(x, p + "input_layernorm.weight")
        q = rope(proj(h, p + "self_attn.q_proj", heads * hd), heads, hd, 1e4, hd // 2,
                 interleaved=True)
        k = rope(proj(h, p + "self_attn.k_proj", kv * hd), kv, hd, 1e4, hd // 2,
                 interleaved=True)
        v = proj(h, p + "self_attn.v_proj", kv * hd)
        a = attention(q, k, v, heads, kv, hd)
        o = matmul_t(a, w.new(p + "self_attn.o_proj.weight", [d, heads * hd]))
        x = add(x, norm(o, p + "post_self_attn_layernorm.weight"))
        h = norm(x, p + "post_attention_layernorm.weight")
        gate_up = matmul_t(h, w.new(p + "mlp.gate_up_proj.weight", [2 * ffn, d]))
        mid = [[g / (1 + math.exp(-g)) * u for g, u in zip(r[:ffn], r[ffn:])] for r in gate_up]
        m = matmul_t(mid, w.new(p + "mlp.down_proj.weight", [d, ffn]))
        x = add(x, norm(m, p + "post_mlp_layernorm.weight"))
    x = norm(x, "model.norm.weight")
    return config, matmul_t(x, w.new("lm_head.weight", [vocab, d]))


def gemma3_multimodal(w, tokens):
    """Gemma 3 as its multimodal checkpoints hold it (Gemma3ForConditionalGeneration):
    the language model's config in text_config, its tensors under
    language_model.model., next to a vision tower the language model does
    not read."""
    text, logits = gemma3(w, tokens)
    dtype = text.pop("torch_dtype")
    w.tensors = {("language_model." + k if k.startswith("model.") else k): v
                 for k, v in w.tensors.items()}
    w.buffer("vision_tower.vision_model.embeddings.patch_embedding.weight", [4, 3])
    for i in range(8):
        w.buffer("vision_tower.vision_model.encoder.layers.%d.mlp.fc1.weight" % i, [2, 2])
    return {"model_type": "gemma3", "torch_dtype": dtype, "text_config": text,
            "vision_config": {"model_type": "siglip_vision_model"}}, logits


def gemma(w, tokens):
    """GemmaForCausalLM: embeddings times sqrt(hidden) (in the model's
    dtype), RMSNorms scaling by 1 + weight, a GeGLU MLP (GELU's tanh form),
    an explicit head_dim, the head tied to the embeddings."""
    d, heads, kv, hd, ffn, vocab, layers = 24, 2, 1, 8, 32, 32, 2
    config = {"model_type": "gemma", "num_hidden_layers": layers, "hidden_size": d,
              "intermediate_size": ffn, "num_attention_heads": heads,
              "num_key_value_heads": kv, "head_dim": hd, "vocab_size": vocab,
              "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "max_position_embeddings": 64,
              "hidden_act": "gelu_pytorch_tanh", "tie_word_embeddings": True,
              "torch_dtype": "float32"}
    norm = lambda x, name: rms_norm(x, [1 + g for g in w.new(name, [d], 0.1)], 1e-6)
    emb, x = gemma_embeddings(w, tokens, vocab, d)
    for i in range(layers):
        p = "model.layers.%d." % i
        h = norm(x, p + "input_layernorm.weight")
        q = rope(matmul_t(h, w.new(p + "self_attn.q_proj.weight", [heads * hd, d])), heads, hd, 1e4)
        k = rope(matmul_t(h, w.new(p + "self_attn.k_proj.weight", [kv * hd, d])), kv, hd, 1e4)
        v = matmul_t(h, w.new(p + "self_attn.v_proj.weight", [kv * hd, d]))
        a = attention(q, k, v, heads, kv, hd)
        x = add(x, matmul_t(a, w.new(p + "self_attn.o_proj.weight", [d, heads * hd])))
        h = norm(x, p + "post_attention_layernorm.weight")
        gate = matmul_t(h, w.new(p + "mlp.gate_proj.weight", [ffn, d]))
        up = matmul_t(h, w.new(p + "mlp.up_proj.weight", [ffn, d]))
        mid = [[gelu_tanh(g) * u for g, u in zip(gr, ur)] for gr, ur in zip(gate, up)]
        x = add(x, matmul_t(mid, w.new(p + "mlp.down_proj.weight", [d, ffn])))
    x = norm(x, "model.norm.weight")
    return config, matmul_t(x, emb)  # tied head


def starcoder2(w, tokens):
    """Starcoder2ForCausalLM: LayerNorm with biases, biased projections,
    grouped-query attention in a sliding window (4 tokens here), a c_fc /
    c_proj MLP with GELU's tanh form, the head tied to the embeddings."""
    d, heads, kv, hd, ffn, vocab, layers, window = 16, 4, 2, 4, 32, 32, 2, 4
    config = {"model_type": "starcoder2", "num_hidden_layers": layers, "hidden_size": d,
              "intermediate_size": ffn, "num_attention_heads": heads,
              "num_key_value_heads": kv, "vocab_size": vocab, "norm_epsilon": 1e-5,
              "rope_theta": 10000.0, "max_position_embeddings": 64, "use_bias": True,
              "sliding_window": window, "hidden_act": "gelu_pytorch_tanh",
              "tie_word_embeddings": True, "torch_dtype": "float32"}
    norm = lambda x, name: layer_norm(x, w.new(name + ".weight", [d], 0.1, 1.0),
                                      w.new(name + ".bias", [d], 0.1), 1e-5)
    lin = lambda x, name, rows, cols: linear(x, w.new(name + ".weight", [rows, cols]),
                                             w.new(name + ".bias", [rows], 0.1))
    emb = w.new("model.embed_tokens.weight", [vocab, d])
    x = [list(emb[t]) for t in tokens]
    for i in range(layers):
        p = "model.layers.%d." % i
        h = norm(x, p + "input_layernorm")
        q = rope(lin(h, p + "self_attn.q_proj", heads * hd, d), heads, hd, 1e4)
        k = rope(lin(h, p + "self_attn.k_proj", kv * hd, d), kv, hd, 1e4)
        v = lin(h, p + "self_attn.v_proj", kv * hd, d)
        a = attention(q, k, v, heads, kv, hd, window)
        x = add(x, lin(a, p + "self_attn.o_proj", d, heads * hd))
        h = norm(x, p + "post_attention_layernorm")
        mid = [[gelu_tanh(v) for v in r] for r in lin(h, p + "mlp.c_fc", ffn, d)]
        x = add(x, lin(mid, p + "mlp.c_proj", d, ffn))
    x = norm(x, "model.norm")
    return config, matmul_t(x, emb)  # tied head


def gpt2(w, tokens):
    d, heads, hd, vocab, layers, positions = 16, 4, 4, 32, 2, 64
    config = {"model_type": "gpt2", "n_layer": layers, "n_embd": d, "n_head": heads,
              "n_positions": positions, "vocab_size": vocab,
              "layer_norm_epsilon": 1e-5, "torch_dtype": "float32"}
    wte = w.new("transformer.wte.weight", [vocab, d])
    wpe = w.new("transformer.wpe.weight", [positions, d])
    x = [[a + b for a, b in zip(wte[t], wpe[i])] for i, t in enumerate(tokens)]
    for i in range(layers):
        p = "transformer.h.%d." % i
        h = layer_norm(x, w.new(p + "ln_1.weight", [d], 0.1, 1.0), w.new(p + "ln_1.bias", [d], 0.1), 1e-5)
        qkv = conv1d(h, w.new(p + "attn.c_attn.weight", [d, 3 * d]), w.new(p + "attn.c_attn.bias", [3 * d], 0.1))
        q = [r[:d] for r in qkv]
        k = [r[d:2 * d] for r in qkv]
        v = [r[2 * d:] for r in qkv]
        a = attention(q, k, v, heads, heads, hd)
        x = add(x, conv1d(a, w.new(p + "attn.c_proj.weight", [d, d]), w.new(p + "attn.c_proj.bias", [d], 0.1)))
        w.buffer(p + "attn.bias", [1, 1])  # the causal mask old checkpoints carry
        h = layer_norm(x, w.new(p + "ln_2.weight", [d], 0.1, 1.0), w.new(p + "ln_2.bias", [d], 0.1), 1e-5)
        mid = conv1d(h, w.new(p + "mlp.c_fc.weight", [d, 4 * d]), w.new(p + "mlp.c_fc.bias", [4 * d], 0.1))
        mid = [[gelu_tanh(v) for v in r] for r in mid]
        x = add(x, conv1d(mid, w.new(p + "mlp.c_proj.weight", [4 * d, d]), w.new(p + "mlp.c_proj.bias", [d], 0.1)))
    x = layer_norm(x, w.new("transformer.ln_f.weight", [d], 0.1, 1.0), w.new("transformer.ln_f.bias", [d], 0.1), 1e-5)
    return config, matmul_t(x, wte)  # tied head


def gpt_neox(w, tokens):
    d, heads, hd, ffn, vocab, layers, rotary = 16, 2, 8, 32, 32, 2, 4
    config = {"model_type": "gpt_neox", "num_hidden_layers": layers, "hidden_size": d,
              "intermediate_size": ffn, "num_attention_heads": heads, "vocab_size": vocab,
              "rotary_pct": rotary / hd, "rotary_emb_base": 10000,
              "use_parallel_residual": True, "layer_norm_eps": 1e-5, "hidden_act": "gelu",
              "max_position_embeddings": 64, "tie_word_embeddings": False,
              "torch_dtype": "float32"}
    emb = w.new("gpt_neox.embed_in.weight", [vocab, d])
    x = [list(emb[t]) for t in tokens]
    for i in range(layers):
        p = "gpt_neox.layers.%d." % i
        h = layer_norm(x, w.new(p + "input_layernorm.weight", [d], 0.1, 1.0),
                       w.new(p + "input_layernorm.bias", [d], 0.1), 1e-5)
        qkv = linear(h, w.new(p + "attention.query_key_value.weight", [3 * d, d]),
                     w.new(p + "attention.query_key_value.bias", [3 * d], 0.1))
        # view(heads, 3 * hd): each head's q, k and v side by side.
        part = lambda k: [[r[g * 3 * hd + k * hd + c] for g in range(heads) for c in range(hd)]
                          for r in qkv]
        q = rope(part(0), heads, hd, 1e4, rotary)
        k = rope(part(1), heads, hd, 1e4, rotary)
        a = attention(q, k, part(2), heads, heads, hd)
        attn = linear(a, w.new(p + "attention.dense.weight", [d, d]),
                      w.new(p + "attention.dense.bias", [d], 0.1))
        w.buffer(p + "attention.rotary_emb.inv_freq", [rotary // 2])
        h = layer_norm(x, w.new(p + "post_attention_layernorm.weight", [d], 0.1, 1.0),
                       w.new(p + "post_attention_layernorm.bias", [d], 0.1), 1e-5)
        mid = linear(h, w.new(p + "mlp.dense_h_to_4h.weight", [ffn, d]),
                     w.new(p + "mlp.dense_h_to_4h.bias", [ffn], 0.1))
        mid = [[gelu_erf(v) for v in r] for r in mid]
        mlp = linear(mid, w.new(p + "mlp.dense_4h_to_h.weight", [d, ffn]),
                     w.new(p + "mlp.dense_4h_to_h.bias", [d], 0.1))
        x = add(add(x, attn), mlp)  # parallel residual
    x = layer_norm(x, w.new("gpt_neox.final_layer_norm.weight", [d], 0.1, 1.0),
                   w.new("gpt_neox.final_layer_norm.bias", [d], 0.1), 1e-5)
    return config, matmul_t(x, w.new("embed_out.weight", [vocab, d]))


def main():
    if sys.argv[1] == "check":
        expected = float(open(sys.argv[2]).read())
        out = open(sys.argv[3]).read()
        step = sys.argv[4] if len(sys.argv) > 4 else "1"
        got = float(re.search(r"step +%s +loss ([0-9.]+)" % step, out).group(1))
        diff = abs(got - expected) / expected
        print(f"loss {got:.6f}, Hugging Face's {expected:.6f}: relative difference {diff:.1e}")
        sys.exit(0 if diff <= 1e-5 else 1)
    if sys.argv[1] == "eval":
        model, out, saved = sys.argv[2], sys.argv[3], read_safetensors(sys.argv[4])
        seq = list(struct.unpack("<%dH" % (S + 1), open(os.path.join(out, "tokens.bin"), "rb").read()))
        if model == "phi3":  # Phi3's modeling code splits the stacked rows
            for name in [n for n in saved if n.endswith(("qkv_proj.weight", "gate_up_proj.weight"))]:
                (rows, cols), flat = saved.pop(name)
                base = name[:name.rindex(".") - len("qkv_proj" if "qkv" in name else "gate_up_proj")]
                parts = ([("q", 16), ("k", 8), ("v", 8)] if "qkv" in name else [("gate", rows // 2), ("up", rows // 2)])
                row = 0
                for part, n in parts:
                    saved[base + part + "_proj.weight"] = ([n, cols], flat[row * cols:(row + n) * cols])
                    row += n
        w = Weights("F32", saved)
        _, logits = {"llama": llama, "qwen3": qwen3, "olmo2": olmo2, "glm4": glm4, "gemma": gemma,
                     "gemma2": gemma2,
                     "gemma3": gemma3, "gpt2": gpt2,
                     "phi3": llama,
                     "gpt_neox": gpt_neox, "mixtral": mixtral,
                     "qwen2_moe": qwen2_moe}[model](w, seq[:S])
        unread = set(saved) - set(w.tensors)
        assert not unread, f"tensors transformers would not read: {sorted(unread)}"
        print(repr(loss(logits, seq[1:])))
        return
    model, out = sys.argv[1], sys.argv[2]
    dtype = sys.argv[3] if len(sys.argv) > 3 else "F32"
    shards = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    os.makedirs(out, exist_ok=True)
    rng = random.Random(3)
    seq = [rng.randrange(32) for _ in range(S + 1)]
    w = Weights(dtype)
    config, logits = {"llama": llama, "llama31": llama31, "qwen2": qwen2,
                      "llama_dynamic": llama_dynamic, "qwen3": qwen3,
                      "qwen25_yarn": qwen25_yarn, "phi3_longrope": phi3_longrope,
                      "phi4_mini": phi4_mini, "glm4": glm4,
                      "gemma3": gemma3, "gemma3_multimodal": gemma3_multimodal,
                      "olmo2": olmo2, "smollm3": smollm3, "granite": granite,
                      "phi3_longrope_short": phi3_longrope_short, "gemma": gemma,
                      "gemma2": gemma2,
                      "gpt2": gpt2, "phi3": phi3, "mistral": mistral, "gpt_neox": gpt_neox,
                      "starcoder2": starcoder2, "mixtral": mixtral,
                      "qwen2_moe": qwen2_moe, "qwen3_moe": qwen3_moe,
                      "olmoe": olmoe}[model](w, seq[:S])
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f)
    if shards == 1:
        w.write(os.path.join(out, "model.safetensors"))
    else:  # as transformers shards: files of whole tensors and an index
        names = sorted(w.tensors)
        weight_map = {}
        for k in range(shards):
            file = "model-%05d-of-%05d.safetensors" % (k + 1, shards)
            part = set(names[k::shards])
            w.write(os.path.join(out, file), part)
            weight_map.update({n: file for n in part})
        with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f)
    with open(os.path.join(out, "tokens.bin"), "wb") as f:
        f.write(struct.pack("<%dH" % len(seq), *seq))
    print(repr(loss(logits, seq[1:])))


if __name__ == "__main__":
    main()
