"""What a sweep is asked to do, fixed when it starts: one frozen record that the coordinating
process, its worker processes and the study's recorded :class:`bench.search.records.StudyInfo`
all read."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from ..core.defaults import DEFAULT_STORAGE, DEFAULT_TRACKING
from ..core.errors import BenchError
from ..core.files import plain_name
from ..data.lineage import lineage
from ..data.source import check_folds
from ..data.split import DEFAULT_FOLDS
from ..search.objectives import OBJECTIVES, Objective
from ..search.records import StudyInfo
from ..search.samplers import sampler_settings
from ..search.space import KEEP_WEIGHTS, SearchSpace, describe, load_space
from ..search.storage import JOURNAL, redact

if TYPE_CHECKING:
    from .study_data import StudyData


LATENCY_MODES = ("measured", "predicted")  # how a trial's latency objective is known before training


def default_threads(workers: int) -> int:
    """Torch threads per worker: ``OMP_NUM_THREADS`` where set (PyTorch's own convention), else
    the cores divided among the workers."""
    given = os.environ.get("OMP_NUM_THREADS", "")
    return int(given) if given.isdigit() and int(given) > 0 else max(1, (os.cpu_count() or 1) // workers)


@dataclass(frozen=True)
class SweepSettings:
    """A sweep's settings (see :class:`bench.run.sweep.Sweep` for each); ``device`` is the spec
    (``auto``, ``cuda``, ``cpu``, ...) that each worker resolves to its own ``torch.device``;
    ``latency`` says whether latency objectives are ``measured`` per trial or ``predicted`` from
    the machine's block table (``latency_table``, default this machine's: :mod:`bench.arch.latency_table`)."""

    space: SearchSpace
    study: str
    storage: str = DEFAULT_STORAGE
    tracking_uri: Optional[str] = DEFAULT_TRACKING
    data: Optional[str] = None
    size: Optional[int] = None
    patch: Optional[int] = None
    trials: int = 12
    repeats: int = 1
    workers: int = 1
    threads: int = 1
    timeout: Optional[float] = None
    heartbeat: int = 10
    max_retry: int = 2
    report_dir: Optional[Path] = None
    weights_dir: Optional[Path] = None
    device: str = "auto"
    deterministic: bool = False
    latency: str = "measured"
    latency_table: Optional[Path] = None
    folds: Optional[int] = None
    rank_folds: int = 1
    keep_weights: str = "front"

    @classmethod
    def of(cls, space: str | Path | SearchSpace, *, study: Optional[str] = None, storage: Optional[str] = None,
           tracking_uri: Optional[str] = DEFAULT_TRACKING, data: Optional[str] = None, size: Optional[int] = None,
           patch: Optional[int] = None, trials: Optional[int] = None, workers: int = 1,
           threads: Optional[int] = None, timeout: Optional[float] = None, heartbeat: int = 10,
           max_retry: int = 2, repeats: Optional[int] = None, report_dir: Optional[str | Path] = None,
           weights_dir: Optional[str | Path] = "runs/{study}/weights", device: str = "auto",
           deterministic: bool = False, latency: str = "measured",
           latency_table: Optional[str | Path] = None, folds: Optional[int] = None,
           rank_folds: Optional[int] = None, keep_weights: Optional[str] = None) -> "SweepSettings":
        """The settings, with the space's defaults filled in and checked.

        Raises:
            BenchError: no trials or repeats; ConfigError: a bad space or study name, bad folds.
        """
        space = space if isinstance(space, SearchSpace) else load_space(str(space))
        name = plain_name(study or space.name, "study name")
        trials, repeats = int(trials or space.study["trials"]), int(repeats or space.study["repeats"])
        if repeats < 1 or trials < 1:
            raise BenchError(f"a sweep needs trials >= 1 and repeats >= 1, got trials {trials}, repeats {repeats}")
        keep_weights = keep_weights or space.study["keep_weights"]
        if keep_weights not in KEEP_WEIGHTS:
            raise BenchError(f"keep_weights {keep_weights!r}: choose one of {', '.join(KEEP_WEIGHTS)}")
        if latency not in LATENCY_MODES:
            raise BenchError(f"latency {latency!r}: choose {' or '.join(LATENCY_MODES)}")
        if folds is not None:
            check_folds(folds, None, space.data["split_mode"])
        folds = folds or space.data["folds"] or (DEFAULT_FOLDS if space.data["split_mode"] == "kfold" else None)
        if rank_folds is not None:
            check_folds(folds, rank_folds, None)
        rank_folds = rank_folds or space.data["rank_folds"] or 1
        if folds is not None and rank_folds > folds:  # --folds below the space's rank_folds
            check_folds(folds, rank_folds, None)
        return cls(space, name, storage or DEFAULT_STORAGE, tracking_uri, data, size, patch, trials, repeats, workers,
                   threads or default_threads(workers), timeout, heartbeat, max_retry,
                   Path(report_dir) if report_dir is not None else None,
                   Path(str(weights_dir).format(study=name)) if weights_dir is not None else None,
                   device, deterministic, latency, Path(latency_table) if latency_table else None, folds,
                   rank_folds if folds else 1, keep_weights)

    @property
    def measures(self) -> list[Objective]:
        """Objectives measured before training: every cheap one on every trial, costly ones
        (timing) where the study names them (read from this process's registry)."""
        quantities = {*self.space.objectives, *self.space.constraints}
        return [o for o in OBJECTIVES if o.before_training and (not o.costly or o.name in quantities)]

    @property
    def scores(self) -> list[Objective]:
        """Objectives scored after training: the study's, and ``val_dice`` always."""
        quantities = {*self.space.objectives, *self.space.constraints}
        return [o for o in OBJECTIVES if not o.before_training and (o.name in quantities or o.name == "val_dice")]

    @property
    def predicts_latency(self) -> bool:
        """Whether this sweep's latency objective is predicted from the block table."""
        return self.latency == "predicted" and any(o.name == "latency_ms" for o in self.measures)

    def table_path(self) -> Path:
        """The latency table this sweep predicts from."""
        from ..arch.latency_table import default_path

        return self.latency_table or default_path()

    @property
    def grace(self) -> int:
        """Seconds without a heartbeat after which a trial's worker is taken for dead."""
        return 3 * self.heartbeat

    @property
    def waits(self) -> Optional[int]:
        """How long a trial waits for another worker's training of the same network (None: it
        does not wait; a journal file has no heartbeats, so a dead trial would never end)."""
        return None if self.storage.startswith(JOURNAL) else self.grace

    @property
    def timed(self) -> bool:
        """Whether the study names a wall-clock objective or constraint (its front is timed again)."""
        return any(OBJECTIVES.get(n).timed for n in {*self.space.objectives, *self.space.constraints})

    def study_info(self, data: "StudyData", reference_hash: str) -> StudyInfo:
        """What the study records about itself (checked again on resume)."""
        space = self.space
        return StudyInfo(
            study=self.study, space=space.name, description=space.description, objectives=dict(space.objectives),
            constraints=dict(space.constraints), architecture=space.architecture, reference_hash=reference_hash,
            data={"source": data.dataset.source, "size": data.size, "split_hash": data.hash,
                  "split": data.describe(), "lineage": lineage(data.dataset, data.splits),
                  **({"folds": data.folds, "rank_folds": data.rank} if data.folds else {}),
                  "mode": data.dataset.protocol.mode, "protocol": data.dataset.protocol.describe(),
                  "classes": data.dataset.classes, "train": len(data.split.train), "val": len(data.split.val),
                  "test": len(data.split.test)},
            recipe=space.recipe.to_dict(), sampler=space.study["sampler"], seed=int(space.study["seed"]),
            trials=self.trials, repeats=self.repeats, storage=redact(self.storage),
            tracking_uri=redact(self.tracking_uri or ""), space_file=str(space.source), workers=self.workers,
            vary={path: describe(dist) for path, dist in space.vary.items()}, pruner=space.pruner.to_dict(),
            sampler_settings=sampler_settings(space, self.trials), keep_weights=self.keep_weights)
