"""A study's results as stored: its records, front, timed front, paired evidence, P(front) and
hypervolume, read from the Optuna storage alone (``bench report``, ``Sweep.result``), without
the sweep that ran it."""
from __future__ import annotations

from typing import Any, Optional

from ..search.pareto import front_records, hypervolume
from ..search.records import SweepResult
from ..search.study import front_folds, front_latency, study_info, weights_decisions
from ..search.study import records as study_records
from .evidence import weigh_front
from .folds import weigh_folds
from .membership import front_membership


def load_result(study: Any) -> SweepResult:
    """An Optuna study's records, front and timed front (for ``bench report``: from the storage
    alone, see :func:`bench.search.study.load_study`)."""
    info = study_info(study)
    found = study_records(study)
    result = SweepResult(info, found, front_records(found, info.objectives), front_latency(study))
    weigh_front(result)
    weigh_folds(result, front_folds(study))
    result.weights = weights_decisions(study)
    result.hypervolume = front_hypervolume(result)
    result.front_probability = front_membership(found, info.objectives)
    return result


def front_hypervolume(result: SweepResult) -> Optional[float]:
    """The hypervolume of the front, as :data:`SweepResult.HYPERVOLUME` states it."""
    names = list(result.info.objectives)
    trained = [r for r in result.records if r.state == "COMPLETE" and r.feasible and r.duplicate_of is None
               and all(r.value(n) is not None for n in names)]
    if not trained:
        return None
    losses = []
    for name, direction in result.info.objectives.items():
        values = [r.value(name) for r in trained]
        low, span = min(values), (max(values) - min(values)) or 1.0
        losses.append([(v - low) / span if direction == "minimize" else 1 - (v - low) / span for v in values])
    front = {r.number for r in result.front_records}
    points = [[axis[i] for axis in losses] for i, r in enumerate(trained) if r.number in front]
    return hypervolume(points, [1.1] * len(names))
