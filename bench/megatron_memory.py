#!/usr/bin/env python3
"""Peak memory per pipeline stage from Megatron-LM's analytic model.

Independent of the seq1f1b tools: it reads only the model shape from a
config.json (or flags) and applies

  * Korthikanti et al. 2022, "Reducing Activation Recomputation in Large
    Transformer Models", Eq. for tensor + sequence parallelism without
    recomputation: activations per layer = s*b*h*(34/t + 5*a*s/(h*t)) bytes.
    With flash attention the 5*a*s/h term (the a*s^2 score/softmax/dropout
    tensors) is not stored, leaving 34*h/t bytes per token per layer.
  * Mixed-precision weights as Megatron keeps them: bf16 parameter (2) + fp32
    main gradient (4) + fp32 master copy and two Adam moments (12) = 18 bytes
    per parameter; tensor-parallel weights are divided by t, the few replicated
    ones (LayerNorm weights/biases, row-parallel biases) are not. The
    distributed optimizer shards the 12 bytes over data parallelism, which is 1
    in every paper configuration here.
  * The last stage also keeps the final LayerNorm input and the output layer's
    input (2*h/t bytes per token each) and the fp32 logits that Megatron's
    vocab-parallel cross entropy saves (4*V/t bytes per token, V padded).
  * With --recompute full (Megatron's uniform method, one layer per
    checkpoint, Korthikanti et al. Section 5): a layer keeps only its bf16
    input, 2*h/t bytes per token, and its backward first recomputes the
    layer, holding one layer's activations for the unit being backwarded
    (34*h/t bytes per token of the longest chunk) on top of what is held.
    Seq1F1B (N > 1) still keeps every held chunk's K and V for the chunks
    after it (2*2*h/t bytes per token per layer); the last stage's head
    (final LayerNorm, output layer, logits) is not recomputed.
  * Megatron's even layer split (L/P layers per stage), word embedding on the
    first stage, final LayerNorm and untied output layer on the last; rotary
    position embeddings (no learned position table), as in the paper's
    scripts.

Tokens in flight on a stage come from the schedule rule in the design doc,
replayed here (not taken from seq1f1b):
  1F1B:    rank r runs w_r = min(P-r-1, M) warmup forwards, then (F, B) pairs.
  Seq1F1B: units are (micro-batch, chunk); w_r = min(P-r-1 + N-1, M*N);
           forwards micro-batch-major with chunks ascending, backwards
           micro-batches first-in-first-out and chunks last-in-first-out.
The peak is taken right after a forward allocates. Seq1F1B chunk lengths are
the paper's computation-wise split (every chunk the same FLOPs, attention cost
grows with the prefix), solved here by bisection from the last chunk back.

Usage:
  bench/megatron_memory.py --config examples/paper/gpt-7b-32k.json \
      --seq-len 32768 --tp 8 --pp 4 --microbatches 16 --chunks 4
Prints one line per schedule: peak GB (1e9 bytes) over stages, stage 0 GB,
and the static / activation split of the peak stage. --json for machine use.
"""
import argparse
import json
import sys


def shape_from_config(path):
    with open(path) as f:
        c = json.load(f)
    if c.get("model_type") == "gpt2":
        h = c["n_embd"]
        return dict(layers=c["n_layer"], hidden=h, heads=c["n_head"],
                    ffn=c.get("n_inner") or 4 * h, vocab=c["vocab_size"])
    h = c["hidden_size"]
    return dict(layers=c["num_hidden_layers"], hidden=h,
                heads=c["num_attention_heads"], ffn=c["intermediate_size"],
                vocab=c["vocab_size"])


def pad_vocab(vocab, tp, multiple=128):
    step = multiple * tp
    return (vocab + step - 1) // step * step


def layer_params(h, ffn, tp):
    """Parameters of one GPT layer held by one tensor-parallel rank."""
    split = (3 * h * h + 3 * h) + h * h + (h * ffn + ffn) + ffn * h
    replicated = 2 * h + 2 * h + h + h  # two LayerNorms, proj and fc2 biases
    return split / tp + replicated


def stage_layers(layers, pp):
    base, extra = divmod(layers, pp)
    return [base + (1 if r < extra else 0) for r in range(pp)]


def chunk_flops(s, e, shape):
    """Forward FLOPs of a chunk of s tokens ending at absolute position e, per
    layer (the paper's model: causal attention over the prefix, projections,
    MLP)."""
    h, a = shape["hidden"], shape["heads"]
    d = h // a
    attention = a * (4 * d + 3) * (s * e - s * s / 2)
    projections = 8 * s * h * h
    mlp = 4 * s * h * shape["ffn"]
    return attention + projections + mlp


def computation_wise_split(seq, n, shape, align=1):
    """Chunk lengths (first to last) with equal FLOPs, solved from the end."""
    if n == 1:
        return [seq]
    total = chunk_flops(seq, seq, shape)
    target = total / n
    lengths = []
    end = seq
    for _ in range(n - 1):
        lo, hi = 0.0, float(end)
        for _ in range(100):
            mid = (lo + hi) / 2
            if chunk_flops(mid, end, shape) < target:
                lo = mid
            else:
                hi = mid
        s = max(align, int(round(lo / align)) * align)
        lengths.append(s)
        end -= s
    lengths.append(end)
    return lengths[::-1]


def peak_units(rank, pp, m, n, lengths):
    """Most tokens held by `rank` right after a forward, replaying 1F1B
    (n == 1) or Seq1F1B."""
    units = m * n
    warmup = min(pp - rank - 1 + (n - 1), units)
    forwards = [(mb, c) for mb in range(m) for c in range(n)]
    backwards = [(mb, c) for mb in range(m) for c in reversed(range(n))]
    held, tokens, peak = set(), 0, 0
    fi = bi = 0

    def forward():
        nonlocal fi, tokens, peak
        u = forwards[fi]
        fi += 1
        held.add(u)
        tokens += lengths[u[1]]
        peak = max(peak, tokens)

    def backward():
        nonlocal bi, tokens
        u = backwards[bi]
        bi += 1
        assert u in held, f"backward of {u} before its forward"
        held.remove(u)
        tokens -= lengths[u[1]]

    for _ in range(warmup):
        forward()
    for _ in range(units - warmup):
        forward()
        backward()
    while bi < units:
        backward()
    return peak


def stage_memory(shape, seq, tp, pp, m, n, micro_batch=1, act_per_token_layer=34,
                 recompute=False):
    h, vocab = shape["hidden"], pad_vocab(shape["vocab"], tp)
    layers = stage_layers(shape["layers"], pp)
    lengths = computation_wise_split(seq, n, shape, align=tp if tp > 1 else 1)
    out = []
    for r in range(pp):
        params = layers[r] * layer_params(h, shape["ffn"], tp)
        layer_bytes = act_per_token_layer * h / tp
        transient = 0
        if recompute:
            kept = 2 * h / tp + (4 * h / tp if n > 1 else 0)
            per_token = layers[r] * kept
            if layers[r]:
                transient = layer_bytes * max(lengths) * micro_batch
        else:
            per_token = layers[r] * layer_bytes
        if r == 0:
            params += vocab * h / tp  # word embeddings (vocab-parallel)
        if r == pp - 1:
            params += 2 * h + vocab * h / tp  # final LayerNorm + output layer
            per_token += 2 * h / tp + 2 * h / tp + 4 * vocab / tp
        static = 18 * params
        tokens = peak_units(r, pp, m, n, lengths) * micro_batch
        act = per_token * tokens + transient
        out.append(dict(rank=r, layers=layers[r], static=static,
                        activations=act, tokens=tokens, total=static + act))
    return out, lengths


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", help="config.json (gpt2 or llama style keys)")
    p.add_argument("--layers", type=int)
    p.add_argument("--hidden", type=int)
    p.add_argument("--heads", type=int)
    p.add_argument("--vocab", type=int)
    p.add_argument("--ffn", type=int)
    p.add_argument("--seq-len", type=int, required=True)
    p.add_argument("--tp", type=int, default=1)
    p.add_argument("--pp", type=int, default=1)
    p.add_argument("--microbatches", type=int, default=None,
                   help="micro-batches per step M (default 2*P)")
    p.add_argument("--chunks", type=int, default=4, help="Seq1F1B chunks N")
    p.add_argument("--micro-batch-size", type=int, default=1)
    p.add_argument("--act-bytes", type=float, default=34,
                   help="activation bytes per token per layer, times h/t "
                        "(34 = Korthikanti with dropout masks; 32 without)")
    p.add_argument("--recompute", choices=("none", "full"), default="none",
                   help="full activation recomputation, one layer per checkpoint")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    shape = shape_from_config(a.config) if a.config else {}
    for key in ("layers", "hidden", "heads", "vocab", "ffn"):
        if getattr(a, key) is not None:
            shape[key] = getattr(a, key)
    shape.setdefault("ffn", 4 * shape.get("hidden", 0))
    missing = [k for k in ("layers", "hidden", "heads", "vocab") if not shape.get(k)]
    if missing:
        p.error("need --config or --" + ", --".join(missing))
    m = a.microbatches or 2 * a.pp
    results = {}
    for name, n in (("1f1b", 1), ("seq1f1b", a.chunks)):
        stages, lengths = stage_memory(shape, a.seq_len, a.tp, a.pp, m, n,
                                       a.micro_batch_size, a.act_bytes,
                                       a.recompute == "full")
        top = max(stages, key=lambda s: s["total"])
        results[name] = dict(chunks=n, chunk_lengths=lengths, stages=stages,
                             peak_gb=top["total"] / 1e9, peak_rank=top["rank"],
                             stage0_gb=stages[0]["total"] / 1e9)
        if not a.json:
            print(f"{name:8s} N={n} peak {top['total'] / 1e9:7.2f} GB (rank {top['rank']}: "
                  f"static {top['static'] / 1e9:.2f} + activations {top['activations'] / 1e9:.2f}, "
                  f"{top['tokens']} tokens in flight)  stage 0 {stages[0]['total'] / 1e9:7.2f} GB"
                  f"  chunks {lengths}")
    if a.json:
        json.dump(results, sys.stdout, indent=1)
        print()


if __name__ == "__main__":
    main()
