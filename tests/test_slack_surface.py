"""The whole bot on Slack: real slack-bolt and slack-sdk against the local fake Slack.

HTTP mode runs bolt's own aiohttp app on 127.0.0.1:0 and sends requests signed as Slack
signs them; Socket Mode connects through apps.connections.open. A small test-only feature
gives a button, a form and a moderator command, so these tests do not depend on the
progress of the real features.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import SlackSurface, create
from adapters.slack import surface as surface_module
from adapters.slack.moderators import Moderators
from adapters.slack.replies import Origin
from bot import commands as cmd
from bot.app import App, Context, Feature
from bot.errors import ConfigError
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
    Submission,
    UpdateMessage,
    UserRef,
)
from tests.databases import unhandled
from tests.fakes.fake_slack import (
    FakeSlack,
    block_actions_payload,
    interaction_body,
    signed_headers,
    slash_command_body,
    slash_command_payload,
    view_submission_payload,
)
from tests.fakes.fake_slack import fake_slack as fake_slack_fixture  # noqa: F401

BOT_TOKEN = "xoxb-test-bot-token"
APP_TOKEN = "xapp-1-A1-test-app-token"
SECRET = "test-signing-secret"


class Toy(Feature):
    """A test-only feature: a button, a form, a moderator command and a slow command."""

    name = "toy"

    def register(self) -> None:
        self.picks: list[tuple[str, str, str, str]] = []
        self.suggestions: list[tuple[str, str, str]] = []
        self.secrets: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.waiting = 0  # slow commands held at the gate
        add = self.app.command
        add(cmd.Command(("toy", "vote"), "Post a vote", self.vote))
        add(cmd.Command(("toy", "suggest"), "Open a form", self.suggest_form))
        add(cmd.Command(("toy", "secret"), "Moderators only", self.secret, moderator=True))
        add(cmd.Command(("toy", "slow"), "Waits for the test", self.slow))
        self.app.on_action("toy.pick", self.pick)
        self.app.on_form("toy.suggest", self.suggest)

    async def vote(self, ctx: Context) -> Public:
        buttons = [Button("Alpha", "toy.pick", "a"), Button("Beta & <!channel>", "toy.pick", "b")]
        return Public(Post(title="Pick one", buttons=buttons))

    async def pick(self, ctx: Context, action: Action) -> list[Any]:
        self.picks.append((ctx.user.user, action.value, action.message_id, ctx.channel.channel))
        return [
            UpdateMessage(Post(title="Picked", text=f"Last pick: {action.value}")),
            Ephemeral(Post(text=f"You picked {action.value}")),
        ]

    async def suggest_form(self, ctx: Context) -> OpenForm:
        fields = [FormField("url", "Feed URL"), FormField("note", "Note", required=False)]
        return OpenForm(Form("toy.suggest", "Suggest a feed", fields, value="ctx-42"))

    async def suggest(self, ctx: Context, sub: Submission) -> Any:
        await self.gate.wait()
        if not sub.values.get("url", "").startswith("https://"):
            return FormErrors({"url": "Give an https:// address."})
        if sub.values["url"].endswith("/known"):
            return FormErrors({"subscription": "That feed is already followed here."})
        self.suggestions.append((sub.values["url"], sub.value, sub.channel.channel))
        return Ephemeral(Post(text="Thanks, noted."))

    async def secret(self, ctx: Context) -> Ephemeral:
        self.secrets.append(ctx.user.user)
        return Ephemeral(Post(text="The secret is 42."))

    async def slow(self, ctx: Context) -> Ephemeral:
        self.waiting += 1
        await self.gate.wait()
        self.waiting -= 1
        return Ephemeral(Post(text="Finally done."))


@dataclass
class Http:
    """A started surface in HTTP mode, and a way to send it signed requests."""

    app: App
    surface: SlackSurface
    fake: FakeSlack
    session: aiohttp.ClientSession
    sent: list[str] = field(default_factory=list)

    @property
    def toy(self) -> Toy:
        return self.app.features["toy"]  # type: ignore[return-value]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.surface.port}/slack/events"

    async def post(
        self, body: str, secret: str = SECRET, age: int = 0
    ) -> tuple[int, str, dict[str, str]]:
        headers = signed_headers(secret, body, timestamp=int(time.time()) - age)
        request = self.session.post(self.url, data=body.encode(), headers=headers)
        async with await asyncio.wait_for(request, timeout=3) as response:
            return response.status, await response.text(), dict(response.headers)

    async def command(self, text: str, command: str = "/toy", **kw: Any) -> tuple[int, str]:
        kw.setdefault("response_url", self.fake.response_url())
        status, body, _ = await self.post(slash_command_body(command, text, **kw))
        return status, body

    async def settle(self) -> None:
        await asyncio.wait_for(self.surface.settled(), timeout=5)


def _env(fake: FakeSlack, **extra: str) -> dict[str, str]:
    return {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_API_URL": fake.base_url, **extra}


@pytest.fixture
async def http(make_app, fake_slack: FakeSlack) -> AsyncIterator[Http]:
    config = {"slack": {"mode": "http", "host": "127.0.0.1", "port": 0}}
    app = await make_app([Help, Toy], config=config)
    surface = create(
        app, app.config.section("slack"), _env(fake_slack, SLACK_SIGNING_SECRET=SECRET)
    )
    await surface.start()
    async with aiohttp.ClientSession() as session:
        try:
            yield Http(app, surface, fake_slack, session)
        finally:
            await surface.stop()


# --------------------------------------------------------------------------- HTTP mode


async def test_signed_command_is_acked_before_the_work_and_answered_after(http: Http) -> None:
    http.toy.gate.clear()  # the command's work cannot finish until the test allows it

    status, body = await http.command("slow")

    assert (status, body) == (200, "")  # acked while the handler is still waiting
    assert http.fake.responses == []
    http.toy.gate.set()
    (answer,) = await http.fake.wait_for_response(1)
    assert answer["response_type"] == "ephemeral"
    assert "Finally done." in json.dumps(answer["blocks"])


async def test_help_through_itsm_lists_the_commands(http: Http) -> None:
    status, _ = await http.command("", command="/itsm")

    assert status == 200
    (answer,) = await http.fake.wait_for_response(1)
    shown = json.dumps(answer["blocks"])
    assert "What I can do" in shown and "/toy" not in answer["text"]
    assert answer["response_type"] == "ephemeral"
    # The bot's identity was checked with its own token, never the app token.
    assert {c.token for c in http.fake.calls} == {BOT_TOKEN}


async def test_bad_command_text_gets_an_ephemeral_error_saying_what_to_type(http: Http) -> None:
    await http.command("frobnicate")

    (answer,) = await http.fake.wait_for_response(1)
    assert answer["response_type"] == "ephemeral"
    assert "`frobnicate` is not a subcommand of /toy" in answer["text"]
    assert "Try one of: secret, slow, suggest, vote" in json.dumps(answer["blocks"])


@pytest.mark.parametrize(
    ("secret", "age"),
    [("forged-secret", 0), (SECRET, 6 * 60)],
    ids=["forged-signature", "stale-timestamp"],
)
async def test_badly_signed_requests_are_refused_and_nothing_is_done(
    http: Http, secret: str, age: int
) -> None:
    status, _, _ = await http.post(slash_command_body("/toy", "secret"), secret=secret, age=age)
    vote = interaction_body(block_actions_payload("toy.pick#0", "a"))
    action_status, _, _ = await http.post(vote, secret=secret, age=age)
    await http.settle()

    assert (status, action_status) == (401, 401)
    after_start = [c.method for c in http.fake.calls if c.method != "auth.test"]
    assert after_start == [] and http.fake.responses == []
    assert http.toy.secrets == [] and http.toy.picks == []


# --------------------------------------------------------------------------- buttons


async def test_button_click_reaches_the_core_and_updates_the_message(http: Http) -> None:
    await http.command("vote", channel_id="C7")
    (posted,) = await http.fake.wait_for_call("chat.postMessage")
    assert posted["channel"] == "C7"
    buttons = posted["blocks"][-1]["elements"]
    assert [b["action_id"] for b in buttons] == ["toy.pick#0", "toy.pick#1"]
    assert buttons[1]["text"]["text"] == "Beta &amp; &lt;!channel&gt;"
    ts = http.fake.messages["C7"][0]["ts"]

    click = block_actions_payload(
        buttons[1]["action_id"],
        buttons[1]["value"],
        user_id="U5",
        channel_id="C7",
        message_ts=ts,
        response_url=http.fake.response_url(),
    )
    status, _, _ = await http.post(interaction_body(click))

    assert status == 200
    (update,) = await http.fake.wait_for_call("chat.update")
    assert (update["channel"], update["ts"]) == ("C7", ts)
    assert "Last pick: b" in json.dumps(update["blocks"])
    assert http.toy.picks == [("U5", "b", ts, "C7")]
    (private,) = await http.fake.wait_for_response(1)
    assert private["response_type"] == "ephemeral" and private["replace_original"] is False
    assert "You picked b" in private["text"]


async def test_a_button_the_core_no_longer_knows_says_so(http: Http) -> None:
    click = block_actions_payload("gone.away#0", "x", response_url=http.fake.response_url())
    await http.post(interaction_body(click))

    (answer,) = await http.fake.wait_for_response(1)
    assert "That button is no longer in use." in answer["text"]
    assert http.fake.calls_to("chat.update") == []


# --------------------------------------------------------------------------- modals


async def test_form_opens_as_a_modal_and_bad_input_is_shown_inline(http: Http) -> None:
    await http.command("suggest", trigger_id="trigger-9", channel_id="C3")
    (opened,) = await http.fake.wait_for_call("views.open")
    assert opened["trigger_id"] == "trigger-9"
    view = opened["view"]
    assert view["callback_id"] == "toy.suggest"
    assert [b["block_id"] for b in view["blocks"]] == ["url", "note"]
    assert [b["optional"] for b in view["blocks"]] == [False, True]

    bad = view_submission_payload(
        "toy.suggest", {"url": "ftp://example.org", "note": ""}, view["private_metadata"]
    )
    status, body, headers = await http.post(interaction_body(bad))
    assert status == 200
    assert json.loads(body) == {
        "response_action": "errors",
        "errors": {"url": "Give an https:// address."},
    }
    assert http.toy.suggestions == []

    good = view_submission_payload(
        "toy.suggest", {"url": "https://example.org/feed", "note": "x"}, view["private_metadata"]
    )
    status, body, _ = await http.post(interaction_body(good))
    assert (status, body) == (200, "")
    assert http.toy.suggestions == [("https://example.org/feed", "ctx-42", "C3")]
    (thanks,) = await http.fake.wait_for_call("chat.postEphemeral")
    assert (thanks["channel"], thanks["user"]) == ("C3", "U1")
    assert "Thanks, noted." in thanks["text"]


async def test_a_slow_submission_closes_the_modal_in_time_and_answers_later(
    http: Http, monkeypatch
) -> None:
    monkeypatch.setattr("adapters.slack.surface.ACK_BUDGET", 0.05)
    http.toy.gate.clear()
    meta = '{"v":"ctx-1","c":"slack:T1:C4","m":""}'
    payload = view_submission_payload("toy.suggest", {"url": "ftp://late"}, meta)

    status, body, _ = await http.post(interaction_body(payload))

    assert (status, body) == (200, "")  # closed: Slack would have given up waiting
    http.toy.gate.set()
    (late,) = await http.fake.wait_for_call("chat.postEphemeral")
    assert late["channel"] == "C4"
    assert "Give an https:// address." in late["text"]  # the inline error, now a message


async def test_a_slow_moderator_check_still_fits_in_the_ack_budget(http: Http, monkeypatch) -> None:
    monkeypatch.setattr("adapters.slack.surface.ACK_BUDGET", 0.05)
    asked = asyncio.Event()
    answer = asyncio.Event()

    async def slow_check(user_id: str) -> bool:
        asked.set()
        await answer.wait()  # users.info stuck behind a rate limit
        return False

    monkeypatch.setattr(http.surface.moderators, "check", slow_check)
    meta = '{"v":"ctx-1","c":"slack:T1:C4","m":""}'
    payload = view_submission_payload("toy.suggest", {"url": "https://example.org/f"}, meta)

    status, body, _ = await http.post(interaction_body(payload))

    assert (status, body) == (200, "")  # closed in time although the check is still running
    assert asked.is_set() and http.toy.suggestions == []
    answer.set()
    (late,) = await http.fake.wait_for_call("chat.postEphemeral")
    assert "Thanks, noted." in late["text"]
    assert http.toy.suggestions == [("https://example.org/f", "ctx-1", "C4")]


async def test_an_error_for_a_field_the_modal_lacks_is_shown_on_its_first_input(
    http: Http,
) -> None:
    meta = '{"v":"ctx-1","c":"slack:T1:C4","m":""}'
    payload = view_submission_payload(
        "toy.suggest", {"url": "https://example.org/known", "note": ""}, meta
    )

    status, body, _ = await http.post(interaction_body(payload))

    assert status == 200
    assert json.loads(body) == {
        "response_action": "errors",
        "errors": {"url": "That feed is already followed here."},
    }


async def test_a_public_answer_in_a_channel_the_bot_is_not_in_goes_through_the_command(
    http: Http,
) -> None:
    http.fake.fail_next("chat.postMessage", status=200, error="not_in_channel")

    await http.command("vote")

    (answer,) = await http.fake.wait_for_response(1)
    assert answer["response_type"] == "in_channel"
    assert answer["text"] == "Pick one"


async def test_a_reply_slack_cannot_take_does_not_stop_the_next(http: Http) -> None:
    unshowable = Public(Post(buttons=[Button("Open", style="link", url="javascript:alert(1)")]))
    origin = Origin(ChannelRef("slack", "T1", "C2"), UserRef("slack", "T1", "U2"))

    await http.surface.deliver(
        [
            unshowable,
            Ephemeral(Post(text="Still told.")),
        ],
        origin,
    )

    (told,) = http.fake.calls_to("chat.postEphemeral")
    assert (told["channel"], told["user"], told["text"]) == ("C2", "U2", "Still told.")
    assert http.fake.calls_to("chat.postMessage") == []


# --------------------------------------------------------------------------- moderators


async def test_members_are_refused_moderator_commands(http: Http) -> None:
    await http.command("secret", user_id="U1")

    (answer,) = await http.fake.wait_for_response(1)
    assert "`/toy secret` is for moderators only." in answer["text"]
    assert http.toy.secrets == []


async def test_workspace_admins_and_owners_are_moderators_and_checked_once(http: Http) -> None:
    http.fake.users["UADM"] = {"is_admin": True}
    http.fake.users["UOWN"] = {"is_owner": True}

    for answered, user in enumerate(("UADM", "UOWN", "UADM"), start=1):
        await http.command("secret", user_id=user)
        await http.fake.wait_for_response(answered)  # commands run concurrently after the ack

    assert http.toy.secrets == ["UADM", "UOWN", "UADM"]
    asked = [c["user"] for c in http.fake.calls_to("users.info")]
    assert asked == ["UADM", "UOWN"]  # the second UADM answer came from the cache


async def test_configured_users_and_group_members_are_moderators(
    make_app, fake_slack: FakeSlack
) -> None:
    # The fake has no user groups; teach this instance the one method the bot calls.
    fake_slack._handlers["usergroups.users.list"] = lambda args: (
        {"ok": True, "users": ["UGRP"]}
        if args.get("usergroup") == "S1"
        else {"ok": False, "error": "no_such_subteam"}
    )
    slack = {"moderator_users": ["UCFG"], "moderator_group": "S1"}
    app = await make_app([Help, Toy], config={"slack": slack})
    surface = create(app, app.config.section("slack"), _env(fake_slack, SLACK_APP_TOKEN=APP_TOKEN))

    assert await surface.moderators.check("UCFG")
    assert await surface.moderators.check("UGRP")
    assert not await surface.moderators.check("U1")
    assert fake_slack.calls_to("usergroups.users.list") == [{"usergroup": "S1"}]
    assert [c["user"] for c in fake_slack.calls_to("users.info")] == ["UGRP", "U1"]


async def test_a_moderator_check_slack_cannot_answer_is_a_no() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # closed again: nothing listens there
    url = f"http://127.0.0.1:{port}/api/"
    client = AsyncWebClient(token=BOT_TOKEN, base_url=url, retry_handlers=[])
    moderators = Moderators(client, group="S1")

    assert await asyncio.wait_for(moderators.check("U1"), timeout=5) is False


# --------------------------------------------------------------------------- Socket Mode


async def test_socket_mode_acks_envelopes_answers_and_survives_a_refresh(
    make_app, fake_slack: FakeSlack
) -> None:
    app = await make_app([Help, Toy])
    surface = create(app, app.config.section("slack"), _env(fake_slack, SLACK_APP_TOKEN=APP_TOKEN))
    assert surface.mode == "socket"
    try:
        await asyncio.wait_for(surface.start(), timeout=5)
        await fake_slack.wait_connected(1)
        assert fake_slack.app_token_seen == [APP_TOKEN]

        payload = slash_command_payload("/itsm", "", response_url=fake_slack.response_url())
        first = await fake_slack.push("slash_commands", payload)
        assert (await fake_slack.wait_ack(first))["envelope_id"] == first
        (answer,) = await fake_slack.wait_for_response(1)
        assert "What I can do" in json.dumps(answer["blocks"])

        await fake_slack.disconnect("refresh_requested")
        await fake_slack.wait_connected(2)
        payload = slash_command_payload("/toy", "vote", channel_id="C9")
        second = await fake_slack.push("slash_commands", payload)
        await fake_slack.wait_ack(second)
        (posted,) = await fake_slack.wait_for_call("chat.postMessage")
        assert posted["channel"] == "C9"
        assert fake_slack.app_token_seen == [APP_TOKEN, APP_TOKEN]
    finally:
        await asyncio.wait_for(surface.stop(), timeout=5)


async def test_acks_never_wait_for_work_and_work_runs_a_bounded_number_at_a_time(
    make_app, fake_slack: FakeSlack, monkeypatch
) -> None:
    monkeypatch.setattr(surface_module, "WORK_SLOTS", 3)
    app = await make_app([Help, Toy])
    surface = create(app, app.config.section("slack"), _env(fake_slack, SLACK_APP_TOKEN=APP_TOKEN))
    toy: Toy = app.features["toy"]  # type: ignore[assignment]
    toy.gate.clear()
    try:
        await asyncio.wait_for(surface.start(), timeout=5)
        payloads = [
            slash_command_payload("/toy", "slow", response_url=fake_slack.response_url())
            for _ in range(7)
        ]
        envelopes = [await fake_slack.push("slash_commands", p) for p in payloads]
        for envelope in envelopes:  # all acked while the work of the first three is stuck
            await fake_slack.wait_ack(envelope)
        await asyncio.sleep(0.2)  # time for more work to start, were it allowed to
        assert toy.waiting == 3
        assert fake_slack.responses == []
        toy.gate.set()
        answers = await fake_slack.wait_for_response(7)
        assert [a["text"] for a in answers] == ["Finally done."] * 7
        assert toy.waiting == 0
    finally:
        await asyncio.wait_for(surface.stop(), timeout=5)


# --------------------------------------------------------------------------- set-up


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "SLACK_BOT_TOKEN"),
        ({"SLACK_BOT_TOKEN": BOT_TOKEN}, "SLACK_APP_TOKEN"),
        ({"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": BOT_TOKEN}, "xapp-"),
        ({"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SECRET, "PORT": "x"}, "PORT"),
    ],
)
async def test_missing_or_wrong_tokens_are_clear_errors_that_never_show_a_token(
    make_app, env: dict[str, str], message: str
) -> None:
    app = await make_app([Help])
    with pytest.raises(ConfigError, match=message) as raised:
        create(app, app.config.section("slack"), env)
    assert BOT_TOKEN not in str(raised.value)


async def test_http_mode_follows_the_environment(make_app, fake_slack: FakeSlack) -> None:
    app = await make_app([Help])
    env = _env(fake_slack, SLACK_SIGNING_SECRET=SECRET, PORT="8123")

    surface = create(app, app.config.section("slack"), env)

    assert (surface.mode, surface.port) == ("http", 8123)
    assert surface.client.base_url == fake_slack.base_url


async def test_no_token_or_secret_reaches_the_log_even_at_debug(http: Http, caplog) -> None:
    caplog.set_level(logging.DEBUG)

    await http.command("vote")
    await http.fake.wait_for_call("chat.postMessage")
    await http.post(slash_command_body("/toy", "vote"), secret="forged")
    await http.settle()

    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "chat.postMessage" in logged or "chat_postMessage" in logged  # the SDK did log
    for secret in (BOT_TOKEN, SECRET):
        assert secret not in logged


# --------------------------------------------------------------------------- durable intake


async def test_a_click_delivered_twice_is_acknowledged_twice_and_handled_once(http: Http) -> None:
    payload = block_actions_payload("toy.pick#0", "a", response_url=http.fake.response_url())
    body = interaction_body(payload)
    first, _, _ = await http.post(body)
    again, _, _ = await http.post(body, age=1)  # Slack sending it again, signed anew
    await http.settle()
    assert (first, again) == (200, 200)
    assert [p[1] for p in http.toy.picks] == ["a"]


async def test_a_request_acknowledged_before_a_crash_is_handled_at_the_next_start(
    http: Http,
) -> None:
    """What the journal holds at start was acknowledged and never handled: it runs now,
    answering through its response_url, and only once."""
    from adapters.slack.intake import request_id

    url = http.fake.response_url()
    payload = block_actions_payload("toy.pick#0", "b", user_id="U7", response_url=url)
    assert await http.app.intake.hold("slack", request_id(payload), payload)
    # held by the process that crashed, not this one
    await http.app.db.execute("UPDATE intake SET claimed_by = 'crashed-worker'")
    assert await http.surface.replay() == 1
    await http.settle()
    assert [(p[0], p[1]) for p in http.toy.picks] == [("U7", "b")]
    assert await unhandled(http.app.db, "slack") == []
    assert await http.surface.replay() == 0  # handled: not again
    answers = [body for path, body in http.fake.responses if path.endswith(url.rsplit("/", 1)[1])]
    assert any("You picked b" in str(a) for a in answers)
