"""The user-facing docs stay true: README's Python runs, its command table is ``memplan --help``'s list,
every option it names exists, and every ``memplan.x.y`` the docs name resolves as a user would write it.

CPU only; the tutorial's commands are run by ``tests/test_viz.py::test_tutorial_runs`` and format.md's
worked example by ``tests/test_cli.py::test_format_doc_worked_example_is_what_memplan_plan_writes``.
"""

from __future__ import annotations

import glob
import importlib
import os
import re

import pytest

import memplan
from memplan.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")


def read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def code_blocks(text: str, lang: str) -> list[str]:
    """The fenced blocks of ``text`` in language ``lang``, in order."""
    return re.findall(rf"^```{lang}\n(.*?)^```", text, re.S | re.M)


def help_text(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as info:
        main([*argv, "--help"])
    assert info.value.code == 0
    return capsys.readouterr().out


def listed_subcommands(help_out: str) -> set[str]:
    """The subcommands (or suites) an argparse ``--help`` lists: the 4-space-indented names under its
    positional COMMAND/SUITE argument (wrapped help lines are indented further)."""
    return set(re.findall(r"^ {4}([a-z][\w-]*)(?: |$)", help_out, re.M))


def command_table() -> list[str]:
    """The first cells of README's "Command line" table, one string per row."""
    text = read(README)
    section = text[text.index("## Command line"):]
    section = section[:section.index("\n## ", 1)]
    rows = [line for line in section.splitlines() if line.startswith("| `memplan ")]
    assert rows, "README's command table is gone"
    return [row.split(" | ")[0] for row in rows]


def table_invocations() -> list[tuple[str, str]]:
    """(subcommand, the invocation's text) for every ``memplan ...`` code span in the table's first column."""
    found = []
    for cell in command_table():
        for span in re.findall(r"`(memplan [^`]+)`", cell):
            found.append((span.split()[1], span.replace("\\|", "|")))
    return found


def test_readme_python_runs(tmp_path, monkeypatch, capsys):
    """README's "Using it from Python" runs as shown, prints the arena and its bound, and writes the plan."""
    blocks = code_blocks(read(README), "python")
    assert blocks, "README has no Python example"
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {"__name__": "__readme__"})
    printed = capsys.readouterr().out.split()
    plan = memplan.load_plan("plan.json")
    assert printed[:2] == [str(plan.arena_bytes), str(plan.lower_bound_bytes)]
    assert plan.arena_bytes >= plan.lower_bound_bytes > 0


def test_scheduling_doc_python_runs():
    """docs/scheduling.md's first example: a budgeted multi-stream plan and its simulation."""
    blocks = code_blocks(read(os.path.join(ROOT, "docs", "scheduling.md")), "python")
    assert blocks
    scope: dict = {}
    exec(compile(blocks[0], "scheduling.md", "exec"), scope)
    p, g = scope["p"], scope["g"]
    assert p.solver["schedule"]["serial_arena_bytes"] > 0
    assert p.arena_bytes <= int(1.05 * memplan.plan(g).arena_bytes)


def test_readme_command_table_is_the_cli(capsys):
    """Every subcommand in README's table is in ``memplan --help``, and every one there is in the table."""
    in_table = {cmd for cmd, _ in table_invocations()}
    in_help = listed_subcommands(help_text(capsys))
    assert in_help, "could not read the subcommands off memplan --help"
    assert in_table - in_help == set(), "README lists commands memplan does not have"
    assert in_help - in_table == set(), "memplan has commands README's table does not list"


def test_readme_command_table_options_exist(capsys):
    """Every option an invocation in README's table names is in that subcommand's ``--help``, and the
    solvers ``--solver`` lists are its choices."""
    for cmd, span in table_invocations():
        out = help_text(capsys, cmd)
        for opt in re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", span):
            assert re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", out), f"{span!r}: {opt} not in memplan {cmd} --help"
        listed = re.search(r"--solver ([\w|]+[\w])", span)
        if listed:
            choices = re.search(r"--solver \{([\w,]+)\}", out)
            assert choices and set(listed.group(1).split("|")) == set(choices.group(1).split(",")), span


def test_readme_bench_suites_are_the_cli(capsys):
    """The suites README names for ``memplan bench SUITE`` are exactly ``memplan bench --help``'s."""
    row = next(cell for cell in command_table() if "`memplan bench" in cell)
    text = read(README)
    line = next(ln for ln in text.splitlines() if ln.startswith(row))
    named = set(re.findall(r"`(\w+)`", line.split(" | ")[1]))
    assert named == listed_subcommands(help_text(capsys, "bench"))


def _doc_names() -> list[tuple[str, str]]:
    names = set()
    for path in [README, *sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))]:
        for m in re.finditer(r"`((?:memplan|runtime)(?:\.\w+)+)[`(\[]", read(path)):
            names.add((m.group(1), os.path.relpath(path, ROOT)))
    return sorted(names)


def resolve(dotted: str) -> bool | str:
    """Whether ``dotted`` works as a user writes it: attribute by attribute from the top package,
    importing a submodule only where the attribute is not already there (``memplan.verify`` is the
    function, so ``memplan.verify.check`` does not work). A missing optional dependency: its name."""
    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], 1):
        if not hasattr(obj, part):
            try:
                importlib.import_module(".".join(parts[:i + 1]))
            except ModuleNotFoundError as exc:
                if exc.name and exc.name.split(".")[0] not in ("memplan", "runtime"):
                    return exc.name
            except ImportError:
                pass
            if not hasattr(obj, part):
                return False
        obj = getattr(obj, part)
    return True


def test_resolve_catches_a_function_shadowing_its_module():
    assert resolve("memplan.verify") is True
    assert resolve("memplan.verify.check") is False  # the module's check is not the function's attribute
    assert resolve("memplan.optimize.candidates.budget_tiers") is True
    assert resolve("memplan.optimize.budget_tiers") is False


def test_names_in_docs_resolve():
    names = _doc_names()
    assert len(names) > 20
    broken = [(n, where) for n, where in names if resolve(n) is False]
    assert broken == []


def sh_commands(block: str) -> list[list[str]]:
    """The ``memplan ...`` command lines of a ``sh`` block, split as a shell would, comments dropped."""
    import shlex

    lines = [shlex.split(line, comments=True) for line in block.splitlines()]
    return [argv for argv in lines if argv]


def test_scheduling_doc_commands_run(tmp_path, monkeypatch, capsys):
    """docs/scheduling.md's shell block runs as written in an empty directory: every file it reads is
    one it (or ``memplan example``) wrote first, and every option is taken."""
    blocks = code_blocks(read(os.path.join(ROOT, "docs", "scheduling.md")), "sh")
    assert blocks
    monkeypatch.chdir(tmp_path)
    for argv in sh_commands(blocks[0]):
        assert argv[0] == "memplan", argv
        assert main(argv[1:]) == 0, (argv, capsys.readouterr().err)
    out = capsys.readouterr().out
    assert "makespan" in out and "speedup" in out


def test_format_doc_verify_message_is_what_verify_prints(tmp_path, monkeypatch, capsys):
    """The unsafe-plan line docs/format.md quotes is the start of what ``memplan verify`` prints for its
    worked example with the ``mm_k -> attn`` event removed (the file name included)."""
    import json

    text = read(os.path.join(ROOT, "docs", "format.md"))
    quoted = re.search(r"`(memplan: error: [^`]*unsafe plan: rule 2: [^`]*)`", text).group(1)
    section = text[text.index("## Worked example"):]
    graph_doc = json.loads(section.split("```json\n")[1].split("```", 1)[0])
    (tmp_path / "qkv.json").write_text(json.dumps(graph_doc))
    monkeypatch.chdir(tmp_path)
    assert main(["plan", "qkv.json", "-o", "full.json", "--streams", "3", "-q"]) == 0
    doc = json.loads((tmp_path / "full.json").read_text())
    doc["events"] = [e for e in doc["events"] if e != {"after": "mm_k", "before": "attn"}]
    (tmp_path / "plan.json").write_text(json.dumps(doc))
    capsys.readouterr()
    assert main(["verify", "qkv.json", "plan.json"]) == 2
    assert capsys.readouterr().err.startswith(quoted)


def _public_callables():
    import inspect

    for name in memplan.__all__:
        obj = getattr(memplan, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            yield name, obj


def test_public_api_has_docstrings():
    """``help(memplan.X)`` says what X is for: a dataclass without a docstring shows only its generated
    signature (``Plan(graph: str, ...)``), a function without one shows nothing."""
    bare = [name for name, obj in _public_callables()
            if not (obj.__doc__ or "").strip() or obj.__doc__.startswith(f"{obj.__name__}(")]
    assert bare == []


def test_public_functions_document_their_keyword_options():
    """Every keyword-only option of a public function is named in its docstring, so an option added
    to a signature cannot go undocumented (``plan()`` sends its reader to ``plan_graph`` for all of them)."""
    import inspect

    missing = []
    for name, obj in _public_callables():
        if inspect.isfunction(obj):
            doc = inspect.getdoc(obj) or ""
            for p in inspect.signature(obj).parameters.values():
                if p.kind is p.KEYWORD_ONLY and f"``{p.name}``" not in doc:
                    missing.append(f"{name}: {p.name}")
    assert missing == []


def test_format_doc_names_every_bench_list_option(capsys):
    """docs/format.md's limits name every ``memplan bench`` option that takes a set of values (each at
    most once): a list option added to a suite is added to the rule's list too."""
    text = read(os.path.join(ROOT, "docs", "format.md"))
    cell = re.search(r"a list option \(([^)]*)\) is a set", text).group(1)
    named = set(re.findall(r"`(--[\w-]+)`", cell))
    listed = set()
    for suite in listed_subcommands(help_text(capsys, "bench")):
        out = help_text(capsys, "bench", suite)
        options = re.split(r"\n  (?=-)", out.split("options:", 1)[1])
        for entry in options:
            opt = re.match(r"(--[\w-]+)", entry.strip())
            if opt and ("each at most once" in " ".join(entry.split()) or re.search(r"\.\.\.\]", entry)):
                listed.add(opt.group(1))
    assert listed, "could not read the list options off memplan bench --help"
    assert listed - named == set()


def test_readme_api_table_is_memplan_all():
    """README's "Python API" table names every name ``memplan.__all__`` exports, and each name in its
    first column is one of them (a name dropped from the package, or added without a line, fails)."""
    text = read(README)
    section = text[text.index("## Python API"):]
    section = section[:section.index("\n## ", 1)]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    listed = {name for row in rows for name in re.findall(r"`(\w+)`", row.split(" | ")[0])}
    mentioned = set(re.findall(r"`(\w+)`", section))
    assert listed - set(memplan.__all__) == set(), "README's API table names what memplan does not export"
    assert set(memplan.__all__) - mentioned == set(), "memplan exports names README's API table leaves out"


def test_format_doc_multi_device_excerpt_is_what_memplan_plan_writes(tmp_path, monkeypatch):
    """docs/format.md's multi-device plan excerpt is ``memplan plan`` of the bundled chain graph over two
    devices: its fields in the file's order, its order and events, and every tensor entry it shows."""
    import json

    text = read(os.path.join(ROOT, "docs", "format.md"))
    section = text[text.index("## Multi-device plans"):]
    excerpt = json.loads(section.split("```json\n")[1].split("```", 1)[0])
    monkeypatch.chdir(tmp_path)
    assert main(["example", "-o", "ex"]) == 0
    assert main(["plan", "ex/chain.json", "-o", "plan.json", "--devices", "2", "--graph-out", "split.json",
                 "-q"]) == 0
    doc = json.loads((tmp_path / "plan.json").read_text())
    assert [k for k in doc if k in excerpt] == list(excerpt)
    for key, value in excerpt.items():
        if key == "tensors":
            shown = [t for t in value if t != "..."]
            assert shown and all(t in doc["tensors"] for t in shown), shown
        else:
            assert doc[key] == value, key


def test_benchmarks_doc_device_rows_are_what_bench_devices_measures():
    """docs/benchmarks.md's ``memplan bench devices`` table: its 1B rows (the 8B ones take longer) are what
    the suite measures now, cell by cell as the suite prints them."""
    from memplan.benchmarks.devices import measure, model_graph

    text = read(os.path.join(ROOT, "docs", "benchmarks.md"))
    section = text[text.index("## Pipeline splits over devices"):]
    rows = [line.strip("| ").split(" | ") for line in section.splitlines() if line.startswith("| llama-1b")]
    assert len(rows) == 4
    singles: dict = {}
    for label, n, balance, costs, weights, arenas, single, copy_kib, xev, step, single_us in rows:
        name = label.removeprefix("llama-")
        graph, _ = model_graph(name)
        if name not in singles:
            singles[name] = memplan.plan(graph)
        r = measure(graph, label, int(n), single=singles[name])
        got = [f"{r['balance']:.3f}", "/".join(f"{c:.0f}" for c in r["stage_cost_us"]),
               "/".join(f"{w / (1 << 30):.2f}" for w in r["weight_bytes"]),
               "/".join(f"{a / (1 << 20):.2f}" for a in r["device_arena_bytes"]),
               f"{r['single_arena_bytes'] / (1 << 20):.2f}", f"{r['copy_bytes'] / 1024:.1f}", str(r["cross_events"]),
               f"{r['makespan_us']:.1f}", f"{r['single_makespan_us']:.1f}"]
        assert got == [balance, costs, weights, arenas, single, copy_kib, xev, step, single_us], (label, n)
