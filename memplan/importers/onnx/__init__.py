"""ONNX models into memplan graphs: ``import_onnx(path_or_model, batch=..., dims=...)``.

Why: an arena plan is only as good as its sizes, and ONNX files carry every tensor's dtype and (after
shape inference) shape. This module turns a model into the graph contract and refuses anything it cannot
translate faithfully — a symbolic dimension left unknown, a dtype without a fixed byte size, control flow
known only at run time (``control_flow`` expands an If or Loop whose course folds to constants), nodes out of
topological order — with a ``GraphError`` naming the input, value or node, rather than producing a graph that would plan the wrong sizes.

Mapping:
- initializers (and ``Constant`` nodes, which every runtime folds into initializers) -> ``weight``;
- graph inputs -> ``input``; graph outputs -> ``output``; every other value -> ``intermediate``;
- Reshape, Squeeze, Unsqueeze, Flatten, Identity -> the output is a view (``view_of`` the data input,
  offset 0) produced by the op's node, as ggml does, because every runtime executes them as views; so is an
  output an onnxruntime kernel requires to share its input's buffer (SparseAttention's present key / value);
- node order is the model's (the ONNX spec requires it topological; it is checked, not assumed);
- node ``cost``: roofline microseconds from a FLOP and byte estimate per op.

Shape inference never sees the large initializers' data: they are passed as typed graph inputs instead,
so importing a model costs memory proportional to its structure, not to its weights.

The package, bottom up (each module imports only those before it): ``common`` (op families, dtypes, names),
``kernels`` (nodes onnxruntime's kernels refuse), ``files`` (the model file and its external data), ``node_checks``
(one node's attributes), ``ort_ops``
(onnxruntime's contrib ops and their shape rules), ``model_checks`` (versions, functions, names, schemas), ``fold``
(constant folding and the specification's shape rules), ``infer`` (shape inference over the model) and ``importer``
(the import).
"""

from .common import CLI, PYTHON, Spelling
from .files import external_data_files, load_model
from .importer import import_onnx, import_spelled
from .node_checks import parse_dims

__all__ = ['CLI', 'PYTHON', 'Spelling', 'external_data_files', 'import_onnx', 'import_spelled', 'load_model', 'parse_dims']
