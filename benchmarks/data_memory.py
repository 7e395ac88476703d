"""Peak resident memory of a dataset the size of ISIC 2018 at 256 px.

Writes N synthetic 1024 x 768 JPEG images with 0/255 PNG masks (ISIC 2018 task 1 has 2,594
images, most larger than 1000 px), then, in a fresh process, loads them at 256 px (``--size``)
and trains a network for some steps; prints peak RSS after imports, after loading, and after
training.

    python -m benchmarks.data_memory --count 2600 --steps 20
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image

MEASURE = """
import resource, sys, time
from pathlib import Path
import torch
from bench.arch.assemble import build_model
from bench.arch.config import resolve_architecture
from bench.data.dataset import load_folder
from bench.data.protocol import Protocol
from bench.training.losses import SegmentationLoss
from bench.training.loop import training_batch

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

torch.set_num_threads(2)
print(f"after imports: {peak():.0f} MB", flush=True)
started = time.perf_counter()
size = int(sys.argv[4])
data = load_folder(Path(sys.argv[1]), Protocol(size=size))
print(f"after loading {len(data.stems)} images at {size} px ({time.perf_counter() - started:.0f} s): {peak():.0f} MB; "
      f"images hold {sum(i.numel() for i in data.images) / 2**20:.0f} MiB as uint8", flush=True)
model = build_model(resolve_architecture(sys.argv[3]), seed=0)
optimizer, loss_fn, g = torch.optim.Adam(model.parameters()), SegmentationLoss("ce_dice", 2), torch.Generator()
for step in range(int(sys.argv[2])):
    rows = torch.randint(len(data.stems), (8,), generator=g).tolist()
    x, y = training_batch(data, rows, g)
    loss = loss_fn(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
print(f"after {sys.argv[2]} training steps of {sys.argv[3]} (batch 8): {peak():.0f} MB", flush=True)
"""


def write_set(root: Path, count: int) -> None:
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    base = rng.integers(0, 256, (768 + 64, 1024 + 64, 3), dtype=np.uint8)
    for i in range(count):
        y, x = rng.integers(0, 64, 2)
        Image.fromarray(base[y:y + 768, x:x + 1024]).save(root / "images" / f"ISIC_{i:07d}.jpg", quality=90)
        mask = np.zeros((768, 1024), np.uint8)
        mask[200 + y:500 + y, 300 + x:700 + x] = 255
        Image.fromarray(mask).save(root / "masks" / f"ISIC_{i:07d}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2600)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--architecture", default="ulite")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--quick", action="store_true", help="seconds: 3 images at 64 px, 2 steps, TinyU-Net")
    args = parser.parse_args()
    if args.quick:
        args.count, args.steps, args.architecture, args.size = 3, 2, "tinyunet", 64
    with tempfile.TemporaryDirectory() as folder:
        write_set(Path(folder), args.count)
        subprocess.run([sys.executable, "-c", textwrap.dedent(MEASURE), folder, str(args.steps), args.architecture,
                        str(args.size)],
                       check=True)


if __name__ == "__main__":
    main()
