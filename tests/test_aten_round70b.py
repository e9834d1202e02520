"""Round 70 review (atenb70): holes in round 70's ATen changes.

1. ``storage_saves``: a user's ``torch.library`` op registered without ``mutates_args`` that writes its argument (its
   body runs past the ``TorchDispatchMode``) left a buffer written by compile's eager comparison run.
2. ``flag_reads``: a read in an installed helper package that another installed helper package calls for the user's
   code was never compared (only a helper the user's code calls directly was).
3. ``guard``: a replaced settings object's refusal quoted the old object's text at the refusal as its compile value.
4. a sparse COO tensor attribute: compile failed with torch's raw ``RuntimeError``; eager's write to it stayed.
5. a write eager's branch makes from another thread (past the mode) stayed, silently: now refused.
"""

from __future__ import annotations

import copy
import dataclasses

import pytest
from needs import need

torch = need("torch")

from aten_changes import compile_cpu as _compile  # noqa: E402
from torch import nn  # noqa: E402

from runtime.aten.errors import AtenExecutorError  # noqa: E402


@torch.library.custom_op("atenb70::sneaky_add", mutates_args=())
def _sneaky_add(x: torch.Tensor) -> torch.Tensor:
    x.add_(100)   # (undeclared: ``mutates_args=()``)
    return x.clone()


class _CustomOpWriter(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("buf", torch.arange(4.0))

    def forward(self, x):
        if not torch.compiler.is_compiling():
            with torch.no_grad():
                _sneaky_add(self.buf)
        return x * 2


@pytest.mark.parametrize("planted", [False, True], ids=["fixed", "planted"])
def test_a_custom_op_writing_an_argument_its_schema_does_not_mark_is_put_back(planted, monkeypatch):
    """Failed before: the buffer stayed [100, 101, 102, 103] after compile (its schema marks no write, and the op's
    body runs past the mode). ``planted``: the op's namespace trusted like aten's, the write stays (the test can
    fail)."""
    from runtime.aten import storage_saves

    if planted:
        monkeypatch.setattr(storage_saves, "_SCHEMA_TRUSTED", storage_saves._SCHEMA_TRUSTED | {"atenb70"})
        # (round 71: the bytes' checksum would refuse the unseen write instead)
        monkeypatch.setattr(storage_saves.StorageSaves, "_unseen", lambda self: [])
    m = _CustomOpWriter()
    step = _compile(m)
    assert step.program.flag_reads   # (compared: eager's branch ran)
    assert (m.buf.tolist() == [0.0, 1.0, 2.0, 3.0]) is not planted


# 2. a flag read in a helper package another helper package calls for the user's code --------------------------------

_HELPER = '''import torch


def scale(x):
    if torch.compiler.is_compiling():
        return x * 2
    return x * 3
'''


def _package(tmp_path, monkeypatch, name, text):
    """Package ``name`` installed in a ``site-packages`` directory on ``sys.path``, its ``__init__.py`` ``text``."""
    from test_aten_round70 import _package as package

    return package(tmp_path, monkeypatch, name, True, text)


@pytest.mark.parametrize("library", [False, True], ids=["helper_package", "model_library"])
def test_a_flag_read_two_installed_helpers_below_the_users_code_is_compared(library, tmp_path, monkeypatch):
    """Failed before: the user's ``forward`` calls ``r70b_utils.run``, which calls ``r70b_kernels.scale`` (both
    installed, neither a model library nor a class of the tree's): the read was never compared (the first frame
    outside ``r70b_kernels`` was an installed package's), and compile ran [2, 2, 2, 2] where eager gives [3, 3, 3, 3],
    silently. ``library``: with ``r70b_utils`` a model library (``installed.LIBRARIES``), the read is its, not
    compared (as ``kernels`` under transformers)."""
    from runtime.aten import installed
    from runtime.aten.errors import AtenExecutorError

    if library:
        monkeypatch.setattr(installed, "LIBRARIES", installed.LIBRARIES | {"r70b_utils"})
    _package(tmp_path, monkeypatch, "r70b_kernels", _HELPER)
    utils = _package(tmp_path, monkeypatch, "r70b_utils",
                     "import r70b_kernels\n\n\ndef run(x):\n    return r70b_kernels.scale(x)\n")

    class M(nn.Module):
        def forward(self, x):
            return utils.run(x)
    if library:
        assert [pkg for _f, _w, pkg in _compile(M()).program.flag_reads] == ["r70b_kernels"]
    else:
        with pytest.raises(AtenExecutorError, match=r"differ from eager's"):
            _compile(M())


# 3. a replaced settings object's refusal quotes its text at compile -------------------------------------------------

@dataclasses.dataclass
class _Cfg70b:
    scale: float = 2.0


class _Held70b(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Module(), nn.Module()
        self.a.cfg = self.b.cfg = _Cfg70b()

    def forward(self, x):
        return x * self.a.cfg.scale


@pytest.mark.parametrize("planted", [False, True], ids=["fixed", "planted"])
def test_a_replaced_settings_objects_refusal_quotes_its_text_at_compile(planted, monkeypatch):
    """Failed before: both places replaced by a copy, then the old object's ``scale`` set to 5.0: the refusal said
    "... at compile ... set it back to _Cfg70b(scale=5.0)", a value never compiled (the old object's text at the
    refusal). ``planted``: no text recorded at compile, the old message comes back (the test can fail)."""
    from runtime.aten import guard

    if planted:
        monkeypatch.setattr(guard, "held_texts", lambda objects: {})
    m = _Held70b()
    x = torch.ones(4)
    step = _compile(m, x)
    old = m.a.cfg
    m.a.cfg = m.b.cfg = copy.deepcopy(old)
    m.a.cfg.scale = 6.0   # (round 71: the copy changed; the old one's change alone is no refusal, as forward reads
    old.scale = 5.0       # the copy)
    with pytest.raises(AtenExecutorError) as ei:
        step(x)
    msg = str(ei.value)
    assert "_Held70b.a.cfg" in msg, msg
    assert ("scale=5.0" not in msg and "set it back to _Cfg70b(scale=2.0)" in msg) is not planted, msg


# 4. a sparse tensor the module holds -----------------------------------------------------------------------------------

class _SparseHolder(nn.Module):
    def __init__(self, write: bool) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)
        self.sp = torch.eye(3).to_sparse()   # (a plain attribute: no storage of its own)
        self.write = write

    def forward(self, x):
        y = self.lin(x)
        if self.write and not torch.compiler.is_compiling():
            with torch.no_grad():
                self.sp.add_(self.sp)
        return y


def test_a_sparse_tensor_attribute_compiles():
    """Failed before: compile raised torch's raw ``RuntimeError`` ("Cannot access data pointer of Tensor that doesn't
    have storage") as it recorded the module's values (``byte_values.contents``)."""
    m = _SparseHolder(write=False)
    x = torch.ones(4)
    assert torch.equal(_compile(m, x)(x), m(x))


@pytest.mark.parametrize("planted", [False, True], ids=["fixed", "planted"])
def test_a_sparse_tensor_eagers_branch_writes_is_put_back(planted, monkeypatch):
    """Failed before (once it compiled): eager's comparison run's ``add_`` stayed, the diagonal [2, 2, 2] after compile
    (a sparse tensor was left unsaved). ``planted``: sparse tensors left unsaved again, the write stays."""
    from runtime.aten import module_state

    if planted:
        keep = module_state.ModuleState._tensor

        def unsaved(self, t):
            if not t.is_sparse:
                keep(self, t)
        monkeypatch.setattr(module_state.ModuleState, "_tensor", unsaved)
    m = _SparseHolder(write=True)
    assert _compile(m).program.flag_reads
    assert (m.sp.to_dense().diagonal().tolist() == [1.0, 1.0, 1.0]) is not planted


# 5. a write the mode cannot see: another thread's ----------------------------------------------------------------------

class _LinearAndBuffer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)
        self.register_buffer("buf", torch.arange(4.0))


class _ThreadWriter(_LinearAndBuffer):
    def forward(self, x):
        y = self.lin(x)
        if not torch.compiler.is_compiling():
            import threading

            def write():
                with torch.no_grad():
                    self.buf.add_(1)
            t = threading.Thread(target=write)
            t.start()
            t.join()
        return y


@pytest.mark.parametrize("planted", [False, True], ids=["fixed", "planted"])
def test_a_write_from_another_thread_in_eagers_branch_is_refused_not_kept_silently(planted, monkeypatch):
    """Failed before: compile returned, the buffer [1, 2, 3, 4] for [0, 1, 2, 3] (a dispatch mode is its thread's
    alone, so the other thread's ``add_`` was never saved), silently; now compile refuses, naming ``buf``.
    ``planted``: the version check off, compile returns with the buffer written (the test can fail)."""
    from runtime.aten import storage_saves

    if planted:
        monkeypatch.setattr(storage_saves.StorageSaves, "_unsaved", lambda self: [])
        monkeypatch.setattr(storage_saves.StorageSaves, "_unseen", lambda self: [])   # (round 71: its checksum)
    m = _ThreadWriter()
    if planted:
        _compile(m)
        assert m.buf.tolist() == [1.0, 2.0, 3.0, 4.0]
    else:
        with pytest.raises(AtenExecutorError, match=r"wrote _ThreadWriter\.buf .*another thread"):
            _compile(m)


class _RebindWriter(_LinearAndBuffer):
    def forward(self, x):
        y = self.lin(x)
        if not torch.compiler.is_compiling():
            with torch.no_grad():
                self.buf.data = torch.zeros(4)   # (its counter moves by the write to the other memory below)
                self.buf.add_(1)
        return y


def test_a_tensor_rebound_and_written_in_eagers_branch_is_put_back_not_refused():
    """The version check above leaves a tensor rebound to other memory (``.data =``): its own storage is unwritten
    and pointed back; without the check's rebound test it was refused as written past the watch."""
    m = _RebindWriter()
    _compile(m)
    assert m.buf.tolist() == [0.0, 1.0, 2.0, 3.0]
