"""Shared helpers for the test suite.

The helper modules (``handgraphs``, ``reference``, ``strategies``, ``problems``, ``needs``, ...) live next
to the tests; pytest's default import mode puts this directory on ``sys.path``, and the repository root
is added so the suite also runs from a plain checkout without ``pip install -e``.

Skips have one mechanism each: a test marked ``gpu`` (``gpu(devices=2)``) is skipped here, with one
reason, where pycuda or enough CUDA devices are missing; optional packages come from ``needs.need`` (or
the ``torch`` fixture), which fails instead of skipping under CI. Data the tests read lives in
``tests/data`` (``minimalloc_dir``), so a plain clone runs every CPU test.
"""

from __future__ import annotations

import gc
import os
import sys

import pytest

#: numpy's OpenBLAS on one thread, set before anything imports numpy: its worker threads spin while they wait,
#: and on CI's two cores shared with other jobs the spinning starved the work (the emulated-llama property
#: test took 27 s with the default two threads under load, 6 s with one). A caller's own setting is kept.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
#: torch's CPU ops on one OpenMP thread too (read when torch loads, inherited by the CLI subprocesses), for the same
#: reason: the suite's models are tiny, and under load two spinning threads made a D-FINE detector's eager forward
#: 3 s where one thread takes 0.02 s (test_aten_round28's D-FINE test: 17.7 s of the full run). A caller's own
#: setting is kept; no test compares results across thread counts.
os.environ.setdefault("OMP_NUM_THREADS", "1")



def _terminal_signals_as_a_terminal_gives_them() -> None:
    """SIGINT, SIGQUIT and SIGHUP back to their defaults where the suite inherited them ignored.

    Why: a job started with ``&`` by a shell without job control (``nohup bash .ci/run &``, many CI runners) inherits
    SIGINT and SIGQUIT ignored, and ``nohup`` ignores SIGHUP; an ignored signal stays ignored across ``exec``, so
    the CLI subprocesses the Ctrl-C / hang-up tests signal never received them (10 failures, session 68's CI run in
    the background), where a terminal delivers them. Those tests are about memplan's handling of the signals, not
    about the environment's. (A test that needs one ignored sets that up in its own child.)"""
    import signal

    for name, default in (("SIGINT", signal.default_int_handler), ("SIGQUIT", signal.SIG_DFL),
                          ("SIGHUP", signal.SIG_DFL)):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) is signal.SIG_IGN:
            signal.signal(sig, default)


_terminal_signals_as_a_terminal_gives_them()

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for p in (HERE, ROOT):
    if p not in sys.path:
        sys.path.insert(0, p)

from needs import cuda_devices, need, torch_cuda_devices  # noqa: E402


def _hypothesis_profile() -> None:
    """No per-example deadline anywhere (a deadline is a timed unit test: on CI's two loaded cores an example
    of a property test over the ONNX importer passed alone and missed its 200 ms once beside other files);
    under CI also a fixed example stream and no too-slow health check, so the same commit passes or fails
    there the same way every time (random exploration stays on for local runs and the GPU fuzzers)."""
    try:
        from hypothesis import HealthCheck, settings
    except ImportError:   # (the property tests then fail on their own import, naming it)
        return
    settings.register_profile("memplan", deadline=None)
    settings.register_profile("memplan-ci", deadline=None, derandomize=True,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile("memplan-ci" if os.environ.get("CI") else "memplan")


_hypothesis_profile()

import memplan  # noqa: E402

#: under CI, a property test runs this share of its ``max_examples`` (never fewer than ``CI_EXAMPLES_FLOOR``, nor more
#: than it asks): see ``_fewer_examples_under_ci``
CI_EXAMPLES_SHARE = 3
CI_EXAMPLES_FLOOR = 20


def _ci_examples(asked: int) -> int:
    return min(asked, max(CI_EXAMPLES_FLOOR, asked // CI_EXAMPLES_SHARE))


def _fewer_examples_under_ci(items) -> None:
    """Under CI (``CI`` set; not where ``MEMPLAN_FULL_EXAMPLES`` is), each property test runs a third of the examples
    it asks for, at least 20 (a test asking 20 or fewer runs them all). Why: the property tests were ~20% of the
    suite's time, and CI's 2-core machine ran the whole suite in 30 minutes where it must finish well under 20.
    Under CI the example stream is fixed (``derandomize``), so CI re-checks the same examples at every commit, and
    their first third is where hypothesis puts the small and boundary cases; the full counts (and random exploration)
    run locally, where ``CI`` is unset. A test marked ``full_examples`` keeps its count (one whose examples feed a
    later check of what they covered: ``test_verify_round70``'s verdict counts)."""
    if not os.environ.get("CI") or os.environ.get("MEMPLAN_FULL_EXAMPLES"):
        return
    try:
        from hypothesis import settings
    except ImportError:
        return
    done: set[int] = set()
    for item in items:
        fn = getattr(item, "obj", None)
        asked = getattr(fn, "_hypothesis_internal_use_settings", None)
        if asked is None or id(fn) in done or item.get_closest_marker("full_examples") is not None:
            continue
        done.add(id(fn))
        if _ci_examples(asked.max_examples) < asked.max_examples:
            fn._hypothesis_internal_use_settings = settings(asked, max_examples=_ci_examples(asked.max_examples))


def pytest_collection_modifyitems(session, config, items):
    _fewer_examples_under_ci(items)


def _collect_young_objects_less_often() -> None:
    """The cyclic collector's first threshold from 700 allocations to 20,000 (the older generations' from 10 to 20).
    Why: the suite allocates millions of short-lived objects that reference counting frees; at 700 the collector
    ran ~7,600 times over 7 files (measured with ``gc.callbacks``: 5.0 s of GC in a 40 s run, 2.7 s after). A test
    that watches an object die calls ``gc.collect()`` itself; one about the thresholds saves and restores them."""
    gc.set_threshold(20_000, 20, 20)


_collect_young_objects_less_often()


_frozen_at: list = [None]   # the test module whose first test last froze the heap


def _freeze_the_heap_at_a_new_module(item) -> None:
    """What the run has kept alive so far (torch, transformers, onnx, the test modules, caches the earlier files
    filled: ~450,000 objects after collection, ~900,000 later) moved out of the cyclic collector's reach
    (``gc.freeze``), once at each test module's first test, after a collection. Why: each automatic full collection
    walked all of it again, 0.2-0.3 s a time, and the suite's allocations set one off every few tests: 37% of an
    ATen file's time (measured with ``gc.callbacks``). What a test makes afterwards is collected as before, so a
    test that watches an object die (``weakref`` after ``gc.collect()``) sees it; the collection before each freeze
    keeps garbage out of the frozen set."""
    if item.module is not _frozen_at[0]:
        _frozen_at[0] = item.module
        gc.collect()
        gc.freeze()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    _freeze_the_heap_at_a_new_module(item)
    marker = item.get_closest_marker("gpu")
    if marker is None:
        return
    wanted = marker.kwargs.get("devices", 1)
    torch_backend = marker.kwargs.get("backend") == "torch"
    have, why = torch_cuda_devices() if torch_backend else cuda_devices()
    if have < wanted:
        pytest.skip(f"gpu test: needs {wanted} CUDA device(s) with {'torch' if torch_backend else 'pycuda'}; {why}")


@pytest.fixture(scope="session")
def torch():
    """The torch module (the ``torch`` extra), or the test skipped (failed under CI, which installs it)."""
    return need("torch")


@pytest.fixture(scope="session")
def minimalloc_dir() -> str:
    """tests/data/minimalloc: the google/minimalloc problems the tests read (Apache-2.0, see its README)."""
    return os.path.join(HERE, "data", "minimalloc")


def rules_and_messages(exc: memplan.UnsafePlan) -> list[tuple[int, str]]:
    return list(exc.violations)


def expect_unsafe(graph: memplan.Graph, doc: dict, rule: int, *names: str) -> list[str]:
    """Assert ``verify`` rejects ``doc`` with a finding of ``rule`` whose message names every one of
    ``names`` (quoted, as the verifier writes them); return that rule's messages."""
    with pytest.raises(memplan.UnsafePlan) as info:
        memplan.verify(graph, doc)
    found = [m for r, m in info.value.violations if r == rule]
    assert found, f"expected a rule {rule} finding, got {info.value.violations}"
    assert any(all(repr(n) in m for n in names) for m in found), (names, found)
    assert f"rule {rule}" in str(info.value)
    return found


def byte_overlap(plan: memplan.Plan, a: str, b: str) -> bool:
    offs = plan.offsets()
    sizes = {t: s for t, _, s in plan.tensors}
    oa, ob = offs[a], offs[b]
    if oa is None or ob is None or sizes[a] == 0 or sizes[b] == 0:
        return False
    return oa < ob + sizes[b] and ob < oa + sizes[a]


@pytest.fixture
def graph_file(tmp_path):
    """A graph file (handgraphs.qkv) the CLI tests read."""
    import handgraphs

    g = tmp_path / "g.json"
    memplan.save_graph(handgraphs.qkv(), str(g))
    return g


@pytest.fixture
def diamond_files(tmp_path):
    """(graph file, plan file) of the bundled diamond and its default plan, for the CLI tests that read both."""
    from memplan.examples import diamond

    g, p = tmp_path / "g.json", tmp_path / "p.json"
    memplan.save_graph(diamond(), str(g))
    memplan.save_plan(memplan.plan(diamond()), str(p))
    return g, p


@pytest.fixture
def tmp_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def no_skyline(monkeypatch):
    """The default solve without ``skyline``'s walks (``auto.SKYLINE_BUFFERS`` 0), as before round 60: for tests whose
    problems of 65-5,000 buffers were picked because greedy and size left them above their bound (a named exact
    solver, a wall-clock stop or a memory budget then has work to do), or that pin what an exact solver does from
    the heuristics' start, which those walks now often close or move."""
    from memplan.solvers import auto

    monkeypatch.setattr(auto, "SKYLINE_BUFFERS", 0)


@pytest.fixture
def polish_limit_64(monkeypatch):
    """The default solve's short search (``auto.polish``) on problems of at most 64 buffers only, as before round 59
    (which added problems of up to 200 buffers left 5% or more above their bound): for the modules whose problems of
    65-200 buffers were picked because the default left them above their bound (a named exact solver or a capacity
    then has work to do), which that search now often closes."""
    from memplan.solvers import auto

    monkeypatch.setattr(auto, "POLISH_WIDE_BUFFERS", 64)
