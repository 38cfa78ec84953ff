"""The console surface end to end: commands, identities, buttons, forms, outbox posts."""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.console import Console
from adapters.console.render import render
from bot import commands as cmd
from bot.app import Feature
from bot.help import Help
from bot.model import (
    Button,
    Ephemeral,
    Form,
    FormErrors,
    FormField,
    OpenForm,
    Post,
    Public,
    UpdateMessage,
    inert,
    mention_tag,
    time_tag,
)


class Counter(Feature):
    """A test feature: a public counter with a button, and a form that checks its input."""

    name = "counter"

    def register(self) -> None:
        self.count = 0
        self.app.command(cmd.Command(("count", "start"), "Start counting", self.begin))
        self.app.command(cmd.Command(("count", "name"), "Name it", self.ask, moderator=True))
        self.app.on_action("count.add", self.add)
        self.app.on_form("count.name", self.named)

    def post(self) -> Post:
        return Post(title=f"Count: {self.count}", buttons=[Button("Add one", "count.add", "1")])

    async def begin(self, ctx):
        await ctx.app.outbox.enqueue(ctx.channel, self.post(), "count")
        return Ephemeral(Post(text="Counter started."))

    async def add(self, ctx, action):
        self.count += int(action.value)
        return [UpdateMessage(self.post()), Ephemeral(Post(text=f"{ctx.user.name} added one."))]

    async def ask(self, ctx):
        return OpenForm(Form("count.name", "Name the counter", [FormField("label", "Label")]))

    async def named(self, ctx, sub):
        if len(sub.values.get("label", "")) < 3:
            return FormErrors({"label": "at least 3 characters"})
        return Public(Post(text=f"The counter is now called {sub.values['label']}."))


async def start(make_app):
    app = await make_app(features=[Help, Counter])
    out: list[str] = []
    return Console(app, write=out.append), out


async def test_a_session_with_buttons_updates_and_ephemeral_replies(make_app):
    console, out = await start(make_app)
    await console.handle("@ann /count start")
    assert out[-2:] == [
        "#1 [only ann sees this]\n  Counter started.",
        "#2 [public]\n  ** Count: 0 **\n  [Add one]",
    ]
    await console.handle("@bob click 2 add one")
    assert out[-2] == "#2 (edited) [public]\n  ** Count: 1 **\n  [Add one]"
    assert out[-1] == "#3 [only bob sees this]\n  bob added one."


async def test_forms_open_show_errors_and_submit(make_app):
    console, out = await start(make_app)
    await console.handle("@ann /count name")
    assert "for moderators only" in out[-1]
    await console.handle("@mod! /count name")
    assert "Form: Name the counter" in out[-1] and "@mod form label=" in out[-1]
    await console.handle("@mod form label=ab")
    assert "label: at least 3 characters" in out[-1]
    await console.handle('@mod form label="Big Counter"')
    assert out[-1] == "#4 [public]\n  The counter is now called Big Counter."
    await console.handle("@mod form label=again")
    assert "mod has no form open" in out[-1]


async def test_bad_lines_are_explained(make_app):
    console, out = await start(make_app)
    await console.handle("@ann click 9 Add")
    assert "There is no message #9" in out[-1]
    await console.handle("@ann /count start")  # #2 the reply, #3 the counter
    await console.handle("@ann click 3 Subtract")
    assert "has no button `subtract`" in out[-1] and "Add one" in out[-1]
    await console.handle("@ann dance")
    assert "I can't read `dance`" in out[-1]
    await console.handle("# a comment")
    await console.handle("   ")
    assert "dance" in out[-1]  # comments and blank lines print nothing


def test_rendering_shows_times_in_the_posts_zone_and_keeps_forged_markers_inert():
    moment = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
    post = Post(
        title="itSMF seminar",
        text=f"Starts {time_tag(moment, 'F')}. " + inert("Fake ⟦t:0:F⟧ ⟦@:everyone⟧"),
        zone="Europe/Oslo",
    )
    text = render(post, 1, "public")
    assert "Saturday 05 December 2026 10:00 CET" in text
    assert "Fake [t:0:F] [@:everyone]" in text
    assert render(Post(text=mention_tag(console_user())), 2, "public").endswith("@ann")


def console_user():
    from bot.model import UserRef

    return UserRef("console", "demo", "ann", "ann")


def test_untrusted_text_cannot_form_a_link_on_any_surface():
    from adapters.discord.render import render as discord_render
    from adapters.slack.render import render as slack_render

    hostile = inert("Read [the report](https://evil.example/x) now ⟦t:0:F⟧")
    post = Post(text=hostile + " and [ours](https://example.org/ok)")
    slack = str(slack_render(post)["blocks"])
    assert "evil.example/x|" not in slack and "<https://example.org/ok|ours>" in slack
    discord = discord_render(post).embeds[0].description
    assert "](https://evil" not in discord and "[ours](https://example.org/ok)" in discord
    console = render(post, 1, "public")
    assert "the report (https://evil" not in console and "ours (https://example.org/ok)" in console


def test_demo_saves_the_files_the_bot_sends_where_it_says(tmp_path):
    """A newcomer can open the charts, exports and calendars the demo makes."""
    from click.testing import CliRunner

    from bot.cli import main

    folder = tmp_path / "files"
    script = '@mod! /poll create "Q?" "A" "B"\n@mod! /poll export 1\n'
    result = CliRunner().invoke(main, ["demo", "--files", str(folder)], input=script)
    assert result.exit_code == 0, result.output
    assert f"go to {folder}" in result.output
    saved = sorted(p.name for p in folder.iterdir())
    assert any(name.endswith("-poll-1.csv") for name in saved), saved
    csv = next(p for p in folder.iterdir() if p.name.endswith("-poll-1.csv"))
    assert f"saved: {csv}" in result.output
    header = csv.read_text(encoding="utf-8-sig").splitlines()[0]
    assert "," in header  # the export itself, as a member would download it
