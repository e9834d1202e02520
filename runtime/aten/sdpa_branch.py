"""transformers' SDPA attention traced down eager's branch for a one-token query with grouped key/value heads and a
sliding window that the keys reach.

Why: ``transformers.integrations.sdpa_attention.sdpa_attention_forward`` (5.x) runs a one-token query with grouped
key/value heads and a mask through ``pack_gqa`` (the query's heads folded into the key/value heads,
``sdpa(q(b, kv_heads, n_rep, d), k, v, mask)``) "and not is_torchdynamo_compiling()", and without a mask through
``enable_gqa``. Under a non-strict export that flag is True, and transformers' mask builders materialize every mask
(``_ignore_causal_mask_sdpa`` skips none while exporting), so the program holds ``repeat_kv`` with a mask:
``sdpa(q(b, heads, 1, d), k and v repeated, mask)``. That rounds as eager's ``enable_gqa`` does (a query row per head,
bitwise: the mask eager skipped is all True there), not as ``pack_gqa``: a decode step given a sliding-window cache
whose keys reach the window, where eager materializes its mask whatever the values (``kv_length >=
local_attention_size``), was 4e-9 to 1.2e-7 off eager, the executor equal to the exported program bit for bit
(round 76: Cohere2, Mistral, Qwen2 and Gemma3 with a window of 4 given 3 or 6 cached tokens).

So while ``load_program`` exports a module (non-strict), that module's own name ``is_torchdynamo_compiling`` answers
as eager's call does (False: ``pack_gqa``) where the calling frame's keys reach its window (the layer's
``sliding_window``, or the ``sliding_window`` keyword Mistral passes), and as the export does (True: ``repeat_kv``)
elsewhere. Static: the query's length and the keys' are sizes our export fixes (the importer refuses symbolic
sizes), and ``pack_gqa`` is a ``reshape``. Not matched (data-dependent, one program cannot hold both): a step below
the window given an ``attention_mask``, which eager skips when it is all ones (``enable_gqa``, the program's rounding)
and materializes when padded (``pack_gqa``: 6e-8 to 1.2e-7 off, as before). Not shown to the frame: a static
cache's decode step, whose mask eager materializes always (``is_compileable``; a ``StaticCache`` argument is refused
at export anyway).

Only in the export's thread (an eager call in another thread meanwhile gets transformers' own answer). The
name is put back after the export (a failed one too), unless something else replaced it meanwhile; transformers'
other flag reads keep the export's answer. Nothing is imported: a process that never loaded transformers' SDPA
attention has nothing to swap. Not done for a strict export (Dynamo answers the flag itself) nor for an
``ExportedProgram`` (traced already)."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

#: the module whose flag read chooses between ``pack_gqa`` and ``repeat_kv``, and the name it reads the flag by
MODULE, NAME = "transformers.integrations.sdpa_attention", "is_torchdynamo_compiling"


def _window_reached(frame: Any) -> bool:
    """Whether ``frame`` is ``sdpa_attention_forward``'s and its keys reach its sliding window (the ``sliding_window``
    keyword Mistral passes, else the layer's attribute): where eager's mask is materialized whatever its values."""
    if frame is None or frame.f_code.co_name != "sdpa_attention_forward":
        return False
    names = frame.f_locals
    key, extra = names.get("key"), names.get("kwargs")
    window = extra.get("sliding_window") if isinstance(extra, dict) else None
    if window is None:
        window = getattr(names.get("module"), "sliding_window", None)
    shape = getattr(key, "shape", None)
    if type(window) is not int or window <= 0 or shape is None or len(shape) < 2 or type(shape[-2]) is not int:
        return False   # (a symbolic length: no guard added, the export's answer kept)
    return shape[-2] >= window


def _stand_in(original: Callable[[], bool], exporting: int) -> Callable[[], bool]:
    """``is_torchdynamo_compiling`` for the export's thread: False (eager's answer, so ``pack_gqa``) where the caller's
    keys reach its window, transformers' own answer elsewhere (True while exporting: ``repeat_kv``). Another thread
    (an eager call beside the export, a ``torch.compile``) gets transformers' own answer always."""

    def is_torchdynamo_compiling() -> bool:
        if threading.get_ident() == exporting:
            frame = sys._getframe(1)
            try:
                if _window_reached(frame):
                    return False
            finally:
                del frame
        return original()

    return is_torchdynamo_compiling


@contextlib.contextmanager
def eager_sdpa_branch() -> Iterator[None]:
    """Within: transformers' SDPA attention (if loaded) reads "not compiling" in this thread where eager's mask is
    materialized by its window, so its export traces eager's branch there."""
    mod = sys.modules.get(MODULE)
    original = getattr(mod, NAME, None) if mod is not None else None
    utils = sys.modules.get("transformers.utils.import_utils")
    # (only transformers' own flag function: a name someone else put there is theirs, left alone)
    if original is None or original is not getattr(utils, NAME, None):
        yield
        return
    stand_in = _stand_in(original, threading.get_ident())
    setattr(mod, NAME, stand_in)
    try:
        yield
    finally:
        if getattr(mod, NAME, None) is stand_in:
            setattr(mod, NAME, original)
