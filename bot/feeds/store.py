"""Every query on the feeds' tables (their schema is in bot/feeds/schema.py).

A *source* is one feed URL, fetched once however many channels subscribe; a
*subscription* ties a source to a channel with its filters. `feed_items` remembers which
items of a source were already seen (until the feed has stopped listing one for long),
`feed_posts` when each item of a subscription was queued, for the per-channel cap (the
outbox key is what makes it go out once). `feed_notices` are what moderators are told when a
feed is switched off, gathered per destination (the moderators' channel, a moderator's
direct messages, or the subscribed channel) into `feed_notice_groups`, one post each, which
count against that destination's cap.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bot.model import ChannelRef
from bot.store import Database

# An item's memory is dropped once the feed has not listed it for this long. Feeds list
# their latest items only, so an item gone this long does not come back; one that does
# is posted again, the only price of not remembering every item forever.
FORGET_AFTER = 90 * 24 * 3600.0
PRUNE_BATCH = 500  # items forgotten per fetch at most: pruning never makes a fetch slow
# A good answer: the failure count starts again, the validators and hash are kept unless
# the answer brings new ones (a 304 may omit them), the title only when there is one.
FETCHED_OK = (
    "UPDATE feed_sources SET failures = 0, last_error = NULL, last_fetch_at = ?,"
    " last_ok_at = ?, next_check_at = ?, etag = coalesce(?, etag),"
    " last_modified = coalesce(?, last_modified),"
    " content_hash = coalesce(?, content_hash),"
    " title = CASE WHEN ? <> '' THEN ? ELSE title END,"
    " last_new_at = CASE WHEN ? = 1 THEN ? ELSE last_new_at END WHERE id = ?"
)


@dataclass
class Source:
    id: int
    url: str
    title: str
    origin: str
    allow_private: bool
    state: str
    etag: str | None
    last_modified: str | None
    content_hash: str | None
    failures: int
    last_error: str | None
    disabled_reason: str | None
    disabled_at: float | None
    last_fetch_at: float | None
    last_ok_at: float | None
    last_new_at: float | None
    next_check_at: float
    ttl: float | None = None  # seconds, the feed's own <ttl> at its last parse
    # Seconds between checks its running subscriptions ask for (the shortest), when the
    # query that read it said (`due_sources`); None: not read (see `Poller.every`).
    every: float | None = None

    @classmethod
    def of(cls, row: Any) -> Source:
        data = dict(row)
        data["allow_private"] = bool(data["allow_private"])
        return cls(**data)


@dataclass(frozen=True)
class FetchedOk:
    """One good answer to record (`FeedStore.fetched_ok_many`): the arguments of
    `FeedStore.fetched_ok`."""

    source_id: int
    now: float
    next_check: float
    etag: str | None = None
    last_modified: str | None = None
    content_hash: str | None = None
    title: str | None = None
    new_items: bool = False


@dataclass
class Notice:
    """What moderators are to be told of one subscription (its feed was switched off);
    `channel` is the subscription's channel, not always where it is told (see NoticeGroup)."""

    id: int
    channel: ChannelRef
    subscription_id: int
    source_id: int
    kind: str  # "failing" (repeated failures) or "gone" (the site says so), or another
    title: str
    url: str
    reason: str
    created_at: float
    group_id: int | None

    @classmethod
    def of(cls, row: Any) -> Notice:
        data = dict(row)
        data["channel"] = ChannelRef.parse(data["channel"])
        return cls(**data)


@dataclass
class NoticeGroup:
    """Notices told in one post; its id keys the post in the outbox, and `channel` is where
    the post goes (the moderators' channel, a moderator's direct messages or, with neither
    known, the subscribed channel itself)."""

    id: int
    channel: ChannelRef
    created_at: float
    not_before: float
    queued: bool
    withdrawn: bool

    @classmethod
    def of(cls, row: Any) -> NoticeGroup:
        data = dict(row)
        data["channel"] = ChannelRef.parse(data["channel"])
        data["queued"] = bool(data["queued"])
        data["withdrawn"] = bool(data["withdrawn"])
        return cls(**data)


@dataclass
class Subscription:
    id: int
    source_id: int
    channel: ChannelRef
    include: str
    exclude: str
    template: str
    backlog: int
    paused: bool
    primed: bool
    quiet: bool  # when priming, post nothing (a resumed subscription starts from now)
    created_by: str
    created_at: float
    filter_trouble: str | None = None  # what went wrong the last time the filter timed out
    filter_trouble_at: float | None = None
    check_every: float | None = None  # seconds between checks it asks for; None: the default
    ping_role: str = ""  # the role or user group its posts ping (an id), "" for none
    ping_name: str = ""  # that role's name, to show it

    @classmethod
    def of(cls, row: Any) -> Subscription:
        data = dict(row)
        data["channel"] = ChannelRef.parse(data["channel"])
        data["paused"] = bool(data["paused"])
        data["primed"] = bool(data["primed"])
        data["quiet"] = bool(data["quiet"])
        return cls(**data)


class FeedStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- Sources -------------------------------------------------------------------------

    async def source(self, source_id: int) -> Source | None:
        row = await self.db.fetchone("SELECT * FROM feed_sources WHERE id = ?", (source_id,))
        return Source.of(row) if row else None

    async def source_by_url(self, url: str) -> Source | None:
        row = await self.db.fetchone("SELECT * FROM feed_sources WHERE url = ?", (url,))
        return Source.of(row) if row else None

    async def source_by_origin(self, origin: str) -> Source | None:
        row = await self.db.fetchone("SELECT * FROM feed_sources WHERE origin = ?", (origin,))
        return Source.of(row) if row else None

    async def ensure_source(
        self, url: str, now: float, title: str = "", allow_private: bool = False, origin: str = ""
    ) -> Source:
        await self.db.execute(
            "INSERT INTO feed_sources (url, title, allow_private, origin, next_check_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(url) DO NOTHING",
            (url, title, int(allow_private), origin, now),
        )
        if allow_private:
            await self.db.execute("UPDATE feed_sources SET allow_private = 1 WHERE url = ?", (url,))
        found = await self.source_by_url(url)
        assert found is not None
        return found

    async def all_sources(self) -> list[Source]:
        rows = await self.db.fetchall("SELECT * FROM feed_sources ORDER BY id")
        return [Source.of(r) for r in rows]

    async def due_sources(
        self, now: float, every: float, claim_for: float = 0.0
    ) -> list[tuple[Source, bool]]:
        """Active sources due by `now` with at least one running subscription, each with
        the shortest interval they ask for (`Source.every`; `every` for those that ask none).

        The flag says whether a subscription still waits for its first items (its backlog):
        such a source is fetched and parsed even if unchanged.
        """
        rows = await self.db.fetchall(
            "SELECT s.*, min(sub.primed) AS all_primed,"
            " min(coalesce(sub.check_every, ?)) AS every FROM feed_sources s "
            "JOIN feed_subscriptions sub ON sub.source_id = s.id AND sub.paused = 0 "
            "WHERE s.state = 'active' AND s.next_check_at <= ? "
            "GROUP BY s.id ORDER BY s.next_check_at",
            (every, now),
        )
        if self.db.shared:  # `claim_for`: longer than a check takes
            rows = await self._claim(rows, now + claim_for)
        out = []
        for row in rows:
            data = dict(row)
            all_primed = data.pop("all_primed")
            out.append((Source.of(data), not all_primed))
        return out

    async def _claim(self, rows: list[Any], until: float) -> list[Any]:
        """On a shared database, the due sources this worker takes: each one's next check
        moves to `until`, guarded by the time it was read, so of several workers one takes
        it; the check's outcome then sets the real next time. Should the worker die, the
        source is due again at `until`."""
        taken = []
        async with self.db.transaction() as tx:
            for row in rows:
                moved = await tx.execute(
                    "UPDATE feed_sources SET next_check_at = ? WHERE id = ? AND next_check_at = ?",
                    (until, row["id"], row["next_check_at"]),
                )
                if moved.rowcount == 1:
                    taken.append(row)
        return taken

    async def renew_claims(self, source_ids: list[int], until: float, new_until: float) -> None:
        """On a shared database, move this worker's claims on these sources (their next
        check at `until`) on to `new_until`; a source recorded meanwhile is left alone."""
        if self.db.shared and source_ids:
            async with self.db.transaction() as tx:
                await tx.executemany(
                    "UPDATE feed_sources SET next_check_at = ? WHERE id = ? AND next_check_at = ?",
                    [(new_until, source_id, until) for source_id in source_ids],
                )

    async def give_back(self, sources: list[Source], until: float) -> None:
        """On a shared database, hand back claims of checks that did not finish (a round
        cut short): each source is due again when it was, unless it has moved on since."""
        if self.db.shared and sources:
            async with self.db.transaction() as tx:
                for source in sources:
                    await tx.execute(
                        "UPDATE feed_sources SET next_check_at = ? WHERE id = ?"
                        " AND next_check_at = ?",
                        (source.next_check_at, source.id, until),
                    )

    async def move_source(self, source_id: int, new_url: str) -> bool:
        """Follow a permanent redirect; False if another source already has that URL."""
        taken = await self.source_by_url(new_url)
        if taken is not None:
            return False
        await self.db.execute("UPDATE feed_sources SET url = ? WHERE id = ?", (new_url, source_id))
        return True

    async def set_url(self, source_id: int, url: str) -> None:
        await self.db.execute("UPDATE feed_sources SET url = ? WHERE id = ?", (url, source_id))

    async def fetched_ok(
        self,
        source_id: int,
        now: float,
        next_check: float,
        *,
        etag: str | None,
        last_modified: str | None,
        content_hash: str | None = None,
        title: str | None = None,
        new_items: bool = False,
    ) -> None:
        await self.db.execute(
            FETCHED_OK,
            (
                now, now, next_check, etag, last_modified, content_hash,
                title or "", title or "", int(new_items), now, source_id,
            ),
        )  # fmt: skip

    async def fetched_ok_many(self, answers: Iterable[FetchedOk]) -> int:
        """`fetched_ok` for many sources in one transaction: a poll round's 304 and
        unchanged answers, each written exactly as `fetched_ok` would write it alone (the
        same statement and values); return how many were written."""
        rows = [
            (
                a.now, a.now, a.next_check, a.etag, a.last_modified, a.content_hash,
                a.title or "", a.title or "", int(a.new_items), a.now, a.source_id,
            )
            for a in answers
        ]  # fmt: skip
        if not rows:
            return 0
        async with self.db.transaction() as tx:
            await tx.executemany(FETCHED_OK, rows)
        return len(rows)

    async def fetch_failed(self, source_id: int, now: float, error: str, next_check: float) -> int:
        """Count one more consecutive failure; return the new count."""
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE feed_sources SET failures = failures + 1, last_error = ?,"
                " last_fetch_at = ?, next_check_at = ? WHERE id = ?",
                (error[:300], now, next_check, source_id),
            )
            return await tx.fetchval("SELECT failures FROM feed_sources WHERE id = ?", (source_id,))

    async def disable(self, source_id: int, now: float, reason: str, kind: str = "failing") -> bool:
        """Disable an active source and, in the same transaction, note a notice for each of
        its subscriptions; False if it was already disabled (no second notice)."""
        async with self.db.transaction() as tx:
            cursor = await tx.execute(
                "UPDATE feed_sources SET state = 'disabled', disabled_reason = ?,"
                " disabled_at = ?, last_error = ? WHERE id = ? AND state = 'active'",
                (reason[:300], now, reason[:300], source_id),
            )
            if not cursor.rowcount:
                return False
            await tx.execute(
                "INSERT INTO feed_notices (channel, subscription_id, source_id, kind, title,"
                " url, reason, created_at) SELECT sub.channel, sub.id, s.id, ?, s.title, s.url,"
                " ?, ? FROM feed_subscriptions sub JOIN feed_sources s ON s.id = sub.source_id"
                " WHERE s.id = ? ORDER BY sub.id",
                (kind, reason[:300], now, source_id),
            )
            return True

    async def enable(self, source_id: int, now: float) -> bool:
        return bool(
            await self.db.execute(
                "UPDATE feed_sources SET state = 'active', failures = 0, disabled_reason = NULL,"
                " next_check_at = ? WHERE id = ? AND state = 'disabled'",
                (now, source_id),
            )
        )

    async def shortest_every(self, source_id: int, every: float) -> float:
        """The shortest interval the running subscriptions of a source ask for (`every`
        for those that ask none, and when none runs)."""
        found = await self.db.fetchval(
            "SELECT min(coalesce(check_every, ?)) FROM feed_subscriptions"
            " WHERE source_id = ? AND paused = 0",
            (every, source_id),
        )
        return every if found is None else float(found)

    async def set_ttl(self, source_id: int, ttl: float | None) -> None:
        await self.db.execute("UPDATE feed_sources SET ttl = ? WHERE id = ?", (ttl, source_id))

    async def check_soon(self, source_id: int, now: float) -> None:
        await self.db.execute(
            "UPDATE feed_sources SET next_check_at = min(next_check_at, ?) WHERE id = ?",
            (now, source_id),
        )

    async def drop_orphans(self) -> None:
        """Forget sources nobody subscribes to any more (except imported ones kept on purpose)."""
        await self.db.execute(
            "DELETE FROM feed_sources WHERE origin = '' AND id NOT IN"
            " (SELECT source_id FROM feed_subscriptions)"
        )

    # --- Subscriptions -------------------------------------------------------------------

    async def subscribe(
        self,
        source_id: int,
        channel: ChannelRef,
        *,
        include: str,
        exclude: str,
        template: str,
        backlog: int,
        created_by: str,
        now: float,
        check_every: float | None = None,
        ping_role: str = "",
        ping_name: str = "",
    ) -> int | None:
        """A new subscription's id, or None if this channel already follows the source."""
        return await self.db.insert(
            "INSERT INTO feed_subscriptions (source_id, channel, include, exclude, template,"
            " backlog, created_by, created_at, check_every, ping_role, ping_name)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(source_id, channel) DO NOTHING",
            (
                source_id, channel.key, include, exclude, template, backlog, created_by, now,
                check_every, ping_role, ping_name if ping_role else "",
            ),
        )  # fmt: skip

    async def subscription(self, sub_id: int) -> Subscription | None:
        row = await self.db.fetchone("SELECT * FROM feed_subscriptions WHERE id = ?", (sub_id,))
        return Subscription.of(row) if row else None

    async def subscription_at(self, source_id: int, channel: ChannelRef) -> Subscription | None:
        row = await self.db.fetchone(
            "SELECT * FROM feed_subscriptions WHERE source_id = ? AND channel = ?",
            (source_id, channel.key),
        )
        return Subscription.of(row) if row else None

    async def subscriptions_of(self, source_id: int) -> list[Subscription]:
        rows = await self.db.fetchall(
            "SELECT * FROM feed_subscriptions WHERE source_id = ? ORDER BY id", (source_id,)
        )
        return [Subscription.of(r) for r in rows]

    async def subscriptions_in(self, platform: str, workspace: str) -> list[Subscription]:
        """Every subscription in one workspace (compared as text: ids may hold `_` or `%`)."""
        prefix = f"{platform}:{workspace}:"
        rows = await self.db.fetchall(
            "SELECT * FROM feed_subscriptions WHERE substr(channel, 1, ?) = ? ORDER BY id",
            (len(prefix), prefix),
        )
        subs = [Subscription.of(r) for r in rows]
        return [
            s for s in subs if (s.channel.platform, s.channel.workspace) == (platform, workspace)
        ]

    async def set_paused(self, sub_id: int, paused: bool) -> bool:
        """Pause, or resume from now: a resumed subscription skips what came meanwhile."""
        return bool(
            await self.db.execute(
                "UPDATE feed_subscriptions SET paused = ?,"
                " primed = CASE WHEN ? = 1 THEN primed ELSE 0 END,"
                " quiet = CASE WHEN ? = 1 THEN quiet ELSE 1 END"
                " WHERE id = ? AND paused <> ?",
                (int(paused), int(paused), int(paused), sub_id, int(paused)),
            )
        )

    async def set_check_every(self, sub_id: int, seconds: float | None) -> None:
        await self.db.execute(
            "UPDATE feed_subscriptions SET check_every = ? WHERE id = ?", (seconds, sub_id)
        )

    async def set_ping(self, sub_id: int, role: str, name: str) -> None:
        await self.db.execute(
            "UPDATE feed_subscriptions SET ping_role = ?, ping_name = ? WHERE id = ?",
            (role, name if role else "", sub_id),
        )

    async def set_filter_trouble(self, sub_id: int, trouble: str, now: float) -> None:
        await self.db.execute(
            "UPDATE feed_subscriptions SET filter_trouble = ?, filter_trouble_at = ? WHERE id = ?",
            (trouble[:300], now, sub_id),
        )

    async def mark_primed(self, sub_id: int) -> None:
        await self.db.execute(
            "UPDATE feed_subscriptions SET primed = 1, quiet = 0 WHERE id = ?", (sub_id,)
        )

    async def unsubscribe(self, sub_id: int) -> None:
        await self.db.execute("DELETE FROM feed_subscriptions WHERE id = ?", (sub_id,))
        await self.drop_orphans()

    # --- Items and posts -----------------------------------------------------------------

    async def seen_keys(self, source_id: int) -> set[str]:
        rows = await self.db.fetchall(
            "SELECT key FROM feed_items WHERE source_id = ?", (source_id,)
        )
        return {r[0] for r in rows}

    async def mark_seen(self, source_id: int, keys: Iterable[str], now: float) -> None:
        rows = [(source_id, k, now) for k in keys]
        if not rows:
            return
        async with self.db.transaction() as tx:
            await tx.executemany(
                "INSERT INTO feed_items (source_id, key, first_seen) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                rows,
            )

    async def note_listing(self, source_id: int, listed: list[str], now: float) -> int:
        """After a parse: note which known items the feed no longer lists (or lists again),
        and forget a bounded batch of those gone for `FORGET_AFTER`; return how many.

        Only a parsed listing says what a feed holds, so only here is anything marked gone:
        a feed answering 304 for months keeps every item it lists."""
        keys = json.dumps(listed)
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE feed_items SET gone_since = NULL WHERE source_id = ?"
                " AND gone_since IS NOT NULL AND key IN (SELECT value FROM json_each(?))",
                (source_id, keys),
            )
            await tx.execute(
                "UPDATE feed_items SET gone_since = ? WHERE source_id = ?"
                " AND gone_since IS NULL AND key NOT IN (SELECT value FROM json_each(?))",
                (now, source_id, keys),
            )
            cursor = await tx.execute(
                "DELETE FROM feed_items WHERE rowid IN (SELECT rowid FROM feed_items"
                " WHERE source_id = ? AND gone_since IS NOT NULL AND gone_since < ? LIMIT ?)",
                (source_id, now - FORGET_AFTER, PRUNE_BATCH),
            )
            return cursor.rowcount

    async def record_posts(
        self, sub_id: int, channel: ChannelRef, posts: list[tuple[str, float]]
    ) -> None:
        if not posts:
            return
        async with self.db.transaction() as tx:
            await tx.executemany(
                "INSERT INTO feed_posts (subscription_id, item_key, channel, not_before)"
                " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [(sub_id, key, channel.key, at) for key, at in posts],
            )

    async def forget_posts(self, sub_id: int, item_keys: list[str]) -> None:
        if not item_keys:
            return
        async with self.db.transaction() as tx:
            await tx.executemany(
                "DELETE FROM feed_posts WHERE subscription_id = ? AND item_key = ?",
                [(sub_id, key) for key in item_keys],
            )

    async def recent_post_times(self, channel: ChannelRef, since: float) -> list[float]:
        """When each feed post of a channel (items and notices) goes out, after `since`."""
        rows = await self.db.fetchall(
            "SELECT not_before FROM feed_posts WHERE channel = ? AND not_before > ?"
            " UNION ALL SELECT not_before FROM feed_notice_groups WHERE channel = ?"
            " AND not_before > ? AND withdrawn = 0 ORDER BY not_before",
            (channel.key, since, channel.key, since),
        )
        return [r[0] for r in rows]

    async def post_times(self, sub_id: int) -> list[float]:
        """When each item queued for one subscription may go out, earliest first."""
        rows = await self.db.fetchall(
            "SELECT not_before FROM feed_posts WHERE subscription_id = ? ORDER BY not_before",
            (sub_id,),
        )
        return [r[0] for r in rows]

    # --- Notices -------------------------------------------------------------------------

    async def waiting_notices(self) -> list[tuple[int, ChannelRef, str]]:
        """Notices in no group yet, oldest first: (id, the subscription's channel, who
        subscribed it: `created_by`), so each can be routed to whoever should be told."""
        rows = await self.db.fetchall(
            "SELECT n.id, n.channel, sub.created_by FROM feed_notices n"
            " JOIN feed_subscriptions sub ON sub.id = n.subscription_id"
            " WHERE n.group_id IS NULL ORDER BY n.id"
        )
        return [(r[0], ChannelRef.parse(r[1]), r[2]) for r in rows]

    async def last_notice_group(self, channel: ChannelRef) -> NoticeGroup | None:
        row = await self.db.fetchone(
            "SELECT * FROM feed_notice_groups WHERE channel = ? AND withdrawn = 0"
            " ORDER BY id DESC LIMIT 1",
            (channel.key,),
        )
        return NoticeGroup.of(row) if row else None

    async def gather_notices(
        self, told: ChannelRef, notice_ids: list[int], now: float, not_before: float
    ) -> int | None:
        """Put the notices `notice_ids` that are in no group yet into a new group, to be told
        in `told` (the group's channel: where its post goes, which may not be the notices'
        own channel); its id, or None if none of them was waiting."""
        marks = ", ".join("?" * len(notice_ids))
        async with self.db.transaction() as tx:
            waiting = await tx.fetchval(
                f"SELECT count(*) FROM feed_notices WHERE id IN ({marks}) AND group_id IS NULL",
                notice_ids,
            )
            if not waiting:
                return None
            cursor = await tx.execute(
                "INSERT INTO feed_notice_groups (channel, created_at, not_before) VALUES (?, ?, ?)",
                (told.key, now, not_before),
            )
            group_id = cursor.lastrowid
            await tx.execute(
                f"UPDATE feed_notices SET group_id = ? WHERE id IN ({marks}) AND group_id IS NULL",
                [group_id, *notice_ids],
            )
            return group_id

    async def unqueued_notice_groups(self) -> list[NoticeGroup]:
        rows = await self.db.fetchall(
            "SELECT * FROM feed_notice_groups WHERE queued = 0 AND withdrawn = 0 ORDER BY id"
        )
        return [NoticeGroup.of(r) for r in rows]

    async def notices_in(self, group_id: int) -> list[Notice]:
        rows = await self.db.fetchall(
            "SELECT * FROM feed_notices WHERE group_id = ? ORDER BY id", (group_id,)
        )
        return [Notice.of(r) for r in rows]

    async def notice_groups_of(self, sub_id: int) -> list[NoticeGroup]:
        """The groups, queued and not withdrawn, that tell of one subscription."""
        rows = await self.db.fetchall(
            "SELECT g.* FROM feed_notice_groups g WHERE g.queued = 1 AND g.withdrawn = 0"
            " AND g.id IN (SELECT group_id FROM feed_notices WHERE subscription_id = ?)"
            " ORDER BY g.id",
            (sub_id,),
        )
        return [NoticeGroup.of(r) for r in rows]

    async def mark_notice_group(self, group_id: int, *, queued: bool = False, withdrawn: bool = False) -> None:  # fmt: skip
        await self.db.execute(
            "UPDATE feed_notice_groups SET queued = max(queued, ?), withdrawn = max(withdrawn, ?)"
            " WHERE id = ?",
            (int(queued), int(withdrawn), group_id),
        )
