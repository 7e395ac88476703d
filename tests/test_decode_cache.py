"""The decode cache: a folder decoded once per machine and scale, memory-mapped afterwards; a
changed file or a damaged entry means decoding again, never a stale or broken array."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import bench.data.dataset as dataset_module
from bench.data.dataset import load_folder
from bench.data.protocol import Protocol


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for k in range(6):
        for sub, array in (("image", rng.integers(0, 256, (40, 52, 3))), ("label", (rng.random((40, 52)) > 0.6) * 255)):
            (tmp_path / "set" / sub).mkdir(parents=True, exist_ok=True)
            Image.fromarray(array.astype(np.uint8)).save(tmp_path / "set" / sub / f"{k}.png")
    return tmp_path / "set"


@pytest.fixture
def decodes(monkeypatch) -> list[Path]:
    """The image files decoded, in order."""
    seen: list[Path] = []
    read = dataset_module.read_image

    def counting(path):
        seen.append(Path(path))
        return read(path)

    monkeypatch.setattr(dataset_module, "read_image", counting)
    return seen


def same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.images + a.labels, b.images + b.labels))


def test_the_second_load_decodes_nothing_and_gives_the_same_arrays(folder, decodes):
    first = load_folder(folder, Protocol(size=32))
    assert len(decodes) == 6
    second = load_folder(folder, Protocol(size=32))
    assert len(decodes) == 6 and same(first, second)  # no decode call the second time
    assert (second.classes, second.encoding, second.notes) == (first.classes, first.encoding, first.notes)
    load_folder(folder, Protocol(size=24))  # another working scale: another entry
    assert len(decodes) == 12


def test_touching_one_file_invalidates_the_entry(folder, decodes):
    first = load_folder(folder, Protocol(size=32))
    label = folder / "label" / "3.png"
    Image.fromarray(np.zeros((40, 52), np.uint8)).save(label)  # rewritten: same name, new content
    os.utime(label, ns=(label.stat().st_atime_ns, label.stat().st_mtime_ns + 10**9))
    second = load_folder(folder, Protocol(size=32))
    assert len(decodes) == 12 and int(second.labels[3].sum()) == 0 and torch.equal(first.labels[0], second.labels[0])


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_entry_is_decoded_again_never_trusted(folder, decodes, damage):
    first = load_folder(folder, Protocol(size=32))
    [data] = (Path(os.environ["BENCH_CACHE_DIR"]) / "decoded").glob("*.bin")
    raw = bytearray(data.read_bytes())
    if damage == "truncate":
        data.write_bytes(raw[: len(raw) // 2])
    else:
        raw[len(raw) // 3] ^= 0xFF
        data.write_bytes(raw)
    second = load_folder(folder, Protocol(size=32))
    assert len(decodes) == 12 and same(first, second)
    third = load_folder(folder, Protocol(size=32))  # rebuilt: a hit again
    assert len(decodes) == 12 and same(first, third)


def test_the_cache_stays_under_its_size_bound(folder, monkeypatch):
    monkeypatch.setenv("BENCH_DECODE_CACHE_GB", str(26_000 / 2**30))  # the 32 px entry alone takes 24,576 bytes
    for size in (32, 24, 16):
        load_folder(folder, Protocol(size=size))
    kept = (Path(os.environ["BENCH_CACHE_DIR"]) / "decoded").glob("*.bin")
    assert sorted(p.stat().st_size for p in kept) == [6 * 4 * 16 * 16, 6 * 4 * 24 * 24]  # the oldest went first


def test_the_decode_cache_benchmark_runs_in_its_quick_mode(tmp_path):
    """benchmarks/decode_cache.py --quick: a cold and a warm load of two small sets, in fresh processes."""
    import json
    import subprocess
    import sys

    from needs import need

    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "dsb2018_96"
    need("SHARED_DATA", shared.is_dir(), "../shared/data/dsb2018_96")
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-m", "benchmarks.decode_cache", "--quick", "--data", str(shared),
                           "--out", str(tmp_path)], cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads((tmp_path / "decode_cache_quick.json").read_text())["rows"]
    assert [r["images"] for r in rows] == [24, 12] and all(r["cache_mib"] > 0 for r in rows)
