"""What eager's autograd refuses in ``forward`` where a caller's input requires grad under grad mode.

Why (round 75): the executor runs its launches under ``no_grad``, so a program whose ``forward`` writes in place or
``out=`` ran silently where eager's forward raises once an input requires grad: ``torch.mul(x * 2, 1, out=t)``
("functions with out=... arguments don't support automatic differentiation"), ``a.add_(1)`` of ``a, b =
(x * 2).unbind(0)`` (a multi-output view modified in place), a view made under ``no_grad`` written under grad mode,
``(x * 2).resize_(4)`` ("cannot resize variables that require grad"). Which call autograd refuses is found as eager
finds it: the export's graph is run once on fake tensors under grad mode, the inputs requiring grad as the call's do
(``refusal``; per pattern of flags, cached by the executor), and only a program that writes in place or ``out=``
somewhere a flagged input reaches is run so (``mutating_nodes``). A failure of that run that is no autograd refusal
(an op without a fake kernel, a data-dependent size) refuses nothing: the call runs as before.
"""

from __future__ import annotations

import re
from typing import Any

#: autograd's own refusals in a forward (the messages of torch's ``VariableType`` and view checks)
AUTOGRAD = re.compile(r"requires? grad|modified inplace|automatic differentiation|leaf Variable")


#: in-place ops autograd refuses on any tensor that requires grad, a fresh one too
_ALWAYS_REFUSED = frozenset({"resize_", "resize_as_", "set_"})


def mutating_nodes(torch: Any, program: Any) -> frozenset[str]:
    """Names of the export's nodes that write an argument (in place, ``out=``, ``resize_``): where autograd may refuse
    a forward whose argument requires grad. Not an in-place op on its ``self`` where that is a fresh result
    (``_fresh``): autograd's forward refuses an in-place write only to a leaf, to a view of certain kinds, or ``out=``
    (and ``resize_``), so ``relu_`` of a ``Conv2d``'s or ``BatchNorm``'s result never is. Why (review75): every
    ``nn.ReLU(inplace=True)`` made the first call under grad mode of a CNN run its whole graph on fake tensors
    (~100 ms for 400 nodes) to find nothing."""
    graph = getattr(program.exported, "graph", None)
    if graph is None:
        return frozenset()
    out = set()
    views: list[frozenset[str]] = []
    for n in graph.nodes:
        schema = getattr(n.target, "_schema", None) if n.op == "call_function" else None
        if schema is None:
            continue
        written = [k for k, a in enumerate(schema.arguments) if a.alias_info is not None and a.alias_info.is_write]
        if not written:
            continue
        if written == [0] and not schema.arguments[0].kwarg_only and schema.overload_name != "out" \
                and schema.name.split("::")[-1] not in _ALWAYS_REFUSED and n.args:
            if not views:
                from .grad_masks import view_nodes

                views.append(view_nodes(program))
            if _fresh(torch, n.args[0], views[0]):
                continue
        out.add(n.name)
    return frozenset(out)


def _fresh(torch: Any, w: Any, views: frozenset[str]) -> bool:
    """Whether export node ``w`` is a fresh tensor: the result of an op (or a ``getitem`` of a multi-result op) whose
    schema says it returns no alias, which the program's graph does not hold as a view either (``views``: ``type_as``
    of the same dtype returns its input itself). A leaf, a view, a higher-order op's result or an in-place op's (an
    alias of what it wrote) is not."""
    import operator

    if not isinstance(w, torch.fx.Node) or w.op != "call_function" or w.name in views:
        return False
    if w.target is operator.getitem:
        w = w.args[0] if w.args else None
        if not isinstance(w, torch.fx.Node) or w.op != "call_function" or w.name in views:
            return False
    schema = getattr(w.target, "_schema", None)
    if schema is None:
        return False
    return all(r.alias_info is None for r in schema.returns) \
        and not any(a.alias_info is not None for a in schema.arguments)


def refusal(torch: Any, program: Any, flagged: frozenset[str]) -> str | None:
    """Autograd's refusal of eager's ``forward`` under grad mode where the user inputs named in ``flagged`` require
    grad (and the weights as they do): "node 'n' (op): message", or None where it runs (or the fake run fails
    otherwise)."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    ep = program.exported
    mode = FakeTensorMode(allow_non_fake_inputs=True)
    args: list[Any] = []
    try:
        with mode:
            for n in ep.graph.nodes:
                if n.op != "placeholder":
                    continue
                real = program.weights.get(n.name)
                val = n.meta.get("val")
                if isinstance(real, torch.Tensor):
                    args.append(mode.from_tensor(real))
                elif isinstance(val, torch.Tensor):
                    t = torch.empty_strided(tuple(val.shape), tuple(val.stride()), dtype=val.dtype, device=val.device)
                    args.append(t.requires_grad_(n.name in flagged and (val.is_floating_point() or val.is_complex())))
                else:
                    args.append(val)
    except Exception:   # (a placeholder fake tensors cannot stand for: nothing found)
        return None
    at: list[Any] = [None]

    class _Run(torch.fx.Interpreter):
        def run_node(self, n: Any) -> Any:
            at[0] = n
            return super().run_node(n)

    try:
        with mode, torch.enable_grad():
            _Run(ep.graph_module).run(*args)
    except RuntimeError as exc:
        message = str(exc).splitlines()[0] if str(exc) else ""
        n = at[0]
        if n is None or not AUTOGRAD.search(message):
            return None
        return f"node {n.name!r} ({n.target}): {message}"
    except Exception:
        return None
    return None
