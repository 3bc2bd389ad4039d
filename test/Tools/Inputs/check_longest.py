"""Checks seq1f1b-plan --longest against the plain table:

  check_longest.py PLAN ARGS...

runs `PLAN ARGS --longest --json` and then, for every row, `PLAN ARGS` at
--seq-len L (the row's longest) and at L + --seq-step: the first must fit
with the same peak and tokens/s, the second must not (unless L is the searched maximum).
ARGS must hold --gpu-memory, --seq-step and the other options of the table.
"""
import json
import os
import subprocess
import sys
import tempfile


def plan(cmd, seq=None, row=None):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "plan.json")
        extra = ["--json", out]
        if seq is not None:
            extra += ["--seq-len", str(seq), "--schedules", row["schedule"],
                      "--chunks", str(row["chunks"]),
                      "--recompute", "full" if row["recompute"] else "none"]
        else:
            extra += ["--longest"]
        subprocess.run(cmd + extra, check=True, capture_output=True, text=True)
        return json.load(open(out))


def main():
    cmd = sys.argv[1:]
    longest = plan(cmd)
    limit, step = longest["gpu_memory_bytes"], longest["seq_step"]
    checked = 0
    for row in longest["rows"]:
        name = f"{row['schedule']} N={row['chunks']}{' recompute' if row['recompute'] else ''}"
        L = row["longest"]
        if L == 0:
            continue
        at = [r for r in plan(cmd, L, row)["rows"] if r["chunks"] == row["chunks"]]
        assert len(at) == 1, (name, at)
        assert at[0]["fits"] and at[0]["peak_bytes"] == row["peak_bytes"], (name, L, at[0])
        assert abs(at[0]["tokens_per_second"] - row["tokens_per_second"]) <= 1e-9 * row["tokens_per_second"], name
        if L + step <= longest["searched_up_to"]:
            beyond = [r for r in plan(cmd, L + step, row)["rows"]
                      if r["chunks"] == row["chunks"]][0]
            assert not beyond["fits"], (name, L + step, beyond["peak_bytes"], limit)
        checked += 1
    print(f"{checked} rows: the longest fits, one step more does not")


if __name__ == "__main__":
    main()
