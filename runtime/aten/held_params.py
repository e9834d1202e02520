"""The ``nn.Parameter``s behind a program's lifted constants: a parameter of a module held in a plain list, tuple or
dict attribute (``self.rnns = [nn.GRU(...)]``, no submodule), a settings object's field or an attribute set past
``nn.Module.__setattr__``, or one held in such a place itself (``self.ws = [nn.Parameter]``, ``self.cfg.w``).

Why: torch.export lifts such a parameter as a *detached* constant over its storage, and the program's kernels read
that alias, whose ``requires_grad`` is False, where eager's read the parameter, whose flag is True even under
``no_grad``. CPU kernels choose their path by it: ``aten.gru`` / ``aten.rnn_tanh`` take another path when their
weights require grad (one ulp off eager's), and ``w @ x`` of a 2-D weight and a 3-D input folds to one ``mm`` only
then (round 74: both compiled and ran silently off eager's bits). The program reads the parameter itself instead, as
it does a submodule's (``program.load_program``)."""

from __future__ import annotations

from itertools import islice
from types import FunctionType
from typing import Any

from .held_modules import held_trees
from .module_writes import module_fields
from .object_fields import object_fields

#: containers walked below a module's attribute for parameters held in them (``guard._held_tensors``' depth), and
#: the items read of each (a global list of a million numbers is no place a parameter hides)
_DEPTH = 3
_ITEMS = 1024


def _key(t: Any) -> tuple:
    """What makes two tensors the same elements: storage, offset, sizes, strides, dtype and device."""
    return (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype, t.device)


def held_parameters(torch: Any, module: Any) -> dict[tuple, Any]:
    """{``_key``: parameter} of each parameter ``module``'s tree reaches that is no registered parameter of the tree:
    those of the modules it holds in container attributes, in settings objects' fields or unregistered
    (``object.__setattr__(self, "g", gru)``), and their submodules', and those held in such places directly. Empty
    (and cheap: one walk of the tree's attributes) for a tree without any."""
    if not isinstance(module, torch.nn.Module):
        return {}

    tree = {id(m) for m in module.modules()}
    found: list[Any] = []
    for _name, m in held_trees(torch, module):
        found += [p for p in m._parameters.values() if p is not None]
    internal = module_fields(torch)

    def walk(value: Any, left: int) -> None:
        if isinstance(value, torch.nn.Parameter):
            found.append(value)
        elif isinstance(value, torch.nn.Module):
            if id(value) not in tree:
                found.extend(value.parameters())
        elif left and isinstance(value, (list, tuple, dict)):
            for v in islice(value.values() if isinstance(value, dict) else value, _ITEMS):
                walk(v, left - 1)
        elif left and not isinstance(value, torch.Tensor) and (fields := object_fields(torch, value)) is not None:
            for _k, v in fields:
                walk(v, left - 1)

    for m in module.modules():
        for key, value in vars(m).items():
            if key not in internal and not key.startswith("__"):
                walk(value, _DEPTH)
    for value in _code_values(torch, module):
        walk(value, _DEPTH)
    out: dict[tuple, Any] = {}
    own = {id(p) for p in module.parameters()}   # (the tree's own, ``_flat_weights`` lists them too: a constant over
    for p in found:   # one is a detached alias the user made, ``self.t = self.w.detach()``, read as such in eager)
        if id(p) in own:
            continue
        try:
            out.setdefault(_key(p), p)
        except (RuntimeError, NotImplementedError):   # (no storage: a meta or subclass parameter; left as it is)
            continue
    return out


def parameter_behind(torch: Any, constant: Any, params: dict[tuple, Any]) -> Any:
    """The parameter of ``params`` whose very elements the lifted ``constant`` is (a detached alias), else
    ``constant``."""
    if not params or not isinstance(constant, torch.Tensor) or isinstance(constant, torch.nn.Parameter):
        return constant
    try:
        return params.get(_key(constant), constant)
    except (RuntimeError, NotImplementedError):
        return constant


def _code_values(torch: Any, module: Any) -> list[Any]:
    """The globals the functions of the tree's own classes name and their closures' values, and one level into the
    plain functions among those (a global helper's closure; torch's classes and functions left out): a global or
    closed-over ``nn.GRU`` or ``nn.Parameter`` that ``forward`` calls is lifted as a constant too."""
    out: list[Any] = []
    seen: set[int] = set()

    def of(f: Any, deeper: bool) -> None:
        code = getattr(f, "__code__", None)
        if code is None or id(f) in seen or (getattr(f, "__module__", None) or "").split(".")[0] == "torch":
            return
        seen.add(id(f))
        g = getattr(f, "__globals__", {})
        found = [g[n] for n in code.co_names if n in g]
        for cell in getattr(f, "__closure__", None) or ():
            try:
                found.append(cell.cell_contents)
            except ValueError:   # (an empty cell)
                continue
        out.extend(found)
        if deeper:
            for v in found:
                if isinstance(v, FunctionType):
                    of(v, False)

    for cls in {type(m) for m in module.modules()}:
        if cls.__module__.split(".")[0] != "torch":
            for f in vars(cls).values():
                of(getattr(f, "__func__", f), True)
    return out
