"""The architecture grammar's keys (:data:`SCHEMA`): what each slot and value may be, and how a
value or block spec is checked and completed with its defaults (see :mod:`bench.arch.config`)."""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Sequence


from ..blocks import BLOCKS
from ..blocks.registry import CONTEXT, DECODER, DOWN, FEATURE, HEAD, MAX_INT, UP
from ..core.errors import ConfigError, did_you_mean

Origin = tuple[str, Optional[int]]  # (file or "--set ...", line)


@dataclass(frozen=True)
class Field:
    """One key of the grammar. ``kind``: int, float, str, ints (list of ints), choice,
    slot (a block spec) or section (a nested mapping of fields)."""

    kind: str
    required: bool = False
    default: Any = None
    choices: tuple = ()
    block_kinds: tuple = ()
    sized: bool = False  # a slot that may set its own out_channels
    fields: dict = field(default_factory=dict)
    minimum: int = 1  # smallest value of an int or of the items of ints
    doc: str = ""


SCHEMA: dict[str, Field] = {
    "name": Field("str", doc="architecture name (default: the file name)"),
    "description": Field("str", doc="free text"),
    "in_channels": Field("int", default=3, doc="input image channels"),
    "classes": Field("int", default=2, doc="output channels (classes, background included)"),
    "width_multiplier": Field("float", default=1.0, doc="scales every width (rounded), "
                              "e.g. 4/3 turns LM-Net's C = 12 into C = 16"),
    "stem": Field("slot", block_kinds=(FEATURE, DOWN), sized=True,
                  doc="optional first block (a down block makes a strided stem)"),
    "encoder": Field(
        "section",
        required=True,
        fields={
            "widths": Field("ints", required=True, doc="block output (skip) width per stage"),
            "depths": Field("ints", minimum=0, doc="blocks per stage (default 1 each; 0: the "
                            "stage input is the skip)"),
            "block": Field("slot", required=True, block_kinds=(FEATURE,)),
            "down": Field("slot", required=True, block_kinds=(DOWN,)),
            "down_widths": Field("ints", doc="width after each stage's down (default: same)"),
        },
    ),
    "bottleneck": Field("slot", required=True, block_kinds=(CONTEXT, FEATURE), sized=True),
    "skips": Field(
        "section",
        default={"gather": "single", "block": {"type": "identity"}},
        fields={
            "gather": Field("choice", default="single", choices=("single", "multiscale"),
                            doc="single: each level's own stage output; multiscale: LM-Net's "
                            "neighbouring levels"),
            "block": Field("slot", default={"type": "identity"}, block_kinds=(FEATURE, CONTEXT),
                           doc="applied to each level's skip, keeping its width (e.g. lft)"),
        },
    ),
    "decoder": Field(
        "section",
        required=True,
        block_kinds=(DECODER,),  # or one decoder block that replaces the U-decoder
        sized=True,
        fields={
            "block": Field("slot", required=True, block_kinds=(FEATURE,)),
            "up": Field("slot", required=True, block_kinds=(UP,)),
            "fuse": Field("choice", default="concat", choices=("concat", "concat_skip_first", "add"),
                          doc="concat: [upsampled, skip] on channels (TinyU-Net's and U-Lite's code); "
                          "concat_skip_first: [skip, upsampled] (milesial's U-Net); add"),
            "widths": Field("ints", doc="output width per stage (default: the skip widths)"),
            "depths": Field("ints", doc="blocks per stage (default 1 each)"),
        },
    ),
    "head": Field("slot", required=True, block_kinds=(HEAD,)),
}


TIE = "same_as"


def schema_at(path: str) -> Optional[Field]:
    schema, fld = SCHEMA, None
    for name in path.split(".") if path else []:
        fld = schema.get(name)
        if fld is None:
            return None
        schema = fld.fields
    return fld


def slot_paths(schema: dict[str, Field], prefix: str) -> Iterable[str]:
    for name, fld in schema.items():
        path = f"{prefix}.{name}" if prefix else name
        if fld.kind == "slot":
            yield path
        elif fld.kind == "section":
            yield from slot_paths(fld.fields, path)


def normalize_section(raw: Any, schema: dict[str, Field], path: str) -> dict:
    if not isinstance(raw, dict):
        raise ConfigError(path, f"must be a mapping with keys {', '.join(schema)}; got {raw!r}.")
    for key in raw:
        if key not in schema:
            where = f"'{path}'" if path else "the top level"
            raise ConfigError(
                f"{path}.{key}" if path else str(key),
                f"unknown key in {where}.",
                hint=f"{did_you_mean(str(key), schema)} Keys: {', '.join(schema)}.".lstrip(),
            )
    out = {}
    for name, fld in schema.items():
        sub = f"{path}.{name}" if path else name
        if name not in raw or raw[name] is None:
            if fld.required:
                raise ConfigError(
                    sub,
                    f"missing required {'section' if fld.kind == 'section' else 'slot'} '{name}'.",
                    hint=_example(name, fld),
                )
            if fld.default is not None:
                out[name] = _normalize_value(copy.deepcopy(fld.default), fld, sub)
            continue
        out[name] = _normalize_value(raw[name], fld, sub)
    return out


def _normalize_value(value: Any, fld: Field, path: str) -> Any:
    if fld.kind == "section":
        if fld.block_kinds and isinstance(value, dict) and "type" in value:
            return normalize_block(value, path, fld.block_kinds, sized=fld.sized)
        return normalize_section(value, fld.fields, path)
    if fld.kind == "slot":
        return normalize_block(value, path, fld.block_kinds, sized=fld.sized)
    if fld.kind == "int":
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_INT:
            raise ConfigError(path, f"expected a positive integer up to {MAX_INT:,}, got {value!r}.")
        return value
    if fld.kind == "float":
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < math.inf:
            raise ConfigError(path, f"expected a positive finite number, got {value!r}.")
        return float(value)
    if fld.kind == "str":
        if not isinstance(value, str):
            raise ConfigError(path, f"expected a string, got {value!r}.")
        return value
    if fld.kind == "choice":
        if value not in fld.choices:
            raise ConfigError(
                path, f"expected one of {', '.join(fld.choices)}, got {value!r}.",
                hint=did_you_mean(str(value), fld.choices),
            )
        return value
    if fld.kind == "ints":
        ok = isinstance(value, list) and value and all(
            isinstance(v, int) and not isinstance(v, bool) and fld.minimum <= v <= MAX_INT for v in value
        )
        if not ok:
            raise ConfigError(
                path, f"expected a non-empty list of integers from {fld.minimum} to {MAX_INT:,}, got {value!r}."
            )
        return list(value)
    raise AssertionError(f"unknown field kind {fld.kind}")


def normalize_block(spec: Any, path: str, kinds: Sequence[str], sized: bool = False) -> dict:
    """``{type, **params}`` checked against the registry, every parameter filled in.

    Raises:
        ConfigError: not a block spec, unknown type, unknown / missing / mistyped parameter.
    """
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, dict) or "type" not in spec:
        raise ConfigError(
            path,
            f"expected a block like {{type: NAME, ...parameters}}, got {spec!r}.",
            hint="See `bench list blocks` for names and parameters.",
        )
    entry = BLOCKS.get(spec["type"], path, kinds)
    params = {k: v for k, v in spec.items() if k not in ("type", "out_channels")}
    out = {"type": entry.name, **entry.resolve_params(params, path)}
    if "out_channels" in spec:
        if not sized:
            raise ConfigError(
                f"{path}.out_channels",
                "this slot's width comes from the wiring and cannot be set here.",
                hint="Set the widths of the encoder or decoder instead.",
            )
        width = spec["out_channels"]
        if not isinstance(width, int) or isinstance(width, bool) or width < 1:
            raise ConfigError(f"{path}.out_channels", f"expected a positive integer, got {width!r}.")
        out["out_channels"] = width
    return out


def _example(name: str, fld: Field) -> str:
    if fld.kind == "section":
        keys = ", ".join(k for k, f in fld.fields.items() if f.required)
        return f"Add a '{name}:' section with at least {keys} (see architectures/tinyunet.yaml)."
    return f"Add '{name}: {{type: ...}}' (see `bench list blocks`)."
