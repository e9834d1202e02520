"""Round 78 (depth78): the refusals of a split over devices name the caller's options in the caller's words, made so
where the message is made, not rewritten after it.

``memplan plan`` rewrote the library's message after the raise (``cli._respell_split_options``): "devices=40 ..."
into "--devices 40 ...", "the device_capacity of" into "--device-capacity", " as a memory_budget:" into " as a memory
budget:". A rewording in ``devices/split.py``, ``partition.py`` or ``plan.py`` broke that silently, and a graph whose
name held the text was rewritten too. Now each such error carries its template and option values
(``errors.NamesOptions``, the machinery ``UnusedOption``'s warnings already used): a Python caller reads the same text
as before, and the command spells the options as its flags (``argtypes.FLAGS``). Oracle for each: the library's text
as it was (the keyword spelling, exact), and the command's line the same text with only the options' words as flags.
"""

from __future__ import annotations

import dataclasses
import pickle

import pytest

import memplan
from memplan import examples
from memplan.argtypes import FLAGS
from memplan.cli import main
from memplan.devices.split import split_devices


def _tiny() -> memplan.Graph:
    return examples.llama(examples.LLAMA_TINY)


def _no_nodes() -> memplan.Graph:
    from memplan.graph import graph_from_dict

    return graph_from_dict({"format": "memplan.graph/1", "name": "w", "tensors": [{"id": "w", "size": 4,
                                                                                 "kind": "weight"}], "nodes": []})


def _balanced_weights() -> int:
    """The largest device's weights in the cost-balanced 2-device split of the tiny llama: weights that fit with no
    room for an arena (tests/test_devices.py)."""
    return max(split_devices(_tiny(), 2).weight_bytes)


#: each refusal of a split naming an option: (graph, the library's keywords, the command's flags, the library's text
#: of the option, the command's)
CASES = {
    "more devices than stages": (_tiny, dict(devices=40), ["--devices", "40"], "devices=40 is more than graph",
                                 "--devices 40 is more than graph"),
    "a graph without nodes": (_no_nodes, dict(devices=2), ["--devices", "2"], "devices=2: graph 'w' has no nodes",
                              "--devices 2: graph 'w' has no nodes"),
    "weights alone over one device": (_tiny, dict(device_capacity=1024), ["--device-capacity", "1024"],
                                      "weights alone, over the device_capacity of 1024 B (its arena",
                                      "weights alone, over --device-capacity 1024 B (its arena"),
    "re-planned within what one device leaves": (
        _tiny, dict(device_capacity=164328), ["--device-capacity", "164328"],
        "over the device_capacity of 164328 B; planned again with the 1000 B it leaves after the weights as a "
        "memory_budget: graph 'llama-L2-b1': ",
        "over --device-capacity 164328 B; planned again with the 1000 B it leaves after the weights as a "
        "memory budget: graph 'llama-L2-b1': "),
    "weights over a device of a split": (_tiny, dict(devices=2, device_capacity=1024),
                                         ["--devices", "2", "--device-capacity", "1024"],
                                         "B of weights (units 1..43), over the device_capacity of 1024 B",
                                         "B of weights (units 1..43), over --device-capacity 1024 B"),
    "no split leaves a device within its capacity": (
        _tiny, dict(devices=2, device_capacity=[10 ** 9, 1024]), ["--devices", "2", "--device-capacity", "1G,1024"],
        "the least any split leaves it), over the device_capacity of 1024 B",
        "the least any split leaves it), over --device-capacity 1024 B"),
}


def _library_error(graph: memplan.Graph, **options) -> memplan.MemplanError:
    with pytest.raises(memplan.MemplanError) as info:
        memplan.plan_graph(graph, **options)
    return info.value


def _command_error(tmp_path, capsys, graph: memplan.Graph, *flags: str) -> str:
    """The one error line of ``memplan plan`` on ``graph`` with ``flags``, without its ``memplan: error:`` lead."""
    path = tmp_path / "g.json"
    memplan.save_graph(graph, str(path))
    assert main(["plan", str(path), "-o", str(tmp_path / "p.json"), "--graph-out", str(tmp_path / "s.json"),
                 *flags]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("memplan: error: "), err
    assert not (tmp_path / "p.json").exists() and not (tmp_path / "s.json").exists()
    return err[len("memplan: error: "):-1]


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_split_refusal_names_keywords_to_python_and_flags_on_the_command_line(case, tmp_path, capsys):
    """The library's text is what it was (its options as keywords); the command's line is that text with the
    options as the flags typed, and nothing else changed."""
    make, keywords, flags, said, typed = CASES[case]
    exc = _library_error(make(), **keywords)
    assert said in str(exc), str(exc)
    assert exc.spelled(FLAGS) == str(exc).replace(said, typed)
    assert _command_error(tmp_path, capsys, make(), *flags) == str(exc).replace(said, typed)


def test_a_split_over_its_capacity_after_giving_back_concurrency_names_the_flag(tmp_path, capsys):
    """The multi-device re-plan (``plan._plan_devices``) refuses a device whose weights fit but whose arena does
    not, "over the device_capacity of N B" to Python, "over --device-capacity N B" on the command line."""
    cap = _balanced_weights()
    exc = _library_error(_tiny(), devices=2, device_capacity=cap)
    said = f"B, over the device_capacity of {cap} B"
    assert " B of weights plus an arena of " in str(exc) and said in str(exc), str(exc)
    typed = str(exc).replace(said, f"B, over --device-capacity {cap} B")
    assert exc.spelled(FLAGS) == typed
    assert _command_error(tmp_path, capsys, _tiny(), "--devices", "2", "--device-capacity", str(cap)) == typed


def test_a_graph_name_holding_an_options_old_text_is_never_rewritten(tmp_path, capsys):
    """A graph named with the text the command rewrote ("the device_capacity of", " as a memory_budget:") and a
    template's braces is named as it is, by the library and by the command; only the options are spelt as flags.
    Before: the command's line named the graph "x --device-capacity y as a memory budget: ..." (another graph)."""
    name = "x the device_capacity of y as a memory_budget: {devices} z"
    graph = dataclasses.replace(_tiny(), name=name)
    exc = _library_error(graph, device_capacity=164328)
    assert f"graph {name!r}: the serial plan needs" in str(exc), str(exc)
    line = _command_error(tmp_path, capsys, graph, "--device-capacity", "164328")
    assert f"graph {name!r}: the serial plan needs" in line, line
    assert line.startswith("device 0 needs ") and "over --device-capacity 164328 B; planned again" in line, line
    assert line == exc.spelled(FLAGS)
    stages = _library_error(graph, devices=40)   # (a name inside the template proper: its braces are text)
    assert str(stages).startswith(f"devices=40 is more than graph {name!r} can use")
    assert stages.spelled(FLAGS) == "--devices 40" + str(stages)[len("devices=40"):]


def test_an_error_names_its_options_by_field_form_and_keeps_them_through_pickle():
    """``{opt}`` an option given a value, ``{opt!n}`` the option named as what it sets, ``{opt!w}`` its name alone:
    keywords for Python, flags (and the command's prose) for ``memplan``; an error made without a template is its
    text either way, and a pickled copy (a worker process's) spells its options as the original does."""
    exc = memplan.BudgetError.of("{devices}: over {device_capacity!n} B as a {memory_budget!w}; {cost_model}",
                                 devices=2, device_capacity=1024, cost_model=None)
    assert str(exc) == "devices=2: over the device_capacity of 1024 B as a memory_budget; cost_model=None"
    assert exc.spelled(FLAGS) == "--devices 2: over --device-capacity 1024 B as a memory budget; cost_model=None"
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is memplan.BudgetError and str(copy) == str(exc)
    assert copy.spelled(FLAGS) == exc.spelled(FLAGS)
    plain = memplan.BudgetError("devices=2 {x} the device_capacity of 1 B")
    assert plain.spelled(FLAGS) == str(plain)

