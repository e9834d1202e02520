"""Round 74 (aten74): a compiled ``runtime.aten`` module called the way serving code calls it (CPU).

Bugs fixed (each test failed before):
- two programs compiled on one ``layout.SharedArena`` (``compile(..., shared_arena=sa)``, a public option) called from
  two threads ran at once over each other's intermediates (each executor's lock was its own; only
  ``compile_per_count`` took the shared arena's lock around its calls): 4 wrong results in 400, silently. Now every
  call of a program on a shared arena holds its lock.
- ``compile_detector``'s model refused ``load_state_dict`` of its own ``state_dict()`` (every key of a compiled part
  "unexpected"), and with ``strict=False`` silently loaded none of those keys: the detections stayed the old weights'.
- ``model.train()`` after compile refused every call ("is in train mode now ... compile again") where no mode reaches
  the program (an MLP): now taken where an export in the modes now gives compile's very program.
- a compiled call during another thread's export of the same module (a compile for another shape, served beside it)
  took the export's swapped tensors for a change of the module: it rebuilt over them or exported again to prove it,
  and that proof's swap made the other thread's compile refuse the module (2 compiles in 3). Now it waits for the
  export to end; a compile of the module starting during such an export refused it as holding FakeTensor
  parameters: now it waits too, and so does its record of the module's tensors (a guard recorded during such an
  export held none of them: a weight replaced after compile ran the old one, silently).
"""

from __future__ import annotations

import threading

import pytest
from needs import need

torch = need("torch")

from runtime.aten import compile  # noqa: E402
from runtime.aten.layout import SharedArena  # noqa: E402


class _Mlp(torch.nn.Module):
    def __init__(self, act: str) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(16, 16)
        self.act = act

    def forward(self, x):
        return getattr(self.lin(x), self.act)() * 2


def test_calls_of_two_programs_on_one_shared_arena_wait_for_each_other():
    """A call of a program on a shared arena waits while another call on that arena runs (its lock held): before, a
    second program's call ran at once, writing the same bytes."""
    torch.manual_seed(0)
    arena = SharedArena()
    m1, m2 = _Mlp("relu").eval(), _Mlp("tanh").eval()
    x = torch.randn(8, 16)
    s1 = compile(m1, (x,), shared_arena=arena)
    s2 = compile(m2, (x,), shared_arena=arena)
    assert s1.executor.layout.arena.untyped_storage().data_ptr() == \
        s2.executor.layout.arena.untyped_storage().data_ptr()
    got: list = []
    worker = threading.Thread(target=lambda: got.append(s2(x)))
    with arena.lock:   # (as a call of s1 holds it while it runs)
        worker.start()
        worker.join(0.5)
        assert worker.is_alive(), "a call on the shared arena ran while another held it"
    worker.join(30)
    assert not worker.is_alive()
    assert torch.equal(got[0], m2(x))
    assert torch.equal(s1(x), m1(x))


@pytest.mark.filterwarnings("ignore")
def test_a_compile_detector_model_loads_a_state_dict_into_its_compiled_parts():
    """``split.load_state_dict(sd)`` loads the compiled parts' keys into the submodules they replace, whose weights the
    programs read, and the detections follow them, as eager's do. Before, every ``backbone.*`` (``head.*``) key was
    "unexpected" (a raw RuntimeError), and with ``strict=False`` none was loaded, silently: the old weights' boxes."""
    from test_models_round70 import _same, _tiny_detectors

    from runtime.aten.detection import compile_detector

    retina, _rcnn = _tiny_detectors()
    split = compile_detector(retina, [torch.rand(3, 64, 64)], cuda_graph=False)
    saved = retina.state_dict()
    scaled = type(saved)((k, v * 1.5 if v.is_floating_point() else v.clone()) for k, v in saved.items())
    scaled._metadata = saved._metadata
    images = [torch.rand(3, 64, 64)]
    for strict in (True, False):
        retina.load_state_dict(saved)
        result = split.load_state_dict(scaled, strict=strict)
        assert not result.missing_keys and not result.unexpected_keys
        assert torch.equal(retina.backbone[0].weight, scaled["backbone.0.weight"])
        assert torch.equal(retina.head.classification_head.cls_logits.bias, scaled["head.classification_head.cls_logits.bias"])
        with torch.no_grad():
            assert _same(split(images), retina(images))
    partial = {k: v for k, v in scaled.items() if k != "backbone.2.bias"}
    partial["backbone.extra"] = torch.zeros(1)
    result = split.load_state_dict(partial, strict=False)
    assert result.missing_keys == ["backbone.2.bias"] and result.unexpected_keys == ["backbone.extra"]


class _Head(torch.nn.Module):
    def __init__(self, p: float | None) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(8, 8)
        self.drop = torch.nn.Dropout(p) if p is not None else torch.nn.Identity()

    def forward(self, x):
        return self.drop(self.lin(x)).relu()


def test_a_switch_to_train_mode_that_leaves_the_program_as_it_is_is_taken():
    """``model.train()`` after compile, on a model no mode reaches (no dropout, batch norm or ``self.training``
    branch), runs as eager does (before: refused, "is in train mode now ... compile again"); one whose program the
    mode changes (a dropout) is still refused, the answer remembered for those flags (no export per call)."""
    from runtime.aten.errors import AtenExecutorError

    torch.manual_seed(0)
    x = torch.randn(4, 8)
    m = _Head(None).eval()
    step = compile(m, (x,))
    m.train()
    assert torch.equal(step(x), m(x)) and torch.equal(step(x), m(x))
    m.eval()
    m.lin.train()
    assert torch.equal(step(x), m(x))
    m = _Head(0.5).eval()
    step = compile(m, (x,))
    m.train()
    for _ in range(2):
        with pytest.raises(AtenExecutorError, match=r"_Head is in train mode now, the program was exported in eval"):
            step(x)
        assert step.training_refuted == (True, True, True)
    m.eval()
    assert torch.equal(step(x), m(x))


def test_a_call_during_another_threads_export_waits_for_it_instead_of_following_its_swapped_tensors():
    """An export in another thread (a ``compile`` of the same module for another shape) swaps the module's tensors
    while it traces, holding the importer's ``EXPORT_LOCK``. A compiled call meeting that waits for the export to put
    them back, then runs as compiled. Before, it took the swap for a change of the module and followed it: rebuilt
    over the swapped tensor (here another weight: wrong numbers) or exported again to prove it, whose own swap made
    that compile refuse the module ("M.l.weight is a parameter of FakeTensor": 2 compiles in 3)."""
    from memplan.importers.torch import EXPORT_LOCK

    torch.manual_seed(0)
    m = _Mlp("relu").eval()
    x = torch.randn(8, 16)
    step = compile(m, (x,))
    want = m(x)
    swapped, done = threading.Event(), threading.Event()

    def export_like():
        with EXPORT_LOCK:
            kept = m.lin.weight
            m.lin.weight = torch.nn.Parameter(torch.zeros_like(kept))   # (what an export's swap looks like to a call)
            swapped.set()
            done.wait(0.5)   # (the call below waits for the lock: nothing sets ``done`` while it does)
            m.lin.weight = kept

    worker = threading.Thread(target=export_like)
    worker.start()
    assert swapped.wait(30)
    got = step(x)
    done.set()
    worker.join(30)
    assert torch.equal(got, want) and step.rebinds == 0
    assert torch.equal(step(x), want)


def test_a_compile_during_another_threads_export_of_the_module_waits_for_it():
    """A compile of a module (for another shape) starting while another thread exports it waits for that export to
    put the module's tensors back. Before, its checks of the module ran beside the export and met its FakeTensor
    parameters: refused, "M.l.weight is a parameter of FakeTensor, a tensor subclass ..."."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    from memplan.importers.torch import EXPORT_LOCK

    torch.manual_seed(0)
    m = _Mlp("relu").eval()
    kept = m.lin.weight
    fake = FakeTensorMode(allow_non_fake_inputs=True).from_tensor(kept)
    swapped = threading.Event()

    def export_like():
        with EXPORT_LOCK:
            m.lin._parameters["weight"] = fake   # (as torch's non-strict export leaves it while it traces)
            swapped.set()
            threading.Event().wait(0.5)
            m.lin._parameters["weight"] = kept

    worker = threading.Thread(target=export_like)
    worker.start()
    assert swapped.wait(30)
    x = torch.randn(5, 16)
    step = compile(m, (x,))
    worker.join(30)
    assert m.lin.weight is kept and torch.equal(step(x), m(x))


def test_a_compile_records_the_modules_tensors_after_another_threads_export_put_them_back(monkeypatch):
    """What compile records of the module after its plan (the guard of its tensors) waits for an export in another
    thread that began meanwhile. Before, a guard recorded beside it held none of the swapped (fake) parameters, so a
    weight replaced after compile ran the old one, silently (2 compiles of one model in two threads: one such)."""
    import importlib

    from torch._subclasses.fake_tensor import FakeTensorMode

    from memplan.importers.torch import EXPORT_LOCK

    compile_module = importlib.import_module("runtime.aten.compile")
    torch.manual_seed(0)
    m = _Mlp("relu").eval()
    kept = m.lin.weight
    fake = FakeTensorMode(allow_non_fake_inputs=True).from_tensor(kept)
    workers: list = []

    def export_like(swapped):
        with EXPORT_LOCK:
            m.lin._parameters["weight"] = fake   # (as torch's non-strict export leaves it while it traces)
            swapped.set()
            threading.Event().wait(0.5)
            m.lin._parameters["weight"] = kept

    def executor_then_export(*args, **kwargs):   # (another thread's export begins right after the plan's executor)
        built = real(*args, **kwargs)
        swapped = threading.Event()
        workers.append(threading.Thread(target=export_like, args=(swapped,)))
        workers[-1].start()
        assert swapped.wait(30)
        return built

    real = compile_module.Executor
    monkeypatch.setattr(compile_module, "Executor", executor_then_export)
    x = torch.randn(5, 16)
    step = compile(m, (x,))
    monkeypatch.setattr(compile_module, "Executor", real)
    workers[0].join(30)
    assert m.lin.weight is kept and len(step.guard.slots) == 2
    m.lin.weight = torch.nn.Parameter(torch.randn(16, 16))
    assert torch.equal(step(x), m(x))
