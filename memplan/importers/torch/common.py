"""What every step of the torch import shares: loading torch on call, op names, export failures' advice.

Why a module of its own: tracing, loading, checking and translating all name ops and explain export failures; one
spelling keeps their messages the same.
"""

from __future__ import annotations

import re
import sys
import threading

from ..._forklocks import fork_safe
from ..._interrupt import raise_if_interrupted
from ..._warnblock import warnings_caught
from ...errors import MemplanError
from .. import first_line


def _need_torch():
    try:
        import torch
    except ImportError as exc:
        raise_if_interrupted(exc)   # (a Ctrl-C in torch's C extensions' init is an ImportError: the command's Ctrl-C)
        raise MemplanError("the torch importer needs PyTorch: pip install 'memplan[torch]'") from None
    return torch


#: fake-tensor exceptions whose message is the op's name alone, and what they mean
_FAKE_FAILURES = {
    "DynamicOutputShapeException": "its output shape depends on its input's values (no fake kernel can size it)",
    "DataDependentOutputException": "its output depends on its input's values (no fake kernel can compute it)",
    "UnsupportedOperatorException": "no fake kernel (meta implementation) for it",
}


def _export_failure(exc: BaseException) -> str:
    """An export failure in one line. Why not ``first_line`` alone: torch's fake-tensor exceptions carry only
    the op's name (``linalg_lstsq``: "torch.export failed for M: aten.linalg_lstsq.default"), which said
    neither what failed nor why."""
    keyword_op = _keyword_overload(exc)
    if keyword_op:
        return keyword_op
    first = _with_reason(first_line(exc), str(exc))
    why = _FAKE_FAILURES.get(type(exc).__name__)
    if why is not None and " " not in first:
        if first == "aten.equal.default":   # (a comparison for a Python bool: where, and the way out)
            return f"{first}: {why} ({type(exc).__name__})" + _model_frame(exc) + _equal_advice(exc)
        return f"{first}: {why} ({type(exc).__name__})"
    unknown = _UNKNOWN_OUTPUT.search(first)
    if unknown:   # (torch's advice, registering a pytree, is not what a caller of a library model does)
        return f"{first.split('. ')[0]}: {_output_advice(unknown[1])}"
    unknown = _UNKNOWN_INPUT.search(first)
    if unknown and unknown[1].startswith("transformers.") and unknown[1].endswith("Cache"):
        return f"{first.split('. ')[0]}: {_output_advice(unknown[1]).replace('returns', 'takes')}"
    if first.startswith(_CACHE_LAYERS):
        return _cache_layers_refusal(exc)
    advice = _data_dependent_advice(first, exc) + _swap_advice(first) + _data_read_advice(first) + _quantized_advice(first) \
        + _float_symbol_advice(first)
    if advice and _QUANTIZED_FAKE[1] in first:
        first = first.split(" This could be because")[0]
    return (first + (_packed_rnn(exc) or _raising_call(str(exc)) or _model_frame(exc))
            + (advice or _traced_path(exc) or _broadcast_advice(exc, first)))


#: an FX code line calling an op overload whose name is a Python keyword (``torch.ops.aten.random_.from(...)``)
_KEYWORD_CALL = re.compile(r"torch\.ops\.(\w+)\.(\w+)\.(\w+)\(")


def _keyword_overload(exc: BaseException) -> str:
    """What failed where torch's FX code for the program is no valid Python because an op's overload is named with a
    Python keyword (``Tensor.random_(0, 5)``: ``aten.random_.from``), else "". Why: the refusal was "invalid syntax
    (proxy_tensor.py:1910 in wrapped, line 7)", naming neither the op nor a way out (round 73)."""
    import keyword

    if not isinstance(exc, SyntaxError):
        return ""
    for ns, op, overload in _KEYWORD_CALL.findall(exc.text or ""):
        if keyword.iskeyword(overload):
            way = (f" (draw with torch.randint(low, high, size) instead of Tensor.{op}(low, high), or call "
                   f"Tensor.{op}(high) with its 'to' overload)" if op.startswith("random") else "")
            return (f"{ns}.{op}.{overload}: torch cannot write the program's code for this op (its overload is named "
                    f"{overload!r}, a Python keyword: a torch bug){way}")
    return ""


def _equal_advice(exc: BaseException) -> str:
    """What to do where export met ``aten.equal`` (``torch.equal``: a Python bool of two tensors' values). Why: the
    refusal was "aten.equal.default: its output depends on its input's values" and nothing more, no line nor way
    out (round 68: torch 2.11's ``quantile``, whose kernel calls ``equal`` while traced, refused every model using
    it, where torch 2.14 exports it; a model's own ``torch.equal`` is refused on both)."""
    import linecache

    lines = []   # (every frame but torch's: a model defined beside this project's code, the sweep's blocks, too)
    tb = exc.__traceback__
    while tb is not None:
        if "/torch/" not in tb.tb_frame.f_code.co_filename:
            lines.append(linecache.getline(tb.tb_frame.f_code.co_filename, tb.tb_lineno))
        tb = tb.tb_next
    if any("quantile(" in line for line in lines):
        torch = sys.modules.get("torch")
        version = getattr(torch, "__version__", "this").split("+")[0]
        return (f"; torch {version}'s quantile compares tensors with torch.equal while torch.export traces it, "
                "which one fixed program cannot hold (torch 2.14 exports quantile): use a torch that exports it, "
                "compute the quantile with torch.sort and an interpolation between the two nearest ranks "
                "(torch.kthvalue for one rank), or compile only the part of the model before or after that line")
    return ("; forward compares two tensors' values for a Python bool there (torch.equal), which one fixed program "
            "cannot hold for every call: compare on tensors ((a == b).all(), then torch.where on it), or compile "
            "only the part of the model after that line")


#: torch's first lines where ``forward`` made a Python number or branch of a tensor's values
#: (``GuardOnDataDependentSymNode``: ``if mask.any():``, ``[w] * (n // w)`` with ``n`` from ``.item()``/``.tolist()``)
_DATA_DEPENDENT = ("Could not guard on data-dependent expression",
                   "Could not extract specialized integer from data-dependent expression")


def _data_dependent_advice(first: str, exc: BaseException | None = None) -> str:
    """What to do where torch.export refused a Python value made of a tensor's values (``first``: torch's line),
    else "". Why: the refusal named the line (Qwen3-ASR's ``cu_chunk_lens += [w] * (cnn_len // w)``, FSMT's
    ``if not padding_mask.any():``) but torch's advice (``torch._check``, ``guard_or_false``) is about editing the
    model's code, and nothing said what a caller can do (round 66's CPU sweep). One fixed program holds one such
    value; the ways out are the caller's."""
    if not first.startswith(_DATA_DEPENDENT):
        return ""
    detection = _detection_advice(exc) if exc is not None else ""
    if detection:
        return detection
    return ("; forward makes a Python number or branch of a tensor's values there (.item(), .tolist(), int(t), "
            "'if t.any():'), which one fixed program cannot hold for every call: compute that value before the "
            "call and pass it in as an argument, compute it on tensors (torch.where), or compile only the part of "
            "the model after that line") + (_experts_advice(exc) if exc is not None else "")


#: torchvision's box operations and detection models' code: where a detection model's post-processing runs
_DETECTION_FILES = ("/torchvision/ops/boxes.py", "/torchvision/models/detection/")


def _detection_advice(exc: BaseException) -> str:
    """What to do where the failure is in a torchvision detection model's post-processing (``batched_nms`` and the
    score thresholds, top-k and second stage around it), else "". Why: the generic advice ("compile only the part
    of the model after that line") points the wrong way there: the part with fixed shapes is the one before (the
    backbone, FPN and heads), and round 70 gave it an API (``runtime.aten.detection.compile_detector``) whose
    detections equal eager's; the importer plans those submodules on their own."""
    tb, last = exc.__traceback__, None
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if not any(part in name for part in _NOT_MODEL):
            last = name
        tb = tb.tb_next
    if last is None or not any(part in last for part in _DETECTION_FILES):
        # torch 2.11 raises the guard failure from its own frames and names the model's only in its text
        # ("Caused by: (torchvision/ops/boxes.py:97 in _batched_nms_coordinate_trick)", the path shortened)
        text = str(exc)
        said = _RAISING_CALL.search(text) or _CAUSED_BY.search(text)
        if said is None or not any(part.lstrip("/") in said[1] for part in _DETECTION_FILES):
            return ""
    return ("; it is a torchvision detection model's post-processing (score thresholds, batched_nms, the boxes kept "
            "per image), whose number of boxes depends on the scores: no fixed program holds it. Compile the model "
            "up to it and run it eagerly: runtime.aten.detection.compile_detector(model, images) compiles the "
            "backbone and heads (backbone, head or rpn.head) and returns a model whose detections equal eager's; "
            "to plan, import those submodules apart (memplan.from_torch(model.backbone, (batch,)), batch being "
            "model.transform(images)[0].tensors)")


#: where transformers dispatches a mixture of experts' ``forward`` to the implementation its config names
#: (``use_experts_implementation``'s wrapper: ``integrations/moe.py``'s ``forward``)
_EXPERTS_DISPATCH = ("/transformers/integrations/moe.py", "forward")


def _experts_advice(exc: BaseException) -> str:
    """What to do where the failure passed through transformers' experts dispatch running its "eager" experts, else
    "". Why: that loop (``for expert_idx in expert_hit``, over the experts the tokens picked) has a data-dependent
    trip count, while the same class also runs "grouped_mm" or "batched_mm", every expert over fixed shapes, which
    export and the executor take (round 70: OpenAI's privacy filter defaults to "eager" for its accumulation order
    and was refused with the generic advice; set to "grouped_mm" it compiles bitwise). Only a class so decorated
    offers the switch; the caller chooses it, as it may round differently from the loop."""
    import linecache

    tb, last = exc.__traceback__, None
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename.endswith(_EXPERTS_DISPATCH[0]) and code.co_name == _EXPERTS_DISPATCH[1]:
            experts = tb.tb_frame.f_locals.get("self")
            chosen = getattr(getattr(experts, "config", None), "_experts_implementation", None)
            if chosen == "eager":
                return (f"; it is {type(experts).__name__}'s loop over the experts the tokens picked (transformers' "
                        "\"eager\" experts implementation, which this model's config holds): choose one that runs "
                        "every expert over fixed shapes before compile, model.set_experts_implementation"
                        "(\"grouped_mm\") or \"batched_mm\" (from_pretrained(..., experts_implementation="
                        "\"grouped_mm\")); it may round differently from the eager loop")
        if not any(part in code.co_filename for part in _NOT_MODEL):
            last = tb
        tb = tb.tb_next
    line = linecache.getline(last.tb_frame.f_code.co_filename, last.tb_lineno) if last is not None else ""
    if re.search(r"\bfor\b.*\bexpert", line):   # (NLLB-MoE's, Switch Transformers' experts: no other implementation)
        # (round 71: named, and whether transformers has another implementation: for NLLB-MoE, Switch
        # Transformers, JetMoE 5.25's set_experts_implementation raises "does not support setting experts
        # implementation"; the dense way out was offered without saying that it rounds differently)
        owner = last.tb_frame.f_locals.get("self")
        name = f" ({type(owner).__name__})" if owner is not None else ""
        code = getattr(getattr(type(owner), "forward", None), "__code__", None)
        library = (type(owner).__module__.startswith("transformers.") and code is not None
                   and not code.co_filename.endswith(_EXPERTS_DISPATCH[0]))   # (not use_experts_implementation's)
        return (f"; it is a mixture of experts' loop over the experts the tokens picked{name}, which has no "
                "implementation over fixed shapes in this model"
                + (" (transformers offers none: model.set_experts_implementation refuses it)" if library else "")
                + ": compile the parts before and after the experts apart, or run every expert on every row and "
                "weight the results (zero for the experts a row did not pick) in a subclass of the experts module, "
                "which rounds differently from the loop (a product over every row need not equal one over the rows "
                "picked bit for bit, and a zero weight times an expert's inf is NaN)")
    return ""


def _swap_advice(first: str) -> str:
    """What to do where ``forward`` converted a submodule's parameters during the call (``Module.to()``, ``.float()``:
    ``nn.Module._apply``), else "". Why: torch's "_apply(): Couldn't swap Linear.weight" said neither what the model
    did nor the way out (NLLB-MoE's router, ``self.classifier = self.classifier.to(self.dtype)`` at every call, a
    conversion to the dtype it has: round 66's CPU sweep)."""
    if "_apply(): Couldn't swap" not in first:
        return ""
    return ("; forward converts a submodule's parameters during the call (Module.to(), .float(), .half()) to "
            "another dtype or device, which torch.export cannot trace (one to the dtype and device they have is "
            "taken, as the no-op it is): convert the model before compile and take the conversion out of forward "
            "(a library model's own: set that method to a no-op on the submodule)")


def _quantized_advice(first: str) -> str:
    """What to do where torch's fake tensors refused to make a quantized tensor during the export (torch 2.11's
    "quantized nyi in meta tensors" for ``torch.quantize_per_tensor``), else "". Why: the words are torch's internals
    and said nothing of a way out; torch 2.14 exports such a program, and ``_check_not_quantized`` refuses its node
    with the same advice."""
    if not any(words in first for words in _QUANTIZED_FAKE):
        return ""
    return ("; forward makes or reads a quantized tensor (torch.quantize_per_tensor, a quantized weight...), whose "
            "bytes torch's fake tensors do not describe (quantized programs are not supported; plan the float "
            "program, or a fake-quantized one)")


#: torch.export's failure on a TorchScript class object a module holds (``torch.classes.quantized.*PackedParamsBase``:
#: eager-mode quantization's packed weights), which has no ``__obj_flatten__`` to trace it by
_SCRIPT_OBJECT = re.compile(r"(__torch__\.torch\.classes\.[\w.]+) \(of Python compilation unit at: \w+\) does not "
                            r"have a field with name '__obj_flatten__'")


def packed_weights_refusal(torch, module: object, first: str) -> str:
    """The refusal where torch.export failed on a TorchScript class object ``module``'s tree holds, naming the
    submodule holding it (and the quantized module it belongs to), else "". Why: an eager-mode quantized model
    (``quantize_dynamic``, ``prepare`` + ``convert``: torchvision's ``quantization.*(quantize=True)``) was refused with
    torch's "__torch__.torch.classes.quantized.LinearPackedParamsBase (of Python compilation unit at: 0) does not have
    a field with name '__obj_flatten__'", naming neither the submodule nor a way out (round 75)."""
    found = _SCRIPT_OBJECT.search(first)
    if found is None or not hasattr(module, "named_modules"):
        return ""
    kind = found[1].removeprefix("__torch__.")
    root = type(module).__name__
    modules = dict(module.named_modules())
    for path, sub in modules.items():
        held = next((name for name, value in vars(sub).items() if isinstance(value, torch._C.ScriptObject)
                     and value._type().qualified_name() == found[1]), None)
        if held is None:
            continue
        # (the quantized module it belongs to: the holder is often a helper of its own, a dynamic Linear's
        # ``_packed_params``, a dynamic LSTM's ``_all_weight_values.0``)
        parts = path.split(".") if path else []
        prefixes = [".".join(parts[:k]) for k in range(len(parts), -1, -1)]   # (the holder up to the root)
        owner_path = next((q for q in prefixes if "Quantized" in modules[q]._get_name()), path)
        owner = modules[owner_path]
        where = f"{root}.{owner_path}" if owner_path else root
        attr = f"{path[len(owner_path):].lstrip('.')}.{held}".lstrip(".")
        return (f"{where} ({owner._get_name()}) holds its weights as a TorchScript object ({attr}: {kind}, "
                "eager-mode quantization's packed weights: torch.ao.quantization.quantize_dynamic or convert), which "
                "torch.export cannot trace: quantized programs are not supported; plan the float model (before "
                "quantize_dynamic / convert), or a fake-quantized one (after prepare or prepare_qat)")
    return ""


#: torch's words where its fake tensors meet a quantized tensor: 2.11's own refusal, and the dispatcher's (every
#: release) for a quantized tensor the module holds, a 600-character list of backends cut at its first sentence
_QUANTIZED_FAKE = ("quantized nyi in meta tensors", "from the 'QuantizedMeta' backend")


#: torch 2.11's failure where forward checks a float read from a tensor's values (``v = x.max().item()`` then
#: ``torch._check(v < 100)``): its constraint solver prints the float's unbacked symbol (``zuf0``) it does not know
_FLOAT_SYMBOL = re.compile(r"Unknown symbol (zuf\d+) created by constraints solver")


def _float_symbol_advice(first: str) -> str:
    """What to do where torch's export failed on a check of a float read from a tensor's values, else "". Why: "Unknown
    symbol zuf0 created by constraints solver" (torch 2.11; 2.14 exports it) names a symbol of torch's own and, with
    sympy's printer frame taken for the model's, pointed at no line of the model and said nothing of a way out."""
    found = _FLOAT_SYMBOL.search(first)
    if found is None:
        return ""
    return (f"; forward checks a float read from a tensor's values (torch._check on `t.item()` of a float tensor, "
            f"torch's symbol {found[1]}), which this torch cannot export: drop that check from forward, pass the value "
            "in as an input, or use a newer torch (2.14 exports it)")


def _data_read_advice(first: str) -> str:
    """What to do where forward read a traced tensor's data outside torch's ops (torch's "its data is not allocated
    yet": the fake tensor has none), else "". Why: UDOP's ``rows, cols = zip(*ind)`` then ``patch_inds[rows, cols]``
    (an index of a tuple of 0-dim tensors, turned into a tensor through their data) was refused with torch's line
    and the model's, and nothing of what read the data nor the way out (round 67's CPU sweep); torch's own next
    line (wrap "a custom kernel" into a custom op) is about kernels, not this."""
    if "its data is not allocated yet" not in first:
        return ""
    return ("; forward reads a tensor's data in Python there (a list or tuple of tensors made into one: "
            "torch.tensor([t, u]), an index that is a tuple of 0-dim tensors, zip(*t)), which torch.export "
            "traces without data: build it with tensor ops (torch.stack, one index tensor per dimension: "
            "t[idx[:, 0], idx[:, 1]]), or compile only the part of the model after that line")


#: the calls by which a model's code asks whether torch is tracing it (transformers' ``is_torchdynamo_compiling()`` and
#: ``is_tracing(t)``, ``torch.compiler.is_compiling()`` / ``is_exporting()``, ``torch.jit.is_tracing()``)
_TRACING_CHECKS = frozenset({"is_torchdynamo_compiling", "is_torchdynamo_exporting", "is_dynamo_compiling",
                             "is_compiling", "is_exporting", "is_tracing", "is_fx_tracing"})


def _traced_path(exc: BaseException) -> str:
    """What to do where export failed in a model function that asks whether torch is tracing it, else "". Why: such
    a function takes another path under torch.export than in eager, and torch's line is that path's failure, which
    eager never meets (Switch Transformers' encoder makes its all-ones ``attention_mask`` only when not compiling,
    then subscripts it: "'NoneType' object is not subscriptable"; round 67's CPU sweep): the refusal named the line,
    not that eager's path differs nor the way out. Only the deepest model frame counts (transformers' decorators ask
    too, on every call)."""
    found = None
    tb = exc.__traceback__
    while tb is not None:
        if not any(part in tb.tb_frame.f_code.co_filename for part in _NOT_MODEL):
            found = tb.tb_frame.f_code
        tb = tb.tb_next
    asks = sorted(_TRACING_CHECKS.intersection(found.co_names)) if found is not None else []
    if not asks:
        return ""
    return (f"; {found.co_name} asks whether torch is tracing it ({asks[0]}()) and takes another path under "
            "torch.export than in eager, which failed there: pass the optional arguments that path leaves unset "
            "(a transformers model: attention_mask) explicitly, or compile only the part of the model after that "
            "line")


#: torch's first lines where two tensors' shapes did not broadcast (the fake-tensor check's and the kernels' own)
_NO_BROADCAST = re.compile(r"^Attempting to broadcast a dimension of length|^The size of tensor a \(\d+\) must match")


def _broadcast_advice(exc: BaseException, first: str) -> str:
    """What to do where export failed on two tensors whose shapes do not broadcast, else "". Why: Nystromformer
    (landmark attention, fewer landmarks than tokens) was refused with torch's "Attempting to broadcast a dimension
    of length 8 at -2!" and its line, ``attention_scores = attention_scores + attention_mask``, though eager ran the
    same inputs (round 67's CPU sweep): transformers drops an all-ones attention mask in eager and builds it in full
    under torch.export, and the model cannot add a (tokens, tokens) mask to its (landmarks, tokens) scores (eager
    fails the same way given a padded mask). Nothing said that eager's path differs nor the way out; a mask among
    the failing frame's tensors is named with its shape, the way out being the part of the model after it is made."""
    if not _NO_BROADCAST.search(first):
        return ""
    found = None
    tb = exc.__traceback__
    while tb is not None:
        if not any(part in tb.tb_frame.f_code.co_filename for part in _NOT_MODEL):
            found = tb
        tb = tb.tb_next
    masks = []
    if found is not None:
        import linecache

        frame = found.tb_frame
        code = linecache.getline(frame.f_code.co_filename, found.tb_lineno)
        masks = [(name, value) for name, value in frame.f_locals.items()
                 if "mask" in name.lower() and re.search(rf"\b{re.escape(name)}\b", code)
                 and isinstance(getattr(value, "shape", None), tuple)]
    if masks:
        name, value = masks[0]
        return (f"; the mask there ({name}, shape {list(value.shape)}) does not fit that line's other tensor: "
                "torch.export builds an attention mask in full where eager drops an all-ones one (transformers' "
                "mask functions ask whether torch is tracing), and the model cannot take a mask there (eager fails "
                "the same way given a padded attention_mask): compile only the part of the model after the mask is "
                "made, called without one as eager calls it for an all-ones mask (a transformers encoder: "
                "model.encoder on the embeddings' output), or configure the model so that the mask fits there")
    return ("; that line's tensors have shapes that do not broadcast for these inputs under torch.export: where "
            "eager runs the same inputs, the model takes another path when exported (an optional tensor eager "
            "skips, built in full); compile only the part of the model after that tensor is made, or give inputs "
            "of sizes the model's code takes")


#: Dynamo's line after a reason it gives on the next lines (``torch.cond`` whose branch writes a buffer in place)
_EXPLANATION = re.compile(r"^\s*Explanation:\s*(.+?)(?: Found in <.*)?$", re.M)
_MUTATED = re.compile(r"Input mutation detected at \[([\w.]+)\]")


def _with_reason(first: str, text: str) -> str:
    """``first`` with the reason torch gives on its next lines where ``first`` ends announcing one (``... Got graph
    break/error:``), and Dynamo's explanation of it. Why: a ``torch.cond`` branch writing a buffer in place was
    refused as "This higher order operator doesn't work unless it is captured completely with torch.compile. Got
    graph break/error:", the reason ("Encountered input mutation during higher order op tracing") cut off with
    every line after the first (round 61)."""
    if not first.rstrip().endswith(":"):
        return first
    rest = [line.strip() for line in text.strip().splitlines()[1:] if line.strip()]
    if not rest:
        return first
    explained = _EXPLANATION.search(text)
    written = _MUTATED.search(text)   # (Dynamo's name of the tensor written: ``..._buffers_b_`` for ``self.b``)
    why = "; ".join(([explained[1].rstrip(". ")] if explained else []) + ([f"written: {written[1]}"] if written else []))
    why = f" ({why})" if why else ""
    reason = rest[0].rstrip(". ")
    reason = reason if len(reason) <= 300 else reason[:297] + "..."   # (a line of fake tensors' reprs runs long)
    return f"{first.rstrip()} {reason}{why}"


#: the frames no model's code is in: torch's own, Python's, and this project's (its watches wrap ``forward``)
_NOT_MODEL = ("/torch/", "/sympy/", "/memplan/", "/runtime/aten/", "/contextlib.py", "<frozen ", "/functools.py")
#: torch's own layers (``nn.BatchNorm1d``): a place to name where no frame of the model's own code is on the stack
_TORCH_LAYERS = "/torch/nn/modules/"
#: ``nn.Module.__call__``'s own file, on the stack of every module call: no layer's code (a guard of a program exported
#: again, run by a forward pre-hook, was placed "at module.py:1794 in _call_impl: `return forward_call(...)`")
_MODULE_CALL = "/torch/nn/modules/module.py"
#: one frame line of a traceback as FX records it in ``node.meta["stack_trace"]``
_FRAME = re.compile(r'File "(.+)", line (\d+), in (.+)$')


def _model_frame(exc: BaseException) -> str:
    """`` (at FILE:LINE in FN: `CODE`)`` of the deepest frame of the model's own code (the user's or a library's such
    as transformers', not torch's) an export failure passed through, else "". Why: torch's first line names no place
    of the model ("_apply(): Couldn't swap Linear.weight" for Switch Transformers' router calling ``.to()`` on its
    classifier in ``forward``, round 58)."""
    import linecache

    found = layer = None
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if not any(part in name for part in _NOT_MODEL) and name not in _NO_FILE:
            found = (name, tb.tb_lineno, tb.tb_frame.f_code.co_name)
        elif _TORCH_LAYERS in name and not name.endswith(_MODULE_CALL):
            layer = (name, tb.tb_lineno, tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    found = found or layer   # (a torch layer exported as the root: ``BatchNorm1d(momentum=None)``'s
    # ``float(self.num_batches_tracked)`` in train mode was refused naming no line at all, round 73)
    if found is None:
        return ""
    code = " ".join(linecache.getline(found[0], found[1]).split())[:120]
    where = f"{found[0].rsplit('/', 1)[-1]}:{found[1]} in {found[2]}"
    return f" (at {where}: `{code}`)" if code else f" (at {where})"


def node_source(n: object) -> str:
    """`` (at FILE:LINE in FN: `CODE`)`` of the deepest frame of the model's own code (not torch's) in the stack trace
    export recorded for FX node ``n``, else "". Why: a refusal of a node ("node 'split_with_sizes'
    (aten.split_with_sizes.default): data-dependent size u0") named an ATen op a user never wrote, not the line of
    the model that made it (JetMoE's ``split(counts.tolist())`` of its router, round 60)."""
    trace = getattr(n, "meta", {}).get("stack_trace") if n is not None else None
    if not isinstance(trace, str):
        return ""
    lines = trace.splitlines()
    found = None
    for k, line in enumerate(lines):
        m = _FRAME.match(line.strip())
        if m and not any(part in m.group(1) for part in _NOT_MODEL):
            code = lines[k + 1].strip() if k + 1 < len(lines) and not _FRAME.match(lines[k + 1].strip()) else ""
            found = (m.group(1), m.group(2), m.group(3), code)
    if found is None:
        return ""
    where = f"{found[0].rsplit('/', 1)[-1]}:{found[1]} in {found[2]}"
    code = " ".join(found[3].split())[:120]
    return f" (at {where}: `{code}`)" if code else f" (at {where})"


def _packed_rnn(exc: BaseException) -> str:
    """What failed where an RNN module's ``forward`` given a ``PackedSequence`` raised (a frame of its own with a
    ``PackedSequence`` argument), else "". Why: torch.export traces the packed path's per-step batch sizes as a
    tensor and fails inside it ("zeros(): argument 'size' failed to unpack ... FakeTensor"), which named neither the
    module nor the packing (round 58: an LSTM over ``pack_padded_sequence``)."""
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        given = (frame.f_locals.get("orig_input"), frame.f_locals.get("input"))   # (nn.LSTM's rebinds ``input``)
        module = frame.f_locals.get("self")
        if frame.f_code.co_name == "forward" and any(type(v).__name__ == "PackedSequence" for v in given):
            return (f" (in {type(module).__name__}.forward given a PackedSequence: torch.export cannot trace its "
                    "per-step batch sizes; pass the padded batch, and mask or gather the padded steps' outputs)")
        tb = tb.tb_next
    return ""

#: torch.export's note of the user's line a data-dependent guard came from, after its advice (pages of it); the
#: code is the line right below the frame's, where torch found the source (none for ``<stdin>`` or ``<string>``:
#: ``\s*`` there took torch's next paragraph, "The error above occurred when calling torch.export.export...", as the
#: model's code, round 73)
_RAISING_CALL = re.compile(r"The following call raised this error:\n\s*File \"([^\"]+)\", line (\d+), in ([\w<>.]+)\n"
                           r"[ \t]*([^\n]*)")

#: files no user can open: code made by ``exec``/``eval`` (torch's own ``<string>`` lambdas among it: a train-mode
#: ``BatchNorm1d(momentum=None)``'s ``float(num_batches_tracked)`` was placed "at <string>:1 in <lambda>", round 73)
_NO_FILE = ("<string>",)

#: its shorter note of the frame (``transformers/models/led/modeling_led.py:192 in forward``)
_CAUSED_BY = re.compile(r"Caused by: \(([^()\n]+:\d+ in [\w<>.]+)\)")


def _raising_call(text: str) -> str:
    """`` (at FILE:LINE in FN: `CODE`)`` where torch says which call raised a data-dependent guard, else "". Why:
    the first line alone ("Could not guard on data-dependent expression Eq(u0, 1)") named neither the model's line
    nor its condition (round 58: FSMT's ``if not padding_mask.any():``, LED's, Longformer's, ViLT's)."""
    found = _RAISING_CALL.search(text)
    if found is None:   # (torch's "Caused by:" names torch's own frame for a guard in ``__torch_function__``)
        cause = _CAUSED_BY.search(text)
        return f" (at {cause[1].rsplit('/', 1)[-1]})" if cause and not cause[1].startswith(("_", "torch/")) else ""
    if any(part in found[1] for part in _NOT_MODEL + _NO_FILE):   # (a frame of no model's: the ATen runtime's value getter
        return ""   # on ``torch.Tensor`` while an export watches, round 68; ``_model_frame`` finds the model's)
    where = f"{found[1].rsplit('/', 1)[-1]}:{found[2]} in {found[3]}"
    code = " ".join(found[4].split())[:120]
    return f" (at {where}: `{code}`)" if code else f" (at {where})"


#: torch.export's message for a forward returning an object it cannot flatten (transformers' ``DynamicCache``)
_UNKNOWN_OUTPUT = re.compile(r"Found <class '([^']+)'> in output, which is not a known type")
#: its message for an argument it cannot flatten (a transformers ``EncoderDecoderCache`` passed as ``past_key_values``)
_UNKNOWN_INPUT = re.compile(r"Unsupported input type <class '([^']+)'>")


#: transformers' own refusal in its ``DynamicCache`` flattening (``integrations.executorch._get_cache_dict``) of a cache
#: holding a layer other than its key/value ones (a Mamba, Jamba, LFM2 or Qwen3-Next cache's ``LinearAttentionLayer``)
_CACHE_LAYERS = "This pytree flattening function should be applied to DynamicCache containing only"


def _cache_layers_refusal(exc: BaseException) -> str:
    """The refusal where transformers' ``DynamicCache`` flattening met a layer it cannot flatten, naming the layer,
    whether ``forward`` returned the cache or was given it, and the way out. Why: every hybrid or recurrent
    transformers model called as its users call it (``use_cache`` at its default, True: Mamba, Mamba2, FalconMamba,
    Jamba, Bamba, Zamba, LFM2, Qwen3-Next) returns a ``DynamicCache`` of ``LinearAttentionLayer``s (their conv and
    recurrent states), and was refused with transformers' "This pytree flattening function should be applied to
    DynamicCache containing only `DynamicLayer`, `DynamicSlidingWindowLayer` and `DummyLayer` (at executorch.py:1091
    in _get_cache_dict ...)", naming neither the model's cache nor ``use_cache=False`` (round 76)."""
    cache, returned = None, False
    tb = exc.__traceback__
    while tb is not None:   # (the flattening's frame holds the cache; torch's export wrapper, the output it flattens)
        frame = tb.tb_frame
        if frame.f_code.co_name == "_get_cache_dict":
            cache = frame.f_locals.get("cache")
        elif "tree_out" in frame.f_locals and "/torch/export/" in frame.f_code.co_filename.replace("\\", "/"):
            returned = True
        tb = tb.tb_next
    kinds = [type(layer).__name__ for layer in getattr(cache, "layers", None) or ()]
    other = next(((k, kind) for k, kind in enumerate(kinds)
                  if kind not in ("DynamicLayer", "DynamicSlidingWindowLayer", "DummyLayer")), None)
    layer = f" whose layer {other[0]} is a {other[1]}" if other else " holding a layer of another kind"
    states = layer_states(cache.layers[other[0]]) if other else []
    held = f"that layer's {', '.join(states)}" if states else "a layer's other states"
    what = (f"a DynamicCache{layer}, which memplan cannot flatten (transformers' flattening of a DynamicCache holds "
            f"the keys and values of DynamicLayer and DynamicSlidingWindowLayer layers alone, not {held})")
    if returned:
        return (f"forward returns its cache as {what}: pass kwargs={{'use_cache': False}} (the model's default, "
                "use_cache=True, returns it)")
    return (f"forward is given {what}: export the step without that cache (use_cache=False), or pass its states "
            "as tensors")


def layer_states(layer: object) -> list[str]:
    """The names of the tensors a transformers cache layer holds beside its ``keys`` and ``values`` (a Mamba's
    ``LinearAttentionLayer``: ``conv_states``, ``recurrent_states``; DeepSeek-V3.2's ``DynamicIndexedLayer``:
    ``indexer_keys``), in the layer's own order: what a cache's flattening drops. Why: round 76's refusals called
    every such layer "a recurrent or linear-attention layer's conv and recurrent states" and its model "hybrid or
    recurrent", also a DeepSeek-V3.2's or GLM-MoE-DSA's indexed attention layer, whose dropped state is its indexer's
    keys (round 77). A 0-d tensor is no state named: a count (``cumulative_length``, a ``LinearAttentionLayer``'s
    ``cumulative_length_linear``) or a setting kept as a tensor (a sliding-window layer's ``_sliding_window_tensor``),
    which an empty recurrent layer's refusal named as all it dropped (review of round 77)."""
    def tensor(value: object) -> bool:
        shape = getattr(value, "shape", None)
        return (shape is not None and hasattr(value, "dtype") and not isinstance(value, type)
                and not (isinstance(shape, tuple) and len(shape) == 0))

    def holds(value: object) -> bool:   # (a LinearAttentionLayer's conv_states: {state index: tensor or None})
        if isinstance(value, dict):
            value = list(value.values())
        return tensor(value) or (isinstance(value, (list, tuple)) and any(tensor(v) for v in value))

    return [name for name, value in getattr(layer, "__dict__", {}).items()
            if name not in ("keys", "values") and holds(value)]


def _output_advice(type_name: str) -> str:
    """What to pass for a forward that returns a ``type_name`` torch.export cannot flatten. Why: a tiny GPT-2
    built from a config (``from_torch(model, (ids,))``) failed with torch's advice to register a pytree for
    ``DynamicCache``, where the KV cache is merely an option of the model's forward. transformers' own
    ``DynamicCache`` is flattened (``transformers_cache_registered``); its other caches are not."""
    if type_name.startswith("transformers.") and type_name.rsplit(".", 1)[-1].endswith("Cache"):
        return (f"the forward returns its KV cache as a {type_name.rsplit('.', 1)[-1]}, which memplan cannot flatten "
                "(it flattens transformers' DynamicCache and EncoderDecoderCache, with transformers' own pytree "
                "registrations); pass kwargs={'use_cache': False}, or a DynamicCache as past_key_values")
    if type_name.rsplit(".", 1)[-1].endswith("Cache"):
        return "the forward returns its KV cache; pass kwargs={'use_cache': False} (or a cache the export takes)"
    return "make the forward return tensors, tuples, lists or dicts"


#: the serialized pytree names of transformers' caches that ``transformers_cache_registered`` registers
TRANSFORMERS_CACHES = frozenset({"transformers.cache_utils.DynamicCache", "transformers.cache_utils.EncoderDecoderCache"})


def transformers_cache_registered(torch) -> None:
    """Register transformers' ``DynamicCache`` as a pytree node with transformers' own function
    (``transformers.integrations.executorch.register_dynamic_cache_export_support``: its key and value tensors, layer
    by layer, are the leaves), where transformers is imported already and it is not registered yet; else nothing.

    Why: a decoder called with ``use_cache=True`` (transformers' default) returns its KV cache as a ``DynamicCache``,
    and a decode step takes one as ``past_key_values``: torch.export refused both ("not a known type"), though
    decode graphs with a KV cache are what an inference runtime plans. Flattened, the cache's tensors are plain graph
    inputs and outputs. Why for good, not for the call: the program's input and output structure names the class,
    and ``ep.module()``, ``torch.export.save`` and the runtime that runs the program unflatten through it after the
    call; it is the registration transformers makes for its own exports (which then find it made). Not where
    transformers is not imported: no module of this process can hold a cache then, and importing it costs seconds.
    An encoder-decoder's ``EncoderDecoderCache`` (T5, BART) is registered too (``_register_encoder_decoder_cache``)."""
    if "transformers" not in sys.modules:
        return
    try:
        with warnings_caught():
            from transformers.cache_utils import DynamicCache
            if DynamicCache not in torch.utils._pytree.SUPPORTED_NODES:   # (else by transformers' exporter, the user...)
                from transformers.integrations.executorch import register_dynamic_cache_export_support
                register_dynamic_cache_export_support()
    except Exception:  # noqa: BLE001 - a transformers without it: torch's refusal names the class, and the advice stands
        return
    try:   # (an encoder-decoder's, T5's or BART's: its two DynamicCaches)
        with warnings_caught():
            from transformers.cache_utils import EncoderDecoderCache
        if EncoderDecoderCache not in torch.utils._pytree.SUPPORTED_NODES:
            _register_encoder_decoder_cache(torch, EncoderDecoderCache)
    except Exception:  # noqa: BLE001 - a transformers without it, or one whose class takes no (self, cross) caches
        return


def _register_encoder_decoder_cache(torch, cls: type) -> None:
    """Register transformers' ``EncoderDecoderCache`` as a pytree node of two children, its self-attention and
    cross-attention caches (``DynamicCache``s, flattened by their own registration), rebuilt as ``cls(self, cross)``.

    Why ours, not transformers 5's exporter's generic registration (``exporters.exporter_dynamo.register_pytree_node``):
    that one's context names the classes to rebuild (``transformers.cache_utils:DynamicLayer``) and its unflattening
    imports and calls whatever a context names; a ``.pt2``'s context is the file's word, and a program loaded in this
    process unflattens through the registration. This one's context is None: the file names no class."""
    pytree = torch.utils._pytree
    try:
        pytree.register_pytree_node(
            cls, lambda c: ([c.self_attention_cache, c.cross_attention_cache], None),
            lambda children, _context: cls(*children),
            serialized_type_name=f"{cls.__module__}.{cls.__name__}",
            flatten_with_keys_fn=lambda c: ([(pytree.GetAttrKey("self_attention_cache"), c.self_attention_cache),
                                             (pytree.GetAttrKey("cross_attention_cache"), c.cross_attention_cache)],
                                            None))
    except ValueError as exc:   # (registered since, by another thread)
        if "already registered" not in str(exc):
            raise


#: non-view ops whose result keeps its input's storage offset, in a storage like the input's (torch's
#: ``clone_preserve_strides``): results torch's fake-tensor cache rebuilds otherwise (``_traced``)
_KEEPS_STORAGE = frozenset({"slice_scatter", "select_scatter", "diagonal_scatter", "as_strided_scatter"})


#: one export (or decomposition) at a time in the process (``_traced``; ``runtime.aten.program.load_program`` holds it
#: around its whole export, state snapshots included). Why: torch's export is not thread-safe (its module-hierarchy
#: global, the proxy mode's slot), so two threads exporting at once (``runtime.aten.compile`` of two modules) failed in
#: torch ("ProxyTorchDispatchMode slot already occupied", "_EXPORT_MODULE_HIERARCHY must not be None", "Trying to pop
#: empty mode stack"), each naming its module as the failure. Reentrant: held by a caller around its own exports
EXPORT_LOCK = fork_safe(threading.RLock())


def _target_name(target) -> str:
    """An FX target as messages name it: an ATen op as torch prints it (``aten.add.Tensor``), a Python function
    by its qualified name (its repr carries a memory address: messages differed from run to run)."""
    if callable(target) and not hasattr(target, "_schema") and hasattr(target, "__qualname__"):
        return f"{getattr(target, '__module__', None) or '?'}.{target.__qualname__}"
    return str(target)


def _op_name(target) -> str:
    s = str(target)
    s = s[len("aten."):] if s.startswith("aten.") else s
    return s.removesuffix(".default")
