"""The ``memplan`` command: parse arguments, call the library, map errors to one line and exit 2.

Each subcommand is a ``register`` function in the static table ``COMMANDS``; no library logic lives
here. Every failure a user can cause (bad files, bad options, usage mistakes) is one line on stderr
and exit code 2, before any output is written; an output path that names an input is refused.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys
from collections.abc import Sequence

from . import argtypes
from ._interrupt import catch_unraisable, ended, rehold, release, take_pending
from .errors import MemplanError
from .files import drop_output, write_text
from .optimize.cost import DEFAULT_EVENT_US

EXIT_BAD_INPUT = 2
#: ``--seed`` of ``plan`` and ``csv``: only the exact solvers draw random numbers (heuristics never do)
SEED_HELP = "seed of the exact solvers' randomised choices (search restarts, CP-SAT); default 0"


def _out(text: str) -> None:
    """Print ``text`` on stdout, each line ``printable`` (an id, name or path from the input may hold an ANSI
    escape or a control character); what stdout cannot encode is escaped too (``\\xe9`` on an ASCII stdout).

    A lone surrogate is valid JSON (``"\\ud800"``) and so a valid id or graph name, and a file name that
    is not UTF-8 reaches ``argv`` as surrogates: neither can be written to a strict UTF-8 stdout."""
    from .show import printable

    text = "\n".join(map(printable, text.split("\n")))
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    try:
        text.encode(encoding, getattr(sys.stdout, "errors", None) or "strict")
    except (UnicodeEncodeError, LookupError):
        text = text.encode(encoding, "backslashreplace").decode(encoding)
    print(text)   # (during ``main`` stdout is ``_ReaderGone``: written whole, ``files.write_text``)


def _check_report_stdout(command: str, instead: str = "", inputs: dict[str, str] | None = None) -> None:
    """Refuse, before any work, a command whose product is the text it prints where stdout is closed (``>&-``):
    ``show``, ``simulate``, ``verify`` and ``example`` exited 0 with the report lost (``print`` to a None stdout
    drops it), where ``plan -o -`` says "cannot write to stdout: it is closed" and exits 2, as a full stdout
    (``>/dev/full``) already made every one of them do. ``instead`` says what else carries the report. Refused
    too where stdout is redirected to one of the command's ``inputs`` (label -> path: ``files.stdout_input``)."""
    from .files import stdout_closed, stdout_input

    why = stdout_closed()
    if why:
        raise MemplanError(f"{command}: cannot write its report to stdout: {why}"
                           + (f" ({instead})" if instead else ""))
    why = stdout_input(inputs or {})
    if why:
        raise MemplanError(f"{command}: {why}")


def cmd_plan(args: argparse.Namespace) -> int:
    from . import load_graph, plan_graph
    from .files import check_outputs, is_stdout, staged

    _check_solver_options(args)
    _check_plan_options(args)
    # before planning, both outputs writable: neither is written when the other cannot be
    check_outputs({"input graph": args.graph}, {"-o": args.output, "--graph-out": args.graph_out})
    argtypes.check_text_output("-o", args.output, "a plan is JSON",
                               hint="; `memplan draw GRAPH PLAN -o FILE` draws a plan's memory map as a picture")
    argtypes.check_text_output("--graph-out", args.graph_out, "a graph is JSON")
    graph = load_graph(args.graph)
    # (``--workers`` where CP-SAT runs one thread, ``--max-events`` with ``--streams 1``: the library's warnings, in
    # the command's words, ``argtypes.warning_line``)
    extras = _plan_extras(args)
    planned = plan_graph(graph, solver=args.solver, time_limit=args.time_limit, seed=args.seed,
                         workers=args.workers, progress=_progress(args), **extras)
    p = planned.plan

    def save_plan() -> None:
        p.save(args.output, timings=args.timings)

    def save_split() -> None:
        _save_split_graph(args, planned.graph)

    # a document for stdout first: a write there may fail in ways no check foresees (``>/dev/full``), a file's
    # were checked above; written second, its failure left the other output on disk without it
    with staged():   # (a file's rename waits for the other's write: a disk that fills up fails both)
        for write in (save_plan, save_split) if is_stdout(args.output) else (save_split, save_plan):
            write()
    if not args.quiet:
        argtypes.print_note(f"{args.output}: arena {p.arena_bytes} B, lower bound {p.lower_bound_bytes} B "
                            f"(x{p.ratio_text(3)}), {p.streams} stream(s), {len(p.events)} event(s), solver "
                            f"{p.solver.get('name')} {p.solver.get('status')} in {p.solver.get('seconds', 0):.3f}s"
                            + _cut_short(p.solver))
    return 0


def _cut_short(block: dict) -> str:
    """What the summary adds for a solve cut short (the solver block's ``interrupted`` / ``stopped``): the plan
    written is the best found so far, not what the time limit gives, and the line said nothing of it."""
    if block.get("interrupted"):
        return " (interrupted: the best plan found so far)"
    if block.get("stopped"):
        return f" (stopped: {block['stopped']}; the plan may not repeat)"
    return ""


def _progress(args: argparse.Namespace):
    """A stderr printer for long solves: with ``--progress``, or when stderr is a terminal."""
    tty = getattr(sys.stderr, "isatty", lambda: False)()  # (stderr None: started with it closed)
    if getattr(args, "quiet", False) or not (getattr(args, "progress", False) or tty):
        return None
    return lambda msg: print(f"memplan: {msg}", file=sys.stderr, flush=True)


def _check_solver_options(args: argparse.Namespace) -> None:
    """``plan`` and ``csv``: warn of a solver option the chosen solver never reads (``argtypes.unused``). Only the
    exact solvers (search, cpsat; auto adds both with ``--time-limit``) take a work budget, draw random numbers
    and report progress, and only CP-SAT runs threads; the heuristics (greedy, size, ggml) make one pass."""
    from .solvers import EXACT
    from .solvers.auto import POLISH_BUFFERS, POLISH_WIDE_BUFFERS

    solver, limit = args.solver, args.time_limit
    exact = solver in EXACT or (solver == "auto" and limit is not None)
    where = f"with --solver {solver}" + (" without --time-limit" if solver == "auto" else "")
    heuristic = (f"it runs the heuristics, then on a problem of at most {POLISH_BUFFERS} buffers "
                 f"(up to {POLISH_WIDE_BUFFERS} where they end 5% or more above its bound) a short search of a "
                 "fixed node budget and seed (auto adds the exact solvers search and cpsat with --time-limit)"
                 if solver == "auto" else f"{solver} is a heuristic, one pass with no budget, randomness or progress")
    _warn_unread_defaults(args)
    if args.progress and args.quiet:
        argtypes.unused("--progress", "with -q/--quiet", "-q drops all progress and summary lines: give one of them")
    elif args.progress and not exact:   # (one warning an option: ``-q --progress`` with a heuristic was two lines)
        argtypes.unused("--progress", where, f"only the exact solvers report progress; {heuristic}")


def _warn_unread_defaults(args: argparse.Namespace) -> None:
    """``--seed 0`` or ``--workers 1`` given to a solver that never reads it: warned of here, in the library's words
    (``solvers.unread``), since at its default value the library cannot tell it was given. Any other value of
    ``--time-limit``, ``--seed`` and ``--workers`` the library warns of itself, the one source of that warning (the
    command warned of them too, and the library said nothing to a Python caller)."""
    import warnings

    from .solvers import SolveOptions
    from .solvers.unread import unread_options

    default = SolveOptions()
    typed = [k for k in ("seed", "workers") if argtypes.given(args, k) and getattr(args, k) == getattr(default, k)]
    if typed:
        for warning in unread_options(args.solver, default, given=typed):
            warnings.warn(warning, stacklevel=2)


def _budget_instead(args: argparse.Namespace) -> str:
    """What to do instead of ``--memory-budget`` with ``--devices`` > 1: give ``--device-capacity``, or, where it is
    given already, drop the budget (it said "give --device-capacity BYTES instead" to a user who had)."""
    if getattr(args, "device_capacity", None) is not None:
        return "drop --memory-budget (the --device-capacity given bounds each device's weights plus arena)"
    return "give --device-capacity BYTES instead"


def _check_plan_options(args: argparse.Namespace) -> None:
    """``plan``: refuse ``--max-events`` and warn of ``--event-us`` (``argtypes.unused``) where the other options
    leave them without effect, before the graph is read: both are options of a multi-stream or multi-device schedule, and without ``--streams``
    (or ``--devices`` > 1 for ``--event-us``: the split's cross-device events) the plan is one serial stream
    with no events to cap or to time."""
    if args.max_events is not None and args.streams is None:
        without = ("each device runs one stream, and --max-events never caps the split's cross-device events"
                   if (args.devices or 1) > 1 else "the plan is serial and has no events")
        raise MemplanError(f"--max-events {args.max_events} caps the events of a multi-stream schedule: give "
                           f"--streams N|auto too (without it {without})")
    if args.event_us is not None and args.streams is None and (args.devices or 1) <= 1:
        # (with --devices 1 given, "or --devices N" read as if that were the remedy: N > 1 is)
        argtypes.unused(f"--event-us {args.event_us:g}", "without --streams", "it is the latency of a cross-stream "
                      "event, and without --streams (or --devices N, N > 1) the plan is serial and has no events: "
                      "give --streams N|auto too")
    _check_one_stream(args)


def _check_one_stream(args: argparse.Namespace) -> None:
    """``plan --streams 1``: warn of ``--event-us`` on one device (``argtypes.unused``), which one stream leaves as
    much without effect as no ``--streams`` does: a single stream has no cross-stream event to time. Why: without
    ``--streams`` it is warned of, while ``--streams 1 --event-us 50`` planned the serial plan and said nothing, as if
    it had shaped it. A warning, not a refusal: a script sweeping ``--streams 1,2,4`` with one ``--event-us`` still
    runs its first case. (``--max-events`` there is the library's ``UnusedOption``, said once in the command's
    words: one source of that warning, not this command's and the library's, filtered by its text.)"""
    if args.streams != 1:
        return
    split = (args.devices or 1) > 1
    if args.event_us is not None and not split:
        argtypes.unused(f"--event-us {args.event_us:g}", "with --streams 1", "it is the latency of a cross-stream event, "
                        "and one stream has none: the plan is serial; give --streams N (N > 1) or auto")


def _plan_extras(args: argparse.Namespace) -> dict:
    """Options that later pipeline stages (graph_optimize, budgets) add to ``plan``."""
    extras: dict = {}
    for key in ("streams", "memory_budget", "max_events", "alignment"):
        if getattr(args, key, None) is not None:
            extras[key] = getattr(args, key)
    if getattr(args, "fused_groups", False):
        extras["fused_groups"] = True
    if getattr(args, "event_us", None) is not None:
        from .optimize import CostModel

        extras["cost_model"] = CostModel(event_us=args.event_us)
    if getattr(args, "devices", None) is not None:
        if args.devices > 1 and not getattr(args, "graph_out", None):
            raise MemplanError(f"--devices {args.devices} plans a split graph (with COPY nodes): give "
                               "--graph-out SPLIT.json to write it, for 'memplan verify SPLIT.json PLAN.json'")
        if args.devices > 1 and getattr(args, "memory_budget", None) is not None:   # (the library names its own
            raise MemplanError(f"--memory-budget applies to one device's schedule; --devices {args.devices} "  # options)
                               "plans one schedule per device: " + _budget_instead(args))
        extras["devices"] = args.devices
    cap = getattr(args, "device_capacity", None)
    if cap is not None:
        n = getattr(args, "devices", None) or 1
        if isinstance(cap, tuple) and len(cap) != n:   # before the graph is read
            # (without --devices it said "(--devices 1)", an option never typed: the default named as its source)
            given = (f"--devices {n}" if getattr(args, "devices", None) is not None
                     else f"no --devices given: one device; give --devices {len(cap)} to plan {len(cap)}")
            raise MemplanError(f"--device-capacity lists {len(cap)} capacities for {n} device{'s' * (n != 1)} "
                               f"({given}): give one per device, or one number for each device")
        extras["device_capacity"] = list(cap) if isinstance(cap, tuple) else cap
    return extras


def _save_split_graph(args: argparse.Namespace, graph) -> None:
    """``--graph-out``: the graph the plan refers to (the split graph when ``--devices`` > 1)."""
    if not getattr(args, "graph_out", None):
        return
    from .io import save_graph

    save_graph(graph, args.graph_out)


def cmd_simulate(args: argparse.Namespace) -> int:
    from .io import load_safe_pair
    from .optimize import CostModel
    from .simulate import simulate

    _check_report_stdout("simulate", inputs={"graph": args.graph, "plan": args.plan})
    graph, plan = load_safe_pair(args.graph, args.plan)
    if args.event_us is None:   # (the latency the plan records: refused naming the file where it is none)
        from .simulate import check_recorded_event_us

        check_recorded_event_us(plan, args.plan, "pass --event-us US to simulate it anyway")
    sim = simulate(graph, plan, CostModel(event_us=args.event_us) if args.event_us is not None else None)
    # a graph without nodes runs on no stream: "on 0 stream(s)" read as a plan that dropped its streams
    used = len(set(sim.stream_of.values()))
    where = f"on {used} stream(s)" if used else "(no nodes to run)"
    _out(f"makespan     {sim.makespan_us:.3f} us {where}, {sim.num_events} event(s) at {sim.event_us:g} us")
    _out(f"serial       {sim.serial_us:.3f} us")
    _out(f"speedup      x{sim.speedup:.3f}")
    return 0


def _register_simulate(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("simulate", help="estimated makespan of a plan (and the serial one) under the cost model")
    sp.add_argument("graph", type=argtypes.path, help="graph JSON (memplan.graph/1)")
    sp.add_argument("plan", type=argtypes.path, help="plan JSON made for that graph")
    sp.add_argument("--event-us", type=argtypes.microseconds, default=None, metavar="US",
                    help="latency of one cross-stream event in microseconds (default: the one the plan was "
                         f"scheduled with, from its solver block; without one, the cost model's {DEFAULT_EVENT_US:g})")
    sp.set_defaults(func=cmd_simulate)


def cmd_verify(args: argparse.Namespace) -> int:
    from .io import load_safe_pair

    _check_report_stdout("verify", "for the exit code alone, send stdout to /dev/null",
                         {"graph": args.graph, "plan": args.plan})
    plan = load_safe_pair(args.graph, args.plan, fused_groups=args.fused_groups)[1]
    from .show import printable

    # (the path escaped here: ``_out`` prints a report line by line, and a path with a newline became two lines)
    _out(f"{printable(args.plan)}: safe" + (" (fusion groups as one kernel each)" if args.fused_groups else ""))
    from .show import solver_claim_warnings

    for warning in solver_claim_warnings(plan):   # (safe all the same: the solver block is free-form, CONTRACT.md)
        argtypes.print_warning(f"{printable(args.plan)}: {warning}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """``show PLAN``: the plan's summary; with ``--graph GRAPH`` only once the plan is proven safe for that graph
    (``io.load_safe_pair``, as ``verify``, ``simulate`` and ``draw`` do), and a line saying so. Why: a plan alone
    cannot say whether it belongs to the graph beside it, and ``show`` printed the summary of a plan for another
    graph (or an edited, unsafe one) as readily as of a sound one; ``--graph`` makes the summary one of a plan
    checked against its graph, with one error line (exit 2) naming what does not match."""
    from . import load_plan
    from .show import describe, printable

    inputs = {"plan": args.plan} | ({"graph": args.graph} if args.graph is not None else {})
    _check_report_stdout("show", inputs=inputs)
    if args.graph is None:
        plan = load_plan(args.plan)   # (describe checks what it contradicts in itself: check_plan_alone)
    else:
        from .io import load_safe_pair

        plan = load_safe_pair(args.graph, args.plan)[1]
    text = describe(plan, top=args.top, encoding=getattr(sys.stdout, "encoding", None), source=args.plan)
    if args.graph is not None:   # (escaped as every path in a report: ``_out`` splits lines)
        text += f"\nverified     safe for {printable(args.graph)}"
    _out(text)
    return 0


def cmd_example(args: argparse.Namespace) -> int:
    from .files import check_no_nul, cwd_trouble, is_stdout

    if is_stdout(args.output):  # (it made a directory named '-')
        raise MemplanError("example -o -: the examples are several files and need a directory, not stdout "
                           "(./- names a directory '-')")
    _check_report_stdout("example", "it lists the files it writes; to drop the list, send stdout to /dev/null")
    check_no_nul(args.output, MemplanError, "example -o ")   # (os.makedirs: a raw ValueError)
    why = cwd_trouble(args.output)   # ("cannot create directory ex: No such file or directory")
    if why:
        raise MemplanError(f"example -o {args.output}: {why}")
    if os.path.exists(args.output) and not os.path.isdir(args.output):   # ("cannot create directory: File exists")
        raise MemplanError(f"example -o {args.output}: not a directory (a file of that name is there; the examples "
                           "are several files and need a directory)")
    made: list[str] = []
    try:   # (made inside the ``try``: a Ctrl-C between two of its ``mkdir`` calls took none of them away)
        _make_directory(args.output, made)
        _write_examples(args.output)
    except BaseException:   # (a full disk, Ctrl-C: the directories this run made are not left behind, empty)
        _remove_directories(made)
        raise
    return 0


def _make_directory(path: str, made: list[str]) -> list[str]:
    """``mkdir -p path``, adding to ``made`` (and returning) the directories this call's ``mkdir`` made, outermost
    first, each the moment it is made (a Ctrl-C is held between the two: ``signals_held``) (``example`` takes
    them away again when it fails: a full disk left an empty ``DIR`` a failed run had made), or MemplanError naming
    it (those it had made taken away). Why one ``mkdir`` at a time, and not ``os.makedirs`` with the missing ones
    counted first: counted on the path made absolute, ``a/../b/ex`` lost the ``a`` that ``os.makedirs`` makes (left
    behind, empty), and counted as given, ``a/..`` is no directory before ``a`` is made, so a ``b`` that was there
    would have been taken for one made; only a ``mkdir`` that succeeded made its directory."""
    from .files import read_only_directory, signals_held

    try:
        for prefix in _path_prefixes(path):
            parent = os.path.dirname(prefix) or os.curdir
            why = None if os.path.lexists(prefix) else read_only_directory(parent)
            if why:   # (root's mkdir succeeds there; the files of ``example`` would then go into what it made)
                _remove_directories(made)
                raise MemplanError(f"cannot create directory {path}: {why} ({parent})")
            try:
                with signals_held():
                    os.mkdir(prefix)
                    made.append(prefix)
            except FileExistsError:   # (there before; a file there fails the next mkdir, or the check below)
                if _dangling(prefix):   # (named as such: the next mkdir says only "No such file or directory")
                    raise
                continue
        if not os.path.isdir(path):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), path)
    except OSError as exc:
        _remove_directories(made)
        raise MemplanError(f"cannot create directory {path}: {_mkdir_reason(exc)}") from None
    return made


def _mkdir_reason(exc: OSError) -> str:
    """Why ``mkdir`` failed, in words: a dangling symbolic link at the path (or at a directory on the way) is
    named as one, with where it points; ``mkdir`` says only "File exists" there, and ``ls`` shows nothing that
    explains it. A loop of links is named as a loop: it was "a dangling symbolic link (to 'b', which does not
    exist)" of ``a -> b -> a``, where ``b`` is there. A file in the way (``-o out.json/``, ``-o g.json/ex``) is named:
    it was the OS's "File exists" or "Not a directory", naming no file, where ``-o out.json`` names the file."""
    where = exc.filename
    if isinstance(where, str) and _dangling(where):
        if _looping(where):
            return f"{where} is a loop of symbolic links ({where} -> {os.readlink(where)!r} -> ... never reaches a file)"
        from .files import link_target_text

        return f"{where} is a dangling symbolic link {link_target_text(where)}"
    if isinstance(where, str) and exc.errno in (errno.EEXIST, errno.ENOTDIR):
        p = where.rstrip("/" + os.sep) or where
        while p and not os.path.lexists(p) and os.path.dirname(p) != p:
            p = os.path.dirname(p)
        if p and os.path.lexists(p) and not os.path.isdir(p):
            what = "a file, not a directory" if os.path.isfile(p) else "not a directory"
            return f"{p} is {what} (the examples are several files and need a directory)"
    return exc.strerror or str(exc)


def _looping(path: str) -> bool:
    """Whether the symbolic link ``path`` leads into a loop of links (``stat`` says ELOOP), not to nothing."""
    try:
        os.stat(path)
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False


def _dangling(path: str) -> bool:
    """Whether ``path`` is a symbolic link to nothing."""
    return os.path.islink(path) and not os.path.exists(path)


def _path_prefixes(path: str) -> list[str]:
    """The paths ``os.makedirs(path)`` makes in turn, outermost first, each as written in ``path``: ``a/../b/ex``
    gives ``a``, ``a/..``, ``a/../b`` and ``a/../b/ex`` (a trailing or doubled separator adds none)."""
    prefixes = []
    head = path
    while True:
        parent, tail = os.path.split(head)
        if tail:
            prefixes.append(head)
        if not parent or parent == head:
            return prefixes[::-1]
        head = parent


def _remove_directories(made: list[str]) -> None:
    """Take away the (empty) directories ``_make_directory`` made, innermost first; one that is not empty stays.
    ``made`` is emptied: a second call (``example``'s, after ``_make_directory``'s own) takes nothing away."""
    while made:
        with contextlib.suppress(OSError):
            os.rmdir(made[-1])
        made.pop()


def _write_examples(directory: str) -> None:
    """Every bundled example into ``directory`` (which exists), each path printed once all are written."""
    from .examples import bundled
    from .files import atomic_write_text, check_writable, first_same_file, staged
    from .io import graph_text

    graphs = bundled()
    paths = {stem: os.path.join(directory, f"{stem}.json") for stem in graphs}
    for path in paths.values():  # all writable before the first is written: a failure leaves no half set
        check_writable(path, "example")
    clash = first_same_file(list(paths.values()))
    if clash:   # (a link between two: the second was written over the first, and both were listed as written)
        raise MemplanError(f"example -o {directory}: {clash[0]} and {clash[1]} name the same file (a link): "
                           "one example would overwrite the other")
    texts = {stem: graph_text(graph) for stem, graph in graphs.items()}
    _check_not_over_own(directory, {paths[stem]: texts[stem] for stem in graphs})
    with staged():   # (all renamed once all are written: a disk that fills up leaves none)
        for stem in graphs:
            atomic_write_text(paths[stem], texts[stem])
    from .show import printable

    for stem in graphs:   # (each path escaped: ``_out`` splits its text into lines, and -o $'a\nb' split every path in two)
        _out(printable(paths[stem]))


def _check_not_over_own(directory: str, texts: dict[str, str]) -> None:
    """Refuse ``example -o DIR`` where a file it would write is already there with other bytes than the example's
    (``texts``: path -> text): it was written over, exit 0, and a graph the user had edited there was lost. A file
    that already holds the example's bytes (a second run into the same directory) loses nothing and is written, and
    so is a dangling symbolic link (its target made, as ``plan -o`` makes it): it holds no file to lose, and it was
    refused as "already there and not the bundled example's bytes (an edited graph?)". (A loop of links was refused
    before this, by ``check_writable``.)"""
    from .files import read_input

    theirs = []
    for path, text in texts.items():
        if not os.path.exists(path):   # (nothing there, or a link to nothing)
            continue
        try:
            same = read_input(path, MemplanError, len(text.encode()) + 1) == text.encode()
        except MemplanError:   # (unreadable, too large, not a regular file: not the example's bytes either)
            same = False
        if not same:
            theirs.append(os.path.basename(path))
    if theirs:
        many = len(theirs) > 1
        listed = ", ".join(theirs[:3]) + (f" and {len(theirs) - 3} more" if len(theirs) > 3 else "")
        raise MemplanError(f"example -o {directory}: {listed} {'are' if many else 'is'} already there and not the "
                           f"bundled example's bytes (an edited graph?): not overwritten, nothing written; move "
                           f"{'them' if many else 'it'} away or give another directory")


def cmd_bench(args: argparse.Namespace) -> int:
    import json

    from .io import atomic_write_text

    if getattr(args, "bench_broken", None):
        raise MemplanError(args.bench_broken)
    from .files import check_outputs, check_writable, is_stdout, stdout_input

    inputs = args.bench_inputs(args) if args.bench_inputs is not None else {}
    if not args.json:   # (with --json FILE the results are in the file; --json - is checked below, naming it)
        _check_report_stdout(f"bench {args.suite}", "give --json FILE to keep the results", inputs)
    elif not is_stdout(args.json) and stdout_input(inputs):   # the tables still go to stdout: not into an input
        raise MemplanError(f"bench {args.suite}: {stdout_input(inputs)}")

    if args.json:  # checked before a run that may take hours
        check_writable(args.json, "--json")
        if inputs:  # the files a suite reads: --json must not replace one
            check_outputs(inputs, {"--json": args.json})
        argtypes.check_text_output("--json", args.json, "the results are JSON")
    _check_not_in_folders(args)
    if is_stdout(args.json):   # the JSON alone on stdout: the suite's tables go to stderr
        import contextlib
        import io

        # (into the document's file or pipe, where stderr is that: ``_notes_into_document``)
        with contextlib.redirect_stdout(io.StringIO() if getattr(args, "tables_nowhere", False) else sys.stderr):
            rows = args.bench_run(args)
    else:
        rows = args.bench_run(args)
    if args.json:
        try:   # (a NaN or Infinity would make the file no JSON that a strict reader, jq or a browser, takes)
            text = json.dumps(rows, indent=1, allow_nan=False) + "\n"
        except ValueError as exc:
            raise MemplanError(f"bench {args.suite}: a result is not finite ({exc}): no --json written") from None
        atomic_write_text(args.json, text)
    return 0


def _check_not_in_folders(args: argparse.Namespace) -> None:
    """Refuse ``bench --json FILE``, or stdout redirected to a file, inside a folder the suite lists its inputs from
    (its ``input_folders``: ``planners --minimalloc DIR``'s problems). Why: ``--json DIR/challenging/B.csv`` was
    written among the problems, and the next run read it as one and failed (a ``.json`` there is ignored today, but
    is a result file among the inputs all the same); ``> DIR/challenging/Z.csv`` made an empty file the run itself
    then read as a problem ("empty file", naming no redirection)."""
    from .files import cwd_trouble, is_stdout, same_file

    folders = getattr(args, "bench_folders", None)
    found = folders(args) if folders is not None else {}
    json_file = args.json and not is_stdout(args.json) and not cwd_trouble(args.json)
    parent = os.path.dirname(os.path.abspath(args.json)) if json_file else None
    for label, folder in found.items():
        if parent is not None and same_file(parent, folder):
            raise MemplanError(f"--json {args.json} is inside the {label} {folder}: the next run would read what it "
                               "writes as an input; write the results to another folder")
        name = _stdout_file_in(folder)
        if name is not None:
            raise MemplanError(f"stdout is redirected to {name} inside the {label} {folder}: the results would be "
                               "written among the inputs (and a .csv read as one); redirect it to another folder")


def _stdout_file_in(folder: str) -> str | None:
    """The name of the entry of ``folder`` that stdout is redirected to (a regular file: ``> DIR/x.csv``), or None."""
    import stat

    try:
        out = os.fstat(sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):   # (closed, a StringIO: no file)
        return None
    if not stat.S_ISREG(out.st_mode):
        return None
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    st = entry.stat()
                    if (st.st_dev, st.st_ino) == (out.st_dev, out.st_ino):
                        return entry.name
    except OSError:
        return None
    return None


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argtypes.CommandParser(prog="memplan", description="Plan one memory arena for a multi-stream compute graph.")
    # (``memplan --version`` was "the following arguments are required: COMMAND", exit 2: no way to ask which
    # memplan a script or a bug report runs but importing it)
    p.add_argument("--version", action="version", version=f"memplan {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMANDS:
        register(sub)
    return p


def _add_exact_solver_options(sp: argparse.ArgumentParser) -> None:
    """``--time-limit``, ``--seed`` and ``--workers``: the options only the exact solvers read, spelt once so that
    ``plan`` and ``csv`` parse and explain them alike."""
    sp.add_argument("--time-limit", type=argtypes.seconds, default=None, metavar="S", help="solver time budget in seconds")
    sp.add_argument("--seed", type=argtypes.seed, default=0, help=SEED_HELP)
    sp.add_argument("--workers", type=argtypes.workers, default=1,
                    help="CP-SAT worker threads (default 1: deterministic)")


def _register_plan(sub: argparse._SubParsersAction) -> None:
    from .solvers import SOLVER_NAMES

    sp = sub.add_parser("plan", help="plan arena offsets for a graph and write plan JSON")
    sp.add_argument("graph", type=argtypes.path, help="graph JSON (memplan.graph/1)")
    sp.add_argument("-o", "--output", type=argtypes.path, required=True, help=f"plan JSON to write ('-': stdout); {argtypes.REPLACES}")
    sp.add_argument("--solver", default="auto", choices=SOLVER_NAMES,
                    help="offset solver (default auto: the heuristics, then a short search on a problem of at most 64 "
                         "buffers, or 200 left 5%% or more above its bound, and with --time-limit the exact solvers)")
    _add_exact_solver_options(sp)
    sp.add_argument("--timings", action="store_true", help="include solver seconds in the JSON (breaks byte-identity)")
    sp.add_argument("-q", "--quiet", action="store_true", help="no summary or progress on stderr")
    sp.add_argument("--progress", action="store_true", help="print solver progress on stderr (default: if a TTY)")
    sp.set_defaults(func=cmd_plan)
    add_plan_options(sp)


def _register_verify_show_example(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("verify", help="prove a plan safe for a graph, or list what breaks")
    sp.add_argument("graph", type=argtypes.path, help="graph JSON (memplan.graph/1)")
    sp.add_argument("plan", type=argtypes.path, help="plan JSON made for that graph")
    sp.add_argument("--fused-groups", action="store_true",
                    help="also prove it safe when each fusion group runs as one kernel (see plan --fused-groups)")
    sp.set_defaults(func=cmd_verify)

    sp = sub.add_parser("show", help="summarise a plan: arena, bound, streams, events, largest tensors")
    sp.add_argument("plan", type=argtypes.path, help="plan JSON (memplan.plan/1)")
    sp.add_argument("--top", type=argtypes.count, default=10, help="how many of the largest tensors to list (default 10)")
    sp.add_argument("--graph", type=argtypes.path, default=None, metavar="GRAPH",
                    help="graph JSON the plan was made for (of a --devices plan: its split graph, --graph-out): "
                         "show the plan only once it is proven safe for that graph (exit 2 naming what does not match)")
    sp.set_defaults(func=cmd_show)

    sp = sub.add_parser("example", help="write the bundled example graphs into a directory")
    sp.add_argument("-o", "--output", type=argtypes.path, required=True, metavar="DIR",
                    help="directory to write them into (made if missing), one GRAPH.json each; a file of that name "
                         "already there with other bytes is refused, never replaced (nothing is written)")
    sp.set_defaults(func=cmd_example)


def _register_bench(sub: argparse._SubParsersAction) -> None:
    """One subcommand per suite of ``memplan.benchmarks.SUITES``; a suite whose module does not import
    is still listed, and running it is an error naming the suite and the missing module."""
    import importlib

    from .benchmarks import SUITES

    sp = sub.add_parser("bench", help="run a benchmark suite and print a table (and write JSON)")
    suites = sp.add_subparsers(dest="suite", required=True, metavar="SUITE")
    for name, module in SUITES.items():
        try:
            mod = importlib.import_module(f".benchmarks.{module}", __package__)
        except ImportError as exc:
            ssp = suites.add_parser(name, help=f"(cannot run: {exc})")
            full = f"memplan.benchmarks.{module}"
            why = (f"its module {full} is missing" if exc.name == full else
                   f"its module {full} needs {exc.name or exc!s}, which does not import")
            ssp.set_defaults(func=cmd_bench, bench_broken=f"bench suite {name!r} cannot run: {why} ({exc})")
            continue
        ssp = suites.add_parser(name, help=(mod.__doc__ or "").strip().splitlines()[0] if mod.__doc__ else None)
        ssp.add_argument("--json", type=argtypes.path, metavar="OUT",
                         help=f"also write the results as JSON ('-': stdout, the tables then on stderr); "
                              f"{argtypes.REPLACES}")
        mod.add_arguments(ssp)
        ssp.set_defaults(func=cmd_bench, bench_run=mod.run, bench_inputs=getattr(mod, "inputs", None),
                         bench_folders=getattr(mod, "input_folders", None))


def add_plan_options(sp: argparse.ArgumentParser) -> None:
    """Hook for options of later pipeline stages (streams, budgets)."""
    sp.add_argument("--streams", type=argtypes.streams, default=None, metavar="N|auto",
                    help="schedule onto up to N CUDA streams (at most 1024; auto: up to 8) with graph_optimize "
                         "(default: serial); never more streams than nodes")
    sp.add_argument("--memory-budget", type=argtypes.size, default=None, metavar="BYTES",
                    help="give back concurrency until the arena fits (e.g. 64M); without --streams, one stream in "
                         "the listed or a low-memory order; error if no serial order tried fits")
    sp.add_argument("--max-events", type=argtypes.count, default=None, metavar="N",
                    help="at most N cross-stream events (with --streams)")
    sp.add_argument("--fused-groups", action="store_true",
                    help="keep every tensor a fusion group touches live across the whole group, so a backend "
                         "may run each group as one kernel")
    sp.add_argument("--event-us", type=argtypes.microseconds, default=None, metavar="US",
                    help="latency of one cross-stream event in microseconds for the scheduler's cost model "
                         f"(default {DEFAULT_EVENT_US:g})")
    sp.add_argument("--devices", type=argtypes.at_most(argtypes.MAX_STREAMS, "devices"), default=None, metavar="N",
                    help="split into N pipeline stages, one GPU and one arena each (needs --graph-out if N > 1; "
                         "at most the stages the graph can be cut into: no device is left empty)")
    sp.add_argument("--device-capacity", type=argtypes.capacities, default=None, metavar="BYTES[,BYTES...]",
                    help="memory per device for weights plus arena (e.g. 80G), or one per device, device 0 first "
                         "(80G,40G); error naming the device if over")
    sp.add_argument("--graph-out", type=argtypes.path, default=None, metavar="SPLIT.json",
                    help="write the graph the plan refers to (the split graph, with COPY nodes, for --devices); "
                         + argtypes.REPLACES)
    sp.add_argument("--alignment", type=argtypes.alignment, default=None, metavar="BYTES",
                    help="plan with this alignment instead of the graph's (a power of two, at least the graph's; the "
                         "plan records it, the graph file is not changed)")


def _register_models_and_pictures(sub: argparse._SubParsersAction) -> None:
    """``import`` (importers/), ``draw`` and ``trace`` (viz/): their modules load onnx/matplotlib lazily."""
    from .importers.commands import register as register_import
    from .viz.commands import register as register_viz

    register_import(sub)
    register_viz(sub)


def cmd_csv(args: argparse.Namespace) -> int:
    from .files import check_outputs
    from .io.minimalloc import read_csv, solve_table, write_csv
    from .solvers import SolveOptions

    _check_solver_options(args)
    check_outputs({"input CSV": args.input}, {"-o": args.output})
    argtypes.check_text_output("-o", args.output, "the offsets are a CSV table", ".csv")
    table = read_csv(args.input)
    if args.minimize:   # (after the table is read: with auto, whether it has an effect depends on its size)
        _check_minimize(args, len(table.ids))
    options = SolveOptions(time_limit=args.time_limit, seed=args.seed, workers=args.workers, progress=_progress(args))
    sol = solve_table(table, args.capacity, solver=args.solver, options=options, minimize=args.minimize or None)
    write_csv(args.output, table, sol.offsets)
    if not args.quiet:
        argtypes.print_note(f"{args.output}: {argtypes.counted(len(table.ids), 'buffer')}, arena {sol.arena}"
                            + (f" within capacity {args.capacity}" if args.capacity is not None else "")
                            + f", lower bound {sol.lower_bound}, solver {sol.solver} {sol.status}" + _cut_short(sol.info))
    return 0


def _check_minimize(args: argparse.Namespace, buffers: int) -> None:
    """``csv --minimize``: warned of where it has no effect (``argtypes.unused``). It turns a capacity's first fit
    into a smallest arena, which only the solvers that stop at a fit do differently: search, cpsat, auto with
    --time-limit, and auto without one on a problem of at most ``POLISH_WIDE_BUFFERS`` buffers (``buffers``: the table's;
    above ``POLISH_BUFFERS`` only where the heuristics end 5% or more above the bound, known once they ran),
    whose short search stops at the first packing within the capacity and otherwise runs on from the heuristics'
    (``solvers.auto.polish``); without --capacity every solver minimises.

    Why the table's size: the short search of auto without --time-limit was missed, and ``csv P.csv --capacity 28
    --minimize`` on a 7-buffer problem said "--minimize has no effect with --solver auto without --time-limit ...;
    ignored" while it wrote an arena of 20 where leaving it out writes 21."""
    from .solvers.auto import POLISH_WIDE_BUFFERS

    if args.capacity is None:
        argtypes.unused("--minimize", "without --capacity", "without a capacity to fit the arena is always minimised")
    if args.solver in ("search", "cpsat") or (args.solver == "auto" and args.time_limit is not None):
        return
    if args.solver == "auto":
        if 0 < buffers <= POLISH_WIDE_BUFFERS:   # (its short search may run, and stops at the first fit)
            return
        argtypes.unused("--minimize", f"with --solver auto without --time-limit on {argtypes.counted(buffers, 'buffer')}",
                        f"auto stops at the first packing within --capacity only in the exact solvers of --time-limit "
                        f"and in its short search of a problem of at most {POLISH_WIDE_BUFFERS} buffers; on this one it runs "
                        "the heuristics alone, which pack the same either way")
        return
    argtypes.unused("--minimize", f"with --solver {args.solver}", "only the exact solvers (search, cpsat, auto with "
                    f"--time-limit, and auto on a problem of at most {POLISH_WIDE_BUFFERS} buffers) stop at the first "
                    f"packing within --capacity; {args.solver} packs the same either way")


def _register_csv(sub: argparse._SubParsersAction) -> None:
    """``memplan csv``: minimalloc CSV problems (``id,lower,upper,size``) in, offsets out."""
    from .solvers import SOLVER_NAMES

    sp = sub.add_parser("csv", help="solve a minimalloc CSV problem (id,lower,upper,size) and write offsets")
    sp.add_argument("input", type=argtypes.path, help="minimalloc CSV: id,lower,upper,size")
    sp.add_argument("-o", "--output", type=argtypes.path, required=True,
                    help=f"CSV to write: the input columns plus offset; {argtypes.REPLACES}")
    sp.add_argument("--capacity", type=argtypes.size, default=None, metavar="BYTES",
                    help="fit within this many bytes (exit 2 if no packing is found); default: minimise")
    sp.add_argument("--minimize", action="store_true", help="minimise the arena even with --capacity")
    sp.add_argument("--solver", default="search", choices=SOLVER_NAMES,
                    help="offset solver (default search: minimalloc's branch and bound)")
    _add_exact_solver_options(sp)
    sp.add_argument("--progress", action="store_true", help="print solver progress on stderr (default: if a TTY)")
    sp.add_argument("-q", "--quiet", action="store_true", help="no summary or progress on stderr")
    sp.set_defaults(func=cmd_csv)


#: every subcommand, in the order ``memplan --help`` lists them: a static table, nothing adds to it later
COMMANDS = (_register_plan, _register_verify_show_example, _register_bench, _register_models_and_pictures,
            _register_simulate, _register_csv)


def main(argv: Sequence[str | os.PathLike[str]] | None = None) -> int:
    import functools
    import warnings

    from .errors import FieldWarning

    # FieldWarnings and UnusedOptions, with their category: said once the command is through (a misspelt field's
    # also beside the one-line error of a command that fails: most likely why; an option without effect is not)
    held: list[tuple[type[Warning], str]] = []
    with _readers_may_leave(), warnings.catch_warnings():
        warnings.simplefilter("always", FieldWarning)   # one line per misspelt field, every time it is read
        warnings.simplefilter("always", argtypes.UnusedOption)
        warnings.showwarning = functools.partial(argtypes.warning_line, _default=warnings.showwarning, held=held)
        try:   # (a Ctrl-C is ``_main``'s KeyboardInterrupt; before and after, one line from ``_interrupt``'s handler)
            put_back = None
            try:   # (a Ctrl-C inside a weakref callback: the command's, not a swallowed traceback, till it ends)
                put_back = catch_unraisable()
                release()
                code = _main(argv, held)
            except SystemExit as exc:   # (``--help``, ``--version``, a usage error: argparse ends the command)
                ended(_exit_status(exc.code))
                raise
            finally:
                if put_back is not None:   # (the caller's unraisable hook back: a program's own Ctrl-Cs are not ours)
                    put_back()
                rehold()
            if take_pending():   # (a Ctrl-C in a weakref callback at the command's very end: ``catch_unraisable``)
                raise KeyboardInterrupt
        except KeyboardInterrupt:   # (before ``_main``'s own handler: building the parser, reading the arguments;
            # it was a KeyboardInterrupt traceback) not into an input stderr is redirected to (``_error_not_on_stderr``)
            (_error_not_on_stderr if _names_stderr(argv) else argtypes.print_error)("interrupted")
            code = 130
        if code not in (EXIT_BAD_INPUT, 130):
            for _category, text in held:
                argtypes.print_warning(text)
        ended(code)
        return code


def _command_line(argv: object) -> tuple[list[str], str | None]:
    """``main``'s ``argv`` as the list of strings argparse takes, and why not where it is none: a path object
    (``os.PathLike``, a ``pathlib.Path``) is its text, as ``subprocess`` takes one; anything else that is no string is
    named. Why: a program calling ``main(["plan", Path("g.json"), "-o", out])`` got argparse's raw TypeError ("'PosixPath'
    object is not subscriptable"), ``--streams 2`` given as an int the same, and ``main("plan g.json -o p.json")`` (one
    string) was "invalid choice: 'p'", each letter taken for an argument."""
    from .errors import short_repr
    from .files import path_text

    if isinstance(argv, (str, bytes)):
        return [], (f"main(argv): argv is one {type(argv).__name__} ({short_repr(argv, 60)}): give the command line as a "
                    "list of arguments (shlex.split splits a string as the shell does)")
    try:
        items = list(argv)   # type: ignore[call-overload]
    except TypeError:
        return [], f"main(argv): argv must be a list of arguments (strings), not {type(argv).__name__}"
    out = []
    for k, item in enumerate(items):
        text = path_text(item) if isinstance(item, os.PathLike) else item
        if not isinstance(text, str):
            return [], (f"main(argv): argument {k + 1} is {type(item).__name__} {short_repr(item, 40)}, not a string "
                        "(the command line is text, as a shell gives it: str() a number; a path may be os.PathLike)")
        out.append(text)
    return out, None


def _exit_status(code: object) -> int:
    """The status Python exits with for ``SystemExit(code)``: None is 0, an int itself, anything else (a message) 1."""
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def _main(argv: Sequence[str] | None, held: list[tuple[type[Warning], str]] | None = None) -> int:
    if argv is not None:
        argv, why = _command_line(argv)
        if why:
            argtypes.print_error(why)
            return EXIT_BAD_INPUT
    parser = build_parser()
    with _usage_errors_off_stderr(argv):
        args, extra = parser.parse_known_args(argv)   # (each command's first '--' ends its options: CommandParser)
        if extra and not getattr(args, "bench_broken", None):  # a broken suite's options are not known: its error
            command = _command_parser(parser, args)   # names the suite
            ended = "--" in (sys.argv[1:] if argv is None else argv)
            command.error(f"unrecognized arguments: {' '.join(extra)}{_nearest_option(command, extra, ended)}")
    why = _stderr_into_input(args)
    if why:
        _error_not_on_stderr(why)
        return EXIT_BAD_INPUT
    merged = _notes_into_document(args)
    try:
        from .files import inputs_kept

        # (an input is never removed as a killed write's leftover: the positional ones and ``bench planners
        # --graph``'s files, cheap to find; an ONNX model's data would take ``_command_inputs``' callbacks)
        with inputs_kept(_kept_inputs(args)):
            code = int(args.func(args) or 0)
        if merged and held is not None:   # (the warnings would follow the document into its file or pipe)
            held.clear()
        if sys.stdout is not None:  # (None: started with stdout closed)
            sys.stdout.flush()  # a failing write of buffered output shows here, not at exit
        return code
    except MemplanError as exc:   # (a misspelt field read on the way is most likely why: said on the same line)
        from .errors import FieldWarning

        fields = [text for category, text in held or () if issubclass(category, FieldWarning)]
        said = exc.spelled(argtypes.FLAGS)   # (the library's options named as the flags: ``errors.NamesOptions``)
        argtypes.print_error(said + (f"; note: {fields[0]}" if fields and "; note: " not in said else ""))
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        argtypes.print_error("interrupted")
        return 130
    except BrokenPipeError:
        return 0
    except MemoryError as exc:  # a graph and options too large for this machine (numpy says how large)
        what = next((getattr(args, k) for k in ("graph", "input", "model", "plan") if getattr(args, k, None)), None)
        argtypes.print_error(f"out of memory{f' on {what}' if what else ''}: {exc or 'MemoryError'} (this graph and these "
             "options need more memory than the machine has)")
        return EXIT_BAD_INPUT
    except OSError as exc:  # the library turns every file error into a MemplanError: this is stdout failing
        argtypes.print_error(f"cannot write to stdout: {exc.strerror or exc}")  # (a full disk, a terminal gone;
        drop_output(sys.stdout)                                # stderr's own failures are dropped: _ReaderGone)
        return EXIT_BAD_INPUT


#: the options whose value ``-`` writes a document (JSON) to stdout
DOCUMENT_OPTIONS = ("output", "graph_out", "json")


def _notes_into_document(args: argparse.Namespace) -> bool:
    """Whether the command writes a document to stdout (``-o -``, ``--graph-out -``, ``bench --json -``) while stderr
    goes into the same file or pipe (``files.stderr_shares_stdout``: ``plan G -o - > P 2>&1``, ``2>&1 | jq``); if so,
    what it would say on stderr once the document is out is kept out of it: the summary and progress lines as with
    ``-q`` (``args.quiet`` set), ``bench``'s tables (``args.tables_nowhere``) and the warnings (``main`` drops them).
    An error line is still written: a command that fails writes no document. Why: the summary line followed the
    document, which was then no JSON (``P`` did not load, ``jq`` failed), exit 0."""
    from .files import is_stdout, stderr_shares_stdout

    if not any(is_stdout(getattr(args, k, None)) for k in DOCUMENT_OPTIONS) or not stderr_shares_stdout():
        return False
    if hasattr(args, "quiet"):
        args.quiet = True
        if getattr(args, "progress", False):   # (asked for, and dropped with the rest: no "has no effect with -q")
            args.progress = False
    args.tables_nowhere = True
    return True


def _names_stderr(argv: Sequence[str] | None) -> bool:
    """Whether an argument of the command line (or an option's ``=VALUE``) names the regular file stderr is
    redirected to (``plan G -o P --bogus 2>> G``)."""
    from .files import is_stderr_file, stdin_is_stderr_file

    for token in sys.argv[1:] if argv is None else argv:
        token = str(token)
        for path in (token, token.partition("=")[2] if token.startswith("-") else ""):
            if path == "-" and stdin_is_stderr_file():   # (an input '-' < FILE 2>> FILE)
                return True
            if path and path != "-" and is_stderr_file(path):
                return True
    return False


@contextlib.contextmanager
def _usage_errors_off_stderr(argv: Sequence[str] | None):
    """Parsing the command line: where stderr is redirected to a file the command line names (its input, most
    likely), a usage mistake's error line goes where ``_error_not_on_stderr`` puts it, not into that file. Why:
    ``memplan plan G -o P --bogus 2>> G`` appended "memplan: error: unrecognized arguments" to the graph, which
    ``_stderr_into_input`` (run once the arguments are known) could not prevent; ``--help`` still goes to stdout."""
    if sys.stderr is None or not _names_stderr(argv):
        yield
        return
    import io

    saved, held = sys.stderr, io.StringIO()
    sys.stderr = held
    try:
        yield
    except SystemExit:
        sys.stderr = saved
        for line in held.getvalue().splitlines():
            _error_not_on_stderr(line.removeprefix("memplan: error: "))
        raise
    finally:
        sys.stderr = saved


#: the attributes of a command's arguments that name a file it reads, and their labels in messages
INPUT_ARGS = {"graph": "input graph", "plan": "plan", "input": "input CSV", "model": "model"}


def _kept_inputs(args: argparse.Namespace) -> list[str]:
    """The files the command reads that a write of its own never removes as a killed write's leftover
    (``files.inputs_kept``): its positional inputs (``INPUT_ARGS``) and ``bench planners --graph``'s files. Why the
    latter: a graph is what ``plan --graph-out``, ``import`` and ``example`` write, so a SIGKILLed one leaves a graph
    as ``.memplan-PID-XXXXXXXX.tmp``, and ``bench planners --graph`` that file ``--json out.json`` beside it had its
    very input removed by the write of the results, on a file system that keeps no read times (``noatime``)."""
    paths = [getattr(args, k) for k in INPUT_ARGS if isinstance(getattr(args, k, None), str)]
    more = getattr(args, "graph_files", None)
    return paths + [p for p in more if isinstance(p, str)] if isinstance(more, list) else paths


def _command_inputs(args: argparse.Namespace) -> dict[str, str]:
    """The files the command ``args`` ran reads, label -> path: its positional inputs (``INPUT_ARGS``) and a bench
    suite's files (its ``inputs``; one that cannot say, a missing ``--minimalloc`` folder, names none here and its
    own error in the run)."""
    found = {label: getattr(args, key) for key, label in INPUT_ARGS.items() if isinstance(getattr(args, key, None), str)}
    for more in (getattr(args, "bench_inputs", None), getattr(args, "more_inputs", None)):
        if more is not None:   # (``more_inputs``: an ONNX model's external data files, ``import``)
            with contextlib.suppress(MemplanError):
                found.update(more(args))
    return found


def _stderr_into_input(args: argparse.Namespace) -> str | None:
    """Why the command must not run because stderr is redirected to one of its inputs (``files.stderr_input``:
    ``memplan plan G -o P 2>> G`` appended its summary line to the graph, exit 0), or None."""
    from .files import regular_file_stream, stderr_input

    if not regular_file_stream(sys.stderr):   # (a terminal, a pipe: no input's file; the inputs are not looked for)
        return None
    return stderr_input(_command_inputs(args))


def _error_not_on_stderr(why: str) -> None:
    """The error line of a command refused because stderr is an input: on stdout where it is a terminal or a pipe,
    nowhere where stdout is a regular file (an output, or an input too) or closed; the exit code 2 tells. Why not
    stderr: the line would be appended to the input the refusal is there to keep whole."""
    from .files import regular_file_stream

    if sys.stdout is not None and not regular_file_stream(sys.stdout):
        argtypes.print_error(why, stream=sys.stdout)


def _nearest_option(parser: argparse.ArgumentParser, extra: Sequence[str], ended: bool = False) -> str:
    """" (did you mean --event-us?)" for the first unknown option in ``extra`` that is near one of ``parser``'s,
    else "". Why: a Python keyword carried over to the command line (``--event_us``, ``--memory_budget``) or a
    typo (``--memory-bugdet``) was "unrecognized arguments" alone, where the library's ``plan(g, memory_bugdet=)``
    names the option meant. One of the command's own options there came after ``--`` (``ended``: the command line
    holds one), which ends the options: said so, where it was "unrecognized arguments: --streams (did you mean
    --streams?)". An option cut short (``--mem``, ``--time``: the command takes no abbreviation) names every option it
    begins: ``--mem 1G`` named none (too far from ``--memory-budget`` for difflib), and ``plan --time 5`` only
    ``--timings``, a flag, where ``--time-limit`` takes the value given."""
    import difflib

    known = [s for a in parser._actions for s in a.option_strings if s.startswith("--")]
    own = {s for a in parser._actions for s in a.option_strings}   # (short ones too: ``-- G -q`` as ``-- G --quiet``)
    for token in extra:
        name = token.partition("=")[0]
        if name in own:   # (after '--': "unrecognized arguments: --streams (did you mean --streams?)")
            if ended:
                return f" ({argtypes.after_dashes(name)})"
            continue
        if not name.startswith("--"):
            continue
        dashed = "--" + name[2:].replace("_", "-")
        started = [k for k in known if k.startswith(dashed)] if len(dashed) > 3 else []
        near = [dashed] if dashed in known else started or difflib.get_close_matches(name, known, n=1)
        if near:
            return f" (did you mean {' or '.join(near)}?)"
    return ""


def _command_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the (sub)command ``args`` ran, ``memplan bench planners``'s for that suite: a usage
    mistake names that command's ``--help``, as argparse's own errors do."""
    for dest in ("command", "suite"):
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        name = getattr(args, dest, None)
        if sub is None or name not in sub.choices:
            break
        parser = sub.choices[name]
    return parser


class _ReaderGone:
    """stdout or stderr while a command runs: once a write finds the pipe's reader gone (EPIPE: ``| head -1``
    read what it wanted), the rest of the text is dropped and the command goes on to finish its work. On
    stderr any failing write does that (``2>/dev/full``: ENOSPC), as there is nowhere left to report it: the
    command still ends with its own exit code (it was a hidden traceback, exit 1, after the work was done).

    Why: the text memplan prints is a report beside the work (the paths ``example`` wrote, ``bench``'s table
    before its ``--json``, ``plan --progress``); a broken pipe escaping from a ``print`` stopped the command
    halfway (``example`` wrote 1 of its 9 graphs, ``bench --json`` none) and still exited 0; on stderr it
    was a traceback and exit 1 instead of the error's exit 2. A document written to stdout (``-o -``) goes
    through ``buffer`` and still fails loudly when nobody reads it. Other errors (a full disk) are raised."""

    def __init__(self, stream, drops: tuple[type[Exception], ...] = (BrokenPipeError,)) -> None:
        self._stream = stream
        self._drops = drops
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return write_text(self._stream, text)   # (whole, where the file is non-blocking and full)
            except self._drops:
                self.gone = True
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self._stream.flush()
            except self._drops:
                self.gone = True

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


class _Nowhere:
    """stderr for a ``main`` started with it closed (``2>&-``: Python's ``sys.stderr`` is None): what it is told is
    dropped. Why: ``print(..., file=None)`` writes to stdout, so every note, warning and error line went there,
    and ``memplan plan g.json -o - 2>&-`` ended the plan JSON on stdout with its summary line (exit 0: the document
    no longer parsed); the exit code still tells how the command ended."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


@contextlib.contextmanager
def _readers_may_leave():
    """stdout and stderr as ``_ReaderGone`` for one ``main`` (each restored after; one whose reader went is
    pointed at /dev/null, so Python's own flush at exit finds nothing to fail on); a closed stderr as ``_Nowhere``
    (a closed stdout stays None: ``print`` then drops the text, and ``-o -`` says it is closed)."""
    saved = sys.stdout, sys.stderr
    wrapped = tuple(None if s is None else _ReaderGone(s, drops) for s, drops in
                    zip(saved, ((BrokenPipeError,), (OSError, ValueError))))   # (ValueError: stderr closed)
    wrapped = (wrapped[0], _Nowhere() if wrapped[1] is None else wrapped[1])
    sys.stdout, sys.stderr = wrapped
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
        for w in wrapped:
            if isinstance(w, _ReaderGone) and w.gone:
                drop_output(w._stream)


if __name__ == "__main__":
    sys.exit(main())
