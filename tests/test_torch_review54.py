"""Review of round 54's weights-only allowance for transformers' KV cache classes (``_cache_examples_read``).

torch's weights-only unpickler calls an allowed global on REDUCE (``cls(*args)``), so allowing the cache classes
themselves let a ``.pt2``'s sample inputs run their constructors with arguments of the file's choice
(``DynamicCache(None, None, True)`` makes a stream object, ``DynamicSlidingWindowLayer(5)`` a tensor): not the
``cls.__new__`` and ``__dict__`` update the allowance promised. A cache pickled as Python pickles one (NEWOBJ, BUILD)
still loads.
"""

from __future__ import annotations

import io
import pickle

import pytest
from needs import need

torch = need("torch")
transformers = need("transformers")

from test_torch_round54 import decode  # noqa: E402, F401 - the fixture, reused

from memplan.importers.torch.load import _cache_examples_read  # noqa: E402

_CACHES = frozenset({"transformers.cache_utils.DynamicCache"})


class _Calls:
    """Pickles as a call of ``fn(*args)`` (a REDUCE), as a crafted file can."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _saved(obj) -> io.BytesIO:
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return buf


@pytest.mark.parametrize("name,args", [("DynamicSlidingWindowLayer", (5,)), ("DynamicCache", (None, None, True)),
                                       ("DynamicLayer", ())])
def test_a_cache_class_called_by_the_pickle_never_runs_its_constructor(name, args, monkeypatch):
    import transformers.cache_utils as cu

    cls = getattr(cu, name)
    ran = []
    real_init = cls.__init__
    monkeypatch.setattr(cls, "__init__", lambda self, *a, **k: (ran.append(a), real_init(self, *a, **k))[-1])
    buf = _saved([_Calls(cls, *args)])
    with _cache_examples_read(torch, _CACHES):
        if args:
            with pytest.raises(pickle.UnpicklingError, match=name):
                torch.load(buf, weights_only=True)
        else:   # (a call with no arguments: the bare instance NEWOBJ makes, no constructor)
            (back,) = torch.load(buf, weights_only=True)
            assert type(back) is cls and vars(back) == {}
    assert ran == []


def test_a_cache_pickled_as_python_pickles_it_still_loads_without_its_constructor():
    from transformers.cache_utils import DynamicCache, DynamicLayer

    cache = DynamicCache()
    cache.update(torch.ones(1, 2, 3, 4), torch.zeros(1, 2, 3, 4), 0)
    with _cache_examples_read(torch, _CACHES):
        back = torch.load(_saved({"c": cache}), weights_only=True)["c"]
    assert type(back) is DynamicCache and type(back.layers[0]) is DynamicLayer
    assert torch.equal(back.layers[0].keys, torch.ones(1, 2, 3, 4))
    # (outside the block the classes are refused again)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(_saved(cache), weights_only=True)


def test_a_pt2_whose_sample_inputs_call_a_cache_class_is_refused_unrun(decode, tmp_path, monkeypatch):  # noqa: F811
    """The same through ``memplan import``'s loader: a decode step's sample inputs rewritten to build their
    ``DynamicCache`` by a call with ``offloading=True`` ran its constructor (here: "not a torch.export program
    (AcceleratorError: CUDA error ...)", a stream made where a GPU is); now the unpickler's refusal, nothing run."""
    import zipfile

    from transformers.cache_utils import DynamicCache

    from memplan.errors import InputFormatError
    from memplan.importers.torch.load import load_exported

    path = decode[0]
    src = zipfile.ZipFile(path)
    hostile = _saved(((torch.zeros(1, 1, dtype=torch.long),),
                      {"past_key_values": _Calls(DynamicCache, None, None, True), "use_cache": True}))
    bad = tmp_path / "hostile.pt2"
    with zipfile.ZipFile(bad, "w", zipfile.ZIP_STORED) as out:
        for info in src.infolist():
            out.writestr(info, hostile.getvalue() if "sample_inputs" in info.filename else src.read(info.filename))
    ran = []
    real_init = DynamicCache.__init__
    monkeypatch.setattr(DynamicCache, "__init__", lambda self, *a, **k: (ran.append(a), real_init(self, *a, **k))[-1])
    with pytest.raises(InputFormatError, match="weights-only unpickler refuses"):
        load_exported(str(bad))
    assert ran == []
