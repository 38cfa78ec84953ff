"""Hostile text in every field the bot echoes or stores, rendered for Slack and Discord.

Each case drives the real core (commands, buttons, forms, a calendar and a feed served on
127.0.0.1) with one hostile string in one field, collects every reply and every post the
outbox sent or edited, renders each with the Slack and the Discord renderer, and asserts
that nothing rendered holds a live mention or broadcast, a live timestamp, a link whose
label names another address, or a core marker. One failure names the field and the string.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import discord
import icalendar
import pytest

from adapters.discord.render import render as discord_render
from adapters.slack.render import render as slack_render
from adapters.slack.render import render_form as slack_form
from bot.app import App
from bot.events import Events
from bot.events.commands import FORM_ID as EVENT_FORM
from bot.feeds import Feeds
from bot.help import Help
from bot.model import (
    MARK_CLOSE,
    MARK_OPEN,
    Action,
    ChannelRef,
    Ephemeral,
    FormErrors,
    Invocation,
    OpenForm,
    Post,
    Public,
    Reply,
    Submission,
    UpdateMessage,
    UserRef,
    link,
    mention_tag,
    safe_url,
    time_tag,
)
from bot.polls import Polls, Surveys
from bot.prompts import JustDoIt
from bot.prompts.members import ANSWER_FORM
from tests.fakes import feed_server as fake_feeds
from tests.fakes.feed_server import Entry, FeedServer, rss

feed_server = fake_feeds.feed_server  # the fixture

CHANNEL = ChannelRef("slack", "T1", "C1")
MOD = UserRef("slack", "T1", "UMOD", "Mo")
ANA = UserRef("slack", "T1", "UANA", "Ana")
START = "2031-11-05 09:00"

# --- The hostile strings ---------------------------------------------------------------------

HOSTILE: dict[str, str] = {
    "slack-channel": "<!channel> look",
    "slack-here": "<!here> look",
    "everyone": "@everyone look",
    "here": "@here look",
    "slack-user": "<@U123> and <@U123|boss>",
    "discord-role": "<@&123> crew",
    "discord-user": "<@123> and <@!123>",
    "channels": "<#C1> and <#123>",
    "subteam": "<!subteam^S1|@mods> team",
    "discord-time": "<t:0:F> sharp",
    "slack-date": "<!date^0^{date}|x> sharp",
    "slack-link": "<https://evil.example|https://good.example>",
    "markdown-link": "[https://good.example](https://evil.example)",
    "masked-angle": "[https://good.example](<https://evil.example>)",
    "marker-mention": f"{MARK_OPEN}@:U123{MARK_CLOSE} hi",
    "marker-mention-key": f"{MARK_OPEN}@:slack:T1:U123{MARK_CLOSE} hi",
    "marker-time": f"{MARK_OPEN}t:0:F{MARK_CLOSE} sharp",
    "marker-half": f"{MARK_OPEN}t:0:F and {MARK_CLOSE}",
    "bold": "*bold* **bolder** _it_",
    "strike": "~strike~ ~~struck~~ ||spoiler||",
    "fence": "``` <@U123> ⟦t:0:F⟧ ```",
    "code-marker": f"`{MARK_OPEN}t:0:F{MARK_CLOSE}` and `<!here>`",
    "bold-link": "**[https://good.example](https://evil.example)** _<!here>_",
    "entities": "&lt;!channel&gt; &lt;@U123&gt;",
    "long": "x" * 2990 + f" <!channel> {MARK_OPEN}t:0:F{MARK_CLOSE} "
    "[https://good.example](https://evil.example)",
    "many-mentions": "<@U123> @here <t:0:F> " * 120,
}
# What a member may give as a web address: each passes the scheme check, each tries to
# break out of the link the bot builds around it.
HOSTILE_URLS: dict[str, str] = {
    "url-paren": "https://evil.example/)[https://good.example](https://evil.example",
    "url-space": "https://evil.example/ [https://good.example](https://evil.example)",
    "url-pipe": "https://evil.example/|https://good.example",
    "url-angle": "https://evil.example/><!channel>",
    "url-marker": f"https://evil.example/{MARK_OPEN}t:0:F{MARK_CLOSE}",
}


# --- Driving the core ------------------------------------------------------------------------


@dataclass
class Recorder:
    """The outbox's platform: keeps every post it was asked to send or edit."""

    platform: str = "slack"
    pace: float = 0.0
    posts: list[Post] = field(default_factory=list)

    async def send(self, channel: ChannelRef, post: Post, key: str) -> str:
        self.posts.append(post)
        return f"m{len(self.posts)}"

    async def edit(self, channel: ChannelRef, message_id: str, post: Post) -> None:
        self.posts.append(post)

    async def find(self, channel: ChannelRef, key: str, since: float = 0) -> str | None:
        return None


class Run:
    """One App, every reply it gave and every post it sent."""

    def __init__(self, app: App, clock: Any, server: FeedServer | None = None) -> None:
        self.app = app
        self.clock = clock
        self.server = server
        self.outbox = Recorder()
        app.outbox.attach(self.outbox)
        self.replies: list[Reply] = []

    async def settle(self) -> None:
        polls = self.app.features.get("poll")
        if polls is not None:
            await polls.refresher.flush()
        self.clock.advance(5)  # past the outbox's edit debounce
        await self.app.scheduler.run_due()
        await self.app.outbox.drain()

    async def _keep(self, replies: list[Reply]) -> list[Reply]:
        self.replies += replies
        await self.settle()
        return replies

    async def invoke(
        self, path: tuple[str, ...], user: UserRef = MOD, mod: bool = True, **options: Any
    ) -> list[Reply]:
        return await self._keep(
            await self.app.invoke(Invocation(path, user, CHANNEL, mod, options=options))
        )

    async def type(self, line: str, user: UserRef = MOD, mod: bool = True) -> list[Reply]:
        """A command as raw text, as Slack and the console give it."""
        top, _, rest = line.lstrip("/").partition(" ")
        return await self._keep(
            await self.app.invoke(Invocation((top,), user, CHANNEL, mod, text=rest))
        )

    async def act(
        self, action: str, value: str, user: UserRef = MOD, mod: bool = True, **kw: Any
    ) -> list[Reply]:
        found = Action(action, value, user, CHANNEL, is_moderator=mod, **kw)
        return await self._keep(await self.app.act(found))

    async def submit(
        self, form: str, value: str, values: dict[str, str], user: UserRef = MOD
    ) -> list[Reply]:
        sub = Submission(form, value, values, user, CHANNEL, True)
        return await self._keep(await self.app.submit(sub))

    def posts(self) -> list[Post]:
        shown = []
        for reply in self.replies:
            if isinstance(reply, Ephemeral | Public | UpdateMessage):
                shown.append(reply.post)
            elif isinstance(reply, FormErrors):
                shown.append(reply.post())
        return shown + self.outbox.posts

    def forms(self) -> list[Any]:
        return [r.form for r in self.replies if isinstance(r, OpenForm)]


Scenario = Callable[[Run, str], Awaitable[None]]
SCENARIOS: dict[str, tuple[list[type], dict[str, Any], Scenario]] = {}


def scenario(name: str, features: list[type], config: dict[str, Any] | None = None):
    def register(fn: Scenario) -> Scenario:
        SCENARIOS[name] = (features, config or {}, fn)
        return fn

    return register


# --- Polls and surveys -----------------------------------------------------------------------


@scenario("poll question", [Polls])
async def _(run: Run, text: str) -> None:
    await run.invoke(("poll", "create"), question=text, choices=["Yes", "No"])
    await run.act("poll.vote", "1:0", ANA, False)
    await run.invoke(("poll", "results"), id=1)
    await run.invoke(("poll", "close"), id=1)


@scenario("poll option", [Polls])
async def _(run: Run, text: str) -> None:
    await run.invoke(("poll", "create"), question="Which?", choices=[text, "Other"])
    await run.act("poll.vote", "1:0", ANA, False)
    await run.act("poll.vote", "1:1", ANA, False)  # "changed from <text>"
    await run.invoke(("poll", "close"), id=1)


@scenario("poll option in a select", [Polls])
async def _(run: Run, text: str) -> None:
    choices = [text, "two", "three", "four", "five", "six"]
    await run.invoke(("poll", "create"), question="Which?", choices=choices, multi=True)
    await run.act("poll.vote", "1", ANA, False, values=["0", "1"])


@scenario("survey text answer", [Polls, Surveys])
async def _(run: Run, text: str) -> None:
    await run.type("/survey start itsm-focus")
    await run.submit("survey.text", "1:next-step", {"answer": text}, ANA)
    await run.act("survey.go", "1:next-step", ANA, False)


@scenario("survey results by", [Polls, Surveys])
async def _(run: Run, text: str) -> None:
    await run.type("/survey start itsm-focus")
    await run.invoke(("survey", "results"), name="itsm-focus", by=text)


# --- Events ----------------------------------------------------------------------------------


async def _event_round(run: Run) -> None:
    """What members and moderators see of an event once it exists."""
    await run.act("event.rsvp", "1:going+notify", ANA, False, message_id="m1")
    await run.invoke(("event", "list"), ANA, False)
    await run.invoke(("event", "mine"), ANA, False)
    await run.invoke(("event", "rsvps"), id=1)
    await run.invoke(("event", "edit"), id=1, end="2031-11-05 17:00")
    await run.invoke(("event", "cancel"), id=1)
    await run.act("event.rsvp", "1:going", ANA, False, message_id="m1")


def _event_add(option: str) -> Scenario:
    async def add(run: Run, text: str) -> None:
        values = {"title": "Conference", "start": START, "tz": "Europe/London", option: text}
        await run.invoke(("event", "add"), **values)
        await _event_round(run)

    return add


for _option in ("title", "location", "description", "organiser", "url"):
    scenario(f"/event add {_option}", [Events])(_event_add(_option))


@scenario("/event edit title", [Events])
async def _(run: Run, text: str) -> None:
    await run.invoke(("event", "add"), title="Conference", start=START)
    await run.invoke(("event", "edit"), id=1, title=text)
    await _event_round(run)


def _event_form(name: str) -> Scenario:
    async def submit(run: Run, text: str) -> None:
        await run.invoke(("event", "add"))
        values = {"title": "Conference", "start": START, "tz": "", name: text}
        await run.submit(EVENT_FORM, "", values)
        await _event_round(run)

    return submit


for _name in ("title", "location", "description", "tz", "start"):
    scenario(f"event form {_name}", [Events])(_event_form(_name))


def _calendar(**fields: str) -> bytes:
    cal = icalendar.Calendar()
    cal.add("prodid", "-//hostile//test//EN")
    cal.add("version", "2.0")
    future = datetime(2031, 11, 5, 9, 0, tzinfo=UTC)
    one = icalendar.Event()
    one.add("uid", "one@hostile")
    one.add("dtstart", future)
    one.add("summary", fields.get("summary", "Conference"))
    for name in ("location", "description", "url", "contact"):
        if name in fields:
            one.add(name, fields[name])
    cal.add_component(one)
    if "summary" in fields:
        # the same title, too long to keep (the report names it) and repeating (likewise)
        too_long = icalendar.Event()
        too_long.add("uid", "two@hostile")
        too_long.add("dtstart", future)
        too_long.add("summary", fields["summary"] + " " + "y" * 250)
        cal.add_component(too_long)
        series = icalendar.Event()
        series.add("uid", "three@hostile")
        series.add("dtstart", datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
        series.add("rrule", {"freq": "daily"})
        series.add("summary", fields["summary"])
        cal.add_component(series)
    return cal.to_ical()


IMPORT_CONFIG = {"event": {"import_allow_private": True, "import_max_occurrences": 2}}


def _event_import(name: str) -> Scenario:
    async def imported(run: Run, text: str) -> None:
        assert run.server is not None
        url = run.server.set(
            "cal.ics", body=_calendar(**{name: text}), content_type="text/calendar"
        )
        await run.invoke(("event", "import"), url=url)
        await _event_round(run)

    return imported


for _name in ("summary", "location", "description", "url", "contact"):
    scenario(f"/event import {_name}", [Events], IMPORT_CONFIG)(_event_import(_name))


@scenario("/event import unreadable calendar", [Events], IMPORT_CONFIG)
async def _(run: Run, text: str) -> None:
    assert run.server is not None
    body = f"BEGIN:VCALENDAR\r\n{text}\r\nEND:VEVENT\r\n".encode()
    url = run.server.set("bad.ics", body=body, content_type="text/calendar")
    await run.invoke(("event", "import"), url=url)


# --- The daily prompt ------------------------------------------------------------------------


@scenario("justdoit answer", [JustDoIt])
async def _(run: Run, text: str) -> None:
    await run.invoke(("justdoit", "answer"), ANA, False, what=text)  # no prompt yet
    await run.invoke(("justdoit", "today"))
    await run.invoke(("justdoit", "answer"), ANA, False, what=text)
    await run.invoke(("justdoit", "stats"), ANA, False)


@scenario("justdoit answer form", [JustDoIt])
async def _(run: Run, text: str) -> None:
    await run.invoke(("justdoit", "today"))
    day = run.outbox.posts[-1].buttons[0].value
    await run.act("justdoit.did", day, ANA, False)
    await run.submit(ANSWER_FORM, day, {"what": text, "competency": "inspire"}, ANA)
    await run.act("justdoit.did", day, ANA, False)  # the form again, holding the answer


@scenario("justdoit member name", [JustDoIt])
async def _(run: Run, text: str) -> None:
    member = UserRef("slack", "T1", "UANA", text)
    await run.invoke(("justdoit", "today"))
    await run.invoke(("justdoit", "answer"), member, False, what="Thanked the desk")
    await run.invoke(("justdoit", "stats"), member, False)
    await run.invoke(("justdoit", "suggest"), member, False, prompt="Ask one customer how it went")
    await run.act("justdoit.approve_as", "1", MOD, True, values=["inspire"])


@scenario("justdoit suggestion", [JustDoIt])
async def _(run: Run, text: str) -> None:
    await run.invoke(("justdoit", "suggest"), ANA, False, prompt=text)
    await run.invoke(("justdoit", "suggest"), ANA, False, prompt=text + " again, twice")
    await run.act("justdoit.approve_as", "1", MOD, True, values=["inspire"])
    await run.act("justdoit.reject", "2", MOD, True)
    await run.act("justdoit.reject", "2", MOD, True)  # already decided


@scenario("/justdoit schedule options", [JustDoIt])
async def _(run: Run, text: str) -> None:
    await run.invoke(("justdoit", "schedule"), time=text)
    await run.invoke(("justdoit", "schedule"), time="08:30", days=text)
    await run.invoke(("justdoit", "skip"), dates=[text])


# --- Feeds -----------------------------------------------------------------------------------

FEED_CONFIG = {"feeds": {"allow_private": True, "timeout": 2, "per_channel_cap": 50}}


def _feed(**fields: str) -> bytes:
    entry = Entry(
        title=fields.get("title", "An article"),
        guid="a-1",
        link=fields.get("link", "https://example.org/a"),
        summary=fields.get("summary", "What it says"),
        author=fields.get("author", "Someone"),
    )
    return rss([entry], title=fields.get("feed", "A feed"))


def _feed_item(name: str) -> Scenario:
    async def added(run: Run, text: str) -> None:
        assert run.server is not None
        url = run.server.set("f.xml", body=_feed(**{name: text}))
        await run.invoke(("feed", "preview"), url=url)
        await run.invoke(("feed", "add"), url=url, template="{title}: {summary} {link} {author}")
        await run.invoke(("feed", "add"), url=url.replace("f.xml", "f.xml?again"))
        await run.invoke(("feed", "list"))
        await run.invoke(("feed", "remove"), id=1)

    return added


for _name in ("title", "summary", "author", "link", "feed"):
    scenario(f"feed item {_name}", [Feeds], FEED_CONFIG)(_feed_item(_name))


def _feed_option(name: str, wrap: str = "{}") -> Scenario:
    async def added(run: Run, text: str) -> None:
        assert run.server is not None
        url = run.server.set("f.xml", body=_feed())
        await run.invoke(("feed", "add"), url=url, **{name: wrap.format(text)})
        await run.invoke(("feed", "list"))

    return added


scenario("/feed add template", [Feeds], FEED_CONFIG)(_feed_option("template"))
scenario("/feed add include", [Feeds], FEED_CONFIG)(_feed_option("include"))
scenario("/feed add exclude", [Feeds], FEED_CONFIG)(_feed_option("exclude"))
scenario("/feed add include /regex/", [Feeds], FEED_CONFIG)(_feed_option("include", "/({}/"))


@scenario("/feed add url", [Feeds], FEED_CONFIG)
async def _(run: Run, text: str) -> None:
    await run.invoke(("feed", "add"), url=text)
    await run.invoke(("feed", "preview"), url=text)
    assert run.server is not None
    await run.invoke(("feed", "add"), url=run.server.url("missing.xml?" + text))


# --- Usage errors that quote what was typed --------------------------------------------------


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@scenario("usage errors (typed)", [Help, Polls, Events, JustDoIt])
async def _(run: Run, text: str) -> None:
    quoted = _quoted(text)
    await run.type(f"/help {quoted}")
    await run.type(f"/event add title=Conference start={START!r} remind={quoted}")
    await run.type(f"/event add title=Conference start={START!r} url={quoted}")
    await run.type(f"/event import {quoted}")
    await run.type(f"/justdoit skip {quoted}")


@scenario("usage errors (options)", [Help, Polls, Events])
async def _(run: Run, text: str) -> None:
    await run.invoke(("help",), topic=[text])
    await run.invoke(("event", "add"), title="Conference", start=START, remind=text)
    await run.invoke(("event", "add"), title="Conference", start=START, url=text)
    await run.invoke(("event", "add"), title="Conference", start=START)
    await run.invoke(("event", "edit"), id=1, start=text)
    await run.invoke(("event", "edit"), id=1, end=text)
    await run.invoke(("event", "import"), url=text)


@scenario("usage errors (command parser)", [Help, Polls, Events, JustDoIt])
async def _(run: Run, text: str) -> None:
    """Errors the shared parser and time reader raise, quoting what was typed."""
    quoted = _quoted(text)
    await run.type(f"/poll {text}")
    await run.type(f'/poll create "Which?" "Yes" "No" max={quoted}')
    await run.type(f"/poll results {quoted}")
    await run.type(f"/event add title=Conference start={quoted}")
    await run.type(f"/event add title=Conference start={START!r} tz={quoted}")
    await run.type(f"/event add title=Conference start={START!r} {quoted}")
    await run.invoke(("event", "add"), title="Conference", start=START, tz=text)
    await run.invoke(("poll", "create"), question="Which?", choices=["a", "b"], max=text)
    await run.invoke(("justdoit", "schedule"), time="08:30", tz=text)


# Code spans keep quoted input literal, but these parser and time-reader messages quote it
# without inert() (bot/commands.py, bot/timeutil.py), so input with its own backticks can
# close the span early and put a marker or a link outside it.
BREAKOUT = {
    "code-breakout": f"a` {MARK_OPEN}t:0:F{MARK_CLOSE} [https://good.example](https://evil.example) `b"
}


# --- What counts as live ---------------------------------------------------------------------

_SLACK_TAG = re.compile(r"<(?:[@#]|!(?!date\^[1-9]))")  # a mention, broadcast or faked date
_SLACK_LINK = re.compile(r"<(https?://[^|>]*)\|([^>]*)>")
_DISCORD_TAG = re.compile(r"<(?:@[!&]?\d|#\d|t:0\b|t:-|/\w)")  # mentions, faked dates, commands
_DISCORD_LINK = re.compile(r"\[([^\[\]]*)\]\(\s*<?(https?://[^\s)>]+)>?")
_BROADCAST = re.compile(r"@(?:everyone|here|channel)\b", re.IGNORECASE)
_ADDRESS = re.compile(r"(?:[a-z][a-z0-9+.-]*://|www\.)([^\s/|<>()\[\]\\?#:]+)", re.IGNORECASE)


def _host(text: str) -> str:
    return text.lower().removeprefix("www.")


def disguised(label: str, url: str) -> bool:
    """A link whose label names an address other than the one it opens."""
    target = _host(urlsplit(url).hostname or "")
    return any(_host(host) != target for host in _ADDRESS.findall(label))


def _strings(value: Any, key: str = "") -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(key, value)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(v, k)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v, key)]
    return []


def slack_problems(post: Post) -> list[str]:
    message = slack_render(post)
    found = []
    for key, text in _strings(message):
        if key in ("action_id", "block_id", "value", "image_url", "url", "type"):
            continue
        for bad in (_SLACK_TAG, _BROADCAST):
            found += [f"slack {key}: live {m.group(0)!r} in {text[:160]!r}" for m in bad.finditer(text)]  # fmt: skip
        if MARK_OPEN in text or MARK_CLOSE in text:
            found.append(f"slack {key}: a marker reached the platform: {text[:160]!r}")
        for url, label in _SLACK_LINK.findall(text):
            if disguised(label, url):
                found.append(f"slack {key}: link labelled {label!r} opens {url!r}")
    return found


def _discord_texts(post: Post) -> tuple[list[tuple[str, str]], discord.AllowedMentions, Any]:
    rendered = discord_render(post)
    texts = [("content", rendered.content)]
    embed = rendered.embeds[0].to_dict() if rendered.embeds else {}
    for key in ("title", "description"):
        texts.append((key, embed.get(key, "")))
    texts.append(("footer", embed.get("footer", {}).get("text", "")))
    for f in embed.get("fields", []):
        texts += [("field name", f["name"]), ("field value", f["value"])]
    if rendered.view is not None:
        for item in rendered.view.children:
            inner = getattr(item, "item", item)
            texts.append(("label", getattr(inner, "label", None) or ""))
            texts.append(("placeholder", getattr(inner, "placeholder", None) or ""))
            for option in getattr(inner, "options", []):
                texts += [("option", option.label), ("option", option.description or "")]
    return texts, rendered.allowed_mentions, embed


def discord_problems(post: Post) -> list[str]:
    texts, allowed, embed = _discord_texts(post)
    found = []
    if allowed.to_dict() != {"parse": []}:
        found.append(f"discord: allowed mentions {allowed.to_dict()}")
    for key, text in texts:
        for bad in (_DISCORD_TAG, _BROADCAST):
            found += [f"discord {key}: live {m.group(0)!r} in {text[:160]!r}" for m in bad.finditer(text)]  # fmt: skip
        if MARK_OPEN in text or MARK_CLOSE in text:
            found.append(f"discord {key}: a marker reached the platform: {text[:160]!r}")
        if key in ("description", "field value", "content"):
            for label, url in _DISCORD_LINK.findall(text):
                if disguised(label, url):
                    found.append(f"discord {key}: link labelled {label!r} opens {url!r}")
    if embed.get("url") and disguised(embed.get("title", ""), embed["url"]):
        found.append(f"discord title {embed['title']!r} opens {embed['url']!r}")
    return found


def form_problems(run: Run) -> list[str]:
    found = []
    for form in run.forms():
        for key, text in _strings(slack_form(form)):
            if key == "text" and (
                _SLACK_TAG.search(text) or MARK_OPEN in text or MARK_CLOSE in text
            ):
                found.append(f"slack form {key}: {text[:160]!r}")
    return found


# --- The cases -------------------------------------------------------------------------------


def _cases() -> list[Any]:
    cases = []
    for name in SCENARIOS:
        strings = {**HOSTILE, **BREAKOUT}
        if "url" in name or "link" in name:
            strings.update(HOSTILE_URLS)
        for key, text in strings.items():
            cases.append(pytest.param(name, text, id=f"{name}-{key}"))
    return cases


@pytest.mark.parametrize(("where", "text"), _cases())
async def test_hostile_text_is_shown_inert(
    make_app, clock, feed_server, where: str, text: str
) -> None:
    features, config, drive = SCENARIOS[where]
    app = await make_app(features=features, config=config)
    run = Run(app, clock, feed_server)
    await drive(run, text)
    posts = run.posts()
    assert posts, f"{where}: the scenario showed nothing"
    problems = form_problems(run)
    for post in posts:
        problems += slack_problems(post) + discord_problems(post)
    assert not problems, f"{where} holding {text[:80]!r}:\n" + "\n".join(dict.fromkeys(problems))


def test_the_checks_see_what_they_look_for() -> None:
    """The detectors themselves: each live thing is caught, and what is inert is not."""
    assert disguised("https://good.example", "https://evil.example")
    assert disguised("see www.good.example", "https://evil.example/a")
    assert not disguised("Booking & further details", "https://evil.example")
    assert not disguised("see https://www.example.org/a", "https://example.org/b")
    assert _SLACK_LINK.findall("*<https://evil.example|https://good.example>*") == [
        ("https://evil.example", "https://good.example")
    ]
    assert _DISCORD_LINK.findall("[https://good.example](<https://evil.example>)") == [
        ("https://good.example", "https://evil.example")
    ]
    assert not _DISCORD_LINK.search("[https://good.example]\u200b(https://evil.example)")
    for live in ("<!here>", "<!channel>", "<@U1>", "<#C1|x>", "<!date^0^{date}|x>"):
        assert _SLACK_TAG.search(live), live
    assert not _SLACK_TAG.search("&lt;!here&gt; <!date^1924938000^{time}|x> <https://a.example>")
    for live in ("<t:0:F>", "<@123>", "<@!123>", "<@&123>", "<#123>", "</poll:1>"):
        assert _DISCORD_TAG.search(live), live
    assert not _DISCORD_TAG.search("<\u200bt:0:F> <\u200b@123> <t:1924938000:F>")
    assert _BROADCAST.search("@here") and not _BROADCAST.search("@\u200beveryone")


def test_the_renderers_rules_for_what_the_core_wrote() -> None:
    """Code is literal, a link naming another address shows it, a mention needs the post's
    leave, and raw platform syntax is text: each rule on both renderers."""
    moment = datetime(2031, 11, 5, 9, 0, tzinfo=UTC)
    unix = int(moment.timestamp())
    text = (
        f"`{time_tag(moment)}` at {time_tag(moment)} by {mention_tag(ANA)} · "
        "[https://good.example](https://evil.example) · [the docs](https://example.org/d) · "
        "<t:0:F> </poll:1> <id:customize>"
    )
    post = Post(title="https://good.example", url="https://evil.example/x", text=text)
    slack = slack_render(post)["blocks"]
    assert slack[0]["text"]["text"] == "*https://good.example*\n<https://evil.example/x>"
    body = slack[1]["text"]["text"]
    assert body.startswith(f"`[t:{unix}:f]` at <!date^{unix}^")
    assert "by @UANA" in body and "<@UANA>" not in body
    assert "https://good.example (https://evil.example)" in body
    assert "<https://example.org/d|the docs>" in body
    assert "&lt;t:0:F&gt;" in body
    listed = slack_render(Post(text=text, mentions=["UANA"]))["blocks"][0]["text"]["text"]
    assert "by <@UANA>" in listed

    embed = discord_render(post).embeds[0].to_dict()
    assert "url" not in embed and embed["title"] == "https://good.example"
    description = embed["description"]
    assert description.startswith("<https://evil.example/x>\n")
    assert f"`[t:{unix}:f]` at <t:{unix}:f>" in description
    assert "https://good.example (https://evil.example)" in description
    assert "[the docs](https://example.org/d)" in description
    for raw in ("<t:0:F>", "</poll:1>", "<id:customize>"):
        assert raw not in description and raw.replace("<", "<\u200b") in description


def test_a_link_the_core_builds_opens_what_its_address_says() -> None:
    url = HOSTILE_URLS["url-paren"]
    built = link("Booking [and] more", url)
    assert built == (
        "[Booking (and) more](https://evil.example/%29%5Bhttps://good.example%5D%28https://evil.example)"
    )
    field = Post(text=built)
    assert _SLACK_LINK.findall(slack_render(field)["blocks"][0]["text"]["text"]) == [
        (safe_url(url), "Booking (and) more")
    ]
    assert safe_url(HOSTILE_URLS["url-space"]).count(" ") == 0
    assert MARK_OPEN not in safe_url(HOSTILE_URLS["url-marker"])
