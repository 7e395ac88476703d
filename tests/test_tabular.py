"""The tabulated benchmark: building a table (with fake training), its file, the replay of search
strategies against it, and the fixed-reference hypervolume."""
from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from click.testing import CliRunner

from bench.cli import cli
from bench.core.errors import BenchError, ConfigError
from bench.search.benchmark_table import BenchmarkTable, read_table, table_frame, write_table
from bench.search.enumeration import enumerate_samples
from bench.search.pruners import parse_pruner
from bench.search.replay import Components, replay
from bench.search.space import load_space
from bench.search.table_front import REFERENCE, Normalisation, true_front
from bench.search.table_study import Job, table_jobs
from bench.search.table_spec import TableSpec
from bench.training.loop import TrainResult

TINY_SPACE = """
    architecture: tinyunet
    vary:
      encoder.block:
        cmrf: {N: {choices: [2, 4]}}
        double_conv: {}
      width_multiplier: {choices: [0.125, 0.25]}
    objectives: {val_dice: maximize, params: minimize, latency_ms: minimize}
    recipe: {name: default, epochs: 4, batch: 8}
    data: {source: synthetic, size: 32, count: 24}
    study: {sampler: random, trials: 6, seed: 0}
    table:
      seeds: 2
      calibration: {designs: 2, seeds: 3}
      fidelities: [1, 2]
"""


@pytest.fixture
def tiny_space(write_yaml):
    return load_space(str(write_yaml("tiny_table.yaml", TINY_SPACE)))


def test_the_shipped_table_space_enumerates_216_distinct_designs_in_a_fixed_order():
    space = load_space("tabular")
    samples = enumerate_samples(space)
    assert len(samples) == 216 and len({json.dumps(s, sort_keys=True) for s in samples}) == 216
    assert samples[0] == {"encoder.block.type": "cmrf", "encoder.block.cmrf.N": 2, "decoder.block.type": "cmrf",
                          "decoder.block.cmrf.N": 2, "bottleneck.type": "identity", "skips.block.type": "identity",
                          "decoder.up.type": "interpolate", "width_multiplier": 0.125}
    assert space.table == TableSpec(5, 10, 10, (1, 3), 320)


def test_jobs_cover_every_design_first_then_the_calibration_seeds_then_round_by_round():
    jobs, calibration = table_jobs(6, TableSpec(seeds=3, calibration_designs=2, calibration_seeds=4), seed=0)
    assert jobs[:6] == [Job(d, 0) for d in range(6)]
    assert jobs[6:12] == [Job(d, s) for d in calibration for s in (1, 2, 3)]
    rest = [d for d in range(6) if d not in calibration]
    assert jobs[12:] == [Job(d, s) for s in (1, 2) for d in rest]
    assert len(calibration) == 2 and calibration == table_jobs(6, TableSpec(3, 2, 4), seed=0)[1]


def test_a_bad_table_section_names_its_key(write_yaml):
    bad = TINY_SPACE.replace("fidelities: [1, 2]", "fidelities: [1, 4]")
    with pytest.raises(ConfigError, match=r"table.fidelities\[1\].*from 1 to 3"):
        load_space(str(write_yaml("bad.yaml", bad)))
    with pytest.raises(ConfigError, match="table.seed.*not a table setting.*seeds"):
        load_space(str(write_yaml("bad2.yaml", TINY_SPACE.replace("seeds: 2", "seed: 2"))))


def _fake_train(model, train, val, recipe, classes, progress=None, checkpoint=None, device=None):
    """Training that takes no time: a curve that depends on the seed, told epoch by epoch."""
    result = TrainResult()
    for epoch in range(1, recipe.epochs + 1):
        record = {"epoch": epoch, "train_loss": 1.0 / epoch, "val_dice": 0.1 * epoch + 0.01 * recipe.seed,
                  "val_dice_all": 0.5, "lr": 0.001, "seconds": 0.0, "train_seconds": 0.5, "val_seconds": 0.25}
        result.history.append(record)
        if record["val_dice"] > result.best_val_dice:
            result.best_epoch, result.best_val_dice = epoch, record["val_dice"]
        if progress:
            progress("epoch", epoch, recipe.epochs, record)
    return result


def test_tabulating_a_tiny_space_writes_every_field_and_resumes(tiny_space, tmp_path, monkeypatch):
    import bench.run.tabulate as tabulate
    from bench.data.source import source_from_space
    from bench.search.table_study import TableStudy

    monkeypatch.setattr(tabulate, "train_model", _fake_train)
    storage = f"sqlite:///{tmp_path / 'table.db'}"
    source = source_from_space(tiny_space.data)
    assert tabulate.tabulate_worker(tiny_space, source, "tiny", storage, 1, 5, "cpu") == 5  # cut short ...
    assert tabulate.tabulate_worker(tiny_space, source, "tiny", storage, 1, None, "cpu") == 9  # ... and resumed
    table = TableStudy(tiny_space, "tiny", storage)
    assert table.progress()["done"] == 14 == len(table.jobs)  # 6 designs x 2 seeds, 2 designs with a 3rd
    frame = table_frame(table.rows())
    assert len(frame) == 14 and sorted(frame["design"].unique()) == list(range(6))
    row = frame[(frame["design"] == 0) & (frame["seed"] == 1)].iloc[0]
    assert row["val_dice"] == pytest.approx([0.11, 0.21, 0.31, 0.41]) and row["best_val_dice"] == pytest.approx(0.41)
    assert row["train_seconds"] == [0.5] * 4 and row["val_seconds"] == [0.25] * 4
    test_images = table.study.user_attrs["data"]["test"]
    for column in ("test_dice_fg_per_image", "test_dice_fg_per_image_at_1", "test_dice_fg_per_image_at_2"):
        assert len(row[column]) == test_images and all(0 <= v <= 1 for v in row[column])
    for column in ("build_seconds", "test_seconds", "test_seconds_at_1", "count_seconds", "latency_seconds",
                   "proxies_seconds"):
        assert row[column] > 0
    # design columns measured with the first seed, copied onto the others
    first = frame[(frame["design"] == 0) & (frame["seed"] == 0)].iloc[0]
    assert row["params"] == first["params"] == 14306 and row["deploy_params"] <= row["params"]
    assert row["latency_ms"] > 0 and row["latency_ratio"] > 0 and row["flops"] == 2 * row["macs"]
    assert all(math.isfinite(row[f"proxy_{p}"]) for p in ("synflow", "naswot", "grad_norm", "jacob_cov"))
    path = write_table(BenchmarkTable(frame, {"space": "tiny"}), tmp_path / "t.parquet")
    back = read_table(path)
    assert back.meta == {"space": "tiny"} and back.frame["val_dice"].iloc[3] == frame["val_dice"].iloc[3]
    assert back.design_frame()["seeds"].tolist() == [2 + (d in table.calibration) for d in range(6)]


def test_a_table_study_refuses_another_space_under_its_name(tiny_space, tmp_path):
    from bench.search.table_study import TableStudy

    storage = f"sqlite:///{tmp_path / 'table.db'}"
    TableStudy(tiny_space, "tiny", storage)
    other = replace(tiny_space, table=replace(tiny_space.table, seeds=3))
    with pytest.raises(BenchError, match="tabulates another space or settings"):
        TableStudy(other, "tiny", storage)


def test_reading_a_file_that_is_no_table_says_so(tmp_path):
    (tmp_path / "x.parquet").write_text("not parquet")
    with pytest.raises(BenchError, match="x.parquet: not a readable Parquet table"):
        read_table(tmp_path / "x.parquet")
    with pytest.raises(BenchError, match="no such table file.*bench tabulate build"):
        read_table(tmp_path / "missing.parquet")


def hand_made_table(space, seeds: int = 3, epochs: int = 4) -> BenchmarkTable:
    """A table of every design of ``space`` with made-up, known figures: design d's curve rises
    to 0.5 + 0.05 d (+ 0.01 seed), params 1000 (d + 1), latency 1 + (d mod 3); every step's time
    is known."""
    rows = []
    for d, sample in enumerate(enumerate_samples(space)):
        for s in range(seeds):
            final = 0.5 + 0.05 * d + 0.01 * s
            rows.append({"design": d, "seed": s, "config_hash": f"h{d}", "sample": sample, "calibration": False,
                         "val_dice": [final * e / epochs for e in range(1, epochs + 1)],
                         "train_loss": [1.0] * epochs, "train_seconds": [10.0 + d] * epochs,
                         "val_seconds": [1.0] * epochs, "best_epoch": epochs, "best_val_dice": final,
                         "test_dice_fg_per_image": [final] * 4, "test_dice_fg": final, "test_seconds": 2.0,
                         "build_seconds": 0.5, "params": 1000 * (d + 1), "macs": 10, "flops": 20,
                         "deploy_params": 1000 * (d + 1), "deploy_macs": 10, "deploy_flops": 20,
                         "count_seconds": 3.0, "latency_ms": 1.0 + d % 3, "latency_ratio": 1.0 + d % 3,
                         "reference_latency_ms": 1.0, "latency_seconds": 4.0, "proxies_seconds": 0.1})
    return BenchmarkTable(table_frame(rows), {"space": space.name})


def test_a_replay_is_deterministic_for_a_seed_and_differs_across_seeds(tiny_space):
    table = hand_made_table(tiny_space)
    pruner = parse_pruner("none", tiny_space.objectives, 4)
    runs = [replay(table, tiny_space, "random", pruner, trials=4, workers=2, seed=s) for s in (0, 0, 1)]
    assert runs[0].trials == runs[1].trials and runs[0].curve == runs[1].curve
    assert [(t.design, t.seed) for t in runs[0].trials] != [(t.design, t.seed) for t in runs[2].trials]


def test_a_replay_records_the_real_seconds_it_spent_by_each_trained_design_apart_from_simulated_time(tiny_space):
    table = hand_made_table(tiny_space)
    result = replay(table, tiny_space, "random", parse_pruner("none", tiny_space.objectives, 4), trials=6, seed=3)
    wall = result.wall_seconds
    assert len(wall) == len(result.curve) == 6 and 0 < wall[0] and wall == sorted(wall)
    assert wall[-1] < 10 < result.seconds  # simulated seconds are the table's (over 100 here), not the replay's


def test_replayed_time_is_the_sum_of_the_recorded_steps_and_a_step_switched_off_saves_exactly_its_time(tiny_space):
    table = hand_made_table(tiny_space)
    pruner = parse_pruner("none", tiny_space.objectives, 4)
    full = replay(table, tiny_space, "random", pruner, trials=6, workers=1, seed=3)
    trained = [t for t in full.trials if t.duplicate_of is None]
    assert len(trained) == 6
    per_trial = [0.5 + 3.0 + 4.0 + 4 * (10.0 + t.design + 1.0) + 2.0 for t in trained]
    assert full.seconds == pytest.approx(sum(per_trial))
    no_latency = replay(table, tiny_space, "random", pruner, trials=6, workers=1, seed=3,
                        components=Components(latency=False))
    assert [t.design for t in no_latency.trials] == [t.design for t in full.trials]
    assert full.seconds - no_latency.seconds == pytest.approx(6 * 4.0)
    nothing_but_training = replay(table, tiny_space, "random", pruner, trials=6, workers=1, seed=3,
                                  components=Components(build=False, count=False, latency=False, test=False))
    assert nothing_but_training.seconds == pytest.approx(sum(4 * (11.0 + t.design) for t in trained))


def test_four_workers_finish_the_same_trials_sooner_and_the_whole_table_finds_the_whole_front(tiny_space):
    table = hand_made_table(tiny_space)
    pruner = parse_pruner("none", tiny_space.objectives, 4)
    one = replay(table, tiny_space, "random", pruner, trials=6, workers=1, seed=0)
    four = replay(table, tiny_space, "random", pruner, trials=6, workers=4, seed=0)
    assert four.seconds < one.seconds
    assert one.curve[-1][1] == pytest.approx(1.0) and four.curve[-1][1] == pytest.approx(1.0)  # all 6 designs
    assert [s for _, s in one.curve] == sorted(s for _, s in one.curve)  # never loses what it found


def test_mo_asha_in_a_replay_stops_trials_at_its_rungs_and_frees_their_workers(tiny_space):
    table = hand_made_table(tiny_space, epochs=9)
    space = replace(tiny_space, recipe=replace(tiny_space.recipe, epochs=9))
    pruner = parse_pruner({"type": "mo_asha", "min_trials": 2}, space.objectives, 9)
    result = replay(table, space, "random", pruner, trials=6, workers=1, seed=0)
    stopped = [t for t in result.trials if t.pruned]
    assert stopped and all(t.epochs in (1, 3) for t in stopped)
    none = replay(table, space, "random", parse_pruner("none", space.objectives, 9), trials=6, workers=1, seed=0)
    assert result.seconds < none.seconds


def test_the_true_front_of_a_hand_made_table_is_exact(tiny_space):
    table = hand_made_table(tiny_space)
    designs = table.design_frame()
    front, hv, norm = true_front(designs, {"val_dice": "maximize", "params": "minimize"})
    # Dice and params both rise with d: every design trades one for the other
    assert front == list(range(6))
    front, _, _ = true_front(designs, dict(tiny_space.objectives))
    assert front == list(range(6))  # a third objective cannot dominate what two left on the front
    designs.loc[2, "best_val_dice"] = 0.1  # now design 0 is cheaper and better
    front, _, _ = true_front(designs, {"val_dice": "maximize", "params": "minimize"})
    assert front == [0, 1, 3, 4, 5]


def test_the_hypervolume_reference_is_fixed_by_the_table_not_by_the_run(tiny_space):
    designs = hand_made_table(tiny_space).design_frame()
    objectives = {"val_dice": "maximize", "params": "minimize"}
    norm = Normalisation.of_designs(designs, objectives)
    best = {"val_dice": float(designs["best_val_dice"].max()), "params": float(designs["params"].min())}
    worst = {"val_dice": float(designs["best_val_dice"].min()), "params": float(designs["params"].max())}
    assert norm.loss(best) == [0.0, 0.0] and norm.loss(worst) == [1.0, 1.0]
    assert norm.hypervolume([best]) == pytest.approx(REFERENCE ** 2)
    assert norm.hypervolume([worst]) == pytest.approx(0.1 ** 2)  # the reference lies beyond the worst point
    middle = {"val_dice": 0.6, "params": 3000.0}
    alone = norm.hypervolume([middle])
    assert norm.hypervolume([middle, worst]) == pytest.approx(alone)  # a dominated point changes nothing
    assert Normalisation.of_designs(designs, objectives) == norm


def test_the_design_explains_all_variance_when_seeds_agree_and_none_when_designs_agree(tiny_space):
    from bench.results.table_analyses import variance_by_epoch

    table = hand_made_table(tiny_space, seeds=3)
    table.frame["val_dice"] = [[0.1 * d] * 4 for d in table.frame["design"]]  # seeds identical
    assert variance_by_epoch(table)["design_share"].tolist() == pytest.approx([1.0] * 4)
    table.frame["val_dice"] = [[0.1 * s] * 4 for s in table.frame["seed"]]  # designs identical
    shares = variance_by_epoch(table)
    assert shares["design_share"].tolist() == pytest.approx([0.0] * 4) and shares["designs"].tolist() == [6] * 4


def test_fidelity_is_one_where_early_epochs_rank_as_the_end_does_and_falls_where_they_do_not(tiny_space):
    from bench.results.table_analyses import fidelity_by_epoch

    table = hand_made_table(tiny_space)
    assert fidelity_by_epoch(table)["spearman"].tolist() == pytest.approx([1.0] * 4)
    # epoch 1 ranks the designs backwards; later epochs as the end
    table.frame["val_dice"] = [[1 - 0.1 * d] + [0.1 * d] * 3 for d in table.frame["design"]]
    rho = fidelity_by_epoch(table)["spearman"].tolist()
    assert rho[0] == pytest.approx(-1.0) and rho[1:] == pytest.approx([1.0] * 3)


def test_verdict_calibration_finds_a_large_gain_from_3_seeds_and_calls_no_difference_between_equals():
    from bench.results.table_analyses import verdict_calibration

    rng = np.random.default_rng(0)
    images = rng.uniform(0.5, 0.8, 30)
    rows = []
    for d, gain in ((0, 0.0), (1, 0.0), (2, 0.1)):
        for s in range(8):
            scores = np.clip(images + gain + rng.normal(0, 0.01, 30) + rng.normal(0, 0.005), 0, 1)
            rows.append({"design": d, "seed": s, "calibration": True, "test_dice_fg_per_image": scores.tolist()})
    table = BenchmarkTable(pd.DataFrame(rows))
    result = verdict_calibration(table, seeds=3, draws=20, resamples=500)
    pairs = result.pairs.set_index(["reference", "candidate"])
    assert pairs.loc[(0, 2), "truth"] == "better" and pairs.loc[(0, 2), "better"] == 1.0
    assert pairs.loc[(1, 2), "truth"] == "better" and pairs.loc[(0, 1), "truth"] == "not distinguishable"
    assert result.power() == 1.0 and result.opposite_rate() == 0.0
    assert result.false_rate_when_same() <= 0.1
    assert result.null["design"].tolist() == [0, 1, 2] and (result.null["seeds"] == 8).all()  # 2 x 3 of 8 seeds
    assert result.null_rate() <= 0.1 and result.null[["better", "worse", "same"]].sum(axis=1).tolist() == [1.0] * 3


def test_the_report_of_a_table_writes_every_analysis_in_quick_mode(tiny_space, tmp_path):
    from bench.results import table_report
    from bench.results.table_report import ReportSettings, write_table_report

    table = hand_made_table(tiny_space, seeds=4)
    table.frame["calibration"] = table.frame["design"] < 3
    table.frame["proxy_synflow"] = table.frame["design"].astype(float)
    written = write_table_report(table, tiny_space, tmp_path / "report",
                                 ReportSettings(repetitions=2, draws=3, samplers=("random", "nsga2")))
    names = {p.name for p in written}
    assert {"README.md", "variance.png", "fidelity.png", "strategies.png", "calibration.csv", "proxies.csv",
            "time_to_90.csv"} <= names and all(p.stat().st_size > 0 for p in written)
    text = (tmp_path / "report" / "README.md").read_text()
    for heading in ("## 1. Design against seed", "## 2. Fidelity", "## 3. Verdict calibration",
                    "## 4. Zero-cost proxies", "## 5. Search strategies", "## Replay speed"):
        assert heading in text
    assert "a design against itself (0 designs, disjoint draws of 3 seeds each, no difference by construction): no design has the 6 seeds" in text
    assert re.search(r"^- nsga2: \d+\.\d\d s for 6 designs: \d+\.\d\d s a design over the first 6, \d+\.\d\d s a "
                     r"design over all$", text, re.M), text.split("## Replay speed")[1]
    mean_job = table.frame.apply(table_report._job_seconds, axis=1).mean()
    assert f"against the {mean_job:.1f} s a job of the table takes on average" in text
    proxies = pd.read_csv(tmp_path / "report" / "proxies.csv").set_index("score")
    assert proxies.loc["synflow", "spearman_final_val_dice"] == pytest.approx(1.0)  # rises with d, as Dice does


def test_a_report_keeps_its_replays_and_a_later_one_replays_only_what_is_missing(tiny_space, tmp_path,
                                                                                   monkeypatch):
    import bench.results.table_report as table_report
    from bench.results.replay_cache import ReplayCache
    from bench.results.table_analyses import Strategy

    table = hand_made_table(tiny_space)
    settings = dict(draws=2, samplers=("random",))
    table_report.write_table_report(table, tiny_space, tmp_path / "a", table_report.ReportSettings(2, **settings))
    kept = ReplayCache(tmp_path / "a" / "replays", table)
    assert sorted(kept.load(Strategy("random", "mo_asha", 4), table_report_horizon(table, 4))) == [0, 1]

    replayed = []
    real = table_report.replay_strategy
    monkeypatch.setattr(table_report, "replay_strategy",
                        lambda *a, **k: replayed.append((a[2].label, a[4])) or real(*a, **k))
    table_report.write_table_report(table, tiny_space, tmp_path / "a", table_report.ReportSettings(3, **settings))
    # only seed 2, of each of the 4 strategies (random, with and without MO-ASHA, 1 and 4 workers)
    assert sorted(replayed) == sorted((s.label, 2) for s in (Strategy("random", p, w) for p in ("none", "mo_asha")
                                                              for w in (1, 4)))
    monkeypatch.setattr(table_report, "replay_strategy", real)
    table_report.write_table_report(table, tiny_space, tmp_path / "cold", table_report.ReportSettings(3, **settings))
    for name in ("strategies.csv", "time_to_90.csv"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "cold" / name).read_text()


def test_replays_in_two_worker_processes_keep_the_same_figures_as_in_one(tiny_space, tmp_path):
    from bench.results.replay_cache import ReplayCache
    from bench.results.table_analyses import Strategy
    from bench.results.table_report import ReportSettings, write_table_report

    table = hand_made_table(tiny_space)
    for jobs, folder in ((1, "one"), (2, "two")):
        write_table_report(table, tiny_space, tmp_path / folder,
                           ReportSettings(3, draws=2, samplers=("random", "nsga2"), jobs=jobs))
    for name in ("strategies.csv", "time_to_90.csv"):
        assert (tmp_path / "one" / name).read_text() == (tmp_path / "two" / name).read_text()
    strategy = Strategy("nsga2", "mo_asha", 4)
    one, two = (ReplayCache(tmp_path / f / "replays", table).load(strategy, table_report_horizon(table, 4))
                for f in ("one", "two"))
    assert sorted(two) == [0, 1, 2] and two == one


def test_a_replay_failing_in_a_worker_process_is_raised_here_and_no_worker_is_left(tiny_space, tmp_path):
    import multiprocessing

    from bench.results.replay_cache import ReplayCache
    from bench.results.replay_jobs import ReplayJob, run_replays
    from bench.results.table_analyses import Strategy

    def not_here(*args, **kwargs):
        raise AssertionError("replayed in this process: with 2 processes the workers replay")

    table = hand_made_table(tiny_space)
    good, bad = Strategy("random", "none", 1), Strategy("no_such_sampler", "none", 1)
    jobs = [ReplayJob(good, 0, 300.0), ReplayJob(bad, 0, 300.0)]
    with pytest.raises(ConfigError, match="unknown sampler 'no_such_sampler'"):
        list(run_replays(table, tiny_space, jobs, 8, ReplayCache(tmp_path, table), processes=2, replay=not_here))
    assert multiprocessing.active_children() == []


def test_kept_replays_of_another_table_or_budget_are_not_used(tiny_space, tmp_path):
    from bench.results.replay_cache import ReplayCache
    from bench.results.table_analyses import Strategy, replay_strategy

    table, strategy = hand_made_table(tiny_space), Strategy("random", "none", 1)
    cache = ReplayCache(tmp_path, table)
    kept = cache.add(strategy, 0, replay_strategy(table, tiny_space, strategy, 8, 0, max_seconds=300.0).summary())
    assert cache.load(strategy, 300.0)[0] == kept and kept.curve and kept.seconds > 0
    assert cache.load(strategy, 200.0) == {}
    other = hand_made_table(tiny_space, seeds=2)
    assert ReplayCache(tmp_path, other).load(strategy, 300.0) == {}
    cache.path(strategy).write_text(cache.path(strategy).read_text() + "{not json\n")
    assert list(cache.load(strategy, 300.0)) == [0]  # a damaged line is skipped


def table_report_horizon(table, workers: int) -> float:
    from bench.results.table_report import ReportSettings, _job_seconds

    whole = float(table.frame.apply(_job_seconds, axis=1).groupby(table.frame["design"]).mean().sum())
    return ReportSettings().budget * whole / workers


def test_bench_replay_prints_what_a_replay_found(tiny_space, tmp_path, run_cli):
    path = write_table(hand_made_table(tiny_space), tmp_path / "t.parquet")
    result = run_cli("replay", "--table", str(path), "--space", str(tiny_space.source), "--sampler", "random",
                     "--trials", "6", "--workers", "2", "--without", "latency")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "random + none, 2 worker(s), 6 designs, 1 replay(s)" in text
    assert "1.000 of the true front's hypervolume found" in text and "6 designs trained, 0 stopped by the pruner" in text


def test_the_iqm_is_the_mean_of_the_middle_half_and_its_interval_holds_it():
    from bench.results.table_analyses import iqm, iqm_interval

    values = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 100.0]
    assert iqm(values) == pytest.approx(3.5)  # 2, 3, 4, 5
    low, high = iqm_interval(values)
    assert low <= 3.5 <= high and high < 50
    assert iqm_interval([2.0] * 5) == (2.0, 2.0)


@pytest.mark.slow
def test_the_replay_against_life_benchmark_quick_mode_compares_live_sweeps_with_replays(tmp_path):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-m", "benchmarks.replay_vs_live", "--quick", "--out", str(tmp_path)],
                          cwd=root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((tmp_path / "replay_vs_live.json").read_text())
    assert len(record["rows"]) == 2 and record["replays"] == 10
    low, high = record["replay_share_interval"]
    assert 0 < low <= high <= 1 + 1e-9
    for row in record["rows"]:
        assert row["designs"] == 3 and 0 < row["share"] <= 1 + 1e-9 and row["seconds"] > 0
        assert isinstance(row["share_inside"], bool) and row["setup_seconds"] >= 0


def test_bench_tabulate_report_writes_the_report_and_refuses_a_bad_repetition_count(tiny_space, tmp_path, run_cli):
    path = write_table(hand_made_table(tiny_space, seeds=4), tmp_path / "t.parquet")
    common = ["tabulate", "report", "--table", str(path), "--space", str(tiny_space.source), "--out",
              str(tmp_path / "r"), "--repetitions", "2", "--draws", "2", "--samplers", "random"]
    bad = CliRunner().invoke(cli, common + ["--repetitions-of", "gp=x"])
    assert bad.exit_code == 2 and "'gp=x': expected SAMPLER=N" in bad.output
    result = run_cli(*common, "--repetitions-of", "random=3")
    assert result.exit_code == 0, result.output
    text = (tmp_path / "r" / "README.md").read_text()
    assert "(3 for random: its replays are slow)" in text and "`bench tabulate report --table" in text


def test_bench_tabulate_build_with_two_workers_shares_the_jobs_and_status_and_export_follow(tiny_space, tmp_path,
                                                                                          run_cli):
    storage = f"sqlite:///{tmp_path / 'table.db'}"
    common = ["--space", str(tiny_space.source), "--storage", storage]
    built = run_cli("tabulate", "build", *common, "--workers", "2", "--threads", "1", "--limit", "2")
    assert built.exit_code == 0, built.output
    assert "14 jobs; 0 done" in built.output and "4 of 14 jobs done" in " ".join(built.output.split())
    status = run_cli("tabulate", "status", *common)
    assert "4 of 14 jobs done (4 of 6 designs)" in " ".join(status.output.split())
    exported = run_cli("tabulate", "export", *common, "--out", str(tmp_path / "t.parquet"))
    assert "4 rows, 4 designs" in " ".join(exported.output.split())
    table = read_table(tmp_path / "t.parquet")
    assert sorted(table.frame["design"]) == [0, 1, 2, 3] and table.meta["jobs_done"] == 4
    assert table.meta["data"]["source"] == "synthetic" and table.meta["space"] == "tiny_table"


@pytest.mark.parametrize("space", ["lightweight", "tabular"])
def test_a_space_whose_sampler_the_replay_chose_quotes_the_committed_figure(space):
    """The space file names the hours to 90 % that chose its sampler; they are the committed report's."""
    import re

    from bench.search.space import find_space

    text = find_space(space).read_text()
    sampler = load_space(space).study["sampler"]
    quoted = re.search(rf"{sampler.upper() if sampler == 'tpe' else sampler} (0\.\d{{3}})", text.replace("\n#", ""))
    assert "reports/tabular" in text and quoted, f"{space}.yaml does not quote the replay figure for {sampler}"
    figures = pd.read_csv(Path(__file__).parents[1] / "reports" / "tabular" / "time_to_90.csv")
    figure = figures[figures.strategy == f"{sampler}, 1 w"].hours_to_90.item()
    assert quoted.group(1) == f"{figure:.3f}"
    assert figure <= figures[figures.strategy == "random, 1 w"].hours_to_90.item()
