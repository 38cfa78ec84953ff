"""Calls a fake holds unanswered (a hang), until the test releases them or the fake closes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class Holds:
    def __init__(self) -> None:
        self._held: list[asyncio.Future[bool]] = []
        self.closing = False

    def __len__(self) -> int:
        return len(self._held)

    async def hold(self, changed: Callable[[], Awaitable[None]]) -> bool:
        """Wait until `end(released=True)` (True) or the fake closes (False)."""
        if self.closing:
            return False
        held: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._held.append(held)
        await changed()
        try:
            return await held
        finally:
            if held in self._held:
                self._held.remove(held)

    def end(self, released: bool) -> None:
        held, self._held = self._held, []
        for one in held:
            if not one.done():
                one.set_result(released)

    def close(self) -> None:
        self.closing = True
        self.end(released=False)
