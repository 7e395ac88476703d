"""The house's floor plan: every wing of ``bench`` imports only the wings below it, and Optuna
only from the search wing (read from the source's imports, without importing anything)."""
from __future__ import annotations

import ast
from pathlib import Path


PACKAGE = Path(__file__).resolve().parents[1] / "bench"
# lowest first; a wing may import its own modules and any wing on a lower floor
FLOORS = [("core",), ("blocks", "data"), ("arch",), ("training",), ("search",), ("results",), ("run",), ("cli",)]
FLOOR = {wing: level for level, wings in enumerate(FLOORS) for wing in wings}


def wing_of(module: str) -> str:
    """``bench.search.space`` -> ``search``; the package's own top modules (the console entry
    point, ``bench.deploy``) stand with the command line, ``cli``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in FLOOR) else "cli"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in ``path``, relative ones resolved."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from . import x` and `from bench import x` name modules in their names
            names = [f"{target}.{a.name}" for a in node.names] if target.count(".") < 1 else [target]
            found += [(node.lineno, name) for name in names]
    return found


def crossings() -> list[str]:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = wing_of(module_name(path))
        for line, target in imports(path):
            if target.startswith("optuna") and here != "search":
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}: only bench.search touches Optuna")
            if not target.startswith("bench.") or target == "bench.__version__":
                continue
            there = wing_of(target)
            if there not in FLOOR:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}, in no wing")
            elif there != here and FLOOR[there] >= FLOOR[here]:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({here}) imports "
                             f"{target} ({there}), which is not below it")
    return wrong


def test_every_wing_imports_only_the_wings_below_it():
    assert crossings() == []


def test_every_module_lives_in_a_wing():
    loose = [p.name for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__", "console")]
    assert loose == [], "modules outside the wings (bench/core, arch, ...): " + ", ".join(loose)


def test_every_package_folder_is_installed():
    """``pip install .`` (not editable) installs the packages setup.cfg lists: each folder must be there."""
    import configparser

    config = configparser.ConfigParser()
    config.read(PACKAGE.parent / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    folders = {module_name(p.parent / "__init__.py") for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE}
    assert folders <= listed, f"add to setup.cfg [options] packages: {sorted(folders - listed)}"


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    """The floor plan test is not blind: an upward import and an Optuna import outside the search
    wing, planted in a copy of the package, are both reported."""
    import shutil

    copy = tmp_path / "bench"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "core" / "planted.py").write_text("from ..search import space\nimport optuna\n")
    monkeypatch.setitem(globals(), "PACKAGE", copy)
    found = crossings()
    assert any("core/planted.py:1" in f and "not below it" in f for f in found), found
    assert any("core/planted.py:2" in f and "only bench.search touches Optuna" in f for f in found), found
