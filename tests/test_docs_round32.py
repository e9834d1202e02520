"""The commands and code users copy from README.md and docs/*.md run as written and print what the docs say.

Which blocks: every fenced ``sh`` or ``python`` block (and every untyped block whose lines are ``memplan``
commands) of README.md and the user docs, that is docs/*.md but for the lab notebook docs/runtime_log.md.
``BLOCKS`` names each one by (file, first line) and says what runs it: a test here, another test file, or
why it is skipped (a GPU, or a run of minutes). A block added or changed without a line there fails
``test_every_doc_block_is_accounted_for``, so a new example cannot drift unchecked.

Beside the blocks: numbers the docs quote from cheap runs (plans are deterministic), every option a
documented command names, every error class the docs name, and the install facts README states.
CPU only, about 20 s on two cores; the tutorial runs in tests/test_viz.py, older checks in tests/test_docs.py.
"""

from __future__ import annotations

import glob
import importlib
import importlib.util
import os
import re
import shlex

import pytest
from needs import missing, need

import memplan
from memplan.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER_DOCS = ["README.md", *sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md"))
                                  if not p.endswith("runtime_log.md"))]

GPU = "skipped: needs an NVIDIA GPU and pycuda (GPU tests, marked gpu, run it)"
LONG = "skipped: a run of minutes"
TEMPLATE = "a usage template with placeholders (MODEL.onnx, module), not a command to run as is"

#: (file, first line of a block) -> what checks it. A block missing here fails the accounting test.
BLOCKS = {
    ("README.md", "python3 -m venv .venv && . .venv/bin/activate && pip install -e \".[dev,onnx,plot,torch]\" && "
                  "memplan example -o ex && memplan plan ex/llama-1b-decode.json -o plan.json --streams auto && "
                  "memplan verify ex/llama-1b-decode.json plan.json && memplan show plan.json"):
        "test_readme_quick_start_runs",
    ("README.md", "python -m pytest -q -n 2 --dist loadfile"): "skipped: the whole suite (minutes); CI runs it",
    ("README.md", "import memplan"): "test_docs.py::test_readme_python_runs, test_readme_python_plan_file_is_byte_identical",
    ("README.md", "# an executor's view of a plan: where each tensor lives, what each node waits on"):
        "test_newuser_round33.py::test_readme_executor_block_runs",
    ("README.md", "# when may a tensor's bytes be reused? (the plan's own order, streams and events; no re-planning)"):
        "test_reuse_round34.py::test_readme_reuse_block_runs",
    ("docs/aten.md", "from runtime.aten import compile"): "test_aten_doc_compile_block_runs_on_cpu",
    ("docs/aten.md", "python -m runtime.aten.bench --out docs/aten_bench.json          # all models, torch.compile "
                     "on four"): LONG + " (GPU; the --device cpu --quick line takes about 2 minutes)",
    ("docs/aten.md", "python -m runtime.aten.bench --models inception_v3-b1,googlenet-b1,inception_v3-b8,googlenet-b8 "
                     "--compile none"): GPU.replace("and pycuda ", "") + "; test_aten_bench_round32.py checks its "
                                        "before / after columns",
    ("docs/benchmarks.md", "memplan bench planners --corpus minimalloc --time-limit 60 --json minimalloc.json"):
        LONG + " (60 s exact solves per problem); test_benchmarks_doc_graph_table_heuristic_columns checks the "
               "graph table's heuristic columns",
    ("docs/benchmarks.md", "memplan bench devices                 # --models, --devices 2 4, --streams N|auto, "
                           "--solver, --json OUT"): "test_docs.py::test_benchmarks_doc_device_rows_are_what_bench_"
                                                    "devices_measures",
    ("docs/benchmarks.md", "memplan bench scale --nodes 100000 1000000 --wide 5000 40000 --mode serial auto "
                           "--json scale.json"): LONG,
    ("docs/benchmarks.md", "mkdir /tmp/before && git archive a9c8078 | tar -x -C /tmp/before     # the tree before, "
                           "beside this one"): LONG + " (and needs the project's git history)",
    ("docs/benchmarks.md", "memplan bench scale --nodes --inplace 2000 8000 20000 50000 --inplace-shape one spread "
                           "views --mode serial --solver size"): LONG,
    ("docs/benchmarks.md", "memplan bench scale --nodes --chain 2000 5000 10000 20000 100000 --mode serial auto"):
        LONG,
    ("docs/format.md", "memplan plan qkv.json -o plan.json --streams 3"):
        "test_cli.py::test_format_doc_worked_example_is_what_memplan_plan_writes, test_format_doc_qkv_commands_run",
    ("docs/importers.md", "memplan import MODEL.onnx -o GRAPH.json [--batch N] [--dim NAME=VALUE ...] [--name NAME] "
                          "[--alignment BYTES] [--constant-initializers] [-q]"): TEMPLATE + "; test_documented_options_exist checks its options",
    ("docs/importers.md", "from memplan.importers.onnx import import_onnx"): TEMPLATE + "; test_importers_doc_"
                                                                            "templates_match_the_signatures",
    ("docs/importers.md", "import memplan"): TEMPLATE + "; test_importers_doc_templates_match_the_signatures",
    ("docs/importers.md", "d=$(python -c \"import onnx, os; print(os.path.dirname(onnx.__file__))\")/backend/test/"
                          "data/light"): "test_importers_doc_light_models_table (the quick models; all 9 take ~30 s)",
    ("docs/runtime.md", "python3 -m runtime.bench --configs 1b,8b --batches 1,4,16,64 --rounds 2 --no-extra"): GPU,
    ("docs/runtime.md", "python -m pytest -q -m gpu tests/test_runtime_gpu.py"): GPU,
    ("docs/runtime.md", "import memplan"): GPU + "; test_runtime_doc_python_block_plans_on_cpu runs its CPU part",
    ("docs/scheduling.md", "import memplan"): "test_docs.py::test_scheduling_doc_python_runs",
    ("docs/scheduling.md", "memplan example -o ex                       # ex/llama-1b-decode.json is the graph g "
                           "above"): "test_docs.py::test_scheduling_doc_commands_run",
}
#: docs whose blocks another test file runs in full
RUN_ELSEWHERE = {"docs/tutorial.md": "test_viz.py::test_tutorial_runs, test_tutorial_torch_block_runs"}


def read(rel: str) -> str:
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


def fenced(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block, in order."""
    return re.findall(r"^```(\w*)\n(.*?)^```", text, re.S | re.M)


def runnable_blocks(rel: str) -> list[str]:
    """The blocks of ``rel`` a user runs: ``sh`` and ``python`` ones, and untyped ones of shell commands."""
    out = []
    for lang, body in fenced(read(rel)):
        first = body.lstrip().split("\n", 1)[0]
        if lang in ("sh", "python") or (lang == "" and re.match(r"(memplan |python3? -m |mkdir |for )", first)):
            out.append(body)
    return out


def first_line(block: str) -> str:
    return block.lstrip().split("\n", 1)[0].rstrip()


def block(rel: str, start: str) -> str:
    found = [b for b in runnable_blocks(rel) if first_line(b) == start]
    assert len(found) == 1, f"{rel}: no single block starting {start!r}"
    return found[0]


def memplan_commands(text: str) -> list[list[str]]:
    """The ``memplan ...`` commands of a shell block or line, split as a shell would (``&&`` chains split,
    comments dropped), each as argv without the program name."""
    out = []
    for line in text.splitlines():
        for part in line.split("&&"):
            argv = shlex.split(part, comments=True)
            if argv and argv[0] == "memplan":
                out.append(argv[1:])
    return out


def run_cli(capsys, argv: list[str]) -> str:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, (argv, err)
    return out


# ---------------------------------------------------------------------------------------------- blocks


def test_every_doc_block_is_accounted_for():
    """Each runnable block of README.md and docs/*.md is run here or elsewhere, or skipped with a reason."""
    seen = set()
    for rel in USER_DOCS:
        if rel in RUN_ELSEWHERE:
            continue
        for body in runnable_blocks(rel):
            seen.add((rel, first_line(body)))
    assert seen - set(BLOCKS) == set(), "a doc block no test runs: add it to BLOCKS (or fix its first line)"
    assert set(BLOCKS) - seen == set(), "BLOCKS names a block the docs no longer have"
    for where in RUN_ELSEWHERE:
        assert runnable_blocks(where), where


SKIPPED = sorted((f, k, why) for (f, k), why in BLOCKS.items() if why.startswith("skipped") or TEMPLATE in why)


def test_doc_blocks_not_run_here_still_exist():
    """The blocks no CPU test runs (a GPU, minutes, placeholders: each one's reason is in BLOCKS) are still in
    the docs as listed. Not a pytest skip each: CI's skips are kept for tests that need a GPU."""
    assert SKIPPED
    for doc, start, why in SKIPPED:
        assert why and block(doc, start), (doc, start)


def test_readme_quick_start_runs(tmp_path, monkeypatch, capsys):
    """README's quick start, past the install steps: its memplan commands in an empty directory."""
    text = block("README.md", next(k for f, k in BLOCKS if f == "README.md" and k.startswith("python3 -m venv")))
    commands = memplan_commands(text)
    assert [c[0] for c in commands] == ["example", "plan", "verify", "show"]
    monkeypatch.chdir(tmp_path)
    outs = [run_cli(capsys, argv) for argv in commands]
    assert outs[2].strip() == "plan.json: safe"
    shown = dict(line.split(None, 1) for line in outs[3].splitlines()[:6])
    plan = memplan.load_plan("plan.json")
    assert shown["arena"].startswith(f"{plan.arena_bytes} B") and shown["streams"].startswith(f"{plan.streams} ")
    assert plan.streams > 1 and plan.arena_bytes == plan.lower_bound_bytes


def test_readme_python_plan_file_is_byte_identical(tmp_path, monkeypatch, capsys):
    """README: ``plan.save("plan.json")  # byte-identical for the same input and options``."""
    code = fenced(read("README.md"))
    body = next(b for lang, b in code if lang == "python")
    assert "byte-identical" in body
    monkeypatch.chdir(tmp_path)
    files = []
    for _ in range(2):
        exec(compile(body, "README.md", "exec"), {"__name__": "__readme__"})
        files.append((tmp_path / "plan.json").read_bytes())
    capsys.readouterr()
    assert files[0] == files[1] and b"seconds" not in files[0]


def test_format_doc_qkv_commands_run(tmp_path, monkeypatch, capsys):
    """docs/format.md's worked example: its three commands run on the graph it shows, ``verify`` prints the
    line its comment quotes, and ``show`` the arena and bound the plan excerpt gives."""
    import json

    text = read("docs/format.md")
    section = text[text.index("## Worked example"):]
    graph_doc = json.loads(section.split("```json\n")[1].split("```", 1)[0])
    plan_doc = json.loads(section.split("```json\n")[2].split("```", 1)[0])
    (tmp_path / "qkv.json").write_text(json.dumps(graph_doc))
    monkeypatch.chdir(tmp_path)
    body = block("docs/format.md", "memplan plan qkv.json -o plan.json --streams 3")
    outs = [run_cli(capsys, argv) for argv in memplan_commands(body)]
    quoted = re.search(r"#\s*(.+)$", body.splitlines()[1]).group(1)
    assert outs[1].strip() == quoted
    shown = dict(line.split(None, 1) for line in outs[2].splitlines()[:6])
    assert shown["arena"].startswith(f"{plan_doc['arena_bytes']} B")
    assert shown["lower"] == f"bound  {plan_doc['lower_bound_bytes']} B (10.00 KiB)"
    assert shown["streams"].startswith(f"{plan_doc['streams']} ") and shown["events"] == str(len(plan_doc["events"]))


def test_aten_doc_compile_block_runs_on_cpu():
    """docs/aten.md's ``compile`` block, with a small module and input bound to its names: on a CPU it runs
    (one stream, no graph) and gives what eager gives; each attribute it names is there."""
    torch = need("torch")
    body = block("docs/aten.md", "from runtime.aten import compile")
    module = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 16)).eval()
    x = torch.randn(4, 16)
    scope = {"module": module, "x": x}
    exec(compile(body, "aten.md", "exec"), scope)
    step = scope["step"]
    assert torch.equal(scope["y"], module(x))
    memplan.verify(step.graph, step.plan)
    assert step.arena_bytes == step.plan.arena_bytes
    stats = step.stats
    assert stats.launches == len(step.graph.nodes) and stats.streams == 1 and stats.events == 0


def test_runtime_doc_python_block_plans_on_cpu():
    """docs/runtime.md's executor block needs a GPU; its planning lines run on a CPU, and the executor and
    model helpers it calls take what it passes."""
    import inspect

    body = block("docs/runtime.md", "import memplan")
    cpu_part, gpu_part = body.split("ex = Executor(", 1)
    scope: dict = {}
    exec(compile(cpu_part, "runtime.md", "exec"), scope)
    plan, g = scope["plan"], scope["g"]
    memplan.verify(g, plan)
    assert plan.streams > 1
    from runtime.executor import Executor

    params = inspect.signature(Executor).parameters
    assert {"weights", "inputs"} <= set(params) and list(params)[:2] == ["graph", "plan"]
    for method in re.findall(r"ex\.(\w+)\(", gpu_part):
        assert callable(getattr(Executor, method, None)), method


def test_importers_doc_templates_match_the_signatures():
    """docs/importers.md's API templates call the importers with keywords they take."""
    import inspect

    from memplan.importers.onnx import import_onnx

    onnx_body = block("docs/importers.md", "from memplan.importers.onnx import import_onnx")
    for kw in re.findall(r"(\w+)=", onnx_body):
        assert kw in inspect.signature(import_onnx).parameters, kw
    torch_body = block("docs/importers.md", "import memplan")
    assert "memplan.from_torch(module, example_inputs)" in torch_body
    assert list(inspect.signature(memplan.from_torch).parameters)[:2] == ["module", "example_inputs"]


def _table(text: str, header_start: str) -> list[list[str]]:
    """The body rows of the markdown table whose header row starts with ``header_start``, cells stripped."""
    lines = text[text.index(header_start):].splitlines()
    rows = []
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


def test_importers_doc_light_models_table(tmp_path):
    """docs/importers.md's table of the onnx wheel's light models, for the quick ones (the sh block's
    import, serial plan and ``--streams auto`` plan, and ``memplan.simulate``), cell by cell."""
    onnx = need("onnx")
    from memplan.importers.onnx import import_onnx

    folder = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
    rows = {r[0]: r for r in _table(read("docs/importers.md"), "| model | nodes | serial arena")}
    assert len(rows) == 9
    for name in ("bvlc_alexnet", "squeezenet", "zfnet512", "vgg19"):
        path = os.path.join(folder, f"light_{name}.onnx")
        if not os.path.exists(path):
            missing(f"{path} from the onnx wheel's test models")
        g = import_onnx(path)
        serial, auto = memplan.plan(g), memplan.plan(g, streams="auto")
        mib = 1 << 20
        got = [name, str(len(g.nodes)), f"{serial.arena_bytes / mib:.2f}", f"{serial.lower_bound_bytes / mib:.2f}",
               str(auto.streams), str(len(auto.events)), f"{auto.arena_bytes / mib:.2f}",
               f"{auto.lower_bound_bytes / mib:.2f}", f"{memplan.simulate(g, serial).makespan_us:.0f}",
               f"{memplan.simulate(g, auto).makespan_us:.0f}"]
        assert got == rows[name], name


def test_importers_doc_torch_compare_rows_memplan_column(capsys):
    """docs/importers.md's ``torch_compare`` table: memplan's arena for the MLP at batch 1 and 8 (the torch
    columns need a CUDA machine)."""
    need("torch")
    import json

    from memplan.importers import torch_compare

    rows = _table(read("docs/importers.md"), "| model | batch | memplan arena (MiB)")
    mlp = {int(r[1]): r[2] for r in rows if r[0] == "mlp"}
    assert set(mlp) == {1, 8, 32}
    for batch in (1, 8):
        assert torch_compare.main(["mlp", "--batch", str(batch), "--device", "cpu"]) in (0, None)
        line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert f"{line['memplan_arena_bytes'] / (1 << 20):.2f}" == mlp[batch], batch


# ------------------------------------------------------------------------------------- quoted numbers


def _rounded_as(doc: str, value: float) -> str:
    """``value`` printed with as many decimals as the doc's ``doc`` has."""
    decimals = len(doc.split(".")[1]) if "." in doc else 0
    return f"{value:.{decimals}f}"


SCHEDULE_GRAPHS = {"Llama 16L decode b1": "llama-L16-b1", "MoE 8 experts": "moe8", "MoE 32 experts": "moe32",
                   "Q/K/V": "qkv", "fanout15": "fanout15"}
SCHEDULE_METHODS = {"serial": "serial", "Q/K/V-only (llama.cpp)": "qkv-only", "Q/K/V-only": "qkv-only",
                    "graph_optimize": "graph_optimize", "graph_optimize @1.05x": "graph_optimize@1.05x",
                    "@1.05x": "graph_optimize@1.05x"}


def test_scheduling_doc_numbers_table(monkeypatch, capsys):
    """docs/scheduling.md's ``memplan bench schedule`` table, for every graph but the slow ones (Llama b32
    and the 400/2000-node fan-outs), is what the suite computes now."""
    import argparse

    from memplan.benchmarks import schedule
    from memplan.examples import LlamaConfig, fanout_join15, llama, moe, qkv_attention

    text = read("docs/scheduling.md")
    rows, label = [], None
    for cells in _table(text, "| graph | nodes | method"):
        label = cells[0] or label
        if label in SCHEDULE_GRAPHS:
            rows.append((SCHEDULE_GRAPHS[label], SCHEDULE_METHODS[cells[2]], cells[3:]))
    assert len(rows) == 11
    monkeypatch.setattr(schedule, "graphs", lambda layers, quick: [
        llama(LlamaConfig(layers=layers, batch=1)), moe(8), moe(32), qkv_attention(), fanout_join15()])
    args = argparse.Namespace(layers=16, streams="auto", event_us=None, budget=1.05, solver="auto", quick=False)
    got = {(r["graph"], r["method"]): r for r in schedule.run(args)}
    capsys.readouterr()
    for graph, method, (streams, events, makespan, speedup, ratio) in rows:
        r = got[graph, method]
        cells = [str(r["streams"]), str(r["events"]), _rounded_as(makespan, r["makespan_us"]),
                 _rounded_as(speedup.strip("*"), r["speedup"]), _rounded_as(ratio, r["arena_vs_serial"])]
        assert cells == [streams, events, makespan, speedup.strip("*"), ratio], (graph, method)


def test_scheduling_doc_event_latency_table():
    """docs/scheduling.md: the b1 columns of the event-latency table (graph_optimize and Q/K/V-only), and
    the bound it quotes (1250.9 / 930.9 us at free events)."""
    from memplan.examples import LlamaConfig, llama
    from memplan.optimize.baselines import qkv_only

    g = llama(LlamaConfig(layers=16, batch=1))
    text = read("docs/scheduling.md")
    assert "(b1: 1250.9 / 930.9 us" in text
    for cells in _table(text, "| event us | graph_optimize b1"):
        event_us = float(cells[0].split()[0])
        model = memplan.CostModel(event_us=event_us)
        best = memplan.simulate(g, memplan.graph_optimize(g, 8, cost_model=model), model)
        qkv = memplan.simulate(g, qkv_only(g), model)
        assert _rounded_as(cells[1].split()[0], best.speedup) == cells[1].split()[0], event_us
        assert _rounded_as(cells[3], qkv.speedup) == cells[3], event_us
        if event_us == 0:
            assert (f"{best.serial_us:.1f}", f"{best.makespan_us:.1f}") == ("1250.9", "930.9")


def test_scheduling_doc_hand_derived_examples():
    """docs/scheduling.md's Q/K/V (4 events, 56 us) and fanout15 (4 events and 51 us at 1 us/event, 110 us
    serial; 2 streams: 2 events, 70 us) numbers, and the MoE-32 budget curve."""
    from memplan.examples import fanout_join15, moe, qkv_attention

    text = read("docs/scheduling.md")
    assert "2 + 20 + 10 + 20 us of work" in text and "51 us at 1 us/event (110 us serial)" in text
    assert "Two streams need 2 events and take 70 us" in text
    q = qkv_attention()
    s = memplan.graph_optimize(q, 3)
    assert (len(s.events), memplan.simulate(q, s).makespan_us) == (4, 2 + 20 + 10 + 20 + 2 * 2.0)
    f, one = fanout_join15(), memplan.CostModel(event_us=1.0)
    s3, s2 = (memplan.graph_optimize(f, k, cost_model=one) for k in (3, 2))
    sim3, sim2 = memplan.simulate(f, s3, one), memplan.simulate(f, s2, one)
    assert (len(s3.events), sim3.makespan_us, sim3.serial_us) == (4, 51.0, 110.0)
    assert (len(s2.events), sim2.makespan_us) == (2, 70.0)

    curve = re.search(r"1\.05x and 1\.2x → .*?unbounded → 8 streams, arena ([\d.]+)x, ([\d.]+)x", text, re.S)
    assert curve
    g = moe(32)
    serial = memplan.plan(g).arena_bytes
    # (round 79: the budgets take the low-memory order on several streams, ``budget.low_memory_streams``)
    expect = {1.05: (4, "0.75", "3.87"), 1.2: (4, "0.75", "3.87"), 1.5: (6, "1.28", "5.32"),
              None: (8, curve.group(1), curve.group(2))}
    assert "over 4 streams (`low-memory-k4`" in text and "arena 0.75x (below the listed serial order's), 3.87x" in text
    assert "1.5x → the same on 6 streams, arena 1.28x, 5.32x" in text
    for factor, (streams, arena, speedup) in expect.items():
        p = memplan.plan(g, streams="auto", memory_budget=None if factor is None else int(factor * serial))
        sched = p.solver["schedule"]
        assert (p.streams, f"{p.arena_bytes / serial:.2f}", f"{sched['speedup']:.2f}") == (streams, arena, speedup)
        if factor is not None:
            assert sched["candidate"] == f"low-memory-k{streams}"


def test_format_doc_fanout15_walkthrough():
    """docs/format.md "When streams cost memory": serially arena 4096 = bound; with ``b2``, ``b3`` on streams
    1 and 2 the four events it lists, arena and bound 5120; the serial offsets on that schedule break rule 3
    naming ``s`` and ``t15``."""
    from memplan.examples import fanout_join15
    from memplan.verify import check

    text = read("docs/format.md")
    assert "`src -> b2`, `src -> b3`, `b2 -> j15`, `b3 -> j`" in text and "the arena is 5120" in text
    g = fanout_join15()
    serial = memplan.plan(g)
    assert serial.arena_bytes == serial.lower_bound_bytes == 4096
    stream_of = {"src": 0, "b1": 0, "b2": 1, "b3": 2, "j15": 0, "j": 0}
    sched = memplan.schedule_with_events(g, [n.id for n in g.nodes], stream_of)
    assert [(e.after, e.before) for e in sched.events] == [("src", "b2"), ("src", "b3"), ("b2", "j15"), ("b3", "j")]
    p = memplan.plan(g, sched)
    assert p.arena_bytes == p.lower_bound_bytes == 5120
    doc = p.to_dict()
    doc.update(tensors=serial.to_dict()["tensors"], arena_bytes=4096, lower_bound_bytes=4096)
    findings = check(g, memplan.plan_from_dict(doc))
    assert [rule for rule, _ in findings] == [3] and "'s' and 't15'" in findings[0][1]


def test_benchmarks_doc_graph_table_heuristic_columns(capsys):
    """docs/benchmarks.md's graph table, examples and Llama rows: buffers, streams, lower bound and the
    ggml, size and greedy arenas (the exact solvers' columns need 60 s limits)."""
    from memplan.benchmarks import planners
    from memplan.examples import LlamaConfig, bundled, llama

    rows = [r for r in _table(read("docs/benchmarks.md"), "| corpus | graph | buffers")
            if r[0] in ("examples", "llama")]
    assert len(rows) == 20
    graphs = [("examples", stem, g) for stem, g in bundled().items()]
    graphs += [("llama", g.name, g) for g in (llama(LlamaConfig(layers=16, batch=b, name=f"llama-{kind}"))
                                             for b, kind in ((1, "decode"), (32, "prefill")))]
    got: dict = {}
    for part, name, g in graphs:
        for r in planners._graph_rows(part, name, g, ["ggml", "size", "greedy"], 60.0, 4):
            got.setdefault((r["corpus"], r["problem"], r["streams"]), {"buffers": r["buffers"]})[r["solver"]] = r
    capsys.readouterr()
    for corpus, graph, buffers, streams, bound, ggml, size, greedy, *_ in rows:
        cell = got[corpus, graph, int(streams)]
        assert str(cell["buffers"]) == buffers and str(cell["size"]["lower_bound"]) == bound, (graph, streams)
        arenas = [str(cell[s]["arena"]) if cell[s]["status"] != "n/a" else "-" for s in ("ggml", "size", "greedy")]
        assert arenas == [ggml, size, greedy], (graph, streams)


def test_benchmarks_doc_smoke_run_runs(monkeypatch, capsys):
    """docs/benchmarks.md: "a quick smoke run of the CSV path" runs in a plain clone."""
    text = read("docs/benchmarks.md")
    span = re.search(r"`(memplan bench planners --minimalloc tests/data/minimalloc [^`]*)`", text).group(1)
    monkeypatch.chdir(ROOT)
    out = run_cli(capsys, shlex.split(span)[1:])
    assert re.search(r"^minimalloc A +154 +1 ggml", out, re.M) and re.search(r"^minimalloc A +154 +1 size", out, re.M)


# ------------------------------------------------------------------------------ options, names, errors


def _command_spans() -> list[tuple[str, str]]:
    """(doc, text) of every code span and block line of the user docs that holds a command."""
    found = []
    for rel in USER_DOCS:
        text = read(rel)
        lines = re.findall(r"`([^`\n]+)`", text)
        for _, body in fenced(text):
            lines += body.splitlines()
        found += [(rel, line) for line in lines if re.search(r"\bmemplan [a-z]|python3? -m ", line)]
    return found


def _help(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as info:
        main([*argv, "--help"])
    assert info.value.code == 0, argv
    return capsys.readouterr().out


def _module_options(module: str) -> str:
    """The source that declares ``python -m module``'s options: the module's file and the shared helpers."""
    spec = importlib.util.find_spec(module)
    assert spec and spec.origin, f"python -m {module}: no such module"
    text = open(spec.origin, encoding="utf-8").read()
    for helper in ("runtime/tool_args.py", "memplan/argtypes.py"):
        text += read(helper)
    return text


def _options(rest: str) -> list[str]:
    return re.findall(r"(?<![\w-])(--[a-z][\w-]*)", rest.split("#")[0])


def test_documented_options_exist(capsys):
    """Every ``--option`` a documented ``memplan ...`` command names is in that command's ``--help``, and
    every one a ``python -m X ...`` command names is declared by X; every such X exists."""
    bad, checked = [], 0
    helps: dict = {}
    for rel, line in _command_spans():
        for m in re.finditer(r"\bmemplan ((?:bench )?[a-z]+)\b([^;&|`]*)", line):
            sub = m.group(1).split()
            if sub[0] not in ("plan", "verify", "show", "example", "bench", "import", "draw", "trace", "simulate",
                              "csv"):
                continue   # prose ("memplan graph", "memplan plans")
            key = tuple(sub)
            if key not in helps:
                helps[key] = _help(capsys, sub)
            for opt in _options(m.group(2)):
                checked += 1
                if not re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", helps[key]):
                    bad.append((rel, line, opt))
        for m in re.finditer(r"python3? -m ([\w.]+)([^;&|`]*)", line):
            module = m.group(1)
            if module in ("pytest", "venv", "pip"):
                continue
            if module not in helps:
                helps[module] = _module_options(module)
            for opt in _options(m.group(2)):
                checked += 1
                if f'"{opt}"' not in helps[module]:
                    bad.append((rel, line, opt))
    assert checked > 100
    assert bad == []


DOC_ERRORS = {"memplan.errors": ["MemplanError", "GraphError", "ScheduleError", "PlanFormatError", "InputFormatError",
                                 "SolverError", "BudgetError", "OptionError", "UnsafePlan", "PlanMismatch", "ExecutorError"],
              "runtime.aten.errors": ["AtenExecutorError"], "runtime.kernels.ops": ["KernelError"],
              "runtime.cuda_util": ["CudaError"]}


def test_error_classes_the_docs_name_exist():
    """Every ``...Error`` (and ``UnsafePlan``, ``PlanMismatch``) a user doc names is a class where
    ``DOC_ERRORS`` says, memplan's all under ``MemplanError`` as README says."""
    named = set()
    for rel in USER_DOCS:
        named |= set(re.findall(r"\b([A-Z]\w*Error|UnsafePlan|PlanMismatch)\b", read(rel)))
    named -= {"ImportError", "RecursionError", "MemoryError", "OutOfMemoryError", "RuntimeError", "TypeError",
              "ValueError", "IndexError", "KeyError", "AttributeError", "NotImplementedError", "OSError"}
    known = {name for names in DOC_ERRORS.values() for name in names}
    assert named - known == set(), "the docs name an error class DOC_ERRORS does not place"
    for module, names in DOC_ERRORS.items():
        mod = importlib.import_module(module)
        for name in names:
            assert isinstance(getattr(mod, name), type) and issubclass(getattr(mod, name), Exception), name
    from memplan import errors

    for name in DOC_ERRORS["memplan.errors"]:
        assert issubclass(getattr(errors, name), errors.MemplanError), name


def test_readme_error_classes_mean_what_it_says():
    """README's ``MemplanError`` row: each class is raised for what it names."""
    from memplan import errors
    from memplan.examples import qkv_attention

    text = read("README.md")
    row = next(line for line in text.splitlines() if line.startswith("| `MemplanError`"))
    listed = re.findall(r"`(\w+)`", row.split(" | ", 1)[1])
    assert set(listed) == set(DOC_ERRORS["memplan.errors"]) - {"MemplanError"}
    g = qkv_attention()
    b = memplan.GraphBuilder("bad")
    b.input("x", 16)
    with pytest.raises(errors.GraphError, match="'n'.*'nope'|'nope'.*'n'"):
        b.node("n", "UNARY", ["nope"], b.output("y", 16))
        b.build()
    with pytest.raises(errors.OptionError, match="'bogus'"):
        memplan.plan(g, bogus=1)
    with pytest.raises(errors.ScheduleError, match="max_events"):
        memplan.plan(g, max_events=3)
    with pytest.raises(errors.BudgetError, match="budget of 1 B"):
        memplan.plan(g, memory_budget=1)
    with pytest.raises(errors.SolverError, match="'nope'"):
        memplan.plan(g, solver="nope")
    with pytest.raises(errors.PlanFormatError, match=r"unknown format 'memplan\.plan/9'"):
        memplan.plan_from_dict({"format": "memplan.plan/9"})
    p = memplan.plan(g, streams=3).to_dict()
    p["events"] = [e for e in p["events"] if e != {"after": "mm_k", "before": "attn"}]
    with pytest.raises(errors.UnsafePlan, match="rule 2"):
        memplan.verify(g, memplan.plan_from_dict(p))


def test_readme_install_facts_are_setup_py():
    """README's "needs only ..." sentence names setup.py's install_requires, and its extras are setup.py's."""
    setup = read("setup.py")
    requires = re.findall(r'"([a-z][\w-]*)[<>=]', setup.split("install_requires=", 1)[1].split("]", 1)[0])
    extras = set(re.findall(r'^\s+"(\w+)": \[', setup, re.M))
    text = read("README.md")
    sentence = re.search(r"`memplan` needs only ([^;]+);", text).group(1)
    assert sorted(re.findall(r"\w+", sentence.replace(" and ", " "))) == sorted(requires)
    named = set(re.findall(r"`(\w+)`", text[text.index(sentence):].split("\n\n")[0]))
    assert extras <= named
    for spec in re.findall(r"pip install -e [\"']\.\[([\w,]+)\][\"']", text):
        assert set(spec.split(",")) <= extras, spec


def test_doc_commands_source_only_files_in_the_repository():
    """A documented command that sources or runs a script of the repository names one that is there (a
    machine's own setup script is no step a user can copy)."""
    bad = []
    for rel, line in _command_spans():
        for path in re.findall(r"(?:source|\.|bash|sh) (\.?[\w./-]+\.sh)\b", line):
            if not os.path.exists(os.path.join(ROOT, path)):
                bad.append((rel, path))
    assert bad == []


def test_documented_python_modules_exist():
    """Each ``python -m X`` the docs name is a module of this repository (or pytest/venv/pip)."""
    modules = {m for _, line in _command_spans() for m in re.findall(r"python3? -m ([\w.]+)", line)}
    for module in modules - {"pytest", "venv", "pip"}:
        assert importlib.util.find_spec(module) is not None, module


def test_aten_doc_sweep_model_count():
    """docs/aten.md's module table gives the sweep's list as "~N real models": within 5% of ``CASES``
    (it said ~390 when the list held 413)."""
    need("torch")
    from runtime.aten import sweep

    quoted = int(re.search(r"every output of ~(\d+) real models", read("docs/aten.md")).group(1))
    assert abs(len(sweep.CASES) - quoted) <= 0.05 * quoted, (quoted, len(sweep.CASES))


# ---------------------------------------------------------------------- GPU numbers: the docs agree


def _h200_section() -> str:
    text = read("docs/runtime.md")
    section = text[text.index("## Decode at batch 1 to 64 on the H200"):]
    return section[:section.index("\n### ")]


def _h200_rows() -> dict[tuple[str, int], list[str]]:
    """docs/runtime.md's H200 decode table: (config, batch) -> the other cells, bold marks dropped."""
    rows = _table(_h200_section(), "| config | batch | 1 stream ms")
    assert len(rows) == 8
    return {(r[0].lower(), int(r[1])): [c.strip("*") for c in r[2:]] for r in rows}


def test_runtime_doc_h200_table_is_its_raw_json():
    """docs/runtime.md's H200 decode table is, cell for cell, the summary of the raw JSON it links (GPU
    numbers cannot be rerun here; a table edited away from its measurement can be caught)."""
    import json

    raw_name = re.search(r"\[(runtime_bench_h200_\w+\.json)\]", _h200_section()).group(1)
    with open(os.path.join(ROOT, "docs", raw_name), encoding="utf-8") as f:
        summary = json.load(f)["summary_markdown"]
    raw = {(r[0], int(r[1])): r[2:] for r in _table(summary, "| config | batch |")}
    assert raw == _h200_rows()


def test_readme_gpu_numbers_are_runtime_docs():
    """README's "On a GPU" paragraph quotes docs/runtime.md's H200 table and docs/aten.md's goals, rounded."""
    text = read("README.md")
    para = text[text.index("## On a GPU"):text.index("## Layout")]
    para = " ".join(para.split())
    rows = _h200_rows()
    ms = {k: float(v[1]) for k, v in rows.items()}
    vs_compile = {k: float(v[7].rstrip("x")) for k, v in rows.items()}
    vs_one = {k: float(v[2].rstrip("x")) for k, v in rows.items()}
    eight = re.search(r"8B-like decode takes ([\d.]+) ms at batch 1 \(([\d.]+)x faster than torch\.compile in a CUDA "
                      r"graph\), ([\d.]+) ms at 16 tokens \(([\d.]+)x\) and ([\d.]+) ms at 64 \(([\d.]+)x\)", para)
    one = re.search(r"1B-like ([\d.]+) / ([\d.]+) / ([\d.]+) ms \(([\d.]+)x / ([\d.]+)x / ([\d.]+)x\)", para)
    assert eight and one, "README's GPU sentence changed shape: update this test with it"
    for config, m in (("8b", eight.groups()), ("1b", (one[1], one[4], one[2], one[5], one[3], one[6]))):
        for i, batch in enumerate((1, 16, 64)):
            assert m[2 * i] == f"{ms[config, batch]:.2f}", (config, batch)
            assert m[2 * i + 1] == f"{vs_compile[config, batch]:.2f}", (config, batch)
    streams = re.search(r"beat one at the same arena by ([\d.]+)x \(8B\) and ([\d.]+)x \(1B\) at batch 1 .*? by "
                        r"([\d.]+)-([\d.]+)x at 16 and 64 tokens", para)
    assert streams.group(1, 2) == (f"{vs_one['8b', 1]:.2f}", f"{vs_one['1b', 1]:.2f}")
    wide = [vs_one[c, b] for c in ("8b", "1b") for b in (16, 64)]
    assert streams.group(3, 4) == (f"{min(wide):.2f}", f"{max(wide):.2f}")
    aten = " ".join(read("docs/aten.md").split())
    inception, moe = re.search(r"Inception-v3 at batch 1 runs ([\d.]+)x faster on 3 streams .*? Qwen2-MoE decode step "
                               r"with a shared expert ([\d.]+)x", para).groups()
    assert f"**met**: {inception}x at 1.00x" in aten and f"**met** by the budget plan: {moe}x at 1.00x" in aten
