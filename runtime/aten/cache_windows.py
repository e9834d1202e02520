"""The token counts of the sliding-window layers of transformers' ``DynamicCache``s a call passes and returns: set on
the export's caches as the example's, checked at each call, and set on each call's returned caches as the export's
``forward`` left them.

Why: the cache's unflattening rebuilds a sliding layer counting its keys' length; past a full window (4, 6 tokens
seen: 3 kept) that count is wrong, and it is a Python int the export specializes (the step's positions, its mask's
window offset): one program steps one count.
"""

from __future__ import annotations

from typing import Any

from .cache_args import call_caches, held_tokens, is_dynamic_cache
from .cache_paths import at_path, output_caches


def window_inputs(torch: Any, module: Any, args: tuple, kwargs: dict | None) -> tuple[tuple[str, tuple], ...]:
    """(argument's name, ((layer index, tokens seen, tokens its keys hold), ...)) of each transformers
    ``DynamicCache`` argument of the call with ``DynamicSlidingWindowLayer``s: what the export's cache must count
    (``watch_call_state`` sets it) and each call's must match (``window_mismatch``).

    Why: the cache's pytree (transformers' registration) holds each layer's keys and values alone, and its
    unflattening rebuilds a sliding layer counting the keys' length; past a full window (Mistral's 4, 6 tokens seen:
    3 kept) the export's ``forward`` then ran at position 3 where eager's runs at 6 (its RoPE positions, its mask's
    offset). Round 54 refused such a cache at compile; the count is a Python int, which the export specializes.
    A cache inside a container the flattening takes (a dict, a list, an ``EncoderDecoderCache``) is named by its path
    (``call_caches``; round 56: it was neither set nor checked, and a call counting otherwise ran silently)."""
    out = []
    for path, value in call_caches(torch, module, args, kwargs).items():
        if is_dynamic_cache(value):
            layers = tuple((k, int(x.cumulative_length), held_tokens(torch, x)) for k, x in enumerate(value.layers)
                           if type(x).__name__ == "DynamicSlidingWindowLayer")
            if layers:
                out.append((path, layers))
    return tuple(out)


def window_refusal(torch: Any, module: Any, args: tuple, kwargs: dict | None, windows: tuple) -> str | None:
    """Why a call cannot run the program exported with sliding-window caches counting ``windows``
    (``window_inputs``): the first cache, at any path, whose count differs (``window_mismatch``); None where none
    does. A path the call lacks is another structure, which the call's flattening refuses."""
    if not windows:
        return None
    found = call_caches(torch, module, args, kwargs)
    for path, layers in windows:
        why = window_mismatch(torch, path, found.get(path), layers)
        if why is not None:
            return why
    return None


def set_window_counts(torch: Any, module: Any, args: tuple, kwargs: dict, windows: tuple) -> None:
    """Set, on the caches ``forward`` is given inside the export (rebuilt by the unflattening, each sliding layer
    counting its keys' length), each sliding layer's count as the example's (``window_inputs``). Refused where a
    layer is not one the example had (not the example's cache: nothing to count from)."""
    from .errors import AtenExecutorError

    if not windows:
        return
    given = call_caches(torch, module, args, kwargs)
    for name, layers in windows:
        cache = given.get(name)
        for k, seen, held in layers:
            layer = cache.layers[k] if is_dynamic_cache(cache) and k < len(cache.layers) else None
            if type(layer).__name__ != "DynamicSlidingWindowLayer" or held_tokens(torch, layer) != held:
                raise AtenExecutorError(f"argument {name!r}: the export's forward was given a cache whose layer {k} "
                                        f"is not the example's sliding-window layer holding {held} tokens, so its "
                                        "count cannot be set as the example's; compile with a DynamicCache the "
                                        "model built")
            layer.cumulative_length = seen


def window_mismatch(torch: Any, name: str, value: Any, layers: tuple) -> str | None:
    """Why a call's cache argument ``name`` is not one the program can step (None where it is): a sliding layer whose
    count or held tokens differ from the export's (``window_inputs``), named with both."""
    if not is_dynamic_cache(value):
        return None
    for k, seen, held in layers:
        layer = value.layers[k] if k < len(value.layers) else None
        if type(layer).__name__ != "DynamicSlidingWindowLayer":
            continue   # (another layout: the call's spec check refuses it)
        now = (layer.cumulative_length, held_tokens(torch, layer))
        if now == (seen, held):
            continue
        state = (f"whose window is full: it has seen {now[0]} tokens and keeps the last {now[1]}" if now[0] > now[1]
                 else f"that has seen {now[0]} tokens and keeps {now[1]}")
        return (f"argument {name!r} is a DynamicCache whose layer {k} is a DynamicSlidingWindowLayer "
                f"(sliding_window={layer.sliding_window}) {state}, where the program was exported from one that had "
                f"seen {seen} tokens and kept {held}: the count is a Python int torch.export specializes (the step's "
                "positions, its mask's window offset), so the program would run at the export's positions, not "
                "eager's; compile a step with a cache of this count as its example (one program per count; "
                "runtime.aten.compile_per_count compiles one at each new count), or pass a static cache's tensors "
                "written in place")
    return None


def window_counts(torch: Any, out: Any) -> list[tuple[tuple, tuple]]:
    """(key path in ``out``, ((layer index, tokens seen, window size), ...)) of each transformers ``DynamicCache`` in
    ``out`` (at any container path its flattening takes: dicts, a ``ModelOutput`` among them, lists, tuples, an
    ``EncoderDecoderCache``: ``cache_paths.output_caches``) with ``DynamicSlidingWindowLayer``s, as the export's
    ``forward`` left them (``put_window_counts`` sets them on each call's output).

    Why: the program's output cache is rebuilt by transformers' unflattening from its keys and values alone, which
    takes a sliding layer's ``cumulative_length`` from the keys' length and its ``sliding_window`` as a 1-element
    tensor; past a full window the keys hold the last ``window - 1`` tokens, so the count was wrong (round 54: a tiny
    Mistral's prefill of 6 tokens with ``sliding_window=4`` returned a cache counting 3 where eager's counts 6, and an
    eager decode step given it returned logits 1.3e-3 off, no error; round 56: an ``EncoderDecoderCache``'s
    self-attention cache, which round 54's walk through dicts, lists and tuples alone never reached). A prefill's
    counts follow from the program's fixed shapes: the export's are every call's."""

    out_counts = []
    for path, cache in output_caches(torch, out):
        counts = tuple((k, int(x.cumulative_length), int(x.sliding_window)) for k, x in enumerate(cache.layers)
                       if getattr(x, "is_sliding", False) and isinstance(getattr(x, "cumulative_length", None), int)
                       and isinstance(getattr(x, "sliding_window", None), int))
        if counts:
            out_counts.append((path, counts))
    return out_counts


def put_window_counts(torch: Any, out: Any, counts: tuple) -> None:
    """Set each sliding-window layer of the ``DynamicCache``s in a call's output ``out`` as the export's ``forward``
    left it (``window_counts``): its token count, its window as an int and the window's tensor as
    ``DynamicSlidingWindowLayer.__init__`` makes it (on the keys' device)."""

    for path, layers in counts:
        cache = at_path(out, path)
        for k, seen, window in layers:
            layer = cache.layers[k]
            layer.cumulative_length, layer.sliding_window = seen, window
            device = layer.keys.device if isinstance(getattr(layer, "keys", None), torch.Tensor) else None
            layer._sliding_window_tensor = torch.tensor(window, dtype=torch.long, device=device)


def unwatched_window_refusal(torch: Any, spec: Any, outputs: list, how: str) -> str | None:
    """Why a program whose ``forward`` no watch ran (``how``) cannot return its ``DynamicCache`` as eager's: a
    sliding-window layer whose keys (``outputs``: the user outputs' graph nodes, in the order of the output pytree
    ``spec``) hold ``window - 1`` tokens or more may have dropped some, and its count, rebuilt from the keys' length
    by transformers' unflattening, would then be short of eager's (``window_counts`` sets it where the export was
    watched). Round 54: a strict export's prefill of 6 tokens with ``sliding_window=4`` returned a cache counting 3
    (eager's: 6), so an eager decode step given it was 1.3e-3 off, no error. None where no layer may have."""
    leaf = 0

    def children(s: Any) -> list:
        return list(s.children()) if callable(getattr(s, "children", None)) else list(getattr(s, "children_specs", []))

    def walk(s: Any) -> str | None:
        nonlocal leaf
        cls = getattr(s, "type", None)
        if cls is None or not children(s):
            leaf += getattr(s, "num_leaves", 1)
            return None
        if cls.__name__ == "DynamicCache" and cls.__module__ == "transformers.cache_utils":
            try:
                names, layout = s.context
                start = leaf + sum(c.num_leaves for c in children(s)[:list(names).index("key_cache")])
            except (TypeError, ValueError):
                leaf += s.num_leaves
                return None
            leaf += s.num_leaves
            for k, window in enumerate(layout):
                node = outputs[start + k] if start + k < len(outputs) else None
                val = getattr(node, "meta", {}).get("val")
                if window is not None and isinstance(val, torch.Tensor) and val.shape[-2] >= int(window) - 1:
                    return (f"this program is {how} and returns a DynamicCache whose layer {k} is a sliding-window "
                            f"layer (sliding_window={window}) holding {val.shape[-2]} tokens: it may have seen more "
                            "and dropped them, a count the cache's unflattening rebuilds from the keys' length, so "
                            "the compiled call's cache would count fewer tokens than eager's; compile without "
                            "strict=True or exported= (the watched export sets eager's counts)")
            return None
        for c in children(s):
            why = walk(c)
            if why is not None:
                return why
        return None

    return walk(spec) if spec is not None else None
