"""Reads seq1f1b-plan output on stdin and checks the verdict under the table
against the table itself: "fastest that fits" must name the row with the most
tokens/s among those that fit, with its numbers, and its ratios against 1f1b
must be the rows' ratios; "nothing fits" must come only when no row fits and
name the row with the smallest peak. Exits 1, saying why, otherwise.
"""
import re
import sys

from check_plan_table import parse

TOKENS, PEAK, FITS = 5, 6, 8


def row_key(name):
    m = re.fullmatch(r"(\S+)(?: V=(\d+))? N=(\d+)( recompute)?", name)
    if not m:
        sys.exit(f"cannot read the plan name '{name}'")
    return m.group(1), int(m.group(3)), int(m.group(2) or 1), bool(m.group(4))


def close(a, b, tol):
    return abs(a - b) <= tol


def main():
    text = sys.stdin.read()
    rows = parse(text.splitlines())
    fitting = [(k, r) for k, r in rows.items() if r[FITS]]
    best = re.search(r"^fastest that fits: (.+?), (\d+) tokens/s, peak ([\d.]+) GiB of", text, re.M)
    none = re.search(r"^nothing fits in \S+: the smallest peak is (.+?) at ([\d.]+) GiB", text, re.M)
    if best:
        if not fitting:
            sys.exit("a 'fastest that fits' verdict, but no row fits")
        key = row_key(best.group(1))
        top = max(r[TOKENS] for _, r in fitting)
        if key not in rows or not rows[key][FITS] or rows[key][TOKENS] != top:
            sys.exit(f"verdict names {key}, but the fastest fitting row has {top} tokens/s")
        if int(best.group(2)) != rows[key][TOKENS] or float(best.group(3)) != rows[key][PEAK]:
            sys.exit(f"verdict numbers {best.groups()[1:]} differ from the row {rows[key][TOKENS:PEAK + 1]}")
        for full in (False, True):
            base = rows.get(("1f1b", 1, 1, full))
            if not base or key == ("1f1b", 1, 1, full):
                continue
            label = "1f1b recompute" if full else "1f1b"
            vs = re.search(rf"against {label}: ([\d.]+)x the tokens/s at ([\d.]+)x the peak memory", text)
            if not vs:
                sys.exit(f"no comparison with the {label} row")
            # The table rounds tokens/s to 1 and GiB to 0.01.
            if not close(float(vs.group(1)), rows[key][TOKENS] / base[TOKENS], 0.006):
                sys.exit(f"tokens/s ratio {vs.group(1)} is not {rows[key][TOKENS] / base[TOKENS]:.4f}")
            if not close(float(vs.group(2)), rows[key][PEAK] / base[PEAK], 0.006 + 0.01 / base[PEAK]):
                sys.exit(f"peak ratio {vs.group(2)} is not {rows[key][PEAK] / base[PEAK]:.4f}")
        print(f"fastest that fits: {key}, ok")
    elif none:
        if fitting:
            sys.exit(f"'nothing fits', but {fitting[0][0]} fits")
        key = row_key(none.group(1))
        low = min(r[PEAK] for r in rows.values())
        if key not in rows or rows[key][PEAK] != low or float(none.group(2)) != low:
            sys.exit(f"verdict names {key} at {none.group(2)} GiB, the smallest peak is {low}")
        print(f"nothing fits, smallest {key}, ok")
    else:
        sys.exit("no verdict under the table")


if __name__ == "__main__":
    main()
