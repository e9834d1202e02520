"""The tensors held deeper in a settings object than ``guard._held_tensors``' three levels (``m.cfg.a.b.c.t``).

Why: export lifts ``x * self.cfg.a.b.c.t`` as a constant; the guard's walk of held tensors stopped three containers
or objects down, so replacing that tensor after compile (``m.cfg.a.b.c.t = t2``) ran the old one silently, and
compile said nothing (round 66). Settings objects are followed ``DEPTH`` more levels, through their fields and the
lists, tuples and dicts they hold, each object once, at most ``BUDGET`` values; where that bound cuts the walk a
``StateWalkWarning`` names the place.
"""

from __future__ import annotations

import warnings
from typing import Any

from .object_fields import object_fields

#: how many more levels below ``_held_tensors``' bound, and how many values at most, per object met there (round 68:
#: 29, for 32 in all; 6 before, and a tensor 10 objects deep replaced after compile ran the old one, warned only; the
#: budget bounds the walk's cost, the depth only a chain's)
DEPTH, BUDGET = 29, 4096


def deep_tensors(torch: Any, name: str, path: tuple, value: Any, field: type) -> list[tuple[str, tuple, Any]]:
    """(name, container path, tensor) of each tensor in ``value`` (a settings object at ``name``, reached by
    ``path``) and below, ``DEPTH`` levels and ``BUDGET`` values at most; ``field`` is ``guard._Field`` (a path step
    naming an object's field)."""
    from .walk_bounds import StateWalkWarning

    out: list[tuple[str, tuple, Any]] = []
    seen: set[int] = set()
    budget = [BUDGET]
    cut: list[str] = []

    def walk(name: str, path: tuple, v: Any, left: int) -> None:
        budget[0] -= 1
        if isinstance(v, torch.Tensor):
            out.append((name, path, v))
            return
        container = isinstance(v, (list, tuple, dict))
        fields = None if container else object_fields(torch, v)
        if not (container or fields is not None) or id(v) in seen:
            return
        if left <= 0 or budget[0] <= 0:
            if len(v if container else fields or ()):
                cut.append(name)
            return
        seen.add(id(v))
        if container:
            for key, x in list(v.items() if isinstance(v, dict) else enumerate(v)):
                walk(f"{name}[{key!r}]", (*path, (v, key)), x, left - 1)
        else:
            for key, x in fields or ():
                walk(f"{name}.{key}", (*path, (v, field(key))), x, left - 1)

    walk(name, path, value, DEPTH)
    if cut:
        warnings.warn(StateWalkWarning(
            f"{', '.join(cut[:3])}{' ...' if len(cut) > 3 else ''}: held deeper in a settings object than compile "
            f"walks ({DEPTH + 3} levels, {BUDGET} values): a tensor there that the program reads is not watched, so "
            "replacing it after compile would run the old one; compile again after such a change, or hold it "
            "nearer the module"), stacklevel=4)
    return out
