"""Compares the runtime's measured peak activation bytes per rank
(seq1f1b-train --memory) with the simulator's prediction (s1f-simulate
bytes=true) for the same plan; fails if any rank differs by more than the
given relative tolerance.

usage: compare_memory.py TRAIN_OUTPUT SIMULATE_OUTPUT TOLERANCE
"""
import sys


def table(path, header):
    lines = open(path).read().splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith(header))
    rows = []
    for line in lines[start + 1:]:
        fields = line.split()
        if not fields or not fields[0].isdigit():
            break
        rows.append(fields)
    return rows


def main():
    train = table(sys.argv[1], "rank  peak bytes  activations")
    simulated = table(sys.argv[2], "rank  bubble")
    tolerance = float(sys.argv[3])
    if len(train) != len(simulated) or not train:
        sys.exit(f"rank counts differ: {len(train)} measured, {len(simulated)} simulated")
    worst = 0.0
    for measured, predicted in zip(train, simulated):
        # train: rank, peak, activations, kv, kvgrad
        # simulate: rank, bubble, peak, weights, grads, optim, activ, kv, kvgrad, in-flight
        m, p = int(measured[2]), int(predicted[6])
        diff = abs(m - p) / p
        worst = max(worst, diff)
        print(f"rank {measured[0]}: activations measured {m}, predicted {p}, {100 * diff:.1f}%")
    sys.exit(0 if worst <= tolerance else 1)


if __name__ == "__main__":
    main()
