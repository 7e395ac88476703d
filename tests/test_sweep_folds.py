"""Cross-validated sweeps (data.folds, --folds): designs ranked on a fold subset, the front and the
stock network trained on every fold at the end, their figures and verdicts over every image once,
resumable fold by fold, in the report and on the MLflow runs."""
from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

import bench.run.front_folds as front_folds
from bench.core.errors import BenchError, ConfigError
from bench.run.sweep import Sweep
from bench.search.space import load_space
from bench.training.runs import SeedRun, pooled_scores

SPACE = """\
description: stock TinyU-Net against a quarter of it, ranked on one fold of three
architecture: tinyunet
vary:
  width_multiplier: {choices: [1.0, 0.25]}
objectives: {val_dice: maximize, params: minimize}
recipe: {name: default, epochs: 1, batch: 8}
data: {source: synthetic, size: 32, count: 12, folds: 3, rank_folds: 1}
study: {sampler: random, trials: 2, seed: 0}
"""


def test_pooled_scores_put_each_fold_s_images_in_fold_order_seed_by_seed():
    runs = [SeedRun(0, fold=1, test_dice_fg_per_image=[0.3]), SeedRun(0, fold=0, test_dice_fg_per_image=[0.1, 0.2]),
            SeedRun(1, fold=0, test_dice_fg_per_image=[0.5, 0.6]), SeedRun(1, fold=1, test_dice_fg_per_image=[0.7])]
    assert pooled_scores(sorted(runs, key=lambda r: r.fold)) == [[0.1, 0.2, 0.3], [0.5, 0.6, 0.7]]
    assert SeedRun(2, fold=1).label == "fold_2/seed_2" and SeedRun(2).label == "seed_2"
    assert SeedRun.from_dict(SeedRun(2, fold=1).to_dict()).fold == 1


def test_a_cross_validated_sweep_ranks_on_one_fold_and_tests_its_front_on_every_image(tmp_path, write_yaml,
                                                                                      monkeypatch):
    space = write_yaml("cv.yaml", SPACE)
    trained: list[tuple[int, int]] = []
    real = front_folds.train_seeds

    def counted(arch, data, recipe, repeats, device, checkpoint_dir=None):
        trained.append((len(trained), len(data.test.stems)))
        if len(trained) == 2:  # Ctrl-C during the re-evaluation: what is stored stays, the rest resumes
            raise KeyboardInterrupt
        return real(arch, data, recipe, repeats, device, checkpoint_dir=checkpoint_dir)

    monkeypatch.setattr(front_folds, "train_seeds", counted)
    settings = dict(storage=f"sqlite:///{tmp_path}/optuna.db", tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
                    report_dir=tmp_path / "report", weights_dir=tmp_path / "weights")
    with pytest.raises(KeyboardInterrupt):
        Sweep(space, **settings).run()
    assert len(trained) == 2
    result = Sweep(space, **settings).run()  # resumed: one network-fold was stored, three are left
    assert len(trained) == 2 + 3

    assert result.info.data["folds"] == 3 and result.info.test_split().startswith("ranked on fold 1 of 3-fold")
    for record in result.records:
        if record.trained:
            assert {run.fold for run in record.seeds} == {0}  # designs are ranked on fold 1 alone
            assert len(record.per_image) == 4  # a third of the 12 images
    assert result.stock is not None and set(result.all_folds) == {result.stock, *result.front}
    for number, figures in result.all_folds.items():
        assert figures.complete and len(figures.per_fold) == 3
        assert len(pooled_scores(figures.runs)[0]) == 12  # every image once, from the fold that held it out
        assert {name.split("/")[0] for name in figures.artifacts} == {"fold_2", "fold_3"}
        kept = result.weights[number]  # every fold's weights moved into the trial's MLflow run, once
        assert kept["kept"] and not any(Path(path).exists() for path in figures.artifacts.values())
        assert sorted(where.split("/model.pt")[0].split("/", 2)[-1] for where in kept["where"][1:]) == [
            "fold_2/seed_0", "fold_3/seed_0"]
    members = [n for n in result.front if n != result.stock]
    assert sorted(result.all_folds_versus_stock) == sorted(members)
    for test in result.all_folds_versus_stock.values():
        assert test.n + test.dropped == 12

    page = (tmp_path / "report" / "report.md").read_text()
    assert "## On every fold" in page and "ranked on fold 1 of 3" in page.replace("trained and ranked", "ranked")
    folds = (tmp_path / "report" / "folds.csv").read_text().splitlines()
    assert folds[0].startswith("trial,design,role,fold_1,fold_2,fold_3,test_dice_fg") and len(folds) == 1 + len(
        result.all_folds)

    with pytest.raises(BenchError, match="ranks designs on 1 fold.*Use --rank-folds 1"):
        Sweep(space, rank_folds=2, **settings).open()  # resumed on other folds would mix rankings

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name(result.info.study).experiment_id],
                              "tags.`bench.trial` != ''")
    by_trial = {int(r.data.tags["bench.trial"]): r for r in runs}
    for number in result.all_folds:
        logged = by_trial[number].data
        assert logged.metrics["cv_test_dice_fg"] == pytest.approx(result.all_folds[number].pooled().mean)
        assert {f"cv_test_dice_fg/fold_{k}" for k in (1, 2, 3)} <= set(logged.metrics)
        assert logged.tags["bench.cv_folds"] == "3 of 3"
    for number in members:
        assert by_trial[number].data.tags["bench.cv_vs_stock"].startswith(result.all_folds_versus_stock[number].verdict)


@pytest.mark.parametrize("data, key, words", [
    ("{rank_folds: 2}", "data.rank_folds", "give data.folds K too"),
    ("{folds: 3, rank_folds: 4}", "data.rank_folds", "4 is more than the 3 folds"),
    ("{folds: 3, split_mode: random}", "data.folds", "data.split_mode random makes one split"),
    ("{folds: 1}", "data.folds", "from 2 to 100"),
])
def test_bad_fold_settings_in_a_space_name_the_key(write_yaml, data, key, words):
    space = write_yaml("bad.yaml", SPACE.replace("data: {source: synthetic, size: 32, count: 12, folds: 3, rank_folds: 1}",
                                                 f"data: {data}"))
    with pytest.raises(ConfigError) as error:
        load_space(str(space))
    assert key in str(error.value) and words in str(error.value) and "bad.yaml" in str(error.value)


def test_bench_run_refuses_more_ranking_folds_than_folds(run_cli):
    result = run_cli("run", "--space", "quick", "--folds", "3", "--rank-folds", "4", "--quiet")
    assert result.exit_code != 0 and "--rank-folds: 4 is more than the 3 folds" in result.output
