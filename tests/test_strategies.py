"""Pruners and samplers are registered strategies: one class and one registry line each. Here a
toy pruner and a toy sampler are registered from this module, listed by ``bench list``, offered
by ``bench run --pruner/--sampler``, and drive a sweep."""
from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner

from bench.cli import cli
from bench.core.errors import ConfigError
from bench.run.sweep import Sweep
from bench.search.pruners import PRUNERS, Pruner, parse_pruner, register_pruner
from bench.search.samplers import SAMPLERS, Sampler, register_sampler

QUICK = Path(__file__).resolve().parents[1] / "search_spaces" / "quick.yaml"


class FirstEpochsPruner(Pruner):
    name = "toy_first_epochs"
    summary = "stops every trial after its first `after` epochs"
    settings = {"after": (1, 1, 100)}

    def after_epoch(self, trial, epoch, val_dice):
        trial.record.rungs[str(epoch)] = val_dice  # what it saw, for the test to read
        return f"toy: stopped after epoch {epoch} of {trial.epochs}" if epoch >= self.after else None


class RoundRobin(optuna.samplers.BaseSampler):
    """Trial n takes choice n mod k of every categorical parameter."""

    def infer_relative_search_space(self, study, trial):
        return {}

    def sample_relative(self, study, trial, search_space):
        return {}

    def sample_independent(self, study, trial, param_name, param_distribution):
        choices = param_distribution.choices
        return choices[trial.number % len(choices)]


class RoundRobinSampler(Sampler):
    name = "toy_round_robin"
    summary = "trial n takes choice n mod k of every parameter"

    def make(self, space, seed, trials):
        return RoundRobin()


@pytest.fixture
def toys():
    register_pruner(FirstEpochsPruner)
    register_sampler(RoundRobinSampler)
    yield
    PRUNERS.pop(FirstEpochsPruner.name)
    SAMPLERS.pop(RoundRobinSampler.name)


def test_toy_strategies_are_listed_and_offered_by_the_command_line(toys):
    runner = CliRunner()
    listed = runner.invoke(cli, ["list", "pruners"], terminal_width=200)
    assert listed.exit_code == 0 and "toy_first_epochs" in listed.output and "after (1)" in listed.output
    listed = runner.invoke(cli, ["list", "samplers"], terminal_width=200)
    assert listed.exit_code == 0 and "toy_round_robin" in listed.output
    helped = runner.invoke(cli, ["run", "--help"], terminal_width=200)
    assert "toy_first_epochs" in helped.output and "toy_round_robin" in helped.output
    wrong = runner.invoke(cli, ["run", "--space", "quick", "--pruner", "toy_first_epoch"])
    assert wrong.exit_code == 2 and "toy_first_epochs" in wrong.output  # the choices name it


def test_a_toy_pruner_and_sampler_registered_here_drive_a_sweep(tmp_path, toys):
    space = tmp_path / "toys.yaml"
    space.write_text(QUICK.read_text().replace("epochs: 1", "epochs: 3").replace(
        "study: {sampler: random, trials: 4, seed: 0}",
        "study: {sampler: toy_round_robin, trials: 2, seed: 0, pruner: {type: toy_first_epochs, after: 2}}"))
    result = Sweep(str(space), storage=f"sqlite:///{tmp_path}/optuna.db", tracking_uri=None, weights_dir=None).run()
    assert [r.sample for r in result.records] == [
        {"encoder.block.type": "cmrf", "encoder.block.cmrf.N": 2, "width_multiplier": 0.25},
        {"encoder.block.type": "double_conv", "width_multiplier": 0.125}]
    for record in result.records:
        assert record.status == "pruned" and record.pruned["pruner"] == "toy_first_epochs"
        assert record.pruned["reason"] == "toy: stopped after epoch 2 of 3" and record.pruned["epoch"] == 2
        assert list(record.rungs) == ["1", "2"] and len(record.seeds[0].history) == 2
    assert result.info.pruner == {"type": "toy_first_epochs", "after": 2}
    assert result.info.sampler == "toy_round_robin"


def test_a_toy_pruners_settings_are_checked_by_the_registry(toys):
    with pytest.raises(ConfigError, match=r"study.pruner.after.*from 1 to 100, got 0"):
        parse_pruner({"type": "toy_first_epochs", "after": 0}, {"val_dice": "maximize"}, 3)
    with pytest.raises(ConfigError, match=r"study.pruner.eta.*not a setting of the toy_first_epochs pruner.*after"):
        parse_pruner({"type": "toy_first_epochs", "eta": 3}, {"val_dice": "maximize"}, 3)
    with pytest.raises(ValueError, match="registered already"):
        register_pruner(type("Other", (Pruner,), {"name": "mo_asha", "summary": "x"}))
