"""A warning at compile where the walks of the Python state ``forward`` and its hooks may change stopped at their
size bounds (``module_containers.ITEM_LIMIT``, ``INNER_LIMIT``), naming the container.

Why: the walks that snapshot a module's container attributes, the globals and closures ``forward``'s code names
and the state of its hooks (``module_containers.container_snapshots``, ``python_state.python_state``,
``hook_state.hook_state_kept``) look into no container of more than 1,024 items and at most 10,000 containers in
one walk, so a change inside what they left (``self.table[2000][0] += 1`` in a list of 2,000 lists) compiled
silently, every compiled call running the export's value (round 62's bounds, round 63). The bounds stand (each
export pays the walk); compile now says where they cut, once, as a ``StateWalkWarning``. A big container of plain
values (a vocabulary) is no cut: its items are compared in full, only containers inside are left unwalked.
"""

from __future__ import annotations

import warnings
from typing import Any

from .module_containers import CONTAINERS, INNER_LIMIT, inner_containers
from .module_writes import module_fields


class StateWalkWarning(UserWarning):
    """Compile's walk of the Python state forward or its hooks may change left containers unwalked (their size)."""


def warn_cut_walks(torch: Any, module: Any) -> list[str]:
    """Warn once (``StateWalkWarning``) naming the first container each walk of ``module``'s state left unwalked and
    how many places were cut; returns the names (for tests)."""
    if not isinstance(module, torch.nn.Module):
        return []
    names: list[str] = []
    for label, roots in (("the module's attributes", _attribute_roots(torch, module)),
                         ("the Python state forward's code names", _python_roots(torch, module)),
                         ("the state of its forward hooks", _hook_roots(torch, module))):
        seen: set[int] = set()
        budget = [INNER_LIMIT]
        for name, v in roots:
            cut: list[tuple[tuple[Any, ...], str]] = []
            if type(v) in CONTAINERS:
                seen.add(id(v))
            inner_containers(v, seen, budget, cut)
            names += [f"{name}{''.join(f'[{k!r}]' for k in keys)} ({why}, in {label})" for keys, why in cut]
            if budget[0] <= 0:
                break
    if names:
        more = f" (and {len(names) - 1} more)" if len(names) > 1 else ""
        warnings.warn(StateWalkWarning(
            f"compile does not watch the containers inside {names[0]}{more}: the walk of the Python state forward "
            f"and its hooks may change looks into no container of more than 1,024 items and at most {INNER_LIMIT:,} "
            "containers, so a change forward makes inside them is not seen and every compiled call would run the "
            "export's value (keep such state in fewer or smaller containers, or in buffers)"), stacklevel=4)
    return names + warn_big_buffers(torch, module) + warn_deep_hook_state(torch, module)


def warn_deep_hook_state(torch: Any, module: Any) -> list[str]:
    """Warn once (``StateWalkWarning``) naming the places of the hooks' state that hold a container or an object below
    the depth ``hook_values`` fingerprints (``hook_values.too_deep``); returns them. Why a warning: a hook may keep a
    deep record it never reads back (a tree of stats), and the bound keeps the per-call check short (round 64e: a
    change eight lists down ran the export's value with no word)."""
    from .hook_values import _DEPTH, too_deep

    try:
        deep = too_deep(torch, module)
    except Exception:  # noqa: BLE001 - a warning's walk must never fail a compile
        return []
    if deep:
        more = f" (and {len(deep) - 1} more)" if len(deep) > 1 else ""
        warnings.warn(StateWalkWarning(
            f"compile does not watch what is inside {deep[0]}{more}: a compiled call compares the Python state a "
            f"forward hook reads down to {_DEPTH} levels of containers and objects, so a change below is not seen and "
            "every compiled call would run the export's value (keep such state flatter, or in buffers)"), stacklevel=5)
    return deep


def warn_big_buffers(torch: Any, module: Any) -> list[str]:
    """Warn once (``StateWalkWarning``) naming the byte buffers (NumPy arrays, ``bytearray``...) ``forward`` may read
    that are too big for ``byte_values`` to compare at each call; returns their labels. Why a warning, not a refusal:
    a module may hold a big array it never reads in ``forward`` (a vocabulary table for its tokenizer)."""
    from .byte_places import unwatched
    from .byte_values import CONTENT_LIMIT, TOTAL_LIMIT

    big = unwatched(torch, module)
    if big:
        more = f" (and {len(big) - 1} more)" if len(big) > 1 else ""
        warnings.warn(StateWalkWarning(
            f"compile does not watch the contents of {big[0]}{more}: a compiled call compares the bytes of no buffer "
            f"(NumPy array, bytearray, array.array, memoryview) of more than {CONTENT_LIMIT:,} bytes, nor past "
            f"{TOTAL_LIMIT:,} bytes in all, so a change in place of one forward reads is not seen and every compiled "
            "call would run the export's value (keep such a value in a buffer of the module, or compile again after "
            "changing it)"), stacklevel=5)
    return big


def _attribute_roots(torch: Any, module: Any) -> list[tuple[str, Any]]:
    """(name, value) of each container or tuple attribute of the tree, as ``container_snapshots`` walks them."""
    internal = module_fields(torch)
    root = type(module).__name__
    out = []
    for path, m in module.named_modules():
        for key, v in vars(m).items():
            if key in internal or key.startswith("__") or (type(v) not in CONTAINERS and type(v) is not tuple):
                continue
            out.append((f"{root}.{path}.{key}" if path else f"{root}.{key}", v))
    return out


def _python_roots(torch: Any, module: Any) -> list[tuple[str, Any]]:
    from .python_state import python_state

    try:
        places = python_state(torch, module)
    except Exception:  # noqa: BLE001 - a warning's walk must never fail a compile
        return []
    return [(p.label, p.value) for p in places if " at [" not in p.label and (type(p.value) in CONTAINERS
                                                                              or type(p.value) is tuple)]


def _hook_roots(torch: Any, module: Any) -> list[tuple[str, Any]]:
    from .hook_state import hook_roots

    out = hook_roots(torch, module)
    return [(n, v) for n, v in out if type(v) in CONTAINERS or type(v) is tuple]
