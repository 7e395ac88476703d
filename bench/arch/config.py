"""The architecture grammar: load, inherit, override, tie, validate, resolve and hash. Its keys
are :mod:`bench.arch.schema`; paths and ``--set`` overrides :mod:`bench.arch.overrides`.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import yaml

from ..core.errors import ConfigError, did_you_mean
from ..core.safe_yaml import load_mapping
from .overrides import apply_override, forget_origins, get_path, is_under, replace_slot, set_path
from .schema import SCHEMA, TIE, Origin, normalize_section, schema_at, slot_paths

__all__ = ["Architecture", "resolve_architecture", "architecture_from_config", "config_hash", "find_architecture",
           "builtin_architectures", "builtin_dir", "load_yaml", "get_path", "schema_at", "SCHEMA"]

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
            if error.path and is_under(key, error.path) and origin[0].startswith("--set "):
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
        apply_override(raw, origins, override)
    arch = Architecture(str(raw["name"]), {}, path, origins)
    try:
        _resolve_ties(raw)
        arch.config = normalize_section(raw, SCHEMA, "")
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
        arch.config = normalize_section(raw, SCHEMA, "")
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
            replace_slot(merged, str(key), value)
        except ConfigError as exc:
            raise exc.located(*where) from None
        forget_origins(merged_origins, str(key))
        merged_origins.update({k: v for k, v in origins.items() if is_under(k, str(key))})
    return merged, merged_origins


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

    for slot in slot_paths(SCHEMA, ""):
        node = get_path(config, slot)
        if isinstance(node, dict) and TIE in node:
            if len(node) > 1:
                raise ConfigError(slot, "a same_as tie cannot have other keys.")
            target = lookup(str(node[TIE]), (slot,))
            set_path(config, slot, {k: copy.deepcopy(v) for k, v in target.items() if k != "out_channels"})


