"""Round 68: the watched reads round 67 left (CPU): a value ``forward`` reads, or a flag it asks, that differs after
compile (or between the export and eager) must run as eager or be refused, never run the export's silently.

Each test marked "failed before" failed on main before this round (its symptom beside it).
"""

from __future__ import annotations

import _thread
import asyncio
import collections
import functools
import queue
import threading
import warnings

import pytest
from needs import need

torch = need("torch")

from aten_changes import Settings, settings_chain  # noqa: E402
from aten_changes import compile_cpu as _compile  # noqa: E402
from aten_changes import ran_or_refused as _outcome  # noqa: E402
from aten_changes import seeded_linear as _linear  # noqa: E402
from torch import nn  # noqa: E402

from runtime.aten.errors import AtenExecutorError  # noqa: E402

# ---- 1. forward asking whether torch is tracing it -------------------------------------------------------------------


class _Branch(nn.Module):
    def forward(self, x):
        if torch.compiler.is_compiling():
            return x * 2
        return x * 3


class _Exporting(nn.Module):
    def forward(self, x):
        return x * (2 if torch.compiler.is_exporting() else 3)


class _Dynamo(nn.Module):
    def forward(self, x):
        return x * (2 if torch._dynamo.is_compiling() else 3)


class _Fx(nn.Module):
    def forward(self, x):
        import torch.fx._symbolic_trace as st

        return x * (2 if st.is_fx_tracing() else 3)


class _SkipsCheck(nn.Module):
    """Skips an assert under the export: both paths compute the same values."""

    def forward(self, x):
        if not torch.compiler.is_compiling():
            assert x.shape[0] == 3
        return x * 3


def _flag_warnings(m, x):
    from runtime.aten.flag_reads import TracingFlagWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        step = _compile_loud(m, x)
    return step, [str(w.message) for w in caught if issubclass(w.category, TracingFlagWarning)]


def _compile_loud(m, x):
    from runtime.aten import compile

    return compile(m, (x,), streams=1, cuda_graph=False, poison=True, device="cpu")


@pytest.mark.parametrize("m", [_Branch, _Exporting, _Dynamo, _Fx], ids=lambda c: c.__name__)
def test_a_branch_on_a_tracing_flag_that_changes_values_is_refused_naming_flag_and_line(m):
    """Failed before (all four): compiled silently; the compiled call returned [2, 2, 2] where eager gave [3, 3, 3]."""
    with pytest.raises(AtenExecutorError, match=r"forward asks whether torch is tracing it \(\S+\(\) at "
                                                r"test_aten_round68\.py:\d+\).*differ from eager's"):
        _compile_loud(m(), torch.ones(3))


def test_a_flag_that_only_skips_a_check_compiles_with_one_warning_naming_it():
    """Failed before: compiled with no word of the flag (the export's path, unproven)."""
    from runtime.aten import flag_reads

    flag_reads._WARNED.clear()
    step, said = _flag_warnings(_SkipsCheck(), torch.ones(3))
    assert torch.equal(step(torch.ones(3)), _SkipsCheck()(torch.ones(3)))
    assert len(said) == 1 and "torch.compiler.is_compiling() at test_aten_round68.py:" in said[0]
    assert _flag_warnings(_SkipsCheck(), torch.ones(3))[1] == []   # (once per flag and line)


def test_the_comparison_leaves_the_buffers_and_the_rng_as_they_were():
    """The comparison's two runs (compiled and eager) of a train-mode BatchNorm put its statistics back, and draw
    from a forked RNG: compile leaves both as an export alone does."""

    class Norm(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bn = nn.BatchNorm1d(3)

        def forward(self, x):
            y = self.bn(x)
            if not torch.compiler.is_compiling():
                assert y.dim() == 2
            return y + torch.rand(3)

    m = Norm().train()
    x = torch.randn(4, 3)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    torch.manual_seed(5)
    step, said = _flag_warnings(m, x)
    drawn = torch.rand(2)
    torch.manual_seed(5)
    assert torch.equal(drawn, torch.rand(2))
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    assert said or step.program.flag_reads   # (compared: agreed under one RNG state)


def test_a_tiny_llama_compiles_bitwise_with_no_tracing_flag_warning(monkeypatch):
    """transformers 5's checks skipped under the export (masking_utils, output_capturing, utils/generic) ask
    ``is_compiling()``: an installed package's reads are not compared (no weight copy, no extra run at compile, no
    refusal of GPU rounding), and no warning."""
    transformers = need("transformers")
    try:
        llama_config = transformers.LlamaConfig
    except (ImportError, RuntimeError) as exc:   # (a torchvision of another torch beside it: torch 2.11's run)
        pytest.skip(f"transformers' Llama does not import here: {exc}")
    cfg = llama_config(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    torch.manual_seed(0)
    m = transformers.LlamaForCausalLM(cfg).eval()
    ids = torch.arange(6).unsqueeze(0)
    from runtime.aten import compile, flag_reads
    from runtime.aten.flag_reads import TracingFlagWarning

    def compared(*args, **kwargs):
        raise AssertionError("an installed package's flag reads were compared with eager at compile")

    monkeypatch.setattr(flag_reads, "_both", compared)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        step = compile(m, (ids,), kwargs={"use_cache": False}, streams=1, cuda_graph=False, device="cpu")
    assert not [w for w in caught if issubclass(w.category, TracingFlagWarning)]
    assert step.program.flag_reads   # (it asked: recorded, not compared)
    assert torch.equal(step(ids, use_cache=False).logits, m(ids, use_cache=False).logits)


# ---- 2. threads fed by channels no wrap reaches ----------------------------------------------------------------------

S = torch.tensor([2.0])


class _Handed(nn.Module):
    def __init__(self, run) -> None:
        super().__init__()
        self.lin, self.run = _linear(), run

    def forward(self, x):
        return self.lin(x) * self.run() + S


def _simple_queue():
    q_in, q_out = queue.SimpleQueue(), queue.SimpleQueue()

    def loop():
        while (t := q_in.get()) is not None:
            q_out.put(t.item())

    threading.Thread(target=loop, daemon=True).start()
    return lambda: (q_in.put(S), q_out.get(timeout=30))[1], lambda: q_in.put(None)


def _deque_event():
    dq, ev, done, box = collections.deque(), threading.Event(), threading.Event(), []

    def loop():
        while True:
            ev.wait()
            ev.clear()
            fn = dq.popleft()
            if fn is None:
                return
            box.append(fn())
            done.set()

    threading.Thread(target=loop, daemon=True).start()

    def run():
        done.clear()
        dq.append(lambda: float(S))
        ev.set()
        assert done.wait(30)
        return box.pop()

    return run, lambda: (dq.append(None), ev.set())


def _asyncio_soon():
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()

    def run():
        out, done = [], threading.Event()
        loop.call_soon_threadsafe(lambda: (out.append(S.item()), done.set()))
        assert done.wait(30)
        return out[0]

    return run, lambda: loop.call_soon_threadsafe(loop.stop)


def _asyncio_coroutine():
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()

    async def read():
        return bool(S > 1) + S.item()

    return lambda: asyncio.run_coroutine_threadsafe(read(), loop).result(30), lambda: loop.call_soon_threadsafe(
        loop.stop)


_SPAWN = _thread.start_new_thread   # (bound to another name before compile)


def _renamed_spawn():
    def run():
        out, done = [], threading.Event()
        _SPAWN(lambda: (out.append(int(S) + S.tolist()[0]), done.set()), ())
        assert done.wait(30)
        return out[0]

    return run, lambda: None


_CHANNELS = {"SimpleQueue": _simple_queue, "deque and Event": _deque_event, "call_soon_threadsafe": _asyncio_soon,
             "run_coroutine_threadsafe": _asyncio_coroutine, "renamed start_new_thread": _renamed_spawn}


@pytest.mark.parametrize("how", sorted(_CHANNELS))
def test_a_value_read_by_a_thread_fed_by_an_unwrapped_channel_is_watched(how):
    """Failed before (all five): the serving thread read under no mode of the export's; after ``S.mul_(0.25)`` the
    compiled call ran the export's numbers (0.466 where eager gave 0.455)."""
    global S
    S = torch.tensor([2.0])
    run, stop = _CHANNELS[how]()
    try:
        assert _outcome(_Handed(run), lambda: S.mul_(0.25)) == "refused"
    finally:
        stop()
    assert [n for n in ("item", "tolist", "__bool__") if n in vars(torch.Tensor)] == []   # (torch's again)


def test_a_served_thread_that_only_computes_with_the_tensor_runs_as_eager_after_a_change():
    """No value read, nothing recorded: the change runs (as eager) where the program reads the tensor itself."""
    global S
    S = torch.tensor([2.0])
    q_in, q_out = queue.SimpleQueue(), queue.SimpleQueue()

    def loop():
        while (t := q_in.get()) is not None:
            q_out.put(3.0 + 0 * t.numel())

    threading.Thread(target=loop, daemon=True).start()
    try:
        assert _outcome(_Handed(lambda: (q_in.put(S), q_out.get(timeout=30))[1]), lambda: S.mul_(0.25)) == "ran"
    finally:
        q_in.put(None)


# ---- 3. torch._C.DisableTorchFunction where the name swap does not reach --------------------------------------------

D = torch.tensor([2.0])


class _Obj:
    pass


def _deep(dtf):
    root = cur = _Obj()
    for _ in range(5):
        cur.a = _Obj()
        cur = cur.a
    cur.dtf = dtf
    return root


def _deep_get(h):
    while hasattr(h, "a"):
        h = h.a
    return h.dtf


_HOLDERS = {"list": (lambda d: [d], lambda h: h[0]), "dict": (lambda d: {"d": d}, lambda h: h["d"]),
            "tuple": (lambda d: (d,), lambda h: h[0]),
            "functools.partial": (lambda d: functools.partial(lambda v: v, d), lambda h: h()),
            "six objects deep": (_deep, _deep_get)}


class _UnderDisable(nn.Module):
    def __init__(self, holder, get) -> None:
        super().__init__()
        self.h, self.get = holder, get

    def forward(self, x):
        with self.get(self.h)():
            k = D.tolist()[0]
        return x * k + D


@pytest.mark.parametrize("where", sorted(_HOLDERS))
def test_disable_torch_function_held_where_no_swap_reaches_is_seen(where):
    """Failed before (all five): under torch's own class no mode is consulted; after ``D.mul_(1.5)`` the compiled
    call ran the export's numbers ([5.0] where eager gave [7.0])."""
    global D
    D = torch.tensor([2.0])
    make, get = _HOLDERS[where]
    assert _outcome(_UnderDisable(make(torch._C.DisableTorchFunction), get), lambda: D.mul_(1.5)) == "refused"


def test_the_getters_are_torchs_again_after_a_refused_compile_and_export_reads_are_not_doubled():
    """The backstop is set for the export's length alone, also when compile raises; reads the mode saw are
    recorded once, at forward's line (not the getter's)."""
    from runtime.aten import compile

    class Reads(nn.Module):
        def forward(self, x):
            return x * D.item()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        said = r"torch\.compiler\.is_compiling\(\) at test_aten_round68\.py:\d+\), which torch\.export answers True"
        with pytest.raises(AtenExecutorError, match=said):
            compile(_Branch(), (torch.ones(3),), streams=1, cuda_graph=False, device="cpu")
        step = compile(Reads(), (torch.ones(3),), streams=1, cuda_graph=False, device="cpu")
    assert [n for n in ("item", "tolist", "__float__", "__bool__") if n in vars(torch.Tensor)] == []
    assert [where.split(":")[0] for _i, where in step.program.value_reads] == ["test_aten_round68.py"]


def test_an_export_failure_in_a_branch_still_names_forwards_line():
    """A refused branch on a global tensor names forward's line, not the backstop getter's frame."""

    class Branches(nn.Module):
        def forward(self, x):
            return x * 2 if D > 1 else x

    with pytest.raises(AtenExecutorError, match=r"test_aten_round68\.py:\d+ \(`return x \* 2 if D > 1 else x`\)"):
        _compile(Branches(), torch.ones(3))


# ---- 4. a tensor deep in a settings object, or in a slotted one, replaced after compile --------------------------------


def _last(o):
    while hasattr(o, "a"):
        o = o.a
    return o


class _DeepTensor(nn.Module):
    def __init__(self, cfg) -> None:
        super().__init__()
        self.lin, self.cfg = _linear(), cfg

    def forward(self, x):
        return self.lin(x) * _last(self.cfg).t


@pytest.mark.parametrize("depth", [10, 12, 30])
@pytest.mark.parametrize("how", ["its tensor", "its holder", "the settings object, by a copy"])
def test_a_tensor_deeper_than_nine_objects_replaced_after_compile_is_refused(depth, how):
    """Failed before (10, 12, 30; each way): warned at compile only, then the compiled call ran the old tensor
    ([-0.034, ...] where eager gave [-0.97, ...])."""
    import copy

    root, _ = settings_chain(depth)
    m = _DeepTensor(root)

    def change():
        if how == "its tensor":
            _last(root).t = torch.tensor([5.0])
        elif how == "its holder":
            holder = root
            for _ in range(depth - 2):
                holder = holder.a
            holder.a = Settings()
            holder.a.t = torch.tensor([5.0])
        else:
            m.cfg = copy.deepcopy(root)
            _last(m.cfg).t = torch.tensor([5.0])

    assert _outcome(m, change) == "refused"


class _Slotted:
    __slots__ = ("k", "t")

    def __init__(self, k, t) -> None:
        self.k, self.t = k, t


class _SlotBase:
    __slots__ = ("t",)


class _SlotChild(_SlotBase):
    __slots__ = ("k",)


class _UsesSlots(nn.Module):
    def __init__(self, s) -> None:
        super().__init__()
        self.lin, self.s = _linear(), s

    def forward(self, x):
        return self.lin(x) * self.s.k + self.s.t


def _inherited(k, t):
    s = _SlotChild()
    s.k, s.t = k, t
    return s


@pytest.mark.parametrize("make", [_Slotted, _inherited], ids=["slots", "inherited slots"])
def test_a_slotted_settings_objects_tensor_replaced_after_compile_is_refused(make):
    """Failed before: a slotted object was no settings object (no ``__dict__``): ``s.t = torch.tensor([4.0])``
    after compile ran the old tensor silently."""
    s = make(2.0, torch.tensor([1.0]))
    assert _outcome(_UsesSlots(s), lambda: setattr(s, "t", torch.tensor([4.0]))) == "refused"
    s = make(2.0, torch.tensor([1.0]))
    assert _outcome(_UsesSlots(s), lambda: s.t.mul_(3.0)) == "ran"   # (in place: the program reads it itself)
