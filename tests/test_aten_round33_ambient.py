"""Round 33: the caller's process-global torch state at a call of a compiled program (``runtime.aten.default_dtype``, ``backend_flags``, ``mode_reads``; ``runtime.aten.ambient`` before round 59).

- The default dtype: session 31 refused every call under another default than the compile's. What follows it was
  measured on torch's export output (``test_what_export_records``): export pins no dtype a factory takes from it
  (``torch.zeros(3)`` is ``aten.zeros.default([3], device=cpu)``), none that type promotion takes from it
  (``int * 0.5``, ``int / 2``, ``sqrt(int)``, ``where(c, 1.0, 0.0)``, ``clamp(int, min=0.5)``, ``2.0 ** int``),
  and a ``torch.tensor(1.5)`` made in forward is a float32 constant; what forward computes from
  ``torch.get_default_dtype()`` is a plain dtype in the program. Only programs holding one of these are refused
  now (naming the node and op, or the line of forward), after showing they really would be wrong; every other
  program (torchvision's resnet18, a transformers Llama, ops with pinned dtypes) runs bit for bit as eager under
  float64 and bfloat16 defaults.
- Backend flags (TF32, cuDNN, deterministic algorithms, ...): lowering baked cuDNN's ``allow_tf32`` /
  ``benchmark`` / ``deterministic`` into its convolutions and a captured CUDA graph keeps its kernels, so a flag
  changed after the compile was not followed on a GPU. A compiled module now builds its executor again
  (``flag_rebuilds``); a bare ``Executor`` refuses the call naming the flag.
- Inference mode: a program compiled inside ``torch.inference_mode()`` failed every call outside it with torch's
  raw "Inplace update to inference tensor outside InferenceMode" (its arena was an inference tensor); eager runs.
"""

from __future__ import annotations

import sys

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.default_dtype import default_dtype_nodes  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402
from runtime.aten.executor import Executor  # noqa: E402

STREAMS = [1, 3, "auto"]


class default_dtype:  # noqa: N801 - a context manager named for what it sets
    """``torch.set_default_dtype(dtype)`` for a block, the old default put back."""

    def __init__(self, dtype):
        self.dtype = dtype

    def __enter__(self):
        self.old = torch.get_default_dtype()
        torch.set_default_dtype(self.dtype)

    def __exit__(self, *exc):
        torch.set_default_dtype(self.old)


class Op(nn.Module):
    """``x`` (float32) and ``i`` (int64) through a linear layer and one expression ``f`` (a lambda of x, i), both
    returned (``f``'s own dtype shows: added to the layer's, a 0-dim float64 result would take float32)."""

    def __init__(self, f):
        super().__init__()
        self.f = f
        self.lin = nn.Linear(4, 4)

    def forward(self, x, i):
        return self.lin(x), self.f(x, i)


#: expressions whose result dtype follows the default dtype at run time, and the node that shows it
FOLLOWS = {
    "zeros": (lambda x, i: torch.zeros(4), "zeros", "aten.zeros.default"),
    "ones": (lambda x, i: torch.ones(4), "ones", "aten.ones.default"),
    "full_float": (lambda x, i: torch.full((4,), 1.5), "full", "aten.full.default"),
    "arange_float": (lambda x, i: torch.arange(4.0), "arange", "aten.arange.default"),
    "linspace": (lambda x, i: torch.linspace(0, 1, 4), "linspace", "aten.linspace.default"),
    "eye": (lambda x, i: torch.eye(4)[0], "eye", "aten.eye.default"),
    "scalar_tensor": (lambda x, i: torch.scalar_tensor(0.1), "scalar_tensor", "aten.scalar_tensor.default"),
    "empty": (lambda x, i: torch.empty(4).fill_(0.1), "empty", "aten.empty.memory_format"),
    "rand": (lambda x, i: torch.rand(4) * 0, "rand", "aten.rand.default"),
    "randn": (lambda x, i: torch.randn(4) * 0, "randn", "aten.randn.default"),
    "int_times_float": (lambda x, i: i * 0.1, "mul", "aten.mul.Tensor"),
    "int_true_divide": (lambda x, i: i / 3, "div", "aten.div.Tensor"),
    "sqrt_of_int": (lambda x, i: torch.sqrt(i), "sqrt", "aten.sqrt.default"),
    "bool_times_float": (lambda x, i: (i > 1) * 0.1, "mul", "aten.mul.Tensor"),
    "where_of_scalars": (lambda x, i: torch.where(i > 1, 0.1, 0.3), "where", "aten.where.Scalar"),
    "clamp_int_by_float": (lambda x, i: torch.clamp(i, min=1.5), "clamp", "aten.clamp.default"),
    "float_pow_int": (lambda x, i: torch.pow(1.1, i), "pow", "aten.pow.Scalar"),
    # cast back to float32: eager's float64 steps round otherwise than the program's float32 ones
    "cast_back": (lambda x, i: torch.linspace(0, 1, 4).to(torch.float32), "linspace", "aten.linspace.default"),
    "torch_tensor_constant": (lambda x, i: torch.tensor(0.1), "c_lifted_tensor_0", "tensor made in forward"),
    "reads_default_dtype": (lambda x, i: (x * 0.1).to(torch.get_default_dtype()), "forward",
                            "torch.get_default_dtype()"),
}

#: the same expressions with the dtype pinned, or taken from a tensor: nothing follows the default
PINNED = {
    "zeros": lambda x, i: torch.zeros(4, dtype=torch.float32),
    "full_int": lambda x, i: torch.full((4,), 2),
    "arange_int": lambda x, i: torch.arange(4),
    "linspace": lambda x, i: torch.linspace(0, 1, 4, dtype=torch.float32),
    "zeros_like": lambda x, i: torch.zeros_like(x) + 0.1,
    "float_plus_float": lambda x, i: x + 0.1,
    "int_times_int": lambda x, i: i * 3,
    "int_cast_first": lambda x, i: i.float() * 0.1,
    "int_constant": lambda x, i: torch.tensor([1, 2, 3, 4]),
    "float64_constant": lambda x, i: torch.tensor(0.1, dtype=torch.float64).float(),
    "in_place_float": lambda x, i: x.clone().mul_(0.1).add_(i),
}


def _inputs():
    g = torch.Generator().manual_seed(3)
    return torch.randn(2, 4, generator=g), torch.tensor([1, 2, 3, 4])


def _build(f, streams=1):
    torch.manual_seed(0)
    m = Op(f).eval()
    return m, compile(m, _inputs(), streams=streams, poison=True)


def _eager(m, args):
    with torch.no_grad():
        return m(*args)


def _same(got, want) -> bool:
    """Same dtypes and values, output for output (one tensor or a tuple)."""
    if isinstance(want, torch.Tensor):
        got, want = (got,), (want,)
    return len(got) == len(want) and all(a.dtype == b.dtype and torch.equal(a, b) for a, b in zip(got, want))


def test_what_export_records():
    """The measurement behind the narrowed check: export keeps no dtype a factory or a promotion takes from the
    default (so each node infers it again at run time), a ``torch.tensor(0.1)`` constant looks like one given
    ``dtype=torch.float32``, and a pinned factory keeps its ``dtype``."""
    ep = torch.export.export(Op(lambda x, i: torch.zeros(4) + i * 0.1 + torch.tensor(0.1)
                                + torch.zeros(4, dtype=torch.float32)), _inputs())
    calls = {n.name: n for n in ep.graph.nodes if n.op == "call_function"}
    assert "dtype" not in calls["zeros"].kwargs and calls["zeros_1"].kwargs["dtype"] == torch.float32
    assert calls["mul"].args[1] == 0.1 and calls["mul"].kwargs == {}
    assert ep.constants["lifted_tensor_0"].dtype == torch.float32
    assert [k for k, _ in default_dtype_nodes(torch, _build(lambda x, i: torch.zeros(4))[1].program,
                                                      torch.float32)] == ["zeros"]


@pytest.mark.parametrize("case", sorted(FOLLOWS))
def test_a_program_that_follows_the_default_dtype_is_refused_and_would_be_wrong(case):
    """Refused naming the node (or forward's line) and its op; with the check cleared by hand, the call returns
    the compile's float32 where eager under float64 returns float64, or other values (the negative control)."""
    f, node, what = FOLLOWS[case]
    m, step = _build(f)
    args = _inputs()
    torch.manual_seed(1)
    got = step(*args)
    torch.manual_seed(1)
    assert _same(got, _eager(m, args))
    with default_dtype(torch.float64):
        with pytest.raises(AtenExecutorError, match=rf"called with default dtype torch\.float64, the program was "
                                                    rf"compiled under torch\.float32, and its .*{node}.*"
                                                    rf"{what.replace('(', '[(]').replace(')', '[)]')}.*compile again"):
            step(*args)
        step.executor.ambient.dtype_nodes = []   # what the call did before session 31's check
        torch.manual_seed(1)
        want = _eager(m, args)
        torch.manual_seed(1)
        try:
            got = step(*args)
        except AtenExecutorError as exc:   # some fail in torch's words (clamp: "Found dtype Float but expected Double")
            assert "default dtype" not in str(exc)
            return
        assert got[1].dtype == torch.float32 and not _same(got, want)


@pytest.mark.parametrize("case", sorted(PINNED))
@pytest.mark.parametrize("streams", STREAMS)
def test_a_program_with_pinned_dtypes_runs_under_another_default_as_eager(case, streams):
    m, step = _build(PINNED[case], streams)
    args = _inputs()
    for dtype in (torch.float64, torch.bfloat16, torch.float32):
        with default_dtype(dtype):
            assert _same(step(*args), _eager(m, args)), dtype
    assert step.executor.ambient.dtype_nodes == []


class _ResNetish(torch.nn.Module):
    """A residual CNN of resnet18's ops (conv, batch norm, relu, max pool, residual add, adaptive pool, linear),
    torch alone: torchvision is no extra of memplan, and CI runs every CPU test."""

    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
                                  nn.MaxPool2d(3, 2, 1))
        self.block = nn.Sequential(nn.Conv2d(16, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
                                   nn.Conv2d(16, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16))
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(x + self.block(x))
        return self.head(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1))


def _resnet18():
    torch.manual_seed(0)
    return _ResNetish().eval(), (torch.randn(1, 3, 32, 32),)


def _llama():
    need("transformers")
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from aten_models import tiny_lm

    return tiny_lm("llama"), (torch.randint(0, 128, (1, 8), generator=torch.Generator().manual_seed(1)),)


#: model maker -> (module, example inputs, program): each model is built and exported once (by its first compile,
#: under float32) and every later stream count compiles that program, as ``compile(program=...)`` reuses an export
_SHARED: dict = {}


@pytest.mark.parametrize("model", [_resnet18, _llama], ids=["resnet18", "llama"])
@pytest.mark.parametrize("streams", STREAMS)
def test_real_models_run_under_another_default_dtype_bit_for_bit(model, streams):
    """Neither a resnet18-like CNN nor a transformers Llama holds a node that follows the default dtype (Llama
    pins its rotary ``arange``'s): under float64 they were refused; they run, as eager does, bit for bit."""
    m, args, program = _SHARED.get(model) or (*model(), None)
    step = compile(m, args, streams=streams, poison=True, program=program)
    _SHARED.setdefault(model, (m, args, step.program))
    with default_dtype(torch.float64):
        got, want = step(*args), _eager(m, args)
        assert got.dtype == want.dtype == torch.float32 and torch.equal(got, want)
        assert torch.equal(step(*args), want)
    assert step.executor.ambient.dtype_nodes == [] and step.program.default_dtype_reads == ()


def test_a_float_constant_made_in_forward_is_refused_even_where_its_dtype_was_given():
    """``x.new_tensor(0.1)`` (x's dtype) and ``torch.tensor(0.1, dtype=torch.float32)`` leave the same float32
    constant in the program as ``torch.tensor(0.1)`` (the default's): it cannot tell them apart, so it refuses."""
    for f in (lambda x, i: x.new_tensor(0.1), lambda x, i: torch.tensor(0.1, dtype=torch.float32)):
        m, step = _build(f)
        with default_dtype(torch.float64), pytest.raises(AtenExecutorError, match=r"constant 'c_lifted_tensor_0'"):
            step(*_inputs())


class ReadsDefault(nn.Module):
    def forward(self, x):
        return (x * 0.1).to(torch.get_default_dtype())   # MusicGen's sinusoidal embedding does this


@pytest.mark.parametrize("strict", [False, True])
def test_a_read_of_the_default_dtype_in_forward_is_named_by_its_line(strict):
    """The ``.to(float32)`` export records is a no-op under float32 (no node at all): only the read shows, seen while
    exporting, under Dynamo (strict) too."""
    from runtime.aten.program import load_program

    m, x = ReadsDefault(), torch.randn(3)
    step = compile(m, (x,), streams=1, program=load_program(m, (x,), strict=strict))
    line = ReadsDefault.forward.__code__.co_firstlineno + 1
    assert step.program.default_dtype_reads == (f"test_aten_round33_ambient.py:{line}",)
    with default_dtype(torch.float64), pytest.raises(
            AtenExecutorError, match=rf"its forward reads torch\.get_default_dtype\(\) at "
                                     rf"test_aten_round33_ambient\.py:{line}"):
        step(x)


def test_a_cond_branch_that_follows_the_default_dtype_is_found():
    """Higher-order ops' subgraphs are looked into: a ``torch.ones`` inside a ``torch.cond`` branch."""
    class Cond(nn.Module):
        def forward(self, x, p):
            return torch.cond(p, lambda x: x + torch.ones(3), lambda x: x - 1.0, (x,))

    step = compile(Cond(), (torch.randn(3), torch.tensor(True)), streams=1)
    with default_dtype(torch.float64), pytest.raises(AtenExecutorError, match=r"node 'ones' \(aten\.ones\.default\)"):
        step(torch.randn(3, dtype=torch.float32), torch.tensor(True))


def test_a_rebuild_under_a_default_a_node_follows_is_refused_before_it_is_built():
    """A replaced weight is followed by a rebuild, which runs lowering's probes under the caller's default: refused
    first where a node follows it (nothing rebuilt, the next call at the compile's default runs)."""
    m, step = _build(FOLLOWS["zeros"][0])
    args = _inputs()
    m.lin.weight.data = torch.randn(4, 4)
    with default_dtype(torch.float64), pytest.raises(AtenExecutorError, match=r"node 'zeros'"):
        step(*args)
    assert step.rebinds == 0
    assert _same(step(*args), _eager(m, args)) and step.rebinds == 1


def test_the_default_dtype_of_a_rebuild_is_the_compiles():
    """A rebuild under float64 (a replaced weight) keeps float32 as the program's default: a later call under
    float32 is not checked against float64."""
    m, step = _build(PINNED["float_plus_float"])
    args = _inputs()
    m.lin.weight.data = torch.randn(4, 4)
    with default_dtype(torch.float64):
        assert _same(step(*args), _eager(m, args))
    assert step.rebinds == 1 and step.executor.ambient.default_dtype == torch.float32


#: flag -> (its value now, set it)
FLAG_CHANGES = {
    "cudnn.allow_tf32": (lambda: torch.backends.cudnn.allow_tf32,
                         lambda v: setattr(torch.backends.cudnn, "allow_tf32", v)),
    "cuda.matmul.allow_tf32": (lambda: torch.backends.cuda.matmul.allow_tf32,
                               lambda v: setattr(torch.backends.cuda.matmul, "allow_tf32", v)),
    "cudnn.deterministic": (lambda: torch.backends.cudnn.deterministic,
                            lambda v: setattr(torch.backends.cudnn, "deterministic", v)),
    "mkldnn.enabled": (lambda: torch.backends.mkldnn.enabled, lambda v: setattr(torch.backends.mkldnn, "enabled", v)),
    "deterministic_algorithms": (torch.are_deterministic_algorithms_enabled, torch.use_deterministic_algorithms),
}


def _flip(name):
    """Flip flag ``name``; returns the function that puts it back."""
    get, set_ = FLAG_CHANGES[name]
    old = bool(get())
    set_(not old)
    return lambda: set_(old)


class Conv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 8 * 8, 4)

    def forward(self, x):
        return self.fc(self.conv(x).relu().flatten(1))


@pytest.mark.parametrize("flag", sorted(FLAG_CHANGES))
def test_a_changed_backend_flag_rebuilds_the_executor(flag):
    """Each flag changed between calls: the compiled module builds its executor again (once), and the call equals
    eager's under the same flag; a bare Executor refuses the call, naming the flag."""
    torch.manual_seed(0)
    m = Conv().eval()
    x = torch.randn(2, 3, 8, 8)
    step = compile(m, (x,), streams=1, poison=True)
    bare = Executor(step.program, step.plan, "cpu", poison_arena=True)
    restore = _flip(flag)
    try:
        assert torch.equal(step(x), _eager(m, (x,))) and step.flag_rebuilds == 1
        assert torch.equal(step(x), _eager(m, (x,))) and step.flag_rebuilds == 1
        with pytest.raises(AtenExecutorError, match=r"was (True|False) when the executor was built and is "
                                                    r"(True|False) now: .*build the executor again"):
            bare(x)
    finally:
        restore()
    assert torch.equal(step(x), _eager(m, (x,))) and step.flag_rebuilds == 2
    assert torch.equal(bare(x), _eager(m, (x,)))


def test_a_program_compiled_inside_inference_mode_runs_outside_it():
    """Its arena was an inference tensor: every call outside failed at the first input copy with torch's raw
    "Inplace update to inference tensor outside InferenceMode", where eager runs."""
    torch.manual_seed(0)
    m = Conv().eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.inference_mode():
        step = compile(m, (x,), streams=1, poison=True)
        inside = step(x)
        assert inside.is_inference() and torch.equal(inside, m(x))
    out = step(x)
    assert not out.is_inference() and torch.equal(out, _eager(m, (x,)))


def test_a_rebuild_inside_inference_mode_leaves_an_executor_that_runs_outside_it():
    torch.manual_seed(0)
    m = Conv().eval()
    x = torch.randn(2, 3, 8, 8)
    step = compile(m, (x,), streams=1, poison=True)
    with torch.inference_mode():
        m.conv.weight.data = torch.randn(8, 3, 3, 3)   # an inference tensor: eager reads it outside too
        assert torch.equal(step(x), m(x)) and step.rebinds == 1
    assert torch.equal(step(x), _eager(m, (x,)))


def test_a_call_under_grad_mode_runs_as_inference():
    """Grad mode is not followed (the executor is inference only, docs/aten.md): same values, nothing tracked."""
    torch.manual_seed(0)
    m = Conv().eval()
    x = torch.randn(2, 3, 8, 8)
    step = compile(m, (x,), streams=1)
    with torch.enable_grad():
        got, want = step(x), m(x)
    assert want.requires_grad and not got.requires_grad and torch.equal(got, want.detach())


@pytest.mark.gpu(backend="torch")
@pytest.mark.parametrize("flag", ["cudnn.allow_tf32", "cuda.matmul.allow_tf32"])
def test_on_cuda_a_tf32_flag_changed_after_the_capture_is_followed(flag):
    """Lowering passed cuDNN's ``allow_tf32`` into its convolutions at the build, and the captured graph kept its
    kernels: after ``allow_tf32 = True`` eager ran TF32 kernels and the program the float32 ones (and back)."""
    torch.manual_seed(0)
    m = Conv().cuda().eval()
    x = torch.randn(2, 3, 8, 8, device="cuda")
    get, set_ = FLAG_CHANGES[flag]
    old = get()
    set_(False)
    try:
        step = compile(m, (x,), streams="auto", poison=True, cuda_graph=True)
        assert torch.equal(step(x), _eager(m, (x,)))
        set_(True)
        assert torch.equal(step(x), _eager(m, (x,))) and step.flag_rebuilds == 1 and step.recaptures == 1
    finally:
        set_(old)


@pytest.mark.gpu(backend="torch")
@pytest.mark.parametrize("streams", STREAMS)
def test_on_cuda_a_program_runs_under_another_default_dtype(streams):
    torch.manual_seed(0)
    m = Conv().cuda().eval()
    x = torch.randn(2, 3, 8, 8, device="cuda")
    step = compile(m, (x,), streams=streams, poison=True, cuda_graph=True)
    with default_dtype(torch.float64):
        assert torch.equal(step(x), _eager(m, (x,)))


@pytest.mark.gpu(backend="torch")
def test_on_cuda_a_capture_inside_inference_mode_runs_outside_it():
    """The first call captures the CUDA graph; made inside ``torch.inference_mode()``, it is made outside it (what
    it keeps is the executor's), and later calls outside run as eager."""
    torch.manual_seed(0)
    m = Conv().cuda().eval()
    x = torch.randn(2, 3, 8, 8, device="cuda")
    step = compile(m, (x,), streams="auto", poison=True, cuda_graph=True)
    with torch.inference_mode():
        assert torch.equal(step(x), m(x))
    assert torch.equal(step(x), _eager(m, (x,))) and torch.equal(step(x), _eager(m, (x,)))
