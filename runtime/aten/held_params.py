"""The ``nn.Parameter``s behind a program's lifted constants: a parameter of a module held in a plain list, tuple or
dict attribute (``self.rnns = [nn.GRU(...)]``, no submodule), or one held there itself (``self.ws = [nn.Parameter]``).

Why: torch.export lifts such a parameter as a *detached* constant over its storage, and the program's kernels read
that alias, whose ``requires_grad`` is False, where eager's read the parameter, whose flag is True even under
``no_grad``. CPU kernels choose their path by it: ``aten.gru`` / ``aten.rnn_tanh`` take another path when their
weights require grad (one ulp off eager's), and ``w @ x`` of a 2-D weight and a 3-D input folds to one ``mm`` only
then (round 74: both compiled and ran silently off eager's bits). The program reads the parameter itself instead, as
it does a submodule's (``program.load_program``)."""

from __future__ import annotations

from typing import Any

from .held_modules import held_trees
from .module_writes import module_fields

#: containers walked below a module's attribute for parameters held in them (``guard._held_tensors``' depth)
_DEPTH = 3


def _key(t: Any) -> tuple:
    """What makes two tensors the same elements: storage, offset, sizes, strides, dtype and device."""
    return (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype, t.device)


def held_parameters(torch: Any, module: Any) -> dict[tuple, Any]:
    """{``_key``: parameter} of each parameter of ``module``'s tree that is no registered parameter of the tree:
    those of the modules it holds in container attributes (and their submodules) and those held in such containers
    directly. Empty (and cheap: one walk of the tree's attributes) for a tree without any."""
    if not isinstance(module, torch.nn.Module):
        return {}
    found: list[Any] = []
    for _name, m in held_trees(torch, module):
        found += [p for p in m._parameters.values() if p is not None]
    internal = module_fields(torch)

    def walk(value: Any, left: int) -> None:
        if isinstance(value, torch.nn.Parameter):
            found.append(value)
        elif left and isinstance(value, (list, tuple, dict)):
            for v in (value.values() if isinstance(value, dict) else value):
                walk(v, left - 1)

    for m in module.modules():
        for key, value in vars(m).items():
            if key not in internal and not key.startswith("__") and isinstance(value, (list, tuple, dict)):
                walk(value, _DEPTH)
    out: dict[tuple, Any] = {}
    for p in found:
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
