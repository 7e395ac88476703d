"""Latency predicted from measured blocks (the idea of nn-Meter and HW-NAS-Bench's tables): every
block a space can place is timed once per machine, alone, on the input it meets in the network;
a network's latency is predicted as ``scale x (sum of its blocks) + constant``, the scale per
architecture family and input size, the constant also per encoder width (what the blocks do not
hold: skip fusion, the network's own calls, and how well a network of that width keeps its data
in cache), both fitted on whole networks timed beside the blocks. A prediction needs only the
wiring plan: nothing is built, nothing is timed.

Blocks and calibration networks are timed in one session, interleaved (the protocol of
:mod:`bench.arch.latency`), because this kind of machine's speed drifts by tens of percent
between sessions minutes apart, and a table timed in pieces would put its blocks on different
scales (``reports/benchmarks/latency_predictor.md``).

A block is known by what decides its cost (:func:`block_key`): its type and settings, channels,
stride and the network's input size. The table is stored with the machine it describes (CPU
model, cores, torch version, threads) and refused on another machine.
"""
from __future__ import annotations

import copy
import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np
import torch
from scipy import optimize
from torch import nn

from ..core.cache import cache_dir, key_of
from ..core.errors import BenchError
from ..core.files import write_text
from .assemble import Placement, Plan, build_plan, plan_architecture
from .config import Architecture
from .latency import Protocol, cpu_model, environment, summarize, time_interleaved
from .network import UNet
from .reparameterize import deploy

BLOCK_PROTOCOL = Protocol(warmup=3, min_repeats=10, max_seconds=0.3)  # per block or network, all interleaved
VERSION = 2


def machine() -> dict[str, Any]:
    """What a latency figure depends on besides the network: CPU, cores, torch, threads."""
    env = environment()
    return {"cpu": cpu_model(), "cpu_count": env["cpu_count"], "torch": env["torch"], "threads": BLOCK_PROTOCOL.threads}


def default_path() -> Path:
    """Where this machine's table lives: the cache folder, under a key of :func:`machine`."""
    return cache_dir() / "latency" / f"{key_of(machine())[:16]}.json"


def block_key(placement: Placement, size: int) -> str:
    """What decides a block's cost, as canonical text: type, settings, channels, stride, and the
    network's input size (with the stride, the block's feature-map size)."""
    return json.dumps({"block": placement.entry.name, "params": placement.params, "in": placement.in_channels,
                       "out": placement.out_channels, "stride": placement.stride,
                       "pyramid": placement.pyramid_channels, "size": size}, sort_keys=True, default=str)


def family_key(arch: Architecture, size: int) -> str:
    """The scale's key: the architecture family (its file) and the input size."""
    family = Path(arch.source).stem if arch.source else arch.name
    return f"{family}@{size}"


def constant_key(arch: Architecture, size: int, plan: Optional[Plan] = None) -> str:
    """The constant's key: the family and input size, and the output widths of the encoder stages
    (``tinyunet@48/8-16-32-64``)."""
    plan = plan or plan_architecture(arch)
    widths = "-".join(str(stage[-1].out_channels) for stage in plan.encoder if stage)
    return f"{family_key(arch, size)}/{widths}"


def placed_modules(model: UNet, plan: Plan) -> list[tuple[Placement, nn.Module]]:
    """Each placement of ``plan`` with the module :func:`bench.arch.assemble.build_plan` made of it
    in ``model`` (deploying a model keeps the modules where they are)."""
    pairs = [(plan.stem[0], model.stem)] if plan.stem else []
    for placements, stage in zip(plan.encoder, model.encoder):
        pairs += list(zip(placements, stage))
    pairs += list(zip(plan.downs, model.downs)) + [(plan.bottleneck, model.bottleneck)]
    pairs += list(zip(plan.skip_blocks, model.skips.blocks))
    if plan.ups:
        pairs += list(zip(plan.ups, model.decoder.ups))
        for placements, stage in zip(plan.decoder, model.decoder.stages):
            pairs += list(zip(placements, stage))
    else:
        pairs.append((plan.decoder[0][0], model.decoder))
    return pairs + [(plan.head, model.head)]


@dataclass(frozen=True)
class Prediction:
    """A network's predicted latency: ``ms`` = ``scale`` x its ``blocks`` + ``constant``."""

    ms: float
    blocks: float
    constant: float
    scale: float = 1.0

    def to_dict(self, table: Optional[Path] = None) -> dict[str, Any]:
        """Shaped like a measured :meth:`bench.arch.latency.Latency.to_dict` record (``median_ms``,
        ``protocol``, ``stopped``, ``n``), its protocol saying ``figure: predicted``."""
        return {"median_ms": self.ms, "stopped": "predicted", "n": 0,
                "protocol": {"figure": "predicted", "blocks_ms": self.blocks, "scale": self.scale,
                             "constant_ms": self.constant, "table": str(table) if table else None, **machine()}}


@dataclass
class LatencyTable:
    """Measured block latencies (ms, deploy form, batch 1) of one machine, and the scales and
    constants fitted on whole networks (``calibration``: constant key -> networks)."""

    machine: dict[str, Any] = field(default_factory=machine)
    blocks: dict[str, float] = field(default_factory=dict)
    scales: dict[str, float] = field(default_factory=dict)
    constants: dict[str, float] = field(default_factory=dict)
    calibration: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    protocol: dict[str, Any] = field(default_factory=lambda: asdict(BLOCK_PROTOCOL))
    version: int = VERSION

    # ----------------------------------------------------------------------------- prediction

    def missing(self, plan: Plan, size: int) -> list[Placement]:
        """The placements of ``plan`` whose block is not in the table (each once)."""
        seen: dict[str, Placement] = {}
        for p in plan.placements():
            key = block_key(p, size)
            if key not in self.blocks:
                seen.setdefault(key, p)
        return list(seen.values())

    def predict(self, arch: Architecture, size: int, plan: Optional[Plan] = None) -> Prediction:
        """The predicted latency of ``arch`` at ``size`` px, from its plan alone.

        Raises:
            BenchError: a block, the scale or the constant is not in the table (saying how to add them).
        """
        plan = plan or plan_architecture(arch)
        missing = self.missing(plan, size)
        key = constant_key(arch, size, plan)
        constant, scale = self.constants.get(key), self.scales.get(family_key(arch, size))
        if missing or constant is None or scale is None:
            what = (f"{len(missing)} of its blocks ({', '.join(sorted({p.where for p in missing})[:3])}...)"
                    if missing else f"the constant of {key}")
            raise BenchError(f"{arch.name}: {what} not in the latency table of this machine; run "
                             f"`bench latency-table build --space SPACE --size {size}` with a space that "
                             "places them (or measure latency: --latency measured).")
        blocks = sum(self.blocks[block_key(p, size)] for p in plan.placements())
        return Prediction(scale * blocks + constant, blocks, constant, scale)

    # ----------------------------------------------------------------------------- measurement

    def add(self, archs: Iterable[Architecture], size: int, calibration: Sequence[Architecture] = (),
            progress: Callable[[int, int, int], None] = lambda done, total, added: None) -> int:
        """Time, in one interleaved session, the blocks of ``archs`` (and of ``calibration``) that
        the table lacks, each alone on the input it meets in its network, and the ``calibration``
        networks whole (deploy form); then fit the scales and constants of their families.
        ``progress(done, total, blocks)`` follows the preparation. Returns how many blocks were added."""
        archs = [*archs, *calibration]
        runs: dict[str, Callable[[], Any]] = {}
        for i, arch in enumerate(archs):
            runs.update(self._block_runs(arch, size, set(runs)))
            progress(i + 1, len(archs), len(runs))
        added = set(runs)
        networks: dict[str, tuple[Architecture, Plan]] = {}
        for arch in calibration:
            plan = plan_architecture(arch)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                model = deploy(build_plan(plan)).eval()
            x = torch.randn(1, int(arch.config["in_channels"]), size, size, generator=torch.Generator().manual_seed(0))
            label = f"network {arch.hash}"
            networks[label] = (arch, plan)
            runs[label] = _call(model, (x,), {})
        if not runs:
            return 0
        timed = _time(runs, BLOCK_PROTOCOL)
        self.blocks.update({key: timed[key] for key in added})
        for label, (arch, plan) in networks.items():
            kept = self.calibration.setdefault(constant_key(arch, size, plan), [])
            kept[:] = [c for c in kept if c.get("design") != arch.hash] + [{
                "design": arch.hash, "measured_ms": timed[label],
                "blocks_ms": sum(self.blocks[block_key(p, size)] for p in plan.placements())}]
        for family in {family_key(arch, size) for arch, _ in networks.values()}:
            self._fit(family)
        return len(added)

    def _block_runs(self, arch: Architecture, size: int, taken: set[str]) -> dict[str, Callable[[], Any]]:
        """A run per block of ``arch`` that neither the table nor ``taken`` holds."""
        plan = plan_architecture(arch)
        missing = {block_key(p, size) for p in self.missing(plan, size)} - taken
        if not missing:
            return {}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = deploy(build_plan(plan)).eval()
        inputs = _block_inputs(model, plan, size, int(arch.config["in_channels"]))
        runs: dict[str, Callable[[], Any]] = {}
        for p, module in placed_modules(model, plan):
            key = block_key(p, size)
            if key in missing and key not in runs:
                args, kwargs = inputs[id(module)]
                runs[key] = _call(module, args, kwargs)
        return runs

    def _fit(self, family: str) -> None:
        """The scale of ``family`` and the constant of each of its widths that make
        ``scale x blocks + constant`` closest to the measured networks in relative error (least
        squares, the scale not negative). With no more networks than constants, blocks count at
        face value (scale 1) and each constant is the median of measured minus blocks."""
        keys = sorted(k for k in self.calibration if k.rsplit("/", 1)[0] == family)
        rows = [(j, c) for j, k in enumerate(keys) for c in self.calibration[k]]
        if len(rows) <= len(keys):
            self.scales[family] = 1.0
            for k in keys:
                self.constants[k] = statistics.median(c["measured_ms"] - c["blocks_ms"] for c in self.calibration[k])
            return
        a = np.zeros((len(rows), 1 + len(keys)))
        y = np.array([c["measured_ms"] for _, c in rows])
        for i, (j, c) in enumerate(rows):
            a[i, 0], a[i, 1 + j] = c["blocks_ms"], 1.0
        solved = optimize.lsq_linear(a / y[:, None], np.ones(len(rows)),
                                     bounds=([0.0] + [-np.inf] * len(keys), np.inf)).x
        self.scales[family] = float(solved[0])
        self.constants.update({k: float(c) for k, c in zip(keys, solved[1:])})

    # ----------------------------------------------------------------------------- storage

    def save(self, path: Path) -> None:
        write_text(Path(path), json.dumps(asdict(self), indent=1, sort_keys=True))

    @classmethod
    def load(cls, path: Path, check_machine: bool = True) -> "LatencyTable":
        """The table at ``path``.

        Raises:
            BenchError: no table there, a damaged one, or (``check_machine``) one measured on
                another machine description, naming what differs.
        """
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
            table = cls(**raw)
        except FileNotFoundError:
            raise BenchError(f"no latency table at {path}; build one for this machine with "
                             "`bench latency-table build --space SPACE`.") from None
        except (OSError, ValueError, TypeError) as exc:
            raise BenchError(f"latency table {path} cannot be read ({exc}); build it again with "
                             "`bench latency-table build --space SPACE`.") from None
        if table.version != VERSION:
            raise BenchError(f"latency table {path} is of version {table.version}, this bench reads version {VERSION}; "
                             "build it again with `bench latency-table build --space SPACE`.")
        if check_machine and table.machine != machine():
            differs = ", ".join(f"{k} {table.machine.get(k)!r} there, {v!r} here" for k, v in machine().items()
                                if table.machine.get(k) != v)
            raise BenchError(f"latency table {path} was measured on another machine ({differs}); its figures do "
                             "not predict this one. Build a table here with `bench latency-table build --space SPACE`.")
        return table


def _block_inputs(model: UNet, plan: Plan, size: int, in_channels: int) -> dict[int, tuple[tuple, dict]]:
    """The inputs each placed module receives in one forward pass of ``model`` (by module id)."""
    seen: dict[int, tuple[tuple, dict]] = {}

    def keep(module: nn.Module, args: tuple, kwargs: dict) -> None:
        seen.setdefault(id(module), (_detached(args), _detached(kwargs)))

    handles = [m.register_forward_pre_hook(keep, with_kwargs=True) for _, m in placed_modules(model, plan)]
    try:
        x = torch.randn(1, in_channels, size, size, generator=torch.Generator().manual_seed(0))
        with torch.inference_mode():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return seen


def _detached(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, (list, tuple)):
        return type(value)(_detached(v) for v in value)
    if isinstance(value, dict):
        return {k: _detached(v) for k, v in value.items()}
    return value


def _call(module: nn.Module, args: tuple, kwargs: dict) -> Callable[[], Any]:
    module = copy.deepcopy(module)

    def run() -> Any:
        with torch.inference_mode():
            return module(*args, **kwargs)
    return run


def _time(runs: dict[str, Callable[[], Any]], protocol: Protocol) -> dict[str, float]:
    """Median ms of each run, timed interleaved under ``protocol`` (its thread count)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(protocol.threads)
    try:
        samples, _ = time_interleaved(runs, protocol)
    finally:
        torch.set_num_threads(previous)
    return {key: summarize(s).median for key, s in samples.items()}
