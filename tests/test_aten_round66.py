"""Round 66: the remaining holes in the watch of the values ``forward`` (and what it calls) reads (CPU).

A compiled call runs no Python: a value changed after compile must leave the program right, or be refused with an
``AtenExecutorError`` saying what changed (at the call) or what compile cannot watch (at compile), never run the
export's value silently. Each test marked "failed before" failed on main before this round (its symptom beside it).
"""

from __future__ import annotations

import math
import re

import pytest
from needs import need

torch = need("torch")

from aten_changes import compile_cpu as _compile  # noqa: E402
from aten_changes import ran_or_refused as _runs_as_eager_or_refused  # noqa: E402
from aten_changes import seeded_linear as _linear  # noqa: E402
from aten_changes import settings_chain as _chain  # noqa: E402
from torch import nn  # noqa: E402

from runtime.aten.errors import AtenExecutorError  # noqa: E402

NAN = float("nan")


class _Cfg:
    def __init__(self, **kw) -> None:
        self.__dict__.update(kw)


# ---- 4b. a NaN-sign change names each sign --------------------------------------------------------------------------

class _Signs(nn.Module):
    def __init__(self, cfg) -> None:
        super().__init__()
        self.lin, self.cfg = _linear(), cfg

    def forward(self, x):
        return self.lin(x) * (1 if math.copysign(1, self.cfg.t) > 0 else -1)


def test_a_nan_sign_change_says_which_sign_each_had():   # failed before: "cfg.t is nan now, nan at compile"
    m = _Signs(_Cfg(t=NAN))
    step = _compile(m, torch.ones(3))
    m.cfg.t = -NAN
    with pytest.raises(AtenExecutorError, match=re.escape("cfg.t is -nan now, +nan at compile")):
        step(torch.ones(3))


def test_value_text_writes_each_nan_with_its_sign_and_odd_payloads():
    import struct

    from runtime.aten.settings import value_text

    odd = struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000001))[0]
    assert [value_text(v) for v in (NAN, -NAN, odd, complex(NAN, -NAN), (NAN, 1.0, (-NAN,)), 1.5, "nan")] == [
        "+nan", "-nan", "+nan(0x7ff8000000000001)", "complex(+nan, -nan)", "(+nan, 1.0, (-nan,))", "1.5", "'nan'"]


# ---- 2a. a tensor's values read through its memory: DLPack, NumPy, memoryview, bytes --------------------------------

class _Memory(nn.Module):
    """``lin(x) * read(self.t) + self.t``: ``self.t`` read as numbers (by ``read``) and held by the program."""

    def __init__(self, read) -> None:
        super().__init__()
        self.lin, self.t, self.read = _linear(), torch.tensor([2.0]), read

    def forward(self, x):
        return self.lin(x) * float(self.read(self.t)) + self.t


def test_a_tensor_read_through_dlpack_is_watched():   # failed before: the export's 2.0 (compiled 2.97, eager 2.95)
    import numpy as np

    m = _Memory(lambda t: np.from_dlpack(t)[0])
    _runs_as_eager_or_refused(m, lambda: m.t.mul_(1.5))


@pytest.mark.parametrize("how", ["numpy", "asarray", "memoryview", "bytes"])
def test_a_tensor_read_through_numpy_memory_is_refused_at_compile_naming_it(how):
    """Failed before: torch's raw GraphError ("Cannot access data pointer ... custom kernel"): the line names the
    lambda's argument, no global or attribute; now the frame's variable is named."""
    import numpy as np

    read = {"numpy": lambda t: t.numpy()[0], "asarray": lambda t: np.asarray(t)[0],
            "memoryview": lambda t: np.frombuffer(memoryview(t.numpy()), dtype=np.float32)[0],
            "bytes": lambda t: np.frombuffer(bytes(t.numpy()), dtype=np.float32)[0]}[how]
    with pytest.raises(AtenExecutorError, match=r"reads the values of the tensor in the argument t of .*<lambda> through its memory .*"
                       r"at test_aten_round66\.py:\d+"):
        _compile(_Memory(read), torch.ones(3))


# ---- 4a. a branch in a local lambda on a tensor reached through a local name ---------------------------------------

_T = torch.tensor([2.0])


class _LocalLambda(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = _linear()

    def forward(self, x):
        u = _T
        f = lambda v: v * 2 if u > 1 else v  # noqa: E731
        return f(self.lin(x))


class _InputBranch(nn.Module):
    def forward(self, x):
        f = lambda v: v * 2 if v.sum() > 1 else v  # noqa: E731
        return f(x)


def test_a_local_lambda_branch_on_a_local_tensor_names_it_and_the_line():   # failed before: torch's raw GraphError
    with pytest.raises(AtenExecutorError, match=r"the tensor in the closure variable u of "
                                                r"_LocalLambda\.forward\.<locals>\.<lambda> at test_aten_round66\.py:\d+ "
                                                r"\(`f = lambda v: v \* 2 if u > 1 else v"):
        _compile(_LocalLambda(), torch.ones(3))


def test_a_local_lambda_branch_on_an_input_stays_torchs_refusal():
    """An input's values (export's stand-in) are no tensor a program holds: torch's own words stand."""
    from memplan.errors import GraphError

    with pytest.raises(GraphError, match="data-dependent"):
        _compile(_InputBranch(), torch.ones(3))


# ---- 1. value reads in threads forward starts ------------------------------------------------------------------------

S = torch.tensor([2.0])
_POOL = None


def _in_thread(fn):
    import threading

    out = []
    th = threading.Thread(target=lambda: out.append(fn()))
    th.start()
    th.join()
    return out[0]


def _in_new_pool(fn):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as ex:
        return ex.submit(fn).result()


def _in_old_pool(fn):   # (a pool made before compile: its worker already runs)
    return _POOL.submit(fn).result()


class _Threads(nn.Module):
    """``lin(x) * k + S``, ``k`` read from ``S``'s values in another thread (``S`` is also the program's)."""

    def __init__(self, run, read) -> None:
        super().__init__()
        self.lin, self.run, self.read = _linear(), run, read

    def forward(self, x):
        return self.lin(x) * self.run(self.read) + S


_RUNS = {"thread": _in_thread, "new pool": _in_new_pool, "old pool": _in_old_pool}
_READS = {"item": lambda: S.item(), "bool of a comparison": lambda: 2.0 if bool(S > 1) else 3.0,
          "float of a sum": lambda: float((S * 2).sum()), "tolist": lambda: S.tolist()[0]}


#: 8 of the 12 pairs: each read in the pool whose worker ran before compile (the thread no export saw start) and in
#: one of the threads started after it, each of which runs two reads (the watch is per thread, whatever reads)
_THREAD_READS = [("old pool", read) for read in sorted(_READS)] + [
    ("thread", "item"), ("thread", "bool of a comparison"), ("new pool", "float of a sum"), ("new pool", "tolist")]


@pytest.mark.parametrize("run,read", _THREAD_READS)
def test_a_value_read_in_a_thread_forward_starts_is_watched(run, read):
    """Failed before (all 12): the mode watching value reads is the exporting thread's; ``S.mul_(0.25)`` after
    compile ran the export's numbers silently (compiled 2.97 where eager gave 2.95)."""
    global S, _POOL
    from concurrent.futures import ThreadPoolExecutor

    S = torch.tensor([2.0])
    with ThreadPoolExecutor(1) as _POOL:
        _POOL.submit(int).result()   # (its worker started now, before compile)
        m = _Threads(_RUNS[run], _READS[read])
        assert _runs_as_eager_or_refused(m, lambda: S.mul_(0.25)) == "refused"


def test_thread_start_and_submit_are_torchs_and_pythons_again_after_compile_and_others_unwatched():
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from runtime.aten.value_reads import watch_value_reads

    start, submit = threading.Thread.start, ThreadPoolExecutor.submit
    other = torch.tensor([5.0])
    go, seen = threading.Event(), []   # (a thread started by a thread that watches nothing records nothing)
    outer = threading.Thread(target=lambda: (go.wait(60), seen.append(_in_thread(lambda: other.item()))), daemon=True)
    outer.start()
    try:
        with watch_value_reads(torch) as reads:
            wrapped = threading.Thread.start is not start
            go.set()
            outer.join(60)
    finally:
        go.set()
    assert wrapped
    # (no mode carried into it; round 68: its read is recorded as one no mode saw, ``loose_reads``: which export a
    # thread serves cannot be told)
    assert seen == [5.0] and reads.get(id(other), "").endswith("which compile does not watch)")
    assert threading.Thread.start is start and ThreadPoolExecutor.submit is submit
    assert torch._C._len_torch_function_stack() == 0


# ---- 3. torch._C.DisableTorchFunction bound to a name before compile -----------------------------------------------

from torch._C import DisableTorchFunction as _DTF  # noqa: E402

_D = torch.tensor([2.0, 3.0])


class _ReadsDisabledByName(nn.Module):
    def forward(self, x):
        with _DTF():
            k = _D.tolist()[0]
        return x * k + _D


def test_disable_torch_function_imported_before_compile_is_seen():
    """Failed before: ``from torch._C import DisableTorchFunction`` kept torch's class, under which the watch saw no
    read: after ``_D.mul_(1.5)`` the compiled call returned [7.0, 8.5] where eager gives [9.0, 10.5]."""
    m = _ReadsDisabledByName()
    assert _runs_as_eager_or_refused(m, lambda: _D.mul_(1.5), torch.ones(2)) == "refused"
    assert _DTF is torch._C.DisableTorchFunction   # (the name is torch's class again after the export)
    assert type(_DTF).__module__ != "runtime.aten.value_reads"


def test_disable_torch_function_subclass_leaves_the_watch_on():   # (passed before: it disables no mode)
    from torch._C import DisableTorchFunctionSubclass

    t = torch.tensor([2.0])

    class M(nn.Module):
        def forward(self, x):
            with DisableTorchFunctionSubclass():
                k = t.item()
            return x * k + t

    assert _runs_as_eager_or_refused(M(), lambda: t.mul_(1.5)) == "refused"


# ---- 2b. settings objects: fields read past the watch -----------------------------------------------------------------

class _Held(nn.Module):
    """``lin(x) * read(self)``, with the settings held as attributes."""

    def __init__(self, read, **attrs) -> None:
        super().__init__()
        self.lin, self.read = _linear(), read
        for k, v in attrs.items():
            setattr(self, k, v)

    def forward(self, x):
        return self.lin(x) * self.read(self)


class _Slots:
    __slots__ = ("x", "unread")

    def __init__(self) -> None:
        self.x, self.unread = 2.0, 0


class _Private:
    def __init__(self) -> None:
        self._x = 2.0

    @property
    def x(self):
        return self._x


class _F(float):
    """A float of the user's holding a field of its own."""


def _f():
    f = _F(2.0)
    f.k = 1.0
    return f


def _raw(m):
    return object.__getattribute__(m.cfg, "x")


_FIELDS = {   # (how forward reads, what it holds, the change after compile)
    "object.__getattribute__": (_raw, lambda: _Cfg(x=2.0), lambda m: setattr(m.cfg, "x", 3.0)),
    "__slots__": (lambda m: m.cfg.x, _Slots, lambda m: setattr(m.cfg, "x", 3.0)),
    "private field through a property": (lambda m: m.cfg.x, _Private, lambda m: setattr(m.cfg, "_x", 3.0)),
    "field of a float subclass, on the module": (lambda m: m.cfg.k * m.cfg, _f, lambda m: setattr(m.cfg, "k", 3.0)),
    "field of a float subclass, in a settings object": (lambda m: m.cfg.f.k * m.cfg.f, lambda: _Cfg(f=_f()),
                                                        lambda m: setattr(m.cfg.f, "k", 3.0)),
}


@pytest.mark.parametrize("how", sorted(_FIELDS))
def test_a_settings_field_read_past_the_watch_is_watched(how):
    """Failed before (all five): the compiled call ran the export's 2.0
    (1.97 where eager gave 1.95), silently."""
    read, make, change = _FIELDS[how]
    m = _Held(read, cfg=make())
    assert _runs_as_eager_or_refused(m, lambda: change(m)) == "refused"


def test_a_slots_field_change_is_named_and_an_equal_value_taken():
    m = _Held(lambda m: m.cfg.x, cfg=_Slots())
    step = _compile(m, torch.ones(3))
    m.cfg.x = float("2.0")   # (another object, equal: no change)
    assert torch.equal(step(torch.ones(3)), m(torch.ones(3)))
    m.cfg.x = 3.0
    with pytest.raises(AtenExecutorError, match=re.escape("_Held.cfg.x is 3.0 now, 2.0 at compile")):
        step(torch.ones(3))


def test_a_private_field_forward_does_not_read_is_not_watched():
    cfg = _Private()
    cfg._other = 0
    m = _Held(lambda m: m.cfg.x, cfg=cfg)
    assert _runs_as_eager_or_refused(m, lambda: setattr(cfg, "_other", 1)) == "ran"


@pytest.mark.parametrize("depth", [4, 5, 9])
@pytest.mark.parametrize("how", ["values read", "tensor held", "replaced", "written through .data"])
def test_a_tensor_deep_in_a_settings_object_runs_as_eager_or_is_refused(depth, how):
    """Failed before ("replaced", 4 and more objects down: the guard's walk stopped at 3): the old tensor ran,
    silently; the others passed (a value read 9 deep, warned at compile since round 64c, is watched since 67)."""
    root, cur = _chain(depth)

    def reach(m, levels=depth - 1):
        o = m.cfg
        for _ in range(levels):
            o = o.a
        return o.t

    read = (lambda m: reach(m).item()) if how == "values read" else reach
    change = {"values read": lambda: cur.t.mul_(1.5), "tensor held": lambda: cur.t.mul_(1.5),
              "replaced": lambda: setattr(cur, "t", torch.tensor([3.0])),
              "written through .data": lambda: cur.t.data.mul_(1.5)}[how]
    got = _runs_as_eager_or_refused(_Held(read, cfg=root), change)
    assert got == "refused" or how != "replaced"


def test_a_tensor_past_the_deep_walk_warns_naming_the_place():   # failed before: no word at any depth
    import warnings

    from runtime.aten import compile
    from runtime.aten.deep_settings import DEPTH
    from runtime.aten.walk_bounds import StateWalkWarning

    levels = DEPTH + 3   # (9 before round 68, 32 since)
    root, cur = _chain(levels + 3)
    m = _Held(lambda m: cur.t, cfg=root)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compile(m, (torch.ones(3),), streams=1, cuda_graph=False, device="cpu")
    texts = [str(w.message) for w in caught if issubclass(w.category, StateWalkWarning)]
    assert any(t.startswith("cfg" + ".a" * levels + ": held deeper") and f"({levels} levels" in t
               for t in texts), texts


def test_a_hook_reading_a_field_past_the_watch_runs_as_eager_or_is_refused():
    cfg = _Cfg(x=2.0)
    m = _Held(lambda m: 1.0, cfg=cfg)
    m.register_forward_hook(lambda mod, _i, out: out * object.__getattribute__(mod.cfg, "x"))
    assert _runs_as_eager_or_refused(m, lambda: setattr(cfg, "x", 3.0)) == "refused"


def test_code_naming_getattribute_is_found_in_methods_held_functions_helpers_and_hooks():
    from runtime.aten.raw_reads import reads_past_getattribute

    class Plain(nn.Module):
        def forward(self, x):
            return x * self.cfg.x

    assert not reads_past_getattribute(torch, _Held(lambda m: m.cfg.x))
    assert reads_past_getattribute(torch, _Held(_raw))   # (a function held as an attribute)
    hooked = Plain()
    hooked.register_forward_hook(lambda mod, _i, out: out * object.__getattribute__(mod.cfg, "x"))
    assert reads_past_getattribute(torch, hooked) and not reads_past_getattribute(torch, Plain())
