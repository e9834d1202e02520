"""Random ops over a user input laid out otherwise than at export: where eager's draws would land elsewhere.

Why: the executor copies each caller's input into its arena slot, laid out as at export, and runs the program there.
For most ops that gives eager's values whatever the caller's layout, but a random op draws its numbers in the memory
order of its result, and eager lays that result out like its input (``torch.rand_like(x)``, a train-mode
``dropout``'s mask, ``empty_like(x).normal_()``): a transposed or channels-last ``x`` gets the same numbers in other
elements, so under one seed the compiled call's values differed from eager's, silently (round 46). Which random
results take the caller's layout is learned by running the export's graph on fake tensors with the caller's layouts
(once per set of layouts); one whose layout differs from the export's is refused naming the input and the node (the
program cannot draw in another order). A random op whose result does not follow its input (``bernoulli(p)``,
``multinomial``, ``torch.rand(shape)``) runs as before.
"""

from __future__ import annotations

from typing import Any

from .errors import AtenExecutorError
from .program import Program


def random_nodes(torch: Any, program: Program) -> dict[int, tuple[str, ...]]:
    """{user input index: the random nodes (``nondeterministic_seeded`` ops) whose arguments its values reach}, in
    graph order; inputs reaching none left out."""
    graph = program.exported.graph
    index = {tid: k for k, (_pos, tid) in enumerate(program.user_inputs)}
    reach: dict[str, frozenset[int]] = {}
    out: dict[int, list[str]] = {}
    for n in graph.nodes:
        if n.op == "placeholder":
            reach[n.name] = frozenset((index[n.name],)) if n.name in index else frozenset()
            continue
        args: list = []
        torch.fx.node.map_arg((n.args, n.kwargs), args.append)
        found = {k for a in args for k in reach.get(a.name, ())}
        reach[n.name] = frozenset(found)
        if n.op == "call_function" and _draws(torch, n):
            for k in sorted(found):
                out.setdefault(k, []).append(n.name)
    return {k: tuple(v) for k, v in out.items()}


def _draws(torch: Any, n: Any) -> bool:
    """Whether call ``n`` draws random numbers: an op tagged ``nondeterministic_seeded`` but one given
    ``train=False`` (an eval-mode ``dropout`` returns its input: every eval model holds some)."""
    if torch.Tag.nondeterministic_seeded not in getattr(n.target, "tags", ()):
        return False
    schema = getattr(n.target, "_schema", None)
    for i, a in enumerate(schema.arguments if schema is not None else ()):
        if a.name == "train":
            return (n.args[i] if i < len(n.args) else n.kwargs.get("train", a.default_value)) is not False
    return True


def _free(shape: tuple, a: tuple, b: tuple) -> bool:
    """Whether strides ``a`` and ``b`` agree in every dimension of more than one element."""
    return all(n <= 1 or x == y for n, x, y in zip(shape, a, b))


def relaid_random_results(torch: Any, program: Program, layouts: dict[int, tuple[tuple[int, ...], int]],
                          names: set[str]) -> dict[str, tuple[tuple[int, ...], tuple[int, ...]]]:
    """{node name: (its export strides, its strides under ``layouts``)} of each random node among ``names`` whose
    result eager lays out otherwise given the user inputs ``layouts`` ({input index: (strides, storage offset)}):
    the export's graph run on fake tensors. Raises ``RuntimeError`` (or another torch error) where the graph cannot
    run so: the caller refuses then."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    ep = program.exported
    by_name = {tid: k for k, (_pos, tid) in enumerate(program.user_inputs)}
    mode = FakeTensorMode(allow_non_fake_inputs=True)
    args = []
    with mode:   # (each on its export device: a ``torch.rand(..., device=...)`` beside it must meet it there)
        for n in ep.graph.nodes:
            if n.op != "placeholder":
                continue
            val = n.meta.get("val")
            if not isinstance(val, torch.Tensor):
                args.append(val)
                continue
            stride, offset = (layouts[by_name[n.name]] if n.name in by_name and by_name[n.name] in layouts
                              else (tuple(val.stride()), int(val.storage_offset())))
            need = offset + (sum((s - 1) * st for s, st in zip(val.shape, stride)) + 1 if all(val.shape) else 0)
            args.append(torch.empty(max(need, 1), dtype=val.dtype, device=val.device)
                        .as_strided(tuple(val.shape), stride, offset).requires_grad_(val.requires_grad))
    seen: dict[str, Any] = {}

    class _Watch(torch.fx.Interpreter):
        def run_node(self, n: Any) -> Any:
            value = super().run_node(n)
            if n.name in names:
                seen[n.name] = value
            return value

    with mode:
        _Watch(ep.graph_module).run(*args)
    out: dict[str, tuple] = {}
    for n in ep.graph.nodes:
        if n.name not in names:
            continue
        old, new = n.meta.get("val"), seen.get(n.name)
        olds = old if isinstance(old, (tuple, list)) else (old,)
        news = new if isinstance(new, (tuple, list)) else (new,)
        for a, b in zip(olds, news):
            if (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
                    and not _free(tuple(a.shape), tuple(a.stride()), tuple(b.stride()))):
                out[n.name] = (tuple(a.stride()), tuple(b.stride()))
                break
    return out


class RandomLayoutCheck:
    """Per call: refuse inputs laid out so that a random op's result would take another layout than at export
    (``check``); each set of layouts answered once."""

    def __init__(self, torch: Any, program: Program, export_layouts: tuple) -> None:
        self.torch, self.program, self.export_layouts = torch, program, export_layouts
        self.reaching = random_nodes(torch, program)
        self._answers: dict[tuple, str | None] = {}

    def check(self, tensors: list) -> None:
        """Raise ``AtenExecutorError`` naming the input and the node where a random op over an input laid out otherwise
        than at export would draw in another order than eager's."""
        if not self.reaching:
            return
        relaid = {}
        for k in self.reaching:
            x, (strides, _offset) = tensors[k], self.export_layouts[k]
            if x.numel() > 1 and not _free(tuple(x.shape), tuple(x.stride()), strides):
                relaid[k] = (tuple(x.stride()), int(x.storage_offset()))
        if not relaid:
            return
        key = tuple(sorted(relaid.items()))
        if key not in self._answers:
            if len(self._answers) >= 64:   # (bounded: a caller cycling layouts pays the fake run again)
                self._answers.pop(next(iter(self._answers)))
            self._answers[key] = self._answer(relaid)
        if self._answers[key] is not None:
            raise AtenExecutorError(self._answers[key])

    def _answer(self, relaid: dict[int, tuple]) -> str | None:
        names = {n for k in relaid for n in self.reaching[k]}
        tids = ", ".join(repr(self.program.user_inputs[k][1]) for k in sorted(relaid))
        try:
            moved = relaid_random_results(self.torch, self.program, relaid, names)
        except Exception as exc:  # noqa: BLE001 (any torch error: the layouts cannot be told, refused)
            node = next(n for k in sorted(relaid) for n in self.reaching[k])
            return (f"input {tids} is laid out otherwise than at export, it reaches the random node {node!r}, and its "
                    f"layout there cannot be told ({type(exc).__name__}): eager's draws may land in other elements; "
                    "pass tensors laid out as at export")
        for n in self.program.exported.graph.nodes:
            if n.name in moved:
                old, new = moved[n.name]
                return (f"input {tids} is laid out otherwise than at export, and the random node {n.name!r} "
                        f"({n.target}) reached from it would give its result strides {new} in eager, {old} in the "
                        "program: eager draws its numbers in that memory order, so they would land in other elements "
                        "than the program's; pass tensors laid out as at export")
        return None
