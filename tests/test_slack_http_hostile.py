"""Slack's HTTP mode against hostile requests, through a real started surface.

Replays, malformed headers and bodies, and bodies too large are refused at the door
(adapters/slack/http.py) with a 400, 401 or 413 that reaches nothing: no listener, no
journal row, no Web API call and no traceback in the log.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from multidict import CIMultiDict

from adapters.slack.http import Seen
from tests import test_slack_surface
from tests.databases import unhandled
from tests.fakes.fake_slack import (
    block_actions_payload,
    interaction_body,
    signed_headers,
    slash_command_body,
)
from tests.fakes.fake_slack import fake_slack as fake_slack_fixture  # noqa: F401
from tests.test_slack_surface import SECRET, Http

http = test_slack_surface.http  # the started HTTP-mode surface with its Toy feature

COMMAND = slash_command_body("/toy", "vote")


def sign(body: bytes, timestamp: str, secret: str = SECRET) -> str:
    """Slack's v0 signature over raw bytes (slack_sdk's helper only takes UTF-8)."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def headers_for(body: bytes, content_type: str, age: int = 0) -> dict[str, str]:
    timestamp = str(int(time.time()) - age)
    return {
        "content-type": content_type,
        "x-slack-request-timestamp": timestamp,
        "x-slack-signature": sign(body, timestamp),
    }


async def send(http: Http, body: bytes | Any, headers: Mapping[str, str]) -> tuple[int, str]:
    request = http.session.post(http.url, data=body, headers=headers)
    async with await asyncio.wait_for(request, timeout=5) as response:
        return response.status, await response.text()


async def assert_nothing_reached(http: Http, caplog: pytest.LogCaptureFixture) -> None:
    await http.settle()
    assert [c.method for c in http.fake.calls if c.method != "auth.test"] == []
    assert http.fake.responses == []
    assert http.toy.picks == [] and http.toy.secrets == [] and http.toy.waiting == 0
    assert await unhandled(http.app.db, "slack") == []
    assert await http.app.db.fetchval("SELECT count(*) FROM intake") == 0
    assert "Traceback" not in caplog.text


async def assert_still_answers(http: Http) -> None:
    before = len(http.fake.calls_to("chat.postMessage"))
    status, _ = await http.command("vote")
    assert status == 200
    posted = await http.fake.wait_for_call("chat.postMessage", before + 1)
    assert len(posted) == before + 1 and "Pick one" in json.dumps(posted[-1]["blocks"])


# --------------------------------------------------------------------------- replays


async def test_a_replayed_command_is_refused_and_handled_once(http: Http, caplog) -> None:
    http.fake.users["UADM"] = {"is_admin": True}
    body = slash_command_body(
        "/toy", "secret", user_id="UADM", response_url=http.fake.response_url()
    )
    headers = signed_headers(SECRET, body, timestamp=int(time.time()) - 10)

    first = await send(http, body.encode(), headers)
    again = await send(http, body.encode(), headers)  # the same request, captured and resent
    await http.settle()

    assert (first[0], again[0]) == (200, 401)
    assert http.toy.secrets == ["UADM"]
    assert len(http.fake.responses) == 1
    assert "The secret is 42." in json.dumps(http.fake.responses[0][1])
    assert "Traceback" not in caplog.text


async def test_a_replayed_click_is_refused_and_handled_once(http: Http) -> None:
    payload = block_actions_payload("toy.pick#0", "a", response_url=http.fake.response_url())
    body = interaction_body(payload)
    headers = signed_headers(SECRET, body, timestamp=int(time.time()) - 10)

    first = await send(http, body.encode(), headers)
    again = await send(http, body.encode(), headers)
    await http.settle()

    assert (first[0], again[0]) == (200, 401)
    assert [p[1] for p in http.toy.picks] == ["a"]
    assert len(http.fake.calls_to("chat.update")) == 1 and len(http.fake.responses) == 1


async def test_replays_sent_at_once_get_in_once(http: Http) -> None:
    payload = block_actions_payload("toy.pick#0", "b", response_url=http.fake.response_url())
    body = interaction_body(payload)
    headers = signed_headers(SECRET, body, timestamp=int(time.time()) - 3)

    sent = await asyncio.gather(*(send(http, body.encode(), headers) for _ in range(10)))
    await http.settle()

    assert sorted(status for status, _ in sent) == [200] + [401] * 9
    assert [p[1] for p in http.toy.picks] == ["b"]


def test_signatures_are_forgotten_when_their_window_ends_and_at_most_a_cap_kept() -> None:
    seen = Seen(window=300, cap=3)
    assert seen.first("s1", timestamp=1000, now=1000)
    assert not seen.first("s1", timestamp=1000, now=1300)  # still inside the window
    assert seen.first("s2", timestamp=1000, now=1301) and len(seen) == 1  # s1 expired
    for name in ("s3", "s4", "s5"):
        assert seen.first(name, timestamp=1290, now=1301)
    assert len(seen) == 3  # s2, the nearest to expiry, dropped for s5
    assert seen.first("s2", timestamp=1000, now=1301)


# --------------------------------------------------------------------------- malformed


HOSTILE_BODIES = {
    "payload-not-json": (b"payload=%7Bnot+json", "application/x-www-form-urlencoded"),
    "payload-not-an-object": (b"payload=%5B1%2C2%5D", "application/x-www-form-urlencoded"),
    "json-body-malformed": (b'{"type": "block_actions", ', "application/json"),
    "json-body-not-an-object": (b"[1, 2, 3]", "application/json"),
    "body-not-utf8": (b"payload=\xff\xfe%7B%7D&command=%2Ftoy\xc3", "application/json"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_BODIES))
async def test_a_signed_body_that_cannot_be_read_is_a_400_that_reaches_nothing(
    http: Http, caplog, case: str
) -> None:
    body, content_type = HOSTILE_BODIES[case]
    status, _ = await send(http, body, headers_for(body, content_type))
    assert status == 400
    await assert_nothing_reached(http, caplog)
    await assert_still_answers(http)


def _no_timestamp(headers: CIMultiDict[str]) -> None:
    del headers["x-slack-request-timestamp"]


def _no_signature(headers: CIMultiDict[str]) -> None:
    del headers["x-slack-signature"]


def _no_headers(headers: CIMultiDict[str]) -> None:
    _no_timestamp(headers)
    _no_signature(headers)


def _forged(headers: CIMultiDict[str]) -> None:
    headers["x-slack-signature"] = "v0=" + "0" * 64


def _twice(headers: CIMultiDict[str]) -> None:  # a valid one and another
    headers.add("x-slack-signature", "v0=" + "1" * 64)


HEADER_FAULTS = {
    "no-timestamp": _no_timestamp,
    "no-signature": _no_signature,
    "no-headers": _no_headers,
    "forged-signature": _forged,
    "signature-twice": _twice,
}


@pytest.mark.parametrize("fault", sorted(HEADER_FAULTS))
@pytest.mark.parametrize("case", sorted(HOSTILE_BODIES))
async def test_an_unsigned_body_is_a_401_before_it_is_parsed(
    http: Http, caplog, fault: str, case: str
) -> None:
    body, content_type = HOSTILE_BODIES[case]
    headers = CIMultiDict(headers_for(body, content_type))
    HEADER_FAULTS[fault](headers)
    status, _ = await send(http, body, headers)
    # Bytes that are not UTF-8 cannot be verified (the signature is over text): a 400
    # whatever their signature, once the headers are of Slack's form.
    well_formed = fault in ("forged-signature",)
    assert status == (400 if case == "body-not-utf8" and well_formed else 401)
    await assert_nothing_reached(http, caplog)


@pytest.mark.parametrize("form", ["soon", "17e8", "{now}.5", "{now:_}", "+{now}", ""])
async def test_a_timestamp_not_of_slacks_form_is_a_401(http: Http, caplog, form: str) -> None:
    """Not a number, or one only Python's int() reads (1_700_000_000, +1700000000)."""
    timestamp = form.format(now=int(time.time()))
    body = COMMAND.encode()
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": timestamp,
        "x-slack-signature": sign(body, timestamp),  # signed with the very same text
    }
    status, _ = await send(http, body, headers)
    assert status == 401
    await assert_nothing_reached(http, caplog)
    await assert_still_answers(http)


# --------------------------------------------------------------------------- size


async def test_a_body_over_a_megabyte_is_a_413_and_one_declared_so_is_never_read(
    http: Http, caplog
) -> None:
    # 5 MB announced, none of it sent: the refusal does not wait for it.
    headers = headers_for(b"", "application/x-www-form-urlencoded")
    reader, writer = await asyncio.open_connection("127.0.0.1", http.surface.port)
    try:
        head = [
            "POST /slack/events HTTP/1.1",
            f"Host: 127.0.0.1:{http.surface.port}",
            "Content-Length: 5000000",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=5)
    finally:
        writer.close()
    assert status_line.split()[1] == b"413"

    body = COMMAND.encode() + b"&filler=" + b"x" * (1024 * 1024)  # signed, and sent whole
    status, _ = await send(http, body, headers_for(body, "application/x-www-form-urlencoded"))
    assert status == 413

    async def chunks() -> AsyncIterator[bytes]:  # no length given: cut off while read
        for _ in range(20):
            yield b"x" * 100_000

    status, _ = await send(http, chunks(), headers)
    assert status == 413
    await assert_nothing_reached(http, caplog)
    await assert_still_answers(http)


async def test_a_body_cut_short_is_dropped_with_one_line_and_no_traceback(
    http: Http, caplog
) -> None:
    caplog.set_level(logging.INFO)
    headers = headers_for(b"", "application/x-www-form-urlencoded")
    reader, writer = await asyncio.open_connection("127.0.0.1", http.surface.port)
    head = [
        "POST /slack/events HTTP/1.1",
        f"Host: 127.0.0.1:{http.surface.port}",
        "Content-Length: 1000",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + COMMAND.encode()[:100])
    await writer.drain()
    writer.close()  # gone before the rest of the body
    await writer.wait_closed()

    async def logged() -> None:
        while "a body cut short" not in caplog.text:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(logged(), timeout=5)
    await assert_nothing_reached(http, caplog)
    await assert_still_answers(http)


# --------------------------------------------------------------------------- all at once


async def test_after_every_hostile_request_a_valid_one_still_works(http: Http, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    replayed = COMMAND.encode()
    replay_headers = headers_for(replayed, "application/x-www-form-urlencoded", age=10)
    assert (await send(http, replayed, replay_headers))[0] == 200
    await http.fake.wait_for_call("chat.postMessage")
    statuses = [(await send(http, replayed, replay_headers))[0]]
    for body, content_type in HOSTILE_BODIES.values():
        statuses.append((await send(http, body, headers_for(body, content_type)))[0])
        unsigned = headers_for(body, content_type)
        del unsigned["x-slack-signature"]
        statuses.append((await send(http, body, unsigned))[0])
    big = b"x" * (2 * 1024 * 1024)
    statuses.append((await send(http, big, headers_for(big, "application/json")))[0])
    await http.settle()
    assert set(statuses) <= {400, 401, 413} and len(http.fake.calls_to("chat.postMessage")) == 1

    await assert_still_answers(http)
    assert len(http.fake.calls_to("chat.postMessage")) == 2
    assert "Traceback" not in caplog.text
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert SECRET not in logged and replay_headers["x-slack-signature"] not in logged
