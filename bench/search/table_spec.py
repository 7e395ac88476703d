"""A space's ``table:`` section: how its tabulated benchmark is built (``bench tabulate``).

::

    table:
      seeds: 5                 # every design trained with seeds 0 .. seeds-1
      calibration: {designs: 10, seeds: 10}   # a seeded subset trained with more seeds
      fidelities: [1, 3]       # epochs (besides the last) at which the test set is also scored
      images: 320              # a seeded subset of the data set's images (all when absent)
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Optional

from ..core.errors import ConfigError, did_you_mean

_KEYS = ("seeds", "calibration", "fidelities", "images")


@dataclass(frozen=True)
class TableSpec:
    """How a tabulated benchmark of a space is built."""

    seeds: int = 5
    calibration_designs: int = 10
    calibration_seeds: int = 10
    fidelities: tuple[int, ...] = ()
    images: Optional[int] = None

    def to_dict(self) -> dict[str, Any]:
        plain = asdict(self)
        plain["fidelities"] = list(self.fidelities)
        return plain


def parse_table(raw: Any, epochs: int) -> Optional[TableSpec]:
    """The ``table:`` section of a space file (None when absent), checked against the recipe's
    ``epochs``.

    Raises:
        ConfigError: an unknown key or a value out of range, at ``table.<key>``.
    """
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError("table", f"expected a mapping, got {raw!r}.")
    for key in raw:
        if key not in _KEYS:
            raise ConfigError(f"table.{key}", "not a table setting.",
                              hint=f"{did_you_mean(str(key), _KEYS)} Settings: {', '.join(_KEYS)}.".lstrip())

    def whole(path: str, value: Any, low: int, high: int) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ConfigError(path, f"must be a whole number from {low} to {high:,}, got {value!r}.")
        return value

    seeds = whole("table.seeds", raw.get("seeds", 5), 1, 100)
    calibration = raw.get("calibration") or {}
    if not isinstance(calibration, dict) or set(calibration) - {"designs", "seeds"}:
        raise ConfigError("table.calibration", f"expected {{designs: N, seeds: K}}, got {calibration!r}.")
    designs = whole("table.calibration.designs", calibration.get("designs", 0), 0, 10_000)
    calibration_seeds = whole("table.calibration.seeds", calibration.get("seeds", seeds), seeds, 100)
    fidelities = raw.get("fidelities", [])
    if not isinstance(fidelities, list):
        raise ConfigError("table.fidelities", f"expected a list of epochs, got {fidelities!r}.")
    for i, e in enumerate(fidelities):
        whole(f"table.fidelities[{i}]", e, 1, epochs - 1 if epochs > 1 else 1)
    images = raw.get("images")
    if images is not None:
        whole("table.images", images, 10, 10_000_000)
    return TableSpec(seeds, designs, calibration_seeds, tuple(sorted(set(fidelities))), images)
