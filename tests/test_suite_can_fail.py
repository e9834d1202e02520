"""The suite's own hygiene: a test that cannot fail is a defect (round 69).

Read from the source (``ast``), nothing of the suite is run. Each test function of ``tests/test_*.py`` must check
something: an ``assert``, a ``raise``, ``pytest.raises`` / ``warns`` / ``fail`` / ``skip``, an ``assert_*`` call
(NumPy, unittest.mock), warnings turned into errors, the plan verifier, or a call of a function that does one of these
(defined in its own file or imported from a tests/ helper module, followed through any depth), or a fixture that does.
A test whose only check is that the library does not refuse (it raises when it does) is listed in ``NO_ASSERT`` with
why that is its check. And no statement that looks like a check but is none: a comparison without ``assert``, an
``assert`` of a constant / tuple / literal / ``x or True``, ``x == x`` of one expression without a call (two calls
are a determinism check), ``pytest.raises(Exception)`` without ``match`` (it passes on a typo's NameError), or a test
defined twice under one name (pytest runs only the second).

And (round 70) no ``pytest.raises`` of one of memplan's own errors (any exception class of ``memplan/`` or
``runtime/``: ``GraphError``, ``UnsafePlan``, ``AtenExecutorError``...) that reads nothing of the message: a refusal
for another reason (a typo'd option, another node, another rule) passed it. It takes a ``match`` naming the node,
tensor, option or rule meant, or binds the error (``as info``) and reads it beyond ``isinstance``; the few that cannot
are in ``RAISES_NO_MATCH``, saying why.

Round 69 found by this: round 56's progress-callback test planned a graph on which CP-SAT sends no message (so the
callbacks it was about were never called); three ``pytest.raises(Exception)`` passed on an error raised for another
reason.
"""

from __future__ import annotations

import ast
import builtins
import collections
import functools
import gc
import pathlib
import re

import pytest

from memplan._gc import paused

TESTS = pathlib.Path(__file__).resolve().parent

#: test (file::function) -> why not raising is its check: the call raises where the library refuses
NO_ASSERT = {
    "test_hostile_api.py::test_hand_made_plan_with_every_offset_null_passes_the_field_check":
        "check_plan_fields raises PlanFormatError (crashed on min([]) before)",
    "test_hostile_round58.py::test_a_compressed_member_under_the_bomb_bounds_passes":
        "check_archive raises GraphError on a zip bomb",
    "test_left_round48a.py::test_an_unbounded_range_still_loads": "load_exported raises GraphError where it refuses",
    "test_review_round63.py::test_onnxruntimes_own_earlier_versions_are_still_planned":
        "import_onnx raises GraphError where it refuses",
    "test_torch_round67_unique.py::test_an_unread_empty_result_of_another_dtype_is_not_refused":
        "check_unique_index_metas and memplan.plan raise where they refuse",
}

#: test function (file::function, a helper too) -> why its ``pytest.raises`` of a memplan error has no ``match``
RAISES_NO_MATCH = {
    "test_aten_round64d.py::_matches_eager_or_refused":
        "raises eager's own error (a released memoryview's, whatever its words) or the executor's refusal",
}

#: the solvers' internal stop signals (``search_tree.Abort`` / ``OutOfWork``, ``placement.ArenaOver``): raised and
#: caught inside a solve, never shown to a user, and with no message to match (the type is all they say)
_SIGNALS = frozenset({"Abort", "OutOfWork", "ArenaOver"})

#: names of calls that are a check themselves (pytest's, unittest.mock's ``assert_*``, the plan verifier, the solver
#: checker)
_CHECK_CALLS = frozenset({"raises", "warns", "deprecated_call", "fail", "skip", "xfail", "verify", "check_solution"})


def _call_name(call: ast.Call) -> str | None:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def _is_check(node: ast.AST) -> bool:
    if isinstance(node, (ast.Assert, ast.Raise)):
        return True
    if not isinstance(node, ast.Call):
        return False
    name = _call_name(node) or ""
    if name in _CHECK_CALLS or name.startswith(("assert", "_assert")):
        return True
    # warnings.simplefilter("error", ...) / filterwarnings("error", ...): a warning fails the test
    return (name in ("simplefilter", "filterwarnings") and bool(node.args)
            and isinstance(node.args[0], ast.Constant) and node.args[0].value == "error")


class _Module:
    """One parsed file: its functions by name (any depth), what each calls, and its imports from tests/ modules."""

    def __init__(self, tree: ast.Module, names: set[str]) -> None:
        self.tree = tree
        self.defs: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]] = collections.defaultdict(list)
        self.imported: dict[str, tuple[str, str]] = {}   # local name -> (tests/ module, its name)
        self.modules: dict[str, str] = {}   # local name -> tests/ module (``import oracle as O``)
        self._scanned: dict[int, tuple[bool, list[tuple[str | None, str]]]] = {}
        self.suspects: list[ast.AST] = []   # what ``false_checks`` looks at, gathered in the same one walk
        for n in ast.walk(tree):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.defs[n.name].append(n)
            elif isinstance(n, (ast.Assert, ast.Expr)) or isinstance(n, ast.Call) and _call_name(n) == "raises":
                self.suspects.append(n)
            elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module in names:
                for a in n.names:
                    self.imported[a.asname or a.name] = (n.module, a.name)
            elif isinstance(n, ast.Import):
                for a in n.names:
                    if a.name in names:
                        self.modules[a.asname or a.name] = a.name

    def scan(self, fn: ast.AST) -> tuple[bool, list[tuple[str | None, str]]]:
        """(whether ``fn`` checks something itself, what it calls: [(tests/ module or None for its own, name)]),
        read once, when first asked (most helpers are never asked)."""
        if id(fn) in self._scanned:
            return self._scanned[id(fn)]
        direct, calls = False, []
        for n in ast.walk(fn):
            if _is_check(n):
                direct = True
                break
            if isinstance(n, ast.Call):
                f = n.func
                if isinstance(f, ast.Name):
                    calls.append((None, f.id))
                elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
                    if f.value.id in self.modules:
                        calls.append((self.modules[f.value.id], f.attr))
                    elif f.value.id in ("self", "cls"):
                        calls.append((None, f.attr))
                # a function of the file handed to another (``run(check)``, ``map(_check, ...)``)
                calls.extend((None, a.id) for a in n.args if isinstance(a, ast.Name))
        self._scanned[id(fn)] = direct, calls
        return direct, calls


@functools.lru_cache(maxsize=1)
@paused
def _suite() -> dict[str, _Module]:
    """Every file of tests/ parsed, once for the module's tests. The parse makes millions of AST nodes and no cyclic
    garbage, so the cyclic collector's automatic runs are paused meanwhile (``memplan._gc.paused``) and the nodes are
    frozen after: its passes over the growing heap were two thirds of the parse's time (6.5 s of CPU, 1.9 s without
    them)."""
    paths = sorted(TESTS.glob("*.py"))
    names = {p.stem for p in paths}
    suite = {p.stem: _Module(ast.parse(p.read_text(encoding="utf-8"), str(p)), names) for p in paths}
    gc.freeze()   # (and out of its later passes too, as conftest freezes the heap at each module)
    return suite


@pytest.fixture(scope="module", autouse=True)
def _drop_the_parsed_suite_after_the_module():
    """The parsed suite let go when this module ends, so the tests after it in the same worker do not carry (and the
    collector does not walk) its millions of nodes."""
    yield
    _suite.cache_clear()


def _checks(suite: dict[str, _Module], module: str, name: str, seen: set) -> bool:
    """Whether ``name`` of ``module`` (its own function, or one it imports from a tests/ module) checks something."""
    if (module, name) in seen:
        return False
    seen.add((module, name))
    m = suite[module]
    if name in m.imported:
        return _checks(suite, *m.imported[name], seen)
    return any(_fn_checks(suite, module, fn, seen) for fn in m.defs.get(name, ()))


def _fn_checks(suite: dict[str, _Module], module: str, fn: ast.AST, seen: set) -> bool:
    direct, calls = suite[module].scan(fn)
    return direct or any(_checks(suite, mod or module, name, seen) for mod, name in calls)


def _fixtures(suite: dict[str, _Module]) -> dict[str, list[tuple[str, ast.AST]]]:
    out = collections.defaultdict(list)
    for module, m in suite.items():
        for fns in m.defs.values():
            for fn in fns:
                if any("fixture" in ast.unparse(d) for d in fn.decorator_list):
                    out[fn.name].append((module, fn))
    return out


def _tests(suite: dict[str, _Module]):
    """(file::name, module, def) of every test function of a tests/test_*.py file (module level and in classes)."""
    for module, m in suite.items():
        if not module.startswith("test_"):
            continue
        for top in m.tree.body:
            body = top.body if isinstance(top, ast.ClassDef) and top.name.startswith("Test") else [top]
            for fn in body:
                if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and fn.name.startswith("test"):
                    yield f"{module}.py::{fn.name}", module, fn


def unchecked_tests(suite: dict[str, _Module]) -> list[str]:
    """The tests that check nothing: no check of their own, in a function they call, or in a fixture they take."""
    fixtures, out = _fixtures(suite), []
    for where, module, fn in _tests(suite):
        if _fn_checks(suite, module, fn, set()):
            continue
        args = [a.arg for a in fn.args.args]
        if any(_fn_checks(suite, fm, fx, set()) for a in args for fm, fx in fixtures.get(a, ())):
            continue
        out.append(where)
    return out


def _has_call(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Call) for n in ast.walk(node))


def false_checks(suite: dict[str, _Module]) -> list[str]:
    """Statements of tests/test_*.py that look like a check and cannot fail (file:line what)."""
    out = []
    for module, m in suite.items():
        if not module.startswith("test_"):
            continue
        for n in m.suspects:
            where = f"{module}.py:{n.lineno}"
            if isinstance(n, ast.Expr) and isinstance(n.value, ast.Compare):
                out.append(f"{where} a comparison without assert: {ast.unparse(n.value)}")
            elif isinstance(n, ast.Assert):
                t = n.test
                if isinstance(t, (ast.Constant, ast.Tuple, ast.JoinedStr, ast.List, ast.Dict, ast.Set)):
                    out.append(f"{where} assert of a literal: {ast.unparse(t)}")
                elif isinstance(t, ast.BoolOp) and isinstance(t.op, ast.Or) and any(
                        isinstance(v, ast.Constant) and v.value for v in t.values):
                    out.append(f"{where} assert ... or <true>: {ast.unparse(t)}")
                elif (isinstance(t, ast.Compare) and len(t.ops) == 1 and isinstance(t.ops[0], (ast.Eq, ast.Is))
                      and ast.dump(t.left) == ast.dump(t.comparators[0]) and not _has_call(t.left)):
                    out.append(f"{where} x == x: {ast.unparse(t)}")
            elif isinstance(n, ast.Call) and _call_name(n) == "raises" and n.args:
                kinds = n.args[0].elts if isinstance(n.args[0], ast.Tuple) else [n.args[0]]
                if (any(isinstance(k, ast.Name) and k.id in ("Exception", "BaseException") for k in kinds)
                        and not any(k.arg == "match" for k in n.keywords)):
                    out.append(f"{where} pytest.raises of any exception, no match: {ast.unparse(n)}")
        scopes = [m.tree.body] + [c.body for c in m.tree.body if isinstance(c, ast.ClassDef)]
        for body in scopes:
            seen: set[str] = set()
            for fn in body:
                if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and fn.name.startswith("test"):
                    if fn.name in seen:
                        out.append(f"{module}.py:{fn.lineno} {fn.name} defined again: the first never runs")
                    seen.add(fn.name)
    return out


@functools.lru_cache(maxsize=1)
def memplan_errors() -> frozenset[str]:
    """The exception classes ``memplan/`` and ``runtime/`` define (read from the source: importing ``runtime``'s GPU
    modules needs what CI may lack), less the internal stop signals."""
    bases: dict[str, set[str]] = collections.defaultdict(set)
    for pkg in ("memplan", "runtime"):
        for path in sorted((TESTS.parent / pkg).rglob("*.py")):
            for name, of in re.findall(r"^\s*class (\w+)\(([^)]*)\)", path.read_text(encoding="utf-8"), re.M):
                bases[name].update(b.strip().rsplit(".", 1)[-1] for b in of.split(","))
    found = {k for k, v in vars(builtins).items()
             if isinstance(v, type) and issubclass(v, BaseException) and not issubclass(v, Warning)}
    mine: set[str] = set()
    while True:
        more = {c for c, bs in bases.items() if c not in mine and bs & (found | mine)}
        if not more:
            return frozenset(mine - _SIGNALS)
        mine |= more


def _name(node: ast.AST) -> str | None:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None


def _expected(call: ast.Call) -> ast.AST | None:
    """The exception (or tuple) a ``pytest.raises`` call expects: its first argument or ``expected_exception=``."""
    if call.args:
        return call.args[0]
    return next((k.value for k in call.keywords if k.arg == "expected_exception"), None)


def _matches(call: ast.Call) -> bool:
    """Whether the call gives a ``match`` that reads something (``match=None`` matches any message)."""
    return any(k.arg == "match" and not (isinstance(k.value, ast.Constant) and k.value.value in (None, ""))
               for k in call.keywords)


def unmatched_raises(suite: dict[str, _Module], errors: frozenset[str]) -> list[str]:
    """``file::function line: call`` of each ``pytest.raises`` of an error in ``errors`` that reads nothing of the
    message: no ``match``, and neither ``with ... as info`` with ``info`` read past ``isinstance``/``type`` nor
    ``pytest.raises(...).value`` read."""
    out = []
    for module, m in suite.items():
        if not module.startswith("test_"):
            continue
        fns = [t for t in m.tree.body if isinstance(t, (ast.FunctionDef, ast.AsyncFunctionDef))]
        fns += [f for c in m.tree.body if isinstance(c, ast.ClassDef) for f in c.body
                if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))]
        known = None
        for fn in fns:
            nodes = list(ast.walk(fn))   # (walked once: each walk of every test function was most of the scan's time)
            calls = [c for c in nodes if isinstance(c, ast.Call) and _name(c.func) == "raises"
                     and _expected(c) is not None and not _matches(c)]
            if not calls:
                continue
            if known is None:
                # (a memplan error imported under another name: ``from memplan.errors import GraphError as GE``)
                known = errors | {a.asname for i in ast.walk(m.tree) if isinstance(i, ast.ImportFrom) for a in i.names
                                  if a.asname and a.name in errors}
            calls = [c for c in calls if any(_name(k) in known for k in
                                             (_expected(c).elts if isinstance(_expected(c), ast.Tuple) else [_expected(c)]))]
            if not calls:
                continue
            withs = [w for w in nodes if isinstance(w, (ast.With, ast.AsyncWith))]
            bound = {id(i.context_expr): i.optional_vars.id for w in withs for i in w.items
                     if isinstance(i.optional_vars, ast.Name)}
            read = {id(n.value) for n in nodes if isinstance(n, ast.Attribute)}   # pytest.raises(...).value
            loads = collections.Counter(n.id for n in nodes
                                        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load))
            for t in nodes:   # isinstance(info.value, X) reads no message
                if isinstance(t, ast.Call) and _name(t.func) in ("isinstance", "type", "issubclass"):
                    loads.subtract(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
                # nor does ``info.type is GraphError`` / ``info.typename``
                elif isinstance(t, ast.Attribute) and t.attr in ("type", "typename") and isinstance(t.value, ast.Name):
                    loads.subtract([t.value.id])
            for c in calls:
                if id(c) in read or loads[bound.get(id(c), "")] > 0:
                    continue
                out.append(f"{module}.py::{fn.name} {c.lineno}: {ast.unparse(c)}")
    return out


def test_every_raise_of_a_memplan_error_reads_its_message():
    """A new ``pytest.raises(GraphError)`` (or any memplan error) with no ``match`` fails here, naming it: give it a
    ``match`` naming what it means (the node, tensor, option or rule), or list its function in RAISES_NO_MATCH."""
    found = unmatched_raises(_suite(), memplan_errors())
    assert [f for f in found if f.split(" ")[0] not in RAISES_NO_MATCH] == []
    assert [k for k in RAISES_NO_MATCH if not any(f.startswith(k + " ") for f in found)] == [], (
        "listed in RAISES_NO_MATCH but gone or matched: unlist")


def test_every_test_checks_something():
    """A new test with no check fails here, naming it: give it an assert (or list it in NO_ASSERT, saying why not
    raising is what it checks)."""
    unchecked = unchecked_tests(_suite())
    assert [t for t in unchecked if t not in NO_ASSERT] == []
    assert [t for t in NO_ASSERT if t not in unchecked] == [], "listed in NO_ASSERT but gone or checking: unlist"


def test_no_statement_looks_like_a_check_and_cannot_fail():
    assert false_checks(_suite()) == []


def test_the_scan_sees_a_test_without_a_check_and_each_false_check():
    """The scan's own negative control: planted sources, each a defect it must name (and the fixed twin none)."""
    planted = '''
import pytest
from helpers import checked_helper


def _local_check(x):
    assert x


def _calls_nothing(x):
    return x


@pytest.fixture
def checking_fixture():
    yield
    assert _calls_nothing(1) == 1


def test_plans_only():
    plan()


def test_helper_that_checks_nothing():
    _calls_nothing(1)


def test_local_helper():
    _local_check(1)


def test_imported_helper():
    checked_helper(1)


def test_fixture(checking_fixture):
    plan()


def test_raises():
    with pytest.raises(ValueError, match="x"):
        plan()


def test_dup():
    assert f() == 1


def test_dup():
    assert f() == 2


def test_false():
    x = f()
    x == 1
    assert (x, "why")
    assert x or True
    assert x == x
    assert f() == f()
    with pytest.raises(Exception):
        plan()
'''
    helpers = "def checked_helper(x):\n    assert x\n"
    names = {"test_planted", "helpers"}
    suite = {"test_planted": _Module(ast.parse(planted), names), "helpers": _Module(ast.parse(helpers), names)}
    assert unchecked_tests(suite) == ["test_planted.py::test_plans_only",
                                      "test_planted.py::test_helper_that_checks_nothing"]
    assert [line.split(" ", 1)[1].split(":")[0] for line in false_checks(suite)] == [
        "a comparison without assert", "assert of a literal", "assert ... or <true>", "x == x",
        "pytest.raises of any exception, no match", "test_dup defined again"]


def test_the_scan_sees_a_raise_of_a_memplan_error_that_reads_no_message():
    """The negative control of the round-70 scan: each raise that reads no message is named, and none of its fixed
    twins, nor a raise of a builtin or a stop signal."""
    planted = '''
import pytest
from memplan.errors import GraphError
from memplan.errors import GraphError as GE


def test_bare():
    with pytest.raises(GraphError):
        plan()


def test_only_its_type():
    with pytest.raises((GraphError, memplan.UnsafePlan)) as info:
        plan()
    assert not isinstance(info.value, AtenExecutorError)


def test_function_form():
    pytest.raises(memplan.errors.OptionError, plan, 3)


def test_keyword_form():
    with pytest.raises(expected_exception=GraphError):
        plan()


def test_match_none():
    with pytest.raises(GraphError, match=None):
        plan()


def test_aliased():
    with pytest.raises(GE):
        plan()


def test_only_its_type_name():
    with pytest.raises(GraphError) as info:
        plan()
    assert info.type is GraphError and info.typename == "GraphError"


def test_fixed():
    with pytest.raises(GraphError, match="node 'a'"):
        plan()
    with pytest.raises(GraphError) as info:
        plan()
    assert "node 'a'" in str(info.value)
    assert "x" in str(pytest.raises(GraphError, plan, 3).value)
    with pytest.raises(ValueError):
        int("x")
    with pytest.raises(search_tree.Abort):
        search()
'''
    suite = {"test_planted": _Module(ast.parse(planted), {"test_planted"})}
    errors = memplan_errors()
    assert {"GraphError", "UnsafePlan", "OptionError", "AtenExecutorError", "OverCapacity"} <= errors
    assert not errors & (_SIGNALS | {"ValueError", "FieldWarning"})
    assert [f.split(" ")[0] for f in unmatched_raises(suite, errors)] == [
        "test_planted.py::test_bare", "test_planted.py::test_only_its_type", "test_planted.py::test_function_form",
        "test_planted.py::test_keyword_form", "test_planted.py::test_match_none", "test_planted.py::test_aliased",
        "test_planted.py::test_only_its_type_name"]
