"""Survey definitions: `config/surveys/*.toml`, checked at start-up.

A file holds `name`, `title`, `description` and a list of `[[question]]` tables (`id`,
`text`, `kind` = single | multi | text, `options`, `max` for multi, `segment` to mark a
question results can be compared by). A mistake stops start-up with the file and key named.
"""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

from bot.config import UNKNOWN_KEY, explain
from bot.errors import ConfigError
from bot.polls.store import Question

log = logging.getLogger(__name__)

BUNDLED = Path(__file__).resolve().parents[2] / "config" / "surveys"
Id = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]


class QuestionSpec(Struct, frozen=True, forbid_unknown_fields=True):
    id: Id
    text: Annotated[str, Meta(min_length=1, max_length=300)]
    kind: Literal["single", "multi", "text"]
    options: list[str] = []
    max: Annotated[int, Meta(ge=1)] | None = None
    segment: bool = False

    def __post_init__(self) -> None:
        if self.kind == "text":
            if self.options:
                raise ValueError("a text question takes no options")
            if self.segment:
                raise ValueError("a text question cannot be a segment")
        elif not 2 <= len(self.options) <= 25:
            raise ValueError(f"needs 2 to 25 options, has {len(self.options)}")
        if any(not o.strip() or len(o) > 100 for o in self.options):
            raise ValueError("every option needs 1 to 100 characters")
        if len(set(self.options)) != len(self.options):
            raise ValueError("two options are the same")
        if self.max is not None and self.kind != "multi":
            raise ValueError("`max` is only for multi questions")
        if self.max is not None and self.max > len(self.options):
            raise ValueError(f"`max` is {self.max} but there are {len(self.options)} options")
        if self.segment and self.kind != "single":
            raise ValueError("a segment question must be single choice")

    def question(self) -> Question:
        most = (self.max or len(self.options)) if self.kind == "multi" else 1
        return Question(self.id, self.text, self.kind, list(self.options), most, self.segment)


class SurveySpec(Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    name: Id
    title: Annotated[str, Meta(min_length=1, max_length=200)]
    description: str = ""
    question: Annotated[list[QuestionSpec], Meta(min_length=1, max_length=50)]

    def __post_init__(self) -> None:
        ids = [q.id for q in self.question]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"question ids used twice: {', '.join(twice)}")

    def questions(self) -> list[Question]:
        return [q.question() for q in self.question]


def load(directory: Path) -> dict[str, SurveySpec]:
    """Every survey in `directory`, by name; ConfigError naming the file and key if wrong."""
    if not directory.is_dir():
        raise ConfigError(f"{directory}: the survey directory does not exist")
    found: dict[str, SurveySpec] = {}
    for path in sorted(directory.glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        try:
            spec = msgspec.convert(data, SurveySpec)
        except msgspec.ValidationError as exc:
            raise ConfigError(_explain(path, data, exc)) from None
        if spec.name in found:
            raise ConfigError(f"{path}: name: survey `{spec.name}` is defined twice")
        found[spec.name] = spec
    log.info("loaded %d surveys from %s", len(found), directory)
    return found


def _explain(path: Path, data: dict, exc: msgspec.ValidationError) -> str:
    """`FILE: question[2].kind (id 'role'): what is wrong`: the first problem found."""
    key, message = explain(exc, SurveySpec)
    if message == UNKNOWN_KEY:
        message = "unknown key"
    parts: list[str] = []
    for step in key:
        if isinstance(step, int) and parts:
            parts[-1] += f"[{step}]"
        else:
            parts.append(str(step))
    return f"{path}: {'.'.join(parts) or '(top level)'}{_question_id(data, key)}: {message}"


def _question_id(data: dict, key: list[str | int]) -> str:
    if len(key) >= 2 and key[0] == "question" and isinstance(key[1], int):
        try:
            return f" (id {data['question'][key[1]]['id']!r})"
        except (KeyError, IndexError, TypeError):
            return ""
    return ""
