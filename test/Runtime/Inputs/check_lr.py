"""Checks the "lr X" of every step line of seq1f1b-train (stdin) against
Megatron's schedule, written out here: argv = PEAK MIN WARMUP DECAY_STEPS
constant|linear|cosine."""
import math
import re
import sys

peak, low = float(sys.argv[1]), float(sys.argv[2])
warmup, decay_steps, kind = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]


def expected(step):
    if warmup and step <= warmup:
        return peak * step / warmup
    if kind == "constant":
        return peak
    if step >= decay_steps:
        return low
    ratio = (step - warmup) / (decay_steps - warmup)
    coeff = 1 - ratio if kind == "linear" else 0.5 * (math.cos(math.pi * ratio) + 1)
    return low + coeff * (peak - low)


steps = 0
for line in sys.stdin:
    m = re.match(r"step +(\d+) .* lr ([0-9.e+-]+)", line)
    if not m:
        continue
    step, lr = int(m.group(1)), float(m.group(2))
    want = expected(step)
    if abs(lr - want) > 1e-6 * want:
        sys.exit(f"step {step}: lr {lr}, expected {want}")
    steps += 1
if not steps:
    sys.exit("no step printed its learning rate")
print(f"{steps} steps: the learning rates of the schedule")
