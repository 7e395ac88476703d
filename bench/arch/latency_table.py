"""Latency predicted from measured blocks (the idea of nn-Meter and HW-NAS-Bench's tables): every
block a space can place is timed once per machine, alone, on the input it meets in the network,
under the interleaved protocol of :mod:`bench.arch.latency`; a network's latency is predicted as
the sum of its blocks plus a constant per architecture and input size (what the blocks do not
hold: skip fusion, the network's own calls), measured on whole networks of the space. A
prediction needs only the wiring plan: nothing is built, nothing is timed.

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

import torch
from torch import nn

from ..core.cache import cache_dir, key_of
from ..core.errors import BenchError
from ..core.files import write_text
from .assemble import Placement, Plan, build_plan, plan_architecture
from .config import Architecture
from .latency import Candidate, Protocol, cpu_model, environment, measure, summarize, time_interleaved
from .network import UNet
from .reparameterize import deploy

BLOCK_PROTOCOL = Protocol(warmup=3, min_repeats=10, max_seconds=0.3)  # per block, interleaved per design
NETWORK_PROTOCOL = Protocol(max_seconds=1.0)  # per calibration network, all interleaved
VERSION = 1


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


def constant_key(arch: Architecture, size: int) -> str:
    """The per-network constant's key: the architecture family (its file) and the input size."""
    family = Path(arch.source).stem if arch.source else arch.name
    return f"{family}@{size}"


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
    """A network's predicted latency: ``ms`` = the sum of its ``blocks`` + ``constant``."""

    ms: float
    blocks: float
    constant: float

    def to_dict(self, table: Optional[Path] = None) -> dict[str, Any]:
        """Shaped like a measured :meth:`bench.arch.latency.Latency.to_dict` record (``median_ms``,
        ``protocol``, ``stopped``, ``n``), its protocol saying ``figure: predicted``."""
        return {"median_ms": self.ms, "stopped": "predicted", "n": 0,
                "protocol": {"figure": "predicted", "blocks_ms": self.blocks, "constant_ms": self.constant,
                             "table": str(table) if table else None, **machine()}}


@dataclass
class LatencyTable:
    """Measured block latencies (ms, deploy form, batch 1) and per-network constants of one machine."""

    machine: dict[str, Any] = field(default_factory=machine)
    blocks: dict[str, float] = field(default_factory=dict)
    constants: dict[str, float] = field(default_factory=dict)
    calibration: dict[str, list[dict[str, float]]] = field(default_factory=dict)  # constant key -> networks
    protocol: dict[str, Any] = field(default_factory=lambda: {"blocks": asdict(BLOCK_PROTOCOL),
                                                              "networks": asdict(NETWORK_PROTOCOL)})
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
            BenchError: a block or the constant is not in the table (saying how to add them).
        """
        plan = plan or plan_architecture(arch)
        missing = self.missing(plan, size)
        constant = self.constants.get(constant_key(arch, size))
        if missing or constant is None:
            what = (f"{len(missing)} of its blocks ({', '.join(sorted({p.where for p in missing})[:3])}...)"
                    if missing else f"the constant of {constant_key(arch, size)}")
            raise BenchError(f"{arch.name}: {what} not in the latency table of this machine; run "
                             f"`bench latency-table build --space SPACE --size {size}` with a space that "
                             "places them (or measure latency: --latency measured).")
        blocks = sum(self.blocks[block_key(p, size)] for p in plan.placements())
        return Prediction(blocks + constant, blocks, constant)

    # ----------------------------------------------------------------------------- measurement

    def add_blocks(self, arch: Architecture, size: int, plan: Optional[Plan] = None) -> int:
        """Time the blocks of ``arch`` that the table lacks, alone and interleaved with one
        another, each on the input it meets in the network; returns how many were added."""
        plan = plan or plan_architecture(arch)
        missing = {block_key(p, size) for p in self.missing(plan, size)}
        if not missing:
            return 0
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
        for key, ms in _time(runs, BLOCK_PROTOCOL).items():
            self.blocks[key] = ms
        return len(runs)

    def calibrate(self, archs: Sequence[Architecture], size: int) -> float:
        """Time whole networks of one architecture family (deploy form, interleaved) and set the
        family's constant at ``size``: the median of measured minus summed blocks. Returns it."""
        keys = {constant_key(a, size) for a in archs}
        if len(keys) != 1:
            raise BenchError(f"calibrate one architecture family at a time, got {sorted(keys)}")
        candidates, sums = [], []
        for i, arch in enumerate(archs):
            plan = plan_architecture(arch)
            self.add_blocks(arch, size, plan)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                candidates.append(Candidate(f"network {i}", build_plan(plan)))
            sums.append(sum(self.blocks[block_key(p, size)] for p in plan.placements()))
        timed = measure(candidates, int(archs[0].config["in_channels"]), size, NETWORK_PROTOCOL)
        key = keys.pop()
        self.calibration[key] = [{"measured_ms": t.median_ms, "blocks_ms": s} for t, s in zip(timed, sums)]
        self.constants[key] = statistics.median(t.median_ms - s for t, s in zip(timed, sums))
        return self.constants[key]

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


def cover(archs: Iterable[Architecture], size: int, table: LatencyTable,
          progress: Callable[[int, int, int], None] = lambda done, total, added: None) -> int:
    """Add the blocks of every architecture in ``archs`` to ``table``; returns how many were added."""
    archs = list(archs)
    added = 0
    for i, arch in enumerate(archs):
        added += table.add_blocks(arch, size)
        progress(i + 1, len(archs), added)
    return added
