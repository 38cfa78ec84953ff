"""Surveys from `config/surveys/`: started by a moderator, answered in private.

`/survey start NAME` posts "Take the survey" in the channel and the community's linked
channels. A member pressing it gets one private card (an ephemeral message) that shows one
question at a time: answering, Back and Skip replace the card in place rather than adding
one per question (a written answer, sent through a form, comes back as a new card). They
can come back later to the next unanswered question, and change answers until the survey
closes. Answers are recorded under a keyed hash of the member (see `Run.voter`), so results
and exports never carry identities.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from bot import commands as cmd
from bot.app import Context
from bot.config import Section
from bot.errors import UsageError, UserError
from bot.memo import Memo
from bot.model import (
    Action,
    Attachment,
    Ephemeral,
    Field,
    Form,
    FormErrors,
    FormField,
    OpenForm,
    Post,
    Submission,
    UpdateMessage,
    inert,
)
from bot.polls import chart, definitions, render, results
from bot.polls.runs import RunFeature
from bot.polls.store import MIGRATIONS, Closed, Question, Run, VoteStore
from bot.store import IntegrityError

log = logging.getLogger(__name__)

TEXT_LIMIT = 1000


class SurveySettings(Section):
    directory: str = ""  # empty: the bundled config/surveys


class Surveys(RunFeature):
    """The community surveys, answered in chat."""

    name = "survey"
    Settings = SurveySettings

    def __init__(self, app) -> None:
        super().__init__(app)
        self.store = VoteStore(app.db)
        self._questions: Memo[int, list[Question]] = Memo(self.store.questions)
        directory = self.settings.directory if self.settings else ""
        self.specs = definitions.load(Path(directory) if directory else definitions.BUNDLED)

    def register(self) -> None:
        name = cmd.Option(
            "name", cmd.Kind.CHOICE, "which survey", required=True, positional=True,
            choices=tuple(self.specs),
        )  # fmt: skip
        closes = cmd.Option("closes", cmd.Kind.DATETIME, "close automatically (2w, a date)")
        by = cmd.Option(
            "by",
            description="compare by the answers to this segment question",
            form="the id of a segment question, like org-size",
        )
        add = self.app.command
        add(cmd.Command(("survey", "list"), "The surveys and where each stands", self.list_command))
        add(
            cmd.Command(
                ("survey", "start"),
                "Start a survey in this channel",
                self.start_command,
                [name, closes],
                moderator=True,
                examples=["/survey start bsm-maturity", "/survey start community closes=2w"],
            )
        )
        add(
            cmd.Command(
                ("survey", "results"),
                "A survey's results, optionally by segment",
                self.results_command,
                [name, by],
                examples=["/survey results bsm-maturity by=org-size"],
            )
        )
        add(
            cmd.Command(
                ("survey", "export"),
                "A survey's answers as CSV",
                self.export_command,
                [name],
                moderator=True,
            )
        )
        add(cmd.Command(("survey", "close"), "Close a survey and post its results",
                        self.close_command, [name], moderator=True))  # fmt: skip
        self.app.on_action("survey.take", self.take)
        self.app.on_action("survey.answer", self.answer)
        self.app.on_action("survey.go", self.go)
        self.app.on_action("survey.write", self.write)
        self.app.on_form("survey.text", self.written)
        self.handle_deadlines()

    async def start(self) -> None:
        # The schema is shared with polls; this is a no-op when the poll feature ran it.
        await self.app.db.migrate("poll", MIGRATIONS)

    # --- Moderator commands --------------------------------------------------------------

    async def start_command(
        self, ctx: Context, name: str, closes: datetime | None = None
    ) -> Ephemeral:
        spec = self.specs[name]
        if closes is not None and closes <= ctx.now:
            raise UsageError("That deadline is in the past.", option="closes")
        try:
            run_id = await self.store.create(
                kind="survey", name=name, title=spec.title, community_id=ctx.community.id,
                channel=ctx.channel, creator=ctx.user, questions=spec.questions(), now=ctx.now,
                anonymous=True, everywhere=True, closes_at=closes,
            )  # fmt: skip
        except IntegrityError:
            raise UsageError(
                f"The `{name}` survey is already running here.",
                hint=f"Close it first with /survey close {name}.",
            ) from None
        run = await self.require(run_id)
        post = render.survey_invite_post(run, spec.description, len(spec.question), closed=False)
        await self.publish(run_id, await self.app.communities.linked(ctx.channel), post, closes)
        log.info("survey %s started as run %s by %s", name, run_id, ctx.user.key)
        return Ephemeral(Post(text=f"The `{name}` survey is open (run #{run_id})."))

    async def close_command(self, ctx: Context, name: str) -> Ephemeral:
        run = await self._latest(ctx, name)
        if run.closed_at is not None or not await self.store.close(run.id, ctx.now):
            raise UsageError(f"The `{name}` survey is not running here.")
        await self.finish(run.id)
        return Ephemeral(Post(text=f"The `{name}` survey is closed; the results are posted."))

    async def finish(self, run_id: int) -> None:
        """After a close: invitations say so, and a results post with a chart goes out."""
        await self.cancel_deadline(run_id)
        run = await self.require(run_id)
        spec = self.specs.get(run.name)
        questions = await self._questions_of(run_id)
        closed = render.survey_invite_post(
            run, spec.description if spec else "", len(questions), True
        )
        await self.show(run_id, closed)
        await self.post_results(run_id, await self._results(run, questions, with_chart=True))

    async def export_command(self, ctx: Context, name: str) -> Ephemeral:
        run = await self._latest(ctx, name)
        questions = await self._questions_of(run.id)
        data = results.survey_csv(questions, await self.store.all_answers(run.id))
        return Ephemeral(
            Post(
                text=f"The `{name}` survey (run #{run.id}) as CSV: one row per respondent.",
                attachments=[Attachment(f"survey-{name}-{run.id}.csv", data, "text/csv")],
            )
        )

    # --- Everyone ------------------------------------------------------------------------

    async def list_command(self, ctx: Context) -> Ephemeral:
        fields = []
        for name, spec in self.specs.items():
            run = await self.store.latest(ctx.community.id, name)
            if run is None:
                state = "not run here yet"
            else:
                answered = await self.store.respondents(run.id)
                state = "running" if run.closed_at is None else "closed"
                state = f"{state} (run #{run.id}, {answered} answered)"
            fields.append(
                Field(
                    f"{name}",
                    f"{inert(spec.title)}: {len(spec.question)} questions, {state}",
                    False,
                )
            )
        return Ephemeral(Post(title="Surveys", fields=fields))

    async def results_command(self, ctx: Context, name: str, by: str | None = None) -> Ephemeral:
        run = await self._latest(ctx, name)
        questions = await self._questions_of(run.id)
        if not by:
            return Ephemeral(await self._results(run, questions, with_chart=False))
        segment = next((q for q in questions if q.qid == by.strip().lower()), None)
        if segment is None or segment.kind != "single":
            names = ", ".join(q.qid for q in questions if q.segment) or "none"
            raise UsageError(
                f"`{inert(by)}` is not a question to compare by.", option="by",
                hint=f"Segment questions of `{name}`: {names}.",
            )  # fmt: skip
        table = await self.store.crosstab(run.id, segment.qid)
        seg_tally = (await self.store.tallies(run.id)).get(segment.qid, {})
        return Ephemeral(render.crosstab_post(run, questions, segment, table, seg_tally))

    async def _results(self, run: Run, questions: list[Question], with_chart: bool) -> Post:
        tallies = await self.store.tallies(run.id)
        counts = {q.qid: await self.store.respondents(run.id, q.qid) for q in questions}
        png = None
        if with_chart:
            groups = [
                (q.text, results.bars(q, tallies.get(q.qid, {}))) for q in questions if q.options
            ]
            png = await chart.draw(run.title, groups)
        respondents = await self.store.respondents(run.id)
        return render.survey_results_post(run, questions, tallies, counts, respondents, png)

    # --- Answering -----------------------------------------------------------------------

    async def take(self, ctx: Context, action: Action) -> Ephemeral:
        """Pressed on the public invitation: the member's own card, new."""
        run = await self._open_run(action.value, ctx)
        return Ephemeral(await self._show(ctx, run, None))

    async def go(self, ctx: Context, action: Action) -> UpdateMessage:
        """Back, Skip, Review: pressed on the member's card, which shows the question asked."""
        run_part, _, target = action.value.partition(":")
        run = await self._open_run(run_part, ctx)
        return UpdateMessage(await self._show(ctx, run, target))

    async def answer(self, ctx: Context, action: Action) -> UpdateMessage:
        parts = action.value.split(":")
        run = await self._open_run(parts[0], ctx)
        question = await self._question(run, parts[1] if len(parts) > 1 else "")
        picked = action.values or parts[2:3]
        try:
            indexes = [int(v) for v in picked]
        except ValueError:
            raise UserError("That answer is not part of this question.") from None
        if not indexes or any(not 0 <= i < len(question.options) for i in indexes):
            raise UserError("That answer is not part of this question.")
        await self._saving(self.store.choose(run, question, ctx.user, indexes, ctx.now), run)
        return UpdateMessage(await self._show(ctx, run, question.qid, after=True))

    async def write(self, ctx: Context, action: Action) -> OpenForm:
        run_part, _, qid = action.value.partition(":")
        run = await self._open_run(run_part, ctx)
        question = await self._question(run, qid)
        mine = (await self.store.answers_of(run, ctx.user)).get(qid, [])
        field = FormField(
            "answer", _short(question.text, 45), kind="paragraph", required=True,
            placeholder=_short(question.text, 100), default=str(mine[0]) if mine else "",
            max_length=TEXT_LIMIT,
        )  # fmt: skip
        return OpenForm(Form("survey.text", _short(run.title, 45), [field], value=action.value))

    async def written(self, ctx: Context, sub: Submission) -> UpdateMessage | FormErrors:
        run_part, _, qid = sub.value.partition(":")
        run = await self._open_run(run_part, ctx)
        question = await self._question(run, qid)
        text = (sub.values.get("answer") or "").strip()
        if not text:
            return FormErrors({"answer": "Write an answer, or close this and press Skip."})
        if len(text) > TEXT_LIMIT:
            return FormErrors({"answer": f"At most {TEXT_LIMIT} characters, please."})
        await self._saving(self.store.write(run, question, ctx.user, text, ctx.now), run)
        # The card the form was opened from shows the next question, as a click's does.
        return UpdateMessage(await self._show(ctx, run, qid, after=True))

    async def _show(self, ctx: Context, run: Run, target: str | None, after: bool = False) -> Post:
        """The question `target` (or the one after it), else the next unanswered one."""
        questions = await self._questions_of(run.id)
        mine = await self.store.answers_of(run, ctx.user)
        ids = [q.qid for q in questions]
        if target == "#first":
            index: int | None = 0
        elif target == "#done":
            index = None
        elif target:
            if target not in ids:
                raise UserError("That question is not part of this survey.")
            index = ids.index(target) + (1 if after else 0)
            index = index if index < len(ids) else None
        else:
            index = next((i for i, q in enumerate(ids) if q not in mine), None)
        if index is None:
            return render.survey_done_post(run, len(mine), len(questions))
        post = render.survey_question_post(run, questions, index, mine.get(ids[index], []))
        if after:
            post.text = "_Saved._\n" + post.text
        return post

    async def _saving(self, write, run: Run) -> None:
        try:
            await write
        except Closed:
            raise UserError(
                f"The `{run.name}` survey is closed: answers are no longer taken."
            ) from None

    # --- Lookups -------------------------------------------------------------------------

    async def _latest(self, ctx: Context, name: str) -> Run:
        run = await self.store.latest(ctx.community.id, name)
        if run is None:
            raise UsageError(
                f"The `{name}` survey has not been run here yet.",
                hint=f"A moderator can start it with /survey start {name}.",
            )
        return run

    async def _open_run(self, value: str, ctx: Context) -> Run:
        try:
            run = await self.store.get(int(value))
        except ValueError:
            run = None
        if run is None or run.kind != "survey" or run.community_id != ctx.community.id:
            raise UserError("That survey no longer exists.")  # nor another community's
        if not run.is_open(ctx.now):
            raise UserError(f"The `{run.name}` survey is closed: answers are no longer taken.")
        return run

    async def _questions_of(self, run_id: int) -> list[Question]:
        return await self._questions.get(run_id)

    async def _question(self, run: Run, qid: str) -> Question:
        found = next((q for q in await self._questions_of(run.id) if q.qid == qid), None)
        if found is None:
            raise UserError("That question is not part of this survey.")
        return found


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
