"""Compares the runtime's measured peak activation bytes per rank
(seq1f1b-train --memory) with seq1f1b-plan's prediction for the same plan
(its --json, the row of KIND with N chunks and the given recomputation);
fails if any rank differs by more than the given relative tolerance.

usage: compare_memory_plan.py TRAIN_OUTPUT PLAN_JSON KIND N none|full TOLERANCE
"""
import json
import sys

from compare_memory import table

train = table(sys.argv[1], "rank  peak bytes  activations")
plan = json.load(open(sys.argv[2]))
kind, chunks, recompute = sys.argv[3], int(sys.argv[4]), sys.argv[5] == "full"
tolerance = float(sys.argv[6])
rows = [r for r in plan["rows"] if (r["schedule"], r["chunks"], r["recompute"]) ==
        (kind, chunks, recompute)]
if len(rows) != 1:
    sys.exit(f"{len(rows)} plan rows for {kind} N={chunks} recompute={recompute}")
predicted = [r["peak"]["activations"] for r in rows[0]["ranks"]]
if len(train) != len(predicted):
    sys.exit(f"rank counts differ: {len(train)} measured, {len(predicted)} planned")
worst = 0.0
for measured, p in zip(train, predicted):
    m = int(measured[2])
    diff = abs(m - p) / p
    worst = max(worst, diff)
    print(f"rank {measured[0]}: activations measured {m}, planned {p}, {100 * diff:.1f}%")
sys.exit(0 if worst <= tolerance else 1)
