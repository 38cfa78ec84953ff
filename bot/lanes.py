"""How the outbox delivers: lanes, leases and failure classes.

A lane is one destination's posts, or its edits (a poll's live tally should not wait behind a
flood of feed items). Inside a lane rows go strictly in the order they were queued, paced by
the platform's limit; each lane is served on its own, in the background by a task of its
own, so a lane waiting on a retry, a rate limit or a hung call holds back nothing else, and
every platform call is cut off at its own deadline.

A row is claimed by writing a lease (`claimed_by`, `claimed_until`) before the platform
call, and the outcome clears it. What a failure means comes from the transport
(`bot.errors.Failure`): a rate limit waits as long as asked, a passing failure backs off
(capped) and tries again until `give_up_after`, a post whose answer may have been lost is
looked up on the platform (from the time of its first try) before it is sent again, a
refusal fails that one post, and a refused token pauses the whole platform with every post
kept.

A reply (`Post.thread_of`, the outbox key of its parent) goes in its parent's thread, given
to a transport that can thread (`ThreadsReplies`) as the parent's message id. The parent is
queued earlier in the same channel, so it is normally sent first; a reply whose parent is
not known, failed, is not posted yet or is elsewhere goes in the channel itself, and the log
says why. Where it goes is decided at its first try and kept with the row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, TypeVar

from bot.clock import Clock
from bot.errors import DeliveryError, Failure
from bot.model import ChannelRef, Post, UserRef
from bot.postcodec import load_post
from bot.store import Database, lapsed_claims

log = logging.getLogger("bot.outbox")

T = TypeVar("T")
OPEN = "state IN ('pending', 'sending')"
# Seconds between two looks for lanes with work nobody here serves. A process alone on its
# database adds work itself (and is told at once); on a shared one other workers add work
# and die, so their channels are found within seconds, not a minute.
SWEEP_EVERY = 60.0
SHARED_SWEEP_EVERY = 5.0
EDIT_WAIT = 1.0  # seconds an edit waits before looking again whether its post went out


class Transport(Protocol):
    """What an adapter gives the outbox: send, edit, and find a post by its key.

    Optionally also `engagement` (see `ReadsEngagement`): how members took to one of the
    bot's posts. A transport without it is simply not asked (`LaneRunner.engagement`).
    """

    platform: str
    pace: float  # seconds between two posts in one channel

    async def send(self, channel: ChannelRef, post: Post, key: str) -> str: ...

    async def edit(self, channel: ChannelRef, message_id: str, post: Post) -> None: ...

    async def find(self, channel: ChannelRef, key: str, since: float) -> str | None:
        """The message id of the post sent with `key`, looking at messages from `since`
        (wall-clock seconds) on; None if the platform does not have it."""
        ...


class ThreadsReplies(Protocol):
    """The optional transport capability behind `Post.thread_of`: `threads = True`, and a
    `thread` keyword (the parent's message id) on `send`, `edit` and `find`, given only to a
    reply. A transport without it gets every reply in the channel itself."""

    threads: bool

    async def send(self, channel: ChannelRef, post: Post, key: str, *, thread: str = "") -> str:
        """Post in the thread of message `thread` (the channel itself where the platform
        refuses a thread: the reply is what matters)."""
        ...

    async def edit(
        self, channel: ChannelRef, message_id: str, post: Post, *, thread: str = ""
    ) -> None: ...

    async def find(
        self, channel: ChannelRef, key: str, since: float, *, thread: str = ""
    ) -> str | None:
        """As `Transport.find`, looking in the thread of `thread` (and where a reply that
        could not be threaded went)."""
        ...


@dataclass(frozen=True)
class Engagement:
    """How members took to one post: reactions (every emoji together, the bot's own not
    counted) and replies in its thread."""

    reactions: int = 0
    replies: int = 0

    @property
    def total(self) -> int:
        return self.reactions + self.replies


class ReadsEngagement(Protocol):
    """The optional transport capability behind the weekly digest's "most discussed"."""

    async def engagement(self, channel: ChannelRef, message_id: str) -> Engagement | None:
        """Reactions and thread replies of the bot's message `message_id` in `channel`;
        None if the platform no longer has it."""
        ...


class ListsMembers(Protocol):
    """The optional transport capability behind a poll's reminder to those who have not
    voted: who can read `channel` (people only: no bots, not the bot itself)."""

    async def members(self, channel: ChannelRef) -> list[UserRef] | None:
        """The channel's members; None when the platform will not tell (a missing scope or
        intent), so the caller falls back on what it knows itself."""
        ...


class Lane(NamedTuple):
    channel: str  # ChannelRef.key
    kind: str  # 'post' or 'edit'

    @property
    def platform(self) -> str:
        return self.channel.split(":", 1)[0]

    @property
    def workspace(self) -> tuple[str, str]:
        platform, workspace, _ = self.channel.split(":", 2)
        return platform, workspace


@dataclass
class Row:
    id: int
    key: str
    kind: str
    channel: ChannelRef
    target: str | None
    post: Post
    version: int
    attempts: int
    not_before: float
    in_doubt: bool
    attempted_at: float | None
    retry_at: float | None
    state: str
    claimed_by: str | None
    claimed_until: float | None
    thread: str | None  # where a reply went: its parent's message id, '' the channel


@dataclass
class Step:
    """What serving a lane once did, and when it may go on (None: nothing is due)."""

    sent: int = 0
    progressed: bool = False
    wait: float | None = None


class LaneRunner:
    def __init__(self, db: Database, clock: Clock, settings: Any) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.worker = db.worker
        self.transports: dict[str, Transport] = {}
        self.paused: dict[str, str] = {}  # platform -> why its lanes wait
        # (platform, workspace) pairs the bot is no longer in: their lanes wait, rows kept.
        self.held: set[tuple[str, str]] = set()
        self._last_sent: dict[Lane, float] = {}
        self._workers: dict[Lane, asyncio.Task[None]] = {}
        self._touched: set[Lane] = set()
        self._wake = asyncio.Event()
        self._sweep_at = 0.0
        self._sweep_every = SHARED_SWEEP_EVERY if db.shared else SWEEP_EVERY
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._warned: set[str] = set()
        # Told of each post given up on: (channel, key, why); see bot/failure_notices.py.
        self.on_give_up: Callable[[ChannelRef, str, str], Awaitable[None]] | None = None

    # --- Connections ---------------------------------------------------------------------

    def attach(self, transport: Transport) -> None:
        self.transports[transport.platform] = transport
        self.paused.pop(transport.platform, None)
        self._warned.discard(transport.platform)
        self._sweep_now()

    def detach(self, transport: Transport) -> None:
        if self.transports.get(transport.platform) is transport:
            del self.transports[transport.platform]

    def hold(self, platform: str, workspace: str) -> None:
        """Serve no lane of that workspace until `release` (the bot was removed from it)."""
        self.held.add((platform, workspace))

    def release(self, platform: str, workspace: str) -> None:
        """Serve that workspace's lanes again (the bot is back), from where they stopped."""
        self.held.discard((platform, workspace))
        self._sweep_now()

    def touch(self, lane: Lane) -> None:
        """New work in `lane`: the background runner looks at it at once."""
        self._touched.add(lane)
        self._wake.set()

    def _sweep_now(self) -> None:
        self._sweep_at = 0.0
        self._wake.set()

    def _servable(self, platform: str) -> bool:
        if platform in self.paused:
            return False
        if platform not in self.transports:
            if platform not in self._warned:
                self._warned.add(platform)
                log.warning("outbox: no %s connection; its posts wait", platform)
            return False
        return True

    # --- Reading back ------------------------------------------------------------------

    async def engagement(self, channel: ChannelRef, message_id: str) -> Engagement | None:
        """Reactions and replies of one of the bot's posts (`ReadsEngagement`)."""
        return await self._read(channel, "engagement", message_id)

    async def members(self, channel: ChannelRef) -> list[UserRef] | None:
        """Who is in a channel (`ListsMembers`)."""
        return await self._read(channel, "members")

    async def _read(self, channel: ChannelRef, capability: str, *args: Any) -> Any:
        """Read from a channel's platform through its transport's optional `capability`,
        under the same cap and deadline as a send; None when the platform is not connected,
        cannot tell, or the read failed (logged: a read is worth no retry)."""
        platform = channel.platform
        read = getattr(self.transports.get(platform), capability, None)
        if read is None or platform in self.paused:
            return None
        try:
            return await self._call(platform, read, channel, *args)
        except DeliveryError as exc:
            log.info("outbox: could not read %s of %s: %s", capability, channel.key, exc)
            return None
        except Exception:  # a bug in a read must not cost the caller its whole answer
            log.exception("outbox: reading %s of %s failed", capability, channel.key)
            return None

    # --- Serving ---------------------------------------------------------------------------

    async def recover(self) -> int:
        """Rows a crash left claimed go back to their lanes: all of them on a database this
        process alone uses; on a shared one, those of workers that died or whose lease ran
        out."""
        where, params = await lapsed_claims(self.db, "outbox", "sending", self._now())
        recovered = await self.db.execute(
            "UPDATE outbox SET state = 'pending', claimed_by = NULL, claimed_until = NULL,"
            " in_doubt = CASE WHEN kind = 'post' THEN 1 ELSE in_doubt END WHERE " + where,
            params,
        )
        if recovered:
            log.warning("outbox: %d post(s) were in flight at a crash; looking them up", recovered)
        return recovered

    async def round(self) -> tuple[int, bool]:
        """Serve every lane with due work once; return (delivered, whether any moved)."""
        lanes, _ = await self._due_lanes()
        steps = await asyncio.gather(*(self._step(lane) for lane in lanes))
        return sum(s.sent for s in steps), any(s.progressed for s in steps)

    async def run(self) -> None:
        """Start a task for each lane with work and none serving it, until cancelled."""
        try:
            while True:
                self._wake.clear()
                try:
                    wait = await self._dispatch()
                except Exception:  # keep the runner alive whatever one look did
                    log.exception("outbox: looking for work failed")
                    wait = 5.0
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
        finally:
            workers = list(self._workers.values())
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _dispatch(self) -> float:
        now = self._now()
        if now >= self._sweep_at:
            lanes, upcoming = await self._due_lanes()
            self._touched.update(lanes)
            self._sweep_at = min(upcoming or float("inf"), now + self._sweep_every)
        for lane in list(self._touched):
            if lane in self._workers:
                continue  # its task looks again before it ends
            self._touched.discard(lane)
            if self._servable(lane.platform):
                self._workers[lane] = asyncio.create_task(self._serve(lane), name=f"lane {lane}")
        return max(0.0, self._sweep_at - now)

    async def _serve(self, lane: Lane) -> None:
        try:
            while True:
                self._touched.discard(lane)
                step = await self._step(lane)
                if step.wait is None:
                    if lane in self._touched:
                        continue
                    return
                if step.wait > 0:
                    await asyncio.sleep(step.wait)
        except Exception:
            log.exception("outbox: serving %s failed; looking again soon", lane)
            self._sweep_at = min(self._sweep_at, self._now() + 5.0)
        finally:
            self._workers.pop(lane, None)

    async def _due_lanes(self) -> tuple[list[Lane], float | None]:
        """Lanes with rows due now on a platform that can take them, and when the next row
        not yet due becomes due."""
        now = self._now()
        rows = await self.db.fetchall(
            f"SELECT DISTINCT channel, kind FROM outbox WHERE {OPEN} AND not_before <= ?",
            (now,),
        )
        upcoming = await self.db.fetchval(
            f"SELECT min(not_before) FROM outbox WHERE {OPEN} AND not_before > ?", (now,)
        )
        lanes = [Lane(r["channel"], r["kind"]) for r in rows]
        lanes = [lane for lane in lanes if lane.workspace not in self.held]
        return [lane for lane in lanes if self._servable(lane.platform)], upcoming

    async def next_due(self) -> float | None:
        now = self._now()
        rows = await self.db.fetchall(
            f"SELECT channel, kind, min(not_before) AS first FROM outbox WHERE {OPEN}"
            " GROUP BY channel, kind"
        )
        times = []
        for r in rows:
            lane = Lane(r["channel"], r["kind"])
            if lane.platform in self.paused or lane.platform not in self.transports:
                continue
            if lane.workspace in self.held:
                continue
            head = await self._head(lane, now)
            times.append(r["first"] if head is None else self._ready_at(lane, head))
        return max(0.0, min(times) - now) if times else None

    # --- One step of one lane ----------------------------------------------------------------

    async def _step(self, lane: Lane) -> Step:
        if not self._servable(lane.platform) or lane.workspace in self.held:
            return Step()
        transport = self.transports[lane.platform]
        now = self._now()
        head = await self._head(lane, now)
        if head is None:
            return Step()
        ready = self._ready_at(lane, head)
        gone = None  # the worker that died claiming the head, whose claim is free at once
        if head.state == "sending" and (head.claimed_until or 0) >= now:
            if await self.db.dead([head.claimed_by]):
                gone = head.claimed_by
            else:
                # Another worker's call is under way: wait for its claim to end, looking
                # again every few seconds whether that worker still runs.
                ready = max(ready, min(head.claimed_until or now, now + SHARED_SWEEP_EVERY))
        if ready > now:
            return Step(wait=ready - now)
        message_id, thread = "", ""
        if lane.kind == "edit":
            target = await self.db.fetchone(
                "SELECT state, message_id, thread FROM outbox WHERE key = ?",
                (head.target or "",),
            )
            if target is None or target["state"] == "failed":
                await self._give_up(head, "the message to edit was never posted")
                return Step(progressed=True)
            if not target["message_id"]:
                return Step(wait=EDIT_WAIT)  # its post is still on its way
            message_id, thread = target["message_id"], target["thread"] or ""
        row = await self._claim(head, now, gone)
        if row is None:
            return Step(progressed=True)  # changed meanwhile (withdrawn, edited): look again
        sent = await self._attempt(transport, row, message_id, thread)
        return Step(sent=sent, progressed=True, wait=0.0)

    def _ready_at(self, lane: Lane, head: Row) -> float:
        pace = self.transports[lane.platform].pace if lane.platform in self.transports else 0.0
        paced = self._last_sent.get(lane, float("-inf")) + pace
        return max(head.retry_at or float("-inf"), paced, head.not_before)

    async def _head(self, lane: Lane, now: float) -> Row | None:
        raw = await self.db.fetchone(
            f"SELECT * FROM outbox WHERE channel = ? AND kind = ? AND {OPEN}"
            " AND not_before <= ? ORDER BY id LIMIT 1",
            (lane.channel, lane.kind, now),
        )
        return None if raw is None else _row(raw)

    async def _claim(self, head: Row, now: float, gone: str | None = None) -> Row | None:
        """Claim the head, pending or claimed by a worker that is gone (its lease ran out,
        or `gone` died); a post taken over that way is in doubt: it is looked up first."""
        lease = now + 3 * self.settings.call_timeout
        raw = await self.db.fetchone(
            "UPDATE outbox SET state = 'sending', claimed_by = ?, claimed_until = ?,"
            " attempted_at = coalesce(attempted_at, ?),"
            " in_doubt = CASE WHEN state = 'sending' AND kind = 'post' THEN 1 ELSE in_doubt END"
            " WHERE id = ? AND version = ?"
            " AND (state = 'pending' OR claimed_until < ? OR claimed_by = ?) RETURNING *",
            (self.worker, lease, time.time(), head.id, head.version, now, gone),
        )
        return None if raw is None else _row(raw)

    async def _attempt(self, transport: Transport, row: Row, message_id: str, thread: str) -> int:
        """One try of one claimed row; return 1 if it reached the platform. `thread`: for
        an edit, where its post went (the parent's message id; '' the channel)."""
        platform = row.channel.platform
        lane = Lane(row.channel.key, row.kind)
        try:
            if row.kind == "edit":
                self._last_sent[lane] = self._now()
                where = {"thread": thread} if thread else {}
                await self._call(
                    platform, transport.edit, row.channel, message_id, row.post, **where
                )
            else:
                thread = await self._thread(transport, row)
                where = {"thread": thread} if thread else {}  # other transports never see it
                found = None
                if row.in_doubt:
                    since = row.attempted_at or row.not_before
                    found = await self._call(
                        platform, transport.find, row.channel, row.key, since, **where
                    )
                if found:
                    log.info("outbox: %s was already delivered, as %s", row.key, found)
                    await self._delivered(row, found)
                    return 0
                self._last_sent[lane] = self._now()  # the pace counts requests made
                message_id = await self._call(
                    platform, transport.send, row.channel, row.post, row.key, **where
                )
        except DeliveryError as exc:
            await self._failed(row, exc)
            return 0
        except Exception as exc:  # a bug, not the platform: retried, and in doubt to be safe
            log.exception("outbox: unexpected error delivering %s", row.key)
            await self._failed(row, DeliveryError(repr(exc), Failure.IN_DOUBT))
            return 0
        await self._delivered(row, message_id)
        return 1

    async def _call(
        self, platform: str, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any
    ) -> T:
        """A platform call under the platform's concurrency cap and its own deadline."""
        slots = self._slots.setdefault(platform, asyncio.Semaphore(self.settings.concurrency))
        async with slots:
            try:
                return await asyncio.wait_for(fn(*args, **kwargs), self.settings.call_timeout)
            except TimeoutError:
                raise DeliveryError(
                    f"{platform}: no answer within {self.settings.call_timeout:g} s",
                    Failure.IN_DOUBT,
                ) from None

    async def _thread(self, transport: Transport, row: Row) -> str:
        """The parent's message id a reply goes under ('' = the channel itself). Decided at
        its first try and written before the send, so a retry, the lookup of a post in doubt
        and an edit all look where it went, even after a crash."""
        if not row.post.thread_of:
            return ""
        if row.thread is not None:
            return row.thread
        if getattr(transport, "threads", False):
            thread, why = await self._parent_message(row)
            if why:
                log.warning("outbox: %s goes in the channel, not in %s's thread: %s",
                            row.key, row.post.thread_of, why)  # fmt: skip
        else:
            thread = ""
            log.info("outbox: %s goes in the channel: %s posts have no threads",
                     row.key, row.channel.platform)  # fmt: skip
        await self.db.execute("UPDATE outbox SET thread = ? WHERE id = ?", (thread, row.id))
        return thread

    async def _parent_message(self, row: Row) -> tuple[str, str]:
        """The message id of a reply's parent, or '' and why there is none to reply to."""
        parent = await self.db.fetchone(
            "SELECT channel, state, message_id FROM outbox WHERE key = ? AND kind = 'post'",
            (row.post.thread_of,),
        )
        if parent is None:
            return "", "no post was queued with that key"
        if parent["channel"] != row.channel.key:
            return "", f"that post went to {parent['channel']}"
        if parent["message_id"]:
            return str(parent["message_id"]), ""
        if parent["state"] == "failed":
            return "", "that post could not be delivered"
        return "", "that post is not delivered yet"

    # --- Outcomes ------------------------------------------------------------------------

    async def _delivered(self, row: Row, message_id: str) -> None:
        # Only if nobody queued newer content meanwhile; otherwise it goes out again.
        done = await self.db.execute(
            "UPDATE outbox SET state = 'sent', message_id = ?, sent_at = ?, last_error = NULL,"
            " in_doubt = 0, retry_at = NULL, claimed_by = NULL, claimed_until = NULL"
            " WHERE id = ? AND version = ?",
            (message_id, self._now(), row.id, row.version),
        )
        if not done:
            await self.db.execute(
                "UPDATE outbox SET state = 'pending', message_id = ?, in_doubt = 0,"
                " retry_at = NULL, claimed_by = NULL, claimed_until = NULL WHERE id = ?",
                (message_id, row.id),
            )
            self.touch(Lane(row.channel.key, row.kind))
        if row.kind == "post":
            self.touch(Lane(row.channel.key, "edit"))  # an edit may be waiting for it

    async def _failed(self, row: Row, exc: DeliveryError) -> None:
        failure, error = exc.failure, str(exc)[:500]
        if failure is Failure.CREDENTIALS:
            self._pause(row.channel.platform, str(exc))
            await self._release(row, row.attempts, None, error, row.in_doubt)
            return
        if failure is Failure.PERMANENT:
            await self._give_up(row, error)
            return
        age = self._now() - row.not_before
        if age > self.settings.give_up_after:
            await self._give_up(row, f"still failing after {age / 3600:.0f} h: {error}")
            return
        attempts = row.attempts if failure is Failure.RATE_LIMITED else row.attempts + 1
        delay = self._backoff(max(attempts, 1))
        if failure is Failure.RATE_LIMITED and exc.retry_after is not None:
            delay = exc.retry_after
        in_doubt = row.in_doubt or (failure is Failure.IN_DOUBT and row.kind == "post")
        log.warning("outbox: %s %s (%s); next try in %.1f s", row.key, failure.value, error, delay)
        await self._release(row, attempts, self._now() + delay, error, in_doubt)

    async def _release(
        self, row: Row, attempts: int, retry_at: float | None, error: str, in_doubt: bool
    ) -> None:
        """Back in its lane, at its place, waiting until `retry_at`."""
        await self.db.execute(
            "UPDATE outbox SET state = 'pending', claimed_by = NULL, claimed_until = NULL,"
            " attempts = ?, retry_at = ?, last_error = ?, in_doubt = ? WHERE id = ?",
            (attempts, retry_at, error, int(in_doubt), row.id),
        )

    async def _give_up(self, row: Row, error: str) -> None:
        log.error("outbox: could not deliver %s to %s: %s", row.key, row.channel.key, error)
        await self.db.execute(
            "UPDATE outbox SET state = 'failed', last_error = ?, claimed_by = NULL,"
            " claimed_until = NULL WHERE id = ?",
            (error[:500], row.id),
        )
        if self.on_give_up is not None:
            try:
                await self.on_give_up(row.channel, row.key, error)
            except Exception:  # the notice is a courtesy: the lane goes on regardless
                log.exception("outbox: telling of %s's failure failed", row.key)

    def _pause(self, platform: str, why: str) -> None:
        if platform not in self.paused:
            self.paused[platform] = why
            log.error("outbox: %s posts are paused, all kept: %s", platform, why)

    def _backoff(self, attempts: int) -> float:
        base = min(self.settings.backoff_base * 2 ** (attempts - 1), self.settings.backoff_max)
        return base * random.uniform(0.8, 1.2)

    def _now(self) -> float:
        return self.clock.now().timestamp()


def _row(raw: Any) -> Row:
    return Row(
        id=raw["id"],
        key=raw["key"],
        kind=raw["kind"],
        channel=ChannelRef.parse(raw["channel"]),
        target=raw["target"],
        post=load_post(raw["payload"]),
        version=raw["version"],
        attempts=raw["attempts"],
        not_before=raw["not_before"],
        in_doubt=bool(raw["in_doubt"]),
        attempted_at=raw["attempted_at"],
        retry_at=raw["retry_at"],
        state=raw["state"],
        claimed_by=raw["claimed_by"],
        claimed_until=raw["claimed_until"],
        thread=raw["thread"],
    )
