"""What polls and surveys share once a run exists: its message in every channel, its
deadline job, and its close (by hand, or when the deadline passes, even after a restart).

Every key is built from the feature's name, which is also the run's kind ("poll",
"survey"): `poll:7:slack:T1:C1` is poll 7's message in that channel, `poll:7:close` its
deadline job, `poll:7:results:slack:T1:C1` its results post there.
"""

from __future__ import annotations

import logging
from datetime import datetime

from bot.app import Feature
from bot.model import ChannelRef, Post
from bot.polls.store import Run, VoteStore
from bot.scheduler import ANY_LATENESS, Job

log = logging.getLogger(__name__)


class RunFeature(Feature):
    """A feature whose runs are posted to channels and closed by hand or at a deadline."""

    store: VoteStore

    def message_key(self, run_id: int, channel: ChannelRef) -> str:
        return f"{self.name}:{run_id}:{channel.key}"

    def handle_deadlines(self) -> None:
        # A deadline missed while the bot was down still closes the run.
        self.app.scheduler.handle(f"{self.name}.close", self.close_job, grace=ANY_LATENESS)

    async def publish(
        self, run_id: int, channels: list[ChannelRef], post: Post, closes: datetime | None
    ) -> None:
        """Post the run's message in every channel and arm its deadline."""
        for channel in channels:
            await self.store.add_channel(run_id, channel)
            await self.app.outbox.enqueue(channel, post, self.message_key(run_id, channel))
        if closes:
            await self.app.scheduler.schedule(
                self._close_key(run_id), f"{self.name}.close", closes, {"run": run_id}
            )

    async def show(self, run_id: int, post: Post) -> None:
        """Put `post` in place of the run's message in every channel."""
        for channel in await self.store.channels(run_id):
            try:
                await self.app.outbox.edit(self.message_key(run_id, channel), post)
            except KeyError:
                log.warning("%s %s: no message in %s to update", self.name, run_id, channel.key)

    async def post_results(self, run_id: int, post: Post) -> None:
        """The results post, once per channel however often a close is retried."""
        for channel in await self.store.channels(run_id):
            key = f"{self.name}:{run_id}:results:{channel.key}"
            await self.app.outbox.enqueue(channel, post, key)

    async def close_job(self, job: Job) -> None:
        run_id = int(job.payload["run"])
        await self.store.close(run_id, self.app.clock.now())  # False if closed by hand meanwhile
        await self.finish(run_id)

    async def finish(self, run_id: int) -> None:
        """After a close: the final messages. Must be safe to run twice."""
        raise NotImplementedError

    async def cancel_deadline(self, run_id: int) -> None:
        await self.app.scheduler.cancel(self._close_key(run_id))

    async def require(self, run_id: int) -> Run:
        run = await self.store.get(run_id)
        if run is None:
            raise KeyError(run_id)
        return run

    def _close_key(self, run_id: int) -> str:
        return f"{self.name}:{run_id}:close"
