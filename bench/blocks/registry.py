"""The block registry: names, slot kinds and typed parameters of every block.

A block's constructor signature is the source of truth for its parameters: a config is checked
against the annotations and defaults of ``__init__`` without building anything. Every block takes
``in_channels`` and ``out_channels`` first (the wiring supplies them); the rest are its
parameters. A block may define ``check_contract(in_channels, out_channels, **params)`` that raises
:class:`ContractViolation` for channel arithmetic it cannot honour.
"""
from __future__ import annotations

import copy
import inspect
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Literal, Optional

from torch import nn

from ..core.errors import ConfigError, did_you_mean

# Slot kinds. A feature block keeps the spatial size; down halves it, up doubles it; a context
# module sits at the bottleneck and keeps the size; a head maps features to class logits.
# A decoder block replaces the whole U-decoder: it receives the bottleneck output and the skips
# and returns features at the input resolution (AL-Net's asymmetric decoder).
FEATURE, DOWN, UP, CONTEXT, DECODER, HEAD = "feature", "down", "up", "context", "decoder", "head"
KINDS = (FEATURE, DOWN, UP, CONTEXT, DECODER, HEAD)

# Supplied by the wiring, never by a config: channel counts, and the encoder pyramid's widths
# for pyramid-aware blocks (their forward also receives the pyramid).
_WIRED = ("in_channels", "out_channels", "pyramid_channels")


MAX_INT = 2**31 - 1  # what the convolution kernels take


class ContractViolation(ValueError):
    """Raised by a block's ``check_contract``; ``param`` names the parameter at fault, if any."""

    def __init__(self, message: str, param: Optional[str] = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Param:
    """One constructor parameter of a block."""

    name: str
    annotation: Any
    default: Any = inspect.Parameter.empty

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty

    def describe(self) -> str:
        text = f"{self.name}: {_type_name(self.annotation)}"
        return text if self.required else f"{text} = {self.default!r}"

    def coerce(self, value: Any, path: str) -> Any:
        """``value`` checked against the annotation (ints widen to float); raises ConfigError."""
        ok, coerced = _coerce(self.annotation, value)
        if not ok:
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
                raise ConfigError(path, f"{value} is too large: at most {MAX_INT:,}.")
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(path, f"expected a finite number, got {value!r}.")
            raise ConfigError(
                path,
                f"expected {_type_name(self.annotation)}, got {value!r} ({type(value).__name__}).",
            )
        return coerced


@dataclass(frozen=True)
class BlockEntry:
    """A registered block: ``factory(in_channels, out_channels, **params) -> nn.Module``."""

    name: str
    factory: Callable[..., nn.Module]
    kind: str
    same_channels: bool = False

    @property
    def takes_pyramid(self) -> bool:
        return "pyramid_channels" in inspect.signature(self.factory.__init__).parameters

    def min_feature_size(self, params: dict[str, Any]) -> int:
        """Smallest feature map (pixels) the block works on with ``params`` (1 if unlimited)."""
        minimum = getattr(self.factory, "min_feature_size", None)
        return minimum(**params) if minimum is not None else 1

    @property
    def summary(self) -> str:
        doc = inspect.getdoc(self.factory) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    @property
    def params(self) -> dict[str, Param]:
        hints = typing.get_type_hints(self.factory.__init__)
        signature = inspect.signature(self.factory.__init__)
        return {
            name: Param(name, hints.get(name, Any), p.default)
            for name, p in signature.parameters.items()
            if name != "self" and name not in _WIRED and p.kind is p.POSITIONAL_OR_KEYWORD
        }

    def resolve_params(self, given: dict[str, Any], path: str) -> dict[str, Any]:
        """Every parameter of the block, from ``given`` or its default, type-checked.

        Raises:
            ConfigError: unknown or missing parameter, or a value of the wrong type.
        """
        known = self.params
        for name in given:
            if name not in known:
                listing = ", ".join(p.describe() for p in known.values()) or "none"
                raise ConfigError(
                    f"{path}.{name}",
                    f"block '{self.name}' has no parameter '{name}'.",
                    hint=f"{did_you_mean(name, known)} Its parameters: {listing}.".strip(),
                )
        resolved = {}
        for name, param in known.items():
            if name in given:
                resolved[name] = param.coerce(given[name], f"{path}.{name}")
            elif param.required:
                raise ConfigError(
                    path, f"block '{self.name}' needs parameter '{param.describe()}'."
                )
            else:
                resolved[name] = copy.deepcopy(param.default)
        return resolved

    def check(self, in_channels: int, out_channels: int, params: dict[str, Any],
              pyramid_channels: Optional[list[int]] = None) -> None:
        """Raises ContractViolation if the block cannot map ``in_channels`` to ``out_channels``."""
        if self.same_channels and in_channels != out_channels:
            raise ContractViolation(
                f"'{self.name}' keeps the channel count, but the wiring asks for "
                f"{in_channels} -> {out_channels} channels."
            )
        check = getattr(self.factory, "check_contract", None)
        if check is not None and self.takes_pyramid:
            check(in_channels, out_channels, pyramid_channels=pyramid_channels, **params)
        elif check is not None:
            check(in_channels, out_channels, **params)

    def build(self, in_channels: int, out_channels: int, params: dict[str, Any],
              pyramid_channels: Optional[list[int]] = None) -> nn.Module:
        if self.takes_pyramid:
            return self.factory(in_channels, out_channels, pyramid_channels=pyramid_channels, **params)
        return self.factory(in_channels, out_channels, **params)


class Registry:
    """An explicit, ordered collection of blocks, looked up by name."""

    def __init__(self, entries: Iterable[BlockEntry]) -> None:
        self._entries: dict[str, BlockEntry] = {}
        for entry in entries:
            if entry.name in self._entries:
                raise ValueError(f"block '{entry.name}' registered twice")
            if entry.kind not in KINDS:
                raise ValueError(f"block '{entry.name}' has unknown kind {entry.kind!r}")
            self._entries[entry.name] = entry

    def __iter__(self) -> Iterator[BlockEntry]:
        return iter(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def names(self, kinds: Optional[Iterable[str]] = None) -> list[str]:
        wanted = set(kinds) if kinds is not None else set(KINDS)
        return [e.name for e in self if e.kind in wanted]

    def get(self, name: Any, path: str, kinds: Iterable[str] = KINDS) -> BlockEntry:
        """The block ``name`` for the slot at ``path``, which accepts blocks of ``kinds``.

        Raises:
            ConfigError: unknown name (with close matches), or a block of the wrong kind.
        """
        kinds = tuple(kinds)
        allowed = self.names(kinds)
        entry = self._entries.get(name) if isinstance(name, str) else None
        if entry is None:
            raise ConfigError(
                f"{path}.type",
                f"unknown block {name!r}.",
                hint=f"{did_you_mean(name, allowed)} Blocks for this slot: {', '.join(allowed)} "
                "(see `bench list blocks`).".lstrip(),
            )
        if entry.kind not in kinds:
            raise ConfigError(
                f"{path}.type",
                f"'{name}' is a {entry.kind} block; this slot takes {' or '.join(kinds)} blocks.",
                hint=f"Choose one of: {', '.join(allowed)}.",
            )
        return entry


def _coerce(annotation: Any, value: Any) -> tuple[bool, Any]:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return True, value
    if origin is Literal:
        return value in args, value
    if origin in (typing.Union, types.UnionType):
        for option in args:
            ok, coerced = _coerce(option, value)
            if ok:
                return True, coerced
        return False, value
    if annotation is type(None):
        return value is None, value
    if origin is list:
        if not isinstance(value, list):
            return False, value
        items = [_coerce(args[0] if args else Any, v) for v in value]
        return all(ok for ok, _ in items), [v for _, v in items]
    if annotation is bool:
        return isinstance(value, bool), value
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_INT, value
    if annotation is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return ok, float(value) if ok else value
    if annotation is str:
        return isinstance(value, str), value
    return isinstance(value, annotation), value


def _type_name(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if annotation is type(None):
        return "None"
    if origin is list:
        return f"list[{_type_name(args[0]) if args else 'Any'}]"
    return getattr(annotation, "__name__", str(annotation))
