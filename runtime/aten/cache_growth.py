"""A call's change to a container argument that lies inside a transformers cache it holds (``state['cache']`` grown
by a decode step's ``update``): told apart from a change of the containers, adopted where ``forward`` returns the
grown cache, refused naming the cache's path and layer where it does not.

Why: a compiled call runs the program on the argument's tensors, never ``forward``'s Python on the caller's objects,
so every argument ``forward`` changed in place was refused (``call_args.input_changes``), a ``DynamicCache`` passed
itself and returned excepted (round 53b: the program's output holds the grown cache's tensors, put into the
caller's object by ``cache_adopt.adopt_cache``). A cache inside a dict, list or tuple argument was refused as "forward
changes its argument 'state' in place" (round 56), though the same adoption grows it: the containers around it
are unchanged, the cache object is the caller's, and the output holds it. What cannot be grown stays refused: a
cache ``forward`` grows but does not return (its new tensors are no output of the program), a container changed
beside it (a key set, a cache replaced by another object), a cache of other layers.
"""

from __future__ import annotations

from typing import Any

from .cache_adopt import is_adoptable, path_of
from .cache_paths import cache_shell, is_dynamic_cache_class, is_encoder_decoder_cache
from .call_args import same_leaf


def _layers(cache: Any) -> list[tuple[str, Any]]:
    """(label, layer) of each layer of a ``DynamicCache``, or of both caches of an ``EncoderDecoderCache``."""
    if is_encoder_decoder_cache(cache):
        return [(f"{part}.layers[{k}]", x) for part in ("self_attention_cache", "cross_attention_cache")
                for k, x in enumerate(getattr(getattr(cache, part, None), "layers", ()))]
    return [(f"layers[{k}]", x) for k, x in enumerate(getattr(cache, "layers", ()))]


def layer_states(torch: Any, cache: Any) -> list[tuple[str, int, Any, int]]:
    """(label, tokens its keys hold, tokens it has seen (a sliding layer's count, else None), id of its keys) of
    each layer of ``cache``: what ``grown_layer`` compares after the call."""
    out = []
    for label, x in _layers(cache):
        keys = getattr(x, "keys", None)
        held = int(keys.shape[-2]) if isinstance(keys, torch.Tensor) and keys.dim() >= 2 else 0
        out.append((label, held, getattr(x, "cumulative_length", None), id(keys)))
    return out


def grown_layer(before: list[tuple[str, int, Any, int]], after: list[tuple[str, int, Any, int]]) -> str:
    """The first layer the call changed, in words (``its layers[0]: 6 tokens before the call, 7 after``)."""
    for k, now in enumerate(after):
        if k >= len(before):
            return f"its {now[0]} was added, holding {now[1]} tokens"
        label, held, seen, _keys = before[k]
        if now[1:] != before[k][1:]:
            counts = ("" if seen is None and now[2] is None else
                      f", having seen {seen} tokens before the call and {now[2]} after")
            return f"its {label} held {held} tokens before the call and {now[1]} after{counts}"
    return "its layers were replaced"


def snapshot(torch: Any, name: str, value: Any) -> tuple | None:
    """What ``nested_growth`` compares after the call for the argument ``name``: its shell (``cache_shell``), and for
    each cache in it (path, its own pytree structure, its layers' states); None where the argument holds no cache
    in a container (an argument that is a cache itself is ``cache_adopt.returned_caches``' business)."""
    import torch.utils._pytree as pytree

    spec, leaves, caches = cache_shell(torch, name, value)
    if spec is None or not caches:
        return None
    inner = [(path, *pytree.tree_flatten(cache)[::-1], layer_states(torch, cache)) for path, cache in caches]
    return spec, leaves, caches, inner


def nested_growth(torch: Any, name: str, value: Any, before: tuple, out: Any
                  ) -> tuple[list[tuple[str, tuple]], str | None] | None:
    """Whether the change ``forward`` made to the argument ``name`` (``value``, snapshotted as ``before``) lies
    inside the caches it holds: None where it does not (the containers changed: ``input_changes``' refusal stands);
    else ((cache's path, its path in ``out``) of each grown cache ``forward`` returns as itself, which the compiled
    call grows as eager's: ``Program.returned_caches``), and the refusal of one it cannot grow (None where none),
    naming the cache's path and the layer."""
    import torch.utils._pytree as pytree

    spec, leaves, caches, inner = before
    spec_now, leaves_now, _caches_now = cache_shell(torch, name, value)
    if spec_now != spec or len(leaves_now) != len(leaves):
        return None
    for a, b in zip(leaves, leaves_now):
        if not (a is b if is_dynamic_cache_class(a) or is_encoder_decoder_cache(a) else same_leaf(torch, a, b)):
            return None
    adopted: list[tuple[str, tuple]] = []
    for (path, cache), (_path, cache_spec, cache_leaves, states) in zip(caches, inner):
        leaves_after, spec_after = pytree.tree_flatten(cache)
        if spec_after == cache_spec and len(leaves_after) == len(cache_leaves) and all(
                same_leaf(torch, a, b) for a, b in zip(cache_leaves, leaves_after)):
            continue   # (read, not grown)
        where = path_of(out, cache)
        what = grown_layer(states, layer_states(torch, cache))
        if not is_adoptable(cache):
            return [], (f"forward changes the {type(cache).__name__} at {path!r} in place ({what}), and it is not a "
                        "cache of plain DynamicLayers or DynamicSlidingWindowLayers the compiled call can grow as "
                        "eager's: pass a cache of plain layers, or a static cache's tensors written in place")
        if where is None:
            return [], (f"forward grows the {type(cache).__name__} at {path!r} ({what}) and does not return it: the "
                        "compiled call grows the caller's cache from the program's outputs, which hold the grown "
                        "cache's tensors only where forward returns the cache itself (anywhere in its output, as a "
                        "decode step returns past_key_values); return it, or pass a static cache's tensors written "
                        "in place")
        adopted.append((path, where))
    return adopted, None
