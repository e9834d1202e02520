"""The import itself: checks, inference, then the graph contract's tensors and nodes.

Why one function: the order matters (a model is checked before it is inferred, inferred before it is translated), and
writing it once keeps ``import_onnx`` and ``memplan import`` the same import with two spellings of the same errors.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..._gc import paused
from ...errors import GraphError, InputFormatError, OptionError, named_options, report_progress
from ...errors import short_repr as _short
from ...files import check_outputs, directory_of, path_text
from ...graph import DEFAULT_ALIGNMENT, MAX_TENSOR_BYTES, Graph, Node, Tensor, check_alignment
from .. import Progress, check_progress, node_cost
from .common import _BITS, ORT_DOMAIN, PYTHON, Spelling, _default_opset, _dtype_name, _nbytes, _need_onnx, _node_ids
from .control_flow import TypeCheck, check_types, expand_control_flow, has_control_flow, scan_refusal
from .files import _check_external_data, _check_has_graph, external_data_files, load_model
from .fold import (
    _check_range,
    _check_spec_shape,
    _check_split_keepdims,
    _check_taken,
    _flops,
    _fold_round,
    _known_values,
    _shapes,
)
from .function_body import check_mvn_type
from .infer import (
    STRING_BYTES,
    _check_external_parsed,
    _check_resize_mode,
    _check_resize_scales,
    _infer,
    _initializers_not_inputs,
    _ort_resize_scales,
    _overridden_note,
    _shape_inputs,
    _unread_why,
    check_declared_by_value,
    run_time_inputs,
)
from .kernels import (
    check_attention_empty,
    check_attention_heads,
    check_attention_kv_lengths,
    check_attention_mask_length,
    check_attention_mask_shape,
    check_attention_presents,
    check_constant_of_shape_value,
    check_embed_layer_norm,
    check_empty_optional,
    check_expand_shape,
    check_gather_nd_batch,
    check_gqa_operands,
    check_gqa_subsequent_prompt,
    check_grid_sample_extent,
    check_group_norm_empty,
    check_input_named_empty,
    check_integer_divisor,
    check_integer_to_float_matmul,
    check_linear_attention_empty,
    check_llm_kernel_limits,
    check_lrn_rank,
    check_mel_weight_edges,
    check_ms_attention,
    check_ms_multi_head_attention,
    check_ms_rotary_caches,
    check_onehot_depth,
    check_pad_constant_value,
    check_recurrent_operands,
    check_resize_roi_length,
    check_resize_scale_range,
    check_rms_norm_extent,
    check_rotary_caches,
    check_rotary_position_ids,
    check_skip_layer_norm,
    check_softmax_cross_entropy_operands,
    check_tensor_scatter_extent,
    check_topk_k,
    check_unbroadcast_variadic,
    check_unpool_extent,
    check_vector_operands,
    check_zero_point_shapes,
)
from .model_checks import (
    _bind_function_bodies_to_model_opset,
    _check_call_outputs,
    _check_checked_versions,
    _check_domain_versions,
    _check_function_opsets,
    _check_functions,
    _check_inlined_size,
    _check_ir_version,
    _check_kernel_versions,
    _check_known_ops,
    _check_model_text,
    _check_node_domains,
    _check_node_names,
    _check_node_schemas,
    _check_opset,
    _check_ort_inline_names,
    _check_ort_node_attributes,
    _check_required_names,
    _check_structure,
    _check_text,
    _clear_negative_declarations,
    _drop_ignored_declarations,
    _inline_functions,
    _inlined_origins,
    _last_opset_imports,
    _merge_duplicate_initializers,
    _sorted_nodes,
)
from .node_checks import (
    _check_block_rearrange,
    _check_conv,
    _check_conv_transpose,
    _check_dims_option,
    _check_einsum_lengths,
    _check_element_operands,
    _check_enum_attributes,
    _check_group_norm,
    _check_kernel_extents,
    _check_known_indices,
    _check_layer_norm_params,
    _check_ml_node,
    _check_mvn_axes,
    _check_op_attributes,
    _check_operand_shapes,
    _check_ort_ranges,
    _check_pad_mode,
    _check_pool,
    _check_prelu_slope,
    _check_quantize_params,
    _check_reduce_axes,
    _check_reverse_sequence,
    _check_slice1,
    _check_transpose_perm,
    _check_unique_axis,
    _check_window_attributes,
    _container_bytes,
    _dims,
)
from .ort_ops import _check_as_standard, _is_ort_op
from .type_rules import INFERENCE_FAILED, check_node_types, explain_type_error, value_types

#: ops every runtime executes as a view of their first input (no kernel, no new memory)
ONNX_VIEW_OPS = frozenset({"Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity"})
#: why a data-dependent value (``_data_dependent_outputs``) has no size
RUN_TIME = ("it depends on values computed at run time from what the graph inputs hold (through a data-dependent op such as NonZero or "
            "Unique, or an input that sizes an output: a Reshape's shape, a Range's limit...)")
@named_options
def import_onnx(
    model: Any,
    *,
    batch: int | None = None,
    dims: Mapping[str, int] | None = None,
    name: str | None = None,
    alignment: int = DEFAULT_ALIGNMENT,
    progress: Progress | None = None,
    outputs: Mapping[str, str] | None = None,
    external_data_dir: str | os.PathLike | None = None,
    constant_initializers: bool = False,
) -> Graph:
    """Build a validated Graph from an ONNX model (a path or an ``onnx.ModelProto``).

    ``dims`` fixes symbolic dimensions by name; ``batch`` fixes the leading dimension of every graph
    input that is symbolic or unknown (an explicit ``dims`` entry for the same name wins). The model
    passed in is never modified. ``outputs`` (label -> path, as ``files.check_outputs`` takes them): the
    files the caller will write the result to, refused before the import when one is a file the model's
    external data lives in (``memplan import m.onnx -o weights.bin`` replaced the model's weights).
    ``external_data_dir``: for a ModelProto loaded without its external data (``onnx.load(path,
    load_external_data=False)``), the folder of the file it was loaded from, where its small shape tensors'
    data is read as for a model given by path; without it, a size that follows such a tensor is refused.
    ``constant_initializers``: take an initializer the model also lists as a graph input (from IR version 4 a
    default the caller may override) as the constant it holds, as if it were not an input: for exports that list
    every initializer as an input (``keep_initializers_as_inputs``) and never feed them. Without it, a size that
    follows such an input's value is refused as run-time data (a fed value could need more bytes).
    """
    return import_spelled(model, batch=batch, dims=dims, name=name, alignment=alignment, progress=progress,
                          outputs=outputs, spelling=PYTHON, external_data_dir=external_data_dir,
                          constant_initializers=constant_initializers)


def _outputs_option(outputs: Any) -> dict[str, str]:
    """``import_onnx``'s ``outputs`` as a plain ``{label: path}`` dict (paths through ``os.fspath``), or an
    OptionError naming the option. Why: it went unchecked to ``dict(outputs)`` and ``check_outputs``, so
    ``outputs="x"`` was a raw ValueError ("dictionary update sequence element #0 has length 1"), ``outputs=[1]`` or
    ``True`` a raw TypeError, ``{"-o": 5}`` "expected str, bytes or os.PathLike object, not int" from inside the
    file checks, and a numpy array "The truth value of an array ... is ambiguous"."""
    if outputs is None:
        return {}
    if not isinstance(outputs, Mapping):
        raise OptionError(f"import_onnx: outputs must be a mapping of label to output path, not {_short(outputs)}")
    plain: dict[str, str] = {}
    for label, path in list(outputs.items()):
        if not isinstance(label, str) or not isinstance(path, (str, os.PathLike)):
            raise OptionError(f"import_onnx: outputs must map labels (strings) to output paths, not "
                              f"{_short(label)} to {_short(path)}")
        path = path_text(path)   # (None: a PathLike whose ``__fspath__`` gives neither str nor bytes)
        if not isinstance(path, str) or "\x00" in path:
            raise OptionError(f"import_onnx: outputs[{_short(label)}] is no path: {_short(path)}")
        plain[str(label)] = path
    return plain


def _check_external_data_dir(model: Any, folder: Any) -> str:
    """``external_data_dir`` as a path (``os.fspath``): given only with a ModelProto (a model read from a path
    has its folder), naming an existing directory. Why: a misspelt folder read nothing, and every size that
    follows an external shape tensor was refused as if no folder had been given, blaming the ModelProto."""
    if isinstance(model, (str, os.PathLike)):
        raise OptionError("import_onnx: external_data_dir is for a ModelProto; a model given by its path reads its "
                          "external data from the path's folder (leave external_data_dir out)")
    path = path_text(folder) if isinstance(folder, (str, os.PathLike)) else folder
    if not isinstance(path, str) or not path or "\0" in path:
        raise OptionError(f"import_onnx: external_data_dir {_short(path)} is not a folder's path")
    if not os.path.isdir(path):
        raise OptionError(f"import_onnx: external_data_dir {path!r} is not a folder")
    return path


@paused
def import_spelled(model: Any, *, batch: int | None, dims: Mapping[str, int] | None, name: str | None,
                   alignment: int, progress: Progress | None, outputs: Mapping[str, str] | None,
                   spelling: Spelling, external_data_dir: str | os.PathLike | None = None,
                   constant_initializers: bool = False) -> Graph:
    """``import_onnx``, its messages naming the size options as ``spelling`` says (``CLI`` for ``memplan
    import``, which has checked its own arguments; ``PYTHON`` for ``import_onnx``).
    With the cyclic garbage collector paused (``_gc.paused``): the import's passes make millions of short-lived
    containers beside a model of live ones that no collection frees, and walking them was a quarter of a
    100,000-node chain's import."""
    check_progress(progress, "import_onnx")
    check_alignment(alignment)  # before the model is read and inferred, not after
    if not isinstance(constant_initializers, bool):
        raise OptionError(f"import_onnx: constant_initializers must be True or False, not "
                          f"{_short(constant_initializers)}")
    outputs = _outputs_option(outputs)
    onnx = _need_onnx()
    source = "model"
    folder = None if external_data_dir is None else _check_external_data_dir(model, external_data_dir)
    base_dir = None if folder is None else os.path.realpath(folder)   # (as the kernel resolves it: ``directory_of``)
    if isinstance(model, (str, os.PathLike)):
        source = path_text(model)
        if not isinstance(source, str):   # (bytes, or a PathLike whose ``__fspath__`` gives neither: a raw TypeError)
            raise InputFormatError(f"import_onnx: expected a model's path as text or an onnx.ModelProto, not "
                                   f"{type(model).__name__} {_short(model)}")
        model = load_model(source)
        default_name = os.path.splitext(os.path.basename(source))[0]
        folder, base_dir = os.path.dirname(source), directory_of(source)
    else:
        if not isinstance(model, onnx.ModelProto):
            raise InputFormatError(f"import_onnx: expected a path or onnx.ModelProto, got {type(model).__name__}")
        _check_has_graph(model, source)
        default_name = model.graph.name or "onnx"
    if constant_initializers:
        model = _initializers_not_inputs(onnx, model, source)
    if outputs and folder is not None:
        check_outputs({f"file holding the external data of {source} (tensor {name!r})": path
                       for path, name in external_data_files(model, folder).items()}, outputs)
    try:
        model_file = None if source == "model" else source
        _check_external_data(onnx, model, base_dir, model_file)
        return _import(onnx, model, source, base_dir, default_name, batch, dims, name, alignment, progress,
                       spelling, model_file and os.path.dirname(os.path.realpath(model_file)))
    except GraphError as exc:
        msg = str(exc)
        raise GraphError(msg if msg.startswith(f"{source}: ") else f"{source}: {msg}") from None


def _import(onnx, model, source: str, base_dir: str | None, default_name: str, batch, dims, name, alignment,
            progress, spelling: Spelling, real_dir: str | None = None) -> Graph:
    fixed = _check_dims_option(batch, dims)
    _check_model_text(model)
    fixed = _without_subgraph_dims(model, fixed)
    _check_ir_version(onnx, model)
    _check_opset(onnx, model)
    model = _last_opset_imports(model)
    _check_functions(onnx, model)
    _check_node_names(model)
    _check_call_outputs(model)
    _check_ort_inline_names(model)
    model = _check_node_domains(model)
    model = _check_function_opsets(onnx, model)
    model = _bind_function_bodies_to_model_opset(onnx, model)
    if model.functions:
        # the size check first: the origins walk every call's body, 2**24 nodes for a 1 KB file of doubling calls
        _check_inlined_size(model)
    origins = _inlined_origins(model) if model.functions else []
    model = _inline_functions(model)
    model = _drop_ignored_declarations(_merge_duplicate_initializers(_clear_negative_declarations(model)))
    if len(origins) != len(model.graph.node):   # (not inlined as expected: the ids are then named as they are)
        origins = []
    model, order = _sorted_nodes(model)
    if origins and order is not None:
        origins = [origins[k] for k in order]
    type_checks: list[TypeCheck] = []   # (what the expanded subgraphs' values must be, once inferred)
    if has_control_flow(model.graph):
        try:
            model, origins = _expanded(onnx, model, origins, source, base_dir, batch, fixed, spelling, real_dir,
                                       type_checks)
        except GraphError as exc:   # (an If of a local function's body named where it is in the model as written)
            raise GraphError(_name_inlined(str(exc), _node_ids(model.graph), origins)) from None
    try:
        return _import_inlined(onnx, model, source, base_dir, default_name, batch, fixed, name, alignment, progress,
                               spelling, real_dir, type_checks)
    except GraphError as exc:
        raise GraphError(_name_inlined(str(exc), _node_ids(model.graph), origins)) from None


def _dim_names(g, deep: bool) -> set[str]:
    """The symbolic dimension names graph (or local function) ``g`` declares (its inputs, outputs and ``value_info``), and, ``deep``,
    those of every subgraph of its nodes, at any depth (walked with a list, not recursion: a model built in memory
    may nest deeper than Python's stack)."""
    names: set[str] = set()
    todo = [g]
    while todo:
        h = todo.pop()
        infos = [vi for vi in (*h.input, *h.output) if not isinstance(vi, str)] + list(h.value_info)   # (a
        #   FunctionProto's inputs and outputs are names)
        names.update(d.dim_param for vi in infos if vi.type.HasField("tensor_type")
                     for d in vi.type.tensor_type.shape.dim if d.dim_param)
        if deep:
            todo.extend(sub for n in h.node for a in n.attribute
                        for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs))
    return names


def _without_subgraph_dims(model, fixed: dict[str, int]) -> dict[str, int]:
    """``fixed`` (``--dim``) less the names the model declares only inside an If branch or a Loop/Scan body, or in a
    local function's ``value_info`` (their declarations go with the expansion or the inlining, and no size follows
    them). Why: such a name was refused as one "the model has no symbolic dimension" of ("it has none"), though the
    model names it; a misspelt one still is."""
    inner = {k for k in fixed if k not in _dim_names(model.graph, False)}
    if not inner or not model.functions and not any(a.HasField("g") or a.graphs for n in model.graph.node
                                                    for a in n.attribute):
        return fixed
    declared = _dim_names(model.graph, True)
    for f in model.functions:
        declared |= _dim_names(f, True)
    inner &= declared
    return {k: v for k, v in fixed.items() if k not in inner}


def _expanded(onnx, model, origins: list, source: str, base_dir: str | None, batch, fixed, spelling: Spelling,
              real_dir: str | None, type_checks: list[TypeCheck] | None = None) -> tuple[Any, list]:
    """``model`` with its If and Loop nodes of a course known at import expanded (``control_flow``), sorted again (a
    branch may read a value the graph lists after the If), with ``origins`` following its nodes. The conditions and
    trip counts that nodes compute are folded by the import's own inference of the nodes before them
    (``_folded_values``), so a condition folds exactly where a size would."""
    def resolve(sub, wanted: list[str]) -> dict[str, Any]:
        return _folded_values(onnx, sub, wanted, source, base_dir, batch, fixed, spelling, real_dir)

    model, came_from = expand_control_flow(onnx, model, resolve, type_checks)
    if came_from is None:
        return model, origins
    if origins:
        origins = [origins[k] for k in came_from]
    model, order = _sorted_nodes(model)
    if origins and order is not None:
        origins = [origins[k] for k in order]
    return model, origins


def _check_nodes(onnx, model, inits: set[str]) -> list[str]:
    """The node-level checks every graph the import infers goes through, the model's and each folding model's
    (``_folded_values``): structure, opset versions, required names, known ops, schemas, kernel versions. Returns the
    nodes' ids. Written once so that a condition is folded only over nodes the import itself would accept."""
    g = model.graph
    node_ids = _node_ids(g)
    _check_structure(g, node_ids, inits)
    _check_domain_versions(onnx, g, node_ids, model.opset_import)
    _check_required_names(onnx, g, node_ids, {("" if o.domain == "ai.onnx" else o.domain): o.version
                                              for o in model.opset_import})
    _check_known_ops(onnx, g, node_ids)
    _check_node_schemas(onnx, g, node_ids, model)
    _check_ort_node_attributes(onnx, g, node_ids, model)
    _check_kernel_versions(onnx, g, node_ids, _default_opset(model))
    _check_checked_versions(onnx, g, node_ids, _default_opset(model))
    return node_ids


def _folded_values(onnx, sub, wanted: list[str], source: str, base_dir: str | None, batch, fixed,
                   spelling: Spelling, real_dir: str | None) -> dict[str, Any]:
    """The values among ``wanted`` that the import's checks and inference of model ``sub`` (the nodes a condition or
    trip count is computed from, it the graph's outputs) fold to constants; one it cannot fold is left out."""
    g = sub.graph
    inits = {t.name for t in g.initializer} | {t.values.name for t in g.sparse_initializer}
    _check_nodes(onnx, sub, inits)
    facts: dict[str, Any] = {"real_dir": real_dir}
    # (only the dimensions ``sub`` names: one the model names in a declaration ``sub`` does not hold, a graph
    # output's, was refused as "the model has no symbolic dimension"; the model's own import checks every name)
    named = {d.dim_param for vi in (*g.input, *g.output, *g.value_info) if vi.type.HasField("tensor_type")
             for d in vi.type.tensor_type.shape.dim if d.dim_param}
    fixed = {k: v for k, v in fixed.items() if k in named}
    inferred = _infer(onnx, sub, batch, fixed, inits, source, base_dir, {}, spelling, facts, {}, {})
    values = facts.get("values", {})
    folded = facts.get("folded")
    rounds = 0
    # (the import folds only what sizes need; a condition sizes nothing, so its nodes are folded here, on the
    # inference's own copy: each round folds every node whose inputs are known, in order)
    while folded is not None and any(v not in values for v in wanted) and rounds < 4:
        rounds += 1
        copy = type(folded)()
        copy.CopyFrom(folded)
        try:
            if not _fold_round(onnx, copy, inferred):
                break
        except GraphError:   # (what a fold refuses, the import itself refuses or not: the value stays unknown)
            break
        folded = copy
        values = {**_known_values(onnx, copy), **values}
    data_dependent = facts["data_dependent"].sized
    return {v: values[v] for v in wanted if v in values and v not in data_dependent}


def _name_inlined(msg: str, node_ids: list[str], origins: list[str | None]) -> str:
    """``msg`` with the first node it names (``node 'Reshape_1'``) that an inlined function made followed by where
    that node is in the model as written (``_inlined_origins``): the function, its body node and the call. ONNX's
    inference names a node its own way (``(op_type:MatMul, node name: MatMul_1)``), also followed (round 73: a
    function body's MatMul of mismatched inputs was refused naming ``MatMul_1`` alone, a name the model lacks)."""
    for nid, where in zip(node_ids, origins):
        if where is not None and (f"node {nid!r}" in msg or f"node name: {nid})" in msg):
            return f"{msg} (node {nid!r} is {where})"
    return msg


def _import_inlined(onnx, model, source: str, base_dir: str | None, default_name: str, batch, fixed, name,
                    alignment, progress, spelling: Spelling, real_dir: str | None,
                    type_checks: list[TypeCheck] = ()) -> Graph:
    """``_import`` of the model once its local functions are inlined (``fixed``: the checked ``dims``;
    ``type_checks``: the types its expanded control flow's values must have, ``control_flow.check_types``)."""
    g = model.graph

    _check_text(g)
    init_names = [t.name for t in g.initializer] + [t.values.name for t in g.sparse_initializer]
    inits = set(init_names)
    node_ids = _check_nodes(onnx, model, inits)

    unread: dict[str, str] = {}  # small external tensors whose data was not read: which -> why
    hidden: dict[str, str] = {}   # the values those tensors are (initializers, Constant outputs) -> which
    facts: dict[str, Any] = {"real_dir": real_dir}   # what _infer found: "ort" (whether onnxruntime's shape
    #   inference was there to size its own ops), "data_dependent" (a DataDependent); and "real_dir", the model
    #   file's own folder, its links resolved (``_data_root``)
    seq_bytes: dict[str, list[int]] = {}   # sequence value -> the bytes of each tensor it holds, where known
    opsets = {("" if o.domain == "ai.onnx" else o.domain): o.version for o in model.opset_import}
    try:
        inferred = _infer(onnx, model, batch, fixed, inits, source, base_dir, unread, spelling, facts, seq_bytes,
                          hidden)
    except GraphError as exc:
        if INFERENCE_FAILED in str(exc):   # (a node of a type its op does not take: named so)
            scan = scan_refusal(type_checks, str(exc))
            if scan is not None:   # (a Loop's scan output stacked by a node of the expansion: the Loop named)
                raise GraphError(scan) from None
            explain_type_error(onnx, model, node_ids, opsets)
        raise
    _check_external_parsed(onnx, model, node_ids, inferred, facts["overridable"])
    shapes = _shapes(g, inferred)
    types = value_types(onnx, g, inferred)
    check_types(list(type_checks), types, shapes)

    input_names = [v.name for v in g.input if v.name not in inits]
    output_names = [v.name for v in g.output]
    out_set = set(output_names)

    tensors: list[Tensor] = []
    tindex: dict[str, int] = {}
    declared_dims = {vi.name: [d.dim_param for d in vi.type.tensor_type.shape.dim]
                     for vi in list(g.input) + list(g.output) + list(g.value_info) if vi.type.HasField("tensor_type")}
    dim_names = {d for dims in declared_dims.values() for d in dims if d}
    data_dependent, unread_sized = facts["data_dependent"].sized, facts["data_dependent"].by_unread
    overridable = facts["overridable"]
    # values made by ops onnx does not define (onnxruntime's fused ops: com.microsoft's, and its
    # SimplifiedLayerNormalization in the default domain): sized only by what the model declares
    custom = {o: f"{n.domain}:{n.op_type}" if n.domain else n.op_type for n in g.node
              if not onnx.defs.has(n.op_type, "" if n.domain == "ai.onnx" else n.domain) for o in n.output if o}
    ort_ops = {o for n in g.node if _is_ort_op(onnx, n) for o in n.output if o}
    # the names a --dim can truly fix: a graph input's dimensions, and those declared for the outputs of ops no
    # inference sizes (their declaration is their only size); an exporter's name for a standard op's inner
    # dimension (``Expand_dim_0``) is not one: the op's inputs decide it, and a value given for it is a guess
    free_dims = ({d for v in g.input if v.name not in inits for d in declared_dims.get(v.name, ()) if d}
                 | {d for o in custom for d in declared_dims.get(o, ()) if d})

    def unknown_why(vname: str) -> str:
        """How the input that alone sizes ``vname`` (``_check_taken``) is unknown, as the general message says it."""
        if vname in unread_sized:
            return f"is held in external data that was not read: {_unread_why(g, vname, hidden, unread)}"
        if vname in data_dependent:
            return ("is computed at run time from what the graph inputs hold"
                    + _overridden_note(g, vname, overridable))
        return ("is not a value the importer knows (a large initializer or one computed by an op it does not "
                "evaluate)")

    def unsized(vname: str) -> str:
        """Why the output of an op onnx does not define has no size: which inference was tried."""
        if custom[vname].startswith(NCHWC_DOMAIN + ":"):
            return (f"{custom[vname]} is onnxruntime's blocked-layout op (saved only at ORT_ENABLE_ALL, its channels "
                    "padded to the block size of the CPU that saved the model: plan the model saved at "
                    "ORT_ENABLE_EXTENDED, or the original), which no shape inference sizes")
        if vname not in ort_ops:
            return f"{custom[vname]} is not an op onnx defines, so its shape inference cannot size it"
        if facts.get("ort"):
            return (f"{custom[vname]} is onnxruntime's op, which neither onnx's nor onnxruntime's shape inference "
                    "could size here")
        return (f"{custom[vname]} is onnxruntime's op, which onnx's shape inference cannot size (with onnxruntime "
                "installed, memplan sizes it by onnxruntime's shape inference: pip install 'memplan[onnx]')")

    def unsized_by_value(vname: str) -> str:
        """Where standard op output ``vname`` is unsized because an input whose values size it (an Expand's shape,
        a Reshape's) is not known here, the hint saying so, naming that input; "" otherwise.

        Why: such an output declared with an exporter's name for the dimension (``Expand_dim_0``) was refused
        with "pass --dim Expand_dim_0=VALUE", and given one, planned at that value, unchecked: an Expand to
        ``[100000, 4]`` planned 160 bytes at ``Expand_dim_0=10``, onnxruntime writing 1.6 MB."""
        n = next((m for m in g.node if vname in m.output), None)
        if n is None or n.domain not in ("", "ai.onnx"):
            return ""
        for k in _shape_inputs(n.op_type, _default_opset(model)):
            v = n.input[k] if k < len(n.input) else ""
            if v and facts["values"].get(v) is None:
                return (f": its input {v!r} sizes it by its values, which the importer does not know, although "
                        "it does not depend on values the graph inputs carry at run time (a large initializer, or "
                        "one computed by an op it does not evaluate or from such an initializer), so no size can "
                        "be planned (fixing a dimension cannot give it)")
        return ""

    def run_time(vname: str) -> str:
        """``RUN_TIME``, naming the graph inputs whose values size ``vname`` (``run_time_inputs``)."""
        names = run_time_inputs(g, _default_opset(model), vname, overridable)
        if not names:
            return RUN_TIME
        shown = ", ".join(repr(v) for v in names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        return f"{RUN_TIME}; here, on what graph input{'s' if len(names) > 1 else ''} {shown} hold{'' if len(names) > 1 else 's'}"

    def sized(vname: str, what: str) -> tuple[int, tuple[int, ...], int]:
        info = shapes.get(vname)
        if info is None:   # (a data-dependent one: no declaration could size it, whatever the op)
            why = (run_time(vname) + _overridden_note(g, vname, overridable) if vname in data_dependent else
                   f"{unsized(vname)}, and the model declares none in value_info" if vname in custom
                   else "shape inference could not find one")
            raise GraphError(f"{what}: value {vname!r} has no type or shape ({why})")
        elem, shape = info
        if elem == -1 and vname in containers:
            return containers[vname], (), -1
        if elem == -1:
            article = "an" if str(shape)[:1] in "aeiou" else "a"
            raise GraphError(f"{what}: value {vname!r} is {article} {shape}, not a tensor (only tensors are supported)")
        bits = _BITS.get(elem)
        if bits is None:
            raise GraphError(f"{what}: value {vname!r} has dtype {_dtype_name(onnx, elem)}, which has no fixed "
                             f"byte size ({STRING_BYTES if elem == onnx.TensorProto.STRING else 'unsupported'})")
        if shape is None:
            why = (_unread_why(g, vname, hidden, unread) if vname in unread_sized else
                   run_time(vname) + _overridden_note(g, vname, overridable) if vname in data_dependent else
                   f"{unsized(vname)}, and the model declares none" if vname in custom else
                   "shape inference could not find its rank")
            raise GraphError(f"{what}: value {vname!r} has no shape: {why}")
        for i, d in enumerate(shape):
            if not isinstance(d, int):
                # only a name the model declares can be fixed; ONNX names the others (unk__0) itself
                declared = declared_dims.get(vname, ())
                d = d if d in dim_names else declared[i] if i < len(declared) else ""
                if vname in data_dependent:  # a --dim would plan one input's length (see DATA_DEPENDENT_OPS)
                    d = ""
                elif vname not in custom and d not in free_dims:   # (see free_dims: not the cause)
                    d = ""
                hint = (f" (symbolic {d!r}: pass {spelling.dim(d)})" if d else f": {_unread_why(g, vname, hidden, unread)}"
                        if vname in unread_sized else f": {run_time(vname)}, so no size can be "
                        f"planned{_overridden_note(g, vname, overridable)}" if vname in data_dependent else
                        f": {unsized(vname)}, and the model declares no size for this dimension" if vname in custom
                        else unsized_by_value(vname) or
                        ": ONNX's shape inference could not derive it from the node's inputs, although it does not "
                        "depend on values the graph inputs carry at run time (an op, dtype or attribute beyond what "
                        "onnx's inference and the importer's constant folding follow), so no size can be planned")
                if unread and vname not in unread_sized:  # the likelier cause: a shape constant not read
                    k, why = next(iter(unread.items()))
                    more = f" (and {len(unread) - 1} more)" if len(unread) > 1 else ""
                    hint += f"; note: the external data of {k}{more} was not read: {why}"
                raise GraphError(f"{what}: value {vname!r} dimension {i} is unknown after shape inference{hint}")
            if d < 0:  # checked per dimension: an even number of them multiplies to a plausible size
                raise GraphError(f"{what}: value {vname!r} dimension {i} is negative ({d})")
        size = _nbytes(bits, shape)
        if size > MAX_TENSOR_BYTES:   # (here, before its node's cost: a float of its element count overflowed)
            raise GraphError(f"{what}: tensor {vname!r}: size {_short(size)} is absurd (over {MAX_TENSOR_BYTES} "
                             f"bytes: shape of {len(shape)} dimensions, {_short(list(shape))})")
        return size, shape, elem

    def add(vname: str, kind: str, what: str, view_of: str | None = None) -> None:
        size, shape, elem = sized(vname, what)
        if elem == -1:
            attrs = {"container": shapes[vname][1]}
        else:
            attrs = {"shape": list(shape), "dtype": _dtype_name(onnx, elem)}
        tindex[vname] = len(tensors)
        tensors.append(Tensor(vname, size, kind, view_of, 0, attrs))

    for v in input_names:
        add(v, "input", f"graph input {v!r}")
    read = {v for n in g.node for v in n.input if v} | out_set
    for v in init_names:
        if v not in read and _BITS.get(shapes.get(v, (None, None))[0]) is None:
            continue   # an unused initializer of a type with no byte size (a string table): nothing to plan
        if v in out_set and v in overridable:   # the caller's value fed in its place, returned as it is
            raise GraphError(f"graph output {v!r} is an initializer the caller may override (it is a graph input "
                             "too, ONNX IR version 4 and later): no node produces it (unsupported; if it is a "
                             "constant, import with constant_initializers=True (memplan import "
                             "--constant-initializers))")
        if v not in tindex:   # one the graph also returns stays a weight: it outlives the run anyway
            add(v, "weight", f"initializer {v!r}")

    containers: dict[str, int] = {}  # sequence/optional value -> the bytes of the tensors it holds
    seqs: dict[str, list] = {}   # sequence value -> the (shape, elem) of the tensors it holds, where known
    opset = _default_opset(model)
    nodes: list[Node] = []
    shared_at: list[tuple[int, str, dict[str, str]]] = []  # nodes whose outputs share an input's buffer
    empty_optionals: set[str] = set()   # optionals known to hold nothing (check_empty_optional)
    total = len(g.node)
    for i, n in enumerate(g.node):
        nid = node_ids[i]
        where = f"node {nid!r} ({n.op_type})"
        if n.op_type == "Constant" and n.domain in ("", "ai.onnx"):
            for o in n.output:
                if o:   # a weight, also where the graph returns it (onnxruntime makes it an initializer)
                    add(o, "weight", where)
            continue
        check_node_types(n, where, types, opsets.get("" if n.domain == "ai.onnx" else n.domain))
        ins = [v for v in n.input if v]
        outs = [v for v in n.output if v]
        for o in outs:
            if shapes.get(o, (0, None))[0] == -1:
                containers[o] = _container_bytes(n, where, o, shapes[o][1], [tensors[tindex[v]].size for v in ins],
                                                 seq_bytes.get(o))
        _check_slice1(n, where, shapes)
        _check_spec_shape(n, where, shapes, facts["values"], seqs)
        _check_taken(n, where, shapes, facts["values"], seqs, unknown_why)
        _check_range(n, where, facts["values"])
        _check_split_keepdims(n, where, shapes, facts["values"])
        _check_resize_scales(n, where, shapes, facts["values"], opset)
        _check_resize_mode(n, where, shapes, facts["values"], opset)
        check_resize_scale_range(n, where, shapes, facts["values"], opset, _ort_resize_scales)
        check_topk_k(n, where, shapes, facts["values"], opset)
        check_expand_shape(n, where, shapes, facts["values"])
        check_onehot_depth(n, where, facts["values"])
        check_mel_weight_edges(n, where, facts["values"])
        check_integer_divisor(n, where, facts["values"])
        check_constant_of_shape_value(n, where)
        check_input_named_empty(n, where, opset)
        check_empty_optional(n, where, empty_optionals)
        check_recurrent_operands(n, where, shapes)
        check_zero_point_shapes(n, where, shapes)
        check_gather_nd_batch(n, where, shapes)
        check_resize_roi_length(n, where, shapes, opset)
        check_tensor_scatter_extent(n, where, shapes, facts["values"])
        check_pad_constant_value(n, where, shapes, opset)
        check_softmax_cross_entropy_operands(n, where, shapes)
        check_attention_kv_lengths(n, where, shapes, opset)
        check_attention_empty(n, where, shapes, opset)
        check_attention_heads(n, where, shapes, opset)
        check_attention_mask_length(n, where, shapes, opset)
        check_attention_mask_shape(n, where, shapes, opset)
        check_attention_presents(n, where, shapes, opset)
        check_linear_attention_empty(n, where, shapes)
        check_rms_norm_extent(n, where, shapes)
        check_group_norm_empty(n, where, shapes)
        check_rotary_position_ids(n, where, shapes)
        check_rotary_caches(n, where, shapes)
        check_ms_rotary_caches(n, where, shapes)
        check_embed_layer_norm(n, where, shapes)
        check_skip_layer_norm(n, where, shapes)
        check_ms_attention(n, where, shapes)
        check_ms_multi_head_attention(n, where, shapes)
        check_integer_to_float_matmul(n, where, shapes)
        check_gqa_operands(n, where, shapes)
        check_gqa_subsequent_prompt(n, where, shapes, facts["values"])
        check_llm_kernel_limits(n, where, shapes)
        check_unbroadcast_variadic(n, where, shapes, opset)
        check_vector_operands(n, where, shapes)
        check_lrn_rank(n, where, shapes)
        check_unpool_extent(n, where, shapes)
        check_grid_sample_extent(n, where, shapes)
        _check_ml_node(n, where, shapes)
        _check_window_attributes(n, where)
        _check_enum_attributes(n, where)
        _check_transpose_perm(n, where, shapes)
        _check_reduce_axes(n, where, shapes)
        _check_conv(n, where, shapes)
        _check_pool(n, where, shapes, opset)
        _check_conv_transpose(n, where, shapes)
        _check_op_attributes(n, where, shapes, facts["values"])
        _check_unique_axis(n, where, shapes)
        _check_block_rearrange(n, where, shapes)
        _check_pad_mode(n, where, shapes, facts["values"], opset)
        _check_kernel_extents(n, where, shapes, facts["values"])
        _check_prelu_slope(n, where, shapes, opset)
        _check_known_indices(n, where, shapes, facts["values"])
        _check_operand_shapes(n, where, shapes, opset)
        _check_quantize_params(n, where, shapes, opset)
        _check_layer_norm_params(n, where, shapes)
        _check_group_norm(n, where, shapes, opset)
        _check_element_operands(n, where, shapes, opset)
        _check_reverse_sequence(n, where, shapes, facts["values"])
        _check_einsum_lengths(n, where, shapes)
        _check_ort_ranges(n, where, shapes, facts["values"])
        _check_mvn_axes(n, where, shapes)
        check_mvn_type(n, where, types, opset)
        _check_as_standard(n, where, shapes)
        check_declared_by_value(n, where, facts)
        is_view = (n.op_type in ONNX_VIEW_OPS and n.domain in ("", "ai.onnx") and ins and len(outs) == 1)
        if is_view and sized(outs[0], where)[0] != tensors[tindex[ins[0]]].size:
            raise GraphError(f"{where}: output {outs[0]!r} has {sized(outs[0], where)[0]} bytes but its input "
                             f"{ins[0]!r} has {tensors[tindex[ins[0]]].size}: not a valid {n.op_type}")
        shared = _shared_buffers(n)
        for o, v in shared.items():
            if sized(o, where)[0] != tensors[tindex[v]].size:
                raise GraphError(f"{where}: onnxruntime's {n.op_type} writes its output {o!r} into the buffer of its "
                                 f"input {v!r} (it refuses to run unless the two share one), but {o!r} has "
                                 f"{sized(o, where)[0]} bytes and {v!r} {tensors[tindex[v]].size}")
        for o in outs:
            kind = "output" if o in out_set else "intermediate"
            add(o, kind, where, view_of=ins[0] if is_view else shared.get(o))
        in_bytes = sum(tensors[tindex[v]].size for v in dict.fromkeys(ins))
        out_bytes = sum(tensors[tindex[v]].size for v in outs)
        if is_view:
            cost = 0.0
        else:
            flops = _flops(n, [_dims(shapes[v]) for v in ins], [_dims(shapes[v]) for v in outs])
            cost = node_cost(flops, in_bytes + out_bytes)
        nodes.append(Node(nid, n.op_type, tuple(ins), tuple(outs), cost))
        if shared:
            shared_at.append((len(nodes) - 1, where, shared))
        if progress is not None:
            report_progress(progress, i + 1, total, caller="import_onnx (nodes imported, of all)")
    for v in output_names:
        if v not in tindex:
            raise GraphError(f"graph output {v!r} is produced by no node")
    _return_inputs(tensors, tindex, [v for v in dict.fromkeys(output_names) if v in input_names],
                   {v for n in g.node for v in (*n.input, *n.output)})
    _check_shared_buffers(tensors, tindex, nodes, shared_at)
    return Graph(name if name is not None else default_name, tuple(tensors), tuple(nodes), alignment)


def _return_inputs(tensors: list[Tensor], tindex: dict[str, int], returned: list[str], names: set[str]) -> None:
    """Append, for each graph input the model also returns as a graph output (``returned``: no node between, the
    output is the input's own value), an ``output`` view of that input: id ``<input>::output`` (with a number where
    that names another value), offset 0, no producing node, the same size, dtype and shape, and ``attrs``
    ``graph_output`` naming the ONNX output it stands for.

    Why: the contract gives an output exactly one producing node and an input none, so one tensor cannot be both,
    and the model was refused; onnxruntime runs it (the output is the fed value). A view of kind output is the
    contract's own way to say it: it has no memory of its own (it is the input's bytes), needs no producer, and
    keeps its root alive to the end of the run as an output must, so no plan reuses the input's bytes for anything
    after its last reader."""
    taken = {t.id for t in tensors} | names
    for v in returned:
        base = tensors[tindex[v]]
        vid = next(f"{v}::output{k or ''}" for k in range(len(taken) + 1) if f"{v}::output{k or ''}" not in taken)
        taken.add(vid)
        tindex[vid] = len(tensors)
        tensors.append(Tensor(vid, base.size, "output", v, 0, {**base.attrs, "graph_output": v}))


#: onnxruntime's ops whose kernel requires some outputs to share their input's buffer: op -> ((output index,
#: input index), ...). SparseAttention appends the new keys and values to its cache in place and refuses to
#: run ("past_key->DataRaw() == present_key->DataRaw() ... was false") when present and past are two buffers
SHARED_BUFFER_OPS = {"SparseAttention": ((1, 3), (2, 4))}


def _shared_buffers(n) -> dict[str, str]:
    """``{output: input}`` of node ``n`` that its kernel requires to be one buffer (``SHARED_BUFFER_OPS``).

    Why: planned as two tensors, each got its own slot, a plan onnxruntime refuses to run. The contract's
    ``inplace`` only allows the sharing (a planner may or may not take it); a view is the sharing itself: the
    output is made a view (offset 0) of the input, produced by the node, so the input's memory holds it and
    lives until its last reader, as the kernel writes it. Its size must then be the input's (checked by the
    caller)."""
    pairs = SHARED_BUFFER_OPS.get(n.op_type, ()) if n.domain == ORT_DOMAIN else ()
    return {n.output[o]: n.input[i] for o, i in pairs
            if o < len(n.output) and n.output[o] and i < len(n.input) and n.input[i]}


def _check_shared_buffers(tensors: list[Tensor], tindex: dict[str, int], nodes: list[Node],
                          shared_at: list[tuple[int, str, dict[str, str]]]) -> None:
    """Each input whose buffer a node overwrites in place (``_shared_buffers``: its output a view of it) must hold
    nothing any other node, or the model's outputs, reads as its own value: its bytes are the node's output once
    the node runs. Refused, naming the node and the value: an input that is an initializer or Constant (a weight:
    the node would write into the model's constants), one also read by another node or a graph output (of it,
    or of a view of its memory not made from the node's output), or one two outputs share (past key and value
    one tensor, or two nodes' caches).

    Why: the contract orders a read of a buffer before nothing that writes a view of it (only reads after
    writes), so such a reader could run before or after the overwrite, on any stream, and a second writer
    clobbered the first's output; each was planned and verified, and computed other bits than the model
    (onnxruntime runs such a node only on a cache the caller binds as both past and present, read by it
    alone)."""
    def chain(j: int) -> list[int]:   # j, its parent, ... its root
        out = [j]
        while tensors[out[-1]].view_of is not None:
            out.append(tindex[tensors[out[-1]].view_of])
        return out

    if not shared_at:
        return
    chains = [chain(j) for j in range(len(tensors))]
    claimed: dict[int, tuple[str, str]] = {}   # root -> (node, input) that overwrites it
    for _k, where, shared in shared_at:
        for o, v in shared.items():
            root = chains[tindex[v]][-1]
            if tensors[root].kind == "weight":
                raise GraphError(f"{where}: it writes its output {o!r} into the buffer of its input {v!r}, which "
                                 "is an initializer or Constant (a weight): a model's constants are read-only "
                                 "(onnxruntime runs it only on a cache bound as both past and present)")
            if root in claimed:
                raise GraphError(f"{where}: it writes its output {o!r} into the buffer of its input {v!r}, which "
                                 f"{claimed[root][0]} also writes its output into (through {claimed[root][1]!r}): "
                                 "one output would overwrite the other")
            claimed[root] = (where, v)
    presents = {tindex[o] for _k, _w, shared in shared_at for o in shared}
    readers: dict[int, list[int]] = {}   # tensor -> the nodes reading it, in order
    for m, node in enumerate(nodes):
        for x in dict.fromkeys(node.inputs):
            readers.setdefault(tindex[x], []).append(m)
    for k, where, shared in shared_at:
        for o, v in shared.items():
            above = chains[tindex[v]]
            # the tensors on the root that hold the old bytes (not the node's output or a view made from it)
            old = {j for j, c in enumerate(chains) if c[-1] == above[-1] and presents.isdisjoint(c)}
            makers = set(above)   # the nodes making past (or a view above it) run before the node
            for j in sorted(old):
                for m in readers.get(j, ()):
                    node = nodes[m]
                    if m == k or any(tindex[x] in makers for x in node.outputs):
                        continue
                    raise GraphError(f"{where}: it overwrites its input {v!r} in place (its output {o!r} "
                                     f"shares that buffer), but node {node.id!r} ({node.op}) also reads "
                                     f"{tensors[j].id!r}, the old bytes of that buffer: it could read them after the "
                                     "overwrite; give that reader a copy")
            for j in old:
                if tensors[j].kind == "output":
                    raise GraphError(f"{where}: it overwrites its input {v!r} in place (its output {o!r} shares "
                                     f"that buffer), but graph output {tensors[j].id!r} is the old bytes of that "
                                     "buffer: it would end holding the node's output")


#: onnxruntime's domain of blocked-layout (NCHWc) ops: ``ReorderInput``, its ``Conv``, pools, ``ReorderOutput``
NCHWC_DOMAIN = "com.microsoft.nchwc"
