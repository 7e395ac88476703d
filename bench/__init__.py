"""bench: a benchmarking harness for lightweight medical image segmentation networks."""
__version__ = "0.1.0"
