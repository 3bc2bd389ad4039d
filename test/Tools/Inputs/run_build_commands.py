"""Runs what seq1f1b-plan prints under its verdict: the "build it:" command
(with this build's seq1f1b-compile, writing EXE) and the "run it:" command's
options on in-process ranks (mpirun and --comm mpi dropped), with --steps 1
--verify. Prints the executable's last line.

usage: run_build_commands.py PLAN_OUTPUT SEQ1F1B_COMPILE EXE DATA
"""
import shlex
import subprocess
import sys


def main():
    plan, compiler, exe, data = sys.argv[1:5]
    lines = open(plan).read().splitlines()
    build = next(l for l in lines if l.startswith("  build it: "))
    run = next(l for l in lines if l.startswith("  run it:   "))
    argv = shlex.split(build.split(":", 1)[1])
    assert argv[0] == "seq1f1b-compile" and argv[-2:] == ["-o", "train"], argv
    subprocess.run([compiler] + argv[1:-1] + [exe], check=True,
                   stdout=subprocess.DEVNULL)
    words = shlex.split(run.split(":", 1)[1].split("(")[0])
    options = words[words.index("./train") + 1:]
    options.remove("--comm")
    options.remove("mpi")
    options[options.index("FILE")] = data
    out = subprocess.run([exe] + options + ["--steps", "1", "--verify"],
                         check=True, capture_output=True, text=True).stdout
    print(out.splitlines()[-1])


if __name__ == "__main__":
    main()
