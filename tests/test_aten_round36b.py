"""Round 36b: the ATen executor when ``forward`` branches on the caller's mode, and the bound of the keyword proofs.

Bugs fixed (each test marked "failed before" did):
- a ``forward`` branching on ``torch.is_grad_enabled()``, ``torch.is_inference_mode_enabled()`` or
  ``torch.is_autocast_enabled(...)`` ran compile's branch whatever the caller's mode: compiled under ``no_grad``
  with ``if torch.is_grad_enabled(): y = y * 2``, a call in grad mode silently returned half of eager's result
  (and the reverse). The export records the reads (``mode_reads.watch_mode_reads``), and a call under which one
  gives another value is refused naming it; a mode ``forward`` never read is not watched.
- the keyword proofs (``CompiledModule._prove``) grew without end, one full export per new value: they are kept
  in a bounded LRU (``callform.Proofs``), and after 8 refuted value sets of the same names a new one is refused
  at once, without an export.
"""

from __future__ import annotations

import contextlib
import importlib

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402
from runtime.aten.sweep import mha_fastpath  # noqa: E402

STREAMS = [1, 3]
compile_mod = importlib.import_module("runtime.aten.compile")   # (``runtime.aten.compile`` is the function)


@contextlib.contextmanager
def cuda_autocast_flag():
    """The CUDA autocast switch on (``torch.autocast("cuda")`` disables itself on a machine without CUDA): what
    ``torch.is_autocast_enabled()`` reads, which the CPU executor's own autocast check does not."""
    torch.set_autocast_enabled("cuda", True)
    try:
        yield
    finally:
        torch.set_autocast_enabled("cuda", False)


#: mode -> (the getter forward branches on, the context that changes its value)
MODES = {
    "grad": (lambda: torch.is_grad_enabled(), torch.no_grad),
    "inference": (lambda: torch.is_inference_mode_enabled(), torch.inference_mode),
    "autocast": (lambda: torch.is_autocast_enabled(), cuda_autocast_flag),
}
GETTER = {"grad": "is_grad_enabled", "inference": "is_inference_mode_enabled", "autocast": "is_autocast_enabled"}


class Branches(nn.Module):
    """``forward`` takes another path where the mode is on: eager's result follows each call's mode."""

    def __init__(self, mode: str):
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(4, 4)
        self.read = MODES[mode][0]

    def forward(self, x):
        y = self.lin(x) + 1
        if self.read():
            y = y * 2
        return y


def _eager(m, x):
    return m(x).detach()


@pytest.mark.parametrize("streams", STREAMS)
@pytest.mark.parametrize("mode", sorted(MODES))
def test_a_call_under_another_mode_than_a_read_at_compile_is_refused_naming_it(mode, streams):
    """Failed before: the call under the other mode returned compile's branch (not eager's), no error."""
    m = Branches(mode).eval()
    x = torch.randn(2, 4)
    step = compile(m, (x,), streams=streams, poison=True)
    assert [r[0] for r in step.program.mode_reads] == [GETTER[mode]]
    with MODES[mode][1](), pytest.raises(AtenExecutorError, match=rf"forward read torch\.{GETTER[mode]}\(\) at "
                                         r"test_aten_round36b\.py:\d+ while it was exported \((True|False)\), it is "
                                         r"(False|True) now"):
        step(x)
    for _ in range(2):   # (the mode of the compile: eager's, bitwise)
        assert torch.equal(step(x), _eager(m, x))


@pytest.mark.parametrize("streams", STREAMS)
@pytest.mark.parametrize("mode", ["grad", "inference"])
def test_compiled_under_the_mode_a_call_outside_it_is_refused(mode, streams):
    """The reverse: compiled under ``no_grad`` / ``inference_mode``, called outside. Failed before (compile's
    branch, silently)."""
    m = Branches(mode).eval()
    x = torch.randn(2, 4)
    with MODES[mode][1]():
        step = compile(m, (x,), streams=streams, poison=True)
        assert torch.equal(step(x), _eager(m, x))
    with pytest.raises(AtenExecutorError, match=rf"torch\.{GETTER[mode]}\(\) .*\((True|False)\), it is "
                                                r"(False|True) now"):
        step(x)


@pytest.mark.parametrize("streams", STREAMS)
def test_a_module_that_reads_no_mode_runs_under_every_mode(streams):
    """No false refusals: an ordinary module (one with torch's own reads of the modes: ``MultiheadAttention``
    reads ``torch.is_autocast_enabled()`` and the grad mode in its fast-path check) compiled in grad mode runs under
    ``no_grad`` and ``inference_mode``, bitwise eager (the attention with torch's fast path off there)."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8)).eval()
    attn = nn.MultiheadAttention(8, 2, batch_first=True).eval()
    x = torch.randn(2, 3, 8)
    for module in (m, attn):
        step = compile(module, (x, x, x) if module is attn else (x,), streams=streams, poison=True)
        assert step.program.mode_reads == ()
        for ctx in (torch.no_grad, torch.inference_mode, contextlib.nullcontext):
            # (eager's eval MultiheadAttention under no_grad / inference_mode takes torch's fused fast path, which
            # the program is not: that call is refused, round 52b; with the fast path off it is eager's bits)
            with ctx(), fastpath_off() if module is attn and ctx is not contextlib.nullcontext else (
                    contextlib.nullcontext()):
                args = (x, x, x) if module is attn else (x,)
                got, want = step(*args), module(*args)
            if module is attn:
                got, want = got[0], want[0]
            assert torch.equal(got, want.detach())


def fastpath_off():
    """The sweep's switch off for a block, put back after."""
    return mha_fastpath(False)


class GradOnAKeywordsPath(nn.Module):
    def forward(self, x, **kwargs):
        if kwargs.get("check") and torch.is_grad_enabled():
            pass   # (the same program either way: the read alone)
        return x * 2


def test_a_mode_read_on_a_proven_keywords_path_is_watched_from_then_on():
    """A read of the mode on the path a proven keyword takes (one compile's export never ran) is watched as the
    default dtype's is: refused under another mode after the proof."""
    m = GradOnAKeywordsPath()
    x = torch.randn(3)
    step = compile(m, (x,), poison=True)
    assert step.program.mode_reads == ()
    assert torch.equal(step(x, check=True), m(x, check=True))
    assert [r[0] for r in step.program.mode_reads] == ["is_grad_enabled"]
    with torch.no_grad(), pytest.raises(AtenExecutorError, match=r"torch\.is_grad_enabled\(\)"):
        step(x, check=True)


class Scaled(nn.Module):
    """A keyword compile left out that changes the program with every value (``y * scale``), and one no path
    reads (``tag``: every value gives compile's program)."""

    def forward(self, x, scale=None, **kwargs):
        return x * scale if scale is not None else x + 1


def _count_exports(monkeypatch) -> list:
    calls = []
    real = compile_mod.load_program

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(compile_mod, "load_program", counting)
    return calls


def test_after_eight_refuted_values_a_new_one_is_refused_without_an_export(monkeypatch):
    """Failed before: every new float paid a full export and was kept for good."""
    m = Scaled()
    x = torch.randn(3)
    step = compile(m, (x,), poison=True)
    exports = _count_exports(monkeypatch)
    for k in range(8):
        with pytest.raises(AtenExecutorError, match=r"argument 'scale' is given.*another program"):
            step(x, scale=1.5 + k)
    assert len(exports) == 8
    for value in (100.5, 101.5):
        with pytest.raises(AtenExecutorError, match=r"8 other value sets of scale were refuted already.*no more "
                                                    r"exports"):
            step(x, scale=value)
    with pytest.raises(AtenExecutorError, match=r"another program"):   # (a known one: its own reason, kept)
        step(x, scale=1.5)
    assert len(exports) == 8
    assert torch.equal(step(x), m(x))


@pytest.mark.parametrize("streams", STREAMS)
def test_the_proofs_are_bounded_least_recently_used_first(streams):
    """Failed before (no bound: ``proven`` a set that only grew)."""
    m = Scaled()
    x = torch.randn(3)
    step = compile(m, (x,), streams=streams, poison=True)
    assert step.proofs.size == 64 and step.proofs.tries == 8
    step.proofs.size = 3
    for tag in ("a", "b", "c"):
        assert torch.equal(step(x, tag=tag), m(x, tag=tag))
    assert torch.equal(step(x, tag="a"), m(x))   # (a use: "b" is now the oldest)
    step(x, tag="d")
    kept = {dict((n, r) for n, _t, r in key)["tag"] for key in step.proven}
    assert kept == {"'a'", "'c'", "'d'"}
    assert torch.equal(step(x, tag="b"), m(x))   # (proven again, by a new export)


def test_proofs_record_and_forget():
    from runtime.aten.callform import Proofs  # (here: the other tests ran before it existed)

    p = Proofs(size=2, tries=2)
    k1, k2, k3 = (frozenset({("s", float, repr(v))}) for v in (1.0, 2.0, 3.0))
    p.record(k1, None)
    p.record(k2, "no")
    assert k1 in p and k2 not in p and p.refusal(k2) == "no" and not p.exhausted(frozenset({"s"}))
    p.record(k3, "no")
    assert k1 not in p.answers and p.exhausted(frozenset({"s"})) and not p.exhausted(frozenset({"t"}))
