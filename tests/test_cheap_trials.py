"""Cheap trials: what is known before building a design (parameters on the ``meta`` device; a
design over the parameter budget is never built: tests/test_sweep.py), and costs counted once per
machine (the cost cache)."""
from __future__ import annotations

import json
import os

import optuna
import pytest

from bench.arch import cost_cache
from bench.arch.assemble import build_model, plan_architecture
from bench.arch.config import builtin_architectures, resolve_architecture
from bench.arch.cost_cache import cost_key
from bench.arch.counting import count_params
from bench.core.cache import JsonCache
from bench.core.errors import BenchError
from bench.search.objectives import OBJECTIVES
from bench.search.space import load_space
from bench.search.study import sample_overrides
from bench.run.sweep import Sweep

planned_params = OBJECTIVES.get("params").planned


@pytest.mark.parametrize("name", sorted(builtin_architectures()))
def test_parameters_from_the_plan_equal_the_built_networks_on_every_shipped_architecture(name):
    arch = resolve_architecture(name)
    plan = plan_architecture(arch)
    assert planned_params(plan) == count_params(build_model(arch, plan=plan))


def test_parameters_from_the_plan_equal_the_built_networks_on_200_samples_of_lightweight():
    space = load_space("lightweight")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    compared = 0
    while compared < 200:
        arch = resolve_architecture(space.architecture, sample_overrides(study.ask(), space))
        try:
            plan = plan_architecture(arch)
            model = build_model(arch, plan=plan)
        except BenchError:  # a combination whose contract fails is refused before both counts
            continue
        assert planned_params(plan) == count_params(model), arch.config
        compared += 1


def quick_sweep(tmp_path, study: str, samples: list[dict]) -> Sweep:
    sweep = Sweep("quick", study=study, storage=f"sqlite:///{tmp_path}/optuna.db", tracking_uri=None,
                  trials=len(samples))
    for sample in samples:
        sweep.study.enqueue_trial(sample)
    return sweep


def test_a_design_counted_by_one_sweep_is_not_counted_again_by_the_next(tmp_path, monkeypatch):
    samples = [{"encoder.block.type": "cmrf", "encoder.block.cmrf.N": 2, "width_multiplier": 0.125},
               {"encoder.block.type": "double_conv", "width_multiplier": 0.125}]
    first = quick_sweep(tmp_path, "first", samples).run()
    assert len(list((tmp_path / ".bench-cache" / "costs").glob("*.json"))) == 2

    def counting(*args, **kwargs):
        raise AssertionError("counted again")

    monkeypatch.setattr(cost_cache, "profile_model", counting)
    second = quick_sweep(tmp_path, "second", samples).run()
    for a, b in zip(first.records[:2], second.records[:2]):
        assert b.state == "COMPLETE" and b.config_hash == a.config_hash
        assert {**b.cost, "architecture": None} == {**a.cost, "architecture": None}
        assert b.cost["architecture"] == b.config["name"]  # under the second trial's own name


def test_a_damaged_cost_entry_is_counted_again_and_replaced(tmp_path):
    arch = resolve_architecture("tinyunet", ["width_multiplier=0.25"])
    model = build_model(arch)
    cache = JsonCache("costs")
    path = cache.path(cost_key(arch.hash, 3, 32))
    path.parent.mkdir(parents=True)
    path.write_text('{"train": {"params": 1')  # cut short
    profile = cost_cache.cached_profile(model, arch.name, arch.hash, 3, 32, cache)
    assert profile.train.params == count_params(model)
    assert json.loads(path.read_text())["train"]["params"] == count_params(model)


def test_the_cache_keeps_its_size_bound_dropping_the_least_recently_used(tmp_path):
    cache = JsonCache("things", max_bytes=350, folder=tmp_path / "cache")  # three entries of 104 bytes
    for i in range(3):
        cache.put(f"k{i}", {"value": "x" * 90})
        os.utime(cache.path(f"k{i}"), (1000 + i, 1000 + i))
    assert cache.get("k0") is not None  # used now: the newest
    cache.put("k3", {"value": "x" * 90})
    assert sorted(p.stem for p in cache.folder.glob("*.json")) == ["k0", "k2", "k3"]  # k1: least recently used
