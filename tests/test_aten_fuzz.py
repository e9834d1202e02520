"""Property-based fuzzing of the ATen executor on the CPU: random small torch programs equal eager bit for bit.

Why: the hand-written models of ``test_aten.py`` cover the lowerings someone thought of; the bugs live in the
combinations nobody wrote down (an in-place write through a transposed slice of a cast intermediate, a view of
an input returned beside a reduction...). Each example is an ``nn.Module`` whose ``forward`` replays 3-12 random
steps drawn from a menu of views, in-place ops on intermediates (and on views of them), elementwise ops with
broadcasting, reductions, ``cat``/``stack``/``split``, ``matmul``/``linear``, ``where``, ``index_select``/``gather``,
copies and dtype casts. It is exported, compiled with ``streams=1`` and ``streams=3`` and a poisoned arena, and
called twice with fresh inputs; every output must equal eager's (dtype, shape, every element; NaN where eager
has NaN) and the caller's inputs must be left as eager leaves them.

Steps are drawn while running them eagerly on the example inputs, so a step eager itself refuses (shapes that
do not broadcast, an in-place write into an expanded view) is dropped at draw time rather than wasting an
example. Programs ``torch.export`` rejects are skipped; an executor refusal (``AtenExecutorError`` or
``GraphError``) passes only if it names a node (``REFUSALS`` collects them; run with ``-s`` to see them).

``MEMPLAN_FUZZ_EXAMPLES=300 python -m pytest tests/test_aten_fuzz.py -s`` runs a longer campaign.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, assume, event, given, note, settings
from hypothesis import strategies as st
from needs import need

torch = need("torch")

from memplan.errors import GraphError  # noqa: E402
from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402

EXAMPLES = int(os.environ.get("MEMPLAN_FUZZ_EXAMPLES", "6"))
REFUSALS: Counter = Counter()

FLOATS = (torch.float32, torch.float64)
CASTS = {"f32": torch.float32, "f64": torch.float64, "i64": torch.int64, "bool": torch.bool}
UNARY = {
    "neg": torch.neg, "abs": torch.abs, "exp": torch.exp, "sin": torch.sin, "relu": torch.relu,
    "sigmoid": torch.sigmoid, "tanh": torch.tanh, "sqrt": torch.sqrt, "log": torch.log,
    "reciprocal": torch.reciprocal, "floor": torch.floor, "scale": lambda t: t * 2.5, "shift": lambda t: t + 1,
}
BINARY = {
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div, "maximum": torch.maximum,
    "minimum": torch.minimum,
}


def _weight(out_f: int, in_f: int, seed: int) -> torch.Tensor:
    """A linear weight made from its step's parameters, so the eager draw and the module share it."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(out_f, in_f, generator=g)


def apply_step(env: list, step: tuple, weights: dict) -> None:
    """Run one step on the value pool ``env`` (list of tensors): append its result, or write in place.

    The one interpreter both the drawing (eager, on the example inputs) and ``Fuzzed.forward`` (traced by
    ``torch.export``) run, so the module replays exactly the steps that worked eagerly."""
    kind, a, *p = step
    t = env[a]
    if kind == "unary":
        env.append(UNARY[p[0]](t))
    elif kind == "binary":
        env.append(BINARY[p[0]](t, env[p[1]]))
    elif kind == "binary_reduced":   # broadcasting against a keepdim reduction of another value
        env.append(BINARY[p[0]](t, env[p[1]].sum(p[2], keepdim=True)))
    elif kind == "view_flat":
        env.append(t.view(-1))
    elif kind == "view_split":
        env.append(t.view(p[0], -1))
    elif kind == "reshape":
        env.append(t.reshape(p[0], -1))
    elif kind == "transpose":
        env.append(t.transpose(p[0], p[1]))
    elif kind == "permute":
        env.append(t.permute(*p[0]))
    elif kind == "slice":
        dim, start, end, stride = p
        env.append(t.narrow(dim, start, end - start)[(slice(None),) * dim + (slice(None, None, stride),)])
    elif kind == "select":
        env.append(t.select(p[0], p[1]))
    elif kind == "expand":
        env.append(t.unsqueeze(0).expand(p[0], *t.shape))
    elif kind == "unsqueeze":
        env.append(t.unsqueeze(p[0]))
    elif kind == "add_":
        t.add_(env[p[0]]) if p[0] is not None else t.add_(1.5)
    elif kind == "unary_":
        getattr(t, p[0])()
    elif kind == "fill_":
        t.fill_(p[0])
    elif kind == "div_":
        t.div_(env[p[0]])
    elif kind == "meta_":   # in-place metadata ops: the value itself changes shape/strides
        if p[0] == "transpose_":
            t.transpose_(p[1], p[2])
        elif p[0] == "unsqueeze_":
            t.unsqueeze_(p[1])
        else:
            t.squeeze_(p[1])
    elif kind == "select_copy_":
        t.select(p[0], p[1]).copy_(env[p[2]].reshape(-1)[:1].reshape(()))
    elif kind == "diagonal":
        env.append(t.diagonal(0, p[0], p[1]))
    elif kind == "flip":
        env.append(t.flip(p[0]))
    elif kind == "squeeze":
        env.append(t.squeeze(p[0]))
    elif kind == "as_strided":
        env.append(t.as_strided(p[0], p[1], p[2]))
    elif kind == "channels_last":
        env.append(t.contiguous(memory_format=torch.channels_last))
    elif kind == "mul_":
        t.mul_(p[0])
    elif kind == "clamp_":
        t.clamp_(p[0], p[1])
    elif kind == "copy_slice_":
        dim, start, length, src = p
        win = t.narrow(dim, start, length)
        u = env[src]
        win.copy_(u.reshape(-1)[: win.numel()].view(win.shape) if u.numel() >= win.numel() else u.sum())
    elif kind == "masked_fill_":
        t.masked_fill_(env[p[0]] > 0, p[1])
    elif kind == "index_put_":
        idx = torch.tensor(p[0])
        t.index_put_((idx,), env[p[1]].sum().to(t.dtype), accumulate=p[2])
    elif kind == "cat":
        env.append(torch.cat([t, env[p[1]]], p[0]))
    elif kind == "stack":
        env.append(torch.stack([t, env[p[1]]], p[0]))
    elif kind == "split":
        env.append(t.split(p[0], p[1])[p[2]])
    elif kind == "matmul":
        env.append(t @ env[p[0]])
    elif kind == "matmul_t":
        env.append(t @ t.transpose(-1, -2))
    elif kind == "linear":
        env.append(torch.nn.functional.linear(t, weights[p[0]]))
    elif kind == "reduce":
        env.append(getattr(t, p[0])(p[1], keepdim=p[2]))
    elif kind == "softmax":
        env.append(torch.softmax(t, p[0]))
    elif kind == "where":
        env.append(torch.where(t > 0, t, env[p[0]]))
    elif kind == "index_select":
        env.append(torch.index_select(t, p[0], torch.tensor(p[1])))
    elif kind == "gather":
        env.append(torch.gather(t, p[0], torch.tensor(p[1]).reshape(p[2])))
    elif kind == "contiguous":
        env.append(t.contiguous())
    elif kind == "clone":
        env.append(t.clone())
    elif kind == "cast":
        env.append(t.to(CASTS[p[0]]))
    else:  # pragma: no cover - a typo in the menu
        raise AssertionError(kind)


class Fuzzed(torch.nn.Module):
    """``forward`` replays ``steps`` over its inputs and returns the values ``outputs`` names (with the
    last view named in ``out_views`` applied: a view of an intermediate or of an input)."""

    def __init__(self, n_inputs: int, steps: list, outputs: list, linears: dict):
        super().__init__()
        self.n_inputs, self.steps, self.outputs = n_inputs, steps, outputs
        self.ws = torch.nn.ParameterDict({str(k): torch.nn.Parameter(_weight(*v)) for k, v in linears.items()})

    def forward(self, *xs):
        env = list(xs)
        weights = {int(k): w for k, w in self.ws.items()}
        for step in self.steps:
            apply_step(env, step, weights)
        outs = []
        for i, view in self.outputs:
            o = env[i]
            if view == "t" and o.dim() >= 2:
                o = o.transpose(0, 1)
            elif view == "row" and o.dim() >= 1 and o.shape[0] > 1:
                o = o[1:]
            elif view == "expand":
                o = o.unsqueeze(0).expand(2, *o.shape)
            elif view == "flat":
                o = o.reshape(-1)
            outs.append(o)
        return tuple(outs)


def _draw_step(draw, env: list, roots: list, linears: dict) -> tuple | None:
    """One step's parameters, chosen from the shapes of the pool's current values (None: nothing fits)."""
    n = len(env)
    a = draw(st.integers(0, n - 1))
    t = env[a]
    nd, shape = t.dim(), tuple(t.shape)
    other = draw(st.integers(0, n - 1))
    kind = draw(st.sampled_from([
        "unary", "binary", "binary_reduced", "view_flat", "view_split", "reshape", "transpose", "permute",
        "slice", "select", "expand", "unsqueeze", "add_", "mul_", "clamp_", "copy_slice_", "masked_fill_",
        "index_put_", "cat", "stack", "split", "matmul", "matmul_t", "linear", "reduce", "softmax", "where",
        "index_select", "gather", "contiguous", "clone", "cast", "unary_", "fill_", "div_", "meta_",
        "select_copy_", "diagonal", "flip", "squeeze", "as_strided", "channels_last"]))
    if kind in ("add_", "mul_", "clamp_", "copy_slice_", "masked_fill_", "index_put_", "unary_", "fill_", "div_",
                "meta_", "select_copy_") and roots[a] == "input" and (kind == "meta_" or not draw(st.booleans())):
        # writes mostly go to intermediates and views of them; sometimes to the caller's inputs. Never a
        # metadata write (``x.transpose_``) to an input: torch.export fails on it, or (zero-size inputs)
        # exports a program that leaves the caller's tensor as it was
        return None
    if kind == "unary":
        return (kind, a, draw(st.sampled_from(sorted(UNARY))))
    if kind == "binary":
        return (kind, a, draw(st.sampled_from(sorted(BINARY))), other)
    if kind == "binary_reduced":
        o = env[other]
        if o.dim() == 0:
            return None
        return (kind, a, draw(st.sampled_from(sorted(BINARY))), other, draw(st.integers(0, o.dim() - 1)))
    if kind == "view_flat":
        return (kind, a)
    if kind in ("view_split", "reshape"):
        divs = [d for d in range(1, t.numel() + 1) if t.numel() % d == 0] or [1]
        return (kind, a, draw(st.sampled_from(divs)))
    if nd == 0 and kind in ("transpose", "permute", "slice", "select", "split", "reduce", "softmax",
                            "index_select", "gather", "copy_slice_", "index_put_", "cat", "stack", "matmul_t"):
        return None
    if kind == "transpose":
        return (kind, a, draw(st.integers(0, nd - 1)), draw(st.integers(0, nd - 1)))
    if kind == "permute":
        return (kind, a, tuple(draw(st.permutations(range(nd)))))
    if kind == "slice":
        dim = draw(st.integers(0, nd - 1))
        if shape[dim] == 0:
            return None
        start = draw(st.integers(0, shape[dim] - 1))
        end = draw(st.integers(start + 1, shape[dim]))
        return (kind, a, dim, start, end, draw(st.integers(1, 2)))
    if kind == "select":
        dim = draw(st.integers(0, nd - 1))
        return (kind, a, dim, draw(st.integers(0, max(shape[dim] - 1, 0))))
    if kind == "expand":
        return (kind, a, draw(st.integers(1, 3)))
    if kind == "unsqueeze":
        return (kind, a, draw(st.integers(0, nd)))
    if kind == "add_":
        return (kind, a, draw(st.sampled_from([None, other])))
    if kind == "unary_":
        return (kind, a, draw(st.sampled_from(["relu_", "sigmoid_", "neg_", "exp_", "zero_", "abs_"])))
    if kind == "fill_":
        return (kind, a, draw(st.sampled_from([0.0, 2.5, -1.0])))
    if kind == "div_":
        return (kind, a, other)
    if kind == "meta_":
        op = draw(st.sampled_from(["transpose_", "unsqueeze_", "squeeze_"]))
        if op == "unsqueeze_":
            return (kind, a, op, draw(st.integers(0, nd)))
        if nd == 0:
            return None
        return (kind, a, op, draw(st.integers(0, nd - 1)), draw(st.integers(0, nd - 1)))
    if kind in ("select_copy_", "diagonal", "flip", "squeeze") and nd == 0:
        return None
    if kind == "select_copy_":
        dim = draw(st.integers(0, nd - 1))
        return (kind, a, dim, draw(st.integers(0, max(shape[dim] - 1, 0))), other)
    if kind == "diagonal":
        if nd < 2:
            return None
        d0, d1 = draw(st.permutations(range(nd)))[:2]
        return (kind, a, d0, d1)
    if kind == "flip":
        return (kind, a, tuple(sorted(set(draw(st.lists(st.integers(0, nd - 1), min_size=1, max_size=2))))))
    if kind == "squeeze":
        return (kind, a, draw(st.integers(0, nd - 1)))
    if kind == "as_strided":
        if not t.is_contiguous() or t._base is not None or t.numel() < 2:
            return None
        size = (draw(st.integers(1, 3)), draw(st.integers(1, 2)))
        stride = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
        off = draw(st.integers(0, 1))
        if off + (size[0] - 1) * stride[0] + (size[1] - 1) * stride[1] >= t.numel():
            return None
        return (kind, a, size, stride, off)
    if kind == "channels_last":
        return (kind, a) if nd == 4 else None
    if kind == "mul_":
        return (kind, a, draw(st.sampled_from([0.5, -2.0, 3.0])))
    if kind == "clamp_":
        return (kind, a, draw(st.sampled_from([-1.0, -0.25, None])), draw(st.sampled_from([0.5, 2.0])))
    if kind == "copy_slice_":
        dim = draw(st.integers(0, nd - 1))
        if shape[dim] == 0:
            return None
        start = draw(st.integers(0, shape[dim] - 1))
        return (kind, a, dim, start, draw(st.integers(1, shape[dim] - start)), other)
    if kind == "masked_fill_":
        return (kind, a, draw(st.sampled_from([a, other])), draw(st.sampled_from([0.0, -7.5, float("nan")])))
    if kind == "index_put_":
        if shape[0] == 0:
            return None
        idx = draw(st.lists(st.integers(0, shape[0] - 1), min_size=1, max_size=3))
        return (kind, a, idx, other, draw(st.booleans()))
    if kind in ("cat", "stack"):
        hi = nd - 1 if kind == "cat" else nd
        return (kind, a, draw(st.integers(0, hi)), draw(st.sampled_from([a, other])))
    if kind == "split":
        dim = draw(st.integers(0, nd - 1))
        size = draw(st.integers(1, max(shape[dim], 1)))
        pieces = -(-shape[dim] // size)
        return (kind, a, size, dim, draw(st.integers(0, max(pieces - 1, 0))))
    if kind == "matmul":
        return (kind, a, other)
    if kind == "matmul_t":
        return (kind, a) if nd >= 2 else None
    if kind == "linear":
        if nd == 0:
            return None
        k = len(linears)
        linears[k] = (draw(st.integers(1, 5)), shape[-1], draw(st.integers(0, 1000)))
        return (kind, a, k)
    if kind == "reduce":
        return (kind, a, draw(st.sampled_from(["sum", "mean", "amax"])), draw(st.integers(0, nd - 1)),
                draw(st.booleans()))
    if kind == "softmax":
        return (kind, a, draw(st.integers(0, nd - 1)))
    if kind == "where":
        return (kind, a, other)
    if kind == "index_select":
        dim = draw(st.integers(0, nd - 1))
        if shape[dim] == 0:
            return None
        return (kind, a, dim, draw(st.lists(st.integers(0, shape[dim] - 1), min_size=1, max_size=4)))
    if kind == "gather":
        dim = draw(st.integers(0, nd - 1))
        if shape[dim] == 0:
            return None
        ishape = list(shape)
        ishape[dim] = draw(st.integers(1, 3))
        numel = 1
        for s in ishape:
            numel *= s
        return (kind, a, dim, draw(st.lists(st.integers(0, shape[dim] - 1), min_size=numel, max_size=numel)),
                tuple(ishape))
    if kind in ("contiguous", "clone"):
        return (kind, a)
    return ("cast", a, draw(st.sampled_from(sorted(CASTS))))


def _aliases_input(t: torch.Tensor, inputs: tuple) -> bool:
    base = t._base if t._base is not None else t
    return any(base.untyped_storage().data_ptr() == x.untyped_storage().data_ptr() for x in inputs)


@st.composite
def programs(draw):
    """(module, input shapes, steps) of a random program that runs eagerly on its example inputs."""
    n_inputs = draw(st.integers(1, 2))
    sizes = st.integers(1, 5) | st.just(0) if draw(st.integers(0, 9)) == 0 else st.integers(1, 5)
    shapes = [tuple(draw(st.lists(sizes, min_size=1, max_size=4))) for _ in range(n_inputs)]
    xs = tuple(torch.randn(s) for s in shapes)
    env, steps, linears = [x.clone() for x in xs], [], {}
    inputs = tuple(env)
    roots = ["input"] * n_inputs
    target = draw(st.integers(3, 12))
    tries = 0
    while len(steps) < target and tries < 80:
        tries += 1
        trial_linears = dict(linears)
        step = _draw_step(draw, env, roots, trial_linears)
        if step is None:
            continue
        weights = {k: _weight(*v) for k, v in trial_linears.items()}
        try:
            snapshot = [e.clone() for e in env]
            apply_step(env, step, weights)
        except (RuntimeError, IndexError, ValueError, TypeError):
            for e, s in zip(env, snapshot):   # undo a partial write before the error (rare)
                if e.dtype == s.dtype and e.shape == s.shape:
                    try:
                        e.copy_(s)
                    except RuntimeError:
                        pass
            del env[len(roots):]
            continue
        if len(env) > len(roots):
            roots.append("input" if _aliases_input(env[-1], inputs) else "intermediate")
        linears = trial_linears
        steps.append(step)
    assume(steps)
    n_out = draw(st.integers(1, 3))
    outputs = [(draw(st.integers(0, len(env) - 1)), draw(st.sampled_from(["", "", "t", "row", "expand", "flat"])))
               for _ in range(n_out)]
    return Fuzzed(n_inputs, steps, outputs, linears), shapes


def _same(out: torch.Tensor, ref: torch.Tensor) -> bool:
    """Bitwise equal as ``torch.equal`` sees it, NaN where eager has NaN."""
    if out.dtype != ref.dtype or out.shape != ref.shape:
        return False
    if ref.is_floating_point():
        nan = ref.isnan()
        if not torch.equal(nan, out.isnan()):
            return False
        return torch.equal(out[~nan], ref[~nan])
    return torch.equal(out, ref)


def _fresh(shape: tuple, layout: str) -> torch.Tensor:
    """A fresh input of ``shape``: contiguous, with its dimensions reversed in memory, or at an offset into a
    larger buffer (a caller's slice): the executor copies inputs in, and must write back the ones the program
    mutates into the caller's own layout."""
    if layout == "reversed":
        return torch.randn(shape[::-1]).permute(*range(len(shape) - 1, -1, -1))
    if layout == "offset":
        return torch.randn((3,) + tuple(shape))[1]
    return torch.randn(shape)


def _fresh_like(x: torch.Tensor) -> torch.Tensor:
    """A copy of ``x`` with its strides and storage offset (``clone`` would keep strides, not the offset)."""
    buf = torch.empty(x.untyped_storage().nbytes() // x.element_size(), dtype=x.dtype)
    y = buf.as_strided(x.shape, x.stride(), x.storage_offset())
    y.copy_(x)
    return y


@settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 20,
          suppress_health_check=list(HealthCheck))
@given(programs(), st.lists(st.sampled_from(["contiguous", "reversed", "offset"]), min_size=2, max_size=2))
def test_random_programs_equal_eager_bitwise(capfd, prog, layouts):
    module, shapes = prog
    note(f"steps={module.steps} outputs={module.outputs} shapes={shapes}")
    event(f"{len(module.steps)} steps")
    if any(k.endswith("_") for k, *_ in module.steps):
        event("writes in place")
    example = tuple(torch.randn(s) for s in shapes)
    compiled = []
    for streams in (1, 3):
        try:
            c = compile(module, example, streams=streams, poison=True,
                        program=compiled[0].program if compiled else None)
        except (AtenExecutorError, GraphError) as exc:
            msg = str(exc)
            if msg.startswith("torch.export failed"):
                event(f"export rejects: {msg.split(': ', 1)[-1][:60]}")
            assume(not msg.startswith("torch.export failed"))
            assert "node " in msg, f"a refusal that names no node: {msg}"
            REFUSALS[msg.split(":")[0]] += 1
            print("REFUSAL:", msg)
            event("refused")
            return
        compiled.append(c)
    for _ in range(2):
        xs = tuple(_fresh(s, layout) for s, layout in zip(shapes, layouts))
        # eager on contiguous copies: the layout the export traced (on another layout a ``reshape`` of an
        # input copies instead of aliasing it, and eager's in-place writes reach the input or not); the
        # executor takes inputs as values, so whatever their layout it must give these results
        eager_in = tuple(x.clone(memory_format=torch.contiguous_format) for x in xs)
        with torch.no_grad():
            ref = module(*eager_in)
        for c in compiled:
            run_in = tuple(_fresh_like(x) for x in xs)
            capfd.readouterr()
            out = c(*run_in)
            # an out= kernel resizing a planned view warns (C++, on fd 2) and will be an error in torch
            assert "resized" not in capfd.readouterr().err, "a launch resized its planned result"
            assert len(out) == len(ref)
            for i, (o, r) in enumerate(zip(out, ref)):
                assert _same(o, r), f"output {i} ({c.plan.streams} streams) differs from eager"
            for i, (x, e) in enumerate(zip(run_in, eager_in)):
                assert _same(x, e), f"input {i} ({c.plan.streams} streams) left otherwise than eager leaves it"


class _VectorMatrix(torch.nn.Module):
    """``vector @ matrix`` and ``linear`` of a vector, with and without bias (found by the fuzzer)."""

    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3, bias=False)

    def forward(self, v, m):
        return v @ m, self.a(v), self.b(v)


def test_vector_matrix_products_run_eagers_mm_without_resizing_the_planned_result(capfd):
    """``matmul.out`` of a vector and a matrix resized the planned 1-D result to 2-D and back each call
    (torch's deprecation warning on stderr every call; an error once torch stops resizing): it runs as
    eager's ``matmul`` does, ``mm`` of the vector as one row into the result as one row."""
    m = _VectorMatrix()
    v, w = torch.randn(4), torch.randn(4, 5)
    for streams in (1, 3):
        c = compile(m, (v, w), streams=streams, poison=True)
        assert c.stats.kinds.get("out", 0) == 0, c.stats.kinds
        for _ in range(2):
            v, w = torch.randn(4), torch.randn(4, 5)
            with torch.no_grad():
                ref = m(v, w)
            assert all(_same(o, r) for o, r in zip(c(v, w), ref))
    assert "resized" not in capfd.readouterr().err


def _collapsed(plan):
    """The plan with every planned tensor at offset 0: unsafe wherever two values are live at once."""
    tensors = tuple((tid, 0 if off is not None else None, size) for tid, off, size in plan.tensors)
    arena = max([size for _t, off, size in tensors if off is not None] + [1])
    return replace(plan, arena_bytes=arena, tensors=tensors)


def test_the_fuzzer_sees_an_unsafe_plan():
    """Negative control: the same programs run on a plan that puts every tensor at offset 0 (verifier off)
    must differ from eager somewhere, else the property above could not fail."""
    caught: list = []

    @settings(max_examples=40, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(programs())
    def run(prog):
        module, shapes = prog
        example = tuple(torch.randn(s) for s in shapes)
        try:
            good = compile(module, example, streams=1, poison=True)
            bad = compile(module, example, plan=_collapsed(good.plan), verify=False, poison=True,
                          program=good.program)
            out = bad(*example)
        except (AtenExecutorError, GraphError, RuntimeError) as exc:
            caught.append(f"refused: {str(exc)[:80]}")
            return
        with torch.no_grad():
            ref = module(*example)
        caught.append(not all(_same(o, r) for o, r in zip(out, ref)))

    run()
    assert any(c is True for c in caught), f"{caught}: no program noticed every tensor planned at offset 0"


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-s"])
