"""Install by link: workspaces install the bot through slack-bolt's OAuth v2 flow on the
bot's web server, and each is then served with its own bot token, against the fake Slack.

The authorize page itself is slack.com's: a test follows `/slack/install`'s redirect only
as far as its Location (client id, scopes, state, redirect URI), gets a code for a
workspace from the fake (what Slack gives once the member approved), and comes back to
`/slack/oauth_redirect` with it, as the member's browser would.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import aiohttp
import msgspec
import pytest
from cryptography.fernet import Fernet
from slack_sdk.oauth.installation_store import Bot

from adapters.slack import create
from adapters.slack.distribution import HELD_RETRY, STATE_SECONDS
from adapters.slack.installations import Installations
from adapters.slack.surface import SlackSurface
from bot.app import App
from bot.cli import RedactSecrets
from bot.errors import ConfigError, StartupError
from bot.help import Help
from bot.model import ChannelRef, Post
from bot.polls import Polls, Surveys
from bot.secretbox import KEY_ENV, SecretBox
from bot.tenancy import Tenancy
from bot.web.feature import Web
from tests.fakes.fake_slack import (
    FakeSlack,
    app_uninstalled,
    signed_headers,
    slash_command_body,
    slash_command_payload,
    tokens_revoked,
)
from tests.fakes.fake_slack import fake_slack as fake_slack_fixture  # noqa: F401

SECRET = "test-signing-secret"
FEATURES = [Tenancy, Help, Polls, Surveys, Web]
WEB = {"enabled": True, "listen": "127.0.0.1:0"}


@dataclass
class Hosted:
    app: App
    surface: SlackSurface
    fake: FakeSlack
    session: aiohttp.ClientSession
    env: dict[str, str]

    @property
    def base(self) -> str:
        return self.app.features["web"].base_url  # type: ignore[attr-defined, no-any-return]

    async def start_install(self) -> tuple[str, str]:
        """GET /slack/install: the state in Slack's authorize URL, and the cookie that
        carries it."""
        async with self.session.get(self.base + "/slack/install", allow_redirects=False) as r:
            assert r.status == 302, await r.text()
            location = urlsplit(r.headers["Location"])
            cookie = r.headers["Set-Cookie"].split(";")[0]
        assert f"{location.scheme}://{location.netloc}{location.path}" == (
            "https://slack.com/oauth/v2/authorize"
        )
        query = parse_qs(location.query)
        assert query["client_id"] == [self.fake.installs.client_id]
        assert {"commands", "chat:write", "im:write"} <= set(query["scope"][0].split(","))
        assert query["redirect_uri"] == [self.base + "/slack/oauth_redirect"]
        (state,) = query["state"]
        assert cookie == f"slack-app-oauth-state={state}"
        return state, cookie

    async def come_back(self, code: str, state: str, cookie: str) -> tuple[int, str]:
        url = f"{self.base}/slack/oauth_redirect?code={code}&state={state}"
        async with self.session.get(url, headers={"Cookie": cookie}) as response:
            return response.status, await response.text()

    async def install(self, team: str) -> str:
        """The whole flow for `team`; the bot token the fake gave it."""
        state, cookie = await self.start_install()
        status, page = await self.come_back(self.fake.installs.code_for(team), state, cookie)
        assert status == 200, page
        return self.fake.installs.token_of(team)

    async def post(self, body: str) -> int:
        headers = signed_headers(SECRET, body, timestamp=int(time.time()))
        url = self.base + "/slack/events"  # the web server serves Slack's requests too
        async with self.session.post(url, data=body.encode(), headers=headers) as response:
            return response.status

    async def command(self, team: str, channel: str, top: str, text: str) -> dict:
        before = len(self.fake.responses)
        body = slash_command_body(
            f"/{top}", text, "U1", channel_id=channel, team_id=team,
            response_url=self.fake.response_url(),
        )  # fmt: skip
        assert await self.post(body) == 200
        return (await self.fake.wait_for_response(before + 1))[-1]

    async def event(self, payload: dict) -> int:
        return await self.post(json.dumps(payload))


def hosted_env(fake: FakeSlack, **extra: str) -> dict[str, str]:
    return {
        "SLACK_API_URL": fake.base_url,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_CLIENT_SECRET": fake.installs.client_secret,
        "ITSM_BOT_SECRET_KEY": Fernet.generate_key().decode(),
        **extra,
    }


@pytest.fixture
async def hosted(make_app, fake_slack: FakeSlack) -> AsyncIterator[Hosted]:
    env = hosted_env(fake_slack)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        run = await start(make_app, fake_slack, env, session)
        try:
            yield run
        finally:
            await run.surface.stop()


async def start(make_app, fake: FakeSlack, env: dict[str, str], session, db: str = "bot.db") -> Hosted:  # fmt: skip
    slack = {"mode": "http", "distribution": True, "client_id": fake.installs.client_id}
    app = await make_app(FEATURES, config={"web": WEB, "slack": slack}, db=db)
    surface = create(app, app.config.section("slack"), env)
    await surface.start()
    return Hosted(app, surface, fake, session, env)


async def poll_in(run: Hosted, team: str, channel: str) -> None:
    answer = await run.command(team, channel, "poll", 'create "Which practice?" Incident Change')
    assert "is posted" in answer["text"], answer


async def test_two_workspaces_install_and_each_is_served_with_its_own_token(
    hosted: Hosted, caplog
) -> None:
    for name in ("slack_sdk", "slack_bolt", "adapters", "bot"):
        caplog.set_level(logging.DEBUG, logger=name)
    caplog.handler.addFilter(RedactSecrets(hosted.env))  # as `itsm-bot` logs
    t2 = await hosted.install("T2")
    t3 = await hosted.install("T3")
    assert t2 != t3

    await poll_in(hosted, "T2", "C2")
    await poll_in(hosted, "T3", "C3")
    await hosted.app.outbox.drain()

    assert hosted.fake.posted_with("C2") == [t2]
    assert hosted.fake.posted_with("C3") == [t3]
    assert hosted.fake.posts("C2")[0]["team"] == "T2"
    # Moderator checks and the welcomes (each installer's direct messages) too.
    checks = [c.token for c in hosted.fake.calls if c.method == "users.info"]
    assert checks and set(checks) <= {t2, t3}
    opened = [c for c in hosted.fake.calls if c.method == "conversations.open"]
    assert sorted(c.token for c in opened) == sorted([t2, t3])
    # Tokens rest sealed in the database, and no log line ever shows one.
    rows = await hosted.app.db.fetchall("SELECT team_id, bot_token FROM slack_installations")
    assert {r["team_id"] for r in rows} == {"T2", "T3"}
    for row in rows:
        assert not row["bot_token"].startswith("xoxb-") and t2 not in row["bot_token"]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "oauth.v2.access" in logged  # slack-sdk's debug lines, answers and all, are there
    for secret in (t2, t3, hosted.env["SLACK_CLIENT_SECRET"]):
        assert secret not in logged
        assert secret not in caplog.text


async def test_no_token_is_logged_by_the_bot_itself(hosted: Hosted, caplog) -> None:
    """Without the filter: nothing the bot logs at INFO carries a token."""
    caplog.set_level(logging.INFO)
    token = await hosted.install("T2")
    await poll_in(hosted, "T2", "C2")
    await hosted.app.outbox.drain()
    await hosted.event(app_uninstalled("T2"))
    assert "workspace T2" in caplog.text
    assert token not in caplog.text and "xoxb-" not in caplog.text


async def test_a_bad_replayed_or_stale_state_is_refused(hosted: Hosted, clock) -> None:
    installs = hosted.fake.installs
    state, cookie = await hosted.start_install()
    forged, _ = await hosted.come_back(installs.code_for("T2"), "forged-state", "slack-app-oauth-state=forged-state")  # fmt: skip
    assert forged == 401
    other_browser, _ = await hosted.come_back(installs.code_for("T2"), state, "slack-app-oauth-state=x")  # fmt: skip
    assert other_browser == 400

    assert (await hosted.come_back(installs.code_for("T2"), state, cookie))[0] == 200
    replayed, _ = await hosted.come_back(installs.code_for("T4"), state, cookie)
    assert replayed == 401  # a state works once

    state, cookie = await hosted.start_install()
    clock.advance(STATE_SECONDS + 1)
    stale, _ = await hosted.come_back(installs.code_for("T5"), state, cookie)
    assert stale == 401

    state, cookie = await hosted.start_install()
    bad_code, _ = await hosted.come_back("code-nobody-gave", state, cookie)
    assert bad_code == 401
    teams = await hosted.app.db.fetchall("SELECT team_id FROM slack_installations")
    assert [r["team_id"] for r in teams] == ["T2"]


async def test_uninstall_stops_one_workspace_the_other_goes_on_and_reinstall_resumes(
    hosted: Hosted, clock
) -> None:
    t2 = await hosted.install("T2")
    t3 = await hosted.install("T3")
    outbox = hosted.app.outbox
    await outbox.drain()  # the welcomes
    soon = clock.now() + timedelta(minutes=5)  # queued before the uninstall, due after it
    await outbox.enqueue(ChannelRef("slack", "T2", "C2"), Post(title="For T2"), "k2", soon)
    await outbox.enqueue(ChannelRef("slack", "T3", "C3"), Post(title="For T3"), "k3", soon)

    assert await hosted.event(app_uninstalled("T2")) == 200
    hosted.fake.revoke(t2)  # Slack refuses the old token from now on
    gone = len(hosted.fake.calls)
    assert (
        await hosted.surface.distribution.store.async_find_bot(  # type: ignore[union-attr]
            enterprise_id=None, team_id="T2"
        )
        is None
    )
    await outbox.enqueue(ChannelRef("slack", "T2", "C2"), Post(title="Late"), "late")
    assert await outbox.state("late") == "failed"  # new work for it is not even queued

    clock.advance(6 * 60)
    await outbox.drain()
    assert hosted.fake.posted_with("C3") == [t3]
    assert hosted.fake.posted_with("C2") == []
    assert await outbox.state("k2") == "pending"  # held, not lost
    tried = [c.method for c in hosted.fake.calls[gone:] if c.token == t2]
    assert tried == []  # its work stopped: not even tried with the dead token
    # A command from it is acknowledged and does nothing (Slack would not send one).
    before = len(hosted.fake.responses)
    body = slash_command_body("/poll", "list", "U1", channel_id="C2", team_id="T2",
                              response_url=hosted.fake.response_url())  # fmt: skip
    assert await hosted.post(body) == 200
    await hosted.surface.settled()
    assert len(hosted.fake.responses) == before

    fresh = await hosted.install("T2")
    assert fresh != t2
    clock.advance(HELD_RETRY + 1)
    await outbox.drain()
    assert hosted.fake.posted_with("C2") == [fresh]
    assert await outbox.state("k2") == "sent"
    await poll_in(hosted, "T2", "C2")  # and its members are answered again


async def test_tokens_revoked_for_the_bot_ends_the_installation(hosted: Hosted) -> None:
    await hosted.install("T2")
    await hosted.event(tokens_revoked("T2", bot_users=[], users=["U7"]))  # a user's: no change
    store = hosted.surface.distribution.store  # type: ignore[union-attr]
    assert await store.async_find_bot(enterprise_id=None, team_id="T2") is not None
    await hosted.event(tokens_revoked("T2", bot_users=["UBOTT2"]))
    assert await store.async_find_bot(enterprise_id=None, team_id="T2") is None
    tenancy = hosted.app.features["tenancy"]
    assert not tenancy.is_active("slack", "T2")  # type: ignore[attr-defined]


async def test_installations_outlive_a_restart_and_need_the_same_key(
    make_app, fake_slack: FakeSlack
) -> None:
    env = hosted_env(fake_slack)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        run = await start(make_app, fake_slack, env, session)
        token = await run.install("T2")
        await run.surface.stop()
        again = await start(make_app, fake_slack, env, session)
        try:
            await poll_in(again, "T2", "C2")
            await again.app.outbox.drain()
            assert fake_slack.posted_with("C2") == [token]
        finally:
            await again.surface.stop()
        other_key = {**env, "ITSM_BOT_SECRET_KEY": Fernet.generate_key().decode()}
        app = await make_app(FEATURES, config=msgspec.structs.asdict(again.app.config))
        refused = create(app, app.config.section("slack"), other_key)
        try:
            with pytest.raises(StartupError, match="ITSM_BOT_SECRET_KEY"):
                await refused.start()
        finally:
            await refused.stop()


async def test_distribution_needs_its_credentials_and_a_good_key(make_app, fake_slack) -> None:
    app = await make_app(FEATURES, config={"slack": {"distribution": True, "client_id": "1.2"}})
    settings = app.config.section("slack")
    env = hosted_env(fake_slack, SLACK_APP_TOKEN="xapp-1")
    for missing, named in [
        ("SLACK_CLIENT_SECRET", "SLACK_CLIENT_SECRET"),
        ("ITSM_BOT_SECRET_KEY", "ITSM_BOT_SECRET_KEY"),
    ]:
        with pytest.raises(ConfigError, match=named):
            create(app, settings, {k: v for k, v in env.items() if k != missing})
    with pytest.raises(ConfigError, match="not a valid key"):
        create(app, settings, {**env, "ITSM_BOT_SECRET_KEY": "not-a-key"})
    no_id = await make_app(FEATURES, config={"slack": {"distribution": True}}, db="other.db")
    with pytest.raises(ConfigError, match="client_id"):
        create(no_id, no_id.config.section("slack"), env)


async def test_in_socket_mode_the_uninstall_comes_over_the_socket(
    make_app, fake_slack: FakeSlack
) -> None:
    slack = {"distribution": True, "client_id": fake_slack.installs.client_id}
    app = await make_app(FEATURES, config={"web": WEB, "slack": slack})
    env = hosted_env(fake_slack, SLACK_APP_TOKEN="xapp-1-A1-test")
    del env["SLACK_SIGNING_SECRET"]
    surface = create(app, app.config.section("slack"), env)
    assert surface.mode == "socket"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        run = Hosted(app, surface, fake_slack, session, env)
        await surface.start()
        try:
            await fake_slack.wait_connected(1)
            await run.install("T2")
            t3 = await run.install("T3")

            gone = await fake_slack.push("events_api", app_uninstalled("T2"))
            await fake_slack.wait_ack(gone)
            await fake_slack.wait_until(lambda: not app.features["tenancy"].is_active("slack", "T2"))  # type: ignore[attr-defined]  # fmt: skip
            assert [t for t, _ in await surface.distribution.store.teams()] == ["T3"]  # type: ignore[union-attr]  # fmt: skip

            url = fake_slack.response_url()
            payload = slash_command_payload("/poll", 'create "Q?" A B', channel_id="C3", team_id="T3", response_url=url)  # fmt: skip
            await fake_slack.wait_ack(await fake_slack.push("slash_commands", payload))
            await surface.settled()
            await app.outbox.drain()
            assert fake_slack.posted_with("C3") == [t3]
        finally:
            await surface.stop()


async def test_without_the_web_console_http_mode_serves_the_install_itself(
    make_app, fake_slack: FakeSlack
) -> None:
    slack = {"mode": "http", "host": "127.0.0.1", "port": 0, "distribution": True,
             "client_id": fake_slack.installs.client_id}  # fmt: skip
    app = await make_app(FEATURES, config={"slack": slack})
    surface = create(app, app.config.section("slack"), hosted_env(fake_slack))
    await surface.start()
    base = f"http://127.0.0.1:{surface.port}"
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
            async with session.get(base + "/slack/install", allow_redirects=False) as r:
                assert r.status == 302
                query = parse_qs(urlsplit(r.headers["Location"]).query)
                cookie = r.headers["Set-Cookie"].split(";")[0]
            assert "redirect_uri" not in query  # Slack uses the app's one redirect URL
            code = fake_slack.installs.code_for("T2")
            url = f"{base}/slack/oauth_redirect?code={code}&state={query['state'][0]}"
            async with session.get(url, headers={"Cookie": cookie}) as r:
                assert r.status == 200
        assert fake_slack.installs.redirect_uris == [None]
        assert [t for t, _ in await surface.distribution.store.teams()] == ["T2"]  # type: ignore[union-attr]  # fmt: skip
    finally:
        await surface.stop()


async def test_socket_mode_without_the_web_console_cannot_serve_the_install(
    make_app, fake_slack: FakeSlack
) -> None:
    slack = {"distribution": True, "client_id": "1.2"}
    app = await make_app(FEATURES, config={"slack": slack})
    surface = create(app, app.config.section("slack"), hosted_env(fake_slack, SLACK_APP_TOKEN="xapp-1"))  # fmt: skip
    try:
        with pytest.raises(StartupError, match=r"\[web\] enabled"):
            await surface.start()
    finally:
        await surface.stop()


async def test_a_token_slack_refuses_stops_that_workspace_only(hosted: Hosted) -> None:
    """An uninstall whose event never came (the bot was down): the first refusal of the
    token ends that installation; the other workspaces' posts are not paused."""
    t2 = await hosted.install("T2")
    t3 = await hosted.install("T3")
    outbox = hosted.app.outbox
    await outbox.drain()  # the welcomes
    hosted.fake.revoke(t2)

    await outbox.enqueue(ChannelRef("slack", "T2", "C2"), Post(title="For T2"), "k2")
    await outbox.enqueue(ChannelRef("slack", "T3", "C3"), Post(title="For T3"), "k3")
    await outbox.drain()

    assert hosted.fake.posted_with("C3") == [t3]
    assert await outbox.state("k2") == "pending"
    assert outbox.paused == {}
    store = hosted.surface.distribution.store  # type: ignore[union-attr]
    assert [t for t, _ in await store.teams()] == ["T3"]
    assert not hosted.app.features["tenancy"].is_active("slack", "T2")  # type: ignore[attr-defined]


async def test_sealed_tokens_open_only_with_their_key_and_keys_rotate(make_app) -> None:
    app = await make_app([Tenancy])
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    store = Installations(app.db, SecretBox([old]), app.clock)
    await store.migrate()
    await store.async_save_bot(Bot(team_id="T2", bot_token="xoxb-t2-secret", bot_id="B2",
                                   bot_user_id="U2", installed_at=0.0))  # fmt: skip

    rotated = Installations(app.db, SecretBox.from_env({KEY_ENV: f"{new},{old}"}), app.clock)
    found = await rotated.async_find_bot(enterprise_id=None, team_id="T2")
    assert found is not None and found.bot_token == "xoxb-t2-secret"
    stranger = Installations(app.db, SecretBox([new]), app.clock)
    with pytest.raises(ValueError, match=KEY_ENV):
        await stranger.async_find_bot(enterprise_id=None, team_id="T2")
    with pytest.raises(ValueError, match="bot token"):
        await store.async_save_bot(Bot(team_id="T3", bot_token="", bot_id="B3", bot_user_id="U3", installed_at=0.0))  # fmt: skip
    assert await store.migrate() == 0  # run again: nothing to do
    assert await app.db.version("slack-installations") == 1
