"""Round 50 (aten50): the runtime's tools' options and the ATen executor against eager on the CPU.

Bugs fixed (each test failed before):
- every runtime tool (``python -m runtime.aten.sweep``, ``runtime.aten.bench``, ``runtime.bench``,
  ``runtime.tools.*``) took an abbreviated option (``--dev cpu`` as ``--device cpu``, ``--lis`` as ``--list``),
  which the ``memplan`` command refuses (round 49): now refused alike, one line naming it, exit status 2.
- a call whose input makes a view op of ``forward`` fail in eager (``x.view(-1)`` of a transposed ``x``,
  ``view_as_real`` of ``z.conj()``, ``detach_`` of a caller's view) returned numbers: now refused naming the node.
- a module drawing from a ``torch.Generator`` it holds was refused after planning and allocating the arena, naming
  only ``obj_lifted_custom_0``: now it runs, drawing from the module's own generators (eager's bits); a program's
  own refusals (``x * x.sum().item()``) come before planning and the arena (``lower.check_lowerable``).
- a ``return_views`` output resized past the arena's end moved the arena's storage, and fed-back outputs were looked
  for at the old address (NaN under ``poison``; a CUDA graph replayed into freed bytes).
- a caller's ``t_()`` / ``set_()`` / ``as_strided_()`` of a ``return_views`` output changed the executor's own view.
"""

from __future__ import annotations

import argparse
import importlib

import pytest
from needs import need_generator_export

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
    if tool == "runtime.aten.sweep":
        _torch()   # (the one tool that imports torch at the top: skipped without it)
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
    _torch()
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

class _Gens:
    """A module drawing from two ``torch.Generator`` objects of its own (one in a list), beside the default one."""

    def __new__(cls, seeds=(5, 7)):
        torch = _torch()

        class G(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = torch.nn.Linear(4, 4)
                self.g = torch.Generator().manual_seed(seeds[0])
                self.gens = [torch.Generator().manual_seed(seeds[1])]

            def forward(self, x):
                y = self.lin(x) + torch.rand(x.shape, generator=self.g)
                y = torch.nn.functional.dropout(y, 0.5) * torch.randn(y.shape, generator=self.gens[0])
                return y + torch.bernoulli(torch.full_like(y, 0.3), generator=self.g)

        return G()


@pytest.mark.parametrize("streams", [1, 3])
def test_a_module_held_generator_draws_as_eager(streams):
    """``torch.rand(shape, generator=self.g)``: torch.export lifts a *copy* of ``self.g``. Was refused, after planning
    and allocating the arena, as "argument 'obj_lifted_custom_0' is a CustomObjArgument the executor cannot
    reproduce"; now each call draws from the module's own generators (told from the copies by their state), the same
    bits as eager at every call, and the generators left in eager's states; reseeding one in place is followed."""
    need_generator_export()   # (torch 2.11: export cannot take a torch.Generator)
    torch = _torch()
    import copy

    from runtime.aten import compile

    m = _Gens()
    mc = copy.deepcopy(m)
    step = compile(mc, (torch.ones(2, 4),), streams=streams)
    for i in range(3):
        if i == 2:
            m.g.manual_seed(11)
            mc.g.manual_seed(11)
        x = torch.randn(2, 4)
        torch.manual_seed(i)
        want = m(x)
        torch.manual_seed(i)
        got = step(x)
        assert torch.equal(got.view(torch.int32), want.view(torch.int32)), i
        for a, b in ((m.g, mc.g), (m.gens[0], mc.gens[0])):
            assert torch.equal(a.get_state(), b.get_state())


def test_a_replaced_generator_is_refused_at_the_call():
    """``m.g = torch.Generator()`` after compile: eager draws from the new one; the program would from the old."""
    need_generator_export()   # (torch 2.11: export cannot take a torch.Generator)
    torch = _torch()
    from runtime.aten import compile
    from runtime.aten.errors import AtenExecutorError

    m = _Gens()
    step = compile(m, (torch.ones(2, 4),))
    step(torch.ones(2, 4))
    m.gens[0] = torch.Generator().manual_seed(1)
    with pytest.raises(AtenExecutorError, match=r"G\.gens\[0\] is another object"):
        step(torch.ones(2, 4))


def test_generators_seeded_alike_are_refused_before_planning_naming_them(monkeypatch):
    """Two generators in one state: which one each op draws from the program does not tell. Refused at the program's
    load, naming the node and both attributes, with no plan made and nothing drawn from them."""
    need_generator_export()   # (torch 2.11: export cannot take a torch.Generator)
    torch = _torch()
    import memplan
    from runtime.aten import compile
    from runtime.aten.errors import AtenExecutorError

    def no_plan(*a, **k):
        raise AssertionError("planned before the refusal")

    monkeypatch.setattr(memplan, "plan", no_plan)
    m = _Gens(seeds=(3, 3))
    state = m.g.get_state().clone()
    with pytest.raises(AtenExecutorError) as info:
        compile(m, (torch.ones(2, 4),))
    text = str(info.value)
    assert info.value.node == "rand" and "G.g" in text and "G.gens[0]" in text and "same state" in text, text
    assert torch.equal(m.g.get_state(), state)


@pytest.mark.gpu(backend="torch")
def test_a_module_held_cuda_generator_on_the_gpu():
    """On CUDA without a graph: eager's bits; under ``cuda_graph=True`` refused before the arena (a graph would replay
    the capture's draws: the generator's state is not registered with it)."""
    torch = _torch()
    from runtime.aten import compile
    from runtime.aten.errors import AtenExecutorError

    class C(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.g = torch.Generator(device="cuda").manual_seed(5)

        def forward(self, x):
            return x + torch.rand(x.shape, generator=self.g, device=x.device)

    from memplan.errors import GraphError

    m, mc = C(), C()   # (seeded alike)
    x = torch.ones(4, device="cuda")
    try:
        compile(C(), (x,), cuda_graph=False)
    except GraphError as exc:   # torch 2.11's export cannot lift a CUDA generator: a clear refusal, nothing to run
        assert "torch.export failed" in str(exc) and "Generator" in str(exc), exc
        pytest.skip(f"this torch ({torch.__version__}) cannot export a module-held CUDA generator")
    with pytest.raises(AtenExecutorError, match="cuda_graph=False"):
        compile(C(), (x,), cuda_graph=True)
    step = compile(mc, (x,), cuda_graph=False)
    for _ in range(3):
        assert torch.equal(step(x), m(x))


# ---- refusals before the arena -------------------------------------------------------------------------------------

def test_a_program_refusal_comes_before_planning_and_the_arena(monkeypatch):
    """``x * x.sum().item()``: a non-tensor value an op uses, which no plan can run. Was refused by ``lower_program``
    on the arena's views, after planning and allocating the arena; now before either (``lower.check_lowerable``),
    with the same message, and so for an ``Executor`` built from a given plan."""
    torch = _torch()
    import memplan
    from runtime.aten import compile, executor
    from runtime.aten.errors import AtenExecutorError
    from runtime.aten.program import load_program

    class Item(torch.nn.Module):
        def forward(self, x):
            return x * x.sum().item()

    program = load_program(Item(), (torch.randn(4),))
    plan = memplan.plan(program.graph)

    def no_arena(*a, **k):
        raise AssertionError("the arena was allocated before the refusal")

    monkeypatch.setattr(executor, "build_layout", no_arena)
    with pytest.raises(AtenExecutorError, match="non-tensor value") as info:
        executor.Executor(program, plan, "cpu")
    assert info.value.node == "item"
    monkeypatch.setattr(memplan, "plan", no_arena)
    with pytest.raises(AtenExecutorError, match="non-tensor value") as info:
        compile(Item(), (torch.randn(4),))
    assert info.value.node == "item"


# ---- a return_views output resized past the arena ------------------------------------------------------------------

def _tanh_and_sum():
    torch = _torch()

    class M(torch.nn.Module):
        def forward(self, x):
            return torch.tanh(x * 2 + 1), (x * 3).sum(0)

    return M()


def _resize_then_feed_back(step, module, device: str) -> None:
    torch = _torch()
    for _ in range(3):
        h, s = step(torch.randn(3, 4, device=device))
        want = module(h.clone())
        s.resize_(1 << 16)   # past the arena's end: torch reallocates the arena's one storage
        got = step(h)        # ``h`` lies in the (moved) arena: copied off before its slot is written
        assert all(torch.equal(a, b) for a, b in zip(got, want))


def test_a_return_views_output_resized_past_the_arena_then_fed_back():
    """``s.resize_(65536)`` of a ``return_views`` output reallocates the arena's storage (every view of it moves): the
    executor still looked for fed-back outputs at the old address, so under ``poison`` the next call read NaN for
    ``h``, and every later call too. Now the arena's address is taken anew at each call (``Executor._follow_arena``)."""
    torch = _torch()
    from runtime.aten import compile

    m = _tanh_and_sum()
    step = compile(m, (torch.randn(3, 4),), return_views=True, poison=True)
    _resize_then_feed_back(step, m, "cpu")


@pytest.mark.gpu(backend="torch")
def test_a_return_views_output_resized_past_the_arena_under_a_cuda_graph():
    """The same under a captured CUDA graph: the graph held the arena's old address (freed by the resize) and replayed
    its kernels there; now captured again on the new one."""
    torch = _torch()
    from runtime.aten import compile

    m = _tanh_and_sum().cuda()
    step = compile(m, (torch.randn(3, 4, device="cuda"),), return_views=True, poison=True, cuda_graph=True)
    _resize_then_feed_back(step, m, "cuda")
    x = torch.randn(3, 4, device="cuda")
    assert all(torch.equal(a, b) for a, b in zip(step(x), m(x)))


@pytest.mark.parametrize("change", ["t_", "set_", "as_strided_", "resize_", "unsqueeze_"])
def test_a_callers_metadata_change_to_a_return_views_output_leaves_the_program_alone(change):
    """``y.t_()`` (``set_``, ``as_strided_``, ``resize_``) of a ``return_views`` output changed the executor's own view
    object, which its launches write and read: every later call's ``y[0] * 3`` read ``y``'s bytes in the new strides
    (or another tensor's), silently. Now each call hands out new tensor objects over the arena's bytes."""
    torch = _torch()
    from runtime.aten import compile

    class M(torch.nn.Module):
        def forward(self, x):
            y = (x * 2).relu() + 1
            return y, y[0] * 3, y

    m = M()
    step = compile(m, (torch.randn(4, 4),), return_views=True)
    for _ in range(2):
        y, _z, again = step(torch.randn(4, 4))
        assert again is y   # (one tensor returned twice: one object, as eager's)
        changes = {"t_": lambda t: t.t_(), "set_": lambda t: t.set_(torch.zeros(4, 4)), "resize_": lambda t: t.resize_(3),
                   "as_strided_": lambda t: t.as_strided_((4, 4), (1, 4)), "unsqueeze_": lambda t: t.unsqueeze_(0)}
        changes[change](y)
        x = torch.randn(4, 4)
        got, want = step(x), m(x)
        assert all(torch.equal(a, b) for a, b in zip(got, want))
    with torch.inference_mode():   # (made outside inference mode: the caller may write it outside)
        y = step(torch.randn(4, 4))[0]
    y.add_(1)


def test_a_generator_passed_as_an_argument_is_refused_naming_the_node():
    """``forward(x, g)``: export keeps the argument's generator as a constant (a copy); no module attribute holds it,
    so a call could not draw from the caller's: refused before planning, naming the node."""
    need_generator_export()   # (torch 2.11: export cannot take a torch.Generator)
    torch = _torch()
    from runtime.aten import compile
    from runtime.aten.errors import AtenExecutorError

    class H(torch.nn.Module):
        def forward(self, x, g):
            return x + torch.rand(x.shape, generator=g)

    with pytest.raises(AtenExecutorError, match="passed as an argument") as info:
        compile(H(), (torch.randn(3), torch.Generator().manual_seed(1)))
    assert info.value.node == "rand"


def test_a_view_after_an_in_place_write_of_a_transposed_input_raises_as_eager():
    """``x.add_(1); return x.view(-1)``: the program's ``view`` reads the ``add_`` node, which returns ``x`` itself;
    eager's view of the transposed caller's ``x`` fails after the write, so does the call (refused before it runs:
    eager's call has written ``x`` by then, the refused one has not)."""
    torch = _torch()

    class AV(torch.nn.Module):
        def forward(self, x):
            x.add_(1)
            return x.view(-1) * 2

    class DetachAfter(torch.nn.Module):
        def forward(self, x):
            x.mul_(2).detach_()
            return x + 1

    err = _same_as_eager(AV(), (torch.randn(3, 4),), (torch.randn(4, 3).t(),))
    assert err.node == "view"
    err = _same_as_eager(DetachAfter(), (torch.randn(3),), (torch.randn(4, 3)[1],))
    assert err.node == "detach_"


def test_a_view_of_a_chunk_of_a_transposed_input_raises_as_eager():
    """``a, b = x.chunk(2); a.view(-1)``: the program's ``view`` reads a ``getitem`` of the multi-view op; eager's fails
    on a transposed caller's ``x``, so does the call; ``split`` then ``reshape`` runs, eager's bits."""
    torch = _torch()

    class CV(torch.nn.Module):
        def forward(self, x):
            a, b = x.chunk(2, 0)
            return a.view(-1) * 2 + b.sum()

    class SR(torch.nn.Module):
        def forward(self, x):
            return x.split(2, 1)[1].reshape(-1) * 2

    err = _same_as_eager(CV(), (torch.randn(4, 4),), (torch.randn(4, 4).t(),))
    assert err.node.startswith("view")
    assert _same_as_eager(CV(), (torch.randn(4, 4),), (torch.randn(4, 4),)) is None
    assert _same_as_eager(SR(), (torch.randn(4, 4),), (torch.randn(4, 4).t(),)) is None


def test_a_refused_build_keeps_no_arena_alive(monkeypatch):
    """``x.t_()`` of a user input was refused by the lowering, after the arena was allocated; now before it
    (``check_lowerable``, on the export's fake values). And a refusal the lowering still makes on the arena's views
    (plan-dependent ones) held the arena in the exception's frames, so a caller keeping the exception (a notebook's
    last error) kept the arena allocated; now the frames' locals are cleared on the way out (``release_frames``)."""
    torch = _torch()
    import gc
    import weakref

    from runtime.aten import compile, executor
    from runtime.aten.errors import AtenExecutorError

    made: list = []
    build = executor.build_layout

    def spy(*args, **kwargs):
        layout = build(*args, **kwargs)
        made.append(weakref.ref(layout.arena))
        return layout

    monkeypatch.setattr(executor, "build_layout", spy)

    class T(torch.nn.Module):
        def forward(self, x):
            x.t_()
            return x * 2

    with pytest.raises(AtenExecutorError, match="t_ changes the shape") as info:
        compile(T(), (torch.randn(30, 40),))
    assert info.value.node == "t_" and made == []   # (no arena)

    def refusing(program, views, *args, **kwargs):   # (as a refusal of the plan's placement, on the views)
        held = list(views.values())
        raise AtenExecutorError(f"refused over {len(held)} views", "mul", "aten.mul.Tensor")

    monkeypatch.setattr(executor, "lower_program", refusing)

    class M(torch.nn.Module):
        def forward(self, x):
            return x * 2

    with pytest.raises(AtenExecutorError, match="refused over") as info:
        compile(M(), (torch.randn(30, 40),))
    kept = info.value   # (held, as a caller may)
    gc.collect()
    assert made and made[0]() is None, "the refused build's arena is still alive"
    assert kept.__traceback__ is not None   # (its traceback still prints)


def test_a_program_reused_for_another_module_with_its_own_generator_is_refused():
    """``compile(m2, program=load_program(m1, ...))`` with a parameter-free ``m1``: the launches would draw from
    ``m1.g``, advancing it, where eager's ``m2`` draws from ``m2.g``."""
    torch = _torch()
    need_generator_export()   # (torch 2.11: export cannot take a torch.Generator)
    from runtime.aten import compile
    from runtime.aten.errors import AtenExecutorError
    from runtime.aten.program import load_program

    class G(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.g = torch.Generator().manual_seed(5)

        def forward(self, x):
            return x + torch.rand(x.shape, generator=self.g)

    m1, m2 = G(), G()
    program = load_program(m1, (torch.ones(3),))
    with pytest.raises(AtenExecutorError, match="another module"):
        compile(m2, (torch.ones(3),), program=program)
    step = compile(m1, (torch.ones(3),), program=program)
    assert torch.equal(step(torch.ones(3)), G()(torch.ones(3)))


def test_one_generator_shared_by_two_submodules_draws_as_eager():
    """``m.b.rng = m.a.rng``: one object under two paths is no ambiguity (it was refused as two generators in one
    state); submodules with generators of their own, on 3 streams, draw eager's numbers."""
    need_generator_export()   # (torch 2.11: export cannot take a torch.Generator)
    torch = _torch()
    import copy

    from runtime.aten import compile

    class Sub(torch.nn.Module):
        def __init__(self, seed):
            super().__init__()
            self.rng = torch.Generator().manual_seed(seed)

        def forward(self, x):
            return x * torch.rand(x.shape, generator=self.rng)

    class Top(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = Sub(9), Sub(10)

        def forward(self, x):
            return self.a(x) + self.b(x) + self.a(x)

    for shared in (False, True):
        m = Top()
        if shared:
            m.b.rng = m.a.rng
        mc = copy.deepcopy(m)
        step = compile(mc, (torch.ones(3),), streams=3)
        for _ in range(3):
            x = torch.randn(3)
            assert torch.equal(step(x), m(x)), shared


def test_a_tool_whose_reader_goes_away_exits_quietly(tmp_path):
    """``python -m runtime.aten.sweep --list | head -1`` printed a ``BrokenPipeError`` traceback (the memplan command
    exits 0 quietly there)."""
    _torch()
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen([sys.executable, "-m", "runtime.aten.sweep", "--list"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=tmp_path)
    proc.stdout.close()   # (gone before the tool writes: it imports torch first)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0 and "Traceback" not in err and "BrokenPipe" not in err, err
