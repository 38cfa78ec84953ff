"""Values loaded once per key and shared by every caller that asks while one loads.

A burst of a thousand votes on a poll nobody voted on since the start would otherwise load
the same poll a thousand times over: each vote misses the cache before the first load
comes back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Memo(Generic[K, V]):
    def __init__(self, load: Callable[[K], Awaitable[V]]) -> None:
        self._load = load
        self._loads: dict[K, asyncio.Future[V]] = {}

    async def get(self, key: K) -> V:
        """The value for `key`, loaded at most once (a failed or empty load is not kept)."""
        load = self._loads.get(key)
        if load is None:
            load = self._loads[key] = asyncio.ensure_future(self._load(key))
        try:
            value = await asyncio.shield(load)
        except Exception:
            self._forget_failed(key, load)
            raise
        if value is None:
            self.forget(key)
        return value

    def forget(self, key: K) -> None:
        self._loads.pop(key, None)

    def _forget_failed(self, key: K, load: asyncio.Future[V]) -> None:
        if self._loads.get(key) is load and load.done():
            self.forget(key)
