"""Helpers shared by the poll and survey tests: a recording transport and short-hands."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.app import App
from bot.model import Action, ChannelRef, Ephemeral, Invocation, Post, Reply, UserRef

COMMUNITY = {
    "community": [
        {
            "name": "itsm",
            "timezone": "Europe/London",
            "workspaces": ["slack:T1", "discord:G1"],
            "channels": ["slack:T1:C1", "discord:G1:D1"],
        }
    ]
}
SLACK = ChannelRef("slack", "T1", "C1")
DISCORD = ChannelRef("discord", "G1", "D1")


@dataclass
class Recorder:
    """A Transport that keeps what the outbox sent and edited."""

    platform: str
    pace: float = 0.0
    sent: list[tuple[ChannelRef, Post, str]] = field(default_factory=list)
    edits: dict[str, Post] = field(default_factory=dict)

    async def send(self, channel: ChannelRef, post: Post, key: str) -> str:
        self.sent.append((channel, post, key))
        return f"m{len(self.sent)}"

    async def edit(self, channel: ChannelRef, message_id: str, post: Post) -> None:
        self.edits[message_id] = post

    async def find(self, channel: ChannelRef, key: str) -> str | None:
        return None

    def latest(self, key_prefix: str) -> Post:
        """The newest content of the message first sent under a key starting with this."""
        for number, (_, post, key) in enumerate(self.sent, start=1):
            if key.startswith(key_prefix):
                return self.edits.get(f"m{number}", post)
        raise AssertionError(f"nothing sent as {key_prefix}")


def member(name: str, platform: str = "slack", workspace: str = "T1") -> UserRef:
    return UserRef(platform, workspace, name, name)


async def say(
    app: App, user: UserRef, text: str, channel: ChannelRef = SLACK, mod: bool = False
) -> list[Reply]:
    top, _, rest = text.lstrip("/").partition(" ")
    return await app.invoke(Invocation((top,), user, channel, mod, text=rest))


async def click(
    app: App,
    user: UserRef,
    action: str,
    value: str,
    channel: ChannelRef = SLACK,
    values: list[str] | None = None,
) -> list[Reply]:
    return await app.act(Action(action, value, user, channel, "m1", False, values=values or []))


def text_of(replies: list[Reply]) -> str:
    parts = []
    for reply in replies:
        post = getattr(reply, "post", None)
        if post is not None:
            parts.append("\n".join([post.title, post.text, *(f.value for f in post.fields)]))
    return "\n".join(parts)


def only_post(replies: list[Reply], kind: type = Ephemeral) -> Post:
    """The post of the one reply, which is of `kind` (an `UpdateMessage` for a survey card
    answered in place)."""
    assert len(replies) == 1 and isinstance(replies[0], kind), replies
    return replies[0].post
