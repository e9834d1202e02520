"""Round 79 (lead): the bundled example graphs and their plans, pinned byte for byte.

Why: "the same input and options give byte-identical plan JSON" held within a run, and each round's lead hashed the
bundled plans by hand before and after merging, but no test pinned them: round 79's mutation run (mut79) found that
a mutant of ``auto.solve`` changed every bundled plan (size's offsets, the solver's name) and no test noticed. These
digests are of what ``memplan example -o DIR`` writes and of ``memplan plan G [--streams auto|3] -o P`` for each of
those graphs (the library calls below write the same bytes as the commands). A change here is a change users see
in their plan files: make it on purpose, say so in CHANGELOG.md, and print the new table with
``python tests/test_golden_round79.py``.
"""

from __future__ import annotations

import hashlib

import pytest

import memplan
from memplan.examples import bundled
from memplan.io import graph_text, save_plan

#: sha256 (first 16 hex digits) of each bundled graph's JSON, as ``memplan example`` writes it
GRAPHS = {
    "chain": "5fb1c8ac96b2dd7c",
    "diamond": "89e2532b70efa2e0",
    "qkv": "dcc72e043159e98a",
    "fanout15": "ca1e2989f779b585",
    "moe": "af2c53be47113315",
    "views": "2ad2ef0688b6b0e9",
    "llama-1b-decode": "c3cfb7ff3046e896",
    "llama-1b-prefill": "30fb1a5e799377c3",
    "llama-tiny": "69de944cd9697868",
}
#: sha256 (first 16 hex digits) of each plan's JSON, by (graph, streams): serial, ``auto`` and 3 streams
PLANS = {
    ("chain", None): "563d1b3e9f76706e",
    ("chain", "auto"): "e2d84c9874cd1ff1",
    ("chain", 3): "cde5d08e77db1687",
    ("diamond", None): "f60c47afbec6fc67",
    ("diamond", "auto"): "0449dc1de28e03f5",
    ("diamond", 3): "d797653947f7e5ce",
    ("qkv", None): "735958900839c00c",
    ("qkv", "auto"): "aa34d3553ee60a22",
    ("qkv", 3): "99d121df7a7bd911",
    ("fanout15", None): "bcfca8cd63fd217e",
    ("fanout15", "auto"): "adcd6b99b1a01421",
    ("fanout15", 3): "35477b5c78a631f0",
    ("moe", None): "9fcf0e06da7c6aa7",
    ("moe", "auto"): "03812f168b5798eb",
    ("moe", 3): "752a29e1f6b60aa0",
    ("views", None): "fcd10f9b9776f683",
    ("views", "auto"): "fc622de06e2f40f6",
    ("views", 3): "a044e8ff0675c6d8",
    ("llama-1b-decode", None): "a6ea6fdf7b332b92",
    ("llama-1b-decode", "auto"): "6d4d9ed1c176cabf",
    ("llama-1b-decode", 3): "952d337f6b56372d",
    ("llama-1b-prefill", None): "2ad8cfd19223788c",
    ("llama-1b-prefill", "auto"): "8d3308988786d828",
    ("llama-1b-prefill", 3): "3ac3ebb522216e5a",
    ("llama-tiny", None): "52d2ee22167b762d",
    ("llama-tiny", "auto"): "3e24d950bbe323a6",
    ("llama-tiny", 3): "627ee6fead9f524f",
}


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _plan_digest(graph, streams, tmp_path) -> str:
    path = tmp_path / "plan.json"
    save_plan(memplan.plan(graph, streams=streams), str(path))
    return _digest(path.read_bytes())


def test_the_bundled_graphs_are_the_pinned_bytes():
    """Every graph ``memplan example`` writes, and no other, with its pinned digest."""
    got = {name: _digest(graph_text(g).encode()) for name, g in bundled().items()}
    assert got == GRAPHS


@pytest.mark.parametrize("name,streams", sorted(PLANS, key=str), ids=lambda v: str(v))
def test_the_bundled_plans_are_the_pinned_bytes(name, streams, tmp_path):
    """Each bundled graph's plan (the default solver) serial, on ``auto`` streams and on 3 streams."""
    assert _plan_digest(bundled()[name], streams, tmp_path) == PLANS[name, streams]


def test_the_example_command_writes_the_pinned_graph_bytes(tmp_path):
    """``memplan example -o DIR`` writes exactly the bytes pinned above (the digests hold for the files users get,
    not only for ``graph_text``)."""
    from memplan.cli import main

    assert main(["example", "-o", str(tmp_path / "ex")]) == 0
    got = {p.stem: _digest(p.read_bytes()) for p in (tmp_path / "ex").glob("*.json")}
    assert got == GRAPHS


if __name__ == "__main__":   # print the tables to paste above after an intended change
    import pathlib
    import tempfile

    print({name: _digest(graph_text(g).encode()) for name, g in bundled().items()})
    with tempfile.TemporaryDirectory() as d:
        for key in PLANS:
            print(f"    {key!r}: {_plan_digest(bundled()[key[0]], key[1], pathlib.Path(d))!r},")
