"""The Pareto front on hand-made points."""
from __future__ import annotations

import pytest

from bench.search.pareto import pareto_front

MAX, MIN = "maximize", "minimize"


def test_two_objectives_dice_up_params_down():
    points = [(0.80, 100), (0.85, 200), (0.84, 300), (0.70, 50), (0.85, 250)]
    assert pareto_front(points, [MAX, MIN]) == [0, 1, 3]


def test_ties_are_all_kept():
    points = [(0.9, 10), (0.9, 10), (0.8, 20)]
    assert pareto_front(points, [MAX, MIN]) == [0, 1]


def test_three_objectives_and_directions_matter():
    points = [(1, 1, 1), (2, 0, 1), (2, 2, 2), (0, 0, 0)]
    assert pareto_front(points, [MIN, MIN, MIN]) == [3]
    assert pareto_front(points, [MAX, MAX, MAX]) == [2]
    assert pareto_front(points, [MAX, MIN, MIN]) == [1, 3]


def test_single_objective_is_the_best_with_ties():
    assert pareto_front([(3,), (1,), (1,)], [MIN]) == [1, 2]


def test_bad_input():
    with pytest.raises(ValueError, match="directions"):
        pareto_front([(1, 2)], [MAX, "up"])
    with pytest.raises(ValueError, match="one value per direction"):
        pareto_front([(1, 2, 3)], [MAX, MIN])
    assert pareto_front([], [MAX]) == []


def test_hypervolume_by_hand_and_against_counting_grid_cells():
    import itertools

    import numpy as np

    from bench.search.pareto import hypervolume

    # two points to minimise, reference (1, 1): the first's 0.8 x 0.5, and the strip the second adds below
    # it, 0.5 x 0.3
    assert hypervolume([(0.2, 0.5), (0.5, 0.2)], (1, 1)) == pytest.approx(0.8 * 0.5 + 0.5 * 0.3)
    assert hypervolume([(1.2, 0.1), (0.5, 1.0)], (1, 1)) == 0.0  # not better than the reference
    assert hypervolume([], (1, 1, 1)) == 0.0 and hypervolume([(0.25,)], (1,)) == 0.75
    rng = np.random.default_rng(3)
    points = rng.integers(0, 8, (9, 3)) / 8  # on a 1/8 grid: counting cells is exact
    cells = sum(any(all(p[k] <= c[k] for k in range(3)) for p in points)
                for c in itertools.product(np.arange(8) / 8, repeat=3))
    assert hypervolume(points.tolist(), (1, 1, 1)) == pytest.approx(cells / 8**3)
