"""Keeping the habit: streaks, `/justdoit stats`, and the weekly digest post.

A streak counts prompt days in a row that a member answered. Only scheduled days can
break it: a skipped date or a weekday without a prompt is simply not a day, and a prompt a
moderator posted on an unscheduled day counts when answered but never breaks a streak.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import NamedTuple

from bot import markup
from bot.model import Field, Post, inert, time_tag
from bot.prompts.bank import COMPETENCIES, competency_name
from bot.prompts.store import Answer

DIGEST_LINES_PER_COMPETENCY = 8
ANSWER_PREVIEW = 160


class Streak(NamedTuple):
    current: int
    best: int


def streak(days: Sequence[tuple[date, bool]], answered: Iterable[date], today: date) -> Streak:
    """Streaks over prompt days `(day, scheduled)` in date order.

    An unanswered scheduled day before `today` ends a run; today is still open, so not
    having answered it yet does not.
    """
    done = set(answered)
    run = best = 0
    for day, scheduled in sorted(days):
        if day > today:
            break
        if day in done:
            run += 1
        elif scheduled and day < today:
            run = 0
        best = max(best, run)
    return Streak(run, best)


def preview(text: str, limit: int = ANSWER_PREVIEW) -> str:
    return markup.truncate(" ".join(inert(text).split()), limit)


def by_competency(answers: Iterable[Answer]) -> Counter[str]:
    return Counter(a.competency for a in answers)


def _counts(counts: Counter[str]) -> str:
    if not counts:
        return "none yet"
    return "\n".join(
        f"{competency_name(slug)}: {counts[slug]}" for slug in COMPETENCIES if counts[slug]
    )


def stats_post(
    name: str,
    mine: Sequence[Answer],
    streak_now: Streak,
    community: Sequence[Answer],
    next_prompt: datetime | None,
    zone: str,
) -> Post:
    days = "day" if streak_now.current == 1 else "days"
    fields = [
        Field("Your streak", f"**{streak_now.current}** {days} (best {streak_now.best})"),
        Field("Your answers", str(len(mine))),
        Field("By competency", _counts(by_competency(mine)), inline=False),
    ]
    if mine:
        latest = [f"- {a.day.isoformat()}: {preview(a.text)}" for a in list(mine)[-3:]]
        fields.append(Field("Your latest", "\n".join(reversed(latest)), inline=False))
    members = len({a.member for a in community})
    fields.append(
        Field(
            "Community",
            f"{len(community)} answer{'s' if len(community) != 1 else ''} from {members} "
            f"member{'s' if members != 1 else ''}\n" + _counts(by_competency(community)),
            inline=False,
        )
    )
    text = "Keep practising: one small thing a day."
    if next_prompt is not None:
        text += f"\nNext prompt: {time_tag(next_prompt, 'f')}"
    return Post(title=f"Just do it: {inert(name)}", text=text, fields=fields, zone=zone)


def digest_post(
    answers: Sequence[Answer], week_start: date, private: bool, zone: str
) -> Post | None:
    """What members did over the week starting `week_start`, by competency; None if nothing."""
    if not answers:
        return None
    week_end = week_start + timedelta(days=6)
    grouped: dict[str, list[Answer]] = defaultdict(list)
    for answer in answers:
        grouped[answer.competency].append(answer)
    members = len({a.member for a in answers})
    lines = [
        f"{len(answers)} thing{'s' if len(answers) != 1 else ''} done by {members} "
        f"member{'s' if members != 1 else ''}. Thank you, and keep going."
    ]
    fields = []
    for slug in COMPETENCIES:
        done = grouped.get(slug, [])
        if not done:
            continue
        if private:
            value = f"{len(done)} done"
        else:
            shown = [f"- {inert(a.member_name)}: {preview(a.text)}" for a in done]
            extra = len(shown) - DIGEST_LINES_PER_COMPETENCY
            shown = shown[:DIGEST_LINES_PER_COMPETENCY]
            if extra > 0:
                shown.append(f"- …and {extra} more")
            value = "\n".join(shown)
        fields.append(Field(f"{competency_name(slug)} ({len(done)})", value, inline=False))
    return Post(
        title=f"Just do it: the week of {week_start:%d %b} to {week_end:%d %b %Y}",
        text="\n".join(lines),
        fields=fields,
        footer="Answer today's prompt with the I did it button or /justdoit answer",
        zone=zone,
    )
