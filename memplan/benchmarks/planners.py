"""Planners: arena against the lower bound, time and status, for every offset solver on a corpus.

The corpus: google/minimalloc's eleven "challenging" CSV problems (``--minimalloc DIR``, read in
place, never copied), the bundled examples, Llama-style decode and prefill graphs and random
fan-out/join DAGs up to 5,000 tensors — each graph planned serially and on several streams
(``graph_optimize``). ``--graph FILE`` (repeatable) adds the user's own graph JSON files, planned the same way:
instead of the corpus, or beside the parts ``--corpus`` names. Solvers: the baselines users compare against (ggml's allocator — serial only —
and TFLite's greedy-by-size, ``size``), memplan's heuristics, the minimalloc-style ``search``,
``cpsat`` and ``auto``. Every graph plan is verified by ``memplan.verify``; every CSV packing is
checked for overlaps. Timings are wall-clock seconds on the machine that runs it.
"""

from __future__ import annotations

import argparse
import os
import time

#: solvers run on every problem (exact ones get ``--time-limit``)
DEFAULT_SOLVERS = ("ggml", "size", "greedy", "search", "cpsat", "auto")
EXACT = ("search", "cpsat", "auto")
#: the parts of the corpus ``--corpus`` picks from
CORPUS = ("minimalloc", "examples", "llama", "random")


def _default_minimalloc() -> str | None:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.normpath(os.path.join(root, "..", "shared", "data", "minimalloc"))
    return path if os.path.isdir(path) else None


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .. import argtypes
    from ..solvers import SOLVER_NAMES

    p.add_argument("--minimalloc", type=argtypes.path, metavar="DIR", default=_default_minimalloc(),
                   help="google/minimalloc benchmark directory (with challenging/*.csv); default "
                        "../shared/data/minimalloc next to the project, if it exists")
    p.add_argument("--time-limit", type=argtypes.seconds, default=60.0, metavar="S",
                   help="time limit of each exact solve in seconds (default 60)")
    p.add_argument("--solvers", default=",".join(DEFAULT_SOLVERS),
                   type=argtypes.comma_list(argtypes.choice(SOLVER_NAMES)),
                   help=f"comma-separated solvers, each at most once (default {','.join(DEFAULT_SOLVERS)})")
    p.add_argument("--corpus", default=",".join(CORPUS), type=argtypes.comma_list(argtypes.choice(CORPUS)),
                   help="comma-separated parts, each at most once: minimalloc, examples, llama, random (default all, "
                        "minimalloc only where --minimalloc finds its data, a warning where not; with --graph, none)")
    p.add_argument("--sizes", default="500,2000,5000",
                   type=argtypes.comma_list(argtypes.at_most(argtypes.MAX_NODES, "nodes")),
                   help="comma-separated random DAG sizes in nodes, each at most once (default 500,2000,5000)")
    p.add_argument("--layers", type=argtypes.at_most(argtypes.MAX_LAYERS, "layers"), default=16,
                   help="Llama decoder layers (default 16)")
    p.add_argument("--streams", type=argtypes.at_most(argtypes.MAX_STREAMS, "streams"), default=4,
                   help="streams for the multi-stream schedules (default 4)")
    p.add_argument("--graph", action="append", type=argtypes.path, metavar="FILE", dest="graph_files",
                   help="a graph JSON file (memplan.graph/1) to plan too, named by its file name; repeat it for "
                        "several. Without --corpus only these graphs run; with it, they run after its parts")
    p.add_argument("--only", default=None, type=argtypes.comma_list(str),  # ('' named nothing and ran all)
                   help="comma-separated problem names to run, each at most once (e.g. A,C,K)")


def inputs(args: argparse.Namespace) -> dict[str, str]:
    """The CSV problems and graph files this run reads (``--json`` must not name one)."""
    paths = args.graph_files or []
    files = {"input graph" + (f" #{k + 1}" if len(paths) > 1 else ""): p for k, p in enumerate(paths)}
    if "minimalloc" not in _corpus(args) or not args.minimalloc:
        return files
    # (labelled by the problem's name: a message prints the label and then the path, and the file's name in both read
    # "the minimalloc problem A.1048576.csv D/challenging/A.1048576.csv"; the file's name only where two share one)
    csvs = _minimalloc_files(args.minimalloc)
    names = [_csv_name(p) for p in csvs]
    labels = [f"minimalloc problem {name if names.count(name) == 1 else os.path.basename(p)}"
              for name, p in zip(names, csvs)]
    return {**dict(zip(labels, csvs)), **files}


def input_folders(args: argparse.Namespace) -> dict[str, str]:
    """The folders this run lists its problems from (label -> directory: ``--minimalloc DIR``'s, ``DIR/challenging``
    where there is one), which ``--json`` must not write into. Why: ``--json DIR/challenging/B.csv`` wrote the results
    among the problems, and the next run read them as a CSV problem and failed on them."""
    if "minimalloc" not in _corpus(args) or not args.minimalloc or not os.path.isdir(args.minimalloc):
        return {}
    return {f"--minimalloc {args.minimalloc} problem folder": _problem_folder(args.minimalloc)}


def _problem_folder(directory: str) -> str:
    """Where ``--minimalloc DIR``'s problems are: ``DIR/challenging`` where it is a directory, else ``DIR``."""
    chal = os.path.join(directory, "challenging")
    return chal if os.path.isdir(chal) else directory


def _corpus(args: argparse.Namespace) -> set[str]:
    """The parts of the corpus this run plans: ``--corpus``'s, none where only ``--graph`` files were asked for."""
    from .. import argtypes

    if args.graph_files and not argtypes.given(args, "corpus"):
        return set()
    return {c.strip() for c in args.corpus.split(",")}


def run(args: argparse.Namespace) -> list[dict]:
    solvers = [s.strip() for s in args.solvers.split(",") if s.strip()]
    corpus = _corpus(args)
    _check_options(args, corpus, solvers)
    user_graphs = _user_graphs(args.graph_files or [])   # every file read and checked before any solve
    only = {s.strip() for s in args.only.split(",") if s.strip()} if args.only is not None else None
    rows: list[dict] = []
    csvs = _minimalloc_files(args.minimalloc) if "minimalloc" in corpus and args.minimalloc else []
    if "minimalloc" in corpus and not args.minimalloc:
        # the default corpus (all) where the default data folder is not there (a plain clone): a run that printed
        # no minimalloc row and said nothing read as one over every part
        import warnings

        from ..errors import UnusedOption

        warnings.warn(UnusedOption("bench planners: the minimalloc part of the corpus is left out: "
                                   "../shared/data/minimalloc, the default --minimalloc DIR, is not there (give "
                                   "--minimalloc DIR; tests/data/minimalloc holds the eleven challenging problems)"),
                      stacklevel=2)
    graphs = []
    if "examples" in corpus:
        from ..examples import bundled

        graphs += [("examples", stem, g) for stem, g in bundled().items()]
    if "llama" in corpus:
        from ..examples import LlamaConfig, llama

        for batch, kind in ((1, "decode"), (32, "prefill")):
            g = llama(LlamaConfig(layers=args.layers, batch=batch, name=f"llama-{kind}"))
            graphs.append(("llama", g.name, g))
    if "random" in corpus:
        from ..generators import fanout_join

        for k, n in enumerate(int(x) for x in args.sizes.split(",") if x.strip()):
            g = fanout_join(n, max_width=6, streams=args.streams, seed=k + 1)[0]
            graphs.append(("random", g.name, g))
    graphs += user_graphs
    _check_unique_names(csvs, graphs, args.graph_files or [], only)
    _check_distinct_files(csvs, only)
    if only is not None:  # checked before a run that may take hours: a typo is not an empty table
        _check_only(only, [_csv_name(p) for p in csvs] + [name for _, name, _ in graphs], corpus,
                    files=bool(user_graphs))
    # every CSV read (and so checked) before the first solve: a malformed problem was an error only when its
    # turn came, after the table had begun and the problems before it had been solved (hours, at 60 s each)
    tables = _read_tables(csvs, only)
    _print_head()
    if tables:
        rows += _minimalloc_rows(tables, solvers, args.time_limit)
    for part, name, g in graphs:
        if only is not None and name not in only:
            continue
        rows += _graph_rows(part, name, g, solvers, args.time_limit, args.streams)
    return rows


#: the options that shape one part of the corpus only: option, its dest, the part
_PART_OPTIONS = (("--minimalloc", "minimalloc", "minimalloc"), ("--sizes", "sizes", "random"),
                 ("--layers", "layers", "llama"))


def _check_options(args: argparse.Namespace, corpus: set[str], solvers: list[str]) -> None:
    """Refuse an option the chosen corpus and solvers leave without effect (``argtypes.idle``), and an explicit
    ``--corpus minimalloc`` with no problems to read, before the run (hours): ``--sizes 100 --corpus llama`` ran
    no random graph, and ``--corpus minimalloc`` without the problems' directory printed an empty table, exit 0."""
    from .. import argtypes
    from ..errors import MemplanError

    chosen = f"with --corpus {args.corpus}" if corpus else "with --graph alone (no --corpus: only the files run)"
    for option, dest, part in _PART_OPTIONS:
        if argtypes.given(args, dest) and part not in corpus:
            argtypes.idle(f"{option} {getattr(args, dest)}", chosen, f"it shapes the {part} part, which is not "
                          f"chosen (add {part} to --corpus)")
    if argtypes.given(args, "streams") and not corpus - {"minimalloc"} and not args.graph_files:
        argtypes.idle(f"--streams {args.streams}", chosen, "it schedules the graphs (examples, llama, random); a "
                      "minimalloc problem has its lifetimes fixed and no streams")
    if argtypes.given(args, "time_limit") and not set(solvers) & set(EXACT):
        argtypes.idle(f"--time-limit {args.time_limit:g}", f"with --solvers {args.solvers}", "it is the work budget "
                      f"of the exact solvers ({', '.join(EXACT)}), and none of them is chosen")
    if argtypes.given(args, "corpus") and "minimalloc" in corpus and not args.minimalloc:
        raise MemplanError("--corpus minimalloc: no minimalloc problems to read: give --minimalloc DIR (the default, "
                           "../shared/data/minimalloc next to the project, is not there)")


def _user_graphs(paths: list[str]) -> list[tuple]:
    """``--graph``'s files as ``("file", name, graph)``, each loaded and validated (``load_graph``): an error names
    the file, before the table begins. The name is the file's, less ``.json``, as a minimalloc problem's is; a file
    given twice is refused (its rows would repeat), and so are two files of one name (``a/m.json``, ``b/m.json``:
    their rows were both named ``m``, told apart by nothing, and ``--only m`` ran both)."""
    from ..errors import GraphError, MemplanError
    from ..files import cwd_trouble
    from ..io import load_graph

    seen: dict = {}   # file (``_file_key``) -> the path given for it
    named: dict[str, str] = {}   # row name -> the path given for it
    out = []
    for path in paths:
        why = cwd_trouble(path)   # (realpath asks for it: a raw FileNotFoundError, "cannot write to stdout" in the CLI)
        if why:
            raise MemplanError(f"--graph {path}: {why}")
        real = _file_key(path)
        if real in seen:
            same = "" if seen[real] == path else f" (as --graph {seen[real]}, the same file)"
            raise MemplanError(f"--graph {path}: given twice{same} (each file at most once)")
        seen[real] = path
        name = _file_name(path)
        if name in named:
            raise MemplanError(f"--graph {path}: its rows would be named {name!r}, as --graph {named[name]}'s are "
                               "(rows are named by file name): copy one to another name")
        named[name] = path
        try:
            g = load_graph(path)
        except MemplanError as exc:
            raise GraphError(f"--graph {exc}") from None
        out.append(("file", name, g))
    return out


def _file_key(path: str):
    """What tells two files apart: device and inode (a hard link is the file it links, as a symlink is: ``--graph
    m.json --graph n.json`` with ``n.json`` a hard link of ``m.json`` ran the one graph twice, as rows ``m`` and
    ``n``), else, for a path that cannot be stat'ed (left to ``load_graph`` to name), its real path."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return os.path.realpath(path)
    return (st.st_dev, st.st_ino)


def _file_name(path: str) -> str:
    """A ``--graph`` file's problem name: its file name less ``.json`` (any case)."""
    stem = os.path.basename(path)
    return stem[:-5] if stem.lower().endswith(".json") and len(stem) > 5 else stem


def _check_unique_names(csvs: list[str], graphs: list[tuple], files: list[str], only: set[str] | None) -> None:
    """Refuse, before any solve, two problems this run would plan under one name: two minimalloc CSVs of one letter
    (``A.1048576.csv`` and ``A.2097152.csv``, both ``A``), or a ``--graph`` file named as a problem of a corpus part
    (``--corpus examples --graph mine/chain.json``) or as a CSV problem. Why: a row's key is (problem, streams,
    solver), and the JSON then held two rows of one key told apart by nothing (the CSVs') or by ``corpus`` alone,
    which ``--only`` cannot choose between (``--only A`` ran both). Only the problems that run count (``only``)."""
    from ..errors import MemplanError

    paths = {_file_name(path): path for path in files}
    sources = [(_csv_name(path), f"the minimalloc problem {path}") for path in csvs]
    sources += [(name, f"--graph {paths.get(name, name)}" if part == "file" else f"the {part} part's problem")
                for part, name, _ in graphs]
    seen: dict[str, str] = {}
    for name, source in sources:
        if only is not None and name not in only:
            continue
        if name in seen:
            raise MemplanError(f"two problems named {name!r}: {seen[name]} and {source} (rows are keyed by problem, "
                               "streams and solver: theirs would repeat one key, and --only picks by name alone); "
                               "rename one, or leave one out")
        seen[name] = source


def _check_distinct_files(csvs: list[str], only: set[str] | None) -> None:
    """Refuse, before any solve, two CSV problems of the run that are one file under two names (a symlink or a
    hard link beside its target: ``Z.1048576.csv -> A.1048576.csv``). Why: the folder's listing ran the one problem
    twice, as rows ``A`` and ``Z``, each a full solve (up to an hour at ``--time-limit 60`` and five exact solvers),
    and a table that counts it twice. Refused rather than deduplicated: which of the two names the rows should
    carry is the user's call, and ``--only`` picks one (only the problems that run count). Files are told apart by
    device and inode (``_file_key``), so a link of any kind is caught."""
    from ..errors import MemplanError

    seen: dict = {}
    for path in csvs:   # (sorted: the same pair is named on every run)
        if only is not None and _csv_name(path) not in only:
            continue
        key = _file_key(path)
        if key in seen:
            raise MemplanError(f"the minimalloc problems {seen[key]} and {path} are one file (a link to the other, "
                               "or both to one): it would run twice under two names; remove the link, or pick one "
                               "with --only")
        seen[key] = path


def _csv_name(path: str) -> str:
    """A minimalloc problem's name: ``A`` for ``A.1048576.csv``."""
    return os.path.basename(path)[:-4].partition(".")[0]


def _csv_capacity(path: str) -> int | None:
    """A minimalloc problem's capacity: ``1048576`` for ``A.1048576.csv``, None without one. ASCII digits only, as
    every number memplan reads (``str.isdigit`` took '²', which ``int`` refuses: a traceback, and '١٠' for 10), and
    below 2**63, else an error naming the file (it was "buffer problem: capacity ...", naming none, mid-run)."""
    from ..errors import MemplanError

    cap = os.path.basename(path)[:-4].partition(".")[2]
    if not (cap.isascii() and cap.isdigit()):
        return None
    digits = cap.lstrip("0") or "0"   # (leading zeros count for nothing: A.<21 zeros>64.csv is 64)
    if len(digits) > 19 or int(digits) >= 1 << 63:
        raise MemplanError(f"minimalloc problem {path}: the capacity {cap[:40]} in its name is not below 2**63")
    return int(digits)


def _check_only(only: set[str], names: list[str], corpus: set[str], files: bool = False) -> None:
    """``--only``: every name must be a problem of the chosen corpus or ``--graph`` files (else an error naming
    it)."""
    from ..errors import MemplanError

    unknown = sorted(only - set(names))
    if unknown:
        have = ", ".join(dict.fromkeys(names)) or "none"
        where = " and ".join(([f"the corpus {','.join(sorted(corpus))}"] if corpus else [])
                             + (["the --graph files"] if files else []))
        raise MemplanError(f"--only: no problem named {', '.join(map(repr, unknown))} in {where} "
                           f"(their problems: {have})")


def _minimalloc_files(directory: str) -> list[str]:
    """The CSV problems of ``--minimalloc DIR`` (in ``DIR/challenging``, else in ``DIR``; hidden files left out),
    sorted; an error naming the option when there are none."""
    from ..errors import MemplanError

    if not os.path.isdir(directory):
        why = "not a directory" if os.path.exists(directory) else "no such directory"
        raise MemplanError(f"--minimalloc {directory}: {why}")
    chal = _problem_folder(directory)
    try:
        # (a hidden file is none of the problems, as ``challenging/*.csv`` in a shell leaves it out: macOS's
        # ``._A.1048576.csv`` beside a copied problem failed the run as binary data, and ``.csv`` was a row named '')
        names = sorted(f for f in os.listdir(chal) if f.endswith(".csv") and not f.startswith("."))
    except OSError as exc:
        raise MemplanError(f"--minimalloc {directory}: {exc.strerror}") from None
    if not names:
        raise MemplanError(f"--minimalloc {directory}: no .csv problems in {chal}")
    return [os.path.join(chal, f) for f in names]


def _read_tables(paths: list[str], only) -> list:
    """The CSV problems the run solves (those ``--only`` names, when given), each read and checked."""
    from ..io.minimalloc import read_csv

    chosen = [path for path in paths if only is None or _csv_name(path) in only]
    for path in chosen:   # (each capacity checked before any problem is read or solved)
        _csv_capacity(path)
    return [read_csv(path) for path in chosen]


def _minimalloc_rows(tables: list, solvers: list[str], time_limit: float) -> list[dict]:
    from ..io.minimalloc import check_packing
    from ..solvers import Objective, OverCapacity, SolveOptions, solve
    from ..solvers.check import InvalidPacking

    rows = []
    for table in tables:
        name, capacity = _csv_name(table.path), _csv_capacity(table.path)
        runs = []
        for s in solvers:
            if s == "search" and capacity is not None:
                runs.append(("search-fit", "search", True))  # minimalloc's task: any packing within capacity
            runs.append((s, s, False))
        for label, s, fit in runs:
            problem = table.problem(capacity)
            objective = Objective.FIT if fit else Objective.MINIMIZE
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                try:
                    sol = solve(problem, s, SolveOptions(time_limit=time_limit if s in EXACT else None,
                                                         objective=objective))
                except OverCapacity as exc:   # nothing within the capacity: the row reports the best arena, unfitting
                    sol = exc.best
                check_packing(table, sol)   # (a table's gaps past PAIRWISE_LIMIT buffers: what solve left unchecked)
            except InvalidPacking:  # a solver bug: an invalid packing (a solver's refusal is a row as below)
                _emit(rows, _row("minimalloc", name, len(table.ids), 1, label, None, problem.lower_bound,
                                 None, "INVALID", time.perf_counter() - t0, capacity=capacity, verified=False))
                continue
            except Exception as exc:  # a benchmark row, not a crash: record why
                _emit(rows, _row("minimalloc", name, len(table.ids), 1, label, None, problem.lower_bound,
                                 None, type(exc).__name__, time.perf_counter() - t0, capacity=capacity,
                                 cpu_seconds=round(time.process_time() - c0, 3)))
                continue
            secs = time.perf_counter() - t0
            cpu = round(time.process_time() - c0, 3)
            _emit(rows, _row("minimalloc", name, len(table.ids), 1, label, sol.arena, problem.lower_bound,
                             sol.info.get("bound", sol.lower_bound), str(sol.status), secs, capacity=capacity,
                             fits=sol.arena <= capacity if capacity is not None else None, verified=True, cpu_seconds=cpu))
    return rows


def _graph_rows(part: str, name: str, g, solvers: list[str], time_limit: float, streams: int) -> list[dict]:
    from ..errors import MemplanError
    from ..optimize import graph_optimize
    from ..plan import solve_schedule
    from ..schedule import serial_schedule
    from ..solvers import SolveOptions
    from ..solvers.check import InvalidPacking
    from ..verify import verify

    rows = []
    serial = serial_schedule(g)
    multi = graph_optimize(g, streams)
    # A graph where graph_optimize finds no useful concurrency gets the serial schedule back: its rows
    # would repeat the serial ones under the same (problem, streams, solver) key, so they are left out.
    for sched in (serial,) if multi == serial else (serial, multi):
        buffers = sum(1 for t in range(len(g.tensors)) if g.root[t] == t and g.in_arena(t))
        for s in solvers:
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                p = solve_schedule(g, sched, s, SolveOptions(time_limit=time_limit if s in EXACT else None))
            except MemplanError as exc:
                why = "INVALID" if isinstance(exc, InvalidPacking) else "n/a" if s == "ggml" else type(exc).__name__
                _emit(rows, _row(part, name, buffers, sched.num_streams, s, None, None, None,
                                 why, time.perf_counter() - t0,
                                 cpu_seconds=round(time.process_time() - c0, 3)))
                continue
            secs = time.perf_counter() - t0
            cpu = round(time.process_time() - c0, 3)
            try:
                verify(g, p)
                ok = True
            except MemplanError:
                ok = False
            _emit(rows, _row(part, name, buffers, sched.num_streams, s, p.arena_bytes, p.lower_bound_bytes,
                             p.solver.get("bound", p.lower_bound_bytes), p.solver["status"] if ok else "INVALID",
                             secs, verified=ok, cpu_seconds=cpu))
    return rows


def _row(part, name, buffers, streams, solver, arena, lb, bound, status, secs, **extra) -> dict:
    lb = int(lb or 0)
    proven = None if bound is None else max(int(bound), lb)
    return {"corpus": part, "problem": name, "buffers": buffers, "streams": streams, "solver": solver,
            "arena": arena, "lower_bound": lb, "proven_bound": proven,
            "optimal": arena is not None and proven is not None and arena <= proven,
            "ratio": round(arena / lb, 4) if arena is not None and lb else None, "status": status,
            "seconds": round(secs, 3), **extra}


_HEAD = (f"{'corpus':<10} {'problem':<22} {'bufs':>5} {'str':>3} {'solver':<10} {'arena':>11} "
         f"{'lower bd':>11} {'arena/lb':>8} {'proven':>11} {'status':<9} {'seconds':>8} {'cpu s':>8}")


def _print_head() -> None:
    print(_HEAD)
    print("-" * len(_HEAD), flush=True)


def _emit(rows: list[dict], r: dict) -> None:
    """Keep the row and print it at once (long runs show progress)."""
    from ..planfile import ratio_text
    from ..show import printable

    rows.append(r)
    arena = "-" if r["arena"] is None else str(r["arena"])
    # the plan's integers, as ``memplan show`` prints them: the float ratio read 1.0000 beside HEURISTIC for an arena
    # bytes above a bound near 2**50 (the JSON's ``ratio`` stays the float, beside ``optimal``)
    ratio = "-" if r["ratio"] is None else ratio_text(r["arena"], r["lower_bound"], 4)
    proven = "-" if r["proven_bound"] is None else str(r["proven_bound"])
    # (a problem's name is its CSV's file name: an ANSI escape or a control character in it reached the terminal)
    print(f"{r['corpus']:<10} {printable(r['problem'])[:22]:<22} {r['buffers']:>5} {r['streams']:>3} {r['solver']:<10} "
          f"{arena:>11} {r['lower_bound']:>11} {ratio:>8} {proven:>11} {r['status']:<9} {r['seconds']:>8.2f} "
          f"{r.get('cpu_seconds', 0.0):>8.2f}",
          flush=True)
