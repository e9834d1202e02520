"""Round 73 (review73): defects of round 73's own changes, found reviewing them.

- ``from_torch``'s watch of the arguments' layouts (``argument_layouts_watched``) registers hooks on the root module
  around the export; a scripted module takes none ("register_forward_pre_hook is not supported on ScriptModules"),
  which became the refusal instead of torch's own "Exporting a ScriptModule is not supported".
- ``overlapping_arguments`` took two meta tensors (storage address 0, all of them) for arguments sharing memory, so a
  decomposition failing on a program of meta example inputs was blamed on shared memory.
"""

from __future__ import annotations

import warnings

import pytest
from needs import need

torch = need("torch")

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402
from memplan.importers.torch.argument_layouts import argument_layouts_watched, overlapping_arguments  # noqa: E402


class Adds(torch.nn.Module):
    def forward(self, a, b):
        return a + b


def test_a_scripted_module_is_refused_by_torch_s_reason_not_the_hook_registration():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # (torch.jit.script is deprecated)
        scripted = torch.jit.script(torch.nn.Linear(2, 2))
    with pytest.raises(GraphError) as info:
        memplan.from_torch(scripted, (torch.ones(1, 2),))
    assert "register_forward" not in str(info.value) and "ScriptModule" in str(info.value), info.value


def test_a_module_refusing_hooks_is_left_unwatched_and_keeps_none():
    class NoForwardHooks(Adds):
        def register_forward_hook(self, *args, **kwargs):
            raise RuntimeError("no forward hooks here")

    m = NoForwardHooks()
    changed: list[str] = []
    with argument_layouts_watched(torch, m, changed):
        m(torch.ones(2), torch.ones(2))
    assert changed == [] and not m._forward_pre_hooks and not m._forward_hooks


def test_meta_example_arguments_share_no_memory():
    meta = (torch.ones(4, 4, device="meta"), torch.ones(4, 4, device="meta"))
    assert overlapping_arguments(torch, Adds(), meta, None) == ""
    base = torch.ones(8)
    assert overlapping_arguments(torch, Adds(), (base[:6], base[2:]), None) == "'a' and 'b'"


def test_text_with_ustar_at_a_tar_archive_s_mark_is_read_as_text(tmp_path):
    """A tar archive is named by "ustar" at byte 257 with its NUL byte; "ustar" there alone is text (a graph whose name
    put "mustard" there was refused as "a tar archive, not text")."""
    import io
    import json
    import tarfile

    from memplan.files import text_trouble

    doc = {"format": "memplan.graph/1", "name": "", "tensors": [{"id": "t", "size": 64, "kind": "output"}],
           "nodes": [{"id": "n", "inputs": [], "outputs": ["t"]}]}
    start = json.dumps(doc).index('"name": "') + len('"name": "')
    doc["name"] = "x" * (256 - start) + "mustard"
    text = json.dumps(doc)
    assert text[257:262] == "ustar"
    (tmp_path / "g.json").write_text(text)
    assert memplan.load_graph(tmp_path / "g.json").name == doc["name"]
    for fmt in (tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        data = io.BytesIO()
        with tarfile.open(fileobj=data, mode="w", format=fmt) as tar:
            info = tarfile.TarInfo("g.json")
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text.encode()))
        assert text_trouble(data.getvalue()) == "a tar archive, not text (extract the file from it first)"
