"""The Python values the forward hooks of a compiled module tree read, watched between calls.

Why: export runs each hook once and bakes what it made of its Python state into the program: a hook scaling its
output by a value the caller changes (``n = [1.0]``, ``out.mul_(n[0])`` or ``return out * n[0]``, then
``n[0] = 2.0``; a callable object's ``self.s``; a global ``SCALE``) ran every compiled call with the export's value
where eager's followed the change, silently (round 62's hole). The guard watched which hooks are registered
(``guard.Calls``), not what they read.

Per call: one comparison of a fingerprint of each hook's state (``hook_state._hook_places``: its closure's cells,
the globals its code names, the object it is bound to or is, a ``functools.partial``'s arguments) with the one taken
at compile, made by identity first (``hook_watch``: the fingerprint taken only where an object it read moved);
nothing at all for a tree without hooks. Where it moved, ``forward`` is exported again as compile
exported it (``CompiledModule._prove_hook_values``): the very program (a counting hook, advanced by eager calls
between compiled ones) takes the new state; another program is refused, naming the hook, and the state is
remembered so the refusal costs one export. A record of tensors (a feature tap's list, cleared by the caller)
stands as one value whatever its length: no export each call for it. Not seen: what a hook reads through other
functions it calls, or tensors it reads from its state (their values are the program's constants).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import hook_watch
from .byte_values import is_buffer
from .hook_state import Same, _fingerprint, _hook_places, _hook_tables
from .module_containers import CONTAINERS
from .settings import SCALARS, settings_object

#: how many values one hook's fingerprint looks at, and how deep (as ``hook_state._fingerprint``)
_BUDGET = 4096
_DEPTH = 6


@dataclass
class HookValues:
    """What each hook of a module tree (and torch's global ones) read as compile saw it: ``labels`` and ``places``
    per hook, ``seen`` their fingerprints then (or at the last proof); ``refuted`` a state shown to give another
    program (refused at once when met again)."""

    labels: tuple[str, ...]
    places: tuple[tuple[tuple[str, Any, Any], ...], ...]
    seen: tuple
    refuted: tuple | None = None
    #: what the last fingerprint equal to ``seen`` read (``hook_watch``), compared by identity at each call; None: none
    #: taken yet (a new ``seen``)
    watch: hook_watch.Watch | None = field(default=None, init=False, repr=False, compare=False)
    #: the hooks whose state identities cannot vouch for (a byte buffer, a record of tensors): fingerprinted per call
    unwatched: tuple[int, ...] = field(default=(), init=False, repr=False, compare=False)

    def now(self, torch: Any) -> tuple:
        return tuple(_state(torch, p) for p in self.places)

    def changed(self, torch: Any) -> tuple | None:
        """The fingerprints of the hooks' state now (``now``) where they differ from ``seen``; None where they do
        not. The per-call check: identities first (``hook_watch``), the fingerprint only where one moved (round 64:
        ~74 us a call for nine hooks, the fingerprint taken at every call)."""
        if self.watch is not None and self.watch.holds() and all(
                _state(torch, self.places[i]) == self.seen[i] for i in self.unwatched):
            return None
        visited: list[list[Any]] = [[] for _ in self.places]
        now = tuple(_state(torch, p, v) for p, v in zip(self.places, visited))
        if now != self.seen:   # (the watch dropped: it held the objects the state held then, which eager has freed
            self.watch = None   # since, through a refused state too, round 64d; a changed state costs this walk anyway)
            return now
        self.watch, self.unwatched = hook_watch.watch_hooks(torch, self.places, visited)
        return None

    def first_changed(self, now: tuple) -> str:
        """The label of the first hook whose state differs from ``seen`` in ``now``."""
        return next((label for label, a, b in zip(self.labels, now, self.seen) if a != b), self.labels[0])


def record(torch: Any, module: Any) -> HookValues | None:
    """``HookValues`` of ``module``'s tree now; None where it (and torch's global tables) holds no hook."""
    if not isinstance(module, torch.nn.Module):
        return None
    from .held_modules import held_trees

    labels: list[str] = []
    places: list[tuple] = []
    held = [(f"a forward {kind}hook of {name}", table) for name, m in held_trees(torch, module)
            for kind, table in (("", m._forward_hooks), ("pre-", m._forward_pre_hooks))]
    for where, table in _hook_tables(module) + held:   # (a held layer's hook: ``m.layers = [lin]``, round 63b)
        for hook in table.values():
            labels.append(f"{where} ({getattr(hook, '__qualname__', type(hook).__name__)})")
            places.append(tuple(_hook_places(torch, hook)))
    if not labels:
        return None
    return HookValues(tuple(labels), tuple(places), tuple(_state(torch, p) for p in places))


def refusal(label: str) -> str:
    """The one line a call is refused with where a hook's Python state changed since compile and ``forward`` exported
    again from it gives another program."""
    return (f"the Python state {label} reads changed since compile (a value in its closure, a global it names, a "
            "field of its object), and forward exported again from it gives another program: a compiled call runs no "
            "hook's Python, the program holds what the hook made at the export (compile again after the change, or "
            "keep such a value in a buffer of the module)")


def _state(torch: Any, places: tuple, visited: list[Any] | None = None) -> tuple:
    out = []
    budget = [_BUDGET]
    for kind, where, name in places:
        if kind == "cell":
            try:
                value = where.cell_contents
            except ValueError:   # (an empty cell)
                value = None
        elif kind == "global":
            value = where.get(name)
            if not isinstance(value, SCALARS) and type(value) not in (*CONTAINERS, tuple) and not is_buffer(value) \
                    and not settings_object(torch, value) and not isinstance(value, type):   # (a user's object: its fields, as a closure's, round 64b)
                # (a module, a function: which one, no walk into it (a class: its plain attributes, round 64e); held, not by its id, which a new object
                # at a freed one's address takes)
                out.append(("o", Same(value)))
                continue
        elif kind == "object":
            value = dict(vars(where))
        else:
            value = where
        out.append(_fingerprint(torch, value, _DEPTH, budget, tensors=False, visited=visited))
    return tuple(out)


def too_deep(torch: Any, module: Any) -> list[str]:
    """The places in the forward hooks' state (``_hook_places``) holding a container or an object of the user's
    below the fingerprint's depth (``_DEPTH``), each named once (``a closure variable of hook h[0][0]...``), for
    ``walk_bounds``' warning. Why: ``_state`` stands such a value as its kind alone, so a change inside it
    (``deep[0][0][0][0][0][0][0][0] = 3.0`` read by a hook) ran the export's value silently and with no word (round
    64e). Bounded as the fingerprint: at most ``_BUDGET`` values per hook."""
    from .hook_state import CLASS_FIELDS, _forward_hooks, class_fields

    if not isinstance(module, torch.nn.Module):
        return []
    out: list[str] = []
    done: set[tuple] = set()
    for hook in _forward_hooks(torch, module):
        label = getattr(hook, "__qualname__", type(hook).__name__)
        budget = [_BUDGET]
        for kind, where, name in _hook_places(torch, hook):
            if (kind, id(where), name) in done:
                continue
            done.add((kind, id(where), name))
            if kind == "cell":
                try:
                    roots = [(f"a closure variable of hook {label}", where.cell_contents, _DEPTH)]
                except ValueError:
                    continue
            elif kind == "global":
                roots = [(f"the global {name} of hook {label}", where.get(name), _DEPTH)]
            elif kind == "object":   # (its fields: one level below the place, as ``_state`` walks ``vars``)
                roots = [(f"{type(where).__name__}.{k} of hook {label}", v, _DEPTH - 1) for k, v in vars(where).items()]
            else:
                roots = [(f"an argument bound to hook {label}", where, _DEPTH)]
            for text, v, depth in roots:
                if isinstance(v, type) and len(every := class_fields(torch, v, limit=None)) > CLASS_FIELDS:
                    out.append(f"{text} (the class {v.__name__}'s attributes past its {CLASS_FIELDS:,}th, "
                               f"{every[CLASS_FIELDS][0]} on: a hook's fingerprint takes no more)")
                path = _deep_path(torch, v, depth, budget)
                if path is not None:
                    out.append(text + path)
    return out


def _deep_path(torch: Any, v: Any, depth: int, budget: list[int]) -> str | None:
    """The path (``[0][1]``, ``.field``) from ``v`` to the first container or settings object past ``depth`` levels,
    as ``hook_state._fingerprint`` walks (tensors left out); None where there is none."""
    budget[0] -= 1
    if budget[0] <= 0 or isinstance(v, SCALARS) or isinstance(v, (torch.Tensor, torch.nn.Module, type)):
        return None
    if type(v) in (*CONTAINERS, tuple):
        if not v or len(v) > 1024:
            return None
        items = v.items() if isinstance(v, dict) else enumerate(v)
        parts = [(f"[{k!r}]", x) for k, x in items] if not isinstance(v, set) else [("[...]", x) for x in v]
    elif settings_object(torch, v) and type(vars(v)) is dict:
        if not vars(v):
            return None
        parts = [(f".{k}", x) for k, x in vars(v).items()]
    else:
        return None
    if depth <= 0:
        return ""
    for step, x in parts:
        path = _deep_path(torch, x, depth - 1, budget)
        if path is not None:
            return step + path
    return None
