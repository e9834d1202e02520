"""Review of round 40's ATen changes (review40d): the unread-draw taking of ``random`` (455c07f), aten40b's
backend-flag restore and models40's vmap lowering, on inputs their authors did not try."""

import random

import pytest

torch = pytest.importorskip("torch")

from runtime.aten import compile as aten_compile  # noqa: E402
from runtime.aten import sets  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


def _seed_where(draw, same: bool) -> int:
    """A seed of ``random`` under which ``draw(Random)`` gives what it gives under the second export's seed (``same``),
    so that the second export of ``take_unread_draws`` cannot tell the draw was read."""
    other = draw(random.Random(sets._OTHER_DRAWS_SEED))
    return next(s for s in range(1000) if (draw(random.Random(s)) == other) == same)


class _PickByIndex(torch.nn.Module):
    """A one-shot supernet's path choice: an int draw read only as a list index (C's ``PyNumber_Index`` takes an int
    subclass as it is, calling none of its methods)."""

    def __init__(self):
        super().__init__()
        self.scales = [2.0, 3.0]

    def forward(self, x):
        return x * self.scales[random.randint(0, 1)]


class _PickLayer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.ops = torch.nn.ModuleList([torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)])

    def forward(self, x):
        return self.ops[random.randint(0, 1)](x)


class _RepeatCount(torch.nn.Module):
    def forward(self, x):
        for _ in range(random.randint(1, 2)):
            x = x * 2
        return x


@pytest.mark.parametrize("module", [_PickByIndex, _PickLayer, _RepeatCount])
def test_an_int_draw_read_in_c_is_refused_where_the_second_export_draws_the_same(module):
    """455c07f took these (under a seed where the second export's randint gave the export's): every compiled call
    ran the export's path, where eager picks anew at each call, silently. Int draws are read through
    ``PyNumber_Index`` (list index, ``range``, ``ModuleList[i]``, slicing) unseen by the marks: now refused."""
    random.seed(_seed_where(lambda r: r.randint(0, 1), same=True))
    with pytest.raises(AtenExecutorError, match="draws from random"):
        aten_compile(module().eval(), (torch.randn(2, 4),))


class _StoredDraw(torch.nn.Module):
    """A draw kept on the module and read by the next call."""

    def __init__(self):
        super().__init__()
        self.p = 0.0

    def forward(self, x):
        y = x * 2 if self.p < 0.5 else x * 3
        self.p = random.random()
        return y


def test_a_draw_stored_on_the_module_and_read_next_call_is_refused():
    """455c07f took it where the export's draw was under 0.5 (the program from it the same): compiled calls never
    stored a new draw and always took ``x * 2``, where eager's next call reads the stored number (``x * 3`` for
    one over 0.5). A drawn value still alive after the export (kept on the module, in a global list) is read
    later: refused."""
    random.seed(_seed_where(lambda r: r.random() < 0.5, same=True))
    with pytest.raises(AtenExecutorError, match="draws from random"):
        aten_compile(_StoredDraw().eval(), (torch.randn(2, 4),))


_LOG: list = []


class _LoggedDraw(torch.nn.Module):
    def forward(self, x):
        _LOG.append(random.random())
        return x * 2


def test_a_draw_kept_in_a_global_list_is_refused():
    with pytest.raises(AtenExecutorError, match="draws from random"):
        aten_compile(_LoggedDraw().eval(), (torch.randn(2, 4),))
    _LOG.clear()


class _LayerDrop(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = torch.nn.ModuleList([torch.nn.Linear(4, 4) for _ in range(3)])

    def forward(self, x):
        for layer in self.layers:
            p = random.uniform(0, 1)
            if self.training and p < 0.5:
                continue
            x = layer(x)
        return x


def test_layerdrop_in_eval_still_taken_with_randoms_state_as_eagers_after_n_calls():
    m = _LayerDrop().eval()
    x = torch.randn(2, 4)
    c = aten_compile(m, (x,))
    random.seed(9)
    want = [m(x) for _ in range(7)]
    after_eager = random.getstate()
    random.seed(9)
    got = [c(x) for _ in range(7)]
    assert random.getstate() == after_eager
    assert all(torch.equal(a, b) for a, b in zip(want, got))


def test_compile_runs_where_the_caller_set_tf32_through_torchs_fp32_precision_api():
    """``torch.backends.cuda.matmul.fp32_precision = "tf32"`` (torch 2.9's recommended API) set before compile made
    every compile raise a raw RuntimeError ("mix of the legacy and new APIs") from the legacy getters
    ``backend_flags.backend_flags`` read. Now those read the new API's precisions where the legacy getter raises."""
    matmul = torch.backends.cuda.matmul
    if not hasattr(matmul, "fp32_precision"):
        pytest.skip("torch without the fp32_precision API")
    before = matmul.fp32_precision
    m, x = torch.nn.Linear(4, 4).eval(), torch.randn(2, 4)
    try:
        matmul.fp32_precision = "tf32"
        c = aten_compile(m, (x,))
        assert torch.equal(c(x), m(x))
    finally:
        matmul.fp32_precision = before
