"""The modules a module tree holds in plain list, tuple or dict attributes (no submodules of it), and those
containers, watched between calls.

Why: ``self.layers = [nn.Linear(4, 4)]`` is no submodule (torch registers modules set as attributes, not those inside
a Python container), so the guard (``guard.ModuleGuard``, which walks ``named_modules``) saw nothing of it: a layer
appended after compile (``m.layers.append(nn.Linear(4, 4))``, ``m.layers["b"] = ...``), one swapped in, or a
parameter of one replaced (``m.layers[0].weight = nn.Parameter(...)``) left every compiled call running the export's
layers, silently (round 63). Per call: the length of each such container
and the identity of each module, container and tensor in it (two ``map``s, nothing for a tree without any). Where
one moved, what the containers hold now is listed again: the same modules and tensors (a list ``forward`` builds
anew each call from the same layers, torchvision's ``cell_anchors``; a feature tap appended to) take the new
containers; other ones are refused, naming the first, unless ``forward`` exported again gives the very program
(``CompiledModule._follow_held_modules``: a module held beside ``forward``, never called). Bounded: ``LIMIT``
containers and links per tree; past it, what is left is not watched.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter, is_
from typing import Any

from .module_containers import CONTAINERS
from .module_writes import module_fields

#: the containers and links one tree's watch holds at most (a per-call cost)
LIMIT = 1024

_LISTED = (*CONTAINERS, tuple)


@dataclass
class HeldModules:
    """``sized``/``lens``: each watched container and its length at compile; ``links``: (container, key, object) of
    each module, tensor or container in one (and the attribute holding each top container); ``listing``: what they
    reached then, by name (``listed``); ``refuted``: a listing shown to give another program."""

    sized: list[Any]
    lens: list[int]
    holders: list[Any]   # the links held in a dict (read with ``dict.get``: no Python call each)
    keys: list[Any]
    objects: list[Any]
    in_sequences: list[tuple[Any, Any, Any]]   # those held in a list, tuple or deque (few: the paths to a module)
    listing: dict[str, int]
    modules: list[Any]      # the held modules and theirs (their training flags: ``flags``)
    flags: list[bool]
    refuted: dict[str, int] | None = None

    def unchanged(self) -> bool:
        return (list(map(len, self.sized)) == self.lens
                and all(map(is_, map(dict.get, self.holders, self.keys), self.objects))
                and all(_item(h, k) is o for h, k, o in self.in_sequences)
                and list(map(_training, self.modules)) == self.flags)


def record(torch: Any, module: Any) -> HeldModules | None:
    """``HeldModules`` of ``module``'s tree; None where no module of it holds a list, tuple or dict attribute that
    holds (or may come to hold) a module."""
    if not isinstance(module, torch.nn.Module):
        return None
    sized: list[Any] = []
    links: list[tuple[Any, Any, Any]] = []
    listing: dict[str, int] = {}
    held_objects: list[tuple[str, Any]] = []
    _walk(torch, module, sized, links, listing, held_objects)
    if not sized:
        return None
    modules = [m for name, m in held_objects if isinstance(m, torch.nn.Module)]
    mapped = [link for link in links if isinstance(link[0], dict)]
    return HeldModules(sized, [len(c) for c in sized], [h for h, _k, _o in mapped], [k for _h, k, _o in mapped],
                       [o for _h, _k, o in mapped], [link for link in links if not isinstance(link[0], dict)],
                       listing, modules, [m.training for m in modules])


def listed(torch: Any, module: Any) -> dict[str, int]:
    """{name: id} of each module and tensor reached through the tree's container attributes now."""
    listing: dict[str, int] = {}
    _walk(torch, module, [], [], listing)
    return listing


def held_trees(torch: Any, module: Any) -> list[tuple[str, Any]]:
    """(name, module) of each module reached through the tree's container attributes and each of its own submodules.
    Why: their hooks run in eager as the tree's do, so ``hook_values`` watches what they read too."""
    out: list[tuple[str, Any]] = []
    _walk(torch, module, [], [], {}, out)
    return out


def first_difference(before: dict[str, int], now: dict[str, int]) -> str:
    """In words, the first name whose object differs between two listings."""
    for name in sorted(before.keys() | now.keys()):
        if before.get(name) != now.get(name):
            if name.endswith(" (training)") and name in now:
                return f"{name[:-11]} was put in {'train' if now[name] else 'eval'} mode after compile"
            if name.endswith(" (forward hooks)") and name in now:
                return f"the forward hooks of {name[:-16]} changed after compile"
            if name not in before:
                return f"{name} holds an object it did not hold at compile"
            if name not in now:
                return f"{name} no longer holds what it held at compile"
            return f"{name} holds another object than at compile"
    return "a container attribute changed after compile"


def refusal(what: str) -> str:
    return (f"{what}: a module in a list, tuple or dict attribute is no submodule, so the program holds the layers "
            "and weights forward called at the export, and forward exported again now gives another program "
            "(compile again after the change, or hold the layers in nn.ModuleList / nn.ModuleDict)")


def _walk(torch: Any, module: Any, sized: list[Any], links: list[tuple[Any, Any, Any]], listing: dict[str, int],
          modules: list[tuple[str, Any]] | None = None) -> None:
    """Fill ``sized`` and ``links`` (the watch), ``listing`` and ``modules`` (each held module's tree, by name) from
    the container attributes of ``module``'s tree: breadth first, each container and module once, ``LIMIT`` of each
    at most. A held module's hooks count as its contents (one added after compile ran in eager only), and its
    training flag in ``listing`` (``m.layers[0].eval()``: the export's dropout)."""
    modules = [] if modules is None else modules
    internal = module_fields(torch)
    root = type(module).__name__
    seen: set[int] = {id(m) for m in module.modules()}   # (the tree's own: the guard's business)
    queue: list[tuple[str, Any]] = []
    for path, m in module.named_modules():
        for key, v in vars(m).items():
            if key in internal or key.startswith("__") or type(v) not in _LISTED:
                continue
            if id(v) in seen:
                continue
            seen.add(id(v))
            links.append((vars(m), key, v))
            queue.append((f"{root}.{path}.{key}" if path else f"{root}.{key}", v))
    tops = len(queue)   # (the attributes' own containers: always watched, length and identity)
    held: list[tuple[str, Any]] = []
    parent: dict[int, tuple[Any, Any, Any]] = {}   # id of an inner container -> (its holder, key, itself)
    kept: set[int] = set()   # the containers on the path to a held module
    inner: list[tuple[Any, Any, Any]] = []
    walked = 0
    i = 0
    while i < len(queue) and walked < LIMIT:
        name, c = queue[i]
        i += 1
        walked += 1
        if i <= tops:
            sized.append(c)
        for k, item in list(c.items() if isinstance(c, dict) else enumerate(c))[:LIMIT]:
            if isinstance(item, torch.nn.Module) and id(item) not in seen:
                seen.add(id(item))
                inner.append((c, k, item))
                held.append((f"{name}[{k!r}]", item))
                up: Any = c
                while id(up) not in kept:   # (its holder and theirs, up to the attribute)
                    kept.add(id(up))
                    if id(up) not in parent:
                        break
                    up = parent[id(up)][0]
            elif type(item) in _LISTED and id(item) not in seen and len(item) <= LIMIT:
                seen.add(id(item))
                parent[id(item)] = (c, k, item)
                queue.append((f"{name}[{k!r}]", item))
    # (inside, only the containers that lead to a held module, and the modules: a list of 1,000 lists of plain
    # values costs its one length per call, not 1,000; what an inner container of no module gains is not seen)
    sized += [link[2] for link in parent.values() if id(link[2]) in kept]
    links += [link for link in parent.values() if id(link[2]) in kept]
    links += [link for link in inner if id(link[0]) in kept]
    del sized[LIMIT:], links[LIMIT:]
    for name, m in held:   # (each held module's tree: its layers, parameters and buffers, as eager reads them)
        listing[name] = id(m)
        for path, sub in m.named_modules(remove_duplicate=False):
            where = f"{name}.{path}" if path else name
            listing[where] = id(sub)
            listing[f"{where} (training)"] = int(sub.training)
            modules.append((where, sub))
            hooks = (sub._forward_pre_hooks, sub._forward_hooks)
            listing[f"{where} (forward hooks)"] = hash(tuple(k for d in hooks for k in d))
            for store in (sub._parameters, sub._buffers, sub._modules):
                for k, t in store.items():
                    listing[f"{where}.{k}"] = id(t)
            for store in (sub._parameters, sub._buffers, sub._modules, *hooks):   # (a hook by its dict's keys)
                links += [(store, k, t) for k, t in store.items()][:max(0, LIMIT - len(links))]
            if len(sized) < LIMIT:
                sized += [sub._parameters, sub._buffers, sub._modules, *hooks]


_training = attrgetter("training")


def _item(holder: Any, key: Any) -> Any:
    try:
        return holder[key]
    except (KeyError, IndexError, TypeError):
        return None
