"""What a run records of the data it trained on, as an MLflow dataset input would carry it: a
name, where the files are, a digest that changes when the split changes (the split hash), a
schema and a profile (image counts per subset, how the test set was made, sizes)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .dataset import SYNTHETIC, SegmentationData
from .split import Split

DIGEST_LENGTH = 12  # as `data.split` shows the split hash; MLflow's digest column holds at most 36


def lineage(dataset: SegmentationData, split: Split) -> dict[str, Any]:
    """``dataset`` and its ``split`` as a dataset input: ``name``, ``source``, ``source_type``,
    ``digest``, ``schema`` and ``profile`` (JSON texts)."""
    folder = dataset.source != SYNTHETIC
    sizes = {f"{w}x{h}": n for (h, w), n in dataset.sizes().most_common()}
    profile = {"images": len(dataset.stems), "train": len(split.train), "val": len(split.val), "test": len(split.test),
               "split": split.describe(), "split_hash": split.hash, "protocol": dataset.protocol.describe(),
               "working_sizes": sizes, "content_hash": dataset.content_hash}
    schema = {"image": f"uint8 ({int(dataset.images[0].shape[0])}, H, W)",
              "mask": "uint8 (H, W) class indices, 255 left out", "classes": dataset.classes,
              "encoding": dataset.encoding}
    return {"name": Path(dataset.source).name if folder else SYNTHETIC, "source": dataset.source,
            "source_type": "local" if folder else "code", "digest": split.hash[:DIGEST_LENGTH],
            "schema": json.dumps(schema), "profile": json.dumps(profile)}
