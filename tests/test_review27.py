"""Review 27 (a new user trying what README and docs/ promise): the plan files ``memplan plan`` writes are
CONTRACT.md's documents field by field, for every bundled example and every solver; ``memplan import`` names
a torch.export program's graph after its file, as ``--help`` says; every CLI option says what it does and is
named in the docs."""

from __future__ import annotations

import argparse
import glob
import json
import os
import re

import pytest
from cli_contract import run_memplan
from contract_fields import problems
from oracle import findings

from memplan import examples
from memplan.cli import build_parser, main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOLVERS = ["auto", "greedy", "size", "search", "cpsat", "ggml"]
EXACT = {"search", "cpsat"}
#: the oracle's brute force is quadratic in roots: the larger examples get the field checks only (the
#: library's plans of them pass the oracle in test_oracle.py)
ORACLE_LIMIT = 100


@pytest.fixture(scope="module")
def example_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("ex")
    assert main(["example", "-o", str(d)]) == 0
    return {os.path.basename(p)[:-5]: str(p) for p in glob.glob(str(d / "*.json"))}


def plan_file(capsys, graph_path: str, out: str, *extra: str) -> tuple[int, str]:
    code, _, err = run_memplan(capsys, ["plan", graph_path, "-o", out, "-q", *extra])
    return code, err


@pytest.mark.parametrize("solver", SOLVERS)
def test_cli_plans_of_every_example_are_contract_documents(solver, example_files, tmp_path, capsys):
    """Each bundled example, serial and ``--streams auto``: the file is the contract's document (fields,
    types, offsets, views, arena, solver block) and safe by the brute-force oracle; ggml, a serial-only
    solver, refuses a multi-stream schedule in one line instead."""
    assert set(example_files) == set(examples.bundled())
    out = str(tmp_path / "plan.json")
    limit = ["--time-limit", "0.05"] if solver in EXACT or solver == "auto" else []
    checked = 0
    for stem, path in sorted(example_files.items()):
        with open(path) as f:
            graph = json.load(f)
        for streams in ([], ["--streams", "auto"]):
            code, err = plan_file(capsys, path, out, "--solver", solver, *limit, *streams)
            if code == 2 and solver == "ggml" and streams:
                assert "ggml" in err and err.count("\n") == 1, err
                continue
            assert code == 0, (stem, streams, err)
            with open(out) as f:
                text = f.read()
            assert problems(graph, text) == [], (stem, streams)
            if len(graph["tensors"]) <= ORACLE_LIMIT:
                assert findings(graph, json.loads(text)) == [], (stem, streams)
            checked += 1
    assert checked >= len(example_files)


@pytest.mark.parametrize("extra", [["--timings"], ["--devices", "2"], ["--devices", "3", "--streams", "2"],
                                   ["--streams", "auto", "--fused-groups"], ["--streams", "3", "--max-events", "1"]])
def test_cli_plans_with_options_are_contract_documents(extra, example_files, tmp_path, capsys):
    """The options that add fields (devices), keep the contract's bound beside a stricter one (fused groups),
    cap events, or put wall-clock seconds in (``--timings``, and only then)."""
    out, split = str(tmp_path / "plan.json"), str(tmp_path / "split.json")
    for stem in ("llama-tiny", "moe", "views"):
        code, err = plan_file(capsys, example_files[stem], out, "--graph-out", split, *extra)
        assert code == 0, (stem, err)
        with open(split) as f:
            graph = json.load(f)
        with open(out) as f:
            text = f.read()
        assert problems(graph, text, timings="--timings" in extra) == [], (stem, extra)
        assert findings(graph, json.loads(text), fused_groups="--fused-groups" in extra) == [], (stem, extra)


def test_contract_field_checker_can_fail(example_files, tmp_path, capsys):
    """Each departure the checker is for, planted in a good plan of the tiny Llama, is reported."""
    out = str(tmp_path / "plan.json")
    assert plan_file(capsys, example_files["llama-tiny"], out, "--streams", "2")[0] == 0
    with open(example_files["llama-tiny"]) as f:
        graph = json.load(f)
    with open(out) as f:
        good = json.load(f)
    assert problems(graph, json.dumps(good)) == []
    kinds = {t["id"]: t["kind"] for t in graph["tensors"]}
    view = next(t["id"] for t in graph["tensors"] if kinds.get(t.get("view_of")) == "intermediate")
    weight = next(t for t, kind in kinds.items() if kind == "weight")

    def broken(change) -> list[str]:
        doc = json.loads(json.dumps(good))
        change(doc)
        return problems(graph, json.dumps(doc))

    def entry(doc, tid):
        return next(e for e in doc["tensors"] if e["id"] == tid)

    assert broken(lambda d: d.update(streams=True))                                   # a bool for an int
    assert broken(lambda d: d.update(arena_bytes=d["arena_bytes"] + 256))              # not the largest end
    assert broken(lambda d: d.update(alignment=1))                                    # not the graph's
    assert broken(lambda d: d.update(graph="other"))
    assert broken(lambda d: d["solver"].update(seconds=0.1))                          # wall clock without --timings
    assert broken(lambda d: entry(d, weight).update(offset=0))                        # a weight in the arena
    assert broken(lambda d: entry(d, view).update(offset=entry(d, view)["offset"] + 1))  # a view off its parent
    assert broken(lambda d: d["tensors"].pop())
    assert broken(lambda d: d["order"].reverse())                                     # not topological
    assert broken(lambda d: d["events"].append({"after": d["order"][0]["node"], "before": d["order"][0]["node"]}))
    assert broken(lambda d: d.pop("solver"))
    assert broken(lambda d: d.update(devices=1))                                      # present only above one


def test_import_names_a_torch_program_after_its_file(tmp_path, capsys):
    """``memplan import --help``: "graph name (default: the file's stem)". A .pt2 program was named
    "exported" (the importer's name for an anonymous program) while an ONNX model got its stem."""
    torch = pytest.importorskip("torch")
    ep = torch.export.export(torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU()).eval(),
                             (torch.randn(2, 8),))
    for name in ("mlp.pt2", "tiny-model.bin"):
        torch.export.save(ep, str(tmp_path / name))
        out = tmp_path / "g.json"
        code, _, err = run_memplan(capsys, ["import", str(tmp_path / name), "-o", str(out), "-q"])
        assert code == 0, err
        assert json.loads(out.read_text())["name"] == os.path.splitext(name)[0]
    code, _, err = run_memplan(capsys, ["import", str(tmp_path / "mlp.pt2"), "-o", str(out), "-q", "--name", "n"])
    assert code == 0 and json.loads(out.read_text())["name"] == "n", err


def _parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    """Every (sub)command's parser, named as typed (``bench scale``)."""
    found = []

    def walk(name: str, parser: argparse.ArgumentParser) -> None:
        found.append((name, parser))
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub, p in action.choices.items():
                    walk(f"{name} {sub}".strip(), p)

    walk("", build_parser())
    return found


def test_every_cli_option_says_what_it_does_and_the_docs_name_it():
    """``memplan X --help`` has a line of help for each argument and option, and README.md or docs/ names
    every option (either spelling): an option added without saying what it does fails here."""
    text = "".join(open(p, encoding="utf-8").read()
                   for p in [os.path.join(ROOT, "README.md"), *glob.glob(os.path.join(ROOT, "docs", "*.md"))])
    bare, unnamed = [], []
    for name, parser in _parsers():
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            label = "/".join(action.option_strings) or action.dest
            if not action.help:
                bare.append(f"memplan {name} {label}")
            if action.option_strings and not any(re.search(re.escape(o) + r"(?![\w-])", text)
                                                 for o in action.option_strings):
                unnamed.append(f"memplan {name} {label}")
    assert bare == []
    assert unnamed == []


def test_show_of_a_split_plan_says_which_device_each_arena_and_offset_is_in(example_files, tmp_path, capsys):
    """``memplan show`` of a ``--devices 2`` plan listed offsets of two arenas side by side with nothing to
    tell them apart (two tensors at offset 0 of the same size looked like a clash) and only the largest
    arena: it now gives each device's arena and the device of each stream and listed tensor. One-device
    output is unchanged (no device lines or columns)."""
    out, split = str(tmp_path / "plan.json"), str(tmp_path / "split.json")
    assert plan_file(capsys, example_files["llama-tiny"], out, "--devices", "2", "--graph-out", split)[0] == 0
    code, text, err = run_memplan(capsys, ["show", out, "--top", "100"])
    assert code == 0, err
    with open(out) as f:
        doc = json.load(f)
    arenas = ", ".join(f"{d}:{a} B" for d, a in enumerate(doc["device_arena_bytes"]))
    assert f"devices      2  (arena per device: {arenas})" in text
    device_of = {e["id"]: e["device"] for e in doc["tensors"]}
    listed = re.findall(r"^  (\S+) +\d+ +\d+ +(\d+)$", text, re.M)
    assert listed and all(device_of[t] == int(d) for t, d in listed)
    assert {int(d) for _, d in listed} == {0, 1}
    stream_device = {e["stream"]: e["device"] for e in doc["order"]}
    rows = re.findall(r"^ +(\d+) +(\d+) +\d+ +\d+ +\d+  \S+ \.\. \S+$", text, re.M)
    assert rows and all(stream_device[int(s)] == int(d) for s, d in rows)
    assert plan_file(capsys, example_files["llama-tiny"], out, "--streams", "2")[0] == 0
    code, text, _ = run_memplan(capsys, ["show", out])
    assert code == 0 and "device" not in text
