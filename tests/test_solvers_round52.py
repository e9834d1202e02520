"""Round 52: auto's inner solvers' warnings name the caller's time limit (and the share auto gave), not the share."""

import os
import warnings

import pytest

from memplan.errors import UnusedOption
from memplan.io import minimalloc as mm
from memplan.solvers import search, solve
from memplan.solvers.options import SolveOptions

HERE = os.path.dirname(os.path.abspath(__file__))
A = os.path.join(HERE, "data", "minimalloc", "challenging", "A.1048576.csv")


def _a():
    if not os.path.exists(A):
        pytest.skip("minimalloc data not here")
    return mm.read_csv(A).problem()


def _unused(ws):
    return [w.message for w in ws if issubclass(w.category, UnusedOption)]


def test_auto_names_the_callers_time_limit(monkeypatch):
    """auto gives the search 90% of ``time_limit=0.2`` on an interval problem; a setup estimated past that share
    warned "time_limit=0.18 had no effect", a value never given. Now the warning names ``time_limit=0.2`` and says
    auto gave the search 0.18 s of it; spelt as flags (the CLI) it is ``--time-limit 0.2``."""
    p = _a()
    monkeypatch.setattr(search, "SETUP_PER_PAIR", 1.0)
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        solve(p, "auto", SolveOptions(time_limit=0.2))
    msgs = [m for m in _unused(ws) if "setup" in str(m)]
    assert msgs, [str(m) for m in _unused(ws)]
    text = str(msgs[0])
    assert "time_limit=0.2 (auto gave search 0.18s of it)" in text, text
    assert "0.18 " not in text.replace("0.18s of it", "")
    assert msgs[0].values["time_limit"] == 0.2
    flags = msgs[0].spelled(lambda name, v: f"--{name.replace('_', '-')} {v}")
    assert flags.startswith("--time-limit 0.2 (auto gave search 0.18s of it) had no effect"), flags


def test_search_by_name_still_names_its_own_limit(monkeypatch):
    """The search asked for by name has the caller's limit as its own: its warning is as before."""
    p = _a()
    monkeypatch.setattr(search, "SETUP_PER_PAIR", 1.0)
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        solve(p, "search", SolveOptions(time_limit=0.2))
    text = " ".join(str(m) for m in _unused(ws))
    assert "time_limit=0.2 had no effect" in text and "auto gave" not in text, text


def test_callers_error_filter_still_raises(monkeypatch):
    """A caller who turns UnusedOption into errors still gets it raised from auto (once the solver returned)."""
    p = _a()
    monkeypatch.setattr(search, "SETUP_PER_PAIR", 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnusedOption)
        with pytest.raises(UnusedOption, match=r"time_limit=0\.2 \(auto gave search"):
            solve(p, "auto", SolveOptions(time_limit=0.2))
