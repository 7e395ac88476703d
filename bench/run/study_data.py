"""The one dataset and split every trial of a study trains and is scored on."""
from __future__ import annotations

from dataclasses import dataclass

from ..data.dataset import SegmentationData
from ..data.source import DataSource
from ..data.split import Split
from ..search.space import SearchSpace
from ..training.seeds import Splits


@dataclass
class StudyData:
    """The one dataset and split every trial of a study uses."""

    dataset: SegmentationData
    split: Split
    size: int

    def parts(self) -> Splits:
        return Splits(*(self.dataset.subset(list(part)) for part in (self.split.train, self.split.val, self.split.test)))


def prepare_study_data(space: SearchSpace, source: DataSource, in_channels: int) -> StudyData:
    """The data ``source`` names, split by its mode and the study seed."""
    dataset = source.load(in_channels, synthetic_count=int(space.data["count"]), seed=int(space.study["seed"]))
    split = source.split(dataset, int(space.study["seed"]))
    return StudyData(dataset, split, dataset.input_size)
