"""Which differences on a sweep's front are real: each front member against the space's stock
network (when the study trained it), and the front members against each other, paired image by
image on the study's test set (:func:`bench.stats.compare_paired` on per-image foreground Dice,
averaged over the seeds first)."""
from __future__ import annotations

from itertools import combinations
from typing import Optional

from .records import SweepResult, TrialRecord
from .stats import SAME, PairedComparison, compare_paired


def stock_record(result: SweepResult) -> Optional[TrialRecord]:
    """The trial that trained the space's stock architecture, if the study trained it."""
    return next((r for r in result.records if r.config_hash == result.info.reference_hash and r.trained
                 and r.duplicate_of is None and r.per_image), None)


def label(record: TrialRecord) -> str:
    return f"trial {record.number}"


def weigh_front(result: SweepResult) -> None:
    """Fill ``result.stock``, ``result.versus_stock`` and ``result.front_pairs``."""
    repeats = result.info.repeats
    front = [r for r in result.front_records if r.per_image]
    stock = stock_record(result)
    result.stock = stock.number if stock is not None else None
    result.versus_stock = {}
    if stock is not None:
        for r in front:
            if r.number != stock.number:
                result.versus_stock[r.number] = compare_paired(
                    stock.per_image, r.per_image, reference_name=f"{label(stock)} (stock)",
                    candidate_name=label(r), seeds=repeats)
    result.front_pairs = [compare_paired(a.per_image, b.per_image, reference_name=label(a), candidate_name=label(b),
                                         seeds=repeats) for a, b in combinations(front, 2)]


def indistinguishable(result: SweepResult) -> list[PairedComparison]:
    """The pairs of front members whose test Dice the paired test cannot tell apart."""
    return [c for c in result.front_pairs if c.verdict == SAME]
