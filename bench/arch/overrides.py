"""Paths into an architecture config and ``--set PATH=VALUE`` overrides: walking a dotted path,
parsing and applying an override (a block's ``type`` replaces the block whole), and keeping
track of where each value came from (file line or ``--set``)."""
from __future__ import annotations

import copy
from typing import Any

import yaml

from ..blocks import BLOCKS
from ..core.errors import ConfigError, did_you_mean

from .schema import SCHEMA, TIE, Field, Origin, schema_at


def replace_slot(config: dict, dotted: str, value: Any) -> None:
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


def is_under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + ".")


def forget_origins(origins: dict[str, Origin], prefix: str) -> None:
    for key in [k for k in origins if is_under(k, prefix)]:
        del origins[key]


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


def apply_override(config: dict, origins: dict[str, Origin], text: str) -> None:
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
    forget_origins(origins, path.rpartition(".")[0] if path.endswith(".type") else path)
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


def get_path(config: dict, path: str) -> Any:
    """The value at dotted ``path`` of a config, or None where the path does not exist."""
    node: Any = config
    for name in path.split("."):
        if not isinstance(node, dict) or name not in node:
            return None
        node = node[name]
    return node


def set_path(config: dict, path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = config
    for name in parents:
        node = node[name]
    node[leaf] = value
