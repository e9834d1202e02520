"""Round 52 (verify52): the verifier's finding count of missing nodes, and hostile plan shapes against the oracle.

* ``order is missing node 'a' and 999 more`` was one finding in ``Findings.total`` (and ``UnsafePlan``'s "and N
  more"), the same as a plan missing one node; each missing node now counts, as the message counts them.
"""

from __future__ import annotations

import copy

import handgraphs as H
from test_verify import safe_doc

from memplan.errors import UnsafePlan
from memplan.verify import check


def test_missing_nodes_count_one_finding_each():
    g = H.chain()
    doc = safe_doc(g, H.serial(g))
    two = copy.deepcopy(doc)
    two["order"] = two["order"][:-2]
    found = check(g, two)
    assert found == [(1, "order is missing node 'op2' and 1 more")]
    assert found.total == 2 and found.exact
    err = UnsafePlan(found, total=found.total, total_exact=found.exact)
    assert str(err).endswith("; and 1 more"), str(err)
    one = copy.deepcopy(doc)
    one["order"] = one["order"][:-1]
    assert check(g, one).total == 1
    # with other rule-1 findings ahead of it (the foreign-plan note, the unknown node): 2 + 3 missing
    odd = copy.deepcopy(doc)
    odd["order"] = odd["order"][:-3] + [{"node": "ghost", "stream": 0}]
    found = check(g, odd)
    assert found[-1] == (1, "order is missing node 'op1' and 2 more") and len(found) == 3 and found.total == 5
