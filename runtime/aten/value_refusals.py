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
from .read_names import _AT_CODE, _named_buffers, _named_tensors

#: torch's refusal to hand out a traced tensor's memory (``Tensor.numpy``, ``data_ptr``) during an export
_DATA_POINTER = "Cannot access data pointer of Tensor"


def numpy_read_refusal(torch: Any, module: Any, message: str,
                       exc: BaseException | None = None) -> AtenExecutorError | None:
    """Our refusal for torch.export's ``message`` where it is torch's "Cannot access data pointer" on a line that
    names a global, closure variable, module tensor or registered buffer (``read_names``), or, from the
    raising frame of ``exc``, a variable of its own holding a real tensor (``read = lambda t: t.numpy()[0]``:
    round 66), else None (torch's own error stands: a custom kernel on an input's tensor is what its advice is
    about)."""
    if _DATA_POINTER not in message:
        return None
    found = _AT_CODE.search(message)
    if found is None:
        return None
    named = _named_tensors(torch, module, found[2]) + _named_buffers(torch, module, found[2])
    if not named and exc is not None:
        from .frame_reads import frame_tensors

        named = frame_tensors(torch, exc, found[1], found[2])
    if not named:
        return None
    return AtenExecutorError(
        f"forward reads the values of {', '.join(named)} through its memory (T.numpy(), a data pointer) at "
        f"{found[1]} (`{found[2]}`), which torch.export cannot run: it traces every tensor operation on stand-ins "
        "without memory. Read the values as Python numbers on the tensor (T.tolist(), T.item(), float(T): compile "
        "watches a global or attribute tensor so read and proves a changed one by exporting again), compute on "
        "tensors, or pass the value in as an argument")


def called_tensors(torch: Any, module: Any, code: str) -> list[str]:
    """The labels of the global and closure tensors read by the functions the source line ``code`` calls by a name
    (``self.f()``: a function held as a module attribute, a lambda; ``helper()``: a global function of ``forward``'s
    module), one level. Why: a branch on ``T > 1`` computed in a lambda (``self.f = lambda: T > 1``; ``if
    self.f():``) fails on ``forward``'s line, which names no tensor, so torch's raw refusal stood, naming no read
    (round 65)."""
    import inspect
    import re

    from .code_names import _code_names

    called = set(re.findall(r"([A-Za-z_]\w*)\s*\(", code))
    if not called or not isinstance(module, torch.nn.Module):
        return []
    functions: list[Any] = []
    for m in module.modules():
        for name in called:
            v = vars(m).get(name)
            forward = getattr(type(m), "forward", None)
            g = getattr(forward, "__globals__", {})
            for fn in (getattr(v, "func", v), g.get(name)):
                if inspect.isfunction(fn) and fn not in functions:
                    functions.append(fn)
    out: list[str] = []
    for fn in functions:
        for name in sorted(_code_names(fn.__code__)):
            if isinstance(fn.__globals__.get(name), torch.Tensor):
                out.append(f"the global {name} (module {fn.__globals__.get('__name__', '?')}) read by "
                           f"{fn.__qualname__}")
        for var, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
            try:
                value = cell.cell_contents
            except ValueError:
                continue
            if isinstance(value, torch.Tensor):
                out.append(f"the closure variable {var} of {fn.__qualname__}")
    return list(dict.fromkeys(out))
