"""What a first-time moderator trips over (issue 15), on the console, Slack and Discord.

1. Help and refusals name the surface's own help command (Slack's is /itsm).
2. `/help COMMAND` says what each option takes, and keeps the 🔒 marks.
3. Replies name channels the platform's way and workspaces in words.
4. An export's reply says where the file went.
5. A survey answer replaces the member's private card instead of adding one.
6. The console shows each time once.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import discord
import pytest

from adapters.console import Console
from adapters.discord import create as create_discord
from adapters.slack import create as create_slack
from bot import commands as cmd
from bot.events import Events
from bot.help import Help, detail
from bot.polls import Polls, Surveys
from bot.prompts import JustDoIt
from tests.conftest import ConsoleRun
from tests.fakes.fake_discord import (  # noqa: F401
    FakeDiscord,
    discord_endpoints_fixture,
    fake_discord_fixture,
)
from tests.fakes.fake_slack import (
    FakeSlack,
    block_actions_payload,
    interaction_body,
    signed_headers,
    slash_command_body,
    view_submission_payload,
)
from tests.fakes.fake_slack import fake_slack as fake_slack_fixture  # noqa: F401

FEATURES = [Help, Polls, Surveys, Events, JustDoIt]
SECRET = "test-signing-secret"
CHANNEL = "C111"  # a channel id shaped like Slack's, so it renders as a mention
MANAGE_GUILD = str(discord.Permissions(manage_guild=True).value)
WAIT = 5.0


def shown(data: object) -> str:
    return json.dumps(data, ensure_ascii=False)


# --------------------------------------------------------------------------- Slack


def controls(message: dict) -> list[dict]:
    return [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


class Slack:
    def __init__(self, app, surface, fake: FakeSlack, session: aiohttp.ClientSession) -> None:
        self.app, self.surface, self.fake, self.session = app, surface, fake, session

    async def post(self, body: str) -> None:
        headers = signed_headers(SECRET, body, timestamp=int(time.time()))
        url = f"http://127.0.0.1:{self.surface.port}/slack/events"
        request = self.session.post(url, data=body.encode(), headers=headers)
        async with await asyncio.wait_for(request, timeout=3) as response:
            assert response.status == 200

    async def command(self, top: str, text: str, user: str = "U1") -> dict:
        before = len(self.fake.responses)
        url = self.fake.response_url()
        body = slash_command_body(f"/{top}", text, user, channel_id=CHANNEL, response_url=url)
        await self.post(body)
        return (await self.fake.wait_for_response(before + 1))[-1]

    async def click(
        self, element: dict, user: str, ts: str, ephemeral: bool = False
    ) -> dict[str, Any]:
        before = len(self.fake.responses)
        payload = block_actions_payload(
            element["action_id"], element["value"], user_id=user, channel_id=CHANNEL,
            message_ts=ts, response_url=self.fake.response_url(),
        )  # fmt: skip
        payload["container"]["is_ephemeral"] = ephemeral
        await self.post(interaction_body(payload))
        return (await self.fake.wait_for_response(before + 1))[-1]

    async def click_opening(self, element: dict, user: str) -> None:
        """Click a button that opens a form: answered by views.open, not a response."""
        before = len(self.fake.calls_to("views.open"))
        payload = block_actions_payload(
            element["action_id"], element["value"], user_id=user, channel_id=CHANNEL,
            message_ts="1700000001.000100", response_url=self.fake.response_url(),
        )  # fmt: skip
        payload["container"]["is_ephemeral"] = True
        await self.post(interaction_body(payload))
        await self.fake.wait_for_call("views.open", before + 1)

    async def settle(self) -> None:
        await asyncio.wait_for(self.surface.settled(), timeout=WAIT)


@pytest.fixture
async def slack(make_app, fake_slack: FakeSlack) -> AsyncIterator[Slack]:
    config = {"slack": {"mode": "http", "host": "127.0.0.1", "port": 0}}
    app = await make_app(FEATURES, config=config)
    env = {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_API_URL": fake_slack.base_url,
        "SLACK_SIGNING_SECRET": SECRET,
    }
    surface = create_slack(app, app.config.section("slack"), env)
    fake_slack.users["UMOD"] = {"is_admin": True}
    await surface.start()
    async with aiohttp.ClientSession() as session:
        try:
            yield Slack(app, surface, fake_slack, session)
        finally:
            await surface.stop()


# --------------------------------------------------------------------------- Discord


@asynccontextmanager
async def discord_bot(make_app: Any, fake: FakeDiscord) -> AsyncIterator[Any]:
    config = {"discord": {"guild_id": fake.guild_id, "pace": 0}}
    app = await make_app(FEATURES, config=config)
    env = {
        "DISCORD_TOKEN": "fake-token",
        "DISCORD_API_URL": fake.api_base,
        "DISCORD_GATEWAY_URL": fake.gateway_url,
    }
    surface = create_discord(app, app.config.section("discord"), env, guild_ready_timeout=0.1)
    await surface.login()
    try:
        yield app, surface
    finally:
        await surface.stop()


async def interact(fake: FakeDiscord, surface: Any, payload: dict[str, Any]) -> dict[str, Any]:
    surface.client._connection.parse_interaction_create(payload)
    return await fake.wait_interaction_response(payload["id"], timeout=WAIT)


def said(body: dict[str, Any]) -> str:
    data = body.get("data") or {}
    parts = [data.get("content") or ""]
    for embed in data.get("embeds") or []:
        parts += [embed.get("title", ""), embed.get("description", "")]
        parts += [f"{f['name']}: {f['value']}" for f in embed.get("fields", [])]
    return "\n".join(parts)


def sub(verb: str, /, **options: Any) -> list[dict[str, Any]]:
    """A subcommand with string/integer options, as Discord sends it."""
    typed = [
        {"name": k, "type": 4 if isinstance(v, int) else 3, "value": v} for k, v in options.items()
    ]
    return [{"type": 1, "name": verb, "options": typed}]


# --------------------------------------------------------------------------- 1. help's name


async def test_slack_names_its_own_help_command_everywhere(slack: Slack) -> None:
    overview = await slack.command("itsm", "")
    assert "/itsm COMMAND" in shown(overview) and "/help" not in shown(overview)

    refused = await slack.command("survey", "start community", user="U5")
    assert "for moderators only" in shown(refused)
    assert "type /itsm to see" in shown(refused) and "/help" not in shown(refused)

    wrong = await slack.command("poll", "frobnicate")
    assert "Type /itsm poll for more" in shown(wrong) and "/help" not in shown(wrong)

    usage = await slack.command("poll", 'create "Q?" A B max=zero')
    assert "/itsm poll create" in shown(usage) and "/help" not in shown(usage)

    own = await slack.command("itsm", "help")
    assert "/itsm [topic...]" in shown(own) and "/help" not in shown(own)


async def test_discord_names_help(fake_discord: FakeDiscord, make_app: Any) -> None:
    fake = fake_discord
    async with discord_bot(make_app, fake) as (_, surface):
        refused = await interact(
            fake, surface, fake.slash_payload("survey", sub("start", name="community"))
        )
        assert "type /help to see" in said(refused) and "/itsm" not in said(refused)
        overview = await interact(fake, surface, fake.slash_payload("help"))
        assert "/help COMMAND" in said(overview)


async def test_the_console_names_help(console: ConsoleRun) -> None:
    out = await console.say("/survey start community", "/poll frobnicate")
    assert "type /help to see" in out and "Type /help poll for more" in out


# --------------------------------------------------------------------------- 2. options


async def test_help_for_a_command_says_what_each_option_takes(console: ConsoleRun) -> None:
    out = await console.say("@mod! /help poll create")
    assert "a yes/no switch" in out
    assert "a whole number, 1 or more" in out
    assert "next tuesday 9am" in out and "2d" in out  # closes: a date, a phrase or from now
    assert "separated by |" in out  # choices: a list

    out = await console.say("@mod! /help event add")
    assert "a channel, like #general" in out
    assert "durations before the start, separated by commas" in out
    assert "a time zone name, like Europe/London or UTC" in out

    out = await console.say("@mod! /help feed add")
    assert "a whole number from 0 to 50" in out  # backlog
    assert "/regex/" in out

    out = await console.say("@mod! /help survey")
    assert re.search(r"/survey start .*🔒", out) and re.search(r"/survey export .*🔒", out)
    out = await console.say("@mod! /help survey start")
    assert "🔒" in out and "one of: " in out


def test_an_option_may_say_its_form_itself() -> None:
    registry = cmd.Registry()

    async def handler(ctx: Any, **_: Any) -> None:
        return None

    words = cmd.Option("include", description="only these", form=cmd.WORDS_OR_REGEX)
    registry.add(cmd.Command(("thing", "add"), "Add a thing", handler, [words], moderator=True))
    post = detail(registry, ["thing", "add"], True, "/itsm")
    (field, *_) = post.fields
    assert 'commas between them meaning "or"' in field.value and "/regex/" in field.value
    assert "🔒" in post.title


# --------------------------------------------------------------------------- 3. names


async def test_slack_replies_name_channels_and_the_workspace(slack: Slack) -> None:
    scheduled = await slack.command("justdoit", "schedule time=08:30", user="UMOD")
    assert "<#C111>" in scheduled["text"] and "#C111 " not in scheduled["text"]
    added = await slack.command(
        "event", 'add title="BRM SIG" start="2026-12-07 15:00" tz=UTC', user="UMOD"
    )
    assert "Announced in <#C111>" in added["text"]
    exported = await slack.command("justdoit", "export", user="UMOD")
    assert "from this Slack workspace" in shown(exported) and "slack:" not in shown(exported)
    elsewhere = await slack.command("justdoit", "pause channel=<#C999|random>", user="UMOD")
    assert "That channel has no daily prompt schedule" in shown(elsewhere)
    assert "C999" not in shown(elsewhere)


async def test_discord_replies_name_channels(fake_discord: FakeDiscord, make_app: Any) -> None:
    fake = fake_discord
    async with discord_bot(make_app, fake) as (_, surface):
        scheduled = await interact(
            fake,
            surface,
            fake.slash_payload("justdoit", sub("schedule", time="08:30"), permissions=MANAGE_GUILD),
        )
        assert f"<#{fake.channel_id}>" in said(scheduled)
        assert f"#{fake.channel_id} " not in said(scheduled).replace(f"<#{fake.channel_id}>", "")


# --------------------------------------------------------------------------- 4. files


async def test_slack_says_the_export_went_to_the_direct_messages(slack: Slack) -> None:
    await slack.command("survey", "start community", user="UMOD")
    answer = await slack.command("survey", "export community", user="UMOD")
    await slack.settle()
    assert "sent to you in a direct message" in shown(answer)
    (csv_file,) = [f for f in slack.fake.uploads.values() if f.completed]
    assert csv_file.channel_id == "DUMOD"


async def test_discord_says_the_export_is_attached(fake_discord: FakeDiscord, make_app) -> None:
    fake = fake_discord
    async with discord_bot(make_app, fake) as (_, surface):
        await interact(
            fake,
            surface,
            fake.slash_payload("poll", sub("create", question="Which?", choices="A | B")),
        )
        body = await interact(fake, surface, fake.slash_payload("poll", sub("export", id=1)))
        assert body["data"]["flags"] & 64
        assert [a["filename"] for a in body["data"]["attachments"]] == ["poll-1.csv"]
        assert "attached to this message" in said(body)


async def test_the_console_saves_an_export_and_says_where(make_app, tmp_path: Path) -> None:
    app = await make_app(FEATURES)
    out: list[str] = []
    console = ConsoleRun(Console(app, write=out.append, files=tmp_path / "files"), out)
    said_text = await console.say('@mod! /poll create "Which?" A B', "@mod! /poll export 1")
    (saved,) = re.findall(r"saved: (\S+)", said_text)
    assert Path(saved).read_bytes().startswith(b"section,option")


# --------------------------------------------------------------------------- 5. one card


async def test_a_survey_answer_replaces_the_card_on_the_console(console: ConsoleRun) -> None:
    await console.say("@mod! /survey start community")
    out = await console.say("@ann click 2 Take the survey")
    assert "#3 [only ann sees this]" in out and "1/5" in out
    out = await console.say("@ann click 3 Yes")
    assert "#3 (edited) [only ann sees this]" in out and "2/5" in out
    out = await console.say("@ann click 3 Skip", "@ann click 3 Back")
    assert "#4" not in console.text and "2/5" in out


async def test_a_survey_answer_replaces_the_card_on_slack(slack: Slack) -> None:
    await slack.command("survey", "start community", user="UMOD")
    await slack.app.outbox.drain()
    (invite,) = slack.fake.calls_to("chat.postMessage")
    ts = slack.fake.messages[CHANNEL][0]["ts"]
    first = await slack.click(controls(invite)[0], "U5", ts)
    assert first["response_type"] == "ephemeral" and "1/5" in shown(first)
    yes = next(e for e in controls(first) if e.get("value") == "1:exists:0")
    second = await slack.click(yes, "U5", "1700000001.000100", ephemeral=True)
    assert second["replace_original"] is True and "2/5" in shown(second)
    await slack.settle()
    assert slack.fake.calls_to("chat.update") == []  # the public invite is left alone
    assert (await slack.app.features["survey"].store.tallies(1))["exists"] == {0: 1}


async def test_a_survey_answer_replaces_the_card_on_discord(
    fake_discord: FakeDiscord, make_app: Any
) -> None:
    fake = fake_discord
    async with discord_bot(make_app, fake) as (app, surface):
        await interact(
            fake,
            surface,
            fake.slash_payload("survey", sub("start", name="community"), permissions=MANAGE_GUILD),
        )
        await app.outbox.drain()
        invite = int(await app.outbox.message_id(
            f"survey:1:discord:{fake.guild_id}:{fake.channel_id}"
        ))  # fmt: skip
        take = await interact(fake, surface, fake.component_payload("itsm:survey.take:1", invite))
        assert take["type"] == 4 and take["data"]["flags"] & 64 and "1/5" in said(take)
        card = next(
            mid
            for mid, m in fake.messages.items()
            if m.get("embeds") and "1/5" in m["embeds"][0].get("title", "")
        )
        answered = await interact(
            fake, surface, fake.component_payload("itsm:survey.answer:1:exists:0", card, user_id=77)
        )
        assert answered["type"] == 7 and "2/5" in said(answered)
        assert "2/5" in fake.messages[card]["embeds"][0]["title"]


SKIPS_TO_WRITTEN = 9  # itsm-focus: question 10 of 12 is the written one


async def test_a_written_survey_answer_replaces_the_card_on_the_console(
    console: ConsoleRun,
) -> None:
    await console.say("@mod! /survey start itsm-focus", "@ann click 2 Take the survey")
    for _ in range(SKIPS_TO_WRITTEN):
        out = await console.say("@ann click 3 Skip")
    assert "10/12" in out and "[Write answer]" in out
    out = await console.say("@ann click 3 Write answer")
    assert "#4 [only ann sees this]" in out and "Form:" in out
    out = await console.say('@ann form answer="Talk to two customers"')
    assert "#3 (edited) [only ann sees this]" in out and "11/12" in out and "Saved" in out
    assert "#5" not in console.text  # no new card


async def test_a_written_survey_answer_replaces_the_card_on_slack(slack: Slack) -> None:
    await slack.command("survey", "start itsm-focus", user="UMOD")
    await slack.app.outbox.drain()
    (invite,) = slack.fake.calls_to("chat.postMessage")
    card = await slack.click(controls(invite)[0], "U5", slack.fake.messages[CHANNEL][0]["ts"])
    for _ in range(SKIPS_TO_WRITTEN):
        skip = next(e for e in controls(card) if e["text"]["text"] == "Skip")
        card = await slack.click(skip, "U5", "1700000001.000100", ephemeral=True)
    assert "10/12" in shown(card)
    write = next(e for e in controls(card) if e["text"]["text"] == "Write answer")
    before = len(slack.fake.responses)
    await slack.click_opening(write, "U5")
    (opened,) = slack.fake.calls_to("views.open")
    view = opened["view"] if isinstance(opened["view"], dict) else json.loads(opened["view"])
    (field,) = [b["block_id"] for b in view["blocks"] if b["type"] == "input"]
    payload = view_submission_payload(
        view["callback_id"], {field: "Talk to two customers"}, view["private_metadata"], "U5"
    )
    await slack.post(interaction_body(payload))
    (replaced,) = (await slack.fake.wait_for_response(before + 1))[before:]
    assert replaced["replace_original"] is True and "11/12" in shown(replaced)
    await slack.settle()
    assert slack.fake.calls_to("chat.postEphemeral") == []  # no new card
    answers = await slack.app.features["survey"].store.all_answers(1)
    assert [a["text"] for a in answers if a["text"]] == ["Talk to two customers"]


async def test_a_written_survey_answer_replaces_the_card_on_discord(
    fake_discord: FakeDiscord, make_app: Any
) -> None:
    fake = fake_discord
    async with discord_bot(make_app, fake) as (app, surface):
        start = sub("start", name="itsm-focus")
        await interact(fake, surface, fake.slash_payload("survey", start, permissions=MANAGE_GUILD))
        await app.outbox.drain()
        invite = int(await app.outbox.message_id(
            f"survey:1:discord:{fake.guild_id}:{fake.channel_id}"
        ))  # fmt: skip
        await interact(fake, surface, fake.component_payload("itsm:survey.take:1", invite))
        card = next(
            mid for mid, m in fake.messages.items()
            if m.get("embeds") and "1/12" in m["embeds"][0].get("title", "")
        )  # fmt: skip
        for _ in range(SKIPS_TO_WRITTEN):
            skip = button(fake.messages[card], "Skip")
            await interact(fake, surface, fake.component_payload(skip, card, user_id=77))
        assert "10/12" in fake.messages[card]["embeds"][0]["title"]
        write = button(fake.messages[card], "Write answer")
        opened = await interact(fake, surface, fake.component_payload(write, card, user_id=77))
        assert opened["type"] == 9
        modal = opened["data"]
        field = modal["components"][0]["components"][0]["custom_id"]
        submit = fake.modal_submit_payload(
            modal["custom_id"], {field: "Talk to two customers"}, user_id=77, message_id=card
        )
        answered = await interact(fake, surface, submit)
        assert answered["type"] == 7 and "11/12" in said(answered)
        assert "11/12" in fake.messages[card]["embeds"][0]["title"]


def button(message: dict[str, Any], label: str) -> str:
    """The custom_id of the button labelled `label` on a Discord message."""
    return next(
        c["custom_id"]
        for row in message.get("components", [])
        for c in row.get("components", [])
        if c.get("label") == label
    )


# --------------------------------------------------------------------------- 6. times


async def test_the_console_shows_each_time_once(console: ConsoleRun) -> None:
    out = await console.say('@mod! /event add title="BRM SIG" start="2026-12-07 15:00" tz=UTC')
    (when,) = [line for line in out.splitlines() if "WHEN:" in line]
    assert when.count("15:00") == 1 and "07 December 2026" in when
    out = await console.say('@mod! /poll create "Which?" A B closes=2d')
    (closes,) = [line for line in out.splitlines() if "Closes" in line]
    assert closes.count("09:00") == 1
