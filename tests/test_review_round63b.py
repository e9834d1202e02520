"""Review of round 63's ATen merges (63b): answers remembered across a change of another part of the Python state
(CPU, tiny, torch only).

Bugs fixed (each test marked "failed before" did):
- ``ReadProofs`` kept a state of the values ``forward`` reads proven under a hook's ``n[0] = 0``; after ``n[0] = 1``
  was proven under other reads, that state met again was taken without an export: 1.0 off, silently;
- an argument compile left out (``flag=True``), proven inert under ``S = 0`` (``flag and S``), was taken without an
  export after ``S = 1`` was proven: the program without the branch, 1.0 off, silently;
- a hook of a layer held in a list attribute (``m.layers = [lin]``) reading a value the caller changed ran every
  compiled call with the export's value (~2.6 off), silently: ``hook_values`` walked ``named_modules`` alone.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402

S = 1
V = 0


def _compile(m, *inputs):
    return compile(m, inputs, streams=1, cuda_graph=False, poison=True, device="cpu")


def _same_or_refused(m, c, *args, **kwargs) -> str:
    """"same" where the compiled call matches eager's, "refused" where it is refused; a silent difference fails."""
    want = m(*args, **kwargs)
    try:
        got = c(*args, **kwargs)
    except AtenExecutorError:
        return "refused"
    assert torch.allclose(got, want), f"silently {(got - want).abs().max().item():.3g} off"
    return "same"


class _Branch(nn.Module):
    """``y + 1`` where the global ``S`` is set; ``V`` read and changing nothing."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        y = self.lin(x)
        if V:   # (a verbose flag: nothing in the program)
            pass
        return y + 1 if S else y


def test_a_reads_state_proven_under_other_hook_values_is_not_taken_again(monkeypatch):   # failed before
    g = globals()
    monkeypatch.setitem(g, "S", 1)
    monkeypatch.setitem(g, "V", 0)
    m, n = _Branch(), [0]
    m.register_forward_hook(lambda mod, args, out: out + 1 if n[0] else None)
    x = torch.randn(2, 4)
    c = _compile(m, x)
    assert _same_or_refused(m, c, x) == "same"
    g["V"] = 1   # (a read that changes nothing: proven, remembered)
    assert _same_or_refused(m, c, x) == "same"
    g["S"], g["V"], n[0] = 0, 0, 1   # (the hook's + 1 in place of forward's: the same program, proven)
    assert _same_or_refused(m, c, x) == "same"
    g["S"], g["V"] = 1, 1   # (the state proven first, now with the hook's + 1 too: another program)
    assert _same_or_refused(m, c, x) == "refused"


class _Flag(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x, flag=False):
        y = self.lin(x)
        return y + 1 if (flag and S) else y


def test_an_argument_proven_inert_under_other_reads_is_not_taken_again(monkeypatch):   # failed before
    g = globals()
    monkeypatch.setitem(g, "S", 0)
    m, x = _Flag(), torch.randn(2, 4)
    c = _compile(m, x)
    assert _same_or_refused(m, c, x, flag=True) == "same"   # (inert under S = 0: proven)
    g["S"] = 1
    assert _same_or_refused(m, c, x) == "same"   # (the reads proof: flag left out, the same program)
    assert _same_or_refused(m, c, x, flag=True) == "refused"


@pytest.mark.parametrize("back", [False, True])
def test_a_flag_toggled_between_proven_values_still_costs_no_export_per_call(monkeypatch, back):
    """The fix forgets the reads' proofs only where another part of the state moved: a ``V`` toggled between two
    proven values is answered from memory (no export), as round 63 made it."""
    g = globals()
    monkeypatch.setitem(g, "S", 1)
    monkeypatch.setitem(g, "V", 0)
    m, x = _Branch(), torch.randn(2, 4)
    c = _compile(m, x)
    g["V"] = 1
    assert _same_or_refused(m, c, x) == "same"
    g["V"] = 0
    assert _same_or_refused(m, c, x) == "same"
    import sys
    compile_module = sys.modules["runtime.aten.compile"]
    monkeypatch.setattr(compile_module, "load_program", lambda *a, **k: 1 / 0)   # (an export now fails the test)
    for v in (1, 0, 1, 0) if back else (1,):
        g["V"] = v
        assert _same_or_refused(m, c, x) == "same"


class _Held(nn.Module):
    """A layer held in a plain list attribute: no submodule, its hooks run in eager all the same."""

    def __init__(self):
        super().__init__()
        self.layers = [nn.Linear(4, 4)]

    def forward(self, x):
        return self.layers[0](x)


def test_a_held_layers_hook_reading_state_the_caller_changes_is_refused():   # failed before
    m, n = _Held(), [1.0]
    m.layers[0].register_forward_hook(lambda mod, args, out: out * n[0])
    x = torch.randn(2, 4)
    c = _compile(m, x)
    assert _same_or_refused(m, c, x) == "same"
    n[0] = 3.0   # (before: every compiled call scaled by the export's 1.0, ~2.6 off)
    with pytest.raises(AtenExecutorError, match=r"a forward hook of _Held\.layers\[0\]"):
        c(x)


def test_a_held_layers_counting_hook_costs_no_export_per_call(monkeypatch):
    """The proof exports put a held layer's hook state back, as the tree's: else each compiled call saw the count
    its proof's export advanced and exported again (found with the fix above)."""
    import sys

    m, n = _Held(), [0]

    def count(mod, args, out):
        n[0] += 1

    m.layers[0].register_forward_hook(count)
    x = torch.randn(2, 4)
    c = _compile(m, x)
    m(x)   # (an eager call advances it: one proof export)
    assert _same_or_refused(m, c, x) == "same"
    compile_module = sys.modules["runtime.aten.compile"]
    monkeypatch.setattr(compile_module, "load_program", lambda *a, **k: 1 / 0)   # (an export now fails the test)
    for _ in range(3):
        c(x)
    assert n[0] == 3   # (compile's export and two eager calls; no compiled call nor proof left a count)


def test_a_call_from_another_thread_waits_for_a_proofs_export(monkeypatch):   # failed before
    """A proof's export swaps the module's tensors for fake ones while it traces: another thread's compiled call
    ran beside it (a raw "Cannot access data pointer of Tensor (e.g. FakeTensor ...)" now and then). Here the other
    thread's call is made from inside the export, and must not finish before it (the bound on the wait only keeps a
    regression from hanging the test)."""
    import sys
    import threading

    g = globals()
    monkeypatch.setitem(g, "S", 1)
    monkeypatch.setitem(g, "V", 0)
    m, x = _Branch(), torch.randn(2, 4)
    c = _compile(m, x)
    compile_module = sys.modules["runtime.aten.compile"]
    export = compile_module.load_program
    beside: list[str] = []

    def exporting(*a, **k):
        if not beside:
            other = threading.Thread(target=lambda: beside.append(type(c(x)).__name__))
            beside.append("started")
            other.start()
            other.join(timeout=2.0)
            beside.append("still waiting" if other.is_alive() else "ran inside the export")
        return export(*a, **k)

    monkeypatch.setattr(compile_module, "load_program", exporting)
    g["V"] = 1   # (a read that changes nothing: one proof export)
    assert _same_or_refused(m, c, x) == "same"
    assert beside[:2] == ["started", "still waiting"]
