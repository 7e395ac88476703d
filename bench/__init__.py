"""bench: a benchmarking harness for lightweight medical image segmentation networks."""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["compare", "deploy", "replay", "__version__"]


def __getattr__(name: str) -> Any:
    # torch loads on first use, not on `import bench`: the command line installs its Ctrl-C and
    # SIGTERM handlers before the seconds that loading torch takes (bench.console).
    if name == "deploy":  # bench.deploy(model), as timm's reparameterize_model
        from .arch.reparameterize import deploy

        return deploy
    if name == "compare":  # bench.compare(["tinyunet", "ulite"], ...): bench compare from Python
        from .run.compare import compare

        return compare
    if name == "replay":  # bench.replay(table, space, "nsga2", pruner, trials): a search against a tabulated benchmark
        from .search.replay import replay

        return replay
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
