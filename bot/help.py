"""`/help` and `/help COMMAND`, generated from the declarations.

Every text here names the help command of the surface it is shown on (`ctx.help`: `/help`
on Discord and the console, `/itsm` on Slack), never a fixed `/help`.
"""

from __future__ import annotations

from bot import commands as cmd
from bot.app import Context, Feature
from bot.errors import UsageError
from bot.model import Ephemeral, Field, Post, inert
from bot.outbox import Health

# The bot's jobs, listed even before a feature is installed, so help shows what is coming.
JOBS = {
    "feed": "Post new articles from RSS/Atom feeds into channels",
    "poll": "Quick polls members answer with buttons",
    "survey": "The community surveys, answered in chat",
    "event": "Upcoming itSMF events: announcements, reminders, RSVP",
    "justdoit": 'The daily BRM "just do it" prompt',
    "digest": "The community's week in one post: articles, polls, events, prompt",
}


class Help(Feature):
    name = "help"

    def register(self) -> None:
        self.app.command(
            cmd.Command(
                ("help",),
                "What the bot can do, or how to use one command",
                self.help,
                options=[
                    cmd.Option(
                        "topic",
                        description="a command, like `poll` or `poll create`",
                        positional=True,
                        many=True,
                        form="a command's name, with or without its subcommand",
                    )
                ],
                examples=["/help", "/help poll", "/help poll create"],
            )
        )

    async def help(self, ctx: Context, topic: list[str] | None = None) -> Ephemeral:
        words = [w.lower().lstrip("/") for w in topic or []]
        if words and "/" + words[0] == ctx.help:  # "/itsm itsm poll": the help command itself
            words = ["help", *words[1:]]
        if not words:
            post = overview(self.app.registry, ctx.is_moderator, ctx.help)
            if ctx.is_moderator:
                post.fields.append(delivery_field(await self.app.outbox.health()))
            return Ephemeral(post)
        return Ephemeral(detail(self.app.registry, words, ctx.is_moderator, ctx.help))


def overview(registry: cmd.Registry, is_moderator: bool, help: str = "/help") -> Post:
    fields = []
    for name, blurb in JOBS.items():
        found = registry.in_group(name)
        if not found:
            fields.append(Field(f"/{name}", f"{blurb} _(coming soon)_", inline=False))
            continue
        lines = [_line(c, is_moderator) for c in found]
        fields.append(Field(f"/{name}", blurb + "\n" + "\n".join(lines), inline=False))
    # Commands outside the jobs (the web console, a member's own settings) are still listed,
    # so a feature added later shows up here without a line in JOBS.
    others = [c for p, c in registry.commands.items() if p[0] not in JOBS and p[0] != "help"]
    if others:
        lines = [_line(c, is_moderator) for c in others]
        fields.append(Field("More", "\n".join(lines), inline=False))
    return Post(
        title="What I can do",
        text=f"Type `{help} COMMAND` for the options of one command, e.g. `{help} poll create`.",
        fields=fields,
        footer=LOCK_FOOTER if is_moderator else "Some commands are for moderators.",
    )


def delivery_field(health: Health) -> Field:
    """How the bot's own posts are doing, for moderators: what waits, what could not be
    delivered this week and why, and a platform paused because it refused the token."""
    lines = []
    for platform, why in sorted(health.paused.items()):
        lines.append(f"⚠️ **{platform.title()} is paused**: {inert(why)}")
    waiting = f"{health.waiting} post(s) waiting"
    if health.waiting and health.oldest_wait and health.oldest_wait >= 60:
        waiting += f", the oldest for {_duration(health.oldest_wait)}"
    lines.append(waiting + ".")
    if health.failed:
        lines.append(
            f"{health.failed} post(s) could not be delivered this week; the last because: "
            f"`{inert(health.last_failure or 'unknown')}`"
        )
    else:
        lines.append("Nothing failed this week.")
    return Field("Delivery", "\n".join(lines), inline=False)


def _duration(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def detail(
    registry: cmd.Registry, words: list[str], is_moderator: bool, help: str = "/help"
) -> Post:
    found = registry.commands.get(tuple(words))
    if found is None and len(words) == 1 and words[0] in registry.groups:
        commands = registry.in_group(words[0])
        return Post(
            title=f"/{words[0]}",
            text=JOBS.get(words[0], registry.groups[words[0]].description)
            + f"\nType `{help} {words[0]} COMMAND` for the options of one, "
            f"e.g. `{help} {commands[0].name}`.",
            fields=[Field(c.usage(help) + _lock(c), c.description, inline=False) for c in commands],
            footer=LOCK_FOOTER if any(c.moderator for c in commands) else "",
        )
    if found is None:
        raise UsageError(f"There is no command `/{inert(' '.join(words))}`.", hint=f"Type {help}.")
    fields = [Field(o.placeholder(), _option_line(o), inline=False) for o in found.options]
    if found.examples:
        examples = "\n".join(f"`{_as_typed(e, help)}`" for e in found.examples)
        fields.append(Field("Examples", examples, inline=False))
    who = "Moderators only." if found.moderator else "For everyone."
    return Post(
        title=found.usage(help) + _lock(found),
        text=f"{found.description}. {who}",
        fields=fields,
        footer=LOCK_FOOTER if found.moderator else "",
    )


LOCK_FOOTER = "🔒 marks moderator commands"


def _lock(command: cmd.Command) -> str:
    return " 🔒" if command.moderator else ""


def _option_line(option: cmd.Option) -> str:
    """What the option is for, then in a line what it takes (its kind and form)."""
    takes = f"Takes {cmd.takes(option)}."
    return f"{option.description}\n{takes}" if option.description else takes


def _as_typed(example: str, help: str) -> str:
    """An example of the help command itself, written with this surface's help command."""
    head, space, rest = example.partition(" ")
    return help + space + rest if head == "/" + cmd.HELP[0] else example


def _line(command: cmd.Command, is_moderator: bool) -> str:
    return f"`/{command.name}` {command.description}{_lock(command)}"
