"""Which differences on a sweep's front are real: each front member against the space's stock
network (when the study trained it), and the front members against each other, paired image by
image on the study's test set over every seed (:func:`bench.core.stats.compare_paired` on per-image
foreground Dice), Holm-adjusted together as one family (:func:`bench.core.stats.adjust`)."""
from __future__ import annotations

from itertools import combinations
from typing import Optional

from ..search.records import SweepResult, TrialRecord
from ..training.runs import pooled_scores
from ..core.stats import SAME, PairedComparison, adjust, compare_paired


def stock_record(result: SweepResult) -> Optional[TrialRecord]:
    """The trial that trained the space's stock architecture, if the study trained it."""
    return next((r for r in result.records if r.config_hash == result.info.reference_hash and r.trained
                 and r.duplicate_of is None and r.per_image), None)


def label(record: TrialRecord) -> str:
    return f"trial {record.number}"


def seed_scores(record: TrialRecord) -> list[list[float]]:
    """(runs, images) per-image test foreground Dice of each seed (the seed means where a record
    holds no per-seed scores)."""
    runs = pooled_scores([run for run in record.seeds if run.test_dice_fg_per_image])
    return runs if runs and runs[0] else [record.per_image]


def without_foreground(record: TrialRecord) -> int:
    """Test images without foreground (the same for every design of a study)."""
    return next((run.test_images_without_foreground for run in record.seeds if run.complete), 0)


def weigh_front(result: SweepResult) -> None:
    """Fill ``result.stock``, ``result.versus_stock`` and ``result.front_pairs``."""
    front = [r for r in result.front_records if r.per_image]
    stock = stock_record(result)
    result.stock = stock.number if stock is not None else None
    versus = [] if stock is None else [
        (r.number, compare_paired(seed_scores(stock), seed_scores(r), reference_name=f"{label(stock)} (stock)",
                                  candidate_name=label(r), empty=without_foreground(r)))
        for r in front if r.number != stock.number]
    pairs = [compare_paired(seed_scores(a), seed_scores(b), reference_name=label(a), candidate_name=label(b),
                            empty=without_foreground(a)) for a, b in combinations(front, 2)]
    judged = adjust([c for _, c in versus] + pairs)
    result.versus_stock = {number: c for (number, _), c in zip(versus, judged)}
    result.front_pairs = judged[len(versus):]


def indistinguishable(result: SweepResult) -> list[PairedComparison]:
    """The pairs of front members whose test Dice the paired test cannot tell apart."""
    return [c for c in result.front_pairs if c.verdict == SAME]
