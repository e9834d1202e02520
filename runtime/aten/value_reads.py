"""The real tensors whose values ``forward`` read as Python numbers while it was exported (``T.tolist()``,
``T.item()``, ``float(T)``, ``int(T)``, ``bool(T)``), and the refusal of a branch on a global tensor's value.

Why: a compiled call runs no Python, so what ``forward`` made of such a number is baked into the program. A global
tensor (or a module's plain tensor attribute) read so is a real tensor during a non-strict export, and when the
program also reads it as a tensor (``x * T.tolist()[0] + T``; ``T.tolist()`` alone makes it one of the program's
constants), ``byte_values`` left it unwatched ("the program follows its writes itself"): ``T.mul_(1.5)`` after
compile changed eager's result and silently not the program's (round 64). The ids recorded here
(``Program.value_reads``) are watched by their version counter whatever their size or use (``byte_values.find``).

A branch on such a tensor (``if T > 1:``) is a comparison torch.export traces on a stand-in whose value it does not
know: torch's raw "Could not guard on data-dependent expression" (a ``GraphError``) said nothing of what to do;
``branch_refused`` names the tensor and the ways out.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any

from .errors import AtenExecutorError
from .torch_reads import MethodPatch

#: the tensor methods that hand ``forward`` its values as Python numbers (``__format__`` and ``numpy`` go through
#: ``item`` or fail on export's stand-ins)
VALUE_GETTERS = ("item", "tolist", "__float__", "__int__", "__bool__", "__index__", "__complex__")
_VALUE_READS = {name: MethodPatch() for name in VALUE_GETTERS}

#: the packages whose reads are no ``forward``'s: the export and import around it
_OWN_PACKAGES = ("memplan", "runtime")


@contextlib.contextmanager
def watch_value_reads(torch: Any) -> Iterator[set[int]]:
    """The ids of the real (not fake) tensors whose values code outside memplan and this runtime read as Python
    numbers inside the block (an export: ``forward``'s reads, torch's public helpers it called too), in this thread.
    Each getter is patched as ``layout_reads`` patches ``Tensor.stride`` (``MethodPatch``: one wrapper per process)."""
    reads: set[int] = set()
    with contextlib.ExitStack() as stack:
        for name in VALUE_GETTERS:
            if hasattr(torch.Tensor, name):
                stack.enter_context(_VALUE_READS[name].block(torch.Tensor, name, _watched(torch, name), reads))
        yield reads


def _watched(torch: Any, name: str) -> Callable[[Any], Any]:
    """The wrapper ``watch_value_reads`` puts in place of ``torch.Tensor.<name>``."""
    patch = _VALUE_READS[name]

    def wrap(real: Any) -> Any:
        def watched(self: Any, *args: Any, **kwargs: Any) -> Any:
            reads = patch.innermost()
            if reads is not None and _real(torch, self):
                module = str(sys._getframe(1).f_globals.get("__name__", ""))
                if module.split(".")[0] not in _OWN_PACKAGES:
                    reads.add(id(self))
            try:
                return real(self, *args, **kwargs)
            except Exception as exc:
                _blame_caller(exc, sys._getframe(1))
                raise
        return watched
    return wrap


def _blame_caller(exc: Exception, frame: Any) -> None:
    """torch's note of the user's line a data-dependent guard came from ("The following call raised this error:",
    its first frame outside torch) set to ``frame``'s (the caller's ``if T > 1:``), not this module's wrapper."""
    import traceback

    text = exc.args[0] if exc.args and isinstance(exc.args[0], str) else None
    if text is None or __file__ not in text:
        return
    import os

    import torch

    inside = os.path.dirname(torch.__file__) + os.sep
    while frame.f_back is not None and frame.f_code.co_filename.startswith(inside):   # (torch's function modes)
        frame = frame.f_back
    mine = re.compile(r'File "' + re.escape(__file__) + r'", line \d+, in \w+\n[^\n]*')
    theirs = traceback.StackSummary.from_list([traceback.FrameSummary(
        frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)]).format()[0].strip()
    exc.args = (mine.sub(lambda _m: theirs, text, count=1), *exc.args[1:])


def _real(torch: Any, t: Any) -> bool:
    """Whether ``t`` is a user's real tensor (export's stand-ins are fake or functional: their values are none)."""
    try:
        from torch._subclasses.fake_tensor import FakeTensor
        from torch._subclasses.functional_tensor import FunctionalTensor
    except ImportError:   # (an older torch: every tensor counts)
        return True
    return not isinstance(t, (FakeTensor, FunctionalTensor)) and not t.is_meta


#: torch.export's refusal of a Python branch on a tensor's value, and the importer's note of the line (``common``)
_DATA_GUARD = "data-dependent expression"
_AT_CODE = re.compile(r"\(at ([^():]+:\d+) in \w+: `(.*)`\)")
_PLACE_NAME = re.compile(r"the (?:global|closure variable) (\w+)")


@contextlib.contextmanager
def branch_refused(torch: Any, module: Any) -> Iterator[None]:
    """Runs the block (compile's export) and turns torch.export's "Could not guard on data-dependent expression"
    (a ``GraphError``) into an ``AtenExecutorError`` naming the global, closure variable or module tensor that the
    failing line reads (``if T > 1:``, ``float(T.sum())``), and what to write instead. Any other failure, and one on
    a line naming no such tensor (a branch on an input's values), passes as it is."""
    from memplan.errors import GraphError

    try:
        yield
    except GraphError as exc:
        found = _AT_CODE.search(str(exc)) if _DATA_GUARD in str(exc) else None
        named = _named_tensors(torch, module, found[2]) if found else []
        if not named:
            raise
        raise AtenExecutorError(
            f"forward computes a Python value from the values of {', '.join(named)} at {found[1]} (`{found[2]}`), "
            "which torch.export cannot trace: the program holds that tensor as a constant whose value it does not "
            "know at export, and a compiled call runs no Python to take the branch each call's value chooses. "
            "Compute both sides on tensors (torch.where(cond, a, b)), or read the value as Python numbers directly "
            "on the tensor (T.tolist(), T.item(): compile watches the tensor and proves a changed one by exporting "
            "again), or pass it in as an argument") from None


def _named_tensors(torch: Any, module: Any, code: str) -> list[str]:
    """The labels of the tensors in the globals and closure variables ``forward``'s code names, and the module tree's
    plain tensor attributes, that the source line ``code`` names (``T``, ``self.t``)."""
    from .python_state import python_state

    words = set(re.findall(r"[A-Za-z_]\w*", code))
    attrs = set(re.findall(r"\.([A-Za-z_]\w*)", code))
    out: list[str] = []
    try:
        places = python_state(torch, module)
    except Exception:  # noqa: BLE001 - naming is an extra: torch's own refusal stands where the walk fails
        places = []
    for p in places:
        name = _PLACE_NAME.match(p.label)
        if name is not None and name[1] in words and isinstance(p.value, torch.Tensor):
            out.append(p.label)
    if isinstance(module, torch.nn.Module):
        for path, m in module.named_modules():
            for name, v in list(vars(m).items()):   # (plain ones: a buffer is the export's input, no constant)
                if name in attrs and isinstance(v, torch.Tensor):
                    where = f"{type(module).__name__}.{path}" if path else type(module).__name__
                    out.append(f"the tensor {where}.{name}")
    return list(dict.fromkeys(out))
