"""The user's own names for ``torch._C.DisableTorchFunction`` (``from torch._C import DisableTorchFunction``, ``DTF =
torch._C.DisableTorchFunction``), pointed at ``value_reads``' stand-in while an export watches.

Why: torch consults no ``TorchFunctionMode`` inside ``with DisableTorchFunction():``, so the value-read watch saw no
``T.tolist()`` there. Round 65 replaced the attribute ``torch._C.DisableTorchFunction`` for the export's length; a
name bound to torch's class before compile still held it, and ``T.mul_(1.5)`` after compile ran the export's numbers
silently (round 66). The globals of the user's modules (not the standard library's, torch's, an installed
package's, memplan's or this runtime's) that hold torch's class are swapped to the stand-in, and back at the end
where they still hold it. The stand-in does torch's own in any thread that watches nothing.

Not swapped (docs/aten.md): the class held in a closure cell, a default argument, a container or an object's
attribute.
"""

from __future__ import annotations

import sys
from typing import Any

#: the top-level packages whose modules are no user's
_NOT_USERS = frozenset(sys.stdlib_module_names | {"torch", "memplan", "runtime", "numpy", "_pytest", "pytest",
                                                  "hypothesis", "pluggy", "__mp_main__"})


def swap_in(original: Any, stand_in: Any) -> list[tuple[dict, str]]:
    """Point each user module's global holding ``original`` at ``stand_in``; the (globals, name) pointed."""
    swapped: list[tuple[dict, str]] = []
    for name, mod in list(sys.modules.items()):
        if mod is None or name.partition(".")[0] in _NOT_USERS or _installed(mod):
            continue
        d = getattr(mod, "__dict__", None)
        if type(d) is not dict:
            continue
        for key, v in list(d.items()):
            if v is original:
                d[key] = stand_in
                swapped.append((d, key))
    return swapped


def swap_back(swapped: list[tuple[dict, str]], original: Any, stand_in: Any) -> None:
    """Put ``original`` back in each place ``swap_in`` pointed that still holds ``stand_in``."""
    for d, key in swapped:
        if d.get(key) is stand_in:
            d[key] = original


def _installed(mod: Any) -> bool:
    path = str(getattr(mod, "__file__", None) or "")
    return "site-packages" in path or "dist-packages" in path
