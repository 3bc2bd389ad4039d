#!/usr/bin/env python3
"""Overhead of the parallel machinery on the CPU: one training step of
gpt-tiny on 1 rank (no pipeline) vs 4 in-process ranks laid out as a
Seq1F1B pipeline (P=4, N=4), the same pipeline compiled by seq1f1b-compile,
4 tensor-parallel ranks (with and without sequence parallelism), 4
context-parallel ranks, 2 x 2 of those, and 4 data-parallel replicas: same
model, batch and data. Runs the configurations in turn and reports medians
of wall time and CPU time (user + system, all threads) per step, and their
ratios to the single rank. With 4 ranks on fewer than 4 cores the wall-time
ratio also shows the lost parallelism; the CPU-time ratio is the overhead.
All run with one BLAS thread per rank (OPENBLAS_NUM_THREADS=1), so the
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

data = ["--data", f"{root}/examples/data/declaration.txt"]


def train(*options, microbatches=4):
    """seq1f1b-train on the graph with `options`, 4 micro-batches a step
    (`microbatches` per replica)."""
    return ([f"{bin_dir}/seq1f1b-train", "--graph", graph, "--seq-len",
             str(args.seq_len), "--microbatches", str(microbatches), "--steps",
             str(args.steps)] + data + list(options))



compiled = os.path.join(os.path.dirname(graph), "train")
subprocess.run([f"{bin_dir}/seq1f1b-compile", "--config",
                f"{root}/examples/gpt-tiny.json", "--seq-len", str(args.seq_len),
                "--stages", "4", "--chunks", "4", "--microbatches", "4",
                "--schedule", "seq1f1b", "-o", compiled],
               check=True, stdout=subprocess.DEVNULL)
configs = {
    "1 rank": train("--schedule", "1f1b"),
    "P=4 seq1f1b N=4": train("--ranks", "4", "--chunks", "4"),
    "P=4 compiled": [compiled] + data + ["--steps", str(args.steps)],
    "T=4": train("--tp", "4", "--schedule", "1f1b"),
    "T=4 sequence parallel": train("--tp", "4", "--sp", "--schedule", "1f1b"),
    "C=4": train("--cp", "4", "--schedule", "1f1b"),
    "T=2 x C=2": train("--tp", "2", "--cp", "2", "--schedule", "1f1b"),
    "D=4": train("--dp", "4", "--schedule", "1f1b", microbatches=1),
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
print(f"{'configuration':24} {'wall ms/step':>13} {'cpu ms/step':>12} "
      f"{'wall ratio':>11} {'cpu ratio':>10}")
one = None
for name, samples in results.items():
    wall = statistics.median(s[0] for s in samples[1:]) * 1e3
    cpu = statistics.median(s[1] for s in samples[1:]) * 1e3
    one = one or (wall, cpu)
    print(f"{name:24} {wall:13.1f} {cpu:12.1f} {wall / one[0]:10.2f}x "
          f"{cpu / one[1]:9.2f}x")
