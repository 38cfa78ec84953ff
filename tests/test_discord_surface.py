"""The Discord surface, driven through the real discord.py against the local fake Discord.

Uses the real core (`make_app`) with /help and a small desk feature defined here, so the
tests do not depend on the bot's other features.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import discord
import discord.gateway
import discord.http
import pytest

from adapters.discord import DiscordSurface, create
from adapters.discord.render import render
from bot import commands as cmd
from bot.app import App, Context, Feature
from bot.errors import StartupError, UserError
from bot.help import Help
from bot.model import (
    Action,
    Button,
    ChannelRef,
    Ephemeral,
    Form,
    FormErrors,
    FormField,
    OpenForm,
    Post,
    Public,
    SelectOption,
    Submission,
    UpdateMessage,
    UserRef,
    time_tag,
)
from tests.databases import unhandled
from tests.fakes.fake_discord import (  # noqa: F401
    FakeDiscord,
    discord_endpoints_fixture,
    fake_discord_fixture,
)

ORIGINAL_BASE = discord.http.Route.BASE
ORIGINAL_GATEWAY = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
WAIT = 5.0
MANAGE_GUILD = str(discord.Permissions(manage_guild=True).value)


ASK_OPTIONS = [
    cmd.Option("question", description="What to ask", required=True),
    cmd.Option("size", cmd.Kind.CHOICE, "How big", choices=("small", "large")),
    cmd.Option("count", cmd.Kind.INT, "How many", min_value=1, max_value=10),
    cmd.Option("loud", cmd.Kind.BOOL, "Post publicly"),
    cmd.Option("when", cmd.Kind.DATETIME, "When it happened"),
    cmd.Option("within", cmd.Kind.DURATION, "Answer within"),
    cmd.Option("where", cmd.Kind.CHANNEL, "Channel"),
    cmd.Option("who", cmd.Kind.USER, "Member"),
    cmd.Option("tags", description="Tags", many=True),
    cmd.Option("tz", description="Time zone"),
]


class Desk(Feature):
    """A test-only feature: a command of every option kind, a vote button, a form, a slow one."""

    name = "desk"
    migrations = [
        "CREATE TABLE desk_votes (message TEXT NOT NULL, member TEXT NOT NULL,"
        " choice TEXT NOT NULL, UNIQUE (message, member));"
        "CREATE TABLE desk_suggestions (member TEXT NOT NULL, url TEXT NOT NULL,"
        " kind TEXT NOT NULL, context TEXT NOT NULL)"
    ]
    release: asyncio.Event | None = None
    seen: list[dict[str, Any]] = []

    def register(self) -> None:
        command = self.app.command
        command(
            cmd.Command(
                ("desk", "ask"),
                "Ask the service desk a question",
                self.ask,
                options=ASK_OPTIONS,
            )
        )
        command(cmd.Command(("desk", "suggest"), "Suggest a feed", self.suggest))
        command(cmd.Command(("desk", "slow"), "Take a while", self.slow))
        command(cmd.Command(("desk", "slowform"), "Take a while, then ask", self.slow_form))
        command(cmd.Command(("desk", "quiet"), "Say nothing", self.quiet))
        command(cmd.Command(("desk", "purge"), "Moderators only", self.purge, moderator=True))
        command(cmd.Command(("desk", "whoami"), "Moderator or not", self.whoami))
        self.app.on_action("desk.vote", self.vote)
        self.app.on_action("desk.lock", self.lock, moderator=True)
        self.app.on_form("desk.suggestion", self.suggested)

    async def ask(self, ctx: Context, question: str, **options: Any) -> Any:
        self.seen.append({"question": question, **options})
        post = Post(
            title=f"Q: {question}",
            text=f"Asked by {ctx.user.name} at {time_tag(ctx.now, 'F')}",
            buttons=[Button("Blue", "desk.vote", "blue"), Button("Red", "desk.vote", "red")],
        )
        return Public(post) if options.get("loud") else Ephemeral(post)

    async def suggest(self, ctx: Context) -> OpenForm:
        return OpenForm(FORM)

    async def slow(self, ctx: Context) -> Ephemeral:
        assert self.release is not None
        await self.release.wait()
        return Ephemeral(Post(text="finally done"))

    async def slow_form(self, ctx: Context) -> OpenForm:
        assert self.release is not None
        await self.release.wait()
        return OpenForm(FORM)

    async def quiet(self, ctx: Context) -> None:
        return None

    async def purge(self, ctx: Context) -> Ephemeral:
        return Ephemeral(Post(text="purged"))

    async def whoami(self, ctx: Context) -> Ephemeral:
        return Ephemeral(Post(text="moderator" if ctx.is_moderator else "member"))

    async def vote(self, ctx: Context, action: Action) -> list[Any]:
        await self.app.db.execute(
            "INSERT INTO desk_votes VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (action.message_id, ctx.user.key, action.value),
        )
        count = await self.app.db.fetchval(
            "SELECT count(*) FROM desk_votes WHERE message = ?", (action.message_id,)
        )
        return [
            UpdateMessage(Post(title="Vote", text=f"{count} vote(s)", buttons=VOTE_BUTTONS)),
            Ephemeral(Post(text=f"You chose {action.value}")),
        ]

    async def lock(self, ctx: Context, action: Action) -> Ephemeral:
        return Ephemeral(Post(text=f"locked by a moderator: {ctx.is_moderator}"))

    async def suggested(self, ctx: Context, sub: Submission) -> Any:
        url = sub.values.get("url", "")
        if not url.startswith("https://"):
            return FormErrors({"url": "must start with https://"})
        if sub.values.get("kind") not in ("news", "blog"):
            raise UserError("Pick a kind.")
        await self.app.db.execute(
            "INSERT INTO desk_suggestions VALUES (?, ?, ?, ?)",
            (ctx.user.key, url, sub.values["kind"], sub.value),
        )
        return Ephemeral(Post(text="Thanks, noted."))


VOTE_BUTTONS = [Button("Blue", "desk.vote", "blue"), Button("Red", "desk.vote", "red")]
FORM = Form(
    "desk.suggestion",
    "Suggest a feed",
    [
        FormField("url", "Feed URL", placeholder="https://..."),
        FormField("why", "Why", kind="paragraph", required=False),
        FormField(
            "kind",
            "Kind",
            kind="select",
            options=[SelectOption("News", "news"), SelectOption("Blog", "blog")],
        ),
    ],
    value="ctx42",
)


@pytest.fixture(autouse=True)
def _endpoints_restored() -> Any:
    """The surface points discord.py at the fake from its env and must put it back."""
    Desk.seen = []
    yield
    assert discord.http.Route.BASE == ORIGINAL_BASE
    assert discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY == ORIGINAL_GATEWAY


def env_for(fake: FakeDiscord) -> dict[str, str]:
    return {
        "DISCORD_TOKEN": "fake-token",
        "DISCORD_API_URL": fake.api_base,
        "DISCORD_GATEWAY_URL": fake.gateway_url,
    }


def channel_of(fake: FakeDiscord) -> ChannelRef:
    return ChannelRef("discord", str(fake.guild_id), str(fake.channel_id))


async def desk_app(make_app: Any, fake: FakeDiscord, db: str = "bot.db", **discord_cfg: Any) -> App:
    config = {"discord": {"guild_id": fake.guild_id, "pace": 0, **discord_cfg}}
    return await make_app([Help, Desk], config=config, db=db)


@asynccontextmanager
async def logged_in(app: App, fake: FakeDiscord) -> AsyncIterator[DiscordSurface]:
    """The fast path: REST login and command sync; interactions go to the parser directly."""
    surface = create(app, app.config.section("discord"), env_for(fake), guild_ready_timeout=0.1)
    await surface.login()
    try:
        yield surface
    finally:
        await surface.stop()


@asynccontextmanager
async def desk_surface(
    make_app: Any, fake: FakeDiscord, **discord_cfg: Any
) -> AsyncIterator[DiscordSurface]:
    """The desk app, logged in to the fake; the app itself is `surface.app`."""
    async with logged_in(await desk_app(make_app, fake, **discord_cfg), fake) as surface:
        yield surface


def feed(surface: DiscordSurface, payload: dict[str, Any]) -> None:
    surface.client._connection.parse_interaction_create(payload)


async def answer(
    fake: FakeDiscord, surface: DiscordSurface, payload: dict[str, Any]
) -> dict[str, Any]:
    """Hand `payload` to discord.py as the gateway would; the callback the fake received."""
    feed(surface, payload)
    return await fake.wait_interaction_response(payload["id"], timeout=3.0)


def desk(
    fake: FakeDiscord,
    name: str,
    *,
    focused: str = "",
    user_id: int = 1001,
    permissions: str = "0",
    roles: list[str] | None = None,
    **values: Any,
) -> dict[str, Any]:
    """INTERACTION_CREATE for `/desk NAME` from member `user_id`, each value typed as its
    `ask` option is declared."""
    declared = {o.name: o for o in ASK_OPTIONS}
    options = [
        {"name": key, "type": _type(declared[key]), "value": value}
        | ({"focused": True} if key == focused else {})
        for key, value in values.items()
    ]
    subcommand = [{"type": 1, "name": name, "options": options}]
    return fake.slash_payload("desk", subcommand, user_id, permissions, roles)


async def post_buttons(surface: DiscordSurface, fake: FakeDiscord, *buttons: Button) -> int:
    """A message with `buttons` sent straight through discord.py, as if posted long ago."""
    channel = surface.client.get_partial_messageable(fake.channel_id)
    message = await channel.send(**render(Post(buttons=list(buttons))).message_kwargs())
    return message.id


# --- Start-up ---------------------------------------------------------------------------


async def test_full_start_identifies_with_guilds_intent_only_and_syncs_the_registry(
    fake_discord: FakeDiscord, make_app: Any
) -> None:
    fake = fake_discord
    app = await desk_app(make_app, fake)
    surface = create(app, app.config.section("discord"), env_for(fake), guild_ready_timeout=0.1)
    await asyncio.wait_for(surface.start(), WAIT)
    try:
        assert discord.http.Route.BASE == fake.api_base
        assert fake.identify_payloads[0]["token"] == "fake-token"
        # guilds, and who is interested in a scheduled event (events are mirrored by default)
        assert fake.intents == discord.Intents(guilds=True, guild_scheduled_events=True).value
        assert surface.client.is_ready()

        synced = fake.registered_commands[fake.guild_id]
        assert "global" not in fake.registered_commands
        assert_matches_registry(synced, app.registry)
        ask = next(
            o
            for o in next(c for c in synced if c["name"] == "desk")["options"]
            if o["name"] == "ask"
        )
        by_name = {o["name"]: o for o in ask["options"]}
        assert by_name["size"]["choices"] == [
            {"name": "small", "value": "small"},
            {"name": "large", "value": "large"},
        ]
        assert (by_name["count"]["min_value"], by_name["count"]["max_value"]) == (1, 10)
        assert by_name["tz"]["autocomplete"] is True
        assert "separate with |" in by_name["tags"]["description"]

        # A gateway interaction reaches the core and is answered.
        payload = await fake.send_interaction(fake.slash_payload("help"))
        body = await fake.wait_interaction_response(payload["id"], timeout=3.0)
        assert body["type"] == 4 and body["data"]["flags"] == 64
        assert body["data"]["embeds"][0]["title"] == "What I can do"
    finally:
        await surface.stop()
    assert surface.client.is_closed()


def assert_matches_registry(synced: list[dict[str, Any]], registry: cmd.Registry) -> None:
    """The command list Discord received says what the core declares: names, subcommands,
    and every option with its type and whether it is required."""
    assert {c["name"] for c in synced} == set(registry.groups)
    for top in synced:
        specs = registry.in_group(top["name"])
        assert 1 <= len(top["description"]) <= 100
        if (top["name"],) in registry.commands:  # a lone command: its options at the top
            assert _options(top["options"]) == _declared(specs[0])
            continue
        subs = {o["name"]: o for o in top["options"]}
        assert {o["type"] for o in subs.values()} == {1}
        assert set(subs) == {s.path[1] for s in specs}
        for spec in specs:
            options = subs[spec.path[1]].get("options", [])
            assert _options(options) == _declared(spec), spec.name
            assert all(1 <= len(o["description"]) <= 100 for o in options)
            required = [bool(o.get("required")) for o in options]
            assert required == sorted(required, reverse=True), "required options come first"


_TYPES = {
    cmd.Kind.STR: 3,
    cmd.Kind.CHOICE: 3,
    cmd.Kind.DATETIME: 3,
    cmd.Kind.DURATION: 3,
    cmd.Kind.INT: 4,
    cmd.Kind.BOOL: 5,
    cmd.Kind.USER: 6,
    cmd.Kind.CHANNEL: 7,
    cmd.Kind.ROLE: 8,
}


def _type(option: cmd.Option) -> int:
    """The Discord option type a declared option is offered as (a list is typed text)."""
    return 3 if option.many else _TYPES[option.kind]


def _declared(spec: cmd.Command) -> set[tuple[str, int, bool]]:
    return {(o.name, _type(o), o.required) for o in spec.options}


def _options(options: list[dict[str, Any]]) -> set[tuple[str, int, bool]]:
    return {(o["name"], o["type"], bool(o.get("required"))) for o in options}


async def test_every_command_the_bot_declares_syncs_to_discord(
    fake_discord: FakeDiscord, make_app: Any
) -> None:
    fake = fake_discord
    app = await make_app(config={"discord": {"guild_id": fake.guild_id}})
    async with logged_in(app, fake):
        assert_matches_registry(fake.registered_commands[fake.guild_id], app.registry)
    assert len(app.registry.commands) > 1


async def test_sync_is_global_without_a_guild_and_bad_token_is_a_clear_error(
    fake_discord: FakeDiscord, make_app: Any
) -> None:
    fake = fake_discord
    app = await desk_app(make_app, fake, guild_id=0)
    async with logged_in(app, fake):
        assert {c["name"] for c in fake.registered_commands["global"]} == {"help", "desk"}
        assert fake.guild_id not in fake.registered_commands

    fake.fail_next("GET", "/users/@me", status=401)
    surface = create(app, app.config.section("discord"), env_for(fake))
    with pytest.raises(StartupError, match="refused DISCORD_TOKEN") as info:
        await surface.login()
    await surface.stop()
    assert "fake-token" not in str(info.value)


# --- Slash commands ---------------------------------------------------------------------


async def test_slash_command_callback_carries_the_rendered_message(
    fake_discord: FakeDiscord, make_app: Any
) -> None:
    fake = fake_discord
    async with desk_surface(make_app, fake) as surface:
        payload = desk(
            fake,
            "ask",
            user_id=4242,
            question="Is @everyone on call?",
            size="large",
            count=3,
            loud=True,
            when="2026-11-20 10:00",
            tags="itil | brm",
            where=str(fake.channel_id),
            who="4343",
        )
        member = fake.member(4343, permissions="0")
        del member["user"]
        payload["data"]["resolved"] = {
            "channels": {str(fake.channel_id): _resolved_channel(fake)},
            "users": {"4343": fake.user(4343)},
            "members": {"4343": member},
        }
        body = await answer(fake, surface, payload)

    assert body["type"] == 4
    data = body["data"]
    assert "flags" not in data or not data["flags"] & 64  # loud=True: a public answer
    embed = data["embeds"][0]
    assert embed["title"] == "Q: Is @\u200beveryone on call?"
    assert "<t:1795424400:F>" in embed["description"]  # 2026-11-23 09:00 UTC, the fake clock
    assert data["allowed_mentions"] == {"parse": []}
    ids = [c["custom_id"] for c in data["components"][0]["components"]]
    assert ids == ["itsm:desk.vote:blue", "itsm:desk.vote:red"]
    (seen,) = Desk.seen
    assert seen["size"] == "large" and seen["count"] == 3 and seen["tags"] == ["itil", "brm"]
    assert seen["when"].isoformat() == "2026-11-20T10:00:00+00:00"
    assert seen["where"] == channel_of(fake)
    assert seen["who"] == UserRef("discord", str(fake.guild_id), "4343")
    assert seen["who"].name == "User 4343"


def _resolved_channel(fake: FakeDiscord) -> dict[str, Any]:
    channel = dict(fake.channels[fake.channel_id])
    channel["permissions"] = "0"
    return channel


async def test_bad_option_value_is_refused_with_an_ephemeral_usage_error(
    fake_discord: FakeDiscord, make_app: Any
) -> None:
    fake = fake_discord
    async with desk_surface(make_app, fake) as surface:
        body = await answer(fake, surface, desk(fake, "ask", question="x", within="soonish"))
    assert body["data"]["flags"] == 64
    assert "within" in body["data"]["embeds"][0]["description"]
    assert "15m" in body["data"]["embeds"][0]["description"]
    assert Desk.seen == []


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("itil | brm", ["itil", "brm"]),
        ('"value streams" "brm"', ["value streams", "brm"]),
        ("itil, brm", ["itil", "brm"]),
        ('"unclosed', ['"unclosed']),
    ],
)
async def test_list_options_take_bars_quotes_or_commas(
    fake_discord: FakeDiscord, make_app: Any, typed: str, expected: list[str]
) -> None:
    fake = fake_discord
    async with desk_surface(make_app, fake) as surface:
        await answer(fake, surface, desk(fake, "ask", question="x", tags=typed))
    assert Desk.seen[0]["tags"] == expected


async def test_tz_option_autocompletes_zone_names(fake_discord: FakeDiscord, make_app: Any) -> None:
    fake = fake_discord
    async with desk_surface(make_app, fake) as surface:
        payload = desk(fake, "ask", focused="tz", question="x", tz="europe/lon")
        payload["type"] = 4  # APPLICATION_COMMAND_AUTOCOMPLETE
        body = await answer(fake, surface, payload)
    assert body["type"] == 8
    assert body["data"]["choices"][0] == {"name": "Europe/London", "value": "Europe/London"}
    assert Desk.seen == []


async def test_slow_answer_is_deferred_then_the_original_is_edited(
    fake_discord: FakeDiscord, make_app: Any
) -> None:
    fake = fake_discord
    Desk.release = asyncio.Event()
    async with desk_surface(make_app, fake, defer_after=0.05) as surface:
        assert await answer(fake, surface, desk(fake, "slow")) == {"type": 5, "data": {"flags": 64}}
        Desk.release.set()
        (edit,) = await fake.wait_for_request("PATCH", "/webhooks/*/messages/@original")
    assert edit.json["embeds"][0]["description"] == "finally done"


async def test_form_after_a_deferral_is_offered_as_a_button_that_opens_it(
    fake_discord: FakeDiscord, make_app: Any
) -> None:
    fake = fake_discord
    Desk.release = asyncio.Event()
    async with desk_surface(make_app, fake, defer_after=0.05) as surface:
        assert (await answer(fake, surface, desk(fake, "slowform")))["type"] == 5
        Desk.release.set()
        (edit,) = await fake.wait_for_request("PATCH", "/webhooks/*/messages/@original")
        (button,) = edit.json["components"][0]["components"]
        assert button["label"] == "Open the form" and button["custom_id"].startswith("itsmr:")
        message_id = int(next(m for m in fake.messages.values() if m["components"])["id"])
        click = fake.component_payload(button["custom_id"], message_id)
        assert (await answer(fake, surface, click))["type"] == 9
    assert fake.last_modal()["title"] == "Suggest a feed"


async def test_a_command_with_nothing_to_say_is_still_acknowledged(
    fake_discord: FakeDiscord, make_app: Any
) -> None:
    fake = fake_discord
    async with desk_surface(make_app, fake) as surface:
        body = await answer(fake, surface, desk(fake, "quiet"))
    assert body["type"] == 4 and body["data"]["flags"] == 64 and body["data"]["content"] == "Done."


# --- Buttons ----------------------------------------------------------------------------


async def test_button_on_a_message_posted_before_a_restart_still_works(
    fake_discord: FakeDiscord, make_app: Any
) -> None:
    fake = fake_discord
    async with desk_surface(make_app, fake) as surface:
        post = Post(title="Vote", text="0 vote(s)", buttons=VOTE_BUTTONS)
        await surface.app.outbox.enqueue(channel_of(fake), post, "desk:vote:1")
        assert await surface.app.outbox.drain() == 1
        message_id = int(await surface.app.outbox.message_id("desk:vote:1"))

    # A new process: a new App on the same database, a new client, nothing kept in memory.
    async with desk_surface(make_app, fake) as surface:
        click = fake.component_payload("itsm:desk.vote:red", message_id, user_id=77)
        body = await answer(fake, surface, click)
        (followup,) = await fake.wait_for_request("POST", f"/webhooks/{fake.application_id}/*")
        rows = await surface.app.db.fetchall("SELECT message, member, choice FROM desk_votes")

    assert body["type"] == 7  # the clicked message is edited in place
    assert body["data"]["embeds"][0]["description"] == "1 vote(s)"
    assert fake.messages[message_id]["embeds"][0]["description"] == "1 vote(s)"
    assert [c["custom_id"] for c in body["data"]["components"][0]["components"]] == [
        "itsm:desk.vote:blue",
        "itsm:desk.vote:red",
    ]
    assert followup.json["flags"] == 64  # "You chose red" only to the one who clicked
    assert followup.json["embeds"][0]["description"] == "You chose red"
    assert [tuple(r) for r in rows] == [(str(message_id), f"discord:{fake.guild_id}:77", "red")]


async def test_unknown_action_gets_an_ephemeral_answer(
    fake_discord: FakeDiscord, make_app: Any
) -> None:
    fake = fake_discord
    async with desk_surface(make_app, fake) as surface:
        message_id = await post_buttons(surface, fake, Button("Go", "gone.away", "1"))
        body = await answer(fake, surface, fake.component_payload("itsm:gone.away:1", message_id))
    assert body["type"] == 4 and body["data"]["flags"] == 64
    assert "no longer in use" in body["data"]["embeds"][0]["description"]


async def test_only_moderator_only_buttons_look_up_the_moderator_role(
    fake_discord: FakeDiscord, make_app: Any
) -> None:
    fake = fake_discord
    mods = fake.add_role("ITSM Moderators")
    role_lookups = lambda: fake.requests_to("GET", "/guilds/*/roles")  # noqa: E731
    async with desk_surface(make_app, fake, moderator_role="ITSM Moderators") as surface:
        poll = await post_buttons(surface, fake, *VOTE_BUTTONS)
        desk_message = await post_buttons(surface, fake, Button("Lock", "desk.lock"))

        async def click(custom_id: str, message_id: int, roles: list[str]) -> dict[str, Any]:
            payload = fake.component_payload(custom_id, message_id)
            payload["member"]["roles"] = roles
            return await answer(fake, surface, payload)

        await click("itsm:desk.vote:blue", poll, [mods["id"]])
        assert role_lookups() == []  # a vote asks nothing about the member
        locked = await click("itsm:desk.lock:", desk_message, [mods["id"]])
        refusal = await click("itsm:desk.lock:", desk_message, [])
    assert locked["data"]["embeds"][0]["description"] == "locked by a moderator: True"
    assert len(role_lookups()) == 1
    assert "Only moderators can use" in refusal["data"]["embeds"][0]["description"]


# --- Forms ------------------------------------------------------------------------------


async def test_modal_opened_bad_input_refused_then_fixed_and_accepted(
    fake_discord: FakeDiscord, make_app: Any
) -> None:
    fake = fake_discord
    async with desk_surface(make_app, fake) as surface:
        assert (await answer(fake, surface, desk(fake, "suggest", user_id=900)))["type"] == 9
        modal = fake.last_modal()
        assert modal["custom_id"] == "itsmf:desk.suggestion:ctx42"
        assert modal["title"] == "Suggest a feed"
        kinds = [
            (c["type"], (c.get("components") or [c.get("component")])[0]["custom_id"])
            for c in modal["components"]
        ]
        assert kinds == [(1, "url"), (1, "why"), (18, "kind")]

        bad = _submit(fake, modal["custom_id"], url="ftp://nope", why="good", kind="news")
        refusal = await answer(fake, surface, bad)
        assert refusal["type"] == 4 and refusal["data"]["flags"] == 64
        assert "Feed URL" in refusal["data"]["embeds"][0]["description"]
        assert "must start with https://" in refusal["data"]["embeds"][0]["description"]
        assert await surface.app.db.fetchval("SELECT count(*) FROM desk_suggestions") == 0

        # "Fix my answers" reopens the form with what was typed.
        (reopen,) = refusal["data"]["components"][0]["components"]
        assert reopen["custom_id"].startswith("itsmr:")
        message_id = int(next(m for m in fake.messages.values() if m["components"])["id"])
        click = fake.component_payload(reopen["custom_id"], message_id, user_id=900)
        assert (await answer(fake, surface, click))["type"] == 9
        again = fake.last_modal()
        url_input = again["components"][0]["components"][0]
        assert url_input["value"] == "ftp://nope"

        good = _submit(fake, again["custom_id"], url="https://example.org/rss", why="", kind="blog")
        thanks = await answer(fake, surface, good)
        rows = await surface.app.db.fetchall(
            "SELECT member, url, kind, context FROM desk_suggestions"
        )
    assert thanks["data"]["embeds"][0]["description"] == "Thanks, noted."
    assert [tuple(r) for r in rows] == [
        (f"discord:{fake.guild_id}:900", "https://example.org/rss", "blog", "ctx42")
    ]


def _submit(fake: FakeDiscord, custom_id: str, *, kind: str, **text: str) -> dict[str, Any]:
    payload = fake.modal_submit_payload(custom_id, text, user_id=900)
    payload["data"]["components"].append(
        {"type": 18, "component": {"type": 3, "custom_id": "kind", "values": [kind]}}
    )
    return payload


async def test_submission_of_a_modal_opened_before_a_restart_reaches_the_form(
    fake_discord: FakeDiscord, make_app: Any
) -> None:
    fake = fake_discord
    async with desk_surface(make_app, fake) as surface:
        payload = _submit(fake, "itsmf:desk.suggestion:ctx7", url="http://insecure", kind="news")
        body = await answer(fake, surface, payload)
    # Refused, with the reason, even though this process never opened that modal.
    assert "must start with https://" in body["data"]["embeds"][0]["description"]
    assert body["data"]["embeds"][0]["footer"]["text"] == "Start the form again to retry."


# --- Moderators -------------------------------------------------------------------------

MODS_BY_ID = "the id of ITSM Moderators"


@pytest.mark.parametrize(
    ("setting", "permissions", "holds", "expected"),
    [
        ("ITSM Moderators", "0", [], "member"),
        ("ITSM Moderators", MANAGE_GUILD, [], "moderator"),
        (MODS_BY_ID, "0", ["ITSM Moderators"], "moderator"),
        ("itsm moderators", "0", ["ITSM Moderators"], "moderator"),
        ("ITSM Moderators", "0", ["Readers"], "member"),
    ],
    ids=["member", "manage_guild", "role_id", "role_name", "other_role"],
)
async def test_moderators_by_manage_server_or_configured_role(
    fake_discord: FakeDiscord,
    make_app: Any,
    setting: str,
    permissions: str,
    holds: list[str],
    expected: str,
) -> None:
    fake = fake_discord
    role_ids = {name: fake.add_role(name)["id"] for name in ("ITSM Moderators", "Readers")}
    setting = role_ids["ITSM Moderators"] if setting == MODS_BY_ID else setting
    roles = [role_ids[name] for name in holds]
    async with desk_surface(make_app, fake, moderator_role=setting) as surface:
        who = desk(fake, "whoami", permissions=permissions, roles=roles)
        body = await answer(fake, surface, who)
        purge = desk(fake, "purge", permissions=permissions, roles=roles)
        refused_or_done = await answer(fake, surface, purge)
    assert body["data"]["embeds"][0]["description"] == expected
    text = refused_or_done["data"]["embeds"][0]["description"]
    assert ("purged" in text) == (expected == "moderator")
    assert ("for moderators only" in text) == (expected == "member")


async def test_a_deferred_interaction_is_journaled_and_answered_after_a_crash(
    fake_discord: FakeDiscord, make_app: Any
) -> None:
    """A deferral acknowledges the interaction: from then on a crash must not lose it."""
    fake = fake_discord
    first_release = Desk.release = asyncio.Event()  # the first process never finishes
    app = await desk_app(make_app, fake, db="journal.db", defer_after=0.05)
    payload = desk(fake, "slow")
    async with logged_in(app, fake) as surface:
        assert await answer(fake, surface, payload) == {"type": 5, "data": {"flags": 64}}
        held = await unhandled(app.db, "discord")
        assert [body["id"] for _, body in held] == [payload["id"]]  # on disk before the defer
    # The process died with the work unfinished. The restart handles it again and answers
    # by editing the deferred response; Discord hears no second first response.
    Desk.release = asyncio.Event()
    Desk.release.set()
    again = await desk_app(make_app, fake, db="journal.db", defer_after=0.05)
    async with logged_in(again, fake):
        (edit,) = await fake.wait_for_request("PATCH", "/webhooks/*/messages/@original")
        assert edit.json["embeds"][0]["description"] == "finally done"
        await asyncio.wait_for(_handled(again), timeout=10)  # marked done once answered
    assert len(fake.requests_to("POST", f"/interactions/{payload['id']}/*/callback")) == 1
    first_release.set()  # let the abandoned first attempt end


async def _handled(app: App) -> None:
    while await unhandled(app.db, "discord"):
        await asyncio.sleep(0.01)
