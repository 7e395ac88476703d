"""Typed records of a sweep: what a study is (:class:`StudyInfo`), what one trial found
(:class:`TrialRecord`), and what a sweep ended with (:class:`SweepResult`).

Every reader (terminal, MLflow tracker, reports, fronts) takes these records; only
:meth:`TrialRecord.user_attrs` and :meth:`TrialRecord.from_trial` know how a trial is stored in
Optuna (as user attributes, one per field, so that other workers and optuna-dashboard can read
them). No Optuna import here: a trial is read through the attributes every ``FrozenTrial`` has.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, Optional

from ..training.runs import SeedRun

if TYPE_CHECKING:
    from ..core.stats import Estimate, PairedComparison

RUNNING, WAITING, COMPLETE, PRUNED, FAIL = "RUNNING", "WAITING", "COMPLETE", "PRUNED", "FAIL"
DIED = "its worker stopped without recording a reason (killed, or its heartbeats stopped)"
INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM: the network is retried when the sweep runs again


def counts(state: str, duplicate_of: Optional[int], pruned: Optional[dict]) -> bool:
    """:attr:`TrialRecord.counted` from a trial's state and two of its stored fields."""
    return duplicate_of is None and (state == COMPLETE or state == PRUNED and bool(pruned))


def design_label(sample: dict[str, Any]) -> str:
    """Block types by name, their sampled parameters as ``N=8``, the width multiplier as ``x0.5``,
    other values as ``leaf=value``: ``cmrf N=8 x1.0``."""
    words = []
    for key, value in sample.items():
        leaf = key.rpartition(".")[2]
        if leaf == "type":
            words.append(str(value))
        elif key == "width_multiplier":
            words.append(f"x{value}")
        else:
            words.append(f"{leaf}={value}")
    return " ".join(words)


@dataclass
class StudyInfo:
    """What a study sweeps, on what data, towards what: recorded in the study when it is
    created, so that reports can be written from the storage alone."""

    study: str
    space: str
    description: str
    objectives: dict[str, str]  # name -> direction, in the study's order
    constraints: dict[str, dict[str, float]]
    architecture: str  # the space's base (stock) architecture
    reference_hash: str  # config hash of the stock architecture
    data: dict[str, Any]  # source, size, split_hash, classes, train/val/test counts
    recipe: dict[str, Any]
    sampler: str
    seed: int
    trials: int  # complete trials the sweep runs to
    repeats: int = 1  # training runs per design (seeds seed, seed+1, ...)
    storage: str = ""  # password hidden
    tracking_uri: str = ""
    space_file: str = ""
    workers: int = 1
    vary: dict[str, str] = field(default_factory=dict)  # config path -> what is sampled, in words
    pruner: dict[str, Any] = field(default_factory=dict)  # bench.search.pruners.Pruner.to_dict()
    sampler_settings: dict[str, int] = field(default_factory=dict)  # the sampler's own, bench.search.samplers.Sampler.settings
    keep_weights: str = "front"  # which trained networks keep their weights (bench.run.weights)

    def data_at(self) -> str:
        """How the networks saw the data: ``at 48 px`` (resized), or in patches at native size."""
        if self.data.get("mode") == "patch":
            return f"in {self.data['size']} px patches (sliding windows, scored at native size)"
        return f"at {self.data['size']} px"

    def test_split(self) -> str:
        """How the test images were chosen; a study recorded before split modes made a random split."""
        return self.data.get("split") or f"random split ({self.data['test']} test images)"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> "StudyInfo":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in known})


@dataclass
class TrialRecord:
    """Everything one trial found.

    ``values`` holds every objective quantity computed for the trial: those known before
    training (measured on the built network) always, those known after training only when the
    network was trained (or copied from the trial that trained it), as the mean over the seeds.
    ``seeds`` holds each training run (seed, metrics, per-epoch history, per-image test
    foreground Dice); ``metrics`` their means, ``estimates`` mean, std and the t 95 % interval of
    every metric and after-training objective (:class:`bench.core.stats.Estimate` as dicts);
    ``per_image`` the per-image test foreground Dice averaged over the seeds, in the study's test
    split order, for paired comparisons. ``violations`` maps each constraint to the amount by
    which it is exceeded (<= 0: satisfied).
    """

    number: int
    state: str = RUNNING
    sample: dict[str, Any] = field(default_factory=dict)  # Optuna's parameters
    overrides: list[str] = field(default_factory=list)  # the sample as --set overrides
    config: Optional[dict[str, Any]] = None  # resolved architecture
    config_hash: str = ""
    blocks: dict[str, str] = field(default_factory=dict)  # slot -> block type
    cost: Optional[dict[str, Any]] = None  # bench.arch.profile.CostProfile.to_dict()
    memory: Optional[dict[str, Any]] = None  # bench.arch.memory.PeakMemory.to_dict()
    latency: Optional[dict[str, Any]] = None  # bench.arch.latency.Latency.to_dict()
    values: dict[str, float] = field(default_factory=dict)
    violations: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    estimates: dict[str, dict[str, float]] = field(default_factory=dict)
    seeds: list[SeedRun] = field(default_factory=list)  # one per training run (bench.training.seeds)
    per_image: list[float] = field(default_factory=list)
    trained: bool = False  # accuracy figures exist (trained here, or by duplicate_of)
    duplicate_of: Optional[int] = None
    skipped: Optional[str] = None  # why it was not trained, or not run
    fail_reason: Optional[str] = None
    worker: str = ""  # host:pid
    seconds: Optional[float] = None
    links: dict[str, str] = field(default_factory=dict)  # e.g. mlflow_run_id
    artifacts: dict[str, str] = field(default_factory=dict)  # name -> local file (weights per seed)
    retry_of: Optional[int] = None  # the trial (whose worker died) this one retries
    rungs: dict[str, float] = field(default_factory=dict)  # epoch -> best val Dice so far (first seed)
    pruned: Optional[dict[str, Any]] = None  # stopped early: epoch, pruner, reason (bench.search.pruners)
    sampler_seed: Optional[int] = None  # the seed of the sampler that drew this trial (per process)
    started: Optional[datetime] = None
    finished: Optional[datetime] = None

    _FROM_OPTUNA = ("number", "state", "sample", "retry_of", "started", "finished")

    def __post_init__(self) -> None:
        self.seeds = [run if isinstance(run, SeedRun) else SeedRun.from_dict(run) for run in self.seeds]

    def user_attrs(self) -> dict[str, Any]:
        """The fields Optuna does not hold itself, as JSON-plain user attributes."""
        attrs = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in self._FROM_OPTUNA}
        attrs["seeds"] = [run.to_dict() for run in self.seeds]
        return attrs

    @classmethod
    def from_trial(cls, trial: Any) -> "TrialRecord":
        """The record of an Optuna ``FrozenTrial`` (or any object with its attributes)."""
        stored = {f.name for f in fields(cls)} - set(cls._FROM_OPTUNA)
        attrs = {k: v for k, v in trial.user_attrs.items() if k in stored}
        record = cls(trial.number, trial.state.name, dict(trial.params),
                     retry_of=trial.system_attrs.get("failed_trial", trial.user_attrs.get("retry_of")),
                     started=trial.datetime_start,
                     finished=trial.datetime_complete, **attrs)
        if record.state == FAIL and not record.fail_reason:
            record.fail_reason = DIED
        return record

    @property
    def label(self) -> str:
        """A short design name from the sample: ``cmrf N=8 x1.0``, ``repvgg x0.25``."""
        return design_label(self.sample) or f"trial {self.number}"

    @property
    def feasible(self) -> bool:
        """Every constraint satisfied (a trial not yet measured counts as feasible)."""
        return all(v <= 0 for v in self.violations.values())

    @property
    def status(self) -> str:
        """One word for people: running, waiting, trained, pruned, duplicate, not trained,
        skipped, failed."""
        if self.state in (RUNNING, WAITING):
            return self.state.lower()
        if self.state == FAIL:
            return "failed"
        if self.duplicate_of is not None:
            return "duplicate"
        if self.state == PRUNED:
            return "pruned" if self.pruned else "not trained" if not self.feasible else "skipped"
        return "trained"

    @property
    def counted(self) -> bool:
        """One distinct network evaluated: trained here, or stopped early by the pruner. Repeats
        of a known network, designs breaking a constraint, skipped and failed trials do not
        count towards a sweep's ``trials``."""
        return counts(self.state, self.duplicate_of, self.pruned)

    def value(self, name: str) -> Optional[float]:
        """The trial's value of objective ``name``, or None where it has none (an untrained
        design has no accuracy, never a 0)."""
        return self.values.get(name)

    def estimate(self, name: str) -> Optional["Estimate"]:
        """Mean, std and 95 % interval over the seeds of a metric or after-training objective."""
        from ..core.stats import Estimate

        return Estimate.from_dict(self.estimates[name]) if name in self.estimates else None


@dataclass
class SweepResult:
    """A sweep's records with its front (trial numbers, from :func:`bench.search.pareto.front_records`);
    when the study has a timed objective, the front timed again interleaved with the stock
    network (``front_latency``: reference, reference_ms, protocol, trials -> figures); and the
    paired evidence (:mod:`bench.results.evidence`): each front member against the stock network, when
    the study trained it, and the front members against each other; and each trained design's
    probability of being on the front (:mod:`bench.results.membership`). Cross-validated, the front
    and the stock network on every fold (:mod:`bench.results.folds`)."""

    info: StudyInfo
    records: list[TrialRecord]
    front: list[int]
    front_latency: Optional[dict[str, Any]] = None
    status: str = "finished"  # finished, interrupted or failed
    seconds: Optional[float] = None
    report_paths: list[str] = field(default_factory=list)
    stock: Optional[int] = None  # the trial that trained the space's stock network, if any
    versus_stock: dict[int, "PairedComparison"] = field(default_factory=dict)  # front member -> test
    front_pairs: list["PairedComparison"] = field(default_factory=list)  # front members, pairwise
    hypervolume: Optional[float] = None  # of the front, see HYPERVOLUME
    front_probability: dict[int, float] = field(default_factory=dict)  # trial -> P(on the front), bench.results.membership
    links: dict[str, str] = field(default_factory=dict)  # set by listeners, e.g. mlflow_runs_url
    exhausted: Optional[str] = None  # why the sweep stopped short of its trials (the space holds no more)
    weights: dict[int, dict[str, Any]] = field(default_factory=dict)  # trial -> what became of its weights (bench.run.weights)
    all_folds: dict[int, Any] = field(default_factory=dict)  # cross-validated: front and stock on every fold (bench.results.folds.FoldFigures)
    all_folds_versus_stock: dict[int, "PairedComparison"] = field(default_factory=dict)  # over every fold's images

    HYPERVOLUME = ("objectives min-max normalised over the trained designs (0 best, 1 worst), "
                   "reference point 1.1 in each")

    def record(self, number: int) -> TrialRecord:
        return next(r for r in self.records if r.number == number)

    @property
    def front_records(self) -> list[TrialRecord]:
        return [self.record(n) for n in self.front]

    def count(self, status: str) -> int:
        return sum(1 for r in self.records if r.status == status)

    def tally(self) -> str:
        """What the trials became, for people: ``6 networks trained, 2 pruned; also 5 not
        trained (a constraint), 1 repeat of a known network``."""
        counted = [f"{self.count('trained')} networks trained"]
        if self.count("pruned"):
            counted.append(f"{self.count('pruned')} pruned")
        other = [f"{n} {words}" for n, words in (
            (self.count("not trained"), "not trained (a constraint)"),
            (self.count("duplicate"), "repeats of a known network"), (self.count("failed"), "failed"),
            (self.count("skipped"), "skipped")) if n]
        return ", ".join(counted) + ("; also " + ", ".join(other) if other else "")
