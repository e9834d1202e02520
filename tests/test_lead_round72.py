"""Round 72 (lead): ``runtime.aten.bench_state --device``; the heap frozen at each test module (conftest)."""

from __future__ import annotations

import gc
import weakref

import pytest
from needs import need


def test_bench_state_device_cuda_without_a_gpu_is_one_usage_line(capsys):
    """``--device cuda`` where torch sees no GPU: one usage line naming the option, exit status 2, not a traceback
    from the first ``.to("cuda")``."""
    torch = need("torch")
    if torch.cuda.is_available():
        pytest.skip("this check needs a machine where torch sees no CUDA device")
    from runtime.aten import bench_state

    with pytest.raises(SystemExit) as info:
        bench_state.main(["--device", "cuda"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--device cuda" in err[0] and "no CUDA device" in err[0], err


def test_bench_state_refuses_an_unknown_device(capsys):
    from runtime.aten import bench_state

    with pytest.raises(SystemExit) as info:
        bench_state.main(["--device", "tpu"])
    assert info.value.code == 2
    assert "--device" in capsys.readouterr().err


class _Cyclic:
    def __init__(self) -> None:
        self.me = self


def test_a_cycle_made_in_a_test_still_dies_at_a_collection():
    """The conftest freezes the heap at each module's first test; what a test makes later is still the collector's,
    so a cycle it drops is freed by ``gc.collect()`` (the tests that watch an arena or executor die rely on this)."""
    obj = _Cyclic()
    ref = weakref.ref(obj)
    del obj
    assert ref() is not None   # (a cycle: reference counting alone does not free it)
    gc.collect()
    assert ref() is None
