"""Polls and surveys: members answer with buttons, moderators see where the community stands.

Two features share one store: `Polls` (ad-hoc one-question polls) and `Surveys` (the
multi-question surveys defined in `config/surveys/*.toml`).
"""

from __future__ import annotations

from bot.polls.polls import Polls
from bot.polls.surveys import Surveys

__all__ = ["Polls", "Surveys"]
