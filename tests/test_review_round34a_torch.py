"""Round 34 review (review34a): the ``.pt2`` guard's symbolic-size check let a string through to a sympy class
that sympifies its arguments in turn: ``Max("<code>", ...)`` (``Poly`` too) passed the token filter, and sympy
then ran the code inside the string as Python (``eval``) on ``memplan import``."""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from test_torch_round34 import _rewritten, _saved  # noqa: E402

from memplan.errors import InputFormatError  # noqa: E402
from memplan.importers.torch import load_exported  # noqa: E402
from memplan.importers.torch.untrusted import _sympy_text_refusal  # noqa: E402


def _code_in_a_string(marker):
    symbol = "Symbol('s77', positive=True, integer=True)"

    def change(name: str, data: bytes):
        if name.endswith("models/model.json"):
            text = data.decode()
            assert symbol in text, "torch names the batch symbol otherwise: update the test"
            code = f"0*len(open({str(marker)!r}, 'w').name)"
            return text.replace(symbol, f'Max({symbol}, \\"{code}\\")', 1).encode()
        return None if not name else data
    return change


def test_code_in_a_string_argument_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "ran"
    hostile = _rewritten(_saved(tmp_path, True), tmp_path / "hostile.pt2", _code_in_a_string(marker))
    with pytest.raises(InputFormatError, match=rf"^{hostile}: .*symbolic size in the program.*does not evaluate"):
        load_exported(str(hostile))
    assert not marker.exists(), "code in the archive ran"


@pytest.mark.parametrize("text", ["Max(\"__import__('os')\", Integer(1))", "Poly('x + 1')", "Integer('5')",
                                  "Symbol('s0', integer='yes')", "Max(*[Integer(1)])",
                                  "Add(**{})", "Symbol('x')(Integer(1))"])
def test_strings_stand_only_as_a_symbols_name_or_a_floats_digits(text):
    assert _sympy_text_refusal(text) is not None, text


def test_what_srepr_writes_for_dynamic_shapes_is_still_taken():
    import sympy
    from torch.utils._sympy.functions import CeilToInt, FloorDiv, Mod, ModularIndexing

    s, t = sympy.Symbol("s0", positive=True, integer=True), sympy.Symbol("ünï_1", integer=True)
    for expr in (FloorDiv(s, 2), Mod(s, 3), sympy.Max(s, t, 4), CeilToInt(sympy.Float(1.5) * s), sympy.Lt(s, 9),
                 sympy.Ne(2 * s, t), ModularIndexing(s + t, 2, 8), -s - 7, sympy.Dummy("d") + s, sympy.Min(s, -3),
                 sympy.Rational(3, 4) * s, sympy.false):
        assert _sympy_text_refusal(sympy.srepr(expr)) is None, sympy.srepr(expr)
