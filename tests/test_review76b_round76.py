"""Round 76 review (review76b): process-wide state another thread had changed for a block, in a forked child.

Only the forking thread lives on in a child of ``os.fork`` (a ``ProcessPoolExecutor``/``multiprocessing`` worker on
Linux), so a block another thread was inside never ends there: what it changed for its own time stayed changed for
the child's whole life.

- ``_warnblock.warnings_caught``: the child kept the block's "ignore every warning" filter (memplan's own warnings
  and the user's silenced for good), what api76 fixed for overlapping threads.
- ``layouts._under_default_dtype``: the child kept the record check's default dtype (float64) as torch's default.
"""

from __future__ import annotations

import os
import warnings

import pytest
from thread_forks import child_status, forked_beside

from memplan._warnblock import warnings_caught

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")


def test_child_forked_during_another_threads_warnings_block_sees_warnings():
    """The child's filters are the ones the other thread's block found (no "ignore" left on for good)."""
    before = list(warnings.filters)

    def hold(started, release):
        with warnings_caught():
            started.set()
            release.wait(10)

    def child() -> int:
        return 0 if list(warnings.filters) == before else 1

    assert forked_beside(hold, child) == 0
    assert list(warnings.filters) == before


def test_child_forked_during_own_warnings_block_keeps_it():
    """The forking thread's own block goes on in the child: its filters stay until it leaves the block there."""
    before = list(warnings.filters)
    with warnings_caught():
        inside = list(warnings.filters)
        pid = os.fork()
        if pid == 0:
            os._exit(0 if list(warnings.filters) == inside else 1)
        assert child_status(pid) == 0
    assert list(warnings.filters) == before


def test_child_forked_during_another_threads_default_dtype_gets_it_back():
    """torch's default dtype in the child is the one the other thread's record check found, not its float64."""
    torch = pytest.importorskip("torch")
    from memplan.importers.torch.layouts import _under_default_dtype

    before = torch.get_default_dtype()

    def hold(started, release):
        _under_default_dtype(torch, torch.float64, lambda: (started.set(), release.wait(10)))

    def child() -> int:
        return 0 if torch.get_default_dtype() == before else 1

    assert forked_beside(hold, child) == 0
    assert torch.get_default_dtype() == before


def test_child_forked_during_another_threads_export_switches_gets_its_logger_and_stderr_back():
    """A worker forked while another thread held a logger off and ``sys.stderr`` (an export): in the child the
    logger is on again and ``sys.stderr`` the stream it was; its own blocks there work and put them back too."""
    import logging
    import sys

    from memplan.importers.quiet import logger_off, stderr_held

    name = "memplan.test.review76b"
    logger = logging.getLogger(name)
    logger.disabled = False
    real = sys.stderr

    def hold(started, release):
        with logger_off(name), stderr_held():
            started.set()
            release.wait(10)

    def child() -> int:
        if logger.disabled or sys.stderr is not real:
            return 1
        with logger_off(name), stderr_held():
            if not logger.disabled or sys.stderr is real:
                return 2
        return 0 if not logger.disabled and sys.stderr is real else 4

    assert forked_beside(hold, child) == 0
    assert not logger.disabled and sys.stderr is real


def test_child_forked_during_another_threads_drawing_gets_the_programs_rcparams_back():
    """A worker forked while another thread drew a memory map: the program's own rcParams in the child, not the
    drawing's matplotlib defaults."""
    matplotlib = pytest.importorskip("matplotlib")
    from memplan.viz.memmap import _drawing_style

    with matplotlib.rc_context({"lines.linewidth": 7.25}):
        def hold(started, release):
            with _drawing_style():
                started.set()
                release.wait(10)

        def child() -> int:
            return 0 if matplotlib.rcParams["lines.linewidth"] == 7.25 else 1

        assert forked_beside(hold, child) == 0
        assert matplotlib.rcParams["lines.linewidth"] == 7.25


def test_child_forked_during_another_threads_export_gets_torchs_own_module_apply_back():
    """A worker forked while another thread exported (inside ``unchanged_conversions_kept``): ``nn.Module._apply``
    is torch's own again in the child, no thread id of the parent's left taking the check."""
    torch = pytest.importorskip("torch")
    from memplan.importers.torch import conversions

    original = torch.nn.Module._apply

    def hold(started, release):
        with conversions.unchanged_conversions_kept(torch):
            started.set()
            release.wait(10)

    def child() -> int:
        if torch.nn.Module._apply is not original or conversions._STATE["threads"]:
            return 1
        with conversions.unchanged_conversions_kept(torch):
            if torch.nn.Module._apply is original:
                return 2
        return 0 if torch.nn.Module._apply is original else 4

    assert forked_beside(hold, child) == 0
    assert torch.nn.Module._apply is original
