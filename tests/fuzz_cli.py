"""Fuzz the memplan CLI with corrupted graph, plan and CSV files (not a test: run it by hand).

    python tests/fuzz_cli.py --runs 10000 [--seed 0] [--timeout 20] [--pictures 0.02] [--options 0.2]
                             [--semantic 0.1] [--no-ortools 0.05] [--aliases 0.05] [--closed-stdout 0.03]
                             [--bench 0.03] [--existing 0.1]

Each run picks a valid input file (tests/corrupt.py builds them: graphs with views, in-place ops,
fusion groups and KV-cache writes, their serial, multi-stream and two-device plans, a minimalloc CSV),
corrupts it once (byte flips, truncations, JSON values swapped for huge/negative/wrong-typed ones or for
text that is not JSON, deleted keys, duplicated entries), and runs a command that reads it through
``memplan.cli.main`` in-process (a share of runs, ``--options``, adds a few of the command's own options
with hostile values: ``corrupt.with_options``). Another share, ``--semantic``, makes a well-formed edit instead of a
corruption (``corrupt.semantic``: a graph with the same names and other sizes, kinds or alignment; a plan with a
hazard planted), and a share, ``--no-ortools``, runs where OR-Tools does not import (``plan`` and ``csv`` asking for cpsat).
A share, ``--aliases``, points the output at an input under another name (``corrupt.aliased``: a symlink, a hard link,
``./``, a directory, or ``example -o`` into the inputs' directory), and a share, ``--closed-stdout``, runs with stdout
closed (``>&-``). A share, ``--bench``, reads a graph through ``bench planners --graph`` (``--json`` its output), and
a share, ``--existing``, leaves a file of the user's at each output first (round 41). It counts tracebacks (any
exception out of ``main``, or an exit code other than 0 and 2), broken one-line errors, hangs (a run past
``--timeout`` seconds), lost files (an input changed, an output written by a failed run, a temporary file left
behind), unverified plans (a ``verify`` that passed a plan tests/oracle.py finds unsafe) and lost reports (``show``,
``simulate``, ``verify`` or ``example`` exiting 0 with stdout closed), prints the first findings of each kind, and
exits 1 if there were any.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
for p in (HERE, os.path.dirname(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

from corrupt import (  # noqa: E402
    aliased,
    bench_command,
    commands,
    corrupt_n,
    make_inputs,
    run_case,
    semantic,
    with_options,
    without_modules,
)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=int, default=20, help="seconds after which a run counts as a hang")
    ap.add_argument("--pictures", type=float, default=0.02, help="share of runs that also try 'draw'")
    ap.add_argument("--options", type=float, default=0.2,
                    help="share of runs that also add a few of the command's options with hostile values")
    ap.add_argument("--semantic", type=float, default=0.1,
                    help="share of runs that make a well-formed edit of changed meaning instead of a corruption")
    ap.add_argument("--no-ortools", type=float, default=0.05, help="share of runs where OR-Tools does not import")
    ap.add_argument("--aliases", type=float, default=0.05,
                    help="share of runs whose output names an input under another name (a link, ./, a directory)")
    ap.add_argument("--closed-stdout", type=float, default=0.03, help="share of runs with stdout closed (>&-)")
    ap.add_argument("--bench", type=float, default=0.03,
                    help="share of graph runs through 'bench planners --graph' (results to --json)")
    ap.add_argument("--existing", type=float, default=0.1,
                    help="share of runs with a file of the user's at each output first (a failed run must keep it)")
    ap.add_argument("--show", type=int, default=5, help="findings of each kind to print")
    args = ap.parse_args(argv)

    rnd = random.Random(args.seed)
    extra = random.Random(f"options {args.seed}")   # (a stream of its own: a seed's corruptions stay as they were)
    meaning = random.Random(f"semantic {args.seed}")   # (and these two: a seed's options stay as they were too)
    env = random.Random(f"environment {args.seed}")
    paths = random.Random(f"aliases {args.seed}")   # (round 40's two: streams of their own as well)
    closed = random.Random(f"closed stdout {args.seed}")
    benches = random.Random(f"bench {args.seed}")   # (round 41's two: streams of their own too)
    users = random.Random(f"existing {args.seed}")
    tally: Counter = Counter()
    exits: Counter = Counter()
    shown: Counter = Counter()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="memplan-fuzz-") as d:
        inputs = make_inputs(d)
        names = sorted(inputs.files)
        for run in range(args.runs):
            target = rnd.choice(names)
            what, data = corrupt_n(inputs.files[target], rnd, csv=target.endswith(".csv"))
            argv = rnd.choice(commands(inputs, target, pictures=rnd.random() < args.pictures))
            if benches.random() < args.bench:   # (after the choice: a seed's other runs stay as they were)
                argv = bench_command(inputs, target) or argv
            if extra.random() < args.options:
                argv = with_options(argv, extra, d)
            edit = semantic(inputs, target, meaning) if meaning.random() < args.semantic else None
            if edit is not None:
                what, data = edit
            hide = ("ortools",) if env.random() < args.no_ortools else ()
            if hide:   # (and cpsat asked for: the one solver that needs it, which options pick too rarely)
                what += " (no ortools)"
                argv = [*argv, "--solver", "cpsat"] if argv[0] in ("plan", "csv") else argv
            if paths.random() < args.aliases:
                how, argv = aliased(argv, inputs, paths)
                what += f" (output {how})"
            shut = closed.random() < args.closed_stdout
            what += " (stdout closed)" * shut
            keep = users.random() < args.existing
            what += " (outputs there before)" * keep
            with without_modules(*hide):
                code, problem = run_case(inputs, target, data, argv, timeout=args.timeout, closed_stdout=shut,
                                         existing=keep)
            kind = "ok" if problem is None else problem.split(":")[0]
            tally[kind] += 1
            exits[code] += 1
            if problem is not None and shown[kind] < args.show:
                shown[kind] += 1
                print(f"run {run}: {target} {what}: memplan {' '.join(os.path.basename(a) for a in argv)}\n"
                      f"    {problem}", flush=True)
            if (run + 1) % 1000 == 0:
                print(f"... {run + 1} runs, {time.perf_counter() - t0:.0f} s: {dict(tally)}", flush=True)
    bad = sum(v for k, v in tally.items() if k != "ok")
    print(f"{args.runs} runs in {time.perf_counter() - t0:.0f} s (seed {args.seed}): "
          f"tracebacks {tally['traceback']}, hangs {tally['hang']}, lost files {tally['lost file']}, "
          f"error not one line {tally['one line']}, unverified plans {tally['unverified plan']}, "
          f"lost reports {tally['lost report']}; "
          f"contract kept in {tally['ok']} "
          f"(exit 2: {exits[2]}, exit 0: {exits[0]})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
