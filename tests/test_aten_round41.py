"""Round 41: ATen executor modules whose compiled calls differed from eager's, silently (CPU, ``cuda_graph=False``).

Bugs fixed (each test marked "failed before" did):
- ``torch.set_default_device("meta")`` in ``forward``, left set: compiled, and compile left the process's later
  tensors on that device; now refused naming the default device, put back;
- torch 2.9's ``fp32_precision`` (``torch.backends.cuda.matmul.fp32_precision = "tf32"``,
  ``torch.backends.fp32_precision``, ``torch.backends.mkldnn.matmul.fp32_precision``) set in ``forward`` and left:
  compiled (the legacy getters raise under a mix, and a raising row was skipped), compile left it set; now refused
  naming the precisions that changed, put back;
- a legacy TF32 write (``torch.backends.cuda.matmul.allow_tf32 = True``) in ``forward`` over a new-API setting made
  before compile: compiled and left set; now refused and every getter, old and new, reads as before;
- ``torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False`` in ``forward``: compile's put-back
  passed the getter's ``(allowed, split_k)`` tuple to a setter taking two bools (a raw RuntimeError, the flag left
  changed); now refused by name and put back;
- ``type(p) is float`` on a number drawn from ``random`` in ``forward`` was no read (the stand-in's type, read with
  none of its methods): ``if type(p) is float: return x * 2`` compiled returning ``x``; now refused as a read.
"""

from __future__ import annotations

import collections
import random

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import backend_flags, compile, process_settings  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


def _compile(m, *inputs):
    return compile(m, inputs, cuda_graph=False)


@pytest.fixture
def settings_kept():
    """Every process setting the tests touch put back after, whatever a test (or a bug) left."""
    saved = process_settings.process_settings(torch)
    yield saved
    process_settings.restore_process_settings(torch, saved)
    torch.set_default_device(None)


class SetsDefaultDevice(nn.Module):
    def forward(self, x):
        torch.set_default_device("meta")
        return x + 1


def test_default_device_set_in_forward_is_refused_and_put_back(settings_kept):
    """Failed before: compiled, and the process's default device was left meta after compile."""
    with pytest.raises(AtenExecutorError, match=r"default device \(torch.set_default_device\) from none set"):
        _compile(SetsDefaultDevice(), torch.randn(3))
    assert torch.get_default_device() == torch.device("cpu")
    assert process_settings._default_device(torch) is None


def test_default_device_set_before_compile_is_kept(settings_kept):
    """A default device the caller set is the process's, read and kept: a forward setting the same one changes
    nothing and compiles."""
    torch.set_default_device("cpu")

    class SetsCpu(nn.Module):
        def forward(self, x):
            torch.set_default_device("cpu")
            return x * 2

    x = torch.randn(3)
    c = _compile(SetsCpu(), x)
    assert torch.equal(c(x), x * 2)
    assert process_settings._default_device(torch) == torch.device("cpu")


_PRECISION_WRITES = {
    "cuda.matmul": lambda: setattr(torch.backends.cuda.matmul, "fp32_precision", "tf32"),
    "generic": lambda: setattr(torch.backends, "fp32_precision", "tf32"),
    "mkldnn.matmul": lambda: setattr(torch.backends.mkldnn.matmul, "fp32_precision", "bf16"),
    "mkldnn.conv": lambda: setattr(torch.backends.mkldnn.conv, "fp32_precision", "bf16"),
    "cudnn": lambda: setattr(torch.backends.cudnn, "fp32_precision", "ieee"),
    "legacy matmul precision": lambda: torch.set_float32_matmul_precision("medium"),
}


class SetsPrecision(nn.Module):
    def __init__(self, write):
        super().__init__()
        self.write = write

    def forward(self, x):
        self.write()
        return x @ x.T


@pytest.mark.parametrize("which", sorted(_PRECISION_WRITES))
def test_fp32_precision_set_in_forward_is_refused_and_put_back(settings_kept, which):
    """Failed before (the new-API writes): compiled, and compile left the precision set."""
    before = backend_flags.fp32_precisions(torch)
    with pytest.raises(AtenExecutorError, match=r"fp32_precision|float32_matmul_precision"):
        _compile(SetsPrecision(_PRECISION_WRITES[which]), torch.randn(3, 3))
    assert backend_flags.fp32_precisions(torch) == before


def test_legacy_tf32_write_over_a_new_api_setting_is_put_back_exactly(settings_kept):
    """Failed before: the legacy getters raised before the export (a new-API setting), so the row was skipped and
    the forward's ``allow_tf32 = True`` compiled and stayed."""
    torch.backends.cuda.matmul.fp32_precision = "tf32"
    before = backend_flags.fp32_precisions(torch)
    assert dict(before)["torch.backends.cuda.matmul.allow_tf32"] == backend_flags.MIXED

    class SetsLegacy(nn.Module):
        def forward(self, x):
            torch.backends.cuda.matmul.allow_tf32 = True
            return x + 1

    with pytest.raises(AtenExecutorError, match=r"allow_tf32 from mixed .* to True"):
        _compile(SetsLegacy(), torch.randn(3))
    assert backend_flags.fp32_precisions(torch) == before
    with pytest.raises(RuntimeError):   # (still the caller's mix: the legacy getter raises as it did)
        torch._C._get_cublas_allow_tf32()


def test_fp32_precisions_put_back_after_any_mix():
    """The put-back makes every getter, old API and new, read as before from any mix of writes of both APIs (the
    legacy values torch keeps of its own, unreadable under a mix, are found by trying each)."""
    keys = [key for key, _name in backend_flags._FP32_PRECISIONS]
    values = {"generic": ["none", "ieee", "tf32"], "cuda": ["none", "ieee", "tf32"],
              "mkldnn": ["none", "ieee", "tf32", "bf16"]}
    rng = random.Random(41)
    c = torch._C

    def write() -> None:
        k = rng.randrange(6)
        if k < 3:
            backend, op = rng.choice(keys)
            c._set_fp32_precision_setter(backend, op, rng.choice(values[backend]))
        elif k == 3:
            torch.set_float32_matmul_precision(rng.choice(["highest", "high", "medium"]))
        elif k == 4:
            c._set_cublas_allow_tf32(rng.choice([True, False]))
        else:
            c._set_cudnn_allow_tf32(rng.choice([True, False]))

    original = backend_flags.fp32_precisions(torch)
    try:
        for _ in range(300):
            for _ in range(rng.randrange(4)):
                write()
            saved = backend_flags.fp32_precisions(torch)
            for _ in range(1 + rng.randrange(4)):
                write()
            backend_flags.put_fp32_precisions(torch, saved)
            assert backend_flags.fp32_precisions(torch) == saved
    finally:
        backend_flags.put_fp32_precisions(torch, original)


@pytest.mark.parametrize("attr", ["allow_fp16_reduced_precision_reduction", "allow_bf16_reduced_precision_reduction"])
def test_reduced_precision_reduction_set_in_forward_is_refused_and_put_back(settings_kept, attr):
    """Failed before: compile's put-back passed the getter's ``(allowed, split_k)`` tuple to a setter that takes
    two bools, a raw RuntimeError, and the flag stayed changed."""
    getter = getattr(torch._C, f"_get_cublas_{attr}")
    before = getter()

    class SetsReduction(nn.Module):
        def forward(self, x):
            setattr(torch.backends.cuda.matmul, attr, False)
            return x + 1

    with pytest.raises(AtenExecutorError, match=attr):
        _compile(SetsReduction(), torch.randn(3))
    assert getter() == before


def test_every_watched_setting_is_put_back_through_its_setter(settings_kept):
    """Each row of the watch takes back what its getter reads (the reduced-precision pairs failed before)."""
    for what, get, put in process_settings._settings_table(torch):
        value = get()
        put(value)
        assert get() == value, what


# --- 4: ``type(p) is float`` on a drawn number ------------------------------------------------------------------------

class TypeOfDraw(nn.Module):
    def forward(self, x):
        p = random.random()
        if type(p) is float:
            return x * 2
        return x


class TypeEqualsDraw(nn.Module):
    def forward(self, x):
        p = random.uniform(0.0, 1.0)
        if type(p) == float:   # noqa: E721 - the read under test
            return x * 2
        return x


class TypeOfDrawSets(nn.Module):
    def __init__(self):
        super().__init__()
        self.seen = 0

    def forward(self, x):
        p = random.random()
        if type(p) is float:
            self.seen = 1
        return x + 1


@pytest.mark.parametrize("cls", [TypeOfDraw, TypeEqualsDraw, TypeOfDrawSets])
def test_type_of_a_drawn_number_is_a_read(cls):
    """Failed before: compiled (the stand-in's type, never float), every compiled call took the other branch than
    eager's (``x`` for ``x * 2``; ``seen`` never set)."""
    state = random.getstate()
    with pytest.raises(AtenExecutorError, match="draws from random"):
        _compile(cls(), torch.ones(3))
    assert random.getstate() == state


class Layerdrop(nn.Module):
    """MusicGen's layerdrop in eval: the draw is made and never read; still taken."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 3)

    def forward(self, x):
        p = random.uniform(0, 1)
        if self.training and p < 0.1:
            return x
        return self.lin(x)


def test_an_unread_draw_is_still_taken_and_repeated():
    m = Layerdrop().eval()
    x = torch.randn(2, 3)
    c = _compile(m, x)
    for _ in range(3):
        random.seed(5)
        want = m(x)
        after_eager = random.getstate()
        random.seed(5)
        got = c(x)
        assert torch.equal(got, want)
        assert random.getstate() == after_eager


# --- hunt: Python state beside the module ------------------------------------------------------------------------------

CALLS = 0
SEEN: list = []


class GlobalCounter(nn.Module):
    def forward(self, x):
        global CALLS
        CALLS += 1
        return x * CALLS


class GlobalLog(nn.Module):
    def forward(self, x):
        SEEN.append(x.shape[0])
        return x * len(SEEN)


def _closure_counter():
    n = [0]

    class ClosureCounter(nn.Module):
        def forward(self, x):
            n[0] += 1
            return x * n[0]
    return ClosureCounter, n


def _nonlocal_counter():
    n = 0

    def bump():
        nonlocal n
        n += 1
        return n

    class NonlocalCounter(nn.Module):
        def forward(self, x):
            return x * bump()
    return NonlocalCounter


class ClassCounter(nn.Module):
    calls = 0

    def forward(self, x):
        type(self).calls += 1
        return x * type(self).calls


class State:
    def __init__(self):
        self.n = 0


class HeldObjectCounter(nn.Module):
    def __init__(self):
        super().__init__()
        self.state = State()

    def forward(self, x):
        self.state.n += 1
        return x * self.state.n


class FunctionAttribute(nn.Module):
    def forward(self, x):
        helper = FunctionAttribute.helper
        helper.calls = getattr(helper, "calls", 0) + 1
        return x * helper.calls

    @staticmethod
    def helper():
        return None


class SetAttribute(nn.Module):
    def __init__(self):
        super().__init__()
        self.seen = set()

    def forward(self, x):
        self.seen.add(len(self.seen))
        return x * len(self.seen)


@pytest.mark.parametrize("make, named", [
    (GlobalCounter, r"the global CALLS \(module .*test_aten_round41\) \(0 at compile, 1 after"),
    (GlobalLog, r"the global SEEN .* in place \(\[\] at compile, \[3\] after"),
    (lambda: _closure_counter()[0](), r"the closure variable n of .*ClosureCounter.forward in place \(\[0\] at compile"),
    (lambda: _nonlocal_counter()(), r"the closure variable n of .*bump \(0 at compile, 1 after"),
    (ClassCounter, r"the class attribute ClassCounter.calls \(0 at compile, 1 after"),
    (HeldObjectCounter, r"the attribute n of the State object the module holds \(0 at compile, 1 after"),
    (FunctionAttribute, r"the attributes of the function FunctionAttribute.helper \(made: calls\)"),
    (SetAttribute, r"SetAttribute.seen in place"),
])
def test_python_state_forward_changes_is_refused_and_put_back(make, named):
    """Failed before: compiled, every compiled call computed the export's value (``x * 1``) where eager's calls
    followed the state they changed (``x * 2``, ``x * 3``), and compile left the state changed by the export."""
    m = make()
    with pytest.raises(AtenExecutorError, match=named):
        _compile(m, torch.ones(3))
    assert CALLS == 0 and SEEN == [] and ClassCounter.calls == 0 and not hasattr(FunctionAttribute.helper, "calls")
    if isinstance(m, HeldObjectCounter):
        assert m.state.n == 0
    if isinstance(m, SetAttribute):
        assert m.seen == set()


def test_closure_counter_is_put_back():
    cls, n = _closure_counter()
    with pytest.raises(AtenExecutorError, match=r"closure variable n of .*ClosureCounter\.forward in place"):
        _compile(cls(), torch.ones(3))
    assert n == [0]


LOOKUP = {"k": 3.0}
CACHE: dict = {}


class ReadsGlobals(nn.Module):
    """Reads globals and fills a global cache with tensors only: not refused (the cache is put back)."""

    def forward(self, x):
        CACHE["last"] = x
        return x * LOOKUP["k"]


def test_reading_globals_and_a_tensor_only_cache_compile():
    m = ReadsGlobals()
    x = torch.randn(3)
    c = _compile(m, x)
    assert CACHE == {}   # (the export's fake tensor not left in the user's dict)
    for _ in range(3):
        x = torch.randn(3)
        assert torch.equal(c(x), m(x))


class SetsThreads(nn.Module):
    def forward(self, x):
        torch.set_num_threads(1 if torch.get_num_threads() != 1 else 2)
        return x + 1


def test_thread_count_set_in_forward_is_refused_and_put_back(settings_kept):
    """Failed before: compiled, and compile left the process's intra-op thread count changed."""
    threads = torch.get_num_threads()
    with pytest.raises(AtenExecutorError, match=r"number of CPU threads \(torch.set_num_threads\)"):
        _compile(SetsThreads(), torch.randn(3))
    assert torch.get_num_threads() == threads


class CounterStats(nn.Module):
    def __init__(self):
        super().__init__()
        self.stats = collections.Counter()

    def forward(self, x):
        self.stats["n"] += 1
        return x * self.stats["n"]


class TupleOfLists(nn.Module):
    def __init__(self):
        super().__init__()
        self.t = ([0],)

    def forward(self, x):
        self.t[0][0] += 1
        return x * self.t[0][0]


class MutableDefault(nn.Module):
    def forward(self, x, acc=[]):  # noqa: B006 - the state under test
        acc.append(1)
        return x * len(acc)


@pytest.mark.parametrize("make, named", [
    (CounterStats, r"CounterStats.stats in place \(key 'n'"),
    (TupleOfLists, r"TupleOfLists.t\[0\] in place"),
    (MutableDefault, r"the default of argument acc of MutableDefault.forward in place \(\[\] at compile, \[1\]"),
])
def test_containers_counters_tuples_and_defaults_are_watched(make, named):
    """Failed before: compiled, every compiled call computed ``x * 1`` where eager's calls gave ``x * 2``, ``x * 3``."""
    m = make()
    with pytest.raises(AtenExecutorError, match=named):
        _compile(m, torch.ones(3))
    if isinstance(m, CounterStats):
        assert m.stats == collections.Counter()
    if isinstance(m, TupleOfLists):
        assert m.t == ([0],)
    if isinstance(m, MutableDefault):
        assert MutableDefault.forward.__defaults__ == ([],)
