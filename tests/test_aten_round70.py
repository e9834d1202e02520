"""Round 70: what round 69 left in the ATen executor (CPU).

1. ``module_state`` cloned every parameter and buffer before compile's eager comparison run (2x weight memory at
   compile); now a storage is saved at its first write under a ``TorchDispatchMode`` (``storage_saves``), and only
   the saved ones are put back.
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

# 1. copy-on-write saves of the module's tensors ------------------------------------------------------------------------

def _data_add(m):
    m.lin.weight.data.add_(1)


def _view_of_param(m):
    m.lin.weight[0].mul_(0)
    m.lin.bias.view(-1)[1:].fill_(7)


def _attribute_alias(m):
    m.alias.add_(3)   # (``self.alias = self.lin.weight[:, :2]``: another attribute, the weight's bytes)


def _out_write(m):
    torch.add(m.lin.bias, 1, out=m.lin.bias)
    torch.mul(m.buf, 2, out=m.buf)


def _from_numpy_alias(m):
    torch.from_numpy(m.buf.numpy()).add_(5)   # (another storage object over the same bytes)


def _rebound(m):
    m.lin.weight.data = torch.zeros(3, 4)
    m.buf.resize_(10)
    m.buf.fill_(9)


def _set(m):
    m.buf.set_(torch.full((2,), 4.0))


def _held_tensor(m):
    m.held["t"][1:].sub_(1)


def _buffer_copy(m):
    m.buf.copy_(torch.arange(4.0))


MUTATIONS = {f.__name__.lstrip("_"): f for f in
             (_data_add, _view_of_param, _attribute_alias, _out_write, _from_numpy_alias, _rebound, _set, _held_tensor,
              _buffer_copy)}


def _module(mutate):
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 3)
            self.register_buffer("buf", torch.arange(4.0) + 1)
            self.alias = self.lin.weight.detach()[:, :2]
            self.held = {"t": torch.ones(3)}

        def forward(self, x):
            y = self.lin(x) * 2
            if not torch.compiler.is_compiling():
                with torch.no_grad():
                    mutate(self)
            return y
    torch.manual_seed(0)
    return M()


def _state(m):
    w = m.lin.weight
    return (w.detach().clone(), m.lin.bias.detach().clone(), m.buf.clone(), m.held["t"].clone(),
            w.untyped_storage()._cdata, w.stride(), m.buf.untyped_storage()._cdata, tuple(m.buf.shape))


def _same(a, b):
    return all(torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y for x, y in zip(a, b))


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_compiles_eager_run_puts_back_each_write_to_the_modules_tensors(name):
    """Each way eager's branch writes the module's tensors (``.data``, a view, an alias attribute, ``out=``, another
    storage over the same bytes, ``.data =``, ``resize_``, ``set_``, a held tensor) is put back after compile."""
    m = _module(MUTATIONS[name])
    before = _state(m)
    step = _compile(m)
    assert _same(_state(m), before)
    assert step.program.flag_reads   # (compared: eager's branch ran)


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_each_write_is_left_without_the_save(name, monkeypatch):
    """The test above can fail: with the save before write skipped, each of its writes stays after compile (the
    layout restore alone puts back what rebinds a tensor: its values are written through the old storage)."""
    from runtime.aten import storage_saves

    monkeypatch.setattr(storage_saves.StorageSaves, "save", lambda self, t: None)
    monkeypatch.setattr(storage_saves.StorageSaves, "_unsaved", lambda self: [])   # (else refused: unsaved writes)
    monkeypatch.setattr(storage_saves.StorageSaves, "_unseen", lambda self: [])   # (round 71: its checksum)
    if name in ("rebound", "set"):
        monkeypatch.setattr(storage_saves.StorageSaves, "restore", lambda self: None)
    m = _module(MUTATIONS[name])
    before = _state(m)
    _compile(m)
    assert not _same(_state(m), before)


def test_only_the_storages_written_are_copied():
    """Failed before (every parameter and buffer cloned up front): a forward writing one buffer copies that buffer's
    bytes alone."""
    from runtime.aten.module_state import ModuleState

    m = _module(_buffer_copy)
    state = ModuleState(torch, m)
    assert not state.tensors and state.saves.saved_bytes == 0
    with torch.no_grad(), state.watching():
        m(torch.ones(4))
    assert state.saves.saved_bytes == m.buf.untyped_storage().nbytes()
    state.restore()
    assert state.saves.saved_bytes == 0 and m.buf.tolist() == [1.0, 2.0, 3.0, 4.0]


def test_a_train_mode_batchnorms_running_stats_are_put_back():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm1d(4)

        def forward(self, x):
            return self.bn(x) if not torch.compiler.is_compiling() else self.bn(x) + 0

    m = M().train()
    before = (m.bn.running_mean.clone(), m.bn.running_var.clone(), m.bn.num_batches_tracked.clone())
    _compile(m, torch.randn(3, 4))
    # (the compiled step's write-back of the running stats is saved before it runs: no mode sees a CUDA graph)
    assert all(torch.equal(a, b) for a, b in zip(before, (m.bn.running_mean, m.bn.running_var,
                                                          m.bn.num_batches_tracked)))


# 2. a class attribute or a module global eager's branch changes ------------------------------------------------------

CALLS: list = []
SEEN = {"n": 0}
COUNT = 0


class _Counted(nn.Module):
    counter = 0
    registry: list = []

    def forward(self, x):
        global COUNT
        if not torch.compiler.is_compiling():
            type(self).counter += 1
            type(self).registry.append("call")
            type(self).added = True
            CALLS.append(x.shape)
            SEEN["n"] += 1
            COUNT += 1
        return x * 2


def _globals():
    return (_Counted.counter, list(_Counted.registry), hasattr(_Counted, "added"), list(CALLS), dict(SEEN), COUNT,
            id(_Counted.registry), id(CALLS), id(SEEN))


def test_compiles_eager_run_leaves_class_attributes_and_module_globals_as_they_were():
    """Failed before: after compile, ``counter == 1``, ``registry == ['call']``, ``added`` set, ``CALLS`` held one
    shape, ``SEEN['n'] == 1`` and ``COUNT == 1`` (the eager run's changes, which no eager call of the user made)."""
    before = _globals()
    _compile(_Counted())
    assert _globals() == before


def test_this_runtimes_own_modules_are_never_put_back():
    """A model class of this package (``runtime.aten.tiny_cnn``, the benchmark's CNN) makes ``runtime`` a user
    package; its modules' globals (the watches' tables) are this runtime's, not the user's state."""
    from runtime.aten import module_state
    from runtime.aten.tiny_cnn import CNN

    spaces = module_state._user_spaces(torch, CNN())
    assert not [o for o, _ in spaces if not isinstance(o, type)]
    assert not [o for o, _ in spaces if isinstance(o, type)]

# 5. a transformers ModelOutput held as a module attribute: its items and its attribute mirror --------------------------

class _Mirrored(dict):
    """A dict whose items are mirrored as attributes (transformers' ``ModelOutput`` keeps both)."""

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        object.__setattr__(self, key, value)

    def __setattr__(self, key, value):
        super().__setitem__(key, value)
        object.__setattr__(self, key, value)


def _output_kinds():
    kinds = [("mirrored_dict", lambda t: _Mirrored(last_hidden_state=t))]
    try:
        from transformers.modeling_outputs import BaseModelOutput
    except ImportError:
        return kinds
    return [*kinds, ("model_output", lambda t: BaseModelOutput(last_hidden_state=t))]


@pytest.mark.parametrize("kind", [k for k, _ in _output_kinds()])
def test_a_held_model_outputs_attributes_come_back_with_its_items(kind):
    """Failed before: ``self.last.last_hidden_state`` (the attribute) kept eager's tensor after compile while
    ``self.last['last_hidden_state']`` (the item) was put back, and a field set in eager's branch stayed an attribute."""
    make = dict(_output_kinds())[kind]

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.last = make(torch.zeros(4))
            if kind == "mirrored_dict":
                self.last.last_hidden_state = self.last["last_hidden_state"]

        def forward(self, x):
            y = x * 2
            if not torch.compiler.is_compiling():
                self.last.last_hidden_state = y
                self.last["hidden_states"] = (y,)
            return y

    m = M()
    item, attr = m.last["last_hidden_state"], m.last.last_hidden_state
    extra = set(vars(m.last))
    _compile(m)
    assert m.last["last_hidden_state"] is item and m.last.last_hidden_state is attr
    assert "hidden_states" not in m.last and set(vars(m.last)) == extra


# 3. one rule for the user's own code wherever installed (installed.library_code) ------------------------------------

_PACKAGE = '''import torch
from torch import nn


class Base:
    s = 2.0


class Cfg(Base):
    pass


class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.cfg = Cfg()

    def forward(self, x):
        return x * self.cfg.s
'''


def _package(tmp_path, monkeypatch, name, installed, text: str | None = None):
    """Package ``name`` (its ``__init__.py``: ``text``, else ``_PACKAGE``) on ``sys.path``: in a ``site-packages``
    directory (``pip install .``) or a working dir."""
    import importlib
    import sys

    root = tmp_path / "lib" / "python3" / "site-packages" if installed else tmp_path / "work"
    (root / name).mkdir(parents=True)
    (root / name / "__init__.py").write_text(_PACKAGE if text is None else text)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delitem(sys.modules, name, raising=False)
    module = importlib.import_module(name)
    monkeypatch.setitem(sys.modules, name, module)
    return module


@pytest.mark.parametrize("installed", [True, False], ids=["site_packages", "working_dir"])
def test_a_users_package_gets_the_same_checks_wherever_installed(installed, tmp_path, monkeypatch):
    """Failed before for site-packages: ``Base.s = 3.0`` (a base of a settings object's class) after compile ran the
    export's 2.0 silently, [2, 2, 2] where eager gave [3, 3, 3] (``python_state`` asked ``installed_file`` alone and
    watched the installed class's own attributes); the working-dir copy was refused."""
    from runtime.aten.errors import AtenExecutorError
    from runtime.aten.installed import installed_file

    pkg = _package(tmp_path, monkeypatch, f"r70_pkg_{'site' if installed else 'work'}", installed)
    assert installed_file(pkg.__file__) is installed
    m = pkg.M()
    step = _compile(m)
    pkg.Base.s = 3.0
    with pytest.raises(AtenExecutorError, match=r"class attribute Base\.s"):
        step(torch.ones(4))


def test_library_code_is_installed_code_of_no_compiled_trees_package(tmp_path, monkeypatch):
    from runtime.aten import installed

    pkg = _package(tmp_path, monkeypatch, "r70_pkg_rule", True)
    monkeypatch.setattr(installed, "_USERS", set())
    assert installed.library_code("r70_pkg_rule") and installed.library_code("r70_pkg_rule.sub", pkg.__file__)
    assert not installed.library_code(__name__)   # (this test file: no installed file)
    installed.user_packages(torch, pkg.M())
    assert not installed.library_code("r70_pkg_rule") and not installed.library_code("r70_pkg_rule.sub")
    assert installed.library_code("torch.nn") == installed.installed_file(torch.nn.__file__)


# 4. a flag read in a helper of an installed package no class of the tree comes from ------------------------------------

_HELPER = '''import torch


def scale(x):
    if torch.compiler.is_compiling():
        return x * 2
    return x * 3
'''


def _never_compared(monkeypatch, what: str) -> None:
    """``flag_reads`` comparing any read with eager fails the test, naming ``what`` was compared."""
    from runtime.aten import flag_reads

    def compared(*_a, **_k):
        raise AssertionError(f"{what} was compared with eager")

    monkeypatch.setattr(flag_reads, "_both", compared)


def test_a_flag_read_in_an_installed_helper_package_is_compared(tmp_path, monkeypatch):
    """Failed before: the helper's package counted as an installed library's (no class of the tree comes from it), so
    its read was not compared and the program compiled [2, 2, 2, 2] where eager gives [3, 3, 3, 3], silently."""
    from runtime.aten.errors import AtenExecutorError

    helpers = _package(tmp_path, monkeypatch, "r70_helpers", True, _HELPER)

    class M(nn.Module):
        def forward(self, x):
            return helpers.scale(x)
    with pytest.raises(AtenExecutorError, match=r"r70_helpers|__init__\.py:5.*differ from eager's"):
        _compile(M())


def test_a_flag_read_in_a_model_library_alone_is_still_not_compared(tmp_path, monkeypatch):
    """A read in a model library (``installed.LIBRARIES``: transformers asks in every model) is recorded, not compared."""
    from runtime.aten import installed

    monkeypatch.setattr(installed, "LIBRARIES", installed.LIBRARIES | {"r70_lib_helpers"})
    helpers = _package(tmp_path, monkeypatch, "r70_lib_helpers", True, _HELPER.replace("x * 3", "x * 2"))
    _never_compared(monkeypatch, "a model library's flag read")

    class M(nn.Module):
        def forward(self, x):
            return helpers.scale(x)
    assert [pkg for _f, _w, pkg in _compile(M()).program.flag_reads] == ["r70_lib_helpers"]


def test_a_flag_read_in_a_package_a_model_library_calls_is_still_not_compared(tmp_path, monkeypatch):
    """``kernels``' layers ask ``is_compiling()`` under transformers' models (a tiny Llama of transformers 5.25): a
    package a library calls, not the user's code, is left to that library (not compared, as before)."""
    from runtime.aten import installed

    monkeypatch.setattr(installed, "LIBRARIES", installed.LIBRARIES | {"r70_model_lib"})
    _package(tmp_path, monkeypatch, "r70_kernels", True, _HELPER.replace("x * 3", "x * 2"))
    lib = _package(tmp_path, monkeypatch, "r70_model_lib", True,
                   "import r70_kernels\n\n\ndef run(x):\n    return r70_kernels.scale(x)\n")
    _never_compared(monkeypatch, "a flag read of a package a model library calls")

    class M(nn.Module):
        def forward(self, x):
            return lib.run(x)
    assert [pkg for _f, _w, pkg in _compile(M()).program.flag_reads] == ["r70_kernels"]


def test_a_higher_order_op_in_eagers_branch_runs_and_everything_is_put_back():
    """Failed before the mode took higher-order ops: compile raised torch's raw NotImplementedError ("no rule
    registered for HigherOrderOperator cond and mode ...") for a ``torch.cond`` in eager's branch."""
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("b", torch.ones(4))
            self.lin = nn.Linear(4, 4)

        def forward(self, x):
            y = self.lin(x)
            if not torch.compiler.is_compiling():
                with torch.no_grad():
                    z = torch.cond(x.sum() > 0, lambda t: t + self.b, lambda t: t - self.b, (x,))
                    self.b.add_(z.sum())
                    self.lin.weight.mul_(0)
            return y

    m = M()
    before = (m.b.clone(), m.lin.weight.detach().clone())
    _compile(m)
    assert torch.equal(m.b, before[0]) and torch.equal(m.lin.weight, before[1])


# a settings object held at two places: a change is named at a place that holds the changed object now ----------------

@dataclasses.dataclass
class _Inner70:
    k: float = 0.5


@dataclasses.dataclass
class _Cfg70:
    scale: float = 2.0
    inner: _Inner70 = dataclasses.field(default_factory=_Inner70)


class _Shared70(nn.Module):
    """One settings object at ``a.cfg`` and ``b.cfg`` (its fields recorded under the first place, ``a.cfg``)."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Module(), nn.Module()
        self.a.cfg = self.b.cfg = _Cfg70()

    def forward(self, x):
        return x * self.a.cfg.scale + self.b.cfg.inner.k


@pytest.mark.parametrize("field, path", [("scale", "b.cfg.scale"), ("inner.k", "b.cfg.inner.k")])
def test_a_change_after_a_copy_at_one_of_two_places_is_named_where_the_object_is_now(field, path, monkeypatch):
    """``m.a.cfg`` replaced by a copy, then the old object (still ``m.b.cfg``) changed through ``m.b.cfg``: the
    refusal said "_Shared70.a.cfg.scale is 5.0 now", while ``m.a.cfg.scale`` was still 2.0 (the copy's); now it
    names ``b.cfg``, the place that holds the changed object.

    ``b.cfg.scale`` is a field forward never reads (it reads ``a.cfg.scale``): since round 74 a second export from the
    settings now proves compile's very program and the call runs, as eager computes it. The naming is checked with
    that proof switched off (a field forward does read, ``b.cfg.inner.k``, is refused either way)."""
    from runtime.aten.compile import CompiledModule

    for proof in (True, False):
        m = _Shared70()
        x = torch.ones(4)
        step = _compile(m, x)
        m.a.cfg = copy.deepcopy(m.a.cfg)
        setattr(m.b.cfg if field == "scale" else m.b.cfg.inner, field.rpartition(".")[2], 5.0)
        if proof and field == "scale":
            assert torch.equal(step(x), m(x).detach())
            continue
        with monkeypatch.context() as mp:
            if not proof:
                mp.setattr(CompiledModule, "_prove_settings", lambda self, torch, refusal: False)
            with pytest.raises(AtenExecutorError) as ei:
                step(x)
        msg = str(ei.value)
        assert f"_Shared70.{path} is 5.0 now" in msg and f"a.cfg.{field}" not in msg, msg


def test_a_change_of_an_object_held_nowhere_now_names_the_place_it_left():
    """Both places replaced by one copy, then the old object (held by the module no more) changed: the refusal named
    "a.cfg.scale is 5.0 now", a value neither ``m.a.cfg`` nor ``m.b.cfg`` holds; now the place replaced is named."""
    m = _Shared70()
    x = torch.ones(4)
    step = _compile(m, x)
    old = m.a.cfg
    m.a.cfg = m.b.cfg = copy.deepcopy(old)
    m.a.cfg.scale = 6.0   # (round 71: the copy changed too; the old one's change alone is no refusal, as forward
    old.scale = 5.0       # reads the copy alone: test_aten71_round71)
    with pytest.raises(AtenExecutorError) as ei:
        step(x)
    msg = str(ei.value)
    assert "cfg.scale" not in msg and "_Shared70.a.cfg" in msg, msg
