"""Resolved config -> wiring plan -> contract checks -> ``nn.Module``.

The plan says, for every block the network will hold, which config path it comes from and its
input and output channels. It is computed and checked before any module is built, so that a bad
swap fails with the config path at fault rather than deep inside a forward pass.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from .blocks import BLOCKS
from .blocks.registry import BlockEntry, ContractViolation
from .config import Architecture
from .errors import BenchError, ConfigError
from .network import UNet


@dataclass(frozen=True)
class Placement:
    """One block of the network: where its config lives, and its channel arithmetic."""

    path: str  # config path of its spec, e.g. "encoder.block"
    where: str  # human position, e.g. "encoder stage 2, block 1"
    entry: BlockEntry
    params: dict[str, Any]
    in_channels: int
    out_channels: int

    def check(self) -> None:
        try:
            self.entry.check(self.in_channels, self.out_channels, self.params)
        except ContractViolation as exc:
            path = f"{self.path}.{exc.param}" if exc.param else self.path
            raise ConfigError(
                path, f"{exc} (at {self.where}: {self.in_channels} -> {self.out_channels} channels)"
            ) from None

    def build(self) -> nn.Module:
        return self.entry.build(self.in_channels, self.out_channels, self.params)


@dataclass(frozen=True)
class Plan:
    """Every placement of a network, grouped the way :class:`UNet` takes them."""

    stem: list[Placement]
    encoder: list[list[Placement]]
    downs: list[Placement]
    bottleneck: Placement
    ups: list[Placement]
    decoder: list[list[Placement]]
    head: Placement
    fuse: str

    def placements(self) -> list[Placement]:
        return [
            *self.stem,
            *(p for stage, down in zip(self.encoder, self.downs) for p in (*stage, down)),
            self.bottleneck,
            *(p for up, stage in zip(self.ups, self.decoder) for p in (up, *stage)),
            self.head,
        ]


def _place(config: dict, path: str, where: str, c_in: int, c_out: int) -> Placement:
    spec = _get(config, path)
    params = {k: v for k, v in spec.items() if k not in ("type", "out_channels")}
    return Placement(path, where, BLOCKS.get(spec["type"], path), params, c_in, c_out)


def _stage(config: dict, section: str, index: int, depth: int, c_in: int, width: int) -> list[Placement]:
    """``depth`` blocks of ``section.block``: the first maps ``c_in`` to ``width``, the rest keep it."""
    return [
        _place(config, f"{section}.block", f"{section} stage {index + 1}, block {k + 1}",
               c_in if k == 0 else width, width)
        for k in range(depth)
    ]


def _get(config: dict, path: str) -> Any:
    node = config
    for name in path.split("."):
        node = node[name]
    return node


def plan_network(config: dict) -> Plan:
    """The wiring of a resolved config, with every block's contract checked.

    Encoder stage i maps its input to ``widths[i]`` (the skip), then its down maps that to
    ``down_widths[i]``. Decoder stage j upsamples (keeping channels, or to the skip width for an
    up that changes channels), fuses with the skip, and maps to its width (default: the skip's).

    Raises:
        ConfigError: inconsistent lengths or channel arithmetic a block cannot honour.
    """
    enc, dec = config["encoder"], config["decoder"]
    stages = len(enc["widths"])
    widths = enc["widths"]
    depths = _per_stage(enc, "depths", stages, "encoder")
    down_widths = _per_stage(enc, "down_widths", stages, "encoder", default=widths)
    dec_depths = _per_stage(dec, "depths", stages, "decoder")
    dec_widths = _per_stage(dec, "widths", stages, "decoder", default=widths[::-1])

    channels = config["in_channels"]
    stem = []
    if "stem" in config:
        width = config["stem"].get("out_channels", channels)
        stem = [_place(config, "stem", "stem", channels, width)]
        channels = width

    encoder, downs = [], []
    for i in range(stages):
        encoder.append(_stage(config, "encoder", i, depths[i], channels, widths[i]))
        channels = widths[i]
        downs.append(_place(config, "encoder.down", f"encoder stage {i + 1}", channels, down_widths[i]))
        channels = down_widths[i]

    width = config["bottleneck"].get("out_channels", channels)
    bottleneck = _place(config, "bottleneck", "bottleneck", channels, width)
    channels = width

    ups, decoder = [], []
    up_keeps_channels = BLOCKS.get(dec["up"]["type"], "decoder.up").same_channels
    for j in range(stages):
        skip = widths[stages - 1 - j]
        up_width = channels if up_keeps_channels else skip
        ups.append(_place(config, "decoder.up", f"decoder stage {j + 1}", channels, up_width))
        if dec["fuse"] == "add" and up_width != skip:
            raise ConfigError(
                "decoder.fuse",
                f"add needs the upsampled map ({up_width} channels) and the skip ({skip}) to "
                f"match at decoder stage {j + 1}.",
                hint="Use fuse: concat, or an up that changes channels (conv_transpose).",
            )
        channels = up_width + skip if dec["fuse"] == "concat" else skip
        decoder.append(_stage(config, "decoder", j, dec_depths[j], channels, dec_widths[j]))
        channels = dec_widths[j]

    head = _place(config, "head", "head", channels, config["classes"])
    plan = Plan(stem, encoder, downs, bottleneck, ups, decoder, head, dec["fuse"])
    for placement in plan.placements():
        placement.check()
    return plan


def _per_stage(section: dict, key: str, stages: int, name: str, default: Any = None) -> list[int]:
    values = section.get(key, default if default is not None else [1] * stages)
    if len(values) != stages:
        raise ConfigError(
            f"{name}.{key}",
            f"has {len(values)} entries but the encoder has {stages} stages (encoder.widths).",
            hint=f"Give one value per stage.",
        )
    return list(values)


def build_plan(plan: Plan) -> UNet:
    """The :class:`UNet` a checked plan describes."""
    return UNet(
        stem=plan.stem[0].build() if plan.stem else nn.Identity(),
        encoder=[nn.Sequential(*(p.build() for p in stage)) for stage in plan.encoder],
        downs=[p.build() for p in plan.downs],
        bottleneck=plan.bottleneck.build(),
        ups=[p.build() for p in plan.ups],
        decoder=[nn.Sequential(*(p.build() for p in stage)) for stage in plan.decoder],
        head=plan.head.build(),
        fuse=plan.fuse,
    )


def plan_architecture(arch: Architecture) -> Plan:
    """:func:`plan_network` for a resolved architecture, errors located at their file line."""
    try:
        return plan_network(arch.config)
    except ConfigError as exc:
        raise arch.locate(exc) from None


def build_model(arch: Architecture) -> UNet:
    """Plan, check and build ``arch``.

    Raises:
        ConfigError: a contract the config breaks, located at its file line or ``--set``.
        BenchError: a block failed to build for a reason its contract check did not foresee.
    """
    plan = plan_architecture(arch)
    try:
        return build_plan(plan)
    except (ValueError, RuntimeError) as exc:
        raise BenchError(f"{arch.name}: building the network failed: {exc}") from exc
