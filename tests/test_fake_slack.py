"""The Slack fake must behave like Slack for the real slack-sdk and slack-bolt clients.

If these tests pass, a test of the bot that fails against the fake points at the bot,
not at the fake.
"""

from __future__ import annotations

import asyncio
import json
import struct
import time
import zlib
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.fake_slack import (
    BOT_USER_ID,
    FakeSlack,
    block_actions_payload,
    interaction_body,
    signed_headers,
    slash_command_body,
    slash_command_payload,
    view_submission_payload,
)
from tests.fakes.fake_slack import fake_slack as fake_slack_fixture  # noqa: F401

BOT_TOKEN = "xoxb-fake-bot-token"
APP_TOKEN = "xapp-1-A1-fake-app-token"
SECRET = "fake-signing-secret"


def _client(fake: FakeSlack, token: str = BOT_TOKEN) -> AsyncWebClient:
    return AsyncWebClient(token=token, base_url=fake.base_url)


def _tiny_png() -> bytes:
    """A valid 1x1 PNG, so the upload carries real binary data (NUL bytes included)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


# --------------------------------------------------------------------------- Web API


async def test_posted_messages_come_back_newest_first_from_history(fake_slack: FakeSlack) -> None:
    client = _client(fake_slack)
    metadata = {"event_type": "feed_item", "event_payload": {"item_id": "abc"}}
    first = await client.chat_postMessage(channel="C1", text="first", metadata=metadata)
    second = await client.chat_postMessage(channel="C1", text="second")
    await client.chat_postMessage(channel="C2", text="elsewhere")
    await client.chat_postMessage(channel="C1", text="in thread", thread_ts=first["ts"])

    assert float(second["ts"]) > float(first["ts"])
    history = await client.conversations_history(channel="C1", include_all_metadata=True)
    assert [m["text"] for m in history["messages"]] == ["second", "first"]
    assert history["messages"][1]["metadata"] == metadata
    assert history["messages"][1]["ts"] == first["ts"]

    # Slack hides metadata unless asked; so does the fake.
    plain = await client.conversations_history(channel="C1")
    assert all("metadata" not in m for m in plain["messages"])

    call = fake_slack.calls[0]
    assert call.method == "chat.postMessage"
    assert call.headers["Authorization"] == f"Bearer {BOT_TOKEN}"
    assert call.token == BOT_TOKEN


async def test_form_encoded_calls_are_read_like_json_ones(fake_slack: FakeSlack) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    await _client(fake_slack).api_call(
        "chat.postMessage", data={"channel": "C1", "text": "hi", "blocks": json.dumps(blocks)}
    )

    (args,) = fake_slack.calls_to("chat.postMessage")
    assert args["blocks"] == blocks
    assert fake_slack.messages["C1"][0]["blocks"] == blocks


async def test_rate_limit_is_retried_and_the_message_posted_once(fake_slack: FakeSlack) -> None:
    client = _client(fake_slack)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=0)

    response = await client.chat_postMessage(channel="C1", text="hello")

    assert response["ok"] is True
    attempts = [c for c in fake_slack.calls if c.method == "chat.postMessage"]
    assert [c.status for c in attempts] == [429, 200]
    assert len(fake_slack.messages["C1"]) == 1


async def test_rate_limit_is_not_retried_by_default(fake_slack: FakeSlack) -> None:
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=7)

    with pytest.raises(SlackApiError) as raised:
        await _client(fake_slack).chat_postMessage(channel="C1", text="hello")

    assert raised.value.response.status_code == 429
    assert raised.value.response["error"] == "ratelimited"
    assert raised.value.response.headers["Retry-After"] == "7"
    assert len(fake_slack.calls_to("chat.postMessage")) == 1


async def test_server_error_surfaces_and_only_once(fake_slack: FakeSlack) -> None:
    client = _client(fake_slack)
    fake_slack.fail_next("chat.postMessage", status=500)

    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(channel="C1", text="hello")
    assert raised.value.response.status_code == 500

    assert (await client.chat_postMessage(channel="C1", text="again"))["ok"] is True


async def test_fail_next_with_error_code_raises_slack_api_error(fake_slack: FakeSlack) -> None:
    fake_slack.fail_next("chat.postMessage", status=200, error="channel_not_found", times=2)
    client = _client(fake_slack)

    for _ in range(2):
        with pytest.raises(SlackApiError) as raised:
            await client.chat_postMessage(channel="C9", text="hello")
        assert raised.value.response.status_code == 200
        assert raised.value.response["error"] == "channel_not_found"
    assert (await client.chat_postMessage(channel="C9", text="hello"))["ok"] is True


async def test_unknown_methods_are_refused_and_recorded(fake_slack: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as raised:
        await _client(fake_slack).api_call("reminders.teleport", json={"when": "now"})

    assert raised.value.response["error"] == "unknown_method"
    assert fake_slack.calls_to("reminders.teleport") == [{"when": "now"}]


async def test_tokens_are_checked_like_slack_does(fake_slack: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as raised:
        await _client(fake_slack).apps_connections_open(app_token=BOT_TOKEN)
    assert raised.value.response["error"] == "invalid_auth"

    opened = await _client(fake_slack).apps_connections_open(app_token=APP_TOKEN)
    assert opened["url"] == fake_slack.root_url.replace("http://", "ws://") + "/link"
    assert fake_slack.app_token_seen == [BOT_TOKEN, APP_TOKEN]

    with pytest.raises(SlackApiError) as raised:
        await _client(fake_slack, token=APP_TOKEN).chat_postMessage(channel="C1", text="x")
    assert raised.value.response["error"] == "not_allowed_token_type"

    with pytest.raises(SlackApiError) as raised:
        await AsyncWebClient(base_url=fake_slack.base_url).auth_test()
    assert raised.value.response["error"] == "not_authed"


async def test_files_upload_v2_delivers_the_bytes(fake_slack: FakeSlack) -> None:
    png = _tiny_png()

    response = await _client(fake_slack).files_upload_v2(
        channel="C1",
        file=png,
        filename="chart.png",
        title="Weekly chart",
        initial_comment="This week's poll",
    )

    methods = [c.method for c in fake_slack.calls]
    assert methods == ["files.getUploadURLExternal", "files.completeUploadExternal"]
    assert fake_slack.calls_to("files.getUploadURLExternal")[0]["length"] == str(len(png))
    upload = fake_slack.uploads[response["file"]["id"]]
    assert upload.data == png
    assert upload.completed
    assert (upload.filename, upload.title) == ("chart.png", "Weekly chart")
    assert (upload.channel_id, upload.initial_comment) == ("C1", "This week's poll")


async def test_other_methods_answer_in_slack_shapes(fake_slack: FakeSlack) -> None:
    client = _client(fake_slack)
    fake_slack.users["UADMIN"] = {"real_name": "Ada Admin", "is_admin": True}

    admin = (await client.users_info(user="UADMIN"))["user"]
    member = (await client.users_info(user="U2"))["user"]
    assert (admin["id"], admin["real_name"], admin["is_admin"]) == ("UADMIN", "Ada Admin", True)
    assert (member["id"], member["is_admin"], member["is_owner"], member["tz"]) == (
        "U2",
        False,
        False,
        "UTC",
    )

    auth = await client.auth_test()
    assert (auth["team_id"], auth["user_id"], auth["bot_id"]) == ("T1", BOT_USER_ID, "BBOT")

    posted = await client.chat_postMessage(channel="C1", text="draft", blocks=[])
    updated = await client.chat_update(channel="C1", ts=posted["ts"], text="final")
    assert updated["message"]["text"] == "final"
    history = await client.conversations_history(channel="C1")
    assert [m["text"] for m in history["messages"]] == ["final"]

    ephemeral = await client.chat_postEphemeral(channel="C1", user="U2", text="psst")
    assert float(ephemeral["message_ts"]) > float(posted["ts"])
    link = await client.chat_getPermalink(channel="C1", message_ts=posted["ts"])
    assert link["permalink"].endswith("/archives/C1/p" + posted["ts"].replace(".", ""))

    view = {"type": "modal", "callback_id": "poll", "title": {"type": "plain_text", "text": "P"}}
    opened = await client.views_open(trigger_id="111.222", view=view)
    assert opened["view"]["callback_id"] == "poll"
    pushed = await client.views_push(trigger_id="111.222", view=view)
    assert pushed["view"]["id"] != opened["view"]["id"]
    changed = await client.views_update(view_id=opened["view"]["id"], view={**view, "blocks": []})
    assert changed["view"]["id"] == opened["view"]["id"]

    info = await client.conversations_info(channel="C1")
    assert info["channel"]["id"] == "C1"

    with pytest.raises(SlackApiError) as raised, pytest.warns(UserWarning, match="`text`"):
        await client.chat_postMessage(channel="C1")
    assert raised.value.response["error"] == "no_text"


async def test_waiting_for_a_call_that_never_comes_times_out(fake_slack: FakeSlack) -> None:
    with pytest.raises(TimeoutError, match="chat.postMessage"):
        await fake_slack.wait_for_call("chat.postMessage", timeout=0.05)


# --------------------------------------------------------------------------- Socket Mode


async def test_socket_mode_envelopes_are_acked_and_survive_a_refresh(
    fake_slack: FakeSlack,
) -> None:
    app = AsyncApp(client=_client(fake_slack))
    seen: list[str] = []

    @app.command("/itsm")
    async def on_command(ack: Any, say: Any, command: dict[str, Any]) -> None:
        await ack(f"working on {command['text']}")
        seen.append(command["text"])
        await say(f"done: {command['text']}")

    handler = AsyncSocketModeHandler(app, app_token=APP_TOKEN)
    try:
        await asyncio.wait_for(handler.connect_async(), timeout=5)
        await asyncio.wait_for(fake_slack.wait_connected(1), timeout=5)
        assert fake_slack.app_token_seen == [APP_TOKEN]

        first = await fake_slack.push("slash_commands", slash_command_payload("/itsm", "one"))
        ack = await asyncio.wait_for(fake_slack.wait_ack(first), timeout=5)
        assert ack == {"envelope_id": first, "payload": {"text": "working on one"}}
        posted = await asyncio.wait_for(fake_slack.wait_for_call("chat.postMessage"), timeout=5)
        assert (posted[0]["channel"], posted[0]["text"]) == ("C1", "done: one")
        # Bolt authorises the first request with the bot token, not the app token.
        assert {c.token for c in fake_slack.calls if c.method == "auth.test"} == {BOT_TOKEN}

        await fake_slack.disconnect("refresh_requested")
        await asyncio.wait_for(fake_slack.wait_connected(2), timeout=5)
        assert fake_slack.app_token_seen == [APP_TOKEN, APP_TOKEN]

        second = await fake_slack.push("slash_commands", slash_command_payload("/itsm", "two"))
        ack = await asyncio.wait_for(fake_slack.wait_ack(second), timeout=5)
        assert ack["payload"] == {"text": "working on two"}
        posted = await asyncio.wait_for(
            fake_slack.wait_for_call("chat.postMessage", count=2), timeout=5
        )
        assert posted[1]["text"] == "done: two"
        assert seen == ["one", "two"]
        assert fake_slack.connections == 2
    finally:
        await handler.close_async()


# --------------------------------------------------------------------------- HTTP mode


def _http_app(fake: FakeSlack) -> AsyncApp:
    app = AsyncApp(signing_secret=SECRET, client=_client(fake))

    @app.command("/itsm")
    async def on_command(ack: Any, respond: Any, command: dict[str, Any]) -> None:
        await ack("on it")
        await respond(f"answered {command['text']}")

    return app


async def test_signed_slash_command_is_acked_and_responded_to(fake_slack: FakeSlack) -> None:
    app = _http_app(fake_slack)
    body = slash_command_body("/itsm", "status", response_url=fake_slack.response_url())

    response = await app.async_dispatch(
        AsyncBoltRequest(body=body, headers=signed_headers(SECRET, body))
    )

    # ack("text") answers text/plain over HTTP; Socket Mode wraps the same as {"text": ...}.
    assert (response.status, response.body) == (200, "on it")
    answers = await asyncio.wait_for(fake_slack.wait_for_response(), timeout=5)
    assert answers[0]["text"] == "answered status"
    assert fake_slack.responses[0][0].startswith("/respond/")


@pytest.mark.parametrize(
    ("secret", "age"),
    [("not-the-secret", 0), (SECRET, 6 * 60)],
    ids=["wrong-secret", "stale-timestamp"],
)
async def test_badly_signed_requests_are_refused(
    fake_slack: FakeSlack, secret: str, age: int
) -> None:
    app = _http_app(fake_slack)
    body = slash_command_body("/itsm", "status", response_url=fake_slack.response_url())
    headers = signed_headers(secret, body, timestamp=int(time.time()) - age)

    response = await app.async_dispatch(AsyncBoltRequest(body=body, headers=headers))

    assert response.status == 401
    assert fake_slack.calls == []


def test_slash_command_body_is_the_urlencoded_payload() -> None:
    body = slash_command_body(
        "/itsm", "a b&c", user_id="U7", response_url="http://x/respond/1", trigger_id="9.9"
    )
    fields = dict(parse_qsl(body))
    assert fields == slash_command_payload(
        "/itsm", "a b&c", user_id="U7", response_url="http://x/respond/1", trigger_id="9.9"
    )
    # Without one given, every payload gets a trigger_id of its own, as from Slack.
    assert (
        slash_command_payload("/itsm", "")["trigger_id"]
        != slash_command_payload("/itsm", "")["trigger_id"]
    )
    assert fields["text"] == "a b&c"


async def test_block_actions_payload_reaches_an_action_listener(fake_slack: FakeSlack) -> None:
    app = AsyncApp(signing_secret=SECRET, client=_client(fake_slack))
    clicked: list[tuple[str, str, str]] = []

    @app.action("poll_vote")
    async def on_vote(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        clicked.append(
            (body["user"]["id"], body["actions"][0]["value"], body["container"]["message_ts"])
        )

    body = interaction_body(block_actions_payload("poll_vote", "option-2", user_id="U5"))
    response = await app.async_dispatch(
        AsyncBoltRequest(body=body, headers=signed_headers(SECRET, body))
    )

    assert response.status == 200
    assert clicked == [("U5", "option-2", "1700000000.000100")]


async def test_view_submission_payload_reaches_a_view_listener(fake_slack: FakeSlack) -> None:
    app = AsyncApp(signing_secret=SECRET, client=_client(fake_slack))
    submitted: list[tuple[str, str]] = []

    @app.view("suggest_feed")
    async def on_submit(ack: Any, view: dict[str, Any]) -> None:
        await ack()
        values = view["state"]["values"]
        submitted.append((values["url"]["url"]["value"], view["private_metadata"]))

    payload = view_submission_payload(
        "suggest_feed", {"url": "https://example.org/feed.xml", "note": "ITIL"}, "C1"
    )
    body = interaction_body(payload)
    response = await app.async_dispatch(
        AsyncBoltRequest(body=body, headers=signed_headers(SECRET, body))
    )

    assert response.status == 200
    assert submitted == [("https://example.org/feed.xml", "C1")]


# --------------------------------------------------------------------------- faults on demand


def _bare_client(fake: FakeSlack, token: str = BOT_TOKEN) -> AsyncWebClient:
    """A client that retries nothing, so each call is one attempt the test can count."""
    return AsyncWebClient(token=token, base_url=fake.base_url, retry_handlers=[])


def _key_metadata(key: str) -> dict[str, Any]:
    return {"event_type": "itsm_post", "event_payload": {"key": key}}


async def test_latency_delays_the_answer_not_the_effect(fake_slack: FakeSlack) -> None:
    fake_slack.latency = 0.3
    client = _client(fake_slack)

    started = time.monotonic()
    response = await client.chat_postMessage(channel="C1", text="slow")
    answered = time.monotonic()

    (call,) = fake_slack.calls
    assert started <= call.at <= answered
    assert answered - call.at >= 0.3, "the answer came before the latency was over"
    assert (call.status, call.response["ts"]) == (200, response["ts"])
    assert [m["text"] for m in fake_slack.posts("C1")] == ["slow"]


async def test_a_client_that_times_out_leaves_the_message_posted(fake_slack: FakeSlack) -> None:
    fake_slack.latency = 30
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.base_url, timeout=1)

    with pytest.raises(TimeoutError):
        await client.chat_postMessage(channel="C1", text="in doubt")

    # The call took effect when it arrived: the client cannot know it was posted.
    assert [m["text"] for m in fake_slack.posts("C1")] == ["in doubt"]
    assert [c.status for c in fake_slack.calls] == [200]


async def test_timestamps_are_wall_clock_and_strictly_increasing(fake_slack: FakeSlack) -> None:
    client = _client(fake_slack)
    before = time.time()
    stamps = [(await client.chat_postMessage(channel="C1", text=str(n)))["ts"] for n in range(20)]
    after = time.time()

    assert all(len(ts.split(".")[1]) == 6 for ts in stamps)
    as_numbers = [float(ts) for ts in stamps]
    assert as_numbers == sorted(set(as_numbers)), "timestamps must be unique and increasing"
    # Strictly increasing may push a burst a few microseconds past the clock, no more.
    assert before - 0.001 <= as_numbers[0] and as_numbers[-1] <= after + 0.001


async def test_history_honours_oldest_latest_and_inclusive(fake_slack: FakeSlack) -> None:
    client = _client(fake_slack)
    first = (await client.chat_postMessage(channel="C1", text="first"))["ts"]
    middle_of_time = time.time_ns() // 1000
    mark = f"{middle_of_time // 1_000_000}.{middle_of_time % 1_000_000:06d}"
    second = (await client.chat_postMessage(channel="C1", text="second"))["ts"]
    third = (await client.chat_postMessage(channel="C1", text="third"))["ts"]

    async def texts(**kwargs: Any) -> list[str]:
        page = await client.conversations_history(channel="C1", **kwargs)
        return [m["text"] for m in page["messages"]]

    assert await texts(oldest=mark) == ["third", "second"]  # a wall-clock bound
    assert await texts(latest=mark) == ["first"]
    assert await texts(oldest=second) == ["third"]
    assert await texts(oldest=second, inclusive=True) == ["third", "second"]
    assert await texts(latest=third) == ["second", "first"]
    assert await texts(latest=third, inclusive=True, limit=1) == ["third"]
    assert await texts(oldest=first, latest=third) == ["second"]
    assert await texts(oldest=first, latest=third, inclusive=True) == ["third", "second", "first"]

    with pytest.raises(SlackApiError) as raised:
        await client.conversations_history(channel="C1", oldest="yesterday")
    assert raised.value.response["error"] == "invalid_ts_oldest"


async def test_history_pages_with_real_cursors(fake_slack: FakeSlack) -> None:
    client = _client(fake_slack)
    posted = [(await client.chat_postMessage(channel="C1", text=f"m{n}"))["ts"] for n in range(25)]
    await client.chat_postMessage(channel="C1", text="reply", thread_ts=posted[3])

    first = await client.conversations_history(channel="C1", limit=10)
    assert first["has_more"] is True and first["response_metadata"]["next_cursor"]
    sizes: list[int] = []
    seen: list[str] = []
    async for page in first:  # slack-sdk follows next_cursor itself, reusing one object
        sizes.append(len(page["messages"]))
        seen += [m["ts"] for m in page["messages"]]
        if len(sizes) > 5:
            break  # a cursor that never ends must fail the test, not hang it

    assert sizes == [10, 10, 5]
    assert seen == list(reversed(posted)), "every top-level message once, newest first"
    assert first["has_more"] is False  # the last page
    assert first["response_metadata"]["next_cursor"] == ""
    cursors = [
        c.args.get("cursor") for c in fake_slack.calls if c.method == "conversations.history"
    ]
    assert cursors[0] is None and all(cursors[1:]) and len(set(cursors[1:])) == 2

    # A cursor keeps the other bounds: paging inside a window stays inside it.
    window = await client.conversations_history(
        channel="C1", oldest=posted[4], latest=posted[20], limit=7
    )
    inside: list[str] = []
    async for page in window:
        inside += [m["ts"] for m in page["messages"]]
        if len(inside) > 25:
            break
    assert inside == list(reversed(posted[5:20]))

    with pytest.raises(SlackApiError) as raised:
        await client.conversations_history(channel="C1", cursor="not-a-cursor")
    assert raised.value.response["error"] == "invalid_cursor"


async def test_rate_limit_refuses_posts_over_the_bucket_per_channel(
    fake_slack: FakeSlack,
) -> None:
    # So slow that a refill cannot happen during the test, however busy the machine.
    fake_slack.rate_limit(per_second=0.001, burst=2)
    client = _bare_client(fake_slack)

    await client.chat_postMessage(channel="C1", text="one")
    await client.chat_postMessage(channel="C1", text="two")
    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(channel="C1", text="three")
    other = await client.chat_postMessage(channel="C2", text="elsewhere")

    response = raised.value.response
    assert (response.status_code, response["error"]) == (429, "ratelimited")
    assert response.headers["Retry-After"] == "1"
    assert [m["text"] for m in fake_slack.posts("C1")] == ["one", "two"]
    assert other["ok"] is True, "each channel has its own bucket"
    assert [channel for _, channel in fake_slack.rate_limited] == ["C1"]
    assert [c.status for c in fake_slack.calls] == [200, 200, 429, 200]
    assert fake_slack.calls[2].at <= fake_slack.rate_limited[0][0] <= time.monotonic()

    # Other methods are not limited, and injected 429s are not the limiter's.
    fake_slack.fail_next("chat.postMessage", status=429)
    with pytest.raises(SlackApiError):
        await client.chat_postMessage(channel="C3", text="x")
    assert (await client.chat_update(channel="C1", ts=other["ts"], text="edit"))["ok"] is True
    assert len(fake_slack.rate_limited) == 1

    fake_slack.rate_limit(None)
    assert (await client.chat_postMessage(channel="C1", text="free again"))["ok"] is True


async def test_a_retrying_client_honours_retry_after_and_posts_once(
    fake_slack: FakeSlack,
) -> None:
    fake_slack.rate_limit(per_second=0.001, burst=2)
    client = _bare_client(fake_slack)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=10))

    async def post_all() -> None:
        for n in range(3):
            await client.chat_postMessage(channel="C1", text=f"#{n}")

    posting = asyncio.create_task(post_all())
    try:
        await fake_slack.wait_until(lambda: fake_slack.rate_limited, timeout=10, what="a 429")
        fake_slack.rate_limit(per_second=1000.0, burst=2)  # the limit lifts; the retry works
        await asyncio.wait_for(posting, timeout=60)
    finally:
        posting.cancel()

    posts = [c for c in fake_slack.calls if c.method == "chat.postMessage"]
    statuses = [c.status for c in posts]
    assert statuses[:3] == [200, 200, 429] and statuses[-1] == 200
    assert set(statuses[2:-1]) == {429}
    for refused, retry in zip(posts[2:-1], posts[3:], strict=True):
        assert retry.at - refused.at >= 1.0, "the client did not wait Retry-After"
    assert [m["text"] for m in fake_slack.posts("C1")] == ["#0", "#1", "#2"]


async def test_outage_fails_every_method_until_recovered(fake_slack: FakeSlack) -> None:
    client = _bare_client(fake_slack)
    fake_slack.outage(status=503, error="service_unavailable")

    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(channel="C1", text="lost in the outage")
    assert raised.value.response.status_code == 503
    assert raised.value.response["error"] == "service_unavailable"
    with pytest.raises(SlackApiError) as raised:
        await client.auth_test()
    assert raised.value.response.status_code == 503
    # Socket Mode can still reconnect: apps.connections.open is spared by default.
    assert (await client.apps_connections_open(app_token=APP_TOKEN))["ok"] is True
    assert fake_slack.messages == {}
    assert [c.status for c in fake_slack.calls] == [503, 503, 200]

    fake_slack.recover()
    assert (await client.chat_postMessage(channel="C1", text="after"))["ok"] is True
    assert [m["text"] for m in fake_slack.posts("C1")] == ["after"]


async def test_a_429_outage_of_some_methods_sends_retry_after(fake_slack: FakeSlack) -> None:
    client = _bare_client(fake_slack)
    fake_slack.outage(status=429, methods=["chat.postMessage"], retry_after=7)

    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(channel="C1", text="x")
    assert raised.value.response.status_code == 429
    assert raised.value.response["error"] == "ratelimited"
    assert raised.value.response.headers["Retry-After"] == "7"
    assert (await client.auth_test())["ok"] is True, "other methods are not in the outage"
    assert fake_slack.rate_limited == [] and fake_slack.messages == {}


async def test_a_lost_answer_raises_in_the_client_but_the_message_is_posted(
    fake_slack: FakeSlack,
) -> None:
    fake_slack.lose_answer("chat.postMessage")
    client = _bare_client(fake_slack)
    metadata = _key_metadata("k1")

    with pytest.raises(aiohttp.ServerDisconnectedError):
        await client.chat_postMessage(channel="C1", text="posted", metadata=metadata)

    (call,) = fake_slack.calls
    assert (call.status, call.lost) == (200, True)
    assert fake_slack.post_keys("C1") == ["k1"]
    # Only one answer was to be lost.
    assert (await client.chat_postMessage(channel="C1", text="next"))["ok"] is True


async def test_slack_sdk_retries_a_lost_answer_by_default_and_posts_twice(
    fake_slack: FakeSlack,
) -> None:
    """The default AsyncWebClient retries a dropped connection once: the doubling hazard an
    idempotency key has to catch."""
    fake_slack.lose_answer("chat.postMessage")

    response = await _client(fake_slack).chat_postMessage(
        channel="C1", text="twice", metadata=_key_metadata("k1")
    )

    assert response["ok"] is True
    assert [(c.status, c.lost) for c in fake_slack.calls] == [(200, True), (200, False)]
    assert fake_slack.post_keys("C1") == ["k1", "k1"]


async def test_a_hung_call_is_not_processed_until_released(fake_slack: FakeSlack) -> None:
    fake_slack.hang("chat.postMessage", times=2, channel="C1")
    client = _bare_client(fake_slack)

    held = asyncio.create_task(client.chat_postMessage(channel="C1", text="held"))
    try:
        await fake_slack.wait_hung(1)
        assert fake_slack.calls[0].status == 0 and "C1" not in fake_slack.messages
        # Only calls for C1 hang, though the rule has one more to hold.
        other = await client.chat_postMessage(channel="C2", text="free")
        assert other["ok"] is True and fake_slack.hung == 1 and not held.done()

        fake_slack.release_hangs()
        response = await asyncio.wait_for(held, timeout=10)
    finally:
        held.cancel()

    assert response["ok"] is True and fake_slack.hung == 0
    assert [m["text"] for m in fake_slack.posts("C1")] == ["held"]
    # Releasing disarmed the rest of the rule.
    assert (await client.chat_postMessage(channel="C1", text="after"))["ok"] is True
    assert [c.status for c in fake_slack.calls] == [200, 200, 200]


async def test_closing_the_fake_drops_hung_calls_without_processing_them() -> None:
    fake = await FakeSlack().start()
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake.base_url, retry_handlers=[])
    fake.hang("chat.postMessage", times=2)
    held = [
        asyncio.create_task(client.chat_postMessage(channel="C1", text=str(n))) for n in range(2)
    ]
    try:
        await fake.wait_hung(2)
        await asyncio.wait_for(fake.close(), timeout=30)
        results = await asyncio.wait_for(asyncio.gather(*held, return_exceptions=True), timeout=30)
    finally:
        for task in held:
            task.cancel()
        await fake.close()

    assert all(isinstance(r, aiohttp.ClientError) for r in results), results
    assert fake.messages == {} and fake.hung == 0
    assert [c.status for c in fake.calls] == [0, 0]


async def test_a_revoked_token_is_refused_everywhere(fake_slack: FakeSlack) -> None:
    client = _bare_client(fake_slack)
    assert (await client.auth_test())["ok"] is True
    fake_slack.revoke(BOT_TOKEN)

    for call in (client.auth_test(), client.chat_postMessage(channel="C1", text="x")):
        with pytest.raises(SlackApiError) as raised:
            await call
        assert raised.value.response.status_code == 200
        assert raised.value.response["error"] == "token_revoked"
    assert fake_slack.messages == {}

    other = _bare_client(fake_slack, token="xoxb-another-install")
    assert (await other.chat_postMessage(channel="C1", text="still fine"))["ok"] is True

    fake_slack.revoke("xoxb-another-install", error="account_inactive")
    with pytest.raises(SlackApiError) as raised:
        await other.auth_test()
    assert raised.value.response["error"] == "account_inactive"


async def test_valid_tokens_makes_unknown_bot_tokens_invalid_auth(fake_slack: FakeSlack) -> None:
    fake_slack.valid_tokens = {BOT_TOKEN}

    assert (await _bare_client(fake_slack).auth_test())["user_id"] == BOT_USER_ID
    with pytest.raises(SlackApiError) as raised:
        await _bare_client(fake_slack, token="xoxb-typo").auth_test()
    assert raised.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as raised:
        await _bare_client(fake_slack, token="xoxb-typo").chat_postMessage(channel="C1", text="x")
    assert raised.value.response["error"] == "invalid_auth"
    # App-level tokens are not bot tokens: Socket Mode still opens.
    assert (await _bare_client(fake_slack).apps_connections_open(app_token=APP_TOKEN))["ok"]
    assert fake_slack.messages == {}


async def test_posts_and_post_keys_count_what_was_delivered(fake_slack: FakeSlack) -> None:
    client = _client(fake_slack)
    first = await client.chat_postMessage(channel="C1", text="a", metadata=_key_metadata("k1"))
    await client.chat_postMessage(channel="C1", text="no key")
    await client.chat_postMessage(channel="C1", text="b", metadata=_key_metadata("k2"))
    await client.chat_postMessage(channel="C1", text="reply", thread_ts=first["ts"])
    await client.chat_postMessage(channel="C2", text="c", metadata=_key_metadata("k3"))
    await client.chat_postMessage(channel="C1", text="b again", metadata=_key_metadata("k2"))
    fake_slack.messages["C1"].append({"type": "message", "user": "U1", "text": "hi", "ts": "1.0"})

    assert [m["text"] for m in fake_slack.posts("C1")] == ["a", "no key", "b", "b again"]
    assert fake_slack.post_keys("C1") == ["k1", "k2", "k2"]
    assert fake_slack.post_keys("C2") == ["k3"]
    assert fake_slack.posts("C9") == [] and fake_slack.post_keys("C9") == []
