"""The tensor layouts ``forward`` looked at in Python while it was exported (``x.stride()``, ``x.is_contiguous()``,
``x.storage_offset()``, ``x.dim_order()``) and the ``contiguous()`` / ``to(memory_format=...)`` calls that returned
their tensor itself.

Why: export runs ``forward``'s Python once, on tensors laid out as the example inputs, so what it made of their
layout is fixed in the program; the executor refuses a call whose inputs are laid out otherwise where such a read
is recorded (``Executor.load_inputs``), and a program without one runs on any layout.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

from .torch_reads import MethodPatch, passed_on, reader

#: the tensor methods whose answer is the tensor's layout, not its values: ``forward`` branching on one (``if
#: x.is_contiguous():``) or computing with it takes the export's layout into the program (``watch_layout_reads``)
#: (``dim_order()``, torch's own Python, reads the strides inside torch, where no read is recorded: round 42 review,
#: ``x * 2 if x.dim_order() == (0, 1) else x * 3`` gave ``x * 2`` for a transposed ``x``, silently)
LAYOUT_GETTERS = ("stride", "is_contiguous", "storage_offset", "dim_order")
#: the tensor methods that return their tensor itself for some layouts and a copy for others, recorded where they
#: returned it itself (``x.contiguous()`` of the export's contiguous ``x``, ``x.to(memory_format=...)``: export records
#: no op, so a write through it is a write to ``x`` in the program, where eager's of a transposed ``x`` writes a copy;
#: round 43)
LAYOUT_IDENTITIES = ("contiguous", "to")
_LAYOUT_READS = {name: MethodPatch() for name in LAYOUT_GETTERS + LAYOUT_IDENTITIES}


class _LayoutReads(list):
    """``watch_layout_reads``'s record: the reads, and the module whose own parameters and buffers are left out;
    ``leaves``, the tensors ``forward`` was last called with (its flattened positional arguments; None where unknown:
    no module, keyword arguments); ``identity_inputs``, the positions among them whose memory a ``contiguous()``
    (``LAYOUT_IDENTITIES``) returned itself, and ``identity_any``, whether one did of a tensor not told (round 43)."""

    module: Any = None
    leaves: list | None = None
    identity_inputs: set
    identity_any: bool = False
    #: (method, where) of each ``stride()`` / ``dim_order()`` read of ``module``'s own tensors (``Program.
    #: module_stride_reads``)
    module_strides: list


@contextlib.contextmanager
def watch_layout_reads(torch: Any, module: Any = None) -> Iterator[list[tuple[str, str]]]:
    """(method, "file.py:123") for each call of ``Tensor.stride()``, ``Tensor.is_contiguous()`` or
    ``Tensor.storage_offset()`` by code outside torch inside the block (an export: ``forward``'s reads), in this
    thread.

    Why: export runs ``forward``'s Python once on tensors laid out as the example inputs, so ``x * 2 if
    x.is_contiguous() else x * 3`` (or ``x * x.stride(0)``) fixes the export's answer in the program, where eager's
    follows the layout of each call's tensors: a call with a transposed input returned ``x * 2`` where eager's gives
    ``x * 3``, silently. The executor refuses a call whose inputs are laid out otherwise than at export where such a
    read is recorded (``Executor.load_inputs``); a program without one runs on any layout, as before. torch's own
    reads (its decompositions, the fake kernels) are the export's business. A read of ``module``'s own parameter or
    buffer (``self.w.stride()``) is left out: its layout is the module's, which the guard holds to compile's (a
    changed one is refused or rebound), not a call's input's (round 42 review: such a read refused every call with a
    transposed input, whose layout it never looked at)."""
    reads = _LayoutReads()
    reads.module = module if isinstance(module, torch.nn.Module) else None
    reads.identity_inputs = set()
    reads.module_strides = []
    with contextlib.ExitStack() as stack:
        if reads.module is not None:
            stack.callback(reads.module.register_forward_pre_hook(_leaves_hook(torch, reads), with_kwargs=True).remove)
        for name in (n for n in LAYOUT_GETTERS + LAYOUT_IDENTITIES if hasattr(torch.Tensor, n)):   # (``dim_order``:
            # torch 2.3+)
            stack.enter_context(_LAYOUT_READS[name].block(torch.Tensor, name, _layout_watched(torch, name), reads))
        yield reads


#: the packages whose reads are no ``forward``'s beside torch's: the export and import around it
_OWN_PACKAGES = ("memplan", "runtime")


def _layout_watched(torch: Any, name: str) -> Callable[[Any], Any]:
    """The wrapper ``watch_layout_reads`` puts in place of ``torch.Tensor.<name>``: each read by code outside torch,
    memplan and this runtime as (method, where)."""
    patch = _LAYOUT_READS[name]

    def wrap(real: Any) -> Any:
        def watched(*args: Any, **kwargs: Any) -> Any:
            try:
                value = real(*args, **kwargs)
            except BaseException as exc:
                passed_on(exc)
                raise   # (bare: another thread's failing ``t.stride(5)`` shows no frame of this wrapper)
            reads = patch.innermost()
            if reads is not None and (name not in LAYOUT_IDENTITIES or _kept_by_layout(torch, name, args, kwargs,
                                                                                        value)):
                frame = sys._getframe(1)
                module = str(frame.f_globals.get("__name__", ""))
                if module.split(".")[0] not in _OWN_PACKAGES:
                    where = reader(torch, frame) if name not in LAYOUT_IDENTITIES else _identity_reader(frame)
                    if where is None:
                        pass
                    elif not _module_tensor(getattr(reads, "module", None), args[:1]):
                        reads.append((name, where))
                        if name in LAYOUT_IDENTITIES:
                            _note_identity(torch, reads, args[0])
                    elif name in ("stride", "dim_order") and hasattr(reads, "module_strides"):
                        reads.module_strides.append((name, where))
            return value
        return watched
    return wrap


def _leaves_hook(torch: Any, reads: _LayoutReads) -> Callable[..., None]:
    """A forward pre-hook keeping in ``reads.leaves`` the tensors ``forward`` is called with (the export's fake ones),
    in the order of the program's flattened inputs; None where keyword arguments are given (their order is the
    export's business: every ``contiguous()`` counts for every input then, as before)."""
    from torch.utils._pytree import tree_leaves

    def hook(_module: Any, args: tuple, kwargs: dict) -> None:
        reads.leaves = None if kwargs else list(tree_leaves(args))
    return hook


def _note_identity(torch: Any, reads: Any, t: Any) -> None:
    """Record in ``reads`` which of ``forward``'s inputs tensor ``t`` (a ``contiguous()`` returned it itself) shares
    memory with: a write through it reaches those only. Why: every such call counted for every input, so a program
    calling ``contiguous()`` on a weight or an intermediate and writing an input in place (``x.add_(1)``) refused
    a transposed ``x``, where eager writes the caller's ``x`` (round 43)."""
    leaves = getattr(reads, "leaves", None)
    if leaves is None or not hasattr(reads, "identity_inputs"):
        if hasattr(reads, "identity_any"):
            reads.identity_any = True
        return
    try:
        from torch.multiprocessing.reductions import StorageWeakRef

        mine = StorageWeakRef(t.untyped_storage())
        reads.identity_inputs.update(k for k, x in enumerate(leaves) if isinstance(x, torch.Tensor)
                                     and StorageWeakRef(x.untyped_storage()) == mine)
    except (NotImplementedError, RuntimeError, TypeError):   # (no storage to tell: any input, as before)
        reads.identity_any = True


def _kept_by_layout(torch: Any, name: str, args: tuple, kwargs: dict, value: Any) -> bool:
    """Whether a ``LAYOUT_IDENTITIES`` call returned its tensor itself where another layout of it gets a copy:
    ``contiguous()`` (any memory format), ``to(memory_format=...)`` of a format other than ``preserve_format`` (a
    ``to`` of the tensor's own dtype and device returns it whatever its layout)."""
    if not args or value is not args[0]:
        return False
    return name != "to" or kwargs.get("memory_format", torch.preserve_format) is not torch.preserve_format


#: torch's public Python, whose ``contiguous()`` calls are ``forward``'s own (``F.multi_head_attention_forward``): not
#: the export's machinery (``torch._export``, ``torch._refs``, fake kernels), which runs on the trace's tensors
_TORCH_PUBLIC = ("torch.nn.", "torch.functional", "torch._tensor", "torch.autograd.")


def _identity_reader(frame: Any) -> str | None:
    """"file.py:123" of a ``LAYOUT_IDENTITIES`` call by ``forward``'s code, its torch's public Python too (a
    ``contiguous()`` there returning the input decides what eager returns as much as one of the user's); None for
    the export's own machinery."""
    module = str(frame.f_globals.get("__name__", ""))
    if (module == "torch" or module.startswith("torch.")) and not module.startswith(_TORCH_PUBLIC):
        return None
    return f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"


def _module_tensor(module: Any, args: tuple) -> bool:
    """Whether ``args[0]`` is one of ``module``'s own parameters or buffers (during the export: its fake ones)."""
    if module is None or not args:
        return False
    return any(t is args[0] for t in itertools.chain(module.parameters(), module.buffers()))
