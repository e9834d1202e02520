"""Round 49b review: hostile timing for ``memplan.importers.quiet``'s process-wide switches.

A Ctrl-C (SIGINT, taken by Python between two lines) that came while ``logger_off`` or ``stderr_held`` turned its
switch, after its count went up and before its ``try``, or halfway through putting the switch back, left the count up
for good: the logger stayed disabled, or ``sys.stderr`` stayed a proxy (and, midway, held this thread's text, the
KeyboardInterrupt's traceback with it), for the rest of the process. Here a real SIGINT is raised at each line those
paths run (``sys.settrace``), and every switch must be back as it was.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

import pytest
from sigint_lines import interrupted_at

from memplan.importers import quiet

pytestmark = pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                                reason="SIGINT's Python handler runs in the main thread")


@pytest.fixture(autouse=True)
def _python_sigint():
    """Python's own SIGINT handler for each test (a test runner's worker may ignore SIGINT), put back after."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)

#: the functions whose every line a Ctrl-C may come at (the generators' own only before their block runs; the lines
#: that take a Ctrl-C and put back after it, ``_put_back``'s loop and the generators' ``finally``, are Python's too)
_STRICT = {"_switching", "_logger_on", "_release"}


def _interrupted_at(block, k: int) -> int:
    """Run ``block`` raising SIGINT at the ``k``-th counted line of ``quiet`` (never, for k 0); the lines counted:
    every line of ``_STRICT``, and those of ``logger_off``/``stderr_held`` until their ``yield``."""
    entered = [False]

    def counts(frame) -> bool:
        code = frame.f_code
        if code.co_name in ("logger_off", "stderr_held") and frame.f_lineno > code.co_firstlineno and \
                "yield" in _line(code.co_filename, frame.f_lineno):
            entered[0] = True
        return code.co_name in _STRICT or (code.co_name in ("logger_off", "stderr_held") and not entered[0])

    return interrupted_at(block, k, quiet.__file__, counts)[0]


def _line(path: str, n: int) -> str:
    import linecache

    return linecache.getline(path, n)


def _logger_block():
    with quiet.logger_off("memplan.test.review49b"):
        pass


def _stderr_block():
    with quiet.stderr_held():
        pass


@pytest.mark.parametrize("block", [_logger_block, _stderr_block])
def test_ctrl_c_at_any_line_of_a_switch_leaves_it_as_it_was(block):
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    err = sys.stderr
    logger = logging.getLogger("memplan.test.review49b")
    lines = _interrupted_at(block, 0)
    assert lines > 5
    leaks = []
    for k in range(1, lines + 1):
        _interrupted_at(block, k)
        free = quiet._LOCK.acquire(blocking=False)   # (held for good: every later import would hang on it)
        quiet._LOCK.release()
        state = (free, logger.disabled, dict(quiet._LOGGERS_OFF), sys.stderr is err, quiet._STDERR[0])
        if state != (True, False, {}, True, None):
            leaks.append((k, state))
            sys.stderr = err   # (so that the next cases start clean)
            logger.disabled = False
            quiet._LOGGERS_OFF.clear()
            quiet._LOGGERS_WAS.clear()
            quiet._STDERR[0] = None
    assert not leaks
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler   # the handler put back every time


def test_a_ctrl_c_inside_the_block_is_still_raised_and_everything_put_back():
    err = sys.stderr
    logger = logging.getLogger("memplan.test.review49b")
    with pytest.raises(KeyboardInterrupt):
        with quiet.logger_off("memplan.test.review49b"), quiet.stderr_held():
            assert logger.disabled and sys.stderr is not err
            signal.raise_signal(signal.SIGINT)
    assert not logger.disabled and sys.stderr is err and not quiet._LOGGERS_OFF and quiet._STDERR[0] is None


def test_switches_in_another_thread_leave_the_sigint_handler_alone():
    seen = []

    def work():
        with quiet.logger_off("memplan.test.review49b"), quiet.stderr_held():
            seen.append(signal.getsignal(signal.SIGINT))

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert seen == [signal.default_int_handler] and not quiet._LOGGERS_OFF and quiet._STDERR[0] is None


def test_rng_kept_failing_midway_through_its_swaps_puts_torch_back(monkeypatch):
    # ``rng_kept`` wraps torch's seeding functions before the export; one failing (or a Ctrl-C) midway left those
    # already wrapped in place for good (every later ``torch.manual_seed`` of the process went through a recorder)
    from needs import need

    from memplan.importers import rng

    torch = need("torch")
    originals = {(m, n): getattr(m, n) for m in (torch, torch.random) for n in rng._SEEDING if hasattr(m, n)}
    fork = torch.random.fork_rng
    real = rng._recording
    made = []

    def failing(*args, **kwargs):
        if len(made) == 3:
            raise KeyboardInterrupt
        made.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(rng, "_recording", failing)
    with pytest.raises(KeyboardInterrupt):
        with rng.rng_kept(torch, forks=[]):
            pass
    assert {k: getattr(*k) for k in originals} == originals and torch.random.fork_rng is fork
