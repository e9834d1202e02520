"""Review of round 68: silent-wrong results in the round's merged changes (CPU).

``flag_reads`` (round 68) compares the compiled program with eager where ``forward`` asks whether torch is tracing it
(``torch.compiler.is_compiling()``), but three kinds of the user's own reads slipped through, each compiling the
export's branch silently (compiled [2, 2, 2] where eager gave [3, 3, 3]):

1. a ``forward`` whose code is ``<...>`` (``exec``'d, ``python -c``, an ``<ipython-input-...>`` cell): ``_framework``
   took every ``<...>`` file for torch's generated code;
2. the user's ``if is_torchdynamo_compiling():`` through an installed package's helper (transformers'): the read was
   marked by the helper's file alone, an installed package's, so no comparison ran;
3. ``from torch.compiler import is_compiling`` at a user module's top: the name holds the function itself, which the
   wrapper on ``torch.compiler`` never sees.

4. ``loose_reads`` records a read by any thread compile does not watch into every export running, and the tensor is
   then watched: a metrics thread of the user's (``m.add_(1); m.item()`` in a loop) made every compiled call export
   ``forward`` again, silently (a compiled ``nn.Linear``: ~140 ms a call where eager took ~0.1 ms). Now warned at
   compile, naming the thread and line (``loose_reads.LooseReadWarning``).
"""

from __future__ import annotations

import builtins
import sys
import threading
import types
import warnings

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402

_REFUSED = r"forward asks whether torch is tracing it .*differ from eager's"

_SOURCE = '''
class M(nn.Module):
    def forward(self, x):
        if torch.compiler.is_compiling():
            return x * 2
        return x * 3
'''


def _compile(m):
    return compile(m, (torch.ones(3),), streams=1, cuda_graph=False, poison=True, device="cpu")


@pytest.mark.parametrize("filename", ["<string>", "<ipython-input-3-0123abcd>", "<stdin>"])
def test_a_forward_of_execd_code_branching_on_the_flag_is_refused(filename):
    """Failed before (all three): compiled silently, [2, 2, 2] where eager gave [3, 3, 3]."""
    g = {"torch": torch, "nn": nn, "__name__": "__main__"}
    exec(builtins.compile(_SOURCE, filename, "exec"), g)
    with pytest.raises(AtenExecutorError, match=_REFUSED):
        _compile(g["M"]())


def _installed_helper():
    """A helper like transformers' ``is_torchdynamo_compiling``, its code in an installed package's file."""
    src = "def is_torchdynamo_compiling():\n    import torch\n    return torch.compiler.is_compiling()\n"
    g = {"__name__": "somepkg.utils"}
    exec(builtins.compile(src, "/venv/lib/python3.12/site-packages/somepkg/utils.py", "exec"), g)
    return g["is_torchdynamo_compiling"]


def test_the_users_branch_through_an_installed_packages_helper_is_compared_and_refused():
    """Failed before: compiled silently, [2, 2, 2] where eager gave [3, 3, 3] (the read was the helper's file's)."""
    helper = _installed_helper()

    class M(nn.Module):
        def forward(self, x):
            if helper():
                return x * 2
            return x * 3

    with pytest.raises(AtenExecutorError, match=_REFUSED):
        _compile(M())


def test_an_installed_packages_own_read_through_its_helper_is_still_not_compared(monkeypatch):
    """The package's own code asking through its helper (transformers' models): recorded, not compared."""
    from runtime.aten import flag_reads

    helper = _installed_helper()
    src = ("def forward(self, x):\n    if helper():\n        return x * 2\n    return x * 2\n")
    g = {"__name__": "somepkg.model", "helper": helper}
    exec(builtins.compile(src, "/venv/lib/python3.12/site-packages/somepkg/model.py", "exec"), g)
    M = type("M", (nn.Module,), {"forward": g["forward"]})

    def compared(*_a, **_k):
        raise AssertionError("an installed package's flag read was compared with eager")

    monkeypatch.setattr(flag_reads, "_both", compared)
    step = _compile(M())
    assert step.program.flag_reads and all(pkg for _f, _w, pkg in step.program.flag_reads)


def test_a_flag_bound_to_a_user_modules_global_is_refused_and_the_name_put_back():
    """Failed before: compiled silently, [2, 2, 2] where eager gave [3, 3, 3]."""
    mod = types.ModuleType("review68_user_model")
    exec(builtins.compile("import torch\nfrom torch import nn\nfrom torch.compiler import is_compiling\n"
                          "class M(nn.Module):\n    def forward(self, x):\n"
                          "        return x * (2 if is_compiling() else 3)\n", "review68_user_model.py", "exec"),
         mod.__dict__)
    sys.modules[mod.__name__] = mod
    try:
        real = torch.compiler.is_compiling
        with pytest.raises(AtenExecutorError, match=_REFUSED):
            _compile(mod.M())
        assert mod.is_compiling is real and torch.compiler.is_compiling is real
    finally:
        del sys.modules[mod.__name__]


def test_a_thread_unrelated_to_forward_reading_during_the_export_is_warned_naming_it():
    """Failed before: no warning; every compiled call after exported forward again while the thread ran."""
    from runtime.aten import loose_reads

    metric = torch.zeros(())
    started, read, stop = threading.Event(), threading.Event(), threading.Event()

    def metrics():
        while not stop.is_set():
            if loose_reads._BLOCKS and started.is_set():   # (an export watches: read once during it)
                metric.add_(1.0)
                metric.item()
                read.set()
            stop.wait(0.001)

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 3)

        def forward(self, x):
            started.set()
            read.wait(10)   # (forward waits for the read; it uses nothing of the thread's)
            return self.lin(x)

    th = threading.Thread(target=metrics, name="review68-metrics", daemon=True)
    th.start()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            mod = M()
            step = _compile(mod)
    finally:
        stop.set()
        th.join(10)
    said = [str(w.message) for w in caught if issubclass(w.category, loose_reads.LooseReadWarning)]
    assert read.is_set() and len(said) == 1
    assert "'review68-metrics'" in said[0] and "test_review_round68.py:" in said[0] and "export forward again" in said[0]
    assert torch.equal(step(torch.ones(3)), mod(torch.ones(3)))


def test_no_loose_read_no_warning():
    from runtime.aten import loose_reads

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _compile(nn.Linear(3, 3))
    assert not [w for w in caught if issubclass(w.category, loose_reads.LooseReadWarning)]


def test_a_getter_set_on_torch_tensor_while_the_export_runs_is_kept():
    """Failed before: ``patch_off`` deleted ``torch.Tensor.tolist`` that forward set (the user's patch lost)."""

    def mine(self):
        return [42]

    class M(nn.Module):
        def forward(self, x):
            torch.Tensor.tolist = mine
            return x * 2

    try:
        _compile(M())
        assert vars(torch.Tensor).get("tolist") is mine
    finally:
        if vars(torch.Tensor).get("tolist") is mine:
            del torch.Tensor.tolist
    assert "tolist" not in vars(torch.Tensor)
