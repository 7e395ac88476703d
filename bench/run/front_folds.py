"""The front of a cross-validated sweep trained on every fold: designs were ranked on the first
``rank_folds`` folds; at the end, each front member and the stock network train (over the same
seeds) on the folds they have not seen, so that their figures and paired verdicts cover every
image once. Each network-fold is stored in the study as it finishes: a sweep interrupted here
resumes where it stopped (mid-fold, from the epoch checkpoints)."""
from __future__ import annotations

from dataclasses import replace
from typing import Callable, Sequence

import torch

from ..arch.config import Architecture
from ..core import interrupts
from ..search.records import TrialRecord
from ..search.study import front_folds
from ..training.runs import SeedRun
from ..training.seeds import train_seeds
from .settings import SweepSettings
from .study_data import StudyData

Announce = Callable[[str], None]


def networks_to_cross_validate(front: Sequence[TrialRecord], stock: TrialRecord | None) -> list[TrialRecord]:
    """The stock network first (the reference of every verdict), then the front, each once."""
    chosen = ([stock] if stock is not None else []) + [r for r in front if stock is None or r.number != stock.number]
    return [r for r in chosen if r.trained and r.config]


def cross_validate_front(study, settings: SweepSettings, data: StudyData, networks: Sequence[TrialRecord],
                         device: torch.device, keep: Callable[[TrialRecord, list[SeedRun], Architecture], dict],
                         announce: Announce = lambda line: None) -> dict:
    """Train every network of ``networks`` on each fold from ``data.rank`` on that the study has not
    stored yet, store the runs (``keep`` saves their weights and returns the artifact paths) and
    return everything stored (:func:`bench.search.study.front_folds`)."""
    stored = {number: dict(folds) for number, folds in front_folds(study).items()}
    recipe = settings.space.recipe
    resume = settings.weights_dir / "resume" if settings.weights_dir else None
    for record in networks:
        arch = Architecture(record.config.get("name", f"trial {record.number}"), record.config)
        for k in range(data.rank, data.folds or 0):
            if str(k) in stored.get(str(record.number), {}):
                continue
            interrupts.checkpoint()
            announce(f"trial {record.number} ({record.label}) on fold {k + 1} of {data.folds}, "
                     f"{settings.repeats} seed(s)")
            runs = [replace(run, fold=k) for run in train_seeds(
                arch, data.parts(k), recipe, settings.repeats, device,
                checkpoint_dir=resume / f"fold_{k + 1}" if resume else None)]
            artifacts = keep(record, runs, arch)
            with interrupts.deferred():  # the fold is stored whole, or trained again on resume
                stored.setdefault(str(record.number), {})[str(k)] = {
                    "runs": [run.to_dict() for run in runs], "artifacts": artifacts}
                front_folds(study, stored)
    return stored
