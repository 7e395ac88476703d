"""Pareto plots of a sweep, from its records: the study's accuracy objective against each of its
cost objectives, one panel each, on log axes with units. Every trained design is a point labelled
with its short name (a network several trials sampled is one point); the front (from
:mod:`bench.search.pareto`, so plot and tables agree) is drawn in red and joined by a staircase; the
stock network is a star; designs trained with several seeds carry their 95 % t-interval. Designs
that were not trained (a constraint), failed or were skipped have no accuracy: they are left out
and counted in the caption. PNG and PDF (matplotlib), self-contained HTML (plotly)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import matplotlib

matplotlib.use("Agg")  # files only: never open a window
import matplotlib.pyplot as plt  # noqa: E402

from ..core.files import atomic  # noqa: E402
from ..search.objectives import OBJECTIVES, Objective  # noqa: E402
from ..search.records import SweepResult, TrialRecord  # noqa: E402

FRONT, OTHER, STOCK = "#d62728", "#1f77b4", "#111111"


@dataclass
class Point:
    """One trained network in a plot: display values (objective units, scaled)."""

    record: TrialRecord
    x: dict[str, float]  # cost objective -> display value
    y: float
    y_low: Optional[float]  # 95 % interval of the mean over seeds, if several
    y_high: Optional[float]
    on_front: bool
    stock: bool
    trials: list[int]  # every trial that sampled this network
    p_front: Optional[float] = None  # share of resamples with the design on the front (bench.results.membership)

    @property
    def label(self) -> str:
        sure = f" P{self.p_front:.2f}" if self.p_front is not None and (self.on_front or self.p_front > 0) else ""
        return self.record.label + (" (stock)" if self.stock else "") + sure

    @property
    def alpha(self) -> float:
        """Marker opacity: a design seldom on the front is drawn faint."""
        return 1.0 if self.p_front is None else 0.3 + 0.7 * self.p_front


def axes_of(result: SweepResult) -> tuple[Optional[Objective], list[Objective]]:
    """The study's accuracy objective (y) and its cost objectives (one panel each; parameters if
    the study has none)."""
    objectives = [OBJECTIVES.get(n) for n in result.info.objectives if n in OBJECTIVES]
    accuracy = next((o for o in objectives if not o.before_training), None)
    costs = [o for o in objectives if o.before_training] or [OBJECTIVES.get("params")]
    return accuracy, costs


def plot_points(result: SweepResult) -> list[Point]:
    """The trained networks, each once (as the trial that trained it), with their figures."""
    accuracy, costs = axes_of(result)
    if accuracy is None:
        return []
    front = set(result.front)
    merged: dict[int, list[int]] = {}
    for r in result.records:
        if r.state == "COMPLETE" and r.duplicate_of is not None:
            merged.setdefault(r.duplicate_of, []).append(r.number)
    points = []
    for r in result.records:
        if r.state != "COMPLETE" or r.duplicate_of is not None or r.value(accuracy.name) is None:
            continue
        if any(r.value(c.name) is None for c in costs):
            continue
        figure = r.estimate(accuracy.name)
        several = figure is not None and figure.n > 1
        low, high = (figure.ci_low, figure.ci_high) if several else (None, None)
        if several and accuracy.bounds:  # an interval of the mean can pass the values' own range
            low, high = max(low, accuracy.bounds[0]), min(high, accuracy.bounds[1])
        points.append(Point(
            r, {c.name: r.value(c.name) * c.scale for c in costs}, r.value(accuracy.name) * accuracy.scale,
            low * accuracy.scale if several else None, high * accuracy.scale if several else None,
            r.number in front, r.config_hash == result.info.reference_hash, [r.number, *merged.get(r.number, [])],
            result.front_probability.get(r.number)))
    return points


def caption(result: SweepResult, points: list[Point]) -> str:
    """What the plot shows and what it leaves out, in one paragraph."""
    info, repeats = result.info, result.info.repeats
    accuracy, costs = axes_of(result)
    clipped = f", clipped to [{accuracy.bounds[0]:g}, {accuracy.bounds[1]:g}]" if accuracy and accuracy.bounds else ""
    bars = (f"error bars: 95 % t-interval of the mean over {repeats} seeds{clipped}" if repeats > 1
            else "one seed per design: no error bars")
    parts = [f"{len(points)} designs trained ({bars}); red: the Pareto front of "
             f"{', '.join(info.objectives)} ({len(result.front)} designs), joined in each panel by its staircase"]
    if any(p.stock for p in points):
        parts.append(f"star: the stock {Path(info.architecture).stem}")
    timed = [c.axis_label for c in costs if c.timed]
    if timed and result.front_latency:
        parts.append(f"{timed[0]}: each design as timed in its trial; the tables give the front timed again, "
                     "interleaved with the stock network")
    merged = sum(len(p.trials) - 1 for p in points)
    if merged:
        parts.append(f"{merged} trials sampled a design already trained (one point each)")
    left_out = []
    for status, words in (("pruned", "pruned (stopped early)"), ("not trained", "not trained (a constraint)"),
                          ("failed", "failed"), ("skipped", "skipped")):
        count = result.count(status)
        if count:
            left_out.append(f"{count} {words}")
    again = sum(1 for r in result.records if r.status == "duplicate" and not r.trained)
    if again:
        left_out.append(f"{again} {'repeat' if again == 1 else 'repeats'} of a design pruned or not trained")
    if left_out:
        parts.append("not shown, having no accuracy: " + ", ".join(left_out))
    if result.front_probability:
        parts.append("P: the share of 1,000 resamples (of each design's seeds and of its timing within its 95 % "
                     "interval) in which the design is on the front; fainter markers are less often on it")
    return "; ".join(parts) + "."


def staircase(points: list[Point], cost: str) -> tuple[list[float], list[float]]:
    """The front members of one panel sorted by cost, with the best accuracy reached so far: the
    attainment line (best accuracy at most this cost)."""
    xs, ys, best = [], [], float("-inf")
    for p in sorted((p for p in points if p.on_front), key=lambda p: p.x[cost]):
        if p.y > best:
            best = p.y
            xs.append(p.x[cost])
            ys.append(best)
    return xs, ys


def write_plots(result: SweepResult, out_dir: Path) -> list[Path]:
    """``pareto.png``, ``pareto.pdf`` and ``pareto.html`` in ``out_dir`` (nothing if the study
    has no accuracy objective or trained no design); returns the paths."""
    accuracy, costs = axes_of(result)
    points = plot_points(result)
    if accuracy is None or not points:
        return []
    text = caption(result, points)
    figure = _matplotlib(result, points, accuracy, costs, text)
    paths = [out_dir / "pareto.png", out_dir / "pareto.pdf", out_dir / "pareto.html"]
    for path, options in ((paths[0], {"format": "png", "dpi": 150}), (paths[1], {"format": "pdf"})):
        with atomic(path) as tmp:
            figure.savefig(tmp, bbox_inches="tight", **options)
    plt.close(figure)
    with atomic(paths[2]) as tmp:
        _plotly(result, points, accuracy, costs, text).write_html(tmp, include_plotlyjs=True)  # offline
    return paths


def _matplotlib(result: SweepResult, points: list[Point], accuracy: Objective, costs: list[Objective], text: str):
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    figure, axes = plt.subplots(1, len(costs), figsize=(5.6 * len(costs), 4.6), squeeze=False, sharey=True)
    for ax, cost in zip(axes[0], costs):
        xs, ys = staircase(points, cost.name)
        ax.step(xs, ys, where="post", color=FRONT, linewidth=1.2, alpha=0.7)
        for p in points:
            colour = STOCK if p.stock else FRONT if p.on_front else OTHER
            error = [[p.y - p.y_low], [p.y_high - p.y]] if p.y_low is not None else None
            ax.errorbar(p.x[cost.name], p.y, yerr=error, fmt="*" if p.stock else "o", color=colour,
                        markersize=13 if p.stock else 6, capsize=3, elinewidth=1, zorder=3, alpha=p.alpha)
        ax.set_xscale("log")
        ax.margins(x=0.12, y=0.1)  # room for the labels of points at the edges
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(cost.axis_label)
        ax.grid(True, which="both", alpha=0.25)
    axes[0][0].set_ylabel(accuracy.axis_label)
    info = result.info
    figure.suptitle(f"{info.study}: {info.description or info.space} — data {Path(str(info.data['source'])).name} "
                    f"{info.data_at()}", fontsize=10)
    figure.tight_layout()
    placed = [place_labels(figure, ax, points, cost.name) for ax, cost in zip(axes[0], costs)]
    numbered = {p.record.number: p.label for found, _ in placed for p in found}
    missing = sorted({p.record.number for _, left in placed for p in left})
    if numbered:
        text += " Labelled by trial number where the name does not fit: " + ", ".join(
            f"#{n} {label}" for n, label in sorted(numbered.items())) + "."
    if missing:
        text += (f" Unlabelled where no label fits clear of the others: trial{'s' if len(missing) > 1 else ''} "
                 f"{', '.join(map(str, missing))} (named in pareto.html and results.csv).")
    figure.text(0.01, -0.02, _wrap(text, 150), fontsize=8, va="top", ha="left")
    return figure


LABEL_OFFSETS = [(dx * r, dy * r) for r in (1, 2, 3, 4) for dx, dy in
                 ((6, 4), (6, -11), (-6, 4), (-6, -11), (0, 9), (0, -16), (9, -3), (-9, -3))] + [
                 (dx, dy) for dy in (22, -29, 35, -42, 48, -55) for dx in (3, -3)]  # lifted clear of crowds


def place_labels(figure, ax, points: list[Point], cost: str) -> tuple[list[Point], list[Point]]:
    """Label each point where its text's box, as the renderer draws it, stays inside the panel and
    clear of every other label, marker and error bar: the stock network and the front first, the
    rest where room is left (tried at :data:`LABEL_OFFSETS`, in points); where the name fits nowhere,
    the trial number ``#7``. Returns the points labelled by number, and those left unlabelled."""
    from matplotlib.text import Text

    renderer = figure.canvas.get_renderer()
    obstacles = [box for p in points for box in marks(ax, p, cost)]
    frame = ax.get_window_extent(renderer)
    placed, numbered, unlabelled = [], [], []

    def put(p: Point, label: str) -> bool:
        colour = STOCK if p.stock else FRONT if p.on_front else OTHER
        for dx, dy in LABEL_OFFSETS:
            far = abs(dx) > 12 or abs(dy) > 16  # a leader line, so that a label set apart names its point
            text = ax.annotate(label, (p.x[cost], p.y), textcoords="offset points", xytext=(dx, dy), fontsize=7,
                               color=colour, ha="left" if dx > 0 else "right" if dx < 0 else "center",
                               arrowprops={"arrowstyle": "-", "lw": 0.4, "color": colour, "alpha": 0.5,
                                           "shrinkA": 0, "shrinkB": 4} if far else None)
            text.update_positions(renderer)
            box = Text.get_window_extent(text, renderer).expanded(1.04, 1.15)  # the words, not the leader line
            if (frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)
                    and not any(box.overlaps(other) for other in obstacles + placed)):
                placed.append(box)
                return True
            text.remove()
        return False

    for p in sorted(points, key=lambda p: (not p.stock, not p.on_front, p.x[cost])):
        if put(p, p.label):
            continue
        if put(p, f"#{p.record.number}"):  # a crowded panel: the trial number, named in the caption
            numbered.append(p)
        else:
            unlabelled.append(p)
    return numbered, unlabelled


def marks(ax, p: Point, cost: str) -> list:
    """Display-space boxes of a point's marker and error bar (with its caps)."""
    from matplotlib.transforms import Bbox

    x, y = ax.transData.transform((p.x[cost], p.y))
    scale = ax.figure.dpi / 72
    radius = (7 if p.stock else 4) * scale
    boxes = [Bbox([[x - radius, y - radius], [x + radius, y + radius]])]
    if p.y_low is not None:
        _, low = ax.transData.transform((p.x[cost], p.y_low))
        _, high = ax.transData.transform((p.x[cost], p.y_high))
        cap = 3.5 * scale
        boxes.append(Bbox([[x - cap, min(low, high) - 1], [x + cap, max(low, high) + 1]]))
    return boxes


def _plotly(result: SweepResult, points: list[Point], accuracy: Objective, costs: list[Objective], text: str):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    figure = make_subplots(rows=1, cols=len(costs), shared_yaxes=True, horizontal_spacing=0.06)
    for col, cost in enumerate(costs, start=1):
        xs, ys = staircase(points, cost.name)
        figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"shape": "hv", "color": FRONT, "width": 1},
                                    hoverinfo="skip", showlegend=False), row=1, col=col)
        for group, colour, symbol, name in ((False, OTHER, "circle", "trained"), (True, FRONT, "circle", "front")):
            members = [p for p in points if p.on_front == group and not p.stock]
            figure.add_trace(_trace(go, members, cost, colour, symbol, name, col == 1, points, costs, accuracy),
                             row=1, col=col)
        stock = [p for p in points if p.stock]
        if stock:
            figure.add_trace(_trace(go, stock, cost, STOCK, "star", "stock", col == 1, points, costs, accuracy),
                             row=1, col=col)
        figure.update_xaxes(type="log", title_text=cost.axis_label, row=1, col=col)
    figure.update_yaxes(title_text=accuracy.axis_label, row=1, col=1)
    info = result.info
    figure.update_layout(title=f"{info.study}: {info.description or info.space}", template="plotly_white",
                         height=520, width=560 * len(costs), margin={"b": 140},
                         annotations=[*figure.layout.annotations, {
                             "text": _wrap(text, 140, "<br>"), "showarrow": False, "xref": "paper", "yref": "paper",
                             "x": 0, "y": -0.3, "xanchor": "left", "yanchor": "top", "align": "left",
                             "font": {"size": 11}}])
    return figure


def _trace(go, members: list[Point], cost: Objective, colour: str, symbol: str, name: str, legend: bool,
           points: list[Point], costs: list[Objective], accuracy: Objective):
    errors = [p.y_high - p.y if p.y_high is not None else 0 for p in members]
    below = [p.y - p.y_low if p.y_low is not None else 0 for p in members]
    return go.Scatter(
        x=[p.x[cost.name] for p in members], y=[p.y for p in members], mode="markers+text", name=name,
        legendgroup=name, showlegend=legend, text=[p.label for p in members], textposition="top center",
        textfont={"size": 10, "color": colour},
        marker={"color": colour, "symbol": symbol, "size": 16 if symbol == "star" else 9,
                "line": {"width": 1, "color": "#333333"}},
        error_y={"type": "data", "array": errors, "arrayminus": below, "visible": any(errors), "thickness": 1},
        hovertext=[_hover(p, costs, accuracy) for p in members], hoverinfo="text")


def _hover(p: Point, costs: list[Objective], accuracy: Objective) -> str:
    r = p.record
    figure = r.estimate(accuracy.name)
    shown = f"{p.y:.4f}" + (f" ± {figure.std * accuracy.scale:.4f} (95 % CI {p.y_low:.4f} to {p.y_high:.4f})"
                            if p.y_low is not None else "")
    lines = [f"<b>{p.label}</b>: trial {', '.join(map(str, p.trials))}", f"{accuracy.label} {shown}"]
    lines += [f"{c.axis_label}: {p.x[c.name]:.4g}" for c in costs]
    if "test_dice" in r.metrics:
        lines.append(f"test Dice {r.metrics['test_dice']:.4f}")
    if "mlflow_run_id" in r.links:
        lines.append(f"MLflow run {r.links['mlflow_run_id'][:12]}")
    return "<br>".join(lines)


def _wrap(text: str, width: int, newline: str = "\n") -> str:
    import textwrap

    return newline.join(textwrap.wrap(text, width))
