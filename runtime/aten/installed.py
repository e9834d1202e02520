"""Whether a file is an installed package's, not the user's own code.

Why one rule: the watches walk the user's classes and compare the user's tracing-flag branches, and leave installed
packages' alone (transformers asks ``is_compiling()`` in every model, and walking its configs cost a tiny Llama's
per-call check 52 -> 544 us). A path holding ``site-packages`` / ``dist-packages`` was the whole test, so a package
installed elsewhere (``pip install --target DIR`` on ``PYTHONPATH``, as the GPU machine's transformers is) counted as
the user's: its flag reads were compared with eager at every compile (session 68's GPU suite warned on a tiny Llama
whose outputs agreed only within rounding). Now also: a ``*.dist-info`` beside the file's top-level package whose
``RECORD`` lists that package (what pip writes for every install, wherever it goes).

An installed package is still the user's own where it defines a class of the module tree being compiled
(``user_packages``), model libraries (``LIBRARIES``) aside: a user's package installed non-editable (``pip install
.``) counted as installed, so its ``if torch.compiler.is_compiling():`` branches were never compared with eager and
compiled the export's branch silently (round 69)."""

from __future__ import annotations

import functools
import os
from typing import Any


@functools.lru_cache(maxsize=8192)
def installed_file(path: str) -> bool:
    """Whether ``path`` (a module's or a code object's file) belongs to an installed distribution."""
    if not path or path.startswith("<"):
        return False
    if "site-packages" in path or "dist-packages" in path:
        return True
    path = os.path.abspath(path)
    child, parent = path, os.path.dirname(path)
    for _ in range(12):   # (a package's top within a dozen levels of its file)
        if parent == child:
            return False
        if os.path.basename(child).partition(".")[0] in _recorded(parent):
            return True
        child, parent = parent, os.path.dirname(parent)
    return False


@functools.lru_cache(maxsize=1024)
def _recorded(directory: str) -> frozenset[str]:
    """The top-level names (packages, modules) the ``RECORD`` files of ``directory``'s ``*.dist-info`` list."""
    try:
        infos = [n for n in os.listdir(directory) if n.endswith(".dist-info")]
    except OSError:
        return frozenset()
    tops: set[str] = set()
    for info in infos:
        try:
            with open(os.path.join(directory, info, "RECORD"), encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    first = line.split(",", 1)[0].split("/", 1)[0]
                    if first and not first.endswith((".dist-info", ".data")) and first not in ("..", "."):
                        tops.add(first.partition(".")[0])
        except OSError:
            continue
    return frozenset(tops)


#: the top-level packages that are never a user's own though a class of the tree comes from them: torch's, and the
#: model libraries whose tracing-flag branches their authors keep equal and the model sweep covers (transformers
#: asks ``is_compiling()`` in every model, to skip checks: comparing would run the model twice at each compile, and
#: refuse a model whose GPU numerics differ from eager's by rounding alone); an installed package of none of them
#: whose helper the user's code calls is the user's for ``flag_reads`` (round 70)
LIBRARIES = frozenset({
    "torch", "torchvision", "torchaudio", "torchtext", "torchao", "torchtune", "functorch", "transformers", "timm",
    "diffusers", "accelerate", "peft", "optimum", "sentence_transformers", "huggingface_hub", "open_clip", "xformers",
    "flash_attn", "bitsandbytes", "einops", "lightning", "pytorch_lightning", "mmcv", "mmengine", "fairseq",
    "torch_geometric", "segmentation_models_pytorch", "ultralytics", "numpy"})


#: the top-level packages a compiled tree's classes came from in this process (``user_packages`` adds them): the
#: user's own code wherever it is installed, for every watch (``library_code``). Why process-wide, not per compile
#: (review of round 70): a package counted as the user's only gets more watched (its flag reads compared with eager,
#: refused only where the outputs differ; its classes' attributes watched, refused only where changed;
#: ``disable_names`` swaps in its globals, and back), never fewer, so a later compile of another tree can be refused
#: or warned where a fresh process would not, never run a wrong program silently; and the guard records the reads
#: again at call time (``settings_copies`` -> ``python_reads.record_reads`` -> ``python_state``), which a set
#: cleared after compile would answer without the tree's packages: the user's package's class attributes unwatched.
#: (``module_state`` puts back the globals of this compile's packages alone: ``user_packages``' answer, not this.)
_USERS: set[str] = set()


def library_code(module_name: Any, path: Any = None) -> bool:
    """Whether the code of module ``module_name`` (its file ``path``; looked up in ``sys.modules`` where not given) is
    an installed library's, not the user's: an installed file (``installed_file``) of a package no compiled tree's
    class came from (``user_packages``). The one rule of every watch that leaves libraries alone (``python_state``,
    ``disable_names``, ``guard``, ``hook_state``, ``raw_reads``, ``flag_reads``).

    Why one rule: ``flag_reads`` took an installed package defining a class of the tree for the user's (round 69)
    while the others asked ``installed_file`` alone, so a user's package installed with ``pip install .`` got only
    part of the checks a working-dir copy gets: ``Base.s = 3.0`` on a base class of a settings object's class after
    compile ran the export's 2.0 silently ([4, 4] where eager gave [6, 6], round 70)."""
    import sys

    name = str(module_name or "")
    if name.partition(".")[0] in _USERS:
        return False
    if path is None:
        path = getattr(sys.modules.get(name), "__file__", None)
    return installed_file(str(path or ""))


def library_module(mod: Any) -> bool:
    """``library_code`` of module object ``mod`` (its ``__name__`` and ``__file__``, ``""`` where it has none), in
    one frame. Why: ``disable_names.swap_in`` asks it of each of the ~2,000 modules of ``sys.modules`` at every
    export (round 72: 490,000 calls, 1.2 s of 309 compiles in the two frames)."""
    return (str(getattr(mod, "__name__", None) or "").partition(".")[0] not in _USERS
            and installed_file(str(getattr(mod, "__file__", None) or "")))


def user_packages(torch: Any, module: Any) -> frozenset[str]:
    """The top-level packages (or modules) defining the classes of ``module``'s tree, ``LIBRARIES`` and the standard
    library aside: the user's own code, wherever it is installed.

    Why: ``installed_file`` alone took a user's package installed into site-packages for a library's, so its flag
    branches were not compared (round 69). The classes compiled are the user's by the act of compiling them; a
    helper function of an installed package no class of the tree comes from is the user's for ``flag_reads`` where
    the user's code calls it (round 70). Each package found is recorded for the process (``library_code``): compile
    asks before its export, so every watch of this and any later compile or call takes it for the user's."""
    import sys

    mods = list(module.modules()) if isinstance(module, torch.nn.Module) else [module]
    tops = {str(getattr(type(m), "__module__", "") or "").partition(".")[0] for m in mods}
    out = frozenset(t for t in tops if t and t not in LIBRARIES and t not in sys.stdlib_module_names)
    _USERS.update(out)
    return out
