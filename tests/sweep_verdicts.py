"""One sweep case's CPU verdicts, as ``python -m runtime.aten.sweep --only NAME`` prints them (the models tests of
rounds 39 and 40 read them)."""

from __future__ import annotations

import torch

from runtime.aten import sweep

MODES = [("s1", 1, False), ("auto", "auto", False)]
BY_NAME = {c.name: c for c in sweep.CASES}


def verdicts(name: str) -> dict[str, str]:
    """``{mode: verdict}`` of sweep case ``name`` on the CPU, 1 stream and ``streams="auto"``."""
    got: dict[str, str] = {}
    sweep.run_case(BY_NAME[name], torch.device("cpu"), MODES, lambda _n, mode, verdict, _t, **_kw:
                   got.__setitem__(mode, verdict))
    return got
