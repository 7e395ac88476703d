"""Reading image and mask files, and deciding what a dataset's mask values mean."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..core.errors import BenchError
from ..core.limits import how_to_raise, limit

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif")


def read_image(path: Path) -> np.ndarray:
    """(H, W, C) uint8 (grayscale as C = 1; alpha dropped). Raises BenchError if unreadable."""
    with _open(path) as image:
        if image.mode in ("RGBA", "LA", "P", "CMYK", "YCbCr", "HSV"):
            image = image.convert("RGB")
        elif image.mode in ("I;16", "I", "F"):
            array = np.asarray(image, dtype=np.float64)
            span = array.max() - array.min()
            scaled = (array - array.min()) / span * 255 if span else np.zeros_like(array)
            return scaled.astype(np.uint8)[..., None]
        elif image.mode not in ("L", "RGB"):
            image = image.convert("L")
        array = np.array(image)  # a writable copy: torch refuses read-only arrays
    return array[..., None] if array.ndim == 2 else array


def read_mask(path: Path) -> np.ndarray:
    """(H, W) integer values as stored: palette indices for palette images, the first channel
    otherwise. Raises BenchError if unreadable."""
    with _open(path) as mask:
        array = np.array(mask)
    return array[..., 0] if array.ndim == 3 else array


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header."""
    with _open(path, load=False) as image:
        return image.size


def _too_large(path: Path, width: int, height: int) -> BenchError:
    pixels = width * height
    size = f"is {width} x {height} = {pixels:,} pixels" if pixels else "decodes to too many pixels"
    return BenchError(f"{path} {size}, over the limit of {limit('image_pixels'):,}: downscale it. "
                      f"{how_to_raise('image_pixels', max(pixels, 2 * limit('image_pixels')))}")


class _open:
    def __init__(self, path: Path, load: bool = True) -> None:
        self.path, self.load = path, load

    def __enter__(self) -> Image.Image:
        try:
            self.image = Image.open(self.path)  # the header only
            width, height = self.image.size
            if width * height > limit("image_pixels"):
                raise _too_large(self.path, width, height)
            if self.load:
                self.image.load()
        except Image.DecompressionBombError:  # PIL's own guard, on files that lie in their header
            raise _too_large(self.path, 0, 0) from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise BenchError(
                f"{self.path}: cannot read this image ({exc}). The file may be truncated or not "
                "an image; replace it or remove it together with its mask."
            ) from None
        return self.image

    def __exit__(self, *exc: object) -> None:
        self.image.close()


IGNORE = 255  # label value of pixels left out of the loss and of every metric
MAX_INDEX_CLASSES = 32
BAND = 64  # binary masks keep their pixels within BAND of 0 or of 255 (JPEG noise, interpolation)
BINARY_SHARE = 0.85  # ... for at least this share of their pixels (edges of small objects, JPEG)


@dataclass(frozen=True)
class MaskEncoding:
    """How one mask file's stored values map to class indices, decided from that file alone.

    kind: ``binary01`` (values 0/1), ``binary255`` (values near 0 and near 255, as stored 0/255,
    resized with interpolation or saved as JPEG: foreground > 127), ``index`` (values are class
    indices 0..K-1) or ``instances`` (values are instance ids: foreground > 0).
    """

    kind: str
    classes: int  # background included
    interpolated: bool = False  # binary255 with values between 0 and 255 (resized, JPEG)

    def to_classes(self, mask: np.ndarray) -> np.ndarray:
        """(H, W) uint8 class indices."""
        if self.kind == "binary255":
            return (mask > 127).astype(np.uint8)
        if self.kind == "instances":
            return (mask > 0).astype(np.uint8)
        return mask.astype(np.uint8)

    def describe(self) -> str:
        return {
            "binary01": "binary, stored 0/1",
            "binary255": "binary, stored near 0/255 (foreground > 127)",
            "index": f"class indices 0..{self.classes - 1}",
            "instances": "instance ids, merged to binary (foreground > 0)",
        }[self.kind]


def mask_encoding(mask: np.ndarray, path: Path, instances: bool = False) -> MaskEncoding:
    """The encoding of the mask stored in ``path`` (values ``mask`` (H, W)), from this file alone.

    Raises:
        BenchError: values that are neither binary, nor class indices, nor (with ``instances``)
            instance ids: noise with no two dominant modes, naming the file.
    """
    if instances:
        return MaskEncoding("instances", 2)
    values, counts = np.unique(mask, return_counts=True)
    if values.min() < 0:
        raise BenchError(f"{path}: negative mask values ({int(values.min())}); masks hold 0/255, 0/1 or "
                         "class indices 0..K-1.")
    if values.max() <= 1:
        return MaskEncoding("binary01", 2)
    if values.max() < MAX_INDEX_CLASSES:
        return MaskEncoding("index", int(values.max()) + 1)
    near_ends = counts[(values < BAND) | ((values > 255 - BAND) & (values <= 255))].sum()
    if values.max() <= 255 and near_ends >= BINARY_SHARE * counts.sum():
        return MaskEncoding("binary255", 2, interpolated=not set(values.tolist()) <= {0, 255})
    shown = ", ".join(map(str, values[:12].tolist())) + (" ..." if len(values) > 12 else "")
    raise BenchError(
        f"{path}: mask values {{{shown}}} ({len(values)} distinct) are neither binary (0/1, or near 0 and "
        f"255 for {BINARY_SHARE:.0%} of the pixels) nor class indices 0..K-1 (K <= {MAX_INDEX_CLASSES}); "
        f"only {near_ends / counts.sum():.0%} of its pixels are near 0 or 255. Save it as 0/255 or as class "
        "indices (a palette PNG keeps them); if its values are instance ids, give --instances."
    )
