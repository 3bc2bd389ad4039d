#!/usr/bin/env python3
"""Collects what bench/gpu/run.sh produced into one JSON and a short table.

Inputs (all under --out, each optional): ctest.log (status of every `gpu`
test, crashes included), gtest/*.json (failure messages and the relative
errors the tests record as properties), bench.json (s1f-cuda-bench),
torch.json (torch_baseline.py), nvidia-smi.txt, steps.txt. Output:
results.json next to them, and the table on stdout (printed last by run.sh).
Standard library only.
"""

import argparse
import glob
import json
import os
import re
import sys


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def ctest_status(path):
    """name -> Passed | Failed | Skipped | Timeout | Exception ..."""
    status = {}
    try:
        text = open(path, errors="replace").read()
    except OSError:
        return status
    for m in re.finditer(
            r"Test\s+#\d+: (\S+) \.*\s*(?:\*\*\*)?([A-Za-z][\w :]*?)\s+[\d.]+ sec",
            text):
        status[m.group(1)] = m.group(2).strip()
    return status


def gtest_details(out):
    """name -> {result, failures, relerr}."""
    details = {}
    for path in sorted(glob.glob(os.path.join(out, "gtest", "*.json"))):
        data = load_json(path)
        if not data:
            continue
        for suite in data.get("testsuites", []):
            for case in suite.get("testsuite", []):
                name = f"{suite.get('name')}.{case.get('name')}"
                rel = {k[len("relerr_"):]: float(v) for k, v in case.items()
                       if k.startswith("relerr_")}
                tol = {k[len("tol_"):]: float(v) for k, v in case.items()
                       if k.startswith("tol_")}
                fails = [f.get("failure", "") for f in case.get("failures", [])]
                details[name] = dict(result=case.get("result", ""),
                                     failures=fails, relerr=rel, tol=tol)
    return details


def tolerance(detail, test, key):
    """The tolerance the test recorded, else the rule by storage type."""
    if key in detail.get("tol", {}):
        return detail["tol"][key]
    return 1e-2 if "bf16" in test.lower() else 1e-5


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--elapsed", type=float, default=0.0)
    args = ap.parse_args()
    out = args.out

    status = ctest_status(os.path.join(out, "ctest.log"))
    details = gtest_details(out)
    for name, d in details.items():  # tests ctest did not report
        if name not in status:
            status[name] = {"COMPLETED": "Passed", "SKIPPED": "Skipped"}.get(
                d["result"], d["result"]) if not d["failures"] else "Failed"
    passed = sorted(n for n, s in status.items() if s == "Passed")
    skipped = sorted(n for n, s in status.items() if s == "Skipped")
    failed = sorted(n for n, s in status.items() if s not in ("Passed", "Skipped"))

    bench = load_json(os.path.join(out, "bench.json")) or {}
    torch = load_json(os.path.join(out, "torch.json")) or {}
    steps = []
    try:
        steps = [l.rstrip("\n") for l in open(os.path.join(out, "steps.txt"))]
    except OSError:
        pass

    results = dict(
        device=bench.get("device"),
        elapsed_s=args.elapsed,
        steps=steps,
        tests=dict(
            passed=passed, skipped=skipped,
            failed=[dict(name=n, status=status[n],
                         failures=details.get(n, {}).get("failures", []))
                    for n in failed],
            relerr={n: d["relerr"] for n, d in details.items() if d["relerr"]}),
        bench=bench.get("results", []),
        torch=dict(version=torch.get("torch"), results=torch.get("results", [])),
    )
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)

    # ---- the short table -------------------------------------------------
    dev = bench.get("device") or {}
    print()
    print(f"== seq1f1b CUDA backend: {dev.get('name', 'device ?')}"
          f" (peak {dev.get('peak_gbps', 0):.0f} GB/s), {args.elapsed:.0f} s ==")
    for s in steps:
        print("  " + s)
    print(f"tests: {len(passed)} passed, {len(failed)} failed, "
          f"{len(skipped)} skipped")
    worst = []
    for n, d in details.items():
        for k, v in d["relerr"].items():
            tol = tolerance(d, n, k)
            worst.append((v / tol, v, tol, n, k))
    worst.sort(reverse=True)
    for ratio, v, tol, n, k in worst[:5]:
        print(f"  closest to tolerance: {n} {k} rel err {v:.2e}"
              f" ({100 * ratio:.0f}% of {tol:g})")
    for n in failed:
        msgs = details.get(n, {}).get("failures", [])
        first = msgs[0].strip().splitlines() if msgs else []
        print(f"  FAILED {n} [{status[n]}]"
              + (f": {' | '.join(first[:3])[:300]}" if first else ""))
    rows = bench.get("results", [])
    if rows:
        tmap = {r["name"]: r for r in torch.get("results", [])}
        peak = dev.get("peak_gbps") or 0
        print(f"{'kernel':28s} {'dtype':9s} {'shape':18s} {'ms':>9s} "
              f"{'GB/s':>7s} {'%peak':>6s} {'TFLOP/s':>8s} {'torch ms':>9s} "
              f"{'speedup':>8s}")
        for r in rows:
            t = tmap.get(r["name"])
            gb = f"{r['gbps']:7.0f}" if r["gbps"] else " " * 7
            pk = (f"{100 * r['gbps'] / peak:5.0f}%" if r["gbps"] and peak
                  else " " * 6)
            tf = f"{r['tflops']:8.0f}" if r["tflops"] else " " * 8
            tm = f"{t['ms']:9.4f}" if t else " " * 9
            sp = f"{t['ms'] / r['ms']:7.2f}x" if t and r["ms"] > 0 else ""
            print(f"{r['name']:28s} {r['dtype']:9s} {r['shape']:18s} "
                  f"{r['ms']:9.4f} {gb} {pk} {tf} {tm} {sp}")
    else:
        print("no benchmark results")
    print(f"results: {os.path.join(out, 'results.json')}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
