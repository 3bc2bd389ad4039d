#!/usr/bin/env bash
# The layouts seq1f1b-plan picks for today's long-context models at 128k
# tokens on one and on four 8-GPU H100 nodes: the fastest layout, the fastest
# without context parallelism, and the fastest Seq1F1B plan. Prints the
# markdown table of docs/planning.md section 5.
#   bench/long_context_layouts.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
PLAN=${1:-build}/bin/seq1f1b-plan
[ -x "$PLAN" ] || { echo "no $PLAN: build first (cmake --build build)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "| model | GPUs | fastest layout | tokens/s per GPU | peak GiB | without context parallelism | best Seq1F1B plan |"
echo "|---|---|---|---|---|---|---|"
for config in llama-3.1-8b qwen2.5-7b-128k qwen3-8b gemma-3-4b; do
  for gpus in 8 32; do
    "$PLAN" --config "examples/$config.json" --seq-len 131072 --gpus "$gpus" \
      --global-batch "$gpus" --distributed-optimizer \
      --schedules 1f1b,seq1f1b,seq1f1b-interleaved --recompute none,full \
      --json "$tmp/plan.json" >/dev/null 2>&1
    python3 - "$tmp/plan.json" "$config" "$gpus" <<'PY'
import json, sys
plan = json.load(open(sys.argv[1]))
fits = [l for l in plan["layouts"] if l["fits"]]
if not fits:
    print(f"| {sys.argv[2]} | {sys.argv[3]} | nothing fits | | | | |")
    sys.exit()
gpus = plan["gpus"]
def name(l):
    kind = l["schedule"] + (f" V={l['virtual']}" if l["virtual"] > 1 else "")
    kind += f" N={l['chunks']}" + (" recompute" if l["recompute"] else "")
    return f"tp{l['tp']} cp{l['cp']} P{l['stages']} dp{l['dp']}, {kind}"
def speed(l):
    return l["tokens_per_second"] / gpus
best = max(fits, key=speed)
def relative(layouts):
    if not layouts:
        return "none fits"
    l = max(layouts, key=speed)
    return f"{name(l)}: {speed(l) / speed(best):.2f}x"
no_cp = [l for l in fits if l["cp"] == 1]
seq = [l for l in fits if l["schedule"].startswith("seq1f1b")]
print(f"| {sys.argv[2]} | {gpus} | {name(best)} | {speed(best):,.0f} | "
      f"{best['peak_bytes'] / 2**30:.1f} | {relative(no_cp)} | {relative(seq)} |")
PY
  done
done
