"""The polls page's charts, drawn as inline SVG by its template: answers per day
(participation) and a repeating poll's trend across its runs (a line per answer).

Geometry only, in SVG user units; the page module reads the data and the template draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from bot.polls import results
from bot.polls.series import PERIOD_WORDS, Series, TrendPoint
from bot.polls.store import Question, Run, VoteStore
from bot.timeutil import local

DAYS_SHOWN = 92  # bars in the participation chart, the latest days
# The participation chart, in SVG user units: room for a count above the tallest bar and
# for the day and month under each bar.
CHART_HEIGHT, BAR_WIDTH, BAR_GAP, TOP, LABEL_SPACE = 120, 18, 4, 14, 30
# The trend chart: room on the left for the 0-100% scale, one step per run, the run's
# number under each step. Answers are told apart by colour and by the table beside it.
TREND_RUNS = 52  # runs drawn, the latest: a year of a weekly poll
TREND_HEIGHT, TREND_STEP, TREND_LEFT, TREND_TOP, TREND_BOTTOM = 120, 48, 36, 10, 24
TREND_COLORS = ("#3b7dd8", "#d8643b", "#3ba55d", "#a53bd8", "#d8b43b", "#3bc4d8", "#d83b8f", "#6b6b6b")  # fmt: skip


@dataclass
class DayBar:
    day: date
    count: int
    x: float
    y: float
    height: float


@dataclass
class Participation:
    """Answers per day in the community's zone, as SVG bars."""

    days: list[DayBar]
    width: float
    height: float
    baseline: float  # where the bars stand
    left_out: int  # earlier days not drawn
    bar: float = BAR_WIDTH

    @property
    def total(self) -> int:
        return sum(d.count for d in self.days)


async def participation(store: VoteStore, run: Run, zone: str) -> Participation | None:
    """A named run: each member's answer to each question counted once, on the day (in the
    community's zone) it was last given (a changed vote replaces the old one). An anonymous
    run keeps no answer times, so that a time cannot point back to a member: its chart is
    the members who first answered each UTC day. None before any answer."""
    per_day: dict[date, int] = {}
    if run.anonymous:
        for day, count in (await store.turnout(run.id)).items():
            per_day[date.fromisoformat(day)] = count
    else:
        rows = await store.db.fetchall(
            "SELECT max(answered_at) FROM vote_answers WHERE run_id = ?"
            " AND answered_at IS NOT NULL GROUP BY voter, qid",
            (run.id,),
        )
        for (ts,) in rows:
            day = local(datetime.fromtimestamp(ts, UTC), zone).date()
            per_day[day] = per_day.get(day, 0) + 1
    if not per_day:
        return None
    first, last = min(per_day), max(per_day)
    span = (last - first).days + 1
    shown = [last - timedelta(days=n) for n in range(min(span, DAYS_SHOWN) - 1, -1, -1)]
    return chart(shown, per_day, left_out=span - len(shown))


def chart(days: list[date], per_day: dict[date, int], left_out: int) -> Participation:
    top = max(per_day.get(d, 0) for d in days) or 1
    bars = []
    for n, day in enumerate(days):
        count = per_day.get(day, 0)
        height = CHART_HEIGHT * count / top
        x = n * (BAR_WIDTH + BAR_GAP)
        bars.append(DayBar(day, count, x, TOP + CHART_HEIGHT - height, height))
    width = max(len(days) * (BAR_WIDTH + BAR_GAP), 120)
    return Participation(
        bars, width, TOP + CHART_HEIGHT + LABEL_SPACE, TOP + CHART_HEIGHT, left_out
    )


@dataclass
class TrendLine:
    """One answer's share across the runs: an SVG polyline and its points."""

    index: int
    label: str
    color: str
    points: list[tuple[float, float, str]]  # x, y and the share as chat writes it (runs with votes)
    shares: list[str]  # per run, for the table: "40%", or "–" for a run nobody answered

    @property
    def polyline(self) -> str:
        return " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in self.points)


@dataclass
class Trend:
    """A repeating poll's runs up to this one, each answer's share of that run's voters."""

    runs: list[TrendPoint]
    run_ids: list[int]
    xs: list[float]
    lines: list[TrendLine]
    width: float
    height: float
    repeat: str  # "week" or "month"
    left: float = TREND_LEFT
    top: float = TREND_TOP
    bottom: float = TREND_TOP + TREND_HEIGHT

    def y(self, share: float) -> float:
        return self.top + TREND_HEIGHT * (1 - share)


def trend_chart(series: Series, question: Question, points: list[TrendPoint]) -> Trend:
    xs = [TREND_LEFT + 12 + n * TREND_STEP for n in range(len(points))]
    lines = []
    for index, label in enumerate(question.options):
        shares = [results.share(p.tally.get(index, 0), p.voters) for p in points]
        drawn = [
            (x, TREND_TOP + TREND_HEIGHT * (1 - s), results.percent(p.tally.get(index, 0), p.voters))
            for x, s, p in zip(xs, shares, points, strict=True)
            if s is not None
        ]  # fmt: skip
        shown = ["–" if s is None else f"{round(100 * s)}%" for s in shares]
        color = TREND_COLORS[index % len(TREND_COLORS)]
        lines.append(TrendLine(index, label, color, drawn, shown))
    width = max(xs[-1] + 24, 240.0)  # a line of two runs is still readable
    height = TREND_TOP + TREND_HEIGHT + TREND_BOTTOM
    return Trend(
        points, [p.run_id for p in points], xs, lines, width, height, PERIOD_WORDS[series.repeat]
    )
