"""Reading image and mask files, and deciding what a dataset's mask values mean."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import BenchError
from ..limits import how_to_raise, limit

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


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


@dataclass(frozen=True)
class MaskEncoding:
    """How stored mask values map to class indices.

    kind: ``binary01`` (values 0/1), ``binary255`` (0/255, values > 127 are foreground, which
    also covers masks resized with interpolation), or ``index`` (values are class indices).
    """

    kind: str
    classes: int  # background included

    def to_classes(self, mask: np.ndarray) -> np.ndarray:
        if self.kind == "binary255":
            return (mask > 127).astype(np.int64)
        return mask.astype(np.int64)

    def describe(self) -> str:
        return {
            "binary01": "binary, stored 0/1",
            "binary255": "binary, stored 0/255 (foreground > 127)",
            "index": f"class indices 0..{self.classes - 1}",
        }[self.kind]


MAX_INDEX_CLASSES = 32


def detect_encoding(values: set[int], where: str) -> MaskEncoding:
    """The encoding of masks whose stored values (over the whole dataset) are ``values``.

    Raises:
        BenchError: values that are neither binary nor a small set of class indices.
    """
    if values <= {0, 1}:
        return MaskEncoding("binary01", 2)
    # 0/255, or 0/255 resized with interpolation: many distinct values in between
    if values <= {0, 255} or ({0, 255} <= values and len(values) > MAX_INDEX_CLASSES):
        return MaskEncoding("binary255", 2)
    if 0 in values and max(values) < MAX_INDEX_CLASSES:
        return MaskEncoding("index", max(values) + 1)
    shown = ", ".join(map(str, sorted(values)[:12])) + (" ..." if len(values) > 12 else "")
    raise BenchError(
        f"{where}: mask values {{{shown}}} are neither binary (0/1 or 0/255) nor class indices "
        f"0..K-1 (K <= {MAX_INDEX_CLASSES}). Save masks as 0/255 or as class indices, or as a "
        "palette PNG."
    )
