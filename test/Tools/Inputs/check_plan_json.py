"""Checks seq1f1b-plan --json against the table it printed:

  check_plan_json.py TABLE_OUTPUT PLAN.json

The JSON must list the table's rows in order with the same (rounded)
tokens/s, peak and fits; every rank's itemized peak must add up to its
total and the row's peak must be the largest rank's; the fastest row that
fits must be the one the verdict names. Exits 1, saying why, otherwise.
"""
import json
import re
import sys

from check_plan_table import parse


def main():
    table_path, json_path = sys.argv[1:3]
    text = open(table_path).read()
    table = list(parse(text.splitlines()).items())
    plan = json.load(open(json_path))
    rows = plan["rows"]
    if len(rows) != len(table):
        sys.exit(f"{len(rows)} JSON rows, {len(table)} table rows")
    for (key, values), row in zip(table, rows):
        kind, n, v, full = key
        if (row["schedule"], row["chunks"], row["virtual"], row["recompute"]) != (kind, n, v, full):
            sys.exit(f"JSON row {row['schedule']} N={row['chunks']} is not the table's {key}")
        if round(row["tokens_per_second"]) != values[5] or \
                round(row["peak_bytes"] / 2 ** 30, 2) != values[6] or row["fits"] != values[8]:
            sys.exit(f"{key}: JSON numbers differ from the table's")
        for rank in row["ranks"]:
            if sum(rank["peak"].values()) != rank["peak_bytes"]:
                sys.exit(f"{key} rank {rank['rank']}: itemized peak does not add up")
        if max(r["peak_bytes"] for r in row["ranks"]) != row["peak_bytes"]:
            sys.exit(f"{key}: peak is not the largest rank's")
    best = re.search(r"^fastest that fits: (\S+)(?: V=(\d+))? N=(\d+)( recompute)?,", text, re.M)
    want = plan["fastest_that_fits"]
    if bool(best) != bool(want):
        sys.exit("the JSON and the verdict disagree on whether anything fits")
    if best and (want["schedule"], want["virtual"], want["chunks"], want["recompute"]) != \
            (best.group(1), int(best.group(2) or 1), int(best.group(3)), bool(best.group(4))):
        sys.exit(f"JSON's fastest {want} is not the verdict's")
    print(f"{len(rows)} rows agree with the table")


if __name__ == "__main__":
    main()
