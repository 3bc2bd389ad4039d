#!/usr/bin/env python3
"""seq1f1b-train --comm mpi prints what the in-process run prints.

  check_mpi_train.py TRANSLATE TRAIN EXAMPLES_DIR WORK_DIR [COMPILE] -- MPIEXEC...

Exports the tiny GPT-2 and Llama graphs, trains each with a few schedules
in-process (--ranks P) and under MPIEXEC -np P (--comm mpi), and checks:
both pass --verify, and their outputs are the same line by line except the
tokens/s column (same losses, gradient norms, memory peaks, digit for digit).
With --dp D, --tp T and --cp C the job has P x C x T x D processes; a tiny
Mixtral runs with its experts split over replicas (--ep, with the
load-balancing loss) and over tensor-parallel ranks. Also: --ranks that disagrees with
the job size is an error naming both. With COMPILE (seq1f1b-compile), a
compiled training executable prints the same under MPI as in-process.
"""

import os
import re
import subprocess
import sys


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)


def main():
    args = sys.argv[1:]
    split = args.index("--")
    translate, train, examples, work = args[:4]
    compile_ = args[4] if split > 4 else None
    mpiexec = args[split + 1:]  # ends with the number-of-processes flag
    os.makedirs(work, exist_ok=True)
    data = os.path.join(examples, "data", "declaration.txt")

    graphs = {}
    for model in ("gpt", "llama", "mixtral"):
        hf = run([translate, "--import-hf-config",
                  os.path.join(examples, f"{model}-tiny.json"), "--seq-len", "32"])
        exported = run([translate, "--export-runtime-graph"], input=hf.stdout)
        if hf.returncode or exported.returncode:
            print(hf.stderr, exported.stderr)
            return 1
        graphs[model] = os.path.join(work, f"{model}.json")
        with open(graphs[model], "w") as f:
            f.write(exported.stdout)

    failed = 0
    cases = [("gpt", 4, ["--chunks", "4", "--microbatches", "2"]),
             ("llama", 2, ["--schedule", "seq1f1b-zb", "--chunks", "3",
                           "--microbatches", "3"]),
             ("gpt", 2, ["--schedule", "1f1b", "--microbatches", "3"]),
             ("llama", 2, ["--dp", "2", "--chunks", "2", "--microbatches", "2"]),
             ("llama", 2, ["--tp", "2", "--chunks", "2", "--microbatches", "2"]),
             ("gpt", 1, ["--tp", "2", "--dp", "2", "--schedule", "1f1b",
                         "--microbatches", "2"]),
             ("llama", 1, ["--cp", "2", "--tp", "2", "--chunks", "2",
                           "--microbatches", "2"]),
             ("gpt", 2, ["--tp", "2", "--sp", "--chunks", "2"]),
             ("mixtral", 2, ["--dp", "2", "--ep", "2", "--chunks", "2",
                             "--microbatches", "2", "--moe-aux-loss", "0.01"]),
             ("mixtral", 1, ["--tp", "2", "--sp", "--chunks", "2"])]
    strip = re.compile(r"\s+[0-9.]+ tokens/s")
    for model, ranks, extra in cases:
        common = ["--graph", graphs[model], "--data", data, "--seq-len", "32",
                  "--steps", "3", "--verify", "--memory"] + extra
        local = run([train, "--ranks", str(ranks)] + common)
        copies = 1
        for flag in ("--dp", "--tp", "--cp"):
            if flag in extra:
                copies *= int(extra[extra.index(flag) + 1])
        mpi = run(mpiexec + [str(ranks * copies), train, "--comm", "mpi"] + common)
        name = f"{model} P={ranks} {' '.join(extra)}"
        a = strip.sub("", local.stdout).splitlines()
        b = strip.sub("", mpi.stdout).splitlines()
        ok = (local.returncode == 0 and mpi.returncode == 0 and a == b and
              any(line.startswith("verified") for line in b))
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
        if not ok:
            failed += 1
            print("in-process:", local.returncode, local.stdout, local.stderr)
            print("mpi:", mpi.returncode, mpi.stdout, mpi.stderr)

    # Checkpoints: an MPI job's --save (rank 0 gathers every rank's parts)
    # is the in-process run's file, byte for byte, and either resumes the
    # other's run with the same next step.
    common = ["--graph", graphs["llama"], "--data", data, "--seq-len", "32",
              "--chunks", "2", "--microbatches", "2", "--tp", "2"]
    files = {k: os.path.join(work, f"{k}.safetensors") for k in ("local", "mpi")}
    local = run([train, "--ranks", "2", "--steps", "2", "--save",
                 files["local"]] + common)
    mpi = run(mpiexec + ["4", train, "--comm", "mpi", "--steps", "2", "--save",
                         files["mpi"]] + common)
    same = (local.returncode == 0 and mpi.returncode == 0 and
            open(files["local"], "rb").read() == open(files["mpi"], "rb").read())
    resumed = {}
    for where, load in (("local", files["mpi"]), ("mpi", files["local"])):
        cmd = [train, "--steps", "1", "--load", load] + common
        cmd = (mpiexec + ["4"] + cmd + ["--comm", "mpi"] if where == "mpi"
               else cmd + ["--ranks", "2"])
        out = run(cmd)
        resumed[where] = [strip.sub("", l) for l in out.stdout.splitlines()
                          if not l.startswith("resumed from")]
        same = same and out.returncode == 0
    ok = same and resumed["local"] == resumed["mpi"] and len(resumed["mpi"]) > 1
    print(f"{'ok  ' if ok else 'FAIL'} --save and --load under mpirun -np 4 "
          f"(T=2, P=2)")
    if not ok:
        failed += 1
        print(local.stdout, local.stderr, mpi.stdout, mpi.stderr, resumed)

    bad = run(mpiexec + ["2", train, "--comm", "mpi", "--ranks", "3",
                         "--graph", graphs["gpt"], "--data", data,
                         "--seq-len", "32"])
    expect = "--ranks 3 but the MPI job has 2 processes"
    ok = bad.returncode != 0 and expect in bad.stdout + bad.stderr
    print(f"{'ok  ' if ok else 'FAIL'} --ranks 3 under -np 2 is an error")
    if not ok:
        failed += 1
        print(bad.returncode, bad.stdout, bad.stderr)
    if compile_:
        exe = os.path.join(work, "gpt-train")
        built = run([compile_, "--config", os.path.join(examples, "gpt-tiny.json"),
                     "--seq-len", "32", "--stages", "2", "--chunks", "2",
                     "--microbatches", "2", "-o", exe])
        common = ["--data", data, "--steps", "3", "--verify", "--memory"]
        local = run([exe] + common)
        mpi = run(mpiexec + ["2", exe, "--comm", "mpi"] + common)
        a = strip.sub("", local.stdout).splitlines()
        b = strip.sub("", mpi.stdout).splitlines()
        ok = (built.returncode == 0 and local.returncode == 0 and
              mpi.returncode == 0 and a == b and
              any(line.startswith("verified") for line in b))
        print(f"{'ok  ' if ok else 'FAIL'} a compiled executable under mpirun -np 2")
        if not ok:
            failed += 1
            print(built.stdout, built.stderr, local.stdout, local.stderr,
                  mpi.stdout, mpi.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
