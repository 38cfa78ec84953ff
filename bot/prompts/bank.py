"""The prompt bank: the bundled prompts (config/prompts.toml) plus approved suggestions,
and the rule that picks the next one for a channel.

The rule: rotate through the six competencies in order, and never repeat a prompt in a
channel until every prompt in the bank has been used there (then a new cycle starts).
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.errors import ConfigError

log = logging.getLogger(__name__)

BUNDLED = Path(__file__).resolve().parent.parent.parent / "config" / "prompts.toml"

# The community's six relationship competencies, in rotation order.
COMPETENCIES: dict[str, str] = {
    "inspire": "Inspire",
    "influence": "Influence",
    "develop-relationships": "Develop relationships",
    "initiate-change": "Initiate change",
    "manage-conflict": "Manage conflict",
    "establish-teams": "Establish teams and collaboration",
}

ADVICE: dict[str, str] = {
    "little-things": "The little things matter.",
    "customer-view": "See the relationship from the customer's side.",
    "lead-by-example": "Lead by example.",
    "practise-daily": "BRM is practised every day: stop asking where to start.",
    "one-team": "One team, not IT and 'the business'.",
    "small-issues": "Small snags grow into service problems: catch them early.",
    "coffee": "Would you remember who served your coffee this morning?",
}


@dataclass(frozen=True)
class Prompt:
    id: str
    competency: str
    text: str
    advice: str = ""

    @property
    def competency_name(self) -> str:
        return COMPETENCIES[self.competency]


def competency_name(slug: str) -> str:
    return COMPETENCIES.get(slug, slug)


def load_bank(path: str | Path | None = None) -> list[Prompt]:
    """Read and check a prompts file; every mistake is a ConfigError naming the prompt."""
    path = Path(path) if path else BUNDLED
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such prompts file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    prompts: list[Prompt] = []
    seen: set[str] = set()
    for number, raw in enumerate(data.get("prompt", []), start=1):
        where = f"{path}: prompt #{number}"
        pid, competency, text = raw.get("id"), raw.get("competency"), raw.get("text")
        if not pid or not text:
            raise ConfigError(f"{where}: needs an id and a text")
        if pid in seen:
            raise ConfigError(f"{where}: id {pid!r} is used twice")
        if competency not in COMPETENCIES:
            raise ConfigError(f"{where} ({pid}): unknown competency {competency!r}")
        advice = raw.get("advice", "")
        if advice and advice not in ADVICE:
            raise ConfigError(f"{where} ({pid}): unknown advice tag {advice!r}")
        seen.add(pid)
        prompts.append(Prompt(pid, competency, text.strip(), advice))
    if not prompts:
        raise ConfigError(f"{path}: has no [[prompt]] entries")
    return prompts


def suggestion_prompt(suggestion_id: int, competency: str, text: str) -> Prompt:
    """An approved suggestion as a prompt of the bank."""
    return Prompt(f"suggested-{suggestion_id}", competency, text)


@dataclass(frozen=True)
class Choice:
    prompt: Prompt
    cycle: int


def choose_next(
    bank: Sequence[Prompt], used: Iterable[str], cycle: int, last_competency: str | None
) -> Choice:
    """The next prompt for a channel.

    `used` are the prompt ids already posted there in `cycle`. Starting with the competency
    after `last_competency`, take the first unused prompt (bank order); once every prompt of
    the bank is used, a new cycle begins.
    """
    if not bank:
        raise ValueError("the prompt bank is empty")
    used_ids = set(used)
    available = [p for p in bank if p.id not in used_ids]
    if not available:
        cycle += 1
        available = list(bank)
    order = list(COMPETENCIES)
    start = (order.index(last_competency) + 1) % len(order) if last_competency in order else 0
    for step in range(len(order)):
        competency = order[(start + step) % len(order)]
        for prompt in available:
            if prompt.competency == competency:
                return Choice(prompt, cycle)
    raise AssertionError("unreachable: available prompts all have known competencies")
