"""Round 50 (aten50): the runtime's tools' options and the ATen executor against eager on the CPU.

Bugs fixed (each test failed before):
- every runtime tool (``python -m runtime.aten.sweep``, ``runtime.aten.bench``, ``runtime.bench``,
  ``runtime.tools.*``) took an abbreviated option (``--dev cpu`` as ``--device cpu``, ``--lis`` as ``--list``),
  which the ``memplan`` command refuses (round 49): now refused alike, one line naming it, exit status 2.
"""

from __future__ import annotations

import argparse
import importlib

import pytest

TOOLS = ("runtime.aten.sweep", "runtime.aten.bench", "runtime.aten.bench_scatter", "runtime.aten.profile_gap",
         "runtime.bench", "runtime.bench_multi_gpu", "runtime.torch_peer", "runtime.tools.attn_bench",
         "runtime.tools.attn_tune", "runtime.tools.bound", "runtime.tools.compare_launches",
         "runtime.tools.gemm_bench", "runtime.tools.pdl_check", "runtime.tools.profile", "runtime.tools.rule_ab")


class _Parsed(Exception):
    pass


def _parser_of(monkeypatch, tool: str) -> argparse.ArgumentParser:
    """The parser ``tool``'s ``main`` builds, caught at its parse (nothing of the tool runs)."""
    mod = importlib.import_module(tool)
    got: dict = {}

    def grab(self, args=None, namespace=None):
        got["parser"] = self
        raise _Parsed

    with monkeypatch.context() as mp:
        mp.setattr(argparse.ArgumentParser, "parse_known_args", grab)
        with pytest.raises(_Parsed):
            mod.main([])
    return got["parser"]


@pytest.mark.parametrize("tool", TOOLS)
def test_runtime_tools_refuse_abbreviated_options(monkeypatch, capsys, tool):
    """Each long option of each tool, cut short by its last letter (a prefix no other option shares): refused as an
    unrecognized argument, one line, exit 2, as ``memplan plan G --str 2`` is; was taken as the option."""
    parser = _parser_of(monkeypatch, tool)
    longs = [s for a in parser._actions for s in a.option_strings if s.startswith("--") and s != "--help"]
    assert longs, tool
    for option in longs:
        cut = option[:-1]
        if len(cut) < 3 or any(o.startswith(cut) for o in longs if o != option):
            continue
        action = parser._option_string_actions[option]
        argv = [cut] if action.nargs == 0 else [cut, "1"]
        with pytest.raises(SystemExit) as info:
            parser.parse_args(argv)
        err = capsys.readouterr().err
        assert info.value.code == 2 and err.count("\n") == 1 and "unrecognized arguments" in err and cut in err, \
            (tool, option, err)
        # the option spelt in full is still taken where its value is (a store_true flag always is)
        if action.nargs == 0:
            assert getattr(parser.parse_args([option]), action.dest) not in (None, False), (tool, option)


def test_the_sweep_refuses_an_abbreviated_list_option(capsys):
    """``python -m runtime.aten.sweep --lis`` printed the model list and exited 0."""
    from runtime.aten import sweep

    with pytest.raises(SystemExit) as info:
        sweep.main(["--lis"])
    out, err = capsys.readouterr()
    assert info.value.code == 2 and out == "" and "unrecognized arguments: --lis" in err, err


# ---- eager raises, so must the compiled call ---------------------------------------------------------------------

def _torch():
    from needs import need

    return need("torch")


def _outcome(fn, *args):
    """("ok", result) or ("raised", the exception)."""
    try:
        return "ok", fn(*args)
    except Exception as exc:   # noqa: BLE001 (either kind is the point)
        return "raised", exc


def _same_as_eager(module, example: tuple, call: tuple):
    """Compile on ``example``, call on ``call``: raises where eager raises (an ``AtenExecutorError`` naming a node),
    else the same bits."""
    torch = _torch()
    from runtime.aten import compile
    from runtime.aten.errors import AtenExecutorError

    step = compile(module, example)
    want = _outcome(module, *(t.clone() if isinstance(t, torch.Tensor) and not t._is_view() else t for t in call))
    got = _outcome(step, *call)
    if want[0] == "raised":
        assert got[0] == "raised", f"eager raised {want[1]!r}, the compiled call returned {got[1]!r}"
        assert isinstance(got[1], AtenExecutorError) and got[1].node is not None, got[1]
        return got[1]
    assert got[0] == "ok", got[1]
    a, b = want[1], got[1]
    assert a.shape == b.shape and a.dtype == b.dtype
    assert torch.equal(a.contiguous().view(-1).view(torch.uint8), b.contiguous().view(-1).view(torch.uint8))
    return None


def test_a_view_of_a_transposed_caller_input_raises_as_eager():
    """``x.view(-1)`` of a transposed ``x``: eager raises "view size is not compatible"; the compiled call copied
    ``x`` into the export's contiguous slot and returned numbers."""
    torch = _torch()

    class V(torch.nn.Module):
        def forward(self, x):
            return x.view(-1) * 2

    x = torch.randn(3, 4)
    err = _same_as_eager(V(), (x,), (torch.randn(4, 3).t(),))
    assert err.node == "view" and "view size is not compatible" in str(err) and "'x'" in str(err)
    # a view eager takes on that layout, and the export's layout, run as before (same bits)
    assert _same_as_eager(V(), (x,), (torch.randn(3, 4),)) is None
    assert _same_as_eager(V(), (torch.randn(1, 4),), (torch.randn(4, 1).t(),)) is None   # (size-1 strides)


def test_views_eager_takes_on_another_layout_still_run():
    """No false refusal: ``contiguous().view``, ``reshape``, ``flatten``, ``.t()`` of a transposed input run, same bits."""
    torch = _torch()

    class C(torch.nn.Module):
        def forward(self, x):
            return x.contiguous().view(-1) + x.reshape(-1) + x.flatten() + x.t().t().reshape(12)

    _same_as_eager(C(), (torch.randn(3, 4),), (torch.randn(4, 3).t(),))

    class T(torch.nn.Module):
        def forward(self, x):
            return x.t()[1:] * 3

    _same_as_eager(T(), (torch.randn(3, 4),), (torch.randn(4, 3).t(),))


def test_view_as_real_of_a_conjugate_caller_input_raises_as_eager():
    """``view_as_real(z)`` of ``z.conj()``: eager raises; the compiled call resolved the conjugate in its copy."""
    torch = _torch()

    class R(torch.nn.Module):
        def forward(self, z):
            return torch.view_as_real(z) * 2

    z = torch.randn(3, dtype=torch.complex64)
    err = _same_as_eager(R(), (z,), (torch.randn(3, dtype=torch.complex64).conj(),))
    assert err.node == "view_as_real" and "conjugate" in str(err)

    class Resolved(torch.nn.Module):
        def forward(self, z):
            return torch.view_as_real(z.resolve_conj()) * 2

    assert _same_as_eager(Resolved(), (z,), (torch.randn(3, dtype=torch.complex64).conj(),)) is None


def test_detach_in_place_of_a_caller_view_raises_as_eager():
    """``x.detach_()`` of a caller's ``b[0]``: eager raises "Can't detach views in-place"; compiled ran."""
    torch = _torch()

    class D(torch.nn.Module):
        def forward(self, x):
            x.detach_()
            return x * 2

    err = _same_as_eager(D(), (torch.randn(3),), (torch.randn(4, 3)[0],))
    assert err.node == "detach_" and "view" in str(err)
    assert _same_as_eager(D(), (torch.randn(3),), (torch.randn(3),)) is None


# ---- a module's own torch.Generator -------------------------------------------------------------------------------

def test_a_module_held_generator_is_refused_before_planning_naming_it(monkeypatch):
    """``torch.rand(shape, generator=self.g)``: torch.export lifts a copy of ``self.g``, so the program could never
    draw eager's numbers from the 2nd call on. Was refused at the build, after planning and the arena's allocation, as
    "argument 'obj_lifted_custom_0' is a CustomObjArgument the executor cannot reproduce"; now at the program's load,
    naming the node and the attribute, with no plan made."""
    torch = _torch()
    import memplan
    from runtime.aten import compile
    from runtime.aten.errors import AtenExecutorError

    class G(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 4)
            self.gens = [torch.Generator().manual_seed(0)]

        def forward(self, x):
            return self.lin(x) + torch.randn(x.shape, generator=self.gens[0])

    def no_plan(*a, **k):
        raise AssertionError("planned before the refusal")

    monkeypatch.setattr(memplan, "plan", no_plan)
    m = G()
    state = m.gens[0].get_state().clone()
    with pytest.raises(AtenExecutorError) as info:
        compile(m, (torch.ones(2, 4),))
    text = str(info.value)
    assert info.value.node == "randn" and "G.gens[0]" in text and "copy" in text, text
    assert torch.equal(m.gens[0].get_state(), state)   # (compile drew nothing from it)
