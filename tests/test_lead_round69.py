"""Round 69's lead fixes, found by session 69's GPU call."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from memplan.importers import rng  # noqa: E402


def test_cuda_initialized_by_the_export_is_no_reseeding(monkeypatch):
    """On a GPU machine whose CUDA was not yet initialized, Dynamo's ``torch.cuda.get_rng_state()`` (a strict export,
    a ``torch.cond`` on CPU tensors) initialized it inside the block: the CUDA generator that appeared counted as a
    reseeding, and every such export in a fresh process was refused ("forward sets torch's random state itself")."""
    extra = torch.Generator()
    grown = [False]
    real = rng._generators
    monkeypatch.setattr(rng, "_generators", lambda t: real(t) + ([extra] if grown[0] else []))
    for watch in (True, False):
        grown[0] = False
        with rng.rng_kept(torch, watch=watch) as reseeded:
            grown[0] = True        # (what CUDA's lazy initialization does to the list)
        assert reseeded == [False], watch


def test_a_cuda_seed_queued_before_cuda_is_initialized_still_counts(monkeypatch):
    """``torch.cuda.manual_seed`` before CUDA is initialized changes no state: torch queues it for CUDA's first use.
    Inside forward it is a reseeding all the same (the export's Dynamo may initialize CUDA and run it)."""
    queued: list = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.cuda.random, "_lazy_call", lambda cb, **kw: queued.append(cb))
    with rng.rng_kept(torch, watch=True) as reseeded:
        torch.cuda.manual_seed(5)
    assert queued and reseeded == [True]
    with rng.rng_kept(torch, watch=True) as reseeded:
        pass
    assert reseeded == [False]


def test_a_float_nan_both_sides_return_agrees():
    """``flag_reads._agree`` compared non-tensor leaves with ``!=``: a ``float('nan')`` that eager and the program
    both return differed, and compile refused a forward whose branches agree (review of round 69)."""
    from runtime.aten.flag_reads import _agree

    t = torch.ones(2)
    assert _agree(torch, (t, float("nan")), (t.clone(), float("nan"))) == "equal"
    assert _agree(torch, (t, float("nan")), (t.clone(), 1.0)) is False
    assert _agree(torch, (t, 2.0), (t.clone(), 1.0)) is False


def test_sweep_paths_refuses_a_bad_out_file_in_one_line(tmp_path, capsys):
    """``runtime.aten.sweep_paths`` (round 69) read an existing ``--out`` file raw: a file that is not an earlier
    sweep's results ended in a KeyError traceback; its argument errors were argparse's usage block."""
    from runtime.aten.sweep_paths import main

    bad = tmp_path / "bad.json"
    bad.write_text('{"x": 1}\n')
    assert main(["--only", "resnet18", "--out", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not an earlier sweep's results" in err, err
    assert bad.read_text() == '{"x": 1}\n'
