"""The CPU ``scaled_dot_product_attention`` nodes whose ``attn_mask`` requires grad in eager under grad mode.

Why: CPU SDPA picks its kernel by the mask's ``requires_grad`` (a mask that requires grad runs the math path, one
that does not the fused flash kernel: up to 6e-07 apart), grad mode aside. In eager under grad mode a mask computed
from parameters that require grad (Swin's relative position bias plus its window mask, as in Mask2Former's
backbone: ``bias * 1.0``) requires grad; the executor's mask is an arena view that never does, so a call under grad
mode was silently off eager's bits (round 74; under ``no_grad``, or with the parameters frozen, both run flash). The
executor passes such a mask as an alias that requires grad under grad mode (``lower._lower_result``).

Likewise ``matmul`` (and ``linear`` of an input that is not contiguous, which runs ``matmul(x, w.t())``) folds a
3-D-or-more operand into one ``mm`` by whether its matrix operand requires grad (``exact.matmul_out_differs``): a
matrix computed from parameters (``(w * s) @ x``, ``x @ w.t()`` of a scaled ``w``) requires grad in eager under grad
mode and was 1 ulp (2e-07) off eager's bits there (round 74, grad74); it is passed as such an alias too."""

from __future__ import annotations

import operator
from typing import Any

#: ops whose results never require grad: the chain of a mask's ``requires_grad`` stops there. Not ``alias``: export's
#: form of a slice over a whole dimension (``w[:, :4]`` of a 4-column ``w``), a view that requires grad where its base
#: does (round 75: ``(self.w[:, :4] * 1.0) @ x...`` and such an SDPA mask ran 2e-07 off eager under grad mode)
_NO_GRAD = frozenset({"detach", "detach_", "lift_fresh_copy", "histc", "histogram"})


def _no_grad_op(base: str) -> bool:
    """Whether eager's result of the op ``base`` never requires grad, whatever its inputs: a detach, a histogram,
    or a factory shaped after its input (``zeros_like``, ``full_like``, ``rand_like``, ``w.new_ones``,
    ``new_empty_strided``...). Why: a mask or matrix made so from a parameter (``torch.zeros_like(w) + m``) requires
    no grad in eager; taken as derived, its node ran the other kernel (round 74, grad74: 5e-07 off eager)."""
    return base in _NO_GRAD or base.endswith("_like") or base.startswith("new_")


def _base(target: Any) -> str:
    name = getattr(target, "__name__", str(target))
    return name.split(".")[0]


def _floating(val: Any) -> bool:
    return bool(getattr(val, "is_floating_point", lambda: False)() or getattr(val, "is_complex", lambda: False)())


def value_grads(torch: Any, program: Any, inputs: frozenset[str] = frozenset(), enabled: bool = True,
                weights: bool = True, inference: bool = False) -> frozenset[str]:
    """Names of the export's values (placeholders and nodes) that require grad in eager: the weights that do, the
    user inputs named in ``inputs`` (a call's tensors that do), and, as autograd propagates the flag, a view of one
    in any mode (``w.t()`` of a leaf that requires grad does under ``no_grad`` and ``inference_mode`` too) and, under
    grad mode (``enabled``), a float result of any op taking one. A ``no_grad`` block (a higher-order op), a
    non-float result or an op whose result never requires grad (``_no_grad_op``) breaks the chain; ``getitem`` of a
    multi-result op (``split``) passes it on.

    Why per call (round 75): a caller's ``w @ x.transpose(-1, -2)`` or SDPA ``attn_mask=mask`` with ``w`` / ``mask``
    requiring grad ran 2e-07 .. 5e-07 off eager: the kernels read arena copies of the inputs, which never do."""
    ep = program.exported
    graph = getattr(ep, "graph", None)
    if graph is None:
        return frozenset()
    from torch.export.graph_signature import InputKind

    held = program.weights if weights else {}
    seeds = {n.name: 1 for n in graph.nodes if n.op == "placeholder" and n.name in inputs
             and _floating(n.meta.get("val"))}   # (only a float tensor can require grad)
    for s in ep.graph_signature.input_specs:
        arg = getattr(s.arg, "name", None)
        if s.kind != InputKind.USER_INPUT and arg is not None:
            w = held.get(arg)
            if isinstance(w, torch.Tensor) and w.requires_grad:
                seeds[arg] = 1
    if not seeds:
        return frozenset()
    return frozenset(carried(torch, graph, seeds, enabled, views=frozenset() if enabled else view_nodes(program),
                             inference=inference))


def carried(torch: Any, graph: Any, seeds: dict[str, int], enabled: bool = True, every: bool = False,
            views: frozenset[str] = frozenset(), inference: bool = False) -> dict[str, int]:
    """{value name: bits} of the values of ``graph`` the ``seeds`` reach, each value's bits the OR of its operands'
    (one pass for any number of sources: bit k for the k-th): as ``requires_grad`` propagates (``value_grads``), or,
    with ``every``, through any node that takes one (a ``no_grad`` block's, a non-float result's too). ``views``:
    more nodes whose results are views of their first argument (``view_nodes``), carried outside grad mode too."""
    bits = dict(seeds)
    for n in graph.nodes:
        if n.op != "call_function":
            continue
        got = 0
        for a in n.all_input_nodes:
            got |= bits.get(a.name, 0)
        if not got:
            continue
        if every:
            bits[n.name] = got
            _mark_written(torch, n, got, bits)
            continue
        if n.target is operator.getitem:
            src = n.args[0] if n.args else None
            if isinstance(src, torch.fx.Node) and src.name in bits and _floating(n.meta.get("val")):
                bits[n.name] = bits[src.name]
            continue
        if isinstance(n.target, torch._ops.HigherOrderOperator):
            # a ``torch.no_grad()`` / ``enable_grad()`` block's results follow its own mode; ``cond``'s and the other
            # higher-order ops' the caller's, as eager's autograd carries the flag through them (round 75: a mask out
            # of ``torch.cond`` from a caller's mask that requires grad ran flash where eager ran math)
            own = n.args[0] if n.target.name() == "wrap_with_set_grad_enabled" and n.args else None
            if (own is True and not inference) or (own is None and enabled):
                bits[n.name] = got
            continue
        if not isinstance(n.target, torch._ops.OpOverload):
            continue
        val = n.meta.get("val")
        if _no_grad_op(_base(n.target)) or not (_floating(val) or isinstance(val, (list, tuple))
                                                and any(_floating(v) for v in val)):
            continue
        if enabled:
            if (_is_view(n.target) or _base(n.target) == "type_as") and n.args and isinstance(n.args[0], torch.fx.Node):
                got = bits.get(n.args[0].name, 0)   # (``w.view_as(x)``: ``w``'s flag alone, ``x``'s no part)
                if not got:
                    continue
            bits[n.name] = got
            _mark_written(torch, n, got, bits)
        elif (_is_view(n.target) or n.name in views) and n.args and isinstance(n.args[0], torch.fx.Node):
            if bits.get(n.args[0].name):   # (a view keeps its base's flag in any mode; ``view_as``'s other no part)
                bits[n.name] = bits[n.args[0].name]
    return bits


def view_nodes(program: Any) -> frozenset[str]:
    """Names of the export's nodes whose results the program's graph holds as views of an input, writing none:
    besides the ops whose schema says so, those that return their input as it is (``type_as`` of the same dtype,
    eval ``dropout``), as eager's do: their result keeps the input's ``requires_grad`` under ``no_grad`` too (round
    75: ``w.type_as(x) @ x.transpose(-1, -2)`` of a caller's ``w`` that requires grad, 5e-07 off under ``no_grad``)."""
    graph = getattr(program, "graph", None)
    index = getattr(graph, "node_index", None)
    if index is None:
        return frozenset()
    out = set()
    for n in program.exported.graph.nodes:
        if n.op != "call_function" or n.name not in index:
            continue
        schema = getattr(n.target, "_schema", None)
        if schema is not None and any(a.alias_info is not None and a.alias_info.is_write for a in schema.arguments):
            continue
        outs = graph.node(n.name).outputs
        if outs and all(graph.tensor(t).view_of is not None for t in outs):
            out.add(n.name)
    return frozenset(out)


def _mark_written(torch: Any, n: Any, got: int, bits: dict[str, int]) -> None:
    """Carry ``got`` into what node ``n`` writes in place (``m.add_(mask)``, ``m2[0].copy_(mask[0])``) and up the
    chain of views it is of to its root: in eager the written tensor and its base require grad from then on, and a
    later node reads the base by its own name (round 75: an SDPA mask so filled from a caller's mask that requires grad
    ran flash where eager ran math, 2e-07 off)."""
    schema = getattr(n.target, "_schema", None)
    if schema is None:
        return
    for k, a in enumerate(schema.arguments):
        if a.alias_info is None or not a.alias_info.is_write:
            continue
        t = n.args[k] if k < len(n.args) else n.kwargs.get(a.name)
        seen = 0
        while isinstance(t, torch.fx.Node) and seen < 64:
            bits[t.name] = bits.get(t.name, 0) | got
            if t.op != "call_function" or not _is_view(t.target) or not t.args:
                break
            t, seen = t.args[0], seen + 1


def input_bits(torch: Any, program: Any, every: bool = False) -> dict[str, int]:
    """``carried`` from the float user inputs, bit k for ``program.user_inputs[k]``, the weights left out: which
    inputs' ``requires_grad`` may reach each value (``executor._grad_inputs``), or, with ``every``, which inputs each
    value is computed from."""
    graph = program.exported.graph
    vals = {n.name: n.meta.get("val") for n in graph.nodes if n.op == "placeholder"}
    seeds = {tid: 1 << k for k, (_pos, tid) in enumerate(program.user_inputs) if _floating(vals.get(tid))}
    return carried(torch, graph, seeds, True, every) if seeds else {}


def grad_derived(torch: Any, program: Any) -> frozenset[str]:
    """Names of the export's nodes whose float results eager computes from a weight that requires grad through ops
    that carry grad (a float result of a node taking one), as they require grad under grad mode. A ``no_grad``
    block (a higher-order op) or a non-float result breaks the chain."""
    return value_grads(torch, program)


def _is_view(op: Any) -> bool:
    """Whether ``op``'s result is a view of an argument (its schema's return aliases one and writes none)."""
    if isinstance(getattr(op, "is_view", None), bool):
        return op.is_view
    returns = getattr(getattr(op, "_schema", None), "returns", ())
    info = returns[0].alias_info if returns else None
    return info is not None and not info.is_write


def mask_slot(torch: Any, n: Any, derived: frozenset[str]) -> int | str | None:
    """Where ``n``'s ``attn_mask`` is among its arguments (an index, or ``"attn_mask"`` for a keyword) where ``n`` is
    an SDPA node whose mask ``derived`` names; None otherwise."""
    if _base(getattr(n, "target", None)) != "scaled_dot_product_attention" or not derived:
        return None
    if len(n.args) > 3:
        mask, slot = n.args[3], 3
    else:
        mask, slot = n.kwargs.get("attn_mask"), "attn_mask"
    if isinstance(mask, torch.fx.Node) and mask.name in derived:
        return slot
    return None


def fold_slot(torch: Any, n: Any, args: tuple, derived: frozenset[str]) -> int | None:
    """The index of ``n``'s matrix operand where ``n`` is a ``matmul`` or ``linear`` node whose matrix operand
    ``derived`` names and whose folding (``exact.matmul_out_differs``) turns on that operand's ``requires_grad``;
    None otherwise (then the node runs as before: its plan and launches unchanged)."""
    from .exact import matmul_out_differs

    base = _base(getattr(n, "target", None))
    if base not in ("matmul", "linear") or not derived or len(args) < 2:
        return None
    a, b = args[0], args[1]
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)) or not (_floating(a) and _floating(b)):
        return None
    if base == "linear":
        b = b.t() if b.dim() == 2 else b
    slot = 0 if a.dim() <= 2 and a.dim() < b.dim() else 1
    src = n.args[slot] if len(n.args) > slot else None
    if not (isinstance(src, torch.fx.Node) and src.name in derived) or (a if slot == 0 else b).requires_grad:
        return None
    graded = [a, b]
    graded[slot] = graded[slot].detach().requires_grad_(True)
    if matmul_out_differs(torch, *graded) and not matmul_out_differs(torch, a, b):
        return slot
    return None


#: CPU ops whose kernel eager picks by an operand's ``requires_grad`` (``grad_slots``)
GRAD_PICKED = frozenset({"scaled_dot_product_attention", "matmul", "linear", "gru", "rnn_tanh", "rnn_relu"})
#: CPU RNN ops whose kernel takes another path where a weight of their ``params`` list requires grad (round 74:
#: the held parameters; round 75: weights a caller passes, ``functional_call(gru, {...: w}, ...)``, 6e-08 off)
_RNN_PARAMS = frozenset({"gru", "rnn_tanh", "rnn_relu"})

def grad_slots(torch: Any, n: Any, args: tuple, derived: frozenset[str]) -> tuple[tuple[Any, str], ...]:
    """(slot, value name) of each operand of CPU node ``n`` whose ``requires_grad`` picks its kernel and which
    ``derived`` names (an SDPA's mask, a folding ``matmul``'s / ``linear``'s matrix, an RNN's weights), where the
    argument at that slot does not require grad already (a parameter read as itself); () for none. A slot is an
    argument index, a keyword, or (index, item) of a tensor list argument."""
    base = _base(getattr(n, "target", None))
    if not derived:
        return ()
    if base == "scaled_dot_product_attention":
        slot = mask_slot(torch, n, derived)
        if slot is None:
            return ()
        return ((slot, (n.args[3] if slot == 3 else n.kwargs["attn_mask"]).name),)
    if base in ("matmul", "linear"):
        slot = fold_slot(torch, n, args, derived)
        return () if slot is None else ((slot, n.args[slot].name),)
    if base in _RNN_PARAMS:
        schema = getattr(n.target, "_schema", None)
        names = [a.name for a in schema.arguments] if schema is not None else []
        k = names.index("params") if "params" in names else -1
        if not (0 <= k < min(len(n.args), len(args)) and isinstance(n.args[k], (list, tuple))):
            return ()
        return tuple(((k, j), src.name) for j, (src, t) in enumerate(zip(n.args[k], args[k]))
                     if isinstance(src, torch.fx.Node) and src.name in derived and isinstance(t, torch.Tensor)
                     and not t.requires_grad)
    return ()


def with_grad_mask(args: tuple, kwargs: dict, slots: tuple) -> tuple[tuple, dict]:
    """``args``/``kwargs`` with the operand at each of ``slots`` (``grad_slots``' slots) replaced by an alias of it
    that requires grad (no copy)."""
    args, kwargs = list(args), dict(kwargs)
    for slot in slots:
        if isinstance(slot, tuple):
            k, j = slot
            items = list(args[k])
            items[j] = items[j].detach().requires_grad_(True)
            args[k] = items
        elif isinstance(slot, int):
            args[slot] = args[slot].detach().requires_grad_(True)
        else:
            kwargs[slot] = kwargs[slot].detach().requires_grad_(True)
    return tuple(args), kwargs
