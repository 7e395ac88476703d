"""``bench list``, ``bench validate`` and ``bench profile``: what can be built, and what it costs."""
from __future__ import annotations

import json
from contextlib import nullcontext
from typing import Optional, Sequence

import click
from rich.table import Table

from ..arch.assemble import build_checked, build_model, check_budget, plan_architecture
from ..blocks import BLOCKS
from ..arch.counting import count_params
from ..arch.config import builtin_architectures, load_yaml
from ..arch.latency import FORMS
from ..arch.runtimes import BACKENDS

from .common import Finite, architecture_options, cli, console, device_option, resolve


@cli.command("list")
@click.argument("what", type=click.Choice(["blocks", "architectures", "spaces", "objectives", "pruners", "samplers"]))
def list_(what: str) -> None:
    """List registered blocks, built-in architectures, built-in search spaces, the objectives a
    sweep can optimise and constrain, or the pruners and samplers a space can name."""
    if what == "pruners":
        from ..search.pruners import PRUNERS

        table = Table("pruner", "settings (default)", "description", title="Pruners (study.pruner, --pruner)")
        table.columns[0].no_wrap = True
        for name, pruner in PRUNERS.items():
            settings = ", ".join(f"{k} ({default})" for k, (default, _, _) in pruner.settings.items()) or "-"
            table.add_row(name, settings, pruner.summary)
        console.print(table)
        return
    if what == "samplers":
        from ..search.samplers import SAMPLERS

        table = Table("sampler", "settings", "description", title="Samplers (study.sampler, --sampler)")
        table.columns[0].no_wrap = True
        for name, sampler in SAMPLERS.items():
            table.add_row(name, ", ".join(f"study.{k}" for k in sampler.uses) or "-", sampler.summary)
        console.print(table)
        return
    if what == "objectives":
        from ..search.objectives import OBJECTIVES

        table = Table("objective", "direction", "known", "unit", "description", title="Objectives")
        table.columns[0].no_wrap = True
        for objective in OBJECTIVES:
            table.add_row(objective.name, objective.direction, objective.known, objective.unit or "-",
                          objective.summary)
        console.print(table)
        console.print("Objectives known before training can be constraints, "
                      "e.g. constraints: {params: {max: 1000000}}.")
        return
    if what == "spaces":
        from ..search.space import builtin_spaces, load_space

        table = Table("space", "architecture", "varies", "objectives", "description", title="Search spaces")
        for name in builtin_spaces():
            space = load_space(name)
            table.add_row(name, space.architecture, ", ".join(space.vary),
                          ", ".join(f"{k} ({v[:3]})" for k, v in space.objectives.items()), space.description)
        console.print(table)
        return
    if what == "blocks":
        table = Table("block", "slot kind", "parameters", "description", title="Blocks")
        for entry in BLOCKS:
            params = ", ".join(p.describe() for p in entry.params.values()) or "-"
            kind = entry.kind + (" (keeps channels)" if entry.same_channels else "")
            table.add_row(entry.name, kind, params, entry.summary)
    else:
        table = Table("architecture", "description", "file", title="Architectures")
        for name, path in builtin_architectures().items():
            data, _ = load_yaml(path)
            table.add_row(name, str(data.get("description", "")), str(path))
    console.print(table)


@cli.command()
@architecture_options
@click.option("--print-config", is_flag=True, help="Print the resolved config as YAML.")
def validate(architecture: str, classes: Optional[int], overrides: Sequence[str],
             print_config: bool) -> None:
    """Check an architecture (name or YAML file) and show how its blocks are wired.

    Resolves inheritance and overrides, checks every block's parameters and channel arithmetic,
    and builds the network.
    """
    arch = resolve(architecture, classes, overrides)
    plan = plan_architecture(arch)
    check_budget(arch, plan)  # before any block is built
    table = Table("where", "config path", "block", "channels", "params",
                  title=f"{arch.name} ({arch.source})")
    for placement in plan.placements():
        table.add_row(placement.where, placement.path, placement.entry.name,
                      f"{placement.in_channels} -> {placement.out_channels}",
                      f"{count_params(placement.build()):,}")
    for level, gather in enumerate(plan.build_gathers() or []):
        table.add_row(f"skip level {level + 1}", "skips.gather", plan.skip_gather,
                      f"levels {', '.join(str(i + 1) for i in gather.sources)} -> "
                      f"{plan.skip_widths[level]}", f"{count_params(gather):,}")
    console.print(table)
    total = count_params(build_model(arch))
    console.print(f"[green]valid[/green]: {total:,} parameters, total stride {plan.stride}, "
                  f"config hash {arch.hash[:12]}")
    if print_config:
        click.echo(arch.to_yaml())


@cli.command()
@architecture_options
@click.option("--size", type=click.IntRange(1, 16384), default=256, show_default=True,
              help="Input height and width in pixels.")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--latency", is_flag=True, help="Also time the forward pass (see --form, --backend).")
@click.option("--form", "forms", multiple=True, type=click.Choice(FORMS),
              help="Form(s) to time (repeatable; default deploy). Several are timed interleaved.")
@click.option("--backend", "backends", multiple=True,
              type=click.Choice(BACKENDS),
              help="Backend(s) to time (repeatable; default eager). onnxruntime needs the onnx extra.")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="Intra-op threads while timing.")
@click.option("--max-seconds", type=Finite(0.0), default=10.0, show_default=True,
              help="Time cap per timed variant, if the median is not stable before.")
@click.option("--isolate", is_flag=True, help="Time each variant in a fresh process.")
@device_option
@click.option("--cudnn-benchmark", is_flag=True,
              help="Let cuDNN autotune per input shape (off: shapes that vary re-tune inside the timing).")
@click.option("--memory", is_flag=True,
              help="Also count peak memory of a forward pass (deploy form) and a training step.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
def profile(architecture: str, classes: Optional[int], overrides: Sequence[str], size: int,
            batch: int, latency: bool, forms: Sequence[str], backends: Sequence[str], threads: int,
            max_seconds: float, isolate: bool, device: str, cudnn_benchmark: bool, memory: bool, fmt: str) -> None:
    """Count parameters, MACs and paper-FLOPs (2 x MACs) of an architecture, train and deploy
    forms (the deploy form has every re-parameterisable block fused); with --latency, time it.

    Every combination of --form and --backend is timed in one session, interleaved (A B C A B C
    ...), and reported as a ratio to the first, so that drift of the machine cannot reorder them.
    """
    from ..arch.profile import profile_model

    from ..core.device import resolve_device

    arch = resolve(architecture, classes, overrides)
    device_name = str(resolve_device(device))
    model = build_checked(arch, size)
    in_channels = arch.config["in_channels"]
    record = profile_model(model, arch.name, arch.hash, in_channels, size, batch).to_dict()
    if latency:
        from ..arch.latency import Candidate, Protocol, measure

        candidates = [Candidate(f"{form}/{backend}", model, form, backend, arch.config)
                      for form in (forms or ["deploy"]) for backend in (backends or ["eager"])]
        protocol = Protocol(threads=threads, batch=batch, max_seconds=max_seconds, device=device_name,
                            cudnn_benchmark=cudnn_benchmark)
        with console.status(f"timing {len(candidates)} variant(s) of {arch.name}") \
                if console.is_terminal and fmt == "table" else nullcontext():
            record["latency"] = [r.to_dict() for r in measure(candidates, in_channels, size, protocol, isolate)]
    if memory:
        from ..arch.memory import forward_peak_memory, train_step_peak_memory

        record["memory"] = {  # a training step needs 2 samples: BatchNorm cannot train on one 1x1 map
            "forward": forward_peak_memory(model, in_channels, size, batch).to_dict(),
            "train_step": train_step_peak_memory(model, in_channels, size, max(batch, 2)).to_dict()}
    if fmt == "json":
        click.echo(json.dumps(record, indent=2))
        return
    _print_profile(record)


def _print_profile(record: dict) -> None:
    train, deployed = record, record["deploy"]
    table = Table("", "train", "deploy",
                  title=f"{record['architecture']} at {'x'.join(map(str, record['input_shape']))}")
    rows = [
        ("parameters", f"{train['params']:,}", f"{deployed['params']:,}"),
        ("MACs", f"{train['macs'] / 1e9:.3f} G", f"{deployed['macs'] / 1e9:.3f} G"),
        ("paper FLOPs (2 x MACs)", f"{train['flops'] / 1e9:.3f} G", f"{deployed['flops'] / 1e9:.3f} G"),
        *((f"  MACs: {op}", f"{n / 1e9:.4f} G", f"{deployed['macs_by_operator'].get(op, 0) / 1e9:.4f} G")
          for op, n in train["macs_by_operator"].items()),
        ("uncounted ops", _ops(train["uncounted_ops"]) or "none", _ops(deployed["uncounted_ops"]) or "none"),
        ("zero by convention", _ops(train["zero_cost_ops"]) or "none", ""),
    ]
    if "memory" in record:
        fwd, step = record["memory"]["forward"], record["memory"]["train_step"]
        rows.append(("peak activations, training step (MiB)", f"{step['peak_activation_bytes'] / 2**20:.1f}", ""))
        rows.append(("peak activations, forward (MiB)", "", f"{fwd['peak_activation_bytes'] / 2**20:.1f}"))
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print(f"output {'x'.join(map(str, record['output_shape']))}; counter: {record['counter']}; "
                  f"torch {record['torch']}; config hash {record['config_hash'][:12]}")
    if "latency" in record:
        results = record["latency"]
        timing = Table("form/backend", "median ms", "IQR ms", "p90 ms", "n", "stopped", "ratio",
                       title="latency (timed interleaved)" if len(results) > 1 else "latency")
        for r in results:
            timing.add_row(r["label"], f"{r['median_ms']:.2f}", f"{r['iqr_ms']:.2f}", f"{r['p90_ms']:.2f}",
                           str(r["n"]), r["stopped"], f"{r['ratio']:.3f}" if r["ratio"] is not None else "")
        console.print(timing)
        p = results[0]["protocol"]
        console.print(f"protocol: {p['threads']} thread(s), batch {p['batch']}, {p['input_size']} px, "
                      f"warm-up {p['warmup']}, until the median's 95 % CI is within "
                      f"{p['target']:.0%} or {p['max_seconds']:g} s per variant"
                      f"{', each in a fresh process' if p['isolate'] else ''}; torch {p['torch']}"
                      f"{', onnxruntime ' + p['onnxruntime'] if p.get('onnxruntime') else ''}; {p['cpu']}")


def _ops(ops: dict[str, int]) -> str:
    return ", ".join(f"{op} x{n}" for op, n in ops.items())



# --------------------------------------------------------------------------- data and training
