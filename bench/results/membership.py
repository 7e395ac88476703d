"""How sure a front is: each design's probability of being on it.

Which designs are on a Pareto front is itself uncertain: with other training seeds a design's
validation Dice moves, and with another timing session its latency does (two runs of one sweep
put 4 and then 5 designs on the front with identical Dice). As challengeR bootstraps the rankings
of medical imaging challenges (Wiesenfarth et al., Sci Rep 2021), :func:`front_membership`
resamples every uncertain objective of every candidate and reports the share of resamples in
which each design is on the front:

- objectives measured after training (``val_dice``, ...): the mean over the design's training
  runs drawn with replacement (its seeds); with one run the value is fixed, and seed variance is
  not seen. Per-image validation scores are not stored, so images are not resampled here (the
  paired tests on the test split resample them);
- ``latency_ms``: a normal draw around the median whose 95 % range is the timing's 95 %
  interval of the median (the protocol's own uncertainty), kept positive;
- counts (params, MACs, FLOPs, memory): fixed.

The candidates are those of :func:`bench.search.pareto.front_records` (COMPLETE, feasible, trained here).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from ..search.objectives import OBJECTIVES
from ..search.pareto import MAXIMIZE

if TYPE_CHECKING:
    from ..search.records import TrialRecord

RESAMPLES = 1000
Z95 = 1.959963984540054


def candidates(records: Sequence["TrialRecord"], objectives: Mapping[str, str]) -> list["TrialRecord"]:
    """The trials a front is drawn from (as :func:`bench.search.pareto.front_records` takes them)."""
    return [r for r in records if r.state == "COMPLETE" and r.feasible and r.duplicate_of is None
            and all(r.value(name) is not None for name in objectives)]


def draws(record: "TrialRecord", name: str, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(resamples,) values of objective ``name`` for ``record``, as the module docstring says."""
    value = float(record.value(name))
    objective = OBJECTIVES.get(name)
    runs = [run.scores() for run in record.seeds if run.metrics]
    if not objective.before_training and len(runs) > 1:
        try:
            per_seed = np.array([float(objective.compute(m)) for m in runs])
        except KeyError:  # a figure older records do not hold per seed
            per_seed = None
        if per_seed is not None:
            picks = rng.integers(0, per_seed.size, (resamples, per_seed.size))
            return per_seed[picks].mean(1)
    interval = (record.latency or {}).get("ci95_ms") if objective.timed else None
    if interval and all(np.isfinite(interval)) and interval[1] > interval[0]:
        spread = (interval[1] - interval[0]) / (2 * Z95)
        return np.maximum(rng.normal(value, spread, resamples), value * 1e-3)
    return np.full(resamples, value)


def front_membership(records: Sequence["TrialRecord"], objectives: Mapping[str, str],
                     resamples: int = RESAMPLES, seed: int = 0) -> dict[int, float]:
    """Trial number -> share of resamples in which the design is on the Pareto front of
    ``objectives`` (name -> direction), for every candidate. Seeded."""
    found = candidates(records, objectives)
    if not found:
        return {}
    rng = np.random.default_rng(seed)
    # (resamples, designs, objectives), every objective turned to "larger is better"
    values = np.stack([np.stack([draws(r, name, resamples, rng) * (1 if direction == MAXIMIZE else -1)
                                 for name, direction in objectives.items()], axis=-1) for r in found], axis=1)
    on_front = ~dominated(values)
    return {r.number: float(share) for r, share in zip(found, on_front.mean(0))}


def dominated(values: np.ndarray, chunk: int = 200) -> np.ndarray:
    """(resamples, n) whether each of n points is dominated in its resample, for values
    (resamples, n, m) where larger is better in every objective."""
    out = np.empty(values.shape[:2], dtype=bool)
    for start in range(0, values.shape[0], chunk):
        v = values[start:start + chunk]
        others, point = v[:, :, None, :], v[:, None, :, :]  # [k, j, i, m]: j against i
        beats = (others >= point).all(-1) & (others > point).any(-1)
        out[start:start + chunk] = beats.any(1)
    return out
