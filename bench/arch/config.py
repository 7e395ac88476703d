"""The architecture grammar: load, inherit, override, tie, validate, resolve and hash.

An architecture file is a YAML mapping of named **slots**::

    in_channels: 3
    classes: 2
    stem: {type: conv, out_channels: 16, kernel_size: 7}     # optional
    encoder:
      widths: [64, 128, 256, 512]        # output width of each stage's block (= its skip width)
      depths: [1, 1, 1, 1]               # blocks per stage (optional, default 1)
      block: {type: cmrf, N: 8}
      down: {type: maxpool}
      down_widths: [...]                 # optional: width after each down (default: unchanged)
    bottleneck: {type: identity}         # a context module or feature block; may set out_channels
    decoder:
      block: {same_as: encoder.block}    # a tie: always the encoder's block, after overrides
      up: {type: interpolate, mode: bicubic}
      fuse: concat                       # [upsampled, skip]; or concat_skip_first, add
    head: {type: conv1x1}

Rules, chosen so that what you read is what you get:

- ``base: NAME_OR_PATH`` inherits another architecture. Every other key of the child, which may
  be a dotted slot path (``encoder.block: {type: double_conv}``), **replaces that slot whole**;
  nothing is deep-merged.
- ``--set PATH=VALUE`` (VALUE parsed as YAML) sets one value after inheritance. Setting a
  block's ``type`` replaces the block whole (its old parameters go; a slot's ``out_channels``
  stays), so ``--set encoder.block.type=double_conv`` never inherits CMRF's ``N``.
- ``{same_as: PATH}`` ties a block to another; ties are resolved after the overrides.
- The resolved config lists every block parameter, defaults included; it alone rebuilds the
  network, and its hash identifies it.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import yaml

from ..blocks import BLOCKS
from ..blocks.registry import CONTEXT, DECODER, DOWN, FEATURE, HEAD, MAX_INT, UP
from ..core.errors import ConfigError, did_you_mean
from ..core.safe_yaml import load_mapping

Origin = tuple[str, Optional[int]]  # (file or "--set ...", line)

# ---------------------------------------------------------------------------------------------
# Schema


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


# ---------------------------------------------------------------------------------------------
# Finding and reading files


def builtin_dir(kind: str) -> Path:
    """The folder of built-in ``architectures`` or ``search_spaces``.

    An installed package carries it inside (setup.cfg maps it there); a source checkout or an
    editable install has it beside the package.
    """
    package = Path(__file__).resolve().parents[1]  # bench/, above this wing
    inside = package / kind
    return inside if inside.is_dir() else package.parent / kind


def builtin_architectures() -> dict[str, Path]:
    """Built-in architecture names -> files."""
    return {p.stem: p for p in sorted(builtin_dir("architectures").glob("*.yaml"))}


def find_architecture(ref: str, relative_to: Optional[Path] = None) -> Path:
    """The file for ``ref``: a path (``.yaml``/``.yml`` or containing ``/``) or a built-in name.

    Paths are taken relative to ``relative_to`` (the folder of the file that names them).
    """
    looks_like_path = ref.endswith((".yaml", ".yml")) or "/" in ref
    if looks_like_path:
        path = Path(ref)
        if not path.is_absolute() and relative_to is not None:
            path = relative_to / path
        if not path.is_file():
            raise ConfigError("", f"architecture file {ref!r} not found ({path}).")
        return path
    known = builtin_architectures()
    if ref not in known:
        raise ConfigError(
            "",
            f"unknown architecture {ref!r}.",
            hint=f"{did_you_mean(ref, known)} Built-in: {', '.join(known)}; "
            "or give the path of a .yaml file.".lstrip(),
        )
    return known[ref]


def load_yaml(path: Path, what: str = "an architecture file") -> tuple[dict, dict[str, int]]:
    """The mapping in ``path`` and the 1-based line of every key, by dotted path, read safely
    (:func:`bench.core.safe_yaml.load_mapping`: size, encoding, aliases, depth, duplicate keys).

    Raises:
        ConfigError: anything wrong with the file, with its line where it has one.
    """
    return load_mapping(path, what)


# ---------------------------------------------------------------------------------------------
# The resolved architecture


@dataclass
class Architecture:
    """A resolved architecture: ``config`` is complete, validated and JSON-serialisable.

    ``origins`` maps config paths to where their values came from, so that errors found later
    (contract checks) can name the file and line, or the ``--set`` that caused them.
    """

    name: str
    config: dict
    source: Optional[Path] = None
    origins: dict[str, Origin] = field(default_factory=dict)

    @property
    def hash(self) -> str:
        return config_hash(self.config)

    def locate(self, error: ConfigError) -> ConfigError:
        """``error`` with the file and line of the closest path that has a recorded origin.

        A ``--set`` below the error's path wins: it is the latest change there.
        """
        for key, origin in self.origins.items():
            if error.path and _under(key, error.path) and origin[0].startswith("--set "):
                return error.located(*origin)
        path = error.path
        while path:
            if path in self.origins:
                return error.located(*self.origins[path])
            path = path.rpartition(".")[0]
        return error.located(str(self.source) if self.source else None, None)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.config, sort_keys=False)


_METADATA = ("name", "description")


def config_hash(config: dict) -> str:
    """SHA-256 (hex) of the canonical JSON of ``config`` without its name and description.

    Two configs hash equally exactly when they build the same network, whatever they are called.
    """
    network = {k: v for k, v in config.items() if k not in _METADATA}
    canonical = json.dumps(network, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def resolve_architecture(ref: str | Path, overrides: Sequence[str] = ()) -> Architecture:
    """Load ``ref`` (built-in name or path), inherit, apply ``--set`` overrides, tie, validate.

    Raises:
        ConfigError: anything wrong, located at its file and line or its ``--set``.
    """
    path = find_architecture(str(ref), relative_to=Path.cwd())
    raw, origins = _load_with_bases(path, chain=())
    raw.setdefault("name", path.stem)
    for name, fld in SCHEMA.items():  # defaulted sections exist, so --set can reach into them
        if fld.kind == "section" and fld.default is not None:
            raw.setdefault(name, copy.deepcopy(fld.default))
    for override in overrides:
        _apply_override(raw, origins, override)
    arch = Architecture(str(raw["name"]), {}, path, origins)
    try:
        _resolve_ties(raw)
        arch.config = _normalize_section(raw, SCHEMA, "")
    except ConfigError as exc:
        raise arch.locate(exc) from None
    return arch


def architecture_from_config(config: Any, source: Path | str, name: Optional[str] = None) -> Architecture:
    """An architecture from a resolved config as bench stores it (checkpoints, sweep records),
    validated as a file would be: a config edited or damaged in storage is refused, not built.

    Raises:
        ConfigError: not a mapping, or not a valid config, naming ``source``.
    """
    if not isinstance(config, dict):
        raise ConfigError("", f"the stored architecture is a {type(config).__name__}, not a mapping of slots.",
                          file=source)
    raw = copy.deepcopy(config)
    arch = Architecture(str(name or raw.get("name") or Path(str(source)).stem), {}, Path(str(source)), {})
    try:
        _resolve_ties(raw)
        arch.config = _normalize_section(raw, SCHEMA, "")
    except ConfigError as exc:
        raise exc.located(source, None) from None
    return arch


def _load_with_bases(path: Path, chain: tuple[Path, ...]) -> tuple[dict, dict[str, Origin]]:
    if path.resolve() in chain:
        cycle = " -> ".join(str(p) for p in (*chain, path.resolve()))
        raise ConfigError("base", f"inheritance cycle: {cycle}.", file=path)
    data, lines = load_yaml(path)
    origins = {key: (str(path), line) for key, line in lines.items()}
    base_ref = data.pop("base", None)
    if base_ref is None:
        return data, origins
    if not isinstance(base_ref, str):
        raise ConfigError("base", f"must be an architecture name or path, got {base_ref!r}.",
                          file=path, line=lines.get("base"))
    try:
        base_path = find_architecture(base_ref, relative_to=path.parent)
    except ConfigError as exc:
        raise exc.located(path, lines.get("base")) from None
    merged, merged_origins = _load_with_bases(base_path, (*chain, path.resolve()))
    merged.pop("name", None)
    merged.pop("description", None)
    for key, value in data.items():
        where = (str(path), lines.get(key))
        try:
            _replace_slot(merged, str(key), value)
        except ConfigError as exc:
            raise exc.located(*where) from None
        _forget_origins(merged_origins, str(key))
        merged_origins.update({k: v for k, v in origins.items() if _under(k, str(key))})
    return merged, merged_origins


def _replace_slot(config: dict, dotted: str, value: Any) -> None:
    """Replace the slot at ``dotted`` whole. The slot must be part of the grammar."""
    *parents, leaf = dotted.split(".")
    schema: dict[str, Field] = SCHEMA
    node = config
    walked = []
    for name in parents:
        fld = schema.get(name)
        if fld is None or fld.kind != "section":
            sections = [k for k, f in schema.items() if f.kind == "section"]
            raise ConfigError(
                ".".join(walked + [name]),
                "is not a section of the grammar that slots can be replaced in.",
                hint=f"{did_you_mean(name, sections)} Sections: {', '.join(sections)}.".lstrip(),
            )
        schema = fld.fields
        node = node.setdefault(name, {})
        walked.append(name)
    if leaf not in schema:
        where = ".".join(walked) or "the top level"
        raise ConfigError(
            dotted,
            f"unknown slot '{leaf}' in {where}.",
            hint=f"{did_you_mean(leaf, schema)} Slots: {', '.join(schema)}.".lstrip(),
        )
    node[leaf] = copy.deepcopy(value)


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + ".")


def _forget_origins(origins: dict[str, Origin], prefix: str) -> None:
    for key in [k for k in origins if _under(k, prefix)]:
        del origins[key]


# ---------------------------------------------------------------------------------------------
# --set overrides


def parse_override(text: str) -> tuple[str, Any]:
    """``"encoder.block.N=4"`` -> ``("encoder.block.N", 4)``; the value is parsed as YAML."""
    path, sep, raw_value = text.partition("=")
    if not sep or not path.strip():
        raise ConfigError("", f"--set {text!r}: expected PATH=VALUE, e.g. encoder.block.N=4.")
    try:
        value = yaml.safe_load(raw_value) if raw_value.strip() else None
    except yaml.YAMLError:
        raise ConfigError("", f"--set {text}: the value {raw_value!r} is not valid YAML.") from None
    return path.strip(), value


def _apply_override(config: dict, origins: dict[str, Origin], text: str) -> None:
    path, value = parse_override(text)
    where: Origin = (f"--set {text}", None)
    try:
        parent, leaf = _walk_to_parent(config, path)
        if isinstance(parent, list):
            parent[leaf] = value
        elif leaf == "type" and ("type" in parent or TIE in parent):
            kept = {k: parent[k] for k in ("out_channels",) if k in parent}
            parent.clear()
            parent.update({"type": value, **kept})
        else:
            if leaf not in parent:
                _check_new_key(parent, path, leaf)
            parent[leaf] = value
    except ConfigError as exc:
        raise exc.located(*where) from None
    _forget_origins(origins, path.rpartition(".")[0] if path.endswith(".type") else path)
    origins[path] = where


def _walk_to_parent(config: dict, path: str) -> tuple[Any, Any]:
    parts = path.split(".")
    node: Any = config
    for depth, name in enumerate(parts[:-1]):
        here = ".".join(parts[: depth + 1])
        node = _child(node, name, here, config_path=".".join(parts[:depth]))
        rest = parts[depth + 1:]
        if isinstance(node, dict) and TIE in node and rest != ["type"]:
            raise ConfigError(
                here,
                f"is tied to {node[TIE]} (same_as), so it has no values of its own to set.",
                hint=f"Set {node[TIE]}.{'.'.join(rest)} instead, or untie it with "
                f"--set {here}.type=BLOCK.",
            )
        if not isinstance(node, (dict, list)):
            raise ConfigError(here, f"is a value ({node!r}), not a mapping: cannot set {path}.")
    leaf: Any = parts[-1]
    if isinstance(node, list):
        leaf = _index(node, leaf, path)
    return node, leaf


def _child(node: Any, name: str, here: str, config_path: str) -> Any:
    if isinstance(node, list):
        return node[_index(node, name, here)]
    if name not in node:
        where = config_path or "the top level"
        raise ConfigError(
            here,
            f"does not exist: {where} has no key '{name}'.",
            hint=f"{did_you_mean(name, node)} Keys there: {', '.join(map(str, node))}.".lstrip(),
        )
    return node[name]


def _index(node: list, name: str, path: str) -> int:
    if not name.lstrip("-").isdigit() or not -len(node) <= int(name) < len(node):
        raise ConfigError(path, f"'{name}' is not an index of a list of {len(node)} items.")
    return int(name)


def _check_new_key(parent: dict, path: str, leaf: str) -> None:
    """A key absent from the file may be set if the grammar or the block defines it."""
    slot_path = path.rpartition(".")[0]
    if "type" in parent and parent["type"] in BLOCKS:
        slot = schema_at(slot_path)
        sized = ["out_channels"] if slot is not None and slot.sized else []
        allowed = list(BLOCKS.get(parent["type"], slot_path).params) + sized
        what = f"block '{parent['type']}'"
    else:
        fld = schema_at(slot_path)
        allowed = list(fld.fields) if fld is not None else []
        what = slot_path or "the top level"
        if not slot_path:
            allowed = list(SCHEMA)
    if leaf not in allowed:
        raise ConfigError(
            path,
            f"does not exist: {what} has no key '{leaf}'.",
            hint=f"{did_you_mean(leaf, allowed)} Keys: {', '.join(allowed) or 'none'}.".lstrip(),
        )


def schema_at(path: str) -> Optional[Field]:
    schema, fld = SCHEMA, None
    for name in path.split(".") if path else []:
        fld = schema.get(name)
        if fld is None:
            return None
        schema = fld.fields
    return fld


# ---------------------------------------------------------------------------------------------
# Ties and validation


def _resolve_ties(config: dict) -> None:
    def lookup(path: str, seen: tuple[str, ...]) -> dict:
        if path in seen:
            raise ConfigError(seen[0], f"same_as cycle: {' -> '.join((*seen, path))}.")
        node: Any = config
        for name in path.split("."):
            if not isinstance(node, dict) or name not in node:
                raise ConfigError(seen[-1], f"same_as: {path} does not exist.")
            node = node[name]
        if isinstance(node, dict) and TIE in node:
            return lookup(str(node[TIE]), (*seen, path))
        if not isinstance(node, dict) or "type" not in node:
            raise ConfigError(seen[-1], f"same_as: {path} is not a block.")
        return node

    for slot in _slot_paths(SCHEMA, ""):
        node = get_path(config, slot)
        if isinstance(node, dict) and TIE in node:
            if len(node) > 1:
                raise ConfigError(slot, "a same_as tie cannot have other keys.")
            target = lookup(str(node[TIE]), (slot,))
            _set(config, slot, {k: copy.deepcopy(v) for k, v in target.items() if k != "out_channels"})


def _slot_paths(schema: dict[str, Field], prefix: str) -> Iterable[str]:
    for name, fld in schema.items():
        path = f"{prefix}.{name}" if prefix else name
        if fld.kind == "slot":
            yield path
        elif fld.kind == "section":
            yield from _slot_paths(fld.fields, path)


def get_path(config: dict, path: str) -> Any:
    """The value at dotted ``path`` of a config, or None where the path does not exist."""
    node: Any = config
    for name in path.split("."):
        if not isinstance(node, dict) or name not in node:
            return None
        node = node[name]
    return node


def _set(config: dict, path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = config
    for name in parents:
        node = node[name]
    node[leaf] = value


def _normalize_section(raw: Any, schema: dict[str, Field], path: str) -> dict:
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
        return _normalize_section(value, fld.fields, path)
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
