"""Hostile but fair input, across every command and file kind: each case must exit with status 2,
print no traceback, name the file, line or option at fault with a way to fix it, and write
nothing. Cheap cases only: every refusal comes before data is read or a network trained."""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import cli

def png_header(width: int, height: int) -> bytes:
    """A small PNG whose header declares ``width`` x ``height``: a decompression bomb as far as
    the header goes (its data would not fill it)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))


def noise_png() -> bytes:
    """A 32 x 32 'mask' of uniform random values: no two dominant modes."""
    from io import BytesIO

    import numpy as np
    from PIL import Image

    buffer = BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def tiny_png() -> bytes:
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.new("L", (32, 32)).save(buffer, format="PNG")
    return buffer.getvalue()


BOMB = 'a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]\n' + "".join(  # nine lines, 9^9 strings
    f"{name}: &{name} [{', '.join([f'*{parent}'] * 9)}]\n" for parent, name in zip("abcdefgh", "bcdefghi"))
DEEP = "a: " + "[" * 60 + "]" * 60 + "\n"
ALIASES = "x: &x 1\nitems: [" + ", ".join(["*x"] * 150) + "]\n"
QUICK = """architecture: tinyunet
vary: {{encoder.block.N: {{choices: [2, 4]}}, width_multiplier: {{choices: [0.25]}}}}
objectives: {{val_dice: maximize, params: minimize}}
recipe: {{name: default, epochs: 1, batch: 8}}
data: {{source: synthetic, size: 32, count: 24}}
study: {{sampler: random, trials: 2, seed: 0}}
{extra}"""


def space(extra: str = "") -> str:
    """The quick space with ``extra`` lines at the end."""
    return QUICK.format(extra=extra)


def space_with(line: str, value: str) -> str:
    """The quick space with one top-level line replaced, e.g. ``("recipe:", "recipe: {epochs: 0}")``."""
    lines = QUICK.format(extra="").splitlines()
    return "\n".join(value if l.startswith(line) else l for l in lines) + "\n"


# (id, arguments, files {name: text or bytes}, expected substrings, environment)
Case = tuple[str, list[str], dict[str, object], list[str], dict[str, str]]
CASES: list[Case] = []


def case(name: str, args: list[str], expected: list[str], files: dict[str, object] | None = None,
         env: dict[str, str] | None = None) -> None:
    CASES.append((name, args, files or {}, expected, env or {}))


# ------------------------------------------------------------------ architecture files
arch_files = {
    "alias bomb": (BOMB, ["bad.yaml", "expands to over", "BENCH_MAX_YAML_NODES"]),
    "too many aliases": (ALIASES, ["bad.yaml", "150 YAML aliases", "BENCH_MAX_YAML_ALIASES"]),
    "too deep": (DEEP, ["bad.yaml", "nests", "BENCH_MAX_YAML_DEPTH"]),
    "recursive alias": ("a: &a [*a]\n", ["bad.yaml", "recursive"]),
    "duplicate key": ("base: tinyunet\nclasses: 2\nclasses: 3\n", ["bad.yaml:3", "appears twice", "Keep one"]),
    "binary": (b"\x00\x01\x02base: x", ["bad.yaml", "NUL bytes", "YAML text file"]),
    "latin-1": ("base: tinyunet\ndescription: caf\xe9\n".encode("latin-1"), ["bad.yaml:2", "not UTF-8", "Save it"]),
    "empty": ("", ["bad.yaml", "empty"]),
    "a list": ("- base\n- tinyunet\n", ["bad.yaml", "must be a YAML mapping"]),
    "a scalar": ("hello\n", ["bad.yaml", "must be a YAML mapping"]),
    "unclosed bracket": ("base: tinyunet\nencoder.block: {type: cmrf\n", ["bad.yaml", "YAML syntax error"]),
    "unknown slot": ("base: tinyunet\nencodr: {}\n", ["bad.yaml", "encodr", "Did you mean 'encoder'"]),
    "negative width": ("base: tinyunet\nencoder.widths: [-64, 128, 256, 512]\n", ["bad.yaml", "encoder.widths"]),
    "widths not a list": ("base: tinyunet\nencoder.widths: 64\n", ["bad.yaml", "encoder.widths"]),
    "unknown block": ("base: tinyunet\nencoder.block: {type: cmfr}\n", ["bad.yaml", "Did you mean 'cmrf'"]),
    "wrong parameter type": ("base: tinyunet\nencoder.block: {type: cmrf, N: eight}\n", ["bad.yaml", "expected int"]),
    "N does not divide": ("base: tinyunet\nencoder.block: {type: cmrf, N: 3}\n",
                          ["encoder.block.N", "does not divide"]),
    "huge widths": ("base: tinyunet\nencoder.widths: [50000, 64, 128, 256]\n",
                    ["parameters, over the limit", "BENCH_MAX_PARAMS", "bad.yaml"]),
    "width multiplier nan": ("base: tinyunet\nwidth_multiplier: .nan\n", ["bad.yaml", "finite"]),
    "width multiplier inf": ("base: tinyunet\nwidth_multiplier: .inf\n", ["bad.yaml", "finite"]),
    "classes zero": ("base: tinyunet\nclasses: 0\n", ["bad.yaml", "classes"]),
    "huge int": ("base: tinyunet\nencoder.block: {type: cmrf, N: 100000000000000000000}\n", ["bad.yaml", "too large"]),
    "missing base": ("base: nowhere.yaml\n", ["nowhere.yaml", "not found"]),
    "tie to nothing": ("base: tinyunet\ndecoder.block: {same_as: encoder.blok}\n", ["bad.yaml", "does not exist"]),
    "huge file": ("# " + "x" * 1_100_000 + "\n", ["bad.yaml", "bytes", "BENCH_MAX_YAML_BYTES"]),
    "3,000 nested lists": ("a: " + "[" * 3000 + "]" * 3000 + "\n", ["bad.yaml:1", "nests at least 3001 levels",
                                                                 "BENCH_MAX_YAML_DEPTH"]),
    "3,000 nested block items": ("a:\n" + "- " * 3000 + "x\n", ["bad.yaml:2", "nests", "BENCH_MAX_YAML_DEPTH"]),
    "3,000 blocks in a stage": ("base: tinyunet\nencoder.depths: [1, 1, 1, 3000]\n",
                                ["bad.yaml", "encoder.depths", "3,003 encoder blocks", "BENCH_MAX_BLOCKS"]),
    "100,000 decoder blocks": ("base: tinyunet\ndecoder.depths: [1, 1, 1, 100000]\n",
                               ["bad.yaml", "decoder.depths", "BENCH_MAX_BLOCKS"]),
}
for name, (text, expected) in arch_files.items():
    for command in (["validate"], ["profile", "--size", "64"]):
        if command[0] == "profile" and name not in ("alias bomb", "huge widths", "binary", "duplicate key",
                                                   "N does not divide", "huge int", "3,000 blocks in a stage"):
            continue
        case(f"{command[0]}: {name}", [*command, "bad.yaml"], expected, {"bad.yaml": text})
case("base cycle", ["validate", "a.yaml"], ["cycle"], {"a.yaml": "base: b.yaml\n", "b.yaml": "base: a.yaml\n"})
case("architecture file missing", ["validate", "nope.yaml"], ["nope.yaml", "not found"])
case("unknown architecture name", ["validate", "tinyunett"], ["tinyunett", "Did you mean 'tinyunet'"])
case("a folder as architecture", ["validate", "folder/"], ["folder/"], {"folder/x.txt": "x"})

# ------------------------------------------------------------------ --set
for name, value, expected in [
    ("overflowing width", "encoder.widths.0=100000000000000000000", ["--set encoder.widths.0", "integers from 1"]),
    ("overflowing N", "encoder.block.N=100000000000000000000", ["--set encoder.block.N", "too large"]),
    ("infinite multiplier", "width_multiplier=.inf", ["--set width_multiplier", "finite"]),
    ("negative multiplier", "width_multiplier=-1", ["--set width_multiplier", "positive"]),
    ("no equals sign", "encoder.block.N", ["encoder.block.N", "PATH=VALUE"]),
    ("unknown path", "encoder.blok.N=4", ["encoder.blok", "Did you mean"]),
    ("wrong type", "encoder.block.N=eight", ["--set encoder.block.N", "expected int"]),
    ("tied block", "decoder.block.N=4", ["decoder.block", "encoder.block.N"]),
    ("bad yaml value", "encoder.block={type: cmrf, N: [", ["--set encoder.block", "YAML"]),
    ("zero classes", "classes=0", ["--set classes", "positive integer"]),
]:
    case(f"--set {name}", ["profile", "tinyunet", "--set", value], expected)

# ------------------------------------------------------------------ profile / validate options
for name, args, expected in [
    ("size not a multiple", ["--size", "70"], ["input size 70", "Use --size"]),
    ("size zero", ["--size", "0"], ["--size", "range"]),
    ("size huge", ["--size", "100000"], ["--size", "range"]),
    ("activations over the limit", ["--size", "8192"], ["GiB of activations", "BENCH_MAX_ACTIVATION_BYTES"]),
    ("batch zero", ["--batch", "0"], ["--batch"]),
    ("threads zero", ["--threads", "0"], ["--threads"]),
    ("max seconds nan", ["--latency", "--max-seconds", "nan"], ["--max-seconds", "finite"]),
    ("max seconds negative", ["--latency", "--max-seconds", "-1"], ["--max-seconds", "finite"]),
    ("unknown backend", ["--latency", "--backend", "tensorrt"], ["--backend", "tensorrt"]),
    ("unknown form", ["--latency", "--form", "fused"], ["--form", "fused"]),
    ("classes zero", ["--classes", "0"], ["--classes"]),
]:
    case(f"profile {name}", ["profile", "tinyunet", *args], expected)
case("limit variable not a number", ["profile", "tinyunet"], ["BENCH_MAX_PARAMS", "not a positive whole number"],
     env={"BENCH_MAX_PARAMS": "lots"})
for value in ("inf", "1e400", "nan", "-inf"):
    case(f"limit variable {value}", ["profile", "tinyunet"], ["BENCH_MAX_PARAMS", "not a positive whole number"],
         env={"BENCH_MAX_PARAMS": value})
for study in ("../../x", "a/b", ".hidden", "with space", "x" * 101):
    case(f"run: study name {study[:12]!r}", ["run", "--space", "quick", "--study", study],
         ["study name", "not a plain name", "Use e.g."])
case("report: study name outside", ["report", "--study", "../x"], ["--study '../x'", "not a plain name"])

# ------------------------------------------------------------------ search spaces
space_cases = [
    ("trials zero", "study:", "study: {sampler: random, trials: 0, seed: 0}", ["study.trials", "from 1 to"]),
    ("trials negative", "study:", "study: {sampler: random, trials: -3, seed: 0}", ["study.trials"]),
    ("repeats zero", "study:", "study: {sampler: random, trials: 2, repeats: 0}", ["study.repeats"]),
    ("repeats huge", "study:", "study: {sampler: random, trials: 2, repeats: 1000}", ["study.repeats"]),
    ("seed negative", "study:", "study: {sampler: random, trials: 2, seed: -1}", ["study.seed"]),
    ("timeout negative", "study:", "study: {sampler: random, trials: 2, timeout: -5}", ["study.timeout"]),
    ("stock not a flag", "study:", "study: {sampler: random, trials: 2, stock: maybe}", ["study.stock"]),
    ("unknown sampler", "study:", "study: {sampler: randon, trials: 2}", ["study.sampler", "Did you mean 'random'"]),
    ("unknown study key", "study:", "study: {sampler: random, trails: 2}", ["study.trails", "Did you mean 'trials'"]),
    ("epochs zero", "recipe:", "recipe: {name: default, epochs: 0}", ["recipe.epochs", "at least 1"]),
    ("batch zero", "recipe:", "recipe: {name: default, batch: 0}", ["recipe.batch"]),
    ("lr negative", "recipe:", "recipe: {name: default, lr: -0.01}", ["recipe.lr", "(0, 10]"]),
    ("lr nan", "recipe:", "recipe: {name: default, lr: .nan}", ["recipe.lr"]),
    ("momentum one", "recipe:", "recipe: {name: default, momentum: 1.0}", ["recipe.momentum"]),
    ("epochs a word", "recipe:", "recipe: {name: default, epochs: three}", ["recipe.epochs"]),
    ("unknown recipe", "recipe:", "recipe: {name: tinyunett}", ["recipe.name", "Did you mean 'tinyunet'"]),
    ("unknown recipe setting", "recipe:", "recipe: {name: default, epoch: 3}", ["recipe.epoch", "Did you mean"]),
    ("data size tiny", "data:", "data: {source: synthetic, size: 4, count: 24}", ["data.size"]),
    ("data patch with size", "data:", "data: {source: synthetic, size: 32, patch: 32, count: 24}",
     ["data.patch", "exclude each other"]),
    ("data scale out of range", "data:", "data: {source: synthetic, patch: 32, scale: 9, count: 24}",
     ["data.scale", "0.05 to 4"]),
    ("data pattern without stem", "data:", "data: {source: synthetic, mask_pattern: x_mask, count: 24}",
     ["data.mask_pattern", "{stem} once"]),
    ("data count one", "data:", "data: {source: synthetic, size: 32, count: 1}", ["data.count"]),
    ("unknown data key", "data:", "data: {source: synthetic, sise: 32}", ["data.sise", "Did you mean 'size'"]),
    ("data a list", "data:", "data: [synthetic]", ["data", "mapping"]),
    ("size too small for the network", "data:", "data: {source: synthetic, size: 24, count: 24}",
     ["data.size 24", "input size 24", "Use --size"]),
    ("objectives empty", "objectives:", "objectives: {}", ["objectives"]),
    ("objective direction", "objectives:", "objectives: {val_dice: up}",
     ["objectives.val_dice", "maximize or minimize"]),
    ("unknown objective", "objectives:", "objectives: {val_dise: maximize}", ["objectives.val_dise",
                                                                            "Did you mean 'val_dice'"]),
    ("vary empty", "vary:", "vary: {}", ["vary"]),
    ("log range from zero", "vary:", "vary: {width_multiplier: {float: [0, 1], log: true}}",
     ["vary.width_multiplier.float", "log scale needs low > 0"]),
    ("range reversed", "vary:", "vary: {encoder.block.N: {int: [8, 2]}}", ["vary.encoder.block.N.int", "low <= high"]),
    ("range of words", "vary:", "vary: {width_multiplier: {float: [a, b]}}", ["vary.width_multiplier.float"]),
    ("negative step", "vary:", "vary: {encoder.block.N: {int: [2, 8], step: -2}}", ["vary.encoder.block.N.step"]),
    ("empty choices", "vary:", "vary: {encoder.block.N: {choices: []}}", ["vary.encoder.block.N.choices"]),
    ("unknown distribution key", "vary:", "vary: {encoder.block.N: {choise: [2]}}", ["vary.encoder.block.N.choise"]),
    ("unknown block in vary", "vary:", "vary: {encoder.block: {cmfr: {}}}",
     ["vary.encoder.block.cmfr", "Did you mean"]),
    ("parameter of no block", "vary:", "vary: {encoder.block: {cmrf: {n: {choices: [2]}}}}",
     ["vary.encoder.block.cmrf.n", "has no parameter"]),
    ("not a slot", "vary:", "vary: {encoder.blok: {cmrf: {}}}", ["vary.encoder.blok", "Did you mean"]),
]
for name, line, value, expected in space_cases:
    case(f"space: {name}", ["run", "--space", "space.yaml"], ["space.yaml", *expected],
         {"space.yaml": space_with(line, value)})
case("space: constraint after training", ["run", "--space", "space.yaml"], ["constraints.val_dice", "before training"],
     {"space.yaml": space("constraints: {val_dice: {min: 0.5}}")})
case("space: constraint bound a word", ["run", "--space", "space.yaml"], ["constraints.params"],
     {"space.yaml": space("constraints: {params: {max: lots}}")})
case("space: constraint bound nan", ["run", "--space", "space.yaml"], ["constraints.params"],
     {"space.yaml": space("constraints: {params: {max: .nan}}")})
case("space: unknown top-level key", ["run", "--space", "space.yaml"], ["objectivs", "Did you mean"],
     {"space.yaml": space("objectivs: {}")})
case("space: missing architecture", ["run", "--space", "space.yaml"], ["architecture", "missing"],
     {"space.yaml": space_with("architecture:", "")})
case("space: architecture file missing", ["run", "--space", "space.yaml"], ["nowhere.yaml", "not found"],
     {"space.yaml": space_with("architecture:", "architecture: nowhere.yaml")})
case("space: binary file", ["run", "--space", "space.yaml"], ["space.yaml", "NUL bytes"], {"space.yaml": b"\x00\x00"})
case("space: alias bomb", ["run", "--space", "space.yaml"], ["space.yaml", "expands to over"], {"space.yaml": BOMB})
case("space: unknown built-in", ["run", "--space", "cmrf_swapp"], ["cmrf_swapp", "Did you mean 'cmrf_swap'"])
case("space: file missing", ["run", "--space", "nope.yaml"], ["nope.yaml", "not found"])

# ------------------------------------------------------------------ bench run options
for name, args, expected in [
    ("trials zero", ["--trials", "0"], ["--trials"]),
    ("repeats zero", ["--repeats", "0"], ["--repeats"]),
    ("workers zero", ["--workers", "0"], ["--workers"]),
    ("size too small", ["--size", "7"], ["--size"]),
    ("size not a multiple of the stride", ["--size", "40"], ["input size 40", "Use --size"]),
    ("timeout nan", ["--timeout", "nan"], ["--timeout", "finite"]),
    ("timeout negative", ["--timeout", "-1"], ["--timeout"]),
    ("heartbeat zero", ["--heartbeat", "0"], ["--heartbeat"]),
    ("unknown storage kind", ["--storage", "postgres://x@127.0.0.1/db"], ["--storage", "unknown database kind"]),
    ("storage not a url", ["--storage", "not a url"], ["--storage", "not a database URL"]),
    ("journal folder missing", ["--storage", "journal:/no/such/folder/j.log"], ["/no/such/folder", "does not exist"]),
    ("tracking scheme unknown", ["--tracking-uri", "bogus://x"], ["--tracking-uri bogus://x", "sqlite:///FILE"]),
    ("tracking file store", ["--tracking-uri", "file:///tmp/mlruns-bench"], ["--tracking-uri", "maintenance"]),
    ("data folder missing", ["--data", "nowhere"], ["nowhere"]),
]:
    case(f"run {name}", ["run", "--space", "quick", *args], expected)

# ------------------------------------------------------------------ data folders
pairs = {f"images/{i}.png": tiny_png() for i in range(3)} | {f"masks/{i}.png": tiny_png() for i in range(3)}
case("data: folder missing", ["data", "inspect", "nowhere"], ["nowhere"])
case("data: folder empty", ["data", "inspect", "empty"], ["empty", "layout"], {"empty/.keep": ""})
case("data: images without masks", ["data", "inspect", "d"], ["d"], {f"d/images/{i}.png": tiny_png() for i in range(3)})
case("data: decompression bomb", ["data", "inspect", "d"],
     ["0.png", "pixels, over the limit", "BENCH_MAX_IMAGE_PIXELS"],
     {**{f"d/{k}": v for k, v in pairs.items()}, "d/images/0.png": png_header(20000, 20000)})
case("data: corrupt image", ["data", "inspect", "d"], ["1.png", "cannot read this image"],
     {**{f"d/{k}": v for k, v in pairs.items()}, "d/images/1.png": b"\x89PNG not really"})
case("data: mask that is noise", ["data", "inspect", "d"], ["0.png", "neither binary", "--instances"],
     {**{f"d/{k}": v for k, v in pairs.items()}, "d/masks/0.png": noise_png()})
case("data: mask pattern without stem", ["data", "inspect", "d", "--images", "images", "--masks", "masks",
                                          "--mask-pattern", "mask"], ["--mask-pattern", "{stem} once"],
     {f"d/{k}": v for k, v in pairs.items()})
case("data: explicit folder missing", ["data", "inspect", "d", "--images", "images", "--masks", "labels"],
     ["--masks", "labels", "no such folder"], {f"d/{k}": v for k, v in pairs.items()})
case("data: a file as folder", ["data", "inspect", "file.txt"], ["file.txt"], {"file.txt": "x"})
case("train: data folder missing", ["train", "tinyunet", "--data", "nowhere", "--no-tracking"], ["nowhere"])

# ------------------------------------------------------------------ train / compare options
for name, args, expected in [
    ("lr negative", ["--lr", "-0.01"], ["--lr", "(0, 10]"]),
    ("lr nan", ["--lr", "nan"], ["--lr"]),
    ("lr huge", ["--lr", "1e9"], ["--lr"]),
    ("epochs zero", ["--epochs", "0"], ["--epochs"]),
    ("batch zero", ["--batch", "0"], ["--batch"]),
    ("seed negative", ["--seed", "-1"], ["--seed"]),
    ("unknown recipe", ["--recipe", "tinyunett"], ["tinyunett", "Did you mean 'tinyunet'"]),
    ("size too small", ["--size", "4"], ["--size"]),
    ("size not a multiple", ["--size", "40"], ["input size 40", "Use --size"]),
    ("classes wrong", ["--classes", "3", "--size", "32"], ["classes: 3", "Use --classes 2"]),
    ("patch and size", ["--patch", "32", "--size", "64"], ["--size 64 and --patch 32 exclude each other"]),
    ("scale without patch", ["--scale", "0.5"], ["--scale 0.5 works with --patch only"]),
    ("scale zero", ["--patch", "32", "--scale", "0"], ["--scale"]),
    ("oversample above one", ["--patch", "32", "--oversample", "2"], ["--oversample 2.0", "[0, 1]"]),
    ("patch too small", ["--patch", "4"], ["--patch"]),
    ("images without masks", ["--images", "."], ["--images and --masks go together"]),
    ("pattern without data", ["--mask-pattern", "{stem}_mask"], ["give --data FOLDER"]),
    ("unknown layout", ["--data", ".", "--layout", "drvie"], ["drvie", "Did you mean 'drive'"]),
    ("tracking scheme unknown", ["--tracking-uri", "bogus://x"], ["--tracking-uri bogus://x"]),
]:
    extra = [] if "--tracking-uri" in args else ["--no-tracking"]
    case(f"train {name}", ["train", "tinyunet", *args, *extra], expected)
case("train: out is a file", ["train", "tinyunet", "--out", "taken", "--no-tracking"], ["--out", "is a file"],
     {"taken": "a file, not a folder"})
case("train: split file missing", ["train", "tinyunet", "--split", "nope.json", "--no-tracking"], ["nope.json"])
case("train: split file garbage", ["train", "tinyunet", "--split", "s.json", "--no-tracking"],
     ["s.json", "not a readable split file"], {"s.json": "{not json"})
case("compare: the same network twice", ["compare", "tinyunet", "tinyunet", "--no-tracking"], ["distinct"])
case("compare: two files, one network", ["compare", "a.yaml", "b.yaml", "--no-tracking"],
     ["a.yaml and b.yaml hold the same network", "drop one"],
     {"a.yaml": "base: tinyunet\nname: a\n", "b.yaml": "base: tinyunet\nname: b\n"})
case("compare: repeats zero", ["compare", "tinyunet", "ulite", "--repeats", "0", "--no-tracking"], ["--repeats"])
case("compare: unknown network", ["compare", "tinyunet", "ulitte", "--no-tracking"], ["ulitte", "Did you mean"])


# ------------------------------------------------------------------ checkpoints
def checkpoints(root: Path) -> None:
    import torch

    from bench.arch.assemble import build_model
    from bench.arch.config import resolve_architecture

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch pwned",))

    small = resolve_architecture("tinyunet", ["width_multiplier=0.25"])
    model = build_model(small)
    record = {"data": {"source": "synthetic", "size": 32}}
    torch.save({"format": "bench-checkpoint/1", "x": Evil()}, root / "evil.pt")
    broken = {k: v for k, v in small.config.items() if k != "encoder"}
    torch.save({"format": "bench-checkpoint/1", "name": "x", "config": broken, "record": record,
                "state_dict": model.state_dict()}, root / "nokeys.pt")
    torch.save({"format": "bench-checkpoint/1", "name": "x", "config": resolve_architecture("ulite").config,
                "record": record, "state_dict": model.state_dict()}, root / "other.pt")
    torch.save({"format": "bench-checkpoint/1", "name": "x", "config": small.config, "record": record,
                "state_dict": model.state_dict()}, root / "good.pt")
    torch.save({"weights": model.state_dict()}, root / "foreign.pt")


for name, file, args, expected in [
    ("empty file", "empty.pt", [], ["empty.pt", "not a readable checkpoint"]),
    ("a YAML file", "arch.yaml", [], ["arch.yaml", "not a readable checkpoint"]),
    ("random bytes", "noise.pt", [], ["noise.pt", "checkpoint"]),
    ("a malicious pickle", "evil.pt", [], ["evil.pt", "refused", "could run code"]),
    ("config lacking keys", "nokeys.pt", [], ["nokeys.pt", "encoder"]),
    ("weights of another network", "other.pt", [], ["other.pt", "do not fit"]),
    ("not ours", "foreign.pt", [], ["foreign.pt", "not a bench checkpoint"]),
    ("size too small", "good.pt", ["--size", "8"], ["input size 8", "Use --size"]),
    ("data missing", "good.pt", ["--data", "nowhere"], ["nowhere"]),
]:
    case(f"evaluate: {name}", ["evaluate", file, *args], expected,
         {"empty.pt": b"", "arch.yaml": "base: tinyunet\n", "noise.pt": os.urandom(300), "__checkpoints__": True})
case("evaluate: no such file", ["evaluate", "nope.pt"], ["nope.pt"])

# ------------------------------------------------------------------ storage, report, servers
case("report: no storage here", ["report", "--study", "quick"], ["runs/optuna.db", "bench run"])
case("report: damaged storage", ["report", "--study", "quick", "--storage", "sqlite:///broken.db"],
     ["broken.db", "cannot be read", "move"], {"broken.db": b"SQLite format 3\x00" + os.urandom(2000)})
case("report: storage url nonsense", ["report", "--study", "quick", "--storage", "not a url"], ["not a database URL"])
case("run: damaged storage", ["run", "--space", "quick", "--storage", "sqlite:///broken.db"],
     ["broken.db", "cannot be read"], {"broken.db": b"SQLite format 3\x00" + os.urandom(2000)})
case("run: damaged tracking store", ["run", "--space", "quick", "--tracking-uri", "sqlite:///m.db"],
     ["m.db", "cannot be read", "MLflow store"], {"m.db": b"SQLite format 3\x00" + os.urandom(2000)})
case("run: the MLflow artifacts folder is a file", ["run", "--space", "quick", "--trials", "1"],
     ["runs/mlartifacts is a file", "move runs/mlartifacts away"], {"runs/mlartifacts": "a file"})
case("ui: port too high", ["ui", "--port", "70000"], ["--port", "70000"])
case("ui: port zero", ["ui", "--port", "0"], ["--port"])
case("ui: experiment unknown", ["ui", "--experiment", "nope", "--tracking-uri", "sqlite:///none.db"],
     ["no experiment 'nope'"])
case("server: port too high", ["server", "--backend-store", "sqlite:///s.db", "--artifacts", "a", "--port", "70000"],
     ["--port"])
case("server: store url nonsense", ["server", "--backend-store", "not a url", "--artifacts", "a"],
     ["--backend-store", "not a database URL"])
case("server: unknown store kind", ["server", "--backend-store", "postgres://x@127.0.0.1/db", "--artifacts", "a"],
     ["--backend-store", "unknown database kind"])
case("server: artifacts a file", ["server", "--backend-store", "sqlite:///s.db", "--artifacts", "taken"],
     ["--artifacts taken", "not writable"], {"taken": "a file"})


def test_the_corpus_is_large_and_covers_every_command():
    commands = {args[0] for _, args, _, _, _ in CASES}
    assert len(CASES) >= 100
    assert {"validate", "profile", "run", "data", "train", "compare", "evaluate", "report", "ui", "server"} <= commands


def snapshot(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*")}


@pytest.mark.parametrize("name, args, files, expected, env", CASES, ids=[c[0] for c in CASES])
def test_hostile_input_is_refused_cleanly(name: str, args: list[str], files: dict, expected: list[str],
                                          env: dict[str, str], tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for key in ("BENCH_STORAGE", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for file, content in files.items():
        if file == "__checkpoints__":
            checkpoints(tmp_path)
            continue
        path = tmp_path / file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    before = snapshot(tmp_path)
    result = CliRunner().invoke(cli, args, catch_exceptions=True)
    output = " ".join(result.output.split())
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        f"{type(result.exception).__name__}: {result.exception}\n{output}"
    assert result.exit_code == 2, output
    assert "Traceback" not in result.output
    for piece in expected:
        assert piece in output, f"{piece!r} not in: {output}"
    assert snapshot(tmp_path) == before, "something was written"
    assert not (tmp_path / "pwned").exists()


def test_nesting_is_measured_before_pyyaml_within_a_second_for_100000_levels(tmp_path):
    """PyYAML's composer recurses (a RecursionError traceback at 3,000 levels) and its scanner
    took 18 s for 10,000: the depth is read from the text first, in one linear pass."""
    import time

    from bench.core.errors import ConfigError
    from bench.core.safe_yaml import load_mapping, nesting_depth

    for text in ("a: " + "[" * 100_000 + "]" * 100_000 + "\n", "a:\n" + "- " * 100_000 + "x\n"):
        path = tmp_path / "deep.yaml"
        path.write_text(text)
        started = time.perf_counter()
        with pytest.raises(ConfigError, match="nests at least 10000"):
            load_mapping(path)
        assert time.perf_counter() - started < 1.0
    assert nesting_depth("a:\n  b: [1, {c: '[[['}]  # [[[\n")[0] == 4  # quotes and comments do not count
