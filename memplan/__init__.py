try: from ._interrupt import hold; hold()  # noqa: E701, I001 (on the ``try`` line: a line before it is not covered)
except KeyboardInterrupt:   # (before the handler was set; ``_interrupt``'s docstring says why)
    from ._interrupt import interrupted_before_hold

    interrupted_before_hold()
    raise

# (the docstring after: the first line of the file is the ``try`` above, in the command's process)
__doc__ = """memplan: safe, small arenas for compute graphs that run on several CUDA streams.

``memplan.plan(graph)`` returns a verified Plan; ``memplan.verify(graph, plan)`` checks any plan.
"""

from .devices import DeviceSplit, split_devices
from .errors import (
                     BudgetError,
                     GraphError,
                     InputFormatError,
                     MemplanError,
                     OptionError,
                     PlanFormatError,
                     ScheduleError,
                     SolverError,
                     UnsafePlan,
)
from .graph import Graph, GraphBuilder, Node, Tensor, graph_from_dict
from .importers import from_torch
from .io import load_graph, load_plan, save_graph, save_plan
from .optimize import CostModel, graph_optimize
from .plan import Planned, plan, plan_devices, plan_graph
from .planfile import Plan, plan_from_dict
from .problem import BufferProblem, Solution
from .reuse import Reuse, ReuseIndex, reuse_after, reuse_table
from .schedule import (
                     Event,
                     HappensBefore,
                     Schedule,
                     build_happens_before,
                     schedule_with_events,
                     serial_schedule,
)
from .simulate import Simulation, simulate
from .verify import verify

__version__ = "0.1.0"

__all__ = [
    "BudgetError", "BufferProblem", "Event", "Graph", "GraphBuilder", "GraphError", "HappensBefore",
    "InputFormatError", "MemplanError", "OptionError", "Node", "Plan", "PlanFormatError", "Schedule", "ScheduleError",
    "Solution", "SolverError", "Tensor", "UnsafePlan", "build_happens_before", "graph_from_dict",
    "load_graph", "load_plan", "plan", "plan_from_dict", "save_graph", "save_plan",
    "schedule_with_events", "serial_schedule", "verify",
    "CostModel", "Simulation", "graph_optimize", "simulate",
]
__all__ += ["from_torch", "DeviceSplit", "Planned", "plan_devices", "plan_graph", "split_devices"]
__all__ += ["Reuse", "ReuseIndex", "reuse_after", "reuse_table"]
