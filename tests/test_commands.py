"""Commands declared once: binding raw text and typed values, coercion, permissions, help."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot import commands as cmd
from bot.app import Feature
from bot.errors import UsageError
from bot.help import Help
from bot.model import ChannelRef, Ephemeral, Invocation, Post, UserRef

HERE = ChannelRef("console", "demo", "general")
PLACE = cmd.Place(HERE, "Europe/London", datetime(2026, 11, 23, 9, 0, tzinfo=UTC))


async def _noop(ctx, **options):
    return Ephemeral(Post(text=repr(sorted(options.items()))))


CREATE = cmd.Command(
    ("poll", "create"),
    "Start a poll",
    _noop,
    options=[
        cmd.Option("question", required=True, positional=True, description="the question"),
        cmd.Option("options", positional=True, many=True, required=True, description="choices"),
        cmd.Option("multi", cmd.Kind.BOOL, default=False),
        cmd.Option("max", cmd.Kind.INT, min_value=1, max_value=25),
        cmd.Option("closes", cmd.Kind.DATETIME),
        cmd.Option("tz", description="zone"),
        cmd.Option("kind", cmd.Kind.CHOICE, choices=("single", "ranked"), default="single"),
        cmd.Option("channel", cmd.Kind.CHANNEL),
        cmd.Option("every", cmd.Kind.DURATION),
    ],
)


def bind(text: str) -> dict:
    return cmd.coerce(CREATE, cmd.bind_text(CREATE, text), PLACE)


def test_positional_many_and_bare_switch_words():
    got = bind('"Which practice?" Incident "Change enablement" Problem multi max=2')
    assert got["question"] == "Which practice?"
    assert got["options"] == ["Incident", "Change enablement", "Problem"]
    assert got["multi"] is True and got["max"] == 2


def test_a_quoted_switch_name_is_an_answer_not_a_switch():
    got = bind('"Pick one" "multi" single')
    assert got["options"] == ["multi", "single"] and got["multi"] is False


def test_datetime_read_in_the_commands_tz_option():
    got = bind('"Q" A B closes="2026-12-01 17:00" tz=America/New_York')
    assert got["closes"] == datetime(2026, 12, 1, 22, 0, tzinfo=UTC)


def test_datetime_defaults_to_the_communitys_zone_and_accepts_durations():
    assert bind('"Q" A B closes="2026-07-01 17:00"')["closes"] == datetime(
        2026, 7, 1, 16, 0, tzinfo=UTC
    )
    assert bind('"Q" A B closes=2d')["closes"] == PLACE.now + timedelta(days=2)


def test_natural_phrases_are_read_by_the_date_library():
    got = bind('"Q" A B closes="tomorrow 14:00"')
    assert got["closes"] == datetime(2026, 11, 24, 14, 0, tzinfo=UTC)  # London is UTC in winter


def test_typed_values_from_a_platform_pass_through_and_lists_split_on_bars():
    values = {"question": "Q", "options": "Yes, definitely | No", "max": 2, "multi": True}
    got = cmd.coerce(CREATE, values, PLACE)
    assert got["options"] == ["Yes, definitely", "No"] and got["max"] == 2


def test_channel_mentions_and_durations():
    got = bind('"Q" A B channel=<#C42|news> every=1h30m')
    assert got["channel"] == ChannelRef("console", "demo", "C42")
    assert got["every"] == timedelta(hours=1, minutes=30)


@pytest.mark.parametrize(
    ("text", "option", "words"),
    [
        ('"Q" A B max=zero', "max", "not a whole number"),
        ('"Q" A B max=30', "max", "at most 25"),
        ('"Q" A B kind=ranked2', "kind", "not one of single, ranked"),
        ('"Q" A B colour=red', "colour", "not an option of /poll create"),
        ('"Q" A B closes="the day after never"', "closes", "can't read"),
        ('"Q" A B tz=Mars/Olympus', "tz", "not a time zone"),
        ('"Q"', "options", "Missing `options`"),
        ('"Q" A B --max', "max", "needs a value"),
    ],
)
def test_bad_input_names_the_option(text, option, words):
    with pytest.raises(UsageError) as err:
        bind(text)
    assert err.value.option == option
    assert words in str(err.value)


def test_usage_line_is_generated_from_the_declaration():
    assert CREATE.usage().startswith("/poll create <question> <options...> [multi] [max=MAX]")


class Guarded(Feature):
    name = "guarded"

    def register(self) -> None:
        self.app.command(cmd.Command(("feed", "add"), "Subscribe", _noop, moderator=True))
        self.app.command(cmd.Command(("feed", "list"), "List", _noop))


MEMBER = UserRef("console", "demo", "ann", "ann")


async def test_a_member_is_refused_a_moderator_command_and_nothing_runs(make_app):
    app = await make_app(features=[Help, Guarded])
    ran: list = []

    async def record(ctx, **options):
        ran.append(options)

    app.registry.commands[("feed", "add")].handler = record
    [reply] = await app.invoke(Invocation(("feed",), MEMBER, HERE, False, text="add"))
    assert isinstance(reply, Ephemeral)
    assert "for moderators only" in reply.post.text
    assert ran == []
    await app.invoke(Invocation(("feed",), MEMBER, HERE, True, text="add"))
    assert ran == [{}]


async def test_unknown_subcommand_lists_the_real_ones(make_app):
    app = await make_app(features=[Help, Guarded])
    [reply] = await app.invoke(Invocation(("feed",), MEMBER, HERE, False, text="ad"))
    assert "`ad` is not a subcommand of /feed" in reply.post.text
    assert "add, list" in reply.post.text


async def test_help_lists_declared_commands_and_details_one(make_app):
    app = await make_app(features=[Help, Guarded])
    [overview] = await app.invoke(Invocation(("help",), MEMBER, HERE, False, text=""))
    feed = next(f for f in overview.post.fields if f.name == "/feed")
    assert "`/feed add` Subscribe 🔒" in feed.value
    [detail] = await app.invoke(Invocation(("help",), MEMBER, HERE, False, text="feed add"))
    assert detail.post.title == "/feed add 🔒" and "Moderators only" in detail.post.text


async def test_a_crashing_handler_gives_a_reference_not_a_traceback(make_app, caplog):
    app = await make_app(features=[Help, Guarded])

    async def boom(ctx, **options):
        raise RuntimeError("database on fire")

    app.registry.commands[("feed", "list")].handler = boom
    [reply] = await app.invoke(Invocation(("feed",), MEMBER, HERE, False, text="list"))
    assert "Something went wrong" in reply.post.text and "database on fire" not in reply.post.text
    assert "database on fire" in caplog.text


async def test_a_costly_moderator_check_runs_only_for_moderator_buttons(make_app):
    from bot.model import Action

    app = await make_app(features=[Help, Guarded])
    asked: list[str] = []

    async def check() -> bool:
        asked.append("asked")
        return True

    async def button(ctx, action):
        return Ephemeral(Post(text=f"moderator={ctx.is_moderator}"))

    app.on_action("vote", button)
    app.on_action("approve", button, moderator=True)
    [vote] = await app.act(Action("vote", "1", MEMBER, HERE, moderator_check=check))
    assert asked == [] and vote.post.text == "moderator=False"
    [approve] = await app.act(Action("approve", "1", MEMBER, HERE, moderator_check=check))
    assert asked == ["asked"] and approve.post.text == "moderator=True"

    async def refuse() -> bool:
        return False

    [refused] = await app.act(Action("approve", "1", MEMBER, HERE, moderator_check=refuse))
    assert "Only moderators" in refused.post.text


def test_a_list_typed_as_one_text_keeps_its_quoted_words():
    values = {"question": "Q", "options": '"Yes, definitely" "Not yet" Maybe'}
    got = cmd.coerce(CREATE, values, PLACE)
    assert got["options"] == ["Yes, definitely", "Not yet", "Maybe"]
    unclosed = {"question": "Q", "options": '"Yes, definitely, No'}
    assert cmd.coerce(CREATE, unclosed, PLACE)["options"] == ['"Yes', "definitely", "No"]
