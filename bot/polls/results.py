"""Results as text and files: bars with counts and percentages, cross-tabs, the trend
across a repeating poll's runs, CSV exports."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable
from typing import Any

from bot.model import inert
from bot.polls.series import TrendPoint
from bot.polls.store import Question, Run
from bot.timeutil import utc_from_ts

log = logging.getLogger(__name__)

BAR_WIDTH = 10
SPARKS = "▁▂▃▄▅▆▇█"  # a share of 0% to 100%, in eight steps
NO_VOTES = "·"  # a run nobody answered has no share to draw


def bar(count: int, total: int, width: int = BAR_WIDTH) -> str:
    filled = round(width * count / total) if total else 0
    return "█" * filled + "░" * (width - filled)


def percent(count: int, total: int) -> str:
    return f"{round(100 * count / total)}%" if total else "0%"


def tally_lines(question: Question, tally: dict[int, int], voters: int) -> list[str]:
    """One line per option: label, bar, count and share of the members who answered."""
    lines = []
    for index, label in enumerate(question.options):
        count = tally.get(index, 0)
        lines.append(
            f"**{inert(label)}**  `{bar(count, voters)}` {count} · {percent(count, voters)}"
        )
    return lines


def bars(question: Question, tally: dict[int, int]) -> list[tuple[str, int]]:
    return [(label, tally.get(i, 0)) for i, label in enumerate(question.options)]


def share(count: int, total: int) -> float | None:
    """count / total, or None when nobody answered (which is not a share of 0)."""
    return count / total if total else None


def sparkline(shares: list[float | None]) -> str:
    """One character per run: the share's height, on the same 0-100% scale for every
    option, so two options' lines can be compared by eye."""
    return "".join(NO_VOTES if s is None else SPARKS[round(s * (len(SPARKS) - 1))] for s in shares)


def trend_lines(question: Question, points: list[TrendPoint]) -> list[str]:
    """A heading, then per option its sparkline and its share in each run, oldest first."""
    first, last = points[0].number, points[-1].number
    lines = [f"**Trend over runs {first}–{last}** (share of the members who voted in each)"]
    for index, label in enumerate(question.options):
        shares = [share(p.tally.get(index, 0), p.voters) for p in points]
        said = " → ".join("–" if s is None else f"{round(100 * s)}%" for s in shares)
        lines.append(f"**{inert(label)}**  `{sparkline(shares)}` {said}")
    return lines


def segment_names(segment: Question) -> list[str]:
    """Short column names: the labels themselves if short, else letters with a legend."""
    if all(len(o) <= 14 for o in segment.options):
        return [inert(o) for o in segment.options]
    return [chr(ord("A") + i) for i in range(len(segment.options))]


def segment_legend(segment: Question, tally: dict[int, int]) -> str:
    names = segment_names(segment)
    parts = []
    for i, option in enumerate(segment.options):
        label = names[i] if names[i] == inert(option) else f"{names[i]} = {inert(option)}"
        parts.append(f"{label} ({tally.get(i, 0)})")
    return " · ".join(parts)


def crosstab_lines(
    question: Question, segment: Question, table: dict[int, dict[int, int]]
) -> list[str]:
    """For each answer, its count in every segment, side by side."""
    names = segment_names(segment)
    lines = []
    for index, label in enumerate(question.options):
        row = table.get(index, {})
        cells = " | ".join(f"{names[s]}: {row.get(s, 0)}" for s in range(len(segment.options)))
        lines.append(f"**{inert(label)}** — {cells}")
    return lines


# --- CSV ---------------------------------------------------------------------------------


def _csv(rows: Iterable[list[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return out.getvalue().encode("utf-8")


def _cell(value: Any) -> Any:
    # A spreadsheet would run a cell starting with one of these as a formula.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def poll_csv(run: Run, question: Question, tally: dict[int, int], answers: list[Any]) -> bytes:
    """Totals per option; for a poll that is not anonymous, also one row per vote."""
    voters = len({a["voter"] for a in answers})
    rows: list[list[Any]] = [["section", "option", "votes", "percent", "member", "voted_at"]]
    for index, label in enumerate(question.options):
        count = tally.get(index, 0)
        rows.append(["total", label, count, percent(count, voters), "", ""])
    if not run.anonymous:
        for a in answers:
            when = utc_from_ts(a["answered_at"])
            rows.append(
                [
                    "vote",
                    question.options[a["option"]],
                    1,
                    "",
                    a["voter_name"] or a["voter"],
                    when.isoformat() if when else "",
                ]
            )
    return _csv(rows)


def survey_csv(questions: list[Question], answers: list[Any]) -> bytes:
    """One row per respondent (numbered, never named), one column per question."""
    by_voter: dict[str, dict[str, list[str]]] = {}
    for a in answers:
        question = next(q for q in questions if q.qid == a["qid"])
        value = a["text"] if a["option"] is None else question.options[a["option"]]
        by_voter.setdefault(a["voter"], {}).setdefault(a["qid"], []).append(value)
    rows: list[list[Any]] = [["respondent", *(q.qid for q in questions)]]
    for number, answered in enumerate(by_voter.values(), start=1):
        rows.append([number, *("; ".join(answered.get(q.qid, [])) for q in questions)])
    return _csv(rows)
