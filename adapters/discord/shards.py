"""Which Discord shards this process connects (no SDK import: read before connecting).

Discord splits a bot's servers over `shard_count` gateway connections: a server's events
and interactions come on shard `(guild_id >> 22) % shard_count`. Several workers on one
database each connect a slice of the shards: worker k of N takes `shard_ids = [k]` with
`shard_count = N`. Posting needs no gateway (it is REST, from any worker), so a worker
also delivers posts to servers of shards it does not hold.

The `[discord]` keys `shard_count` and `shard_ids` say it in the file; the environment
variables DISCORD_SHARD_COUNT and DISCORD_SHARD_IDS ("0,1") win over them, each on its own,
so one configuration file serves every worker of a Procfile scaled to N.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.errors import ConfigError

COUNT_VARIABLE = "DISCORD_SHARD_COUNT"
IDS_VARIABLE = "DISCORD_SHARD_IDS"


@dataclass(frozen=True)
class Shards:
    """The shards one process connects: `ids`, each of `count` in all."""

    count: int
    ids: tuple[int, ...]

    def holds(self, guild_id: int) -> bool:
        return shard_of(guild_id, self.count) in self.ids

    def __str__(self) -> str:
        return f"shard(s) {', '.join(map(str, self.ids))} of {self.count}"


def shard_of(guild_id: int, count: int) -> int:
    """The shard that receives a server's events, as Discord computes it."""
    return (guild_id >> 22) % count


def problem(count: int | None, ids: Sequence[int] | None) -> str:
    """What is wrong with a shard count and id list, or "" when they can be used."""
    if count is None:
        return "shard_ids needs shard_count (how many shards in all)" if ids else ""
    if count < 1:
        return f"shard_count must be at least 1, not {count}"
    if ids is None:
        return ""
    if not ids:
        return "shard_ids is empty: leave it out to connect every shard"
    outside = [i for i in ids if not 0 <= i < count]
    if outside:
        return f"shard_ids {outside} outside 0..{count - 1} (shard_count = {count})"
    if len(set(ids)) != len(ids):
        return f"shard_ids {list(ids)} names a shard twice"
    return ""


def plan(count: int | None, ids: Sequence[int] | None, env: Mapping[str, str]) -> Shards | None:
    """The shards to connect: the environment's values over the file's; None for one
    connection without shards (neither says anything). ConfigError on a bad combination."""
    count = _env_count(env, count)
    ids = _env_ids(env, ids)
    wrong = problem(count, ids)
    if wrong:
        raise ConfigError(f"[discord] {wrong} (or {COUNT_VARIABLE} / {IDS_VARIABLE})")
    if count is None:
        return None
    return Shards(count, tuple(ids) if ids is not None else tuple(range(count)))


def _env_count(env: Mapping[str, str], default: int | None) -> int | None:
    text = env.get(COUNT_VARIABLE, "").strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{COUNT_VARIABLE}={text!r} is not a whole number") from None


def _env_ids(env: Mapping[str, str], default: Sequence[int] | None) -> Sequence[int] | None:
    text = env.get(IDS_VARIABLE, "").strip()
    if not text:
        return default
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(
            f"{IDS_VARIABLE}={text!r} is not a comma-separated list of shard numbers (e.g. 0,1)"
        ) from None
