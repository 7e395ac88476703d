"""Training and evaluation of one network on in-memory data. No files, no printing: progress is
reported through an optional callback so the CLI (rich) and sweeps (quiet) can share it."""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from fvcore.nn.precise_bn import update_bn_stats
from torch import nn

from ..data.dataset import SegmentationData
from ..data.patches import random_patches
from ..data.transforms import augment
from ..core.device import autocast_dtype, pinned
from ..core.errors import BenchError
from ..core.files import atomic
from .inference import predict
from ..core.interrupts import checkpoint as checkpoint_interrupts
from .losses import SegmentationLoss, inverse_frequency_weights
from .metrics import SegmentationMetrics, segmentation_metrics
from .recipe import Recipe


class TrainingDiverged(BenchError):
    """The loss became NaN or infinite."""


@dataclass
class TrainResult:
    """Per-epoch history, the epoch whose weights were kept (best validation foreground Dice) with
    its foreground and all-class Dice, and the wall time. The model passed to :func:`train_model`
    holds those weights afterwards."""

    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_val_dice: float = -math.inf  # foreground classes
    best_val_dice_all: float = math.nan  # every class, background included, at that epoch
    seconds: float = 0.0


Progress = Callable[[str, int, int, dict], None]  # (event, done, total, values)


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    if recipe.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                           weight_decay=recipe.weight_decay)


def make_schedule(optimizer: torch.optim.Optimizer, recipe: Recipe) -> torch.optim.lr_scheduler.LRScheduler:
    if recipe.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(1, recipe.epochs), recipe.min_lr)
    if recipe.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, 1, recipe.step_gamma)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


def metric_classes(model_classes: int) -> int:
    """Classes to score: a single-output (sigmoid) network still separates two classes."""
    return max(2, model_classes)


def validation_dice(model: nn.Module, data: SegmentationData, classes: int) -> tuple[float, float]:
    """Per-image mean Dice over the foreground classes (the model-selection figure, as nnU-Net
    and the seed papers select: on a binary set the background's ~0.96 would dilute every
    difference), and over all classes; one prediction pass, no distances."""
    pred = predict(model, data)
    summary = segmentation_metrics(pred, data.scoring_labels(), classes, distances=False).summary()
    return summary["dice_mean_fg"], summary["dice_mean"]


def evaluate(model: nn.Module, data: SegmentationData, model_classes: int) -> SegmentationMetrics:
    """Every metric of ``model`` on ``data`` (see :mod:`bench.training.metrics`), at the resolution the
    data's protocol scores at."""
    return segmentation_metrics(predict(model, data), data.scoring_labels(), metric_classes(model_classes))


def steps_per_epoch(train: SegmentationData, recipe: Recipe) -> int:
    """Optimisation steps in one epoch: ``recipe.iterations`` where set; else one pass over the
    training images (a last batch of one sample dropped: BatchNorm cannot train on it), and in
    patch mode at least enough steps for the patches to cover the training images' area (at the
    working scale) once."""
    if recipe.iterations is not None:
        return recipe.iterations
    n = len(train.stems)
    batches = math.ceil(n / recipe.batch)
    if n % recipe.batch == 1 and batches > 1:
        batches -= 1
    if train.protocol.patch is None:
        return batches
    area = sum(int(label.numel()) for label in train.labels)
    return max(batches, math.ceil(area / train.protocol.patch ** 2 / recipe.batch))


def training_batch(data: SegmentationData, rows: Sequence[int],
                   g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Float images (B, C, S, S) and labels (B, S, S) of samples ``rows``: whole (resize mode)
    or one random patch each (patch mode, drawing from ``g``)."""
    protocol = data.protocol
    if protocol.patch is None:
        return data.batch(rows)
    return random_patches(data, rows, protocol.patch, protocol.oversample, g)


class TrainingStep:
    """One optimisation step of ``model`` by a recipe's speed options, on ``device``: batches
    copied there (pinned and non-blocking on CUDA) in the recipe's memory format, the forward
    pass under autocast at its precision (through ``torch.compile`` if asked), the loss in fp32,
    and the update through a gradient scaler (active for fp16 only). ``model`` is moved to
    ``device`` and memory format here; ``bench.training.loop`` and the training-speed benchmark share
    this, so the benchmark times what training does."""

    def __init__(self, model: nn.Module, loss_fn: nn.Module, optimizer: torch.optim.Optimizer, recipe: Recipe,
                 device: torch.device) -> None:
        self.device, self.loss_fn, self.optimizer = device, loss_fn.to(device), optimizer
        self.memory_format = torch.channels_last if recipe.channels_last else torch.contiguous_format
        model.to(device=device, memory_format=self.memory_format)
        self.network = torch.compile(model) if recipe.compile else model
        self.cast = autocast_dtype(recipe.precision)
        self.scaler = torch.amp.GradScaler(device.type, enabled=recipe.precision == "fp16")

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The loss of images ``x`` (B, C, H, W) against labels ``y`` (B, H, W), both on the CPU."""
        x = pinned(x, self.device).contiguous(memory_format=self.memory_format)
        with torch.autocast(self.device.type, dtype=self.cast or torch.float32, enabled=self.cast is not None):
            logits = self.network(x)
        return self.loss_fn(logits.float(), pinned(y, self.device))

    def update(self, loss: torch.Tensor) -> None:
        """Backward pass and optimiser step from ``loss``."""
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = self.loss(x, y)
        self.update(loss)
        return loss


def recompute_bn_statistics(model: nn.Module, data: SegmentationData, batch: int) -> None:
    """Exact BatchNorm population statistics of ``model`` over ``data``'s training inputs
    (fvcore PreciseBN): every whole image, or one fixed-seed patch of each, on the model's device."""
    g = torch.Generator().manual_seed(0)
    device = next(model.parameters()).device
    batches = [training_batch(data, range(i, min(i + batch, len(data.stems))), g)[0].to(device)
               for i in range(0, len(data.stems), batch)]
    model.train()
    with torch.no_grad():
        update_bn_stats(model, batches, num_iters=len(batches))
    model.eval()


def train_model(model: nn.Module, train: SegmentationData, val: SegmentationData, recipe: Recipe,
                model_classes: int, progress: Optional[Progress] = None,
                checkpoint: Optional[Path] = None, device: torch.device = torch.device("cpu")) -> TrainResult:
    """Train ``model`` by ``recipe`` on ``device`` (where ``model`` is moved); keep the weights
    of the best validation mean Dice.

    The recipe's speed options apply: autocast at its precision (fp16 with a gradient scaler),
    channels_last memory format, and ``torch.compile`` of the network for the training steps
    (validation runs the same weights uncompiled). Batches are drawn on the CPU (the data is in
    memory) and copied to a GPU from pinned memory without blocking.

    Deterministic on CPU: the same seed, data and thread count give the same weights. With
    ``checkpoint``, the state after every epoch (weights, optimiser, schedule, both random
    generators, history, best weights) is written there atomically, and a run that finds it
    (same recipe, data and network) goes on after its last completed epoch, to the same final
    weights as a run never stopped; the history marks the epoch it resumed after. The file is
    removed when training ends.

    Raises:
        TrainingDiverged: the loss became NaN or infinite.
    """
    torch.manual_seed(recipe.seed)
    g = torch.Generator().manual_seed(recipe.seed)
    classes = metric_classes(model_classes)
    weights = inverse_frequency_weights(train.labels, classes) if recipe.loss == "weighted_ce" else None
    model.to(device)  # before the optimiser is made: its state lives beside the weights
    optimizer = make_optimizer(model, recipe)
    step = TrainingStep(model, SegmentationLoss(recipe.loss, classes, weights), optimizer, recipe, device)
    schedule = make_schedule(optimizer, recipe)
    n, batches = len(train.stems), steps_per_epoch(train, recipe)
    result, best_state, started = TrainResult(), None, time.perf_counter()
    identity = {"format": 2,  # 2: histories hold foreground val_dice and val_dice_all
                "recipe": recipe.to_dict(), "train": train.stems, "val": val.stems,
                "protocol": train.protocol.to_dict(),
                "shapes": {k: list(v.shape) for k, v in model.state_dict().items()}}
    first, resumed = 1, None
    if checkpoint is not None and checkpoint.exists():
        saved = _load_epoch_state(checkpoint, identity)
        if saved is not None:
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            if "scaler" in saved:
                step.scaler.load_state_dict(saved["scaler"])
            schedule.load_state_dict(saved["schedule"])
            restore_rng_states(saved, device)
            g.set_state(saved["generator"])
            result.history, best_state = saved["history"], saved["best_state"]
            result.best_epoch, result.best_val_dice = saved["best_epoch"], saved["best_val_dice"]
            result.best_val_dice_all = saved["best_val_dice_all"]
            first = resumed = saved["epoch"] + 1
            for record in result.history if progress else ():  # told again: a judge sees the whole history
                progress("epoch", record["epoch"], recipe.epochs, record)
    for epoch in range(first, recipe.epochs + 1):
        model.train()
        # one shuffled pass, as ever; more, end to end, where the epoch holds more steps than a pass
        passes = 1 if batches <= math.ceil(n / recipe.batch) else math.ceil(batches * recipe.batch / n)
        order = torch.cat([torch.randperm(n, generator=g) for _ in range(passes)])
        total, epoch_started = 0.0, time.perf_counter()
        for b in range(batches):
            checkpoint_interrupts()  # a Ctrl-C whose KeyboardInterrupt a finaliser swallowed stops here
            rows = order[b * recipe.batch:(b + 1) * recipe.batch]
            x, y = training_batch(train, rows.tolist(), g)
            if recipe.augment:
                x, y = augment(x, y, g)
            loss = step.loss(x, y)
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"the loss became {loss.item()} at epoch {epoch}, batch {b + 1}: lower the "
                    f"learning rate (now {optimizer.param_groups[0]['lr']:.3g}).")
            step.update(loss)
            total += loss.item()
            if progress:
                progress("batch", b + 1, batches, {"loss": loss.item()})
        lr = optimizer.param_groups[0]["lr"]
        schedule.step()
        if recipe.precise_bn:
            recompute_bn_statistics(model, train, recipe.batch)
        trained = time.perf_counter()
        val_dice, val_dice_all = validation_dice(model, val, classes)
        validated = time.perf_counter()
        # the epoch's own training and validation times apart: a tabulated benchmark replays them
        record = {"epoch": epoch, "train_loss": total / batches, "val_dice": val_dice, "val_dice_all": val_dice_all,
                  "lr": lr, "steps": batches, "seconds": validated - started, "train_seconds": trained - epoch_started,
                  "val_seconds": validated - trained}
        if epoch == resumed:
            record["resumed_after_epoch"] = epoch - 1
        result.history.append(record)
        if val_dice > result.best_val_dice:
            result.best_epoch, result.best_val_dice, result.best_val_dice_all = epoch, val_dice, val_dice_all
            best_state = copy.deepcopy(model.state_dict())
        if checkpoint is not None:
            with atomic(checkpoint) as tmp:
                torch.save({**identity, "epoch": epoch, "model": model.state_dict(),
                            "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                            "scaler": step.scaler.state_dict(),
                            **rng_states(device), "generator": g.get_state(), "history": result.history,
                            "best_state": best_state, "best_epoch": result.best_epoch,
                            "best_val_dice": result.best_val_dice,
                            "best_val_dice_all": result.best_val_dice_all}, tmp)
        if progress:
            progress("epoch", epoch, recipe.epochs, record)
    if best_state is not None:
        model.load_state_dict(best_state)
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    result.seconds = time.perf_counter() - started
    return result


def rng_states(device: torch.device) -> dict[str, Any]:
    """The random states a resumed run needs to draw what the uninterrupted one would: the CPU's,
    and on CUDA the device's (dropout masks on the GPU come from it)."""
    states: dict[str, Any] = {"rng": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda_rng"] = torch.cuda.get_rng_state(device)
    return states


def restore_rng_states(saved: dict[str, Any], device: torch.device) -> None:
    """Put back what :func:`rng_states` saved (a CUDA state only on the CUDA device it came from)."""
    torch.set_rng_state(saved["rng"])
    if device.type == "cuda" and saved.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(saved["cuda_rng"], device)


def _load_epoch_state(path: Path, identity: dict) -> Optional[dict]:
    """The epoch state saved at ``path`` if it belongs to this training run (same recipe, data
    and network shapes); None otherwise (a stale or foreign file is ignored, not trusted)."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # truncated or not ours: start over rather than fail the trial
        return None
    same = isinstance(saved, dict) and all(saved.get(k) == v for k, v in identity.items())
    return saved if same else None
