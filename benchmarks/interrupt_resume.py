"""Interrupt a ``minstn reproduce`` run once, resume it, and compare its cells with a reference run.

Not a timing. It checks the claim "an interrupted run resumes to the cells an uninterrupted
run would have". The command is started, and after ``--after`` seconds it gets SIGINT in
its whole process group, as Ctrl-C in a terminal would (the ``--jobs`` worker processes
too). Then the same command runs again, to the end. ``--reference OUT`` is an
uninterrupted run's folder: each cell of the resumed run is compared with the reference's
cell of the same name, ``model.npz`` byte for byte and ``metrics.json`` up to its
timings.

    python benchmarks/interrupt_resume.py --after 330 --reference runs/medium-seed0 -- \\
        minstn reproduce table1 --budget medium --data-dir ../shared/data/mnist --jobs 2 --out runs/resumed

(docs/results.md, "Table 1, medium budget", used a copy of the reference folder with the
E column's cells deleted as ``--out``.) SIGINT is reset to its default in the child: a
background job of a non-interactive shell starts with SIGINT ignored, and Ctrl-C would
never arrive.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def _start(command: list) -> subprocess.Popen:
    """``command`` in a process group of its own, with SIGINT at its default (this script
    starts no threads, so ``preexec_fn`` is safe here)."""
    return subprocess.Popen(command, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # noqa: PLW1509


def interrupt_then_resume(command: list, after: float) -> None:
    """Run ``command``, SIGINT its process group after ``after`` seconds, run it again."""
    t0 = time.time()
    first = _start(command)
    try:
        first.wait(timeout=after)
        print(f"--- finished before the interrupt, after {time.time() - t0:.0f} s", flush=True)
        return
    except subprocess.TimeoutExpired:
        os.killpg(first.pid, signal.SIGINT)
    print(f"--- SIGINT to the process group after {time.time() - t0:.0f} s; exit status {first.wait()}",
          flush=True)
    t1 = time.time()
    status = _start(command).wait()
    print(f"--- the resumed run exited with {status} after {time.time() - t1:.0f} s", flush=True)


def _without_timings(metrics: dict) -> dict:
    m = {k: v for k, v in metrics.items() if k != "seconds"}
    m["history"] = [{k: v for k, v in h.items() if k != "seconds"} for h in metrics.get("history", [])]
    return m


def compare_cell(reference: Path, cell: Path) -> list[str]:
    """What differs between two folders of the same cell (empty: identical)."""
    problems = []
    if (reference / "model.npz").read_bytes() != (cell / "model.npz").read_bytes():
        problems.append("model.npz differs")
    a, b = (_without_timings(json.loads((f / "metrics.json").read_text())) for f in (reference, cell))
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    if keys:
        problems.append(f"metrics.json differs in {keys}")
    return problems


def compare_runs(reference: Path, out: Path) -> int:
    """Compare every cell of ``out/runs`` with ``reference/runs``; the number that differ."""
    bad = 0
    for cell in sorted(p for p in (out / "runs").iterdir() if p.is_dir()):
        problems = compare_cell(reference / "runs" / cell.name, cell)
        bad += bool(problems)
        print(f"{cell.name:20s} " + ("identical (model.npz bytes, metrics.json up to timings)" if not problems
                                     else "; ".join(problems)))
    return bad


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        raise SystemExit("usage: interrupt_resume.py --after S --reference OUT -- minstn reproduce ... --out DIR")
    split = argv.index("--")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--after", type=float, required=True, help="seconds before the interrupt")
    p.add_argument("--reference", type=Path, required=True, help="an uninterrupted run's --out folder")
    args, command = p.parse_args(argv[:split]), argv[split + 1:]
    if "--out" not in command:
        raise SystemExit("the command needs --out (the folder compared with --reference)")
    interrupt_then_resume(command, args.after)
    return 1 if compare_runs(args.reference, Path(command[command.index("--out") + 1])) else 0


if __name__ == "__main__":
    sys.exit(main())
