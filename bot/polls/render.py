"""Posts for polls and surveys: the live poll, the survey invitation, one question at a time,
the results (with a repeating poll's trend across its runs) and a poll's reminder by direct
message. Pure functions of what the store returned.
"""

from __future__ import annotations

import logging

from bot.model import Attachment, Button, Field, Post, Select, SelectOption, inert, time_tag
from bot.polls import results
from bot.polls.series import TrendPoint
from bot.polls.store import Question, Run

log = logging.getLogger(__name__)

POLL_COLOR = 0x3B7DD8
CLOSED_COLOR = 0x888888
MAX_BUTTONS = 5  # one row on Discord; beyond it a select menu keeps the message compact
LABEL_LIMIT = 80


def label(text: str) -> str:
    text = inert(text)
    return text if len(text) <= LABEL_LIMIT else text[: LABEL_LIMIT - 1] + "…"


def choice_controls(
    options: list[str], action: str, prefix: str, max_values: int, as_buttons: bool
) -> tuple[list[Button], list[Select]]:
    """Buttons valued `prefix:INDEX`, or one select valued `prefix` (values: the indexes)."""
    if as_buttons:
        buttons = [
            Button(label(o), action=action, value=f"{prefix}:{i}") for i, o in enumerate(options)
        ]
        return buttons, []
    select = Select(
        action=action,
        options=[SelectOption(label(o), str(i)) for i, o in enumerate(options)],
        placeholder="Choose…",
        max_values=min(max_values, len(options)),
        value=prefix,
    )
    return [], [select]


def describe(run: Run, question: Question) -> str:
    if question.kind == "single":
        kind = "one choice"
    elif question.max_choices >= len(question.options):
        kind = "any number of choices"
    else:
        kind = f"up to {question.max_choices} choices"
    extras = [kind]
    if run.series_run is not None:
        extras.append(f"run {run.series_run} of a repeating poll")
    if run.anonymous:
        extras.append("anonymous")
    if run.hidden:
        extras.append("results shown when it closes")
    return ", ".join(extras)


def poll_post(
    run: Run, question: Question, tally: dict[int, int], voters: int, closed: bool
) -> Post:
    """The poll message: bars while live (unless hidden), buttons until it closes."""
    lines = []
    if run.hidden and not closed:
        lines.append(f"_{voters} voted so far. Results are shown when the poll closes._")
    else:
        lines.extend(results.tally_lines(question, tally, voters))
    footer = f"Poll #{run.id} · {describe(run, question)} · {voters} voted"
    if closed:
        lines.append("\n**This poll is closed.**")
    elif run.closes_at:
        lines.append(f"\nCloses {time_tag(run.closes_at, 'f')} ({time_tag(run.closes_at, 'R')})")
    post = Post(
        title=f"📊 {inert(question.text)}",
        text="\n".join(lines),
        footer=footer,
        color=CLOSED_COLOR if closed else POLL_COLOR,
    )
    if not closed:
        # Each button toggles one choice; a multi select sets the member's whole choice.
        many = question.max_choices if question.kind == "multi" else 1
        few = len(question.options) <= MAX_BUTTONS
        post.buttons, post.selects = choice_controls(
            question.options, "poll.vote", str(run.id), many, few
        )
    return post


def poll_results_post(
    run: Run,
    question: Question,
    tally: dict[int, int],
    voters: int,
    chart: bytes | None,
    trend: list[TrendPoint] | None = None,
) -> Post:
    """The results; a run of a repeating poll adds the trend once there are two runs."""
    lines = results.tally_lines(question, tally, voters)
    if trend and len(trend) > 1:
        lines += ["", *results.trend_lines(question, trend)]
    post = Post(
        title=f"Results: {inert(question.text)}",
        text="\n".join(lines),
        footer=f"Poll #{run.id} · {voters} voted · {describe(run, question)}",
        color=POLL_COLOR,
    )
    if chart:
        post.attachments = [_png(f"poll-{run.id}.png", chart)]
    return post


def poll_reminder_post(run: Run, question: Question) -> Post:
    """The direct message to a member who voted in the poll's previous run but not yet in
    this one: the question again, with its buttons, so one press answers it."""
    closes = run.closes_at
    when = f"closes {time_tag(closes, 'f')} ({time_tag(closes, 'R')})" if closes else "is open"
    post = Post(
        title=f"⏰ {inert(question.text)}",
        text=f"You voted in this poll last time; this time's run {when}, "
        "and your vote is not in yet.",
        footer=f"Poll #{run.id} · {describe(run, question)} · a one-time reminder",
        color=POLL_COLOR,
    )
    many = question.max_choices if question.kind == "multi" else 1
    few = len(question.options) <= MAX_BUTTONS
    post.buttons, post.selects = choice_controls(
        question.options, "poll.vote", str(run.id), many, few
    )
    return post


def survey_invite_post(run: Run, description: str, questions: int, closed: bool) -> Post:
    lines = [inert(description), "", f"{questions} questions, answered in private."]
    if closed:
        lines.append("\n**This survey is closed.** Thank you to everyone who answered.")
    elif run.closes_at:
        lines.append(f"Open until {time_tag(run.closes_at, 'f')}.")
    post = Post(
        title=f"📝 {inert(run.title)}",
        text="\n".join(lines),
        footer=f"Survey `{run.name}` · run #{run.id}",
        color=CLOSED_COLOR if closed else POLL_COLOR,
    )
    if not closed:
        post.buttons = [
            Button("Take the survey", action="survey.take", value=str(run.id), style="primary")
        ]
    return post


def survey_question_post(run: Run, questions: list[Question], index: int, mine: list) -> Post:
    """Question `index` for one member, with their current answer and Back / Skip."""
    question = questions[index]
    prefix = f"{run.id}:{question.qid}"
    lines = [f"**{inert(question.text)}**"]
    if question.kind == "multi":
        lines.append(f"_Choose up to {question.max_choices}._")
    if mine:
        shown = (
            [inert(str(mine[0]))]
            if question.kind == "text"
            else [inert(question.options[i]) for i in mine]
        )
        lines.append(f"Your answer: {'; '.join(shown)}")
    post = Post(
        title=f"{inert(run.title)} — {index + 1}/{len(questions)}",
        text="\n".join(lines),
        footer="Change any answer until the survey closes.",
        color=POLL_COLOR,
    )
    if question.kind == "text":
        post.buttons = [Button("Write answer", action="survey.write", value=prefix)]
    else:
        many = question.max_choices if question.kind == "multi" else 1
        few = question.kind == "single" and len(question.options) <= MAX_BUTTONS
        post.buttons, post.selects = choice_controls(
            question.options, "survey.answer", prefix, many, few
        )
    nav = []
    if index > 0:
        nav.append(Button("Back", action="survey.go", value=f"{run.id}:{questions[index - 1].qid}"))
    after = questions[index + 1].qid if index + 1 < len(questions) else "#done"
    nav.append(Button("Skip", action="survey.go", value=f"{run.id}:{after}"))
    post.buttons.extend(nav)
    return post


def survey_done_post(run: Run, answered: int, total: int) -> Post:
    first = f"{run.id}:#first"
    return Post(
        title=f"Thank you: {inert(run.title)}",
        text=f"You answered {answered} of {total} questions. "
        "You can change any answer until the survey closes.",
        buttons=[Button("Review my answers", action="survey.go", value=first)],
        color=POLL_COLOR,
    )


def survey_results_post(
    run: Run,
    questions: list[Question],
    tallies: dict[str, dict[int, int]],
    counts: dict[str, int],
    respondents: int,
    chart: bytes | None,
) -> Post:
    fields = []
    for q in questions:
        if q.kind == "text":
            value = f"{counts.get(q.qid, 0)} written answers (see the export)"
        else:
            value = "\n".join(results.tally_lines(q, tallies.get(q.qid, {}), counts.get(q.qid, 0)))
        fields.append(Field(inert(q.text), value, inline=False))
    state = "closed" if run.closed_at else "open"
    post = Post(
        title=f"Results: {inert(run.title)}",
        text=f"{respondents} members answered ({state}).",
        fields=fields,
        footer=f"Survey `{run.name}` · run #{run.id}",
        color=POLL_COLOR,
    )
    if chart:
        post.attachments = [_png(f"survey-{run.name}-{run.id}.png", chart)]
    return post


def crosstab_post(
    run: Run,
    questions: list[Question],
    segment: Question,
    table: dict[str, dict[int, dict[int, int]]],
    segment_tally: dict[int, int],
) -> Post:
    fields = [
        Field(
            inert(q.text),
            "\n".join(results.crosstab_lines(q, segment, table.get(q.qid, {}))),
            inline=False,
        )
        for q in questions
        if q.kind != "text" and q.qid != segment.qid
    ]
    return Post(
        title=f"{inert(run.title)}: by {inert(segment.qid)}",
        text=f"Answers side by side for each answer to _{inert(segment.text)}_\n"
        f"Segments (respondents): {results.segment_legend(segment, segment_tally)}",
        fields=fields,
        footer=f"Survey `{run.name}` · run #{run.id}",
        color=POLL_COLOR,
    )


def _png(filename: str, data: bytes) -> Attachment:
    return Attachment(filename, data, "image/png")
