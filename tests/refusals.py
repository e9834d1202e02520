"""What a property test may skip when ``memplan.plan`` refuses a random input, and what it must never skip.

The planner refuses by design on some random graphs and options: a memory budget no order meets (BudgetError), a
schedule or device split the graph cannot take (ScheduleError, GraphError), a solver that plans one serial stream
asked for several (SolverError). Its own bugs are MemplanErrors too: a plan that fails its own verification
(UnsafePlan) and a solver's overlapping or overrunning offsets (InvalidPacking, a SolverError). A test that wrote
``except MemplanError: return`` passed with every offset of a solver set to 0; ``skip_refusal`` re-raises those."""

from __future__ import annotations

from memplan.errors import BudgetError, GraphError, ScheduleError, SolverError, UnsafePlan
from memplan.solvers.check import InvalidPacking

#: the refusals by design, to name in an ``except`` clause whose body calls ``skip_refusal``
REFUSALS = (BudgetError, ScheduleError, SolverError, GraphError)


def skip_refusal(exc: BaseException) -> None:
    """Re-raise ``exc`` where it is a planner bug (UnsafePlan, InvalidPacking), not a refusal by design."""
    if isinstance(exc, (UnsafePlan, InvalidPacking)) or not isinstance(exc, REFUSALS):
        raise exc
