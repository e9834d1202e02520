"""transformers' SDPA attention traced down eager's branch for a one-token query with grouped key/value heads.

Why: ``transformers.integrations.sdpa_attention.sdpa_attention_forward`` (5.x) runs a one-token query with grouped
key/value heads and a materialized mask (a decode step given a sliding-window cache whose window is reached, or a
padding ``attention_mask``) through ``pack_gqa``: the query's heads folded into the key/value heads,
``sdpa(q(b, kv_heads, n_rep, d), k, v)``, "and not is_torchdynamo_compiling()". Under a non-strict export that flag is
True, so the program held the other branch, ``repeat_kv``: ``sdpa(q(b, heads, 1, d), k repeated, v repeated)``, the
same numbers up to rounding (CPU SDPA's matrix products of another shape), and every compiled call was 4e-9 to 1.2e-7
off eager where the promise is bitwise (round 76: Cohere2, Mistral, Qwen2 and Gemma3 decode steps with a window of 4
given 3 or 6 cached tokens; a Llama step with a padded ``attention_mask``; the executor itself equal to the exported
program, ``torch.fx.Interpreter``, bit for bit). The branch needs no tracing-flag answer: the query's length is a
static size under our export (the importer refuses symbolic sizes), and ``pack_gqa`` is a ``reshape`` of it.

So while ``load_program`` exports a module (non-strict), that module's own name ``is_torchdynamo_compiling`` answers as
eager's call does (False), that module alone: transformers' other flag reads (its mask builders skip checks by them)
keep the export's answer. The name is put back after the export (a failed one too), unless something else replaced it
meanwhile. Nothing is imported: a process that never loaded transformers' SDPA attention has nothing to swap. Not
done for a strict export (Dynamo answers the flag itself) nor for an ``ExportedProgram`` (traced already: its program
is what it is, as the user's export took it)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

#: the module whose flag read chooses between ``pack_gqa`` and ``repeat_kv``, and the name it reads the flag by
MODULE, NAME = "transformers.integrations.sdpa_attention", "is_torchdynamo_compiling"


def _eager_answer() -> bool:
    """What ``is_torchdynamo_compiling()`` answers in the eager call ``forward`` compiles to: not compiling."""
    return False


@contextlib.contextmanager
def eager_sdpa_branch() -> Iterator[None]:
    """Within: transformers' SDPA attention (if loaded) reads "not compiling", so its export traces eager's branch."""
    mod = sys.modules.get(MODULE)
    original = getattr(mod, NAME, None) if mod is not None else None
    utils = sys.modules.get("transformers.utils.import_utils")
    # (only transformers' own flag function: a name someone else put there is theirs, left alone)
    if original is None or original is not getattr(utils, NAME, None):
        yield
        return
    setattr(mod, NAME, _eager_answer)
    try:
        yield
    finally:
        if getattr(mod, NAME, None) is _eager_answer:
            setattr(mod, NAME, original)
