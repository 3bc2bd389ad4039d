"""Compares the runtime's measured peak bytes per rank (seq1f1b-train
--memory) with the simulator's prediction (s1f-simulate bytes=true) for the
same plan; fails if any rank's activations differ by more than the given
relative tolerance, or its KV caches are not exactly KV_RATIO times the
simulated ones (default 1: both allocate them by chunk, at the same
actions), or its KV-gradient buffers not exactly KVGRAD_RATIO times; a
ratio "-" compares activations only.

usage: compare_memory.py TRAIN_OUTPUT SIMULATE_OUTPUT TOLERANCE [KVGRAD_RATIO [KV_RATIO]]
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
    kvgrad_ratio = sys.argv[4] if len(sys.argv) > 4 else "1"
    kv_ratio = sys.argv[5] if len(sys.argv) > 5 else "1"
    kv_checked = "-" not in (kvgrad_ratio, kv_ratio)
    if len(train) != len(simulated) or not train:
        sys.exit(f"rank counts differ: {len(train)} measured, {len(simulated)} simulated")
    worst = 0.0
    kv_equal = True
    for measured, predicted in zip(train, simulated):
        # train: rank, peak, activations, kv, kvgrad
        # simulate: rank, bubble, peak, weights, grads, optim, activ, kv, kvgrad, in-flight
        m, p = int(measured[2]), int(predicted[6])
        diff = abs(m - p) / p
        worst = max(worst, diff)
        kv = (int(measured[3]), int(measured[4]))
        kv_sim = (int(predicted[7]), int(predicted[8]))
        if kv_checked:
            kv_equal = (kv_equal
                        and abs(kv[0] - float(kv_ratio) * kv_sim[0]) < 0.5
                        and abs(kv[1] - float(kvgrad_ratio) * kv_sim[1]) < 0.5)
        print(f"rank {measured[0]}: activations measured {m}, predicted {p}, "
              f"{100 * diff:.1f}%; kv cache / kv grad measured {kv[0]} / "
              f"{kv[1]}, predicted {kv_sim[0]} / {kv_sim[1]}")
    sys.exit(0 if worst <= tolerance and kv_equal else 1)


if __name__ == "__main__":
    main()
