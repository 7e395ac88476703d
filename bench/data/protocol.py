"""How images meet a network: resized whole to a square, or at native scale in patches.

``resize``: every image and mask resized to ``size`` x ``size`` (aspect not kept), trained and
scored there (fast, and how the seed papers report most sets). ``patch``: images kept at their
own size, or scaled by ``scale`` with the aspect ratio kept; training on random ``patch`` x
``patch`` crops, a share ``oversample`` of them centred on foreground (nnU-Net's 1/3);
validation and test predict whole images with overlapping sliding windows and Gaussian
weighting (MONAI's ``sliding_window_inference``), and every metric, HD95 included, is computed at
each image's own resolution, in native pixels.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Optional

from ..core.errors import BenchError


@dataclass(frozen=True)
class Protocol:
    """The input protocol of a run; recorded with every figure it produces."""

    size: Optional[int] = None  # resize mode: the square side (None: the images' own, all equal)
    patch: Optional[int] = None  # patch mode when set
    scale: float = 1.0
    overlap: float = 0.5
    oversample: float = 0.33

    def __post_init__(self) -> None:
        if self.patch is not None and self.size is not None:
            raise BenchError(f"--size {self.size} and --patch {self.patch} exclude each other: --size resizes "
                             "whole images, --patch trains on crops at native resolution. Give one.")
        if self.patch is None and self.scale != 1.0:
            raise BenchError(f"--scale {self.scale} works with --patch only (with --size, images are resized "
                             "to the square anyway).")
        if not (math.isfinite(self.scale) and 0.05 <= self.scale <= 4):
            raise BenchError(f"--scale {self.scale}: give a factor in [0.05, 4].")
        if not 0 <= self.overlap < 1:
            raise BenchError(f"sliding-window overlap {self.overlap}: give a value in [0, 1).")
        if not 0 <= self.oversample <= 1:
            raise BenchError(f"--oversample {self.oversample}: give a share of patches in [0, 1].")

    @property
    def mode(self) -> str:
        return "patch" if self.patch is not None else "resize"

    @property
    def input_size(self) -> Optional[int]:
        """The side of what the network sees in training (and of each sliding window)."""
        return self.patch if self.patch is not None else self.size

    def describe(self) -> str:
        if self.patch is None:
            if not self.size:
                return "whole images at their own size; metrics there"
            return f"whole images resized to {self.size} x {self.size}; metrics at that size"
        scale = "at native resolution" if self.scale == 1 else f"of images scaled by {self.scale:g} (aspect kept)"
        return (f"{self.patch} px patches {scale}, {self.oversample:.0%} centred on foreground; "
                f"sliding windows (overlap {self.overlap:g}, Gaussian) over whole images; metrics at native size")

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, **asdict(self)}

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> "Protocol":
        return cls(**{k: v for k, v in record.items() if k in cls.__dataclass_fields__})
