"""Checks seq1f1b-plan's full recomputation against Megatron's analytic
model (bench/megatron_memory.py, independent of the seq1f1b tools):

  check_recompute.py PLAN_OUTPUT MEGATRON_NONE.json MEGATRON_FULL.json KIND:N...

For each row the memory recomputation saves on stage 0 (no recomputation
minus full) must agree within 2%: both count the weights alike in the two
runs, so the difference is activations only (the layers' saved values
against their checkpoints and one layer recomputed). And recomputation must
cost about one more forward of the layers: the step time grows by 30-37%
(backward = 2 forwards gives 4/3; the embedding and head are not
recomputed). Exits 1, saying why, otherwise.
"""
import json
import sys

from check_plan_table import lookup, parse

GB_PER_GIB = 2 ** 30 / 1e9
STEP, STAGE0 = 4, 7


def main():
    plan, none_json, full_json, *cases = sys.argv[1:]
    with open(plan) as f:
        rows = parse(f.read().splitlines())
    megatron = [json.load(open(p)) for p in (none_json, full_json)]
    ok = True
    for case in cases:
        kind, n = case.split(":")
        none, full = lookup(rows, case), lookup(rows, case + ":full")
        ours = (none[STAGE0] - full[STAGE0]) * GB_PER_GIB
        theirs = megatron[0][kind]["stage0_gb"] - megatron[1][kind]["stage0_gb"]
        if megatron[0][kind]["chunks"] != int(n):
            sys.exit(f"{case}: the Megatron model ran N={megatron[0][kind]['chunks']}")
        growth = full[STEP] / none[STEP]
        good = abs(ours - theirs) <= 0.02 * theirs and 1.30 <= growth <= 1.37
        ok &= good
        print(f"{case}: stage 0 saves {ours:.2f} GB, Megatron's model {theirs:.2f} GB;"
              f" step x{growth:.3f}: {'ok' if good else 'WRONG'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
