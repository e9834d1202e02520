"""Round 40: state and outputs the ATen executor left unfaithful or silently wrong after round 39, compiled against
eager over three calls with different inputs (and identities where eager's are the point).

Bugs fixed (each test marked "failed before" did):
- an input written in place and kept (``x.add_(1); self.last = x``): the module held a copy, eager's the caller's ``x``;
- under ``return_views``, an output ``forward`` also keeps (``self.last = y; return y``) was the arena's view beside
  the module's copy (``step(x) is m.last`` False);
- a tap beside a first-call cache: the refusal named the tap ("carries a tensor between calls", which it does not),
  not the cache; beside a cache that computes the same, the tap was refused though each call can set it (now set);
- ``del self.sub`` / ``del self.b`` / ``del self.p`` / ``self.register_buffer(...)`` / a new ``nn.Parameter`` in
  ``forward``: torch's registries were unwatched, so a submodule deleted in ``forward`` compiled (its linear run at every
  call, eager's later calls took the other path) and was left deleted, a buffer registered in ``forward`` compiled,
  ran the export's call and was left a ``FakeTensor`` on the module, and the others were refused as "replaces buffer ...
  no tensor before the call" with the module left damaged; now refused naming them, the module as it was;
- a strided lone output (``(x * 2)[1:, ::2]``) had storage offset 0 and the view's span where eager's lies at offset 6 of
  its 24-element base: now eager's offset and storage size;
- ``random.random()`` / ``np.random`` in ``forward``: the number drawn at export was baked into every call; refused;
- ``torch.set_default_dtype`` / ``torch.set_grad_enabled`` left changed by ``forward``, or ``self.w.requires_grad_(False)``
  in it: compiled (the calls left the process and the module as they were), and compile left the default dtype changed;
  refused naming the setting, put back.
"""

from __future__ import annotations

import random

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


def _pair(cls):
    m, e = cls(), cls()
    e.load_state_dict(m.state_dict())
    for k, v in vars(m).items():   # (plain tensor attributes too)
        if isinstance(v, torch.Tensor):
            setattr(e, k, v.clone())
    return m, e


# --- 1: an input written in place and kept ---------------------------------------------------------------------------

class InPlaceKept(nn.Module):
    def forward(self, x):
        x.add_(1)
        self.last = x
        return x * 2


class InPlaceKeptReturned(nn.Module):
    def forward(self, x):
        x.mul_(3)
        self.last = x
        x.add_(1)   # (a later write: eager's ``m.last`` is ``x``, its final value)
        return x


@pytest.mark.parametrize("views", [False, True])
def test_an_input_written_in_place_and_kept_is_the_callers_tensor(views):
    """Failed before: ``m.last`` was a copy of ``x`` after ``add_`` (eager: ``m.last is x``, sharing its storage)."""
    m, e = InPlaceKept(), InPlaceKept()
    step = compile(m, (torch.randn(4),), return_views=views)
    for _ in range(3):
        x = torch.randn(4)
        xe = x.clone()
        assert torch.equal(step(x), e(xe)) and torch.equal(x, xe)
        assert m.last is x and e.last is xe
        x.zero_()   # (shared: a later change of x shows in m.last, as in eager)
        assert not m.last.any()


@pytest.mark.parametrize("views", [False, True])
def test_an_input_written_kept_and_returned_is_the_callers_tensor_both_times(views):
    m, e = InPlaceKeptReturned(), InPlaceKeptReturned()
    step = compile(m, (torch.randn(4),), return_views=views)
    for _ in range(3):
        x = torch.randn(4)
        xe = x.clone()
        y, ye = step(x), e(xe)
        assert torch.equal(y, ye) and torch.equal(x, xe) and torch.equal(m.last, e.last)
        assert y is x and m.last is x and ye is xe and e.last is xe


# --- 2: return_views and a tensor both returned and kept ------------------------------------------------------------

class KeepsAndReturns(nn.Module):
    def forward(self, x):
        y = x * 2
        self.last = y
        return y, y.view(2, 2), x + 1


def test_return_views_output_kept_on_the_module_is_the_modules_tensor():
    """Failed before: ``step(x)[0] is m.last`` False under ``return_views`` (the arena view beside the module's copy),
    and the second call overwrote the view eager's caller still held as ``m.last``'s value."""
    m, e = KeepsAndReturns(), KeepsAndReturns()
    step = compile(m, (torch.randn(4),), return_views=True)
    held = []
    for _ in range(3):
        x = torch.randn(4)
        (y, v, z), (ye, ve, ze) = step(x), e(x)
        assert torch.equal(y, ye) and torch.equal(v, ve) and torch.equal(z, ze)
        assert y is m.last and ye is e.last
        assert v.untyped_storage().data_ptr() == y.untyped_storage().data_ptr()   # (a view of it, as eager's)
        held.append((y, ye.clone()))
    assert all(torch.equal(a, b) for a, b in held)   # (the module's copies outlive the next call)


# --- 3: a tap beside a first-call cache ------------------------------------------------------------------------------

class TapBesideCache(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(4))
        self.h = None

    def forward(self, x):
        y = x * 3
        self.tap = y
        if self.h is None:
            self.h = self.w * 2
            return y
        return y + self.h


class TapBesideSameCache(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(4))
        self.h = None

    def forward(self, x):
        if self.h is None:
            self.h = self.w * 2
        y = x + self.h
        self.tap = y * 3
        return y


def test_a_tap_beside_a_first_call_cache_is_refused_naming_the_cache():
    """Failed before: the refusal named ``TapBesideCache.tap`` ("computed from the call's inputs ... carries a tensor
    between calls"), which carries nothing; the cache ``h`` is why."""
    with pytest.raises(AtenExecutorError, match=r"forward sets TapBesideCache\.h at the export's call") as info:
        compile(TapBesideCache(), (torch.randn(4),))
    assert "TapBesideCache.tap" not in str(info.value)


def test_a_tap_beside_a_cache_that_computes_the_same_is_set_by_each_call():
    """Failed before: refused (the tap "carries a tensor between calls"); now each call sets the tap as eager's does,
    the cache stays as at compile (the fallback)."""
    m, e = _pair(TapBesideSameCache)
    step = compile(m, (torch.randn(4),))
    assert [label for _o, _k, label in step.attrs] == ["TapBesideSameCache.tap"]
    for _ in range(3):
        x = torch.randn(4)
        assert torch.equal(step(x), e(x)) and torch.equal(m.tap, e.tap)
        assert m.h is None   # (documented: a cache the fallback's calls do not fill)


# --- 4: deletions and registrations in forward ----------------------------------------------------------------------

class DeletesPrivate(nn.Module):
    def __init__(self):
        super().__init__()
        self._once = 1

    def forward(self, x):
        if hasattr(self, "_once"):
            del self._once
            return x
        return x * 2


class DelattrPublic(DeletesPrivate):
    def __init__(self):
        super().__init__()
        del self._once
        self.once = 1

    def forward(self, x):
        if hasattr(self, "once"):
            delattr(self, "once")
            return x
        return x * 2


class DeletesSubmodule(nn.Module):
    def __init__(self):
        super().__init__()
        self.sub = nn.Linear(4, 4)

    def forward(self, x):
        if hasattr(self, "sub"):
            y = self.sub(x)
            del self.sub
            return y
        return x


class DeletesBuffer(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("b", torch.ones(4))

    def forward(self, x):
        if hasattr(self, "b"):
            y = x + self.b
            del self.b
            return y
        return x * 2


class DeletesParameter(nn.Module):
    def __init__(self):
        super().__init__()
        self.p = nn.Parameter(torch.ones(4))

    def forward(self, x):
        if hasattr(self, "p"):
            y = x + self.p
            delattr(self, "p")
            return y
        return x * 2


class RegistersBuffer(nn.Module):
    def forward(self, x):
        if not hasattr(self, "b"):
            self.register_buffer("b", x * 2)
            return x
        return x + self.b


class RegistersParameter(nn.Module):
    def forward(self, x):
        if not hasattr(self, "p"):
            self.p = nn.Parameter(torch.ones(4))
            return x
        return x + self.p


class SetsRequiresGrad(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(4))

    def forward(self, x):
        self.w.requires_grad_(False)
        return x + self.w


@pytest.mark.parametrize("cls, said", [
    (SetsRequiresGrad, r"forward sets requires_grad of parameter SetsRequiresGrad\.w from True to False"),
    (DeletesPrivate, r"forward deletes DeletesPrivate\._once"),
    (DelattrPublic, r"forward deletes DelattrPublic\.once"),
    (DeletesSubmodule, r"forward deletes submodule DeletesSubmodule\.sub"),
    (DeletesBuffer, r"forward deletes buffer DeletesBuffer\.b"),
    (DeletesParameter, r"forward deletes parameter DeletesParameter\.p"),
    (RegistersBuffer, r"forward registers a new buffer RegistersBuffer\.b"),
    (RegistersParameter, r"forward registers a new parameter RegistersParameter\.p"),
])
def test_deleting_or_registering_state_in_forward_is_refused_naming_it_and_the_module_kept(cls, said):
    """Failed before: ``DeletesSubmodule`` compiled (the deleted linear run at every call; eager's later calls return
    ``x``) and was left without ``sub``; ``RegistersBuffer`` compiled (the export's call at every call) and was left
    holding a ``FakeTensor`` buffer; the buffer and parameter cases were refused as "replaces buffer ... (self.b =
    ...): it is no tensor before the call" and left without the buffer."""
    m = cls()
    state = {k: v.clone() for k, v in m.state_dict().items()}
    names = (set(vars(m)), set(m._parameters), set(m._buffers), set(m._modules))
    with pytest.raises(AtenExecutorError, match=said):
        compile(m, (torch.randn(4),))
    assert (set(vars(m)), set(m._parameters), set(m._buffers), set(m._modules)) == names
    assert all(p.requires_grad for p in m.parameters())
    assert all(type(v) in (torch.Tensor, nn.Parameter) and torch.equal(v, state[k]) for k, v in m.state_dict().items())
    e = cls()   # (the module still runs as eager's)
    e.load_state_dict(m.state_dict())
    x = torch.randn(4)
    assert torch.equal(m(x), e(x))


# --- 5: a strided lone output ----------------------------------------------------------------------------------------

class StridedView(nn.Module):
    def forward(self, x):
        return (x * 2)[1:, ::2]


class StridedConjView(nn.Module):
    def forward(self, x):
        return (x * 2)[1:, 1:].conj()


@pytest.mark.parametrize("cls, make", [(StridedView, lambda: torch.randn(4, 6)),
                                       (StridedConjView, lambda: torch.randn(4, 6, dtype=torch.complex64))])
def test_a_strided_view_output_lies_in_its_base_as_eagers(cls, make):
    """Failed before: storage offset 0 and a storage of the view's span (68 bytes) where eager's view lies at offset 6
    of its 96-byte base."""
    m = cls()
    step = compile(m, (make(),))
    for _ in range(3):
        x = make()
        y, ye = step(x), m(x)
        assert torch.equal(y, ye) and y.is_conj() == ye.is_conj()
        assert (y.stride(), y.storage_offset(), y.untyped_storage().nbytes()) == (
            ye.stride(), ye.storage_offset(), ye.untyped_storage().nbytes())


# --- hunt: host random numbers in forward ---------------------------------------------------------------------------

class PythonRandom(nn.Module):
    def forward(self, x):
        return x * random.random()


class NumpyRandomBranch(nn.Module):
    def forward(self, x):
        import numpy as np

        return x * 2 if np.random.rand() < 0.5 else x * 3


@pytest.mark.parametrize("cls, name", [(PythonRandom, "random"), (NumpyRandomBranch, "numpy.random")])
def test_a_host_random_draw_in_forward_is_refused_and_the_state_kept(cls, name):
    """Failed before: compiled, every call reused the number drawn at the export (eager draws anew each call)."""
    import numpy as np

    random.seed(5)
    np.random.seed(5)
    before = random.random(), np.random.rand()
    random.seed(5)
    np.random.seed(5)
    with pytest.raises(AtenExecutorError, match=rf"forward draws from {name} in Python"):
        compile(cls(), (torch.randn(4),))
    assert (random.random(), np.random.rand()) == before   # (compile runs no call: the generators as they were)


class TorchRandom(nn.Module):
    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.drop(x) + torch.rand(x.shape)


def test_torch_random_ops_in_forward_draw_at_each_call_as_eagers():
    """Kept: torch's random ops are nodes of the program (a train-mode dropout, ``torch.rand``)."""
    m = TorchRandom().train()
    step = compile(m, (torch.randn(64),))
    x = torch.randn(64)
    for seed in (1, 2, 3):
        torch.manual_seed(seed)
        y = step(x)
        torch.manual_seed(seed)
        assert torch.equal(y, m(x))
    assert not torch.equal(step(x), step(x))


# --- hunt: process-wide torch settings forward leaves changed -------------------------------------------------------

class LeavesDefaultDtype(nn.Module):
    def forward(self, x):
        torch.set_default_dtype(torch.float64)
        return x * 2


class LeavesGradOff(nn.Module):
    def forward(self, x):
        torch.set_grad_enabled(False)
        return x * 2


@pytest.mark.parametrize("cls, said", [(LeavesDefaultDtype, "the default dtype"), (LeavesGradOff, "grad mode")])
def test_a_process_setting_forward_leaves_changed_is_refused_and_put_back(cls, said):
    """Failed before: compiled (a compiled call leaves the process as it was, eager's call changed it), and compile
    left the default dtype float64 for the rest of the process."""
    try:
        with pytest.raises(AtenExecutorError, match=f"forward changes {said}"):
            compile(cls(), (torch.randn(4),))
        assert torch.get_default_dtype() == torch.float32 and torch.is_grad_enabled()
    finally:
        torch.set_default_dtype(torch.float32)
        torch.set_grad_enabled(True)


class RestoresGradMode(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        with torch.no_grad():
            y = self.lin(x)
        return y * 2


def test_a_grad_mode_block_inside_forward_runs_as_eagers():
    """Kept: a ``with torch.no_grad()`` inside forward leaves nothing changed."""
    m = RestoresGradMode()
    step = compile(m, (torch.randn(4),))
    for _ in range(3):
        x = torch.randn(4)
        assert torch.equal(step(x), m(x)) and torch.is_grad_enabled()
