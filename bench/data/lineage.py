"""What a run records of the data it trained on, as an MLflow dataset input would carry it: a
name, where the files are, a digest that changes when the split changes (the split hash), a
schema and a profile (image counts per subset, how the test set was made, sizes)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .dataset import SYNTHETIC, SegmentationData
from .split import Split, describe_splits

DIGEST_LENGTH = 12  # as `data.split` shows the split hash; MLflow's digest column holds at most 36


def lineage(dataset: SegmentationData, split: Split | list[Split]) -> dict[str, Any]:
    """``dataset`` and its ``split`` (or k folds: the digest then covers every fold's hash) as a
    dataset input: ``name``, ``source``, ``source_type``, ``digest``, ``schema`` and ``profile``
    (JSON texts)."""
    folder = dataset.source != SYNTHETIC
    sizes = {f"{w}x{h}": n for (h, w), n in dataset.sizes().most_common()}
    splits = split if isinstance(split, list) else [split]
    digest = splits[0].hash if len(splits) == 1 else hashlib.sha256(" ".join(s.hash for s in splits).encode()).hexdigest()
    first = splits[0]
    profile = {"images": len(dataset.stems), "train": len(first.train), "val": len(first.val), "test": len(first.test),
               "split": describe_splits(splits), "split_hash": digest, "protocol": dataset.protocol.describe(),
               "working_sizes": sizes, "content_hash": dataset.content_hash}
    schema = {"image": f"uint8 ({int(dataset.images[0].shape[0])}, H, W)",
              "mask": "uint8 (H, W) class indices, 255 left out", "classes": dataset.classes,
              "encoding": dataset.encoding}
    return {"name": Path(dataset.source).name if folder else SYNTHETIC, "source": dataset.source,
            "source_type": "local" if folder else "code", "digest": digest[:DIGEST_LENGTH],
            "schema": json.dumps(schema), "profile": json.dumps(profile)}
