"""The console surface: the offline demo and the cheapest way to drive the whole core.

Scripted input, one action a line (also typed interactively):
  /cmd args                 as the default member
  @name /cmd args           as member `name`
  @name! /cmd args          as moderator `name`
  @name click N LABEL       press button LABEL on bot message #N
  @name form key=value ...  submit the form open for `name`
  @name react N EMOJI       react to message #N (counted by the weekly digest)
  @name reply N TEXT        reply in message #N's thread (counted too)
Blank lines and lines starting with '#' are skipped.

Output, one block a message: "#N [public]" (in #general), "#N [public in #CHANNEL]",
"#N [only NAME sees this]" (an ephemeral reply), "#N [direct to NAME]" (a direct message
the bot sent NAME on its own); "#N (edited) ..." when message N is replaced; a post the bot
made in message M's thread ends its first line with "(reply to #M)".
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from adapters.console.render import render
from bot import textargs
from bot.app import App
from bot.errors import UsageError
from bot.lanes import Engagement
from bot.model import (
    Action,
    ChannelRef,
    Ephemeral,
    Form,
    FormErrors,
    Invocation,
    OpenForm,
    Post,
    Public,
    Reply,
    Submission,
    UpdateMessage,
    UserRef,
)

PLATFORM, WORKSPACE, CHANNEL = "console", "demo", "general"
_LINE = re.compile(r"^(?:@(?P<name>[\w.-]+)(?P<mod>!)?\s+)?(?P<rest>.+)$")


@dataclass
class Shown:
    post: Post
    audience: str  # 'public', a member name (ephemeral) or "@name" (direct message)
    channel: str
    reply_to: int = 0  # the message whose thread it is in (0: none)


class Screen:
    """Every message the bot has shown, by number, written out as it appears. Given a
    `files` folder, the files a message carries (charts, CSV exports, .ics) are saved there
    as "N-NAME", so that they can be opened."""

    def __init__(self, write: Callable[[str], None], files: Path | None = None) -> None:
        self.write = write
        self.files = files
        self.messages: dict[int, Shown] = {}
        self.by_key: dict[str, int] = {}
        self.reactions: set[tuple[int, str, str]] = set()  # (message, member, emoji)
        self.replies: dict[int, list[tuple[str, str]]] = {}  # message -> (member, text)

    def _save(self, number: int, post: Post) -> None:
        if self.files is None:
            return
        for attachment in post.attachments:
            self.files.mkdir(parents=True, exist_ok=True)
            # Only the last part of a name the core was given: no path escapes the folder.
            target = self.files / f"{number}-{Path(attachment.filename).name or 'file'}"
            target.write_bytes(attachment.data)
            self.write(f"  saved: {target}")

    def show(
        self, post: Post, audience: str, channel: str = CHANNEL, key: str = "", reply_to: int = 0
    ) -> int:
        number = len(self.messages) + 1
        self.messages[number] = Shown(post, audience, channel, reply_to)
        if key:
            self.by_key[key] = number
        self._write(number, edited=False)
        return number

    def replace(self, number: int, post: Post) -> None:
        self.messages[number].post = post
        self._write(number, edited=True)

    def _write(self, number: int, edited: bool) -> None:
        shown = self.messages[number]
        text = render(shown.post, number, shown.audience, edited=edited, reply_to=shown.reply_to)
        if shown.channel != CHANNEL:
            text = text.replace(" [public]", f" [public in #{shown.channel}]", 1)
        self.write(text)
        self._save(number, shown.post)


class ConsoleTransport:
    """The outbox's way onto the screen. A reply (`thread`: its parent's number) is shown
    as one, below whatever came between."""

    platform = PLATFORM
    pace = 0.0
    threads = True

    def __init__(self, screen: Screen) -> None:
        self.screen = screen
        self.seen: set[str] = set()  # everyone who has typed: the channel's members

    async def send(self, channel: ChannelRef, post: Post, key: str, *, thread: str = "") -> str:
        reply_to = int(thread) if thread.isdigit() else 0
        if channel.is_direct:  # console names are the member ids
            audience = "@" + channel.direct_user
            return str(self.screen.show(post, audience, CHANNEL, key, reply_to))
        return str(self.screen.show(post, "public", channel.channel, key, reply_to))

    async def edit(
        self, channel: ChannelRef, message_id: str, post: Post, *, thread: str = ""
    ) -> None:
        self.screen.replace(int(message_id), post)

    async def find(
        self, channel: ChannelRef, key: str, since: float, *, thread: str = ""
    ) -> str | None:
        number = self.screen.by_key.get(key)
        return str(number) if number else None

    async def engagement(self, channel: ChannelRef, message_id: str) -> Engagement | None:
        number = int(message_id) if message_id.isdigit() else 0
        if number not in self.screen.messages:
            return None
        reactions = sum(1 for n, _, _ in self.screen.reactions if n == number)
        return Engagement(reactions, len(self.screen.replies.get(number, [])))

    async def members(self, channel: ChannelRef) -> list[UserRef] | None:
        return [UserRef(PLATFORM, WORKSPACE, name, name) for name in sorted(self.seen)]


class Console:
    def __init__(
        self,
        app: App,
        write: Callable[[str], None] = print,
        default_member: str = "member",
        files: Path | None = None,
    ) -> None:
        self.app = app
        self.screen = Screen(write, files)
        self.transport = ConsoleTransport(self.screen)
        self.default_member = default_member
        self.forms: dict[str, Form] = {}
        self.form_cards: dict[str, int] = {}  # member -> the message their form came from
        app.outbox.attach(self.transport)
        app.name_surface(PLATFORM, "/help", "console demo")

    @property
    def channel(self) -> ChannelRef:
        return ChannelRef(PLATFORM, WORKSPACE, CHANNEL)

    def user(self, name: str) -> UserRef:
        self.transport.seen.add(name)
        return UserRef(PLATFORM, WORKSPACE, name, name)

    async def handle(self, line: str) -> None:
        """Act on one input line, then let due posts and jobs appear before returning."""
        line = line.strip()
        if not line or line.startswith("#"):
            return
        match = _LINE.match(line)
        name = (match and match.group("name")) or self.default_member
        is_mod = bool(match and match.group("mod"))
        rest = match.group("rest").strip() if match else line
        try:
            replies, message = await self._dispatch(name, is_mod, rest)
        except UsageError as exc:
            self.screen.show(Post(text=str(exc)), name)
            return
        self.show_replies(name, replies, message)
        await self.settle()

    async def settle(self) -> None:
        await self.app.scheduler.run_due()
        await self.app.outbox.drain()

    async def _dispatch(self, name: str, is_mod: bool, rest: str) -> tuple[list[Reply], int]:
        user = self.user(name)
        if rest.startswith("/"):
            top, _, text = rest[1:].partition(" ")
            inv = Invocation((top.lower(),), user, self.channel, is_mod, text=text)
            return await self.app.invoke(inv), 0
        verb, _, args = rest.partition(" ")
        if verb == "click":
            return await self._click(user, is_mod, args)
        if verb == "form":
            return await self._form(user, is_mod, args), self.form_cards.get(user.user, 0)
        if verb in ("react", "reply"):
            self._respond(user, verb, args)
            return [], 0
        raise UsageError(
            f"I can't read `{rest}`.",
            hint="Lines look like: /help | @name /cmd args | @name! /cmd args | "
            "@name click N LABEL | @name form key=value",
        )

    async def _click(self, user: UserRef, is_mod: bool, args: str) -> tuple[list[Reply], int]:
        number_text, _, label = args.strip().partition(" ")
        label = label.strip().strip('"').lower()
        shown = self.screen.messages.get(int(number_text)) if number_text.isdigit() else None
        if shown is None:
            raise UsageError(f"There is no message #{number_text}.")
        post = shown.post
        for button in post.buttons:
            if button.label.lower() == label and button.action:
                action = Action(
                    button.action, button.value, user, self.channel, number_text, is_mod
                )
                return await self.app.act(action), int(number_text)
        for select in post.selects:
            for option in select.options:
                if option.label.lower() == label:
                    action = Action(
                        select.action, select.value, user, self.channel, number_text, is_mod,
                        values=[option.value],
                    )  # fmt: skip
                    return await self.app.act(action), int(number_text)
        labels = ", ".join(b.label for b in post.buttons) or "none"
        raise UsageError(
            f"Message #{number_text} has no button `{label}`.", hint=f"Its buttons: {labels}"
        )

    def _respond(self, user: UserRef, verb: str, args: str) -> None:
        """A member reacting to, or replying under, a message: only counted and echoed."""
        number_text, _, what = args.strip().partition(" ")
        number = int(number_text) if number_text.isdigit() else 0
        if number not in self.screen.messages or not what.strip():
            raise UsageError(f"Write: @name {verb} N {'EMOJI' if verb == 'react' else 'TEXT'}")
        if verb == "react":
            self.screen.reactions.add((number, user.user, what.strip()))
            self.screen.write(f"  ({user.name} reacted {what.strip()} to #{number})")
        else:
            self.screen.replies.setdefault(number, []).append((user.user, what.strip()))
            self.screen.write(f"  ({user.name} replied to #{number}: {what.strip()})")

    async def _form(self, user: UserRef, is_mod: bool, args: str) -> list[Reply]:
        form = self.forms.get(user.user)
        if form is None:
            raise UsageError(f"{user.name} has no form open.")
        values = {k: str(v) for k, v in textargs.parse(args).named.items()}
        sub = Submission(form.id, form.value, values, user, self.channel, is_mod)
        replies = await self.app.submit(sub)
        if not any(isinstance(r, FormErrors) for r in replies):
            self.forms.pop(user.user, None)
        return replies

    def show_replies(self, name: str, replies: Iterable[Reply], message: int = 0) -> None:
        for reply in replies:
            if isinstance(reply, Ephemeral):
                self.screen.show(reply.post, name)
            elif isinstance(reply, Public):
                self.screen.show(reply.post, "public")
            elif isinstance(reply, UpdateMessage) and message:
                self.screen.replace(message, reply.post)
            elif isinstance(reply, UpdateMessage):  # nothing to update: shown as new
                self.screen.show(reply.post, name)
            elif isinstance(reply, OpenForm):
                self.forms[name] = reply.form
                self.form_cards[name] = message
                self.screen.show(_form_post(reply.form, name), name)
            elif isinstance(reply, FormErrors):
                self.screen.show(reply.post(), name)

    async def run_script(self, lines: Iterable[str]) -> None:
        for line in lines:
            await self.handle(line)

    async def run_interactive(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                line = await loop.run_in_executor(None, _prompt)
            except EOFError:
                return
            if line.strip() in {"quit", "exit"}:
                return
            await self.handle(line)


def _prompt() -> str:
    sys.stdout.write("> ")
    sys.stdout.flush()
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line


def _form_post(form: Form, name: str) -> Post:
    lines = []
    for field in form.fields:
        need = "required" if field.required else "optional"
        choices = f", one of: {', '.join(o.value for o in field.options)}" if field.options else ""
        lines.append(f"- {field.id}: {field.label} ({need}{choices})")
    example = " ".join(f'{f.id}="..."' for f in form.fields if f.required)
    lines.append(f"Submit with: @{name} form {example}")
    return Post(title=f"Form: {form.title}", text="\n".join(lines))
