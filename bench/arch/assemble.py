"""Resolved config -> wiring plan -> contract checks -> ``nn.Module``.

The plan says, for every block the network will hold, which config path it comes from, its input
and output channels and the stride it runs at. It is computed and checked before any module is
built, so that a bad swap fails with the config path at fault rather than deep inside a forward
pass.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import nn

from ..blocks import BLOCKS
from ..blocks.multiscale_skip import MultiScaleSkip
from ..blocks.registry import DOWN, UP, BlockEntry, ContractViolation
from .config import Architecture, get_path
from ..core.errors import BenchError, ConfigError
from ..core.limits import how_to_raise, limit
from .network import SkipPaths, UDecoder, UNet


@dataclass(frozen=True)
class Placement:
    """One block of the network: where its config lives, its channels and its stride."""

    path: str  # config path of its spec, e.g. "encoder.block"
    where: str  # human position, e.g. "encoder stage 2, block 1"
    entry: BlockEntry
    params: dict[str, Any]
    in_channels: int
    out_channels: int
    stride: int  # downsampling factor of the block's input relative to the network input
    pyramid_channels: Optional[list[int]] = None

    def check(self) -> None:
        try:
            self.entry.check(self.in_channels, self.out_channels, self.params, self.pyramid_channels)
        except ContractViolation as exc:
            path = f"{self.path}.{exc.param}" if exc.param else self.path
            raise ConfigError(
                path, f"{exc} (at {self.where}: {self.in_channels} -> {self.out_channels} channels)"
            ) from None

    def build(self) -> nn.Module:
        return self.entry.build(self.in_channels, self.out_channels, self.params, self.pyramid_channels)


@dataclass(frozen=True)
class Plan:
    """Every placement of a network, grouped the way :class:`UNet` takes them."""

    stem: list[Placement]
    encoder: list[list[Placement]]
    downs: list[Placement]
    bottleneck: Placement
    skip_widths: list[int]
    skip_gather: str
    skip_blocks: list[Placement]
    ups: list[Placement]  # empty when a decoder block replaces the U-decoder
    decoder: list[list[Placement]]  # U-decoder stages, or [[the decoder block]]
    head: Placement
    fuse: str
    stride: int  # total downsampling: input sizes must be multiples of it

    def build_gathers(self) -> Optional[list[nn.Module]]:
        """The per-level skip gathering modules (None: each level takes its own stage output)."""
        if self.skip_gather != "multiscale":
            return None
        return [MultiScaleSkip(self.skip_widths, level) for level in range(len(self.skip_widths))]

    def placements(self) -> list[Placement]:
        u_decoder = [p for up, stage in zip(self.ups, self.decoder) for p in (up, *stage)]
        return [
            *self.stem,
            *(p for stage, down in zip(self.encoder, self.downs) for p in (*stage, down)),
            self.bottleneck,
            *self.skip_blocks,
            *(u_decoder if self.ups else self.decoder[0]),
            self.head,
        ]


class _Wiring:
    """Places blocks one after another, tracking channels and stride."""

    def __init__(self, config: dict) -> None:
        self.config = config
        self.channels = config["in_channels"]
        self.stride = 1

    def place(self, path: str, where: str, out: int, c_in: Optional[int] = None,
              pyramid: Optional[list[int]] = None) -> Placement:
        spec = get_path(self.config, path)
        params = {k: v for k, v in spec.items() if k not in ("type", "out_channels")}
        entry = BLOCKS.get(spec["type"], path)
        c_in = self.channels if c_in is None else c_in
        placement = Placement(path, where, entry, params, c_in, out, self.stride, pyramid)
        self.channels = out
        return placement


def plan_network(config: dict) -> Plan:
    """The wiring of a resolved config, with every block's contract checked.

    Encoder stage i runs ``depths[i]`` blocks to ``widths[i]`` (its skip), then its down to
    ``down_widths[i]``. A U-decoder stage upsamples (keeping channels, or to the skip width for an
    up that changes channels), fuses with the skip and runs its blocks to its width (default:
    the skip's). A decoder block instead takes the bottleneck output and all skips at once.

    Raises:
        ConfigError: inconsistent lengths or channel arithmetic a block cannot honour.
    """
    enc, dec = config["encoder"], config["decoder"]
    scale = _width_scaler(config["width_multiplier"])
    widths = scale(enc["widths"])
    stages = len(widths)
    depths = _depths(enc, stages, "encoder")
    down_widths = scale(_per_stage(enc, "down_widths", stages, "encoder", default=enc["widths"]))
    wiring = _Wiring(config)

    stem = []
    if "stem" in config:
        given = config["stem"].get("out_channels")
        stem = [wiring.place("stem", "stem", scale(given) if given is not None else wiring.channels)]
        wiring.stride *= 2 if stem[0].entry.kind == DOWN else 1
    stem_stride = wiring.stride

    encoder, downs = [], []
    for i in range(stages):
        if depths[i] == 0 and widths[i] != wiring.channels:
            raise ConfigError(
                f"encoder.widths.{i}",
                f"is {widths[i]}, but stage {i + 1} has no blocks (depths[{i}] = 0), so its skip "
                f"is its input, with {wiring.channels} channels.",
                hint=f"Set encoder.widths.{i} to {wiring.channels}.",
            )
        encoder.append([
            wiring.place("encoder.block", f"encoder stage {i + 1}, block {k + 1}", widths[i])
            for k in range(depths[i])
        ])
        downs.append(wiring.place("encoder.down", f"encoder stage {i + 1}", down_widths[i]))
        wiring.stride *= 2

    given = config["bottleneck"].get("out_channels")
    bottleneck_out = scale(given) if given is not None else wiring.channels
    bottleneck = wiring.place("bottleneck", "bottleneck", bottleneck_out, pyramid=widths)
    strides = [stem_stride * 2**i for i in range(stages)]
    skip_blocks = []
    for i in range(stages):
        wiring.stride = strides[i]
        skip_blocks.append(wiring.place("skips.block", f"skip level {i + 1}", widths[i], widths[i]))

    wiring.channels, wiring.stride = bottleneck_out, strides[-1] * 2
    if "type" in dec:
        ups = []
        decoder = [[wiring.place("decoder", "decoder", scale(dec.get("out_channels", 64)), pyramid=widths)]]
        fuse = ""
    else:
        ups, decoder = _u_decoder(wiring, dec, widths, strides, scale)
        fuse = dec["fuse"]
        if stem_stride != 1:
            raise ConfigError(
                "decoder",
                f"a U-decoder ends at the stem's resolution (stride {stem_stride}), not the input's.",
                hint="Use a stem that keeps the size, or a decoder block that restores the input "
                "resolution (decoder: {type: a_decoder}).",
            )
    wiring.stride = 1
    head = wiring.place("head", "head", config["classes"])
    plan = Plan(stem, encoder, downs, bottleneck, list(widths), config["skips"]["gather"],
                skip_blocks, ups, decoder, head, fuse, strides[-1] * 2)
    for placement in plan.placements():
        placement.check()
    return plan


def _depths(section: dict, stages: int, where: str) -> list[int]:
    """Blocks per stage, bounded (:mod:`bench.core.limits`' ``blocks``) before anything is planned."""
    depths = _per_stage(section, "depths", stages, where)
    if sum(depths) > limit("blocks"):
        raise ConfigError(f"{where}.depths", f"{depths} asks for {sum(depths):,} {where} blocks; a lightweight "
                          f"network has tens.", hint=how_to_raise("blocks", sum(depths)))
    return depths


def _u_decoder(wiring: _Wiring, dec: dict, widths: list[int], strides: list[int], scale):
    stages = len(widths)
    dec_depths = _depths(dec, stages, "decoder")
    dec_widths = scale(dec["widths"]) if "widths" in dec else widths[::-1]
    _per_stage({"widths": dec_widths}, "widths", stages, "decoder")
    up_keeps_channels = BLOCKS.get(dec["up"]["type"], "decoder.up").same_channels
    ups, decoder = [], []
    for j in range(stages):
        skip = widths[stages - 1 - j]
        up_width = wiring.channels if up_keeps_channels else skip
        ups.append(wiring.place("decoder.up", f"decoder stage {j + 1}", up_width))
        wiring.stride = strides[stages - 1 - j]
        if dec["fuse"] == "add" and up_width != skip:
            raise ConfigError(
                "decoder.fuse",
                f"add needs the upsampled map ({up_width} channels) and the skip ({skip}) to "
                f"match at decoder stage {j + 1}.",
                hint="Use fuse: concat, or an up that changes channels (conv_transpose).",
            )
        fused = skip if dec["fuse"] == "add" else up_width + skip
        decoder.append([
            wiring.place("decoder.block", f"decoder stage {j + 1}, block {k + 1}", dec_widths[j],
                         c_in=fused if k == 0 else None)
            for k in range(dec_depths[j])
        ])
    return ups, decoder


def _width_scaler(multiplier: float):
    """Scales a width or a list of widths by ``multiplier``, rounding to the nearest integer."""
    def scale(width):
        if isinstance(width, list):
            return [scale(w) for w in width]
        return width if multiplier == 1.0 else max(1, round(width * multiplier))
    return scale


def _per_stage(section: dict, key: str, stages: int, name: str, default: Any = None) -> list[int]:
    values = section.get(key, default if default is not None else [1] * stages)
    if len(values) != stages:
        raise ConfigError(
            f"{name}.{key}",
            f"has {len(values)} entries but the encoder has {stages} stages (encoder.widths).",
            hint="Give one value per stage.",
        )
    return list(values)


def build_plan(plan: Plan) -> UNet:
    """The :class:`UNet` a checked plan describes."""
    if plan.ups:
        decoder = UDecoder(
            [p.build() for p in plan.ups],
            [nn.Sequential(*(p.build() for p in stage)) for stage in plan.decoder],
            plan.fuse,
        )
    else:
        decoder = plan.decoder[0][0].build()
    return UNet(
        stem=plan.stem[0].build() if plan.stem else nn.Identity(),
        encoder=[nn.Sequential(*(p.build() for p in stage)) for stage in plan.encoder],
        downs=[p.build() for p in plan.downs],
        bottleneck=plan.bottleneck.build(),
        skips=SkipPaths(plan.build_gathers(), [p.build() for p in plan.skip_blocks]),
        decoder=decoder,
        head=plan.head.build(),
        bottleneck_takes_pyramid=plan.bottleneck.entry.takes_pyramid,
        stride=plan.stride,
    )


def plan_architecture(arch: Architecture) -> Plan:
    """:func:`plan_network` for a resolved architecture, errors located at their file line."""
    try:
        return plan_network(arch.config)
    except ConfigError as exc:
        raise arch.locate(exc) from None


def check_input_size(arch: Architecture, plan: Plan, size: int) -> None:
    """Raises BenchError / ConfigError if a ``size`` x ``size`` input does not fit the network:
    not a multiple of its stride, or too small for a block's pooling or attention window."""
    if size < plan.stride or size % plan.stride:
        raise BenchError(
            f"input size {size} is not a multiple of {plan.stride}: {arch.name} downsamples "
            f"{plan.stride.bit_length() - 1} times. Use --size {max(plan.stride, size - size % plan.stride)} "
            f"or another multiple of {plan.stride}."
        )
    for p in plan.placements():
        need, have = p.entry.min_feature_size(p.params), size // p.stride
        if have < need:
            enough = -(-need * p.stride // plan.stride) * plan.stride
            raise arch.locate(ConfigError(
                p.path,
                f"'{p.entry.name}' needs a feature map of at least {need}x{need}, but at "
                f"{p.where} (stride {p.stride}) a {size} px input gives {have}x{have}.",
                hint=f"Use --size {enough} or more, or change {p.path}.",
            ))


def meta_params(plan: Plan) -> Optional[int]:
    """Parameters of the network (buffers excluded, as :func:`bench.arch.counting.count_params`),
    counted on the ``meta`` device: nothing is allocated (None if it cannot be built there)."""
    try:
        with torch.device("meta"):
            network = build_plan(plan)
    except (ValueError, RuntimeError, TypeError):
        return None
    return sum(p.numel() for p in network.parameters())


def check_budget(arch: Architecture, plan: Plan, size: Optional[int] = None) -> None:
    """Refuse a network too large to build, before anything is allocated: its parameters, counted
    exactly on a network built on the ``meta`` device (shapes without storage), and with ``size``
    the activations of one forward pass, estimated from the plan as every block's output at its
    resolution in float32 (kernels' internal buffers not counted: a lower bound).

    Raises:
        BenchError: over :mod:`bench.core.limits`' ``params`` or ``activation_bytes``, with the figure.
    """
    params = meta_params(plan)
    if params is None:
        return  # the real build will say what is wrong
    if params > limit("params"):
        raise BenchError(f"{arch.name} would have {params:,} parameters, over the limit of {limit('params'):,}; "
                         f"look at its widths ({arch.source or 'the config'}). {how_to_raise('params', params)}")
    if size is None:
        return
    activations = 0
    for p in plan.placements():
        stride = p.stride * 2 if p.entry.kind == DOWN else max(1, p.stride // 2) if p.entry.kind == UP else p.stride
        activations += 4 * p.out_channels * max(1, size // stride) ** 2
    if activations > limit("activation_bytes"):
        allowed = limit("activation_bytes") / 2**30
        raise BenchError(f"{arch.name} at {size} x {size} px needs at least {activations / 2**30:.1f} GiB of "
                         f"activations for one forward pass, over the limit of {allowed:.1f} GiB; "
                         f"use a smaller --size or narrower widths. {how_to_raise('activation_bytes', activations)}")


def build_model(arch: Architecture, seed: Optional[int] = None, plan: Optional[Plan] = None,
                size: Optional[int] = None) -> UNet:
    """Plan, check and build ``arch`` (or build ``plan``, already checked for it); with ``seed``,
    the initial weights depend on it alone (drawn from a forked RNG, so the global one is left
    as it was). The network's size is checked against the limits first (:func:`check_budget`,
    activations too with ``size``).

    Raises:
        ConfigError: a contract the config breaks, located at its file line or ``--set``.
        BenchError: a network over the limits, or a block that failed to build for a reason its
            contract check did not foresee.
    """
    plan = plan or plan_architecture(arch)
    check_budget(arch, plan, size)
    try:
        if seed is None:
            return build_plan(plan)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return build_plan(plan)
    except (ValueError, RuntimeError) as exc:
        raise BenchError(f"{arch.name}: building the network failed: {exc}") from exc


def build_checked(arch: Architecture, size: int, seed: Optional[int] = None) -> UNet:
    """Plan ``arch``, check that a ``size`` x ``size`` input fits it, and build it: the one way
    ``profile``, ``train``/``compare`` and sweeps turn an architecture into a network.

    Raises:
        ConfigError, BenchError: see :func:`plan_architecture`, :func:`check_input_size` and
            :func:`build_model`.
    """
    plan = plan_architecture(arch)
    check_input_size(arch, plan, size)
    return build_model(arch, seed=seed, plan=plan, size=size)

