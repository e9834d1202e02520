"""Round 68 (t211): what torch 2.11 (the GPU machine's torch) does differently, held on CI's torch too.

- torch 2.11's ``.pt2`` reader has no opaque-object constants (no ``pickle`` in its archive module: it unpickles
  none); an archive holding one (``opaque_obj_0``, which 2.14 writes and ``memplan import`` refuses to unpickle)
  failed there as "not a torch.export program (RuntimeError: Unsupported constant type: opaque_obj_0)". It is now
  refused naming the member and what to do, the same words on both releases. On 2.14 the older reader is simulated
  by renaming the prefix 2.14's reader looks for (the member then falls through to its "Unsupported constant type")."""

from __future__ import annotations

import json

import pytest
from needs import need

torch = need("torch")

from test_torch_round34 import _opaque_constant, _rewritten, _saved  # noqa: E402

from memplan.errors import InputFormatError  # noqa: E402
from memplan.importers.torch import load_exported  # noqa: E402


def _older_reader(monkeypatch) -> None:
    """2.11's reader on any release: no opaque-object constant kind (a no-op where there is none already)."""
    from torch.export.pt2_archive import _package

    if hasattr(_package, "OPAQUE_OBJ_FILENAME_PREFIX"):
        monkeypatch.setattr(_package, "OPAQUE_OBJ_FILENAME_PREFIX", "\0no such member\0")


def test_an_opaque_constant_on_a_reader_without_them_is_refused_by_name(tmp_path, monkeypatch):
    # was: "not a torch.export program (RuntimeError: Unsupported constant type: opaque_obj_0)" on torch 2.11
    _older_reader(monkeypatch)
    marker = tmp_path / "ran"
    hostile = _rewritten(_saved(tmp_path), tmp_path / "hostile.pt2", _opaque_constant(marker))
    with pytest.raises(InputFormatError) as info:
        load_exported(str(hostile))
    message = str(info.value)
    assert message.startswith(f"{hostile}: the archive holds a constant 'opaque_obj_0'"), message
    assert "opaque Python object constant" in message and torch.__version__ in message, message
    assert "not a torch.export program" not in message, message
    assert not marker.exists()


def test_a_constant_of_a_kind_no_reader_knows_is_refused_by_name(tmp_path):
    def change(name: str, data: bytes):
        if not name:
            return [("data/constants/weird_0", b"\0" * 16)]
        if name.endswith("model_constants_config.json"):
            config = json.loads(data)
            config["config"]["c"].update(path_name="weird_0")
            return json.dumps(config).encode()
        return data

    edited = _rewritten(_saved(tmp_path), tmp_path / "edited.pt2", change)
    with pytest.raises(InputFormatError, match=rf"^{edited}: the archive holds a constant 'weird_0' of a kind this "
                                               r"torch \(.*\) does not load: .*corrupted or edited file\)$"):
        load_exported(str(edited))
