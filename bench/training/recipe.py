"""Training recipes: optimiser, schedule, loss, epochs, batch, augmentation, seed.

The seed papers' recipes are available by name (from REFERENCE.md; epochs as published, so
override them with --epochs on a CPU). ``default`` is a short recipe that trains on a CPU.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Callable, Literal, Optional

from ..core.errors import BenchError, did_you_mean


PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class Recipe:
    """How a network is trained.

    loss: ``ce_dice`` (softmax cross-entropy + soft Dice over the foreground classes),
    ``bce_dice`` (sigmoid BCE on one-hot targets + soft Dice) or ``weighted_ce`` (cross-entropy
    weighted by inverse class frequency of the training labels). A network with a single output
    channel is always trained with the sigmoid form.
    schedule: ``cosine`` (to ``min_lr`` over the epochs), ``step`` (x ``step_gamma`` every
    epoch) or ``none``; stepped once per epoch.
    precise_bn: recompute BatchNorm population statistics on the training set (no
    augmentation) before every evaluation (fvcore's PreciseBN). Running averages with a small
    momentum (TinyU-Net's BN uses 0.03) lag far behind the weights in short CPU runs: without
    this, a TinyU-Net trained 4 epochs on the synthetic set scores 0.47 validation Dice
    (all background) instead of 0.84.
    precision, channels_last, compile: training speed options. ``bf16``/``fp16`` run the forward
    pass under autocast (fp16 with a gradient scaler; bf16 works on CPUs too); ``channels_last``
    trains in NHWC memory format; ``compile`` trains through ``torch.compile``. fp32 eager (the
    default) keeps figures comparable with earlier runs.
    iterations: optimisation steps per epoch (nnU-Net's notion of an epoch). Unset: one pass
    over the training images; in patch mode at least as many steps as it takes for the patches
    to cover the training images' area once (:func:`bench.training.loop.steps_per_epoch`), so
    that an epoch of 20 large images trains as long as an epoch of 2,000 small ones.
    """

    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    schedule: Literal["cosine", "step", "none"] = "cosine"
    min_lr: float = 1e-5
    step_gamma: float = 0.95
    epochs: int = 20
    batch: int = 8
    loss: Literal["ce_dice", "bce_dice", "weighted_ce"] = "ce_dice"
    augment: bool = True
    precise_bn: bool = True
    seed: int = 0
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    channels_last: bool = False
    compile: bool = False
    iterations: Optional[int] = None

    def __post_init__(self) -> None:
        for name, ok, wanted in _CHECKS:
            value = getattr(self, name)
            if not ok(value):
                raise RecipeError(name, f"{value!r} is out of range: {wanted}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RecipeError(BenchError):
    """A recipe setting out of its range; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        self.field, self.message = field, message
        super().__init__(f"recipe {field}: {message}")


def _whole(low: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= 2**31 - 1


def _real(low: float, high: float, low_open: bool = False, high_open: bool = False) -> Callable[[Any], bool]:
    def ok(v: Any) -> bool:
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            return False
        return (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    return ok


_CHECKS = (
    ("optimizer", lambda v: v in ("adam", "adamw", "sgd"), "adam, adamw or sgd"),
    ("lr", _real(0, 10, low_open=True), "a number in (0, 10]"),
    ("weight_decay", _real(0, 1), "a number in [0, 1]"),
    ("momentum", _real(0, 1, high_open=True), "a number in [0, 1)"),
    ("schedule", lambda v: v in ("cosine", "step", "none"), "cosine, step or none"),
    ("min_lr", _real(0, 10), "a number in [0, 10]"),
    ("step_gamma", _real(0, 1, low_open=True), "a number in (0, 1]"),
    ("epochs", _whole(1), "a whole number of at least 1"),
    ("batch", _whole(1), "a whole number of at least 1"),
    ("loss", lambda v: v in ("ce_dice", "bce_dice", "weighted_ce"), "ce_dice, bce_dice or weighted_ce"),
    ("augment", lambda v: isinstance(v, bool), "true or false"),
    ("precise_bn", lambda v: isinstance(v, bool), "true or false"),
    ("seed", _whole(0), "a whole number of at least 0"),
    ("precision", lambda v: v in PRECISIONS, "fp32, bf16 or fp16"),
    ("channels_last", lambda v: isinstance(v, bool), "true or false"),
    ("compile", lambda v: isinstance(v, bool), "true or false"),
    ("iterations", lambda v: v is None or _whole(1)(v), "a whole number of at least 1, or unset"),
)


RECIPES: dict[str, Recipe] = {
    "default": Recipe(),
    # TinyU-Net: Adam 1e-4, cosine to 1e-6, CE + Dice, 300 epochs.
    "tinyunet": Recipe(optimizer="adam", lr=1e-4, min_lr=1e-6, schedule="cosine", epochs=300,
                       loss="ce_dice"),
    # AL-Net: Adam 5e-3, batch 4, x0.95 per epoch, 150 epochs, BCE + Dice.
    "alnet": Recipe(optimizer="adam", lr=5e-3, batch=4, schedule="step", step_gamma=0.95,
                    epochs=150, loss="bce_dice"),
    # LM-Net: AdamW 1e-3, weight decay 1e-4, cosine, batch 32, 200 epochs, weighted CE.
    "lmnet": Recipe(optimizer="adamw", lr=1e-3, weight_decay=1e-4, schedule="cosine", batch=32,
                    epochs=200, loss="weighted_ce"),
}


def get_recipe(name: str, **overrides: Any) -> Recipe:
    """The recipe ``name`` with ``overrides`` (None values ignored)."""
    if name not in RECIPES:
        raise BenchError(f"unknown recipe {name!r}. {did_you_mean(name, RECIPES)} Recipes: "
                         f"{', '.join(RECIPES)}.")
    known = {f.name for f in fields(Recipe)}
    return replace(RECIPES[name], **{k: v for k, v in overrides.items() if v is not None and k in known})
