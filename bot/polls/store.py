"""Store queries for polls and survey runs: one schema serves both.

A poll is a run with one question; a survey run copies its questions from the survey file
when it starts, so results stay readable even if the file changes later. Every answer is a
row in `vote_answers`, whose UNIQUE key is what makes "one member, one vote" hold:
single-choice and text answers always use slot 0 (one row per member per question), a
multiple-choice answer uses the option index as its slot (one row per member per option).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from bot.errors import UserError
from bot.model import ChannelRef, UserRef
from bot.store import Database, Tx
from bot.timeutil import utc_from_ts

log = logging.getLogger(__name__)

MIGRATIONS = [
    """
    CREATE TABLE vote_runs (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('poll', 'survey')),
        name TEXT NOT NULL DEFAULT '',
        title TEXT NOT NULL,
        community_id INTEGER NOT NULL,
        channel TEXT NOT NULL,
        creator TEXT NOT NULL,
        anonymous INTEGER NOT NULL DEFAULT 0,
        hidden INTEGER NOT NULL DEFAULT 0,
        everywhere INTEGER NOT NULL DEFAULT 0,
        secret TEXT,
        created_at REAL NOT NULL,
        closes_at REAL,
        closed_at REAL
    );
    CREATE UNIQUE INDEX vote_runs_one_open_survey ON vote_runs (community_id, name)
        WHERE kind = 'survey' AND closed_at IS NULL;
    CREATE TABLE vote_questions (
        run_id INTEGER NOT NULL REFERENCES vote_runs (id) ON DELETE CASCADE,
        qid TEXT NOT NULL,
        position INTEGER NOT NULL,
        text TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('single', 'multi', 'text')),
        options TEXT NOT NULL DEFAULT '[]',
        max_choices INTEGER NOT NULL DEFAULT 1,
        segment INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (run_id, qid)
    );
    CREATE TABLE vote_answers (
        run_id INTEGER NOT NULL,
        qid TEXT NOT NULL,
        voter TEXT NOT NULL,
        slot INTEGER NOT NULL,
        option INTEGER,
        text TEXT,
        voter_name TEXT,
        answered_at REAL,
        FOREIGN KEY (run_id, qid) REFERENCES vote_questions (run_id, qid) ON DELETE CASCADE,
        UNIQUE (run_id, qid, voter, slot)
    );
    CREATE INDEX vote_answers_tally ON vote_answers (run_id, qid, option);
    CREATE TABLE vote_channels (
        run_id INTEGER NOT NULL REFERENCES vote_runs (id) ON DELETE CASCADE,
        channel TEXT NOT NULL,
        PRIMARY KEY (run_id, channel)
    )
    """,
    # Turnout of anonymous runs: how many members first answered on each (UTC) day. Their
    # answers keep no time (it could point back to a member); a count per day does not.
    """
    CREATE TABLE vote_turnout (
        run_id INTEGER NOT NULL REFERENCES vote_runs (id) ON DELETE CASCADE,
        day TEXT NOT NULL,
        respondents INTEGER NOT NULL,
        PRIMARY KEY (run_id, day)
    );
    -- Who was counted already (the run's voter hashes, unreadable once it closes): a member
    -- taking a vote back and voting again is not a new one. WITHOUT ROWID: rows are kept in
    -- hash order, so their order says nothing of when each member came.
    CREATE TABLE vote_turnout_voters (
        run_id INTEGER NOT NULL REFERENCES vote_runs (id) ON DELETE CASCADE,
        voter TEXT NOT NULL,
        PRIMARY KEY (run_id, voter)
    ) WITHOUT ROWID
    """,
    # Respondents per run (the web console's list counts them for every run at once).
    """
    CREATE INDEX vote_answers_voters ON vote_answers (run_id, voter)
    """,
    # Polls that run themselves. A run may be posted later than it is made (`opens_at`;
    # `opened_at` is when it was posted, NULL until then; closed with it still NULL, it was
    # cancelled before it was ever posted). A series is one poll asked again
    # each week or month: each period is a run of its own (`series_run` is the period's
    # number, so a run is made once however often its opening is retried), copied from the
    # run before. `length` is how long a run stays open when the poll has its own `closes`
    # (NULL: until the next run opens); `remind` is how long before a run closes its
    # reminders go out; `runs` how many periods it lasts (NULL: until it is stopped).
    """
    CREATE TABLE vote_series (
        id INTEGER PRIMARY KEY,
        community_id INTEGER NOT NULL,
        repeat TEXT NOT NULL CHECK (repeat IN ('weekly', 'monthly')),
        zone TEXT NOT NULL,
        first_opens_at REAL NOT NULL,
        length REAL,
        remind REAL,
        runs INTEGER,
        stopped_at REAL
    );
    ALTER TABLE vote_runs ADD COLUMN opens_at REAL;
    ALTER TABLE vote_runs ADD COLUMN opened_at REAL;
    ALTER TABLE vote_runs ADD COLUMN series_id INTEGER REFERENCES vote_series (id);
    ALTER TABLE vote_runs ADD COLUMN series_run INTEGER;
    UPDATE vote_runs SET opened_at = created_at;
    CREATE UNIQUE INDEX vote_runs_series_run ON vote_runs (series_id, series_run)
        WHERE series_id IS NOT NULL
    """,
]

QuestionKind = Literal["single", "multi", "text"]


@dataclass
class Question:
    qid: str
    text: str
    kind: QuestionKind
    options: list[str]
    max_choices: int = 1
    segment: bool = False
    position: int = 0


@dataclass
class Run:
    id: int
    kind: str
    name: str
    title: str
    community_id: int
    channel: ChannelRef
    creator: str
    anonymous: bool
    hidden: bool
    everywhere: bool
    secret: str | None
    created_at: datetime
    closes_at: datetime | None
    closed_at: datetime | None
    opens_at: datetime | None = None  # when a run made to be posted later is due
    opened_at: datetime | None = None  # when it was posted (None: not yet)
    series_id: int | None = None
    series_run: int | None = None  # the period's number in its series, from 1

    def is_open(self, now: datetime) -> bool:
        return self.closed_at is None and (self.closes_at is None or self.closes_at > now)

    def voter(self, user: UserRef) -> str:
        """How this member is recorded in this run.

        Anonymous runs never store who voted: the member is recorded as a keyed hash
        (HMAC-SHA256 with a secret made for this run alone), which is enough for the UNIQUE
        key to hold one vote per member and to let members change their own vote, yet no
        command, result or export can turn it back into a name. The secret is erased when
        the run closes, after which not even someone holding the database file can test a
        member against the hashes.
        """
        if not self.anonymous:
            return user.key
        if not self.secret:
            raise Closed("This is closed: answers are no longer taken.")
        return hmac.new(self.secret.encode(), user.key.encode(), hashlib.sha256).hexdigest()


class Closed(UserError):
    """A vote or an answer arrived after the run closed."""


class TooMany(UserError):
    """A multiple-choice answer would exceed the question's maximum."""


# What a button press did (see ballots.py); "counted": the same press was applied before.
Outcome = Literal["added", "removed", "changed", "counted"]


class VoteStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- Runs ----------------------------------------------------------------------------

    async def create(
        self,
        *,
        kind: str,
        title: str,
        community_id: int,
        channel: ChannelRef,
        creator: UserRef,
        questions: list[Question],
        now: datetime,
        name: str = "",
        anonymous: bool = False,
        hidden: bool = False,
        everywhere: bool = False,
        closes_at: datetime | None = None,
        opens_at: datetime | None = None,
        series: tuple[int, int] | None = None,
    ) -> int:
        """A new run; with `opens_at` it waits to be posted (`opened`). `series` is
        (series id, period number) for a run of a repeating poll."""
        secret = secrets.token_hex(32) if anonymous else None
        series_id, series_run = series or (None, None)
        async with self.db.transaction() as tx:
            cur = await tx.execute(
                "INSERT INTO vote_runs (kind, name, title, community_id, channel, creator,"
                " anonymous, hidden, everywhere, secret, created_at, closes_at, opens_at,"
                " opened_at, series_id, series_run)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    kind, name, title, community_id, channel.key, creator.key, int(anonymous),
                    int(hidden), int(everywhere), secret, now.timestamp(), _ts(closes_at),
                    _ts(opens_at), None if opens_at else now.timestamp(), series_id, series_run,
                ),
            )  # fmt: skip
            run_id = cur.lastrowid
            await tx.executemany(
                "INSERT INTO vote_questions (run_id, qid, position, text, kind, options,"
                " max_choices, segment) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (run_id, q.qid, i, q.text, q.kind, json.dumps(q.options), q.max_choices,
                     int(q.segment))
                    for i, q in enumerate(questions)
                ],
            )  # fmt: skip
        return int(run_id)

    async def get(self, run_id: int) -> Run | None:
        row = await self.db.fetchone("SELECT * FROM vote_runs WHERE id = ?", (run_id,))
        return run_from_row(row) if row else None

    async def latest(self, community_id: int, name: str) -> Run | None:
        """The open run of a survey in this community, else its most recent one."""
        row = await self.db.fetchone(
            "SELECT * FROM vote_runs WHERE kind = 'survey' AND community_id = ? AND name = ?"
            " ORDER BY closed_at IS NULL DESC, id DESC LIMIT 1",
            (community_id, name),
        )
        return run_from_row(row) if row else None

    async def questions(self, run_id: int) -> list[Question]:
        rows = await self.db.fetchall(
            "SELECT * FROM vote_questions WHERE run_id = ? ORDER BY position", (run_id,)
        )
        return [_question(r) for r in rows]

    async def close(self, run_id: int, now: datetime) -> bool:
        """Close once; erase the anonymous secret. False if it was closed already."""
        changed = await self.db.execute(
            "UPDATE vote_runs SET closed_at = ?, secret = NULL WHERE id = ? AND closed_at IS NULL",
            (now.timestamp(), run_id),
        )
        return bool(changed)

    async def opened(self, run_id: int, now: datetime) -> bool:
        """Mark a run made to be posted later as posted; False if it was already."""
        changed = await self.db.execute(
            "UPDATE vote_runs SET opened_at = ? WHERE id = ? AND opened_at IS NULL",
            (now.timestamp(), run_id),
        )
        return bool(changed)

    async def cancel(self, run_id: int, now: datetime) -> bool:
        """Close a run that was never posted: it stays closed with `opened_at` NULL (kept,
        so its number is never given to another poll). False if it was posted meanwhile."""
        changed = await self.db.execute(
            "UPDATE vote_runs SET closed_at = ?, secret = NULL"
            " WHERE id = ? AND opened_at IS NULL AND closed_at IS NULL",
            (now.timestamp(), run_id),
        )
        return bool(changed)

    async def add_channel(self, run_id: int, channel: ChannelRef) -> None:
        await self.db.execute(
            "INSERT INTO vote_channels VALUES (?, ?) ON CONFLICT DO NOTHING",
            (run_id, channel.key),
        )

    async def channels(self, run_id: int) -> list[ChannelRef]:
        rows = await self.db.fetchall(
            "SELECT channel FROM vote_channels WHERE run_id = ? ORDER BY rowid", (run_id,)
        )
        return [ChannelRef.parse(r[0]) for r in rows]

    # --- Answering -----------------------------------------------------------------------

    async def choose(
        self, run: Run, question: Question, user: UserRef, options: list[int], now: datetime
    ) -> None:
        """Replace the member's answer with exactly these options (a survey answer)."""
        chosen = sorted(set(options))
        if question.kind == "single" and len(chosen) != 1:
            raise UserError("Choose exactly one answer.")
        if len(chosen) > question.max_choices:
            raise TooMany(f"You can choose at most {question.max_choices}.")
        voter = run.voter(user)
        async with self.db.transaction() as tx:
            await tx.serialise(f"choices:{run.id}:{question.qid}:{voter}")  # see ballots.py
            await _check_open(tx, run.id, now)
            await _count_turnout(tx, run, voter, now)
            await tx.execute(
                "DELETE FROM vote_answers WHERE run_id = ? AND qid = ? AND voter = ?",
                (run.id, question.qid, voter),
            )
            for option in chosen:
                slot = 0 if question.kind == "single" else option
                await _insert(tx, run, question.qid, voter, user, slot, option, None, now)

    async def write(
        self, run: Run, question: Question, user: UserRef, text: str, now: datetime
    ) -> None:
        voter = run.voter(user)
        async with self.db.transaction() as tx:
            await tx.serialise(f"choices:{run.id}:{question.qid}:{voter}")  # see ballots.py
            await _check_open(tx, run.id, now)
            await _count_turnout(tx, run, voter, now)
            await tx.execute(
                "DELETE FROM vote_answers WHERE run_id = ? AND qid = ? AND voter = ?",
                (run.id, question.qid, voter),
            )
            await _insert(tx, run, question.qid, voter, user, 0, None, text, now)

    async def answers_of(self, run: Run, user: UserRef) -> dict[str, list[Any]]:
        """The member's own answers: question id -> chosen option indexes (or [text])."""
        rows = await self.db.fetchall(
            "SELECT qid, option, text FROM vote_answers WHERE run_id = ? AND voter = ?"
            " ORDER BY slot",
            (run.id, run.voter(user)),
        )
        found: dict[str, list[Any]] = {}
        for r in rows:
            found.setdefault(r["qid"], []).append(r["text"] if r["option"] is None else r["option"])
        return found

    # --- Reading results -----------------------------------------------------------------

    async def tallies(self, run_id: int) -> dict[str, dict[int, int]]:
        """question id -> option index -> votes."""
        rows = await self.db.fetchall(
            "SELECT qid, option, count(*) FROM vote_answers WHERE run_id = ?"
            " AND option IS NOT NULL GROUP BY qid, option",
            (run_id,),
        )
        found: dict[str, dict[int, int]] = {}
        for qid, option, count in rows:
            found.setdefault(qid, {})[option] = count
        return found

    async def respondents(self, run_id: int, qid: str | None = None) -> int:
        if qid is None:
            sql, params = (
                "SELECT count(DISTINCT voter) FROM vote_answers WHERE run_id = ?",
                (run_id,),
            )
        else:
            sql = "SELECT count(DISTINCT voter) FROM vote_answers WHERE run_id = ? AND qid = ?"
            params = (run_id, qid)
        return int(await self.db.fetchval(sql, params) or 0)

    async def turnout(self, run_id: int) -> dict[str, int]:
        """An anonymous run's new respondents per UTC day ("2026-12-01" -> count)."""
        rows = await self.db.fetchall(
            "SELECT day, respondents FROM vote_turnout WHERE run_id = ? ORDER BY day", (run_id,)
        )
        return {r[0]: r[1] for r in rows}

    async def crosstab(self, run_id: int, by: str) -> dict[str, dict[int, dict[int, int]]]:
        """question id -> option -> segment option -> votes, among members who answered `by`."""
        rows = await self.db.fetchall(
            "SELECT a.qid, a.option, s.option, count(*) FROM vote_answers a"
            " JOIN vote_answers s ON s.run_id = a.run_id AND s.voter = a.voter AND s.qid = ?"
            " WHERE a.run_id = ? AND a.qid != ? AND a.option IS NOT NULL"
            " GROUP BY a.qid, a.option, s.option",
            (by, run_id, by),
        )
        found: dict[str, dict[int, dict[int, int]]] = {}
        for qid, option, segment, count in rows:
            found.setdefault(qid, {}).setdefault(option, {})[segment] = count
        return found

    async def all_answers(self, run_id: int) -> list[Any]:
        """Every answer row in a stable order (for exports)."""
        return await self.db.fetchall(
            "SELECT a.voter, a.voter_name, a.qid, a.option, a.text, a.answered_at"
            " FROM vote_answers a JOIN vote_questions q ON q.run_id = a.run_id AND q.qid = a.qid"
            " WHERE a.run_id = ? ORDER BY a.rowid",
            (run_id,),
        )


# An anonymous run's member answering for the first time counts on that day's turnout (the
# votes' batched writer runs the same two statements: bot/polls/ballots.py).
FIRST_ANSWER = "INSERT INTO vote_turnout_voters VALUES (?, ?) ON CONFLICT DO NOTHING"
COUNT_TURNOUT = (
    "INSERT INTO vote_turnout VALUES (?, ?, 1) ON CONFLICT (run_id, day)"
    " DO UPDATE SET respondents = vote_turnout.respondents + 1"
)


def turnout_day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).date().isoformat()


async def _count_turnout(tx: Tx, run: Run, voter: str, now: datetime) -> None:
    if not run.anonymous:
        return  # a named run's answers carry their own time
    if (await tx.execute(FIRST_ANSWER, (run.id, voter))).rowcount == 1:
        await tx.execute(COUNT_TURNOUT, (run.id, turnout_day(now.timestamp())))


async def _check_open(tx: Tx, run_id: int, now: datetime) -> None:
    row = await tx.fetchone("SELECT closed_at, closes_at FROM vote_runs WHERE id = ?", (run_id,))
    if row is None or row["closed_at"] is not None:
        raise Closed("This is closed: answers are no longer taken.")
    if row["closes_at"] is not None and row["closes_at"] <= now.timestamp():
        raise Closed("This has reached its deadline: answers are no longer taken.")


async def _insert(
    tx: Tx,
    run: Run,
    qid: str,
    voter: str,
    user: UserRef,
    slot: int,
    option: int | None,
    text: str | None,
    now: datetime,
) -> None:
    # No name and no time for anonymous runs: either could point back to the member.
    name = None if run.anonymous else (user.name or user.user)
    await tx.execute(
        "INSERT INTO vote_answers (run_id, qid, voter, slot, option, text, voter_name,"
        " answered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (run.id, qid, voter, slot, option, text, name, _stamp(run, now)),
    )


def _ts(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment else None


def _stamp(run: Run, now: datetime) -> float | None:
    return None if run.anonymous else now.timestamp()


def run_from_row(row: Any) -> Run:
    return Run(
        id=row["id"],
        kind=row["kind"],
        name=row["name"],
        title=row["title"],
        community_id=row["community_id"],
        channel=ChannelRef.parse(row["channel"]),
        creator=row["creator"],
        anonymous=bool(row["anonymous"]),
        hidden=bool(row["hidden"]),
        everywhere=bool(row["everywhere"]),
        secret=row["secret"],
        created_at=utc_from_ts(row["created_at"]),
        closes_at=utc_from_ts(row["closes_at"]),
        closed_at=utc_from_ts(row["closed_at"]),
        opens_at=utc_from_ts(row["opens_at"]),
        opened_at=utc_from_ts(row["opened_at"]),
        series_id=row["series_id"],
        series_run=row["series_run"],
    )


def _question(row: Any) -> Question:
    return Question(
        qid=row["qid"],
        text=row["text"],
        kind=row["kind"],
        options=json.loads(row["options"]),
        max_choices=row["max_choices"],
        segment=bool(row["segment"]),
        position=row["position"],
    )
