"""Corrupted graph, plan and CSV files, and one run of the CLI on them, for the hostile-input checks.

Shared by the property test (tests/test_hostile_props.py, hypothesis picks the seeds) and the fuzz
script (tests/fuzz_cli.py, thousands of seeded runs). A corruption is a byte flip, a truncation, a
JSON value swapped for a huge, negative or wrong-typed one (or raw text that is not JSON: NaN,
1e999, 5000 digits, deep brackets), a deleted key, a duplicated list entry, or a CSV cell swapped.
``run_case`` runs one command through ``memplan.cli.main`` in-process and returns what broke the
contract (exit 2 with one line, or 0; no output written on error; inputs untouched), or None.
``with_options`` adds a few of the command's own options with hostile values (a class of input the file
corruptions never reach: an option left without effect by the others warned before the input's error).
``semantic`` makes an edit that keeps a file well formed but changes its meaning (a graph with the same names and
another size, kind or alignment, so the plans on disk belong to another graph; a plan with a hazard planted by
``verify_fuzz38.plant``): ``run_case`` then holds a ``verify`` that passes to the brute-force oracle (tests/oracle.py).
``without_modules`` runs a case where a dependency does not import (``ortools``: ``--solver cpsat`` was a traceback).
``aliased`` points an output at an input under another name (a symlink, a hard link, ``./``, ``sub/..``), at a
directory, or runs ``example -o`` into the inputs' own directory (whose ``qkv.json`` it wrote over); ``run_case``'s
``closed_stdout`` runs a case with ``sys.stdout`` None (``>&-``), where a report (``show``) exiting 0 was lost.
``bench_command`` ``bench planners --graph FILE --json OUT`` (a corrupted graph read by a benchmark), and
``run_case``'s ``existing`` leaves a file of the user's at every output before the run: a failed run must leave it
byte for byte (round 41).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import signal
import sys
import traceback
from dataclasses import dataclass

import handgraphs as H
import oracle
from cli_contract import exit_code
from verify_fuzz38 import HAZARDS, plant

import memplan
from memplan.cli import main

RAW = "__memplan_raw__"
#: JSON values swapped in: huge, negative, fractional, wrong-typed, and ids the files already use
HOSTILE = [10 ** 30, 2 ** 63, 2 ** 63 - 1, 2 ** 64, 2 ** 48, 2 ** 48 + 1, -1, -(2 ** 63) - 1, 0, 1, 3, 10 ** 4000,
           1e308, -1e308, 0.5, -0.0, 1e15, "", "x", "\n\t", "\u00fc\u0000", None, True, False, [], {}, [1, 2],
           {"a": []}, [[["x"]]], "norm", "mm_q", "x", "y", "input", "weight", "output", "x" * 5000,
           "memplan.graph/1", "memplan.plan/1", [{"node": "norm", "stream": 0}]]
#: raw text swapped in where a value was (none of it is a valid JSON value, or it is an extreme one)
RAW_TEXT = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "9" * 5000, "-" + "9" * 4400, "[" * 200 + "]" * 200,
            "[" * 70 + "]" * 70, "1" + "0" * 400, "0.1e-400", "\"\\ud800\""]
CSV_CELLS = ["-1", "1e3", str(2 ** 63), str(2 ** 64), "", "x", '"', "9" * 5000, "nan", " 7 ", "0", "3.0", "a,b"]
KINDS = ("flip", "truncate", "swap", "swap", "swap", "raw", "delete", "delete", "duplicate", "idswap", "idswap",
         "intswap", "intswap", "shuffle")
#: option values tried by ``with_options``: counts, sizes, seconds and names, legal, extreme and wrong
OPTION_VALUES = ["0", "1", "2", "3", "-1", "auto", "1K", "64M", "1G,2G", "1.5", "nan", "inf", "-0", "1e-300", "1e308",
                 str(2 ** 63), str(2 ** 64), "", " ", "x", "--", "-", "4096", "1e3", "0x10", "\u0663", "8E", "1M,",
                 "greedy", "search", "cpsat"]


def _slots(doc):
    """Every (container, key) of a JSON document, found without recursion."""
    out = []
    stack = [doc]
    while stack:
        c = stack.pop()
        items = c.items() if isinstance(c, dict) else enumerate(c)
        for k, v in items:
            out.append((c, k))
            if isinstance(v, (dict, list)):
                stack.append(v)
    return out


def corrupt(data: bytes, rnd: random.Random, csv: bool = False) -> tuple[str, bytes]:
    """One random corruption of ``data``: (what was done, the corrupted bytes)."""
    kind = rnd.choice(KINDS)
    if kind == "flip" or not data:
        return _flip(data, rnd)
    if kind == "truncate":
        return "truncate", data[:rnd.randrange(len(data))]
    if csv:
        try:
            lines = data.decode().splitlines()
        except UnicodeDecodeError:
            return _flip(data, rnd)
        if not lines:
            return _flip(data, rnd)
        k = rnd.randrange(len(lines))
        cells = lines[k].split(",")
        if kind == "delete":
            del cells[rnd.randrange(len(cells))]
        elif kind == "duplicate":
            lines.insert(k, lines[k])
        else:
            cells[rnd.randrange(len(cells))] = rnd.choice(CSV_CELLS)
        lines[k] = ",".join(cells)
        return f"csv-{kind}", ("\n".join(lines) + "\n").encode()
    try:
        doc = json.loads(data)
    except ValueError:  # already corrupted past JSON: flip bytes instead
        return _flip(data, rnd)
    slots = _slots(doc)
    if not slots:
        return _flip(data, rnd)
    dicts = [(c, k) for c, k in slots if isinstance(c, dict)]
    if kind == "delete" and dicts:
        c, k = rnd.choice(dicts)
        del c[k]
        return f"delete {k!r}", json.dumps(doc).encode()
    if kind == "duplicate":
        lists = [(c, k) for c, k in slots if isinstance(c, list)]
        if lists:
            c, k = rnd.choice(lists)
            c.insert(k, json.loads(json.dumps(c[k])))
            return "duplicate", json.dumps(doc).encode()
    if kind in ("idswap", "intswap"):  # a value of the same type from elsewhere in the file: parses, and
        want = str if kind == "idswap" else int  # reaches the planner, the verifier and the device split
        same = [(c, k) for c, k in slots if type(c[k]) is want]
        if same:
            c, k = rnd.choice(same)
            if want is int and rnd.random() < 0.5:
                c[k] += rnd.choice([-1, 1, 256, -256, 1 << 20])
            else:
                c[k] = _other(rnd, c[k], same)
            return f"{kind} {k!r}", json.dumps(doc).encode()
    if kind == "shuffle":
        lists = [c[k] for c, k in slots if isinstance(c[k], list) and len(c[k]) > 1]
        if lists:
            rnd.shuffle(rnd.choice(lists))
            return "shuffle", json.dumps(doc).encode()
    c, k = rnd.choice(slots)
    if kind == "raw":
        c[k] = RAW
        return f"raw {k!r}", json.dumps(doc).replace(json.dumps(RAW), rnd.choice(RAW_TEXT), 1).encode()
    old = c[k]
    c[k] = rnd.choice(HOSTILE)
    if isinstance(c, dict) and rnd.random() < 0.2:  # or rename the key
        c[rnd.choice(["id", "size", "offset", "kind", "view_of", "inplace", "stream", "streams"])] = old
    return f"swap {k!r}", json.dumps(doc).encode()


def _flip(data: bytes, rnd: random.Random) -> tuple[str, bytes]:
    b = bytearray(data or b"{")
    for _ in range(rnd.randint(1, 3)):
        i = rnd.randrange(len(b))
        b[i] ^= rnd.randint(1, 255)
    return "flip", bytes(b)


def _other(rnd: random.Random, value, same):
    """Another value of the same type from the document (the same one if none differs)."""
    for _ in range(8):
        c, k = rnd.choice(same)
        if c[k] != value:
            return c[k]
    return value


def corrupt_n(data: bytes, rnd: random.Random, csv: bool = False, most: int = 2) -> tuple[str, bytes]:
    """One to ``most`` corruptions in a row."""
    done = []
    for _ in range(rnd.randint(1, most)):
        what, data = corrupt(data, rnd, csv)
        done.append(what)
    return " + ".join(done), data


def semantic(inputs: Inputs, target: str, rnd: random.Random) -> tuple[str, bytes] | None:
    """A well-formed edit of ``target`` that changes what it means, or None where none applies (a CSV): a graph's
    tensor with another size or kind, or the graph with another alignment (its plans on disk are then plans of a graph
    with the same names but not this one), or a plan with one of ``verify_fuzz38.HAZARDS`` planted. The edit may leave
    the plan safe; ``run_case`` asks the oracle whenever ``verify`` passes."""
    if target.endswith(".csv"):
        return None
    doc = json.loads(inputs.files[target])
    stem = target.split(".")[0]
    if target == f"{stem}.json":
        t = rnd.choice(doc["tensors"])
        how = rnd.choice(["size*2", "size+1", "size-1", "kind", "alignment"])
        if how == "alignment":
            doc["alignment"] = rnd.choice([1, 3, 512, 4096, 1 << 20])
            what = f"alignment {doc['alignment']}"
        elif how == "kind":
            t["kind"] = rnd.choice([k for k in ("input", "weight", "intermediate", "output") if k != t["kind"]])
            what = f"{t['id']} kind {t['kind']}"
        else:
            t["size"] = max(0, t["size"] * 2 if how == "size*2" else t["size"] + (1 if how == "size+1" else -1))
            what = f"{t['id']} size {t['size']}"
        return f"semantic graph {what}", json.dumps(doc, indent=1).encode()
    graph = json.loads(inputs.files[f"{stem}.json"])
    for _ in range(8):
        how = rnd.choice(HAZARDS)
        planted = plant(graph, doc, how, rnd)
        if planted is not None:
            return f"semantic plan {how}", json.dumps(planted, indent=1).encode()
    return None


@contextlib.contextmanager
def without_modules(*names: str):
    """Run the body where ``import name`` (and of its submodules) fails, as where the package is not installed."""
    hidden = [m for m in sys.modules if any(m == n or m.startswith(n + ".") for n in names)]
    hidden += [n for n in names if n not in hidden] + ["ortools.sat", "ortools.sat.python"] * ("ortools" in names)
    saved = {m: sys.modules.get(m) for m in hidden}
    try:
        for m in hidden:
            sys.modules[m] = None
        yield
    finally:
        for m, mod in saved.items():
            if mod is None:
                sys.modules.pop(m, None)
            else:
                sys.modules[m] = mod


def _unverified(inputs: Inputs, argv: list[str]) -> str | None:
    """For a ``verify`` that passed: what the oracle finds unsafe in the plan it passed, or None."""
    files = [a for a in argv[1:] if not a.startswith("-")]
    try:
        graph, plan = (json.loads(open(f, "rb").read()) for f in files[:2])
    except ValueError:
        return None   # (JSON that Python's reader refuses and memplan's took: not the oracle's to judge)
    try:
        found = oracle.findings(graph, plan, fused_groups="--fused-groups" in argv)
    except Exception as exc:  # noqa: BLE001 - a plan the oracle cannot even read was passed as safe
        return f"unverified plan: the oracle cannot read the plan verify passed ({type(exc).__name__}: {exc})"
    return f"unverified plan: verify passed a plan the oracle finds unsafe: {found[:2]}" if found else None


@dataclass
class Inputs:
    """Valid files to corrupt, and the commands that read each."""

    directory: str
    files: dict[str, bytes]  # name -> valid bytes

    def path(self, name: str) -> str:
        return os.path.join(self.directory, name)


def make_inputs(directory: str) -> Inputs:
    """Graphs (with views, in-place, groups, weights, KV-cache writes), their serial and multi-stream
    plans, a two-device plan with its split graph, and a minimalloc CSV."""
    os.makedirs(directory, exist_ok=True)
    files: dict[str, bytes] = {}

    def put(name: str, text: str) -> None:
        files[name] = text.encode()

    for name, g, streams in (("qkv", H.qkv(), H.QKV_STREAMS), ("views", H.views(), H.VIEWS_STREAMS),
                             ("kv", H.kv_cache(), H.KV_STREAMS), ("moe", H.moe(), H.moe_streams())):
        put(f"{name}.json", json.dumps(g.to_dict(), indent=1) + "\n")
        put(f"{name}.plan.json", memplan.plan(g).to_json())
        put(f"{name}.ms.json", memplan.plan(g, H.streams(g, streams)).to_json())
    planned = memplan.plan_graph(H.chain(6), devices=2)
    put("split.json", json.dumps(planned.graph.to_dict(), indent=1) + "\n")
    put("split.plan.json", planned.plan.to_json())
    put("p.csv", "id,lower,upper,size\na,0,3,96\nb,1,4,64\nc,2,5,128\nd,3,6,32\ne,0,6,16\n")
    for name, data in files.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)
    return Inputs(directory, files)


#: what ``run_case(existing=True)`` leaves at each output before the run: a file of the user's
USERS_FILE = b'{"a file of the user": "a failed run leaves it as it was"}\n'


def bench_command(inputs: Inputs, target: str) -> list[str] | None:
    """``bench planners`` reading the graph ``target`` (two fast solvers, results to ``--json out.bench.json``), or
    None when ``target`` is no graph."""
    if target.endswith(".csv") or target != f"{target.split('.')[0]}.json":
        return None
    d = inputs.path
    return ["bench", "planners", "--graph", d(target), "--solvers", "greedy,size", "--json", d("out.bench.json")]


def commands(inputs: Inputs, target: str, pictures: bool = False) -> list[list[str]]:
    """Commands that read the file ``target`` (with its valid partners), writing to ``out.*``."""
    d = inputs.path
    out = d("out.json")
    if target.endswith(".csv"):
        return [["csv", d(target), "-o", d("out.csv"), "-q"],
                ["csv", d(target), "-o", d("out.csv"), "-q", "--capacity", "1K", "--solver", "greedy"]]
    stem = target.split(".")[0]
    graph, plans = f"{stem}.json", [f"{stem}.plan.json", f"{stem}.ms.json"]
    if stem == "split":
        plans = ["split.plan.json"]
    if target == graph:
        cmds = [["plan", d(graph), "-o", out, "-q"], ["plan", d(graph), "-o", out, "-q", "--streams", "2"],
                ["plan", d(graph), "-o", out, "-q", "--streams", "auto", "--solver", "greedy"],
                ["plan", d(graph), "-o", out, "-q", "--devices", "2", "--graph-out", d("out.split.json")],
                ["plan", d(graph), "-o", out, "-q", "--streams", "auto", "--memory-budget", "8K"],
                ["plan", d(graph), "-o", out, "-q", "--devices", "2", "--device-capacity", "5M",
                 "--graph-out", d("out.split.json")]]
        cmds += [[c, d(graph), d(p)] for p in plans for c in ("verify", "simulate")]
        cmds += [["trace", d(graph), d(plans[-1]), "-o", out, "-q"]]
    else:
        cmds = [["verify", d(graph), d(target)], ["simulate", d(graph), d(target)], ["show", d(target)],
                ["trace", d(graph), d(target), "-o", out, "-q"]]
    if pictures:
        cmds.append(["draw", d(graph), d(plans[-1] if target == graph else target), "-o", d("out.png"), "-q"])
    return cmds


def with_options(argv: list[str], rnd: random.Random, out_dir: str) -> list[str]:
    """``argv`` with one to four of its command's options added (``-o`` and ``--help`` aside), each with a value
    from ``OPTION_VALUES`` or the option's own choices; an option naming a file to write writes ``out.*`` in
    ``out_dir`` (so ``run_case`` checks it)."""
    import argparse

    from memplan import argtypes
    from memplan.cli import build_parser

    parser = build_parser()
    for name in argv[:2 if argv[0] == "bench" else 1]:   # (bench: its suite's own options)
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    actions = [a for a in parser._actions if a.option_strings and not {"-h", "-o"} & set(a.option_strings)
               and (argv[0] != "bench" or a.dest in BENCH_OPTIONS)]
    argv = list(argv)
    for _ in range(rnd.randint(1, 4)):
        a = rnd.choice(actions)
        name = a.option_strings[-1]
        if a.nargs == 0:
            argv.append(name)
        elif a.type is argtypes.path:
            argv += [name, os.path.join(out_dir, f"out.{name.strip('-')}.json")]
        else:
            value = rnd.choice(list(a.choices)) if a.choices and rnd.random() < 0.5 else rnd.choice(OPTION_VALUES)
            argv += [f"{name}={value}"] if rnd.random() < 0.3 else [name, value]
    return argv


#: the ``bench planners`` options ``with_options`` adds (the corpus parts it would add run for minutes)
BENCH_OPTIONS = ("json", "time_limit", "solvers", "streams", "only", "graph_files")


#: commands whose product is the text they print on stdout: exit 0 with stdout closed lost it (round 40)
REPORTS = ("show", "simulate", "verify", "example")
#: names ``aliased`` makes in the inputs' directory (``run_case`` takes them away after the run)
ALIAS = "alias-"


def aliased(argv: list[str], inputs: Inputs, rnd: random.Random) -> tuple[str, list[str]]:
    """``argv`` with its output (``-o``, ``--graph-out``) pointed at one of the inputs it reads under another name: a
    symlink or a hard link to it (made in the inputs' directory, named ``alias-*``), ``DIR/./NAME``, ``DIR/sub/../NAME``,
    or a directory; or, a share of the time, ``example -o`` into the inputs' directory, which holds graphs named as
    the bundled examples are (``qkv.json``). Every such run must refuse, leaving the inputs as they were."""
    d = inputs.directory
    if rnd.random() < 0.15:
        return "example into the inputs' directory", ["example", "-o", rnd.choice([d, d + "/", os.path.join(d, ".")])]
    read = [a for a in argv[1:] if os.path.basename(a) in inputs.files]
    slots = [i + 1 for i, a in enumerate(argv[:-1]) if a in ("-o", "--graph-out", "--json")]
    if not read or not slots:
        return "no output to alias", argv
    victim, slot = rnd.choice(read), rnd.choice(slots)
    how = rnd.choice(["symlink", "hardlink", "dot", "updown", "directory", "symlink-relative"])
    name = os.path.join(d, f"{ALIAS}{rnd.randrange(10 ** 6)}.json")
    if how == "symlink":
        os.symlink(victim, name)
    elif how == "symlink-relative":
        os.symlink(os.path.basename(victim), name)
    elif how == "hardlink":
        os.link(victim, name)
    elif how == "dot":
        name = os.path.join(d, ".", os.path.basename(victim))
    elif how == "updown":
        os.makedirs(os.path.join(d, f"{ALIAS}sub"), exist_ok=True)
        name = os.path.join(d, f"{ALIAS}sub", "..", os.path.basename(victim))
    else:
        name = rnd.choice([d, os.path.join(d, f"{ALIAS}sub")])
        os.makedirs(os.path.join(d, f"{ALIAS}sub"), exist_ok=True)
    out = list(argv)
    out[slot] = name
    return f"{argv[slot - 1]} {how} to {os.path.basename(victim)}", out


def _bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _take_aliases_away(directory: str) -> None:
    import shutil

    for f in os.listdir(directory):
        if f.startswith(ALIAS):
            path = os.path.join(directory, f)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def run_case(inputs: Inputs, target: str, data: bytes, argv: list[str],
             timeout: int = 0, closed_stdout: bool = False, existing: bool = False) -> tuple[int | None, str | None]:
    """Write ``data`` as ``target``, run ``memplan argv`` in-process, restore ``target``; return the exit
    code and a description of the broken contract (``traceback: ...``, ``hang``, ``lost file: ...``,
    ``one line: ...``, ``unverified plan: ...`` for a ``verify`` that passed a plan the oracle finds unsafe, ``lost
    report: ...`` for one of ``REPORTS`` that exited 0 with ``closed_stdout``: ``sys.stdout`` None), or None when it
    was kept. The ``alias-*`` files ``aliased`` made are taken away after the run. ``existing``: each output holds
``USERS_FILE`` before the run (else it is removed), which a failed run must leave as it was."""
    path = inputs.path(target)
    with open(path, "wb") as f:
        f.write(data)
    outputs = [a for a in argv if os.path.basename(a).startswith("out.")]
    for o in outputs:
        if os.path.lexists(o) and not os.path.isdir(o):
            os.unlink(o)
        if existing and not os.path.isdir(o) and os.path.isdir(os.path.dirname(o) or "."):
            with open(o, "wb") as f:
                f.write(USERS_FILE)
    before = {n: open(inputs.path(n), "rb").read() for n in inputs.files}
    err, out = io.StringIO(), io.StringIO()
    problem = None
    old = signal.signal(signal.SIGALRM, _alarm) if timeout else None
    try:
        if timeout:
            signal.alarm(timeout)
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(None if closed_stdout else out):
            code = exit_code(main, argv)
    except Hang:
        problem, code = "hang", None
    except BaseException as exc:  # noqa: BLE001 - every escape is a finding
        tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
        problem, code = f"traceback: {type(exc).__name__}: {str(exc)[:200]} at {tb[-2].strip()[:300]}", None
    finally:
        if timeout:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
    after = {n: open(inputs.path(n), "rb").read() for n in inputs.files}
    unverified = _unverified(inputs, argv) if problem is None and code == 0 and argv[0] == "verify" else None
    with open(path, "wb") as f:
        f.write(inputs.files[target])
    lines = err.getvalue().splitlines()
    if problem is None:
        if code == 2:
            if len(lines) != 1 or not lines[0].startswith("memplan: error: "):
                problem = f"one line: exit 2 with {len(lines)} stderr lines: {err.getvalue()[:300]!r}"
            elif [o for o in outputs if os.path.isfile(o) and (not existing or _bytes(o) != USERS_FILE)]:
                problem = "lost file: an output was written although the command failed"
        elif code != 0:
            problem = f"traceback: exit {code}: {err.getvalue()[:300]!r}"
        elif closed_stdout and argv[0] in REPORTS:
            problem = f"lost report: exit 0 with stdout closed: {argv[0]}'s report went nowhere"
        elif argv[0] == "verify":
            problem = unverified
    if any(after[n] != before[n] for n in inputs.files):
        problem = problem or "lost file: an input was changed"
    if [f for f in os.listdir(inputs.directory) if f.startswith(".memplan-")]:
        problem = problem or "lost file: a temporary file was left behind"
    _take_aliases_away(inputs.directory)
    return code, problem
