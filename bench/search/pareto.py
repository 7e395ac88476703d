"""Pareto fronts: the non-dominated set of points under objectives with directions."""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

if TYPE_CHECKING:
    from .records import TrialRecord

MINIMIZE, MAXIMIZE = "minimize", "maximize"


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """True if ``a`` is at least as good as ``b`` in every objective and better in one."""
    better = False
    for x, y, direction in zip(a, b, directions):
        if direction == MAXIMIZE:
            x, y = -x, -y
        if x > y:
            return False
        better = better or x < y
    return better


def pareto_front(points: Sequence[Sequence[float]], directions: Sequence[str]) -> list[int]:
    """Indices of the non-dominated ``points``, in input order.

    Ties are kept: points with equal values do not dominate each other, so duplicates of a
    front point are all on the front. Any number of objectives; ``directions`` holds
    ``"minimize"`` or ``"maximize"`` per objective.
    """
    if any(d not in (MINIMIZE, MAXIMIZE) for d in directions):
        raise ValueError(f"directions must be {MINIMIZE!r} or {MAXIMIZE!r}, got {list(directions)}")
    if any(len(p) != len(directions) for p in points):
        raise ValueError("every point needs one value per direction")
    return [
        i for i, p in enumerate(points)
        if not any(dominates(q, p, directions) for j, q in enumerate(points) if j != i)
    ]


def front_records(records: Sequence["TrialRecord"], objectives: Mapping[str, str]) -> list[int]:
    """Numbers of the trials on the Pareto front of ``objectives`` (name -> direction).

    Candidates are COMPLETE, feasible trials with a value for every objective; a network that
    several trials share appears once, as the trial that trained it. The terminal, MLflow, the
    plots and the tables all take their front from here.
    """
    candidates = [r for r in records if r.state == "COMPLETE" and r.feasible and r.duplicate_of is None
                  and all(r.value(name) is not None for name in objectives)]
    points = [[r.value(name) for name in objectives] for r in candidates]
    return [candidates[i].number for i in pareto_front(points, list(objectives.values()))]


def nondominated_ranks(points: Sequence[Sequence[float]], directions: Sequence[str]) -> list[int]:
    """Each point's front by non-dominated sorting: 0 for the Pareto front, 1 for the front of
    what remains, and so on (NSGA-II's ranks)."""
    ranks, remaining, rank = [0] * len(points), list(range(len(points))), 0
    while remaining:
        front = [remaining[i] for i in pareto_front([points[j] for j in remaining], directions)]
        for i in front:
            ranks[i] = rank
        remaining = [i for i in remaining if i not in front]
        rank += 1
    return ranks


def crowding_distances(points: Sequence[Sequence[float]]) -> list[float]:
    """NSGA-II's crowding distance of each point among ``points`` (one front): per objective,
    the gap between its neighbours over the objective's range, summed; the extremes of each
    objective get infinity, so that a front is cut in its crowded middle first."""
    n = len(points)
    distance = [0.0] * n
    if n == 0:
        return distance
    for axis in range(len(points[0])):
        order = sorted(range(n), key=lambda i: points[i][axis])
        low, high = points[order[0]][axis], points[order[-1]][axis]
        distance[order[0]] = distance[order[-1]] = float("inf")
        if high == low:
            continue
        for before, here, after in zip(order, order[1:], order[2:]):
            distance[here] += (points[after][axis] - points[before][axis]) / (high - low)
    return distance


def hypervolume(losses: Sequence[Sequence[float]], reference: Sequence[float]) -> float:
    """The volume dominated by ``losses`` (points to minimise) up to ``reference``; points not
    better than it in every objective add nothing. Exact, by slicing (HSO; While et al., IEEE
    TEC 2006): sorted on the first objective, each slab up to the next point (or the reference)
    adds its width times the hypervolume, in the other objectives, of the points before it.
    Two objectives are one sweep (a staircase), so three cost O(n^2 log n): fine for a table's
    hundreds of designs."""
    points = sorted(tuple(float(v) for v in p) for p in losses
                    if len(p) == len(reference) and all(v < r for v, r in zip(p, reference)))
    if not points:
        return 0.0
    if len(reference) == 1:
        return float(reference[0]) - points[0][0]
    if len(reference) == 2:  # a staircase: one sweep along the first objective
        total, floor = 0.0, float(reference[1])
        for i, (x, y) in enumerate(points):
            if y < floor:
                total += (float(reference[0]) - x) * (floor - y)
                floor = y
        return total
    total = 0.0
    for i, point in enumerate(points):
        upper = points[i + 1][0] if i + 1 < len(points) else float(reference[0])
        if upper > point[0]:
            total += (upper - point[0]) * hypervolume([p[1:] for p in points[:i + 1]], reference[1:])
    return total

