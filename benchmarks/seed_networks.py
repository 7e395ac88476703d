"""The seed networks' Table 1 as bench measures it, beside what each paper claims: ``bench
compare`` of U-Net, TinyU-Net, U-Lite, AL-Net and LM-Net (one recipe, one split, the same seeds)
on each data set, their costs counted at the papers' 256 px, and each network's gap to its
paper's figures with the reasons that can be named (data, resolution, recipe, epochs).

    python -m benchmarks.seed_networks --data ../shared/data/dsb2018_96@64 --epochs 10 --repeats 3
    python -m benchmarks.seed_networks --compare runs/t1-dsb --compare runs/t1-isbi   # finished compares
    python -m benchmarks.seed_networks --quick     # synthetic, two networks, one epoch

``--compare DIR`` reads a finished ``bench compare`` output folder (its ``comparison.json`` and
tables) instead of training; the report then names the ``bench compare`` command that made it,
rebuilt from what the folder records.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from bench.arch.assemble import build_model
from bench.arch.config import resolve_architecture
from bench.arch.latency import environment
from bench.arch.profile import profile_model
from bench.core.stats import PairedComparison, too_few_images

from .common import commit, named, parser, quick_mode

NETWORKS = ("unet", "tinyunet", "ulite", "alnet", "lmnet")
OUT = Path("reports")


@dataclass(frozen=True)
class Claim:
    """What a paper claims for a network: costs, and accuracy on its own data with its recipe."""

    source: str
    params_m: float
    flops_g: Optional[float]  # paper FLOPs (2 x MACs) at 256 px, where stated
    data: str
    accuracy: dict[str, float] = field(default_factory=dict)  # metric -> percent
    recipe: str = ""
    data_folder: str = ""  # the folder name of that data set under ../shared/data, where it is there
    size: int = 256
    epochs: int = 0
    network: str = ""  # where the paper's network is not the one bench ships


# ../shared/REFERENCE.md, "Published accuracy" and the cost tables
CLAIMS = {
    "unet": Claim("TinyU-Net paper, Table 1 (U-Net baseline)", 24.89, 112.91, "ISIC 2018 at 256 px",
                  {"lesion IoU": 76.14, "mDice": 90.38, "mIoU": 82.69}, "Adam 1e-4, cosine, CE + Dice, 300 epochs",
                  epochs=300, network="the paper's U-Net has 24.89 M params; bench's `unet` is Ronneberger's "
                                      "(widths 64 to 1024, 31.0 M)"),
    "tinyunet": Claim("TinyU-Net paper, Table 1", 0.48, 3.33, "ISIC 2018 at 256 px",
                      {"lesion IoU": 80.04, "mDice": 92.18, "mIoU": 85.49}, "Adam 1e-4, cosine, CE + Dice, 300 epochs",
                      epochs=300),
    "ulite": Claim("TinyU-Net paper, Table 1 (U-Lite)", 0.88, 1.52, "ISIC 2018 at 256 px",
                   {"lesion IoU": 78.12, "mDice": 91.29, "mIoU": 84.13}, "Adam 1e-4, cosine, CE + Dice, 300 epochs",
                   epochs=300),
    "alnet": Claim("AL-Net paper, Tables 3, 7 (deploy params)", 3.45, None, "ISBI 2012 at 512 px",
                   {"IoU": 89.63}, "Adam 5e-3, batch 4, x0.95 per epoch, BCE + Dice, 150 epochs",
                   data_folder="isbi2012", size=512, epochs=150,
                   network="no public code: bench's AL-Net is rebuilt from the paper (half-width RepVGG-A1)"),
    "lmnet": Claim("LM-Net paper, Table 1 (deploy form)", 5.40, 4.66, "Kvasir-SEG at 256 px",
                   {"mDice": 94.09, "mIoU": 89.12}, "AdamW 1e-3, wd 1e-4, cosine, batch 32, weighted CE, 200 epochs",
                   epochs=200, network="the paper's 5.40 M is a wider variant than its code; bench ships the "
                                       "code-faithful C = 12 network"),
}
# which of our figures a paper's metric is: the mean over classes (background and foreground) for
# mDice / mIoU, the foreground for a lesion or cell IoU
OURS = {"lesion IoU": "iou_mean_fg", "IoU": "iou_mean_fg", "mDice": "dice_mean", "mIoU": "iou_mean"}


def compare_command(record: dict[str, Any], networks: list[str]) -> str:
    """The ``bench compare`` command that made a comparison, from its ``comparison.json``."""
    recipe, seeds = record["recipe"], record["seeds"]
    data = record["data"]
    if Path(data).is_dir():  # as a user in the repository root types it, not this machine's absolute path
        data = os.path.relpath(data)
    words = ["bench compare", *networks, "--data", data, "--size", str(record["size"]),
             "--epochs", str(recipe["epochs"]), "--repeats", str(len(seeds))]
    if seeds[0] != 0:
        words += ["--seed", str(seeds[0])]
    if record.get("folds"):
        words += ["--folds", str(len(record["folds"]))]
    return " ".join(words)


def run_compare(data: str, size: int, networks: list[str], epochs: int, repeats: int, out: Path) -> Path:
    """Train the networks with ``bench.compare`` into ``out`` (no MLflow: the report is the record)."""
    import dataclasses

    import bench
    from bench.data.source import data_source
    from bench.training.recipe import get_recipe

    source = data_source(None if data == "synthetic" else data, size=size)
    bench.compare(networks, source, recipe=dataclasses.replace(get_recipe("default", seed=0), epochs=epochs),
                  repeats=repeats, out_dir=out, tracking_uri=None)
    return out


def costs_at(networks: list[str], size: int) -> dict[str, dict[str, float]]:
    """Params (train / deploy) and paper FLOPs (2 x fvcore MACs) of each network at ``size`` px."""
    found = {}
    for name in networks:
        arch = resolve_architecture(name)
        cost = profile_model(build_model(arch, seed=0), name, arch.hash, arch.config["in_channels"], size)
        found[name] = {"params_m": cost.train.params / 1e6, "deploy_params_m": cost.deploy.params / 1e6,
                       "flops_g": cost.train.flops / 1e9, "deploy_flops_g": cost.deploy.flops / 1e9}
    return found


def claims_rows(record: dict[str, Any], costs: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """Per network: its paper's claims beside ours on this data, and the gap."""
    rows = []
    figures = record["networks"]
    for name, ours in figures.items():
        claim = CLAIMS.get(name)
        if claim is None:
            continue
        cost = costs.get(name, {})
        for metric, claimed in claim.accuracy.items():
            estimate = ours.get(OURS[metric], {})
            mean = 100 * estimate["mean"] if "mean" in estimate else float("nan")
            rows.append({"network": name, "paper": claim.source, "paper data": claim.data, "metric": metric,
                         "claimed (%)": claimed, "bench (%)": round(mean, 2),
                         "bench std": round(100 * estimate.get("std", float("nan")), 2), "gap": round(mean - claimed, 2),
                         "params claimed (M)": claim.params_m,
                         "params bench (M, train / deploy)": f"{cost.get('params_m', float('nan')):.3f} / "
                                                             f"{cost.get('deploy_params_m', float('nan')):.3f}",
                         "FLOPs claimed (G)": claim.flops_g,
                         "FLOPs bench at 256 px (G, train / deploy)": f"{cost.get('flops_g', float('nan')):.2f} / "
                                                                       f"{cost.get('deploy_flops_g', float('nan')):.2f}",
                         "why they differ": gap_reasons(claim, record)})
    return rows


def gap_reasons(claim: Claim, record: dict[str, Any]) -> str:
    """What differs between the paper's measurement and this one."""
    recipe = record["recipe"]
    reasons = [claim.network] if claim.network else []
    if claim.data_folder != Path(record["data"]).name:
        reasons.append(f"other data ({claim.data})")
    if claim.size != record["size"]:
        reasons.append(f"{record['size']} px, not {claim.size}")
    if claim.epochs and claim.epochs != recipe.get("epochs"):
        reasons.append(f"{recipe.get('epochs')} epochs, not {claim.epochs}")
    reasons.append(f"recipe {recipe.get('optimizer')} {recipe.get('lr')} {recipe.get('loss')}, the paper's "
                   f"{claim.recipe.split(', ')[0]} {claim.recipe.split(', ')[-2] if ', ' in claim.recipe else ''}".rstrip())
    return "; ".join(reasons)


def paper_differences(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The papers' "lighter yet better" claims against U-Net, beside bench's paired verdicts against
    the first network of the comparison."""
    reference = next(iter(record["networks"]))
    claimed = CLAIMS.get(reference)
    rows = []
    for test in record["paired"]:
        name, claim = test["candidate"], CLAIMS.get(test["candidate"])
        paper_gain = None
        if claim and claimed and claim.data == claimed.data and "mDice" in claim.accuracy and "mDice" in claimed.accuracy:
            paper_gain = round(claim.accuracy["mDice"] - claimed.accuracy["mDice"], 2)
        rows.append({"network": name, "against": reference,
                     "paper: mDice gain (points, its data)": paper_gain if paper_gain is not None else "-",
                     "bench: foreground Dice gain (points)": round(100 * test["mean_difference"], 2),
                     "95 % interval": f"[{100 * test['ci_low']:.2f}, {100 * test['ci_high']:.2f}]",
                     "P(better)": round(test["p_better"], 3), "p (Holm)": round(test["p_adjusted"], 4),
                     "verdict": test["verdict"]})
    return rows


def section(folder: Path, record: dict[str, Any], costs: dict[str, dict[str, float]], copied: Path) -> list[str]:
    networks = list(record["networks"])
    lines = [f"## {Path(record['data']).name} at {record['size']} px", "",
             f"`{compare_command(record, networks)}`: {record['split_description']}; recipe "
             f"{_recipe_text(record['recipe'])}; seeds {', '.join(map(str, record['seeds']))}; trained at commit "
             f"{record.get('commit', 'not recorded (made before comparison.json recorded it)')} on "
             f"{record.get('cpu', 'this machine')}. Tables: "
             f"[table.csv]({copied.name}/table.csv), [comparison.json]({copied.name}/comparison.json), LaTeX "
             f"[compact]({copied.name}/table.tex), [two-column]({copied.name}/table_2col.tex), "
             f"[full]({copied.name}/table_full.tex).", "",
             (folder / "table.md").read_text().strip(), "",
             "### Against U-Net, and against the papers", "",
             pd.DataFrame(paper_differences(record)).to_markdown(index=False), "",
             *([warning, ""] if (warning := too_few_images(
                 [PairedComparison.from_dict(test) for test in record["paired"]])) else []),
             pd.DataFrame(claims_rows(record, costs)).to_markdown(index=False), ""]
    return lines


def _recipe_text(recipe: dict[str, Any]) -> str:
    keys = ("optimizer", "lr", "schedule", "loss", "batch", "epochs")
    return ", ".join(f"{k} {recipe[k]}" for k in keys if k in recipe)


def write_report(folders: list[Path], out: Path, command: str, count_size: int) -> Path:
    """``out/README.md`` with a section per comparison, and each comparison's tables copied beside."""
    out.mkdir(parents=True, exist_ok=True)
    records = [(f, json.loads((f / "comparison.json").read_text())) for f in folders]
    names = list(dict.fromkeys(n for _, r in records for n in r["networks"]))
    costs = costs_at(names, count_size)
    env = environment()
    lines = ["# The seed networks' Table 1, as bench measures it", "",
             f"`{command}` at commit {commit()}, {time.strftime('%Y-%m-%d %H:%M')}; {env['cpu']}, "
             f"torch {env['torch']}. Costs counted at {count_size} px (fvcore; paper FLOPs = 2 x MACs).", "",
             "Accuracy in the papers was measured on other data (ISIC 2018, Kvasir-SEG) with their own recipes "
             "and 150 to 300 epochs; only AL-Net's ISBI 2012 figure shares a data set with this report. So the gap "
             "in absolute Dice or IoU mixes data, resolution and recipe; what can be checked here is each paper's "
             "direction (lighter *and* better than U-Net) under one recipe, one split and the same seeds, and its "
             "cost figures, which bench reproduces from the code.", ""]
    for folder, record in records:
        copied = out / Path(record["data"]).name
        copied.mkdir(parents=True, exist_ok=True)
        for path in folder.iterdir():
            if path.suffix in (".csv", ".tex", ".json") and path.is_file():  # table.md is inlined below
                shutil.copy(path, copied / path.name)
        lines += section(folder, record, costs, copied)
    (out / "README.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return out / "README.md"


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.set_defaults(out=OUT)
    p.add_argument("--data", action="append", default=[], metavar="PATH@SIZE",
                   help="a data set and its size (repeat for several); default DSB 2018 at 64 px and ISBI 2012 at 128")
    p.add_argument("--compare", action="append", type=Path, default=[], metavar="DIR",
                   help="a finished `bench compare` output folder to read instead of training (repeatable)")
    p.add_argument("--networks", nargs="+", default=list(NETWORKS))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--count-size", type=int, default=256, help="input size the costs are counted at")
    quick_mode(p, "synthetic 32 px, TinyU-Net and U-Lite, 1 epoch, 2 seeds, costs at 64 px")
    args = p.parse_args()
    if args.quick:
        args.data, args.networks, args.epochs, args.repeats, args.count_size = ["synthetic@32"], ["tinyunet", "ulite"], 1, 2, 64
    out = args.out / named("seed_networks", args)
    folders = list(args.compare)
    with tempfile.TemporaryDirectory() as scratch:
        if not folders:
            for given in args.data or ["../shared/data/dsb2018_96@64", "../shared/data/isbi2012@128"]:
                data, _, size = given.rpartition("@")
                folders.append(run_compare(data, int(size), args.networks, args.epochs, args.repeats,
                                           Path(scratch) / Path(data).name))
        import sys
        write_report(folders, out, " ".join(["python -m benchmarks.seed_networks", *sys.argv[1:]]), args.count_size)


if __name__ == "__main__":
    main()
