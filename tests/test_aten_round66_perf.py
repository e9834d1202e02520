"""Round 66 (atenperf): what round 65 cost a compile, taken back without losing its safety (CPU).

Round 65 watched ``forward``'s value reads (``T.item()``, ``float(T)``) with a ``TorchFunctionMode`` pushed for the
whole export, memplan's import of the graph included: about 97% of its calls (8,711 of 8,996 for a tiny Llama) were
torch's export machinery and the import, never ``forward``'s code. Now the mode is on torch's stack for the module's
call alone (``value_reads.forward_watched``, entered by ``call_state``). These tests hold both sides: the mode is
off the stack outside the module's call, and every read inside it (``forward``'s, a hook's, a read under
``torch._C.DisableTorchFunction``) is still recorded, so a change in place after compile is followed or refused,
never run with the export's number.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile, value_reads  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402
from runtime.aten.value_reads import forward_watched, watch_value_reads  # noqa: E402

T = torch.tensor([2.0])
D = torch.tensor([5.0])


def _compile(m, x):
    return compile(m, (x,), streams=1, cuda_graph=False, poison=True, device="cpu")


class _ReadsT(nn.Module):
    """Reads the global ``T`` as a number in ``forward`` (export bakes it into the program)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        return self.lin(x) * T.item()


class _ReadsUnderDisable(nn.Module):
    """Reads the global ``D`` as a number under ``torch._C.DisableTorchFunction`` (no mode is consulted there)."""

    def forward(self, x):
        with torch._C.DisableTorchFunction():
            k = D.tolist()[0]
        return x * k


def _matches_eager_or_refused(step, m, x) -> None:
    try:
        got = step(x)
    except AtenExecutorError:
        return
    assert torch.equal(got, m(x))


def test_the_mode_is_off_torchs_stack_outside_the_modules_call_during_a_compile(monkeypatch):
    """Failed before (round 65): memplan's import of the exported graph ran with the value-read mode on torch's stack
    (one mode, called for each of its torch functions)."""
    from memplan.importers.torch import trace

    seen: list[tuple[int, int]] = []
    real = trace._from_exported

    def probe(*args, **kwargs):
        seen.append((torch._C._len_torch_function_stack(), len(value_reads._active())))
        return real(*args, **kwargs)

    monkeypatch.setattr(trace, "_from_exported", probe)
    torch.manual_seed(0)
    m = _ReadsT().eval()
    with torch.no_grad():
        _compile(m, torch.randn(2, 4))
    assert seen and all(s == (0, 0) for s in seen), seen


@pytest.mark.parametrize("make", [_ReadsT, _ReadsUnderDisable])
def test_a_value_forward_read_is_still_recorded_and_a_change_in_place_followed_or_refused(make):
    """The safety kept: ``forward``'s reads, inside the module's call, are recorded (``Program.value_reads``), so
    ``T.mul_(1.5)`` after compile is not run with the export's number. Fails where the module's call is not
    watched (``call_state`` without ``forward_watched``): the program keeps 2.0 where eager reads 3.0."""
    global T, D
    old_t, old_d = T, D
    T, D = torch.tensor([2.0]), torch.tensor([5.0])
    try:
        torch.manual_seed(0)
        m = make().eval()
        x = torch.randn(2, 4)
        with torch.no_grad():
            step = _compile(m, x)
            assert step.program.value_reads, "forward's read was not recorded"
            assert torch.equal(step(x), m(x))
            T.mul_(1.5)
            D.mul_(1.5)
            _matches_eager_or_refused(step, m, x)
    finally:
        T, D = old_t, old_d


def test_a_hooks_value_read_inside_the_call_is_recorded():
    """A forward hook runs inside the module's call (``_call_impl``), where the mode is on the stack: its read is
    recorded (here one no walk reaches, a lambda's global: watched as itself since round 67, no warning)."""
    import warnings

    from runtime.aten.walk_bounds import StateWalkWarning

    h = torch.tensor([3.0])
    torch.manual_seed(0)
    m = nn.Linear(4, 4).eval()
    m.register_forward_hook(lambda mod, args, out: out * float(h))
    x = torch.randn(2, 4)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error", StateWalkWarning)
        step = _compile(m, x)
    assert [i for i, _where in step.program.value_reads] == [id(h)]


def test_forward_only_blocks_record_inside_forward_watched_alone_and_leave_the_stack_empty():
    a, b, c = torch.tensor(1.0), torch.tensor(2.0), torch.tensor(3.0)
    with watch_value_reads(torch, forward_only=True) as reads:
        a.item()   # (the export's machinery around the call: not forward's)
        assert torch._C._len_torch_function_stack() == 0
        with forward_watched(torch):
            assert torch._C._len_torch_function_stack() == 1
            b.item()
            with forward_watched(torch):   # (the module called inside its own call: still armed once)
                assert torch._C._len_torch_function_stack() == 1
            with watch_value_reads(torch, forward_only=True) as inner:   # (a compile inside forward)
                with forward_watched(torch):
                    c.tolist()
            b.tolist()
        assert torch._C._len_torch_function_stack() == 0
    assert set(reads) == {id(b)} and set(inner) == {id(c)}
    assert torch._C._len_torch_function_stack() == 0 and value_reads._active() == [] and value_reads._waiting() == []
    with forward_watched(torch):   # (outside every block: nothing)
        assert torch._C._len_torch_function_stack() == 0


def test_forward_watched_puts_the_mode_below_modes_already_on_the_stack_and_leaves_them():
    """The mode goes below torch.export's handler (a refused branch then names ``forward``'s line, not this mode's
    frame); the modes above it stay, in order, after an exception inside."""

    class Other(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            return func(*args, **(kwargs or {}))

    o1, o2 = Other(), Other()
    t = torch.tensor(4.0)
    with o1, o2, watch_value_reads(torch, forward_only=True) as reads:
        with pytest.raises(RuntimeError):
            with forward_watched(torch):
                stack = [torch._C._get_function_stack_at(i) for i in range(torch._C._len_torch_function_stack())]
                assert stack[1:] == [o1, o2] and isinstance(stack[0], value_reads._mode_class(torch))
                t.item()
                raise RuntimeError("inside")
        assert [torch._C._get_function_stack_at(i) for i in range(torch._C._len_torch_function_stack())] == [o1, o2]
    assert set(reads) == {id(t)}


class _SetsDeviceAndReads(nn.Module):
    """Sets the default device (as the caller did) and reads the global ``T`` as a number."""

    def forward(self, x):
        torch.set_default_device("cpu")
        return x * T.item()


def test_the_default_devices_mode_keeps_the_bottom_and_a_read_beside_it_is_recorded():
    """``torch.set_default_device`` keeps a ``DeviceContext`` at the bottom of the mode stack and, set again inside
    ``forward``, exits it asserting it is still there. With the value-read mode pushed beneath it the export
    failed ("trying to pop from empty mode stack", round 66's call-only watch, caught by test_aten_round41); the
    mode goes just above it, and ``forward``'s read is still recorded."""
    global T
    old_t, T = T, torch.tensor([2.0])
    torch.set_default_device("cpu")
    try:
        m = _SetsDeviceAndReads()
        x = torch.randn(3)
        with torch.no_grad():
            step = _compile(m, x)
            assert [i for i, _where in step.program.value_reads] == [id(T)]
            assert torch.equal(step(x), m(x))
        stack = [torch._C._get_function_stack_at(i) for i in range(torch._C._len_torch_function_stack())]
        from torch.utils._device import DeviceContext
        assert len(stack) == 1 and isinstance(stack[0], DeviceContext)
    finally:
        torch.set_default_device(None)
        T = old_t
