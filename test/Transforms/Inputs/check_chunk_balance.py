"""Reads s1f-print-cost output on stdin and checks that every chunk of the
chunk plan costs total/N within the given relative tolerance (training FLOPs,
the last column)."""
import sys

tolerance = float(sys.argv[1])
lines = sys.stdin.read().splitlines()
start = next(i for i, l in enumerate(lines) if l.startswith("chunk plan"))
costs = [float(l.split()[-1]) for l in lines[start + 2:] if l[:1].isdigit()]
mean = sum(costs) / len(costs)
worst = max(abs(c - mean) / mean for c in costs)
print(f"{len(costs)} chunks, worst deviation {worst:.2e}")
sys.exit(0 if worst <= tolerance and len(costs) > 1 else 1)
