"""Tensor subclasses passed to a compiled module: which ones the program computes for, and the class of its results.

Why: eager runs ``forward``'s ops through a subclass's ``__torch_function__`` (and calls the Python methods it
overrides, ``__mul__``), the program runs ATen's kernels on its data alone. A subclass that changes nothing (none of
those, or a ``__torch_function__`` that only passes each call on: ``return super().__torch_function__(func, types,
args, kwargs)``, torchvision-style wrappers written so) computes the plain program's values, and torch's own
``Tensor.__torch_function__`` returns each op's tensor result as the subclass: the compiled call gives those outputs
that class too (round 43: a plain ``torch.Tensor`` where eager's was the subclass; a pass-through
``__torch_function__`` was refused since round 42, and a subclass overriding ``__mul__`` alone taken, silently wrong).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .errors import AtenExecutorError
from .program import Program

#: names a subclass may define that no op of ``forward`` reaches: construction, copying, pickling, printing
_INERT = frozenset({
    "__module__", "__doc__", "__qualname__", "__dict__", "__weakref__", "__slots__", "__annotations__",
    "__orig_bases__", "__parameters__", "__firstlineno__", "__static_attributes__", "__init_subclass__",
    "__class_getitem__", "__new__", "__init__", "__repr__", "__str__", "__format__", "__deepcopy__", "__reduce__",
    "__reduce_ex__", "__getstate__", "__setstate__", "__hash__", "__torch_function__", "__torch_dispatch__",
    "__slotnames__",   # (copyreg's cache of slot names, set on the class by the first copy or pickle of one)
})

_PASS_THROUGH_SOURCES = (
    "return super().__torch_function__(func, types, args, kwargs)",
    "return super().__torch_function__(func, types, args, kwargs or {})",
    "if kwargs is None:\n            kwargs = {}\n        return super().__torch_function__(func, types, args, kwargs)",
)
_templates: list[Any] = []


def _pass_through_codes(torch: Any) -> list[Any]:
    """The code objects of the pass-through ``__torch_function__`` forms, compiled here by this interpreter (so
    their bytecode is what the caller's compiler made of the same source)."""
    if not _templates:
        for body in _PASS_THROUGH_SOURCES:
            source = ("class _T(torch.Tensor):\n    @classmethod\n    def __torch_function__(cls, func, types, "
                      f"args=(), kwargs=None):\n        {body}\n")
            space: dict = {"torch": torch}
            # (``dont_inherit``: not this module's ``from __future__ import annotations``, a flag of every code object
            # compiled here, which ``_same_code`` leaves out anyway)
            exec(compile(source, "<memplan pass-through template>", "exec", dont_inherit=True), space)  # noqa: S102
            _templates.append(vars(space["_T"])["__torch_function__"].__func__.__code__)
    return _templates


#: the code flags of what a function is (optimized, varargs, generator...); the bits above are the ``from __future__``
#: imports of the module it was compiled in, which change nothing the pass-through forms run
_CODE_FLAGS = 0xFFFF


def _same_code(a: Any, b: Any) -> bool:
    """Whether two code objects run the same instructions on the same names and constants (argument names, line
    numbers and their modules' ``__future__`` imports aside). Why the last: the templates were compiled under this
    module's ``from __future__ import annotations`` (``co_flags`` 0x1000003), so a pass-through subclass defined in a
    module without it (most user code: 0x3) was refused as doing "more than pass each call on"."""
    return (a.co_code == b.co_code and a.co_names == b.co_names and a.co_consts == b.co_consts
            and a.co_argcount == b.co_argcount and a.co_kwonlyargcount == b.co_kwonlyargcount
            and a.co_posonlyargcount == b.co_posonlyargcount and a.co_freevars == b.co_freevars
            and a.co_cellvars == b.co_cellvars and a.co_flags & _CODE_FLAGS == b.co_flags & _CODE_FLAGS)


def _pass_through(torch: Any, owner: type, value: Any) -> bool:
    """Whether ``value``, ``owner``'s own ``__torch_function__``, is a classmethod whose code is one of the
    pass-through forms, its ``super()`` bound to ``owner`` (the next class's is checked on its own)."""
    if not isinstance(value, classmethod):
        return False
    fn = value.__func__
    code = getattr(fn, "__code__", None)
    if code is None or fn.__closure__ is None or len(fn.__closure__) != 1:
        return False
    try:
        bound = fn.__closure__[0].cell_contents
    except ValueError:
        return False
    return bound is owner and any(_same_code(code, t) for t in _pass_through_codes(torch))


def difference(torch: Any, cls: type) -> str | None:
    """Why tensor subclass ``cls`` may make eager compute otherwise than the program (None: it cannot). Each class of
    its MRO before ``torch.Tensor`` is read: a ``__torch_dispatch__`` of its own, a ``__torch_function__`` that is
    neither torch's disabled one (``nn.Parameter``, ``nn.Buffer``) nor a pass-through form, or any other attribute
    of ``torch.Tensor`` it defines anew (``__mul__``, ``add``, ``shape``: ``forward``'s Python calls them)."""
    base = torch.Tensor
    mro = cls.__mro__
    for owner in mro[:mro.index(base)] if base in mro else mro:
        for name, value in vars(owner).items():
            if name == "__torch_dispatch__":
                return f"with a __torch_function__ or __torch_dispatch__ of its own ({owner.__name__}.__torch_dispatch__)"
            if name == "__torch_function__":
                if value is torch._C._disabled_torch_function_impl or _pass_through(torch, owner, value):
                    continue
                return (f"with a __torch_function__ or __torch_dispatch__ of its own ({owner.__name__}."
                        "__torch_function__ does more than pass each call on, as `return super().__torch_function__("
                        "func, types, args, kwargs)` alone does)")
            if name not in _INERT and hasattr(base, name):
                return f"that overrides torch.Tensor.{name} ({owner.__name__}.{name}), which forward's Python calls"
    return None


def converts(torch: Any, cls: type) -> bool:
    """Whether eager's ops return their tensor results as ``cls`` (torch's ``Tensor.__torch_function__`` does, for a
    subclass that changes nothing); not where the first ``__torch_function__`` of its MRO is torch's disabled one
    (``nn.Parameter``: plain tensors)."""
    for owner in cls.__mro__:
        value = vars(owner).get("__torch_function__")
        if value is not None:
            return value is not torch._C._disabled_torch_function_impl and owner is not torch._C.TensorBase
    return False


def check_input(torch: Any, tid: str, x: Any) -> None:
    """Refuse a caller's input of a subclass that may compute otherwise than the program, naming it and why."""
    why = difference(torch, type(x))
    if why is not None:
        raise AtenExecutorError(f"input {tid!r} is a {type(x).__name__}, a tensor subclass {why}: eager runs forward's "
                                "ops through it, the program runs ATen's kernels on its data alone (pass a plain "
                                "tensor, x.as_subclass(torch.Tensor), where that is what eager would compute)")


def output_reach(torch: Any, program: Program) -> tuple[frozenset[int], ...]:
    """Per user output (``program.user_outputs``' order), the ``user_inputs`` indices whose tensor reaches it through
    the export's ops (tensor values only: a number read from one, ``x.sum().item()``, starts plain tensors, as in eager,
    where torch's ``Tensor.__torch_function__`` converts the tensor results of ops given a subclass)."""
    from torch.export.graph_signature import OutputKind

    ep = program.exported
    index = {tid: k for k, (_pos, tid) in enumerate(program.user_inputs)}
    reach: dict[Any, frozenset[int]] = {}
    out_node = None
    for n in ep.graph.nodes:
        if n.op == "placeholder":
            reach[n] = frozenset({index[n.name]}) if n.name in index else frozenset()
        elif n.op == "output":
            out_node = n
        elif n.op == "call_function" and _holds_tensor(torch, n.meta.get("val")):
            reach[n] = frozenset().union(*(reach.get(a, frozenset()) for a in n.all_input_nodes))
    if out_node is None:
        return tuple(frozenset() for _ in program.user_outputs)
    flat = list(out_node.args[0]) if isinstance(out_node.args[0], (list, tuple)) else [out_node.args[0]]
    user = [a for s, a in zip(ep.graph_signature.output_specs, flat) if s.kind == OutputKind.USER_OUTPUT]
    return tuple(reach.get(user[i], frozenset()) if i < len(user) else frozenset()
                 for i in range(len(program.user_outputs)))


def _holds_tensor(torch: Any, val: Any) -> bool:
    if isinstance(val, torch.Tensor):
        return True
    return isinstance(val, (list, tuple)) and any(isinstance(v, torch.Tensor) for v in val)


def as_eager_classes(torch: Any, flat: list, reach: Sequence[frozenset[int]], tensors: Sequence[Any],
                     program: Program) -> list:
    """``flat`` with each tensor output that a subclass input reaches (``output_reach``) as that subclass, as eager's
    ops return it (one that already is, the caller's tensor or a view of it, left as it is). Where inputs of two
    subclasses reach one output, the one deriving from the other is eager's; two unrelated ones are an error, as
    eager's op raises torch's TypeError ("no implementation found")."""
    classes = {k: type(x) for k, x in enumerate(tensors) if type(x) is not torch.Tensor and converts(torch, type(x))}
    if not classes:
        return flat
    out = list(flat)
    made: dict[int, Any] = {}   # (one tensor returned twice, ``return y, y``: one object twice, as eager's)
    for i, t in enumerate(flat):
        found = {classes[k] for k in reach[i] if k in classes} if i < len(reach) else set()
        if not found or not isinstance(t, torch.Tensor):
            continue
        if id(t) in made:
            out[i] = made[id(t)]
            continue
        top = next((c for c in found if all(issubclass(c, o) for o in found)), None)
        if top is None:
            names = ", ".join(sorted(c.__name__ for c in found))
            raise AtenExecutorError(f"output {i} is computed from inputs of unrelated tensor subclasses ({names}): "
                                    "eager's ops refuse such a mix (no __torch_function__ takes both)")
        out[i] = made[id(t)] = t if isinstance(t, top) else t.as_subclass(top)
    return out
