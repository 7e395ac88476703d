"""Cheap trials: what is known before building a design (parameters on the ``meta`` device; a
design over the parameter budget is never built: tests/test_sweep.py), costs counted once per
machine (the cost cache), latency predicted from a table of measured blocks, and no latency
measured for a design that is not trained to the end."""
from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import optuna
import pytest

from bench.arch import cost_cache, latency_table
from bench.arch.assemble import build_model, plan_architecture
from bench.arch.config import Architecture, builtin_architectures, resolve_architecture
from bench.arch.cost_cache import cost_key
from bench.arch.counting import count_params
from bench.arch.latency import Protocol
from bench.arch.latency_table import LatencyTable
from bench.core.cache import JsonCache
from bench.core.errors import BenchError
from bench.search.block_cover import block_cover, build_latency_table, calibration_designs, sample_architecture
from bench.search.design import Design
from bench.search.enumeration import enumerate_samples
from bench.search.objectives import OBJECTIVES
from bench.search.pruners import PRUNERS, Pruner, register_pruner
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
    for kind in ("costs", "memory"):
        assert len(list((tmp_path / ".bench-cache" / kind).glob("*.json"))) == 2

    def counting(*args, **kwargs):
        raise AssertionError("counted again")

    monkeypatch.setattr(cost_cache, "profile_model", counting)
    monkeypatch.setattr(cost_cache, "forward_peak_memory", counting)
    second = quick_sweep(tmp_path, "second", samples).run()
    for a, b in zip(first.records[:2], second.records[:2]):
        assert b.state == "COMPLETE" and b.config_hash == a.config_hash
        assert {**b.cost, "architecture": None} == {**a.cost, "architecture": None}
        assert b.memory == a.memory and b.memory["total_bytes"] > 0
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


# ------------------------------------------------------------------------------ latency

QUICK = Path(__file__).resolve().parents[1] / "search_spaces" / "quick.yaml"
FAST = Protocol(warmup=1, min_repeats=3, max_repeats=5, max_seconds=0.02)  # tests check wiring, not figures


@pytest.fixture
def timed_space(tmp_path, monkeypatch) -> Path:
    """The quick space with a latency objective, and block timing cut short."""
    monkeypatch.setattr(latency_table, "BLOCK_PROTOCOL", FAST)
    space = tmp_path / "timed.yaml"
    space.write_text(QUICK.read_text().replace("objectives: {val_dice: maximize, params: minimize}",
                                               "objectives: {val_dice: maximize, params: minimize, latency_ms: minimize}"))
    return space


@pytest.fixture
def latency_calls(monkeypatch) -> list[str]:
    """The config hashes of the designs whose latency a trial measured."""
    calls: list[str] = []
    measured = Design.latency.func

    def latency(self):
        calls.append(self.arch.hash)
        return measured(self)

    prop = functools.cached_property(latency)
    prop.__set_name__(Design, "latency")
    monkeypatch.setattr(Design, "latency", prop)
    return calls


def test_a_prediction_is_the_scaled_sum_of_the_blocks_and_the_constant_and_builds_nothing(timed_space, monkeypatch):
    space = load_space(str(timed_space))
    table = LatencyTable()
    sessions = []
    timed = latency_table._time
    monkeypatch.setattr(latency_table, "_time", lambda runs, protocol: sessions.append(set(runs)) or timed(runs, protocol))
    archs = build_latency_table(space, 32, table)
    assert {a.hash for a in archs} == {sample_architecture(space, s).hash for s in enumerate_samples(space)
                                       if _plans(sample_architecture(space, s))}  # six designs: all of them
    # blocks and whole networks in one session: the machine's drift between sessions would set them apart
    assert len(sessions) == 1 and sessions[0] == set(table.blocks) | {f"network {a.hash}" for a in archs}
    assert sorted(table.calibration) == ["tinyunet@32/16-32-64-128", "tinyunet@32/8-16-32-64"]  # one constant per width
    arch = archs[0]
    plan = plan_architecture(arch)
    monkeypatch.setattr(latency_table, "build_plan", lambda plan: pytest.fail("built"))
    predicted = table.predict(arch, 32)
    blocks = sum(table.blocks[latency_table.block_key(p, 32)] for p in plan.placements())
    assert predicted.blocks == pytest.approx(blocks) and predicted.scale == table.scales["tinyunet@32"]
    assert predicted.constant == table.constants[latency_table.constant_key(arch, 32)]
    assert predicted.ms == pytest.approx(predicted.scale * blocks + predicted.constant)
    with pytest.raises(BenchError, match="not in the latency table.*bench latency-table build --space SPACE --size 64"):
        table.predict(arch, 64)


def test_the_scale_and_constants_are_fitted_on_the_calibration_networks():
    table = LatencyTable(calibration={
        "net@48/4-8": [{"design": f"a{i}", "blocks_ms": b, "measured_ms": 1.2 * b + 0.5} for i, b in enumerate((3, 5, 9))],
        "net@48/8-16": [{"design": f"b{i}", "blocks_ms": b, "measured_ms": 1.2 * b - 1.0} for i, b in enumerate((10, 14))],
        "other@48/4-8": [{"design": "c", "blocks_ms": 2.0, "measured_ms": 3.0}]})
    table._fit("net@48")
    assert table.scales["net@48"] == pytest.approx(1.2) and table.constants["net@48/4-8"] == pytest.approx(0.5)
    assert table.constants["net@48/8-16"] == pytest.approx(-1.0)
    table._fit("other@48")  # one network for one constant: blocks at face value
    assert table.scales["other@48"] == 1.0 and table.constants["other@48/4-8"] == pytest.approx(1.0)


def test_calibration_networks_are_drawn_per_encoder_width_among_designs_that_plan():
    space = load_space("lightweight")  # CMRF with N = 8 does not fit the narrowest width: such draws are skipped
    drawn = calibration_designs(space, 48, block_cover(space, 48), 3, seed=0)
    widths = [latency_table.constant_key(a, 48) for a in drawn]
    assert len(drawn) == 9 and len({a.hash for a in drawn}) == 9
    assert sorted(set(widths)) == ["tinyunet@48/16-32-64-128", "tinyunet@48/32-64-128-256", "tinyunet@48/8-16-32-64"]
    assert all(widths.count(w) == 3 for w in widths)
    assert [a.hash for a in drawn] == [a.hash for a in calibration_designs(space, 48, block_cover(space, 48), 3, seed=0)]


def test_a_latency_table_of_an_older_version_is_refused_with_the_command_that_builds_it_again(tmp_path):
    path = tmp_path / "table.json"
    LatencyTable(version=1).save(path)
    with pytest.raises(BenchError, match=r"version 1, this bench reads version 2.*bench latency-table build"):
        LatencyTable.load(path)


def test_a_latency_table_is_refused_on_another_machine_description(tmp_path, timed_space, run_cli):
    path = tmp_path / "table.json"
    LatencyTable(machine={**latency_table.machine(), "cpu": "Some Other CPU"}).save(path)
    with pytest.raises(BenchError, match=r"another machine \(cpu 'Some Other CPU' there, .* here\)"):
        LatencyTable.load(path)
    refused = run_cli("run", "--space", str(timed_space), "--latency", "predicted", "--latency-table", str(path),
                      "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db")
    assert refused.exit_code == 2 and "measured on another machine" in refused.output
    assert "bench latency-table build" in refused.output
    assert not (tmp_path / "runs").exists()  # refused before anything was written


def test_a_predicted_sweep_measures_no_latency_until_its_front_and_decides_on_the_plan(tmp_path, timed_space,
                                                                                       latency_calls, run_cli):
    built = run_cli("latency-table", "build", "--space", str(timed_space), "--size", "32", "--table", "t.json")
    assert built.exit_code == 0 and "6 designs of timed cover its blocks" in built.output
    table = LatencyTable.load(tmp_path / "t.json")
    result = Sweep(str(timed_space), storage=f"sqlite:///{tmp_path}/optuna.db", trials=3, latency="predicted",
                   tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", latency_table="t.json", weights_dir=None).run()
    trained = [r for r in result.records if r.trained]
    assert len(trained) == 3 and not latency_calls  # predicted: nothing timed per trial
    for r in trained:
        assert r.latency["protocol"]["figure"] == "predicted" and r.latency["stopped"] == "predicted"
        assert r.values["latency_ms"] == table.predict(Architecture(r.config["name"], r.config,
                                                                    timed_space.parent / "tinyunet.yaml"), 32).ms
    assert set(result.front_latency["trials"]) == {str(n) for n in result.front}  # the front is timed
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    tags = [r.data.tags for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    assert sum(t.get("latency.figure") == "predicted" for t in tags) == 3  # each trial's run says so


def test_a_pruned_design_spends_no_latency_measurement(tmp_path, timed_space, latency_calls):
    register_pruner(EveryOther)
    try:
        space = timed_space.read_text().replace("epochs: 1", "epochs: 2").replace(
            "study: {sampler: random, trials: 4, seed: 0}", "study: {sampler: random, trials: 4, seed: 0, "
            "pruner: toy_every_other}")
        timed_space.write_text(space)
        result = Sweep(str(timed_space), storage=f"sqlite:///{tmp_path}/optuna.db", tracking_uri=None,
                       weights_dir=None).run()
    finally:
        PRUNERS.pop(EveryOther.name)
    pruned = [r for r in result.records if r.status == "pruned"]
    trained = [r for r in result.records if r.trained and r.duplicate_of is None]
    assert pruned and trained
    assert not {r.config_hash for r in pruned} & set(latency_calls)
    assert sorted(latency_calls) == sorted(r.config_hash for r in trained)  # measured once each, after training
    assert all(r.latency["protocol"]["figure"] == "measured" and r.values["latency_ms"] > 0 for r in trained)


class EveryOther(Pruner):
    name = "toy_every_other"
    summary = "stops odd-numbered trials after their first epoch"

    def after_epoch(self, trial, epoch, val_dice):
        return "toy: odd trial" if trial.record.number % 2 else None


def _plans(arch) -> bool:
    try:
        plan_architecture(arch)
    except BenchError:
        return False
    return True


def quick_benchmark(name: str, out: Path) -> dict:
    """``python -m benchmarks.NAME --quick`` against today's code; its JSON record."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", "--quick", "--out", str(out)],
                          cwd=root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads((out / f"{name}_quick.json").read_text())


@pytest.mark.slow
def test_the_overhead_benchmark_quick_mode_reports_every_mode(tmp_path):
    """benchmarks/overhead.py --quick (it had rotted into a TypeError): every figure it promises."""
    overhead = quick_benchmark("overhead", tmp_path)
    assert [r["mode"] for r in overhead["rows"]] == ["measured", "predicted", "predicted+cached"]
    measured, predicted, cached = overhead["rows"]
    assert measured["latency_s"] > 0 and predicted["latency_s"] == 0 == cached["latency_s"]
    assert cached["counting_s"] < predicted["counting_s"]  # counted once per machine
    assert all(r["bare_s"] > 0 and r["fixed_s"] > 0 for r in overhead["rows"]) and overhead["worker_start_s"] > 0


@pytest.mark.slow
def test_the_latency_predictor_benchmark_quick_mode_scores_held_out_designs(tmp_path):
    predictor = quick_benchmark("latency_predictor", tmp_path)
    assert predictor["held_out"] == len(predictor["rows"]) == 4 and predictor["blocks"] > 0
    assert -1 <= predictor["kendall_tau"] <= 1 and 0 <= predictor["within_10pct"] <= 1


@pytest.mark.slow
def test_the_default_against_random_benchmark_quick_mode_runs_both_live(tmp_path):
    live = quick_benchmark("default_vs_random", tmp_path)
    assert [r["sampler"] for r in live["rows"]] == [live["default"], "random"]
    assert all(r["designs"] >= 1 and 0 < r["hypervolume"] and 0 < r["share_of_table_front"] for r in live["rows"])
