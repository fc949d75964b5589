"""The expiry chart: an SVG drawn on the server (no script library), 13 weekly bars.

Each bar is the number of certificates expiring that week; its red part is those whose last
renewal failed. The template draws the shapes computed here: every number is ours, every text
label is escaped by Jinja2.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..report import WeekBucket

WIDTH = 720
HEIGHT = 220
LEFT = 40  # room for the scale
BOTTOM = 36  # room for the week labels
TOP = 16


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    ok_y: float
    ok_height: float
    failed_y: float
    failed_height: float
    total: int
    failed: int
    label: str  # "Dec 01"
    title: str  # the tooltip, e.g. "Week of 2026-12-01: 4 expire, 1 failed its last renewal"


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    baseline: float
    top: int
    bars: tuple[Bar, ...]
    ticks: tuple[tuple[float, int], ...]  # (y, value) of the scale lines
    total: int
    failed: int


def _step(peak: int) -> int:
    for step in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000):
        if peak / step <= 5:
            return step
    return max(1, peak // 5)


def build_chart(weeks: list[WeekBucket]) -> Chart:
    peak = max([w.total for w in weeks] + [1])
    step = _step(peak)
    scale_top = ((peak + step - 1) // step) * step
    baseline = float(HEIGHT - BOTTOM)
    usable = baseline - TOP
    slot = (WIDTH - LEFT) / max(1, len(weeks))
    bars = []
    for i, week in enumerate(weeks):
        failed_h = usable * week.failed / scale_top
        ok_h = usable * (week.total - week.failed) / scale_top
        day = time.gmtime(week.start)
        bars.append(
            Bar(
                x=round(LEFT + i * slot + slot * 0.15, 1),
                width=round(slot * 0.7, 1),
                ok_y=round(baseline - failed_h - ok_h, 1),
                ok_height=round(ok_h, 1),
                failed_y=round(baseline - failed_h, 1),
                failed_height=round(failed_h, 1),
                total=week.total,
                failed=week.failed,
                label=time.strftime("%b %d", day),
                title=(
                    f"Week of {time.strftime('%Y-%m-%d', day)}: {week.total} expire"
                    f"{f', {week.failed} failed their last renewal' if week.failed else ''}"
                ),
            )
        )
    ticks = tuple(
        (round(baseline - usable * v / scale_top, 1), v) for v in range(0, scale_top + 1, step)
    )
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        baseline=baseline,
        top=TOP,
        bars=tuple(bars),
        ticks=ticks,
        total=sum(w.total for w in weeks),
        failed=sum(w.failed for w in weeks),
    )
