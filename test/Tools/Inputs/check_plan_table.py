"""Reads seq1f1b-plan output on stdin and checks that one row's column is
smaller than another's, e.g.

  check_plan_table.py seq1f1b:4 '<' 1f1b:1 stage0

compares the "stage 0 GiB" of the seq1f1b row with N=4 against the 1f1b row
with N=1. Columns: bubble, step, tokens, peak, stage0. A row is KIND:N or
KIND:N:V, with ":full" last for a row with recomputation (the table's
recompute column). Exits 1 (and says why) when a row is missing or the order
is wrong.
"""
import sys

COLUMNS = {"bubble": 3, "step": 4, "tokens": 5, "peak": 6, "stage0": 7}


def parse(lines):
    rows = {}
    header = next((i for i, l in enumerate(lines) if l.startswith("schedule ")), None)
    if header is None:
        sys.exit("no table header in the input")
    for line in lines[header + 1:]:
        f = line.split()
        if len(f) not in (10, 11) or f[9] not in ("yes", "OOM"):
            continue
        kind, v, n = f[0], int(f[1]), int(f[2])
        values = [float(x.rstrip("%")) for x in f[3:8]]
        recompute = len(f) == 11 and f[10] == "full"
        rows[(kind, n, v, recompute)] = [None, None, None] + values + [f[9] == "yes"]
    return rows


def key(text):
    parts = text.split(":")
    full = parts[-1] == "full"
    if full:
        parts = parts[:-1]
    return (parts[0], int(parts[1]) if len(parts) > 1 else 1,
            int(parts[2]) if len(parts) > 2 else None, full)


def lookup(rows, text):
    kind, n, v, full = key(text)
    hits = [r for (k, rn, rv, rf), r in rows.items()
            if k == kind and rn == n and (v is None or rv == v) and rf == full]
    if len(hits) != 1:
        sys.exit(f"row {text}: found {len(hits)} rows, have {sorted(rows)}")
    return hits[0]


def main():
    lhs, op, rhs, column = sys.argv[1:5]
    rows = parse(sys.stdin.read().splitlines())
    a = lookup(rows, lhs)[COLUMNS[column]]
    b = lookup(rows, rhs)[COLUMNS[column]]
    ok = a < b if op == "<" else a > b
    print(f"{column}: {lhs} = {a} {op} {rhs} = {b}: {'ok' if ok else 'WRONG'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
