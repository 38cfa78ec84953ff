"""Slack's HTTP mode journals a command or a click at the door and answers it before bolt
routes it (adapters/slack/http.py), through a real started surface on 127.0.0.1.

What is checked: the journal row is there when the 200 comes back and the work has not
run yet; a journal that cannot take a request answers 500 and nothing runs; the door reads
a body exactly as bolt does; work after the ack is let through in the order it came.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from urllib.parse import quote, quote_plus

import pytest
from slack_bolt.request.internals import parse_body

from adapters.slack.http import read_body
from adapters.slack.intake import Arrivals, request_id
from tests import test_slack_surface
from tests.databases import allow_inserts, refuse_inserts, unhandled
from tests.fakes.fake_slack import block_actions_payload, interaction_body, slash_command_payload
from tests.fakes.fake_slack import fake_slack as fake_slack_fixture  # noqa: F401
from tests.test_slack_surface import Http

http = test_slack_surface.http  # the started HTTP-mode surface with its Toy feature

FORM = "application/x-www-form-urlencoded"


async def test_a_command_is_journaled_when_its_ack_comes_back_and_handled_after(
    http: Http,
) -> None:
    http.toy.gate.clear()  # the command's work cannot finish until the test allows it
    trigger = "trigger-http-1"

    status, body = await http.command("slow", trigger_id=trigger)

    assert (status, body) == (200, "")
    held = await unhandled(http.app.db, "slack")
    assert [rid for rid, _ in held] == [f"slack:{trigger}"]
    assert held[0][1]["command"] == "/toy" and "token" not in held[0][1]
    http.toy.gate.set()
    (answer,) = await http.fake.wait_for_response(1)
    assert "Finally done." in json.dumps(answer["blocks"])
    await http.settle()
    assert await unhandled(http.app.db, "slack") == []  # handled: not again at the next start


async def test_a_click_is_routed_by_bolt_after_its_ack_and_answered_once(http: Http) -> None:
    payload = block_actions_payload("toy.pick#0", "a", response_url=http.fake.response_url())

    status, body, _ = await http.post(interaction_body(payload))
    await http.settle()

    assert (status, body) == (200, "")
    assert [p[1] for p in http.toy.picks] == ["a"]
    rows = await http.app.db.fetchall("SELECT request_id, done_at FROM intake")
    assert [(r["request_id"], r["done_at"] is not None) for r in rows] == [
        (request_id(payload), True)
    ]
    answers = await http.fake.wait_for_response(1)
    assert any("You picked a" in json.dumps(a) for a in answers)


async def test_a_request_the_journal_cannot_take_is_a_500_and_nothing_runs(
    http: Http, caplog: pytest.LogCaptureFixture
) -> None:
    await refuse_inserts(http.app.db, "refuse", "intake", "full")
    payload = block_actions_payload("toy.pick#0", "b", response_url=http.fake.response_url())

    status, _, _ = await http.post(interaction_body(payload))
    command, _ = await http.command("vote")
    await http.settle()

    assert (status, command) == (500, 500)
    assert http.toy.picks == [] and http.fake.calls_to("chat.postMessage") == []
    assert "could not journal a request of type block_actions" in caplog.text
    assert "could not journal a request of type command" in caplog.text
    assert "Traceback" not in caplog.text
    await allow_inserts(http.app.db, "refuse", "intake")
    status, _, _ = await http.post(interaction_body(payload), age=1)  # sent again, signed anew
    await http.settle()
    assert status == 200 and [p[1] for p in http.toy.picks] == ["b"]


def _bodies() -> list[str]:
    click = json.dumps(block_actions_payload("toy.pick#0", 'é & = + % \\ " ✓'))
    command = slash_command_payload("/toy", "vote  a+b %41 ü")
    bodies = [
        interaction_body(json.loads(click)),
        "payload=" + quote(click),  # spaces as %20, not +
        "payload=" + quote_plus(click).replace("%2C", "%2c"),  # lowercase hex digits
        "&".join(f"{k}={quote_plus(v)}" for k, v in command.items()),
        "payload=",
        "payload=%7B%7D&extra=1",
        "payload=%7B%22a%22%3A%22%ff%fe%22%7D",  # bytes that are not UTF-8
        "payload=%7B%22a%22%3A%22%e2%9c%22%7D",  # a cut UTF-8 sequence
        "payload=%7B%22a%22%3A%22100%%22%7D",  # a stray %
        "payload=%7B%22a%22%3A%22%4%22%7D",
        "payload=%7B%22a%22%3A%22\\x41%22%7D",  # a backslash, not an escape of ours
        "payload=%7B%22a%22%3A%22caf\u00e9%22%7D",  # not ASCII
        "payload=%5B1%2C2%5D",  # JSON, but not an object
        '{"type":"event_callback"}',
        "a=1&b=%20&c",
    ]
    rng = random.Random(16)
    alphabet = '%+aAfF09zZ&=\\é"{}:,'
    for _ in range(400):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 16)))
        bodies.append("payload=" + value)
        bodies.append("payload=" + quote_plus(json.dumps({"v": value})))
    return bodies


@pytest.mark.parametrize("content_type", [FORM, None, "application/json"])
def test_the_door_reads_every_body_exactly_as_bolt_does(content_type: str | None) -> None:
    for body in _bodies():
        try:
            expected: object = parse_body(body, content_type)
        except Exception as exc:
            expected = type(exc)
        try:
            got: object = read_body(body, content_type)
        except Exception as exc:
            got = type(exc)
        assert got == expected, body


async def test_work_after_the_ack_is_let_through_in_the_order_it_came() -> None:
    arrivals = Arrivals()
    through: list[int] = []

    async def work(n: int) -> None:
        await arrivals.settled()
        through.append(n)

    async def clicks() -> None:  # requests still arriving while the work waits
        for _ in range(20):
            arrivals.arrived()
            await asyncio.sleep(0.001)

    arrivals.arrived()
    waiting = [asyncio.create_task(work(n)) for n in range(12)]
    await asyncio.gather(clicks(), *waiting)

    assert through == list(range(12))


async def test_a_waiting_caller_that_goes_away_holds_back_nobody() -> None:
    arrivals = Arrivals()
    through: list[int] = []

    async def work(n: int) -> None:
        await arrivals.settled()
        through.append(n)

    arrivals.arrived()
    first = asyncio.create_task(work(0))
    gone = asyncio.create_task(work(1))
    last = asyncio.create_task(work(2))
    await asyncio.sleep(0)  # all three are waiting
    gone.cancel()
    await asyncio.gather(first, last)

    assert through == [0, 2] and gone.cancelled()


async def test_with_nothing_arriving_work_goes_through_at_once_and_logs_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    arrivals = Arrivals()
    settled = asyncio.ensure_future(arrivals.settled())
    await asyncio.sleep(0)  # one step of the loop: no waiting for QUIET
    assert settled.done() and settled.exception() is None
