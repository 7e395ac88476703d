"""What a sweep tells its observers: the terminal display, the MLflow tracker, your own code.

A listener overrides any of six events (the others do nothing), in the spirit of Optuna's
``callbacks``, but with bench's typed records::

    class Printer(SweepListener):
        def trial_ended(self, record):
            print(record.number, record.status, record.values)

    Sweep("quick", listeners=[Printer()]).run()

Listeners may annotate a record in ``trial_started`` (``record.links``, e.g. the MLflow run id);
the sweep stores the annotation with the trial. With ``workers > 1`` trials run in other
processes: there each listener is replaced by what its :meth:`SweepListener.for_worker` returns
(nothing by default; it must be picklable).
"""
from __future__ import annotations

from typing import Optional, Sequence

from .records import StudyInfo, SweepResult, TrialRecord


class SweepListener:
    """Observer of a sweep; every method does nothing unless overridden."""

    def study_started(self, info: StudyInfo, past: Sequence[TrialRecord]) -> None:
        """The study is open; ``past`` holds the trials it had already (a resumed study)."""

    def trial_started(self, record: TrialRecord) -> None:
        """A trial begins (nothing is sampled yet)."""

    def epoch_ended(self, record: TrialRecord, epoch: dict) -> None:
        """A training epoch of the trial ended: epoch, epochs, train_loss, val_dice (foreground), val_dice_all, seconds."""

    def trial_ended(self, record: TrialRecord) -> None:
        """The trial finished: COMPLETE, PRUNED or FAIL (also a trial of a dead worker, found
        stale by this one)."""

    def noted(self, line: str) -> None:
        """A step of the sweep outside any trial (the front trained on the folds that did not rank it)."""

    def study_ended(self, result: SweepResult) -> None:
        """The sweep is over (this process coordinated it): front, timing and report done."""

    def for_worker(self, index: int) -> Optional["SweepListener"]:
        """The listener to use in worker process ``index`` (None: none there)."""
        return None


class Listeners(SweepListener):
    """Several listeners as one, called in order."""

    def __init__(self, listeners: Sequence[SweepListener]) -> None:
        self.listeners = list(listeners)

    def study_started(self, info: StudyInfo, past: Sequence[TrialRecord]) -> None:
        for listener in self.listeners:
            listener.study_started(info, past)

    def trial_started(self, record: TrialRecord) -> None:
        for listener in self.listeners:
            listener.trial_started(record)

    def epoch_ended(self, record: TrialRecord, epoch: dict) -> None:
        for listener in self.listeners:
            listener.epoch_ended(record, epoch)

    def trial_ended(self, record: TrialRecord) -> None:
        for listener in self.listeners:
            listener.trial_ended(record)

    def noted(self, line: str) -> None:
        for listener in self.listeners:
            listener.noted(line)

    def study_ended(self, result: SweepResult) -> None:
        for listener in self.listeners:
            listener.study_ended(result)

    def for_worker(self, index: int) -> "Listeners":
        return Listeners([w for w in (listener.for_worker(index) for listener in self.listeners) if w is not None])
