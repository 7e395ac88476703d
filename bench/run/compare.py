"""Comparing networks from Python: the same split, recipe and seeds for each, a table in the
form of the seed papers' Table 1, and every network tested against the first, image by image and
seed by seed. ``bench compare`` is argument parsing over this::

    import bench

    result = bench.compare(["tinyunet", "ulite"], data="../shared/data/dsb2018_96", repeats=3,
                           out_dir="runs/tiny-vs-ulite")
    print(result.table)                      # pandas: params, FLOPs, latency, IoU, Dice, HD95, verdicts
    for test in result.versus[1:]:           # PairedComparison against the first network
        print(test.candidate, test.verdict, test.p)
"""
from __future__ import annotations

import json
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import pandas as pd
import torch

from ..arch.config import Architecture, resolve_architecture
from ..core.errors import BenchError
from ..core.machine import cpu_model, git_revision
from ..core.files import write_text
from ..core.stats import RULE, PairedComparison, adjust, compare_paired
from ..data.dataset import SegmentationData
from ..data.lineage import lineage
from ..data.source import DataSource, data_source
from ..data.split import Split, describe_splits
from ..results.tables import results_table, write_tables
from ..training.recipe import Recipe, get_recipe
from ..training.trained import TrainedNetwork
from .experiment import check_classes, compared_objectives, prepare_data, time_together, tracking_entry, train_splits


@dataclass
class Comparison:
    """What :func:`compare` produced: the networks trained over their seeds, the paired test of
    each against the first (``versus[0]`` is None: the reference), the table, its caption, and
    the files written."""

    networks: list[TrainedNetwork]
    versus: list[Optional[PairedComparison]]
    table: pd.DataFrame
    caption: str
    recipe: Recipe
    dataset: SegmentationData
    splits: list[Split]  # one, or k folds
    size: int
    out_dir: Path
    paths: list[Path] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)  # mlflow_runs_url when tracked
    folds: Optional[pd.DataFrame] = None  # per fold and pooled (:func:`fold_table`), cross-validated

    @property
    def seeds(self) -> list[int]:
        return self.networks[0].seeds

    @property
    def split(self) -> Split:
        """The split (the first fold's, cross-validated)."""
        return self.splits[0]


def distinct_architectures(references: Sequence[str | Architecture]) -> list[Architecture]:
    """The architectures ``references`` name (built-in names, YAML paths, or resolved).

    Raises:
        BenchError: two of one name, or two files that hold the same network.
    """
    archs = [r if isinstance(r, Architecture) else resolve_architecture(r) for r in references]
    if len({arch.name for arch in archs}) != len(archs):
        raise BenchError(f"compare needs distinct architectures, got {', '.join(a.name for a in archs)}")
    labels = [r.name if isinstance(r, Architecture) else str(r) for r in references]
    for i, arch in enumerate(archs):
        same = next((j for j, a in enumerate(archs[:i]) if a.hash == arch.hash), None)
        if same is not None:
            raise BenchError(f"{labels[same]} and {labels[i]} hold the same network (config hash {arch.hash[:12]}): "
                             "compare trains each network once; drop one of them.")
    return archs


def paired_verdicts(reference: TrainedNetwork, candidates: Sequence[TrainedNetwork]) -> list[PairedComparison]:
    """Each candidate against ``reference``, image by image and seed by seed, Holm-adjusted
    (:func:`bench.core.stats.compare_paired`); cross-validated, over every image of every fold."""
    empty = reference.images_without_foreground()
    return adjust([compare_paired(reference.seed_scores(), n.seed_scores(), reference_name=reference.name,
                                  candidate_name=n.name, empty=empty) for n in candidates])


FOLD_FIGURES = {"dice_mean_fg": "test_dice_fg", "iou_mean_fg": "test_iou_fg", "hd95_mean_fg": "test_hd95_fg"}


def fold_table(networks: Sequence[TrainedNetwork], pooled: Sequence[Optional[PairedComparison]]) -> pd.DataFrame:
    """Per fold and pooled: each cross-validated network's foreground test Dice, IoU and HD95 (mean
    and std over the seeds; pooled over folds and seeds) and its paired verdict against the first
    network on that fold's test images (pooled: ``pooled``, the verdicts on every image once)."""
    rows = []
    for k in [*range(len(networks[0].folds)), None]:
        nets = list(networks) if k is None else [n.folds[k] for n in networks]
        verdicts = list(pooled) if k is None else [None, *paired_verdicts(nets[0], nets[1:])]
        for net, verdict in zip(nets, verdicts):
            estimates = net.estimates()
            row = {"fold": "pooled" if k is None else k + 1, "network": net.name,
                   "test_images": len(net.seed_scores()[0])}
            for key, name in FOLD_FIGURES.items():
                row[name], row[f"{name}_std"] = estimates[key].mean, estimates[key].std
            row["verdict"] = "reference" if verdict is None else verdict.short()
            rows.append(row)
    return pd.DataFrame(rows)


def compare(architectures: Sequence[str | Architecture], data: DataSource | str | None = None, *,
            recipe: Recipe | str = "default", recipe_name: Optional[str] = None, seed: int = 0, split_file: Optional[str | Path] = None,
            repeats: int = 1, out_dir: str | Path, device: torch.device = torch.device("cpu"),
            max_seconds: float = 10.0, tracking_uri: Optional[str] = None, experiment: Optional[str] = None,
            progress: Callable[[str, int], AbstractContextManager[Any]] = lambda name, seed: nullcontext(),
            timing: Callable[[], AbstractContextManager[Any]] = nullcontext) -> Comparison:
    """Train every architecture ``repeats`` times on one split of ``data`` (a folder, a
    :class:`DataSource`, or None for the built-in synthetic set) with ``recipe`` (a name, with
    ``seed``, or a :class:`Recipe`, whose seed is used, named ``recipe_name`` in the caption),
    time them together, test each against
    the first (hierarchical bootstrap and signed-rank test over images and seeds, Holm-adjusted:
    :func:`bench.core.stats.compare_paired`), and write ``table.md``/``.csv``/``.tex`` and
    ``comparison.json`` to ``out_dir`` (each network's runs under ``out_dir/<name>/seed_<seed>``).
    With ``tracking_uri``, log a parent MLflow run holding the table and a run per network.

    ``progress(name, seed)`` gives a context manager yielding a training run's progress callback
    (or None); ``timing()`` one held while the networks are timed.
    """
    revision = git_revision()  # the code that trains: a commit made during a long compare is not it
    archs = distinct_architectures(architectures)
    source = data if isinstance(data, DataSource) else data_source(data)
    chosen = recipe if isinstance(recipe, Recipe) else get_recipe(recipe, seed=seed)
    dataset, splits = prepare_data(source, archs[0].config["in_channels"], chosen.seed,
                                   Path(split_file) if split_file else None)
    size, out_dir = dataset.input_size, Path(out_dir)
    for arch in archs:  # refuse a mismatch before any training starts
        check_classes(arch, dataset)
    networks = [train_splits(arch, dataset, splits, chosen, size, out_dir / arch.name, repeats,
                             progress=lambda s, name=arch.name: progress(name, s), device=device)
                for arch in archs]
    with timing():
        time_together(networks, archs[0].config["in_channels"], size, max_seconds, device)
    reference = networks[0]
    versus = [None] + paired_verdicts(reference, networks[1:])
    split = splits[0]
    table = results_table(networks, dataset.classes, versus=versus if len(networks) > 1 else None,
                          objectives=compared_objectives())
    recipe_name = recipe if isinstance(recipe, str) else recipe_name or "custom"
    caption = (f"{', '.join(a.name for a in archs)} on {Path(dataset.source).name} ({dataset.protocol.describe()}), "
               f"recipe {recipe_name}, "
               f"{chosen.epochs} epochs, {describe_splits(splits)}; mean ± std over "
               f"{f'{len(splits)} folds x ' if len(splits) > 1 else ''}{repeats} seed(s); "
               f"paired per-image test of foreground Dice against {archs[0].name}. {RULE}")
    paths = write_tables(table, out_dir, caption=caption, label="tab:compare")
    folds = fold_table(networks, versus) if len(splits) > 1 else None
    if folds is not None:
        folds.to_csv(out_dir / "folds.csv", index=False)
        paths.append(out_dir / "folds.csv")
    write_text(out_dir / "comparison.json", json.dumps({
        "commit": revision, "cpu": cpu_model(), "torch": torch.__version__, "seeds": reference.seeds,
        "split": split.hash, "split_description": describe_splits(splits),
        "folds": [{"fold": s.fold[0] + 1, "split": s.hash, "test": list(s.test)} for s in splits] if len(splits) > 1 else None,
        "data": dataset.source, "size": size,
        "protocol": dataset.protocol.to_dict(),
        "recipe": chosen.to_dict(), "networks": {n.name: {k: e.to_dict() for k, e in n.estimates().items()}
                                                 for n in networks},
        "paired": [v.to_dict() for v in versus if v is not None],
        "per_fold": None if folds is None else folds.to_dict("records")}, indent=1, default=str) + "\n")
    result = Comparison(networks, versus, table, caption, chosen, dataset, splits, size, out_dir, paths, folds=folds)
    if tracking_uri:
        from ..results.tracking import track_networks

        entries = [tracking_entry(n, chosen, dataset, splits if n.folds else split, size, v)
                   for n, v in zip(networks, versus)]
        url, _ = track_networks(tracking_uri, experiment or out_dir.name, entries, parent={
            "name": f"compare {' '.join(a.name for a in archs)}", "description": caption,
            "params": {"data.source": dataset.source, "data.size": size, "data.split": split.hash[:12],
                       "data.test_split": describe_splits(splits), "seeds": ",".join(map(str, reference.seeds)), "networks": ",".join(a.name for a in archs)},
            "artifacts": [*paths, out_dir / "comparison.json"], "dataset": lineage(dataset, splits)})
        result.links["mlflow_runs_url"] = url
    return result
