"""Round 76 (docs76): what README.md and docs/*.md say, checked against what round 76 changed (CPU, in-process,
cheap).

Each test names what the docs said, what the code does, and what holds now. The runnable blocks themselves run in
tests/test_docs_round32.py, the links and inline commands in tests/test_docs74_round74.py.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from memplan import BufferProblem
from memplan.errors import SolverError
from memplan.solvers import solve

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(rel: str) -> str:
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return " ".join(f.read().split())


def _row(rel: str, first_cell: str) -> str:
    """The markdown table row of ``rel`` whose first cell is ``first_cell``, white space folded."""
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        rows = [line for line in f if line.startswith(f"| {first_cell} |")]
    assert len(rows) == 1, f"{rel} has {len(rows)} rows for {first_cell!r}"
    return " ".join(rows[0].split())


def _problem(**kw) -> BufferProblem:
    """Two buffers live one after the other (100 B, 160 B) at alignment 4."""
    return BufferProblem(sizes=np.array([100, 160]), lower=np.array([0, 1]), upper=np.array([1, 2]), alignment=4,
                         **kw)


def test_format_doc_states_the_buffer_problems_in_place_meta_limits():
    """Round 76 (solve76) made ``BufferProblem`` refuse a ``meta`` its solvers cannot take (an ``inplace_shift``
    off the input's buffer or off the alignment, an ``inplace_resized`` / ``inplace_inexact`` that is no set of index
    pairs, one pair joined both ways at two places), while docs/format.md's limits row for a ``BufferProblem`` still
    gave ``inplace_shift`` as any offset and said nothing of the rest. The row states each limit now, and each holds:
    what it allows plans, what it refuses is a SolverError."""
    row = _row("docs/format.md", "library: a `BufferProblem`")
    for claim in ("from minus the output's size to the input's size", "a multiple of `alignment` unless the pair is "
                  "in `inplace_inexact`", "`inplace_resized`, if given, a set of such pairs",
                  "joins the two buffers at one place: shifts `d` and `-d`, or none", "`SolverError`"):
        assert claim in row, (claim, row)
    allowed = [
        {"inplace": ((1, 0),), "meta": {"inplace_shift": {(1, 0): -160}}},            # minus the output's size
        {"inplace": ((1, 0),), "meta": {"inplace_shift": {(1, 0): 100}}},             # the input's size
        {"inplace": ((1, 0),), "meta": {"inplace_shift": {(1, 0): 2}, "inplace_inexact": {(1, 0)}}},
        {"inplace": ((0, 1), (1, 0)), "meta": {"inplace_shift": {(0, 1): 8, (1, 0): -8}}},
        {"inplace": ((0, 1), (1, 0))},
        {"meta": {"inplace_resized": {(0, 1)}}},
    ]
    for kw in allowed:
        assert solve(_problem(**kw), "auto").arena >= 160, kw
    refused = [
        ({"inplace": ((1, 0),), "meta": {"inplace_shift": {(1, 0): 104}}}, "outside -160..100"),
        ({"inplace": ((1, 0),), "meta": {"inplace_shift": {(1, 0): 2}}}, "not a multiple of the alignment 4"),
        ({"meta": {"inplace_resized": [(0, 1)]}}, "meta['inplace_resized'] must be a set"),
        ({"meta": {"inplace_inexact": None}}, "meta['inplace_inexact'] must be a set"),
        ({"inplace": ((0, 1), (1, 0)), "meta": {"inplace_shift": {(1, 0): -160}}}, "at two places"),
    ]
    for kw, said in refused:
        with pytest.raises(SolverError) as e:
            solve(_problem(**kw), "auto")
        assert said in str(e.value), (kw, str(e.value))


class LinearAttentionLayer:
    """Stands in for transformers' recurrent-state cache layer (only its class name is read)."""


class _Cache:
    layers = (LinearAttentionLayer(),)


def _get_cache_dict(cache: _Cache) -> None:
    """Raises as transformers' ``DynamicCache`` flattening does on a layer it cannot flatten (this frame's name and its
    ``cache`` local are what the refusal reads)."""
    raise ValueError("This pytree flattening function should be applied to DynamicCache containing only "
                     "`DynamicLayer`, `DynamicSlidingWindowLayer` and `DummyLayer`")


def test_importers_doc_names_the_refusal_of_a_recurrent_models_cache():
    """docs/importers.md said a transformers decoder's ``DynamicCache`` is flattened into its keys and values and only
    other cache classes are refused, while round 76 (models76) refuses a ``DynamicCache`` of ``LinearAttentionLayer``s
    (every hybrid or recurrent model called with ``use_cache`` at its default: Mamba, Jamba, Qwen3-Next...), naming the
    layer and ``use_cache=False``. The page says so now, and the refusal (built from a raise as transformers' own, so
    no model is exported here) says what the page quotes."""
    from memplan.importers.torch.common import _export_failure

    text = read("docs/importers.md")
    for claim in ("a `DynamicCache` holding a layer other than `DynamicLayer` and `DynamicSlidingWindowLayer`",
                  "`LinearAttentionLayer`s", "the refusal names the layer and `kwargs={'use_cache': False}`",
                  "the step exported without it, or its states passed as tensors"):
        assert claim in text, claim
    try:
        _get_cache_dict(_Cache())
    except ValueError as exc:
        said = _export_failure(exc)
    assert "a DynamicCache whose layer 0 is a LinearAttentionLayer" in said, said
    assert "use_cache=False" in said and "pass its states as tensors" in said, said


def test_import_help_gives_the_alignment_docs_format_states(capsys):
    """docs/format.md's limits give ``memplan import --alignment`` as "a power of two in ``1 .. 2^48``" (the same
    check as ``plan --alignment BYTES``, whose help says a power of two), while ``memplan import --help`` said only
    "--alignment ALIGNMENT  arena alignment in bytes (default 256)": a user reading it tried 1000 or 1K. The help
    names the rule now, and the command holds to it."""
    from memplan.cli import main

    assert "| `memplan import --alignment`, `memplan plan --alignment` | a power of two in `1 .. 2^48`" in read(
        "docs/format.md")
    with pytest.raises(SystemExit):
        main(["import", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--alignment BYTES the graph's arena alignment in bytes: a power of two, at most 2^48 (default 256)" in text
    for bad in ("1000", "562949953421312"):
        with pytest.raises(SystemExit) as e:
            main(["import", "model.onnx", "-o", "g.json", "--alignment", bad])
        assert e.value.code == 2
        assert "argument --alignment" in capsys.readouterr().err
