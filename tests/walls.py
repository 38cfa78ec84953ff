"""Two communities on one bot, for the walls test (tests/test_walls.py).

Each community is a console workspace of its own, both shown on one screen: the console
transport posts every community's messages, and buttons are pressed by message number as
in the demo. A is `console:chapter_1` and B `console:chapter-1`: ids one character apart,
so that a LIKE pattern made of A's id unescaped (where `_` matches any character) would
take in B's rows too. `seed_b` gives B one of everything a community keeps, each named
with "Bravo" so that a leak of it shows in any answer; `rows_of` dumps what belongs to a
community, so that a test can see nothing of it changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from adapters.console import Console
from adapters.console.render import render
from bot.app import App
from bot.model import Action, ChannelRef, UserRef
from bot.store import Database
from tests.databases import foreign_keys

PLATFORM = "console"
A_WORKSPACE, B_WORKSPACE = "chapter_1", "chapter-1"
# What only B's data says: a reply or a page of A's that shows one of these has leaked.
B_MARKERS = ("bravo", B_WORKSPACE, "beatrix", "bertram")


class Tenant(Console):
    """The console of one workspace: lines are typed there and its members act there."""

    def __init__(self, app: App, workspace: str, out: list[str], shared: Console | None = None) -> None:  # fmt: skip
        super().__init__(app, write=out.append)
        self.workspace = workspace
        self.out = out
        if shared is not None:  # one screen for both: message numbers are the screen's
            self.screen, self.transport = shared.screen, shared.transport
            app.outbox.attach(shared.transport)

    @property
    def channel(self) -> ChannelRef:
        return ChannelRef(PLATFORM, self.workspace, "general")

    def user(self, name: str) -> UserRef:
        return UserRef(PLATFORM, self.workspace, name, name)

    def text_of_screen(self) -> str:
        return "\n".join(self.out)

    def message_id(self, words: str) -> int:
        """The poll or event id in the footer of the newest message that says `words`."""
        footer = self.screen.messages[self.message(words)].post.footer
        found = re.search(r"#(\d+)", footer)
        assert found, footer
        return int(found.group(1))

    async def say(self, *lines: str) -> str:
        start = len(self.out)
        for line in lines:
            await self.handle(line)
        return "\n".join(self.out[start:])

    def message(self, words: str) -> int:
        """The number of the newest message on the screen that says `words`."""
        for number in sorted(self.screen.messages, reverse=True):
            if words in render(self.screen.messages[number].post, number, ""):
                return number
        raise AssertionError(f"no message says {words!r}")


@dataclass
class Seeded:
    """B's ids, as a moderator of A would type them to reach B's things."""

    community_id: int
    channel: ChannelRef
    feed_url: str
    calendar_token: str
    ids: dict[str, list[int]] = field(default_factory=dict)  # per command group

    def leaks(self, text: str) -> list[str]:
        """What of B's `text` shows: its markers, or its calendar feed's secret token."""
        return leaks(text) + ([self.calendar_token] if self.calendar_token in text else [])

    def all_ids(self) -> list[int]:
        return sorted({i for found in self.ids.values() for i in found})


async def seed_b(b: Tenant, feed_url: str) -> Seeded:
    """Community B with one of everything: a feed subscription, a poll with votes, a survey
    run with an answer, an event with RSVPs and a series, a daily prompt with an answer and a
    suggestion, a weekly digest and a calendar feed."""
    mod, member = "@beatrix!", "@bertram"
    await b.say(
        f'{mod} /feed add {feed_url} backlog=1 include=item template="Bravo template {{title}}"',
        f'{mod} /poll create "Bravo question?" "Bravo yes" "Bravo no"',
    )
    await b.say(f"{member} click {b.message('Bravo question?')} Bravo yes")
    await b.say(f"{mod} /survey start community")
    await b.say(f"{member} click {b.message('Survey `community`')} Take the survey")
    await b.say(f"{member} click {b.message('such a thing as an ITSM community?')} Yes")
    await write_a_survey_answer(b, "bertram")
    await b.say(
        f'{mod} /event add title="Bravo Conference" start="2026-12-05 09:00" tz=Europe/London'
        ' location="Bravo hall" remind=1d capacity=5',
        f'{mod} /event add title="Bravo SIG" start="2026-12-07 18:00" tz=Europe/London'
        " repeat=monthly count=3",
    )
    await b.say(f"{member} click {b.message('Bravo hall')} Going")
    await b.say(f"{member} click {b.message('Repeats monthly')} Going to every date")
    await b.say(f'{mod} /poll create "Bravo closed?" "Bravo one" "Bravo two"')
    await b.say(f"{member} click {b.message('Bravo closed?')} Bravo two")
    await b.say(f"{mod} /poll close {b.message_id('Bravo closed?')}")
    await b.say(f"{mod} /justdoit schedule time=08:30", f"{mod} /justdoit today")
    await b.say(f"@berit click {b.message('Just do it')} I did it")  # her form stays open
    said = await b.say(
        f'{member} /justdoit answer "Bravo answer: I called the CIO"',
        f'{member} /justdoit suggest "Bravo suggestion: ask a customer what they need"',
        f'{member} /justdoit suggest "Bravo suggestion: thank a sponsor" competency=inspire',
        f"{mod} /digest schedule day=mon time=09:00",
        f"{mod} /justdoit settings answers=public",
        f"{member} /digest named",
        f"{member} /event calendar",
    )
    assert "refused" not in said.lower() and "went wrong" not in said, said
    token = re.findall(r"/calendar/([\w-]+)\.ics", said)[-1]
    db = b.app.db
    community_id = (await b.app.communities.of(b.channel)).id
    ids = {
        "feed": await _ids(db, "SELECT id FROM feed_subscriptions WHERE channel LIKE ?"),
        "poll": await _ids(db, "SELECT id FROM vote_runs WHERE channel LIKE ?"),
        "event": await _ids(db, "SELECT id FROM events WHERE channel LIKE ?"),
        "justdoit": await _ids(db, "SELECT id FROM justdoit_suggestions WHERE channel LIKE ?"),
    }
    ids["survey"] = ids["poll"]
    assert all(ids.values()), ids
    return Seeded(community_id, b.channel, feed_url, token, ids)


async def write_a_survey_answer(b: Tenant, name: str) -> None:
    """`itsm-focus` asks one question in words: its card is opened there (Skip to it), and
    its form is left open for `name`."""
    await b.say("@beatrix! /survey start itsm-focus")
    await b.say(f"@{name} click {b.message('Survey `itsm-focus`')} Take the survey")
    card = b.message("visitor from outer space? — 1/")
    run = b.message_id("Survey `itsm-focus`")
    go = Action("survey.go", f"{run}:next-step", b.user(name), b.channel, str(card))
    b.show_replies(name, await b.app.act(go), card)
    await b.say(f"@{name} click {card} Write answer")
    assert name in b.forms, "no survey form open"


async def _ids(db: Database, sql: str) -> list[int]:
    return [row[0] for row in await db.fetchall(sql, (f"%:{B_WORKSPACE}:%",))]


# --- What belongs to a community ---------------------------------------------------------


@dataclass(frozen=True)
class Link:
    """A foreign key: `columns` of a table name `parent`'s `parent_columns`."""

    columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str, ...]


async def schema(db: Database) -> dict[str, list[Link]]:
    """Every table of the bot and its foreign keys, from the backend's own catalogue."""
    tables: dict[str, list[Link]] = {}
    for name in await db.tables():
        tables[name] = [Link(*fk) for fk in await foreign_keys(db, name)]
    return tables


async def rows_of(db: Database, community_id: int, marker: str) -> dict[str, list[str]]:
    """Every row that belongs to one community, by table: its `community_id`, a value that
    names its workspace (channel and member keys hold it), or a foreign key to such a row."""
    tables = await schema(db)
    everything = {t: [dict(r) for r in await db.fetchall(f"SELECT * FROM {t}")] for t in tables}
    owned: dict[str, list[dict[str, Any]]] = {
        t: [r for r in rows if _names(r, community_id, marker, t)] for t, rows in everything.items()
    }
    grew = True
    while grew:  # follow foreign keys until nothing more belongs
        grew = False
        for table, links in tables.items():
            for row in everything[table]:
                if row not in owned[table] and any(
                    _points_into(row, link, owned) for link in links
                ):
                    owned[table].append(row)
                    grew = True
    return {t: sorted(repr(sorted(r.items())) for r in rows) for t, rows in owned.items() if rows}


def _names(row: dict[str, Any], community_id: int, marker: str, table: str) -> bool:
    if row.get("community_id") == community_id or (table == "communities" and row["id"] == community_id):  # fmt: skip
        return True
    return any(isinstance(v, str) and marker in v for v in row.values())


def _points_into(row: dict[str, Any], link: Link, owned: dict[str, list[dict[str, Any]]]) -> bool:
    key = tuple(row[c] for c in link.columns)
    return any(tuple(p[c] for c in link.parent_columns) == key for p in owned.get(link.parent, []))


def leaks(text: str) -> list[str]:
    """The markers of B's data that `text` shows."""
    lowered = text.lower()
    return [m for m in B_MARKERS if m in lowered]
