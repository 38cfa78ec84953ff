"""Safe HTTP fetching of what members point the bot at (feeds, calendars), with aiohttp.

Conditional GET (ETag / Last-Modified), one overall timeout, a size cap on the
decompressed body, redirects followed by hand (so every hop is checked and a permanent
one can update the stored URL), and addresses checked at connection time: private,
loopback, link-local and reserved hosts are refused unless the caller allows them.
Failures come back as a `FetchResult` with a readable `error`, never as an exception.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

log = logging.getLogger(__name__)

REDIRECTS = (301, 302, 303, 307, 308)
PERMANENT = (301, 308)
MAX_HOPS = 5


class BlockedAddress(Exception):
    """A host resolved to an address the configuration does not allow."""


@dataclass
class FetchResult:
    url: str  # where the body finally came from
    status: int = 0  # HTTP status; 0 when no answer came
    body: bytes = b""
    content_type: str = ""
    etag: str | None = None
    last_modified: str | None = None
    moved_to: str | None = None  # set when every redirect hop was permanent
    max_age: float | None = None
    retry_after: float | None = None
    error: str = ""

    @property
    def not_modified(self) -> bool:
        return self.status == 304 and not self.error

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300 and not self.error


def check_url(url: str) -> str:
    """Raise ValueError unless `url` is an absolute http(s) URL with a host."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("only http:// and https:// addresses can be fetched")
    if not parts.hostname:
        raise ValueError("the address has no host name")
    return url.strip()


def check_address(host: str) -> None:
    """Raise BlockedAddress for an address that is not on the public internet."""
    try:
        addr = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return  # a name, checked once it resolves
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    for kind in ("loopback", "private", "link_local", "reserved", "multicast", "unspecified"):
        if getattr(addr, f"is_{kind}"):
            raise BlockedAddress(f"{host} is a {kind.replace('_', '-')} address")
    if not addr.is_global:
        raise BlockedAddress(f"{host} is not a public address")


class GuardedResolver(AbstractResolver):
    """Resolves names, then refuses any answer that is not a public address."""

    def __init__(self) -> None:
        self._inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        for answer in answers:
            check_address(answer["host"])
        return answers

    async def close(self) -> None:
        await self._inner.close()


class Fetcher:
    """One aiohttp session per address policy, shared by every fetch; bounded concurrency."""

    def __init__(
        self,
        timeout: float = 10.0,
        max_bytes: int = 5_000_000,
        concurrency: int = 50,
        user_agent: str = "itsm-community-bot",
        allow_private: bool = False,
        accept: str = "*/*",
    ) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.user_agent = user_agent
        self.allow_private = allow_private
        self.accept = accept
        self._limit = asyncio.Semaphore(concurrency)
        self._concurrency = concurrency
        self._sessions: dict[bool, aiohttp.ClientSession] = {}

    def _session(self, allow_private: bool) -> aiohttp.ClientSession:
        session = self._sessions.get(allow_private)
        if session is None or session.closed:
            resolver = None if allow_private else GuardedResolver()
            connector = aiohttp.TCPConnector(
                limit=self._concurrency, resolver=resolver, ttl_dns_cache=300
            )
            session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": self.user_agent, "Accept": self.accept},
                cookie_jar=aiohttp.DummyCookieJar(),
            )
            self._sessions[allow_private] = session
        return session

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()

    async def fetch(
        self,
        url: str,
        etag: str | None = None,
        last_modified: str | None = None,
        allow_private: bool = False,
    ) -> FetchResult:
        allow = allow_private or self.allow_private
        async with self._limit:
            try:
                return await asyncio.wait_for(
                    self._fetch(url, etag, last_modified, allow), timeout=self.timeout
                )
            except TimeoutError:
                return FetchResult(url, error=f"no complete answer within {self.timeout:g} s")
            except BlockedAddress as exc:
                return FetchResult(url, error=f"refused: {exc} (not allowed by configuration)")
            except ValueError as exc:
                return FetchResult(url, error=f"refused: {exc}")
            except aiohttp.ClientConnectorError as exc:
                blocked = exc.os_error if isinstance(exc.os_error, BlockedAddress) else None
                if blocked:
                    return FetchResult(url, error=f"refused: {blocked}")
                return FetchResult(url, error=f"cannot connect: {exc.os_error or exc}")
            except aiohttp.ClientPayloadError:
                return FetchResult(url, error="the body was cut off (truncated response)")
            except (aiohttp.ClientError, OSError) as exc:
                return FetchResult(url, error=f"request failed: {type(exc).__name__}: {exc}")

    async def _fetch(
        self, url: str, etag: str | None, last_modified: str | None, allow: bool
    ) -> FetchResult:
        session = self._session(allow)
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        current, permanent = check_url(url), True
        for _ in range(MAX_HOPS + 1):
            if not allow:
                check_address(urlsplit(current).hostname or "")
            async with session.get(current, headers=headers, allow_redirects=False) as resp:
                if resp.status in REDIRECTS and "Location" in resp.headers:
                    permanent = permanent and resp.status in PERMANENT
                    current = check_url(urljoin(current, resp.headers["Location"]))
                    continue
                result = FetchResult(
                    current,
                    resp.status,
                    content_type=resp.headers.get("Content-Type", ""),
                    etag=resp.headers.get("ETag"),
                    last_modified=resp.headers.get("Last-Modified"),
                    moved_to=current if permanent and current != url else None,
                    max_age=_max_age(resp.headers.get("Cache-Control", "")),
                    retry_after=_retry_after(resp.headers.get("Retry-After", "")),
                )
                if resp.status == 200:
                    body = await self._read(resp)
                    if body is None:
                        result.error = f"it is larger than {self.max_bytes:,} bytes"
                    else:
                        result.body = body
                elif resp.status != 304:
                    result.error = f"HTTP {resp.status} {resp.reason or ''}".strip()
                return result
        return FetchResult(url, error=f"more than {MAX_HOPS} redirects")

    async def _read(self, resp: aiohttp.ClientResponse) -> bytes | None:
        """The body, or None once it exceeds the cap (checked as it streams in)."""
        if resp.content_length is not None and resp.content_length > self.max_bytes:
            return None  # compressed or not, the body would be at least this large
        body = bytearray()
        async for chunk in resp.content.iter_chunked(65536):
            body += chunk
            if len(body) > self.max_bytes:
                return None
        return bytes(body)


def _max_age(header: str) -> float | None:
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name.lower() in ("max-age", "s-maxage") and value.strip('"').isdigit():
            return float(value.strip('"'))
    return None


def _retry_after(header: str) -> float | None:
    header = header.strip()
    if not header:
        return None
    if header.isdigit():
        return float(header)
    try:
        moment = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())
