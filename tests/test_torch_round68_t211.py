"""Round 68 (t211): what torch 2.11 (the GPU machine's torch) does differently, held on CI's torch too.

- torch 2.11's ``.pt2`` reader has no opaque-object constants (no ``pickle`` in its archive module: it unpickles
  none); an archive holding one (``opaque_obj_0``, which 2.14 writes and ``memplan import`` refuses to unpickle)
  failed there as "not a torch.export program (RuntimeError: Unsupported constant type: opaque_obj_0)". It is now
  refused naming the member and what to do, the same words on both releases. On 2.14 the older reader is simulated
  by renaming the prefix 2.14's reader looks for (the member then falls through to its "Unsupported constant type").
- torch 2.11's Python kernel for an eval ``dropout`` (``torch._decomp``'s, which an export runs) is
  ``input.clone()``, where eager returns the input itself: the export's fake result has a storage of its own and an
  in-place write after it goes to the input. Imported as a new tensor, ``y = F.dropout(x, training=False);
  x.add_(1); y * 2`` ran as [4, 6, 8, 10] compiled, [6, 8, 10, 12] eager. Simulated on 2.14 by putting 2.11's
  kernel in place for the export.
- torch 2.11's export of ``torch.quantize_per_tensor`` fails in its fake tensors ("quantized nyi in meta tensors"),
  and on every release a module holding a quantized tensor failed with the dispatcher's 600-character list of
  backends: neither said what to do. Both now end with what memplan's own refusal of a quantized node says.
  2.11's refusal is simulated by raising torch's own exception, with its words, during the export.
- ``from_torch(decompose=True)`` runs torch's own LSTM/GRU decomposition (2.11's on the GPU machine): its outputs are
  planned at eager's shapes and bytes for batch-first, bidirectional, stacked and projected recurrences; torch
  2.11's own returns ``h_n``/``c_n`` as ``(D*L, 1, B, H)``, and is simulated on 2.14.
- torch 2.11 cannot export ``torch._check`` on a float read from a tensor (``v = x.max().item()``): "Unknown symbol
  zuf0 created by constraints solver", with sympy's printer taken for the model's line. It now says what to do;
  simulated on 2.14 by raising torch's words during the export."""

from __future__ import annotations

import contextlib
import json

import pytest
from needs import need

torch = need("torch")

import torch.nn.functional as F  # noqa: E402
from test_torch_round34 import _opaque_constant, _rewritten, _saved  # noqa: E402

import memplan  # noqa: E402
from memplan.errors import InputFormatError  # noqa: E402
from memplan.importers.torch import load_exported  # noqa: E402
from runtime.aten import compile  # noqa: E402


def _older_reader(monkeypatch) -> None:
    """2.11's reader on any release: no opaque-object constant kind (a no-op where there is none already)."""
    from torch.export.pt2_archive import _package

    if hasattr(_package, "OPAQUE_OBJ_FILENAME_PREFIX"):
        monkeypatch.setattr(_package, "OPAQUE_OBJ_FILENAME_PREFIX", "\0no such member\0")


def test_an_opaque_constant_on_a_reader_without_them_is_refused_by_name(tmp_path, monkeypatch):
    # was: "not a torch.export program (RuntimeError: Unsupported constant type: opaque_obj_0)" on torch 2.11
    _older_reader(monkeypatch)
    marker = tmp_path / "ran"
    hostile = _rewritten(_saved(tmp_path), tmp_path / "hostile.pt2", _opaque_constant(marker))
    with pytest.raises(InputFormatError) as info:
        load_exported(str(hostile))
    message = str(info.value)
    assert message.startswith(f"{hostile}: the archive holds a constant 'opaque_obj_0'"), message
    assert "opaque Python object constant" in message and torch.__version__ in message, message
    assert "not a torch.export program" not in message, message
    assert not marker.exists()


def test_a_constant_of_a_kind_no_reader_knows_is_refused_by_name(tmp_path):
    def change(name: str, data: bytes):
        if not name:
            return [("data/constants/weird_0", b"\0" * 16)]
        if name.endswith("model_constants_config.json"):
            config = json.loads(data)
            config["config"]["c"].update(path_name="weird_0")
            return json.dumps(config).encode()
        return data

    edited = _rewritten(_saved(tmp_path), tmp_path / "edited.pt2", change)
    with pytest.raises(InputFormatError, match=rf"^{edited}: the archive holds a constant 'weird_0' of a kind this "
                                               r"torch \(.*\) does not load: .*corrupted or edited file\)$"):
        load_exported(str(edited))


def _dropout_as_211(input, p, train):
    """torch 2.11's ``torch._decomp`` kernel for ``aten.dropout``: a copy of the input in eval mode."""
    if train and p != 0:
        return torch.ops.aten.native_dropout(input, p, train)[0]
    return input.clone()


@contextlib.contextmanager
def _exported_as_211():
    """While exporting: ``aten.dropout``'s Python composite kernel is 2.11's (a no-op swap on 2.11 itself)."""
    op, key = torch.ops.aten.dropout.default, torch._C.DispatchKey.CompositeImplicitAutograd
    old = op.py_kernels[key]
    op.py_kernels[key] = _dropout_as_211
    op._dispatch_cache.clear()
    try:
        yield
    finally:
        op.py_kernels[key] = old
        op._dispatch_cache.clear()


class _DropoutThenWrite(torch.nn.Module):
    def forward(self, x):
        y = F.dropout(x, 0.5, training=False)
        x.add_(1)
        return y * 2


def _sliced() -> torch.Tensor:
    return torch.arange(10.0)[2:6]


def test_an_eval_dropout_exported_as_a_copy_is_still_a_view_of_its_input():
    with _exported_as_211():
        ep = torch.export.export(_DropoutThenWrite(), (_sliced(),))
    assert [n.args[0].name for n in ep.graph.nodes if n.name == "add_"] == ["x"], "not 2.11's graph: update the test"
    t = {x.id: x for x in memplan.from_torch(ep, (_sliced(),)).tensors}
    assert t["dropout"].view_of == "x" and t["dropout"].size == 16   # (was: None, 16 bytes of its own)


@pytest.mark.parametrize("streams", [1])   # (not "auto" too: on a CPU it plans serial, the plan of 1)
def test_a_compiled_call_reads_the_write_through_an_eval_dropout_as_eager(streams):
    m = _DropoutThenWrite()
    with _exported_as_211():
        c = compile(m, (_sliced(),), streams=streams, poison=True)
    for _ in range(2):
        a, b = _sliced(), _sliced()
        got, want = c(a), m(b)
        assert torch.equal(got, want), (got, want)   # (was: [4, 6, 8, 10] against [6, 8, 10, 12])
        assert torch.equal(a, b)


class _HoldsAQuantizedTensor(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q = torch.quantize_per_tensor(torch.ones(3, 4), 0.1, 0, torch.qint8)

    def forward(self, x):
        return x + self.q.dequantize()


class _FakeTensorsRefuseQuantized(torch.nn.Module):
    """Raises, while exported, what torch 2.11's fake tensors raise for ``torch.quantize_per_tensor``."""

    def forward(self, x):
        from torch._subclasses.fake_tensor import UnsupportedFakeTensorException

        raise UnsupportedFakeTensorException("quantized nyi in meta tensors")


@pytest.mark.parametrize("module", [_HoldsAQuantizedTensor, _FakeTensorsRefuseQuantized])
def test_a_quantized_tensor_torch_cannot_export_is_refused_saying_what_to_do(module):
    # was: torch's words alone ("quantized nyi in meta tensors"; "Could not run 'aten::empty_strided' with arguments
    # from the 'QuantizedMeta' backend. This could be because ... [CPU, CUDA, Meta, ...]")
    with pytest.raises(memplan.GraphError) as info:
        memplan.from_torch(module(), (torch.ones(3, 4),))
    message = str(info.value)
    assert message.startswith(f"torch.export failed for {module.__name__}: "), message
    assert message.endswith("(quantized programs are not supported; plan the float program, or a fake-quantized one)")
    assert "This could be because" not in message and len(message) < 600, message


_RNNS = [(torch.nn.LSTM, False, False, 1, 0), (torch.nn.LSTM, False, True, 2, 3), (torch.nn.LSTM, True, True, 1, 0),
         (torch.nn.LSTM, True, False, 2, 3), (torch.nn.GRU, False, False, 1, 0), (torch.nn.GRU, True, True, 2, 0)]


@contextlib.contextmanager
def _lstm_decomposed_as_211():
    """torch 2.11's ``aten.lstm.input`` decomposition on any release: each layer's ``hx.squeeze(1)`` leaves
    ``(1, B, H)`` (``(1, H)`` for a batch of 1), so ``h_n``/``c_n`` are ``(D*L, 1, B, H)``; a no-op on 2.11, whose
    own already does."""
    import torch._decomp

    op, key = torch.ops.aten.lstm.input, torch._C.DispatchKey.CompositeImplicitAutograd
    table = torch._decomp.decomposition_table
    own = table[op]
    if not own.__module__.startswith("torch."):
        raise AssertionError("torch's lstm decomposition is not where the test expects it: update the test")

    def as_211(input, hx, *args, **kwargs):
        out, h, c = own(input, hx, *args, **kwargs)
        if h.dim() == 3 and h.shape[1] != 1:
            return out, h.unsqueeze(1), c.unsqueeze(1)
        return out, h, c

    old_kernel = op.py_kernels.get(key)
    table[op], op.py_kernels[key] = as_211, as_211
    op._dispatch_cache.clear()
    try:
        yield
    finally:
        table[op] = own
        if old_kernel is None:
            op.py_kernels.pop(key, None)
        else:
            op.py_kernels[key] = old_kernel
        op._dispatch_cache.clear()


@pytest.mark.parametrize("cls, batch_first, bidirectional, layers, proj", _RNNS,
                         ids=lambda v: getattr(v, "__name__", str(v)))
def test_a_decomposed_recurrence_is_planned_at_eagers_sizes(cls, batch_first, bidirectional, layers, proj):
    # was, on torch 2.11: h_n and c_n of (D*L, 1, B, H) in the decomposed program, and any op over them planned for
    # that shape (here simulated on every release)
    extra = {"proj_size": proj} if proj else {}
    m = cls(5, 7, num_layers=layers, batch_first=batch_first, bidirectional=bidirectional, **extra).eval()
    x = torch.randn(2, 3, 5)   # (batch 2 and 3 time steps, in either order: a swapped pair is a wrong shape)
    with torch.no_grad():
        out, state = m(x)
    want = sorted((tuple(t.shape), t.numel() * t.element_size()) for t in [out, *(state if cls is torch.nn.LSTM
                                                                                      else (state,))])
    with _lstm_decomposed_as_211():
        g = memplan.from_torch(m, (x,), decompose=True)
    assert all(n.op.split(".")[0] not in ("lstm", "gru") for n in g.nodes)   # (decomposed: torch's own ops)
    got = sorted((tuple(t.attrs["shape"]), t.size) for t in g.tensors if t.kind == "output")
    assert got == want


class _SumsTheHiddenState(torch.nn.Module):
    """``h_n.sum(1)``: eager sums over the batch, ``(L, H)``; over 2.11's ``(L, 1, B, H)`` it is ``(L, B, H)``."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = torch.nn.LSTM(5, 7, num_layers=2)

    def forward(self, x):
        _out, (h, _c) = self.rnn(x)
        return h.sum(1)


def test_an_op_over_a_decomposed_hidden_state_is_planned_at_eagers_shape():
    m, x = _SumsTheHiddenState().eval(), torch.randn(4, 3, 5)
    with _lstm_decomposed_as_211():
        g = memplan.from_torch(m, (x,), decompose=True)
    out = [t for t in g.tensors if t.kind == "output"]
    assert [(t.attrs["shape"], t.size) for t in out] == [([2, 7], 56)]   # (was: [2, 3, 7], 168 bytes)


class _SolverLosesTheFloat(torch.nn.Module):
    """Raises, while exported, what torch 2.11's export raises for ``torch._check(x.max().item() < 100)``."""

    def forward(self, x):
        raise KeyError("Unknown symbol zuf0 created by constraints solver")


def test_a_check_on_a_float_torch_cannot_export_says_what_to_do():
    with pytest.raises(memplan.GraphError) as info:
        memplan.from_torch(_SolverLosesTheFloat(), (torch.ones(3),))
    message = str(info.value)
    assert "zuf0" in message and message.endswith(
        "drop that check from forward, pass the value in as an input, or use a newer torch (2.14 exports it)"), message


class _StridedDropout(torch.nn.Module):
    """An attention's eval dropout over a strided view (transformers' inkling2 on torch 2.11: scores sliced from a
    padded buffer), then a write through the view."""

    def forward(self, x):
        scores = (x * 1.0)[..., :6]            # strides (168, 42, 7, 1): not the copy's (144, 36, 6, 1)
        y = F.dropout(scores, 0.1, training=False)
        scores.add_(1)
        return y.softmax(-1)


@pytest.mark.parametrize("streams", [1])   # (not "auto" too: on a CPU it plans serial, the plan of 1)
def test_an_eval_dropout_of_a_strided_view_exported_as_a_copy_runs_as_eager(streams):
    """The view found by asking torch's C++ kernel is laid out as that kernel's (the input's strides), not as the
    export's copy: ``node 'dropout': torch's view is (1, 4, 6, 6) strides (168, 42, 7, 1) ..., the plan's is ...``
    refused the model at every call before (session 68's GPU suite, on torch 2.11)."""
    m = _StridedDropout()
    x = torch.randn(1, 4, 6, 7)
    with _exported_as_211():
        c = compile(m, (x,), streams=streams, poison=True)
    for _ in range(2):
        x = torch.randn(1, 4, 6, 7)
        assert torch.equal(c(x.clone()), m(x.clone()))
