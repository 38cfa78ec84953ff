"""The walls between communities: a moderator of community A, on one bot with community B,
can neither read, change nor export anything of B's, from chat or from the web console.

B is seeded with one of everything (tests/walls.py). Then every command the bot declares
and every route its web server has is walked as A's moderator with B's ids: each call
that names one of B's things must be refused, every other answer must show nothing of B's,
and B's rows must be the same after each call as before it. Commands and routes are read
from the app's registry and router, so a new one is walked without touching this file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.console.render import render
from bot import commands as cmd
from bot.app import ERROR_COLOR
from bot.errors import UsageError
from bot.model import (
    Action,
    ChannelRef,
    Ephemeral,
    Invocation,
    Public,
    Reply,
    RoleRef,
    Submission,
    UpdateMessage,
    UserRef,
)
from tests.fakes import feed_server as fake_feeds
from tests.fakes.feed_server import FeedServer, entries, rss
from tests.walls import (
    A_WORKSPACE,
    B_WORKSPACE,
    PLATFORM,
    Seeded,
    Tenant,
    rows_of,
    seed_b,
)
from tests.web import WebRun, csrf_of, sign_in_link

feed_server = fake_feeds.feed_server  # the fixture
CONFIG = {"feeds": {"allow_private": True, "timeout": 2.0}}

# Values for the options that name none of B's things, so that each command gets far
# enough to look at the one that does: these are always given, and any other required
# option gets one by its kind.
FILLERS: dict[str, Any] = {
    "question": "Alpha question?",
    "choices": ["Alpha one", "Alpha two"],
    "title": "Alpha title",
    "start": "2026-12-20 10:00",
    "what": "Alpha: I did it",
    "prompt": "Alpha prompt",
    "dates": "2026-11-24",
    "date": "2026-12-07",  # a date of B's series, for `/event cancel B's-id date=`
    "time": "08:30",
    "day": "mon",
    "name": "community",  # the survey B runs
}


# An option that names a thing by its number, other than `id`, must be taught to b_values.
ID_LIKE = re.compile(r"(^|_)id$|^(poll|event|run|series|suggestion|feed|subscription)$")


@dataclass
class Call:
    """One command as A's moderator types it, and which of B's things it names."""

    command: cmd.Command
    options: dict[str, Any]
    names_b: str  # e.g. "id=3", "channel=console:chapter-1:general"; "" when it names none

    def __str__(self) -> str:
        shown = " ".join(f"{k}={v.key if hasattr(v, 'key') else v}" for k, v in self.options.items())  # fmt: skip
        return f"/{self.command.name} {shown}".strip()


def b_values(command: cmd.Command, option: cmd.Option, b: Seeded) -> list[Any]:
    """B's things an option can name: its channel, member or role, and its ids of the
    command's kind (all of B's ids for a group this table does not know yet)."""
    if option.kind is cmd.Kind.CHANNEL:
        return [b.channel]
    if option.kind is cmd.Kind.USER:
        return [UserRef(PLATFORM, B_WORKSPACE, "bertram", "bertram")]
    if option.kind is cmd.Kind.ROLE:
        return [RoleRef(PLATFORM, B_WORKSPACE, "bravo-team", "bravo-team")]
    if option.name == "id":
        return b.ids.get(command.path[0]) or b.all_ids()
    assert not ID_LIKE.search(option.name), f"/{command.name} {option.name}=: say here what of B's it names"  # fmt: skip
    return []


def filler(option: cmd.Option, b: Seeded) -> Any:
    if option.name in FILLERS:
        return FILLERS[option.name]
    if option.name == "url":
        return b.feed_url  # a public feed B follows: following it too is A's right
    if option.kind is cmd.Kind.CHOICE:
        return option.choices[0]
    if option.kind is cmd.Kind.DATETIME:
        return "2026-12-20 10:00"
    return "alpha" if option.kind is cmd.Kind.STR else None


def calls(command: cmd.Command, b: Seeded) -> list[Call]:
    """Each of B's values in each option that takes one (the others filled), each once with
    the command's switches off and once with them on; a command that can name nothing of
    B's is called once each way all the same, and must then show nothing of B's."""
    given = {o.name: filler(o, b) for o in command.options if o.required or o.name in FILLERS}
    base = {k: v for k, v in given.items() if v is not None}
    aimed = [
        (option.name, value)
        for option in command.options
        for value in b_values(command, option, b)
    ]  # fmt: skip
    switches = {o.name: True for o in command.options if o.kind is cmd.Kind.BOOL}
    found = []
    for flags in ({}, switches) if switches else ({},):
        for name, value in aimed or [("", None)]:
            options = {**base, **flags}
            if name:
                options[name] = value
            names_b = f"{name}={getattr(value, 'key', value)}" if name else ""
            found.append(Call(command, options, names_b))
    return found


def shown(replies: list[Reply]) -> str:
    """The replies as the console shows them, with the files they carry (an export)."""
    posts = [r.post for r in replies if isinstance(r, Ephemeral | Public | UpdateMessage)]
    files = [a.data.decode("utf-8", "replace") for p in posts for a in p.attachments]
    return "\n".join([*(render(p, 0, "reply") for p in posts), *files])


def refused(replies: list[Reply]) -> bool:
    """An error for the one who asked, and only that (not a crash: that is no wall)."""
    posts = [r.post if isinstance(r, Ephemeral) else None for r in replies]
    return bool(posts) and all(
        p is not None and p.color == ERROR_COLOR and "went wrong" not in p.text for p in posts
    )


async def two_communities(make_web: Any, feed_server: FeedServer) -> tuple[WebRun, Tenant, Tenant, Seeded]:  # fmt: skip
    web = await make_web(CONFIG)
    out: list[str] = []
    a = Tenant(web.app, A_WORKSPACE, out)
    b = Tenant(web.app, B_WORKSPACE, out, shared=a)
    url = feed_server.set("shared.xml", body=rss(entries(2), title="Shared feed"))
    seeded = await seed_b(b, url)
    await a.say("@amos! /help")  # A's community exists before the walk
    return web, a, b, seeded


async def b_rows(a: Tenant, b: Seeded) -> dict[str, list[str]]:
    await a.settle()
    return await rows_of(a.app.db, b.community_id, B_WORKSPACE)


def changed(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[str]:
    """B's tables whose rows differ, each with how many rows came and went."""
    said = []
    for table in sorted(set(before) | set(after)):
        old, new = set(before.get(table, [])), set(after.get(table, []))
        if old != new:
            said.append(f"{table} (+{len(new - old)} -{len(old - new)})")
    return said


async def test_every_command_refuses_bs_things_to_a_moderator_of_a(make_web, feed_server):
    web, a, _, b = await two_communities(make_web, feed_server)
    moderator, where = a.user("amos"), a.channel
    problems: list[str] = []
    walked = 0
    for command in list(web.app.registry.commands.values()):
        for call in calls(command, b):
            before = await b_rows(a, b)
            replies = await web.app.invoke(
                Invocation(command.path, moderator, where, True, options=call.options)
            )
            walked += 1
            text = shown(replies)
            if call.names_b and not refused(replies):
                problems.append(f"{call}: not refused, answered {text[:200]!r}")
            elif "went wrong" in text:
                problems.append(f"{call}: crashed")
            elif b.leaks(text):
                problems.append(f"{call}: shows {b.leaks(text)} in {text[:300]!r}")
            difference = changed(before, await b_rows(a, b))
            if difference:
                problems.append(f"{call}: changed B's {difference}")
    assert walked >= len(web.app.registry.commands)  # each at least once
    assert not problems, "\n".join(problems)


# --- The web console ---------------------------------------------------------------------

# Routes not walked, and why.
NOT_WALKED = {
    "/static": "the console's own stylesheet and scripts",
    "/signin/{token}": "a sign-in link is its own credential: B's link signs in B's moderator",
    "/signout": "ends A's own session",
}
# Which of B's things an {id} names, by the route's first part.
ROUTE_IDS = {"feeds": "feed", "polls": "poll", "events": "event", "prompts": "justdoit"}
_PARAM = re.compile(r"\{(\w+)[^}]*\}")


@dataclass
class Visit:
    """One request of A's moderator's browser, and which of B's things it names."""

    method: str
    path: str
    names_b: str


def visits(method: str, route: str, b: Seeded, a_token: str) -> list[Visit]:
    """Each of B's ids in the route's {id}; A's own calendar token in {token} (A's calendar
    must show nothing of B's); a form or a query always names B's channel and feed."""
    params = _PARAM.findall(route)
    if not params:
        return [Visit(method, route, "channel" if method == "POST" else "")]
    if params == ["token"]:
        return [Visit(method, _PARAM.sub(a_token, route), "")]
    assert params == ["id"], f"a route with {params}: say here what of B's it names"
    kind = ROUTE_IDS.get(route.strip("/").split("/")[0], "")
    return [
        Visit(method, _PARAM.sub(str(i), route), f"id={i}")
        for i in b.ids.get(kind) or b.all_ids()
    ]  # fmt: skip


def routes(web: WebRun) -> list[tuple[str, str]]:
    found = []
    for route in web.server.web.router.routes():
        path = route.resource.canonical if route.resource else ""
        if route.method in ("GET", "POST") and path not in NOT_WALKED:
            found.append((route.method, path))
    return found


def calendar_path(said: str) -> str:
    """The path of the calendar feed an answer of `/event calendar` gives."""
    return re.findall(r"/calendar/[\w-]+\.ics", said)[0]


def web_query(b: Seeded) -> dict[str, str]:
    """What every GET asks for: B's feed and channel, a month of B's events, a question of
    the survey B runs to compare by."""
    return {"url": b.feed_url, "month": "2026-12", "channel": b.channel.key, "by": "exists"}


async def signed_in(web: WebRun, tenant: Tenant, moderator: str = "amos") -> Any:
    """A browser signed in to the web console as a moderator of `tenant`'s community."""
    client = web.client()
    link = sign_in_link(await tenant.say(f"@{moderator}! /web"))
    async with client.post(link.removeprefix(web.base), allow_redirects=False) as response:
        assert response.status == 303
    return client


async def test_every_web_page_and_form_refuses_bs_things_to_a_moderator_of_a(make_web, feed_server):
    web, a, _, b = await two_communities(make_web, feed_server)
    a_token = (
        calendar_path(await a.say("@amos /event calendar")).split("/")[-1].removesuffix(".ics")
    )
    client = await signed_in(web, a)
    csrf = csrf_of(await web.page(client, "/feeds"))
    form = {"csrf": csrf, "channel": b.channel.key, "url": b.feed_url, "title": "Alpha title"}
    query = web_query(b)
    problems: list[str] = []
    walked = 0
    for method, route in routes(web):
        for visit in visits(method, route, b, a_token):
            before = await b_rows(a, b)
            if method == "POST":
                request = client.post(visit.path, data=form, allow_redirects=False)
            else:
                request = client.get(visit.path, params=query, allow_redirects=False)
            async with request as response:
                status, body = response.status, await response.text()
            walked += 1
            if visit.names_b and status not in (400, 403, 404):
                problems.append(f"{method} {visit.path} ({visit.names_b}): answered {status}")
            elif not visit.names_b and status not in (200, 303):
                problems.append(f"{method} {visit.path}: answered {status}")
            if b.leaks(body):
                problems.append(f"{method} {visit.path}: shows {b.leaks(body)}")
            difference = changed(before, await b_rows(a, b))
            if difference:
                problems.append(f"{method} {visit.path}: changed B's {difference}")
    assert walked >= len(routes(web))
    assert not problems, "\n".join(problems)


# --- Buttons and forms -------------------------------------------------------------------


# Buttons B's seed shows none of, and why.
UNSEEDED = {
    "event.native_interest": "a Discord calendar's own Interested, found by the workspace it"
    " came from (bot/events/mirror.py); the console has no calendar of its own",
}


@dataclass
class Press:
    """A button or menu choice on one of B's messages, sent as if pressed in A's channel
    (what a forged or replayed payload would do: the platforms only send a message's own
    buttons, so this wall is the core's second one)."""

    action: str
    value: str
    values: list[str]
    message: int

    def __str__(self) -> str:
        return f"{self.action} {self.value!r} {self.values or ''} on #{self.message}"


def presses(b: Tenant) -> list[Press]:
    found = []
    for number, shown_message in sorted(b.screen.messages.items()):
        post = shown_message.post
        for button in post.buttons:
            if button.action:
                found.append(Press(button.action, button.value, [], number))
        for select in post.selects:
            for option in select.options:
                found.append(Press(select.action, select.value, [option.value], number))
    return found


async def test_every_button_and_form_of_b_refuses_a_member_of_a(make_web, feed_server):
    web, a, b_console, b = await two_communities(make_web, feed_server)
    pressed = presses(b_console)
    forms = list(b_console.forms.values())
    registered = set(web.app._actions)
    seen = {p.action for p in pressed}
    # A new button must be seeded in B (tests/walls.py) to be walked.
    assert registered - seen <= set(UNSEEDED), registered - seen
    assert forms, "B has no open form to submit from A"
    problems: list[str] = []
    for moderator in (False, True):
        user = a.user("amos" if moderator else "ann")
        for press in pressed:
            before = await b_rows(a, b)
            replies = await web.app.act(
                Action(
                    press.action,
                    press.value,
                    user,
                    a.channel,
                    str(press.message),
                    moderator,
                    values=press.values,
                )  # fmt: skip
            )
            text = shown(replies)
            if not refused(replies):
                problems.append(f"{press} by {user.user}: not refused, answered {text[:160]!r}")
            if b.leaks(text):
                problems.append(f"{press} by {user.user}: shows {b.leaks(text)}")
            difference = changed(before, await b_rows(a, b))
            if difference:
                problems.append(f"{press} by {user.user}: changed B's {difference}")
        for form in forms:
            before = await b_rows(a, b)
            values = {f.id: "Alpha words" for f in form.fields}
            replies = await web.app.submit(Submission(form.id, form.value, values, user, a.channel, moderator))  # fmt: skip
            text = shown(replies)
            if b.leaks(text):
                problems.append(f"form {form.id} by {user.user}: shows {b.leaks(text)}")
            difference = changed(before, await b_rows(a, b))
            if difference:
                problems.append(f"form {form.id} by {user.user}: changed B's {difference}")
    assert not problems, "\n".join(problems)


# --- The walk aims true --------------------------------------------------------------------


async def test_the_ids_walked_are_bs_own_which_bs_moderator_reaches(make_web, feed_server):
    """A refusal proves a wall only if the id is one that exists: B's own moderator, with
    the same calls and pages, is answered."""
    web, _, b_console, b = await two_communities(make_web, feed_server)
    moderator = b_console.user("beatrix")
    with_ids = {c.path[0] for c in web.app.registry.commands.values() if c.option("id")}
    answered = set()
    for command in list(web.app.registry.commands.values()):
        for call in calls(command, b):
            if call.names_b.startswith("id="):
                replies = await web.app.invoke(
                    Invocation(command.path, moderator, b.channel, True, options=call.options)
                )
                if not refused(replies):
                    answered.add(command.path[0])
    assert answered == with_ids
    client = await signed_in(web, b_console, "beatrix")
    pages = {route for method, route in routes(web) if method == "GET" and "{id" in route}
    shown_pages = set()
    for route in pages:
        for visit in visits("GET", route, b, ""):
            async with client.get(visit.path, params=web_query(b)) as response:
                if response.status == 200:
                    shown_pages.add(route)
    assert pages and shown_pages == pages


async def test_b_s_exports_are_refused_and_a_s_calendar_shows_a_s_events_only(make_web, feed_server):  # fmt: skip
    web, a, b_console, b = await two_communities(make_web, feed_server)
    await a.say('@amos! /event add title="Alpha meetup" start="2026-12-10 18:00" tz=UTC')
    poll = b.ids["poll"][0]
    said = await a.say(f"@amos! /poll export {poll}", "@amos! /survey export community")
    assert f"There is no poll #{poll} here" in said and "has not been run here" in said
    assert not b.leaks(said)
    client = await signed_in(web, a)
    async with client.get(f"/polls/{poll}.csv") as response:
        assert response.status == 404 and not b.leaks(await response.text())
    theirs = calendar_path(await b_console.say("@bertram /event calendar"))
    ours = calendar_path(await a.say("@ann /event calendar"))
    async with client.get(ours) as response:
        calendar = await response.text()
    assert "Alpha meetup" in calendar and not b.leaks(calendar)
    async with web.client().get(theirs) as response:  # B's own link still reads B's
        assert "Bravo Conference" in await response.text()


async def test_a_following_the_feed_b_follows_takes_no_item_from_b(make_web, feed_server, clock):
    """A feed's source is shared by every channel that follows it: A subscribing to it while
    an item is new must not mark it seen for B, nor post it in A's channel B's way."""
    web, a, b_console, b = await two_communities(make_web, feed_server)
    feed_server.set("shared.xml", body=rss(entries(3), title="Shared feed"))
    add = Invocation(("feed", "add"), a.user("amos"), a.channel, True, options={"url": b.feed_url, "backlog": 0})  # fmt: skip
    said = shown(await web.app.invoke(add))
    assert "now follows" in said and not b.leaks(said)
    await poll_feeds(a, clock)
    screen = a.text_of_screen()
    assert screen.count("Bravo template item 3") == 1  # in B's channel, B's way, once
    assert "** item 3 **" not in screen  # A follows from now on
    feed_server.set("shared.xml", body=rss(entries(4), title="Shared feed"))
    await poll_feeds(a, clock)
    screen = a.text_of_screen()
    assert screen.count("Bravo template item 4") == 1 and screen.count("** item 4 **") == 1


async def poll_feeds(a: Tenant, clock: Any) -> None:
    clock.advance(timedelta(hours=2))
    await a.app.features["feeds"].poll_due()  # type: ignore[attr-defined]
    await a.settle()


def test_a_channel_member_or_role_of_another_workspace_is_refused_by_any_option():
    """What the walk found: a Discord option or the web console hands the core a made
    ChannelRef; one of another workspace is another community's, whatever the command."""
    here = ChannelRef(PLATFORM, A_WORKSPACE, "general")
    place = cmd.Place(here, "UTC", datetime(2026, 11, 23, tzinfo=UTC))
    theirs = {
        cmd.Kind.CHANNEL: ChannelRef(PLATFORM, B_WORKSPACE, "general"),
        cmd.Kind.USER: UserRef(PLATFORM, B_WORKSPACE, "bertram"),
        cmd.Kind.ROLE: RoleRef(PLATFORM, B_WORKSPACE, "bravo-team"),
    }
    for kind, value in theirs.items():
        command = cmd.Command(("x",), "x", handler=None, options=[cmd.Option("where", kind)])  # type: ignore[arg-type]  # fmt: skip
        with pytest.raises(UsageError) as error:
            cmd.coerce(command, {"where": value}, place)
        assert error.value.option == "where" and "not in this workspace" in error.value.message  # fmt: skip
        ours = replace(value, workspace=A_WORKSPACE)
        assert cmd.coerce(command, {"where": ours}, place) == {"where": ours}


async def test_the_dump_of_b_holds_one_of_everything_and_nothing_of_a(make_web, feed_server):
    """The before/after comparison is only as good as the dump: it must hold B's rows of
    every feature, and none of A's."""
    web, a, _, b = await two_communities(make_web, feed_server)
    await a.say('@amos! /poll create "Alpha?" "One" "Two"', "@amos! /justdoit schedule time=09:00")
    theirs = await b_rows(a, b)
    a_id = (await web.app.communities.of(a.channel)).id
    ours = await rows_of(web.app.db, a_id, A_WORKSPACE)
    seeded = {
        "feed_subscriptions", "feed_posts", "vote_runs", "vote_questions", "vote_answers",
        "events", "event_rsvps", "event_series", "event_series_rsvps", "justdoit_schedules",
        "justdoit_answers", "justdoit_suggestions", "digest_schedules", "event_calendar_feeds",
        "settings", "outbox", "communities",
    }  # fmt: skip
    assert seeded <= set(theirs), seeded - set(theirs)
    assert {"vote_runs", "justdoit_schedules"} <= set(ours)
    for table in theirs:
        assert not set(theirs[table]) & set(ours.get(table, [])), table
