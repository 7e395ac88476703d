"""More designs per hour: MO-ASHA and Optuna's pruners, trials that count distinct networks,
sampler seeds that differ per process and per resume, budget-sized samplers, and the
whole-network space."""
from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
import torch

from bench.arch.assemble import build_model, check_budget, check_input_size, plan_architecture
from bench.arch.config import resolve_architecture
from bench.core.errors import BenchError, ConfigError
from bench.search.pareto import crowding_distances, nondominated_ranks
from bench.search.pruners import mo_asha_decision, parse_pruner, rung_epochs
from bench.search.samplers import SAMPLERS, sampler_settings
from bench.search.space import load_space, override_study, space_size
from bench.search.study import sample_overrides
from bench.run.sweep import Sweep
from bench.training.loop import TrainResult

QUICK = Path(__file__).resolve().parents[1] / "search_spaces" / "quick.yaml"

MAX, MIN = "maximize", "minimize"


# ----------------------------------------------------------------------------- MO-ASHA, by hand

def test_nondominated_ranks_and_crowding_by_hand():
    points = [(0.9, 5.0), (0.6, 1.0), (0.5, 3.0), (0.4, 4.0), (0.9, 6.0)]  # (Dice, M params)
    assert nondominated_ranks(points, [MAX, MIN]) == [0, 0, 1, 2, 1]
    # three points of one front: the extremes are infinitely far, the middle one sums its gaps
    middle = (2.0 - 0.0) / 2 + (4.0 - 0.0) / 4  # each objective's gap between its neighbours over its range
    assert crowding_distances([(0.0, 4.0), (1.0, 1.0), (2.0, 0.0)]) == [math.inf, middle, math.inf]


def test_mo_asha_keeps_exactly_the_nondominated_top_third():
    # six designs at a rung: (Dice so far, params); the front is A (accurate, costly) and B (cheap,
    # less accurate); C..F are each dominated by B or A
    rung = {"A": (0.80, 900_000), "B": (0.55, 100_000), "C": (0.50, 500_000), "D": (0.54, 200_000),
            "E": (0.79, 950_000), "F": (0.30, 300_000)}
    kept = set()
    for name, point in rung.items():
        others = [p for n, p in rung.items() if n != name]
        decision = mo_asha_decision(point, others, [MAX, MIN], ["val_dice", "params"], eta=3, min_trials=3)
        assert decision.trials == 6 and decision.kept == 2
        if decision.keep:
            kept.add(name)
    assert kept == {"A", "B"}  # B survives E, which has far more Dice: pruning on Dice would keep A and E
    dice_only = sorted(rung, key=lambda n: -rung[n][0])[:2]
    assert dice_only == ["A", "E"]


def test_mo_asha_cuts_a_front_in_its_crowded_middle_and_waits_for_enough_trials():
    front = [(0.9, 9.0), (0.5, 1.0), (0.71, 5.0), (0.7, 4.9)]  # one front; the last two crowd each other
    keep = [mo_asha_decision(p, front[:i] + front[i + 1:], [MAX, MIN], ["d", "c"], eta=2, min_trials=2).keep
            for i, p in enumerate(front)]
    assert keep == [True, True, False, False]  # the extremes (infinite crowding distance) go on
    early = mo_asha_decision((0.1, 9.0), [(0.9, 1.0)], [MAX, MIN], ["d", "c"], eta=3, min_trials=3)
    assert early.keep and "2 of the 3 trials" in early.reason


def test_mo_asha_keeps_the_top_third_rounded_down_but_at_least_one():
    """ASHA's top 1/eta: 1 of 4 at eta 3 (ceil would keep 2), and one of 2."""
    four = [(0.9, 1.0), (0.8, 2.0), (0.7, 3.0)]
    decision = mo_asha_decision((0.6, 4.0), four, [MAX, MIN], ["d", "c"], eta=3, min_trials=2)
    assert decision.kept == 1 and not decision.keep and "the top 1 (1/3)" in decision.reason
    assert mo_asha_decision((0.95, 0.5), four[:1], [MAX, MIN], ["d", "c"], eta=3, min_trials=2).kept == 1


def test_rungs_and_pruner_settings():
    assert rung_epochs(1, 3, 9) == [1, 3]
    assert rung_epochs(2, 2, 20) == [2, 4, 8, 16]
    assert parse_pruner("mo_asha", {"val_dice": MAX, "params": MIN}, 9).min_trials == 3
    assert parse_pruner({"type": "mo_asha", "eta": 4}, {"val_dice": MAX}, 9).min_trials == 4
    assert parse_pruner({"type": "mo_asha", "eta": 4}, {"val_dice": MAX}, 9).to_dict() == {
        "type": "mo_asha", "eta": 4, "min_epochs": 1, "min_trials": 4}
    with pytest.raises(ConfigError, match="works on one objective.*Use mo_asha"):
        parse_pruner("median", {"val_dice": MAX, "params": MIN}, 9)
    with pytest.raises(ConfigError, match=r"study.pruner.warmup_epochs.*not a setting of the mo_asha"):
        parse_pruner({"type": "mo_asha", "warmup_epochs": 1}, {"val_dice": MAX}, 9)
    with pytest.raises(ConfigError, match=r"study.pruner.eta.*from 2 to 1,000, got 1"):
        parse_pruner({"type": "hyperband", "eta": 1}, {"val_dice": MAX}, 9)
    with pytest.raises(ConfigError, match="unknown pruner 'hyper'.*hyperband"):
        parse_pruner("hyper", {"val_dice": MAX}, 9)


def test_a_pruner_that_could_never_stop_anything_is_refused(tmp_path):
    space = tmp_path / "s.yaml"
    space.write_text(QUICK.read_text() + "\n")
    text = space.read_text().replace("study: {sampler: random, trials: 4, seed: 0}",
                                     "study: {sampler: random, trials: 4, seed: 0, pruner: mo_asha}")
    space.write_text(text)
    with pytest.raises(ConfigError, match=r"s.yaml.*study.pruner.min_epochs.*not below recipe.epochs 1"):
        load_space(str(space))
    with pytest.raises(ConfigError, match=r"--pruner.*works on one objective"):
        override_study(load_space("quick"), pruner="median")


@pytest.mark.parametrize("kind", ["median", "successive_halving", "hyperband"])
def test_optuna_pruners_stop_the_worst_of_a_single_objective_study(kind):
    spec = parse_pruner({"type": kind, **({"startup_trials": 3} if kind == "median" else {"min_trials": 1}
                                          if kind == "successive_halving" else {})}, {"val_dice": MAX}, 9)
    study = optuna.create_study(direction=MAX, pruner=spec.optuna_pruner(9),
                                sampler=optuna.samplers.RandomSampler(seed=0))
    good = [[0.5 + 0.001 * i + 0.05 * e for e in range(9)] for i in range(8)]
    curves = good + [[0.01] * 9] * 4  # the last four are hopeless (hyperband compares within its brackets)

    def objective(trial):
        for epoch, value in enumerate(curves[trial.number], start=1):
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return curves[trial.number][-1]

    study.optimize(objective, n_trials=len(curves))
    pruned = {t.number for t in study.trials if t.state == optuna.trial.TrialState.PRUNED}
    assert pruned and pruned <= set(range(len(good), len(curves)))


# ----------------------------------------------------------------------------- pruning in a sweep

def fake_training(monkeypatch, dice_of):
    """Replace training with curves from ``dice_of(model) -> final Dice`` (rising to it): the
    pruner's decisions then follow from the designs alone."""
    def train(model, train, val, recipe, classes, progress=None, checkpoint=None, device=None):
        final, result = dice_of(model), TrainResult()
        for epoch in range(1, recipe.epochs + 1):
            value = final * epoch / recipe.epochs
            row = {"epoch": epoch, "train_loss": 1.0 - value, "val_dice": value, "val_dice_all": value,
                   "lr": recipe.lr, "seconds": 0.0}
            result.history.append(row)
            result.best_epoch, result.best_val_dice = epoch, value
            if progress:
                progress("epoch", epoch, recipe.epochs, row)
        return result

    monkeypatch.setattr("bench.training.seeds.train_model", train)


def pruned_space(tmp_path: Path) -> Path:
    path = tmp_path / "pruned.yaml"
    path.write_text(QUICK.read_text()
                    .replace("epochs: 1", "epochs: 3")
                    .replace("study: {sampler: random, trials: 4, seed: 0}",
                             "study: {sampler: random, trials: 5, seed: 0, pruner: {type: mo_asha, eta: 3, "
                             "min_trials: 2}}"))
    return path


def test_mo_asha_in_a_sweep_prunes_dominated_designs_which_count_but_are_never_on_the_front(tmp_path, monkeypatch):
    # bigger networks are worse here: every design is dominated by the smaller ones
    fake_training(monkeypatch, lambda model: 0.9 - sum(p.numel() for p in model.parameters()) / 1e6)
    result = Sweep(str(pruned_space(tmp_path)), storage=f"sqlite:///{tmp_path}/optuna.db", repeats=2,
                   tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", weights_dir=None).run()
    pruned = [r for r in result.records if r.status == "pruned"]
    assert pruned and sum(r.counted for r in result.records) == 5
    for r in pruned:
        assert r.state == "PRUNED" and r.pruned["epoch"] == 1 and r.rungs == {"1": r.pruned["val_dice"]}
        assert "mo_asha" in r.pruned["reason"] and len(r.seeds[0].history) == 1 and not r.trained
        assert r.number not in result.front and "val_dice" not in r.values
        earlier = [o for o in result.records if o.number < r.number and "1" in o.rungs and o.duplicate_of is None]
        assert any(o.rungs["1"] > r.rungs["1"] and o.values["params"] < r.values["params"] for o in earlier)
    assert all(result.record(n).state == "COMPLETE" for n in result.front)
    assert all(len(r.seeds) == 2 for r in result.records if r.status == "trained")  # survivors train every seed
    assert "pruned" in result.tally()

    from mlflow import MlflowClient
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("pruned").experiment_id])
    run = next(r for r in runs if r.data.tags.get("bench.trial") == str(pruned[0].number))
    assert run.info.status == "KILLED" and "mo_asha" in run.data.tags["bench.pruned"]
    assert run.data.metrics["pruned_at_epoch"] == 1 and "val_dice_best" not in run.data.metrics
    assert "pruned: stopped after epoch 1" in run.data.tags["mlflow.note.content"]


def test_a_repeat_of_a_pruned_network_is_not_trained_again(tmp_path, monkeypatch):
    fake_training(monkeypatch, lambda model: 0.9 - sum(p.numel() for p in model.parameters()) / 1e6)
    space, storage = str(pruned_space(tmp_path)), f"sqlite:///{tmp_path}/optuna.db"
    Sweep(space, storage=storage, tracking_uri=None, weights_dir=None).run()
    sweep = Sweep(space, storage=storage, tracking_uri=None, weights_dir=None, trials=6)  # room for one more
    first = next(r for r in sweep.records() if r.status == "pruned")
    sweep.study.enqueue_trial(first.sample)
    sweep.study.optimize(sweep.objective, n_trials=1)
    again = sweep.records()[-1]
    assert again.state == "PRUNED" and again.duplicate_of == first.number and again.pruned == first.pruned
    assert not again.counted and again.status == "duplicate"


# ----------------------------------------------------------------------------- counting and seeds

def test_trials_count_distinct_networks_and_a_small_space_stops_saying_how_many_it_holds(tmp_path):
    space = tmp_path / "two.yaml"
    space.write_text(QUICK.read_text()
                     .replace("width_multiplier: {choices: [0.25, 0.125]}", "width_multiplier: {choices: [0.125]}")
                     .replace("cmrf: {N: {choices: [2, 4]}}", "cmrf: {N: {choices: [2]}}"))
    assert space_size(load_space(str(space))) == 2
    result = Sweep(str(space), storage=f"sqlite:///{tmp_path}/optuna.db", tracking_uri=None, trials=5,
                   weights_dir=None).run()
    assert sum(r.counted for r in result.records) == 2
    assert result.exhausted == ("stopped at 2 of 5 networks: space 'two' holds 2 distinct samples, 2 distinct "
                                "networks, 2 of them within the constraints. Widen the space or its constraints, "
                                "or ask for --trials 2.")


def test_a_resumed_study_draws_fresh_samples_with_its_own_recorded_seed(tmp_path):
    storage = f"sqlite:///{tmp_path}/optuna.db"
    first = Sweep("quick", storage=storage, tracking_uri=None, trials=2, weights_dir=None).run().records
    resumed = Sweep("quick", storage=storage, tracking_uri=None, trials=4, weights_dir=None).run().records
    old, new = resumed[:len(first)], resumed[len(first):]
    assert {r.sampler_seed for r in old} == {0} and {r.sampler_seed for r in new} == {len(first)}
    # the same seed would have drawn the first run's sequence again
    assert [r.sample for r in new[:len(first)]] != [r.sample for r in first]


def test_two_processes_on_one_study_draw_different_sequences(tmp_path):
    storage = f"sqlite:///{tmp_path}/optuna.db"
    a, b = (Sweep("quick", storage=storage, tracking_uri=None, trials=4, weights_dir=None) for _ in range(2))
    a.open(), b.open()  # both open the empty study, as two processes started together do
    for sweep in (a, b, a, b, a, b):
        sweep.study.optimize(sweep.objective, n_trials=1)
    records = a.records()
    assert [r.sampler_seed for r in records] == [0, 1] * 3
    assert [r.sample for r in records[0::2]] != [r.sample for r in records[1::2]]


def test_sampler_settings_follow_the_budget():
    space = load_space("cmrf_swap")
    assert sampler_settings(space, 12) == {"population": 4}  # NSGA-II's
    assert sampler_settings(space, 90) == {"population": 30}
    assert sampler_settings(space, 1000)["population"] == 50
    assert SAMPLERS["tpe"]().settings(space.study, 12) == {"startup": 3}
    assert SAMPLERS["tpe"]().settings(space.study, 90) == {"startup": 10}
    assert space_size(space) == 24  # (4 CMRF N + 4 other blocks) x 3 widths


# ----------------------------------------------------------------------------- the whole network

@pytest.mark.slow
def test_the_whole_network_space_builds_and_runs_what_it_draws_or_names_the_broken_contract():
    space = load_space("lightweight")
    assert {"encoder.block", "decoder.block", "bottleneck", "skips.block", "decoder.up", "encoder.down",
            "width_multiplier"} <= set(space.vary)
    assert set(space.objectives) == {"val_dice", "params", "latency_ms"} and set(space.constraints) == {
        "params", "latency_ms"}
    size = space.data["size"]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    built, broken, untied = 0, [], 0
    with torch.no_grad():
        for _ in range(200):
            trial = study.ask()
            overrides = sample_overrides(trial, space)
            try:
                arch = resolve_architecture(space.architecture, overrides)
                plan = plan_architecture(arch)
                check_input_size(arch, plan, size)
                check_budget(arch, plan, size)
                out = build_model(arch, seed=0).eval()(torch.zeros(1, arch.config["in_channels"], size, size))
            except BenchError as exc:  # a sweep records this trial FAILED with the message
                broken.append(str(exc))
            else:
                assert out.shape == (1, arch.config["classes"], size, size)
                built += 1
                untied += arch.config["encoder"]["block"] != arch.config["decoder"]["block"]
            study.tell(trial, 0.0)
    assert built >= 180 and untied > built // 2
    assert all("does not divide" in message and "Choose N" in message for message in broken)


def test_mo_asha_ranks_only_trials_that_ran_not_failed_attempts(tmp_path, monkeypatch):
    """Three failed attempts that reached the rung with far better figures must not stop the one
    trial that runs (a retry would otherwise compete with its own failed attempt)."""
    from optuna.trial import TrialState, create_trial

    fake_training(monkeypatch, lambda model: 0.5)
    sweep = Sweep(str(pruned_space(tmp_path)), storage=f"sqlite:///{tmp_path}/optuna.db", tracking_uri=None,
                  weights_dir=None, trials=1)
    for _ in range(3):
        sweep.study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={
            "rungs": {"1": 0.99}, "values": {"params": 1.0}, "fail_reason": "OutOfMemoryError: ..."}))
    result = sweep.run()
    ran = [r for r in result.records if r.state != "FAIL"]
    assert [r.status for r in ran] == ["trained"] and ran[0].rungs == {"1": pytest.approx(0.5 / 3)}


def test_a_space_whose_every_design_breaks_a_constraint_says_so_instead_of_asking_for_trials_0(tmp_path):
    space = tmp_path / "none.yaml"
    space.write_text(QUICK.read_text().replace("constraints: {params: {max: 1000000}}",
                                               "constraints: {params: {max: 10}}"))
    result = Sweep(str(space), storage=f"sqlite:///{tmp_path}/optuna.db", tracking_uri=None, trials=2,
                   weights_dir=None).run()
    assert sum(r.counted for r in result.records) == 0
    assert result.exhausted.startswith("stopped with none of 2 networks evaluated: space 'none' holds 6")
    assert "--trials 0" not in result.exhausted and "bench report --study none" in result.exhausted
