"""Checks a seq1f1b-plan --gpus run: its table (stdin) against its --json
(argv[1]), and both against what a layout search must satisfy:

- every layout tp x cp x P x dp uses all the GPUs, tp is at most a node and
  divides the heads, KV heads and MLP width (argv[2:5]), 2 x cp divides the
  sequence, and M x dp x the micro-batch size is the global batch; no layout
  twice, and every layout that satisfies these and argv[5] (the model's
  stage count limit) is there;
- the gradient sync of each layout is recomputed here from the ranks'
  weights and gradients (Megatron: all-reduce of fp32 gradients over the
  n = dp x cp ranks, or with the distributed optimizer a reduce-scatter of
  them plus an all-gather of the 16-bit weights; (n-1)/n of the bytes per
  GPU, on NVLink when tp x cp x dp fits a node, else on the network), each
  rank starting when its last action ends, and tokens/s from it;
- fitting layouts come first, fastest first; the verdict names the first.
"""
import json
import sys


def main():
    data = json.load(open(sys.argv[1]))
    heads, kv, ffn, pieces = (int(x) for x in sys.argv[2:6])
    table = sys.stdin.read().splitlines()
    gpus, node, batch = data["gpus"], data["gpus_per_node"], data["global_batch"]
    mbs, seq = data["micro_batch"], data["seq_len"]
    layouts = data["layouts"]
    seen = set()
    for l in layouts:
        tp, cp, p, dp = l["tp"], l["cp"], l["stages"], l["dp"]
        name = f"tp {tp} x cp {cp} x P {p} x dp {dp}"
        assert tp * cp * p * dp == gpus, name
        assert tp <= node and heads % tp == kv % tp == ffn % tp == 0, name
        assert cp == 1 or seq % (2 * cp) == 0, name
        assert l["microbatches"] * dp * mbs == batch, name
        assert (tp, cp, p) not in seen, name + " twice"
        seen.add((tp, cp, p))
        n = dp * cp
        in_node = tp * cp * dp <= node
        bw = data["tp_bandwidth"] if in_node else data["link_bandwidth"]
        lat = data["tp_latency"] if in_node else data["link_latency"]
        # Each rank syncs after its last action; the step ends with the last.
        end = l["pipeline_seconds"]
        for r in l["ranks"]:
            if n == 1:
                continue
            if data["distributed_optimizer"]:
                t = 2 * lat + (r["grads"] + r["weights"]) * (n - 1) / n / bw
            else:
                t = lat + 2 * r["grads"] * (n - 1) / n / bw
            end = max(end, r["end_seconds"] + t)
        sync = end - l["pipeline_seconds"]
        assert abs(sync - l["sync_seconds"]) <= 1e-9 * max(sync, 1), (name, sync, l["sync_seconds"])
        step = l["pipeline_seconds"] + sync
        assert abs(l["step_seconds"] - step) <= 1e-9 * step, name
        tokens = batch * seq / step
        assert abs(l["tokens_per_second"] - tokens) <= 1e-6 * tokens, name
        assert l["fits"] == (l["peak_bytes"] <= data["gpu_memory_bytes"]), name
    expected = set()
    for tp in range(1, node + 1):
        if gpus % tp or heads % tp or kv % tp or ffn % tp:
            continue
        for cp in range(1, gpus // tp + 1):
            if (gpus // tp) % cp or (cp > 1 and seq % (2 * cp)):
                continue
            for p in range(1, min(gpus // (tp * cp), pieces) + 1):
                dp = gpus // (tp * cp * p)
                if (gpus // (tp * cp)) % p == 0 and batch % (dp * mbs) == 0:
                    expected.add((tp, cp, p))
    assert seen == expected, f"layouts {sorted(seen)}, expected {sorted(expected)}"
    order = [(not l["fits"], -l["tokens_per_second"] if l["fits"] else l["peak_bytes"])
             for l in layouts]
    assert order == sorted(order), "layouts out of order"
    rows = [line.split() for line in table if line[:1] == " " and line.split()[0].isdigit()]
    assert len(rows) == len(layouts), (len(rows), len(layouts))
    for f, l in zip(rows, layouts):
        assert [int(x) for x in f[:5]] == [l["tp"], l["cp"], l["stages"], l["dp"],
                                           l["microbatches"]], f
        assert round(l["tokens_per_second"]) == int(f[-4]), (f, l["tokens_per_second"])
    fastest = data["fastest"]
    verdict = next(line for line in table if line.startswith(("fastest layout", "no layout")))
    if fastest is None:
        assert not layouts[0]["fits"] and verdict.startswith("no layout"), verdict
    else:
        assert fastest == layouts[0], "fastest is not the first layout"
        assert verdict.startswith(
            f"fastest layout: tp {fastest['tp']} x cp {fastest['cp']} x P {fastest['stages']} "
            f"x dp {fastest['dp']},"), verdict
    print(f"{len(layouts)} layouts of {gpus} GPUs: ok")


if __name__ == "__main__":
    main()
