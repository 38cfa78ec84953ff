"""`/help` and `/help COMMAND`, generated from the declarations."""

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
                    )
                ],
                examples=["/help", "/help poll", "/help poll create"],
            )
        )

    async def help(self, ctx: Context, topic: list[str] | None = None) -> Ephemeral:
        words = [w.lower().lstrip("/") for w in topic or []]
        if not words:
            post = overview(self.app.registry, ctx.is_moderator)
            if ctx.is_moderator:
                post.fields.append(delivery_field(await self.app.outbox.health()))
            return Ephemeral(post)
        return Ephemeral(detail(self.app.registry, words, ctx.is_moderator))


def overview(registry: cmd.Registry, is_moderator: bool) -> Post:
    fields = []
    for name, blurb in JOBS.items():
        found = registry.in_group(name)
        if not found:
            fields.append(Field(f"/{name}", f"{blurb} _(coming soon)_", inline=False))
            continue
        lines = [_line(c, is_moderator) for c in found]
        fields.append(Field(f"/{name}", blurb + "\n" + "\n".join(lines), inline=False))
    return Post(
        title="What I can do",
        text="Type `/help COMMAND` for the options of one command, e.g. `/help poll create`.",
        fields=fields,
        footer="🔒 marks moderator commands"
        if is_moderator
        else "Some commands are for moderators.",
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


def detail(registry: cmd.Registry, words: list[str], is_moderator: bool) -> Post:
    found = registry.commands.get(tuple(words))
    if found is None and len(words) == 1 and words[0] in registry.groups:
        commands = registry.in_group(words[0])
        return Post(
            title=f"/{words[0]}",
            text=JOBS.get(words[0], registry.groups[words[0]].description),
            fields=[Field(c.usage(), c.description, inline=False) for c in commands],
        )
    if found is None:
        raise UsageError(f"There is no command `/{inert(' '.join(words))}`.", hint="Type /help.")
    fields = [
        Field(
            o.placeholder(),
            o.description + (f" (one of: {', '.join(o.choices)})" if o.choices else ""),
            inline=False,
        )
        for o in found.options
    ]
    if found.examples:
        fields.append(Field("Examples", "\n".join(f"`{e}`" for e in found.examples), inline=False))
    who = "Moderators only." if found.moderator else "For everyone."
    return Post(title=found.usage(), text=f"{found.description}. {who}", fields=fields)


def _line(command: cmd.Command, is_moderator: bool) -> str:
    lock = " 🔒" if command.moderator else ""
    return f"`/{command.name}` {command.description}{lock}"
