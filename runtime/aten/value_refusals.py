"""The refusal of a read of a tensor's values through NumPy during compile's export (``float(T.numpy()[0])``).

Why: under torch.export every tensor operation goes through its tracing modes, so ``T.numpy()`` of a global tensor
(a real one) asks for its data pointer there and fails with torch's "Cannot access data pointer of Tensor (e.g.
FakeTensor, FunctionalTensor) ... wrap the custom kernel into an opaque custom op", advice about custom kernels that
named neither the tensor nor the way out (round 64's leftover). The reads compile can watch are ``T.tolist()``,
``T.item()`` and ``float(T)`` (``value_reads``): this names the tensor and the line, and says so.
"""

from __future__ import annotations

from typing import Any

from .errors import AtenExecutorError

#: torch's refusal to hand out a traced tensor's memory (``Tensor.numpy``, ``data_ptr``) during an export
_DATA_POINTER = "Cannot access data pointer of Tensor"


def numpy_read_refusal(torch: Any, module: Any, message: str) -> AtenExecutorError | None:
    """Our refusal for torch.export's ``message`` where it is torch's "Cannot access data pointer" on a line that
    names a global, closure variable, module tensor or registered buffer (``value_reads``' names), else None (torch's
    own error stands: a custom kernel on an input's tensor is what its advice is about)."""
    from .value_reads import _AT_CODE, _named_buffers, _named_tensors

    if _DATA_POINTER not in message:
        return None
    found = _AT_CODE.search(message)
    if found is None:
        return None
    named = _named_tensors(torch, module, found[2]) + _named_buffers(torch, module, found[2])
    if not named:
        return None
    return AtenExecutorError(
        f"forward reads the values of {', '.join(named)} through its memory (T.numpy(), a data pointer) at "
        f"{found[1]} (`{found[2]}`), which torch.export cannot run: it traces every tensor operation on stand-ins "
        "without memory. Read the values as Python numbers on the tensor (T.tolist(), T.item(), float(T): compile "
        "watches a global or attribute tensor so read and proves a changed one by exporting again), compute on "
        "tensors, or pass the value in as an argument")
