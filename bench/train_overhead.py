#!/usr/bin/env python3
"""Overhead of the pipeline machinery on the CPU: one training step of
gpt-tiny on 1 rank (no pipeline) vs 4 in-process ranks with Seq1F1B (P=4,
N=4), same model, batch and data. Runs both configurations alternately and
reports medians of wall time and CPU time (user + system, all threads) per
step, and their ratios. With 4 ranks on fewer than 4 cores the wall-time
ratio also shows the lost parallelism; the CPU-time ratio is the overhead.
Both run with one BLAS thread per rank (OPENBLAS_NUM_THREADS=1), so the
single rank does not pay for BLAS threads spinning on tiny matrices.

usage: bench/train_overhead.py [--build build] [--runs 5] [--steps 10]
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

parser = argparse.ArgumentParser()
parser.add_argument("--build", default="build")
parser.add_argument("--runs", type=int, default=5)
parser.add_argument("--steps", type=int, default=10)
parser.add_argument("--seq-len", type=int, default=128)
args = parser.parse_args()

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
bin_dir = os.path.join(root, args.build, "bin")
graph = os.path.join(tempfile.mkdtemp(), "gpt-tiny.graph.json")
module = subprocess.run(
    [f"{bin_dir}/seq1f1b-translate", "--import-hf-config",
     f"{root}/examples/gpt-tiny.json", "--seq-len", str(args.seq_len)],
    check=True, capture_output=True).stdout
with open(graph, "wb") as f:
    f.write(subprocess.run([f"{bin_dir}/seq1f1b-translate", "--export-runtime-graph"],
                           input=module, check=True, capture_output=True).stdout)

common = [f"{bin_dir}/seq1f1b-train", "--graph", graph,
          "--data", f"{root}/examples/data/declaration.txt",
          "--seq-len", str(args.seq_len), "--microbatches", "4",
          "--steps", str(args.steps)]
configs = {
    "1 rank": common + ["--ranks", "1", "--schedule", "1f1b"],
    "4 ranks seq1f1b N=4": common + ["--ranks", "4", "--chunks", "4",
                                      "--schedule", "seq1f1b"],
}


def run_once(cmd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL,
                   env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall / args.steps, cpu / args.steps


results = {name: [] for name in configs}
for _ in range(args.runs + 1):  # the first round warms up
    for name, cmd in configs.items():
        results[name].append(run_once(cmd))
print(f"gpt-tiny, S={args.seq_len}, M=4, {args.steps} steps per run, "
      f"{args.runs} runs, {os.cpu_count()} cores")
print(f"{'configuration':24} {'wall ms/step':>13} {'cpu ms/step':>12}")
medians = {}
for name, samples in results.items():
    wall = statistics.median(s[0] for s in samples[1:]) * 1e3
    cpu = statistics.median(s[1] for s in samples[1:]) * 1e3
    medians[name] = (wall, cpu)
    print(f"{name:24} {wall:13.1f} {cpu:12.1f}")
(w1, c1), (w4, c4) = medians.values()
print(f"ratio 4 ranks / 1 rank: wall {w4 / w1:.2f}x, cpu {c4 / c1:.2f}x")
