#!/usr/bin/env bash
# Times the whole compiler pass pipeline on the 30B shape (64 layers,
# examples/gpt-paper-30b.json, 65536 tokens) with P=8 stages, N=8 chunks:
#
#   seq1f1b-translate --import-hf-config examples/gpt-paper-30b.json --seq-len 65536 \
#    | seq1f1b-opt --s1f-partition-stages=stages=8 \
#        --s1f-split-sequence="chunks=8 policy=flops" \
#        --s1f-schedule="kind=seq1f1b microbatches=M" \
#        --s1f-verify-schedule --s1f-simulate -o /dev/null
#
# 1. the headline: M=64 (M*N = 512), median wall and CPU time of RUNS runs
#    after one warm-up, plus MLIR's per-pass wall time (--mlir-timing, the
#    median of TIMING_RUNS further runs);
# 2. scaling: the same for M*N in {64, 128, 256, 512, 1024} (N=8, M=MN/8), with
#    least-squares fits  t = a + b * M*N  of the wall time, the CPU time and
#    the schedule-dependent passes (schedule + verify + simulate + output).
#
# Wall time is the whole pipeline (both processes, start-up included),
# measured with Python's perf_counter around `bash -c '<pipeline>'`; CPU time
# is user + system of all its processes (getrusage of the children), which a
# busy machine disturbs less. With hyperfine installed,
# `hyperfine "bash -c '<pipeline>'"` gives the same wall figure.
#
#   bench/pass_pipeline.sh               # RUNS=5
#   RUNS=10 TIMING_RUNS=5 SIZES="64 512" bench/pass_pipeline.sh
#   POLICY=even bench/pass_pipeline.sh   # even chunks: no cost bisection
#   BIN=/path/to/bin bench/pass_pipeline.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export BIN=${BIN:-$root/build/bin}
export CONFIG=${CONFIG:-$root/examples/gpt-paper-30b.json}
export SEQ=${SEQ:-65536} P=${P:-8} N=${N:-8} RUNS=${RUNS:-5}
export SIZES=${SIZES:-"64 128 256 512 1024"}
export HEADLINE_M=${HEADLINE_M:-64}
export POLICY=${POLICY:-flops}   # chunk split; POLICY=even takes the split pass out of the picture
for tool in seq1f1b-translate seq1f1b-opt; do
  [ -x "$BIN/$tool" ] || { echo "pass_pipeline.sh: $BIN/$tool not found (build first or set BIN)" >&2; exit 1; }
done

exec python3 - <<'PY'
import os, re, resource, statistics, subprocess, time

BIN, CONFIG = os.environ["BIN"], os.environ["CONFIG"]
SEQ, P, N, RUNS = (int(os.environ[k]) for k in ("SEQ", "P", "N", "RUNS"))
SIZES = [int(x) for x in os.environ["SIZES"].split()]
TIMING_RUNS = int(os.environ.get("TIMING_RUNS", "3"))
HEADLINE_M = int(os.environ["HEADLINE_M"])
POLICY = os.environ["POLICY"]


def pipeline(m, extra=""):
    return (f"{BIN}/seq1f1b-translate --import-hf-config {CONFIG} --seq-len {SEQ}"
            f" | {BIN}/seq1f1b-opt --s1f-partition-stages=stages={P}"
            f" --s1f-split-sequence='chunks={N} policy={POLICY}'"
            f" --s1f-schedule='kind=seq1f1b microbatches={m}'"
            f" --s1f-verify-schedule --s1f-simulate -o /dev/null {extra}")


def cpu_children():
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def run(cmd):
    """Wall and CPU (user + system of every process of the pipeline) seconds."""
    c0, t0 = cpu_children(), time.perf_counter()
    r = subprocess.run(["bash", "-c", "set -o pipefail; " + cmd],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t, c = time.perf_counter() - t0, cpu_children() - c0
    if r.returncode != 0:
        raise SystemExit(f"pipeline failed ({r.returncode}):\n{cmd}\n{r.stderr}")
    return t, c, r.stderr


def measure(m):
    run(pipeline(m))  # warm-up (page cache, binaries)
    runs = [run(pipeline(m)) for _ in range(RUNS)]
    walls, cpus = [r[0] for r in runs], [r[1] for r in runs]
    # Per-pass wall seconds from MLIR's own timer: the median of TIMING_RUNS runs.
    samples = {}
    for _ in range(TIMING_RUNS):
        report = run(pipeline(m, "--mlir-timing"))[2]
        for sec, name in re.findall(r"^\s+([0-9.]+) \(\s*[0-9.]+%\)\s+(\w+)\s*$", report, re.M):
            samples.setdefault(name, []).append(float(sec))
    passes = {name: statistics.median(v) for name, v in samples.items()}
    return walls, cpus, passes


def fit(xs, ys):
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    a = my - b * mx
    ss_res = sum((y - a - b * x) ** 2 for x, y in zip(xs, ys))
    ss_tot = sum((y - my) ** 2 for y in ys)
    return a, b, 1 - ss_res / ss_tot if ss_tot else 1.0


print(f"seq1f1b pass pipeline, {os.path.basename(CONFIG)} at {SEQ} tokens, P={P} N={N}, "
      f"policy={POLICY}, {RUNS} runs after 1 warm-up, {os.cpu_count()} CPUs")
print()
rows = []
for mn in SIZES:
    m = mn // N
    walls, cpus, passes = measure(m)
    dependent = sum(passes.get(k, 0.0) for k in ("Schedule", "VerifySchedule", "Simulate", "Output"))
    rows.append(dict(mn=mn, m=m, wall=statistics.median(walls), lo=min(walls), hi=max(walls),
                     cpu=statistics.median(cpus), passes=passes, dependent=dependent))

print("| M*N  |   M | wall median s | wall min-max s | CPU median s | split s | schedule s | verify s | simulate s | output s |")
print("|-----:|----:|--------------:|---------------:|-------------:|--------:|-----------:|---------:|-----------:|---------:|")
for r in rows:
    p = r["passes"]
    print(f"| {r['mn']:4d} | {r['m']:3d} | {r['wall']:13.3f} | {r['lo']:6.3f}-{r['hi']:<7.3f} | {r['cpu']:12.3f} |"
          f" {p.get('SplitSequence', 0):7.3f} | {p.get('Schedule', 0):10.4f} | {p.get('VerifySchedule', 0):8.4f} |"
          f" {p.get('Simulate', 0):10.4f} | {p.get('Output', 0):8.4f} |")
print()
if len(rows) >= 2:
    xs = [r["mn"] for r in rows]
    for label, key in (("wall", "wall"), ("CPU", "cpu"),
                       ("schedule+verify+simulate+output", "dependent")):
        a, b, r2 = fit(xs, [r[key] for r in rows])
        print(f"fit {label:32s} = {a:7.3f} s + {b * 1e3:7.4f} ms * M*N   (R^2 = {r2:.3f})")
head = [r for r in rows if r["m"] == HEADLINE_M]
if head:
    r = head[0]
    print()
    print(f"headline M={r['m']} N={N} (M*N={r['mn']}): wall median {r['wall']:.3f} s "
          f"(min {r['lo']:.3f}, max {r['hi']:.3f}), CPU median {r['cpu']:.3f} s")
    print(f"per pass (--mlir-timing, median of {TIMING_RUNS}): " +
          ", ".join(f"{k} {v:.3f}s" for k, v in r["passes"].items() if k != "Total"))
PY
