"""The Pareto front on hand-made points."""
from __future__ import annotations

import pytest

from bench.pareto import pareto_front

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
