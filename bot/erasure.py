"""What one community holds in every feature's tables: counted for the operator, and erased.

Rows belong to a community in one of three ways, and this module knows each table's:
- by `community_id` (polls, events, the daily prompt's days, the digest, sign-in links);
- by a channel or member key under one of its workspaces ("platform:workspace:…": feed
  subscriptions, the outbox, a channel's prompt settings, a member's digest choice);
- through a parent row (a poll's answers, an event's RSVPs, a day's prompt answers), and a
  scheduled job through its key ("event:7:remind:1d") or the channel in its payload.

Feed sources are shared between communities: a source (and the items seen on it) goes only
when no subscription is left on it. `tests/test_tenancy_cli.py` walks every table in
sqlite_master after an erasure, so a table added later and missed here fails that test.
A table a feature has not created yet (a database from an older bot) is simply skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.store import Database, Tx

WAITING = "state IN ('pending', 'sending')"


@dataclass
class Scope:
    """One community: its id and the "platform:workspace:" prefix of each workspace."""

    community: int
    workspaces: list[tuple[str, str]] = field(default_factory=list)

    @property
    def prefixes(self) -> list[str]:
        return [f"{platform}:{workspace}:" for platform, workspace in self.workspaces]

    def under(self, column: str) -> tuple[str, list[Any]]:
        """A condition: `column` holds a key in one of the community's workspaces. A key
        range, not LIKE, so nothing in an id needs escaping (':' + 1 is ';')."""
        if not self.workspaces:
            return "0", []
        terms = " OR ".join(f"({column} >= ? AND {column} < ?)" for _ in self.prefixes)
        params = [v for p in self.prefixes for v in (p, p[:-1] + ";")]
        return f"({terms})", params

    def mentions(self, column: str) -> tuple[str, list[Any]]:
        """A condition: `column` (a job's payload, a settings scope) names a key in one of
        the community's workspaces anywhere in it."""
        if not self.workspaces:
            return "0", []
        return "(" + " OR ".join(f"instr({column}, ?) > 0" for _ in self.prefixes) + ")", list(
            self.prefixes
        )


async def scope_of(db: Database | Tx, community_id: int) -> Scope:
    rows = await db.fetchall(
        "SELECT platform, workspace FROM community_workspaces WHERE community_id = ?",
        (community_id,),
    )
    return Scope(community_id, [(r[0], r[1]) for r in rows])


async def tables(db: Database | Tx) -> set[str]:
    return set(await db.tables())


# --- Counting ------------------------------------------------------------------------------


async def size(db: Database, scope: Scope) -> dict[str, int]:
    """What the operator is shown of one community: feeds, polls, events, answers, waiting."""
    have = await tables(db)
    feeds_where, feeds_params = scope.under("channel")
    waiting_where, waiting_params = scope.under("channel")
    queries = {
        "feeds": (
            "feed_subscriptions",
            f"SELECT count(*) FROM feed_subscriptions WHERE {feeds_where}",
            feeds_params,
        ),  # fmt: skip
        "polls": (
            "vote_runs",
            "SELECT count(*) FROM vote_runs WHERE community_id = ?",
            [scope.community],
        ),  # fmt: skip
        "events": (
            "events",
            "SELECT count(*) FROM events WHERE community_id = ?",
            [scope.community],
        ),  # fmt: skip
        "answers": (
            "justdoit_answers",
            "SELECT count(*) FROM justdoit_answers a JOIN justdoit_days d ON d.id = a.day_id"
            " WHERE d.community_id = ?",
            [scope.community],
        ),
        "waiting": (
            "outbox",
            f"SELECT count(*) FROM outbox WHERE {WAITING} AND {waiting_where}",
            waiting_params,
        ),  # fmt: skip
    }
    counts = {}
    for name, (table, sql, params) in queries.items():
        counts[name] = await db.fetchval(sql, params) if table in have else 0
    return counts


# --- Erasing -------------------------------------------------------------------------------


async def erase(db: Database, community_id: int) -> dict[str, int]:
    """Delete every row of one community, in one transaction; return rows deleted per table."""
    deleted: dict[str, int] = {}
    async with db.transaction() as tx:
        scope = await scope_of(tx, community_id)
        have = await tables(tx)
        eraser = _Eraser(tx, scope, have, deleted)
        await eraser.polls()
        await eraser.events()
        await eraser.prompts()
        await eraser.digest()
        await eraser.feeds()
        await eraser.delivery()
        await eraser.keyed_by_workspace()
        await eraser.community()
    return {table: n for table, n in deleted.items() if n}


@dataclass
class _Eraser:
    tx: Tx
    scope: Scope
    have: set[str]
    deleted: dict[str, int]

    async def ids(self, table: str, where: str, params: Sequence[Any] = ()) -> list[int]:
        if table not in self.have:
            return []
        return [r[0] for r in await self.tx.fetchall(f"SELECT id FROM {table} WHERE {where}", params)]  # fmt: skip

    async def delete(self, table: str, where: str, params: Sequence[Any] = ()) -> None:
        if table in self.have and where != "0":
            cursor = await self.tx.execute(f"DELETE FROM {table} WHERE {where}", params)
            self.deleted[table] = self.deleted.get(table, 0) + max(cursor.rowcount, 0)

    async def by_ids(self, table: str, column: str, ids: list[int]) -> None:
        if ids:
            await self.delete(table, f"{column} IN ({_marks(ids)})", ids)

    async def jobs(self, prefixes: list[str]) -> None:
        for prefix in prefixes:
            await self.delete("jobs", "substr(key, 1, ?) = ?", (len(prefix), prefix))

    @property
    def cid(self) -> list[int]:
        return [self.scope.community]

    async def polls(self) -> None:
        runs = await self.ids("vote_runs", "community_id = ?", self.cid)
        for table in ("vote_questions", "vote_answers", "vote_channels", "vote_turnout", "vote_turnout_voters"):  # fmt: skip
            await self.by_ids(table, "run_id", runs)
        await self.delete("vote_channels", *self.scope.under("channel"))
        await self.jobs([f"{kind}:{run}:" for run in runs for kind in ("poll", "survey")])
        await self.delete("vote_runs", "community_id = ?", self.cid)
        await self.delete("vote_series", "community_id = ?", self.cid)

    async def events(self) -> None:
        events = await self.ids("events", "community_id = ?", self.cid)
        series = await self.ids("event_series", "community_id = ?", self.cid)
        for table in ("event_rsvps", "event_posts", "event_waitlist"):
            await self.by_ids(table, "event_id", events)
        await self.by_ids("event_series_rsvps", "series_id", series)
        await self.jobs([f"event:{event}:" for event in events])
        for table in ("events", "event_series", "event_calendar_feeds"):
            await self.delete(table, "community_id = ?", self.cid)

    async def prompts(self) -> None:
        under = self.scope.under("channel")
        days = await self.ids("justdoit_days", f"community_id = ? OR {under[0]}", [*self.cid, *under[1]])  # fmt: skip
        await self.by_ids("justdoit_answers", "day_id", days)
        await self.by_ids("justdoit_days", "id", days)
        await self.delete("justdoit_schedules", f"community_id = ? OR {under[0]}", [*self.cid, *under[1]])  # fmt: skip
        await self.delete("justdoit_skips", *under)
        suggestions = await self.ids("justdoit_suggestions", "community_id = ?", self.cid)
        await self.jobs([f"justdoit:suggestion:{s}:" for s in suggestions])
        await self.delete("justdoit_suggestions", "community_id = ?", self.cid)

    async def digest(self) -> None:
        for table in ("digest_schedules", "digest_weeks"):
            await self.delete(table, "community_id = ?", self.cid)
        await self.delete("digest_members", *self.scope.under("member"))
        await self.delete("digest_shares", *self.scope.under("channel"))
        await self.jobs([f"digest:{self.scope.community}:"])

    async def feeds(self) -> None:
        under = self.scope.under("channel")
        subs = await self.ids("feed_subscriptions", *under)
        sources: list[int] = []
        if subs and "feed_subscriptions" in self.have:
            rows = await self.tx.fetchall(
                f"SELECT DISTINCT source_id FROM feed_subscriptions WHERE id IN ({_marks(subs)})",
                subs,
            )
            sources = [r[0] for r in rows]
        await self.by_ids("feed_notices", "subscription_id", subs)
        await self.delete("feed_notices", *under)
        await self.delete("feed_notice_groups", *under)
        await self.by_ids("feed_posts", "subscription_id", subs)
        await self.delete("feed_posts", *under)
        await self.by_ids("feed_subscriptions", "id", subs)
        # A source nobody else subscribes to goes too, with what was seen on it.
        orphans = [
            s for s in sources
            if not await self.tx.fetchval("SELECT 1 FROM feed_subscriptions WHERE source_id = ?", (s,))  # fmt: skip
        ]  # fmt: skip
        await self.by_ids("feed_notices", "source_id", orphans)
        await self.by_ids("feed_items", "source_id", orphans)
        await self.by_ids("feed_sources", "id", orphans)

    async def delivery(self) -> None:
        await self.delete("outbox", *self.scope.under("channel"))
        await self.delete("jobs", *self.scope.mentions("key || ' ' || payload"))
        await self.delete("settings", "scope = ?", [str(self.scope.community)])
        await self.delete("settings", *self.scope.mentions("scope"))
        await self.delete("web_links", "community_id = ?", self.cid)
        for platform, workspace in self.scope.workspaces:
            # A journaled request names its workspace in its raw body (a guild or team id).
            await self.delete("intake", "platform = ? AND instr(body, ?) > 0", (platform, workspace))  # fmt: skip

    async def keyed_by_workspace(self) -> None:
        """Any table keyed by `platform` and `workspace` columns (a member's own zone)."""
        for table in sorted(self.have - {"community_workspaces"}):
            columns = set(await self.tx.columns(table))
            if {"platform", "workspace"} <= columns:
                for pair in self.scope.workspaces:
                    await self.delete(table, "platform = ? AND workspace = ?", pair)

    async def community(self) -> None:
        for table in ("community_channels", "community_workspaces"):
            await self.delete(table, "community_id = ?", self.cid)
        await self.delete("communities", "id = ?", self.cid)


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)
