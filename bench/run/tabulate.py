"""Tabulating a space (``bench tabulate``): every design of a finite space trained with several
seeds, kept with everything a replay needs, in the manner of NAS-Bench-201 and HW-NAS-Bench.

A job is one design with one seed (:mod:`bench.search.table_study` orders and hands them out).
Its row holds, per design and seed: the validation Dice and training loss after every epoch,
the per-image test Dice at the best epoch and at every fidelity epoch of the space's ``table:``
section, and the wall time of every step apart (build, each epoch's training and validation,
each test pass). The first seed of a design also measures what belongs to the design: the
parameters, MACs and FLOPs of both forms and their counting time, the latency of the deploy form
timed interleaved with a reference network (the space's base architecture) and its timing time,
and the zero-cost proxies (:mod:`bench.training.proxies`) and their time.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional

import torch

from ..arch.assemble import build_checked, build_model
from ..arch.config import resolve_architecture
from ..arch.latency import Candidate, Protocol, measure
from ..arch.cost_cache import cached_profile
from ..core.errors import BenchError
from ..data.dataset import SegmentationData
from ..data.source import DataSource
from ..data.split import Split
from ..search.space import SearchSpace
from ..search.study import FixedTrial, sample_overrides
from ..search.table_study import Job, TableStudy
from ..training.loop import TrainingDiverged, metric_classes, train_model
from ..training.inference import predict
from ..training.metrics import segmentation_metrics
from ..training.proxies import zero_cost_scores
from ..training.seeds import Splits

TABLE_LATENCY = Protocol(max_seconds=1.0)  # per candidate, interleaved with the reference
PROXY_BATCH = 16
CATCH = (BenchError, TrainingDiverged, RuntimeError, ValueError)  # a job raising these fails; the build goes on


def table_values(row: dict[str, Any]) -> list[float]:
    """A finished job's value in the table's study: its best validation Dice."""
    return [row["best_val_dice"]]


@dataclass
class TableData:
    """The images a table is built on (a seeded subset when the space asks for one), and their split."""

    parts: Splits
    split: Split
    size: int
    record: dict[str, Any]


def table_data(space: SearchSpace, source: DataSource, in_channels: int) -> TableData:
    """The data ``source`` names at the space's protocol, cut to ``table.images`` images (drawn
    with the study seed) and split by the study seed."""
    seed = int(space.study["seed"])
    dataset = source.load(in_channels, synthetic_count=int(space.data["count"]), seed=seed)
    wanted = space.table.images if space.table else None
    if wanted is not None and wanted < len(dataset.stems):
        dataset = dataset.subset(sorted(random.Random(seed).sample(sorted(dataset.stems), wanted)))
    split = source.split(dataset, seed)
    parts = Splits(*(dataset.subset(list(p)) for p in (split.train, split.val, split.test)))
    record = {**dataset.record(), "images": len(dataset.stems), "split_hash": split.hash, "split": split.describe(),
              "train": len(split.train), "val": len(split.val), "test": len(split.test)}
    return TableData(parts, split, dataset.input_size, record)


def per_image_test_dice(model: torch.nn.Module, test: SegmentationData, classes: int) -> list[float]:
    """Foreground Dice of every test image (split order), no distances."""
    metrics = segmentation_metrics(predict(model, test), test.scoring_labels(), metric_classes(classes),
                                   distances=False)
    return [float(v) for v in metrics.per_image_mean_fg_paired("dice")]


class Tabulator:
    """Runs the jobs of a :class:`TableStudy` on ``data``, one after another, until none waits."""

    def __init__(self, table: TableStudy, data: TableData, device: torch.device = torch.device("cpu"),
                 on_job: Callable[[Job, Optional[dict], Optional[str]], None] = lambda job, row, error: None) -> None:
        self.table, self.data, self.device, self.on_job = table, data, device, on_job
        self.space = table.space
        self._reference: Optional[torch.nn.Module] = None

    def run(self, limit: Optional[int] = None) -> int:
        """Take jobs until none waits (or ``limit`` were done); the number done here."""
        done = 0
        while limit is None or done < limit:
            outcome = self.table.run_next(self.run_job, table_values, CATCH)
            if outcome is None:
                break
            self.on_job(*outcome)
            done += 1
        return done

    def run_job(self, job: Job) -> dict[str, Any]:
        """Train design ``job.design`` with seed index ``job.seed`` and measure it: its row."""
        space, size = self.space, self.data.size
        params = self.table.samples[job.design]
        arch = resolve_architecture(space.architecture, sample_overrides(FixedTrial(params), space))
        seed = space.recipe.seed + job.seed
        classes = int(arch.config["classes"])
        row: dict[str, Any] = {"design": job.design, "seed": job.seed, "config_hash": arch.hash, "sample": params,
                               "calibration": job.design in self.table.calibration}
        started = time.perf_counter()
        model = build_checked(arch, size, seed)
        row["build_seconds"] = time.perf_counter() - started
        if job.seed == 0:
            row.update(self._design_measures(arch, model))
        fidelities = set(space.table.fidelities)
        parts = self.data.parts

        def watched(event: str, done: int, total: int, values: dict) -> None:
            if event == "epoch" and done in fidelities:
                started = time.perf_counter()
                row[f"test_dice_fg_per_image_at_{done}"] = per_image_test_dice(model, parts.test, classes)
                row[f"test_seconds_at_{done}"] = time.perf_counter() - started

        result = train_model(model, parts.train, parts.val, replace(space.recipe, seed=seed), classes, watched,
                             device=self.device)
        history = result.history
        for key in ("val_dice", "val_dice_all", "train_loss", "train_seconds", "val_seconds"):
            row[key] = [float(h[key]) for h in history]
        row.update(best_epoch=result.best_epoch, best_val_dice=float(result.best_val_dice))
        started = time.perf_counter()
        row["test_dice_fg_per_image"] = per_image_test_dice(model, parts.test, classes)
        row["test_seconds"] = time.perf_counter() - started
        row["test_dice_fg"] = sum(row["test_dice_fg_per_image"]) / max(1, len(row["test_dice_fg_per_image"]))
        return row

    def _design_measures(self, arch, model: torch.nn.Module) -> dict[str, Any]:
        """Costs, latency and proxies of a design, with the time each took."""
        size, channels = self.data.size, int(arch.config["in_channels"])
        measures: dict[str, Any] = {}
        started = time.perf_counter()
        cost = cached_profile(model, arch.name, arch.hash, channels, size)
        measures["count_seconds"] = time.perf_counter() - started
        measures.update(params=cost.train.params, macs=cost.train.macs, flops=cost.train.flops,
                        deploy_params=cost.deploy.params, deploy_macs=cost.deploy.macs, deploy_flops=cost.deploy.flops)
        started = time.perf_counter()
        timed = measure([Candidate("design", model), Candidate("reference", self.reference())], channels, size,
                        TABLE_LATENCY, reference="reference")
        # the pair was timed together: the design's share of the time is half of it
        measures["latency_seconds"] = (time.perf_counter() - started) / 2
        measures.update(latency_ms=timed[0].median_ms, latency_ratio=timed[0].ratio,
                        reference_latency_ms=timed[1].median_ms)
        x, y = self.data.parts.train.batch(list(range(min(PROXY_BATCH, len(self.data.parts.train.stems)))))
        started = time.perf_counter()
        measures.update({f"proxy_{k}": v for k, v in zero_cost_scores(model, x, y).items()})
        measures["proxies_seconds"] = time.perf_counter() - started
        return measures

    def reference(self) -> torch.nn.Module:
        """The space's base architecture, every design's latency is timed beside."""
        if self._reference is None:
            self._reference = build_model(resolve_architecture(self.space.architecture), seed=0)
        return self._reference


def check_data(table: TableStudy, data: TableData) -> None:
    """Record the data a table is built on; refuse other data for the same table.

    Raises:
        BenchError: the study was started on other images or another split.
    """
    known = table.study.user_attrs.get("data")
    if known is None:
        table.study.set_user_attr("data", data.record)
    elif (known.get("split_hash"), known.get("size")) != (data.record["split_hash"], data.record["size"]):
        raise BenchError(f"study {table.name!r} is built on {known.get('source')} at {known.get('size')} px "
                         f"(split {known.get('split_hash')}); this worker has {data.record['source']} at "
                         f"{data.record['size']} px (split {data.record['split_hash']}). Give every worker the same "
                         "--data and --size.")


def tabulate_worker(space: SearchSpace, source: DataSource, study: str, storage: str, threads: int,
                    limit: Optional[int], device: str,
                    on_job: Callable[[Job, Optional[dict], Optional[str]], None] = lambda job, row, error: None) -> int:
    """One worker: open the table's study, load the data, take jobs until none waits (or
    ``limit``); the number of jobs it ran."""
    from ..core.device import resolve_device

    torch.set_num_threads(threads)
    table = TableStudy(space, study, storage)
    in_channels = int(resolve_architecture(space.architecture).config["in_channels"])
    data = table_data(space, source, in_channels)
    check_data(table, data)
    return Tabulator(table, data, resolve_device(device), on_job).run(limit)
