"""Polls and surveys: every run of the community with its turnout and state, and one run's
results (bars per question, the written answers, a survey's cross-tab by a segment
question, answers per day, a repeating poll's trend across its runs as an SVG line per
answer), its CSV (the bytes `/poll export` or `/survey export` gives)
and a Close button that runs `/poll close` or `/survey close`, so the closing message and
the results post follow in every channel as when it is typed in chat.

Moderators only. What chat keeps private stays private: the page never names a voter (an
anonymous run stores no names and no answer times at all; a named poll's CSV carries them
as chat's export does), and a hidden poll's results, which members see only once it
closes, are shown here to moderators with a note that says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.model import ChannelRef, Ephemeral, Post
from bot.polls import results
from bot.polls.series import SeriesStore
from bot.polls.store import Question, Run, VoteStore
from bot.web.pages.poll_charts import TREND_RUNS, Trend, participation, trend_chart

if TYPE_CHECKING:
    from bot.web.server import Visit, WebServer

TEXTS_SHOWN = 200  # written answers listed per question; the CSV has them all


def add(server: WebServer) -> None:
    server.page("/polls", "Polls", show)
    server.get("/polls/{id:\\d+}", detail)
    server.get("/polls/{id:\\d+}.csv", export)
    server.get("/polls/{id:\\d+}/crosstab", crosstab_fragment)
    server.post("/polls/{id:\\d+}/close", close)


def _store(visit: Visit) -> VoteStore:
    return visit.app.features["poll"].store  # type: ignore[attr-defined]


def _series(visit: Visit) -> SeriesStore:
    return visit.app.features["poll"].series  # type: ignore[attr-defined]


def state_of(
    closed_at: float | None, closes_at: float | None, hidden: bool, now: float, posted: bool = True
) -> str:
    """scheduled (to be posted later), cancelled (before it was posted), closed (by hand or
    past its deadline), hidden (open, results shown when it closes) or open."""
    if not posted:
        return "cancelled" if closed_at is not None else "scheduled"
    if closed_at is not None or (closes_at is not None and closes_at <= now):
        return "closed"
    return "hidden" if hidden else "open"


# --- The list ----------------------------------------------------------------------------------


@dataclass
class Listed:
    """One run as the list shows it."""

    id: int
    kind: str
    name: str
    title: str
    channels: list[ChannelRef]
    created_at: float
    closes_at: float | None
    closed_at: float | None
    voters: int
    state: str
    anonymous: bool
    opens_at: float | None = None  # when a scheduled run is to be posted


async def listed(visit: Visit) -> list[Listed]:
    """Every run of the community, newest first: three queries however many runs and votes."""
    db = visit.app.db
    community_id = visit.community.id
    runs = await db.fetchall(
        "SELECT id, kind, name, title, channel, anonymous, hidden, created_at, closes_at,"
        " closed_at, opens_at, opened_at FROM vote_runs WHERE community_id = ?"
        " ORDER BY created_at DESC, id DESC",
        (community_id,),
    )
    voters = await db.fetchall(
        "SELECT a.run_id, count(DISTINCT a.voter) FROM vote_answers a"
        " JOIN vote_runs r ON r.id = a.run_id WHERE r.community_id = ? GROUP BY a.run_id",
        (community_id,),
    )
    posted = await db.fetchall(
        "SELECT c.run_id, c.channel FROM vote_channels c JOIN vote_runs r ON r.id = c.run_id"
        " WHERE r.community_id = ? ORDER BY c.rowid",
        (community_id,),
    )
    counts = {run_id: n for run_id, n in voters}
    channels: dict[int, list[ChannelRef]] = {}
    for run_id, key in posted:
        channels.setdefault(run_id, []).append(ChannelRef.parse(key))
    now = visit.app.clock.now().timestamp()
    found = []
    for r in runs:
        home = ChannelRef.parse(r["channel"])
        if not visit.owns(home):
            continue
        found.append(
            Listed(
                id=r["id"],
                kind=r["kind"],
                name=r["name"],
                title=r["title"],
                channels=channels.get(r["id"], [home]),
                created_at=r["created_at"],
                closes_at=r["closes_at"],
                closed_at=r["closed_at"],
                voters=counts.get(r["id"], 0),
                anonymous=bool(r["anonymous"]),
                opens_at=r["opens_at"],
                state=state_of(
                    r["closed_at"],
                    r["closes_at"],
                    bool(r["hidden"]),
                    now,
                    posted=r["opened_at"] is not None,
                ),  # fmt: skip
            )
        )
    return found


async def show(visit: Visit) -> web.StreamResponse:
    return visit.render("polls.html", runs=await listed(visit))


# --- One run -----------------------------------------------------------------------------------


async def owned_run(visit: Visit) -> Run:
    """The run the path names, if it is this community's; 404 otherwise."""
    run = await _store(visit).get(int(visit.request.match_info["id"]))
    if run is None or run.community_id != visit.community.id or not visit.owns(run.channel):
        raise web.HTTPNotFound(text="There is no such poll or survey here.")
    return run


@dataclass
class Bar:
    label: str
    count: int
    percent: str  # as chat writes it: a share of the members who answered the question
    width: float  # of the bar, 0-100


@dataclass
class Result:
    """One question's results: bars for a choice, the answers for a written question."""

    question: Question
    answered: int
    bars: list[Bar]
    texts: list[str]
    more: int  # written answers not listed


def result_of(question: Question, tally: dict[int, int], answered: int, texts: list[str]) -> Result:  # fmt: skip
    """A written question has one answer per member who answered it: those not listed
    are the ones past TEXTS_SHOWN."""
    bars = [
        Bar(label, count, results.percent(count, answered), _share(count, answered))
        for label, count in results.bars(question, tally)
    ]
    more = max(0, answered - len(texts)) if question.kind == "text" else 0
    return Result(question, answered, bars, texts, more)


def _share(count: int, total: int) -> float:
    return 100 * count / total if total else 0


async def answered_per_question(store: VoteStore, run_id: int) -> dict[str, int]:
    rows = await store.db.fetchall(
        "SELECT qid, count(DISTINCT voter) FROM vote_answers WHERE run_id = ? GROUP BY qid",
        (run_id,),
    )
    return {qid: n for qid, n in rows}


async def written(store: VoteStore, run_id: int) -> dict[str, list[str]]:
    """The first written answers to each question, as many as the page lists."""
    rows = await store.db.fetchall(
        "SELECT qid, text FROM (SELECT qid, text, rowid AS n, row_number() OVER"
        " (PARTITION BY qid ORDER BY rowid) AS rank FROM vote_answers"
        " WHERE run_id = ? AND text IS NOT NULL) AS ranked WHERE rank <= ? ORDER BY n",
        (run_id, TEXTS_SHOWN),
    )
    found: dict[str, list[str]] = {}
    for qid, text in rows:
        found.setdefault(qid, []).append(text)
    return found


async def trend_of(visit: Visit, run: Run, question: Question) -> Trend | None:
    """The trend, for a run of a repeating poll with at least two runs posted."""
    if run.series_id is None:
        return None
    series = await _series(visit).get(run.series_id)
    points = await _series(visit).trend(run, TREND_RUNS)
    if series is None or len(points) < 2:
        return None
    return trend_chart(series, question, points)


@dataclass
class CrossRow:
    label: str
    cells: list[tuple[int, str, float]]  # per segment: count, percent, bar width


@dataclass
class CrossTab:
    """Every choice question's answers side by side for each answer to `segment`."""

    segment: Question
    columns: list[tuple[str, int]]  # segment answer, members who gave it
    questions: list[tuple[Question, list[CrossRow]]]


def segments(questions: list[Question]) -> list[Question]:
    return [q for q in questions if q.segment and q.kind == "single"]


def segment_asked(visit: Visit, questions: list[Question]) -> Question | None:
    """The question `?by=` names (any one-choice question, as `/survey results by=` takes),
    else the first segment question; a `by` that names none is a bad request."""
    by = visit.request.query.get("by", "").strip().lower()
    if not by:
        found = segments(questions)
        return found[0] if found else None
    chosen = next((q for q in questions if q.qid == by and q.kind == "single"), None)
    if chosen is None:
        raise web.HTTPBadRequest(text="That is not a question to compare by.")
    return chosen


async def crosstab(store: VoteStore, run: Run, questions: list[Question], segment: Question, tallies: dict[str, dict[int, int]]) -> CrossTab:  # fmt: skip
    table = await store.crosstab(run.id, segment.qid)
    sizes = tallies.get(segment.qid, {})
    columns = [(label, sizes.get(i, 0)) for i, label in enumerate(segment.options)]
    compared = []
    for q in questions:
        if q.kind == "text" or q.qid == segment.qid:
            continue
        rows = []
        for index, label in enumerate(q.options):
            row = table.get(q.qid, {}).get(index, {})
            cells = []
            for s, (_, size) in enumerate(columns):
                count = row.get(s, 0)
                cells.append((count, results.percent(count, size), _share(count, size)))
            rows.append(CrossRow(label, cells))
        compared.append((q, rows))
    return CrossTab(segment, columns, compared)


async def detail(visit: Visit) -> web.StreamResponse:
    run = await owned_run(visit)
    store = _store(visit)
    questions = await store.questions(run.id)
    tallies = await store.tallies(run.id)
    answered = await answered_per_question(store, run.id)
    texts = await written(store, run.id) if any(q.kind == "text" for q in questions) else {}
    segment = segment_asked(visit, questions) if run.kind == "survey" else None
    now = visit.app.clock.now()
    posted = run.opened_at is not None
    return visit.render(
        "polls_run.html",
        run=run,
        state=state_of(_ts(run.closed_at), _ts(run.closes_at), run.hidden, now.timestamp(), posted),
        trend=await trend_of(visit, run, questions[0]) if run.kind == "poll" else None,
        channels=await store.channels(run.id) or [run.channel],
        respondents=await store.respondents(run.id),
        results=[
            result_of(q, tallies.get(q.qid, {}), answered.get(q.qid, 0), texts.get(q.qid, []))
            for q in questions
        ],
        segments=segments(questions),
        table=await crosstab(store, run, questions, segment, tallies) if segment else None,
        days=await participation(store, run, visit.community.timezone),
        csv_refused=csv_refusal(run),
    )


async def crosstab_fragment(visit: Visit) -> web.StreamResponse:
    """The cross-tab alone, for htmx to swap in when another segment is chosen."""
    run = await owned_run(visit)
    store = _store(visit)
    questions = await store.questions(run.id)
    segment = segment_asked(visit, questions) if run.kind == "survey" else None
    if segment is None:
        raise web.HTTPNotFound(text="This has no question to compare by.")
    table = await crosstab(store, run, questions, segment, await store.tallies(run.id))
    return visit.render("polls_crosstab.html", run=run, table=table)


def _ts(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment else None


# --- The CSV and the close ---------------------------------------------------------------------


def csv_refusal(run: Run) -> str:
    """Why the CSV is not given yet ('' when it is): what `/poll export` refuses."""
    if run.kind == "poll" and run.hidden and run.closed_at is None:
        return f"Poll #{run.id} hides its results until it closes; export it then."
    return ""


async def csv_of(store: VoteStore, run: Run) -> tuple[str, bytes]:
    """The file chat's export attaches: the same name and the same bytes."""
    questions = await store.questions(run.id)
    answers: list[Any] = await store.all_answers(run.id)
    if run.kind == "poll":
        tally = (await store.tallies(run.id)).get(questions[0].qid, {})
        return f"poll-{run.id}.csv", results.poll_csv(run, questions[0], tally, answers)
    return f"survey-{run.name}-{run.id}.csv", results.survey_csv(questions, answers)


async def export(visit: Visit) -> web.StreamResponse:
    run = await owned_run(visit)
    refused = csv_refusal(run)
    if refused:
        return visit.render("refused.html", status=409, why=refused)
    filename, data = await csv_of(_store(visit), run)
    return web.Response(
        body=data,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def close(visit: Visit) -> web.StreamResponse:
    """Close through the chat command. A survey is closed by name, which means its open
    run: a run closed already is never sent, lest a newer run of that survey close."""
    run = await owned_run(visit)
    if run.closed_at is not None:
        visit.tell([Ephemeral(Post(text=f"{run.kind.title()} #{run.id} is already closed."))])
    elif run.kind == "poll":
        await visit.command(("poll", "close"), run.channel, id=run.id)
    else:
        await visit.command(("survey", "close"), run.channel, name=run.name)
    return visit.back(f"/polls/{run.id}")
