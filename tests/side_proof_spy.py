"""Shared set-up of the side-proof property tests (tests/test_search_round63.py, tests/test_search_round64.py).

Why a module: each test turns the same three knobs of ``search_tree`` so that every failed child asks a side proof,
and counts what the proofs return with the same spy; written once, a knob added later (round 64b's
``PROBE_TRIAL``) is turned for every such test at once.
"""

from __future__ import annotations

from memplan.solvers import search_tree


def ask_at_every_failed_child(monkeypatch) -> None:
    """No warm-up, no share and no trial: each failed child of a packing try asks its side proof."""
    monkeypatch.setattr(search_tree, "PROBE_AFTER_NODES", 0)
    monkeypatch.setattr(search_tree, "PROBE_SHARE", 0)
    monkeypatch.setattr(search_tree, "PROBE_TRIAL", 10**9)


def record_side_proofs(monkeypatch) -> list:
    """What each ``PackingSearch._side_proof`` call returns, in order (the list fills as the tests search)."""
    proven: list = []
    real = search_tree.PackingSearch._side_proof

    def counted(self, a, z, *most):
        out = real(self, a, z, *most)
        proven.append(out)
        return out

    monkeypatch.setattr(search_tree.PackingSearch, "_side_proof", counted)
    return proven
