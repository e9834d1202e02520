"""Round 67: the watched reads' last holes (CPU): a value ``forward`` (or a hook, or the class's own ``__call__``)
reads as a Python number, changed after compile, must run as eager or be refused, never run the export's silently.

Each test marked "failed before" failed on main before this round (its symptom beside it).
"""

from __future__ import annotations

import _thread
import queue
import re
import threading
import warnings

import pytest
from needs import need

torch = need("torch")

from aten_changes import compile_cpu as _compile  # noqa: E402
from aten_changes import ran_or_refused as _outcome  # noqa: E402
from aten_changes import seeded_linear as _linear  # noqa: E402
from aten_changes import settings_chain as _chain  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


def _value_warnings(m, x=None) -> list[str]:
    """The ``StateWalkWarning`` texts of compiling ``m``."""
    from runtime.aten.walk_bounds import StateWalkWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compile(m, (torch.ones(3) if x is None else x,), streams=1, cuda_graph=False, device="cpu")
    return [str(w.message) for w in caught if issubclass(w.category, StateWalkWarning)]


# ---- 1. work handed to a thread forward neither started nor submitted to an executor --------------------------------

S = torch.tensor([2.0])


class _Handed(nn.Module):
    """``lin(x) * run(read) + S``: ``read`` (a value read of ``S``) runs wherever ``run`` hands it."""

    def __init__(self, run) -> None:
        super().__init__()
        self.lin, self.run = _linear(), run

    def forward(self, x):
        return self.lin(x) * self.run(lambda: S.item()) + S


def _served(q_in, q_out, serve) -> threading.Thread:
    """A daemon thread, started now (before compile), putting ``serve(item)`` into ``q_out`` for each item of
    ``q_in`` (``None`` stops it)."""
    def loop():
        while (item := q_in.get()) is not None:
            q_out.put(serve(item))
            q_in.task_done()

    th = threading.Thread(target=loop, daemon=True)
    th.start()
    return th


_QUEUES = {   # (how forward hands it, what the serving thread does with an item)
    "a callable": (lambda q, read: q.put(read), lambda fn: fn()),
    "a callable and its arguments": (lambda q, read: q.put((lambda _a: read(), 0)), lambda it: it[0](it[1])),
    "the tensor": (lambda q, read: q.put(S), lambda t: t.item()),
    "the tensor in a dict": (lambda q, read: q.put({"t": S}), lambda d: float(d["t"])),
    "the tensor's bound method": (lambda q, read: q.put(S.item), lambda f: f()),
}


@pytest.mark.parametrize("how", sorted(_QUEUES))
def test_a_value_read_by_a_thread_serving_a_queue_is_watched(how):
    """Failed before (all five): the thread serving the queue reads under no mode of the export's; ``S.mul_(0.25)``
    after compile ran the export's numbers (compiled 2.97 where eager gave 2.95)."""
    global S
    S = torch.tensor([2.0])
    put, serve = _QUEUES[how]
    q_in, q_out = queue.Queue(), queue.Queue()
    th = _served(q_in, q_out, serve)
    try:
        m = _Handed(lambda read: (put(q_in, read), q_out.get())[1])
        assert _outcome(m, lambda: S.mul_(0.25)) == "refused"
    finally:
        q_in.put(None)
        th.join(30)


def test_a_tensor_put_into_a_queue_and_only_computed_with_runs_as_eager_after_a_change():
    """A tensor handed over counts as read, but a proof by export again keeps what no thread read as a number."""
    global S
    S = torch.tensor([2.0])
    q_in, q_out = queue.Queue(), queue.Queue()
    th = _served(q_in, q_out, lambda t: 3.0)   # (never reads it)
    try:
        m = _Handed(lambda read: (q_in.put(S), q_out.get())[1])
        assert _outcome(m, lambda: S.mul_(0.25)) == "ran"
    finally:
        q_in.put(None)
        th.join(30)


_POOL = None


def _pooled(call):
    return lambda read: call(_POOL, read)


_POOLS = {
    "apply": lambda p, read: p.apply(read),
    "apply_async": lambda p, read: p.apply_async(read).get(30),
    "map": lambda p, read: p.map(lambda _i: read(), [0])[0],
    "map chunked": lambda p, read: p.map(lambda _i: read(), [0, 1], chunksize=2)[0],
    "starmap": lambda p, read: p.starmap(lambda _i: read(), [(0,)])[0],
    "imap": lambda p, read: next(p.imap(lambda _i: read(), [0])),
    "imap_unordered": lambda p, read: next(p.imap_unordered(lambda _i: read(), [0])),
    "a callback": lambda p, read: (lambda box: (p.apply_async(int, callback=lambda _r: box.append(read())).wait(30),
                                                 _settled(box))[1])([]),
}


def _settled(box):
    """The callback's value (the result thread sets it just after ``wait`` returns)."""
    import time

    for _ in range(3000):
        if box:
            return box[0]
        time.sleep(0.01)
    raise AssertionError("the callback never ran")


@pytest.mark.parametrize("how", sorted(_POOLS))
def test_a_value_read_in_a_thread_pool_made_before_compile_is_watched(how):
    """Failed before (all eight): ``multiprocessing.pool.ThreadPool``'s workers (and its result thread, which runs
    the callbacks) read under no mode of the export's; the export's numbers ran silently."""
    global S, _POOL
    from multiprocessing.pool import ThreadPool

    S = torch.tensor([2.0])
    with ThreadPool(1) as _POOL:
        _POOL.apply(int)   # (its threads run now, before compile)
        assert _outcome(_Handed(_pooled(_POOLS[how])), lambda: S.mul_(0.25)) == "refused"
        assert _POOL.apply(torch._C._len_torch_function_stack) == 0   # (its worker carries no mode after)


def test_a_thread_pool_made_in_forward_is_watched():
    from multiprocessing.pool import ThreadPool

    global S
    S = torch.tensor([2.0])

    def run(read):
        with ThreadPool(1) as p:
            return p.apply(read)

    assert _outcome(_Handed(run), lambda: S.mul_(0.25)) == "refused"


def _raw_thread(read):
    out, done = [], threading.Event()
    _thread.start_new_thread(lambda: (out.append(read()), done.set()), ())
    assert done.wait(30)
    return out[0]


def test_a_value_read_in_a_thread_of_start_new_thread_is_watched():   # failed before: the export's numbers ran
    global S
    S = torch.tensor([2.0])
    assert _outcome(_Handed(_raw_thread), lambda: S.mul_(0.25)) == "refused"


def test_the_channels_are_pythons_again_after_compile_and_other_threads_unwatched():
    from multiprocessing.pool import ThreadPool

    from runtime.aten.value_reads import watch_value_reads

    put, start_new = queue.Queue.put, _thread.start_new_thread
    own = {name for name in ("apply_async", "_map_async", "imap", "imap_unordered") if name in vars(ThreadPool)}
    other = torch.tensor([5.0])
    q_in, q_out = queue.Queue(), queue.Queue()
    th = _served(q_in, q_out, lambda t: t.item())
    go = threading.Event()   # (a thread watching nothing, started before, hands a tensor over: not recorded)
    other_thread = threading.Thread(target=lambda: (go.wait(30), q_in.put(other)))
    other_thread.start()
    try:
        with watch_value_reads(torch) as reads:
            wrapped = queue.Queue.put is not put and _thread.start_new_thread is not start_new
            go.set()
            assert q_out.get(timeout=30) == 5.0
    finally:
        go.set()
        other_thread.join(30)
        q_in.put(None)
        th.join(30)
    # (the put of a thread watching nothing is not recorded; round 68: the serving thread's read of it is, as one
    # no mode saw, ``loose_reads``: which export a thread serves cannot be told)
    assert wrapped and "(put into a queue)" not in reads.get(id(other), "")
    assert reads.get(id(other), "").endswith("which compile does not watch)")
    assert queue.Queue.put is put and _thread.start_new_thread is start_new
    assert {name for name in ("apply_async", "_map_async", "imap", "imap_unordered") if name in vars(ThreadPool)} == own
    assert torch._C._len_torch_function_stack() == 0


# ---- 2. torch._C.DisableTorchFunction held in a closure cell, a default argument, an object's attribute --------------

D = torch.tensor([2.0, 3.0])


def _reads_under(dtf):
    with dtf():
        k = D.tolist()[0]
    return k


def _closure_module():
    dtf = torch._C.DisableTorchFunction

    class Closure(nn.Module):
        def forward(self, x):
            with dtf():
                k = D.tolist()[0]
            return x * k + D

    return Closure()


class _Default(nn.Module):
    def forward(self, x, dtf=torch._C.DisableTorchFunction):
        return x * _reads_under(dtf) + D


class _KwDefault(nn.Module):
    def forward(self, x, *, dtf=torch._C.DisableTorchFunction):
        return x * _reads_under(dtf) + D


class _Attribute(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.dtf = torch._C.DisableTorchFunction

    def forward(self, x):
        return x * _reads_under(self.dtf) + D


class _Holder:
    def __init__(self) -> None:
        self.inner = self
        self.dtf = torch._C.DisableTorchFunction


class _ObjectAttribute(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cfg = _Holder()

    def forward(self, x):
        return x * _reads_under(self.cfg.inner.dtf) + D


class _ClassAttribute(nn.Module):
    dtf = torch._C.DisableTorchFunction

    def forward(self, x):
        return x * _reads_under(self.dtf) + D


def _helper_factory():
    dtf = torch._C.DisableTorchFunction
    return lambda: _reads_under(dtf)


_HELPER = _helper_factory()   # (a global function of this module holding it in its closure)


class _GlobalHelper(nn.Module):
    def forward(self, x):
        return x * _HELPER() + D


class _Hooked(nn.Module):
    def forward(self, x):
        return x + D


def _hooked():
    m = _Hooked()
    dtf = torch._C.DisableTorchFunction
    m.register_forward_hook(lambda _m, _i, out: out * _reads_under(dtf))
    return m


_DISABLES = {"closure cell": _closure_module, "default argument": _Default, "keyword default": _KwDefault,
             "module attribute": _Attribute, "settings object's attribute": _ObjectAttribute,
             "class attribute": _ClassAttribute, "a global helper's closure": _GlobalHelper,
             "a hook's closure": _hooked}


@pytest.mark.parametrize("where", sorted(_DISABLES))
def test_disable_torch_function_held_past_a_global_name_is_seen(where):
    """Failed before (all eight): under torch's own class the watch saw no read; after ``D.mul_(1.5)`` the compiled
    call returned the export's numbers ([7.0, 8.5] where eager gives [9.0, 10.5])."""
    global D
    D = torch.tensor([2.0, 3.0])
    m = _DISABLES[where]()
    assert _outcome(m, lambda: D.mul_(1.5), torch.ones(2)) == "refused"
    original = torch._C.DisableTorchFunction   # (every place holds torch's class again after the export)
    assert type(original).__module__ != "runtime.aten.value_reads"
    assert _Default.forward.__defaults__ == (original,) and _KwDefault.forward.__kwdefaults__ == {"dtf": original}
    assert vars(_ClassAttribute)["dtf"] is original and _HELPER.__closure__[0].cell_contents is original
    if isinstance(m, (_Attribute, _ObjectAttribute)):
        assert (m.dtf if isinstance(m, _Attribute) else m.cfg.dtf) is original


_KINDS = ("cell", "default", "kwdefault", "attribute", "class attribute")


def _place(kind: str, depth: int, dtf):
    """A user object holding ``dtf`` by ``kind``, ``depth`` objects below the root's attribute ``h``; the read back."""
    class Obj:
        pass

    root = cur = Obj()
    for _ in range(depth):
        cur.h = Obj()
        cur = cur.h
    if kind == "cell":
        cur.h = (lambda d: (lambda: d))(dtf)
        return root, lambda: cur.h.__closure__[0].cell_contents
    if kind == "default":
        cur.h = lambda d=dtf: d
        return root, lambda: cur.h.__defaults__[0]
    if kind == "kwdefault":
        cur.h = lambda *, d=dtf: d
        return root, lambda: cur.h.__kwdefaults__["d"]
    if kind == "attribute":
        cur.h = dtf
        return root, lambda: vars(cur)["h"]
    Obj.h2 = dtf
    return root, lambda: vars(Obj)["h2"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_KINDS), st.integers(0, 3)), min_size=1, max_size=4))
def test_the_disable_walk_swaps_each_place_within_its_depth_and_puts_each_back(places):
    """Property: ``swap_in``'s walk (from a user module's globals) points every place within ``DEPTH`` objects at the
    stand-in, none past it, and ``swap_back`` leaves every one holding torch's class again."""
    import types

    from runtime.aten.disable_names import DEPTH, swap_back, swap_in

    original = torch._C.DisableTorchFunction

    class StandIn:
        pass

    mod = types.ModuleType("user_round67_places")
    import sys

    built = [(_place(kind, depth, original), kind, depth) for kind, depth in places]
    for i, ((root, _read), _kind, _depth) in enumerate(built):
        setattr(mod, f"root{i}", root)
    for (root, _read), _kind, _depth in built:
        type(root).__module__ = mod.__name__   # (the user's classes: walked)
    sys.modules[mod.__name__] = mod
    try:
        done = swap_in(original, StandIn)
        for (_root, read), kind, depth in built:
            reach = depth + (1 if kind == "attribute" else 2)   # (the global's object is 1; a function's is 1 more)
            if kind == "class attribute":   # (the class of an object reached: walked)
                assert read() is StandIn
            else:
                assert (read() is StandIn) == (reach <= DEPTH), (kind, depth)
        swap_back(done, original, StandIn)
        assert all(read() is original for (_root, read), _kind, _depth in built)
    finally:
        del sys.modules[mod.__name__]


# ---- 3. the call-only watch is armed at least once, or the compile is refused ----------------------------------------

def test_an_export_that_calls_forward_past_call_impl_is_refused(monkeypatch):
    """Failed before: torch.fx's module call made past ``_call_impl`` (as a torch calling ``.forward`` directly
    would) armed no watch; after ``U["t"].mul_(1.5)`` the compiled call ran the export's numbers (silently)."""
    import torch.fx._symbolic_trace as symbolic

    from runtime.aten.value_reads import UNARMED

    if not hasattr(symbolic, "_orig_module_call"):
        pytest.skip("this torch's export calls modules another way")
    u = {"t": torch.tensor([2.0])}

    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = _linear()

        def forward(self, x):
            return self.lin(x) * u["t"].tolist()[0] + u["t"]

    monkeypatch.setattr(symbolic, "_orig_module_call", lambda mod, *a, **k: mod.forward(*a, **k))
    with pytest.raises(AtenExecutorError, match=re.escape(UNARMED[:60])):
        _compile(M(), torch.ones(3))
    monkeypatch.undo()
    assert _outcome(M(), lambda: u["t"].mul_(1.5)) == "refused"   # (torch's own path: watched)


class _Direct(nn.Module):
    """Its own ``__call__`` calls ``forward`` itself (never ``_call_impl``)."""

    def __init__(self, u) -> None:
        super().__init__()
        self.lin, self.u = _linear(), u

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        return self.lin(x) * self.u["t"].tolist()[0] + self.u["t"]


def test_a_class_call_of_its_own_that_calls_forward_itself_is_watched():
    """Failed before: the call never reached ``_call_impl``, where every watch of the module's call was armed; after
    ``u["t"].mul_(1.5)`` the compiled call ran the export's numbers silently."""
    u = {"t": torch.tensor([2.0])}
    assert _outcome(_Direct(u), lambda: u["t"].mul_(1.5)) == "refused"
    assert _Direct.__call__.__qualname__ == "_Direct.__call__"


# ---- 4. a value read in the class's own __call__, by a lambda hook, deep in a settings object -----------------------

class _OwnCall(nn.Module):
    """Its own ``__call__`` reads ``d["t"]``, a dict it was given (a private attribute: no place watches it)."""

    def __init__(self, d) -> None:
        super().__init__()
        self.lin, self._d = _linear(), d

    def __call__(self, x):
        return super().__call__(x) * self._d["t"].item()

    def forward(self, x):
        return self.lin(x)


def test_a_value_read_in_the_classs_own_call_is_watched():
    """Failed before: the read runs outside ``_call_impl``, where the value-read mode was armed; after
    ``d["t"].mul_(1.5)`` the compiled call ran the export's 2.0 silently."""
    d = {"t": torch.tensor([2.0])}
    m = _OwnCall(d)
    assert _outcome(m, lambda: d["t"].mul_(1.5)) == "refused"
    assert "__call__" in vars(_OwnCall) and _OwnCall.__call__.__qualname__ == "_OwnCall.__call__"   # (put back)


def test_a_value_read_in_an_inherited_own_call_is_watched_and_the_subclass_left_as_it_was():
    class Sub(_OwnCall):
        pass

    d = {"t": torch.tensor([2.0])}
    assert _outcome(Sub(d), lambda: d["t"].mul_(1.5)) == "refused"
    assert "__call__" not in vars(Sub)


H = torch.tensor([2.0])


def test_a_lambda_hook_reading_a_global_as_a_number_is_watched_not_warned():
    """Failed before: warned at compile (StateWalkWarning), then ``H.mul_(1.5)`` ran the export's 2.0 silently."""
    global H
    H = torch.tensor([2.0])

    def build():
        lin = _linear()
        lin.register_forward_hook(lambda _m, _i, out: out * float(H))
        return lin

    assert not any("as Python numbers" in t for t in _value_warnings(build()))
    assert _outcome(build(), lambda: H.mul_(1.5)) == "refused"


class _Deep(nn.Module):
    def __init__(self, cfg) -> None:
        super().__init__()
        self.lin, self.cfg = _linear(), cfg

    def forward(self, x):
        o = self.cfg
        while hasattr(o, "a"):
            o = o.a
        return self.lin(x) * o.t.item()


@pytest.mark.parametrize("depth", [6, 9, 12])
def test_a_tensor_deep_in_a_settings_object_read_as_a_number_is_watched(depth):
    """Failed before (9 and 12): warned at compile, then ``t.mul_(1.5)`` ran the export's 2.0 silently (6 passed)."""
    root, cur = _chain(depth)
    assert not any("as Python numbers" in t for t in _value_warnings(_Deep(root)))
    assert _outcome(_Deep(root), lambda: cur.t.mul_(1.5)) == "refused"
    with pytest.raises(AtenExecutorError, match="changed since compile"):
        step = _compile(_Deep(root), torch.ones(3))
        cur.t.mul_(2.0)
        step(torch.ones(3))
