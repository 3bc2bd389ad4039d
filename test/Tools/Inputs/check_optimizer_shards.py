"""Checks seq1f1b-plan --optimizer-shards against Megatron's distributed
optimizer: with D data-parallel shards a rank keeps 6 + 12/D bytes per
parameter (16-bit weights, fp32 gradients, its share of the fp32 master
weights and Adam moments) instead of 18. Compares two --json outputs of the
same plan, unsharded and with D shards, rank by rank.

usage: check_optimizer_shards.py PLAIN_JSON SHARDED_JSON
"""
import json
import sys


def main():
    plain, sharded = (json.load(open(p)) for p in sys.argv[1:3])
    shards = sharded["optimizer_shards"]
    assert plain["optimizer_shards"] == 1 and shards > 1, (plain, shards)
    checked = 0
    for a, b in zip(plain["rows"], sharded["rows"]):
        for ra, rb in zip(a["ranks"], b["ranks"]):
            pa, pb = ra["peak"], rb["peak"]
            params = pa["weights"] / 2  # bf16 weights
            static = pb["weights"] + pb["grads"] + pb["optimizer"]
            want = (6 + 12 / shards) * params
            assert abs(static - want) <= 1, (ra["rank"], static, want)
            assert pa["weights"] == pb["weights"] and pa["grads"] == pb["grads"]
            # What the schedule keeps does not change, so neither does when
            # the peak happens: it falls by exactly the optimizer's share.
            saved = pa["optimizer"] - pb["optimizer"]
            assert ra["peak_bytes"] - rb["peak_bytes"] == saved, (ra, rb)
            checked += 1
    print(f"{checked} ranks: 6 + 12/{shards} bytes per parameter")


if __name__ == "__main__":
    main()
