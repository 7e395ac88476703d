"""Stopping hopeless trials early, without losing the cheap end of the front.

A space chooses ``study.pruner``::

    study: {pruner: mo_asha}                                  # eta 3, first rung after epoch 1
    study: {pruner: {type: mo_asha, eta: 3, min_epochs: 1, min_trials: 3}}
    study: {pruner: {type: median, startup_trials: 5, warmup_epochs: 1}}   # one objective only

``mo_asha`` is multi-objective asynchronous successive halving (Schmucker et al., 2021,
"Multi-objective Asynchronous Successive Halving"): rungs at epochs ``min_epochs``,
``min_epochs * eta``, ... below the recipe's epochs. A trial reaching a rung records its best
validation Dice so far; it goes on only if it ranks in the top ``1/eta`` of all trials that have
reached that rung, ranked by non-dominated sorting on (Dice so far, the study's cost objectives)
and, within the front that is cut, by crowding distance. A cheap design with lower Dice is on
the same front as a costly accurate one, so it survives where pruning on Dice alone would kill
it. Until ``min_trials`` trials have reached a rung, it stops nobody.

``median``, ``successive_halving`` and ``hyperband`` are Optuna's own pruners (through
``Trial.report``), which Optuna allows for single-objective studies only.

Decisions are made on the first seed of a design (the other seeds of a surviving design train
in full), from the rung values stored in every trial's record: many workers share them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

from ..core.errors import ConfigError, did_you_mean
from .pareto import MAXIMIZE, crowding_distances, nondominated_ranks

PRUNERS = ("none", "mo_asha", "median", "successive_halving", "hyperband")
OPTUNA_PRUNERS = ("median", "successive_halving", "hyperband")
_SETTINGS = {"eta": ("mo_asha", "successive_halving", "hyperband"),
             "min_epochs": ("mo_asha", "successive_halving", "hyperband"),
             "min_trials": ("mo_asha", "successive_halving"),
             "startup_trials": ("median",), "warmup_epochs": ("median",)}


@dataclass(frozen=True)
class PrunerSpec:
    """A space's pruner and its settings (each used by the pruners named in ``_SETTINGS``)."""

    type: str = "none"
    eta: int = 3  # reduction factor: the top 1/eta of a rung goes on
    min_epochs: int = 1  # the first rung
    min_trials: int = 3  # trials a rung needs before it stops anyone
    startup_trials: int = 5  # median: trials finished before it prunes
    warmup_epochs: int = 0  # median: epochs of a trial before it may be pruned

    @property
    def active(self) -> bool:
        return self.type != "none"

    def describe(self) -> str:
        """``mo_asha (eta 3, rungs from epoch 1, a rung decides from 3 trials)``."""
        if self.type == "median":
            return (f"median (after {self.startup_trials} trials, from epoch {self.warmup_epochs + 1}, "
                    "below the median of earlier trials at the same epoch)")
        if self.type in ("mo_asha", "successive_halving"):
            return (f"{self.type} (eta {self.eta}, rungs from epoch {self.min_epochs}, "
                    f"a rung decides from {self.min_trials} trials)")
        if self.type == "hyperband":
            return f"hyperband (eta {self.eta}, from epoch {self.min_epochs})"
        return "none"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_pruner(raw: Any, objectives: dict[str, str]) -> PrunerSpec:
    """A space's ``study.pruner``: a name, or a mapping with ``type`` and settings.

    Raises:
        ConfigError: an unknown pruner or setting, a bad value, or an Optuna pruner for a
            multi-objective study.
    """
    if raw is None:
        raw = "none"
    if isinstance(raw, str):
        raw = {"type": raw}
    if not isinstance(raw, dict) or "type" not in raw:
        raise ConfigError("study.pruner", f"expected a pruner name or {{type: NAME, ...}}, got {raw!r}.",
                          hint=f"Pruners: {', '.join(PRUNERS)}.")
    kind = raw["type"]
    if kind not in PRUNERS:
        raise ConfigError("study.pruner.type", f"unknown pruner {kind!r}.",
                          hint=f"{did_you_mean(str(kind), PRUNERS)} Pruners: {', '.join(PRUNERS)}.".lstrip())
    for key, value in raw.items():
        if key == "type":
            continue
        if key not in _SETTINGS or kind not in _SETTINGS[key]:
            known = [k for k, kinds in _SETTINGS.items() if kind in kinds]
            raise ConfigError(f"study.pruner.{key}", f"not a setting of the {kind} pruner.",
                              hint=f"Its settings: {', '.join(known) or 'none'}.")
        low = 2 if key == "eta" else 1 if key in ("min_epochs", "min_trials") else 0
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= 1000:
            raise ConfigError(f"study.pruner.{key}", f"must be a whole number from {low} to 1,000, got {value!r}.")
    if kind in OPTUNA_PRUNERS and len(objectives) > 1:
        raise ConfigError("study.pruner.type", f"Optuna's {kind} pruner works on one objective; this study has "
                          f"{len(objectives)} ({', '.join(objectives)}).",
                          hint="Use mo_asha, which ranks by non-dominated sorting, or keep one objective.")
    spec = PrunerSpec(**raw)
    return PrunerSpec(**{**raw, "min_trials": raw.get("min_trials", spec.eta)})


def rung_epochs(spec: PrunerSpec, epochs: int) -> list[int]:
    """Epochs at which ``mo_asha`` decides: min_epochs * eta^k, below ``epochs``."""
    rungs, epoch = [], spec.min_epochs
    while epoch < epochs:
        rungs.append(epoch)
        epoch *= spec.eta
    return rungs


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
