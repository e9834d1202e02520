"""memplan: safe, small arenas for compute graphs that run on several CUDA streams.

``memplan.plan(graph)`` returns a verified Plan; ``memplan.verify(graph, plan)`` checks any plan.
"""

from __future__ import annotations

from .errors import (
                     BudgetError,
                     GraphError,
                     InputFormatError,
                     MemplanError,
                     PlanFormatError,
                     ScheduleError,
                     SolverError,
                     UnsafePlan,
)
from .graph import Graph, GraphBuilder, Node, Tensor, graph_from_dict
from .io import load_graph, load_plan, save_graph, save_plan
from .plan import plan
from .planfile import Plan, plan_from_dict
from .problem import BufferProblem, Solution
from .schedule import Event, HappensBefore, Schedule, build_happens_before, schedule_with_events, serial_schedule
from .verify import verify

__version__ = "0.1.0"

__all__ = [
    "BudgetError", "BufferProblem", "Event", "Graph", "GraphBuilder", "GraphError", "HappensBefore",
    "InputFormatError", "MemplanError", "Node", "Plan", "PlanFormatError", "Schedule", "ScheduleError",
    "Solution", "SolverError", "Tensor", "UnsafePlan", "build_happens_before", "graph_from_dict",
    "load_graph", "load_plan", "plan", "plan_from_dict", "save_graph", "save_plan",
    "schedule_with_events", "serial_schedule", "verify",
]
