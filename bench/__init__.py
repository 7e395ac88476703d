"""bench: a benchmarking harness for lightweight medical image segmentation networks."""
__version__ = "0.1.0"

from .deploy import deploy  # noqa: E402  (bench.deploy(model), as timm's reparameterize_model)

__all__ = ["deploy", "__version__"]
