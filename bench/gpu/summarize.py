#!/usr/bin/env python3
"""Collects what bench/gpu/run.sh produced into one JSON and a short table.

Inputs (all under --out, each optional): ctest.log (status of every `gpu`
test, crashes included), gtest/*.json (failure messages and the relative
errors the tests record as properties), bench.json (s1f-cuda-bench),
torch.json (torch_baseline.py), layer.json (s1f-layer-bench with the
default attention engine, which it names) and layer_own.json,
layer_cudnn.json, layer_cudnn_split.json (with each engine named),
torch_layer.json (torch_layer.py), nvidia-smi.txt, steps.txt, env.txt. Output: results.json
next to them, layer.svg (the layer throughputs as a bar chart, when there
are any), gpu-profile.json (the GPU's rates for seq1f1b-plan --gpu, from the
kernel rows), and the tables on stdout (printed last by run.sh). Standard
library only; missing or partial inputs give "n/a", never a crash.
"""

import argparse
import glob
import json
import os
import re
import sys


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def ctest_status(path):
    """name -> Passed | Failed | Skipped | Timeout | Exception ..."""
    status = {}
    try:
        text = open(path, errors="replace").read()
    except OSError:
        return status
    for m in re.finditer(
            r"Test\s+#\d+: (\S+) \.*\s*(?:\*\*\*)?([A-Za-z][\w :]*?)\s+[\d.]+ sec",
            text):
        status[m.group(1)] = m.group(2).strip()
    return status


def gtest_details(out):
    """name -> {result, failures, relerr}."""
    details = {}
    for path in sorted(glob.glob(os.path.join(out, "gtest", "*.json"))):
        data = load_json(path)
        if not data:
            continue
        for suite in data.get("testsuites", []):
            for case in suite.get("testsuite", []):
                name = f"{suite.get('name')}.{case.get('name')}"
                rel = {k[len("relerr_"):]: float(v) for k, v in case.items()
                       if k.startswith("relerr_")}
                tol = {k[len("tol_"):]: float(v) for k, v in case.items()
                       if k.startswith("tol_")}
                fails = [f.get("failure", "") for f in case.get("failures", [])]
                details[name] = dict(result=case.get("result", ""),
                                     failures=fails, relerr=rel, tol=tol)
    return details


def tolerance(detail, test, key):
    """The tolerance the test recorded, else the rule by storage type."""
    if key in detail.get("tol", {}):
        return detail["tol"][key]
    return 1e-2 if "bf16" in test.lower() else 1e-5


# ---- the layer benchmark (layer.json vs torch_layer.json) -------------------
N1, N4 = "7b-32k-n1", "7b-32k-n4"  # the cases the targets name


def fnum(v):
    """v as a finite float, else None."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if f == f and abs(f) != float("inf") else None


def pos(v):
    """v as a finite float > 0, else None."""
    f = fnum(v)
    return f if f is not None and f > 0 else None


def layer_flops(d, seq):
    """3 * (24 d^2 S + 2 d S^2): bench/README.md's convention."""
    d, seq = pos(d), pos(seq)
    if d is None or seq is None:
        return None
    return 3.0 * (24.0 * d * d * seq + 2.0 * d * seq * seq)


def device_name(*candidates):
    for d in candidates:
        if isinstance(d, dict):
            d = d.get("name")
        if isinstance(d, str) and d.strip():
            return d.strip()
    return None


def case_list(data):
    cases = data.get("cases") if isinstance(data, dict) else None
    return [c for c in cases if isinstance(c, dict) and c.get("name")] \
        if isinstance(cases, list) else []


def ours_numbers(c):
    """(ms, TFLOP/s, note) of one layer.json case."""
    if not isinstance(c, dict):
        return None, None, "no result"
    if c.get("skipped") is not None:
        return None, None, f"skipped: {c['skipped']}"
    if c.get("error") is not None:
        return None, None, f"error: {c['error']}"
    ms = pos(c.get("ms"))
    tf = pos(c.get("tflops"))
    if tf is None and ms is not None:
        fl = layer_flops(c.get("d"), c.get("seq"))
        tf = fl / (ms * 1e9) if fl else None
    return ms, tf, None if ms is not None else "no time"


def torch_numbers(c):
    """(backend, ms, TFLOP/s, note) of torch_layer.py's best backend."""
    if not isinstance(c, dict):
        return None, None, None, "no result"
    backs = c.get("backends") if isinstance(c.get("backends"), dict) else {}
    timed = {b: r for b, r in backs.items()
             if isinstance(r, dict) and pos(r.get("ms")) is not None}
    notes = [f"{b}: {str(r.get('error') or r.get('skipped'))[:120]}"
             for b, r in backs.items() if b not in timed and
             isinstance(r, dict) and (r.get("error") or r.get("skipped"))]
    if c.get("skipped") is not None:
        notes.insert(0, f"skipped: {c['skipped']}")
    if c.get("error") is not None:
        notes.insert(0, f"error: {c['error']}")
    note = "; ".join(notes) or None
    if not timed:
        return None, None, None, note or "no result"
    best = c.get("best") if c.get("best") in timed else \
        min(timed, key=lambda b: pos(timed[b]["ms"]))
    r = timed[best]
    ms = pos(r["ms"])
    tf = pos(r.get("tflops"))
    if tf is None:
        fl = pos(c.get("flops")) or layer_flops(c.get("d"), c.get("seq"))
        tf = fl / (ms * 1e9) if fl else None
    return best, ms, tf, note


def target(tid, what, value, threshold, higher=True, unit=""):
    if value is None or threshold is None:
        res = "n/a"
    elif higher:
        res = "PASS" if value >= threshold else "FAIL"
    else:
        res = "PASS" if value <= threshold else "FAIL"
    return dict(id=tid, what=what, value=value, threshold=threshold,
                result=res, unit=unit)


def spread_of(pb, key):
    """The profile_balance spread as s1f-layer-bench reports it (a fraction:
    max/min - 1 of the per-chunk forward+backward times), else computed the
    same way from the chunk times."""
    s = fnum(pb.get(f"{key}_spread"))
    if s is not None:
        return s
    ms = pb.get(f"{key}_chunk_ms")
    ms = [pos(t) for t in ms] if isinstance(ms, list) else []
    if ms and all(t is not None for t in ms):
        return max(ms) / min(ms) - 1
    return None


# s1f-layer-bench's output files (run.sh): layer.json with the default
# engine (its "attention" names it; "own" before there was a default), then
# one file per engine named on the command line.
MAIN_FILE = "layer.json"
ENGINE_FILES = (("cudnn-split", "layer_cudnn_split.json"),
                ("cudnn", "layer_cudnn.json"), ("own", "layer_own.json"))


def layer_files(out):
    """[(engine, file)], layer.json's first, one file per engine."""
    main = load_json(os.path.join(out, MAIN_FILE))
    engine = main.get("attention") if isinstance(main, dict) else None
    files = [(engine if isinstance(engine, str) and engine else "own",
              MAIN_FILE)]
    files += [(e, f) for e, f in ENGINE_FILES if e != files[0][0]]
    return files


def layer_section(out, engine, fname):
    """The layer section of results.json for one attention engine (ours
    against PyTorch's) and the lines of its table, or (None, []) when there
    is nothing to report: no layer JSON at all, or for an engine's own file
    no such file."""
    main = fname == MAIN_FILE
    ours = load_json(os.path.join(out, fname))
    tl = load_json(os.path.join(out, "torch_layer.json"))
    unreadable = [n for n, d in ((fname, ours), ("torch_layer.json", tl))
                  if d is None and os.path.exists(os.path.join(out, n))]
    if ours is None and (tl is None or not main):
        return None, [f"{n}: not valid JSON (cut off by a timeout?)"
                      for n in unreadable if n == fname or main]
    ours = ours if isinstance(ours, dict) else {}
    tl = tl if isinstance(tl, dict) else {}
    ocases = {c["name"]: c for c in case_list(ours)}
    tcases = {c["name"]: c for c in case_list(tl)}
    names = list(ocases) + [n for n in tcases if n not in ocases]

    rows = []
    for n in names:
        o, t = ocases.get(n), tcases.get(n)
        oms, otf, onote = ours_numbers(o)
        tb, tms, ttf, tnote = torch_numbers(t)
        src = o or t or {}
        chunks = src.get("chunks") if isinstance(src.get("chunks"), list) \
            else []
        best = (t.get("backends") or {}).get(tb) if t and tb else None
        if o and t and o.get("chunks") and t.get("chunks") and \
                o.get("chunks") != t.get("chunks"):
            tnote = "; ".join(x for x in (
                f"PyTorch timed chunks {t.get('chunks')}, ours "
                f"{o.get('chunks')}", tnote) if x)
        rows.append(dict(
            name=n, d=src.get("d"), seq=src.get("seq"), chunks=chunks,
            ours_ms=oms, ours_tflops=otf, ours_note=onote,
            ours_chunk_fwd_ms=(o or {}).get("chunk_fwd_ms"),
            ours_chunk_bwd_ms=(o or {}).get("chunk_bwd_ms"),
            torch_backend=tb, torch_ms=tms, torch_tflops=ttf,
            torch_note=tnote,
            torch_chunk_fwd_ms=best.get("chunk_fwd_ms")
            if isinstance(best, dict) else None,
            ratio=otf / ttf if otf and ttf else None))
    by = {r["name"]: r for r in rows}

    def get(name, key):
        return by.get(name, {}).get(key)

    pb = ours.get("profile_balance")
    pb = pb if isinstance(pb, dict) else {}
    o1, o4 = get(N1, "ours_tflops"), get(N4, "ours_tflops")
    t1, t4 = get(N1, "torch_tflops"), get(N4, "torch_tflops")
    targets = [
        target("a", f"ours {N4} >= 0.95 x ours {N1}", o4,
               0.95 * o1 if o1 else None, unit="TFLOP/s"),
        target("b", f"ours {N4} >= 1.3 x PyTorch {N4}", o4,
               1.3 * t4 if t4 else None, unit="TFLOP/s"),
        target("c", f"ours {N1} >= 0.9 x PyTorch {N1}", o1,
               0.9 * t1 if t1 else None, unit="TFLOP/s"),
        target("stretch", f"ours {N1} >= 600 TFLOP/s", o1, 600.0,
               unit="TFLOP/s"),
        target("d", "profile-balanced split: chunk-time spread <= 5%",
               spread_of(pb, "profile"), 0.05, higher=False, unit="fraction"),
    ]
    dev = device_name(ours.get("device"), tl.get("device"))
    section = dict(
        attention=engine, device=dev, torch_device=device_name(tl.get("device")),
        torch=tl.get("torch"), cudnn=tl.get("cudnn"),
        flops="3 * (24 d^2 S + 2 d S^2) per layer forward+backward",
        cases=rows, targets=targets, profile_balance=pb or None,
        gemm_check=tl.get("gemm_check"))

    # ---- the lines ----------------------------------------------------------
    def f(v, fmt):
        return format(v, fmt) if v is not None else "n/a"

    def pct(v):
        return f"{v * 100:.1f}%" if v is not None else "n/a"

    lines = [f"{n}: not valid JSON (cut off by a timeout?)" for n in unreadable]
    lines += [f"{n}: error: {str(d['error'])[:300]}"
              for n, d in ((fname, ours), ("torch_layer.json", tl))
              if d.get("error") and (n == fname or main)]
    lines += [f"== layer fwd+bwd, bf16, batch 1: ours ({engine} attention) "
              f"vs PyTorch "
             f"{tl.get('torch') or '?'} (cuDNN {tl.get('cudnn') or '?'}) "
             f"on {dev or 'device ?'} =="]
    lines.append(f"{'case':16s} {'chunks':>6s} {'ours ms':>9s} {'TFLOP/s':>8s}"
                 f"  {'torch':9s} {'ms':>9s} {'TFLOP/s':>8s} {'ours/torch':>10s}")
    for r in rows:
        lines.append(
            f"{str(r['name'])[:16]:16s} {len(r['chunks']) or '?':>6} "
            f"{f(r['ours_ms'], '9.2f'):>9s} {f(r['ours_tflops'], '8.0f'):>8s}"
            f"  {(r['torch_backend'] or 'n/a')[:9]:9s} "
            f"{f(r['torch_ms'], '9.2f'):>9s} {f(r['torch_tflops'], '8.0f'):>8s}"
            f" {f(r['ratio'], '9.2f') + ('x' if r['ratio'] else ''):>10s}")
        for who, note in (("ours", r["ours_note"]), ("torch", r["torch_note"])):
            if note:
                lines.append(f"    {who}: {str(note)[:200]}")
        if len(r["chunks"]) > 1 and (r["ours_chunk_fwd_ms"] or
                                     r["torch_chunk_fwd_ms"]):
            def fl(xs):
                if not isinstance(xs, list) or not xs:
                    return "n/a"
                return "[" + " ".join(f(pos(x), ".2f") for x in xs) + "]"
            lines.append(f"    chunk fwd ms: ours {fl(r['ours_chunk_fwd_ms'])}"
                         f", torch {fl(r['torch_chunk_fwd_ms'])}"
                         f"; ours chunk bwd ms {fl(r['ours_chunk_bwd_ms'])}")
    lines.append("targets:")
    for t in targets:
        if t["unit"] == "fraction":
            val = f"spread {pct(t['value'])}"
            thr = f"{t['threshold'] * 100:.0f}%"
        else:
            val = f"{f(t['value'], '.0f')} TFLOP/s"
            thr = f"{f(t['threshold'], '.0f')}"
        lines.append(f"  ({t['id']}) {t['result']:4s} {t['what']}: "
                     f"{val} (needs {'<=' if t['unit'] == 'fraction' else '>='}"
                     f" {thr})")
    if pb:
        if pb.get("error"):
            lines.append(f"  profile balance: {str(pb['error'])[:200]}")
        for key in ("flops", "even", "profile"):
            if key == "even" and f"{key}_split" not in pb:
                continue
            sp = spread_of(pb, key)
            lines.append(
                f"  {key} split {pb.get(key + '_split', 'n/a')}: "
                f"{f(pos(pb.get(key + '_ms')), '.2f')} ms, chunk ms "
                f"{pb.get(key + '_chunk_ms', 'n/a')}, spread {pct(sp)}")
    g = tl.get("gemm_check")
    if isinstance(g, dict):
        lines.append(f"  PyTorch bf16 GEMM check {g.get('m', '?')}^3: "
                     + (f"{f(pos(g.get('tflops')), '.0f')} TFLOP/s"
                        if g.get("error") is None else f"error {g['error']}"))
    return section, lines


def engine_lines(sections, status):
    """Our attention engines side by side: the layer cases each cudnn engine
    timed against the own engine, and how the cudnn engines' GPU tests fared
    (what decided the default)."""
    own = sections.get("own")
    others = [e for e in sections if e != "own"]
    if not own or not others:
        return []
    lines = [f"attention engines (ours: own vs {' and '.join(others)}):"]
    ms = {r["name"]: r["ours_ms"] for r in own["cases"]}
    for engine in others:
        for r in sections[engine]["cases"]:
            a, b = ms.get(r["name"]), r["ours_ms"]
            if a and b:
                lines.append(f"  {r['name']:18s} own {a:8.2f} ms, {engine} "
                             f"{b:8.2f} ms: {engine} {a / b:.2f}x")
    for suite, engine in (("CudaAttentionCudnn", "cudnn"),
                          ("CudaAttentionCudnnSplit", "cudnn-split")):
        tests = {n: st for n, st in status.items()
                 if n.startswith(suite + ".")}
        if not tests:
            continue
        by = {}
        for n, st in sorted(tests.items()):
            by.setdefault(st, []).append(n.split(".", 1)[1])
        lines.append(f"  {suite} tests ({engine}): "
                     + "; ".join(f"{len(ns)} {st.lower()}"
                                 + ("" if st == "Passed" else
                                    f" ({', '.join(ns)})")
                                 for st, ns in sorted(by.items())))
    return lines


def torch_match(torch_rows):
    """row -> torch_baseline.py's row for the same kernel and shape; for
    attention, PyTorch's fastest backend (cudnn or flash) in the same
    direction and shape, whichever engine of ours the row times."""
    rows = [t for t in torch_rows if isinstance(t, dict) and pos(t.get("ms"))]
    exact = {(t.get("name"), t.get("shape")): t for t in rows}

    def match(r):
        name, shape = r.get("name", ""), r.get("shape")
        for d in ("attention_fwd", "attention_bwd"):
            if name.startswith(d):
                same = [t for t in rows if t.get("shape") == shape and
                        str(t.get("name", "")).startswith(d + "_")]
                return min(same, key=lambda t: t["ms"]) if same else None
        return exact.get((name, shape))
    return match


# ---- a GPU profile for the planner (seq1f1b-plan --gpu FILE) ---------------
# Dense bf16 peaks (TFLOP/s) of the cards we know, by a substring of the name.
PEAK_TFLOPS = (("H200", 989.0), ("H100", 989.0), ("A100", 312.0))
# One GPT layer's matrix products as s1f-cuda-bench times them.
GEMM_ROWS = ("linear_fwd_qkvo", "linear_fwd_mlp_up", "linear_gelu_fwd_mlp_up",
             "linear_fwd_mlp_down", "linear_bwd_dx_mlp_up",
             "linear_bwd_dW_mlp_up")
# One GPT layer's element-wise kernels, each as often as the layer runs it.
ELEMENTWISE_ROWS = (("layer_norm_fwd", 2), ("layer_norm_bwd", 2),
                    ("add_fwd", 2), ("gelu_fwd", 1), ("gelu_bwd", 1))


def gpu_profile(bench):
    """(profile, note): the rates of seq1f1b-plan's GPU profile JSON from the
    kernel rows, in the cost model's convention, or (None, why not).

    - matmul_efficiency: a layer's GEMM rows, total FLOPs over total time;
    - attention_efficiency: cuDNN's attention forward + backward (the whole
      sequence, and the last chunk with the default split engine) at model
      FLOPs, which count the backward as twice the forward (the rows count
      a flash backward's 2.5x);
    - memory_bandwidth_gbps: a layer's element-wise kernels, total bytes
      over total time."""
    dev = bench.get("device") if isinstance(bench.get("device"), dict) else {}
    rows = {(r.get("name"), r.get("shape")): r for r in bench.get("results", [])
            if isinstance(r, dict) and pos(r.get("ms"))}
    by_name = {}
    for (name, _), r in rows.items():
        by_name.setdefault(name, r)

    def work(name, key, scale, times=1):  # (ms, FLOPs or bytes) or None
        r = by_name.get(name)
        if r is None or not pos(r.get(key)):
            return None
        return times * r["ms"], times * r[key] * r["ms"] * scale

    def rate(xs):  # per second
        return sum(w for _, w in xs) / (sum(t for t, _ in xs) * 1e-3)

    gemm = [work(n, "tflops", 1e9) for n in GEMM_ROWS]
    elem = [work(n, "gbps", 1e6, times) for n, times in ELEMENTWISE_ROWS]
    attn = []  # the default engine: cudnn whole (@0), cudnn-split chunks
    for (name, shape), f in rows.items():
        whole = str(shape).endswith("@0")
        tag = "_cudnn" if whole else "_cudnn_split"
        b = rows.get(("attention_bwd" + tag, shape))
        if name == "attention_fwd" + tag and b and pos(f.get("tflops")):
            # Model FLOPs: 3x the forward's.
            attn.append((f["ms"] + b["ms"], 3 * f["tflops"] * f["ms"] * 1e9))
    if None in gemm or None in elem or not attn:
        return None, "no GPU profile: s1f-cuda-bench lacks a layer's GEMM, " \
            "cuDNN attention or element-wise rows"
    gemm_tflops, attn_tflops = rate(gemm) / 1e12, rate(attn) / 1e12
    name = str(dev.get("name") or "GPU")
    peak = next((p for key, p in PEAK_TFLOPS if key in name), None)
    note = ""
    if peak is None:
        peak = round(max(gemm_tflops, attn_tflops))
        note = (f" (peak of {name} unknown: efficiencies relative to its "
                f"{peak} TFLOP/s of GEMMs)")
    profile = {"name": f"{name} (measured)", "peak_tflops": peak,
               "matmul_efficiency": round(gemm_tflops / peak, 2),
               "attention_efficiency": round(attn_tflops / peak, 2),
               "memory_bandwidth_gbps": round(rate(elem) / 1e10) * 10}
    if pos(dev.get("memory_gib")):
        profile["memory_gib"] = round(dev["memory_gib"], 1)
    return profile, note


def esc(s):
    return (str(s).replace("&", "&amp;").replace("<", "&lt;")
            .replace(">", "&gt;").replace('"', "&quot;"))


def nice_step(vmax, n=5):
    """A round tick step giving about n ticks up to vmax."""
    raw = vmax / n
    mag = 10 ** len(str(int(raw))) / 10 if raw >= 1 else 1.0
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag


def write_layer_svg(path, section, engines=None):
    """Bars per case, TFLOP/s: ours (the section's attention engine), ours
    with each other engine (`engines`: engine -> its section) and PyTorch's
    best backend. Returns whether it wrote the file (not when there is
    nothing to draw)."""
    rows = section["cases"]
    engines = engines or {}
    engine = section.get("attention")
    series = [("ours", f"ours, {engine} attention" if engine else "ours",
               lambda r: r["ours_tflops"])]
    for engine, sec in engines.items():
        tflops = {r["name"]: r["ours_tflops"] for r in sec.get("cases", [])}
        series.append((engine, f"ours, {engine} attention",
                       lambda r, t=tflops: t.get(r["name"])))
    series.append(("torch", "PyTorch (best backend)",
                   lambda r: r["torch_tflops"]))
    values = [v for r in rows for _, _, get in series
              if (v := get(r)) is not None]
    if not values:
        return False
    vmax = max(values)
    step = nice_step(vmax)
    top = step * (int(vmax / step) + 1)
    left, right, head, foot = 60, 20, 84, 50
    bar = 44 if len(series) == 2 else 34
    group = len(series) * (bar + 6) + 32
    width = max(left + right + group * len(rows), 180 * len(series) + 40, 640)
    height = 420
    plot_h = height - head - foot
    base = head + plot_h

    def y(v):
        return base - plot_h * v / top

    colors = {"ours": "#2c6fbb", "cudnn": "#6aa84f", "cudnn-split": "#8e63b5",
              "own": "#9aa5b1", "torch": "#e8872a"}
    dev = section.get("device") or section.get("torch_device") or "device ?"
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
         f'height="{height}" viewBox="0 0 {width} {height}" '
         f'font-family="sans-serif">',
         f'<rect width="{width}" height="{height}" fill="white"/>',
         f'<text x="{width / 2:.0f}" y="22" text-anchor="middle" '
         f'font-size="15" font-weight="bold">GPT layer forward+backward, '
         f'bf16: TFLOP/s on {esc(dev)}</text>',
         f'<text x="{width / 2:.0f}" y="40" text-anchor="middle" '
         f'font-size="11" fill="#555">model FLOPs 3(24d\u00b2S + 2dS\u00b2); '
         f'PyTorch {esc(section.get("torch") or "?")}, best SDPA backend'
         f'</text>']
    t = 0.0
    while t <= top + 1e-9:
        o.append(f'<line x1="{left}" x2="{width - right}" y1="{y(t):.1f}" '
                 f'y2="{y(t):.1f}" stroke="#ddd"/>')
        o.append(f'<text x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end" '
                 f'font-size="11">{t:g}</text>')
        t += step
    o.append(f'<text x="14" y="{head + plot_h / 2:.0f}" font-size="11" '
             f'text-anchor="middle" transform="rotate(-90 14 '
             f'{head + plot_h / 2:.0f})">TFLOP/s</text>')
    for i, r in enumerate(rows):
        x0 = left + group * i + (group - len(series) * (bar + 6) + 6) / 2
        for j, (who, _, get) in enumerate(series):
            v = get(r)
            bx = x0 + j * (bar + 6)
            cx = bx + bar / 2
            if v is None:
                o.append(f'<text x="{cx:.1f}" y="{base - 6}" font-size="10" '
                         f'text-anchor="middle" fill="#888">n/a</text>')
                continue
            o.append(f'<rect x="{bx:.1f}" y="{y(v):.1f}" width="{bar}" '
                     f'height="{base - y(v):.1f}" fill="{colors[who]}"/>')
            o.append(f'<text x="{cx:.1f}" y="{y(v) - 4:.1f}" font-size="11" '
                     f'text-anchor="middle">{v:.0f}</text>')
        cx = left + group * i + group / 2
        o.append(f'<text x="{cx:.1f}" y="{base + 16}" font-size="12" '
                 f'text-anchor="middle">{esc(r["name"])}</text>')
        if r["torch_backend"]:
            o.append(f'<text x="{cx:.1f}" y="{base + 30}" font-size="10" '
                     f'text-anchor="middle" fill="#666">torch: '
                     f'{esc(r["torch_backend"])}</text>')
    o.append(f'<line x1="{left}" x2="{width - right}" y1="{base}" '
             f'y2="{base}" stroke="#333"/>')
    lx = width / 2 - 90 * len(series)
    for j, (who, label, _) in enumerate(series):
        x = lx + 180 * j
        o.append(f'<rect x="{x:.0f}" y="52" width="10" height="10" '
                 f'fill="{colors[who]}"/>')
        o.append(f'<text x="{x + 14:.0f}" y="61" font-size="11">'
                 f'{label}</text>')
    o.append("</svg>")
    with open(path, "w") as fh:
        fh.write("\n".join(o) + "\n")
    return True


def read_text(path, limit=4000):
    try:
        with open(path, errors="replace") as fh:
            return fh.read(limit)
    except OSError:
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--elapsed", type=float, default=0.0)
    args = ap.parse_args()
    out = args.out

    status = ctest_status(os.path.join(out, "ctest.log"))
    details = gtest_details(out)
    for name, d in details.items():  # tests ctest did not report
        if name not in status:
            status[name] = {"COMPLETED": "Passed", "SKIPPED": "Skipped"}.get(
                d["result"], d["result"]) if not d["failures"] else "Failed"
    passed = sorted(n for n, s in status.items() if s == "Passed")
    skipped = sorted(n for n, s in status.items() if s == "Skipped")
    failed = sorted(n for n, s in status.items() if s not in ("Passed", "Skipped"))

    bench = load_json(os.path.join(out, "bench.json")) or {}
    torch = load_json(os.path.join(out, "torch.json")) or {}
    steps = []
    try:
        steps = [l.rstrip("\n") for l in open(os.path.join(out, "steps.txt"))]
    except OSError:
        pass

    results = dict(
        device=bench.get("device"),
        elapsed_s=args.elapsed,
        steps=steps,
        tests=dict(
            passed=passed, skipped=skipped,
            failed=[dict(name=n, status=status[n],
                         failures=details.get(n, {}).get("failures", []))
                    for n in failed],
            relerr={n: d["relerr"] for n, d in details.items() if d["relerr"]}),
        bench=bench.get("results", []),
        torch=dict(version=torch.get("torch"), results=torch.get("results", [])),
    )
    sections, layer_lines = {}, []
    files = layer_files(out)
    for engine, fname in files:
        try:
            sec, lines = layer_section(out, engine, fname)
        except Exception as e:  # noqa: BLE001 - the rest of the summary matters
            sec, lines = None, [f"layer summary ({engine}) failed: {e!r}"]
        layer_lines += lines
        if sec is not None:
            sections[engine] = sec
    layer = sections.get(files[0][0])
    svg = None
    if layer is not None:
        results["layer"] = layer
        engines = {e: sec for e, sec in sections.items() if sec is not layer}
        for e, sec in engines.items():
            results["layer_" + e.replace("-", "_")] = sec
        try:
            if write_layer_svg(os.path.join(out, "layer.svg"), layer,
                               engines):
                svg = os.path.join(out, "layer.svg")
        except Exception as e:  # noqa: BLE001
            layer_lines.append(f"layer.svg failed: {e!r}")
        if not results["device"] and layer.get("device"):
            results["device"] = dict(name=layer["device"])
    profile, profile_note = gpu_profile(bench)
    profile_path = os.path.join(out, "gpu-profile.json")
    if profile:
        results["gpu_profile"] = profile
        with open(profile_path, "w") as f:
            json.dump(profile, f, indent=2)
            f.write("\n")
    env = read_text(os.path.join(out, "env.txt"))
    if env is not None:
        results["env"] = env
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)

    # ---- the short table -------------------------------------------------
    dev = bench.get("device") or {}
    if not isinstance(dev, dict):
        dev = dict(name=str(dev))
    peak_gbps = pos(dev.get("peak_gbps"))
    print()
    print(f"== seq1f1b CUDA backend: "
          f"{dev.get('name') or (layer or {}).get('device') or 'device ?'}"
          + (f" (peak {peak_gbps:.0f} GB/s)" if peak_gbps else "")
          + f", {args.elapsed:.0f} s ==")
    for s in steps:
        print("  " + s)
    print(f"tests: {len(passed)} passed, {len(failed)} failed, "
          f"{len(skipped)} skipped")
    worst = []
    for n, d in details.items():
        for k, v in d["relerr"].items():
            tol = tolerance(d, n, k)
            worst.append((v / tol, v, tol, n, k))
    worst.sort(reverse=True)
    for ratio, v, tol, n, k in worst[:5]:
        print(f"  closest to tolerance: {n} {k} rel err {v:.2e}"
              f" ({100 * ratio:.0f}% of {tol:g})")
    for n in failed:
        msgs = details.get(n, {}).get("failures", [])
        first = msgs[0].strip().splitlines() if msgs else []
        print(f"  FAILED {n} [{status[n]}]"
              + (f": {' | '.join(first[:3])[:300]}" if first else ""))
    rows = bench.get("results", [])
    if rows:
        match = torch_match(torch.get("results", []))
        peak = dev.get("peak_gbps") or 0
        print(f"{'kernel':28s} {'dtype':9s} {'shape':18s} {'ms':>9s} "
              f"{'GB/s':>7s} {'%peak':>6s} {'TFLOP/s':>8s} {'torch ms':>9s} "
              f"{'speedup':>8s}")
        for r in rows:
            t = match(r)
            gb = f"{r['gbps']:7.0f}" if r["gbps"] else " " * 7
            pk = (f"{100 * r['gbps'] / peak:5.0f}%" if r["gbps"] and peak
                  else " " * 6)
            tf = f"{r['tflops']:8.0f}" if r["tflops"] else " " * 8
            tm = f"{t['ms']:9.4f}" if t else " " * 9
            sp = f"{t['ms'] / r['ms']:7.2f}x" if t and r["ms"] > 0 else ""
            print(f"{r['name']:28s} {r['dtype']:9s} {r['shape']:18s} "
                  f"{r['ms']:9.4f} {gb} {pk} {tf} {tm} {sp}")
        print("  (torch ms: the same kernel and shape in PyTorch; for attention"
              " its fastest SDPA backend)")
    else:
        print("no benchmark results")
    for line in layer_lines:
        print(line)
    for line in engine_lines(sections, status):
        print(line)
    if layer is None:
        print("no layer results (layer.json, torch_layer.json)")
    if profile:
        print(f"planner profile: {profile_path}: GEMMs "
              f"{profile['matmul_efficiency']:.2f}, attention "
              f"{profile['attention_efficiency']:.2f} of "
              f"{profile['peak_tflops']:g} TFLOP/s, element-wise "
              f"{profile['memory_bandwidth_gbps']} GB/s{profile_note}; "
              f"seq1f1b-plan --gpu {profile_path}")
    elif rows:
        print(profile_note)
    print(f"results: {os.path.join(out, 'results.json')}"
          + (f", chart: {svg}" if svg else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
