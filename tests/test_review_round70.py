"""Round 70's review: holes found in the round's merged changes, each with a test that failed before its fix.

- hostile70's unraisable hook (``_interrupt.catch_unraisable``, set by ``cli.main``) stayed set for the rest of a
  process that called ``cli.main`` in-process (a wrapper script, a notebook, this test suite): a KeyboardInterrupt in
  the program's own ``__del__`` long after the command had returned was re-sent as a SIGINT 10 ms later into
  whatever ran then (Python reports and ignores it). Now ``cli.main`` puts the caller's hook back as it returns, and
  sets none from a thread other than the main one (a Ctrl-C is the main thread's).
- models70's ``runtime.aten.detection.compile_detector`` returned a shallow copy of the model that shared its hook
  dicts (a hook registered on the split model fired on every call of the original) and whose ``.half()``, ``.to()``,
  ``.train()`` converted or switched the original's own submodules but not the compiled parts (both models broken).
  Now the copy has containers of its own and refuses a conversion that changes a tensor, and training mode.
"""

from __future__ import annotations

import collections
import sys
import threading

import pytest
from needs import need

import memplan
import memplan.cli as cli
from memplan.examples import qkv_attention


def _recorder():
    seen: list[BaseException] = []

    def hook(unraisable) -> None:
        seen.append(unraisable.exc_value)

    return hook, seen


def _verify_args(tmp_path) -> list[str]:
    graph = tmp_path / "g.json"
    g = qkv_attention()
    memplan.save_graph(g, str(graph))
    out = tmp_path / "p.json"
    memplan.save_plan(memplan.plan(g, solver="greedy"), str(out))
    return ["verify", str(graph), str(out)]


def _hooks_during(monkeypatch) -> list:
    """The unraisable hook in place while each ``cli.main`` call runs its command, appended as it runs."""
    during: list = []
    real = cli._main

    def spy(argv, held=None):
        during.append(sys.unraisablehook)
        return real(argv, held)

    monkeypatch.setattr(cli, "_main", spy)
    return during


def test_cli_main_in_process_puts_the_callers_unraisable_hook_back(tmp_path, monkeypatch, capsys):
    args = _verify_args(tmp_path)
    mine, seen = _recorder()
    monkeypatch.setattr(sys, "unraisablehook", mine)
    during = _hooks_during(monkeypatch)
    assert cli.main(args) == 0
    # the command's own Ctrl-Cs in callbacks are still its own while it runs
    assert during and during[0] is not mine and getattr(during[0], "_memplan", False)
    # after it: the program's hook, which sees a KeyboardInterrupt of the program's own __del__ as Python reports it
    assert sys.unraisablehook is mine

    class Dies:
        def __del__(self):
            raise KeyboardInterrupt

    d = Dies()
    del d
    assert len(seen) == 1 and isinstance(seen[0], KeyboardInterrupt)


def test_cli_main_on_a_worker_thread_sets_no_unraisable_hook(tmp_path, monkeypatch, capsys):
    args = _verify_args(tmp_path)
    mine, _seen = _recorder()
    monkeypatch.setattr(sys, "unraisablehook", mine)
    during = _hooks_during(monkeypatch)
    codes = []
    t = threading.Thread(target=lambda: codes.append(cli.main(args)))
    t.start()
    t.join(120)
    assert codes == [0]
    assert during == [mine] and sys.unraisablehook is mine


def _toy_detector():
    """What ``compile_detector`` asks of a detection model (a ``transform`` and a ``backbone``), without torchvision:
    the backbone compiled, the transform and ``post`` (an ROI head's stand-in) run eagerly, shared with the model."""
    torch = need("torch")
    nn = torch.nn

    class Stack(nn.Module):
        def forward(self, images):
            return torch.stack(images)

    class Det(nn.Module):
        def __init__(self):
            super().__init__()
            self.transform, self.backbone, self.post = Stack(), nn.Conv2d(3, 4, 3), nn.Linear(4, 4)
            self.seen = collections.defaultdict(int)   # (a container of a kind copied apart too)

        def forward(self, images):
            return self.post(self.backbone(self.transform(images)).mean((2, 3)))

    torch.manual_seed(0)
    return torch, Det().eval()


@pytest.mark.filterwarnings("ignore")
def test_compile_detectors_copy_leaves_the_original_as_it_was():
    from runtime.aten.detection import CompiledPart, compile_detector
    from runtime.aten.errors import AtenExecutorError

    torch, model = _toy_detector()
    images = [torch.rand(3, 16, 16)]
    split = compile_detector(model, images, cuda_graph=False)
    assert isinstance(split.backbone, CompiledPart) and isinstance(split, type(model))
    with torch.no_grad():
        assert torch.equal(split(images), model(images))
    calls = []
    split.register_forward_hook(lambda *_: calls.append("split"))
    with torch.no_grad():
        model(images)
    assert calls == []   # the split's hook is the split's alone
    split.seen["x"] += 1
    assert split.seen == {"x": 1} and model.seen == {}
    split.eval()
    split.to(torch.float32)   # (changes no tensor: taken)
    with pytest.raises(AtenExecutorError, match=r"cannot be converted.*convert the original model"):
        split.half()
    with pytest.raises(AtenExecutorError, match=r"runs inference only.*train the original model"):
        split.train()
    assert model.post.weight.dtype == torch.float32 and not model.post.training and not model.training
    with torch.no_grad():
        assert torch.equal(split(images), model(images))
    # its state_dict is the model's whole (the compiled backbone's weights in it)
    saved, want = split.state_dict(), model.state_dict()
    assert saved.keys() == want.keys() and all(torch.equal(saved[k], want[k]) for k in want)
    # a split whose every parameter is in a compiled part (a RetinaNet's: backbone and head): the conversion is refused
    # too, not taken as changing nothing
    del model.post
    model.forward = lambda images: model.backbone(model.transform(images)).mean((2, 3))
    bare = compile_detector(model, images, cuda_graph=False)
    assert list(bare.parameters()) == []
    with pytest.raises(AtenExecutorError, match=r"cannot be converted"):
        bare.double()
