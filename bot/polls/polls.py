"""Ad-hoc polls: `/poll create|close|results|export|stop` and the vote buttons.

A poll is posted through the outbox to its channel (with `everywhere`, to every linked
channel of the community too); votes from all of them count together. The message is
redrawn in place after votes, coalesced and debounced. A deadline is a scheduler job, so
it survives restarts. A poll may also be posted later, repeat each week or month and remind
members by direct message: see bot/polls/schedule.py.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot import commands as cmd
from bot.app import Context
from bot.errors import ConfigError, UsageError, UserError
from bot.memo import Memo
from bot.model import Action, Attachment, Ephemeral, Post, inert, time_tag
from bot.polls import chart, render, results
from bot.polls.ballots import BallotBox
from bot.polls.live import Refresher
from bot.polls.runs import RunFeature
from bot.polls.schedule import Schedule, created_text, plan
from bot.polls.series import REPEATS, Repeat, SeriesStore
from bot.polls.store import MIGRATIONS, Closed, Question, Run, VoteStore

log = logging.getLogger(__name__)

MIN_OPTIONS, MAX_OPTIONS = 2, 25
QUESTION_LIMIT, OPTION_LIMIT = 300, 80
QID = "q"  # a poll's one question
MAX_RUNS = 520  # ten years of weekly runs


class Polls(RunFeature):
    """Quick polls members answer with buttons."""

    name = "poll"
    migrations = MIGRATIONS

    def __init__(self, app) -> None:
        super().__init__(app)
        self.store = VoteStore(app.db)
        self.series = SeriesStore(app.db, self.store)
        self.schedule = Schedule(self)
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
                    cmd.Option("opens", cmd.Kind.DATETIME, "post it later (2h, a date)"),
                    cmd.Option(
                        "repeat",
                        cmd.Kind.CHOICE,
                        "ask it again each period, tallied apart",
                        choices=REPEATS,
                    ),
                    cmd.Option(
                        "runs",
                        cmd.Kind.INT,
                        "with repeat: how many runs in all",
                        min_value=2,
                        max_value=MAX_RUNS,
                    ),
                    cmd.Option(
                        "remind",
                        cmd.Kind.DURATION,
                        "DM the channel's members who have not voted, this long before it closes",
                    ),
                ],
                examples=[
                    '/poll create "Which ITIL practice needs most love?" "Incident" "Change" '
                    '"Problem"',
                    '/poll create "Best meetup day?" "Tue" "Wed" "Thu" multi max=2 closes=2d',
                    '/poll create "How was your week?" "Calm" "Busy" "On fire" '
                    'opens="2026-12-07 09:00" repeat=weekly remind=1d',
                ],
            )  # fmt: skip
        )
        for verb, handler, what in (
            ("close", self.close_command, "Close a poll now (its creator or a moderator)"),
            ("results", self.results_command, "Show a poll's results"),
            ("export", self.export_command, "A poll's votes as CSV (creator or moderators)"),
            ("stop", self.stop_command, "Stop a repeating poll: no further runs"),
        ):
            self.app.command(
                cmd.Command(("poll", verb), what, handler, [poll_id], examples=[f"/poll {verb} 3"])
            )
        self.app.on_action("poll.vote", self.vote)
        self.handle_deadlines()
        self.schedule.register()

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
        opens: datetime | None = None,
        repeat: Repeat | None = None,
        runs: int | None = None,
        remind: timedelta | None = None,
    ) -> Ephemeral:
        spec = check_poll(question, choices or [], multi, max, closes, ctx.now)
        when = plan(opens, closes, repeat, runs, remind, anonymous, ctx.now, ctx.tz)
        series_id = None
        if when.repeat is not None:
            series_id = await self.series.create(
                ctx.community.id, when.repeat, ctx.tz, when.first, when.length,
                when.remind, when.runs,
            )  # fmt: skip
        run_id = await self.store.create(
            kind="poll", title=spec.text, community_id=ctx.community.id, channel=ctx.channel,
            creator=ctx.user, questions=[spec], now=ctx.now, anonymous=anonymous,
            hidden=hidden, everywhere=everywhere, closes_at=when.first_closes,
            opens_at=when.opens, series=(series_id, 1) if series_id else None,
        )  # fmt: skip
        if when.opens is None:
            channels = await self.schedule.open(run_id)
            where = f"{len(channels)} channels" if len(channels) > 1 else "this channel"
        else:
            await self.schedule.arm_opening(run_id, when.opens)
            where = "the community's channels" if everywhere else "this channel"
        if when.repeat is None and when.remind is not None and when.first_closes is not None:
            await self.schedule.remind_at(run_id, when.first_closes - when.remind)
        log.info("poll %s created by %s (%s)", run_id, ctx.user.key, repeat or "once")
        series = await self.series.get(series_id) if series_id else None
        text = created_text(await self.require(run_id), when, series, where)
        return Ephemeral(Post(text=text))

    async def close_command(self, ctx: Context, id: int) -> Ephemeral:
        run = await self._poll(ctx, id)
        if run.creator != ctx.user.key and not ctx.is_moderator:
            raise UserError("Only the poll's creator or a moderator can close it.")
        if run.opened_at is None and run.closed_at is None:
            return await self._cancel(run)
        if not await self.store.close(run.id, ctx.now):
            raise UsageError(
                f"Poll #{id} is already closed."
                if run.opened_at
                else f"Poll #{id} {_unposted(run)}."
            )
        await self.finish(run.id)
        return Ephemeral(Post(text=f"Poll #{id} is closed; the results are posted."))

    async def _cancel(self, run: Run) -> Ephemeral:
        """`/poll close` of a poll not posted yet: it never will be."""
        if run.series_id is not None:
            raise UsageError(
                f"Poll #{run.id} is the next run of a repeating poll and is not posted yet.",
                hint=f"`/poll stop {run.id}` stops the poll from running again.",
            )
        await self.schedule.cancel(run.id)
        return Ephemeral(Post(text=f"Poll #{run.id} is cancelled: it will not be posted."))

    async def stop_command(self, ctx: Context, id: int) -> Ephemeral:
        run = await self._poll(ctx, id)
        if run.creator != ctx.user.key and not ctx.is_moderator:
            raise UserError("Only the poll's creator or a moderator can stop it.")
        series = await self.series.get(run.series_id) if run.series_id else None
        if series is None:
            raise UsageError(
                f"Poll #{id} does not repeat.", hint=f"Close it with `/poll close {id}`."
            )
        if series.stopped_at is not None:
            raise UsageError(f"Poll #{id} was stopped already: it does not run again.")
        current = await self.schedule.stop(series)
        text = f"Poll #{id} is stopped: it will not run again."
        if current is not None and current.closes_at is not None:
            which = "It" if current.id == id else f"Its current run, poll #{current.id},"
            text += (
                f" {which} stays open until {time_tag(current.closes_at, 'f')}; "
                f"`/poll close {current.id}` closes it now."
            )
        return Ephemeral(Post(text=text))

    async def results_command(self, ctx: Context, id: int) -> Ephemeral:
        run = await self._poll(ctx, id)
        if run.opened_at is None:
            raise UserError(f"Poll #{id} {_unposted(run)}, so it has no results.")
        question = await self.question(run.id)
        voters = await self.store.respondents(run.id)
        if run.hidden and run.closed_at is None:
            raise UserError(
                f"The results of poll #{id} are hidden until it closes.",
                hint=f"{voters} voted so far.",
            )
        tally = (await self.store.tallies(run.id)).get(QID, {})
        trend = await self.schedule.trend(run)
        return Ephemeral(render.poll_results_post(run, question, tally, voters, None, trend))

    async def export_command(self, ctx: Context, id: int) -> Ephemeral:
        run = await self._poll(ctx, id)
        if run.creator != ctx.user.key and not ctx.is_moderator:
            raise UserError("Only the poll's creator or a moderator can export it.")
        if run.hidden and run.closed_at is None:
            raise UserError(f"Poll #{id} hides its results until it closes; export it then.")
        question = await self.question(run.id)
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
        # Buttons come from the platform's message, but a replayed or forged press must
        # not reach another community's poll either.
        if run is None or run.kind != "poll" or run.community_id != ctx.community.id:
            raise UserError("That poll no longer exists.")
        if run.opened_at is None:
            raise UserError(f"Poll #{run_id} is not open yet.")
        question = await self.question(run_id)
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
        question = await self.question(run_id)
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
        await self.app.scheduler.cancel(f"poll:{run_id}:remind")
        await self.refresher.flush()
        await self.redraw(run_id)
        run = await self.require(run_id)
        question = await self.question(run_id)
        tally = (await self.store.tallies(run_id)).get(QID, {})
        voters = await self.store.respondents(run_id)
        png = await chart.draw(question.text, [(question.text, results.bars(question, tally))])
        trend = await self.schedule.trend(run)
        post = render.poll_results_post(run, question, tally, voters, png, trend)
        await self.post_results(run_id, post)
        log.info("poll %s closed with %d voters", run_id, voters)

    # --- Lookups -------------------------------------------------------------------------

    async def _poll(self, ctx: Context, poll_id: int) -> Run:
        run = await self.store.get(poll_id)
        if run is None or run.kind != "poll" or run.community_id != ctx.community.id:
            raise UsageError(
                f"There is no poll #{poll_id} here.", option="id", hint="Check the poll's footer."
            )
        return run

    async def question(self, run_id: int) -> Question:
        """A poll's one question (it never changes once the poll is made)."""
        return await self._questions.get(run_id)

    def forget(self, run_id: int) -> None:
        """Read the run afresh next time: it was posted or closed."""
        self._runs.forget(run_id)

    async def _first_question(self, run_id: int) -> Question:
        return (await self.store.questions(run_id))[0]


def _unposted(run: Run) -> str:
    return "is not posted yet" if run.closed_at is None else "was cancelled before it was posted"


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
