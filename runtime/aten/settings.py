"""Which objects a module holds for their values (a transformers config, a dataclass of options): its settings.

Why a module of its own: the export watches which of their values ``forward`` reads (``program.load_program``),
and the compiled call's guard watches those values for changes (``guard``); both ask the same question, and the
guard reads the program, so the answer lives below both.
"""

from __future__ import annotations

import sys
from typing import Any


def settings_objects(torch: Any, module: Any) -> list[Any]:
    """The settings objects in ``module``'s tree (``settings_object``, and those they hold) that the compiled call's
    guard may watch, found before the export so that it can watch which of their values ``forward`` reads."""
    found: dict[int, Any] = {}

    def walk(d: dict) -> None:
        for key, v in d.items():
            if not key.startswith("_") and id(v) not in found and settings_object(torch, v):
                found[id(v)] = v
                walk(vars(v))

    for m in module.modules():
        walk(vars(m))
    return list(found.values())


def settings_object(torch: Any, v: Any) -> bool:
    """An object held for its values (a ``PretrainedConfig``, a dataclass of options): it has a ``__dict__`` and is no
    tensor, module, class or callable (a compiled step stored on the module counts its calls in public fields), nor
    an object of the standard library's or torch's machinery (``_MACHINERY``)."""
    return (hasattr(v, "__dict__") and not isinstance(v, (torch.Tensor, torch.nn.Module, type)) and not callable(v)
            and type(v).__module__.partition(".")[0] not in _MACHINERY)


#: packages whose objects a module may hold are machinery, not its settings: their public values change through
#: their own methods in ordinary use (a ``logging.Logger``'s ``level`` by ``setLevel``, a ``random.Random``'s
#: ``gauss_next``, an LR scheduler's ``last_epoch`` by ``step()``), which refused the next compiled call. The
#: standard library's namespaces of options (``argparse.Namespace``, ``types.SimpleNamespace``) are settings.
_MACHINERY = frozenset(sys.stdlib_module_names - {"argparse", "types"} | {"torch", "tqdm"})


#: the types of a plain value: what a module's setting or a container's item may be for the program to bake it in
SCALARS = (bool, int, float, complex, str, type(None))


def plain(v: Any, depth: int = 2) -> bool:
    """A plain value: a scalar (``SCALARS``), or a tuple of plain values ``depth`` levels down."""
    return isinstance(v, SCALARS) or (depth > 0 and type(v) is tuple and all(plain(x, depth - 1) for x in v))


def same_value(a: Any, b: Any) -> bool:
    """Equal as the program would use them: same type and ``repr`` (NaN is NaN, -0.0 is not 0.0). Written once for
    the guard (a setting changed since compile) and the export's watch (a container ``forward`` changed)."""
    return type(a) is type(b) and repr(a) == repr(b)
