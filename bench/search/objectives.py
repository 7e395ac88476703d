"""What a sweep can optimise or constrain: one registry, in the style of the block registry.

Each objective states its default direction, when it is known (before training: measured on
the built network; after training: scored on the validation split), its unit and display label,
and how it is computed. An untrained design (one that violates a constraint) has the values
known before training that were computed (only the planned ones, such as parameters, when a
constraint on them is broken: such a design is never built) and **none** of those known after:
never a fake 0.

Adding an objective is one :meth:`ObjectiveRegistry.register` call::

    OBJECTIVES.register(Objective(
        "deploy_params", MINIMIZE, BEFORE_TRAINING, "Deploy parameters", "M", 1e-6,
        lambda design: design.cost.deploy.params, "parameters of the fused (deploy) form"))

A before-training objective computes from a :class:`bench.search.design.Design` (the built network with
its cost, memory and latency measured on demand); an after-training one from the scores of one
training run (:meth:`bench.training.seeds.SeedRun.scores`: ``val_dice``, ``val_dice_all``, the
test figures, and every validation metric as ``val_<name>``, e.g. ``val_hd95_mean_fg``). One
entry reaches sweeps (objective, tables, MLflow) and, with ``column=True``, ``bench compare``::

    OBJECTIVES.register(Objective(
        "val_hd95", MINIMIZE, AFTER_TRAINING, "Validation HD95", "px", 1.0,
        lambda scores: scores["val_hd95_mean_fg"], "HD95 of the foreground on the validation split",
        column=True))
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional

from ..core.errors import ConfigError, did_you_mean

if TYPE_CHECKING:  # reports read objectives; building networks stays out of their imports
    from ..arch.assemble import Plan

MINIMIZE, MAXIMIZE = "minimize", "maximize"
BEFORE_TRAINING, AFTER_TRAINING = "before training", "after training"


@dataclass(frozen=True)
class Objective:
    """One quantity a study can optimise (and, if known before training, constrain).

    Args:
        name: the key in search spaces, records, tables and MLflow.
        direction: default direction, ``minimize`` or ``maximize``.
        known: ``BEFORE_TRAINING`` or ``AFTER_TRAINING``.
        label: display name, e.g. ``Parameters``.
        unit: display unit after ``scale``, e.g. ``M``; "" for none.
        scale: display value = value x scale (parameters in millions: 1e-6).
        compute: ``Design -> float`` (before training) or ``metrics -> float`` (after).
        summary: one line for ``bench list objectives``.
        costly: measured only in studies that name it (timing takes seconds; counting does not).
        timed: a wall-clock figure; the sweep's front is timed again, interleaved, at the end.
        bounds: the range a value can take, if bounded (plots clip intervals to it).
        column: (known after training) also a column of ``bench compare``'s table and a metric of
            its MLflow runs, mean and spread over the seeds.
        planned: (known before training) ``Plan -> float | None``, the same value computed from the
            wiring plan without building the network (parameters, on the ``meta`` device): a
            constraint on it is decided in milliseconds, and a design that breaks it is never built.
    """

    name: str
    direction: str
    known: str
    label: str
    unit: str
    scale: float
    compute: Callable[[Any], float]
    summary: str
    costly: bool = False
    timed: bool = False
    bounds: Optional[tuple[float, float]] = None
    column: bool = False
    planned: Optional[Callable[[Any], float]] = None

    def __post_init__(self) -> None:
        if self.direction not in (MINIMIZE, MAXIMIZE):
            raise ValueError(f"objective {self.name}: direction must be {MINIMIZE} or {MAXIMIZE}")
        if self.known not in (BEFORE_TRAINING, AFTER_TRAINING):
            raise ValueError(f"objective {self.name}: known must be {BEFORE_TRAINING!r} or {AFTER_TRAINING!r}")

    @property
    def axis_label(self) -> str:
        """``Parameters (M)``: label with unit, for axes and table headers."""
        return f"{self.label} ({self.unit})" if self.unit else self.label

    @property
    def before_training(self) -> bool:
        return self.known == BEFORE_TRAINING

    def show(self, value: float) -> str:
        """A value in the display unit: ``1.49 M``, ``12.3 ms, 1 thread``."""
        return f"{value * self.scale:.3g}" + (f" {self.unit}" if self.unit else "")

    def bounds_text(self, bound: dict[str, float]) -> str:
        """A constraint for people: ``params <= 1 M``."""
        parts = [f"{self.name} >= {self.show(bound['min'])}"] if "min" in bound else []
        return " and ".join(parts + ([f"{self.name} <= {self.show(bound['max'])}"] if "max" in bound else []))


class ObjectiveRegistry:
    """Objectives by name, in registration order."""

    def __init__(self) -> None:
        self._entries: dict[str, Objective] = {}

    def register(self, objective: Objective) -> Objective:
        if objective.name in self._entries:
            raise ValueError(f"objective {objective.name!r} is registered already")
        self._entries[objective.name] = objective
        return objective

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def get(self, name: str, where: str = "objectives", known: Optional[str] = None) -> Objective:
        """The objective ``name``; ``known`` restricts to those known before or after training.

        Raises:
            ConfigError: unknown name (or known at the wrong time), at config path ``where``.
        """
        choices = self.names(known)
        if name not in choices:
            what = "a quantity known before training" if known == BEFORE_TRAINING else "an objective bench measures"
            raise ConfigError(where, f"'{name}' is not {what}.",
                              hint=f"{did_you_mean(str(name), choices)} Known: {', '.join(choices)}. "
                              "`bench list objectives` describes them.".lstrip())
        return self._entries[name]

    def names(self, known: Optional[str] = None) -> list[str]:
        return [n for n, o in self._entries.items() if known is None or o.known == known]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Objective]:
        return iter(list(self._entries.values()))


OBJECTIVES = ObjectiveRegistry()


def planned_params(plan: Plan) -> Optional[float]:
    """Parameters of the network ``plan`` describes, counted on the ``meta`` device (no weights
    allocated), equal to the built network's (a test checks every shipped architecture); None
    when it cannot be built there (the real build then says why)."""
    from ..arch.assemble import meta_params

    params = meta_params(plan)
    return None if params is None else float(params)


OBJECTIVES.register(Objective(
    "val_dice", MAXIMIZE, AFTER_TRAINING, "Validation Dice", "", 1.0, lambda metrics: metrics["val_dice"],
    "mean Dice over the foreground classes on the validation split, at the best epoch (the epoch "
    "training keeps)", bounds=(0.0, 1.0)))
OBJECTIVES.register(Objective(
    "val_dice_all", MAXIMIZE, AFTER_TRAINING, "Validation Dice, all classes", "", 1.0,
    lambda metrics: metrics["val_dice_all"],
    "mean Dice over every class, background included, on the validation split at the epoch training keeps",
    bounds=(0.0, 1.0)))
OBJECTIVES.register(Objective(
    "params", MINIMIZE, BEFORE_TRAINING, "Parameters", "M", 1e-6, lambda design: design.cost.train.params,
    "trainable parameters of the training form", planned=planned_params))
OBJECTIVES.register(Objective(
    "macs", MINIMIZE, BEFORE_TRAINING, "MACs", "G", 1e-9, lambda design: design.cost.train.macs,
    "multiply-accumulates of one forward pass at the study's input size (training form)"))
OBJECTIVES.register(Objective(
    "flops", MINIMIZE, BEFORE_TRAINING, "FLOPs", "G", 1e-9, lambda design: design.cost.train.flops,
    "paper-FLOPs (2 x MACs) of one forward pass (training form)"))
OBJECTIVES.register(Objective(
    "peak_memory_mb", MINIMIZE, BEFORE_TRAINING, "Peak memory", "MiB", 1.0,
    lambda design: design.memory.total_bytes / 2**20,
    "counted peak memory of one forward pass of the deploy form: activations, parameters and input"))
OBJECTIVES.register(Objective(
    "latency_ms", MINIMIZE, BEFORE_TRAINING, "Latency", "ms, 1 thread", 1.0, lambda design: design.latency.median_ms,
    "median CPU latency of the deploy form, batch 1, 1 thread (bench.arch.latency protocol, 3 s cap)",
    costly=True, timed=True))
