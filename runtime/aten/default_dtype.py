"""The default dtype (``torch.set_default_dtype``) a call meets, against the compile's: which nodes of a program follow
it, and the build's record of it and of the backend flags (``Ambient``).

Why: eager's ``forward`` reads the default at every call, and export pins no dtype a node takes from it
(``torch.zeros(3)`` is ``aten.zeros.default([3], device=cpu)``; ``int_tensor * 0.5``, ``int_tensor / 2``,
``torch.sqrt(int_tensor)`` promote to it; a ``torch.tensor(1.5)`` made in ``forward`` is a float32 constant of the
program; what ``forward`` computes from ``torch.get_default_dtype()`` is a plain dtype in it). Such a node makes
float32 where eager under float64 makes float64, so a program holding one is refused under another default
(``default_dtype_nodes`` names them, found at the first such call); every other program runs, its dtypes being its
inputs' and weights' alone, as eager's are.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from memplan.importers.torch import subgraphs

from .backend_flags import backend_flags
from .torch_reads import SharedPatch, recording

#: the float defaults ``torch.set_default_dtype`` takes: a node whose result dtype differs among them follows it
_DEFAULTS = ("float32", "float64", "float16", "bfloat16")
#: constants export makes of a tensor built in ``forward`` (non-strict ``lifted_tensor_N``, strict ``_tensor_constantN``)
_MADE_IN_FORWARD = re.compile(r"(lifted_tensor|_tensor_constant)_?\d+$")


@dataclass
class Ambient:
    """The state a program was built under: the default dtype of its compile (kept across rebuilds) and the backend
    flags of this build; ``dtype_nodes``: the nodes that follow the default dtype, found at the first call under
    another default (None until then)."""

    default_dtype: Any
    flags: tuple[Any, ...]   # backend_flags(torch): the values of flag_names(torch)
    dtype_nodes: list[tuple[str, str]] | None = field(default=None)


def record(torch: Any) -> Ambient:
    """The default dtype and backend flags now: a build's."""
    return Ambient(torch.get_default_dtype(), backend_flags(torch))


#: the watch on ``torch.get_default_dtype`` (``watch_default_dtype_reads``)
_DTYPE_READS = SharedPatch()


@contextlib.contextmanager
def watch_default_dtype_reads(torch: Any) -> Iterator[list[str]]:
    """The places ("file.py:123") where code outside torch calls ``torch.get_default_dtype()`` inside the block (an
    export: ``forward``'s reads), in this thread. What forward makes of the value is baked into the program as a
    plain dtype (``emb.to(torch.get_default_dtype())`` in MusicGen, a ``torch.finfo`` of it in Grounding DINO), where
    eager follows the default; torch's own reads (its Python decompositions) are the export's business.

    torch's getter is one for the process: ``SharedPatch`` keeps one wrapper while any block runs."""
    # strict export (Dynamo) refused to trace the frame inspection ("Attempted to call function marked as skipped"):
    # let it call the watcher once while tracing and take its result as a constant
    with _DTYPE_READS.block(torch, "get_default_dtype",
                            lambda real: torch._dynamo.assume_constant_result(
                                recording(torch, _DTYPE_READS, real, lambda a, k, v, where: where)), []) as reads:
        yield reads


def default_dtype_nodes(torch: Any, program: Any, default: Any) -> list[tuple[str, str]]:
    """(node, what) for every node of ``program``'s export (subgraphs of higher-order ops too) whose result dtype follows
    the default dtype at run time, in program order, and every constant a ``torch.tensor(...)`` in ``forward``
    of the compile's default dtype ``default`` or its complex one (export's constant is the same for
    ``dtype=torch.float32``: it cannot tell, so it counts), after the places ``forward`` read the default dtype in Python (``Program.default_dtype_reads``).
    Found by running each op on the export's fake tensors under each float default: what torch itself infers, not a
    list of op names; an op that cannot be run so counts too (it cannot be cleared)."""
    exported = program.exported
    found = [("forward", f"forward reads torch.get_default_dtype() at {where} (what it makes of it is fixed in the "
                         "program)") for where in program.default_dtype_reads]
    found += _made_in_forward(torch, exported, default)
    fake_mode = _fake_mode(torch, exported.graph)
    for n in _call_nodes(torch, exported.graph_module):
        if isinstance(n.target, torch._ops.OpOverload) and not _writes(n.target):
            why = _follows_default(torch, fake_mode, n)
            if why is not None:
                found.append((n.name, f"node {n.name!r} ({n.target}) {why}"))
    return found


def _made_in_forward(torch: Any, exported: Any, default: Any) -> list[tuple[str, str]]:
    from torch.export.graph_signature import InputKind

    dtypes = {default, {torch.float32: torch.complex64, torch.float64: torch.complex128,
                        torch.float16: torch.complex32}.get(default)}
    out = []
    consts = dict(getattr(exported, "constants", {}) or {})
    for s in exported.graph_signature.input_specs:
        value = consts.get(s.target)
        if (s.kind == InputKind.CONSTANT_TENSOR and isinstance(value, torch.Tensor)
                and _MADE_IN_FORWARD.match(str(s.target)) and value.dtype in dtypes):
            out.append((s.arg.name, f"constant {s.arg.name!r} is a {value.dtype} tensor made in forward (a torch.tensor "
                                    "of a float takes the default dtype; one given this dtype looks the same)"))
    return out


def _fake_mode(torch: Any, graph: Any) -> Any:
    from torch._guards import detect_fake_mode

    vals = [n.meta["val"] for n in graph.nodes if isinstance(n.meta.get("val"), torch.Tensor)]
    return detect_fake_mode(vals)


def _writes(op: Any) -> bool:
    """Whether ``op`` writes an argument (in place, ``out=``): its result is that tensor, of that dtype, and the
    executor runs the op itself on it, so under another default it computes what eager's computes."""
    return any(a.alias_info is not None and a.alias_info.is_write for a in op._schema.arguments)


def _call_nodes(torch: Any, gm: Any, depth: int = 0) -> list[Any]:
    """Every call_function node of ``gm`` and of its higher-order ops' subgraphs, in program order."""
    out = []
    for n in gm.graph.nodes:
        if n.op != "call_function":
            continue
        out.append(n)
        if depth < 32:
            for sub in subgraphs(torch, gm, n):
                out.extend(_call_nodes(torch, sub, depth + 1))
    return out


def _follows_default(torch: Any, fake_mode: Any, n: Any) -> str | None:
    """Why node ``n``'s result dtypes change with the default dtype ("makes float64 under float64, ..."), or None
    where they are the same under every float default."""
    seen = {}
    for name in _DEFAULTS:
        dtype = getattr(torch, name)
        try:
            seen[name] = _result_dtypes(torch, fake_mode, n, dtype)
        except Exception as exc:  # noqa: BLE001 - any failure leaves the node uncleared, which is the safe side
            return f"(its result dtype under another default could not be found: {type(exc).__name__})"
    if len(set(seen.values())) == 1:
        return None
    return "takes its result dtype from the default dtype (" + ", ".join(
        f"{'/'.join(str(d).removeprefix('torch.') for d in got)} under {name}" for name, got in seen.items()) + ")"


def _result_dtypes(torch: Any, fake_mode: Any, n: Any, default: Any) -> tuple[Any, ...]:
    """The dtypes of ``n``'s tensor results when run on the export's fake tensors under default dtype ``default``
    (on aliases of them: an op must not change the export's own metadata). torch's default dtype is one for the
    whole process: another thread's eager code meets ``default`` for the moment of the probe, which runs once per
    executor, at the first call under another default than the compile's."""
    from torch.utils import _pytree as pytree

    if fake_mode is None:
        raise RuntimeError("the program has no fake tensors")

    def arg(a: Any) -> Any:
        if isinstance(a, torch.fx.Node):
            v = a.meta.get("val")
            return torch.ops.aten.alias.default(v) if isinstance(v, torch.Tensor) else v
        return a

    old = torch.get_default_dtype()
    torch.set_default_dtype(default)
    try:
        with fake_mode, torch.no_grad():
            args = torch.fx.node.map_aggregate(n.args, arg)
            kwargs = torch.fx.node.map_aggregate(n.kwargs, arg)
            result = n.target(*args, **kwargs)
    finally:
        torch.set_default_dtype(old)
    return tuple(t.dtype for t in pytree.tree_leaves(result) if isinstance(t, torch.Tensor))
