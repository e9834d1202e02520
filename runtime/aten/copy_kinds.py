"""The dtypes whose tensors the executor copies itself (each user input into its arena slot, each arena output out
to the caller) that torch has no copy kernel for on the device: refused at compile, naming the input or output.

Why: a sub-byte dtype (``torch.uint4``, ``torch.int4``, ``torch.uint1``...) views bytes that a ``forward`` may read
as another dtype (``t.view(torch.uint8) + 1``, which eager runs), but torch's ``copy_`` of it raises "copy_kernel not
implemented for 'UInt4'": such a module compiled, and every call then failed inside the executor's input copy with
torch's raw ``NotImplementedError`` (round 65b), where the kernels' own failures are named by node. The executor
copies where eager copies nothing, so the call cannot run as eager's: one tiny copy per dtype at compile tells.
"""

from __future__ import annotations

from typing import Any

from .errors import AtenExecutorError


def check_copyable(torch: Any, program: Any, device: Any) -> None:
    """Refuse ``program`` where a user input or an arena output has a dtype ``copy_`` does not implement on
    ``device``, naming it (an input's graph id, an output's position) and the dtype."""
    places = [(f"input {tid!r}", tid) for _pos, tid in program.user_inputs]
    places += [(f"output {k}", out[1]) for k, out in enumerate(program.user_outputs)
               if isinstance(out, tuple) and len(out) == 2 and out[0] == "arena"]
    known: dict[Any, str | None] = {}
    for what, tid in places:
        spec = program.specs.get(tid) if isinstance(tid, str) else None
        if spec is None:
            continue
        dtype = spec.dtype
        if dtype not in known:
            known[dtype] = _copy_fails(torch, dtype, device)
        if known[dtype] is not None:
            raise AtenExecutorError(f"{what} is a {str(dtype).removeprefix('torch.')} tensor, which the executor "
                                    f"copies (into its arena slot, or out of it) and torch cannot copy on "
                                    f"{torch.device(device)} ({known[dtype]}): view it as a dtype torch copies "
                                    "(t.view(torch.uint8)) outside the module, and pass or return that")


def _copy_fails(torch: Any, dtype: Any, device: Any) -> str | None:
    """torch's message where ``copy_`` between two tensors of ``dtype`` on ``device`` fails, else None."""
    try:
        a, b = torch.empty(2, dtype=dtype, device=device), torch.empty(2, dtype=dtype, device=device)
    except Exception:   # (no tensor to copy: the device's or allocator's refusal is the arena's to name, not a dtype's)
        return None
    try:
        a.copy_(b)
    except (RuntimeError, TypeError, ValueError) as exc:   # (NotImplementedError is a RuntimeError)
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None
