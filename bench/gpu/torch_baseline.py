#!/usr/bin/env python3
"""PyTorch timings of the operations s1f-cuda-bench times, at the same sizes.

A reference point for the CUDA backend's kernels: the same shapes and dtypes
(bf16 activations, fp32 optimizer), CUDA events, warm-up, median of --reps.
Rows carry the names s1f-cuda-bench uses so that run.sh can put them side by
side. PyTorch does not always do the same work (noted in "note"): its
parameter gradients are written, not added; its fused AdamW writes no bf16
copy; its cross-entropy goes through autograd.

    python3 torch_baseline.py [--json FILE] [--reps N] [--tokens N]
"""

import argparse
import json
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--tokens", type=int, default=8192)
    args = ap.parse_args()

    try:
        import torch
        import torch.nn.functional as F
    except ImportError as e:  # pragma: no cover - depends on the machine
        print(f"torch_baseline: no PyTorch ({e})", file=sys.stderr)
        return 3
    if not torch.cuda.is_available():
        print("torch_baseline: no CUDA device visible", file=sys.stderr)
        return 3

    dev = torch.device("cuda")
    bf = torch.bfloat16
    T, H, Fm, V = args.tokens, 4096, 11008, 32000
    gen = torch.Generator(device=dev).manual_seed(0)
    results = []

    def rand(*shape, lo=-1.0, hi=1.0, dtype=bf):
        t = torch.rand(*shape, device=dev, generator=gen, dtype=torch.float32)
        return (t * (hi - lo) + lo).to(dtype)

    start = torch.cuda.Event(enable_timing=True)
    stop = torch.cuda.Event(enable_timing=True)

    def timed(fn):
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
        ms = []
        for _ in range(args.reps):
            start.record()
            fn()
            stop.record()
            stop.synchronize()
            ms.append(start.elapsed_time(stop))
        ms.sort()
        return ms[len(ms) // 2]

    def memory(name, dtype, shape, nbytes, fn, note=""):
        ms = timed(fn)
        results.append(dict(name=name, dtype=dtype, shape=shape, ms=ms,
                            gbps=nbytes / (ms * 1e-3) / 1e9, tflops=0.0,
                            note=note))
        print(f"{name:28s} {dtype:5s} {shape:22s} {ms:9.4f} ms", flush=True)

    def compute(name, dtype, shape, flops, fn, note=""):
        ms = timed(fn)
        results.append(dict(name=name, dtype=dtype, shape=shape, ms=ms,
                            gbps=0.0, tflops=flops / (ms * 1e-3) / 1e12,
                            note=note))
        print(f"{name:28s} {dtype:5s} {shape:22s} {ms:9.4f} ms", flush=True)

    e2 = 2.0
    with torch.no_grad():
        x, dy = rand(T, H, lo=-2, hi=2), rand(T, H)
        g, b = rand(H, lo=0.5, hi=1.5), rand(H, lo=-0.5, hi=0.5)
        s, n = f"{T}x{H}", float(T * H)
        memory("layer_norm_fwd", "bf16", s, 2 * n * e2,
               lambda: F.layer_norm(x, (H,), g, b, 1e-5))
        _, mean, rstd = torch.ops.aten.native_layer_norm(x, (H,), g, b, 1e-5)
        memory("layer_norm_bwd", "bf16", s, 3 * n * e2,
               lambda: torch.ops.aten.native_layer_norm_backward(
                   dy, x, (H,), mean, rstd, g, b, [True, True, True]),
               "param grads written")
        if hasattr(F, "rms_norm"):
            memory("rms_norm_fwd", "bf16", s, 2 * n * e2,
                   lambda: F.rms_norm(x, (H,), g, 1e-6))
        y = torch.empty_like(x)
        memory("add_fwd", "bf16", s, 3 * n * e2,
               lambda: torch.add(x, dy, out=y))

        a, u, d = rand(T, Fm, lo=-4, hi=4), rand(T, Fm, lo=-4, hi=4), rand(T, Fm)
        s, n = f"{T}x{Fm}", float(T * Fm)
        memory("gelu_fwd", "bf16", s, 2 * n * e2,
               lambda: F.gelu(a, approximate="tanh"))
        memory("gelu_bwd", "bf16", s, 3 * n * e2,
               lambda: torch.ops.aten.gelu_backward(d, a, approximate="tanh"))
        memory("swiglu_fwd", "bf16", s, 3 * n * e2, lambda: F.silu(a) * u,
               "eager: two kernels")
        del a, u, d

        ids = torch.randint(0, V, (T,), device=dev, generator=gen)
        table = rand(V, H)
        s, n = f"{T}x{H}", float(T * H)
        memory("embedding_fwd", "bf16", s, 2 * n * e2,
               lambda: F.embedding(ids, table))
        memory("embedding_bwd", "bf16", s, n * (e2 + 8),
               lambda: torch.ops.aten.embedding_dense_backward(
                   dy, ids, V, -1, False), "writes a fresh [V, H] gradient")
        del table

    logits = rand(T, V, lo=-8, hi=8)
    targets = torch.randint(0, V, (T,), device=dev, generator=gen)
    s, n = f"{T}x{V}", float(T * V)
    with torch.no_grad():
        memory("cross_entropy_fwd", "bf16", s, n * e2,
               lambda: F.cross_entropy(logits, targets, reduction="sum"))
    lg = logits.clone().requires_grad_(True)

    def ce_fused():
        loss = F.cross_entropy(lg, targets, reduction="sum")
        torch.autograd.grad(loss, lg)

    memory("cross_entropy_fused", "bf16", s, 2 * n * e2, ce_fused,
           "autograd fwd+bwd")
    del logits, lg

    sizes = [H * H] * 4 + [Fm * H] * 3 + [H, H]
    params = [torch.nn.Parameter(torch.rand(k, device=dev) * 2 - 1)
              for k in sizes]
    for p in params:
        p.grad = (torch.rand_like(p) * 2 - 1) * 1e-2
    total = sum(sizes)
    s = f"{total // 1000000}M_params"
    grads = [p.grad for p in params]
    memory("sum_squares_multi", "fp32", s, 4.0 * total,
           lambda: torch._foreach_norm(grads, 2), "foreach norms")
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.1, fused=True)
    memory("adamw_multi", "fp32", s, (16.0 + 12.0 + 2.0) * total, opt.step,
           "fused AdamW, no bf16 copy")
    del params, grads, opt

    with torch.no_grad():
        x = rand(T, H)
        w = rand(Fm, H, lo=-0.05, hi=0.05)
        bias = rand(Fm, lo=-0.1, hi=0.1)
        yF = rand(T, Fm)
        head = rand(V, H, lo=-0.05, hi=0.05)
        tHH, tHF, tHV = 2.0 * T * H * H, 2.0 * T * H * Fm, 2.0 * T * H * V
        compute("linear_fwd_qkvo", "bf16", f"{T}x{H}x{H}", tHH,
                lambda: F.linear(x, w[:H], bias[:H]))
        compute("linear_fwd_mlp_up", "bf16", f"{T}x{H}x{Fm}", tHF,
                lambda: F.linear(x, w, bias))
        compute("linear_gelu_fwd_mlp_up", "bf16", f"{T}x{H}x{Fm}", tHF,
                lambda: F.gelu(F.linear(x, w, bias), approximate="tanh"),
                "eager: GEMM + GELU")
        compute("linear_fwd_mlp_down", "bf16", f"{T}x{Fm}x{H}", tHF,
                lambda: F.linear(yF, w.view(H, Fm)))
        compute("linear_bwd_dx_mlp_up", "bf16", f"{T}x{H}x{Fm}", tHF,
                lambda: torch.mm(yF, w))
        compute("linear_bwd_dW_mlp_up", "bf16>fp32", f"{T}x{H}x{Fm}", tHF,
                lambda: torch.mm(yF.t(), x), "bf16 output, written")
        compute("linear_fwd_lm_head", "bf16", f"{T}x{H}x{V}", tHV,
                lambda: F.linear(x, head))

    # Attention over a 32k prefix (32 heads of 128): the whole causal
    # sequence, and the last of four even chunks with a bottom-right mask
    # (what s1f-cuda-bench's attention rows time). Model FLOPs as there.
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.nn.attention.bias import causal_lower_right
    S, heads, hd = 32768, 32, 128
    for first in (0, S - S // 4):  # first query position
        n = S - first
        q = rand(1, heads, n, hd).requires_grad_(True)
        k = rand(1, heads, S, hd).requires_grad_(True)
        v = rand(1, heads, S, hd).requires_grad_(True)
        do = rand(1, heads, n, hd)
        fwd = 4.0 * hd * heads * (n * S - n * n / 2)
        shape = f"{heads}x{hd}_q{n}@{first}"
        for name, backend in (("cudnn", SDPBackend.CUDNN_ATTENTION),
                              ("flash", SDPBackend.FLASH_ATTENTION)):
            def attn():
                if first == 0:
                    return F.scaled_dot_product_attention(q, k, v,
                                                          is_causal=True)
                return F.scaled_dot_product_attention(
                    q, k, v, attn_mask=causal_lower_right(n, S))
            try:
                with sdpa_kernel([backend]):
                    with torch.no_grad():
                        compute(f"attention_fwd_{name}", "bf16", shape, fwd,
                                attn)
                    out = attn()
                    compute(f"attention_bwd_{name}", "bf16", shape, 2.5 * fwd,
                            lambda: torch.autograd.grad(out, (q, k, v), do,
                                                        retain_graph=True),
                            "autograd backward only")
                    del out
            except Exception as e:  # pragma: no cover - depends on the build
                print(f"attention {name} {shape}: unsupported: "
                      f"{str(e).splitlines()[0][:200]}", file=sys.stderr)
        del q, k, v, do

    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(torch=torch.__version__,
                           device=torch.cuda.get_device_name(),
                           tokens=T, results=results), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
