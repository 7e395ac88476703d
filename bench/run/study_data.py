"""The one dataset and split every trial of a study trains and is scored on; or, cross-validated,
the k folds of which every design trains on the first ``rank`` (its figures and objectives pool
those folds) and the front, at the end, on all of them (:mod:`bench.run.front_folds`)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Optional

from ..data.dataset import SegmentationData
from ..data.source import DataSource
from ..data.split import Split, describe_splits, kfold_splits
from ..search.space import SearchSpace
from ..training.seeds import Splits


@dataclass
class StudyData:
    """The dataset, its one split or k folds (``splits``), and how many folds rank the designs."""

    dataset: SegmentationData
    splits: list[Split]
    size: int
    rank: int = 1

    @property
    def split(self) -> Split:
        """The split (cross-validated: the first fold's)."""
        return self.splits[0]

    @property
    def folds(self) -> Optional[int]:
        """K of a cross-validated study, else None."""
        return len(self.splits) if self.splits[0].fold is not None else None

    @property
    def ranked(self) -> list[Split]:
        """The splits every design trains on: the one split, or the first ``rank`` folds."""
        return self.splits[:self.rank]

    @property
    def hash(self) -> str:
        """The split's hash; cross-validated, a hash of every fold's (a resumed study checks it)."""
        if self.folds is None:
            return self.split.hash
        return hashlib.sha256(" ".join(s.hash for s in self.splits).encode()).hexdigest()

    def describe(self) -> str:
        """How designs are tested: the split, or ``ranked on fold 1 of 5-fold cross-validation, seed 0
        (30 images, each tested once); the front re-evaluated on all 5 folds``."""
        if self.folds is None:
            return self.split.describe()
        ranked = "fold 1" if self.rank == 1 else f"folds 1 to {self.rank}"
        rest = "" if self.rank == self.folds else f"; the front re-evaluated on all {self.folds} folds"
        return f"ranked on {ranked} of {describe_splits(self.splits)}{rest}"

    def parts(self, fold: int = 0) -> Splits:
        """The train, validation and test data of split ``fold`` (from 0)."""
        split = self.splits[fold]
        return Splits(*(self.dataset.subset(list(part)) for part in (split.train, split.val, split.test)))


def prepare_study_data(space: SearchSpace, source: DataSource, in_channels: int, folds: Optional[int] = None,
                       rank: int = 1) -> StudyData:
    """The data ``source`` names, split by its mode and the study seed (into ``folds`` folds, the
    first ``rank`` ranking the designs, when given)."""
    seed = int(space.study["seed"])
    dataset = source.load(in_channels, synthetic_count=int(space.data["count"]), seed=seed)
    if folds is None:
        return StudyData(dataset, [source.split(dataset, seed)], dataset.input_size)
    splits = kfold_splits(dataset.stems, dataset.source, dataset.content_hash, folds, seed)
    return StudyData(dataset, splits, dataset.input_size, rank)
