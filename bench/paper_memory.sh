#!/usr/bin/env bash
# Reproduces the Seq1F1B paper's memory comparison (1F1B vs Seq1F1B with N=4,
# micro-batch size 1, no recomputation, A100 80GB) with seq1f1b-plan, next to
# the paper's measured numbers and Megatron's analytic formula
# (bench/megatron_memory.py, independent of the seq1f1b tools). See
# docs/paper-memory.md for how the paper's settings were read and for the gaps.
#
#   bench/paper_memory.sh              # the table (markdown) on stdout
#   VERBOSE=1 bench/paper_memory.sh    # also print every command it runs (stderr)
#   BIN=/path/to/bin M=32 bench/paper_memory.sh
#
# Units: GB = 1e9 bytes everywhere. seq1f1b-plan prints GiB; the script
# converts. The paper's code prints torch.cuda.max_memory_reserved() / 2**30
# cut to 4 characters and calls it GB; the script shows that number as
# printed and converts it to GB for the ratios.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export ROOT=$root
export BIN=${BIN:-$root/build/bin}
export M=${M:-16}   # micro-batches per step: the paper's scripts run 16 (DP 1, global batch 16)
export N=${N:-4}
[ -x "$BIN/seq1f1b-plan" ] || { echo "paper_memory.sh: $BIN/seq1f1b-plan not found (build first or set BIN)" >&2; exit 1; }

exec python3 - <<'PY'
import json, os, subprocess, sys

ROOT, BIN = os.environ["ROOT"], os.environ["BIN"]
M, N = int(os.environ["M"]), int(os.environ["N"])
VERBOSE = bool(os.environ.get("VERBOSE"))
GIB = 2 ** 30
LIMIT = 80 * GIB  # A100 80GB: 80 GiB of device memory

# model, seq, TP, PP, paper 1F1B, paper Seq1F1B (as the paper prints them:
# GiB of reserved memory; None = not given; "OOM").
CELLS = [
    ("2.7b", 16384, 1, 8, 51.4, 29.8),
    ("2.7b", 24576, 1, 8, None, None),
    ("2.7b", 32768, 1, 8, None, None),
    ("7b", 32768, 8, 4, 28.0, 18.9),
    ("7b", 65536, 8, 4, 51.4, 34.3),
    ("7b", 131072, 8, 4, "OOM", None),
    ("13b", 32768, 8, 4, None, None),
    ("13b", 49152, 8, 4, 64.3, 42.4),
    ("13b", 65536, 8, 4, None, None),
    ("30b", 32768, 8, 8, 71.4, 37.6),
    ("30b", 49152, 8, 8, "OOM", None),
    ("30b", 65536, 8, 8, "OOM*", None),
]
# 2.7B on 8 GPUs read as TP 8 x PP 1: no pipeline, nothing for Seq1F1B to save.
CONTRAST = [("2.7b", 16384, 8, 1, None, None)]


def run(cmd):
    if VERBOSE:
        print("+ " + " ".join(cmd), file=sys.stderr)
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def ours(model, seq, tp, pp):
    cfg = f"{ROOT}/examples/paper/gpt-{model}-{seq // 1024}k.json"
    out = run([f"{BIN}/seq1f1b-plan", "--config", cfg, "--seq-len", str(seq),
               "--stages", str(pp), "--tp", str(tp), "--chunks", str(N),
               "--schedules", "1f1b,seq1f1b", "--microbatches", str(M),
               "--gpu", "a100", "--gpu-memory", "80GiB"])
    peaks = {}
    for line in out.splitlines():
        f = line.split()
        # schedule V N bubble step tokens/s peak-GiB stage0-GiB free-GiB fits
        if len(f) == 10 and f[0] in ("1f1b", "seq1f1b"):
            peaks[f[0]] = float(f[6]) * GIB
            if f[6] != f[7]:
                NOT_STAGE0.append(f"{model}/{seq // 1024}k {f[0]}")
    formula = json.loads(run([sys.executable, f"{ROOT}/bench/megatron_memory.py",
                              "--config", cfg, "--seq-len", str(seq), "--tp", str(tp),
                              "--pp", str(pp), "--microbatches", str(M), "--chunks", str(N),
                              "--json"]))
    return peaks, {k: v["peak_gb"] * 1e9 for k, v in formula.items()}


NOT_STAGE0 = []


def gb(x):
    return f"{x / 1e9:.1f}"


def cell_paper(p):
    if p is None:
        return "-", None
    if isinstance(p, str):
        return p, None
    return f"{p * GIB / 1e9:.1f} ({p})", p * GIB


def table(cells):
    print("| model | GPUs | TP x PP | seq | 1F1B paper | 1F1B ours | 1F1B formula | paper/ours "
          "| Seq1F1B paper | Seq1F1B ours | Seq1F1B formula | paper/ours | Seq/1F1B ours | Seq/1F1B paper |")
    print("|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for model, seq, tp, pp, p1, ps in cells:
        o, f = ours(model, seq, tp, pp)
        t1, v1 = cell_paper(p1)
        ts, vs = cell_paper(ps)
        def mark(x):
            return gb(x) + (" OOM" if x > LIMIT else "")
        ratio1 = f"{v1 / o['1f1b']:.2f}" if v1 else "-"
        ratios = f"{vs / o['seq1f1b']:.2f}" if vs else "-"
        paper_saving = f"{vs / v1:.2f}" if v1 and vs else "-"
        print(f"| {model} | {tp * pp} | {tp} x {pp} | {seq // 1024}k | {t1} | {mark(o['1f1b'])} | "
              f"{gb(f['1f1b'])} | {ratio1} | {ts} | {mark(o['seq1f1b'])} | {gb(f['seq1f1b'])} | "
              f"{ratios} | {o['seq1f1b'] / o['1f1b']:.2f} | {paper_saving} |")


print(f"Peak memory per GPU in GB (1e9 bytes), max over pipeline stages; "
      f"M={M} micro-batches of one sequence, Seq1F1B with N={N} chunks of equal FLOPs; "
      f"OOM = above 80 GiB (85.9 GB). Paper: the value as printed (GiB of reserved memory) "
      f"in parentheses, converted to GB in front.")
print()
table(CELLS)
print()
print("Stage 0 holds the peak in every row." if not NOT_STAGE0 else
      "The peak is not on stage 0 in: " + ", ".join(NOT_STAGE0))
print()
print("* not measured in the paper's memory table; implied by its abstract (30B at 64k "
      "trains only with Seq1F1B).")
print()
print("Contrast: the same 8 GPUs read as TP 8 x PP 1 (no pipeline):")
print()
table(CONTRAST)
PY
