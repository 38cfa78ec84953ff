"""The console's pages, one module each, in the order the navigation shows them."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.web.server import WebServer

PAGES = ("feeds", "polls", "events", "prompts", "delivery")


def add_pages(server: WebServer) -> None:
    for name in PAGES:
        importlib.import_module(f"bot.web.pages.{name}").add(server)
