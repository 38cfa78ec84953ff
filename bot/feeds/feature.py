"""The feeds feature: its commands (`/feed add|edit|list|remove|pause|resume|preview`), its
periodic poll, subscribing and the demo. `bot.feeds` names it (`from bot.feeds import
Feeds`) without importing it until asked, so a parser process that imports
`bot.feeds.parse` carries the parser alone, not the app."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, ClassVar

from bot import commands as cmd
from bot.app import ERROR_COLOR, Context, Feature
from bot.errors import UsageError, UserError
from bot.feeds.cli import feeds_cli
from bot.feeds.filters import compile_terms, stalling_pattern
from bot.feeds.parse import ParsedFeed, Want, looks_like_html
from bot.feeds.poller import Poller
from bot.feeds.render import check_template, item_post
from bot.feeds.schema import MIGRATIONS
from bot.feeds.settings import FeedSettings
from bot.feeds.store import FeedStore, Source, Subscription
from bot.feeds.tuning import (
    checked_interval,
    edit,
    every_words,
    feed_hint,
    interval_form,
    ping_of,
    ping_words,
)
from bot.fetch import FetchResult, check_url
from bot.model import ChannelRef, Ephemeral, Field, Post, RoleRef, channel_tag, inert, time_tag
from bot.timeutil import duration_words

if TYPE_CHECKING:
    from bot.app import App
    from bot.feeds.demo import DemoFeedServer

log = logging.getLogger("bot.feeds")

DEMO_BACKLOG = 1
PREVIEW = Want(unseen=False, newest=1)  # a preview shows the latest item: only it is cleaned
POLL_JOB = "feeds.poll_due"
PRIVATE_HINT = (
    "Feeds on private or loopback addresses are refused unless the configuration sets"
    " `[feeds] allow_private = true`: that is for tests and demos, never in production."
)
_BLOCKED = re.compile(r"^refused: .*(?:is an? [\w-]+ address|is not a public address)")


class AlreadySubscribed(UserError):
    """The channel already follows this feed (`existing` is its subscription)."""

    def __init__(self, channel: ChannelRef, existing: Subscription) -> None:
        super().__init__(
            f"That channel already follows this feed (subscription #{existing.id}).",
            hint=f"Use /feed resume {existing.id} if it is paused.",
        )
        self.channel = channel
        self.existing = existing


class Feeds(Feature):
    name = "feeds"
    migrations = MIGRATIONS
    Settings = FeedSettings
    cli: ClassVar = feeds_cli

    def __init__(self, app: App) -> None:
        super().__init__(app)
        self.store = FeedStore(app.db)
        self.poller = Poller(app, self.store, self.settings)
        self._demo: DemoFeedServer | None = None

    # --- Life cycle ------------------------------------------------------------------------

    def register(self) -> None:
        url = cmd.Option("url", description="the feed's address, or its site's page", required=True, positional=True)  # fmt: skip
        sub_id = cmd.Option("id", cmd.Kind.INT, "the subscription's number, from /feed list", required=True, positional=True, min_value=1)  # fmt: skip
        interval = cmd.Option("interval", cmd.Kind.DURATION, "how often to check the feed (default: the configured interval)", form=interval_form(self.settings))  # fmt: skip
        ping = cmd.Option("ping", cmd.Kind.ROLE, "the one role or user group its posts mention (none: nobody)")  # fmt: skip
        add = self.app.command
        add(cmd.Command(
            ("feed", "add"), "Post a feed's new articles in a channel", self.add,
            options=[
                url,
                cmd.Option("channel", cmd.Kind.CHANNEL, "where to post (default: here)", positional=True),
                cmd.Option("include", description="only items with these words (a, b) or a /regex/", max_length=200, form=cmd.WORDS_OR_REGEX),
                cmd.Option("exclude", description="skip items with these words (a, b) or a /regex/", max_length=200, form=cmd.WORDS_OR_REGEX),
                cmd.Option("backlog", cmd.Kind.INT, "how many of the latest items to post now", min_value=0, max_value=50),
                cmd.Option("template", description="custom text: {title} {link} {summary} {author} {source} {date}", max_length=1000),
                interval, ping,
            ],
            moderator=True,
            examples=[
                "/feed add https://itsm.tools/feed/",
                "/feed add https://www.bmc.com/blogs/ #news include=ITIL,incident backlog=0",
                "/feed add https://itsm.tools/feed/ interval=2h ping=@itsm-news",
            ],
        ))  # fmt: skip
        add(cmd.Command(
            ("feed", "edit"), "Change how often a feed is checked, or the role it pings", self.edit,
            options=[sub_id, interval, ping, cmd.Option("noping", cmd.Kind.BOOL, "ping nobody any more")],
            moderator=True,
            examples=["/feed edit 3 interval=6h", "/feed edit 3 ping=@oncall", "/feed edit 3 ping=none"],
        ))  # fmt: skip
        add(cmd.Command(("feed", "list"), "The feeds this workspace follows, with their health", self.list_feeds))  # fmt: skip
        add(cmd.Command(("feed", "remove"), "Stop following a feed in its channel", self.remove, options=[sub_id], moderator=True))  # fmt: skip
        add(cmd.Command(("feed", "pause"), "Stop posting a feed for now", self.pause, options=[sub_id], moderator=True))  # fmt: skip
        add(cmd.Command(("feed", "resume"), "Post a paused or disabled feed again", self.resume, options=[sub_id], moderator=True))  # fmt: skip
        add(cmd.Command(("feed", "preview"), "Show a feed's latest item as it would be posted", self.preview, options=[url], moderator=True))  # fmt: skip

    async def start(self) -> None:
        every = self.settings.poll_every.total_seconds()
        self.app.scheduler.timers.add_job(
            self.poll_due, "interval", seconds=every, id=POLL_JOB, replace_existing=True,
            max_instances=1, coalesce=True,
        )  # fmt: skip

    async def stop(self) -> None:
        timers = self.app.scheduler.timers
        if timers.get_job(POLL_JOB):
            timers.remove_job(POLL_JOB)
        await self.poller.close()
        if self._demo is not None:
            await self._demo.stop()
            self._demo = None

    async def poll_due(self) -> dict[int, str]:
        """Check every feed that is due now (the periodic job; tests call it directly)."""
        return await self.poller.poll_due()

    # --- Subscribing (shared by /feed add, the demo and the benchmark) ---------------------

    async def subscribe(
        self,
        url: str,
        channel: ChannelRef,
        *,
        include: str = "",
        exclude: str = "",
        template: str = "",
        backlog: int | None = None,
        created_by: str = "",
        allow_private: bool = False,
        title: str = "",
        origin: str = "",
        check_every: float | None = None,
        ping: RoleRef | None = None,
    ) -> tuple[Source, Subscription]:
        """Record a subscription without fetching; the next poll posts its backlog."""
        now = self.app.clock.now().timestamp()
        source = await self.store.ensure_source(url, now, title, allow_private, origin)
        sub_id = await self.store.subscribe(
            source.id, channel, include=include, exclude=exclude, template=template,
            backlog=self.settings.backlog if backlog is None else backlog,
            created_by=created_by, now=now, check_every=check_every,
            ping_role=ping_of(ping)[0], ping_name=ping_of(ping)[1],
        )  # fmt: skip
        if sub_id is None:
            existing = await self.store.subscription_at(source.id, channel)
            assert existing is not None
            raise AlreadySubscribed(channel, existing)
        if source.state == "disabled":
            await self.store.enable(source.id, now)
        await self.store.check_soon(source.id, now)
        sub = await self.store.subscription(sub_id)
        assert sub is not None
        return source, sub

    async def resolve(
        self, url: str, want: Want | None = None
    ) -> tuple[str, FetchResult, ParsedFeed]:
        """Fetch what a member gave: a feed, or a page announcing one, and parse it (only
        what `want` asks for in full, default every item). Raises UserError."""
        try:
            check_url(url)
        except ValueError as exc:
            raise UsageError(f"`{inert(url)}`: {inert(str(exc))}.", option="url") from None
        result = await self.poller.fetcher.fetch(url)
        if result.ok and looks_like_html(result.body, result.content_type):
            found = await self.poller.discover(result)
            if not found:
                raise UserError(
                    f"{inert(url)} is a web page that announces no feed.",
                    hint="Give the feed's own address (it often ends in /feed, .rss or .xml).",
                )
            url = found[0]
            result = await self.poller.fetcher.fetch(url)
        if not result.ok:
            hint = PRIVATE_HINT if _BLOCKED.match(result.error) else ""
            raise UserError(f"I could not fetch {inert(url)}: {inert(result.error)}.", hint)
        parsed = await self.poller.parse(result, want)
        if parsed.error:
            raise UserError(f"{inert(url)} is not a feed I can read: {inert(parsed.error)}.")
        return result.moved_to or url, result, parsed

    # --- Commands --------------------------------------------------------------------------

    async def add(
        self,
        ctx: Context,
        url: str,
        channel: ChannelRef | None = None,
        include: str | None = None,
        exclude: str | None = None,
        backlog: int | None = None,
        template: str | None = None,
        interval: timedelta | None = None,
        ping: RoleRef | None = None,
    ) -> Ephemeral:
        target = channel or ctx.channel
        include, exclude, template = include or "", exclude or "", template or ""
        for name, value in (("include", include), ("exclude", exclude)):
            try:
                terms = compile_terms(value)
            except ValueError as exc:
                raise UsageError(f"`{name}`: {inert(str(exc))}", option=name) from None
            stalling = await asyncio.to_thread(stalling_pattern, terms) if terms else None
            if stalling is not None:
                raise UsageError(
                    f"`{name}`: the expression `/{inert(stalling)}/` takes too long on some "
                    "text (it backtracks), so it could hold items back. Simplify it: avoid "
                    "a repetition inside a repetition, such as `(a+)+` or `(\\w+\\s?)*`.",
                    option=name,
                )
        try:
            check_template(template)
        except ValueError as exc:
            raise UsageError(f"`template`: {inert(str(exc))}", option="template") from None
        feed_url, result, parsed = await self.resolve(url)
        hint = feed_hint(parsed.ttl, result.max_age)
        every = None if interval is None else checked_interval(interval, self.settings, hint)
        try:
            source, sub = await self.subscribe(
                feed_url, target, include=include, exclude=exclude, template=template,
                backlog=backlog, created_by=ctx.user.key, title=parsed.title,
                check_every=every, ping=ping,
            )  # fmt: skip
        except AlreadySubscribed as exc:  # said here, where the channel can be named as one
            text = f"**{channel_tag(target)} already follows this feed (subscription #{exc.existing.id}).**"  # fmt: skip
            return Ephemeral(Post(text=f"{text}\n{exc.hint}", color=ERROR_COLOR))
        await self.poller.apply(source, result, parsed, force=True)
        checked = f"checked about every {every_words(sub, self.settings)}"
        pings = f" Its posts ping {ping_words(sub)}." if sub.ping_role else ""
        return Ephemeral(
            Post(
                text=f"{channel_tag(target)} now follows **{inert(parsed.title or feed_url)}** "
                f"(subscription #{sub.id}). {await self._backlog_words(sub, checked)}{pings}",
                footer=f"/feed edit {sub.id} · /feed pause {sub.id} · /feed remove {sub.id}",
            )
        )

    async def _backlog_words(self, sub: Subscription, checked: str) -> str:
        """What a new subscription posts now, and when: the channel's cap may hold it back."""
        if sub.backlog == 0:
            return f"Only new items are posted, as they are published ({checked})."
        times = await self.store.post_times(sub.id)
        if not times:
            why = "none of its items passes the filters" if sub.include or sub.exclude else "it has no items yet"  # fmt: skip
            return f"Nothing to post now: {why}. New items are posted as they are published ({checked})."  # fmt: skip
        now = self.app.clock.now().timestamp()
        latest = f"the latest {_items(len(times))}"
        later = [t for t in times if t > now + 1]
        if not later:
            return f"Posting {latest} now; new ones appear as they are published ({checked})."
        cap = self.settings.per_channel_cap
        window = duration_words(self.settings.per_channel_window)
        capped = f"as this channel's cap allows (at most {_items(cap, 'feed post')} every {window})"
        last = _at(later[-1])
        if len(later) < len(times):
            when = f"Posting {latest}: {len(times) - len(later)} now and the rest by {last}, {capped}"  # fmt: skip
        elif int(later[0]) == int(later[-1]):
            when = f"Posting {latest} at {last}, {capped}"
        else:
            when = f"Posting {latest} from {_at(later[0])}, the last by {last}, {capped}"
        return f"{when}; new ones appear as they are published ({checked})."

    async def list_feeds(self, ctx: Context) -> Ephemeral:
        subs = await self.store.subscriptions_in(ctx.channel.platform, ctx.channel.workspace)
        if not subs:
            return Ephemeral(
                Post(text="No feeds yet. A moderator can add one with `/feed add URL`.")
            )
        fields = [await self._health(sub) for sub in subs[:20]]
        more = f"…and {len(subs) - 20} more." if len(subs) > 20 else ""
        return Ephemeral(Post(title="Feeds", text=more, fields=fields))

    async def _health(self, sub: Subscription) -> Field:
        source = await self.store.source(sub.source_id)
        assert source is not None
        if source.state == "disabled":
            state = f"⛔ disabled: {inert(source.disabled_reason or '')}"
        elif sub.paused:
            state = "⏸ paused"
        elif source.failures:
            state = f"⚠️ failing ({source.failures} in a row): {inert(source.last_error or '')}"
        else:
            state = "✅ running"
        if source.state == "disabled" or sub.paused:
            upcoming = "—"
        elif source.failures and source.last_fetch_at:
            wait = timedelta(seconds=source.next_check_at - source.last_fetch_at)
            upcoming = f"{_when(source.next_check_at)} (backing off: {duration_words(wait)} after the last failure)"  # fmt: skip
        else:
            upcoming = f"{_when(source.next_check_at)} (checked about every {every_words(sub, self.settings)})"  # fmt: skip
        lines = [
            f"in {channel_tag(sub.channel)} · {state}",
            f"last fetch: {_when(source.last_fetch_at)} · last new item: {_when(source.last_new_at)}",
            f"failures: {source.failures} · next check: {upcoming}",
        ]
        extras = [f"{k}: `{inert(v)}`" for k, v in (("include", sub.include), ("exclude", sub.exclude)) if v]  # fmt: skip
        if sub.template:
            extras.append("custom template")
        if sub.ping_role:
            extras.append(f"pings {ping_words(sub)}")
        if extras:
            lines.append(" · ".join(extras))
        if sub.filter_trouble:
            when = _when(sub.filter_trouble_at)
            lines.append(f"⚠️ filter problem ({when}): {inert(sub.filter_trouble)}")
        title = inert(source.title) or inert(source.url)
        return Field(f"#{sub.id} {title}", "\n".join(lines), inline=False)

    async def mine(self, ctx: Context, sub_id: int) -> Subscription:
        sub = await self.store.subscription(sub_id)
        here = (ctx.channel.platform, ctx.channel.workspace)
        if sub is None or (sub.channel.platform, sub.channel.workspace) != here:
            raise UserError(f"There is no feed subscription #{sub_id} here.", hint="/feed list shows them.")  # fmt: skip
        return sub

    async def edit(
        self, ctx: Context, id: int, interval: timedelta | None = None,
        ping: RoleRef | None = None, noping: bool | None = None,
    ) -> Ephemeral:  # fmt: skip
        return await edit(self, ctx, id, interval, ping, bool(noping))

    async def remove(self, ctx: Context, id: int) -> Ephemeral:
        sub = await self.mine(ctx, id)
        source = await self.store.source(sub.source_id)
        async with self.poller.posting:
            told = await self.store.notice_groups_of(sub.id)
            await self.store.unsubscribe(sub.id)
            withdrawn = await self.poller.withdraw(sub.id)
            withdrawn += await self.poller.withdraw_notices(told)
            withdrawn += len(
                await self.app.outbox.withdraw(f"feed-notice:{sub.id}:")
            )  # queued by an earlier version
        name = inert(source.title or source.url) if source else f"#{id}"
        return Ephemeral(Post(text=f"{channel_tag(sub.channel)} no longer follows **{name}**.{_withdrawn(withdrawn)}"))  # fmt: skip

    async def pause(self, ctx: Context, id: int) -> Ephemeral:
        """Pausing stops the posting now: what waits in the queue is withdrawn too (a
        resumed subscription starts from the moment it resumes)."""
        sub = await self.mine(ctx, id)
        async with self.poller.posting:
            paused = await self.store.set_paused(sub.id, True)
            withdrawn = await self.poller.withdraw(sub.id)
        if not paused:
            return Ephemeral(Post(text=f"Subscription #{id} is already paused.{_withdrawn(withdrawn)}"))  # fmt: skip
        return Ephemeral(Post(text=f"Paused subscription #{id}: nothing more is posted until `/feed resume {id}`.{_withdrawn(withdrawn)}"))  # fmt: skip

    async def resume(self, ctx: Context, id: int) -> Ephemeral:
        sub = await self.mine(ctx, id)
        now = self.app.clock.now().timestamp()
        unpaused = await self.store.set_paused(sub.id, False)
        enabled = await self.store.enable(sub.source_id, now)
        if not unpaused and not enabled:
            return Ephemeral(Post(text=f"Subscription #{id} is already running."))
        source = await self.store.source(sub.source_id)
        if source is not None and source.state == "active":
            await self.poller.refresh(source, prime=True)  # a resumed subscription starts now
        what = "switched the feed back on" if enabled else "resumed"
        return Ephemeral(Post(text=f"Subscription #{id}: {what}; new items are posted from now on."))  # fmt: skip

    async def preview(self, ctx: Context, url: str) -> list[Ephemeral]:
        feed_url, _, parsed = await self.resolve(url, PREVIEW)
        items = parsed.chronological()
        if not items:
            raise UserError(f"{inert(feed_url)} is a feed, but it has no items yet.")
        name = parsed.title or feed_url
        note = Post(text=f"Preview of the latest item of **{inert(name)}**, as it would be posted (nothing is subscribed).")  # fmt: skip
        return [Ephemeral(note), Ephemeral(item_post(items[-1], name, zone=ctx.tz))]

    # --- Demo ------------------------------------------------------------------------------

    async def seed_demo(self, channel: ChannelRef) -> None:
        """Serve the bundled sample feeds locally and subscribe the demo channel to them."""
        # Only the demo serves feeds: `run` never loads the demo's server (aiohttp.web).
        from bot.feeds.demo import DemoFeedServer, demo_feeds

        if self._demo is None:
            self._demo = DemoFeedServer()
            await self._demo.start()
        base = self._demo.base
        for feed in demo_feeds():
            url = f"{base}/{feed.file}"
            origin = f"demo:{feed.file}"
            source = await self.store.source_by_origin(origin)
            if source is not None and source.url != url:
                await self.store.set_url(source.id, url)  # the demo server's port is new
            try:
                await self.subscribe(
                    url, channel, backlog=DEMO_BACKLOG, allow_private=True,
                    title=feed.title, origin=origin,
                )  # fmt: skip
            except UserError:
                pass  # already subscribed by an earlier demo run on this database
        await self.poll_due()


def _when(ts: float | None) -> str:
    return time_tag(datetime.fromtimestamp(ts, UTC), "R") if ts else "never"


def _withdrawn(count: int) -> str:
    return f" Withdrew {count} queued post(s) that had not gone out yet." if count else ""


def _at(ts: float) -> str:
    return time_tag(datetime.fromtimestamp(ts, UTC), "R")


def _items(count: int, noun: str = "item") -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")
