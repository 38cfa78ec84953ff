"""The console's pages, one module each, in the order the navigation shows them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.web.server import WebServer


def add_pages(server: WebServer) -> None:
    from bot.web.pages import feeds

    for page in (feeds,):
        page.add(server)
