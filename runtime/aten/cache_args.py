"""Which transformers caches (``DynamicCache``, ``EncoderDecoderCache``) among a call's arguments a program can carry,
at any container path, refused otherwise naming the argument and the layer; and the examples' strided caches made
contiguous for the export.

Why: the cache's pytree (transformers' own registration) holds each layer's keys and values alone; a layer with
state beside them (a sliding window recording its past, a layer of another kind) would be rebuilt without it, and
a program whose ``forward`` no watch ran cannot tell whether it grows the cache passed in.
"""

from __future__ import annotations

from typing import Any

from .cache_paths import is_dynamic_cache_class, is_encoder_decoder_cache, nested_caches
from .call_args import argument_names


def is_dynamic_cache(value: Any) -> bool:
    """transformers' ``DynamicCache`` itself (not a subclass: its pytree registration is the class's own) of plain
    ``DynamicLayer``s and ``DynamicSlidingWindowLayer``s alone. Why the layers: the pytree holds only their keys and
    values, all a ``DynamicLayer``'s state is; a ``DynamicSlidingWindowLayer`` also counts the tokens it has seen
    (``cumulative_length``), which the program's rebuilt cache takes from the keys' length: set on the export's
    cache as the example's (``set_window_counts``), checked at each call (``window_mismatch``) and set from the
    export's after it (``put_window_counts``)."""
    return (is_dynamic_cache_class(value)
            and all(type(x).__name__ in ("DynamicLayer", "DynamicSlidingWindowLayer")
                    for x in getattr(value, "layers", [None])))


def held_tokens(torch: Any, layer: Any) -> int:
    """The tokens a cache layer's keys hold (0 where it has none yet)."""
    keys = getattr(layer, "keys", None)
    return int(keys.shape[-2]) if isinstance(keys, torch.Tensor) else 0


def cache_refusal(torch: Any, name: str, value: Any) -> str | None:
    """Why a transformers ``DynamicCache`` argument ``name`` cannot be carried by a program (None where it can): a
    layer other than a plain ``DynamicLayer`` or a ``DynamicSlidingWindowLayer`` counting its tokens in an int and
    recording no past (``activate_past_recording``: its keys then hold more than the window, cut by a later ``crop``),
    named with what it carries that the cache's flattening does not. A full window is carried: its count (tokens
    seen, more than the keys hold) is set on the export's cache (``window_inputs``) and checked at each call
    (``window_mismatch``)."""
    if not is_dynamic_cache_class(value):
        return None
    for k, layer in enumerate(getattr(value, "layers", ())):
        kind = type(layer).__name__
        if kind == "DynamicLayer" or (kind == "DynamicSlidingWindowLayer" and not getattr(layer, "record_past", False)
                                      and type(getattr(layer, "cumulative_length", None)) is int
                                      and type(getattr(layer, "sliding_window", None)) is int):
            continue
        if kind == "DynamicSlidingWindowLayer":
            what = (f"a sliding-window layer (sliding_window={layer.sliding_window}, the model config's) "
                    + ("that records its past (activate_past_recording), keys a later crop cuts to the window"
                       if getattr(layer, "record_past", False) else
                       f"whose token count is a {type(layer.cumulative_length).__name__}, not an int")
                    + ": a state the cache's flattening for torch.export does not carry")
        else:
            # (a hybrid or recurrent model's layer, Mamba's or Jamba's LinearAttentionLayer: its conv and recurrent
            # states are no keys and values, and no setting of the model gives it plain layers; round 76: the way
            # out named was the sliding window's, which such a model has none of)
            from memplan.importers.torch.common import layer_states

            states = layer_states(layer)   # (round 77: named, a DSA layer's indexer_keys as a Mamba's conv_states)
            what = ("not a plain DynamicLayer: the cache's flattening holds a DynamicLayer's keys and values alone"
                    + (f", not that layer's {', '.join(states)}" if states else ""))
            return (f"argument {name!r} is a DynamicCache whose layer {k} is a {kind}, {what}: a compiled call with "
                    "such a cache is not supported; compile the step without it (use_cache=False: the whole "
                    "sequence at each call), or pass its states as tensors")
        return (f"argument {name!r} is a DynamicCache whose layer {k} is a {kind}, {what}: a compiled call with such "
                "a cache is not supported; pass a cache of plain layers (no activate_past_recording), a config "
                "without a sliding window (sliding_window=None), or a static cache's tensors written in place")
    return None


def call_caches(torch: Any, module: Any, args: tuple, kwargs: dict | None) -> dict[str, Any]:
    """{path: cache} of each transformers ``DynamicCache`` among a call's arguments, at any container path the
    program's flattening takes (``cache_paths.nested_caches``: ``past_key_values``, ``state['cache']``,
    ``cache.self_attention_cache``)."""

    return {path: cache for name, value in argument_names(module, args, kwargs or {})
            for path, cache in nested_caches(torch, name, value)}


def dense_cache_examples(torch: Any, args: tuple, kwargs: dict | None) -> tuple[tuple, dict | None]:
    """``args`` and ``kwargs`` with each transformers ``DynamicCache`` whose keys or values are not contiguous, an
    argument or inside one (a dict's, an ``EncoderDecoderCache``'s: ``cache_paths.nested_caches``), replaced by a
    copy (its layers copied, their count kept) holding contiguous copies of them, the containers around it rebuilt
    by their flattening; the same objects where none is.

    Why: the cache's unflattening (``DynamicCache(ddp_cache_data)``, whose ``update`` is a ``cat`` onto an empty
    tensor) gives the export's ``forward`` contiguous tensors, so the program records its cache inputs contiguous;
    a full sliding window's keys are a slice of the step's ``cat`` (a window of 4: 3 of the 4 rows, strides (96, 48,
    8, 1) for (48, 24, 8, 1)), and the importer refused the example as "a corrupted or edited program". The values
    are the same; a call's strided cache is copied into the program's slots as any input laid out otherwise."""
    import copy as copying


    def strided(value: Any) -> bool:
        return is_dynamic_cache(value) and any(
            isinstance(t, torch.Tensor) and not t.is_contiguous()
            for x in value.layers for t in (getattr(x, "keys", None), getattr(x, "values", None)))

    def dense(value: Any) -> Any:
        if not strided(value):
            return value
        new = copying.copy(value)
        new.layers = [copying.copy(x) for x in value.layers]
        for x in new.layers:
            for attr in ("keys", "values"):
                t = getattr(x, attr, None)
                if isinstance(t, torch.Tensor) and not t.is_contiguous():
                    setattr(x, attr, t.contiguous())
        return new

    def dense_in(value: Any) -> Any:
        if not any(strided(c) for _p, c in nested_caches(torch, "", value)):
            return value
        if is_dynamic_cache_class(value):
            return dense(value)
        return torch.utils._pytree.tree_map(lambda x: dense(x) if is_dynamic_cache_class(x) else x, value,
                                            is_leaf=is_dynamic_cache_class)

    return (tuple(dense_in(a) for a in args),
            None if kwargs is None else {k: dense_in(v) for k, v in kwargs.items()})


def check_cache_layers(torch: Any, module: Any, args: tuple, kwargs: dict | None) -> None:
    """Refuse, before any export, an argument that is a transformers ``DynamicCache`` the program cannot carry
    (``cache_refusal``), naming the argument, the layer and what it carries that the program cannot.

    Why: the cache's pytree (transformers' own registration) holds each layer's keys and values and rebuilds it from
    them; a ``DynamicSlidingWindowLayer`` (Mistral's, Gemma2's: ``sliding_window`` in the config, 4096 by default)
    also counts the tokens it has seen (``cumulative_length``), which the rebuilt layer takes from the keys' length:
    right until the window is full, wrong after (``set_window_counts`` sets the example's on the export's cache).
    Round 54: a tiny Mistral's decode step was refused with "a corrupted or edited program" (a full window's keys are
    a slice of the step's ``cat``) or "forward changes its argument in place", neither of which said why."""
    from .errors import AtenExecutorError

    for name, value in call_caches(torch, module, args, kwargs).items():
        why = cache_refusal(torch, name, value)
        if why is not None:
            raise AtenExecutorError(why)


def check_unwatched_caches(module: Any, args: tuple, kwargs: dict | None, how: str) -> None:
    """Refuse a transformers cache argument (``DynamicCache``, ``EncoderDecoderCache``) of a program whose ``forward``
    no watch ran (``how``: a strict export, a given ``ExportedProgram``), naming the argument.

    Why: eager's decode step grows the cache passed in and returns that very object; the compiled call puts the
    program's grown tensors into the caller's cache only where the watched export saw ``forward`` return it
    (``returned_caches``). Unwatched, the call returned a new cache and left the caller's as passed (round 54: a
    strict export of a tiny Llama's decode step, the caller's cache still 6 tokens long where eager's was 7, no
    error). A ``DynamicCache`` inside a container (``state['cache']``: ``call_caches``) too (round 56: it was not;
    unwatched, its sliding layers' counts are neither set at the export nor checked at the calls)."""
    import torch

    from .errors import AtenExecutorError

    named = argument_names(module, args, kwargs or {})
    nested = list(call_caches(torch, module, args, kwargs).items())
    for name, value in named + nested:
        if is_dynamic_cache_class(value) or is_encoder_decoder_cache(value):
            raise AtenExecutorError(
                f"argument {name!r} is a transformers {type(value).__name__} and this program is {how}, whose forward no "
                "watch ran: whether forward grows the cache passed in (as a decode step does, returning it) cannot "
                "be told, nor its sliding windows' counts set, and the compiled call would leave the caller's cache "
                "as passed where eager grows it; compile without strict=True or exported= (the watched export grows "
                "the caller's cache as eager)")
