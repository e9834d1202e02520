"""Round 74 (docs74): the commands, options, links and facts README.md, docs/*.md and the ``--help`` texts promise,
checked as a user copying them meets them (CPU, in-process, cheap).

Each test names what the docs or the help said, what the code did, and what holds now. The runnable blocks
themselves run in tests/test_docs_round32.py; this file adds what that runner does not reach: the links between
the docs, the inline commands of the prose, and the ``--help`` of memplan's own ``python -m`` modules.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shlex

import pytest

import memplan
from memplan.benchmarks import scale
from memplan.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER_DOCS = ["README.md", *sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md"))
                                  if not p.endswith("runtime_log.md"))]


def read(rel: str) -> str:
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


def one_error_line(capsys, *words: str) -> str:
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, (w, err)
    return err


# ------------------------------------------------------------------------------------------- the docs' facts


def test_benchmarks_doc_says_which_minimalloc_problems_a_clone_carries():
    """docs/benchmarks.md said "The tests carry only the two problems they read (A and the small example)" in
    ``tests/data/minimalloc/``, while the folder holds all eleven challenging problems A-K (its README lists who
    reads each), so the smoke run it quotes prints eleven problems, not one. The sentence names what is there."""
    text = " ".join(read("docs/benchmarks.md").split())
    sentence = re.search(r"The tests carry ([^;]+) in `tests/data/minimalloc/`", text)
    assert sentence, "docs/benchmarks.md no longer says what tests/data/minimalloc holds"
    said = sentence.group(1)
    here = sorted(os.path.basename(p).split(".")[0]
                  for p in glob.glob(os.path.join(ROOT, "tests", "data", "minimalloc", "challenging", "*.csv")))
    assert here == list("ABCDEFGHIJK")
    assert "only the two" not in said and "eleven" in said and "A-K" in said
    assert os.listdir(os.path.join(ROOT, "tests", "data", "minimalloc", "examples")) == ["input.12.csv"]


def test_benchmarks_doc_smoke_run_prints_every_problem_it_carries(monkeypatch, capsys):
    """The smoke run the doc quotes, as written, runs every problem the folder carries (two rows each)."""
    text = read("docs/benchmarks.md")
    span = re.search(r"`(memplan bench planners --minimalloc tests/data/minimalloc [^`\n]*)`", text).group(1)
    monkeypatch.chdir(ROOT)
    assert main(shlex.split(span)[1:]) == 0
    out = capsys.readouterr().out
    problems = re.findall(r"^minimalloc (\w) ", out, re.M)
    assert sorted(set(problems)) == list("ABCDEFGHIJK") and len(problems) == 22


def test_scheduling_doc_numbers_table_rows_the_round32_check_skips(monkeypatch, capsys):
    """docs/scheduling.md's ``memplan bench schedule`` table gave the 400-node fan-out/join's graph_optimize arena
    as 1.272x serial; the suite computes 428032 / 346112 B = 1.237x (the number was never rerun:
    test_docs_round32.py skips that graph and Llama b32 as slow, about 2 s here). Those rows are what it computes."""
    import argparse

    from memplan.benchmarks import schedule
    from memplan.examples import LlamaConfig, llama
    from memplan.generators import fanout_join

    labels = {"Llama 16L b32": "llama-L16-b32", "fan-out/join 400": "fanout-join-400-s1"}
    methods = {"Q/K/V-only": "qkv-only", "graph_optimize": "graph_optimize", "graph_optimize @1.05x":
               "graph_optimize@1.05x", "@1.05x": "graph_optimize@1.05x"}
    text = read("docs/scheduling.md")
    start = text.index("| graph | nodes | method")
    rows, label = [], None
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        label = cells[0] or label
        if label in labels:
            rows.append((labels[label], methods[cells[2]], cells[3:]))
    assert len(rows) == 4
    monkeypatch.setattr(schedule, "graphs", lambda layers, quick: [
        llama(LlamaConfig(layers=layers, batch=32)), fanout_join(400, max_width=8, streams=8, seed=1)[0]])
    args = argparse.Namespace(layers=16, streams="auto", event_us=None, budget=1.05, solver="auto", quick=False)
    got = {(r["graph"], r["method"]): r for r in schedule.run(args)}
    capsys.readouterr()

    def rounded_as(doc: str, value: float) -> str:
        return f"{value:.{len(doc.split('.')[1]) if '.' in doc else 0}f}"

    for graph, method, (streams, events, makespan, speedup, ratio) in rows:
        r = got[graph, method]
        cells = [str(r["streams"]), str(r["events"]), rounded_as(makespan, r["makespan_us"]),
                 rounded_as(speedup.strip("*"), r["speedup"]), rounded_as(ratio, r["arena_vs_serial"])]
        assert cells == [streams, events, makespan, speedup.strip("*"), ratio], (graph, method)


def _anchors(rel: str) -> set[str]:
    """GitHub's anchors of ``rel``'s headings (outside code blocks): lower case, punctuation dropped, spaces to
    dashes, a repeated heading numbered ``-1``, ``-2``, ..."""
    text = re.sub(r"^```.*?^```", "", read(rel), flags=re.S | re.M)
    seen: dict[str, int] = {}
    out = set()
    for heading in re.findall(r"^#+ (.*)$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        if slug in seen:
            seen[slug] += 1
            slug = f"{slug}-{seen[slug]}"
        else:
            seen[slug] = 0
        out.add(slug)
    return out


def test_every_link_between_the_docs_resolves():
    """A reader follows README's and the docs' links ([format](docs/format.md#when-is-a-plan-safe), a raw JSON
    file beside a table): each names a file of the repository, and each ``#anchor`` a heading of that file. No
    test read them, so a renamed heading or a moved file would leave a dead link unseen."""
    bad, checked = [], 0
    for rel in USER_DOCS:
        text = re.sub(r"^```.*?^```", "", read(rel), flags=re.S | re.M)
        for link in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", link):
                continue   # https:, mailto:
            path, _, anchor = link.partition("#")
            target = os.path.normpath(os.path.join(os.path.dirname(rel), path)) if path else rel
            checked += 1
            if not os.path.exists(os.path.join(ROOT, target)):
                bad.append((rel, link, "no such file"))
            elif anchor and target.endswith(".md") and anchor not in _anchors(target):
                bad.append((rel, link, "no such heading"))
    assert checked > 30
    assert bad == []


def test_the_link_checker_sees_a_dead_anchor():
    """The control: an anchor no heading makes is not among the anchors, one that a heading makes is."""
    anchors = _anchors("docs/format.md")
    assert "when-is-a-plan-safe" in anchors and "limits" in anchors
    assert "when-is-a-plan-unsafe" not in anchors


def test_importers_doc_usage_line_lists_every_import_option(capsys):
    """docs/importers.md opens with the usage of ``memplan import``; it left out ``--constant-initializers``,
    which ``memplan import --help`` lists (the doc named it only deep in its ONNX notes). Every option of the
    help is on the usage line."""
    usage = next(line for line in read("docs/importers.md").splitlines() if line.startswith("memplan import MODEL"))
    with pytest.raises(SystemExit):
        main(["import", "--help"])
    helped = set(re.findall(r"(?<![\w-])(--[a-z][\w-]*)", capsys.readouterr().out)) - {"--help", "--output",
                                                                                       "--quiet"}
    assert helped and helped <= set(re.findall(r"(?<![\w-])(--[a-z][\w-]*)", usage)), (helped, usage)


# ------------------------------------------------------------------ memplan's own `python -m` modules' options


@pytest.mark.parametrize("argv, mode", [
    (["chains", "2", "serial", "auto", "1024"], "serial"),
    (["chains", "2", "serial", "greedy", "auto"], "serial"),
    (["fanout", "40", "natural", "greedy", "3"], "natural"),
])
def test_the_scale_case_refuses_a_stream_cap_its_mode_never_reads(capsys, argv, mode):
    """``python -m memplan.benchmarks.scale chains 5000 serial auto 1024`` (docs/benchmarks.md runs it by hand
    with ``auto``) ignored the 1024 and measured a serial plan, exit 0, where ``memplan bench scale --mode serial
    --streams 1024`` is refused: the case now refuses it the same way, one line naming it, exit 2."""
    with pytest.raises(SystemExit) as exc:
        scale.child_main(argv)
    assert exc.value.code == 2
    one_error_line(capsys, "memplan.benchmarks.scale: error: argument streams:", f"with mode {mode}",
                   "stream cap of mode auto")


def test_the_scale_case_takes_a_cap_with_mode_auto_and_none_without(capsys):
    """The controls: mode auto reads the cap (one stream at a cap of 1), serial runs without one."""
    assert scale.child_main(["chains", "2", "auto", "greedy", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["streams"] == 1
    assert scale.child_main(["chains", "2", "serial", "greedy"]) == 0
    assert json.loads(capsys.readouterr().out)["mode"] == "serial"


def test_bench_scale_passes_the_cap_to_its_auto_cases_only(monkeypatch, capsys):
    """``bench scale`` runs each case as ``python -m memplan.benchmarks.scale``: it gives the stream cap to the
    auto cases alone, so its serial and natural cases are not refused by the case's check above."""
    cmds = []

    def fake(cmd, case):
        cmds.append(cmd[3:])
        return json.dumps({"arena": 1, "lower_bound": 1, "tensors": 1, "streams": 1, "total_s": 0.0,
                           "peak_rss_mib": 1.0})

    monkeypatch.setattr(scale, "_run_case", fake)
    assert main(["bench", "scale", "--nodes", "40", "--mode", "serial", "auto", "natural", "--streams", "3"]) == 0
    capsys.readouterr()
    assert cmds == [["fanout", "40", "serial", "auto"], ["fanout", "40", "auto", "auto", "3"],
                    ["fanout", "40", "natural", "auto"]]
    for cmd in cmds:   # each is a command line the case takes
        with pytest.raises(SystemExit) as exc:
            scale.child_main([*cmd[:3], "nosuch"])
        assert exc.value.code == 2
    capsys.readouterr()


HELPED = {   # module -> words its help must hold (flattened): the defaults the help said nothing of before
    "memplan.importers.torch_compare": ["--batch BATCH batch size of the example input (default 8"],
    "memplan.benchmarks.scale": ["(default auto; only with mode auto)", "offset solver (default auto)"],
    "runtime.tools.compare_launches": ["--config CONFIG Llama config: tiny, 1b or 8b (default 8b)",
                                       "(default 1,16,32)", "(default 2)", "(default runtime,norms)"],
    "runtime.aten.bench": ["(default cuda;", "(default aten_bench.json)"],
    "runtime.bench": ["(default 1b,8b)", "(default 1,4,16,64)", "(default runtime_bench.json)"],
    "runtime.tools.pdl_check": ["(default 1,16)", "(default 5)", "(default 2)"],
    "runtime.aten.sweep_paths": ["(default all)", "(default f32,b3,bf16,dyn)", "(default importer,aten)"],
}
#: every ``python -m X`` the user docs name (pytest, venv, pip aside): ``memplan`` is ``memplan.cli.main``
DOC_MODULES = sorted({m for rel in USER_DOCS for m in re.findall(r"python3? -m ([\w.]+)", read(rel))}
                     - {"pytest", "venv", "pip"})


def _help_text(capsys, module: str, argv: list[str]) -> str:
    import importlib

    if module == "memplan":
        from memplan.cli import main as entry
    else:
        mod = importlib.import_module(module)
        entry = mod.child_main if module == "memplan.benchmarks.scale" else mod.main
    with pytest.raises(SystemExit) as exc:
        entry([*argv, "--help"])
    assert exc.value.code == 0, (module, argv)
    return capsys.readouterr().out


def _bare_arguments(help_text: str) -> list[str]:
    """The argument entries of an argparse ``--help`` with no text: neither on their line nor on the next."""
    lines = re.split(r"^(?:positional arguments|options):$", help_text, maxsplit=1, flags=re.M)[1].splitlines()
    bare = []
    for i, line in enumerate(lines):
        if re.match(r"^  \S", line) and not line.lstrip().startswith("-h,"):   # an argument's entry
            text_here = len(re.split(r" {2,}", line.strip())) > 1
            text_below = i + 1 < len(lines) and re.match(r"^ {4,}\S", lines[i + 1])
            if not (text_here or text_below):
                bare.append(line.strip())
    return bare


def test_the_bare_argument_finder_finds_one():
    """The control: an entry with no text is found, one with text on its line or the next is not."""
    text = "usage: x\n\noptions:\n  -h, --help  show\n  --a A\n  --b B       the b\n  --long-name LONG\n" \
           "                the long one\n  --c C\n"
    assert _bare_arguments(text) == ["--a A", "--c C"]


@pytest.mark.parametrize("module", DOC_MODULES)
def test_every_documented_modules_help_describes_every_argument(capsys, module):
    """``python -m memplan.importers.torch_compare --help`` listed ``--batch BATCH`` with no word (its default 8
    unsaid) and the model with none; ``python -m memplan.benchmarks.scale --help`` its five positional arguments
    bare; ``runtime.tools.compare_launches`` (a CPU tool docs/runtime.md quotes) ``--config``, ``--batches``,
    ``--devices`` and ``--fuse``; ``runtime.aten.bench`` ``--device`` and ``--out``; and ``runtime.bench``,
    ``bench_multi_gpu``, ``sweep_paths``, ``bench_scatter``, ``profile_gap`` and ``runtime.tools``' ``attn_bench``,
    ``attn_tune``, ``bound``, ``gemm_bench``, ``pdl_check``, ``profile``, ``rule_ab`` 35 options in all, each with
    no word or default. Every argument of every module the docs name now has a line of its own."""
    out = _help_text(capsys, module, [])
    assert _bare_arguments(out) == [], module
    flat = " ".join(out.split())   # the help wraps at the terminal's width
    for w in HELPED.get(module, []):
        assert w in flat, (module, w)


@pytest.mark.parametrize("module", DOC_MODULES)
def test_every_documented_modules_help_description_is_a_whole_sentence(capsys, module):
    """``python -m runtime.aten.bench_state --help`` described the tool as "what putting the module's state back
    around compile's eager comparison run", ``bench_reads`` as "what the per-call check of the Python values
    ``forward`` reads", ``bench_scatter`` ending at "``select_scatter``," and ``rule_ab`` at "side by": each took
    its docstring's first line, a sentence cut where it wraps. A description taken from the docstring is now its
    first sentence whole (``tool_args.doc_summary``)."""
    import importlib

    out = _help_text(capsys, module, [])
    description = " ".join(out.split("\n\n")[1].split())
    doc = importlib.import_module(module if module != "memplan" else "memplan.cli").__doc__ or ""
    first = " ".join(doc.split("\n\n", 1)[0].split())
    if description != first and first.startswith(description):   # a part of the docstring's first paragraph
        assert description.endswith("."), (module, description)


def test_doc_summary_is_the_first_sentence():
    from runtime.tool_args import doc_summary

    assert doc_summary("``x``: a thing, side by\nside (a note).\n\nMore.") == "``x``: a thing, side by side (a note)."
    assert doc_summary("One line.  Two.") == "One line."
    assert doc_summary("no period at all\nhere") == "no period at all here"
    assert doc_summary("version 2.14 of torch. Then") == "version 2.14 of torch."


def test_every_memplan_subcommands_help_describes_every_argument(capsys):
    """The same of ``memplan``'s own commands and bench suites (so a new option cannot come in bare)."""
    import argparse

    from memplan.cli import build_parser

    def commands(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield [*path, name]
                    yield from commands(sub, [*path, name])

    seen = 0
    for argv in commands(build_parser(), []):
        seen += 1
        assert _bare_arguments(_help_text(capsys, "memplan", argv)) == [], argv
    assert seen >= 14


# ------------------------------------------------------------- README's OptionError promise, entry points left


@pytest.mark.parametrize("call, words", [
    (lambda g, p: memplan.ReuseIndex(g), ["ReuseIndex() needs argument 'plan'"]),
    (lambda g, p: memplan.ReuseIndex(g, p, True), ["ReuseIndex() takes at most 2 (graph, plan)", "fused_groups"]),
    (lambda g, p: memplan.ReuseIndex(g, p, graph=g), ["ReuseIndex() got argument 'graph' twice"]),
    (lambda g, p: memplan.GraphBuilder("g", 256, 3), ["GraphBuilder() takes at most 2 (name, alignment)"]),
    (lambda g, p: memplan.CostModel(2.0, 1, 1, 0, True, 9), ["CostModel() takes at most 5"]),
    (lambda g, p: memplan.from_torch(), ["from_torch() needs argument 'module'"]),
    (lambda g, p: memplan.from_torch(None, (), None), ["from_torch() takes at most 2 (module, example_inputs)",
                                                        "None and any after it must be given by keyword"]),
])
def test_entry_points_name_a_call_that_does_not_bind(call, words):
    """README: ``OptionError`` is "an unknown keyword option, an option given by position, or a required argument
    left out or given twice". ``memplan.ReuseIndex(graph)`` (README's own "build ``index = memplan.ReuseIndex(graph,
    plan)`` once"), ``from_torch(m, (x,), None)``, ``from_torch()``, ``GraphBuilder("g", 256, 3)`` and a
    ``CostModel`` given six values by position were Python's bare TypeErrors ("missing 1 required positional
    argument", "takes from 1 to 3 positional arguments but 4 were given"); each is now the OptionError naming it."""
    from memplan.errors import OptionError
    from memplan.examples import qkv_attention

    g = qkv_attention()
    p = memplan.plan(g)
    with pytest.raises(OptionError) as exc:
        call(g, p)
    for w in words:
        assert w in str(exc.value), (w, str(exc.value))


def test_a_constructors_own_type_error_is_left_as_it_is():
    """The control: the check runs only after a constructor raised a TypeError, and a TypeError from a call that
    binds (here a dataclass field's own check) is re-raised unchanged; calls that bind build as before."""
    from memplan.errors import named_fields

    @named_fields
    class Box:
        def __init__(self, n: int, *, scale: int = 1):
            if not isinstance(n, int):
                raise TypeError(f"n must be an int, not {type(n).__name__}")
            self.n = n * scale

    assert Box(2, scale=3).n == 6
    with pytest.raises(TypeError, match="n must be an int, not str") as exc:
        Box("2")
    assert type(exc.value) is TypeError
    from memplan.errors import OptionError

    with pytest.raises(OptionError, match=r"Box\(\) takes at most 1 \(n\) positional argument, not 2: 3 .*scale"):
        Box(2, 3)


@pytest.mark.parametrize("kwargs, words", [
    (5, ["kwargs must be a dict of forward's keyword arguments", "not int 5"]),
    ([("x", 1)], ["kwargs must be a dict", "not list"]),
    ({1: 2}, ["kwargs must be keyed by forward's parameter names (str), not int 1"]),
])
def test_from_torch_names_a_kwargs_that_is_no_dict(kwargs, words):
    """``from_torch(m, (x,), kwargs=5)`` (docs/importers.md: ``from_torch(ep, kwargs=...)``) was refused as
    "torch.export failed for Linear: inspect.Signature.bind() argument after ** must be a mapping, not _IntWrapper":
    the export blamed, a torch internal named. The option is named now, before torch exports anything."""
    torch = pytest.importorskip("torch")
    from memplan.errors import OptionError

    with pytest.raises(OptionError) as exc:
        memplan.from_torch(torch.nn.Linear(4, 4), (torch.zeros(2, 4),), kwargs=kwargs)
    for w in words:
        assert w in str(exc.value), (w, str(exc.value))
    assert "torch.export failed" not in str(exc.value)


@pytest.mark.parametrize("arena_base, root_base, words", [
    ([1.5], {}, ["arena_base[0] must be a non-negative integer address, not float 1.5", "'k'"]),
    ([2.0], {}, ["not float 2.0"]),
    ([-5], {}, ["not int -5"]),
    ([True], {}, ["not bool True"]),
])
def test_binding_address_names_a_base_that_is_no_address(arena_base, root_base, words):
    """README: ``binding.address(id, arena_base, root_base)`` is "the address of a tensor". A base of 1.5 gave
    8193.5 and one of -5 gave 8187, silently (docs/format.md: an integer the library takes is never a float or a
    bool). Each is an ExecutorError naming the base now; numpy integers are the ints they equal."""
    import numpy as np

    from memplan.errors import ExecutorError
    from memplan.examples import qkv_attention
    from runtime.binding import bind

    g = qkv_attention()
    b = bind(g, memplan.plan(g, streams=3))
    with pytest.raises(ExecutorError) as exc:
        b.address("k", arena_base, root_base)
    for w in words:
        assert w in str(exc.value), (w, str(exc.value))
    offset = b.places["k"].offset
    assert b.address("k", [np.uint64(1 << 40)], {}) == (1 << 40) + offset
    assert type(b.address("k", {0: np.int64(256)}, {})) is int
    with pytest.raises(ExecutorError, match=r"root_base\['wq'\] must be a non-negative integer address, not int -1"):
        b.address("wq", [0], {"wq": -1})


def test_event_us_warning_with_devices_1_names_more_than_one_device(tmp_path, capsys):
    """``memplan plan G -o P --devices 1 --event-us 3`` warned "without --streams (or --devices N) the plan is
    serial", which reads as if the ``--devices 1`` given were the remedy; the warning says N > 1 now."""
    from memplan.examples import qkv_attention

    memplan.save_graph(qkv_attention(), str(tmp_path / "g.json"))
    assert main(["plan", str(tmp_path / "g.json"), "-o", str(tmp_path / "p.json"), "--devices", "1",
                 "--event-us", "3", "-q"]) == 0
    err = capsys.readouterr().err
    assert "memplan: warning: --event-us 3 has no effect without --streams" in err
    assert "(or --devices N, N > 1)" in err


def test_bench_planners_says_when_the_default_corpus_leaves_minimalloc_out(monkeypatch, capsys):
    """``memplan bench planners`` (``--corpus`` "default all") in a plain clone, where ``../shared/data/minimalloc``
    is not there, printed no minimalloc row and said nothing: a run read as one over every part. It warns now, once
    the table is through; with the data found (``--minimalloc DIR``) it says nothing."""
    from memplan.benchmarks import planners

    monkeypatch.setattr(planners, "_default_minimalloc", lambda: None)
    argv = ["bench", "planners", "--solvers", "greedy", "--sizes", "10", "--layers", "1", "--only", "qkv"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "examples   qkv" in out and "minimalloc " not in out
    assert err.count("\n") == 1 and err.startswith("memplan: warning: bench planners: the minimalloc part of the "
                                                   "corpus is left out"), err
    assert main([*argv[:2], "--minimalloc", os.path.join(ROOT, "tests", "data", "minimalloc"), *argv[2:],
                 ]) == 0
    out, err = capsys.readouterr()
    assert "examples   qkv" in out and err == ""


def test_bench_schedule_refuses_ggml_before_planning(monkeypatch, capsys):
    """``memplan bench schedule --solver ggml`` (a choice its ``--help`` lists) planned the first graph's serial row,
    printed nothing, then failed at its Q/K/V-only row: ggml plans one serial stream and every graph of the suite
    compares multi-stream schedules. One line before any plan now."""
    from memplan.benchmarks import schedule

    def no_graphs(layers, quick):
        raise AssertionError("a graph was built before the refusal")

    monkeypatch.setattr(schedule, "graphs", no_graphs)
    assert main(["bench", "schedule", "--quick", "--layers", "1", "--solver", "ggml"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("memplan: error: --solver ggml plans one serial stream, and bench schedule compares "
                          "multi-stream schedules")
