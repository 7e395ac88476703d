"""What a run trains on, as a user names it: a folder (its layout detected, or folders and name
patterns given), or the synthetic set; and the input protocol. The same keys serve the CLI
(``--images``, ``--mask-pattern``, ``--patch``, ...) and a search space's ``data:`` section."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

from ..core.errors import BenchError, ConfigError
from .dataset import SYNTHETIC, SegmentationData, load_data
from .layouts import Layout, detect_layout, explicit_layout, named_layout, pattern_regex, with_patterns
from .protocol import Protocol
from .split import DEFAULT_FOLDS, ONE_SPLIT_MODES, SPLIT_MODES, Split, kfold_splits, split_dataset

FOLDER_KEYS = ("layout", "images", "masks", "image_pattern", "mask_pattern", "ignore", "ignore_pattern", "instances")
PROTOCOL_KEYS = ("size", "patch", "scale", "oversample")


# a space's data: section, beside source and size: every key unset (the instances flag false)
SECTION_DEFAULTS = {**{k: None for k in (*FOLDER_KEYS, *PROTOCOL_KEYS) if k != "size"}, "instances": False,
                    "split_mode": None, "folds": None, "rank_folds": None}


def check_data_section(data: dict[str, Any]) -> None:
    """Types and ranges of a space's ``data:`` folder, pattern and protocol keys; the protocol and
    layout are checked as a whole (with the messages the CLI gives) when the data is loaded.

    Raises:
        ConfigError: a value of the wrong type or out of range, at ``data.<key>``.
    """
    for key in ("size", "patch"):
        value = data[key]
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 8 <= value <= 16384):
            raise ConfigError(f"data.{key}", f"must be a whole number from 8 to 16,384, got {value!r}.")
    for key, low, high in (("scale", 0.05, 4.0), ("oversample", 0.0, 1.0)):
        value = data[key]
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                  or not math.isfinite(value) or not low <= value <= high):
            raise ConfigError(f"data.{key}", f"must be a number from {low} to {high}, got {value!r}.")
    for key in (k for k in FOLDER_KEYS if k != "instances"):
        if data[key] is not None and (not isinstance(data[key], str) or not data[key]):
            raise ConfigError(f"data.{key}", f"expected a name, got {data[key]!r}.")
    for key in ("image_pattern", "mask_pattern", "ignore_pattern"):
        if data[key] is not None:
            try:
                pattern_regex(data[key], f"data.{key}")
            except BenchError as exc:
                raise ConfigError(f"data.{key}", str(exc).split(": ", 1)[1]) from None
    if data["split_mode"] is not None and data["split_mode"] not in SPLIT_MODES:
        raise ConfigError("data.split_mode", f"must be one of {', '.join(SPLIT_MODES)}, got {data['split_mode']!r} "
                          "(leave it out for the official split where the data ships one).")
    check_folds(data["folds"], data["rank_folds"], data["split_mode"], "data.")
    if not isinstance(data["instances"], bool):
        raise ConfigError("data.instances", f"must be true or false, got {data['instances']!r}.")
    if data["size"] is not None and data["patch"] is not None:
        raise ConfigError("data.patch", "data.size and data.patch exclude each other: size resizes whole images, "
                          "patch trains on crops at native resolution. Give one.")


def check_folds(folds: Optional[int], rank_folds: Optional[int], split_mode: Optional[str], prefix: str = "--") -> None:
    """A sweep's folds: ``folds`` K (2 to 100) with ``split_mode`` unset or kfold, and ``rank_folds``
    (the folds every design trains on, 1 to K) only with folds. ``prefix``: ``--`` names the CLI's
    options, ``data.`` a space's keys.

    Raises:
        ConfigError: a value of the wrong type or out of range, or keys that contradict each other.
    """
    def named(key: str) -> str:
        return prefix + (key.replace("_", "-") if prefix == "--" else key)

    for key, value, low in (("folds", folds, 2), ("rank_folds", rank_folds, 1)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not low <= value <= 100):
            raise ConfigError(named(key), f"must be a whole number from {low} to 100, got {value!r}.")
    if folds is not None and split_mode in ONE_SPLIT_MODES:
        raise ConfigError(named("folds"), f"{named('split_mode')} {split_mode} makes one split; folds are k-fold "
                          f"cross-validation. Leave out {named('split_mode')} (or give kfold).")
    if rank_folds is not None:
        total = folds or (DEFAULT_FOLDS if split_mode == "kfold" else None)
        if total is None:
            raise ConfigError(named("rank_folds"), f"ranks designs on some of k folds: give {named('folds')} K too.")
        if rank_folds > total:
            raise ConfigError(named("rank_folds"), f"{rank_folds} is more than the {total} folds; choose 1 to {total} "
                              "(the front is re-evaluated on all folds at the end).")


@dataclass(frozen=True)
class DataSource:
    """A dataset folder (None: synthetic) with its layout (None: detected), and the protocol.

    ``protocol_given`` says whether the user chose the protocol (else a default applies:
    a checkpoint's own, or a space's). ``split_mode``: official, random or kfold (None: official
    where the data ships a split, else random); ``folds``: K of a k-fold cross-validation.
    """

    folder: Optional[str] = None
    layout: Optional[Layout] = None
    protocol: Protocol = field(default_factory=Protocol)
    protocol_given: bool = False
    split_mode: Optional[str] = None
    folds: Optional[int] = None

    @property
    def name(self) -> str:
        return Path(self.folder).name if self.folder else SYNTHETIC

    def load(self, channels: int, synthetic_count: int = 120, seed: int = 0) -> SegmentationData:
        return load_data(self.folder, self.protocol, channels, self.layout, synthetic_count, seed)

    def with_protocol(self, protocol: Protocol) -> "DataSource":
        return replace(self, protocol=protocol, protocol_given=True)

    def split(self, dataset: SegmentationData, seed: int) -> Split:
        """``dataset`` (loaded from this source) split by this source's mode and ``seed``."""
        if self.folds is not None:
            raise BenchError(f"--folds {self.folds}: this command trains on one split; k-fold cross-validation is "
                             "for `bench train`, `bench compare` and `bench run`.")
        return split_dataset(dataset.stems, dataset.source, dataset.content_hash, seed, self.split_mode,
                             dataset.subsets)

    def splits(self, dataset: SegmentationData, seed: int) -> list[Split]:
        """The k-fold splits of ``dataset`` (``folds``, or 5 with mode kfold), else its one split."""
        if self.folds is None and self.split_mode != "kfold":
            return [self.split(dataset, seed)]
        return kfold_splits(dataset.stems, dataset.source, dataset.content_hash, self.folds or DEFAULT_FOLDS, seed)


def data_source(data: Optional[str] = None, *, layout: Optional[str] = None, images: Optional[str] = None,
                masks: Optional[str] = None, image_pattern: Optional[str] = None,
                mask_pattern: Optional[str] = None, ignore: Optional[str] = None,
                ignore_pattern: Optional[str] = None, instances: bool = False, size: Optional[int] = None,
                patch: Optional[int] = None, scale: Optional[float] = None,
                oversample: Optional[float] = None, split_mode: Optional[str] = None,
                folds: Optional[int] = None) -> DataSource:
    """A :class:`DataSource` from the CLI options / space keys of the same names.

    ``images`` and ``masks`` (relative to ``data`` when given, else to the working folder) name
    the folders explicitly; patterns alone adjust a detected or ``layout``-named one.

    Raises:
        BenchError: one folder without the other, explicit folders with ``layout``, a pattern
            without ``{stem}``, a protocol that contradicts itself.
    """
    if (images is None) != (masks is None):
        raise BenchError(f"--images and --masks go together (got only {'--images' if images else '--masks'}): "
                         "name the image folder and the mask folder.")
    if images is not None and layout is not None:
        raise BenchError(f"--layout {layout} and --images/--masks exclude each other: the layout names its own "
                         "folders.")
    chosen: Optional[Layout] = None
    folder = data if data not in (None, SYNTHETIC) else None
    if images is not None:
        base = Path(folder) if folder else Path.cwd()
        paths = [base / images, base / masks] + ([base / ignore] if ignore else [])
        for path, option in zip(paths, ("--images", "--masks", "--ignore")):
            if not path.is_dir():
                raise BenchError(f"{option} {path}: no such folder.")
        root = Path(os.path.commonpath([p.resolve() for p in paths]))
        folder = str(root)
        chosen = explicit_layout(*(os.path.relpath(p.resolve(), root) for p in paths[:2]), image_pattern,
                                 mask_pattern, os.path.relpath(paths[2].resolve(), root) if ignore else None,
                                 ignore_pattern, instances)
    elif any((layout, image_pattern, mask_pattern, ignore, ignore_pattern, instances)):
        if folder is None:
            raise BenchError("--layout, the name patterns, --ignore and --instances describe a dataset folder: give "
                             "--data FOLDER (or --images and --masks).")
        if not Path(folder).is_dir():
            raise BenchError(f"--data {folder}: no such dataset folder.")
        base = named_layout(layout) if layout else detect_layout(Path(folder))[1]
        chosen = with_patterns(base, mask_pattern, image_pattern, ignore, ignore_pattern, instances)
    given = any(v is not None for v in (size, patch, scale, oversample))
    protocol = Protocol(size=size, patch=patch, scale=1.0 if scale is None else scale,
                        oversample=0.33 if oversample is None else oversample)
    if split_mode is not None and split_mode not in SPLIT_MODES:
        raise BenchError(f"--split-mode {split_mode}: unknown; choose one of {', '.join(SPLIT_MODES)}.")
    if folds is not None and split_mode in ONE_SPLIT_MODES:
        raise BenchError(f"--folds {folds} and --split-mode {split_mode} exclude each other: folds are k-fold "
                         "cross-validation (--split-mode kfold).")
    return DataSource(folder, chosen, protocol, given, split_mode, folds)


def source_from_space(data: dict[str, Any], folder: Optional[str] = None,
                      protocol: Optional[dict[str, Any]] = None) -> DataSource:
    """The source a space's ``data:`` section names, with ``folder`` (``--data``) and
    ``protocol`` options (``--size``, ``--patch``, ... where given) in place of its own."""
    keys = {k: data.get(k) for k in FOLDER_KEYS}
    if folder is not None:  # another folder: the space's layout keys described its own
        keys = {k: None for k in FOLDER_KEYS}
    chosen = {k: data.get(k) for k in PROTOCOL_KEYS}
    if protocol and any(v is not None for v in protocol.values()):
        chosen = {k: protocol.get(k) for k in PROTOCOL_KEYS}
    keys["instances"] = bool(keys["instances"])
    return data_source(folder or data.get("source"), **keys, **chosen, split_mode=data.get("split_mode"))
