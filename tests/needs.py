"""What a test needs beyond the core install, in one place: optional packages and CUDA devices.

``need(module)`` imports an optional package or skips the test, naming the extra that brings it.
CI installs every extra but ``cuda`` and ``graphs`` (the GPU's), so where the ``CI`` environment variable is set a missing package
fails the test instead: a broken install cannot pass as a run of skipped tests.
GPU tests do not call anything: they carry the ``gpu`` marker (``gpu(devices=2)`` for more than one
device) and conftest.py skips them, with one reason, where pycuda or enough CUDA devices are missing;
``gpu(backend="torch")`` tests (the ATen executor) need torch's CUDA instead of pycuda.
"""

from __future__ import annotations

import functools
import importlib
import os
from types import ModuleType

import pytest

EXTRA = {"torch": "torch", "transformers": "torch", "torchvision": "torch", "onnx": "onnx", "onnxruntime": "onnx", "matplotlib": "plot", "pycuda": "cuda",
         "cuda": "graphs"}


def need(module: str) -> ModuleType:
    """``module`` imported, or the calling test skipped (failed under CI) with the extra to install."""
    extra = EXTRA.get(module.split(".")[0])
    hint = f" (pip install -e '.[{extra}]')" if extra else ""
    if os.environ.get("CI"):
        try:
            return importlib.import_module(module)
        except ImportError as exc:
            pytest.fail(f"CI installs every extra but cuda and graphs, yet {module} is missing{hint}: {exc}", pytrace=False)
    return pytest.importorskip(module, reason=f"needs {module}{hint}")


def missing(what: str) -> None:
    """Skip the calling test for want of ``what`` (data a package ships), or fail it under CI, whose
    install carries it: a test that silently stops running is a test lost."""
    if os.environ.get("CI"):
        pytest.fail(f"CI's install should carry {what}, but it is missing", pytrace=False)
    pytest.skip(f"needs {what}")


@functools.cache
def torch_cuda_devices() -> tuple[int, str]:
    """(number of CUDA devices torch sees, why there are none): for ``gpu(backend="torch")`` tests, which
    need torch's CUDA and not pycuda."""
    try:
        torch = importlib.import_module("torch")
    except ImportError as exc:
        return 0, f"no torch ({exc})"
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return count, f"{count} CUDA device(s) in torch" if count else "torch sees no CUDA device"


@functools.cache
def cuda_devices() -> tuple[int, str]:
    """(number of usable CUDA devices, why there are none) — 0 without pycuda or a driver."""
    try:
        cuda = importlib.import_module("pycuda.driver")
        importlib.import_module("cuda.bindings")
    except ImportError as exc:
        return 0, f"no pycuda/cuda-python ({exc})"
    try:
        cuda.init()
        count = cuda.Device.count()
    except cuda.Error as exc:  # pragma: no cover - depends on the machine
        return 0, f"no usable CUDA device ({exc})"
    return count, f"{count} CUDA device(s)"


def sigint_default() -> None:
    """A ``preexec_fn`` for the Ctrl-C tests' subprocesses: SIGINT back to its default before the child starts.
    Why: a shell started in the background without job control (``(bash .ci/run &)``, ``nohup ... &``) ignores
    SIGINT and its children inherit that, and a Python started with SIGINT ignored installs no KeyboardInterrupt
    handler: those tests then failed as if memplan had lost the Ctrl-C (session 39's interim CI run)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


@functools.cache
def _export_takes_generators() -> str:
    """"" where this torch's ``torch.export`` traces a module-held ``torch.Generator`` (torch 2.14), else its error.

    Why: torch 2.11 (the GPU machine's) raises ``NotImplementedError: argument of type: <class 'torch._C.Generator'>``
    from FX for ``torch.rand(..., generator=self.g)`` in a plain non-strict export; the library then refuses clearly
    (``GraphError: torch.export failed for M: argument of type ...``), so there is nothing of ours to run."""
    import torch

    class _Draws(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.g = torch.Generator().manual_seed(0)

        def forward(self, x):
            return x + torch.rand(x.shape, generator=self.g)

    try:
        torch.export.export(_Draws(), (torch.ones(2),), strict=False)
    except Exception as exc:  # noqa: BLE001 (any failure of torch's own export: the reason of the skip)
        return f"{type(exc).__name__}: {exc}"[:160]
    return ""


def need_generator_export() -> None:
    """Skip the calling test where this torch's export cannot take a module-held ``torch.Generator``
    (``_export_takes_generators``); fail it under CI, whose newest torch can: a test lost there is a test lost."""
    why = _export_takes_generators()
    if not why:
        return
    import torch

    if os.environ.get("CI"):
        pytest.fail(f"torch {torch.__version__} under CI cannot export a module-held generator: {why}", pytrace=False)
    pytest.skip(f"torch {torch.__version__}'s export cannot take a module-held torch.Generator ({why})")


def save_or_skip(ep, f) -> None:
    """``torch.export.save(ep, f)``, or the calling test skipped (failed under CI) where this torch cannot save the
    program: torch 2.11 (the GPU machine's) refuses to serialize a node calling a Python function of its own that
    its export put there (``cast_symbool_to_symint_guardless`` for ``torch._check_tensor_all``,
    ``lazy_load_decompositions`` for ``torch.vmap``): "SerializeError: Serializing <function ...> is not supported".
    No ``.pt2`` exists then, so there is nothing of memplan's to load; where the program is in memory it imports."""
    import torch

    try:
        torch.export.save(ep, f)
    except Exception as exc:  # noqa: BLE001 (only torch's own refusal to serialize a function node is a skip)
        if type(exc).__name__ != "SerializeError" or "is not supported" not in str(exc):
            raise
        why = str(exc).splitlines()[0][:160]
        if os.environ.get("CI"):
            pytest.fail(f"torch {torch.__version__} under CI cannot save the program: {why}", pytrace=False)
        pytest.skip(f"torch {torch.__version__} cannot save the program ({why})")
