#!/usr/bin/env python3
"""PyTorch's timing of one GPT decoder layer, forward + backward, bf16.

The baseline that s1f-layer-bench (our CUDA layer) is compared against, on
the same cases: hidden d, heads x head_dim (= d), a sequence of `seq` tokens
cut into chunks (one chunk = the whole sequence), batch 1.

    x -> layer_norm -> Linear(d, 3d) -> q, k, v [1, heads, len, head_dim]
      -> scaled_dot_product_attention -> Linear(d, d) -> + x = h
      -> layer_norm -> Linear(d, 4d) -> gelu(tanh) -> Linear(4d, d) -> + h

Chunked runs take the naive KV-prefix approach: chunk c's queries attend to
torch.cat of the k/v of chunks 0..c with a bottom-right-aligned causal mask
(torch.nn.attention.bias.causal_lower_right; is_causal=True when the query
and key lengths are equal), so autograd flows into earlier chunks' k/v
through the cat. The forwards of the chunks run in order, then one
torch.autograd.backward over all chunk outputs with fixed random output
gradients. Each attention backend is timed on its own under
torch.nn.attention.sdpa_kernel (cuDNN, flash; memory-efficient only for the
smallest case); a backend that fails is recorded as an error, with no
fallback. CUDA events, one warm-up, median of --reps.

FLOPs (model FLOPs, the same for chunked and whole runs): forward + backward
= 3 * (24 d^2 S + 2 d S^2), causal attention counted at half the square.

    python3 torch_layer.py [--cases FILE] [--json OUT] [--reps N]
        [--filter SUBSTR] [--deadline SECONDS] [--gemm-check]

--cases: {"cases": [{"name", "d", "heads", "head_dim", "seq", "chunks"}]}
(s1f-layer-bench --cases-json writes it); without it, the two 7B 32k cases
below. The JSON is rewritten after every case, so a run killed by a timeout
still leaves the cases it finished. Exit status 0 unless nothing could run.
"""

import argparse
import gc
import json
import os
import sys
import time
import warnings

T_START = time.monotonic()

DEFAULT_CASES = [
    dict(name="7b-32k-n1", d=4096, heads=32, head_dim=128, seq=32768,
         chunks=[32768]),
    dict(name="7b-32k-n4", d=4096, heads=32, head_dim=128, seq=32768,
         chunks=[11072, 8448, 7040, 6208]),
]
# Timed first (their results feed the targets); the output keeps file order.
PRIORITY = ("7b-32k-n4", "7b-32k-n1")


def layer_flops(d, seq):
    """Model FLOPs of one layer's forward + backward (causal: half the S^2)."""
    return 3.0 * (24.0 * d * d * seq + 2.0 * d * seq * seq)


def elapsed():
    return time.monotonic() - T_START


def log(msg):
    print(f"torch_layer [{elapsed():5.0f} s] {msg}", file=sys.stderr,
          flush=True)


def short(e, limit=400):
    """An exception as one short line."""
    text = " ".join(str(e).split())
    if len(text) > limit:
        text = text[:limit] + " ..."
    return f"{type(e).__name__}: {text}"


def write_json(path, data):
    if not path:
        return
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def check_case(c):
    """A case's problem as a string, or None."""
    try:
        d, heads, hd, seq = (int(c["d"]), int(c["heads"]),
                             int(c.get("head_dim", 0) or 0), int(c["seq"]))
    except (KeyError, TypeError, ValueError) as e:
        return f"bad case: {short(e)}"
    if not hd:
        hd = d // heads if heads else 0
    chunks = c.get("chunks") or [seq]
    if heads * hd != d:
        return f"bad case: heads*head_dim = {heads}*{hd} != d = {d}"
    if sum(chunks) != seq or min(chunks) <= 0:
        return f"bad case: chunks {chunks} do not sum to seq {seq}"
    return None


def load_cases(path):
    if not path:
        return DEFAULT_CASES, "built-in defaults"
    with open(path) as f:
        data = json.load(f)
    cases = data["cases"] if isinstance(data, dict) else data
    return list(cases), path


class Clock:
    """CUDA events on a GPU; perf_counter with synchronisation elsewhere
    (--device cpu, for trying the script out without a GPU)."""

    def __init__(self, torch, cuda):
        self.torch, self.cuda = torch, cuda

    def mark(self):
        if self.cuda:
            e = self.torch.cuda.Event(enable_timing=True)
            e.record()
            return e
        return time.perf_counter()

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize()

    def ms(self, a, b):
        if self.cuda:
            return a.elapsed_time(b)
        return (b - a) * 1e3


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    if n == 0:
        return None
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", help="cases JSON (default: the 7B 32k cases)")
    ap.add_argument("--json", help="output JSON")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--filter", default="", help="only cases whose name "
                    "contains this")
    ap.add_argument("--deadline", type=float, default=0.0,
                    help="seconds after start after which no new case or "
                    "backend starts (0: none)")
    ap.add_argument("--gemm-check", action="store_true",
                    help="also time one bf16 8192^3 matmul")
    ap.add_argument("--device", default="cuda",
                    help="cuda, or cpu to try the script out on tiny cases")
    args = ap.parse_args()
    reps = max(1, args.reps)

    try:
        all_cases, source = load_cases(args.cases)
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"torch_layer: cannot read cases from {args.cases}: {short(e)}",
              file=sys.stderr)
        return 2
    cases = [c for c in all_cases if isinstance(c, dict) and
             args.filter in str(c.get("name", ""))]

    try:
        import torch
        import torch.nn.functional as F
        from torch.nn.attention import SDPBackend, sdpa_kernel
        from torch.nn.attention.bias import causal_lower_right
    except ImportError as e:  # pragma: no cover - depends on the machine
        print(f"torch_layer: no usable PyTorch ({e})", file=sys.stderr)
        write_json(args.json, dict(error=f"no usable PyTorch ({e})",
                                   cases=[]))
        return 3
    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        print("torch_layer: no CUDA device visible", file=sys.stderr)
        write_json(args.json, dict(torch=torch.__version__, cases=[],
                                   error="no CUDA device visible"))
        return 3
    dev = torch.device(args.device)
    bf = torch.bfloat16
    clock = Clock(torch, cuda)
    OOM = getattr(torch.cuda, "OutOfMemoryError", MemoryError)
    # CausalBias materialising its mask warns on every call: once is enough.
    warnings.filterwarnings("once")

    def cudnn_version():
        try:
            return torch.backends.cudnn.version()
        except Exception:  # noqa: BLE001 - informational only
            return None

    result = dict(
        torch=torch.__version__,
        cuda=getattr(torch.version, "cuda", None),
        device=torch.cuda.get_device_name() if cuda else str(dev),
        cudnn=cudnn_version(),
        reps=reps,
        cases_source=source,
        flops="3 * (24 d^2 S + 2 d S^2) per layer forward+backward, "
              "causal attention at half the square; the same for chunked runs",
        cases=[],
    )
    try:
        result["flash_available"] = bool(
            torch.backends.cuda.is_flash_attention_available())
    except Exception:  # noqa: BLE001
        pass

    def free():
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()

    # ---- the GEMM sanity anchor ------------------------------------------
    if args.gemm_check:
        n = 8192 if cuda else 512
        try:
            a = torch.randn(n, n, device=dev, dtype=bf)
            b = torch.randn(n, n, device=dev, dtype=bf)
            for _ in range(3):
                torch.mm(a, b)
            clock.sync()
            ms = []
            for _ in range(20):
                e0 = clock.mark()
                torch.mm(a, b)
                e1 = clock.mark()
                clock.sync()
                ms.append(clock.ms(e0, e1))
            t = median(ms)
            result["gemm_check"] = dict(m=n, n=n, k=n, dtype="bf16", ms=t,
                                        tflops=2.0 * n ** 3 / (t * 1e9))
            log(f"gemm {n}^3 bf16: {t:.3f} ms, "
                f"{result['gemm_check']['tflops']:.0f} TFLOP/s")
            del a, b
        except Exception as e:  # noqa: BLE001 - record and go on
            result["gemm_check"] = dict(error=short(e))
            log(f"gemm check failed: {short(e)}")
        free()

    # ---- the layer -------------------------------------------------------
    def make_layer(d):
        def lin(i, o):
            return torch.nn.Linear(i, o, bias=True, device=dev, dtype=bf)

        def vec(value):
            return torch.nn.Parameter(
                torch.full((d,), value, device=dev, dtype=bf))

        w = dict(ln1_w=vec(1.0), ln1_b=vec(0.0), qkv=lin(d, 3 * d),
                 o=lin(d, d), ln2_w=vec(1.0), ln2_b=vec(0.0),
                 fc1=lin(d, 4 * d), fc2=lin(4 * d, d))
        params = []
        for v in w.values():
            params.extend(v.parameters() if isinstance(v, torch.nn.Module)
                          else [v])
        return w, params

    def chunk_forward(w, xc, ks, vs, heads, hd):
        """One chunk's layer forward; appends its k/v to ks/vs."""
        L, d = xc.shape[1], xc.shape[2]
        h = F.layer_norm(xc, (d,), w["ln1_w"], w["ln1_b"], 1e-5)
        q, k, v = w["qkv"](h).split(d, dim=-1)
        q = q.view(1, L, heads, hd).transpose(1, 2)
        k = k.view(1, L, heads, hd).transpose(1, 2)
        v = v.view(1, L, heads, hd).transpose(1, 2)
        ks.append(k)
        vs.append(v)
        kk = torch.cat(ks, dim=2) if len(ks) > 1 else k
        vv = torch.cat(vs, dim=2) if len(vs) > 1 else v
        lkv = kk.shape[2]
        if lkv == L:
            a = F.scaled_dot_product_attention(q, kk, vv, is_causal=True)
        else:
            a = F.scaled_dot_product_attention(
                q, kk, vv, attn_mask=causal_lower_right(L, lkv))
        a = a.transpose(1, 2).reshape(1, L, d)
        h1 = xc + w["o"](a)
        m = F.layer_norm(h1, (d,), w["ln2_w"], w["ln2_b"], 1e-5)
        m = w["fc2"](F.gelu(w["fc1"](m), approximate="tanh"))
        return h1 + m

    def lower_right_path(heads, hd):
        """Which kernel a bottom-right causal mask gets under the current
        sdpa_kernel setting (CausalBias dispatches it itself: the flash op,
        else the efficient op, else a materialised boolean mask)."""
        try:
            from torch.backends.cuda import (SDPAParams,
                                             can_use_efficient_attention,
                                             can_use_flash_attention)
            q = torch.empty(1, heads, 64, hd, device=dev, dtype=bf,
                            requires_grad=True)
            k = torch.empty(1, heads, 128, hd, device=dev, dtype=bf,
                            requires_grad=True)
            try:
                p = SDPAParams(q, k, k, None, 0.0, False, False)
            except TypeError:  # older signature, no enable_gqa
                p = SDPAParams(q, k, k, None, 0.0, False)
            if can_use_flash_attention(p):
                return "flash op (causal = bottom-right)"
            if can_use_efficient_attention(p):
                return "efficient op (lower-right mask type)"
            return "materialised boolean mask, attn_mask path"
        except Exception as e:  # noqa: BLE001 - informational only
            return f"unknown ({short(e, 120)})"

    backend_enums = {
        "cudnn": getattr(SDPBackend, "CUDNN_ATTENTION", None),
        "flash": getattr(SDPBackend, "FLASH_ATTENTION", None),
        "efficient": getattr(SDPBackend, "EFFICIENT_ATTENTION", None),
    }

    def time_backend(bname, case, w, params, x, gys):
        """Warm-up + reps of the whole layer (all chunks) under one backend."""
        enum = backend_enums[bname]
        if enum is None:
            return dict(error=f"unsupported: this PyTorch has no "
                        f"SDPBackend for {bname}")
        heads, hd = case["heads"], case["head_dim"]
        chunks = case["chunks"]
        rec = {}
        with sdpa_kernel([enum]):
            if len(chunks) > 1:
                rec["lower_right_path"] = lower_right_path(heads, hd)
            totals, fwds, bwds = [], [], []
            per_chunk = [[] for _ in chunks]
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            for rep in range(reps + 1):  # rep 0: warm-up
                for p in params:
                    p.grad = None
                x.grad = None
                clock.sync()
                m0 = clock.mark()
                marks = []
                outs, ks, vs = [], [], []
                for xc in x.split(chunks, dim=1):
                    outs.append(chunk_forward(w, xc, ks, vs, heads, hd))
                    marks.append(clock.mark())
                torch.autograd.backward(outs, gys)
                m1 = clock.mark()
                clock.sync()
                del outs, ks, vs
                if rep == 0:
                    continue
                totals.append(clock.ms(m0, m1))
                fwds.append(clock.ms(m0, marks[-1]))
                bwds.append(clock.ms(marks[-1], m1))
                prev = m0
                for i, m in enumerate(marks):
                    per_chunk[i].append(clock.ms(prev, m))
                    prev = m
            ms = median(totals)
            rec.update(ms=ms, tflops=case["flops"] / (ms * 1e9),
                       fwd_ms=median(fwds), bwd_ms=median(bwds),
                       chunk_fwd_ms=[median(c) for c in per_chunk],
                       reps_ms=totals)
            if cuda:
                rec["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
            if len(chunks) > 1:  # the chunked output against the whole run
                with torch.no_grad():
                    full = chunk_forward(w, x, [], [], heads, hd)
                    ks, vs = [], []
                    got = torch.cat([chunk_forward(w, xc, ks, vs, heads, hd)
                                     for xc in x.split(chunks, dim=1)], dim=1)
                    diff = (got.float() - full.float()).norm()
                    rec["check_rel_err"] = float(diff / full.float().norm())
                    del full, got, ks, vs
        return rec

    smallest = None
    valid = [c for c in cases if check_case(c) is None]
    if valid:
        smallest = min(valid, key=lambda c: (
            layer_flops(int(c["d"]), int(c["seq"])), len(c.get("chunks") or [1])
        )).get("name")

    # Output rows in file order; pending ones say so if the run is killed.
    rows = [dict(name=c.get("name"), skipped="not run (stopped before it)")
            for c in cases]
    result["cases"] = rows
    order = sorted(range(len(cases)), key=lambda i: (
        PRIORITY.index(cases[i].get("name")) if cases[i].get("name")
        in PRIORITY else len(PRIORITY), i))
    write_json(args.json, result)
    gen = torch.Generator(device=dev)
    ran = 0

    for i in order:
        c = cases[i]
        name = c.get("name")
        bad = check_case(c)
        if bad:
            rows[i] = dict(name=name, error=bad)
            log(f"{name}: {bad}")
            write_json(args.json, result)
            continue
        d, heads, seq = int(c["d"]), int(c["heads"]), int(c["seq"])
        hd = int(c.get("head_dim") or d // heads)
        chunks = [int(n) for n in (c.get("chunks") or [seq])]
        case = dict(name=name, d=d, heads=heads, head_dim=hd, seq=seq,
                    chunks=chunks, flops=layer_flops(d, seq))
        rows[i] = row = dict(case, backends={}, best=None)
        if args.deadline and elapsed() > args.deadline:
            row["skipped"] = f"deadline ({args.deadline:.0f} s)"
            log(f"{name}: skipped, past the deadline")
            write_json(args.json, result)
            continue
        backends = ["cudnn", "flash"] + (["efficient"] if name == smallest
                                         else [])
        w = params = x = gys = None
        try:
            gen.manual_seed(1234)
            w, params = make_layer(d)
            x = torch.randn(1, seq, d, device=dev, dtype=bf, generator=gen)
            x.requires_grad_(True)
            gys = [torch.randn(1, n, d, device=dev, dtype=bf, generator=gen)
                   for n in chunks]
            for b in backends:
                if args.deadline and elapsed() > args.deadline:
                    row["backends"][b] = dict(
                        skipped=f"deadline ({args.deadline:.0f} s)")
                    log(f"{name} {b}: skipped, past the deadline")
                    continue
                try:
                    rec = time_backend(b, case, w, params, x, gys)
                except OOM as e:
                    rec = dict(error=f"out of memory: {short(e, 200)}")
                except Exception as e:  # noqa: BLE001 - record, go on
                    rec = dict(error=f"unsupported: {short(e)}")
                for p in params:
                    p.grad = None
                x.grad = None
                free()
                row["backends"][b] = rec
                if "ms" in rec:
                    ran += 1
                    best = row["best"]
                    if best is None or rec["ms"] < row["backends"][best]["ms"]:
                        row["best"] = b
                    cf = " ".join(f"{t:.2f}" for t in rec["chunk_fwd_ms"])
                    chk = (f", chunked vs whole rel err "
                           f"{rec['check_rel_err']:.1e}"
                           if "check_rel_err" in rec else "")
                    log(f"{name} {b}: {rec['ms']:.2f} ms, "
                        f"{rec['tflops']:.0f} TFLOP/s (fwd {rec['fwd_ms']:.2f}"
                        f" [{cf}], bwd {rec['bwd_ms']:.2f}){chk}")
                else:
                    log(f"{name} {b}: {rec.get('error') or rec}")
                write_json(args.json, result)
        except OOM as e:
            row["error"] = f"out of memory: {short(e, 200)}"
            log(f"{name}: {row['error']}")
        except Exception as e:  # noqa: BLE001 - record, go on
            row["error"] = short(e)
            log(f"{name}: {row['error']}")
        del w, params, x, gys
        free()
        write_json(args.json, result)

    result["elapsed_s"] = elapsed()
    write_json(args.json, result)
    log(f"done: {ran} backend runs timed")
    return 0 if ran or not cases else 1


if __name__ == "__main__":
    sys.exit(main())
