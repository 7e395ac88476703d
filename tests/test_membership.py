"""Front-membership probability (bench.results.membership) on hand-made designs: far ahead is always on
the front, two tied designs each about half the time, fixed costs stay fixed, timings move within
their interval."""
from __future__ import annotations

import numpy as np

from bench.results.membership import dominated, front_membership
from bench.search.records import TrialRecord

OBJECTIVES = {"val_dice": "maximize", "params": "minimize"}


def design(number: int, seeds: list[float], params: float, latency=None) -> TrialRecord:
    values = {"val_dice": float(np.mean(seeds)), "params": params}
    if latency is not None:
        values["latency_ms"] = latency[0]
    return TrialRecord(number, state="COMPLETE", values=values, trained=True,
                       seeds=[{"seed": k, "metrics": {"val_dice": v}} for k, v in enumerate(seeds)],
                       latency={"median_ms": latency[0], "ci95_ms": latency[1]} if latency else None)


def test_a_design_far_ahead_is_always_on_the_front_and_two_tied_ones_each_about_half_the_time():
    records = [design(0, [0.90, 0.91, 0.92], 1e5),           # better and cheaper than everything
               design(1, [0.60, 0.70, 0.80], 5e5), design(2, [0.80, 0.70, 0.60], 5e5),  # tied
               design(3, [0.50, 0.50, 0.50], 9e5)]           # dominated whatever the seeds
    shares = front_membership(records, OBJECTIVES, resamples=4000, seed=1)
    assert shares[0] == 1.0 and shares[3] == 0.0
    assert shares[1] == 0.0 and shares[2] == 0.0  # the far-ahead design dominates both ties here
    tied = front_membership(records[1:3], OBJECTIVES, resamples=4000, seed=1)
    # each on the front when its resampled mean is at least the other's: about half, plus equal draws
    assert 0.45 < tied[1] < 0.7 and 0.45 < tied[2] < 0.7 and tied[1] + tied[2] >= 1.0


def test_one_seed_and_fixed_costs_give_certain_membership():
    records = [design(0, [0.8], 2e5), design(1, [0.7], 1e5), design(2, [0.6], 3e5)]
    assert front_membership(records, OBJECTIVES) == {0: 1.0, 1: 1.0, 2: 0.0}


def test_latency_moves_within_its_interval_and_can_take_a_design_off_the_front():
    objectives = {"val_dice": "maximize", "latency_ms": "minimize"}
    records = [design(0, [0.80], 1e5, (10.0, (9.0, 11.0))), design(1, [0.80], 1e5, (10.2, (9.2, 11.2)))]
    shares = front_membership(records, objectives, resamples=4000, seed=0)
    assert 0.3 < shares[1] < 0.7 and 0.3 < shares[0] < 0.7  # same Dice: the faster draw wins
    narrow = [design(0, [0.80], 1e5, (10.0, (9.99, 10.01))), design(1, [0.80], 1e5, (10.2, (10.19, 10.21)))]
    assert front_membership(narrow, objectives, resamples=2000) == {0: 1.0, 1: 0.0}


def test_dominance_by_hand():
    values = np.array([[[1.0, 1.0], [0.5, 0.5], [1.0, 0.2], [1.0, 1.0]]])  # larger is better
    assert dominated(values).tolist() == [[False, True, True, False]]  # equal points do not dominate
