"""torchvision detection models compiled up to their data-dependent tail, the tail run eagerly.

    split = compile_detector(model, images)      # model: a torchvision detection model in eval mode
    detections = split(images)                   # == model(images): a list of dicts (boxes, labels, scores...)

Why: a detection model's post-processing (score thresholds, ``batched_nms``, top-k per image, the second stage of
a two-stage model on the proposals NMS kept) has a data-dependent number of boxes, which no program holds and the
executor refuses (``boxes.py``'s ``batched_nms``). Planning it at an upper bound (``detections_per_img``) would
change what the model returns (padded lists) and still leave NMS's own data-dependent sizes; the work is elsewhere
anyway: the backbone, FPN and heads are most of it, and their shapes are fixed by the input's. So the split point is
documented and fixed: the submodules in ``STATIC_PARTS`` the model has (``backbone``, the one-stage ``head``, the
region proposal network's ``rpn.head``) are compiled, each at the inputs the model's own eager call gave it, and
``compile_detector`` returns a model sharing every weight with ``model`` whose ``forward`` is torchvision's own,
calling the compiled parts; everything else (the transform, anchors, NMS, ROI heads, mask and keypoint heads,
post-processing) runs eagerly, as in ``model``. The compiled parts equal eager's bitwise (as the sweep's ``DetHead``
does), so the detections are eager's. ``model`` itself is left as it was.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from .compile import compile as aten_compile
from .errors import AtenExecutorError

#: the submodules compiled, where the model has them: their shapes are fixed by the input's
STATIC_PARTS = ("backbone", "head", "rpn.head")


class CompiledPart(nn.Module):
    """A compiled submodule in its place in the model: called as the submodule was (its outputs copies the caller
    owns), its other attributes read from the submodule it replaces (torchvision's code reads ``out_channels``...)."""

    def __init__(self, compiled: Any, original: nn.Module, name: str):
        super().__init__()
        object.__setattr__(self, "_compiled", compiled)   # (not a submodule: no second copy of the weights)
        object.__setattr__(self, "_original", original)
        self.part = name

    def forward(self, *args: Any) -> Any:
        return self._compiled(*args)

    def state_dict(self, *args: Any, **kwargs: Any) -> Any:
        """The replaced submodule's (its weights, which the compiled program holds). Why: the split model's
        ``state_dict()`` had no ``backbone.*`` entry (the part holds no parameter of its own), a checkpoint saved from
        it silently without its backbone and heads."""
        return self._original.state_dict(*args, **kwargs)

    def _load_from_state_dict(self, state_dict: Any, prefix: str, local_metadata: dict, strict: bool,
                              missing_keys: list, unexpected_keys: list, error_msgs: list) -> None:
        """Load the part's keys into the replaced submodule (whose weights the compiled program reads in place), as
        ``load_state_dict`` loads a module tree: each of its modules' own keys, missing and unexpected ones counted in
        the caller's lists. Why: the part holds no parameter of its own, so the split model's
        ``load_state_dict(model.state_dict())`` (what ``state_dict`` gives) was refused with every ``backbone.*`` key
        "unexpected", and with ``strict=False`` loaded none of them, silently: the detections stayed the old weights'
        (round 74). Each submodule's metadata is its own version (torch hands a child only its parent's keys)."""
        assign = local_metadata.get("assign_to_params_buffers", False)

        def load(module: nn.Module, here: str, metadata: dict) -> None:
            module._load_from_state_dict(state_dict, here, metadata, True, missing_keys, unexpected_keys, error_msgs)
            for name, child in module._modules.items():
                if child is not None:
                    meta = {"version": child._version} if "version" in local_metadata else {}
                    load(child, f"{here}{name}.", {**meta, "assign_to_params_buffers": assign} if assign else meta)

        load(object.__getattribute__(self, "_original"), prefix, local_metadata)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(object.__getattribute__(self, "_original"), name)


def _get(model: nn.Module, path: str) -> nn.Module | None:
    for name in path.split("."):
        model = getattr(model, name, None)
        if not isinstance(model, nn.Module):
            return None
    return model


def _parts(model: nn.Module) -> list[str]:
    """The ``STATIC_PARTS`` of ``model``, refused where it is no torchvision detection model (no transform and
    backbone to split at)."""
    if not all(isinstance(getattr(model, n, None), nn.Module) for n in ("transform", "backbone")):
        raise AtenExecutorError(f"compile_detector takes a torchvision detection model (one with a transform and a "
                                f"backbone: RetinaNet, FCOS, SSD, Faster/Mask/Keypoint R-CNN); "
                                f"{type(model).__name__} has none: compile it whole, or its parts yourself")
    if model.training:
        raise AtenExecutorError(f"compile_detector takes a model in eval mode ({type(model).__name__} is training: "
                                "its forward needs targets and returns losses): call model.eval() first")
    return [p for p in STATIC_PARTS if _get(model, p) is not None]


def _own_copy(module: nn.Module) -> nn.Module:
    """A shallow copy of ``module`` with containers of its own (submodules, hooks, parameter and buffer dicts: the
    tensors in them shared). Why not ``copy.copy`` alone: the copy shared ``model``'s hook dicts, so a hook
    registered on the split model (``split.register_forward_hook``) fired on every call of ``model`` too."""
    out = copy.copy(module)
    for name, value in vars(module).items():
        if isinstance(value, (dict, set)):
            object.__setattr__(out, name, copy.copy(value))   # (a defaultdict too)
    return out


class _Split:
    """Mixed into the split model's class: the submodules it shares with ``model`` are converted or put in training
    mode only with ``model`` (their owner), never through the copy. Why: ``split.half()`` (or ``.to("cuda")``,
    ``.train()``) converted or switched ``model``'s own ROI heads and transform, but not the compiled parts, whose
    weights the compiled programs hold: both models were then broken (a dtype or device mismatch mid-call, an
    original in eval mode whose heads asked for training targets). A conversion that changes no tensor (``.eval()``,
    ``.to()`` the dtype and device it has) is taken."""

    def train(self, mode: bool = True):
        if mode:
            raise AtenExecutorError(f"compile_detector's model runs inference only ({type(self).__name__}.train()): "
                                    "its compiled parts were compiled in eval mode and its other submodules are the "
                                    "original model's own; train the original model")
        return super().train(False)   # type: ignore[misc]

    def _apply(self, fn: Any, recurse: bool = True):
        # (the compiled parts' weights too, held by the submodules they replace: a RetinaNet's split, its backbone and
        # head compiled, has no parameter of its own left, and ``.double()`` was taken as changing nothing)
        held = [t for m in self.modules() if isinstance(m, CompiledPart)
                for t in (*m._original.parameters(), *m._original.buffers())]
        with torch.no_grad():
            same = all(fn(t) is t for t in [*self.parameters(recurse=recurse), *self.buffers(recurse=recurse), *held])
        if not same:
            raise AtenExecutorError("compile_detector's model cannot be converted (.to(), .half(), .cuda()...): its "
                                    "compiled parts hold their weights as compiled and its other submodules are the "
                                    "original model's own; convert the original model, then call compile_detector "
                                    "again")
        return self


def _split_class(cls: type) -> type:
    """``cls`` with ``_Split`` mixed in, of the same name (its repr unchanged)."""
    made = type(cls.__name__, (_Split, cls), {"__module__": cls.__module__, "__qualname__": cls.__qualname__})
    return made


def _split_copy(model: nn.Module, parts: list[str], compiled: dict[str, Any]) -> nn.Module:
    """A copy of ``model`` sharing its weights and submodules, but for each compiled part in its place (and a copy of
    each module on the way to one: ``rpn`` for ``rpn.head``), so that ``model`` itself is not changed."""
    top = _own_copy(model)
    top.__class__ = _split_class(type(model))
    for path in parts:
        *parents, leaf = path.split(".")
        holder = top
        for name in parents:
            inner = _own_copy(holder._modules[name])
            holder._modules[name] = inner
            holder = inner
        holder._modules[leaf] = CompiledPart(compiled[path], holder._modules[leaf], path)
    return top


def compile_detector(model: nn.Module, images: Any, **compile_kw: Any) -> nn.Module:
    """``model`` (a torchvision detection model in eval mode) with its ``STATIC_PARTS`` compiled at the inputs its
    eager call on ``images`` (a list of [C, H, W] tensors, or one [N, C, H, W] batch) gives them; ``compile_kw`` go
    to ``runtime.aten.compile`` for each part. Returns a model whose call on images of those sizes returns what
    ``model``'s does; images the transform batches into another shape (another count, a size it resizes
    otherwise) are refused by the compiled backbone, naming its input."""
    parts = _parts(model)
    images = list(images.unbind(0)) if isinstance(images, torch.Tensor) else list(images)
    seen: dict[str, tuple] = {}

    def recorder(path: str):
        def record(_module: nn.Module, args: tuple) -> None:
            seen.setdefault(path, args)
        return record

    hooks = [_get(model, p).register_forward_pre_hook(recorder(p)) for p in parts]
    try:
        with torch.no_grad():
            model(images)
    finally:
        for h in hooks:
            h.remove()
    compiled = {p: aten_compile(_get(model, p), seen[p], **compile_kw) for p in parts if p in seen}
    return _split_copy(model, [p for p in parts if p in compiled], compiled)
