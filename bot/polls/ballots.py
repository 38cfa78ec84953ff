"""Button presses on polls, applied through the group commit (bot/groupcommit.py): a burst
of votes costs a few commits. A refused press (closed, too many choices) changes nothing
and the rest of its batch still commits; the same UNIQUE keys hold, and presses apply in
arrival order, so a member's repeated presses toggle exactly as they came.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from bot import intake
from bot.groupcommit import GroupCommit
from bot.model import UserRef
from bot.polls.store import (
    COUNT_TURNOUT,
    FIRST_ANSWER,
    Closed,
    Outcome,
    Question,
    Run,
    TooMany,
    turnout_day,
)


@dataclass
class _Press:
    run: Run
    question: Question
    voter: str
    name: str | None
    option: int
    at: float | None
    now: float
    request_id: str


class BallotBox:
    def __init__(self, writer: GroupCommit) -> None:
        self.writer = writer

    async def press(
        self,
        run: Run,
        question: Question,
        user: UserRef,
        option: int,
        now: datetime,
        request_id: str = "",
    ) -> tuple[Outcome, int | None]:
        """Add, remove (pressed again) or change the member's choice; resolves when its
        batch has committed, with the outcome and, for a change, the option chosen before.

        A press carrying the platform's `request_id` is applied once: handled again after a
        crash (its journal entry replayed), it changes nothing and says "counted"."""
        anonymous = run.anonymous
        press = _Press(
            run, question, run.voter(user), None if anonymous else (user.name or user.user),
            option, None if anonymous else now.timestamp(), now.timestamp(), request_id,
        )  # fmt: skip
        return await self.writer.run(partial(_one, press=press))


async def _one(tx: Any, press: _Press) -> tuple[Outcome, int | None]:
    """One press: refused once closed; a multi choice never exceeds its maximum."""
    p, q = press, press.question
    slot = 0 if q.kind == "single" else p.option
    state = await tx.fetchone(
        "SELECT r.closed_at, r.closes_at, a.option FROM vote_runs r"
        " LEFT JOIN vote_answers a ON a.run_id = r.id AND a.qid = ? AND a.voter = ?"
        " AND a.slot = ? WHERE r.id = ?",
        (q.qid, p.voter, slot, p.run.id),
    )
    if state is None or state[0] is not None:
        raise Closed("This is closed: answers are no longer taken.")
    if state[1] is not None and state[1] <= p.now:
        raise Closed("This has reached its deadline: answers are no longer taken.")
    if p.request_id and not await intake.consume(tx, p.request_id, p.now):
        return "counted", None
    before = state[2]
    key = (p.run.id, q.qid, p.voter, slot)
    if before is not None and (q.kind != "single" or before == p.option):
        await tx.execute(
            "DELETE FROM vote_answers WHERE run_id = ? AND qid = ? AND voter = ? AND slot = ?", key
        )
        return "removed", None
    if before is not None:
        await tx.execute(
            "UPDATE vote_answers SET option = ?, answered_at = ? WHERE run_id = ? AND qid = ?"
            " AND voter = ? AND slot = ?",
            (p.option, p.at, *key),
        )
        return "changed", before
    if q.kind == "multi":
        # Two presses by one member on two workers would each count the other's choice
        # as not yet made: counting and adding are one step per member and question.
        await tx.serialise(f"choices:{p.run.id}:{q.qid}:{p.voter}")
        held = await tx.fetchval(
            "SELECT count(*) FROM vote_answers WHERE run_id = ? AND qid = ? AND voter = ?",
            key[:3],
        )
        if held >= q.max_choices:
            raise TooMany(
                f"You can choose at most {q.max_choices}.",
                hint="Press one of your choices again to remove it first.",
            )
    if p.run.anonymous and (await tx.execute(FIRST_ANSWER, (p.run.id, p.voter))).rowcount == 1:
        await tx.execute(COUNT_TURNOUT, (p.run.id, turnout_day(p.now)))
    await tx.execute(
        "INSERT INTO vote_answers (run_id, qid, voter, slot, option, text, voter_name,"
        " answered_at) VALUES (?, ?, ?, ?, ?, NULL, ?, ?)",
        (*key, p.option, p.name, p.at),
    )
    return "added", None
