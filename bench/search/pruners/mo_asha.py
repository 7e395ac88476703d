"""Multi-objective asynchronous successive halving: stopping hopeless trials early without losing
the cheap end of the front.

``mo_asha`` is multi-objective asynchronous successive halving (Schmucker et al., 2021,
"Multi-objective Asynchronous Successive Halving"): rungs at epochs ``min_epochs``,
``min_epochs * eta``, ... below the recipe's epochs. A trial reaching a rung records its best
validation Dice so far; it goes on only if it ranks in the top ``1/eta`` of all trials that have
reached that rung, ranked by non-dominated sorting on (Dice so far, the study's cost objectives)
and, within the front that is cut, by crowding distance. A cheap design with lower Dice is on
the same front as a costly accurate one, so it survives where pruning on Dice alone would kill
it. Until ``min_trials`` trials have reached a rung, it stops nobody.

Decisions are made on the first seed of a design (the other seeds of a surviving design train
in full), from the rung values stored in every trial's record: many workers share them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from ..pareto import MAXIMIZE, crowding_distances, nondominated_ranks
from .base import EpochView
from .rungs import RungPruner, rung_epochs


class MoAshaPruner(RungPruner):
    name = "mo_asha"
    summary = "bench's multi-objective ASHA: the top 1/eta of each rung by non-dominated sorting go on"

    def after_epoch(self, trial: EpochView, epoch: int, val_dice: float) -> Optional[str]:
        """At a rung epoch: record the value in the trial's record (other workers read it there),
        then rank against every trial that reached the rung on (Dice so far, the cost objectives
        known before training: counted ones, and latency where it is predicted from the block
        table; a measured latency comes after training, so no timing is spent on a design this
        may stop)."""
        if epoch not in rung_epochs(self.min_epochs, self.eta, trial.epochs):
            return None
        record = trial.record
        record.rungs[str(epoch)] = val_dice
        trial.save()
        costs = [n for n in trial.objectives if n != "val_dice" and n in record.values]
        names, directions = ["val_dice", *costs], ["maximize", *(trial.objectives[n] for n in costs)]
        others = [[r.rungs[str(epoch)], *(r.values[n] for n in costs)] for r in trial.others()
                  if r.number != record.number and r.duplicate_of is None and str(epoch) in r.rungs
                  and r.state != "FAIL" and all(n in r.values for n in costs)]
        decision = mo_asha_decision([val_dice, *(record.values[n] for n in costs)], others, directions, names,
                                    self.eta, self.min_trials)
        if decision.keep:
            return None
        return f"stopped after epoch {epoch} by mo_asha: {decision.reason} (its best validation Dice so far {val_dice:.4f})"


@dataclass(frozen=True)
class RungDecision:
    """Whether a trial goes on from a rung, where it ranked, and why, in words."""

    keep: bool
    position: int  # 1-based place in the rung's order
    trials: int  # trials at the rung, this one included
    kept: int  # how many of them go on
    reason: str


def mo_asha_decision(own: Sequence[float], others: Sequence[Sequence[float]], directions: Sequence[str],
                     names: Sequence[str], eta: int, min_trials: int) -> RungDecision:
    """Whether the trial with rung values ``own`` goes on, among ``others`` at the same rung.

    Points are ordered by non-dominated rank, then by crowding distance (descending) within a
    front, then by the first objective; the first ``floor(n / eta)`` go on, at least one (ASHA's
    top 1/eta: 1 of 4 at eta 3). Ties go to the trials that reached the rung earlier (``others``
    come first). ``others`` are trials that ran to the rung: not failed ones (a retry would
    otherwise compete with its own failed attempt).
    """
    points = [list(p) for p in others] + [list(own)]
    n = len(points)
    kept = max(1, n // eta)
    if n < min_trials:
        return RungDecision(True, 0, n, n, f"{n} of the {min_trials} trials a rung needs")
    ranks = nondominated_ranks(points, directions)
    crowding = [0.0] * n
    for rank in set(ranks):
        members = [i for i in range(n) if ranks[i] == rank]
        for i, d in zip(members, crowding_distances([points[i] for i in members])):
            crowding[i] = d
    sign = 1.0 if directions[0] == MAXIMIZE else -1.0
    order = sorted(range(n), key=lambda i: (ranks[i], -crowding[i], -sign * points[i][0], i))
    position = order.index(n - 1) + 1
    keep = position <= kept
    words = (f"place {position} of {n} at the rung (front {ranks[-1] + 1} by non-dominated sorting on "
             f"{', '.join(names)}); the top {kept} (1/{eta}) go on")
    return RungDecision(keep, position, n, kept, words)
