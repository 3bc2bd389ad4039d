"""Checks the simulator's time of one decoder layer against a measured one:

  check_layer_time.py TRANSLATE OPT CONFIG GPU SEQ CHUNKS MEASURED_MS TOLERANCE
                      [D HEADS]

predicts one layer's forward + backward as the simulated step of a 2-layer
copy of CONFIG minus that of a 1-layer copy (embedding and head cancel; one
stage, CHUNKS chunks, one micro-batch, `s1f-simulate gpu=GPU`), optionally
with hidden size D and HEADS heads (TRANSLATE and OPT: the
seq1f1b-translate and seq1f1b-opt to run), and fails unless it is within TOLERANCE
(a fraction) of MEASURED_MS. Prints the prediction and the ratio.
"""
import json
import os
import re
import subprocess
import sys
import tempfile


def makespan(tools, config, layers, seq, chunks, gpu, d, heads):
    cfg = json.load(open(config))
    cfg["n_layer"] = layers
    if d:
        cfg["n_embd"], cfg["n_head"] = d, heads
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "config.json")
        json.dump(cfg, open(path, "w"))
        mlir = subprocess.run(
            [tools[0], "--import-hf-config", path, "--seq-len",
             str(seq)], check=True, capture_output=True, text=True).stdout
    out = subprocess.run(
        [tools[1], f"--s1f-pipeline=stages=1 chunks={chunks} microbatches=1",
         f"--s1f-simulate=gpu={gpu}", "-o", os.devnull],
        input=mlir, check=True, capture_output=True, text=True)
    m = re.search(r"makespan ([0-9.]+) ms", out.stdout + out.stderr)
    if not m:
        sys.exit(f"no makespan in: {out.stdout + out.stderr}")
    return float(m.group(1))


def main():
    tools = sys.argv[1:3]
    config, gpu, seq, chunks, measured, tol = sys.argv[3:9]
    d, heads = (int(x) for x in sys.argv[9:11]) if len(sys.argv) > 9 else (0, 0)
    seq, chunks, measured, tol = int(seq), int(chunks), float(measured), float(tol)
    layer = (makespan(tools, config, 2, seq, chunks, gpu, d, heads) -
             makespan(tools, config, 1, seq, chunks, gpu, d, heads))
    ratio = layer / measured
    verdict = "ok" if abs(ratio - 1) <= tol else "OFF"
    print(f"S={seq} N={chunks}: predicted {layer:.1f} ms, measured {measured:.1f} ms, "
          f"ratio {ratio:.3f}: {verdict}")
    return 0 if verdict == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
