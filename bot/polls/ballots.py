"""Group commit for button presses: a burst of votes is applied in one transaction.

Each statement through the shared async connection is a round trip to its thread, and a
vote needs several; under a burst that, not SQLite, is the limit. Presses are therefore
queued and applied in batches by a connection of our own on one worker thread: one hop
and one commit per batch, whatever its size. Each press runs in its own savepoint, so a
refused one (closed, too many choices) changes nothing and the rest still commit. The
same UNIQUE keys hold, and the batch runs in arrival order, so a member's repeated
presses apply one after another exactly as they came.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from bot.model import UserRef
from bot.polls.store import Closed, Outcome, Question, Run, TooMany

log = logging.getLogger(__name__)


@dataclass
class _Press:
    run: Run
    question: Question
    voter: str
    name: str | None
    option: int
    at: float | None
    now: float
    done: asyncio.Future[tuple[Outcome, int | None]]


class BallotBox:
    def __init__(self, path: str) -> None:
        self.path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ballots")
        self._conn: sqlite3.Connection | None = None
        self._queue: list[_Press] = []
        self._task: asyncio.Task[None] | None = None

    async def press(
        self, run: Run, question: Question, user: UserRef, option: int, now: datetime
    ) -> tuple[Outcome, int | None]:
        """Add, remove (pressed again) or change the member's choice; resolves when its
        batch has committed, with the outcome and, for a change, the option chosen before."""
        done: asyncio.Future[tuple[Outcome, int | None]] = (
            asyncio.get_running_loop().create_future()
        )
        anonymous = run.anonymous
        self._queue.append(
            _Press(
                run, question, run.voter(user), None if anonymous else (user.name or user.user),
                option, None if anonymous else now.timestamp(), now.timestamp(), done,
            )
        )  # fmt: skip
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="ballots")
        return await done

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                outcomes = await loop.run_in_executor(self._pool, self._apply, batch)
            except Exception as exc:  # the whole batch rolled back: every press fails
                log.exception("ballots: a batch of %d presses failed", len(batch))
                outcomes = [exc] * len(batch)
            for press, outcome in zip(batch, outcomes, strict=True):
                if press.done.done():
                    continue
                if isinstance(outcome, BaseException):
                    press.done.set_exception(outcome)
                else:
                    press.done.set_result(outcome)

    async def close(self) -> None:
        """Let queued presses commit, then close the connection (safe to call twice)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await asyncio.get_running_loop().run_in_executor(self._pool, conn.close)
        self._pool.shutdown(wait=False)  # idempotent; the one worker is idle by now

    # --- On the worker thread --------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            # The same pragmas as the shared connection (bot/store.py): foreign keys are
            # off per connection unless asked for.
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute("PRAGMA synchronous=NORMAL")
            # Leave checkpoints to the shared connection, which writes after every burst
            # (the redraw's edit): a checkpoint syncs the file to disk, and every ~300th
            # batch paid for it, 12-20 ms that every press waiting behind it paid too.
            conn.execute("PRAGMA wal_autocheckpoint=0")
            self._conn = conn
        return self._conn

    def _apply(self, batch: list[_Press]) -> list[object]:
        conn = self._connection()
        outcomes: list[object] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for press in batch:
                conn.execute("SAVEPOINT press")
                try:
                    outcomes.append(_one(conn, press))
                    conn.execute("RELEASE press")
                except (Closed, TooMany, sqlite3.IntegrityError) as exc:
                    conn.execute("ROLLBACK TO press")
                    conn.execute("RELEASE press")
                    outcomes.append(exc)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return outcomes


def _one(conn: sqlite3.Connection, p: _Press) -> tuple[Outcome, int | None]:
    """One press: refused once closed; a multi choice never exceeds its maximum."""
    q = p.question
    slot = 0 if q.kind == "single" else p.option
    state = conn.execute(
        "SELECT r.closed_at, r.closes_at, a.option FROM vote_runs r"
        " LEFT JOIN vote_answers a ON a.run_id = r.id AND a.qid = ? AND a.voter = ?"
        " AND a.slot = ? WHERE r.id = ?",
        (q.qid, p.voter, slot, p.run.id),
    ).fetchone()
    if state is None or state[0] is not None:
        raise Closed("This is closed: answers are no longer taken.")
    if state[1] is not None and state[1] <= p.now:
        raise Closed("This has reached its deadline: answers are no longer taken.")
    before = state[2]
    key = (p.run.id, q.qid, p.voter, slot)
    if before is not None and (q.kind != "single" or before == p.option):
        conn.execute(
            "DELETE FROM vote_answers WHERE run_id = ? AND qid = ? AND voter = ? AND slot = ?", key
        )
        return "removed", None
    if before is not None:
        conn.execute(
            "UPDATE vote_answers SET option = ?, answered_at = ? WHERE run_id = ? AND qid = ?"
            " AND voter = ? AND slot = ?",
            (p.option, p.at, *key),
        )
        return "changed", before
    if q.kind == "multi":
        held = conn.execute(
            "SELECT count(*) FROM vote_answers WHERE run_id = ? AND qid = ? AND voter = ?",
            key[:3],
        ).fetchone()[0]
        if held >= q.max_choices:
            raise TooMany(
                f"You can choose at most {q.max_choices}.",
                hint="Press one of your choices again to remove it first.",
            )
    conn.execute(
        "INSERT INTO vote_answers (run_id, qid, voter, slot, option, text, voter_name,"
        " answered_at) VALUES (?, ?, ?, ?, ?, NULL, ?, ?)",
        (*key, p.option, p.name, p.at),
    )
    return "added", None
