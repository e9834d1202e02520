"""``runtime.aten.fastpath``: the calls of ``nn.MultiheadAttention`` / ``nn.TransformerEncoderLayer`` where eager
takes torch's fused fast path and the program cannot.

Why: in eval mode, outside grad mode (``torch.no_grad()``, ``torch.inference_mode()``, or parameters that require
no grad) and with ``torch.backends.mha.get_fastpath_enabled()`` on, eager runs these layers through one fused kernel
(``torch._native_multi_head_attention`` / ``torch._transformer_encoder_layer_fwd``), which rounds otherwise than the
standard path; an export always traces the standard path (torch turns the fast path off while it traces), so the
executor returned other numbers than eager's with no error (round 52: 6e-8 on an ``nn.MultiheadAttention(8, 2)``,
2.4e-7 on an ``nn.TransformerEncoderLayer(8, 2, 16)``). Such a call is refused, naming the layer and how to get
eager's numbers of the standard path.

What decides the fast path is torch's own list (``MultiheadAttention.forward``, ``TransformerEncoderLayer.forward``),
mirrored condition by condition (tests/test_aten_round53.py compares the verdict with eager's fused kernels being
called). What the export's call passed (batched input, no float mask, matching dtypes) and where its query, key and
value come from (an input of the call, by its place in the export's flattening, or an intermediate) is recorded while
``load_program`` exports (``record``); at each call the inputs are the call's own (``q is k is v`` and the query's
``requires_grad`` as eager's call sees them), and what the module and the state hold (eval, flags, hooks, modes) is
read then (``fused_layer``). An intermediate query's ``requires_grad`` follows the leaves of its autograd graph in the
export (``sources``: parameters by name, inputs of the call), read at each call (round 53b: a frozen attention fed by a
trainable ``nn.Linear`` was refused under grad mode, eager's standard path). Where the export's tensors cannot be
followed (a leaf that required no grad at the export, an input not found) the check takes the side that refuses
(round 53: it refused ``m(x, y, y)`` of a program compiled from three tensors, and frozen parameters with a query
that requires grad, which eager runs on the standard path). A program no export watch recorded (a strict export, a
given ``ExportedProgram``) is read from its own nodes instead (``from_program``, round 54): which layer calls it holds,
whether one holds torch's fused kernel itself (a strict export under ``no_grad``: then refused where eager may not
take the fast path), and what the call's form fixes (not batched, cross-attention, a float mask).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

#: torch's fused kernel, by layer class name (for the message)
FUSED = {"MultiheadAttention": "torch._native_multi_head_attention",
         "TransformerEncoderLayer": "torch._transformer_encoder_layer_fwd"}


@contextlib.contextmanager
def record(torch: Any, calls: list, module: Any = None) -> Iterator[None]:
    """Append to ``calls`` (layer, where its inputs come from: ``ref``'s, one per query, key and value, or the source)
    for each layer (``nn.MultiheadAttention`` / ``nn.TransformerEncoderLayer``, subclasses too) that the block's
    export called with arguments that let eager take the fast path; whether a call's query, key and value are one
    tensor is decided per call from them (``forward(q, k, v)`` compiled with three tensors, called ``m(x, x, x)``:
    eager's fast path, round 52b; ``m(x, y, y)``: not, round 53). The classes' ``forward`` is wrapped for the
    block only (put back after, whatever happens), under the importer's export lock (a reentrant one: the export
    inside takes it again): two compiles' wraps in two threads must not interleave, or the later one put the earlier
    one's wrapper back for good. (Eager calls of these layers in another thread meanwhile are recorded too: refused
    calls on the safe side, never other numbers.)"""
    from memplan.importers.torch import EXPORT_LOCK

    with EXPORT_LOCK:
        yield from _recording(torch, calls, module)


def _recording(torch: Any, calls: list, module: Any) -> Iterator[None]:
    """``record``'s body, under the lock."""
    nn = torch.nn
    originals = {cls: cls.__dict__["forward"] for cls in (nn.MultiheadAttention, nn.TransformerEncoderLayer)}
    held: dict[int, tuple[Any, int]] = {}   # id -> (the export's tensor, its token): kept alive, so ids stay unique

    def ref(t: Any) -> tuple:
        """Where the export's tensor ``t`` comes from: ("in", place from the end of the inputs, shape) for an input
        of the call itself (the trace's placeholder), else ("inner", token): one intermediate tensor of the export,
        the same token for the same tensor."""
        from torch.fx.experimental import proxy_tensor

        mode = proxy_tensor.get_proxy_mode()
        slot = proxy_tensor.get_proxy_slot(t, mode.tracer, None) if mode is not None else None
        node = getattr(getattr(slot, "proxy", None), "node", None)
        if node is not None and node.op == "placeholder":
            places = [n for n in node.graph.nodes if n.op == "placeholder"]
            return ("in", len(places) - 1 - places.index(node), tuple(t.shape))
        return ("inner", held.setdefault(id(t), (t, len(held)))[1])

    def sources(t: Any) -> tuple | None:
        """What eager's query ``t`` (an intermediate) requires grad through: the leaves of its autograd graph in the
        export (a parameter of ``module`` by name, ("param", name); an input of the call, ``ref``'s), so that a call
        under grad mode resolves them to its own parameters' and inputs' ``requires_grad`` (``_query_grad``). Leaves
        that were not followed (a parameter or an input that required no grad at the export, a buffer) are left out:
        the query then counts as requiring no grad (the safe side: refused where eager may take the fast path)."""
        names = ({id(p): n for n, p in module.named_parameters(remove_duplicate=False)}
                 if isinstance(module, nn.Module) else {})   # (the export's stand-ins: the names are the module's)
        found: list = []
        stack, seen = [t.grad_fn], set()
        while stack:
            fn = stack.pop()
            if fn is None or fn in seen:
                continue
            seen.add(fn)
            leaf = getattr(fn, "variable", None)   # (AccumulateGrad: a leaf that requires grad)
            if leaf is not None:
                r = ("param", names[id(leaf)]) if id(leaf) in names else ref(leaf)
                if r[0] != "inner":
                    found.append(r)
            stack.extend(f for f, _ in fn.next_functions)
        return tuple(sorted(dict.fromkeys(found), key=repr))

    def entry(m: Any, refs: tuple, query: Any) -> tuple:
        """``calls``' entry: the layer, its inputs' references and its query's grad sources (``sources``; () for
        an input of the call, whose own flag is read at the call); None for them where ``forward`` ran this layer with
        grad off though the export ran under grad mode (a ``no_grad`` block in ``forward``): eager's call then checks
        no ``requires_grad`` at all, whatever the call's mode (before: a call under grad mode with parameters that
        require grad was let through, and eager took the fast path). ``NO_GRAD_EXPORT`` where the export itself ran
        with grad off: whether ``forward`` turns it off around the layer cannot be told then."""
        if not outer_grad:
            return (m, refs, NO_GRAD_EXPORT)
        if not torch.is_grad_enabled():
            return (m, refs, None)
        return (m, refs, sources(query) if refs[0][0] == "inner" else ())

    @functools.wraps(originals[nn.MultiheadAttention])   # (the signature export binds a root layer's call by)
    def mha(self: Any, query: Any, key: Any, value: Any, key_padding_mask: Any = None, need_weights: bool = True,
            attn_mask: Any = None, *args: Any, **kwargs: Any) -> Any:
        floating = any(m is not None and torch.is_floating_point(m) for m in (attn_mask, key_padding_mask))
        if (query.dim() == 3 and not floating and self.in_proj_weight is not None and self.in_proj_bias is not None
                and query.dtype == self.in_proj_weight.dtype and query.dtype == self.in_proj_bias.dtype
                and query.shape == key.shape == value.shape and query.dtype == key.dtype == value.dtype):
            calls.append(entry(self, (ref(query), ref(key), ref(value)), query))
        return originals[nn.MultiheadAttention](self, query, key, value, key_padding_mask, need_weights, attn_mask,
                                                *args, **kwargs)

    @functools.wraps(originals[nn.TransformerEncoderLayer])
    def layer(self: Any, src: Any, *args: Any, **kwargs: Any) -> Any:
        if src.dim() == 3:
            calls.append(entry(self, (ref(src),), src))
        return originals[nn.TransformerEncoderLayer](self, src, *args, **kwargs)

    outer_grad = torch.is_grad_enabled()   # (the export's own mode: a layer's call with grad off inside is forward's)
    nn.MultiheadAttention.forward, nn.TransformerEncoderLayer.forward = mha, layer
    try:
        yield
    finally:
        for cls, forward in originals.items():
            cls.forward = forward
        held.clear()


def unrecorded(torch: Any, module: Any) -> tuple:
    """``record``'s calls where no export of ``module`` was watched (a program of ``load_program`` from a strict export
    or a given ``ExportedProgram``): every ``nn.MultiheadAttention`` / ``nn.TransformerEncoderLayer`` of it, with
    query, key and value unknown. The safe side: such a call is refused wherever the layer's own state and the modes
    let eager take the fast path, though the program may call it otherwise (a 2-D input, a float mask)."""
    kinds = (torch.nn.MultiheadAttention, torch.nn.TransformerEncoderLayer)
    return tuple((m, (("unknown",),) * (3 if isinstance(m, torch.nn.MultiheadAttention) else 1), ())
                 for m in dict.fromkeys(x for x in module.modules() if isinstance(x, kinds)))


#: the ops that cut the in-projection weight into the query's, key's and value's parts (``_in_projection_packed``
#: for a key or value other than the query), as the program spells them, decomposed or not
_SPLITS = frozenset({"split", "split_with_sizes", "chunk", "unsafe_split", "unsafe_split_with_sizes", "unsafe_chunk",
                     "tensor_split", "slice", "narrow", "select", "unbind", "as_strided"})


def _op(node: Any) -> str:
    """The ATen name of a call node's op, without namespace and overload (``aten.split_with_sizes.default``:
    ``split_with_sizes``)."""
    name = getattr(node.target, "__name__", str(node.target))
    return name.split(".")[0]


def from_program(torch: Any, module: Any, exported: Any) -> tuple:
    """``record``'s calls as the program ``exported`` shows them, where no export of ``module`` was watched (a strict
    export, a given ``ExportedProgram``): each call of an ``nn.MultiheadAttention`` / ``nn.TransformerEncoderLayer``
    of ``module`` is the program's nodes whose ``nn_module_stack`` holds that call (its key: ``a``, ``a@1``...).

    Why: taking every such layer as called in the fast path's form (``unrecorded``) refused calls eager runs on the
    standard path (round 54: a 2-D query, a float mask, ``m.a(x, y, y)``, a layer the program never calls), and let
    through calls of a strict export under ``no_grad``, whose program holds torch's fused kernel itself, where eager
    runs the standard path (grad mode with parameters that require grad: 2.4e-7 off, no error). What the program
    fixes is decided from it; what the call's state decides is left to ``fused_layer``:

    - a call whose nodes hold the fused kernel (``_native_multi_head_attention`` / ``_transformer_encoder_layer_fwd``)
      runs fused: ``PROGRAM_FUSED``, refused where eager may take the standard path;
    - a call on the standard path whose inputs (the tensors its nodes read from outside it, its own parameters left
      out) are none of more than two dimensions: not batched at export, and the shapes are the export's at every
      call, so never fused;
    - an ``nn.MultiheadAttention`` call whose in-projection weight is split (``_in_projection_packed`` of a key or
      value other than the query): not self-attention, so eager's query, key and value are other tensors too, as long
      as the call passes no tensor twice, nor one of the module's own (refs ``("apart",)``: unknown otherwise);
    - one of self-attention with a floating input besides its query (a float mask): never fused;
    - any other: unknown, as ``unrecorded`` (the safe side).

    A program without ``nn_module_stack`` on its nodes, or one naming a module path ``module`` has not, cannot say, and
    is taken as ``unrecorded``."""
    nn = torch.nn
    kinds = (nn.MultiheadAttention, nn.TransformerEncoderLayer)
    layers = {path: m for path, m in module.named_modules(remove_duplicate=False) if isinstance(m, kinds)}
    graph = getattr(exported, "graph", None)
    nodes = [n for n in graph.nodes if n.op == "call_function"] if graph is not None else []
    if not layers or not nodes or not any(n.meta.get("nn_module_stack") for n in nodes):
        return unrecorded(torch, module)
    params = dict(getattr(getattr(exported, "graph_signature", None), "inputs_to_parameters", {}) or {})
    known = {path for path, _m in module.named_modules(remove_duplicate=False)}
    groups: dict[tuple[str, str], list] = {}
    for n in nodes:
        for key, entry in (n.meta.get("nn_module_stack") or {}).items():
            path = entry[0] if isinstance(entry, tuple) else None
            path = path.removeprefix("L['self'].") if isinstance(path, str) else path
            if path not in known:   # (another spelling of the paths: a layer not found would pass as never called)
                return unrecorded(torch, module)
            if path in layers:
                groups.setdefault((path, key), []).append(n)
    unknown = {True: (("unknown",),) * 3, False: (("unknown",),)}
    out = []
    for (path, _key), members in groups.items():
        m = layers[path]
        mha = isinstance(m, nn.MultiheadAttention)
        if any(_op(n) in ("_native_multi_head_attention", "_transformer_encoder_layer_fwd") for n in members):
            out.append((m, unknown[mha], PROGRAM_FUSED))
            continue
        inside = set(members)
        own = {name for name, fqn in params.items() if fqn.startswith(path + ".") or not path}
        ext = {a: None for n in members for a in n.all_input_nodes
               if a not in inside and a.name not in own
               and isinstance(a.meta.get("val"), torch.Tensor)}
        vals = [a.meta["val"] for a in ext]
        if vals and all(v.dim() <= 2 for v in vals):
            continue   # (not batched: never fused)
        if mha:
            fqn = f"{path}.in_proj_weight" if path else "in_proj_weight"
            name = next((k for k, v in params.items() if v == fqn), None)
            weight = next((a for a in graph.nodes if a.op == "placeholder" and a.name == name), None)
            if weight is not None and any(_op(u) in _SPLITS for u in weight.users if u in inside):
                out.append((m, (("apart",),) * 3, ()))
                continue
            if weight is not None and sum(torch.is_floating_point(v) and v.dim() >= 2 for v in vals) > 1:
                continue   # (self-attention with a float mask besides its query: never fused; a lifted 0-d or
                # 1-d constant is no mask)
        out.append((m, unknown[mha], ()))
    return tuple(dict.fromkeys(out))


#: ``from_program``'s grad sources of a layer whose program holds torch's fused kernel (a strict export under
#: ``no_grad``): the program equals eager only where eager takes the fast path too, so a call is refused wherever it
#: may not (round 54: under grad mode with parameters that require grad it returned other numbers, no error)
PROGRAM_FUSED = "program_fused"

#: ``record``'s grad sources of a layer the export called with grad off in the export's own mode (compiled under
#: ``torch.no_grad()`` / ``torch.inference_mode()``): whether ``forward`` runs it with grad off whatever the caller's
#: mode cannot be told, so a call under grad mode that eager would run fused if it did is refused (round 53b: one
#: ``forward`` ran inside its own ``no_grad`` was let through, eager took the fast path, other numbers)
NO_GRAD_EXPORT = "no_grad_export"

#: what a recorded input reference resolves to where the call's inputs cannot say (not found, another shape)
UNKNOWN = object()


def _resolve(torch: Any, refs: tuple, leaves: list, aliased: bool = True) -> list:
    """The call's tensor for each of ``refs`` (``record``'s): the call's input for an input reference; the token
    for an intermediate one (eager computes one tensor for one token); ``UNKNOWN`` where the input is not found.
    ``aliased``: whether the call passes one tensor object twice, or one of the module's own (``_aliased``): an
    ``("apart",)`` reference is then ``UNKNOWN``, else a token of its own (another tensor than the others')."""
    out = []
    for r in refs:
        if r[0] == "unknown":
            out.append(UNKNOWN)
            continue
        if r[0] == "inner":
            out.append(("inner", r[1]))
            continue
        if r[0] == "apart":   # (``from_program``'s non-self call: other tensors where the call aliases none)
            out.append(UNKNOWN if aliased else ("apart", len(out)))   # (a token of its own, as ``inner``'s)
            continue
        i = len(leaves) - 1 - r[1]
        t = leaves[i] if 0 <= i < len(leaves) else None
        out.append(t if isinstance(t, torch.Tensor) and tuple(t.shape) == r[2] else UNKNOWN)
    return out


def _same(a: Any, b: Any) -> bool:
    """Whether eager's call would pass one tensor object for both: unknown ones may (the safe side: refused)."""
    if a is UNKNOWN or b is UNKNOWN:
        return True
    if isinstance(a, tuple) or isinstance(b, tuple):
        return a == b   # (two intermediates' tokens; an intermediate is never a call's input)
    return a is b


def _query_grad(torch: Any, root: Any, query: Any, grads: tuple | None, leaves: list) -> bool | None:
    """Whether eager's query requires grad in this call (None: the layer runs with grad off, ``sources``' None): an
    input's own flag; an intermediate's, whether any of its recorded grad sources (``sources``: parameters of
    ``root`` by name, inputs of the call) requires grad now, where the call runs under grad mode (round 53b: a frozen
    attention fed by a trainable ``nn.Linear`` was taken as fused and refused; eager runs it on the standard path).
    An unknown query, or a source not found, counts as not (the safe side: refused where eager may take the fast
    path)."""
    if grads is None:
        return None
    if query is UNKNOWN:
        return False
    if not isinstance(query, tuple):
        return bool(query.requires_grad)
    params = dict(root.named_parameters(remove_duplicate=False)) if any(g[0] == "param" for g in grads) else {}
    for g in grads:
        t = params.get(g[1]) if g[0] == "param" else _resolve(torch, (g,), leaves)[0]
        if isinstance(t, torch.Tensor) and t.requires_grad:
            return True
    return False


def _takes_fast_path(torch: Any, m: Any, inputs: list, query_grad: bool | None) -> bool:
    """Whether eager's call of ``m`` (whose export call's arguments allowed it; its query, key and value, or its
    source, the call's ``inputs``: ``_resolve``'s) takes the fast path in the current state: torch's conditions on
    the module, the inputs and the modes, as ``MultiheadAttention.forward`` / ``TransformerEncoderLayer.forward``
    check them (torch 2.x)."""
    nn = torch.nn
    if m.training or torch.is_autocast_enabled():
        return False
    layer = isinstance(m, nn.TransformerEncoderLayer)
    attn = m.self_attn if layer else m
    if not layer and not (_same(inputs[0], inputs[1]) and _same(inputs[1], inputs[2])):
        return False   # "non-self attention was used"
    if (attn.num_heads % 2 != 0 or not attn.batch_first or attn.in_proj_bias is None
            or not attn._qkv_same_embed_dim):
        return False
    if layer:
        if (not m.activation_relu_or_gelu or m.norm1.eps != m.norm2.eps
                or any(x._forward_hooks or x._forward_pre_hooks for x in m.modules())):
            return False
    elif attn.bias_k is not None or attn.bias_v is not None or attn.add_zero_attn:
        return False
    if torch.is_grad_enabled() and query_grad is not None:
        if query_grad:
            return False
        params = (attn.in_proj_weight, attn.in_proj_bias, attn.out_proj.weight, attn.out_proj.bias)
        if layer:
            params += (m.norm1.weight, m.norm1.bias, m.norm2.weight, m.norm2.bias, m.linear1.weight,
                       m.linear1.bias, m.linear2.weight, m.linear2.bias)
        if any(p is not None and p.requires_grad for p in params):
            return False
    return True


def _aliased(torch: Any, root: Any, leaves: list) -> bool:
    """Whether the call's tensors hold one object twice, or one of ``root``'s own parameters and buffers: where
    they do, eager's ``forward`` may pass one tensor as query, key and value where the export passed other ones."""
    seen = {id(t) for t in root.parameters()} | {id(t) for t in root.buffers()} if isinstance(root, torch.nn.Module) else set()
    for t in leaves:
        if isinstance(t, torch.Tensor):
            if id(t) in seen:
                return True
            seen.add(id(t))
    return False


def _may_require_grad(torch: Any, root: Any, leaves: list) -> bool:
    """Whether a query of the program's may require grad in this call: under grad mode, where a tensor it may be
    computed from does (a parameter or buffer of ``root``, a tensor of the call)."""
    if not torch.is_grad_enabled():
        return False
    own = list(root.parameters()) + list(root.buffers()) if isinstance(root, torch.nn.Module) else []
    return any(isinstance(t, torch.Tensor) and t.requires_grad for t in [*own, *leaves])


def _layer_words(torch: Any, root: Any, m: Any) -> tuple[str, str]:
    """(class name as torch's fused kernel knows it, the layer's path in ``root`` quoted) for a message."""
    path = next((name for name, x in root.named_modules(remove_duplicate=False) if x is m), None)
    kind = next(c.__name__ for c in type(m).__mro__ if c.__name__ in FUSED and c.__module__.startswith("torch.nn"))
    return kind, repr(path) if path else "(the compiled module itself)" if path == "" else "(of the module)"


def _program_fused(torch: Any, root: Any, m: Any, switch: bool) -> str:
    """The refusal of a call whose program holds torch's fused kernel for ``m`` where eager may run the standard
    path."""
    kind, where = _layer_words(torch, root, m)
    why = ("torch.backends.mha's fast path switch is off" if not switch else "the layer is in training mode"
           if m.training else "the call runs under grad mode with tensors that require grad"
           if torch.is_grad_enabled() else "the layer or the call is not one the fast path takes now")
    return (f"{kind} {where}: this program holds torch's fused fast path ({FUSED[kind]}, a strict export under "
            f"torch.no_grad() traces it) and {why}, where eager may run the standard path, which rounds otherwise: "
            "the results would differ from eager's; call under torch.no_grad() with the fast path switch on, or "
            "compile a program exported under grad mode (or without strict=True)")


def fused_layer(torch: Any, root: Any, calls: tuple, leaves: list) -> str | None:
    """The refusal of a call (of the pytree ``leaves`` of its arguments, in the export's order) where eager takes the fused fast path of
    one of ``calls`` (``record``'s), naming the first layer by its path in ``root``; None where none does (or
    ``torch.backends.mha``'s switch is off: eager then takes none either). The layer's query, key and value are the
    call's inputs where the export passed it inputs (``m(x, x, x)`` compiled from three tensors, or the reverse:
    eager's fast path iff the call's are one tensor), else the export's intermediates."""
    if not calls:
        return None
    switch = torch.backends.mha.get_fastpath_enabled()
    aliased = _aliased(torch, root, leaves) if any(r == ("apart",) for _m, refs, _g in calls for r in refs) else True
    for m, refs, grads in calls:
        inputs = _resolve(torch, refs, leaves, aliased)
        if grads == PROGRAM_FUSED:
            # the program runs torch's fused kernel: refused wherever eager may not (the switch off, the layer's
            # state, or grad mode where the query or a parameter may require grad)
            if not (switch and _takes_fast_path(torch, m, inputs, _may_require_grad(torch, root, leaves))):
                return _program_fused(torch, root, m, switch)
            continue
        if not switch:
            continue
        unsure = grads == NO_GRAD_EXPORT
        fast = _takes_fast_path(torch, m, inputs, _query_grad(torch, root, inputs[0], () if unsure else grads, leaves))
        unsure = unsure and not fast and torch.is_grad_enabled() and _takes_fast_path(torch, m, inputs, None)
        if fast or unsure:
            path = next((name for name, x in root.named_modules(remove_duplicate=False) if x is m), None)
            kind = next(c.__name__ for c in type(m).__mro__ if c.__name__ in FUSED
                        and c.__module__.startswith("torch.nn"))
            mode = ("torch.inference_mode()" if torch.is_inference_mode_enabled() else "torch.no_grad()"
                    if not torch.is_grad_enabled() else "parameters that require no grad")
            where = repr(path) if path else "(the compiled module itself)" if path == "" else "(of the module)"
            if unsure:
                return (f"{kind} {where} is in eval mode and this program was compiled with grad off, from which it "
                        "cannot be told whether forward runs the layer with grad off itself (a torch.no_grad() block "
                        f"of its own): eager then takes torch's fused fast path ({FUSED[kind]}) even in this call "
                        "under grad mode, which rounds otherwise than the exported standard path; compile under grad "
                        "mode to call under grad mode, or call with torch.backends.mha.set_fastpath_enabled(False)")
            return (f"{kind} {where} is in eval mode and this call runs under {mode}, where "
                    f"eager takes torch's fused fast path ({FUSED[kind]}), which rounds otherwise than the exported "
                    "standard path: the results would differ from eager's; for eager's numbers of the standard path "
                    "call with torch.backends.mha.set_fastpath_enabled(False) (as eager then does), or under grad "
                    "mode with parameters that require grad")
    return None
