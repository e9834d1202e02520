"""Review of round 48 (helper review48c): the ``.pt2`` container check (``importers.pt2_archive._check_name``).

1. An AOTInductor member under an archive directory whose name holds a backslash (``a\\b/data/aotinductor/...``)
   passed the check: it split the name at ``\\`` as well as ``/``, so it looked for ``data/aotinductor/`` after
   ``b/``, while torch's reader names every member by what follows the first ``/`` (``data/aotinductor/...``: the
   package torch.export.load extracts and loads as native code).
2. ``torch.export.save`` names the archive's directory after the file, so ``resnet:v2.pt2`` (or a timestamp
   ``run_12:00.pt2``) was refused as "a path that leaves the archive's directory": any ``:`` in the directory was
   taken for a Windows drive. Only a drive (``C:``) is one now.
"""

from __future__ import annotations

import io
import zipfile

import pytest
from needs import need

from memplan.errors import InputFormatError
from memplan.importers.pt2_archive import check_archive


def _zip(names: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, data in names.items():
            z.writestr(name, data)
    buf.seek(0)
    return buf


@pytest.mark.parametrize("top", ["a\\b", "x\\y\\z", "model"])
def test_aoti_member_under_any_archive_directory_is_refused(top):
    f = _zip({f"{top}/archive_format": b"pt2", f"{top}/data/aotinductor/model/model.so": b"\x7fELF"})
    with pytest.raises(InputFormatError, match="AOTInductor"):
        check_archive(f, "x.pt2")


def test_torch_reads_a_backslash_directory_member_as_aoti(tmp_path):
    # the premise of the refusal: torch's own reader names the member data/aotinductor/...
    need("torch")
    from torch.export.pt2_archive._package import PT2ArchiveReader

    path = tmp_path / "bs.pt2"
    path.write_bytes(_zip({"a\\b/archive_format": b"pt2", "a\\b/.data/version": b"1\n",
                           "a\\b/data/aotinductor/model/readme.txt": b"hi"}).read())
    assert "data/aotinductor/model/readme.txt" in PT2ArchiveReader(str(path)).get_file_names()
    with open(path, "rb") as f, pytest.raises(InputFormatError, match="AOTInductor"):
        check_archive(f, str(path))


@pytest.mark.parametrize("name", ["C:/Windows/x", "c:x", "Z:\\evil"])
def test_a_windows_drive_is_still_refused(name):
    with pytest.raises(InputFormatError, match="leaves the archive's directory"):
        check_archive(_zip({name: b"1"}), "x.pt2")


@pytest.mark.parametrize("stem", ["resnet:v2", "run_12:00", "my model:final"])
def test_a_saved_program_whose_file_name_holds_a_colon_loads(tmp_path, stem):
    torch = need("torch")
    from memplan.importers.torch import load_exported

    class _Small(torch.nn.Module):
        def forward(self, x):
            return x.relu() + 1

    path = tmp_path / f"{stem}.pt2"
    torch.export.save(torch.export.export(_Small(), (torch.ones(2, 3),)), str(path))
    with zipfile.ZipFile(path) as z:
        assert all(n.startswith(f"{stem}/") for n in z.namelist())   # the directory torch names after the file
    ep = load_exported(str(path))
    assert [n.op for n in ep.graph.nodes].count("call_function") >= 1


def test_a_guard_that_repeats_a_sequence_or_multiplies_by_a_huge_constant_is_refused():
    """Was: ``'a' * 100000000000 == 0``, ``(1,) * 10000000000 == 0`` and ``L['x'].size() * 10000000000 == 0`` passed
    the saved-guard check, and ``ep.module()`` would build 100 GB running them (found by review48c; fixed by the lead).
    Guards torch writes (``2*L['n']``, a size times a small coefficient) are still taken."""
    torch = need("torch")

    from memplan.importers.torch.untrusted import _guard_text_refusal

    for guard in ["'a' * 100000000000 == 0", "(1,) * 10000000000 == 0", "L['x'].size() * 10000000000 == 0",
                  "10000000000 * L['x'].stride() == 0", "L['n'] * 10000000000 == 0", "'ab' * L['x'].size()[0] == ''"]:
        why = _guard_text_refusal(torch, guard)
        assert why is not None and "repeats" in why, (guard, why)
    for guard in ["2*L['n'] <= L['x'].size()[0]", "L['x'].size()[0] * 3 < 100", "(L['x'].size()[0] * 4096) > 2"]:
        assert _guard_text_refusal(torch, guard) is None, guard
