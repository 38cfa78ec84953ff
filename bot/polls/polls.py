"""Ad-hoc polls: `/poll create|close|results|export` and the vote buttons.

A poll is posted through the outbox to its channel (with `everywhere`, to every linked
channel of the community too); votes from all of them count together. The message is
redrawn in place after votes, coalesced and debounced. A deadline is a scheduler job, so
it survives restarts.
"""

from __future__ import annotations

import logging
from datetime import datetime

from bot import commands as cmd
from bot.app import Context
from bot.errors import ConfigError, UsageError, UserError
from bot.memo import Memo
from bot.model import Action, Attachment, Ephemeral, Post, inert
from bot.polls import chart, render, results
from bot.polls.ballots import BallotBox
from bot.polls.live import Refresher
from bot.polls.runs import RunFeature
from bot.polls.store import MIGRATIONS, Closed, Question, Run, VoteStore

log = logging.getLogger(__name__)

MIN_OPTIONS, MAX_OPTIONS = 2, 25
QUESTION_LIMIT, OPTION_LIMIT = 300, 80
QID = "q"  # a poll's one question


class Polls(RunFeature):
    """Quick polls members answer with buttons."""

    name = "poll"
    migrations = MIGRATIONS

    def __init__(self, app) -> None:
        super().__init__(app)
        self.store = VoteStore(app.db)
        self.ballots = BallotBox(app.writer)
        self.refresher = Refresher(self.redraw, every=app.outbox.settings.edit_debounce)
        # Questions never change once created; a run is what a vote needs (whether it is
        # open is read in the vote's own transaction).
        self._questions: Memo[int, Question] = Memo(self._first_question)
        self._runs: Memo[int, Run | None] = Memo(self.store.get)

    def register(self) -> None:
        poll_id = cmd.Option(
            "id", cmd.Kind.INT, "the poll number", required=True, positional=True, min_value=1
        )
        self.app.command(
            cmd.Command(
                ("poll", "create"),
                "Post a poll members answer with buttons",
                self.create,
                options=[
                    cmd.Option(
                        "question",
                        description="the question",
                        required=True,
                        positional=True,
                        max_length=QUESTION_LIMIT,
                    ),
                    cmd.Option(
                        "choices",
                        description="2 to 25 answers, each in quotes",
                        positional=True,
                        many=True,
                        max_length=OPTION_LIMIT,
                    ),
                    cmd.Option("multi", cmd.Kind.BOOL, "members may choose several", default=False),
                    cmd.Option("max", cmd.Kind.INT, "at most this many choices", min_value=1),
                    cmd.Option(
                        "anonymous", cmd.Kind.BOOL, "no one can see who voted what", default=False
                    ),
                    cmd.Option(
                        "hidden", cmd.Kind.BOOL, "show results only once it closes", default=False
                    ),
                    cmd.Option("closes", cmd.Kind.DATETIME, "close automatically (2d, a date)"),
                    cmd.Option(
                        "everywhere",
                        cmd.Kind.BOOL,
                        "also post in the community's channels on other platforms",
                        default=False,
                    ),
                ],
                examples=[
                    '/poll create "Which ITIL practice needs most love?" "Incident" "Change" '
                    '"Problem"',
                    '/poll create "Best meetup day?" "Tue" "Wed" "Thu" multi max=2 closes=2d',
                ],
            )  # fmt: skip
        )
        for verb, handler, what in (
            ("close", self.close_command, "Close a poll now (its creator or a moderator)"),
            ("results", self.results_command, "Show a poll's results"),
            ("export", self.export_command, "A poll's votes as CSV (creator or moderators)"),
        ):
            self.app.command(
                cmd.Command(("poll", verb), what, handler, [poll_id], examples=[f"/poll {verb} 3"])
            )
        self.app.on_action("poll.vote", self.vote)
        self.handle_deadlines()

    async def start(self) -> None:
        if self.app.db.path == ":memory:":
            raise ConfigError(
                "polls need a database file: votes are written by a second connection"
            )

    async def stop(self) -> None:
        await self.refresher.flush()

    # --- Commands ------------------------------------------------------------------------

    async def create(
        self,
        ctx: Context,
        question: str,
        choices: list[str] | None = None,
        multi: bool = False,
        max: int | None = None,
        anonymous: bool = False,
        hidden: bool = False,
        closes: datetime | None = None,
        everywhere: bool = False,
    ) -> Ephemeral:
        spec = check_poll(question, choices or [], multi, max, closes, ctx.now)
        channels = await self.app.communities.linked(ctx.channel) if everywhere else [ctx.channel]
        run_id = await self.store.create(
            kind="poll", title=spec.text, community_id=ctx.community.id, channel=ctx.channel,
            creator=ctx.user, questions=[spec], now=ctx.now, anonymous=anonymous,
            hidden=hidden, everywhere=everywhere, closes_at=closes,
        )  # fmt: skip
        run = await self.require(run_id)
        await self.publish(run_id, channels, render.poll_post(run, spec, {}, 0, False), closes)
        log.info("poll %s created by %s in %d channel(s)", run_id, ctx.user.key, len(channels))
        where = f"{len(channels)} channels" if len(channels) > 1 else "this channel"
        return Ephemeral(
            Post(text=f"Poll #{run_id} is posted in {where}. Close it with `/poll close {run_id}`.")
        )

    async def close_command(self, ctx: Context, id: int) -> Ephemeral:
        run = await self._poll(ctx, id)
        if run.creator != ctx.user.key and not ctx.is_moderator:
            raise UserError("Only the poll's creator or a moderator can close it.")
        if not await self.store.close(run.id, ctx.now):
            raise UsageError(f"Poll #{id} is already closed.")
        await self.finish(run.id)
        return Ephemeral(Post(text=f"Poll #{id} is closed; the results are posted."))

    async def results_command(self, ctx: Context, id: int) -> Ephemeral:
        run = await self._poll(ctx, id)
        question = await self._question(run.id)
        voters = await self.store.respondents(run.id)
        if run.hidden and run.closed_at is None:
            raise UserError(
                f"The results of poll #{id} are hidden until it closes.",
                hint=f"{voters} voted so far.",
            )
        tally = (await self.store.tallies(run.id)).get(QID, {})
        return Ephemeral(render.poll_results_post(run, question, tally, voters, None))

    async def export_command(self, ctx: Context, id: int) -> Ephemeral:
        run = await self._poll(ctx, id)
        if run.creator != ctx.user.key and not ctx.is_moderator:
            raise UserError("Only the poll's creator or a moderator can export it.")
        if run.hidden and run.closed_at is None:
            raise UserError(f"Poll #{id} hides its results until it closes; export it then.")
        question = await self._question(run.id)
        tally = (await self.store.tallies(run.id)).get(QID, {})
        data = results.poll_csv(run, question, tally, await self.store.all_answers(run.id))
        note = " (anonymous: totals only)" if run.anonymous else ""
        return Ephemeral(
            Post(
                text=f"Poll #{id} as CSV{note}.",
                attachments=[Attachment(f"poll-{id}.csv", data, "text/csv")],
            )
        )

    # --- Voting --------------------------------------------------------------------------

    async def vote(self, ctx: Context, action: Action) -> Ephemeral:
        """A button press toggles one choice; a select sets the choice (multi) or toggles."""
        head, _, tail = action.value.partition(":")
        picked = action.values or [tail]
        try:
            run_id, indexes = int(head), [int(v) for v in picked]
        except ValueError:
            raise UserError("That button is no longer in use.") from None
        run = await self._runs.get(run_id)
        if run is None or run.kind != "poll":
            raise UserError("That poll no longer exists.")
        question = await self._question(run_id)
        if not indexes or any(not 0 <= i < len(question.options) for i in indexes):
            raise UserError("That choice is not part of this poll.")
        try:
            if question.kind == "multi" and action.values:
                await self.store.choose(run, question, ctx.user, indexes, ctx.now)
                chosen = "; ".join(f"**{inert(question.options[i])}**" for i in sorted(indexes))
                text = f"Your choices: {chosen}."
            else:
                text = await self._press(run, question, ctx, indexes[0], action.request_id)
        except Closed:
            raise UserError(f"Poll #{run_id} is closed: votes are no longer taken.") from None
        self.refresher.touch(run_id)
        return Ephemeral(Post(text=text))

    async def _press(
        self, run: Run, question: Question, ctx: Context, index: int, request_id: str
    ) -> str:
        outcome, before = await self.ballots.press(
            run, question, ctx.user, index, ctx.now, request_id
        )
        label = f"**{inert(question.options[index])}**"
        if outcome == "counted":
            return f"Your press of {label} is counted."
        if outcome == "removed":
            return f"Your vote for {label} is removed."
        if outcome == "changed" and before is not None:
            return f"You changed your vote from **{inert(question.options[before])}** to {label}."
        return f"You voted {label}; press it again to remove your vote."

    # --- Drawing and closing -------------------------------------------------------------

    async def redraw(self, run_id: int) -> None:
        run = await self.require(run_id)
        question = await self._question(run_id)
        tally = (await self.store.tallies(run_id)).get(QID, {})
        voters = await self.store.respondents(run_id)
        await self.show(
            run_id, render.poll_post(run, question, tally, voters, run.closed_at is not None)
        )

    async def finish(self, run_id: int) -> None:
        """After a close: final message everywhere, then a results post with a chart.

        Safe to run twice: the edit is idempotent and the results post has its own key.
        """
        self._runs.forget(run_id)
        await self.cancel_deadline(run_id)
        await self.refresher.flush()
        await self.redraw(run_id)
        run = await self.require(run_id)
        question = await self._question(run_id)
        tally = (await self.store.tallies(run_id)).get(QID, {})
        voters = await self.store.respondents(run_id)
        png = await chart.draw(question.text, [(question.text, results.bars(question, tally))])
        await self.post_results(run_id, render.poll_results_post(run, question, tally, voters, png))
        log.info("poll %s closed with %d voters", run_id, voters)

    # --- Lookups -------------------------------------------------------------------------

    async def _poll(self, ctx: Context, poll_id: int) -> Run:
        run = await self.store.get(poll_id)
        if run is None or run.kind != "poll" or run.community_id != ctx.community.id:
            raise UsageError(
                f"There is no poll #{poll_id} here.", option="id", hint="Check the poll's footer."
            )
        return run

    async def _question(self, run_id: int) -> Question:
        return await self._questions.get(run_id)

    async def _first_question(self, run_id: int) -> Question:
        return (await self.store.questions(run_id))[0]


def check_poll(
    question: str,
    choices: list[str],
    multi: bool,
    most: int | None,
    closes: datetime | None,
    now: datetime,
) -> Question:
    """A poll's one question from what was typed, or a UsageError saying what is wrong."""
    text = question.strip()
    if not text:
        raise UsageError("The question is empty.", option="question", hint=_EXAMPLE)
    choices = [c.strip() for c in choices if c.strip()]
    if len(choices) < MIN_OPTIONS:
        raise UsageError(
            f"A poll needs at least {MIN_OPTIONS} answers to choose from; got {len(choices)}.",
            option="choices",
            hint=_EXAMPLE,
        )
    if len(choices) > MAX_OPTIONS:
        raise UsageError(
            f"A poll can have at most {MAX_OPTIONS} answers; got {len(choices)}.",
            option="choices",
        )
    if len({c.lower() for c in choices}) != len(choices):
        raise UsageError("Two answers are the same; make each one different.", option="choices")
    if most is not None and most > len(choices):
        raise UsageError(
            f"`max` is {most} but the poll has only {len(choices)} answers.", option="max"
        )
    if closes is not None and closes <= now:
        raise UsageError(
            "That deadline is in the past.", option="closes", hint="Try closes=2d or a later date."
        )
    several = multi or (most is not None and most > 1)
    return Question(
        qid=QID,
        text=text,
        kind="multi" if several else "single",
        options=choices,
        max_choices=(most or len(choices)) if several else 1,
    )


_EXAMPLE = 'Example: /poll create "Which practice needs most love?" "Incident" "Change"'
