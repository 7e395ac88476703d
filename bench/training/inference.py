"""Label maps from a network, by the data's protocol: batches of whole resized images, or
sliding windows over each image at native resolution (MONAI's ``sliding_window_inference``:
overlapping windows blended with Gaussian weights), brought back to each image's own size."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.dataset import SegmentationData, as_float


def to_labels(logits: torch.Tensor) -> torch.Tensor:
    """(B, K, H, W) logits to (B, H, W) labels: argmax, or logit > 0 for a single channel."""
    return (logits[:, 0] > 0).long() if logits.shape[1] == 1 else logits.argmax(1)


def sliding_window_logits(model: nn.Module, image: torch.Tensor, window: int, overlap: float = 0.5,
                          batch: int = 8, mode: str = "gaussian") -> torch.Tensor:
    """Logits (1, K, H, W) of ``image`` (1, C, H, W) from ``window`` x ``window`` windows
    overlapping by ``overlap``, blended by ``mode`` (``gaussian`` or ``constant``); images
    smaller than a window are padded with zeros, and the padding cropped off again."""
    from monai.inferers import sliding_window_inference

    return sliding_window_inference(image, (window, window), batch, model, overlap=overlap, mode=mode,
                                    padding_mode="constant")


@torch.no_grad()
def predict(model: nn.Module, data: SegmentationData, batch: int = 16) -> list[torch.Tensor]:
    """Label maps (H, W) int64 of every sample, at the size of ``data.scoring_labels()``."""
    model.eval()
    device = next(model.parameters()).device
    protocol, out = data.protocol, []
    if protocol.patch is None:
        for start in range(0, len(data.stems), batch):
            images, _ = data.batch(range(start, min(start + batch, len(data.stems))))
            out.extend(to_labels(model(images.to(device))).cpu())
        return out
    for image, target in zip(data.images, data.scoring_labels()):
        logits = sliding_window_logits(model, as_float(image[None]).to(device), protocol.patch, protocol.overlap,
                                       batch=max(1, batch // 2))
        if tuple(logits.shape[2:]) != tuple(target.shape):  # scaled: score at the image's own size
            logits = F.interpolate(logits, size=tuple(target.shape), mode="bilinear", align_corners=False)
        out.append(to_labels(logits)[0].cpu())
    return out
