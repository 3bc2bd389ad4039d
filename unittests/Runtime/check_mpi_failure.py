#!/usr/bin/env python3
"""Runs an MPI job that must fail and checks how it fails.

  check_mpi_failure.py --within SECONDS [--expect REGEX]... -- COMMAND...

Passes when COMMAND exits non-zero within SECONDS and its output (stdout and
stderr together) matches every REGEX. A job still running after SECONDS is
killed (its whole process group) and the check fails: a dead or hung rank
must never make the others wait forever.
"""

import argparse
import os
import re
import signal
import subprocess
import sys
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--within", type=float, required=True)
    parser.add_argument("--expect", action="append", default=[])
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command")

    start = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=args.within)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        print(output)
        print(f"FAIL: still running after {args.within:.0f} s (killed)")
        return 1
    elapsed = time.monotonic() - start
    print(output)
    print(f"exit status {proc.returncode} after {elapsed:.1f} s")
    ok = True
    if proc.returncode == 0:
        print("FAIL: the job exited 0; it must fail")
        ok = False
    for pattern in args.expect:
        if not re.search(pattern, output):
            print(f"FAIL: the output does not match: {pattern}")
            ok = False
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
