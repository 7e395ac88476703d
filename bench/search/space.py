"""Search spaces: which parts of an architecture a sweep varies, what it optimises, and how.

A space file (``search_spaces/*.yaml``)::

    architecture: tinyunet            # built-in name or path
    vary:
      encoder.block:                  # a block slot: choose a whole block ...
        cmrf: {N: {choices: [2, 4, 8, 16]}}   # ... each with its own (conditional) parameters
        double_conv: {}
      width_multiplier: {float: [0.5, 1.0]}   # a value: {choices: [...]}, {int: [lo, hi]} or
                                              # {float: [lo, hi]}, with log: true and step
    objectives: {val_dice: maximize, params: minimize}
    constraints: {params: {max: 1000000}}
    recipe: {name: default, epochs: 3}
    data: {source: synthetic, size: 48, count: 96}
    study: {sampler: nsga2, trials: 12, seed: 0, repeats: 3, stock: true, pruner: mo_asha}

``study.trials`` counts distinct networks evaluated (trained, or stopped early by the pruner):
samples that repeat a known network or break a constraint are recorded but not counted.
``study.population`` sizes NSGA-II's generations and ``study.startup`` TPE's random start
(``auto``: from ``trials``, see :mod:`bench.search.samplers`); ``study.pruner`` is a pruner of
:mod:`bench.search.pruners`. ``study.seed`` seeds the split and the first sampler of a
study; every later process or resume on the study draws with a seed of its own (recorded).

``study.repeats`` trains every design that many times (seeds seed, seed+1, ... on one split);
objectives are the means, every metric gets its std and t 95 % interval. ``study.stock`` (default
true) trains the base architecture first when the space can express it, so that every front
member is compared with it image by image.

Ties come from the architecture (``same_as``): varying ``encoder.block`` of TinyU-Net varies its
decoder too. Every choice is checked against the grammar and the block registry when the file is
loaded, so a bad space fails before any trial runs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

from ..blocks import BLOCKS
from ..arch.config import SCHEMA, schema_at, builtin_dir, find_architecture, get_path, load_yaml, resolve_architecture
from ..data.source import SECTION_DEFAULTS, check_data_section

KEEP_WEIGHTS = ("front", "all", "none")  # which trained networks of a sweep keep their weights (bench.run.weights)
from ..core.errors import ConfigError, did_you_mean
from .objectives import BEFORE_TRAINING, OBJECTIVES
from .pruners import Pruner, parse_pruner
from .samplers import sampler_named
from .table_spec import TableSpec, parse_table
from ..training.recipe import RECIPES, Recipe, RecipeError

_KEYS = ("description", "architecture", "vary", "objectives", "constraints", "recipe", "data", "study", "table")


@dataclass(frozen=True)
class Distribution:
    """One sampled value: categorical ``choices``, or an int/float range."""

    kind: str  # "choices", "int" or "float"
    choices: tuple = ()
    low: float = 0
    high: float = 0
    log: bool = False
    step: Optional[float] = None


@dataclass(frozen=True)
class BlockChoice:
    """A block slot chosen among whole blocks, each with distributions for its parameters."""

    options: dict[str, dict[str, Distribution]]


@dataclass
class SearchSpace:
    name: str
    source: Path
    architecture: str
    vary: dict[str, Distribution | BlockChoice]
    objectives: dict[str, str]
    constraints: dict[str, dict[str, float]]
    recipe: Recipe
    data: dict[str, Any]
    study: dict[str, Any]
    description: str = ""
    raw: dict = field(default_factory=dict)
    table: Optional[TableSpec] = None  # how its tabulated benchmark is built (bench tabulate)

    @property
    def pruner(self) -> Pruner:
        return self.study["pruner"]


def describe(dist: Distribution | BlockChoice) -> str:
    """What a ``vary`` entry samples, for people: ``cmrf (N in {2, 4}), double_conv``,
    ``{0.25, 0.5}``, ``float in [0.5, 1.0] (log)``."""
    if isinstance(dist, BlockChoice):
        return ", ".join(name + (" (" + ", ".join(f"{p} in {describe(d)}" for p, d in params.items()) + ")"
                                 if params else "") for name, params in dist.options.items())
    if dist.kind == "choices":
        return "{" + ", ".join(map(str, dist.choices)) + "}"
    scale = ", log" if dist.log else ""
    step = f", step {dist.step}" if dist.step else ""
    return f"{dist.kind} in [{dist.low}, {dist.high}]{step}{scale}"


def override_study(space: SearchSpace, sampler: Optional[str] = None, pruner: Optional[str] = None) -> SearchSpace:
    """``space`` with another sampler or pruner (its default settings), as ``--sampler`` and
    ``--pruner`` give them; checked as the file's ``study`` section is.

    Raises:
        ConfigError: an unknown name, or a pruner the study cannot use.
    """
    study = dict(space.study)
    if sampler is not None:
        study["sampler"] = sampler_named(sampler, "--sampler").name
    if pruner is not None:
        try:
            study["pruner"] = parse_pruner(pruner, space.objectives, space.recipe.epochs)
        except ConfigError as exc:
            raise ConfigError("--pruner", exc.message, hint=exc.hint) from None
    return replace(space, study=study)


def override_recipe(space: SearchSpace, **overrides: Any) -> SearchSpace:
    """``space`` with recipe settings replaced (None values ignored), as ``bench run``'s training
    speed options give them.

    Raises:
        ConfigError: a value out of its range, named by its option.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    if not given:
        return space
    try:
        return replace(space, recipe=replace(space.recipe, **given))
    except RecipeError as exc:
        raise ConfigError(f"--{exc.field.replace('_', '-')}", exc.message) from None


def space_size(space: SearchSpace) -> Optional[int]:
    """How many distinct samples ``space`` can draw, or None when a float range makes it
    unbounded. Distinct samples may still build the same network (a tie, a rounded width)."""
    def size(dist: Distribution) -> Optional[int]:
        if dist.kind == "choices":
            return len(set(map(repr, dist.choices)))
        if dist.kind == "int":
            return (int(dist.high) - int(dist.low)) // int(dist.step or 1) + 1
        return None if dist.step is None else int(math.floor((dist.high - dist.low) / dist.step + 1e-9)) + 1

    total = 1
    for dist in space.vary.values():
        if isinstance(dist, BlockChoice):
            options = 0
            for params in dist.options.values():
                sizes = [size(sub) for sub in params.values()]
                if None in sizes:
                    return None
                options += math.prod(sizes)
            total *= options
        else:
            n = size(dist)
            if n is None:
                return None
            total *= n
    return total


def builtin_spaces() -> dict[str, Path]:
    return {p.stem: p for p in sorted(builtin_dir("search_spaces").glob("*.yaml"))}


def find_space(ref: str) -> Path:
    if ref.endswith((".yaml", ".yml")) or "/" in ref:
        if not Path(ref).is_file():
            raise ConfigError("", f"search space file {ref!r} not found.")
        return Path(ref)
    known = builtin_spaces()
    if ref not in known:
        raise ConfigError("", f"unknown search space {ref!r}.",
                          hint=f"{did_you_mean(ref, known)} Built-in: {', '.join(known)}.".lstrip())
    return known[ref]


def load_space(ref: str) -> SearchSpace:
    """Load and validate a search space (built-in name or path).

    Raises:
        ConfigError: anything wrong, with the file, line and path.
    """
    path = find_space(ref)
    raw, lines = load_yaml(path, "a search space file")
    try:
        return _validate(raw, path)
    except ConfigError as exc:
        line = None
        probe = exc.path
        while probe and line is None:
            line, probe = lines.get(probe), probe.rpartition(".")[0]
        raise exc.located(path, line) from None


def _validate(raw: dict, path: Path) -> SearchSpace:
    for key in raw:
        if key not in _KEYS:
            raise ConfigError(str(key), "unknown key of a search space.",
                              hint=f"{did_you_mean(str(key), _KEYS)} Keys: {', '.join(_KEYS)}.".lstrip())
    for key in ("architecture", "vary", "objectives"):
        if key not in raw:
            raise ConfigError(key, f"missing; a search space needs {key}.")
    base_file = find_architecture(str(raw["architecture"]), relative_to=path.parent)
    # a built-in name stays a name; a file is kept absolute, so trials find it from any folder
    architecture = str(raw["architecture"]) if base_file.parent == builtin_dir("architectures") \
        else str(base_file.resolve())
    base = resolve_architecture(architecture).config
    if not isinstance(raw["vary"], dict) or not raw["vary"]:
        raise ConfigError("vary", "must map config paths to what to sample, e.g. encoder.block: {...}.")
    vary = {str(p): _vary_entry(str(p), spec, base) for p, spec in raw["vary"].items()}
    objectives = _objectives(raw["objectives"])
    constraints = _constraints(raw.get("constraints") or {})
    recipe = _recipe(raw.get("recipe") or {})
    data = _section(raw, "data", {"source": "synthetic", "size": 48, "count": 96, **SECTION_DEFAULTS})
    if data["patch"] is not None and "size" not in (raw.get("data") or {}):
        data["size"] = None  # patches at native resolution: no resize
    study = _section(raw, "study", {"sampler": "nsga2" if len(objectives) > 1 else "tpe", "trials": 12, "seed": 0,
                                    "repeats": 1, "stock": True, "timeout": None, "pruner": "none",
                                    "population": "auto", "startup": "auto", "keep_weights": "front"})
    if not isinstance(data["source"], str) or not data["source"]:
        raise ConfigError("data.source", f"expected a folder or 'synthetic', got {data['source']!r}.")
    check_data_section(data)
    for section, key, low, high in (("data", "count", 3, 100_000),
                                    ("study", "trials", 1, 1_000_000), ("study", "repeats", 1, 100),
                                    ("study", "seed", 0, 2**31 - 1)):
        value = (data if section == "data" else study)[key]
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ConfigError(f"{section}.{key}", f"must be a whole number from {low} to {high:,}, got {value!r}.")
    timeout = study["timeout"]
    if timeout is not None and not (isinstance(timeout, (int, float)) and not isinstance(timeout, bool)
                                    and math.isfinite(timeout) and timeout > 0):
        raise ConfigError("study.timeout", f"must be a positive number of seconds, got {timeout!r}.")
    if study["keep_weights"] not in KEEP_WEIGHTS:
        raise ConfigError("study.keep_weights", f"must be one of {', '.join(KEEP_WEIGHTS)}, got {study['keep_weights']!r} "
                          "(front: the front's and the stock network's weights; all; none).")
    if not isinstance(study["stock"], bool):
        raise ConfigError("study.stock", f"must be true or false, got {study['stock']!r}.")
    for key in ("population", "startup"):
        value, low = study[key], 2 if key == "population" else 0
        if value != "auto" and (not isinstance(value, int) or isinstance(value, bool) or not low <= value <= 10_000):
            raise ConfigError(f"study.{key}", f"must be auto or a whole number from {low} to 10,000, got {value!r}.")
    study["pruner"] = parse_pruner(study["pruner"], objectives, recipe.epochs)
    sampler_named(study["sampler"])
    return SearchSpace(path.stem, path, architecture, vary, objectives, constraints, recipe, data,
                       study, str(raw.get("description", "")), raw, parse_table(raw.get("table"), recipe.epochs))


def _section(raw: dict, name: str, defaults: dict[str, Any]) -> dict[str, Any]:
    """A mapping section with its defaults filled in; unknown keys refused."""
    given = raw.get(name) or {}
    if not isinstance(given, dict):
        raise ConfigError(name, f"expected a mapping, got {given!r}.")
    for key in given:
        if key not in defaults:
            raise ConfigError(f"{name}.{key}", f"not a {name} setting.",
                              hint=f"{did_you_mean(str(key), defaults)} Settings: {', '.join(defaults)}.".lstrip())
    return {**defaults, **given}


def _vary_entry(path: str, spec: Any, base: dict) -> Distribution | BlockChoice:
    fld = schema_at(path)
    slot_path, _, param = path.rpartition(".")
    slot = schema_at(slot_path) if slot_path else None
    if fld is None and slot is not None and slot.kind == "slot":  # a block parameter: encoder.block.N
        block = get_path(base, slot_path)
        known = BLOCKS.get(block["type"], slot_path).params if block else {}
        if param not in known:
            what = f"is {block['type']}, which" if block else "is not set, so it"
            raise ConfigError(f"vary.{path}", f"the base architecture's {slot_path} {what} has no parameter '{param}'.",
                              hint=did_you_mean(param, known))
        return _distribution(f"vary.{path}", spec)
    if fld is None:
        paths = list(_grammar_paths(SCHEMA, ""))
        raise ConfigError(f"vary.{path}", f"'{path}' is not a slot or value of the architecture grammar.",
                          hint=f"{did_you_mean(path, paths)} Slots and values: {', '.join(paths)}.".lstrip())
    if fld.kind == "slot":
        if not isinstance(spec, dict) or not spec:
            raise ConfigError(f"vary.{path}", "must map block names to their parameters' distributions.")
        options = {}
        for name, params in spec.items():
            entry = BLOCKS.get(name, f"vary.{path}.{name}", fld.block_kinds) if name in BLOCKS else None
            if entry is None:
                allowed = BLOCKS.names(fld.block_kinds)
                raise ConfigError(f"vary.{path}.{name}", f"unknown block {name!r} for this slot.",
                                  hint=f"{did_you_mean(str(name), allowed)} Blocks: {', '.join(allowed)}.".lstrip())
            BLOCKS.get(name, f"vary.{path}", fld.block_kinds)  # right kind for the slot
            params = params or {}
            for param in params:
                if param not in entry.params:
                    raise ConfigError(f"vary.{path}.{name}.{param}", f"block '{name}' has no parameter '{param}'.",
                                      hint=did_you_mean(str(param), entry.params))
            options[str(name)] = {str(p): _distribution(f"vary.{path}.{name}.{p}", d) for p, d in params.items()}
        return BlockChoice(options)
    return _distribution(f"vary.{path}", spec)


def _grammar_paths(schema: dict, prefix: str):
    for name, fld in schema.items():
        path = f"{prefix}.{name}" if prefix else name
        if fld.kind == "section":
            yield from _grammar_paths(fld.fields, path)
        elif name not in ("name", "description"):
            yield path


def _distribution(path: str, spec: Any) -> Distribution:
    if not isinstance(spec, dict):
        return Distribution("choices", (spec,))  # a fixed value
    unknown = set(spec) - {"choices", "int", "float", "log", "step"}
    if unknown:
        raise ConfigError(f"{path}.{sorted(unknown)[0]}", "not part of a distribution.",
                          hint="A distribution is {choices: [...]}, or {int: [lo, hi]} / {float: [lo, hi]} with "
                          "optional log: true and step.")
    log, step = spec.get("log", False), spec.get("step")
    if not isinstance(log, bool):
        raise ConfigError(f"{path}.log", f"must be true or false, got {log!r}.")
    if "choices" in spec:
        if not isinstance(spec["choices"], list) or not spec["choices"]:
            raise ConfigError(f"{path}.choices", f"expected a non-empty list, got {spec['choices']!r}.")
        return Distribution("choices", tuple(spec["choices"]))
    for kind in ("int", "float"):
        if kind in spec:
            bounds = spec[kind]
            number = int if kind == "int" else (int, float)
            if not (isinstance(bounds, list) and len(bounds) == 2 and all(
                    isinstance(b, number) and not isinstance(b, bool) and math.isfinite(b) for b in bounds)
                    and bounds[0] <= bounds[1]):
                raise ConfigError(f"{path}.{kind}", f"expected [low, high] of finite {kind}s with low <= high, "
                                  f"got {bounds!r}.")
            if log and bounds[0] <= 0:
                raise ConfigError(f"{path}.{kind}", f"a log scale needs low > 0, got {bounds[0]!r}.",
                                  hint="Start the range above 0, or drop log: true.")
            if step is not None and not (isinstance(step, number) and not isinstance(step, bool)
                                         and math.isfinite(step) and step > 0):
                raise ConfigError(f"{path}.step", f"expected a positive {kind}, got {step!r}.")
            if step is not None and log:
                raise ConfigError(f"{path}.step", "a log scale takes no step (Optuna refuses both).")
            return Distribution(kind, (), bounds[0], bounds[1], log, step)
    raise ConfigError(path, f"expected {{choices: [...]}}, {{int: [lo, hi]}} or {{float: [lo, hi]}}, got {spec!r}.")


def _objectives(raw: Any) -> dict[str, str]:
    """Objective names (from :data:`bench.search.objectives.OBJECTIVES`) with their directions; a list
    takes each objective's default direction."""
    if isinstance(raw, list):
        raw = {name: OBJECTIVES.get(str(name), f"objectives.{name}").direction for name in raw}
    if not isinstance(raw, dict) or not raw:
        raise ConfigError("objectives", "must map objective names to maximize/minimize, "
                          "e.g. {val_dice: maximize, params: minimize}.")
    out = {}
    for name, direction in raw.items():
        OBJECTIVES.get(str(name), f"objectives.{name}")
        if direction not in ("maximize", "minimize"):
            raise ConfigError(f"objectives.{name}", f"direction must be maximize or minimize, got {direction!r}.")
        out[str(name)] = direction
    return out


def _constraints(raw: Any) -> dict[str, dict[str, float]]:
    if not isinstance(raw, dict):
        raise ConfigError("constraints", f"expected a mapping like {{params: {{max: 1000000}}}}, got {raw!r}.")
    out = {}
    for name, bound in raw.items():
        OBJECTIVES.get(str(name), f"constraints.{name}", known=BEFORE_TRAINING)
        if not isinstance(bound, dict) or not set(bound) <= {"max", "min"} or not bound:
            raise ConfigError(f"constraints.{name}", f"expected {{max: value}} and/or {{min: value}}, got {bound!r}.")
        for side, value in bound.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ConfigError(f"constraints.{name}.{side}", f"expected a finite number, got {value!r}.")
        out[str(name)] = {k: float(v) for k, v in bound.items()}
    return out


def _recipe(raw: dict) -> Recipe:
    from ..training.recipe import get_recipe

    name = raw.get("name", "default")
    if name not in RECIPES:
        raise ConfigError("recipe.name", f"unknown recipe {name!r}.",
                          hint=f"{did_you_mean(str(name), RECIPES)} Recipes: {', '.join(RECIPES)}.".lstrip())
    fields = set(Recipe.__dataclass_fields__)
    for key in raw:
        if key != "name" and key not in fields:
            raise ConfigError(f"recipe.{key}", "not a recipe setting.",
                              hint=f"{did_you_mean(str(key), fields)} Settings: {', '.join(sorted(fields))}.".lstrip())
    try:
        return get_recipe(name, **{k: v for k, v in raw.items() if k != "name"})
    except RecipeError as exc:
        raise ConfigError(f"recipe.{exc.field}", exc.message) from None
